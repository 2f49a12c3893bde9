//! The loop that runs the protocol machine on real sockets: send what it
//! wants sent, hand it what arrives and when its timer fires, and pass its
//! events to the caller. All protocol decisions stay in the machine.

use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rand_core::{CryptoRng, RngCore};

use super::{Sockets, TransportError};
use crate::interrupt::Interrupts;
use crate::protocol::{Event, Machine};

/// What the caller wants after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Stop,
}

/// Why the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The caller said stop.
    Stopped,
    /// The deadline passed.
    Deadline,
    /// Ctrl-C, SIGTERM or SIGHUP.
    Interrupted,
}

/// What the caller does with the machine's events.
pub trait Handler<R> {
    /// One event; the handler may call `accept`, `refuse` or `conclude` on
    /// the machine.
    fn event(&mut self, machine: &mut Machine<R>, event: Event) -> Control;
    /// Runs on every turn of the loop, at least every [`IDLE_TICK`]: turn a
    /// spinner, report socket warnings, look whether something the handler
    /// waits for (an answer, a lock) has come, and stop the loop if so.
    fn idle(&mut self, machine: &mut Machine<R>, sockets: &mut Sockets) -> Control {
        let _ = (machine, sockets);
        Control::Continue
    }
}

/// The loop wakes at least this often, so that a spinner can turn.
pub const IDLE_TICK: Duration = Duration::from_millis(100);

/// Runs `machine` until the handler stops it, the deadline passes or a
/// signal arrives. The handler may block briefly (it checks addresses and
/// writes files); the peer's retransmissions cover the pause. Waits that may
/// be long (a person's answer, another run's lock) are polled from
/// [`Handler::idle`] instead, so that the peer keeps hearing from us.
pub fn drive<R: RngCore + CryptoRng>(
    machine: &mut Machine<R>,
    sockets: &mut Sockets,
    interrupts: &mut Interrupts,
    deadline: Instant,
    handler: &mut impl Handler<R>,
) -> Result<Outcome, TransportError> {
    loop {
        let control = handler.idle(machine, sockets);
        flush(machine, sockets);
        if control == Control::Stop {
            return Ok(Outcome::Stopped);
        }
        while let Some(event) = machine.poll_event() {
            let control = handler.event(machine, event);
            flush(machine, sockets);
            if control == Control::Stop {
                return Ok(Outcome::Stopped);
            }
        }
        if interrupts.check().is_some() {
            return Ok(Outcome::Interrupted);
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(Outcome::Deadline);
        }
        let wake = machine
            .poll_timeout()
            .into_iter()
            .chain(sockets.next_due())
            .fold(deadline, Instant::min)
            .min(now + IDLE_TICK);
        if wake > now {
            wait(sockets, interrupts, wake - now)?;
        }
        let now = Instant::now();
        sockets.recv_all(|from, datagram| machine.handle_datagram(now, from, datagram));
        if machine.poll_timeout().is_some_and(|t| t <= now) {
            machine.handle_timeout(now);
        }
    }
}

/// Sends what the machine wants sent, and the transport's copies by multicast that are due
/// (see [`super::neighbour`]).
fn flush<R: RngCore + CryptoRng>(machine: &mut Machine<R>, sockets: &mut Sockets) {
    while let Some(t) = machine.poll_transmit() {
        sockets.send(&t);
    }
    sockets.send_due(Instant::now());
}

/// Waits until a socket is readable, a signal arrives or `timeout` passes (at most 60 s).
pub fn wait(
    sockets: &Sockets,
    interrupts: &Interrupts,
    timeout: Duration,
) -> Result<(), TransportError> {
    let mut fds: Vec<PollFd<'_>> = sockets
        .fds()
        .into_iter()
        .chain([std::os::fd::AsFd::as_fd(interrupts)])
        .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
        .collect();
    // Round up, so that the timer has expired when poll returns.
    let ms = timeout.as_micros().div_ceil(1000).min(60_000) as u32;
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(TransportError::Poll(e)),
    }
}
