//! `~/.ssh/authorized_keys`: git-pair's lines in the user's file.
//!
//! git-pair adds one line per paired peer:
//!
//! ```text
//! restrict,command="'/usr/bin/git-pair' serve --repo '/home/alice/notes'" ssh-ed25519 AAAA… git-pair:<marker> <label>
//! ```
//!
//! The comment starts with `git-pair:<marker>`, which is how [`plan_remove`] and a re-pair find
//! the line again; the label after it is for humans. Every other line is kept byte for byte.
//!
//! Lines are read the way sshd reads them: a line is a key line if it is a public key, or if it is
//! one once the options field is skipped (up to the first space or tab outside double quotes,
//! `\"` not ending a quote: sshd's `sshkey_advance_past_options`). The key itself is parsed by
//! [`ssh_key::PublicKey::from_openssh`]. `ssh_key::authorized_keys::Entry` is not used to find
//! the options field because it splits at the first space, so it rejects every line whose
//! options contain a space, git-pair's own included (see the `ssh_key_entry_cannot_parse_our_line`
//! test), and `AuthorizedKeys` cuts lines at the first `#`, even inside quotes.

use ssh_key::{Fingerprint, PublicKey};

use super::{line_content, lines, terminate_last_line, AuthorizedEntry, Error};

/// How git-pair's comments start: `git-pair:<marker> <label>`.
pub const MARKER_PREFIX: &str = "git-pair:";

/// A line git-pair wrote, as found by [`git_pair_lines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitPairLine {
    /// 1-based line number.
    pub line: usize,
    /// The key, with the whole comment as its comment.
    pub key: PublicKey,
    pub marker: String,
    pub label: String,
}

/// The line [`plan_add`] appends for `entry` (without the newline).
///
/// The command goes inside `command="…"` with each `"` written as `\"`: sshd turns `\"` back
/// into `"` and keeps every other backslash, so this is exact, except for a command ending in a
/// backslash (its `\"` would not close the quote), which is refused along with control
/// characters and an empty command.
pub fn render_line(entry: &AuthorizedEntry) -> Result<String, Error> {
    validate_marker(&entry.marker)?;
    validate_command(&entry.command)?;
    let mut key = entry.key.clone();
    key.set_comment("");
    let key = key.to_openssh()?;
    let command = entry.command.replace('"', "\\\"");
    let label = crate::sanitize::for_comment(&entry.label);
    let separator = if label.is_empty() { "" } else { " " };
    Ok(format!(
        "restrict,command=\"{command}\" {key} {MARKER_PREFIX}{}{separator}{label}",
        entry.marker
    ))
}

/// Checks a marker: 1 to 200 characters from `A-Z a-z 0-9 . _ - : @ + = /` (no space, so that
/// it is one word of the comment).
pub fn validate_marker(marker: &str) -> Result<(), Error> {
    let ok = !marker.is_empty()
        && marker.len() <= 200
        && marker.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'-' | b':' | b'@' | b'+' | b'=' | b'/')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: "authorized_keys marker",
            value: marker.to_owned(),
            reason: "use 1 to 200 of: letters, digits, '.', '_', '-', ':', '@', '+', '=', '/'",
        })
    }
}

fn validate_command(command: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidValue {
        what: "forced command",
        value: command.to_owned(),
        reason,
    };
    if command.is_empty() {
        return Err(invalid("it is empty"));
    }
    if command.chars().any(char::is_control) {
        return Err(invalid(
            "it contains a newline or another control character",
        ));
    }
    if command.ends_with('\\') {
        return Err(invalid(
            "it ends with a backslash, which sshd would read as an escaped closing quote",
        ));
    }
    Ok(())
}

