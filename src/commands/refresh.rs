//! `git pair refresh [NAME]`: finds paired peers again after an address changed, and points
//! their ssh aliases at where they are now, without ever changing whom they trust.
//!
//! For each pairing, in the order the design of pairing prefers:
//! 1. **A name that still works**: the peer's host name under `.local` (answered by mDNS when
//!    nss-mdns or avahi is installed), then what the alias says now (`HostName`).
//! 2. **Locate queries** ([`crate::protocol::locate`]), for the pairings still missing, all at
//!    once: authenticated with each pairing's pair secret, by multicast, to `--peer` hosts, then
//!    to every address of the local IPv4 subnets. Only answers authenticated with the same
//!    secret, binding a nonce just sent, count.
//!
//! Whatever is found must then pass [`hostkey::check`]: ssh itself, with the pinned known_hosts,
//! verifies that the sshd there holds the pairing's host key. Only then is the alias changed
//! ([`ssh_files::refresh`]: `HostName`, and `Port` if the sshd moved, under the lock,
//! atomically) and the refresh recorded in its block. An authenticated peer whose sshd shows
//! another host key is refused, and the alias stays as it was.
//!
//! `refresh_in` is the whole of it for a repository, for other commands (`git pair sync`) to call.

use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rand_core::OsRng;

use crate::cli::RefreshArgs;
use crate::commands::pair::{host_name_for, resolve_peers, usage, PairError, Reporter};
use crate::events::{Event as JsonEvent, Reason};
use crate::exit::Exit;
use crate::interrupt::Interrupts;
use crate::local;
use crate::protocol::locate::seeker::{Found as Located, Seeker};
use crate::protocol::locate::{Answer, LocateKeys};
use crate::repo::{self, PairedRemote};
use crate::sanitize;
use crate::ssh_files::{self, FoundBlock, SecretRecord, SshDir};
use crate::transport::hostkey::{self, HostKey, Target};
use crate::transport::iface::{self, Interface};
use crate::transport::{driver, probe, scan, Sockets, GROUP_V4, GROUP_V6};

/// How long a name may take to resolve (mDNS usually answers within a second).
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long an sshd has to answer a TCP connection before ssh is asked to check it.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);
/// At most this many of a peer's addresses are tried.
pub const MAX_CANDIDATES: usize = 8;

/// How a peer was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Its host name under `.local` resolved.
    Mdns,
    /// The alias's `HostName` still reaches it.
    Address,
    /// Its `git pair watch` answered a locate query.
    Locate,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Mdns => "mdns",
            Method::Address => "address",
            Method::Locate => "locate",
        }
    }
}

/// What `refresh` needs besides the repository.
#[derive(Debug, Clone)]
pub struct Options {
    pub interfaces: Vec<String>,
    pub peers: Vec<String>,
    pub port: u16,
    pub timeout: Duration,
    pub scan: bool,
}

impl From<&RefreshArgs> for Options {
    fn from(a: &RefreshArgs) -> Options {
        Options {
            interfaces: a.interfaces.clone(),
            peers: a.peers.clone(),
            port: a.port,
            timeout: Duration::from_secs(a.timeout),
            scan: !a.no_scan,
        }
    }
}

/// Why a pairing was not refreshed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nothing found that holds the pinned host key.
    NotFound,
    /// The peer was found (authenticated), but its sshd shows another host key.
    HostKeyChanged { address: String },
    /// No pair secret, and not found by name or address.
    NoSecret,
    /// Anything else (a damaged secret, the alias gone, a file that cannot be written).
    Broken(String),
}

/// Where a pairing's peer was reached, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reached {
    /// What the alias's `HostName` is to be.
    pub host_name: String,
    pub port: u16,
    pub method: Method,
}

/// A pairing refreshed: where its alias points now, and whether that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refreshed {
    pub reached: Reached,
    pub changed: bool,
}

/// The outcome of one pairing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub remote: String,
    pub alias: String,
    /// Where the alias points now; or why it was not refreshed.
    pub result: Result<Refreshed, Failure>,
}

