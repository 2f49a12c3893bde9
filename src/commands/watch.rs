//! `git pair watch`: answers the locate queries of paired peers, so that `git pair refresh` on
//! a peer finds this machine after its address changed.
//!
//! A small foreground loop for one user (a systemd user unit runs it, see
//! contrib/systemd/git-pair-watch.service): the sockets listen on the locate port and join the
//! pairing's multicast groups on the chosen interfaces; every datagram goes to the
//! [`Responder`], which decides, without I/O, whether it is a query of a pairing held here and
//! what to answer. Around it, the loop keeps two things current without a restart: the
//! pairings (the pair secrets in `~/.ssh/git-pair`, read again when that directory changes,
//! and at least every [`RELOAD_EVERY`]) and the sockets (the interfaces are listed again every
//! [`INTERFACES_EVERY`], and the sockets reopened when their addresses changed). The addresses
//! an answer carries are looked up when it is made.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use crate::cli::WatchArgs;
use crate::commands::pair::{usage, Reporter};
use crate::events::Event as JsonEvent;
use crate::interrupt::Interrupts;
use crate::local;
use crate::protocol::locate::responder::{Outcome, Responder, Stats};
use crate::protocol::locate::MAX_ADDRESSES;
use crate::ssh_files::{SecretRecord, SshDir};
use crate::transport::driver;
use crate::transport::iface::{self, Interface};
use crate::transport::{Sockets, GROUP_V4, GROUP_V6};

/// How often the directory of the pair secrets is checked for changes.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The pair secrets are read again at least this often, changed or not.
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);
/// How often the interfaces and their addresses are listed again.
pub const INTERFACES_EVERY: Duration = Duration::from_secs(2);
/// How often a summary of dropped datagrams is logged, when there were any.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// At most this many answers are logged per [`SUMMARY_EVERY`]; the rest are counted.
pub const MAX_LOGGED_ANSWERS: u32 = 20;

/// Runs `git pair watch` until a signal stops it.
pub fn run(args: &WatchArgs) -> anyhow::Result<()> {
    // Before any thread starts, so that every thread has the signals blocked.
    let mut interrupts = Interrupts::install().context("cannot watch for Ctrl-C")?;
    let mut out = Reporter::new(args.json);
    let result = watch(args, &mut out, &mut interrupts);
    out.progress.finish();
    result
}

/// The pair secrets as last read, and how to tell whether they changed.
struct Records {
    ssh: SshDir,
    stamp: Option<SystemTime>,
    read_at: Option<Instant>,
    aliases: Vec<String>,
}

impl Records {
    /// The modification time of `~/.ssh/git-pair`: creating, renaming or deleting a secret
    /// (every write is a rename) changes it.
    fn stamp(&self) -> Option<SystemTime> {
        std::fs::metadata(self.ssh.pair_dir())
            .and_then(|m| m.modified())
            .ok()
    }

    /// Reads the secrets again if the directory changed or [`RELOAD_EVERY`] passed; returns
    /// the new aliases when the set changed.
    fn reload_if_needed(
        &mut self,
        now: Instant,
        responder: &mut Responder,
        out: &mut Reporter,
    ) -> Option<Vec<String>> {
        let stamp = self.stamp();
        let due = self
            .read_at
            .is_none_or(|at| now.duration_since(at) >= RELOAD_EVERY);
        if stamp == self.stamp && !due {
            return None;
        }
        self.stamp = stamp;
        self.read_at = Some(now);
        let mut records: Vec<(String, SecretRecord)> = Vec::new();
        match self.ssh.pair_secrets() {
            Ok(found) => {
                for (alias, record) in found {
                    match record {
                        Ok(r) => records.push((alias, r)),
                        Err(e) => out.line(&format!("warning: {:#}", anyhow::Error::new(e))),
                    }
                }
            }
            Err(e) => out.line(&format!(
                "warning: cannot read the pair secrets: {:#}",
                anyhow::Error::new(e)
            )),
        }
        let left_out = responder.set_pairings(records);
        if left_out > 0 {
            out.line(&format!(
                "warning: answering for the first {} pairings only; {left_out} more are not answered for",
                crate::protocol::locate::MAX_PAIRINGS
            ));
        }
        let aliases: Vec<String> = responder.aliases().into_iter().map(str::to_owned).collect();
        if aliases == self.aliases {
            return None;
        }
        self.aliases = aliases.clone();
        Some(aliases)
    }
}

