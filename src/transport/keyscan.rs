//! The host keys an sshd presents, learnt by a real ssh key exchange with it (`ssh-keyscan`),
//! never from what the peer says about itself.
//!
//! A peer that claims to be the one an earlier pairing was made with proves it by its sshd
//! presenting a host key pinned for that pairing (see `commands::pair::replace`): the key
//! exchange makes the sshd sign with the private half, which a peer that merely copied the
//! public key cannot do. `ssh-keyscan` comes with the OpenSSH client that git needs anyway, and
//! reads no ssh configuration.

use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

use ssh_key::PublicKey;

/// Why no host key could be learnt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyscanError {
    #[error("ssh-keyscan is not installed (it comes with the OpenSSH client)")]
    NotInstalled,
    #[error("ssh-keyscan could not run: {0}")]
    Run(#[source] io::Error),
    #[error("the sshd at {host} port {port} presented no host key{}", detail(.stderr))]
    NoKeys {
        host: String,
        port: u16,
        stderr: String,
    },
}

fn detail(stderr: &str) -> String {
    let text: String = crate::sanitize::for_terminal_within(stderr.trim(), 200);
    if text.is_empty() {
        String::new()
    } else {
        format!(" ({text})")
    }
}

/// The host keys the sshd at `host` (an address as ssh takes it, e.g. `10.0.0.2` or
/// `fe80::2%eth0`) and `port` presents, each from a real key exchange, within about `timeout`.
pub fn host_keys(host: &str, port: u16, timeout: Duration) -> Result<Vec<PublicKey>, KeyscanError> {
    let out = Command::new("ssh-keyscan")
        .arg("-T")
        .arg(timeout.as_secs().max(1).to_string())
        .arg("-p")
        .arg(port.to_string())
        .arg("--")
        .arg(host)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => KeyscanError::NotInstalled,
            _ => KeyscanError::Run(e),
        })?;
    let keys = parse(&out.stdout);
    if keys.is_empty() {
        return Err(KeyscanError::NoKeys {
            host: host.to_owned(),
            port,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(keys)
}

/// The keys in `ssh-keyscan`'s output: lines `HOST KEYTYPE BASE64`; comments (`# ...`) and
/// anything that does not parse are skipped.
pub fn parse(stdout: &[u8]) -> Vec<PublicKey> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (_host, kind, data) = (words.next()?, words.next()?, words.next()?);
            PublicKey::from_openssh(&format!("{kind} {data}")).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOvz9/dlwEDfuqj1WBVMQbjFs+6w+Vvr8nI1VbWq+uGP";

    #[test]
    fn parses_what_ssh_keyscan_prints() {
        let out = format!(
            "# 10.0.0.2:22 SSH-2.0-OpenSSH_9.2p1 Debian-2\n10.0.0.2 {ED25519}\n[10.0.0.2]:2222 {ED25519}\n\
             10.0.0.2 ssh-rsa not-base64\n\ngarbage\n"
        );
        let keys = parse(out.as_bytes());
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], PublicKey::from_openssh(ED25519).unwrap());
        assert!(parse(b"").is_empty());
        assert!(parse(b"\xff\xfe").is_empty());
    }

    #[test]
    fn a_port_nobody_listens_on_presents_no_key() {
        // Loopback only, a port from the kernel that is closed again at once.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match host_keys("127.0.0.1", port, Duration::from_secs(1)) {
            Err(KeyscanError::NoKeys { .. }) | Err(KeyscanError::NotInstalled) => {}
            other => panic!("{other:?}"),
        }
    }
}
