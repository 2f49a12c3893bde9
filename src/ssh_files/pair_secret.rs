//! `~/.ssh/git-pair/secret_<alias>`: the pair secret of one pairing, and what locating the peer
//! needs with it.
//!
//! Both sides derive the same long-term [`PairSecret`] from the SPAKE2 key of their pairing.
//! It lets them prove to each other later, without a code, that they are the two machines that
//! paired: `git pair refresh` authenticates its locate queries with it and `git pair watch` its
//! answers (the locate protocol). It is written at pairing time in the same
//! transaction as the other ssh files (mode 0600), deleted by `git pair remove`, never put into
//! a repository's config and never shown.
//!
//! The file is a few `key value` lines, so that a person can see what it is:
//!
//! ```text
//! # git pair: the pair secret of ssh alias git-pair-beta-1a2b3c4d. Keep it private.
//! version 1
//! role low
//! ssh-port 22
//! secret <32 bytes, base64>
//! ```
//!
//! `role` is which end of the pairing session this side was (the two sides have opposite
//! roles), so that each direction of the locate protocol has its own keys; `ssh-port` is the
//! port of this machine's sshd as told to the peer, which `git pair watch` tells it again.
//! Unknown keys are ignored, so that a later version may add some.

use std::fmt;

use base64ct::{Base64, Encoding};
use zeroize::Zeroizing;

use crate::protocol::schedule::{PairSecret, Role};

/// The file format version this code writes and reads.
pub const VERSION: u32 = 1;

/// Files larger than this are not pair secrets.
pub const MAX_LEN: usize = 4096;

/// What is stored for one pairing. The secret is zeroized on drop and never printed.
#[derive(Clone)]
pub struct SecretRecord {
    /// Which end of the pairing session this side was.
    pub role: Role,
    /// The port of this machine's sshd, as told to the peer at pairing time.
    pub ssh_port: u16,
    pub secret: PairSecret,
}

