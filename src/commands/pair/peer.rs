//! What is checked about a peer that proved it holds the code, before this side confirms: its
//! payload parses, its login key opens nothing else here, and its sshd answers. A pairing that
//! cannot work is refused on both sides before anything is written.

use std::fs;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::time::{Duration, Instant};

use rand_core::OsRng;

use crate::commands::serve;
use crate::events::{Event as JsonEvent, PeerView};
use crate::keys;
use crate::protocol::codec::{End, SessionId};
use crate::protocol::machine::MAX_FAILURES;
use crate::protocol::payload::PeerInfo;
use crate::protocol::repair;
use crate::protocol::schedule::{PairSecret, Role};
use crate::protocol::{Event, Machine};
use crate::repo;
use crate::sanitize;
use crate::ssh_files::authorized_keys;
use crate::transport::driver::Control;
use crate::transport::hostkey::{self, HostKey, Target};
use crate::transport::iface::Interface;
use crate::transport::probe;

use super::error::PairError;
use super::replace::{earlier_pairings, replacement_proof, Decision, Evidence};
use super::{Prepared, Reporter};

/// How long the peer's sshd has to answer a TCP connection: two rounds of the kernel's neighbour
/// resolution. The exchange may have completed by multicast copies before the kernel resolved the
/// peer's link-layer address (see `transport::neighbour`), so the check can be the first to need
/// it, and on a LAN that loses frames Linux gives a resolution up after three requests a second
/// apart (3 s); the next connection starts another. A peer whose firewall drops the connections
/// is named this long after its payload arrived (a refused connection is named at once).
pub(super) const SSHD_PROBE_TIMEOUT: Duration = Duration::from_secs(6);

/// A peer verified by the protocol, with its sshd checked.
pub(super) struct VerifiedPeer {
    pub(super) info: PeerInfo,
    pub(super) view: PeerView,
    pub(super) address: SocketAddr,
    /// The long-term secret of the pairing, stored with it.
    pub(super) secret: PairSecret,
    /// Which end of the session this side was.
    pub(super) role: Role,
    /// Whether it replaces an earlier pairing (see [`replacement_proof`]).
    pub(super) decision: Decision,
}

/// What a peer's payload brought, as the machine handed it over.
pub(super) struct Offer<'a> {
    payload: &'a [u8],
    /// The addresses its datagrams came from.
    sources: &'a [SocketAddr],
    /// Its re-pair proofs, for this session.
    proofs: &'a [repair::Proof],
}

/// A peer whose payload passed every check, before the protocol verified it.
pub(super) struct Accepted {
    peer: SessionId,
    info: PeerInfo,
    address: SocketAddr,
    decision: Decision,
}