/// The new file: `existing` without git-pair's lines for this pairing (marker `entry.marker`) or
/// for the pairings it replaces (markers in `replaces`), then the line for `entry`.
///
/// Every other line is kept byte for byte, including lines that do not parse (even if they
/// contain the key's text), comments, CRLF endings and non-UTF-8 bytes. If the kept bytes do not
/// end with `\n`, one is added before the new line.
///
/// sshd uses the first line that matches a key, so another line that lets `entry.key` in would
/// override the forced command. Such a line is never dropped or edited; the plan is refused
/// instead ([`key_conflicts`] finds them before anything is written): a line git pair did not
/// write gives [`Error::KeyAuthorizedByHand`], a line of another pairing
/// [`Error::KeyInAnotherPairing`].
pub fn plan_add(
    existing: &[u8],
    entry: &AuthorizedEntry,
    replaces: &[String],
) -> Result<Vec<u8>, Error> {
    let line = render_line(entry)?;
    let ours = |marker: &str| marker == entry.marker || replaces.iter().any(|r| r == marker);
    if let Some(conflict) = key_conflicts(existing, &entry.key, &ours)
        .into_iter()
        .next()
    {
        return Err(match conflict.marker {
            None => Error::KeyAuthorizedByHand {
                line: conflict.line,
            },
            Some(marker) => Error::KeyInAnotherPairing {
                line: conflict.line,
                marker,
            },
        });
    }
    let mut out = Vec::with_capacity(existing.len() + line.len() + 2);
    for l in lines(existing) {
        let replaced = parse_line(l).is_some_and(|key| marker_of(key.comment()).is_some_and(ours));
        if !replaced {
            out.extend_from_slice(l);
        }
    }
    terminate_last_line(&mut out);
    out.extend_from_slice(line.as_bytes());
    out.push(b'\n');
    Ok(out)
}

/// A line that already lets a key in, found by [`key_conflicts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyConflict {
    /// 1-based line number.
    pub line: usize,
    /// git-pair's marker when git pair wrote the line; `None` for a line it did not write.
    pub marker: Option<String>,
    /// The label of git-pair's line (the peer it was paired with), or the comment of another.
    pub label: String,
}

/// The lines of `existing` that let `key` in (same key data, whatever the options or comment),
/// except git-pair's lines whose marker `ours` accepts (the pairing being written, or one it
/// replaces).
pub fn key_conflicts(
    existing: &[u8],
    key: &PublicKey,
    ours: &dyn Fn(&str) -> bool,
) -> Vec<KeyConflict> {
    lines(existing)
        .enumerate()
        .filter_map(|(i, l)| {
            let found = parse_line(l)?;
            if found.key_data() != key.key_data() {
                return None;
            }
            let marker = marker_of(found.comment()).map(str::to_owned);
            if marker.as_deref().is_some_and(ours) {
                return None;
            }
            let label = match &marker {
                Some(m) => found.comment()[MARKER_PREFIX.len() + m.len()..]
                    .trim()
                    .to_owned(),
                None => found.comment().trim().to_owned(),
            };
            Some(KeyConflict {
                line: i + 1,
                marker,
                label,
            })
        })
        .collect()
}

/// The new file: `existing` without git-pair's lines (tagged `git-pair:<marker>`) whose marker
/// equals `marker` or whose key has `fingerprint` (either suffices; `None`, `None` changes
/// nothing). Lines git-pair did not write are never removed, even with the same key. Every kept
/// line is byte for byte.
pub fn plan_remove(
    existing: &[u8],
    fingerprint: Option<&Fingerprint>,
    marker: Option<&str>,
) -> Vec<u8> {
    let removed = |line: &[u8]| {
        let Some(key) = parse_line(line) else {
            return false;
        };
        let Some(found) = marker_of(key.comment()) else {
            return false;
        };
        marker == Some(found)
            || fingerprint.is_some_and(|fp| key.fingerprint(fp.algorithm()) == *fp)
    };
    lines(existing)
        .filter(|l| !removed(l))
        .flatten()
        .copied()
        .collect()
}

/// Every line git-pair wrote, for `git pair list`.
pub fn git_pair_lines(existing: &[u8]) -> Vec<GitPairLine> {
    lines(existing)
        .enumerate()
        .filter_map(|(i, l)| {
            let key = parse_line(l)?;
            let marker = marker_of(key.comment())?.to_owned();
            let label = key.comment()[MARKER_PREFIX.len() + marker.len()..]
                .trim()
                .to_owned();
            Some(GitPairLine {
                line: i + 1,
                key,
                marker,
                label,
            })
        })
        .collect()
}