// By hand, so that the secret can never reach a log through `{:?}`.
impl fmt::Debug for SecretRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretRecord")
            .field("role", &self.role)
            .field("ssh_port", &self.ssh_port)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Why a pair secret file could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    #[error("it is larger than {MAX_LEN} bytes")]
    TooLarge,
    #[error("it is not a git pair secret file (no \"version\" line)")]
    NoVersion,
    #[error(
        "its format version {0} is not supported (this is version {VERSION}): update git pair"
    )]
    Version(String),
    #[error("its {0} line is missing")]
    Missing(&'static str),
    #[error("its {0} line is invalid")]
    Invalid(&'static str),
}

impl SecretRecord {
    /// The file's bytes; `alias` only goes into the comment line.
    pub fn render(&self, alias: &str) -> Zeroizing<String> {
        let role = match self.role {
            Role::Low => "low",
            Role::High => "high",
        };
        let mut out = Zeroizing::new(String::with_capacity(256));
        out.push_str(&format!(
            "# git pair: the pair secret of ssh alias {alias}. Keep it private.\n\
             version {VERSION}\nrole {role}\nssh-port {}\nsecret ",
            self.ssh_port
        ));
        let encoded = Zeroizing::new(Base64::encode_string(self.secret.expose()));
        out.push_str(&encoded);
        out.push('\n');
        out
    }

    /// Reads a file written by [`SecretRecord::render`]. Any input gives a record or an error,
    /// never a panic; the decoded secret never stays in an unzeroized buffer.
    pub fn parse(bytes: &[u8]) -> Result<SecretRecord, SecretError> {
        if bytes.len() > MAX_LEN {
            return Err(SecretError::TooLarge);
        }
        let (mut version, mut role, mut port, mut secret) = (None, None, None, None);
        for line in bytes.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() || line.starts_with(b"#") {
                continue;
            }
            let Ok(line) = std::str::from_utf8(line) else {
                continue;
            };
            let Some((key, value)) = line.split_once(' ') else {
                continue;
            };
            let slot = match key {
                "version" => &mut version,
                "role" => &mut role,
                "ssh-port" => &mut port,
                "secret" => &mut secret,
                _ => continue,
            };
            // The first value counts, as in ssh's own files.
            slot.get_or_insert(value);
        }
        let version = version.ok_or(SecretError::NoVersion)?;
        if version != VERSION.to_string() {
            return Err(SecretError::Version(crate::sanitize::for_terminal_within(
                version, 20,
            )));
        }
        let role = match role.ok_or(SecretError::Missing("role"))? {
            "low" => Role::Low,
            "high" => Role::High,
            _ => return Err(SecretError::Invalid("role")),
        };
        let ssh_port = port
            .ok_or(SecretError::Missing("ssh-port"))?
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(SecretError::Invalid("ssh-port"))?;
        let encoded = secret.ok_or(SecretError::Missing("secret"))?;
        let mut raw = Zeroizing::new([0u8; 32]);
        match Base64::decode(encoded, &mut raw[..]) {
            Ok(decoded) if decoded.len() == 32 => {}
            _ => return Err(SecretError::Invalid("secret")),
        }
        Ok(SecretRecord {
            role,
            ssh_port,
            secret: PairSecret::from_bytes(*raw),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(role: Role) -> SecretRecord {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        SecretRecord {
            role,
            ssh_port: 2222,
            secret: PairSecret::from_bytes(bytes),
        }
    }

    #[test]
    fn the_file_has_a_stable_readable_format() {
        let text = record(Role::Low).render("git-pair-beta-1a2b3c4d");
        assert_eq!(
            text.as_str(),
            "# git pair: the pair secret of ssh alias git-pair-beta-1a2b3c4d. Keep it private.\n\
             version 1\nrole low\nssh-port 2222\n\
             secret AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
        );
    }

    #[test]
    fn render_then_parse_gives_the_record_back() {
        for role in [Role::Low, Role::High] {
            let r = record(role);
            let back = SecretRecord::parse(r.render("a").as_bytes()).unwrap();
            assert_eq!(back.role, role);
            assert_eq!(back.ssh_port, 2222);
            assert_eq!(back.secret.expose(), r.secret.expose());
        }
    }

    #[test]
    fn later_versions_may_add_keys_and_crlf_is_read() {
        let text = "version 1\r\nrole high\r\nnew-thing yes\r\nssh-port 22\r\n\
                    secret AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\r\n";
        let r = SecretRecord::parse(text.as_bytes()).unwrap();
        assert_eq!((r.role, r.ssh_port), (Role::High, 22));
    }

    #[test]
    fn bad_files_are_refused_with_a_reason() {
        let good = record(Role::Low).render("a").to_string();
        let cases: Vec<(String, SecretError)> = vec![
            ("".into(), SecretError::NoVersion),
            (
                good.replace("version 1", "version 2"),
                SecretError::Version("2".into()),
            ),
            (good.replace("role low\n", ""), SecretError::Missing("role")),
            (
                good.replace("role low", "role middle"),
                SecretError::Invalid("role"),
            ),
            (
                good.replace("ssh-port 2222", "ssh-port 0"),
                SecretError::Invalid("ssh-port"),
            ),
            (
                good.replace("ssh-port 2222", "ssh-port 70000"),
                SecretError::Invalid("ssh-port"),
            ),
            (
                good.replace("secret ", "nosecret "),
                SecretError::Missing("secret"),
            ),
            (good.replace("AAEC", "AAE"), SecretError::Invalid("secret")),
            (
                good.replace("Hh8=", "Hh8fIA=="),
                SecretError::Invalid("secret"),
            ),
            (good.replace("Hh8=", ""), SecretError::Invalid("secret")),
            ("x".repeat(MAX_LEN + 1), SecretError::TooLarge),
        ];
        for (text, want) in cases {
            assert_eq!(
                SecretRecord::parse(text.as_bytes()).unwrap_err(),
                want,
                "{text:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_secret() {
        let shown = format!("{:?}", record(Role::Low));
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("AAEC"), "{shown}");
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SecretRecord::parse(&bytes);
        }
    }
}
