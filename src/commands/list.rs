//! `git pair list [--json] [--check] [NAME]`: the pairings of the current repository.
//!
//! A pairing is found two ways: a remote with git-pair's `remote.<name>.pair-*` records, and a
//! `Host` block in `~/.ssh/git-pair/config` recorded for this repository. A block whose remote
//! is gone (deleted by hand) is listed as orphaned, so that `git pair remove` can clean it up.
//! [`collect`] and the renderers are pure; [`run`] reads the files and probes each peer's sshd
//! (TCP connect only, all in parallel, with a short timeout). With `--check` it also logs in to
//! each peer through the pairing's ssh alias, with the paired key, in batch mode, asking for
//! `true` (which the peer's forced command answers with exit status 0): the one way to know
//! that the peer still lets this side in.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::events::{Event, EventWriter, Reason};
use crate::repo::{self, PairedRemote};
use crate::sanitize;
use crate::ssh_files::FoundBlock;
use crate::transport::probe;

/// How long a peer's sshd has to answer a TCP connection before it is listed as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(1500);

/// One pairing, as `git pair list --json` prints it. The field names and meanings are a stable
/// interface, documented in the man page; new fields may be added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pairing {
    /// The remote's name; for an orphaned pairing, the name it had.
    pub name: String,
    /// The peer repository, as user@host:path.
    pub peer: Option<String>,
    /// The remote's URL (`<alias>:<path>`).
    pub url: Option<String>,
    /// The ssh Host alias in ~/.ssh/git-pair/config.
    pub alias: String,
    /// The peer's sshd address (`ip:port`) recorded at pairing time.
    pub address: Option<String>,
    /// Where the ssh alias points now (`HostName:Port`): an address or a name.
    pub current_address: Option<String>,
    /// When `git pair refresh` last found the peer (RFC 3339, UTC).
    pub refreshed_at: Option<String>,
    /// How: `mdns`, `address` or `locate`.
    pub refreshed_by: Option<String>,
    /// SHA256 fingerprint of the key the peer logs in here with.
    pub peer_key: Option<String>,
    /// SHA256 fingerprints of the peer's pinned sshd host keys.
    pub host_keys: Vec<String>,
    /// When the pairing was made (RFC 3339, UTC).
    pub paired_at: Option<String>,
    /// The peer's git-annex UUID, between two git-annex repositories.
    pub annex_uuid: Option<String>,
    /// The remote is gone but ssh files of the pairing remain.
    pub orphaned: bool,
    /// Whether the peer's sshd answered a TCP connection just now; null if not probed.
    pub reachable: Option<bool>,
    /// `--check`: whether the peer accepted a login with the paired key just now; null if not
    /// checked.
    pub accepts: Option<bool>,
    /// `--check`: what ssh said when the login did not work.
    pub check_error: Option<String>,
}

/// Every field of a [`Pairing`] in `--json`, with its meaning, for the man page (a test keeps
/// this in step with the struct).
pub const JSON_FIELDS: [(&str, &str); 16] = [
    ("name", "string: the remote's name; for an orphaned pairing, the name its remote had"),
    ("peer", "string or null: the peer repository, as user@host:path"),
    ("url", "string or null: the remote's URL, <alias>:<path>"),
    ("alias", "string: the ssh Host alias in ~/.ssh/git-pair/config"),
    ("address", "string or null: the peer's sshd, ip:port, as recorded when paired"),
    ("current_address", "string or null: where the ssh alias points now, HostName:Port (an address, or a name such as desk.local); git pair refresh changes it"),
    ("refreshed_at", "string or null: when git pair refresh last found the peer, RFC 3339 UTC"),
    ("refreshed_by", "string or null: how: mdns (its .local name resolved), address (the alias's address still reached it) or locate (its git pair watch answered)"),
    ("peer_key", "string or null: SHA256 fingerprint of the key the peer logs in here with, as ssh-keygen -l prints it"),
    ("host_keys", "array of strings: SHA256 fingerprints of the peer's pinned sshd host keys"),
    ("paired_at", "string or null: when the pairing was made, RFC 3339 UTC"),
    ("annex_uuid", "string or null: the peer's git-annex UUID (between two git-annex repositories)"),
    ("orphaned", "boolean: the remote is gone (deleted by hand) but ssh files of the pairing remain"),
    ("reachable", "boolean: whether the peer's sshd (at current_address) answered a TCP connection within 1.5 s just now"),
    ("accepts", "boolean or null: with --check, whether the peer let this side log in with the paired key just now (ssh in batch mode through the alias, running true); null without --check"),
    ("check_error", "string or null: with --check, the last line ssh printed when the login did not work"),
];

