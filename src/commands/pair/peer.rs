//! What is checked about a peer that proved it holds the code, before this side confirms: its
//! payload parses, its login key opens nothing else here, and its sshd answers. A pairing that
//! cannot work is refused on both sides before anything is written.

use std::fs;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use rand_core::OsRng;

use crate::commands::serve;
use crate::events::{Event as JsonEvent, PeerView};
use crate::protocol::codec::SessionId;
use crate::protocol::machine::MAX_FAILURES;
use crate::protocol::payload::PeerInfo;
use crate::protocol::schedule::{PairSecret, Role};
use crate::protocol::{Event, Machine};
use crate::repo;
use crate::sanitize;
use crate::ssh_files;
use crate::transport::driver::Control;
use crate::transport::iface::Interface;
use crate::transport::probe;

use super::error::PairError;
use super::{Prepared, Reporter};

/// How long the peer's sshd has to accept a TCP connection.
pub(super) const SSHD_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// A peer verified by the protocol, with its sshd checked.
pub(super) struct VerifiedPeer {
    pub(super) info: PeerInfo,
    pub(super) view: PeerView,
    pub(super) address: SocketAddr,
    pub(super) peer: SessionId,
    /// The long-term secret of the pairing, stored with it.
    pub(super) secret: PairSecret,
    /// Which end of the session this side was.
    pub(super) role: Role,
}

#[derive(Default)]
pub(super) struct Session {
    /// Peers whose payload was accepted (their sshd answered). Usually one;
    /// two only if two machines on the LAN hold the same code.
    pub(super) accepted: Vec<(SessionId, PeerInfo, SocketAddr)>,
    pub(super) verified: Option<VerifiedPeer>,
    pub(super) error: Option<anyhow::Error>,
}

impl Session {
    pub(super) fn on_event(
        &mut self,
        p: &Prepared,
        m: &mut Machine<OsRng>,
        event: Event,
        out: &mut Reporter,
    ) -> Control {
        match event {
            Event::PeerSeen { from, .. } => {
                out.event(JsonEvent::Peer {
                    address: from.ip().to_string(),
                });
                out.status(&format!(
                    "found a machine at {}; verifying the code…",
                    from.ip()
                ));
                Control::Continue
            }
            Event::PeerPayload {
                peer,
                payload,
                sources,
            } => self.check_peer(p, m, peer, &payload, &sources, out),
            Event::VerifyFailed { from, failures, .. } => {
                out.event(JsonEvent::VerifyFailed {
                    address: from.ip().to_string(),
                    failures,
                    limit: MAX_FAILURES,
                });
                out.line(&format!(
                    "warning: the machine at {} has a different code (or is guessing); {} of {} tries used. \
                     Still waiting; if the code was mistyped, start again on that machine",
                    from.ip(),
                    failures,
                    MAX_FAILURES
                ));
                Control::Continue
            }
            Event::PeerRejected { detail, .. } => {
                let mut detail = detail
                    .as_deref()
                    .map(sanitize::for_terminal)
                    .unwrap_or_default()
                    .into_owned();
                if detail.contains("sshd") {
                    detail.push_str(" (is sshd running here, on the port given with --ssh-port?)");
                }
                self.error = Some(PairError::PeerRejected(detail).into());
                Control::Stop
            }
            Event::TooManyFailures { failures } => {
                self.error = Some(PairError::Guessing(failures).into());
                Control::Stop
            }
            Event::Verified(v) => {
                let Some(i) = self.accepted.iter().position(|(id, ..)| *id == v.peer) else {
                    self.error = Some(anyhow::anyhow!("verified a peer that was never checked"));
                    return Control::Stop;
                };
                let (peer, info, address) = self.accepted.swap_remove(i);
                let view = view_of(&info);
                out.event(JsonEvent::Verified {
                    peer: view.clone(),
                    address: address.to_string(),
                });
                out.event(JsonEvent::Sas {
                    sas: v.sas.to_string(),
                });
                out.line(&format!(
                    "Verified {}@{}:{} at {} (check code on both machines: {})",
                    view.user,
                    view.host,
                    view.path,
                    address.ip(),
                    v.sas
                ));
                self.verified = Some(VerifiedPeer {
                    info,
                    view,
                    address,
                    role: Role::of(&m.session_id(), &peer),
                    peer,
                    secret: v.pair_secret.clone(),
                });
                Control::Stop
            }
            Event::Finished => Control::Stop,
        }
    }