/// This machine's addresses on `interfaces`, best first, for an answer: IPv4, then global
/// IPv6, then link-local IPv6; loopback addresses only from a loopback interface.
pub fn answer_addresses(interfaces: &[Interface]) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::new();
    let mut add = |ip: IpAddr| {
        if !out.contains(&ip) && out.len() < MAX_ADDRESSES {
            out.push(ip);
        }
    };
    for i in interfaces {
        for n in &i.v4 {
            if i.loopback || !n.addr.is_loopback() {
                add(IpAddr::V4(n.addr));
            }
        }
    }
    for link_local in [false, true] {
        for i in interfaces {
            for n in i.v6.iter().filter(|n| n.is_link_local() == link_local) {
                if i.loopback || !n.addr.is_loopback() {
                    add(IpAddr::V6(n.addr));
                }
            }
        }
    }
    out
}

/// The interfaces and addresses as they matter here: a change reopens the sockets.
fn fingerprint(interfaces: &[Interface]) -> Vec<(String, u32, Vec<String>)> {
    interfaces
        .iter()
        .map(|i| {
            let mut addrs: Vec<String> =
                i.v4.iter()
                    .map(|n| format!("{}/{}", n.addr, n.prefix))
                    .chain(i.v6.iter().map(|n| format!("{}/{}", n.addr, n.prefix)))
                    .collect();
            addrs.sort();
            (i.name.clone(), i.index, addrs)
        })
        .collect()
}

fn choose(named: &[String]) -> anyhow::Result<Vec<Interface>> {
    let all = iface::list()?;
    Ok(iface::select(&all, named).map_err(usage)?)
}