/// Why `git pair refresh` failed, with its exit status.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefreshError {
    #[error("{0}")]
    HostKeyChanged(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    NoSecret(String),
    #[error("{0}")]
    Failed(String),
    #[error("interrupted; no alias was changed")]
    Interrupted,
}

impl RefreshError {
    pub fn exit(&self) -> Exit {
        match self {
            RefreshError::HostKeyChanged(_) => Exit::Verification,
            RefreshError::NotFound(_) => Exit::NoPeer,
            RefreshError::NoSecret(_) => Exit::Usage,
            RefreshError::Failed(_) => Exit::Error,
            RefreshError::Interrupted => Exit::Interrupted,
        }
    }

    pub fn reason(&self) -> Reason {
        match self {
            RefreshError::HostKeyChanged(_) => Reason::HostKeyChanged,
            RefreshError::NotFound(_) => Reason::NoPeer,
            RefreshError::NoSecret(_) => Reason::NoPairSecret,
            RefreshError::Failed(_) => Reason::Error,
            RefreshError::Interrupted => Reason::Interrupted,
        }
    }
}

/// The [`RefreshError`] in an error's chain.
pub fn find(err: &anyhow::Error) -> Option<&RefreshError> {
    err.chain().find_map(|c| c.downcast_ref::<RefreshError>())
}

/// Runs `git pair refresh`.
pub fn run(args: &RefreshArgs) -> anyhow::Result<()> {
    // Before any thread starts, so that every thread has the signals blocked.
    let mut interrupts = Interrupts::install().context("cannot watch for Ctrl-C")?;
    let mut out = Reporter::new(args.json);
    let result = std::env::current_dir()
        .context("cannot read the current directory")
        .and_then(|cwd| {
            refresh_in(
                &cwd,
                args.name.as_deref(),
                &Options::from(args),
                &mut out,
                &mut interrupts,
            )
        })
        .and_then(|outcomes| conclude(&outcomes));
    out.progress.finish();
    if let Err(err) = &result {
        let reason = find(err)
            .map(RefreshError::reason)
            .or_else(|| crate::commands::pair::find(err).map(PairError::reason))
            .unwrap_or(Reason::Error);
        out.event(JsonEvent::Failed {
            reason,
            message: format!("{err:#}"),
        });
    }
    result
}

/// The error for the pairings that were not refreshed, the gravest first: a changed host key,
/// then a peer not found, then a pairing without a pair secret.
pub fn conclude(outcomes: &[Outcome]) -> anyhow::Result<()> {
    let failed: Vec<(&Outcome, &Failure)> = outcomes
        .iter()
        .filter_map(|o| o.result.as_ref().err().map(|f| (o, f)))
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    let names = |pick: fn(&Failure) -> bool| -> Vec<String> {
        failed
            .iter()
            .filter(|(_, f)| pick(f))
            .map(|(o, _)| sanitize::for_terminal(&o.remote).into_owned())
            .collect()
    };
    let changed = names(|f| matches!(f, Failure::HostKeyChanged { .. }));
    let missing = names(|f| matches!(f, Failure::NotFound));
    let secretless = names(|f| matches!(f, Failure::NoSecret));
    let broken = names(|f| matches!(f, Failure::Broken(_)));
    let all: Vec<String> = failed
        .iter()
        .map(|(o, _)| sanitize::for_terminal(&o.remote).into_owned())
        .collect();
    let summary = format!("not refreshed: {}", all.join(", "));
    Err(if !changed.is_empty() {
        RefreshError::HostKeyChanged(format!(
            "{summary} (a host key differs from the pinned one for {}: refused)",
            changed.join(", ")
        ))
    } else if !missing.is_empty() {
        RefreshError::NotFound(format!("{summary} (peer not found)"))
    } else if !secretless.is_empty() {
        RefreshError::NoSecret(format!("{summary} (no pair secret: pair again)"))
    } else {
        RefreshError::Failed(format!("{summary} ({})", broken.join(", ")))
    }
    .into())
}

