//! The payload: what each side tells the verified peer about itself.
//!
//! It travels encrypted, so only whoever holds the code learns it (git-annex
//! broadcast the same facts to the whole LAN). Everything in a received
//! payload is untrusted until [`PeerInfo::parse`] has checked it; even then its
//! strings must be sanitized before they reach a terminal.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use ssh_key::PublicKey;

/// The largest payload accepted, in bytes of JSON.
pub const MAX_PAYLOAD: usize = 32 * 1024;
const MAX_HOST_KEYS: usize = 16;
const MAX_ADDRESSES: usize = 32;

/// The payload as sent: plain data, serialized as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// Login name on the sender's machine.
    pub user: String,
    /// The sender's host name, for naming the remote.
    pub host: String,
    /// Absolute path of the sender's repository.
    pub path: String,
    /// The OpenSSH public key the sender will log in with.
    pub user_key: String,
    /// The sender's sshd host public keys, to pin.
    pub host_keys: Vec<String>,
    /// The port the sender's sshd listens on.
    pub ssh_port: u16,
    /// Addresses at which the sender may be reached.
    pub addresses: Vec<String>,
    /// The sender's git-annex repository UUID, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annex_uuid: Option<String>,
    /// Whether git-annex-shell is installed on the sender, so that git-annex can use it as a
    /// remote; the receiver warns when it is not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub annex_shell: bool,
}

impl Payload {
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("payloads always serialize")
    }
}

/// Why a peer's payload was refused. The peer proved it holds the code, so
/// this means a broken or incompatible peer, or one that holds the code and means harm.
/// Every message names the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error("the peer's payload is too large ({0} bytes)")]
    TooLarge(usize),
    #[error("the peer's payload is not valid JSON ({0})")]
    Json(String),
    #[error("the peer's payload is not a JSON object")]
    NotAnObject,
    #[error("the peer's payload lacks the field {0}")]
    Missing(&'static str),
    #[error("the peer's payload field {field} is not {expected}")]
    Type {
        field: &'static str,
        expected: &'static str,
    },
    #[error("the peer's payload field {0} contains a control character")]
    ControlCharacter(&'static str),
    #[error("the peer's user name is not usable for ssh")]
    User,
    #[error("the peer's host name is empty or too long")]
    Host,
    #[error("the peer's repository path is not an absolute path")]
    Path,
    #[error("the peer's repository path is longer than 4096 bytes")]
    PathTooLong,
    #[error("the peer's ssh key does not parse: {0}")]
    UserKey(ssh_key::Error),
    #[error("the peer sent no usable sshd host key (got {0}): is its /etc/ssh/ssh_host_*_key.pub readable?")]
    HostKeys(usize),
    #[error("the peer's sshd port is 0")]
    Port,
    #[error(
        "the peer's addresses include {0}, which is this machine itself to whoever connects to it"
    )]
    Address(IpAddr),
    #[error("the peer's git-annex UUID is malformed")]
    AnnexUuid,
}

/// The payload's fields and the JSON type each must have, checked before the payload is
/// deserialized so that a wrong type is reported as such, naming the field.
const FIELDS: [(&str, Kind); 9] = [
    ("user", Kind::String),
    ("host", Kind::String),
    ("path", Kind::String),
    ("user_key", Kind::String),
    ("host_keys", Kind::Strings),
    ("ssh_port", Kind::Port),
    ("addresses", Kind::Strings),
    ("annex_uuid", Kind::OptionalString),
    ("annex_shell", Kind::OptionalBool),
];

#[derive(Clone, Copy)]
enum Kind {
    String,
    Strings,
    Port,
    OptionalString,
    OptionalBool,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::String | Kind::OptionalString => "a string",
            Kind::Strings => "a list of strings",
            Kind::Port => "a port number (1 to 65535)",
            Kind::OptionalBool => "true or false",
        }
    }

    fn matches(self, value: &serde_json::Value) -> bool {
        use serde_json::Value;
        match (self, value) {
            (Kind::String | Kind::OptionalString, Value::String(_)) => true,
            (Kind::OptionalString | Kind::OptionalBool, Value::Null) => true,
            (Kind::Strings, Value::Array(items)) => items.iter().all(Value::is_string),
            (Kind::Port, Value::Number(n)) => n.as_u64().is_some_and(|p| p <= u64::from(u16::MAX)),
            (Kind::OptionalBool, Value::Bool(_)) => true,
            _ => false,
        }
    }

    fn required(self) -> bool {
        !matches!(self, Kind::OptionalString | Kind::OptionalBool)
    }
}