fn watch(args: &WatchArgs, out: &mut Reporter, interrupts: &mut Interrupts) -> anyhow::Result<()> {
    let ssh = local::ssh_dir().map_err(usage)?;
    let mut interfaces = choose(&args.interfaces)?;
    let mut sockets = Sockets::open(interfaces.clone(), args.port, Vec::new())?;
    let mut addresses = answer_addresses(&interfaces);
    let started = Instant::now();
    let mut responder = Responder::new(started);
    let mut records = Records {
        ssh,
        stamp: None,
        read_at: None,
        aliases: Vec::new(),
    };
    let _ = records.reload_if_needed(started, &mut responder, out);
    let names: Vec<String> = interfaces.iter().map(|i| i.name.clone()).collect();
    out.event(JsonEvent::Watching {
        interfaces: names.clone(),
        port: args.port,
        groups: vec![GROUP_V4.to_string(), GROUP_V6.to_string()],
        pairings: records.aliases.clone(),
    });
    out.line(&format!(
        "git pair watch: answering locate queries on {} (UDP port {}) for {}",
        names.join(", "),
        args.port,
        describe(&records.aliases)
    ));
    if records.aliases.is_empty() {
        out.line("  (pairings made from now on are picked up as they are made; those made before git pair stored pair secrets cannot be located: pair them again)");
    }
    let mut last_check = started;
    let mut last_interfaces = started;
    let mut last_summary = (started, responder.stats());
    let mut logged_answers = 0u32;
    let mut replies: Vec<(SocketAddr, String, Vec<u8>)> = Vec::new();
    loop {
        for w in sockets.take_warnings() {
            out.line(&format!("warning: {w}"));
        }
        if interrupts.check().is_some() {
            break;
        }
        driver::wait(&sockets, interrupts, CHECK_EVERY)?;
        let now = Instant::now();
        sockets.recv_all(|from, datagram| {
            let fresh = || match choose(&args.interfaces) {
                Ok(now) => answer_addresses(&now),
                Err(_) => addresses.clone(),
            };
            if let Outcome::Answer { alias, datagram } = responder.handle(now, datagram, fresh) {
                replies.push((from, alias, datagram));
            }
        });
        for (to, alias, datagram) in replies.drain(..) {
            sockets.reply(to, &datagram);
            out.event(JsonEvent::Answered {
                alias: alias.clone(),
                address: to.ip().to_string(),
            });
            if logged_answers < MAX_LOGGED_ANSWERS {
                logged_answers += 1;
                out.line(&format!(
                    "answered a locate query for {alias} from {}",
                    to.ip()
                ));
            }
        }
        if now.duration_since(last_check) >= CHECK_EVERY {
            last_check = now;
            if let Some(aliases) = records.reload_if_needed(now, &mut responder, out) {
                out.event(JsonEvent::Pairings {
                    pairings: aliases.clone(),
                });
                out.line(&format!("now answering for {}", describe(&aliases)));
            }
        }
        if now.duration_since(last_interfaces) >= INTERFACES_EVERY {
            last_interfaces = now;
            match choose(&args.interfaces) {
                Ok(fresh) if fingerprint(&fresh) != fingerprint(&interfaces) => {
                    match Sockets::open(fresh.clone(), args.port, Vec::new()) {
                        Ok(s) => {
                            sockets = s;
                            addresses = answer_addresses(&fresh);
                            interfaces = fresh;
                            out.line(&format!(
                                "the addresses changed; answering with {}",
                                addresses
                                    .iter()
                                    .map(IpAddr::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                        }
                        Err(e) => out.line(&format!(
                            "warning: the interfaces changed and cannot be used yet: {:#}",
                            anyhow::Error::new(e)
                        )),
                    }
                }
                Ok(_) => {}
                // An interface that went away (suspend, Wi-Fi lost): keep the old sockets and
                // try again later.
                Err(_) => {}
            }
        }
        if now.duration_since(last_summary.0) >= SUMMARY_EVERY {
            let stats = responder.stats();
            let dropped = stats.dropped() - last_summary.1.dropped();
            let answered = stats.answered - last_summary.1.answered;
            if dropped > 0 || answered > u64::from(logged_answers) {
                out.line(&format!(
                    "in the last {} s: {answered} answered, {dropped} datagrams dropped ({} not queries, {} not authenticated, {} replayed, {} over the rate limit)",
                    SUMMARY_EVERY.as_secs(),
                    stats.malformed - last_summary.1.malformed,
                    stats.unauthenticated - last_summary.1.unauthenticated,
                    stats.replayed - last_summary.1.replayed,
                    stats.rate_limited - last_summary.1.rate_limited,
                ));
            }
            last_summary = (now, stats);
            logged_answers = 0;
        }
    }
    let stats: Stats = responder.stats();
    out.event(JsonEvent::Stopped {
        received: stats.received,
        answered: stats.answered,
        dropped: stats.dropped(),
        rate_limited: stats.rate_limited,
        unauthenticated: stats.unauthenticated,
    });
    out.line(&format!(
        "git pair watch: stopped after {} s; {} datagrams received, {} answered, {} dropped ({} over the rate limit, {} not authenticated)",
        started.elapsed().as_secs(),
        stats.received,
        stats.answered,
        stats.dropped(),
        stats.rate_limited,
        stats.unauthenticated
    ));
    Ok(())
}

fn describe(aliases: &[String]) -> String {
    match aliases.len() {
        0 => "no pairing yet".to_owned(),
        1 => format!("1 pairing ({})", aliases[0]),
        n => format!("{n} pairings ({})", aliases.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::iface::{V4Net, V6Net};

    fn iface(name: &str, loopback: bool, v4: &[&str], v6: &[&str]) -> Interface {
        Interface {
            name: name.into(),
            index: 2,
            up: true,
            multicast: true,
            loopback,
            v4: v4
                .iter()
                .map(|a| V4Net {
                    addr: a.parse().unwrap(),
                    prefix: 24,
                })
                .collect(),
            v6: v6
                .iter()
                .map(|a| V6Net {
                    addr: a.parse().unwrap(),
                    prefix: 64,
                })
                .collect(),
        }
    }

    #[test]
    fn answers_carry_ipv4_then_global_then_link_local_addresses() {
        let got = answer_addresses(&[
            iface("eth0", false, &["10.0.0.9"], &["fe80::9", "2001:db8::9"]),
            iface("wlan0", false, &["192.168.1.9"], &[]),
        ]);
        let want: Vec<IpAddr> = ["10.0.0.9", "192.168.1.9", "2001:db8::9", "fe80::9"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        assert_eq!(got, want);
        // Loopback addresses only from a loopback interface, as named with --interface lo.
        assert_eq!(
            answer_addresses(&[iface("lo", true, &["127.0.0.1"], &["::1"])]).len(),
            2
        );
        assert!(answer_addresses(&[iface("x", false, &["127.0.0.1"], &["::1"])]).is_empty());
    }

    #[test]
    fn a_change_of_address_changes_the_fingerprint() {
        let a = [iface("eth0", false, &["10.0.0.2"], &["fe80::2"])];
        let b = [iface("eth0", false, &["10.0.0.9"], &["fe80::2"])];
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a), fingerprint(&a.clone()));
    }
}