    /// The peer holds the code; before confirming, make sure its payload is
    /// usable and its sshd answers, so that a pairing that cannot work is
    /// refused on both sides before anything is written.
    fn check_peer(
        &mut self,
        p: &Prepared,
        m: &mut Machine<OsRng>,
        peer: SessionId,
        payload: &[u8],
        sources: &[SocketAddr],
        out: &mut Reporter,
    ) -> Control {
        let info = match PeerInfo::parse(payload) {
            Ok(info) => info,
            Err(e) => {
                m.reject(peer, "your payload is invalid");
                self.error = Some(
                    PairError::BadPeer(sanitize::for_terminal(&e.to_string()).into_owned()).into(),
                );
                return Control::Stop;
            }
        };
        if is_this_repository(p, &info) {
            m.reject(peer, SAME_REPOSITORY);
            self.error = Some(
                PairError::SameRepository {
                    path: p.info.path.display().to_string(),
                }
                .into(),
            );
            return Control::Stop;
        }
        if let Some(conflict) = key_conflict(p, &info) {
            m.reject(peer, &conflict.for_peer);
            self.error = Some(PairError::KeyInUse(conflict.here).into());
            return Control::Stop;
        }
        let candidates = sshd_candidates(sources, &info, &p.interfaces);
        out.status(&format!(
            "checking the peer's sshd (TCP port {})…",
            info.ssh_port
        ));
        match probe::first_reachable(&candidates, SSHD_PROBE_TIMEOUT) {
            Ok(address) => {
                self.accepted.push((peer, info, address));
                m.accept(Instant::now(), peer);
                Control::Continue
            }
            Err(failures) => {
                m.reject(
                    peer,
                    &format!("your sshd on TCP port {} does not answer", info.ssh_port),
                );
                let view = view_of(&info);
                self.error = Some(
                    PairError::SshdUnreachable {
                        peer: format!("{}@{}", view.user, view.host),
                        tried: failures
                            .iter()
                            .map(|(a, e)| format!("{a} ({e})"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        port: info.ssh_port,
                    }
                    .into(),
                );
                Control::Stop
            }
        }
    }
}

/// What a side that finds itself paired with itself tells the other (itself).
pub(super) const SAME_REPOSITORY: &str =
    "it is this same repository on this same machine (same path, same sshd host keys)";

/// Whether the peer is this very repository: the same path behind the same sshd host keys.
/// Both `git pair` and `git pair join` were run in one repository; pairing it would add a remote
/// pointing at itself. Two repositories of one machine (different paths) still pair, and so do
/// repositories at one path on two machines (different host keys).
pub(super) fn is_this_repository(p: &Prepared, info: &PeerInfo) -> bool {
    let same_path = std::path::Path::new(&info.path) == p.info.path;
    let same_host = info
        .host_keys
        .iter()
        .any(|k| p.host_keys.iter().any(|h| h.key_data() == k.key_data()));
    same_path && same_host
}

/// Why a peer's login key cannot be let in, told to each side.
pub(super) struct KeyConflict {
    pub(super) here: String,
    pub(super) for_peer: String,
}

/// sshd uses the first `authorized_keys` line that matches a key, so one key can open only one
/// repository. A peer that logs in with a key already paired with another repository here
/// (`--key` on its side) would silently take that pairing's access away, or be sent to the
/// wrong repository: refuse it before anything is written. A re-pair of the same two
/// repositories has the same marker and simply replaces its line.
pub(super) fn key_conflict(p: &Prepared, info: &PeerInfo) -> Option<KeyConflict> {
    let existing = fs::read(p.ssh.authorized_keys()).ok()?;
    let ours = repo::pair_marker(&p.info.path, &peer_id(info));
    let other = ssh_files::authorized_keys::git_pair_lines(&existing)
        .into_iter()
        .find(|l| l.key.key_data() == info.user_key.key_data() && l.marker != ours)?;
    let label = sanitize::for_terminal(&other.label).into_owned();
    Some(KeyConflict {
        here: format!(
            "the peer logs in with a key that line {} of {} already lets in for another pairing \
             ({label}); one key can open only one repository. Pair again without --key on the \
             other machine, so that this pairing gets its own key, or run `git pair remove` for \
             the old pairing",
            other.line,
            p.ssh.authorized_keys().display()
        ),
        for_peer: "pair without --key: it opens another repo here".to_string(),
    })
}

pub(super) fn peer_id(info: &PeerInfo) -> String {
    format!("{}@{}:{}", info.user, info.host, info.path)
}

/// Between two git-annex repositories, git annex needs git-annex-shell on both machines: the
/// top complaint about git-annex's own pairing was a remote that silently did not work.
pub(super) fn annex_warnings(
    plan: &repo::RemotePlan,
    peer: &PeerInfo,
    local_shell: bool,
) -> Vec<String> {
    if !plan
        .entries
        .iter()
        .any(|(k, _)| *k == repo::keys::ANNEX_UUID)
    {
        return Vec::new();
    }
    let host = sanitize::for_terminal(&peer.host);
    let mut out = Vec::new();
    if !peer.annex_shell {
        out.push(format!(
            "git-annex-shell is not installed on {host}, so git annex cannot use remote {} yet: \
             install git-annex on {host} (Debian, Ubuntu: sudo apt install git-annex)",
            plan.name
        ));
    }
    if !local_shell {
        out.push(format!(
            "git-annex-shell is not installed here, so git annex on {host} cannot use this \
             repository yet: install git-annex here (Debian, Ubuntu: sudo apt install git-annex)"
        ));
    }
    out
}

/// The `PATH` OpenSSH's sshd gives a forced command on Debian and most builds: `git pair serve`
/// finds git-annex-shell there, not in the PATH of the shell that runs `git pair`.
pub(super) const SSHD_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";

/// Whether `git pair serve`, run by sshd, will find git-annex-shell, so that a git-annex peer
/// can use this repository.
pub(super) fn annex_shell_installed() -> bool {
    serve::annex_shell_in(std::ffi::OsStr::new(SSHD_PATH)).is_some()
}

pub(super) fn view_of(info: &PeerInfo) -> PeerView {
    PeerView {
        user: sanitize::for_terminal(&info.user).into_owned(),
        host: sanitize::for_terminal(&info.host).into_owned(),
        path: sanitize::for_terminal(&info.path).into_owned(),
    }
}

/// Where to look for the peer's sshd, best first: the addresses its
/// datagrams came from (proven to route), then the addresses it advertised,
/// IPv4 before IPv6. Advertised link-local IPv6 addresses carry no scope, so
/// they get the scope of the interface the peer was heard on.
pub(super) fn sshd_candidates(
    sources: &[SocketAddr],
    info: &PeerInfo,
    interfaces: &[Interface],
) -> Vec<SocketAddr> {
    let port = info.ssh_port;
    let link_scope = sources.iter().find_map(|s| match s {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
        _ => None,
    });
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut push = |addr: SocketAddr| {
        if !out.iter().any(|a| a.ip() == addr.ip()) {
            out.push(addr);
        }
    };
    for s in sources {
        let mut a = *s;
        a.set_port(port);
        push(a);
    }
    let mut advertised: Vec<IpAddr> = info.addresses.clone();
    advertised.sort_by_key(|ip| match ip {
        IpAddr::V4(_) => 0,
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 != 0xfe80 => 1,
        IpAddr::V6(_) => 2,
    });
    for ip in advertised {
        match ip {
            IpAddr::V4(v4) if !v4.is_loopback() || interfaces.iter().any(|i| i.loopback) => {
                push(SocketAddr::new(ip, port))
            }
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                if let Some(scope) = link_scope {
                    push(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)));
                }
            }
            IpAddr::V6(v6) if !v6.is_loopback() => push(SocketAddr::new(ip, port)),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::pair::fixtures::{eth0, info};

    #[test]
    fn sshd_candidates_prefer_the_sources_then_ipv4_then_scoped_link_local() {
        let sources = vec!["[fe80::2%2]:40000"
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 40000, 0, 2))
            })];
        let got = sshd_candidates(
            &sources,
            &info(&["fe80::2", "10.0.0.2", "2001:db8::2", "127.0.0.1"]),
            &[eth0()],
        );
        let want: Vec<SocketAddr> = vec![
            SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 2222, 0, 2)),
            "10.0.0.2:2222".parse().unwrap(),
            "[2001:db8::2]:2222".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn missing_git_annex_shell_is_named_with_its_fix_on_the_right_side() {
        let mut peer = info(&[]);
        let record = repo::PairRecord {
            alias: "git-pair-laptop-1".into(),
            peer: "bob@laptop:/home/bob/r".into(),
            peer_path: "/home/bob/r".into(),
            peer_key: "SHA256:k".into(),
            host_keys: vec![],
            address: "10.0.0.2:22".into(),
            identity: "/k".into(),
            time: "t".into(),
            annex_uuid: Some("0b1c2d3e-0000-4000-8000-000000000001".into()),
            local_annex: true,
        };
        let plan = repo::plan_remote(&[], None, "laptop", &record, None).unwrap();
        let warnings = annex_warnings(&plan, &peer, true);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not installed on laptop"));
        assert!(warnings[0].contains("apt install git-annex"));
        peer.annex_shell = true;
        assert!(annex_warnings(&plan, &peer, true).is_empty());
        let warnings = annex_warnings(&plan, &peer, false);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not installed here"));
        // Plain repositories: nothing to say.
        let plain = repo::PairRecord {
            local_annex: false,
            ..record
        };
        let plan = repo::plan_remote(&[], None, "laptop", &plain, None).unwrap();
        peer.annex_shell = false;
        assert!(annex_warnings(&plan, &peer, false).is_empty());
    }
}
