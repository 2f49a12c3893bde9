//! `git pair sync [NAME] [--json] [--hook]`: the edge of [`crate::sync`].
//!
//! In the foreground it prints one line per peer (stdout; with `--json`, `sync_peer` events on
//! stdout and the lines on stderr) and exits with the status the outcomes call for. With
//! `--hook` (what git-pair's hooks run, in the background) it leaves its own session, prints
//! nothing, and goes through the queue ([`crate::sync::queue`]): one sync at a time, commits in
//! quick succession coalesced, every line in the log. Everything that came from a peer or from
//! git's output is sanitized before it is shown or logged.

use std::io::{self, Write};

use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::commands::pair::Reporter;
use crate::commands::refresh;
use crate::events::{Event, EventWriter, Reason};
use crate::exit::Exit;
use crate::interrupt::Interrupts;
use crate::repo::PairedRemote;
use crate::sanitize::for_terminal as sanitize;
use crate::sync::plan::Outcome;
use crate::sync::queue::{self, Queue};
use crate::sync::{Context, PeerReport, Refresh, Report, SyncError};

/// Runs `git pair sync`.
pub fn run(name: Option<&str>, json: bool, hook: bool) -> anyhow::Result<()> {
    if hook {
        run_hook(name);
        return Ok(());
    }
    let mut events = json.then(|| EventWriter::new(io::stdout()));
    let result = foreground(name, &mut events);
    if let (Err(err), Some(w)) = (&result, &mut events) {
        let finished = matches!(crate::sync::find(err), Some(SyncError::Finished { .. }));
        if !finished {
            let reason = match crate::sync::find(err).map(SyncError::exit) {
                Some(Exit::Usage) => Reason::Usage,
                _ => Reason::Error,
            };
            w.emit(&Event::Failed {
                reason,
                message: format!("{err:#}"),
            });
        }
    }
    result
}

fn foreground(
    name: Option<&str>,
    events: &mut Option<EventWriter<io::Stdout>>,
) -> anyhow::Result<()> {
    let ctx = Context::open(name)?;
    // One sync at a time, also against the hooks' background run.
    let _lock = match Queue::open(ctx.git_dir(), ctx.common_dir()) {
        Ok(q) => {
            let lock = q.lock_waiting(&mut || {
                say("git pair: waiting for the sync that runs in the background...\n")
            });
            lock.ok()
        }
        Err(_) => None,
    };
    let report = ctx.sync(
        &mut |line| say(&format!("  {}\n", sanitize(line))),
        &mut refresh_unreachable,
    )?;
    for peer in &report.peers {
        let text = describe(&report, peer);
        match events {
            Some(w) => {
                w.emit(&Event::SyncPeer {
                    remote: sanitize(&peer.remote).into_owned(),
                    outcome: peer.result.outcome,
                    pushed: peer.result.pushed,
                    fast_forwarded: peer.result.fast_forwarded,
                    message: text.clone(),
                });
                say(&format!("{text}\n"));
            }
            None => print_line(&text),
        }
    }
    let status = report.status();
    if let Some(w) = events {
        w.emit(&Event::SyncDone {
            branch: sanitize(&report.branch).into_owned(),
            commit: report.commit.clone(),
            annex: report.annex,
            status: status.code(),
        });
    }
    if status == Exit::Success {
        Ok(())
    } else {
        Err(SyncError::Finished {
            status,
            message: summary(&report),
        }
        .into())
    }
}

/// What hooks run: quiet, queued, logged. Never fails: there is nobody to tell but the log.
fn run_hook(name: Option<&str>) {
    // Out of the terminal's session: closing the terminal or a Ctrl-C there does not stop it.
    let _ = nix::unistd::setsid();
    // Outside a repository or without pairings there is nothing to do, and nowhere to log.
    let Ok(ctx) = Context::open(name) else {
        return;
    };
    let Ok(q) = Queue::open(ctx.git_dir(), ctx.common_dir()) else {
        return;
    };
    let result = queue::run(&q, &mut || {
        q.rotate_log();
        q.log("sync started");
        let mut refresh = |peer: &PairedRemote| {
            q.log(&format!(
                "{}: unreachable; trying git pair refresh",
                sanitize(&peer.name)
            ));
            refresh_unreachable(peer)
        };
        match ctx.sync(
            &mut |line| q.log(&format!("  {}", sanitize(line))),
            &mut refresh,
        ) {
            Ok(report) => {
                for peer in &report.peers {
                    q.log(&describe(&report, peer));
                }
                q.log(&format!(
                    "sync done: {} at {}, exit status {}",
                    sanitize(&report.branch),
                    report.commit.as_deref().map_or("-", short),
                    report.status().code()
                ));
            }
            Err(e) => q.log(&format!("sync not run: {}", sanitize(&format!("{e:#}")))),
        }
    });
    if let Err(e) = result {
        q.log(&format!("cannot queue a sync: {e}"));
    }
}

