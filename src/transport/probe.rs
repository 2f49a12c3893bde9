//! Checks that the peer's sshd answers, before anything is written.
//!
//! A check goes as far as the sshd's SYN-ACK and no further ([`half_open`]): that answer is all
//! it learns (something listens on the port, reachable from here), and the sshd never accepts
//! the connection, so it starts no process for it and logs nothing. OpenSSH forks and
//! re-executes itself for every connection it accepts (5-6 ms of CPU each on the benchmark's
//! machine), which a pairing would otherwise pay on both machines while it runs.
//!
//! The candidate addresses are tried side by side, each with its own thread
//! and timeout, and the most preferred one that connects wins. A peer that
//! advertises an address from another network (a VPN, a container bridge)
//! therefore costs no waiting when a better address answers first. The most
//! preferred address goes first, alone for a moment ([`stagger`]): on a clean
//! LAN it answers within that, and the other addresses cost no thread, SYN or
//! neighbour resolution.
//!
//! A candidate that has not answered is tried again with a fresh connection
//! at [`RETRY_STEPS`] times a unit: the retransmission timeout of the round
//! trip the pairing exchange measured to the peer (see
//! [`first_reachable_paced`]), or [`DEFAULT_RETRY`] where none was measured.
//! On a lossy LAN (bad Wi-Fi) the SYN or the SYN-ACK of a connect is often
//! lost, and the kernel resends an unanswered SYN only after 1 s, then 2 s
//! later: with a single connect, 30% loss made one check in four fail within
//! its 3 s and many take over 1 s. Fresh connections a few round trips apart
//! cost a lost packet that much instead.
//!
//! A more preferred address that has not answered is waited for only a little once a less
//! preferred one has connected ([`PREFERENCE_GRACE`]): on a LAN that loses frames, the first
//! connection to an address waits for the kernel to resolve its link-layer address (ARP for IPv4,
//! neighbour discovery for IPv6), and a lost ARP request is resent only after a second. The IPv4
//! and IPv6 addresses of a peer are resolved independently, so taking whichever answers first
//! turns one such second in five into one in twenty.
//!
//! A connection that fails because the kernel gave up resolving the address on the link (three
//! requests a second apart, all unanswered: "no route to host") leaves the address undecided:
//! the next fresh connection starts another resolution, and the check's timeout is long enough
//! for two (the pairing exchange may have finished by multicast copies before the first did:
//! see [`super::neighbour`]).

use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use super::neighbour::Kernel;

/// At most this many addresses are tried.
pub const MAX_CANDIDATES: usize = 16;

/// When a candidate that has not answered yet gets a fresh connection, in
/// units (see [`retry_after`]) counted from the start of the check. Each
/// connection keeps the kernel's own SYN retransmissions until the check's
/// timeout.
pub const RETRY_STEPS: [u32; 14] = [1, 2, 3, 5, 8, 12, 17, 23, 30, 40, 52, 70, 90, 120];

/// The unit of [`RETRY_STEPS`] where no round trip was measured: fresh connections at 50, 100,
/// 150, 250 ms...
pub const DEFAULT_RETRY: Duration = Duration::from_millis(50);

/// When fresh connections start, counted from the start of the check, for a unit.
pub fn retry_after(unit: Duration) -> impl Iterator<Item = Duration> {
    RETRY_STEPS.into_iter().map(move |k| unit * k)
}

/// Once an address has connected, more preferred addresses that are still undecided get this
/// long, plus twice the time the connected one took as long as the check has not yet run for
/// [`PREFERENCE_UNITS`] units, before the connected one is taken (this long alone when each of
/// them waits for the kernel to resolve its link-layer address).
pub const PREFERENCE_GRACE: Duration = Duration::from_millis(20);
/// ...up to this many units of [`first_reachable_paced`] (its retransmission timeout) from the
/// start of the check: by then the preferred addresses have had that many fresh connections.
pub const PREFERENCE_UNITS: u32 = 4;