/// Checks the shape of the payload: a JSON object whose known fields have the right types.
/// Unknown fields are ignored, as the protocol allows.
fn check_shape(bytes: &[u8]) -> Result<(), PayloadError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
    let object = value.as_object().ok_or(PayloadError::NotAnObject)?;
    for (field, kind) in FIELDS {
        match object.get(field) {
            None if kind.required() => return Err(PayloadError::Missing(field)),
            None => {}
            Some(value) if kind.matches(value) => {}
            Some(_) => {
                return Err(PayloadError::Type {
                    field,
                    expected: kind.expected(),
                })
            }
        }
    }
    Ok(())
}

/// Refuses control characters (newlines, escapes, C1 codes) in every string of the payload:
/// they would be stored raw in `.git/config` (`pair-peer`), and shown by `git config -l`.
fn check_controls(p: &Payload) -> Result<(), PayloadError> {
    let strings = [
        ("user", std::slice::from_ref(&p.user)),
        ("host", std::slice::from_ref(&p.host)),
        ("path", std::slice::from_ref(&p.path)),
        ("user_key", std::slice::from_ref(&p.user_key)),
        ("host_keys", p.host_keys.as_slice()),
        ("addresses", p.addresses.as_slice()),
        ("annex_uuid", p.annex_uuid.as_slice()),
    ];
    for (field, values) in strings {
        if values.iter().any(|v| v.chars().any(char::is_control)) {
            return Err(PayloadError::ControlCharacter(field));
        }
    }
    Ok(())
}

/// Whether connecting to `ip` reaches the machine that connects: the unspecified addresses
/// (`0.0.0.0`, `::`, and all of `0.0.0.0/8`, "this network"), in IPv4 or IPv4-mapped form.
/// Loopback addresses reach it too; those are kept (pairing over `lo` uses them) and only used
/// when pairing over a loopback interface: see `sshd_candidates`.
pub fn is_unspecified(ip: &IpAddr) -> bool {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.octets()[0] == 0,
        IpAddr::V6(v6) => v6.is_unspecified(),
    }
}

/// A checked payload from the verified peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub user: String,
    pub host: String,
    pub path: String,
    pub user_key: PublicKey,
    pub host_keys: Vec<PublicKey>,
    pub ssh_port: u16,
    pub addresses: Vec<IpAddr>,
    pub annex_uuid: Option<String>,
    pub annex_shell: bool,
}

impl PeerInfo {
    /// Parses and checks a decrypted payload. Unparseable host keys and
    /// addresses are dropped rather than fatal, so that a peer with one odd
    /// key still pairs; at least one host key must remain. An address that is this machine to
    /// whoever connects to it (`0.0.0.0`, `::`) is refused.
    pub fn parse(bytes: &[u8]) -> Result<PeerInfo, PayloadError> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(PayloadError::TooLarge(bytes.len()));
        }
        check_shape(bytes)?;
        // The shape is right, so this only fails on something check_shape does not know.
        let p: Payload =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Json(e.to_string()))?;
        check_controls(&p)?;
        if !valid_user(&p.user) {
            return Err(PayloadError::User);
        }
        if p.host.is_empty() || p.host.len() > 255 {
            return Err(PayloadError::Host);
        }
        if !p.path.starts_with('/') {
            return Err(PayloadError::Path);
        }
        if p.path.len() > 4096 {
            return Err(PayloadError::PathTooLong);
        }
        let user_key = PublicKey::from_openssh(p.user_key.trim()).map_err(PayloadError::UserKey)?;
        let sent = p.host_keys.len();
        let host_keys: Vec<PublicKey> = p
            .host_keys
            .iter()
            .take(MAX_HOST_KEYS)
            .filter_map(|k| PublicKey::from_openssh(k.trim()).ok())
            .collect();
        if host_keys.is_empty() {
            return Err(PayloadError::HostKeys(sent));
        }
        if p.ssh_port == 0 {
            return Err(PayloadError::Port);
        }
        let addresses: Vec<IpAddr> = p
            .addresses
            .iter()
            .take(MAX_ADDRESSES)
            .filter_map(|a| a.parse().ok())
            .collect();
        if let Some(ip) = addresses.iter().find(|ip| is_unspecified(ip)) {
            return Err(PayloadError::Address(*ip));
        }
        if let Some(uuid) = &p.annex_uuid {
            if !valid_uuid(uuid) {
                return Err(PayloadError::AnnexUuid);
            }
        }
        Ok(PeerInfo {
            user: p.user,
            host: p.host,
            path: p.path,
            user_key,
            host_keys,
            ssh_port: p.ssh_port,
            addresses,
            annex_uuid: p.annex_uuid,
            annex_shell: p.annex_shell,
        })
    }
}

