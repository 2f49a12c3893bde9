//! Ctrl-C and termination as something to poll, not a handler to race.
//!
//! While pairing, SIGINT, SIGTERM and SIGHUP are blocked and delivered
//! through a signalfd instead. The network loop waits on it beside the
//! sockets, and the setup checks it between writes, so an interruption at
//! any moment ends the run with nothing written or everything rolled back,
//! never half a pairing.

use std::os::fd::{AsFd, BorrowedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

/// The blocked signals, readable from a file descriptor.
pub struct Interrupts {
    fd: SignalFd,
    seen: Option<Signal>,
}

impl Interrupts {
    /// Blocks the signals for this thread (and threads it starts later) and
    /// opens the descriptor. Call before starting any thread.
    pub fn install() -> nix::Result<Interrupts> {
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(s);
        }
        set.thread_block()?;
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)?;
        Ok(Interrupts { fd, seen: None })
    }

    /// The first signal received so far, if any. Never blocks.
    pub fn check(&mut self) -> Option<Signal> {
        if self.seen.is_none() {
            if let Ok(Some(info)) = self.fd.read_signal() {
                self.seen = Signal::try_from(info.ssi_signo as i32).ok();
            }
        }
        self.seen
    }
}

impl AsFd for Interrupts {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