/// How long sync's refresh of one peer may send locate queries.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(5);

/// The one place where a peer that could not be reached gets its second chance: `git pair
/// refresh` for that pairing, in-process and bounded ([`REFRESH_TIMEOUT`], no subnet sweep: this
/// may run in the background after every commit while a peer is away). It tries the peer's
/// `.local` name, the alias's address, then authenticated locate queries by multicast, and
/// changes the alias only for a host that proves it holds the pinned host key. Human progress
/// goes to stderr (nowhere, in the background); nothing to stdout, which may carry JSON events.
fn refresh_unreachable(peer: &PairedRemote) -> Refresh {
    let not_found = |why: &str| Refresh::NotFound(Some(why.to_string()));
    let Ok(cwd) = std::env::current_dir() else {
        return not_found("cannot refresh it: no current directory");
    };
    // Refresh reads Ctrl-C from a signalfd; the signals are blocked only while it runs, so that
    // the git commands sync runs afterwards can still be interrupted.
    let Ok(mut interrupts) = Interrupts::install() else {
        return not_found("cannot refresh it: cannot watch for Ctrl-C");
    };
    let mut out = Reporter::new(false);
    let opts = refresh::Options {
        interfaces: Vec::new(),
        peers: Vec::new(),
        port: crate::protocol::locate::PORT,
        timeout: REFRESH_TIMEOUT,
        scan: false,
    };
    let result = refresh::refresh_in(&cwd, Some(&peer.name), &opts, &mut out, &mut interrupts);
    out.progress.finish();
    let interrupted = interrupts.check();
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(s);
    }
    let _ = set.thread_unblock();
    if let Some(signal) = interrupted {
        // What the signal would have done had it not been blocked: end the run.
        let _ = nix::sys::signal::raise(signal);
    }
    match result {
        Ok(outcomes) if outcomes.iter().any(|o| o.result.is_ok()) => Refresh::Found,
        Ok(_) => not_found("git pair refresh did not find it either"),
        Err(e) => Refresh::NotFound(Some(format!(
            "git pair refresh failed: {}",
            sanitize(&format!("{e:#}"))
        ))),
    }
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// One peer's line: `<remote>: <what happened>`, sanitized.
pub fn describe(report: &Report, peer: &PeerReport) -> String {
    let remote = sanitize(&peer.remote);
    let branch = sanitize(&report.branch);
    let commit = report.commit.as_deref().map_or("-", short);
    let detail = peer
        .result
        .detail
        .as_deref()
        .map(|d| sanitize(d).into_owned())
        .unwrap_or_default();
    let r = &peer.result;
    let text = match r.outcome {
        Outcome::UpToDate => format!("up to date ({branch} at {commit})"),
        Outcome::Synced if report.annex => "synced with git annex sync".to_string(),
        Outcome::Synced => {
            let mut parts = Vec::new();
            if r.fast_forwarded {
                parts.push(format!("fast-forwarded {branch} to {commit}"));
            }
            if r.pushed {
                parts.push(format!("pushed {branch} ({commit}) to synced/{branch}"));
            }
            parts.join("; ")
        }
        Outcome::Diverged => format!(
            "{branch} has diverged from {remote}'s: nothing was merged{}. Look with `git log \
             --graph --oneline {branch} {remote}/{branch} {remote}/synced/{branch}`, merge or \
             rebase, then sync again",
            if r.pushed {
                format!(" (pushed {branch} to synced/{branch} there)")
            } else {
                String::new()
            }
        ),
        Outcome::LocalChanges => format!(
            "has new commits on {branch}, not fast-forwarded: {}; commit or stash your \
             changes, then sync again",
            if detail.is_empty() {
                "this work tree has uncommitted changes".to_string()
            } else {
                detail.clone()
            }
        ),
        Outcome::Unreachable => format!("unreachable ({detail}); it is tried again next time"),
        Outcome::HostKeyChanged => format!(
            "its sshd offered a host key that is not the pinned one: nothing was sent. If the \
             peer was reinstalled, pair again with `git pair`; otherwise another machine may \
             have its address ({detail})"
        ),
        Outcome::Refused => format!(
            "refused ({detail}). If the pairing was removed there, `git pair remove {remote}` \
             here, or pair again"
        ),
        Outcome::Failed => format!("failed: {detail}"),
    };
    format!("{remote}: {text}")
}