/// The pairings of the repository at `local`, from its paired remotes and git-pair's `Host`
/// blocks: remotes first, in config order, then orphaned blocks.
pub fn collect(local: &str, remotes: &[PairedRemote], blocks: &[FoundBlock]) -> Vec<Pairing> {
    let block_of = |alias: &str| blocks.iter().find(|b| b.alias.eq_ignore_ascii_case(alias));
    let mut out: Vec<Pairing> = remotes
        .iter()
        .map(|r| Pairing {
            name: r.name.clone(),
            peer: r.peer.clone(),
            url: r.url.clone(),
            alias: r.alias.clone(),
            address: r.address.clone(),
            current_address: block_of(&r.alias).and_then(block_address),
            refreshed_at: block_of(&r.alias).and_then(|b| refresh_record(b).0),
            refreshed_by: block_of(&r.alias).and_then(|b| refresh_record(b).1),
            peer_key: r.peer_key.clone(),
            host_keys: r.host_keys.clone(),
            paired_at: r.time.clone(),
            annex_uuid: r.annex_uuid.clone(),
            orphaned: false,
            reachable: None,
            accepts: None,
            check_error: None,
        })
        .collect();
    for b in orphaned_blocks(local, remotes, blocks) {
        out.push(Pairing {
            name: b.remote.clone().unwrap_or_else(|| b.alias.clone()),
            peer: None,
            url: None,
            alias: b.alias.clone(),
            address: block_address(b),
            current_address: block_address(b),
            refreshed_at: refresh_record(b).0,
            refreshed_by: refresh_record(b).1,
            peer_key: None,
            host_keys: Vec::new(),
            paired_at: None,
            annex_uuid: None,
            orphaned: true,
            reachable: None,
            accepts: None,
            check_error: None,
        });
    }
    out
}

/// git-pair's blocks recorded for `local` whose alias no paired remote uses.
pub fn orphaned_blocks<'a>(
    local: &str,
    remotes: &[PairedRemote],
    blocks: &'a [FoundBlock],
) -> impl Iterator<Item = &'a FoundBlock> {
    let used: Vec<String> = remotes.iter().map(|r| r.alias.to_lowercase()).collect();
    let local = local.to_string();
    blocks.iter().filter(move |b| {
        b.repo.as_deref() == Some(local.as_str()) && !used.contains(&b.alias.to_lowercase())
    })
}

/// The time and method of a block's refresh record.
fn refresh_record(b: &FoundBlock) -> (Option<String>, Option<String>) {
    let Some(record) = b.refreshed.as_deref() else {
        return (None, None);
    };
    let mut words = record.split_whitespace();
    (
        words.next().map(str::to_owned),
        words.next().map(str::to_owned),
    )
}

/// `HostName` and `Port` of a block as an address, undoing the `%%` of a scoped IPv6 address.
fn block_address(b: &FoundBlock) -> Option<String> {
    let host = b.host_name.as_deref()?.replace("%%", "%");
    let port = b.port.as_deref().unwrap_or("22");
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Probes every pairing's sshd at once, where its alias points now (the address recorded when
/// paired if that is unknown); `reachable` becomes `Some`. A name (`desk.local`) is resolved
/// within the same timeout.
pub fn probe_all(pairings: &mut [Pairing], timeout: Duration) {
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, p) in pairings.iter().enumerate() {
        let target = p.current_address.clone().or_else(|| p.address.clone());
        let tx = tx.clone();
        // Detached: a name that takes long to resolve must not hold the listing up.
        std::thread::spawn(move || {
            let reachable = target
                .as_deref()
                .map(resolve_address)
                .is_some_and(|addrs| probe::first_reachable(&addrs, timeout).is_ok());
            let _ = tx.send((i, reachable));
        });
    }
    drop(tx);
    for p in pairings.iter_mut() {
        p.reachable = Some(false);
    }
    let deadline = std::time::Instant::now() + timeout + Duration::from_millis(500);
    while let Ok((i, reachable)) =
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        pairings[i].reachable = Some(reachable);
    }
}

/// How long ssh has to connect for `--check`, and to finish.
pub const CHECK_CONNECT: Duration = Duration::from_secs(5);
pub const CHECK_WITHIN: Duration = Duration::from_secs(20);

