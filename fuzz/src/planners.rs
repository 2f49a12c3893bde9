//! Checks for the pure parsers and planners: the payload parser, the `authorized_keys` and ssh
//! client config planners, and `git pair serve`'s request parser.

use std::path::Path;

use git_pair::commands::serve::{self, MAX_REQUEST_LEN};
use git_pair::protocol::payload::PeerInfo;
use git_pair::ssh_files::authorized_keys::{
    git_pair_lines, key_conflicts, plan_add, plan_remove, render_line,
};
use git_pair::ssh_files::client_config::{
    host_aliases, pair_blocks, plan_host, plan_include, plan_refresh, plan_remove_host,
    plan_remove_include, BlockRecord, HostBlock, Refresh,
};
use git_pair::ssh_files::{forced_command, AuthorizedEntry};
use ssh_key::PublicKey;

use crate::keys::{ECDSA_PUB, ED25519_PUB, RSA_PUB};

/// `PeerInfo::parse` never panics, and whatever it accepts passed every documented check
/// (including those of issue 8: no control character in any string, no unspecified address, a
/// well-formed annex UUID); and what it accepts, sent again as a payload, is accepted again.
pub fn payload(data: &[u8]) {
    let info = match PeerInfo::parse(data) {
        Ok(info) => info,
        Err(e) => {
            let message = e.to_string();
            assert!(!message.is_empty());
            return;
        }
    };
    assert!(data.len() <= git_pair::protocol::payload::MAX_PAYLOAD);
    let user = info.user.as_bytes();
    assert!(!user.is_empty() && user.len() <= 64 && user[0] != b'-');
    assert!(user
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || b"._-@$".contains(b)));
    assert!(!info.host.is_empty() && info.host.len() <= 255);
    assert!(info.path.starts_with('/') && info.path.len() <= 4096);
    let comments = std::iter::once(&info.user_key)
        .chain(&info.host_keys)
        .map(|k| k.comment());
    for text in [info.user.as_str(), &info.host, &info.path]
        .into_iter()
        .chain(comments)
        .chain(info.annex_uuid.as_deref())
    {
        assert!(!text.chars().any(char::is_control), "{text:?}");
    }
    assert!(
        !info
            .addresses
            .iter()
            .any(git_pair::protocol::payload::is_unspecified),
        "{:?}",
        info.addresses
    );
    assert!(!info.host_keys.is_empty() && info.host_keys.len() <= 16);
    assert_ne!(info.ssh_port, 0);
    assert!(info.addresses.len() <= 32);
    if let Some(uuid) = &info.annex_uuid {
        assert_eq!(uuid.len(), 36);
        for (i, c) in uuid.char_indices() {
            match i {
                8 | 13 | 18 | 23 => assert_eq!(c, '-', "{uuid}"),
                _ => assert!(c.is_ascii_hexdigit(), "{uuid}"),
            }
        }
    }
    // What was accepted, sent again, is accepted again, with the same values.
    let openssh = |k: &PublicKey| k.to_openssh().ok();
    let (Some(user_key), Some(host_keys)) = (
        openssh(&info.user_key),
        info.host_keys
            .iter()
            .map(openssh)
            .collect::<Option<Vec<_>>>(),
    ) else {
        return;
    };
    let again = git_pair::protocol::payload::Payload {
        user: info.user.clone(),
        host: info.host.clone(),
        path: info.path.clone(),
        user_key,
        host_keys,
        ssh_port: info.ssh_port,
        addresses: info.addresses.iter().map(ToString::to_string).collect(),
        annex_uuid: info.annex_uuid.clone(),
        annex_shell: info.annex_shell,
    };
    let bytes = again.to_bytes();
    if bytes.len() > git_pair::protocol::payload::MAX_PAYLOAD {
        return;
    }
    let back = PeerInfo::parse(&bytes).expect("an accepted payload, sent again, is accepted");
    assert_eq!(
        (&back.user, &back.host, &back.path, back.ssh_port),
        (&info.user, &info.host, &info.path, info.ssh_port)
    );
    assert_eq!(back.user_key.key_data(), info.user_key.key_data());
    assert_eq!(back.host_keys.len(), info.host_keys.len());
    assert_eq!(back.addresses, info.addresses);
    assert_eq!(back.annex_uuid, info.annex_uuid);
}

