//! `~/.ssh/git-pair/known_hosts`: the peers' sshd host keys, pinned under their aliases.
//!
//! Each pairing's `Host` block sets `HostKeyAlias <alias>` and `UserKnownHostsFile` to this
//! file, so ssh looks the peer's host key up by alias, whatever address the peer has today. One
//! line per key: `<alias> <openssh public key>`. Lines are parsed with
//! [`ssh_key::known_hosts::Entry`]; a line "for the alias" is one whose host patterns include the
//! alias (compared without case, as ssh does), so that a re-pair leaves exactly the new keys
//! trusted. Every other line is kept byte for byte.

use ssh_key::known_hosts::{Entry, HostPatterns};
use ssh_key::PublicKey;

use super::{line_content, lines, terminate_last_line, validate_alias, Error};

/// The new file: `existing` without the lines for `alias`, then one line per distinct key in
/// `keys` (in order, comments dropped). A `\n` is added first if the kept bytes lack one.
pub fn plan(existing: &[u8], alias: &str, keys: &[PublicKey]) -> Result<Vec<u8>, Error> {
    validate_alias(alias)?;
    let mut new_lines = String::new();
    let mut seen = Vec::new();
    for key in keys {
        if seen.contains(&key.key_data()) {
            continue;
        }
        seen.push(key.key_data());
        let mut key = key.clone();
        key.set_comment("");
        new_lines.push_str(&format!("{alias} {}\n", key.to_openssh()?));
    }
    let mut out = plan_remove(existing, alias);
    terminate_last_line(&mut out);
    out.extend_from_slice(new_lines.as_bytes());
    Ok(out)
}

/// The new file without the lines for `alias`; every other line byte for byte.
pub fn plan_remove(existing: &[u8], alias: &str) -> Vec<u8> {
    lines(existing)
        .filter(|line| !is_for(line, alias))
        .flatten()
        .copied()
        .collect()
}

/// The keys pinned for `alias`, in file order (for `git pair list` and checks).
pub fn keys_for(existing: &[u8], alias: &str) -> Vec<PublicKey> {
    lines(existing)
        .filter_map(|line| parse(line).filter(|e| names(e, alias)))
        .map(|e| e.public_key().clone())
        .collect()
}

fn is_for(line: &[u8], alias: &str) -> bool {
    parse(line).is_some_and(|entry| names(&entry, alias))
}

fn names(entry: &Entry, alias: &str) -> bool {
    match entry.host_patterns() {
        HostPatterns::Patterns(patterns) => patterns.iter().any(|p| p.eq_ignore_ascii_case(alias)),
        // Hashed names cannot be git-pair's: it writes the alias in clear.
        HostPatterns::HashedName { .. } => false,
    }
}