/// One pairing being refreshed.
struct Job {
    remote: String,
    alias: String,
    user: String,
    /// What the alias says now (`%%` undone).
    host_name: Option<String>,
    port: u16,
    /// The peer's host name, from the remote's record.
    peer_host: Option<String>,
    secret: Option<SecretRecord>,
    /// Why addresses tried were not used, for the final message.
    notes: Vec<String>,
    result: Option<Result<Reached, Failure>>,
}

/// Refreshes the pairing `name` (a remote or an ssh alias; every pairing of the repository when
/// `None`) of the repository containing `cwd`. Reports to `out` as it goes and returns what
/// happened to each; errors only for what stops everything (no repository, an unknown name, the
/// network unusable, an interruption).
pub(crate) fn refresh_in(
    cwd: &Path,
    name: Option<&str>,
    opts: &Options,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<Vec<Outcome>> {
    let (repository, info) = repo::open(cwd).map_err(usage)?;
    let remotes = repo::paired_remotes(&repository)?;
    let ssh = local::ssh_dir().map_err(usage)?;
    let blocks = ssh.pair_blocks()?;
    let chosen: Vec<&PairedRemote> = remotes
        .iter()
        .filter(|r| name.is_none_or(|n| r.name == n || r.alias.eq_ignore_ascii_case(n)))
        .collect();
    if chosen.is_empty() {
        return match name {
            Some(n) => Err(PairError::Usage(format!(
                "no pairing named {} in {} (`git pair list` shows them)",
                sanitize::for_terminal(n),
                info.path.display()
            ))
            .into()),
            None => {
                out.line("No pairings in this repository: nothing to refresh.");
                Ok(Vec::new())
            }
        };
    }
    let started = Instant::now();
    let mut jobs: Vec<Job> = chosen.iter().map(|r| job(&ssh, r, &blocks)).collect();

    // 1. Names that still work, every pairing at once.
    out.status("trying the names and addresses the pairings already have…");
    let known_hosts = ssh.pair_known_hosts();
    let by_name: Vec<(Option<Reached>, Vec<Note>)> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|j| {
                let known = &known_hosts;
                s.spawn(move || by_name(j, known))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((None, Vec::new())))
            .collect()
    });
    for (job, (found, notes)) in jobs.iter_mut().zip(by_name) {
        for note in notes {
            note.report(job, out);
        }
        if let Some(found) = found {
            job.result = Some(Ok(found));
        }
    }

    // 2. Locate queries for the rest.
    let searching: Vec<usize> = (0..jobs.len())
        .filter(|&i| jobs[i].result.is_none() && jobs[i].secret.is_some())
        .collect();
    if !searching.is_empty() {
        locate(&mut jobs, &searching, opts, out, interrupts)?;
    }

    // 3. Write what was found; say what was not.
    let mut outcomes = Vec::new();
    let now = repo::rfc3339(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    for job in jobs {
        let result = match job.result.clone() {
            Some(Ok(reached)) => {
                let r = ssh_files::Refresh {
                    host_name: &reached.host_name,
                    port: reached.port,
                    time: &now,
                    method: reached.method.as_str(),
                };
                match ssh_files::refresh(&ssh, &job.alias, &r) {
                    Ok(_) => {
                        let changed = job.host_name.as_deref() != Some(reached.host_name.as_str())
                            || job.port != reached.port;
                        Ok(Refreshed { reached, changed })
                    }
                    Err(e) => Err(Failure::Broken(format!("{:#}", anyhow::Error::new(e)))),
                }
            }
            Some(Err(f)) => Err(f),
            None if job.secret.is_none() => Err(Failure::NoSecret),
            None => Err(Failure::NotFound),
        };
        report(&job, &result, opts, out);
        outcomes.push(Outcome {
            remote: job.remote,
            alias: job.alias,
            result,
        });
    }
    let refreshed = outcomes.iter().filter(|o| o.result.is_ok()).count();
    out.line(&format!(
        "refreshed {refreshed} of {} pairings in {:.1} s",
        outcomes.len(),
        started.elapsed().as_secs_f64()
    ));
    Ok(outcomes)
}