/// How long after the most preferred address began to connect the others get their first
/// connection, unless it fails sooner: a quarter of the retry unit (5 ms on a LAN). On a clean
/// LAN the first connects well within that, and the others would cost a thread, a SYN and
/// perhaps a neighbour resolution each while both sides are busy pairing; on a lossy one the
/// others still start long before the first fresh connection, and a family whose neighbour
/// resolution lost a frame still races the other one (a second, not 5 ms).
pub fn stagger(unit: Duration) -> Duration {
    unit / 4
}

/// Whether something listens on TCP `addr` and answers from here within `timeout`, found out
/// without opening a connection that it accepts: the connect completes on the SYN-ACK while
/// the handshake's last ACK is held back (with `TCP_QUICKACK` off, Linux keeps that ACK to send
/// with the first data), and the socket is then closed with a reset (`SO_LINGER` 0). The
/// listener's kernel drops the half-made connection on the reset; its program (the peer's sshd)
/// never sees it. Refused, unreachable and timed-out connections fail as a plain connect does.
///
/// Were the ACK not held back (another kernel), the check would still be right: the connection
/// would be accepted and reset, as a plain connect that is closed at once is accepted and closed.
pub fn half_open(addr: SocketAddr, timeout: Duration) -> io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_tcp_quickack(false)?;
    socket.set_linger(Some(Duration::ZERO))?;
    socket.connect_timeout(&addr.into(), timeout)
    // Dropped here: closed with a reset, before the delayed ACK's timer (40-200 ms) fires.
}

/// Connects to an address within a timeout; replaced in tests.
type Connect = Arc<dyn Fn(SocketAddr, Duration) -> io::Result<()> + Send + Sync>;

/// The first of `candidates` (in order of preference) on which a TCP
/// connection succeeds within `timeout`, or every failure; fresh connections
/// are paced by [`DEFAULT_RETRY`].
pub fn first_reachable(
    candidates: &[SocketAddr],
    timeout: Duration,
) -> Result<SocketAddr, Vec<(SocketAddr, io::Error)>> {
    first_reachable_paced(candidates, timeout, DEFAULT_RETRY)
}

/// [`first_reachable`], with fresh connections paced by `unit`: the retransmission timeout of
/// a round trip measured to the same host (the pairing exchange measures it to the peer, and
/// never gives less than its floor of a few tens of milliseconds).
pub fn first_reachable_paced(
    candidates: &[SocketAddr],
    timeout: Duration,
    unit: Duration,
) -> Result<SocketAddr, Vec<(SocketAddr, io::Error)>> {
    let connect: Connect = Arc::new(half_open);
    // Asked only when an address has connected and a more preferred one has not; a kernel that
    // cannot be asked says nothing (the full grace).
    let mut kernel = None;
    let mut waiting = |addr: SocketAddr| {
        if kernel.is_none() {
            kernel = Kernel::open().ok();
        }
        kernel
            .as_mut()
            .is_some_and(|k| k.waiting(addr.ip()).unwrap_or(false))
    };
    first_reachable_with(candidates, timeout, unit, &connect, &mut waiting)
}