fn parse(line: &[u8]) -> Option<Entry> {
    let text = String::from_utf8_lossy(line_content(line));
    let text = text.trim_start_matches([' ', '\t']);
    if text.is_empty() || text.starts_with('#') {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh_files::io_tests::TempHome;
    use crate::ssh_files::test_keys::{ECDSA_PUB, ED25519_PUB, RSA_PUB};
    use proptest::prelude::*;

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    fn bare(line: &str) -> String {
        line.split(' ').take(2).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn plan_writes_one_line_per_distinct_key() {
        let out = plan(
            b"",
            "git-pair-x",
            &[key(ED25519_PUB), key(ECDSA_PUB), key(ED25519_PUB)],
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!(
                "git-pair-x {}\ngit-pair-x {}\n",
                bare(ED25519_PUB),
                bare(ECDSA_PUB)
            )
        );
    }

    #[test]
    fn plan_replaces_earlier_lines_for_the_alias_and_keeps_the_rest() {
        let mut old = Vec::new();
        old.extend_from_slice(b"# comment git-pair-x\n");
        old.extend_from_slice(format!("git-pair-x {}\r\n", bare(RSA_PUB)).as_bytes());
        old.extend_from_slice(format!("other {ED25519_PUB}\n").as_bytes());
        old.extend_from_slice(format!("  GIT-PAIR-X,10.0.0.2 {ECDSA_PUB}\n").as_bytes());
        old.extend_from_slice(format!("git-pair-xy {}\n", bare(RSA_PUB)).as_bytes());
        old.extend_from_slice(format!("!git-pair-x {}\n", bare(RSA_PUB)).as_bytes());
        old.extend_from_slice(
            b"|1|JfKTdBh7rNbXkVAQCRp4OQoPfmI=|USECr3SWf1JUPsms5AqfD5QfxkM= ssh-ed25519 AAAA\n",
        );
        old.extend_from_slice(b"git-pair-x not a key \xff\n");
        old.extend_from_slice(format!("git-pair-x {}", bare(RSA_PUB)).as_bytes()); // no final newline
        let out = plan(&old, "git-pair-x", &[key(ED25519_PUB)]).unwrap();
        let mut expected = Vec::new();
        expected.extend_from_slice(b"# comment git-pair-x\n");
        expected.extend_from_slice(format!("other {ED25519_PUB}\n").as_bytes());
        expected.extend_from_slice(format!("git-pair-xy {}\n", bare(RSA_PUB)).as_bytes());
        expected.extend_from_slice(format!("!git-pair-x {}\n", bare(RSA_PUB)).as_bytes());
        expected.extend_from_slice(
            b"|1|JfKTdBh7rNbXkVAQCRp4OQoPfmI=|USECr3SWf1JUPsms5AqfD5QfxkM= ssh-ed25519 AAAA\n",
        );
        expected.extend_from_slice(b"git-pair-x not a key \xff\n");
        expected.extend_from_slice(format!("git-pair-x {}\n", bare(ED25519_PUB)).as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(out, expected);
        assert_eq!(keys_for(&out, "git-pair-x"), vec![key(&bare(ED25519_PUB))]);
    }

    #[test]
    fn plan_is_idempotent_and_remove_undoes_it() {
        let old = format!("other {RSA_PUB}\n").into_bytes();
        let keys = [key(ED25519_PUB), key(ECDSA_PUB)];
        let once = plan(&old, "git-pair-x", &keys).unwrap();
        assert_eq!(plan(&once, "git-pair-x", &keys).unwrap(), once);
        assert_eq!(plan_remove(&once, "git-pair-x"), old);
        assert_eq!(plan_remove(&old, "git-pair-x"), old);
        assert!(plan(b"", "bad alias", &keys).is_err());
    }

    /// ssh-keygen -F looks a host up the way ssh does; it must find both keys under the alias.
    /// Skipped, with a message, where ssh-keygen is missing.
    #[test]
    fn ssh_keygen_finds_the_pinned_keys() {
        let tmp = TempHome::new();
        let file = tmp.path().join("known_hosts");
        let bytes = plan(
            format!("other {RSA_PUB}\n").as_bytes(),
            "git-pair-x",
            &[key(ED25519_PUB), key(ECDSA_PUB)],
        )
        .unwrap();
        std::fs::write(&file, bytes).unwrap();
        let out = match std::process::Command::new("ssh-keygen")
            .arg("-F")
            .arg("git-pair-x")
            .arg("-f")
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
        assert!(stdout.contains(&bare(ED25519_PUB)), "{stdout}");
        assert!(stdout.contains(&bare(ECDSA_PUB)), "{stdout}");
        assert!(!stdout.contains(&bare(RSA_PUB)), "{stdout}");
    }

    proptest! {
        /// Property: for all `old` that is empty or ends with '\n' and has no line for the
        /// alias, `plan_remove(plan(old, alias, keys), alias) == old`.
        #[test]
        fn plan_then_remove_gives_back_old(mut old in prop::collection::vec(any::<u8>(), 0..400)) {
            if !old.is_empty() && !old.ends_with(b"\n") {
                old.push(b'\n');
            }
            prop_assume!(lines(&old).all(|l| !is_for(l, "git-pair-x")));
            let out = plan(&old, "git-pair-x", &[key(ED25519_PUB)]).unwrap();
            prop_assert_eq!(plan_remove(&out, "git-pair-x"), old);
        }
    }
}