fn job(ssh: &SshDir, r: &PairedRemote, blocks: &[FoundBlock]) -> Job {
    let block = blocks
        .iter()
        .find(|b| b.alias.eq_ignore_ascii_case(&r.alias));
    let mut job = Job {
        remote: r.name.clone(),
        alias: r.alias.clone(),
        user: block
            .and_then(|b| b.user.clone())
            .unwrap_or_else(|| "git-pair".to_owned()),
        host_name: block.and_then(|b| b.host_name.as_ref().map(|h| h.replace("%%", "%"))),
        port: block
            .and_then(|b| b.port.as_deref())
            .and_then(|p| p.parse().ok())
            .unwrap_or(22),
        peer_host: r.peer.as_deref().and_then(peer_host).map(str::to_owned),
        secret: None,
        notes: Vec::new(),
        result: None,
    };
    if block.is_none() || ssh_files::validate_alias(&r.alias).is_err() {
        job.result = Some(Err(Failure::Broken(format!(
            "its ssh alias {} is gone from {}: run `git pair remove {}` and pair again",
            sanitize::for_terminal(&r.alias),
            ssh.pair_config().display(),
            sanitize::for_terminal(&r.name)
        ))));
        return job;
    }
    match ssh.read_pair_secret(&r.alias) {
        Ok(secret) => job.secret = secret,
        Err(e) => job.result = Some(Err(Failure::Broken(format!("{:#}", anyhow::Error::new(e))))),
    }
    job
}

/// The host of a `user@host:path` peer record.
pub fn peer_host(peer: &str) -> Option<&str> {
    let (_, rest) = peer.split_once('@')?;
    let (host, _) = rest.split_once(':')?;
    (!host.is_empty()).then_some(host)
}

/// The mDNS name of a host: its first label under `.local`, when that label is a valid DNS
/// label (so that nothing odd from the peer reaches the resolver or ssh).
pub fn mdns_name(host: &str) -> Option<String> {
    let label = host.split('.').next()?;
    let valid = !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    valid.then(|| format!("{}.local", label.to_ascii_lowercase()))
}

/// Something learned while trying an address, reported as it is learned.
enum Note {
    Differs(String),
    Unreachable(String),
}

impl Note {
    fn report(self, job: &mut Job, out: &mut Reporter) {
        match self {
            Note::Differs(address) => {
                out.event(JsonEvent::HostKeyDiffers {
                    remote: job.remote.clone(),
                    alias: job.alias.clone(),
                    address: address.clone(),
                });
                out.line(&format!(
                    "{}: {address} answers with a host key other than the pinned one: not using it",
                    sanitize::for_terminal(&job.remote)
                ));
                job.notes.push(format!("{address} shows another host key"));
            }
            Note::Unreachable(why) => job.notes.push(why),
        }
    }
}

/// Tries the `.local` name, then the alias's `HostName`.
fn by_name(job: &Job, known_hosts: &Path) -> (Option<Reached>, Vec<Note>) {
    let mut notes = Vec::new();
    if job.result.is_some() {
        return (None, notes);
    }
    let mdns = job.peer_host.as_deref().and_then(mdns_name);
    let mut tries: Vec<(String, Method)> = Vec::new();
    if let Some(name) = &mdns {
        tries.push((name.clone(), Method::Mdns));
    }
    if let Some(current) = &job.host_name {
        if mdns.as_deref() != Some(current.as_str()) {
            tries.push((current.clone(), Method::Address));
        }
    }
    for (host, method) in tries {
        match check_host(job, &host, job.port, known_hosts) {
            HostKey::Matches { .. } => {
                let reached = Reached {
                    host_name: host,
                    port: job.port,
                    method,
                };
                return (Some(reached), notes);
            }
            HostKey::Differs => notes.push(Note::Differs(host)),
            HostKey::Unreachable(why) => notes.push(Note::Unreachable(format!("{host}: {why}"))),
        }
    }
    (None, notes)
}