/// The base64 of the fixed start of each test key's blob (length-prefixed algorithm name, cut
/// to whole 3-byte groups). A line whose key data equals the key must contain it, since each
/// 4-character group of unpadded base64 decodes to exactly one 3-byte group.
fn blob_prefix(key: &str) -> &'static str {
    match key {
        ED25519_PUB => "AAAAC3NzaC1lZDI1NTE5",
        RSA_PUB => "AAAAB3NzaC1y",
        ECDSA_PUB => "AAAAE2VjZHNhLXNoYTItbmlzdHAy",
        _ => unreachable!("only the test keys are used"),
    }
}

const MARKERS: [&str; 2] = ["m1", "repo-1:peer/2+x=y@z"];
const LABELS: [&str; 3] = [
    "bob@desk:/home/bob/notes",
    "evil\nssh-rsa \u{202E}x\u{200B}",
    "",
];

fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

fn terminated(mut bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The first byte picks the entry (key type, marker, label); the rest is the old file.
///
/// - `plan_add` never panics, and refuses exactly when a line other than git-pair's lines with
///   the entry's marker lets the key in (`key_conflicts`): it never drops or edits such a
///   line, whether git pair wrote it for another pairing or not;
/// - otherwise its output is exactly: the old lines it did not replace, byte for byte and in
///   order, a `\n` if they do not end with one, the rendered line and `\n`; the replaced lines
///   are exactly git-pair's lines with the entry's marker (`git_pair_lines`);
/// - independently of git-pair's line parser: a line that holds neither the start of the key's
///   base64 nor `git-pair:`, and every blank or `#` line, is kept;
/// - `plan_add` is idempotent, and the new line is the one git-pair line with the marker;
/// - `plan_remove(plan_add(x), None, Some(marker))` and `plan_remove(plan_add(x), Some(fp),
///   None)` give back the kept lines (so, for `x` empty or ending in `\n` with nothing
///   replaced, exactly `x`: the property of the module's proptests).
pub fn authorized_keys(data: &[u8]) {
    let (selector, old) = data.split_first().unwrap_or((&0, &[]));
    let key_text = [ED25519_PUB, RSA_PUB, ECDSA_PUB][usize::from(selector % 3)];
    let marker = MARKERS[usize::from(selector / 3 % 2)];
    let label = LABELS[usize::from(selector / 6 % 3)];
    let key = PublicKey::from_openssh(key_text).expect("test key parses");
    let entry = AuthorizedEntry {
        key: key.clone(),
        command: forced_command(
            Path::new("/usr/bin/git-pair"),
            Path::new("/home/alice/my notes"),
        )
        .expect("valid forced command"),
        marker: marker.to_owned(),
        label: label.to_owned(),
    };
    let line = render_line(&entry).expect("a valid entry renders");
    let conflicts = key_conflicts(old, &key, &|m| m == marker);
    let added = match plan_add(old, &entry, &[]) {
        Ok(added) => {
            assert!(conflicts.is_empty(), "plan_add dropped {conflicts:?}");
            added
        }
        Err(e) => {
            assert!(
                !conflicts.is_empty(),
                "plan_add refused without a conflict: {e}"
            );
            return;
        }
    };

    let replaced: Vec<usize> = git_pair_lines(old)
        .into_iter()
        .filter(|l| l.marker == marker)
        .map(|l| l.line)
        .collect();
    let mut kept = Vec::new();
    for (i, l) in lines(old).enumerate() {
        let surely_kept = {
            let content = l.strip_suffix(b"\n").unwrap_or(l);
            let trimmed: &[u8] = {
                let start = content
                    .iter()
                    .position(|b| !matches!(b, b' ' | b'\t'))
                    .unwrap_or(content.len());
                &content[start..]
            };
            let content = trimmed.strip_suffix(b"\r").unwrap_or(trimmed);
            content.is_empty()
                || content.starts_with(b"#")
                || (!contains(l, blob_prefix(key_text).as_bytes()) && !contains(l, b"git-pair:"))
        };
        let is_replaced = replaced.contains(&(i + 1));
        assert!(
            !(surely_kept && is_replaced),
            "line {} was replaced although it cannot hold the key or the marker: {:?}",
            i + 1,
            String::from_utf8_lossy(l)
        );
        if !is_replaced {
            kept.extend_from_slice(l);
        }
    }
    let kept = terminated(kept);
    let mut expected = kept.clone();
    expected.extend_from_slice(line.as_bytes());
    expected.push(b'\n');
    assert_eq!(
        added, expected,
        "plan_add did not keep exactly the lines it did not replace"
    );

    assert_eq!(
        plan_add(&added, &entry, &[]).expect("still valid"),
        added,
        "plan_add is not idempotent"
    );
    let ours: Vec<usize> = git_pair_lines(&added)
        .into_iter()
        .filter(|l| l.marker == marker)
        .map(|l| l.line)
        .collect();
    assert_eq!(ours, vec![lines(&added).count()]);

    assert_eq!(
        plan_remove(&added, None, Some(marker)),
        kept,
        "remove by marker did not give back the kept lines"
    );
    let fp = key.fingerprint(ssh_key::HashAlg::Sha256);
    assert_eq!(
        plan_remove(&added, Some(&fp), None),
        kept,
        "remove by fingerprint did not give back the kept lines"
    );
}

const HOME: &str = "/home/alice";
const ALIASES: [&str; 2] = ["git-pair-x", "git-pair-laptop-3f9a1c2e"];
/// (Include target, home): under home (written `~/…`), outside it with a space (quoted), and
/// with a home that is not the target's (absolute).
const INCLUDES: [(&str, &str); 3] = [
    ("/home/alice/.ssh/git-pair/config", HOME),
    ("/srv/ssh pair/config", HOME),
    ("/home/alice/.ssh/git-pair/config", "/nonexistent"),
];

/// The first byte picks the alias, the Include target and whether `~/.ssh/config` exists; the
/// rest is the old file, given to both planners.
///
/// `plan_host` (documented: replaces the alias's block(s) or appends, "all other bytes are
/// kept"): never panics; without a block for the alias the output is exactly the old bytes, a
/// `\n` if needed, and the block; it is idempotent; removing the alias afterwards gives what
/// removing it from the old file gives (plus the `\n` when there was no block); the alias is
/// listed by `host_aliases`.
///
/// `plan_include` (documented: "the old bytes follow unchanged"): never fails for a valid
/// target; when it changes the file, the output is the Include prefix followed by exactly the
/// old bytes, and a second run finds the Include (`None`); when it leaves the file alone, the
/// file has an `include` keyword.
pub fn client_config(data: &[u8]) {
    let (selector, old) = data.split_first().unwrap_or((&0, &[]));
    let alias = ALIASES[usize::from(selector % 2)];
    let block = HostBlock::new(
        alias,
        "fe80::2%veth0",
        2222,
        "bob",
        Path::new("/home/alice/.ssh/git-pair/id_x"),
        Path::new("/home/alice/.ssh/git-pair/known_hosts"),
        Path::new(HOME),
    )
    .expect("valid host block");

    let without = plan_remove_host(old, alias);
    let had_block = without != old;
    let out = plan_host(old, &block);
    if !had_block {
        let mut expected = terminated(old.to_vec());
        expected.extend_from_slice(block.render().as_bytes());
        assert_eq!(out, expected, "plan_host did not append to the old bytes");
    }
    assert_eq!(plan_host(&out, &block), out, "plan_host is not idempotent");
    let removed = plan_remove_host(&out, alias);
    if had_block {
        assert_eq!(
            removed, without,
            "plan_host changed bytes outside the block"
        );
    } else {
        assert_eq!(
            removed,
            terminated(old.to_vec()),
            "removing the added block did not give back the old bytes"
        );
    }
    assert!(host_aliases(&out).iter().any(|a| a == alias));
    assert!(pair_blocks(&out).iter().any(|b| b.alias == alias));

    // A refresh changes the alias's address and nothing outside its blocks, and says it again
    // without change.
    let refresh = Refresh {
        host_name: "10.0.0.9",
        port: 2200,
        time: "2026-11-30T10:00:00Z",
        method: "locate",
    };
    let refreshed = plan_refresh(&out, alias, &refresh).expect("the block is there");
    assert_eq!(
        plan_remove_host(&refreshed, alias),
        plan_remove_host(&out, alias),
        "plan_refresh changed bytes outside the alias's blocks"
    );
    assert_eq!(
        plan_refresh(&refreshed, alias, &refresh).unwrap(),
        refreshed
    );
    let ours = pair_blocks(&refreshed)
        .into_iter()
        .find(|b| b.alias.eq_ignore_ascii_case(alias))
        .expect("the block is still there");
    assert_eq!(ours.host_name.as_deref(), Some("10.0.0.9"));
    assert_eq!(ours.port.as_deref(), Some("2200"));
    assert_eq!(
        ours.refreshed.as_deref(),
        Some("2026-11-30T10:00:00Z locate")
    );

    // A block's record reads back exactly, whatever surrounds it.
    let record = BlockRecord {
        repo: "/home/alice/my notes".to_owned(),
        remote: "desk".to_owned(),
        marker: "0123abcd".to_owned(),
    };
    let recorded = block
        .clone()
        .with_record(record.clone())
        .expect("valid record");
    let out = plan_host(old, &recorded);
    let ours: Vec<_> = pair_blocks(&out)
        .into_iter()
        .filter(|b| b.alias.eq_ignore_ascii_case(alias))
        .collect();
    assert_eq!(ours.len(), 1, "one block for the alias");
    assert_eq!(ours[0].repo.as_deref(), Some(record.repo.as_str()));
    assert_eq!(ours[0].remote.as_deref(), Some(record.remote.as_str()));
    assert_eq!(ours[0].marker.as_deref(), Some(record.marker.as_str()));
    assert_eq!(
        ours[0].identity_file.as_deref(),
        Some(recorded.identity_file())
    );

    let (target, home) = INCLUDES[usize::from(selector / 2 % 3)];
    let (target, home) = (Path::new(target), Path::new(home));
    let existing = (selector & 0x80 == 0).then_some(old);
    let prefix = plan_include(None, target, home)
        .expect("valid Include target")
        .expect("an absent file gets the Include");
    match plan_include(existing, target, home).expect("valid Include target") {
        Some(out) => {
            let mut expected = prefix;
            expected.extend_from_slice(existing.unwrap_or_default());
            assert_eq!(out, expected, "plan_include changed the old bytes");
            assert_eq!(
                plan_include(Some(&out), target, home).expect("valid Include target"),
                None,
                "plan_include does not find its own Include"
            );
            assert_eq!(
                plan_remove_include(&out, target, home).expect("valid Include target"),
                Some(existing.unwrap_or_default().to_vec()),
                "plan_remove_include does not undo plan_include"
            );
        }
        None => {
            let old = existing.expect("an absent file cannot already include anything");
            assert!(
                old.windows(7).any(|w| w.eq_ignore_ascii_case(b"include")),
                "plan_include found an Include in a file without one"
            );
        }
    }
}

/// Bidi controls, which sanitize::for_terminal_within promises never to pass through.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `serve::parse_request` never panics; an accepted request names a non-empty path that does
/// not start with `-` and is not `~otheruser`, carries further words only for git-annex-shell
/// and never a `-c` among them, names a git-annex-shell command of the documented list (never
/// `gcryptsetup`, which rewrites the repository's config), and came from a request of at most
/// `MAX_REQUEST_LEN` bytes without control characters; a refusal displays as one short line
/// with no control or bidi character (the peer sees it on its terminal).
pub fn serve_request(data: &[u8]) {
    let request = String::from_utf8_lossy(data);
    match serve::parse_request(&request) {
        Ok(req) => {
            assert!(!req.path.is_empty());
            assert!(!req.path.starts_with('-'), "{:?}", req.path);
            assert!(
                !req.path.starts_with('~') || req.path == "~" || req.path.starts_with("~/"),
                "{:?}",
                req.path
            );
            assert!(request.len() <= MAX_REQUEST_LEN);
            assert!(!request.chars().any(char::is_control));
            // Only git-annex-shell takes more words, and never git configuration.
            assert!(
                req.args.is_empty() || matches!(req.service, serve::Service::AnnexShell(_)),
                "{req:?}"
            );
            assert!(
                !req.args.iter().any(|a| a.starts_with("-c")),
                "{:?}",
                req.args
            );
            if let serve::Service::AnnexShell(command) = req.service {
                assert!(serve::allowed_annex_commands().contains(&command.name()));
                assert_ne!(command.name(), "gcryptsetup");
            }
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !message.chars().any(|c| c.is_control() || is_bidi(c)),
                "{message:?}"
            );
            assert!(message.len() <= 4096, "{} bytes", message.len());
        }
    }
}