/// `--check`: logs in to every pairing's peer at once through its ssh alias, with the paired key
/// and in batch mode (no prompt), running `true`; `accepts` and `check_error` become set.
pub fn check_all(pairings: &mut [Pairing]) {
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, p) in pairings.iter().enumerate() {
        let alias = p.alias.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((i, check_login(&alias)));
        });
    }
    drop(tx);
    for p in pairings.iter_mut() {
        p.accepts = Some(false);
        p.check_error = Some(format!(
            "ssh did not finish within {} s",
            CHECK_WITHIN.as_secs()
        ));
    }
    let deadline = std::time::Instant::now() + CHECK_WITHIN + Duration::from_secs(1);
    while let Ok((i, result)) =
        rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
    {
        pairings[i].accepts = Some(result.is_ok());
        pairings[i].check_error = result.err();
    }
}

/// `ssh -o BatchMode=yes ALIAS true`, killed after [`CHECK_WITHIN`]: `Ok` when the peer let us
/// in and its forced command answered; else the last line ssh printed.
fn check_login(alias: &str) -> Result<(), String> {
    use std::process::{Command, Stdio};
    if crate::ssh_files::validate_alias(alias).is_err() {
        return Err("not a git-pair ssh alias".into());
    }
    let mut child = Command::new("ssh")
        .args([
            "-o",
            "BatchMode=yes",
            "-o",
            &format!("ConnectTimeout={}", CHECK_CONNECT.as_secs()),
            "-o",
            "LogLevel=ERROR",
            "-T",
            "-n",
            "--",
            alias,
            crate::commands::serve::CONNECTION_PROBE,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    let deadline = std::time::Instant::now() + CHECK_WITHIN;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ssh did not finish within {} s",
                    CHECK_WITHIN.as_secs()
                ));
            }
        }
    };
    if status.success() {
        return Ok(());
    }
    let mut said = String::new();
    if let Some(mut err) = child.stderr.take() {
        use std::io::Read;
        let _ = err.read_to_string(&mut said);
    }
    let last = said
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| sanitize::for_terminal(l).into_owned());
    Err(last.unwrap_or_else(|| match status.code() {
        Some(code) => format!("ssh exited with status {code}"),
        None => "ssh was killed".to_string(),
    }))
}

/// The addresses of `host:port`: a literal address (see [`parse_address`]) or a name.
fn resolve_address(text: &str) -> Vec<SocketAddr> {
    if let Some(a) = parse_address(text) {
        return vec![a];
    }
    use std::net::ToSocketAddrs;
    text.to_socket_addrs()
        .map(Iterator::collect)
        .unwrap_or_default()
}

/// `10.0.0.2:22`, `[fe80::2%3]:22` or `[fe80::2%veth0]:22` (an interface name is resolved).
fn parse_address(text: &str) -> Option<SocketAddr> {
    if let Ok(a) = text.parse() {
        return Some(a);
    }
    let (host, port) = text.strip_prefix('[')?.split_once("]:")?;
    let (ip, scope) = host.split_once('%')?;
    let index = nix::net::if_::if_nametoindex(scope).ok()?;
    Some(SocketAddr::V6(std::net::SocketAddrV6::new(
        ip.parse().ok()?,
        port.parse().ok()?,
        0,
        index,
    )))
}

/// The human listing; every value from the config is sanitized, since most came from the peer.
pub fn render_text(pairings: &[Pairing]) -> String {
    if pairings.is_empty() {
        return "No pairings in this repository. Run `git pair` to make one.\n".to_string();
    }
    let clean = |s: &Option<String>| {
        s.as_deref().map_or_else(
            || "-".to_string(),
            |v| sanitize::for_terminal(v).into_owned(),
        )
    };
    let mut out = String::new();
    for p in pairings {
        let name = sanitize::for_terminal(&p.name);
        if p.orphaned {
            out.push_str(&format!(
                "{name}  (orphaned: the remote is gone; `git pair remove {name}` removes the rest)\n"
            ));
        } else {
            out.push_str(&format!("{name}  {}\n", clean(&p.peer)));
        }
        let reach = match p.reachable {
            Some(true) => "  (sshd answers)",
            Some(false) => "  (sshd does not answer now)",
            None => "",
        };
        let shown = p.current_address.as_ref().or(p.address.as_ref()).cloned();
        out.push_str(&format!("    address    {}{reach}\n", clean(&shown)));
        if p.current_address.is_some() && p.current_address != p.address && p.address.is_some() {
            out.push_str(&format!("    paired at  {}\n", clean(&p.address)));
        }
        if let (Some(at), Some(by)) = (&p.refreshed_at, &p.refreshed_by) {
            let how = match by.as_str() {
                "mdns" => "its .local name",
                "address" => "its address",
                "locate" => "its git pair watch",
                _ => "?",
            };
            out.push_str(&format!(
                "    refreshed  {} (found by {how})\n",
                sanitize::for_terminal(at)
            ));
        }
        if !p.orphaned {
            out.push_str(&format!("    peer key   {}\n", clean(&p.peer_key)));
            let host_keys = if p.host_keys.is_empty() {
                "-".to_string()
            } else {
                sanitize::for_terminal(&p.host_keys.join(", ")).into_owned()
            };
            out.push_str(&format!("    host keys  {host_keys}\n"));
            out.push_str(&format!("    paired     {}\n", clean(&p.paired_at)));
        }
        if p.annex_uuid.is_some() {
            out.push_str(&format!("    annex uuid {}\n", clean(&p.annex_uuid)));
        }
        out.push_str(&format!(
            "    ssh alias  {}\n",
            sanitize::for_terminal(&p.alias)
        ));
        match (p.accepts, &p.check_error) {
            (Some(true), _) => {
                out.push_str("    login      accepted (the peer lets this side in)\n")
            }
            (Some(false), why) => out.push_str(&format!(
                "    login      FAILED: {}\n",
                why.as_deref().map_or_else(
                    || "-".to_string(),
                    |w| sanitize::for_terminal(w).into_owned()
                )
            )),
            (None, _) => {}
        }
    }
    out
}

