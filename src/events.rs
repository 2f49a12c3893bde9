//! The machine interface: with `--json`, every step of a pairing (and every
//! peer's outcome of a `git pair sync`) is one JSON object on its own line of
//! standard output, and nothing else is written there. Programs such as the git-annex assistant or a GUI drive git-pair
//! through it. The format is versioned by the `v` field of every line and is
//! documented in the man page; fields may be added, never changed.
//!
//! Strings that came from the peer (its user, host and path) are sanitized
//! like everything shown on a terminal, since stdout may be one.

use std::io::{self, Write};

use serde::Serialize;

/// The version of the event format, in every line's `v` field.
pub const VERSION: u32 = 1;

/// The peer, as shown to the user.
#[derive(Debug, Clone, Serialize)]
pub struct PeerView {
    pub user: String,
    pub host: String,
    pub path: String,
}

/// Earlier pairings that claim the same peer as a new one and were left as they are, because
/// the peer did not prove it is the one they were made with.
#[derive(Debug, Clone, Serialize)]
pub struct NotReplaced {
    /// Their remotes (or ssh aliases, for a pairing whose remote is gone).
    pub remotes: Vec<String>,
    /// Why the peer's claim was not proven.
    pub reason: String,
}

/// One event. The man page's JSON EVENTS section lists them in order.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A code was generated; show it to the user of the other machine.
    Code { code: String },
    /// Listening; the interfaces, UDP port and multicast groups in use.
    Listening {
        interfaces: Vec<String>,
        port: u16,
        groups: Vec<String>,
    },
    /// A machine on the same channel answered; not yet verified.
    Peer { address: String },
    /// A peer failed verification (wrong code, or someone guessing); the run
    /// goes on until `limit` failures.
    VerifyFailed {
        address: String,
        failures: u32,
        limit: u32,
    },
    /// The peer proved it holds the code; `address` is its sshd.
    Verified { peer: PeerView, address: String },
    /// The short authentication string, equal on both machines. With
    /// `--verify`, `verify` is true: git pair now reads the answer, one line
    /// `{"verify": true}` (or false), from standard input.
    Sas {
        sas: String,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        verify: bool,
    },
    /// The git remote was added (or, for a proven re-pair, updated in place).
    Remote {
        name: String,
        url: String,
        alias: String,
        /// The remote of the earlier pairing this one replaced; only for a re-pair whose peer
        /// proved it is the same.
        #[serde(skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
        /// Earlier pairings that claim the same peer and were kept; only when there are some.
        #[serde(skip_serializing_if = "Option::is_none")]
        not_replaced: Option<NotReplaced>,
    },
    /// Success: everything is set up. Always the last line of a success.
    Paired {
        remote: String,
        alias: String,
        peer: PeerView,
        address: String,
        /// As in `Remote`.
        #[serde(skip_serializing_if = "Option::is_none")]
        replaced: Option<String>,
        /// As in `Remote`.
        #[serde(skip_serializing_if = "Option::is_none")]
        not_replaced: Option<NotReplaced>,
    },
    /// No peer verified before the timeout.
    Timeout { seconds: u64 },
    /// Failure, with a machine-readable reason. Always the last line of a
    /// failure.
    Failed { reason: Reason, message: String },
    /// `git pair watch`: answering locate queries on these interfaces for these pairings.
    Watching {
        interfaces: Vec<String>,
        port: u16,
        groups: Vec<String>,
        pairings: Vec<String>,
    },
    /// `git pair watch`: the pairings answered for changed (added or removed).
    Pairings { pairings: Vec<String> },
    /// `git pair watch`: answered an authenticated locate query for pairing `alias`.
    Answered { alias: String, address: String },
    /// `git pair watch`: stopped (by a signal), with what it did.
    Stopped {
        received: u64,
        answered: u64,
        dropped: u64,
        rate_limited: u64,
        unauthenticated: u64,
    },
    /// `git pair refresh`: the peer of a pairing answered a locate query, authenticated with the
    /// pair secret; `address` sent it, `addresses` are the peer's own, `ssh_port` its sshd's.
    Located {
        remote: String,
        alias: String,
        address: String,
        addresses: Vec<String>,
        ssh_port: u16,
    },
    /// `git pair refresh`: an sshd at `address` presents a host key that is not the one
    /// pinned for the pairing; that address is not used.
    HostKeyDiffers {
        remote: String,
        alias: String,
        address: String,
    },
    /// `git pair refresh`: the pairing's ssh alias reaches its peer at `host_name`, found by
    /// `method` (`mdns`, `address` or `locate`); `changed` says whether the alias was changed.
    Refreshed {
        remote: String,
        alias: String,
        host_name: String,
        port: u16,
        method: String,
        changed: bool,
    },
    /// `git pair refresh`: this pairing was not refreshed, and its alias is unchanged.
    NotRefreshed {
        remote: String,
        alias: String,
        reason: Reason,
        message: String,
    },
    /// `git pair sync`: one peer's outcome.
    SyncPeer {
        remote: String,
        outcome: crate::sync::plan::Outcome,
        pushed: bool,
        fast_forwarded: bool,
        message: String,
    },
    /// `git pair sync`: the run is over; the last line unless `failed` is.
    SyncDone {
        branch: String,
        commit: Option<String>,
        annex: bool,
        status: u8,
    },
}

