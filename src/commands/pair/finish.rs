//! The end of a pairing, once the peer is verified, in two phases: ask the person (`--verify`),
//! take the ssh lock, write the pairing without keeping it yet, and tell the peer, sealed, how
//! that went; then keep it if the peer says it is set up too, and undo it if the peer failed or
//! declined. If the peer does not say within the machine's bounds (it went quiet for
//! [`machine::OUTCOME_QUIET`], or [`machine::OUTCOME_MAX`] passed), the pairing is kept, and
//! the person is told plainly that the other side may not be set up and how to check.
//!
//! The protocol machine keeps running through every wait (the answer, the lock, the peer), so
//! that the peer keeps hearing from this side and waits for it rather than giving up.

use std::time::{Duration, Instant};

use rand_core::OsRng;

use crate::cli::PairArgs;
use crate::events::Event as JsonEvent;
use crate::interrupt::Interrupts;
use crate::protocol::codec::End;
use crate::protocol::machine;
use crate::protocol::{Event, Machine};
use crate::ssh_files;
use crate::transport::driver::{self, Control, Outcome};
use crate::transport::Sockets;

use super::error::PairError;
use super::peer::{peer_error, VerifiedPeer};
use super::setup::{self, Done};
use super::verify::{Answer, Question};
use super::{Prepared, Reporter};

/// How long a pairing waits for the ssh lock that another run of this user holds.
pub const LOCK_WITHIN: Duration = Duration::from_secs(30);

/// Finishes a pairing with the verified peer `v`; `Ok` once it is kept on this machine.
pub(super) fn finish(
    args: &PairArgs,
    p: &Prepared,
    v: &VerifiedPeer,
    machine: &mut Machine<OsRng>,
    sockets: &mut Sockets,
    interrupts: &mut Interrupts,
    out: &mut Reporter,
) -> anyhow::Result<()> {
    let mut run = Run {
        machine,
        sockets,
        interrupts,
        out,
        peer_end: None,
        silent: false,
    };
    if args.verify {
        run.ask(args.json)?;
    }
    let lock = run.lock(p)?;
    let pending = match setup::write(args, p, v, lock, run.out, run.interrupts) {
        Ok(pending) => pending,
        Err(err) => {
            let detail = match super::error::find(&err) {
                Some(PairError::Interrupted) => "interrupted".to_string(),
                _ => format!("{err:#}"),
            };
            return Err(run.fail(End::Failed { detail }, err));
        }
    };
    run.machine.conclude(Instant::now(), End::Ready);
    match run.peer_outcome() {
        Some(End::Ready) => {
            let done = pending.keep(p, v, run.out);
            run.linger();
            run.out.progress.finish();
            paired(run.out, v, &done);
            Ok(())
        }
        Some(end) => {
            let undone = pending.undo(p);
            run.linger();
            let err = peer_error(&end)
                .map(anyhow::Error::new)
                .unwrap_or_else(|| anyhow::anyhow!("the other machine ended the pairing"));
            match undone {
                Ok(()) => Err(err),
                Err(e) => Err(err.context(format!("undoing this side failed too: {e:#}"))),
            }
        }
        None => {
            let name = pending.remote().to_string();
            let done = pending.keep(p, v, run.out);
            run.out.progress.finish();
            run.out.line(&format!(
                "warning: the other machine did not say whether it is set up, so it may not be. \
                 Check with `git pair list --check {name}` (it logs in to the peer with the paired \
                 key); `git pair remove {name}` undoes this side"
            ));
            paired(run.out, v, &done);
            Ok(())
        }
    }
}

fn paired(out: &mut Reporter, v: &VerifiedPeer, done: &Done) {
    out.event(JsonEvent::Paired {
        remote: done.remote.clone(),
        alias: done.alias.clone(),
        peer: v.view.clone(),
        address: v.address.to_string(),
        replaced: done.replacement.replaced.clone(),
        not_replaced: done.replacement.not_replaced.clone(),
    });
    out.line(&format!("Paired. Try: git fetch {}", done.remote));
}

