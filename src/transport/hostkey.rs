//! Does the sshd at an address hold the host key pinned for a pairing? Asked of ssh itself.
//!
//! `git pair refresh` must never point an alias at a machine that cannot prove it is the peer.
//! A key fetched with `ssh-keyscan` is not such a proof: ssh-keyscan stops before the server
//! signs anything, so anyone can present a copy of a public key. ssh itself, with the pinned
//! known_hosts, checks the server's signature over the key exchange before it accepts the key.
//! So the check runs `ssh -v` with a clean configuration, the pairing's `HostKeyAlias` and
//! git-pair's known_hosts, `StrictHostKeyChecking yes`, and no way to authenticate at all: it
//! ends right after the host key was verified (or refused), and logs in nowhere.
//! [`classify`] reads the outcome from ssh's messages.

use std::ffi::OsString;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long ssh may take to connect (its `ConnectTimeout`); the whole check gets a few seconds
/// more.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// What ssh found at an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostKey {
    /// The sshd proved it holds a pinned host key: the one with this SHA256 fingerprint
    /// (`SHA256:…`, as ssh logged it; `None` if ssh did not say).
    Matches { fingerprint: Option<String> },
    /// An sshd answered, with a host key that is not pinned for the pairing.
    Differs,
    /// No sshd answered (refused, unreachable, timed out, a name that does not resolve); the
    /// detail is ssh's last message.
    Unreachable(String),
}

/// Where to check: what ssh connects to and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    /// An address (`10.0.0.2`, `fe80::2%eth0`) or a name (`desk.local`). Never starts with `-`.
    pub host: &'a str,
    pub port: u16,
    /// The remote user of the pairing (only for the sshd's log: no login is attempted).
    pub user: &'a str,
    /// The pairing's alias, under which its host keys are pinned.
    pub alias: &'a str,
}

/// ssh's arguments for the check: no configuration file, nothing but the pinned keys, no
/// authentication method, no connection sharing, no proxy.
pub fn arguments(target: &Target<'_>, known_hosts: &Path) -> Vec<OsString> {
    let mut known = OsString::from("UserKnownHostsFile=");
    known.push(known_hosts);
    let mut args: Vec<OsString> = vec!["-v".into(), "-F".into(), "/dev/null".into()];
    for option in [
        "BatchMode=yes".to_owned(),
        format!("ConnectTimeout={}", CONNECT_TIMEOUT.as_secs()),
        "ConnectionAttempts=1".to_owned(),
        format!("HostKeyAlias={}", target.alias),
        "GlobalKnownHostsFile=/dev/null".to_owned(),
        "StrictHostKeyChecking=yes".to_owned(),
        "UpdateHostKeys=no".to_owned(),
        "CheckHostIP=no".to_owned(),
        "PubkeyAuthentication=no".to_owned(),
        "PasswordAuthentication=no".to_owned(),
        "KbdInteractiveAuthentication=no".to_owned(),
        "HostbasedAuthentication=no".to_owned(),
        "GSSAPIAuthentication=no".to_owned(),
        "IdentityAgent=none".to_owned(),
        "ControlMaster=no".to_owned(),
        "ControlPath=none".to_owned(),
        "ProxyCommand=none".to_owned(),
        "ProxyJump=none".to_owned(),
        "ForwardAgent=no".to_owned(),
        "ClearAllForwardings=yes".to_owned(),
    ] {
        args.push("-o".into());
        args.push(option.into());
    }
    args.push("-o".into());
    args.push(known);
    args.extend(
        [
            "-p".to_owned(),
            target.port.to_string(),
            "-l".to_owned(),
            target.user.to_owned(),
            target.host.to_owned(),
            "true".to_owned(),
        ]
        .map(Into::into),
    );
    args
}