/// Resolves `host` (an address, `fe80::…%iface`, or a name, within [`RESOLVE_TIMEOUT`]), checks
/// that an sshd accepts a connection there, then asks ssh whether it holds the pinned key.
fn check_host(job: &Job, host: &str, port: u16, known_hosts: &Path) -> HostKey {
    let addrs = match resolve(host, port) {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return HostKey::Unreachable("it has no address".to_owned()),
        Err(why) => return HostKey::Unreachable(why),
    };
    if probe::first_reachable(&addrs, PROBE_TIMEOUT).is_err() {
        return HostKey::Unreachable(format!(
            "no sshd answers on port {port} within {:.1} s",
            PROBE_TIMEOUT.as_secs_f64()
        ));
    }
    hostkey::check(
        &Target {
            host,
            port,
            user: &job.user,
            alias: &job.alias,
        },
        known_hosts,
    )
}

fn resolve(host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if let Some((ip, scope)) = host.split_once('%') {
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| "not an address".to_owned())?;
        let index = nix::net::if_::if_nametoindex(scope)
            .map_err(|_| format!("there is no interface {scope} here"))?;
        return Ok(vec![SocketAddr::V6(SocketAddrV6::new(ip, port, 0, index))]);
    }
    // getaddrinfo cannot be given a timeout: it runs in a thread left to finish on its own.
    let (tx, rx) = mpsc::channel();
    let name = host.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send((name.as_str(), port).to_socket_addrs().map(Vec::from_iter));
    });
    match rx.recv_timeout(RESOLVE_TIMEOUT) {
        Ok(Ok(addrs)) => Ok(addrs),
        Ok(Err(_)) => Err("the name does not resolve".to_owned()),
        Err(_) => Err(format!(
            "the name did not resolve within {} s",
            RESOLVE_TIMEOUT.as_secs()
        )),
    }
}

/// Where to look for a located peer's sshd, best first: the addresses its (authenticated)
/// answer lists on a chosen interface's subnet, IPv4 first, then global IPv6, then link-local
/// IPv6 ones scoped to the interface the answer came in on; then the others. Within each kind
/// the address the answer came from goes first; an address the answer does not list is never
/// used (anyone can resend an answer). Unusable addresses (unspecified, multicast, loopback unless a chosen
/// interface is loopback) are left out.
pub fn candidates(from: SocketAddr, answer: &Answer, interfaces: &[Interface]) -> Vec<SocketAddr> {
    let port = answer.ssh_port;
    let loopback_ok = interfaces.iter().any(|i| i.loopback);
    let scope = match from {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
        _ => interfaces
            .iter()
            .find(|i| i.on_link(from.ip()))
            .map(|i| i.index),
    };
    let link_local =
        |ip: &IpAddr| matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
    let usable = |ip: &IpAddr| {
        !ip.is_unspecified() && !ip.is_multicast() && (loopback_ok || !ip.is_loopback())
    };
    let on_link = |ip: &IpAddr| interfaces.iter().any(|i| i.on_link(*ip));
    // IPv4 first, as an alias is most often written; within each kind, the source first.
    let rank = |ip: &IpAddr| -> (u8, bool) {
        let kind = match ip {
            IpAddr::V4(_) if on_link(ip) => 0,
            IpAddr::V6(_) if !link_local(ip) && on_link(ip) => 1,
            IpAddr::V6(_) if link_local(ip) => 2,
            IpAddr::V4(_) => 3,
            IpAddr::V6(_) => 4,
        };
        (kind, from.ip() != *ip)
    };
    let mut listed: Vec<IpAddr> = answer.addresses.iter().copied().filter(usable).collect();
    listed.sort_by_key(rank);
    let mut out: Vec<SocketAddr> = Vec::new();
    for ip in listed {
        let addr = match ip {
            IpAddr::V6(v6) if link_local(&ip) => match scope {
                Some(s) => SocketAddr::V6(SocketAddrV6::new(v6, port, 0, s)),
                None => continue,
            },
            _ => SocketAddr::new(ip, port),
        };
        if !out.contains(&addr) && out.len() < MAX_CANDIDATES {
            out.push(addr);
        }
    }
    out
}