#[derive(Default)]
pub(super) struct Session {
    /// Peers whose payload was accepted (their sshd answered). Usually one;
    /// two only if two machines on the LAN hold the same code.
    pub(super) accepted: Vec<Accepted>,
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
                proofs,
            } => {
                let offer = Offer {
                    payload: &payload,
                    sources: &sources,
                    proofs: &proofs,
                };
                self.check_peer(p, m, peer, offer, out)
            }
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
            Event::PeerEnded { end, .. } => match peer_error(&end) {
                Some(err) => {
                    self.error = Some(err.into());
                    Control::Stop
                }
                None => Control::Continue,
            },
            Event::CodesDiffer { failures } => {
                self.error = Some(PairError::WrongCode { failures }.into());
                Control::Stop
            }
            Event::PeerSilent { .. } => Control::Continue,
            Event::TooManyFailures { failures } => {
                self.error = Some(PairError::Guessing(failures).into());
                Control::Stop
            }
            Event::Verified(v) => {
                let Some(i) = self.accepted.iter().position(|a| a.peer == v.peer) else {
                    self.error = Some(anyhow::anyhow!("verified a peer that was never checked"));
                    return Control::Stop;
                };
                let Accepted {
                    peer,
                    info,
                    address,
                    decision,
                } = self.accepted.swap_remove(i);
                let view = view_of(&info);
                out.event(JsonEvent::Verified {
                    peer: view.clone(),
                    address: address.to_string(),
                });
                out.event(JsonEvent::Sas {
                    sas: v.sas.to_string(),
                    verify: p.verify,
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
                    secret: v.pair_secret.clone(),
                    decision,
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
        Offer {
            payload,
            sources,
            proofs,
        }: Offer<'_>,
        out: &mut Reporter,
    ) -> Control {
        let info = match PeerInfo::parse(payload) {
            Ok(info) => info,
            Err(e) => {
                m.refuse(Instant::now(), peer, "your payload is invalid");
                self.error = Some(
                    PairError::BadPeer(sanitize::for_terminal(&e.to_string()).into_owned()).into(),
                );
                return Control::Stop;
            }
        };
        if is_this_repository(p, &info) {
            m.refuse(Instant::now(), peer, SAME_REPOSITORY);
            self.error = Some(
                PairError::SameRepository {
                    path: p.info.path.display().to_string(),
                }
                .into(),
            );
            return Control::Stop;
        }
        if let Some(conflict) = annex_uuid_conflict(p.info.annex_uuid.as_deref(), &info) {
            m.refuse(Instant::now(), peer, &conflict.for_peer);
            self.error = Some(PairError::BadPeer(conflict.here).into());
            return Control::Stop;
        }
        // A key that a line git pair did not write lets in: refused whatever is replaced.
        if let Some(conflict) = key_conflict(p, &info, &[]).filter(|c| c.by_hand) {
            m.refuse(Instant::now(), peer, &conflict.for_peer);
            self.error = Some(PairError::KeyInUse(conflict.here).into());
            return Control::Stop;
        }
        let candidates = sshd_candidates(sources, &info, &p.interfaces);
        out.status(&format!(
            "checking the peer's sshd (TCP port {})…",
            info.ssh_port
        ));
        // Fresh connections are paced by the round trip the exchange measured to the peer.
        let pace = m.retransmit_timeout(&peer).unwrap_or(probe::DEFAULT_RETRY);
        let address = match probe::first_reachable_paced(&candidates, SSHD_PROBE_TIMEOUT, pace) {
            Ok(address) => address,
            Err(failures) => {
                m.refuse(
                    Instant::now(),
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
                return Control::Stop;
            }
        };
        let sessions = (peer, m.session_id());
        let decision = match decide(p, &info, address, (proofs, sessions), out) {
            Ok(decision) => decision,
            Err(e) => {
                m.refuse(
                    Instant::now(),
                    peer,
                    "this side cannot read its own pairings",
                );
                self.error = Some(e);
                return Control::Stop;
            }
        };
        if let Some(conflict) = key_conflict(p, &info, &decision.replaced_markers()) {
            m.refuse(Instant::now(), peer, &conflict.for_peer);
            self.error = Some(PairError::KeyInUse(conflict.here).into());
            return Control::Stop;
        }
        self.accepted.push(Accepted {
            peer,
            info,
            address,
            decision,
        });
        m.accept(Instant::now(), peer);
        Control::Continue
    }
}

/// What the peer's authenticated end means for this side, when it ends the pairing: its words,
/// sanitized, as the reason.
pub(super) fn peer_error(end: &End) -> Option<PairError> {
    let words = |detail: &str| sanitize::for_terminal(detail).into_owned();
    match end {
        End::Ready => None,
        End::Refused { detail } => {
            let mut detail = words(detail);
            if detail.contains("sshd") {
                detail.push_str(" (is sshd running here, on the port given with --ssh-port?)");
            }
            Some(PairError::PeerRejected(detail))
        }
        End::Declined => Some(PairError::PeerDeclined),
        End::Failed { detail } => Some(PairError::PeerFailed(words(detail))),
    }
}

/// Whether the new pairing replaces an earlier one that claims the same peer: only when the
/// peer proves it holds that pairing's pair secret (`proofs`, from its payload, bound to this
/// session: `(peer's sid, own sid)`), or its sshd proves it in a key exchange (see
/// [`replacement_proof`]). Asks the sshd only when there is an earlier pairing the secret did
/// not prove.
///
/// ssh itself asks, once per earlier pairing, with that pairing's alias and pinned keys
/// ([`hostkey::check`]): it accepts a key only after the sshd signed the key exchange with it.
/// (`ssh-keyscan` would not do: it stops as soon as the sshd has sent its public key, which
/// anyone can copy.)
fn decide(
    p: &Prepared,
    info: &PeerInfo,
    address: SocketAddr,
    (proofs, (peer, own)): (&[repair::Proof], (SessionId, SessionId)),
    out: &mut Reporter,
) -> anyhow::Result<Decision> {
    let earlier = earlier_pairings(&p.repo, &p.info.path, &p.ssh, &peer_id(info))?;
    if earlier.is_empty() {
        return Ok(Decision::First);
    }
    let mut secret_proven: Vec<String> = Vec::new();
    for e in &earlier {
        // A damaged secret file proves nothing; the sshd may still prove the pairing.
        if let Ok(Some(stored)) = p.ssh.read_pair_secret(&e.alias) {
            if repair::proves(&stored.secret, &peer, &own, proofs) {
                secret_proven.push(e.alias.clone());
            }
        }
    }
    if !secret_proven.is_empty() {
        return Ok(replacement_proof(&Evidence {
            earlier: &earlier,
            presented: Err("not asked: the pair secret proved it"),
            offered: &info.host_keys,
            secret_proven: &secret_proven,
        }));
    }
    out.status("checking the peer's sshd host keys…");
    let host = super::setup::host_name_for(address, &p.interfaces);
    let known_hosts = p.ssh.pair_known_hosts();
    let mut proven: Vec<ssh_key::PublicKey> = Vec::new();
    let mut unreachable: Vec<String> = Vec::new();
    for e in &earlier {
        let target = Target {
            host: &host,
            port: address.port(),
            user: &info.user,
            alias: &e.alias,
        };
        match hostkey::check(&target, &known_hosts) {
            HostKey::Matches {
                fingerprint: Some(fp),
            } => proven.extend(
                e.pinned
                    .iter()
                    .filter(|k| keys::fingerprint(k) == fp)
                    .cloned(),
            ),
            // A match ssh did not name the key of cannot be tied to what the payload pins.
            HostKey::Matches { fingerprint: None } | HostKey::Differs => {}
            HostKey::Unreachable(why) => unreachable.push(why),
        }
    }
    let why = unreachable.first().cloned().unwrap_or_default();
    Ok(replacement_proof(&Evidence {
        earlier: &earlier,
        presented: if proven.is_empty() && unreachable.len() == earlier.len() {
            Err(&why)
        } else {
            Ok(&proven)
        },
        offered: &info.host_keys,
        secret_proven: &[],
    }))
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

/// Why a peer cannot be let in, told to each side.
pub(super) struct Conflict {
    pub(super) here: String,
    pub(super) for_peer: String,
    /// The line that lets the key in was not written by git pair.
    pub(super) by_hand: bool,
}

/// Two copies of one git-annex repository (copied with their `.git/config`) share a UUID:
/// git-annex would take each for the other. Refused on both sides, naming the field.
pub(super) fn annex_uuid_conflict(local: Option<&str>, info: &PeerInfo) -> Option<Conflict> {
    let theirs = info.annex_uuid.as_deref()?;
    if !local.is_some_and(|ours| ours.eq_ignore_ascii_case(theirs)) {
        return None;
    }
    Some(Conflict {
        here: format!(
            "the peer's annex_uuid is {theirs}, this repository's own: the two are copies of one \
             git-annex repository. In the copy, run `git config --unset annex.uuid` and \
             `git annex init` to give it a UUID of its own, then pair again; nothing was written"
        ),
        for_peer: "your annex_uuid is this repository's own: reinit the copy".to_owned(),
        by_hand: false,
    })
}

/// sshd uses the first `authorized_keys` line that matches a key, so a line that already lets
/// the peer's key in would decide what the key may do. Refused on both sides before anything
/// is written, with what to do:
/// - a line git pair did not write (the user's own, maybe unrestricted, access with that key,
///   which git pair never drops or edits; a peer needs only the public half to offer it);
/// - git pair's line of another pairing (`--key` on the peer's side): one key can open only one
///   repository.
///
/// The lines of the pairings this one replaces (`replaced`, their markers) go with them.
pub(super) fn key_conflict(p: &Prepared, info: &PeerInfo, replaced: &[String]) -> Option<Conflict> {
    let existing = fs::read(p.ssh.authorized_keys()).ok()?;
    let conflict = authorized_keys::key_conflicts(&existing, &info.user_key, &|m| {
        replaced.iter().any(|r| r == m)
    })
    .into_iter()
    .next()?;
    let file = p.ssh.authorized_keys();
    Some(match conflict.marker {
        None => Conflict {
            here: format!(
                "the peer logs in with a key that line {} of {} already lets in, and git pair did \
                 not write that line ({}); git pair never changes a line it did not write, and \
                 sshd would use that line instead of the pairing's. Remove or change that line \
                 yourself if it should go, or pair again with its own key on the other machine \
                 (without --key)",
                conflict.line,
                file.display(),
                sanitize::for_terminal_within(&conflict.label, 80)
            ),
            for_peer: "pair without --key: your key is already in authorized_keys here".to_owned(),
            by_hand: true,
        },
        Some(_) => Conflict {
            here: format!(
                "the peer logs in with a key that line {} of {} already lets in for another \
                 pairing ({}); one key can open only one repository. Pair again without --key \
                 on the other machine, so that this pairing gets its own key, or run `git pair \
                 remove` for the old pairing",
                conflict.line,
                file.display(),
                sanitize::for_terminal(&conflict.label)
            ),
            for_peer: "pair without --key: it opens another repo here".to_owned(),
            by_hand: false,
        },
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
    // Heard over IPv4 alone, the interface is the one whose subnet holds a source: without it
    // the check would race no second family, and on a LAN that loses ARP frames it would wait
    // for IPv4's neighbour resolution alone.
    let link_scope = sources
        .iter()
        .find_map(|s| match s {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
            _ => None,
        })
        .or_else(|| {
            sources.iter().find_map(|s| {
                interfaces
                    .iter()
                    .find(|i| !i.loopback && i.on_link(s.ip()))
                    .map(|i| i.index)
            })
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
    // Canonical form first: `::ffff:127.0.0.1` is 127.0.0.1 to connect(), and must be judged so.
    let mut advertised: Vec<IpAddr> = info.addresses.iter().map(IpAddr::to_canonical).collect();
    advertised.sort_by_key(|ip| match ip {
        IpAddr::V4(_) => 0,
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 != 0xfe80 => 1,
        IpAddr::V6(_) => 2,
    });
    for ip in advertised {
        match ip {
            // This machine itself (0.0.0.0/8, loopback) only when pairing over loopback, where
            // the peer is on this machine; never the unspecified address.
            IpAddr::V4(v4) if v4.octets()[0] == 0 => {}
            IpAddr::V4(v4) if !v4.is_loopback() || interfaces.iter().any(|i| i.loopback) => {
                push(SocketAddr::new(ip, port))
            }
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                if let Some(scope) = link_scope {
                    push(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)));
                }
            }
            IpAddr::V6(v6) if !v6.is_loopback() && !v6.is_unspecified() => {
                push(SocketAddr::new(ip, port))
            }
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

    /// A peer heard over IPv4 alone: its advertised link-local IPv6 address gets the scope of
    /// the interface the IPv4 source is on, so that the check races both families.
    #[test]
    fn sshd_candidates_scope_link_local_by_an_ipv4_source() {
        let sources = vec!["10.0.0.2:40000".parse::<SocketAddr>().unwrap()];
        let got = sshd_candidates(&sources, &info(&["10.0.0.2", "fe80::2"]), &[eth0()]);
        let want: Vec<SocketAddr> = vec![
            "10.0.0.2:2222".parse().unwrap(),
            SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 2222, 0, 2)),
        ];
        assert_eq!(got, want);
    }

    /// Issue 8, item 6: a peer annex UUID equal to this repository's own is refused, naming the
    /// field and the fix, on both sides.
    #[test]
    fn a_peer_annex_uuid_equal_to_ours_is_refused() {
        let uuid = "0b1c2d3e-0000-4000-8000-000000000001";
        let mut peer = info(&[]);
        assert!(annex_uuid_conflict(Some(uuid), &peer).is_none());
        peer.annex_uuid = Some("0b1c2d3e-0000-4000-8000-000000000002".into());
        assert!(annex_uuid_conflict(Some(uuid), &peer).is_none());
        assert!(annex_uuid_conflict(None, &peer).is_none());
        peer.annex_uuid = Some(uuid.to_uppercase());
        let c = annex_uuid_conflict(Some(uuid), &peer).unwrap();
        assert!(
            c.here.contains("annex_uuid") && c.here.contains("git annex init"),
            "{}",
            c.here
        );
        assert!(c.for_peer.contains("annex_uuid"));
    }

    /// Addresses that are this machine to whoever connects never become candidates (the payload
    /// check refuses the unspecified ones already; this is the second line), in any spelling.
    #[test]
    fn sshd_candidates_never_include_this_machine_off_loopback() {
        let mut peer = info(&["10.0.0.2"]);
        peer.addresses = [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
            "::",
            "::ffff:0.0.0.0",
            "10.0.0.2",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let got = sshd_candidates(&[], &peer, &[eth0()]);
        assert_eq!(got, vec!["10.0.0.2:2222".parse::<SocketAddr>().unwrap()]);
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