/// The git-pair marker of a comment `git-pair:<marker>[ <label>]`.
fn marker_of(comment: &str) -> Option<&str> {
    let rest = comment.strip_prefix(MARKER_PREFIX)?;
    let marker = rest.split([' ', '\t']).next().unwrap_or_default();
    (!marker.is_empty()).then_some(marker)
}

/// The key a line gives access to, as sshd sees it, or `None` for comments, blank lines and
/// lines that do not parse. Bytes that are not UTF-8 can only sit in options or the comment,
/// which sshd does not decode either, so they are replaced for parsing only.
fn parse_line(line: &[u8]) -> Option<PublicKey> {
    let text = String::from_utf8_lossy(line_content(line));
    let text = text.trim_start_matches([' ', '\t']);
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    // sshd's order: the whole line as a key first, then after skipping the options.
    if let Ok(key) = PublicKey::from_openssh(text) {
        return Some(key);
    }
    let rest = skip_options(text)?;
    PublicKey::from_openssh(rest.trim_start_matches([' ', '\t'])).ok()
}

/// What follows the options field, as sshd's `sshkey_advance_past_options` finds it: the first
/// space or tab outside double quotes, where `\"` does not toggle the quoting. `None` for an
/// unterminated quote (sshd rejects the line).
fn skip_options(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() && (quoted || !matches!(bytes[i], b' ' | b'\t')) {
        if bytes[i] == b'\\' && bytes.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if bytes[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    // `i` is at an ASCII byte or at the end, so this is a char boundary.
    (!quoted).then(|| &text[i..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh_files::test_keys::{self, ECDSA_PUB, ED25519_PUB, RSA_PUB};
    use proptest::prelude::*;
    use std::path::Path;

    /// sshd's `opt_dequote` (auth-options.c): `\"` becomes `"`, every other byte, backslashes
    /// included, is kept; stops at the first unescaped `"`. Returns the value and the rest.
    fn sshd_dequote(s: &[u8]) -> Option<(Vec<u8>, &[u8])> {
        let mut s = s.strip_prefix(b"\"")?;
        let mut out = Vec::new();
        loop {
            match s {
                [] => return None,
                [b'"', rest @ ..] => return Some((out, rest)),
                [b'\\', b'"', rest @ ..] => {
                    out.push(b'"');
                    s = rest;
                }
                [c, rest @ ..] => {
                    out.push(*c);
                    s = rest;
                }
            }
        }
    }

    /// The forced command sshd would run for a rendered line, read the way sshd reads it.
    fn sshd_command(line: &str) -> Vec<u8> {
        let options_len = line.len() - skip_options(line).unwrap().len();
        let options = &line.as_bytes()[..options_len];
        let at = options
            .windows(b"command=".len())
            .position(|w| w == b"command=")
            .unwrap();
        let (value, rest) = sshd_dequote(&options[at + b"command=".len()..]).unwrap();
        assert!(rest.is_empty(), "command= must be the last option");
        value
    }

    fn entry(key: &PublicKey, marker: &str) -> AuthorizedEntry {
        AuthorizedEntry {
            key: key.clone(),
            command: crate::ssh_files::forced_command(
                Path::new("/usr/bin/git-pair"),
                Path::new("/home/alice/my notes"),
            )
            .unwrap(),
            marker: marker.to_owned(),
            label: "bob@desk:/home/bob/notes".to_owned(),
        }
    }

    /// A public key line without its comment.
    fn bare(line: &str) -> String {
        line.split(' ').take(2).collect::<Vec<_>>().join(" ")
    }

    fn pubkey(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    /// A file with everything a real one may hold; none of its lines has ED25519_PUB's key or
    /// the marker "m1".
    fn weird_file() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(b"# my keys\n");
        f.extend_from_slice(format!("{RSA_PUB}\r\n").as_bytes());
        f.extend_from_slice(format!("from=\"10.0.0.1, 10.0.0.2\",no-pty {ECDSA_PUB}\n").as_bytes());
        f.extend_from_slice(b"\n   \n\t\n");
        f.extend_from_slice(b"ssh-ed25519 AAAAnotbase64!! broken\n");
        f.extend_from_slice(b"\xff\xfe not utf-8 at all \x80\n");
        f.extend_from_slice(format!("  {RSA_PUB} caf\u{e9} ").as_bytes());
        f.extend_from_slice(b"\xe9t\xe9\n"); // Latin-1 in a comment
        f.extend_from_slice(
            format!(
                "restrict,command=\"x y\" {} git-pair:other label\n",
                bare(ECDSA_PUB)
            )
            .as_bytes(),
        );
        f.extend_from_slice(b"\r\n");
        f.extend_from_slice(RSA_PUB.as_bytes()); // no final newline
        f
    }

    #[test]
    fn known_answer_fingerprints_of_pasted_keys() {
        use ssh_key::HashAlg::Sha256;
        assert_eq!(
            pubkey(RSA_PUB).fingerprint(Sha256).to_string(),
            "SHA256:9/eqUyrL3pEPM+Uxxii8tzKnCcvcLt5QEOogp4Fy50k"
        );
        assert_eq!(
            pubkey(ECDSA_PUB).fingerprint(Sha256).to_string(),
            "SHA256:vheLK4M9FMi0KJGUOnzcSiuqHiXBB+0pwh1TTeQOypw"
        );
        assert_eq!(
            pubkey(ED25519_PUB).fingerprint(Sha256).to_string(),
            "SHA256:vDQD8pvikHX4oM1zZb6Pyrl+TqXz57r9G/oB7PXLp0U"
        );
    }

    #[test]
    fn render_line_exact_format() {
        let mut e = entry(&pubkey(ED25519_PUB), "repo-1:peer-2");
        e.command = r#"say "hi" \n \"x\""#.to_owned();
        assert_eq!(
            render_line(&e).unwrap(),
            "restrict,command=\"say \\\"hi\\\" \\n \\\\\"x\\\\\"\" \
             ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDZpaqOFP8Focd9pYWXxjkTE3Q0U/hZAv5ABDIwfZWjN \
             git-pair:repo-1:peer-2 bob@desk:/home/bob/notes"
        );
        e.label = String::new();
        assert!(render_line(&e)
            .unwrap()
            .ends_with(" git-pair:repo-1:peer-2"));
    }

    #[test]
    fn command_survives_sshd_dequoting() {
        let key = pubkey(ED25519_PUB);
        for command in [
            "plain",
            r#"a "quoted" word"#,
            r"back\slash",
            r#"escaped \" quote"#,
            r#"\\" double backslash then quote"#,
            r#""""#,
            "'/opt/git pair' serve --repo '/home/a/o'\\''b \"c\" #d,e'",
            "ünïcødé 日本",
        ] {
            let mut e = entry(&key, "m");
            e.command = command.to_owned();
            let line = render_line(&e).unwrap();
            assert_eq!(sshd_command(&line), command.as_bytes(), "{line}");
            assert_eq!(
                parse_line(line.as_bytes()).unwrap().key_data(),
                key.key_data()
            );
        }
    }

    #[test]
    fn render_refuses_what_cannot_be_written() {
        let key = pubkey(ED25519_PUB);
        for command in ["", "a\nb", "a\rb", "a\0b", "ends with \\"] {
            let mut e = entry(&key, "m");
            e.command = command.to_owned();
            assert!(
                matches!(render_line(&e), Err(Error::InvalidValue { .. })),
                "{command:?}"
            );
        }
        for marker in ["", "a b", "a\nb", "ü", &"m".repeat(201)] {
            let e = entry(&key, marker);
            assert!(
                matches!(render_line(&e), Err(Error::InvalidValue { .. })),
                "{marker:?}"
            );
            assert!(plan_add(b"", &e, &[]).is_err());
        }
    }

    #[test]
    fn label_cannot_break_the_line_or_hide_text() {
        let mut e = entry(&pubkey(ED25519_PUB), "m");
        e.label = "evil\nssh-ed25519 AAAA\r\u{202E}txt.exe\u{200B}\t\u{2028}".to_owned();
        let line = render_line(&e).unwrap();
        assert!(
            line.ends_with("git-pair:m evil?ssh-ed25519 AAAA??txt.exe???"),
            "{line}"
        );
        let out = plan_add(b"", &e, &[]).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    }

    #[test]
    fn add_to_empty_file() {
        let e = entry(&pubkey(ED25519_PUB), "m1");
        let out = plan_add(b"", &e, &[]).unwrap();
        assert_eq!(out, format!("{}\n", render_line(&e).unwrap()).into_bytes());
    }

    #[test]
    fn add_keeps_every_other_line_byte_for_byte() {
        let e = entry(&pubkey(ED25519_PUB), "m1");
        let old = weird_file();
        let out = plan_add(&old, &e, &[]).unwrap();
        let mut expected = old.clone();
        expected.push(b'\n'); // the old file had no final newline
        expected.extend_from_slice(render_line(&e).unwrap().as_bytes());
        expected.push(b'\n');
        assert_eq!(out, expected);
    }

    #[test]
    fn parses_the_lines_sshd_would() {
        let parsed: Vec<Option<String>> = lines(&weird_file())
            .map(|l| parse_line(l).map(|k| k.algorithm().to_string()))
            .collect();
        let rsa = Some("ssh-rsa".to_owned());
        let ec = Some("ecdsa-sha2-nistp256".to_owned());
        assert_eq!(
            parsed,
            vec![
                None,
                rsa.clone(),
                ec.clone(),
                None,
                None,
                None,
                None,
                None,
                rsa.clone(),
                ec,
                None,
                rsa
            ]
        );
    }

    /// Issue 8, item 4: a line git pair did not write that lets the peer's key in is never
    /// dropped or edited (it may be the user's own unrestricted access): the plan is refused,
    /// naming the line. Lines holding the key's text that sshd would not read as that key do not
    /// count.
    #[test]
    fn add_refuses_a_key_that_a_line_it_did_not_write_lets_in() {
        let key = pubkey(ED25519_PUB);
        let bare = bare(ED25519_PUB);
        let e = entry(&key, "m1");
        let harmless = format!("keep 1\n# {ED25519_PUB}\ncommand=\"unterminated {bare}\n{bare}x\n");
        for (line, number) in [
            (format!("{ED25519_PUB}\r\n"), 5),
            (
                format!("no-agent-forwarding,command=\"echo a b\" {bare} x\n"),
                5,
            ),
            (format!("\t {bare} caf\u{e9}\n"), 5),
        ] {
            let old = format!("{harmless}{line}").into_bytes();
            assert!(
                matches!(
                    plan_add(&old, &e, &[]),
                    Err(Error::KeyAuthorizedByHand { line: n }) if n == number
                ),
                "{line:?}"
            );
            let found = key_conflicts(&old, &key, &|m| m == "m1");
            assert_eq!(found.len(), 1);
            assert_eq!((found[0].line, found[0].marker.clone()), (number, None));
        }
        // Without such a line, every line is kept and ours is appended.
        let out = plan_add(harmless.as_bytes(), &e, &[]).unwrap();
        assert!(out.starts_with(harmless.as_bytes()));
        assert!(key_conflicts(harmless.as_bytes(), &key, &|_| false).is_empty());
    }

    /// git-pair's own line of another pairing with the same key is refused too (one key opens
    /// one repository), unless it belongs to a pairing being replaced.
    #[test]
    fn add_refuses_a_key_of_another_pairing_unless_it_is_replaced() {
        let key = pubkey(ED25519_PUB);
        let other = plan_add(b"a\n", &entry(&key, "other-marker"), &[]).unwrap();
        assert!(matches!(
            plan_add(&other, &entry(&key, "m1"), &[]),
            Err(Error::KeyInAnotherPairing { line: 2, ref marker }) if marker == "other-marker"
        ));
        let out = plan_add(&other, &entry(&key, "m1"), &["other-marker".to_owned()]).unwrap();
        let found: Vec<String> = git_pair_lines(&out).into_iter().map(|l| l.marker).collect();
        assert_eq!(found, ["m1"]);
        assert!(out.starts_with(b"a\n"));
        // A replaced pairing's line goes even when its key differs (the peer's new key).
        let rsa = plan_add(b"", &entry(&pubkey(RSA_PUB), "old"), &[]).unwrap();
        let out = plan_add(&rsa, &entry(&key, "m1"), &["old".to_owned()]).unwrap();
        assert_eq!(git_pair_lines(&out).len(), 1);
    }

    #[test]
    fn add_replaces_lines_with_the_same_marker() {
        let old_key = pubkey(ECDSA_PUB);
        let new_key = pubkey(ED25519_PUB);
        let first = plan_add(b"a\n", &entry(&old_key, "m1"), &[]).unwrap();
        let mut with_other = first.clone();
        with_other.extend_from_slice(
            render_line(&entry(&pubkey(RSA_PUB), "m2"))
                .unwrap()
                .as_bytes(),
        );
        with_other.push(b'\n');
        let out = plan_add(&with_other, &entry(&new_key, "m1"), &[]).unwrap();
        let found: Vec<(String, usize)> = git_pair_lines(&out)
            .into_iter()
            .map(|l| (l.marker, l.line))
            .collect();
        assert_eq!(found, vec![("m2".to_owned(), 2), ("m1".to_owned(), 3)]);
        assert_eq!(git_pair_lines(&out)[1].key.key_data(), new_key.key_data());
        // The user's own line with the old key is not git-pair's, and has another key: kept.
        assert!(out.starts_with(b"a\n"));
    }

    #[test]
    fn re_add_is_idempotent() {
        let e = entry(&pubkey(ED25519_PUB), "m1");
        let once = plan_add(&weird_file(), &e, &[]).unwrap();
        assert_eq!(plan_add(&once, &e, &[]).unwrap(), once);
    }

    #[test]
    fn remove_finds_exactly_what_add_wrote() {
        let key = pubkey(ED25519_PUB);
        let e = entry(&key, "m1");
        let mut old = weird_file();
        old.push(b'\n');
        let added = plan_add(&old, &e, &[]).unwrap();
        assert_eq!(plan_remove(&added, None, Some("m1")), old);
        let fp = key.fingerprint(ssh_key::HashAlg::Sha256);
        assert_eq!(plan_remove(&added, Some(&fp), None), old);
        let fp512 = key.fingerprint(ssh_key::HashAlg::Sha512);
        assert_eq!(plan_remove(&added, Some(&fp512), Some("nope")), old);
        // Nothing asked, or nothing matching: unchanged.
        assert_eq!(plan_remove(&added, None, None), added);
        assert_eq!(plan_remove(&added, None, Some("m")), added);
        // The git-pair line for another marker in weird_file() stays.
        assert_eq!(
            git_pair_lines(&plan_remove(&added, None, Some("m1"))).len(),
            1
        );
    }

    #[test]
    fn remove_never_touches_lines_git_pair_did_not_write() {
        let key = pubkey(ED25519_PUB);
        let added = plan_add(b"", &entry(&key, "m1"), &[]).unwrap();
        // The user adds the same key back by hand, unrestricted.
        let mut file = added.clone();
        file.extend_from_slice(format!("{ED25519_PUB}\n").as_bytes());
        let fp = key.fingerprint(ssh_key::HashAlg::Sha256);
        assert_eq!(
            plan_remove(&file, Some(&fp), None),
            format!("{ED25519_PUB}\n").into_bytes()
        );
    }

    #[test]
    fn crlf_file_without_final_newline_gets_one() {
        let e = entry(&pubkey(ED25519_PUB), "m1");
        let old = format!("{RSA_PUB}\r\n{ECDSA_PUB}\r").into_bytes();
        let out = plan_add(&old, &e, &[]).unwrap();
        assert!(out.starts_with(&old));
        assert_eq!(&out[old.len()..old.len() + 1], b"\n");
        assert_eq!(
            parse_line(&out[RSA_PUB.len() + 2..old.len() + 1]).unwrap(),
            pubkey(ECDSA_PUB)
        );
    }

    #[test]
    fn git_pair_lines_lists_marker_and_label() {
        let e = entry(&pubkey(ED25519_PUB), "m1");
        let out = plan_add(b"x\n", &e, &[]).unwrap();
        let found = git_pair_lines(&out);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 2);
        assert_eq!(found[0].marker, "m1");
        assert_eq!(found[0].label, "bob@desk:/home/bob/notes");
    }

    /// Pins the upstream limitation this module works around: if ssh-key learns to parse
    /// quoted options with spaces, this fails and `parse_line` could use `Entry` directly.
    #[test]
    fn ssh_key_entry_cannot_parse_our_line() {
        let line = render_line(&entry(&pubkey(ED25519_PUB), "m1")).unwrap();
        assert!(line.parse::<ssh_key::authorized_keys::Entry>().is_err());
        assert!(parse_line(line.as_bytes()).is_some());
        // Where there is no space in the options, both agree.
        let simple = format!("restrict,command=\"true\" {RSA_PUB}");
        let entry: ssh_key::authorized_keys::Entry = simple.parse().unwrap();
        assert_eq!(entry.config_opts().as_str(), "restrict,command=\"true\"");
        assert_eq!(
            Some(entry.public_key().clone()),
            parse_line(simple.as_bytes())
        );
    }

    /// OpenSSH's own parser (ssh-keygen -l on an authorized_keys file skips options the way sshd
    /// does) must find our line's key. Skipped, with a message, where ssh-keygen is missing.
    #[test]
    fn ssh_keygen_reads_the_line_we_write() {
        let key = test_keys::ed25519_public();
        let e = entry(&key, "m1");
        let home = crate::ssh_files::io_tests::TempHome::new();
        let file = home.path().join("authorized_keys");
        std::fs::write(&file, plan_add(&weird_file(), &e, &[]).unwrap()).unwrap();
        let out = match std::process::Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&file)
            .output()
        {
            Ok(out) => out,
            Err(err) => {
                crate::ssh_files::test_keys::skip(&format!("ssh-keygen is not runnable ({err})"));
                return;
            }
        };
        let stdout = String::from_utf8_lossy(&out.stdout);
        let fp = key.fingerprint(ssh_key::HashAlg::Sha256).to_string();
        let ours: Vec<&str> = stdout.lines().filter(|l| l.contains(&fp)).collect();
        assert_eq!(ours.len(), 1, "{stdout}");
        assert!(
            ours[0].contains("git-pair:m1 bob@desk:/home/bob/notes"),
            "{stdout}"
        );
    }

    fn arb_command() -> impl Strategy<Value = String> {
        "[ -~\u{e9}\u{65e5}]{1,40}".prop_filter("no trailing backslash", |c| !c.ends_with('\\'))
    }

    /// Lines of every kind that hold neither ED25519_PUB's key nor the marker "m1".
    fn arb_line() -> impl Strategy<Value = Vec<u8>> {
        let fixed: Vec<Vec<u8>> = lines(&weird_file()).map(<[u8]>::to_vec).collect();
        prop_oneof![
            prop::sample::select(fixed),
            prop::collection::vec(any::<u8>(), 0..60),
            (arb_command(), "[a-z0-9]{1,8}").prop_map(|(c, m)| {
                let e = AuthorizedEntry {
                    key: PublicKey::from_openssh(RSA_PUB).unwrap(),
                    command: c,
                    marker: format!("x{m}"),
                    label: "l".into(),
                };
                format!("{}\n", render_line(&e).unwrap()).into_bytes()
            }),
        ]
    }

    proptest! {
        /// Property: for all `old` that is empty or ends with '\n',
        /// `plan_remove(plan_add(old, e), None, Some(e.marker)) == old` minus the lines that
        /// `plan_add` replaced (key lines with e's key or marker); for arbitrary bytes (which
        /// hold no such line, checked by `prop_assume`) that is exactly `old`.
        #[test]
        fn add_then_remove_by_marker_gives_back_arbitrary_bytes(mut old in prop::collection::vec(any::<u8>(), 0..400)) {
            if !old.is_empty() && !old.ends_with(b"\n") {
                old.push(b'\n');
            }
            let e = entry(&pubkey(ED25519_PUB), "m1");
            prop_assume!(lines(&old).all(|l| parse_line(l).is_none_or(|k| {
                k.key_data() != e.key.key_data() && marker_of(k.comment()) != Some("m1")
            })));
            let added = plan_add(&old, &e, &[]).unwrap();
            prop_assert_eq!(plan_remove(&added, None, Some("m1")), old);
        }

        /// Same property on files made of real, odd and git-pair lines with lines that
        /// `plan_add` must replace mixed in (git-pair's lines with its marker, whatever their key):
        /// the result is `old` without exactly those lines.
        #[test]
        fn add_then_remove_by_marker_gives_back_the_kept_lines(
            parts in prop::collection::vec(arb_line(), 0..12),
            conflicts in prop::collection::vec((0usize..12, 0usize..3), 0..3),
        ) {
            let key = pubkey(ED25519_PUB);
            let e = entry(&key, "m1");
            let conflict_lines = [
                format!("restrict,command=\"x\" {} git-pair:m1\n", bare(ECDSA_PUB)),
                format!("restrict,command=\"a b\" {} git-pair:m1 old\n", bare(ED25519_PUB)),
                format!("restrict,command=\"c\" {} git-pair:m1\r\n", bare(RSA_PUB)),
            ];
            let mut lines_in: Vec<(Vec<u8>, bool)> = parts.into_iter().map(|mut p| {
                if !p.ends_with(b"\n") { p.push(b'\n'); }
                (p, false)
            }).collect();
            // Arbitrary bytes may contain '\n' and so be several lines: only whole-file
            // behaviour is compared below.
            for (at, which) in conflicts {
                let at = at.min(lines_in.len());
                lines_in.insert(at, (conflict_lines[which].clone().into_bytes(), true));
            }
            let old: Vec<u8> = lines_in.iter().flat_map(|(l, _)| l.clone()).collect();
            let without_conflicts: Vec<u8> =
                lines_in.iter().filter(|(_, c)| !c).flat_map(|(l, _)| l.clone()).collect();
            let added = plan_add(&old, &e, &[]).unwrap();
            prop_assert_eq!(plan_remove(&added, None, Some("m1")), without_conflicts.clone());
            let fp = key.fingerprint(ssh_key::HashAlg::Sha256);
            prop_assert_eq!(plan_remove(&added, Some(&fp), None), without_conflicts);
        }

        /// plan_add is idempotent on any input it accepts, and refuses exactly when another
        /// line lets the key in.
        #[test]
        fn add_is_idempotent(old in prop::collection::vec(any::<u8>(), 0..300), c in arb_command()) {
            let mut e = entry(&pubkey(ED25519_PUB), "m1");
            e.command = c;
            let refused = !key_conflicts(&old, &e.key, &|m| m == "m1").is_empty();
            prop_assert_eq!(plan_add(&old, &e, &[]).is_err(), refused);
            prop_assume!(!refused);
            let once = plan_add(&old, &e, &[]).unwrap();
            prop_assert_eq!(plan_add(&once, &e, &[]).unwrap(), once);
        }

        /// The command sshd reads back out of the line is the command we were given.
        #[test]
        fn any_command_round_trips_through_sshd_dequoting(c in arb_command()) {
            let mut e = entry(&pubkey(ED25519_PUB), "m1");
            e.command = c.clone();
            let line = render_line(&e).unwrap();
            prop_assert_eq!(sshd_command(&line), c.into_bytes());
            prop_assert_eq!(parse_line(line.as_bytes()).map(|k| k.key_data().clone()), Some(e.key.key_data().clone()));
        }
    }
}