/// Sends locate queries for the pairings `searching` until each is found or the timeout.
fn locate(
    jobs: &mut [Job],
    searching: &[usize],
    opts: &Options,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<()> {
    let all = iface::list()?;
    let interfaces = iface::select(&all, &opts.interfaces).map_err(usage)?;
    let peers = resolve_peers(&opts.peers, opts.port, &all)?;
    let mut sockets = Sockets::open_sender(
        interfaces.clone(),
        opts.port,
        peers.iter().map(SocketAddr::ip).collect(),
    )?;
    let scan = if opts.scan {
        scan::targets(&interfaces, opts.port)
    } else {
        Vec::new()
    };
    let names: Vec<String> = interfaces.iter().map(|i| i.name.clone()).collect();
    out.event(JsonEvent::Listening {
        interfaces: names.clone(),
        port: opts.port,
        groups: vec![GROUP_V4.to_string(), GROUP_V6.to_string()],
    });
    let targets: Vec<(usize, LocateKeys)> = searching
        .iter()
        .filter_map(|&i| {
            let s = jobs[i].secret.as_ref()?;
            Some((i, LocateKeys::derive(&s.secret, s.role)))
        })
        .collect();
    let started = Instant::now();
    let deadline = started + opts.timeout;
    let mut seeker = Seeker::new(targets, peers, scan, started, OsRng);
    out.status(&format!(
        "sending locate queries on {} (UDP port {})…",
        names.join(", "),
        opts.port
    ));
    let mut datagrams = 0u64;
    let mut found: Vec<Located> = Vec::new();
    loop {
        while let Some(t) = seeker.poll_transmit() {
            datagrams += sockets.send_counted(&t) as u64;
        }
        out.idle(&mut sockets);
        if seeker.missing() == 0 {
            break;
        }
        if interrupts.check().is_some() {
            return Err(RefreshError::Interrupted.into());
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let wake = seeker.poll_timeout().map_or(deadline, |t| t.min(deadline));
        driver::wait(
            &sockets,
            interrupts,
            wake.saturating_duration_since(now).min(driver::IDLE_TICK),
        )?;
        sockets.recv_all(|from, datagram| found.extend(seeker.handle_datagram(from, datagram)));
        for f in found.drain(..) {
            let job = &mut jobs[f.id];
            if let Some(result) = located(job, &f, &interfaces, out) {
                job.result = Some(result);
            } else {
                // Found, but no sshd answers yet: keep asking until the timeout.
                seeker.retry(f.id);
            }
        }
        seeker.handle_timeout(Instant::now());
    }
    out.line(&format!(
        "sent {datagrams} locate datagrams in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// Checks the addresses of an authenticated answer with ssh. `None` when none answered at all.
fn located(
    job: &mut Job,
    f: &Located,
    interfaces: &[Interface],
    out: &mut Reporter,
) -> Option<Result<Reached, Failure>> {
    out.event(JsonEvent::Located {
        remote: job.remote.clone(),
        alias: job.alias.clone(),
        address: f.from.ip().to_string(),
        addresses: f.answer.addresses.iter().map(IpAddr::to_string).collect(),
        ssh_port: f.answer.ssh_port,
    });
    out.line(&format!(
        "{}: its watch answered from {}; checking its sshd…",
        sanitize::for_terminal(&job.remote),
        f.from.ip()
    ));
    let known_hosts = local::ssh_dir().ok()?.pair_known_hosts();
    let mut differs = None;
    for addr in candidates(f.from, &f.answer, interfaces) {
        let host = host_name_for(addr, interfaces);
        match check_host(job, &host, addr.port(), &known_hosts) {
            HostKey::Matches { .. } => {
                return Some(Ok(Reached {
                    host_name: host,
                    port: addr.port(),
                    method: Method::Locate,
                }))
            }
            HostKey::Differs => {
                Note::Differs(host.clone()).report(job, out);
                differs.get_or_insert(host);
            }
            HostKey::Unreachable(why) => job.notes.push(format!("{host}: {why}")),
        }
    }
    differs.map(|address| Err(Failure::HostKeyChanged { address }))
}

fn report(job: &Job, result: &Result<Refreshed, Failure>, opts: &Options, out: &mut Reporter) {
    let remote = sanitize::for_terminal(&job.remote).into_owned();
    let before = job.host_name.as_deref().unwrap_or("-");
    match result {
        Ok(Refreshed {
            reached:
                Reached {
                    host_name,
                    port,
                    method,
                },
            changed,
        }) => {
            out.event(JsonEvent::Refreshed {
                remote: job.remote.clone(),
                alias: job.alias.clone(),
                host_name: host_name.clone(),
                port: *port,
                method: method.as_str().to_owned(),
                changed: *changed,
            });
            let how = match method {
                Method::Mdns => format!("its name {host_name} resolves (mDNS)"),
                Method::Address => format!("it is still at {host_name}"),
                Method::Locate => format!("its git pair watch answered; it is at {host_name}"),
            };
            let what = if *changed {
                format!("ssh alias {} now points there (was {before})", job.alias)
            } else {
                "nothing to change".to_owned()
            };
            out.line(&format!(
                "{remote}: {how} and holds the pinned host key: {what}"
            ));
            if job.secret.is_none() {
                out.line(&format!(
                    "{remote}: note: this pairing was made before git pair stored pair secrets, so \
                     once its peer moves only a name can find it; pair again to make it locatable"
                ));
            }
        }
        Err(failure) => {
            let tried = if job.notes.is_empty() {
                String::new()
            } else {
                format!(" (tried: {})", job.notes.join("; "))
            };
            let (reason, message) = match failure {
                Failure::NotFound => (
                    Reason::NoPeer,
                    format!(
                        "peer not found{tried}; no answer to locate queries within {} s. Is `git pair watch` running on the peer (see WATCH in `git help pair`)? The alias still says {before}",
                        opts.timeout.as_secs()
                    ),
                ),
                Failure::HostKeyChanged { address } => (
                    Reason::HostKeyChanged,
                    format!(
                        "the peer answered with its pair secret, but the sshd at {address} presents a host key other than the one pinned when you paired: refused, the alias still says {before}. If the peer's sshd was reinstalled, pair again; if not, someone may be impersonating it"
                    ),
                ),
                Failure::NoSecret => (
                    Reason::NoPairSecret,
                    format!(
                        "this pairing was made before git pair stored pair secrets, so it cannot be located, and it was not found by name or at its address{tried}. Pair again (`git pair` on both machines) to make it locatable"
                    ),
                ),
                Failure::Broken(why) => (Reason::Error, why.clone()),
            };
            out.event(JsonEvent::NotRefreshed {
                remote: job.remote.clone(),
                alias: job.alias.clone(),
                reason,
                message: message.clone(),
            });
            out.line(&format!("{remote}: not refreshed: {message}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::iface::{V4Net, V6Net};

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            up: true,
            multicast: true,
            loopback: false,
            v4: vec![V4Net {
                addr: "10.0.0.1".parse().unwrap(),
                prefix: 24,
            }],
            v6: vec![V6Net {
                addr: "fe80::1".parse().unwrap(),
                prefix: 64,
            }],
        }
    }

    fn answer(addrs: &[&str]) -> Answer {
        Answer {
            nonce: [0; 16],
            ssh_port: 2222,
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn candidates_are_on_link_ipv4_first_the_source_first_among_them() {
        let a = answer(&[
            "192.168.7.9",
            "fe80::9",
            "10.0.0.9",
            "10.0.0.8",
            "127.0.0.1",
            "0.0.0.0",
            "224.0.0.88",
        ]);
        let got = candidates("10.0.0.8:40000".parse().unwrap(), &a, &[eth0()]);
        let want: Vec<SocketAddr> = vec![
            "10.0.0.8:2222".parse().unwrap(),
            "10.0.0.9:2222".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::9".parse().unwrap(), 2222, 0, 2)),
            "192.168.7.9:2222".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn a_source_the_answer_does_not_list_is_not_used() {
        // A relay (anyone can resend an answer from their own address) gains nothing.
        let a = answer(&["10.0.0.9"]);
        let got = candidates("10.0.0.66:40000".parse().unwrap(), &a, &[eth0()]);
        assert_eq!(got, vec!["10.0.0.9:2222".parse::<SocketAddr>().unwrap()]);
    }

    #[test]
    fn link_local_addresses_get_the_scope_the_answer_came_in_on() {
        let a = answer(&["fe80::9"]);
        let from = SocketAddr::V6(SocketAddrV6::new("fe80::9".parse().unwrap(), 1, 0, 7));
        assert_eq!(
            candidates(from, &a, &[eth0()]),
            vec![SocketAddr::V6(SocketAddrV6::new(
                "fe80::9".parse().unwrap(),
                2222,
                0,
                7
            ))]
        );
        // Heard over IPv4 from off every chosen subnet: no scope to give, not tried.
        assert!(candidates("192.168.1.1:1".parse().unwrap(), &a, &[eth0()]).is_empty());
    }

    #[test]
    fn loopback_only_when_a_chosen_interface_is_loopback() {
        let lo = Interface {
            name: "lo".into(),
            index: 1,
            loopback: true,
            v4: vec![V4Net {
                addr: "127.0.0.1".parse().unwrap(),
                prefix: 8,
            }],
            v6: vec![],
            ..eth0()
        };
        let a = answer(&["127.0.0.1"]);
        assert_eq!(
            candidates("127.0.0.1:1".parse().unwrap(), &a, &[lo]),
            vec!["127.0.0.1:2222".parse::<SocketAddr>().unwrap()]
        );
    }

    #[test]
    fn peer_hosts_and_mdns_names() {
        assert_eq!(peer_host("bob@beta:/home/bob/r"), Some("beta"));
        assert_eq!(peer_host("bob@desk.lan:/r:x"), Some("desk.lan"));
        assert_eq!(peer_host("nobody"), None);
        assert_eq!(peer_host("bob@:/r"), None);
        assert_eq!(mdns_name("beta").as_deref(), Some("beta.local"));
        assert_eq!(mdns_name("Desk.example.org").as_deref(), Some("desk.local"));
        assert_eq!(mdns_name("beta.local").as_deref(), Some("beta.local"));
        for bad in [
            "",
            "-x",
            "x-",
            "Bob's MacBook",
            "a b",
            "x\u{1b}",
            &"a".repeat(64),
        ] {
            assert_eq!(mdns_name(bad), None, "{bad:?}");
        }
    }

    fn outcome(remote: &str, result: Result<Refreshed, Failure>) -> Outcome {
        Outcome {
            remote: remote.into(),
            alias: format!("git-pair-{remote}"),
            result,
        }
    }

    #[test]
    fn the_gravest_failure_decides_the_exit_status() {
        let ok = outcome(
            "a",
            Ok(Refreshed {
                reached: Reached {
                    host_name: "10.0.0.9".into(),
                    port: 22,
                    method: Method::Locate,
                },
                changed: true,
            }),
        );
        assert!(conclude(std::slice::from_ref(&ok)).is_ok());
        let missing = outcome("b", Err(Failure::NotFound));
        let secretless = outcome("c", Err(Failure::NoSecret));
        let changed = outcome(
            "d",
            Err(Failure::HostKeyChanged {
                address: "10.0.0.9".into(),
            }),
        );
        let status = |o: &[Outcome]| find(&conclude(o).unwrap_err()).unwrap().exit();
        assert_eq!(status(&[ok.clone(), secretless.clone()]), Exit::Usage);
        assert_eq!(status(&[secretless.clone(), missing.clone()]), Exit::NoPeer);
        assert_eq!(status(&[missing, changed, secretless]), Exit::Verification);
        let err = conclude(&[outcome("e", Err(Failure::Broken("x".into())))]).unwrap_err();
        assert_eq!(find(&err).unwrap().exit(), Exit::Error);
        assert!(err.to_string().contains("not refreshed: e"), "{err}");
    }
}