/// Runs `git pair list`. With `--json`, a failure also ends stdout with one JSON object, the
/// `failed` event of `git pair --json`, so that a program always reads JSON there; a `--check`
/// that finds a peer refusing prints the list as usual and exits with status 1.
pub fn run(json: bool, check: bool, name: Option<&str>) -> anyhow::Result<()> {
    let result = list(json, check, name);
    if let (true, Err(err)) = (json, &result) {
        if err.downcast_ref::<CheckFailed>().is_none() {
            let reason = super::pair::find(err).map_or(Reason::Error, |e| e.reason());
            EventWriter::new(io::stdout()).emit(&Event::Failed {
                reason,
                message: format!("{err:#}"),
            });
        }
    }
    result
}

/// `--check` found peers that do not let this side in.
#[derive(Debug, thiserror::Error)]
#[error("the peer does not accept the paired key for: {0}. Pair again (or ask the other side whether it ran `git pair remove`)")]
pub struct CheckFailed(String);

fn list(json: bool, check: bool, name: Option<&str>) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (repository, info) = repo::open(&cwd).map_err(super::pair::usage)?;
    let remotes = repo::paired_remotes(&repository)?;
    let ssh = crate::local::ssh_dir()?;
    let blocks = ssh.pair_blocks()?;
    let mut pairings = collect(&info.path.to_string_lossy(), &remotes, &blocks);
    if let Some(name) = name {
        pairings.retain(|p| p.name == name || p.alias.eq_ignore_ascii_case(name));
        if pairings.is_empty() {
            return Err(super::pair::PairError::Usage(format!(
                "this repository has no pairing named {}: `git pair list` shows them",
                sanitize::for_terminal(name)
            ))
            .into());
        }
    }
    probe_all(&mut pairings, PROBE_TIMEOUT);
    if check {
        check_all(&mut pairings);
    }
    let text = if json {
        let mut line = serde_json::to_string(&pairings).context("cannot encode the list")?;
        line.push('\n');
        line
    } else {
        render_text(&pairings)
    };
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            return Err(e).context("cannot write to standard output")
        }
        _ => {}
    }
    let refused: Vec<String> = pairings
        .iter()
        .filter(|p| p.accepts == Some(false))
        .map(|p| sanitize::for_terminal(&p.name).into_owned())
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(CheckFailed(refused.join(", ")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(name: &str, alias: &str) -> PairedRemote {
        PairedRemote {
            name: name.into(),
            url: Some(format!("{alias}:/srv/r")),
            alias: alias.into(),
            peer: Some("bob@desk:/srv/r".into()),
            peer_key: Some("SHA256:k".into()),
            host_keys: vec!["SHA256:h1".into(), "SHA256:h2".into()],
            address: Some("10.0.0.2:22".into()),
            identity: None,
            time: Some("2026-11-26T10:00:00Z".into()),
            annex_uuid: None,
        }
    }

    fn block(alias: &str, repo: &str, remote: &str) -> FoundBlock {
        FoundBlock {
            alias: alias.into(),
            repo: Some(repo.into()),
            remote: Some(remote.into()),
            marker: Some("m".into()),
            identity_file: None,
            host_name: Some("fe80::2%%veth0".into()),
            port: Some("2222".into()),
            ..FoundBlock::default()
        }
    }

    #[test]
    fn remotes_then_orphaned_blocks_of_this_repository_only() {
        let remotes = [remote("desk", "git-pair-desk-1")];
        let blocks = [
            block("git-pair-desk-1", "/home/a/r", "desk"),
            block("git-pair-old-2", "/home/a/r", "old"),
            block("git-pair-other-3", "/home/a/other", "x"),
        ];
        let got = collect("/home/a/r", &remotes, &blocks);
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].name.as_str(), got[0].orphaned), ("desk", false));
        assert_eq!((got[1].name.as_str(), got[1].orphaned), ("old", true));
        assert_eq!(got[1].address.as_deref(), Some("[fe80::2%veth0]:2222"));
    }

    #[test]
    fn json_is_an_array_of_objects_with_stable_fields() {
        let mut got = collect("/r", &[remote("desk", "a")], &[]);
        got[0].reachable = Some(false);
        let v: serde_json::Value = serde_json::to_value(&got).unwrap();
        let obj = v[0].as_object().unwrap();
        for field in [
            "name",
            "peer",
            "url",
            "alias",
            "address",
            "peer_key",
            "host_keys",
            "paired_at",
            "annex_uuid",
            "orphaned",
            "reachable",
            "current_address",
            "refreshed_at",
            "refreshed_by",
            "accepts",
            "check_error",
        ] {
            assert!(obj.contains_key(field), "{field}");
        }
        assert_eq!(v[0]["host_keys"][1], "SHA256:h2");
        assert_eq!(v[0]["reachable"], false);
    }

    #[test]
    fn a_login_check_is_shown_with_what_ssh_said() {
        let mut got = collect("/r", &[remote("desk", "a"), remote("lab", "b")], &[]);
        got[0].accepts = Some(true);
        got[1].accepts = Some(false);
        got[1].check_error = Some("Permission denied (publickey).\u{1b}[2J".into());
        let text = render_text(&got);
        assert!(text.contains("login      accepted"), "{text}");
        assert!(
            text.contains("login      FAILED: Permission denied (publickey)."),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
        // Without --check, nothing is said about logins.
        assert!(!render_text(&collect("/r", &[remote("desk", "a")], &[])).contains("login"));
    }

    #[test]
    fn text_is_sanitized_and_says_what_to_do() {
        let mut r = remote("desk", "a");
        r.peer = Some("bob@\u{1b}[31mevil:/r".into());
        let text = render_text(&collect("/r", &[r], &[block("b", "/r", "gone")]));
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("git pair remove gone"), "{text}");
        assert!(render_text(&[]).contains("Run `git pair`"));
    }

    #[test]
    fn the_address_in_use_and_the_last_refresh_come_from_the_block() {
        let mut b = block("git-pair-desk-1", "/home/a/r", "desk");
        b.host_name = Some("10.0.0.9".into());
        b.port = Some("22".into());
        b.refreshed = Some("2026-11-30T10:00:00Z locate".into());
        let got = collect("/home/a/r", &[remote("desk", "git-pair-desk-1")], &[b]);
        assert_eq!(got[0].address.as_deref(), Some("10.0.0.2:22"));
        assert_eq!(got[0].current_address.as_deref(), Some("10.0.0.9:22"));
        assert_eq!(got[0].refreshed_at.as_deref(), Some("2026-11-30T10:00:00Z"));
        assert_eq!(got[0].refreshed_by.as_deref(), Some("locate"));
        let text = render_text(&got);
        assert!(text.contains("    address    10.0.0.9:22\n"), "{text}");
        assert!(text.contains("    paired at  10.0.0.2:22\n"), "{text}");
        assert!(
            text.contains("    refreshed  2026-11-30T10:00:00Z (found by its git pair watch)\n"),
            "{text}"
        );
        // Never refreshed: no such line, and the recorded address is shown.
        let plain = collect("/home/a/r", &[remote("desk", "git-pair-none")], &[]);
        assert_eq!(plain[0].current_address, None);
        assert!(!render_text(&plain).contains("refreshed"));
    }

    #[test]
    fn addresses_parse_with_numeric_or_named_scopes() {
        assert_eq!(
            parse_address("10.0.0.2:22"),
            Some("10.0.0.2:22".parse().unwrap())
        );
        assert!(parse_address("[fe80::2%1]:22").is_some());
        assert!(parse_address("[fe80::2%lo]:22").is_some());
        assert!(parse_address("[fe80::2%nosuchif0]:22").is_none());
        assert!(parse_address("junk").is_none());
    }
}
