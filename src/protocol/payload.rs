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
/// this means a broken or incompatible peer rather than an attacker.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayloadError {
    #[error("the peer's payload is too large ({0} bytes)")]
    TooLarge(usize),
    #[error("the peer's payload is not valid JSON")]
    Json(#[from] serde_json::Error),
    #[error("the peer's user name is not usable for ssh")]
    User,
    #[error("the peer's host name is empty or too long")]
    Host,
    #[error("the peer's repository path is not an absolute path")]
    Path,
    #[error("the peer's ssh key does not parse: {0}")]
    UserKey(ssh_key::Error),
    #[error("the peer sent no usable sshd host key (got {0}): is its /etc/ssh/ssh_host_*_key.pub readable?")]
    HostKeys(usize),
    #[error("the peer's sshd port is 0")]
    Port,
    #[error("the peer's git-annex UUID is malformed")]
    AnnexUuid,
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
    /// key still pairs; at least one host key must remain.
    pub fn parse(bytes: &[u8]) -> Result<PeerInfo, PayloadError> {
        if bytes.len() > MAX_PAYLOAD {
            return Err(PayloadError::TooLarge(bytes.len()));
        }
        let p: Payload = serde_json::from_slice(bytes)?;
        if !valid_user(&p.user) {
            return Err(PayloadError::User);
        }
        if p.host.is_empty() || p.host.len() > 255 {
            return Err(PayloadError::Host);
        }
        if !p.path.starts_with('/') || p.path.len() > 4096 || p.path.chars().any(|c| c.is_control())
        {
            return Err(PayloadError::Path);
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
        let addresses = p
            .addresses
            .iter()
            .take(MAX_ADDRESSES)
            .filter_map(|a| a.parse().ok())
            .collect();
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
            (|p| p.path = "/a\nb".into(), "Path"),
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
        assert!(matches!(PeerInfo::parse(b"{}"), Err(PayloadError::Json(_))));
    }

    #[test]
    fn annex_uuid_round_trips() {
        let mut p = sample();
        p.annex_uuid = Some("0b3c5d4e-1111-4222-8333-123456789abc".into());
        let info = PeerInfo::parse(&p.to_bytes()).unwrap();
        assert_eq!(info.annex_uuid, p.annex_uuid);
    }
}