/// The error line of a run that finished with something for the user to do.
fn summary(report: &Report) -> String {
    let names = |f: fn(Outcome) -> bool| -> Vec<String> {
        report
            .peers
            .iter()
            .filter(|p| f(p.result.outcome))
            .map(|p| sanitize(&p.remote).into_owned())
            .collect()
    };
    let mut parts = Vec::new();
    for (label, f) in [
        (
            "diverged",
            (|o| o == Outcome::Diverged) as fn(Outcome) -> bool,
        ),
        ("waits for your uncommitted changes", |o| {
            o == Outcome::LocalChanges
        }),
        ("unreachable", |o| o == Outcome::Unreachable),
        ("failed", |o| {
            matches!(
                o,
                Outcome::HostKeyChanged | Outcome::Refused | Outcome::Failed
            )
        }),
    ] {
        let n = names(f);
        if !n.is_empty() {
            parts.push(format!("{label}: {}", n.join(", ")));
        }
    }
    format!(
        "not every peer is in sync ({}); nothing was merged",
        parts.join("; ")
    )
}

fn print_line(text: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Writes to stderr; a closed stderr is no reason to stop.
fn say(text: &str) {
    let _ = io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::plan::PeerResult;

    fn report(outcome: Outcome, pushed: bool, ff: bool, detail: Option<&str>) -> Report {
        Report {
            branch: "main".into(),
            commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            fast_forwarded_from: None,
            annex: false,
            peers: vec![PeerReport {
                remote: "beta".into(),
                result: PeerResult {
                    outcome,
                    pushed,
                    fast_forwarded: ff,
                    detail: detail.map(str::to_string),
                },
            }],
        }
    }

    fn line(r: &Report) -> String {
        describe(r, &r.peers[0])
    }

    #[test]
    fn each_outcome_has_one_line_that_says_what_to_do() {
        let synced = report(Outcome::Synced, true, true, None);
        assert_eq!(
            line(&synced),
            "beta: fast-forwarded main to 0123456789; pushed main (0123456789) to synced/main"
        );
        assert_eq!(
            line(&report(Outcome::UpToDate, false, false, None)),
            "beta: up to date (main at 0123456789)"
        );
        let diverged = line(&report(Outcome::Diverged, false, false, None));
        assert!(diverged.contains("nothing was merged"), "{diverged}");
        assert!(diverged.contains("beta/main"), "{diverged}");
        let held = line(&report(Outcome::LocalChanges, true, false, None));
        assert!(held.contains("commit or stash"), "{held}");
        let off = line(&report(
            Outcome::Unreachable,
            false,
            false,
            Some("ssh: connect to host x port 22: No route to host"),
        ));
        assert!(off.starts_with("beta: unreachable (ssh: connect"), "{off}");
        for r in [
            report(Outcome::HostKeyChanged, false, false, Some("x")),
            report(Outcome::Refused, false, false, Some("x")),
            report(Outcome::Failed, false, false, Some("x")),
        ] {
            assert!(!line(&r).contains('\n'));
        }
    }

    #[test]
    fn text_from_peers_and_git_is_sanitized() {
        let mut r = report(
            Outcome::Failed,
            false,
            false,
            Some("remote: \u{1b}[2J\u{1b}]0;pwned\u{7}gone"),
        );
        r.peers[0].remote = "be\u{1b}[31mta".into();
        let text = line(&r);
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        let s = summary(&r);
        assert!(!s.contains('\u{1b}'), "{s:?}");
        assert!(s.contains("failed: "), "{s}");
    }

    #[test]
    fn the_summary_names_peers_by_outcome() {
        let mut r = report(Outcome::Diverged, false, false, None);
        r.peers.push(PeerReport {
            remote: "gamma".into(),
            result: PeerResult {
                outcome: Outcome::Unreachable,
                pushed: false,
                fast_forwarded: false,
                detail: None,
            },
        });
        assert_eq!(
            summary(&r),
            "not every peer is in sync (diverged: beta; unreachable: gamma); nothing was merged"
        );
    }
}