/// Why a pairing failed, for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Usage,
    NoPeer,
    WrongCode,
    Guessing,
    SshdUnreachable,
    NoSshd,
    SameRepository,
    PeerRejected,
    PeerDeclined,
    PeerFailed,
    Declined,
    PeerGone,
    Setup,
    Interrupted,
    HostKeyChanged,
    NoPairSecret,
    Error,
}

impl Reason {
    /// Every reason with its meaning, for the man page.
    pub const ALL: [(Reason, &'static str, &'static str); 17] = [
        (
            Reason::Usage,
            "usage",
            "bad arguments, not in a repository, or the remote name is taken",
        ),
        (
            Reason::NoPeer,
            "no_peer",
            "no peer answered before the timeout",
        ),
        (
            Reason::WrongCode,
            "wrong_code",
            "the codes differ: every machine that answered had another code, and no other answered within a few seconds (or someone guessed)",
        ),
        (
            Reason::Guessing,
            "guessing",
            "too many failed verifications: someone may be guessing the code",
        ),
        (
            Reason::SshdUnreachable,
            "sshd_unreachable",
            "the peer's sshd did not answer",
        ),
        (
            Reason::NoSshd,
            "no_sshd",
            "this machine's sshd does not accept connections on --ssh-port: install or start it (checked before anything is sent)",
        ),
        (
            Reason::SameRepository,
            "same_repository",
            "the other side is this same repository on this same machine (git pair and git pair join in one repository); nothing was written",
        ),
        (
            Reason::PeerRejected,
            "peer_rejected",
            "the peer refused the pairing; the message says why (it cannot reach this sshd, or this side's --key already opens another repository there)",
        ),
        (
            Reason::PeerDeclined,
            "peer_declined",
            "the person at the other machine did not confirm that the check codes match (--verify there); nothing was written",
        ),
        (
            Reason::PeerFailed,
            "peer_failed",
            "setting up the other machine failed after verification; this side undid its own setup (or wrote nothing)",
        ),
        (
            Reason::Declined,
            "declined",
            "--verify: the person here did not confirm that the check codes match (answered no, or no answer); nothing was written, and the other machine was told",
        ),
        (
            Reason::PeerGone,
            "peer_gone",
            "the other machine went quiet after verification, before this side wrote anything",
        ),
        (
            Reason::Setup,
            "setup",
            "setting up this machine failed; nothing was left behind",
        ),
        (
            Reason::Interrupted,
            "interrupted",
            "Ctrl-C or a termination signal; nothing was written",
        ),
        (
            Reason::HostKeyChanged,
            "host_key_changed",
            "git pair refresh: the peer was found, but its sshd presents a host key other than the pinned one; nothing was changed",
        ),
        (
            Reason::NoPairSecret,
            "no_pair_secret",
            "git pair refresh: the pairing has no pair secret (it was made before git pair stored one) and its peer was not found by name or at its address; pair again",
        ),
        (Reason::Error, "error", "any other error"),
    ];
}

#[derive(Serialize)]
struct Line<'a> {
    v: u32,
    #[serde(flatten)]
    event: &'a Event,
}

/// Writes events as JSON lines. A closed stdout (the driving program went
/// away) does not stop the pairing: later events are dropped.
pub struct EventWriter<W: Write> {
    out: W,
    broken: bool,
}

impl<W: Write> EventWriter<W> {
    pub fn new(out: W) -> Self {
        EventWriter { out, broken: false }
    }

    pub fn emit(&mut self, event: &Event) {
        if self.broken {
            return;
        }
        let mut line =
            serde_json::to_vec(&Line { v: VERSION, event }).expect("events always serialize");
        line.push(b'\n');
        let written = self.out.write_all(&line).and_then(|()| self.out.flush());
        if let Err(e) = written {
            if e.kind() == io::ErrorKind::BrokenPipe {
                self.broken = true;
            }
        }
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// For a command line so malformed that clap refused it: when it asked for
/// `--json`, still end stdout with a `failed` event, as documented.
pub fn report_usage_error(message: &str) {
    if std::env::args_os().skip(1).any(|a| a == "--json") {
        EventWriter::new(io::stdout()).emit(&Event::Failed {
            reason: Reason::Usage,
            message: message.trim().trim_start_matches("error: ").to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_versioned_json_lines() {
        let mut w = EventWriter::new(Vec::new());
        w.emit(&Event::Code {
            code: "7-a-b-c".into(),
        });
        w.emit(&Event::Failed {
            reason: Reason::NoPeer,
            message: "no peer".into(),
        });
        let out = String::from_utf8(w.into_inner()).unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["v"], 1);
        assert_eq!(lines[0]["event"], "code");
        assert_eq!(lines[0]["code"], "7-a-b-c");
        assert_eq!(lines[1]["event"], "failed");
        assert_eq!(lines[1]["reason"], "no_peer");
    }

    struct Closed;
    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_is_not_fatal() {
        let mut w = EventWriter::new(Closed);
        w.emit(&Event::Timeout { seconds: 1 });
        w.emit(&Event::Timeout { seconds: 1 });
        assert!(w.broken);
    }

    #[test]
    fn every_reason_is_documented_with_its_wire_name() {
        for (reason, name, _) in Reason::ALL {
            assert_eq!(serde_json::to_value(reason).unwrap(), *name);
        }
    }
}