/// What ssh's stderr says about the host key. ssh logs (with `-v`) the line
/// `debug1: Host '<alias>' is known and matches the <type> host key.` only after the server's
/// signature verified (then the key is the one of the "Server host key" line before it);
/// "Host key verification failed." when the key is not a pinned one.
///
/// Only that whole line, at the start of a line, counts: what a server sends before the key
/// exchange (its version, banner lines) is logged with another prefix and made printable by
/// ssh, and what it may send after (an authentication banner) arrives only once its key was
/// accepted.
pub fn classify(stderr: &str, alias: &str) -> HostKey {
    let prefix = format!("debug1: Host '{alias}' is known and matches the ");
    let matched = stderr.lines().any(|l| {
        l.strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(" host key."))
            .is_some_and(|kind| {
                !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    if matched {
        // ssh logs the key it is about to verify as "debug1: Server host key: <type> <fp>";
        // the last such line before the match is the key that matched.
        let fingerprint = stderr
            .lines()
            .take_while(|l| !l.starts_with(&prefix))
            .filter_map(|l| l.strip_prefix("debug1: Server host key: "))
            .filter_map(|rest| rest.split_whitespace().nth(1))
            .filter(|fp| {
                fp.strip_prefix("SHA256:").is_some_and(|b64| {
                    !b64.is_empty()
                        && b64
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                })
            })
            .last()
            .map(str::to_owned);
        return HostKey::Matches { fingerprint };
    }
    if stderr.contains("Host key verification failed")
        || stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
    {
        return HostKey::Differs;
    }
    let last = stderr
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with("debug") && !l.starts_with("OpenSSH"))
        .unwrap_or("ssh gave no reason");
    HostKey::Unreachable(crate::sanitize::for_terminal_within(last, 200))
}

/// Runs the check with `ssh` from `PATH`, within [`CONNECT_TIMEOUT`] and a few seconds.
pub fn check(target: &Target<'_>, known_hosts: &Path) -> HostKey {
    if target.host.starts_with('-') || target.user.starts_with('-') {
        return HostKey::Unreachable(format!("{:?} is not a host name", target.host));
    }
    let child = Command::new("ssh")
        .args(arguments(target, known_hosts))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => return HostKey::Unreachable(format!("cannot run ssh: {e}")),
    };
    // stderr is read in a thread so that a hung ssh can be killed at the deadline.
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(pipe) = stderr.as_mut() {
            // At most 1 MiB: ssh -v says far less.
            let _ = pipe.take(1 << 20).read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let deadline = Instant::now() + CONNECT_TIMEOUT + Duration::from_secs(5);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    classify(&reader.join().unwrap_or_default(), target.alias)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ssh_command_line_trusts_only_the_pinned_keys_and_logs_in_nowhere() {
        let target = Target {
            host: "fe80::2%eth0",
            port: 2222,
            user: "bob",
            alias: "git-pair-desk-1",
        };
        let args: Vec<String> = arguments(&target, Path::new("/h/.ssh/git-pair/known_hosts"))
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        for needle in [
            "-F /dev/null",
            "-o HostKeyAlias=git-pair-desk-1",
            "-o UserKnownHostsFile=/h/.ssh/git-pair/known_hosts",
            "-o GlobalKnownHostsFile=/dev/null",
            "-o StrictHostKeyChecking=yes",
            "-o PubkeyAuthentication=no",
            "-o IdentityAgent=none",
            "-o ProxyCommand=none",
            "-p 2222 -l bob fe80::2%eth0 true",
        ] {
            assert!(joined.contains(needle), "{needle} in {joined}");
        }
    }

    #[test]
    fn ssh_messages_are_classified() {
        let matched = "debug1: Server host key: ssh-ed25519 SHA256:x\n\
            debug1: Host 'git-pair-desk-1' is known and matches the ED25519 host key.\n\
            debug1: Found key in /h/.ssh/git-pair/known_hosts:1\n\
            bob@10.0.0.2: Permission denied (publickey).\n";
        assert_eq!(
            classify(matched, "git-pair-desk-1"),
            HostKey::Matches {
                fingerprint: Some("SHA256:x".into())
            }
        );
        // Another alias's line, or the words inside another line, do not count.
        assert!(matches!(
            classify(matched, "git-pair-desk-2"),
            HostKey::Unreachable(_)
        ));
        let smuggled = "debug1: Remote protocol version 2.0, remote software version \
            x debug1: Host 'git-pair-desk-1' is known and matches the ED25519 host key.\n\
            debug1: kex_exchange_identification: banner line 0: \
            debug1: Host 'git-pair-desk-1' is known and matches the ED25519 host key.\n\
            Host key verification failed.\n";
        assert_eq!(classify(smuggled, "git-pair-desk-1"), HostKey::Differs);
        let changed = "@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
            Host key verification failed.\n";
        assert_eq!(classify(changed, "a"), HostKey::Differs);
        let unknown = "debug1: Server host key: ssh-ed25519 SHA256:y\n\
            No ED25519 host key is known for git-pair-desk-1 and you have requested strict checking.\n\
            Host key verification failed.\n";
        assert_eq!(classify(unknown, "git-pair-desk-1"), HostKey::Differs);
        let refused = "OpenSSH_9.2p1\ndebug1: Connecting to 10.0.0.2 [10.0.0.2] port 22.\n\
            debug1: connect to address 10.0.0.2 port 22: Connection refused\n\
            ssh: connect to host 10.0.0.2 port 22: Connection refused\n";
        assert_eq!(
            classify(refused, "a"),
            HostKey::Unreachable(
                "ssh: connect to host 10.0.0.2 port 22: Connection refused".into()
            )
        );
        assert_eq!(
            classify("", "a"),
            HostKey::Unreachable("ssh gave no reason".into())
        );
        // Control characters in a message are made inert.
        assert!(matches!(
            classify("ssh: Could not resolve hostname x\u{1b}[2J: Name or service not known\n", "a"),
            HostKey::Unreachable(m) if !m.contains('\u{1b}')
        ));
    }
}