/// A user name that can go into an ssh config `User` line unquoted.
fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && !user.starts_with('-')
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@$".contains(&b))
}

fn valid_uuid(uuid: &str) -> bool {
    uuid.len() == 36
        && uuid.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOvz9/dlwEDfuqj1WBVMQbjFs+6w+Vvr8nI1VbWq+uGP bob@laptop";

    fn sample() -> Payload {
        Payload {
            user: "bob".into(),
            host: "laptop".into(),
            path: "/home/bob/notes".into(),
            user_key: KEY.into(),
            host_keys: vec![KEY.into(), "garbage".into()],
            ssh_port: 22,
            addresses: vec!["10.0.0.2".into(), "fe80::1".into(), "nonsense".into()],
            annex_uuid: None,
            annex_shell: false,
        }
    }

    #[test]
    fn annex_shell_is_sent_only_when_true_and_defaults_to_false() {
        let mut p = sample();
        assert!(!String::from_utf8(p.to_bytes())
            .unwrap()
            .contains("annex_shell"));
        assert!(!PeerInfo::parse(&p.to_bytes()).unwrap().annex_shell);
        p.annex_shell = true;
        assert!(PeerInfo::parse(&p.to_bytes()).unwrap().annex_shell);
    }

    #[test]
    fn a_good_payload_parses_and_drops_what_it_cannot_use() {
        let info = PeerInfo::parse(&sample().to_bytes()).unwrap();
        assert_eq!(info.user, "bob");
        assert_eq!(info.host_keys.len(), 1);
        assert_eq!(info.addresses.len(), 2);
    }

    #[test]
    fn bad_payloads_are_refused() {
        type Mutation = fn(&mut Payload);
        let cases: Vec<(Mutation, &str)> = vec![
            (|p| p.user = "bob smith".into(), "User"),
            (|p| p.user = "-oProxyCommand=x".into(), "User"),
            (|p| p.user = String::new(), "User"),
            (|p| p.host = String::new(), "Host"),
            (|p| p.path = "notes".into(), "Path"),
            (|p| p.path = "/a\nb".into(), "ControlCharacter(\"path\")"),
            (|p| p.path = format!("/{}", "a".repeat(4096)), "PathTooLong"),
            (
                |p| p.host = "lap\u{1b}[2Jtop".into(),
                "ControlCharacter(\"host\")",
            ),
            (|p| p.host = "laptop\n".into(), "ControlCharacter(\"host\")"),
            (
                |p| p.host = "lap\u{85}top".into(),
                "ControlCharacter(\"host\")",
            ),
            (|p| p.user = "bob\r".into(), "ControlCharacter(\"user\")"),
            (
                |p| p.user_key.push_str(" bob\u{7}"),
                "ControlCharacter(\"user_key\")",
            ),
            (
                |p| p.host_keys.push("x\ty".into()),
                "ControlCharacter(\"host_keys\")",
            ),
            (
                |p| p.addresses.push("10.0.0.3\n".into()),
                "ControlCharacter(\"addresses\")",
            ),
            (|p| p.addresses.push("0.0.0.0".into()), "Address(0.0.0.0)"),
            (|p| p.addresses.push("0.1.2.3".into()), "Address(0.1.2.3)"),
            (|p| p.addresses.push("::".into()), "Address(::)"),
            (
                |p| p.addresses.push("::ffff:0.0.0.0".into()),
                "Address(::ffff:0.0.0.0)",
            ),
            (|p| p.user_key = "ssh-ed25519 AAAA".into(), "UserKey"),
            (|p| p.host_keys = vec![], "HostKeys"),
            (|p| p.ssh_port = 0, "Port"),
            (|p| p.annex_uuid = Some("x".into()), "AnnexUuid"),
        ];
        for (mutate, want) in cases {
            let mut p = sample();
            mutate(&mut p);
            let err = PeerInfo::parse(&p.to_bytes()).unwrap_err();
            assert!(
                format!("{err:?}").starts_with(want),
                "{err:?} is not {want}"
            );
        }
        assert!(matches!(
            PeerInfo::parse(&vec![b' '; MAX_PAYLOAD + 1]),
            Err(PayloadError::TooLarge(_))
        ));
        assert!(matches!(
            PeerInfo::parse(b"{}"),
            Err(PayloadError::Missing("user"))
        ));
        assert!(matches!(PeerInfo::parse(b"{"), Err(PayloadError::Json(_))));
        assert!(matches!(
            PeerInfo::parse(b"[1]"),
            Err(PayloadError::NotAnObject)
        ));
    }

    /// The messages the issue named: a wrong type names the field and the type, not "not valid
    /// JSON"; a path with a control character says so, not "not an absolute path".
    #[test]
    fn messages_name_the_field_and_what_is_wrong() {
        let with = |field: &str, value: serde_json::Value| {
            let mut v = serde_json::to_value(sample()).unwrap();
            v[field] = value;
            PeerInfo::parse(&serde_json::to_vec(&v).unwrap())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            with("user", serde_json::json!(5)),
            "the peer's payload field user is not a string"
        );
        assert_eq!(
            with("host_keys", serde_json::json!(["k", 1])),
            "the peer's payload field host_keys is not a list of strings"
        );
        assert_eq!(
            with("ssh_port", serde_json::json!(70000)),
            "the peer's payload field ssh_port is not a port number (1 to 65535)"
        );
        assert_eq!(
            with("ssh_port", serde_json::json!("22")),
            "the peer's payload field ssh_port is not a port number (1 to 65535)"
        );
        assert_eq!(
            with("annex_shell", serde_json::json!("yes")),
            "the peer's payload field annex_shell is not true or false"
        );
        assert_eq!(
            with("path", serde_json::json!("/home/bob/no\ntes")),
            "the peer's payload field path contains a control character"
        );
        assert_eq!(
            with("host", serde_json::json!("lap\u{1b}]0;x\u{7}top")),
            "the peer's payload field host contains a control character"
        );
        assert_eq!(
            with("addresses", serde_json::json!(["10.0.0.2", "::"])),
            "the peer's addresses include ::, which is this machine itself to whoever connects to it"
        );
        // Unknown fields are ignored, and optional ones may be null.
        assert!(PeerInfo::parse(
            &serde_json::to_vec(&{
                let mut v = serde_json::to_value(sample()).unwrap();
                v["future"] = serde_json::json!({"x": 1});
                v["annex_uuid"] = serde_json::Value::Null;
                v
            })
            .unwrap()
        )
        .is_ok());
        let err = PeerInfo::parse(b"{\"user\": ").unwrap_err().to_string();
        assert!(
            err.starts_with("the peer's payload is not valid JSON ("),
            "{err}"
        );
    }

    #[test]
    fn unspecified_addresses_are_recognised_in_every_form() {
        for a in [
            "0.0.0.0",
            "0.255.0.1",
            "::",
            "::ffff:0.0.0.0",
            "::ffff:0.1.2.3",
        ] {
            assert!(is_unspecified(&a.parse().unwrap()), "{a}");
        }
        for a in [
            "10.0.0.1",
            "127.0.0.1",
            "::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "1.0.0.0",
        ] {
            assert!(!is_unspecified(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn annex_uuid_round_trips() {
        let mut p = sample();
        p.annex_uuid = Some("0b3c5d4e-1111-4222-8333-123456789abc".into());
        let info = PeerInfo::parse(&p.to_bytes()).unwrap();
        assert_eq!(info.annex_uuid, p.annex_uuid);
    }
}