/// [`first_reachable_paced`] with the connections and the kernel's neighbour tables given:
/// `waiting(addr)` says whether a connection to `addr` waits for the kernel to resolve it.
fn first_reachable_with(
    candidates: &[SocketAddr],
    timeout: Duration,
    unit: Duration,
    connect: &Connect,
    waiting: &mut dyn FnMut(SocketAddr) -> bool,
) -> Result<SocketAddr, Vec<(SocketAddr, io::Error)>> {
    let candidates = &candidates[..candidates.len().min(MAX_CANDIDATES)];
    let started = Instant::now();
    let deadline = started + timeout;
    let (tx, rx) = mpsc::channel();
    // Detached: a thread still connecting when a better address has
    // answered ends on its own timeout without holding anyone up.
    let attempt = |i: usize| {
        let (tx, connect, addr) = (tx.clone(), Arc::clone(connect), candidates[i]);
        let left = deadline.saturating_duration_since(Instant::now());
        std::thread::spawn(move || {
            let _ = tx.send((i, None));
            let _ = tx.send((i, Some(connect(addr, left))));
        });
    };
    // The most preferred address first, the others a little later (see [`stagger`]), counted
    // from when its thread began to connect: on a busy machine a new thread can wait
    // milliseconds for a core, and the others would start for nothing.
    attempt(0);
    let mut begun = 1;
    let mut others_at: Option<Instant> = None;
    // Per candidate: `None` while undecided, `Some(Ok)` once connected,
    // `Some(Err)` once refused or unreachable by route (trying again would not help).
    let mut results: Vec<Option<io::Result<()>>> = candidates.iter().map(|_| None).collect();
    // Per candidate: the last "no route to host", for the report if nothing decides it.
    let mut unreachable: Vec<Option<io::Error>> = candidates.iter().map(|_| None).collect();
    let mut retries = retry_after(unit).map(|after| started + after);
    let mut next_retry = retries.next();
    // When the first address connected: more preferred ones are waited for until then.
    let mut settle_by: Option<Instant> = None;
    loop {
        if begun < candidates.len()
            && (others_at.is_some_and(|at| Instant::now() >= at)
                || results[..begun].iter().all(|r| matches!(r, Some(Err(_)))))
        {
            for i in begun..candidates.len() {
                attempt(i);
            }
            begun = candidates.len();
        }
        // Done once some address connected and every more preferred one
        // has failed, or once every address failed.
        for (j, r) in results.iter().enumerate() {
            match r {
                None => break,
                Some(Ok(())) => return Ok(candidates[j]),
                Some(Err(_)) => {}
            }
        }
        if results.iter().all(|r| matches!(r, Some(Err(_)))) {
            break;
        }
        let now = Instant::now();
        if settle_by.is_some_and(|by| now >= by) {
            if let Some(j) = results.iter().position(|r| matches!(r, Some(Ok(())))) {
                return Ok(candidates[j]);
            }
        }
        if now >= deadline {
            break;
        }
        let wake = [
            next_retry,
            settle_by,
            others_at.filter(|_| begun < candidates.len()),
        ]
        .into_iter()
        .flatten()
        .fold(deadline, Instant::min);
        match rx.recv_timeout(wake.saturating_duration_since(now)) {
            Ok((i, None)) => {
                if i == 0 && others_at.is_none() {
                    others_at = Some(Instant::now() + stagger(unit));
                }
            }
            Ok((i, Some(Ok(())))) => {
                results[i] = Some(Ok(()));
                if settle_by.is_none() {
                    // More preferred addresses that all wait for neighbour discovery would
                    // answer only after the kernel's next request, a second apart: they get
                    // the grace alone.
                    let took = Instant::now().saturating_duration_since(started);
                    let stuck = results[..i]
                        .iter()
                        .zip(candidates)
                        .filter(|(r, _)| r.is_none())
                        .all(|(_, a)| waiting(*a));
                    // Otherwise twice the time the connected one took, which on a LAN is the
                    // jitter of a round trip; but not past a few retransmission timeouts from
                    // the start: under loss the time is mostly lost SYNs and neighbour
                    // resolution, which the preferred addresses have waited through as long. A
                    // connection that waited a second for an ARP resend while the preferred
                    // address's SYN-ACKs waited for the peer's (its kernel had not resolved
                    // this side) would otherwise be held back 4 units more for nothing.
                    let more = if stuck {
                        Duration::ZERO
                    } else {
                        let left = (PREFERENCE_UNITS * unit).saturating_sub(took);
                        (2 * took).min(left)
                    };
                    settle_by = Some(Instant::now() + PREFERENCE_GRACE + more);
                }
            }
            // A timed-out connection says nothing while others are pending;
            // at the deadline every undecided candidate counts as timed out.
            Ok((_, Some(Err(e)))) if e.kind() == io::ErrorKind::TimedOut => {}
            // So does a failed resolution of the address on the link: the kernel gives up after
            // three requests a second apart (on a LAN that loses ARP frames, or before the
            // peer's host answers), and the next connection starts another.
            Ok((i, Some(Err(e)))) if e.kind() == io::ErrorKind::HostUnreachable => {
                unreachable[i] = Some(e);
            }
            Ok((i, Some(Err(e)))) => {
                if results[i].is_none() {
                    results[i] = Some(Err(e));
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                // No fresh connection at or after the deadline: it would have no time left (a
                // retry step can fall on the deadline itself, as 40 x 50 ms does on 2 s).
                let now = Instant::now();
                if now < deadline && next_retry.is_some_and(|r| now >= r) {
                    next_retry = retries.next();
                    for (i, _) in results[..begun]
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| r.is_none())
                    {
                        attempt(i);
                    }
                }
            }
            // Unreachable while `tx` lives here; nothing more can arrive.
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    // The deadline came while more preferred addresses had their grace: one did connect.
    if let Some(j) = results.iter().position(|r| matches!(r, Some(Ok(())))) {
        return Ok(candidates[j]);
    }
    Err(candidates
        .iter()
        .zip(results)
        .zip(unreachable)
        .map(|((a, r), unreachable)| {
            let err = match (r, unreachable) {
                (Some(Err(e)), _) | (_, Some(e)) => e,
                _ => io::Error::new(io::ErrorKind::TimedOut, "no answer"),
            };
            (*a, err)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::sync::Mutex;

    /// The check finds the listener, and the listener never gets a connection to accept, even
    /// once the longest delayed-ACK timer (200 ms) has passed; a plain connect, for contrast,
    /// does give it one.
    #[test]
    fn a_half_open_check_leaves_the_listener_nothing_to_accept() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        open.set_nonblocking(true).unwrap();
        let addr = open.local_addr().unwrap();
        half_open(addr, Duration::from_secs(2)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let got = open.accept().map(|(_, from)| from);
        assert!(
            matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
            "the listener got a connection: {got:?}"
        );
        let plain = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
        let from = plain.local_addr().unwrap();
        open.set_nonblocking(false).unwrap();
        assert_eq!(open.accept().unwrap().1, from);
    }

    #[test]
    fn a_half_open_check_of_a_closed_port_is_refused() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = half_open(closed, Duration::from_secs(2)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    /// [`first_reachable_with`] where the kernel never says an address waits for neighbour
    /// discovery.
    fn reach(
        candidates: &[SocketAddr],
        timeout: Duration,
        unit: Duration,
        connect: &Connect,
    ) -> Result<SocketAddr, Vec<(SocketAddr, io::Error)>> {
        first_reachable_with(candidates, timeout, unit, connect, &mut |_| false)
    }

    #[test]
    fn prefers_the_first_address_that_answers() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let open_addr = open.local_addr().unwrap();
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // `closed`'s listener is dropped: connecting is refused at once.
        let got = first_reachable(&[closed, open_addr], Duration::from_secs(2)).unwrap();
        assert_eq!(got, open_addr);
    }

    /// A connect whose SYN is lost hangs until its timeout; only the
    /// second connection to the address gets through.
    #[test]
    fn a_lost_connect_is_retried_long_before_the_kernel_would() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = open.local_addr().unwrap();
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&tries);
        let connect: Connect = Arc::new(move |addr, timeout| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                std::thread::sleep(timeout);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "lost"));
            }
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        });
        let started = Instant::now();
        let got = reach(&[addr], Duration::from_secs(3), DEFAULT_RETRY, &connect).unwrap();
        assert_eq!(got, addr);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(900), "{took:?}");
        assert_eq!(tries.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_silent_address_times_out_after_every_retry() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let addr: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&tries);
        // Nothing is sent: this connect only waits, as for a black hole.
        let connect: Connect = Arc::new(move |_, timeout| {
            counted.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(timeout);
            Err(io::Error::new(io::ErrorKind::TimedOut, "lost"))
        });
        let timeout = Duration::from_secs(2);
        let started = Instant::now();
        let errs = reach(&[addr], timeout, DEFAULT_RETRY, &connect).unwrap_err();
        assert!(started.elapsed() >= timeout);
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].1.kind(), io::ErrorKind::TimedOut);
        let within = 1 + retry_after(DEFAULT_RETRY).filter(|r| *r < timeout).count();
        assert_eq!(tries.load(Ordering::SeqCst), within);
    }

    /// The first connection fails with "no route to host", as when the kernel gave up
    /// resolving the address on the link: a later one, after a fresh resolution, gets through.
    /// An address that stays unreachable is reported so.
    #[test]
    fn an_unresolved_address_is_tried_again() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = open.local_addr().unwrap();
        let tries = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&tries);
        let connect: Connect = Arc::new(move |addr, timeout| {
            if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                return Err(io::Error::from(io::ErrorKind::HostUnreachable));
            }
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        });
        let got = reach(&[addr], Duration::from_secs(3), DEFAULT_RETRY, &connect).unwrap();
        assert_eq!(got, addr);
        assert_eq!(tries.load(Ordering::SeqCst), 2);

        let never: Connect = Arc::new(|_, _| Err(io::Error::from(io::ErrorKind::HostUnreachable)));
        let errs = first_reachable_with(
            &[addr],
            Duration::from_millis(300),
            DEFAULT_RETRY,
            &never,
            &mut |_| false,
        )
        .unwrap_err();
        assert_eq!(errs[0].1.kind(), io::ErrorKind::HostUnreachable);
    }

    /// The preferred address hangs (its link-layer address is not resolved yet); the second
    /// one answers and is taken after the grace, long before the first would answer.
    #[test]
    fn a_hanging_preferred_address_does_not_hold_up_one_that_answered() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let answering = open.local_addr().unwrap();
        let hanging: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let connect: Connect = Arc::new(move |addr, timeout| {
            if addr == hanging {
                std::thread::sleep(timeout);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "lost"));
            }
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        });
        let started = Instant::now();
        let got = reach(
            &[hanging, answering],
            Duration::from_secs(3),
            DEFAULT_RETRY,
            &connect,
        )
        .unwrap();
        assert_eq!(got, answering);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert!(took >= PREFERENCE_GRACE, "{took:?}");
    }

    /// A connect that hangs on `hanging` until its timeout, and connects any other address 300
    /// ms after it is tried.
    fn slow_to_answer(hanging: SocketAddr) -> Connect {
        Arc::new(move |addr, timeout| {
            if addr == hanging {
                std::thread::sleep(timeout);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "lost"));
            }
            std::thread::sleep(Duration::from_millis(300));
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        })
    }

    /// The second address answers 300 ms after it is tried. A preferred address that is merely
    /// silent gets twice the time to that answer more (not past 4 units from the start); one
    /// that waits for the kernel to resolve it (a lost ARP request is sent again only a second
    /// later) gets the grace alone.
    #[test]
    fn a_preferred_address_waiting_for_neighbour_discovery_gets_the_grace_alone() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let answering = open.local_addr().unwrap();
        let hanging: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let connect = slow_to_answer(hanging);
        for waits in [true, false] {
            let mut asked = Vec::new();
            let started = Instant::now();
            let got = first_reachable_with(
                &[hanging, answering],
                Duration::from_secs(5),
                Duration::from_secs(1),
                &connect,
                &mut |a| {
                    asked.push(a);
                    waits
                },
            )
            .unwrap();
            let took = started.elapsed();
            assert_eq!(got, answering);
            assert!(asked.iter().all(|a| *a == hanging), "{asked:?}");
            if waits {
                // The second after the stagger (250 ms), its answer 300 ms later, the grace.
                assert!(took < Duration::from_millis(800), "{took:?}");
            } else {
                // ...then twice the 550 ms more.
                assert!(took >= Duration::from_millis(1500), "{took:?}");
            }
        }
        // With a 50 ms unit, the connected one took longer than 4 units (the stagger and 300
        // ms): the preferred one has been tried as long, and gets the grace alone.
        let started = Instant::now();
        let got = reach(
            &[hanging, answering],
            Duration::from_secs(3),
            DEFAULT_RETRY,
            &connect,
        )
        .unwrap();
        let took = started.elapsed();
        assert_eq!(got, answering);
        assert!(
            took >= Duration::from_millis(300) + PREFERENCE_GRACE,
            "{took:?}"
        );
        assert!(took < Duration::from_millis(450), "{took:?}");
    }

    /// The deadline falls within a preferred address's grace: the one that connected is taken.
    #[test]
    fn an_address_that_connected_is_taken_at_the_deadline() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let answering = open.local_addr().unwrap();
        let hanging: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let connect = slow_to_answer(hanging);
        // With a 1 s unit the second starts after the stagger (250 ms) and connects 300 ms
        // later; the grace would end past 1.6 s, and the check ends at 1 s.
        let started = Instant::now();
        let got = reach(
            &[hanging, answering],
            Duration::from_secs(1),
            Duration::from_secs(1),
            &connect,
        );
        assert_eq!(got.unwrap(), answering);
        let took = started.elapsed();
        assert!(took >= Duration::from_secs(1), "{took:?}");
        assert!(took < Duration::from_millis(1300), "{took:?}");
    }

    /// Both answer at once: the preferred one is taken.
    #[test]
    fn the_preferred_address_wins_when_both_answer() {
        let a = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = TcpListener::bind("127.0.0.1:0").unwrap();
        let (a, b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        let connect: Connect = Arc::new(move |addr, timeout| {
            // The preferred one answers a little later, well within the grace.
            if addr == a {
                std::thread::sleep(Duration::from_millis(5));
            }
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        });
        let got = reach(&[a, b], Duration::from_secs(3), DEFAULT_RETRY, &connect).unwrap();
        assert_eq!(got, a);
    }

    /// Every connection tried, with when (from `started`); `hanging`, and any address off
    /// loopback (a test never sends a packet out of a real interface), only waits for its
    /// timeout, as a black hole would; the others connect for real.
    type Tried = Arc<Mutex<Vec<(SocketAddr, Duration)>>>;

    fn recording(started: Instant, hanging: Option<SocketAddr>) -> (Connect, Tried) {
        let tried: Tried = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&tried);
        let connect: Connect = Arc::new(move |addr, timeout| {
            seen.lock().unwrap().push((addr, started.elapsed()));
            if Some(addr) == hanging || !addr.ip().is_loopback() {
                std::thread::sleep(timeout);
                return Err(io::Error::new(io::ErrorKind::TimedOut, "lost"));
            }
            TcpStream::connect_timeout(&addr, timeout).map(drop)
        });
        (connect, tried)
    }

    /// The most preferred address answers at once: the others get no connection at all (a
    /// thread, a SYN and perhaps a neighbour resolution each, for nothing).
    #[test]
    fn the_others_are_not_tried_when_the_first_answers_within_the_stagger() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let first = open.local_addr().unwrap();
        let other: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let (connect, tried) = recording(Instant::now(), None);
        let candidates = [first, other];
        let got = reach(&candidates, Duration::from_secs(3), DEFAULT_RETRY, &connect);
        assert_eq!(got.unwrap(), first);
        // Past the stagger: nothing was started after the answer either.
        std::thread::sleep(stagger(DEFAULT_RETRY) * 2);
        let tried: Vec<SocketAddr> = tried.lock().unwrap().iter().map(|t| t.0).collect();
        assert_eq!(tried, vec![first]);
    }

    /// The most preferred address is refused: the next one is tried at once, not after the
    /// stagger.
    #[test]
    fn a_refused_first_address_starts_the_others_at_once() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let answering = open.local_addr().unwrap();
        let (connect, tried) = recording(Instant::now(), None);
        // A long unit, so that the stagger (a quarter of it) is far from what is measured.
        let unit = Duration::from_secs(2);
        let candidates = [closed, answering];
        let got = reach(&candidates, Duration::from_secs(3), unit, &connect);
        assert_eq!(got.unwrap(), answering);
        let tried = tried.lock().unwrap();
        assert_eq!(tried.len(), 2, "{tried:?}");
        assert!(tried[1].1 < stagger(unit) / 2, "{tried:?}");
    }

    /// The most preferred address hangs: the others start once the stagger has passed.
    #[test]
    fn the_others_start_after_the_stagger_while_the_first_hangs() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let answering = open.local_addr().unwrap();
        let hanging: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let (connect, tried) = recording(Instant::now(), Some(hanging));
        let candidates = [hanging, answering];
        let got = reach(&candidates, Duration::from_secs(3), DEFAULT_RETRY, &connect);
        assert_eq!(got.unwrap(), answering);
        let tried = tried.lock().unwrap();
        let other = tried.iter().find(|(a, _)| *a == answering).expect("tried");
        assert!(other.1 >= stagger(DEFAULT_RETRY), "{tried:?}");
    }

    #[test]
    fn reports_every_failure() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let errs = first_reachable(&[closed], Duration::from_secs(2)).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].1.kind(), io::ErrorKind::ConnectionRefused);
    }
}