/// The machine and what drives it, with what the peer has said so far.
struct Run<'a> {
    machine: &'a mut Machine<OsRng>,
    sockets: &'a mut Sockets,
    interrupts: &'a mut Interrupts,
    out: &'a mut Reporter,
    /// The peer's end, once it told it.
    peer_end: Option<End>,
    /// The machine said the peer went quiet without its end.
    silent: bool,
}

/// What a wait ended with.
enum Wait<T> {
    Got(T),
    /// The peer ended the pairing (declined or failed).
    PeerEnded(End),
    Interrupted,
    /// The machine has nothing left to do and nothing came.
    Over,
}

impl Run<'_> {
    /// Drives the machine until `poll` gives something, the peer ends the pairing, or Ctrl-C.
    fn wait<T>(&mut self, status: &str, poll: impl FnMut() -> Option<T>) -> Wait<T> {
        self.wait_for(status, false, poll)
    }

    /// [`Run::wait`]; with `any_end`, also stops when the peer says it is ready.
    fn wait_for<T>(
        &mut self,
        status: &str,
        any_end: bool,
        mut poll: impl FnMut() -> Option<T>,
    ) -> Wait<T> {
        if let Some(end) = self.peer_end.clone().filter(|e| *e != End::Ready) {
            return Wait::PeerEnded(end);
        }
        if let Some(got) = poll() {
            return Wait::Got(got);
        }
        if self.silent {
            return Wait::Over;
        }
        if !status.is_empty() {
            self.out.status(status);
        }
        let mut handler = Waiting {
            out: &mut *self.out,
            poll: &mut poll,
            got: None,
            peer_end: &mut self.peer_end,
            silent: &mut self.silent,
            spinner: !status.is_empty(),
            any_end,
        };
        // Bounded by what is polled (an answer's deadline, a lock) and by the machine.
        let until = Instant::now() + machine::OUTCOME_MAX + machine::LINGER_MAX;
        let outcome = driver::drive(
            self.machine,
            self.sockets,
            self.interrupts,
            until,
            &mut handler,
        );
        if let Some(got) = handler.got.take() {
            return Wait::Got(got);
        }
        if let Some(end) = self.peer_end.clone().filter(|e| *e != End::Ready) {
            return Wait::PeerEnded(end);
        }
        match outcome {
            Ok(Outcome::Interrupted) => Wait::Interrupted,
            Ok(_) => Wait::Over,
            Err(e) => {
                self.out
                    .line(&format!("warning: {:#}", anyhow::Error::new(e)));
                Wait::Over
            }
        }
    }

    /// `--verify`: the person confirms the check string, or the pairing ends here.
    fn ask(&mut self, json: bool) -> anyhow::Result<()> {
        self.out.progress.finish();
        if !json {
            self.out.line(
                "Do the check codes match on both machines? Type y and Enter if they do \
                 (anything else: stop, write nothing):",
            );
        }
        let question = Question::ask(json);
        match self.wait("", || question.poll()) {
            Wait::Got(Answer::Yes) => Ok(()),
            Wait::Got(Answer::No(why)) => {
                let err = PairError::Declined(why).into();
                Err(self.fail(End::Declined, err))
            }
            Wait::PeerEnded(end) => Err(self.ended_by_peer(&end)),
            Wait::Interrupted => Err(self.interrupted()),
            Wait::Over => Err(self.gone()),
        }
    }

    /// The ssh lock, polled: another run of this user may hold it while it writes its own
    /// pairing (a moment: the lock is never held while waiting for a peer). A lock held for
    /// [`LOCK_WITHIN`] is given up: this pairing is called off on both sides.
    fn lock(&mut self, p: &Prepared) -> anyhow::Result<ssh_files::Applied> {
        let give_up = Instant::now() + LOCK_WITHIN;
        let got = self.wait(
            "waiting for another git pair of this user to finish writing…",
            || match ssh_files::try_lock(&p.ssh, &format!("pairing {}", p.info.path.display())) {
                Ok(Some(lock)) => Some(Ok(lock)),
                Ok(None) if Instant::now() >= give_up => Some(Err(None)),
                Ok(None) => None,
                Err(e) => Some(Err(Some(e))),
            },
        );
        match got {
            Wait::Got(Ok(lock)) => Ok(lock),
            Wait::Got(Err(e)) => {
                let err = match e {
                    Some(e) => anyhow::Error::new(e).context(PairError::Setup),
                    None => PairError::Busy {
                        lock: p.ssh.lock_file().display().to_string(),
                        seconds: LOCK_WITHIN.as_secs(),
                    }
                    .into(),
                };
                let detail = format!("{err:#}");
                Err(self.fail(End::Failed { detail }, err))
            }
            Wait::PeerEnded(end) => Err(self.ended_by_peer(&end)),
            Wait::Interrupted => Err(self.interrupted()),
            Wait::Over => Err(self.gone()),
        }
    }

    /// The peer's end, once our own is out: `None` if it went quiet without one, the machine
    /// gave up, or Ctrl-C asked to stop waiting.
    fn peer_outcome(&mut self) -> Option<End> {
        let silent = |run: &Run<'_>| run.silent;
        if self.peer_end.is_none() && !silent(self) {
            let got = self.wait_for(
                "setting up here is done; waiting for the other machine to say it is set up…",
                true,
                || None::<()>,
            );
            if let Wait::Interrupted = got {
                self.out.progress.finish();
                self.out.line(
                    "warning: interrupted while waiting for the other machine; it was told that \
                     this side is set up, so this side is kept",
                );
            }
        }
        self.peer_end.clone()
    }

    /// Tells the peer why this side ends (sealed), lingers until it heard, and returns `err`.
    fn fail(&mut self, end: End, err: anyhow::Error) -> anyhow::Error {
        self.machine.conclude(Instant::now(), end);
        self.linger();
        err
    }

    fn ended_by_peer(&mut self, end: &End) -> anyhow::Error {
        self.linger();
        peer_error(end)
            .map(anyhow::Error::new)
            .unwrap_or_else(|| anyhow::anyhow!("the other machine ended the pairing"))
    }

    fn interrupted(&mut self) -> anyhow::Error {
        let err = PairError::Interrupted.into();
        self.fail(
            End::Failed {
                detail: "interrupted".into(),
            },
            err,
        )
    }

    /// The peer went quiet (or the machine stopped) before this side wrote anything.
    fn gone(&mut self) -> anyhow::Error {
        PairError::PeerGone.into()
    }

    /// Keeps driving the machine until it has told the peer everything (bounded by the
    /// machine's linger times), collecting the peer's end if it comes now.
    fn linger(&mut self) {
        if self.machine.is_done() {
            return;
        }
        let _ = self.wait("telling the other machine how this side ended…", || {
            None::<()>
        });
    }
}

/// The handler of a wait: records the peer's end and silence, polls for what is awaited.
struct Waiting<'a, T, F: FnMut() -> Option<T>> {
    out: &'a mut Reporter,
    poll: &'a mut F,
    got: Option<T>,
    peer_end: &'a mut Option<End>,
    silent: &'a mut bool,
    /// Turn the spinner (not while the person is asked a question).
    spinner: bool,
    /// Stop at the peer's end whatever it says.
    any_end: bool,
}

impl<T, F: FnMut() -> Option<T>> driver::Handler<OsRng> for Waiting<'_, T, F> {
    fn event(&mut self, _: &mut Machine<OsRng>, event: Event) -> Control {
        match event {
            Event::PeerEnded { end, .. } => {
                let stop = self.any_end || end != End::Ready;
                *self.peer_end = Some(end);
                if stop {
                    return Control::Stop;
                }
                Control::Continue
            }
            Event::PeerSilent { .. } => {
                *self.silent = true;
                Control::Stop
            }
            Event::Finished => Control::Stop,
            _ => Control::Continue,
        }
    }

    fn idle(&mut self, _: &mut Machine<OsRng>, sockets: &mut Sockets) -> Control {
        if self.spinner {
            self.out.idle(sockets);
        }
        match (self.poll)() {
            Some(got) => {
                self.got = Some(got);
                Control::Stop
            }
            None => Control::Continue,
        }
    }
}
