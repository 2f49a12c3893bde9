//! The pairing state machine, sans I/O.
//!
//! [`Machine`] owns the protocol and nothing else: datagrams, the current time
//! and randomness go in; datagrams to send, events and the next deadline come
//! out. It never touches a socket, a clock or a file, so the whole protocol
//! runs in tests over a simulated network in virtual time.
//!
//! # The exchange
//! The protocol is symmetric: both sides run the same machine and neither is
//! the initiator. Each side announces a random session id on its channel with
//! `hello`. On hearing a new peer on the same channel, a side starts a fresh
//! SPAKE2 run for that peer alone and sends its `pake` message; as soon as it
//! has both PAKE messages it derives the session keys and sends its payload,
//! encrypted, in `data` pieces. When the peer's payload decrypts, the driver
//! checks it (is the peer's sshd reachable?) and [`Machine::accept`]s it;
//! only then does this side send its `confirm` MAC over the whole transcript.
//! A side is verified once it has accepted the peer's payload and checked the
//! peer's MAC; it finishes once the peer has acknowledged checking ours.
//!
//! # Guessing
//! Every session in which this side sent something derived from the PAKE key
//! gives whoever is at the other end exactly one guess at the code. Such a
//! session either verifies or counts as a failure. At most
//! [`MAX_FAILURES`] sessions may be failed or in flight, so an attacker gets
//! at most that many guesses per run, and the run stops after that many
//! failures.
//!
//! # Delivery
//! Every directed message carries an [`Ack`] of what the sender has received,
//! so each side retransmits only what is missing, with exponential backoff
//! from [`RTO_INITIAL`]. Duplicates are answered at once (rate-limited) since
//! they mean the peer lacks something. The side that finishes first lingers,
//! answering retransmissions, until the peer confirms it has finished too or
//! goes quiet.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};
use spake2::{Ed25519Group, Identity, Password, Spake2};
use zeroize::Zeroizing;

use super::code::Code;
use super::codec::{self, AbortReason, Ack, Bytes, Message, SessionId, MAX_PIECES, PIECE_LEN};
use super::payload::MAX_PAYLOAD;
use super::schedule::{self, PairSecret, PakeKey, SessionKeys, ShortAuthString, Transcript};

/// The first retransmission timeout; doubled on each retransmission.
pub const RTO_INITIAL: Duration = Duration::from_millis(100);
/// The retransmission timeout never grows past this.
pub const RTO_MAX: Duration = Duration::from_millis(1000);
/// The first interval between announcements; doubled up to [`RTO_MAX`].
pub const HELLO_INITIAL: Duration = Duration::from_millis(100);
/// With no peer heard for this long, probe the scan targets by unicast.
pub const SCAN_AFTER: Duration = Duration::from_secs(3);
/// Gap between two probes of a scan.
pub const SCAN_PACE: Duration = Duration::from_millis(5);
/// Gap between two scans.
pub const SCAN_REPEAT: Duration = Duration::from_secs(10);
/// A session that hears nothing from its peer for this long is dropped.
pub const SESSION_IDLE: Duration = Duration::from_secs(10);
/// A session that got key material from us must verify within this long,
/// or it counts as a failed guess. Liveness is not enough: an attacker who
/// keeps announcing itself must not hold a guess open for ever.
pub const VERIFY_WITHIN: Duration = Duration::from_secs(10);
/// A verified side waiting for the peer to finish stops after the peer has
/// been quiet for this long (longer than two of its retransmissions).
pub const LINGER_QUIET: Duration = Duration::from_millis(2500);
/// ...and in any case after this long.
pub const LINGER_MAX: Duration = Duration::from_secs(10);
/// Sessions tracked at once; more peers are ignored until one goes.
pub const MAX_SESSIONS: usize = 16;
/// Guesses an attacker gets per run; the run stops after this many failures.
pub const MAX_FAILURES: u32 = 3;
/// Copies of the last acknowledgement, sent when finishing, since nobody will
/// be left to answer a retransmission.
pub const FINAL_ACK_COPIES: usize = 3;
/// Answers to duplicates are sent at most this often per session.
const FAST_RETRANSMIT_GAP: Duration = Duration::from_millis(50);
const MAX_SOURCES: usize = 8;
const MAX_FAILED_REMEMBERED: usize = 256;

/// A peer, named by its session id.
pub type PeerId = SessionId;

/// Where a datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The multicast group on every interface in use.
    Multicast,
    /// One address.
    Unicast(SocketAddr),
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub destination: Destination,
    pub datagram: Vec<u8>,
}

/// What the driver must know or act on.
#[derive(Debug)]
pub enum Event {
    /// A peer on this channel announced itself or answered; not yet verified.
    PeerSeen { peer: PeerId, from: SocketAddr },
    /// The peer's payload decrypted, so the peer holds the code. Check it and
    /// call [`Machine::accept`] or [`Machine::reject`].
    PeerPayload {
        peer: PeerId,
        payload: Zeroizing<Vec<u8>>,
        sources: Vec<SocketAddr>,
    },
    /// A session failed verification: wrong code, or someone guessing.
    VerifyFailed {
        peer: PeerId,
        from: SocketAddr,
        failures: u32,
    },
    /// The peer ended the session after verifying us (it could not use what
    /// we sent, e.g. it cannot reach our sshd).
    PeerRejected {
        peer: PeerId,
        detail: Option<String>,
    },
    /// Both sides are verified. Set up now; then keep driving the machine
    /// until [`Event::Finished`] so that the peer finishes too.
    Verified(Box<Verified>),
    /// Nothing is left to do; the driver may stop.
    Finished,
    /// Too many failed verifications: stop, write nothing.
    TooManyFailures { failures: u32 },
}

/// The outcome of a verified session.
#[derive(Debug)]
pub struct Verified {
    pub peer: PeerId,
    pub payload: Zeroizing<Vec<u8>>,
    pub sas: ShortAuthString,
    pub pair_secret: PairSecret,
    pub sources: Vec<SocketAddr>,
}

/// Why a machine could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    #[error("this side's payload is {0} bytes, more than the {MAX_PAYLOAD} the protocol carries: fewer or smaller host keys (--host-key), or a smaller --key")]
    PayloadTooLarge(usize),
}

/// What the machine is given at the start.
#[derive(Debug)]
pub struct Config {
    pub code: Code,
    /// This side's payload, serialized.
    pub payload: Vec<u8>,
    /// Hosts to greet by unicast from the start (`--peer`).
    pub peers: Vec<SocketAddr>,
    /// Addresses to probe when no peer has been heard for [`SCAN_AFTER`].
    pub scan: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Searching,
    Verified { peer: PeerId, since: Instant },
    Finished,
    Failed,
}

/// Why a session ended without verifying.
enum Ending {
    /// Its payload, MAC or PAKE message did not verify, or it took too long.
    Failed,
    /// The peer said our code did not verify.
    Aborted,
    /// The peer verified us but cannot use our payload.
    Rejected(Option<String>),
    /// The peer paired with someone else.
    Busy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pending,
    Accepted,
}

#[derive(Debug, Default)]
struct Reassembly {
    n: u8,
    pieces: Vec<Option<Vec<u8>>>,
    have: u64,
}

impl Reassembly {
    /// Stores a piece; returns whether it was new. A piece that disagrees
    /// with the count seen first is ignored.
    fn insert(&mut self, i: u8, n: u8, d: Vec<u8>) -> bool {
        if self.n == 0 {
            self.n = n;
            self.pieces = vec![None; usize::from(n)];
        }
        if n != self.n || i >= n {
            return false;
        }
        let slot = &mut self.pieces[usize::from(i)];
        if slot.is_some() {
            return false;
        }
        *slot = Some(d);
        self.have |= 1 << i;
        true
    }

    fn complete(&self) -> bool {
        self.n > 0 && self.pieces.iter().all(Option::is_some)
    }

    fn assemble(&self) -> Vec<u8> {
        self.pieces.iter().flatten().flatten().copied().collect()
    }
}

struct Session {
    addr: SocketAddr,
    sources: Vec<SocketAddr>,
    last_heard: Instant,
    spake: Option<Spake2<Ed25519Group>>,
    own_pake: Vec<u8>,
    peer_pake: Option<Vec<u8>>,
    keys: Option<SessionKeys>,
    /// Encrypted payload pieces, present once key material was sent.
    own_pieces: Vec<Vec<u8>>,
    key_sent_at: Option<Instant>,
    rx: Reassembly,
    peer_payload: Option<Zeroizing<Vec<u8>>>,
    peer_mac: Option<Vec<u8>>,
    peer_verified: bool,
    decision: Decision,
    confirm: Option<[u8; 32]>,
    /// What the peer has of ours.
    peer_ack: Ack,
    rto: Duration,
    retransmit_at: Option<Instant>,
    last_fast: Option<Instant>,
}

impl Session {
    fn key_material_sent(&self) -> bool {
        self.key_sent_at.is_some()
    }

    /// When this session is given up: idle, or a guess held open too long.
    fn expires(&self) -> Instant {
        match self.key_sent_at {
            Some(at) if !self.peer_verified => {
                (at + VERIFY_WITHIN).min(self.last_heard + SESSION_IDLE)
            }
            _ => self.last_heard + SESSION_IDLE,
        }
    }

    /// What we have of the peer's.
    fn own_ack(&self) -> Ack {
        Ack {
            k: self.peer_pake.is_some(),
            p: self.rx.have,
            c: self.peer_verified,
        }
    }

    /// Whether the retransmission timer must run: something of ours is
    /// unacknowledged, or we confirmed and still lack the peer's MAC. In
    /// the latter case nothing of ours may be missing, but a peer that has
    /// verified us would hear nothing more from us, go quiet and stop
    /// lingering while its MAC is still being lost: we would never verify.
    /// So we keep telling it what we lack, and it keeps lingering.
    fn outstanding(&self) -> bool {
        let pieces_missing = (0..self.own_pieces.len()).any(|i| self.peer_ack.p & (1 << i) == 0);
        let awaiting_peer_mac = self.confirm.is_some() && !self.peer_verified;
        !self.peer_ack.k
            || pieces_missing
            || (self.confirm.is_some() && !self.peer_ack.c)
            || awaiting_peer_mac
    }

    fn note_source(&mut self, from: SocketAddr) {
        self.addr = from;
        if !self.sources.contains(&from) && self.sources.len() < MAX_SOURCES {
            self.sources.push(from);
        }
    }
}

/// The pairing state machine. See the module documentation.
pub struct Machine<R> {
    rng: R,
    sid: SessionId,
    channel: String,
    code: Code,
    payload: Vec<u8>,
    peers: Vec<SocketAddr>,
    scan: Vec<SocketAddr>,
    phase: Phase,
    sessions: HashMap<PeerId, Session>,
    failed: VecDeque<PeerId>,
    failures: u32,
    next_hello: Instant,
    hello_interval: Duration,
    started: Instant,
    last_peer_heard: Option<Instant>,
    scan_at: Option<Instant>,
    scan_index: usize,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// The first sender of a payload in more pieces than the protocol carries (confine, issue
    /// 8: reported by the driver when the run ends unverified, rather than "no peer").
    oversized: Option<(SocketAddr, u8)>,
}

impl<R: RngCore + CryptoRng> Machine<R> {
    /// A machine that starts announcing itself at `now`.
    pub fn new(config: Config, now: Instant, mut rng: R) -> Result<Self, MachineError> {
        // The AEAD tag adds 16 bytes to the payload.
        let sealed = config.payload.len() + 16;
        if config.payload.len() > MAX_PAYLOAD || sealed.div_ceil(PIECE_LEN) > MAX_PIECES {
            return Err(MachineError::PayloadTooLarge(config.payload.len()));
        }
        let mut sid = [0u8; 16];
        rng.fill_bytes(&mut sid);
        Ok(Machine {
            rng,
            sid: SessionId(sid),
            channel: config.code.channel().to_string(),
            code: config.code,
            payload: config.payload,
            peers: config.peers,
            scan: config.scan,
            phase: Phase::Searching,
            sessions: HashMap::new(),
            failed: VecDeque::new(),
            failures: 0,
            oversized: None,
            next_hello: now,
            hello_interval: HELLO_INITIAL,
            started: now,
            last_peer_heard: None,
            scan_at: None,
            scan_index: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// This run's session id.
    pub fn session_id(&self) -> SessionId {
        self.sid
    }

    /// Failed verifications so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Who sent a payload in more pieces than the protocol carries, and how many: such a
    /// peer can never be verified, and a run that ends unverified should say why.
    pub fn oversized_payload(&self) -> Option<(SocketAddr, u8)> {
        self.oversized
    }

    /// Whether the machine has nothing more to do.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Finished | Phase::Failed)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Machine::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Finished | Phase::Failed => return None,
            Phase::Verified { peer, since } => {
                let linger = since + LINGER_MAX;
                let quiet = self
                    .sessions
                    .get(&peer)
                    .map(|s| s.last_heard.max(since) + LINGER_QUIET)
                    .unwrap_or(since);
                let retransmit = self.sessions.get(&peer).and_then(|s| s.retransmit_at);
                return [Some(linger.min(quiet)), retransmit]
                    .into_iter()
                    .flatten()
                    .min();
            }
            Phase::Searching => {}
        }
        let sessions = self
            .sessions
            .values()
            .flat_map(|s| [s.retransmit_at, Some(s.expires())]);
        [Some(self.next_hello), self.scan_deadline()]
            .into_iter()
            .chain(sessions)
            .flatten()
            .min()
    }

    /// Handles the passage of time: announcements, scans, retransmissions,
    /// idle sessions and lingering.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Finished | Phase::Failed => return,
            Phase::Verified { peer, since } => {
                self.retransmit_due(peer, now);
                let quiet_since = self
                    .sessions
                    .get(&peer)
                    .map(|s| s.last_heard.max(since))
                    .unwrap_or(since);
                if now >= since + LINGER_MAX || now >= quiet_since + LINGER_QUIET {
                    self.finish();
                }
                return;
            }
            Phase::Searching => {}
        }
        if now >= self.next_hello {
            self.announce();
            self.next_hello = now + self.hello_interval;
            self.hello_interval = (self.hello_interval * 2).min(RTO_MAX);
        }
        self.scan_due(now);
        let peers: Vec<PeerId> = self.sessions.keys().copied().collect();
        for peer in peers {
            let Some(s) = self.sessions.get(&peer) else {
                continue;
            };
            if now >= s.expires() {
                let from = s.addr;
                if s.key_material_sent() {
                    self.fail(peer, from);
                } else {
                    self.sessions.remove(&peer);
                }
                continue;
            }
            self.retransmit_due(peer, now);
        }
    }

    /// Handles one received datagram. Garbage, our own echoes, other
    /// channels and stale sessions are ignored.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let msg = match codec::decode(datagram) {
            Ok(msg) => msg,
            // Remembered only to explain a run that ends unverified (see `oversized_payload`);
            // unauthenticated, so it changes nothing else.
            Err(codec::DecodeError::TooManyPieces(n)) => {
                self.oversized.get_or_insert((from, n));
                return;
            }
            Err(_) => return,
        };
        if *msg.sender() == self.sid || self.failed.contains(msg.sender()) {
            return;
        }
        match msg {
            Message::Hello { sid, ch } => self.on_hello(now, from, sid, ch),
            msg if msg.addressee() == Some(&self.sid) => self.on_directed(now, from, msg),
            _ => {}
        }
    }

    /// The driver checked the peer's payload and will use it: send our
    /// confirmation.
    pub fn accept(&mut self, now: Instant, peer: PeerId) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            if s.peer_payload.is_some() {
                s.decision = Decision::Accepted;
                self.advance(peer, now);
                if !self.finish_if_done(peer) {
                    self.arm(peer, now);
                }
            }
        }
    }

    /// The driver cannot use the peer's payload: end the session and tell the
    /// peer why, so that it stops too.
    pub fn reject(&mut self, peer: PeerId, detail: &str) {
        if let Some(s) = self.sessions.remove(&peer) {
            let detail: String = detail.chars().take(codec::MAX_DETAIL_LEN / 4).collect();
            self.send_to(
                s.addr,
                &Message::Abort {
                    sid: self.sid,
                    to: peer,
                    reason: AbortReason::Rejected,
                    detail: Some(detail),
                },
            );
            self.remember_failed(peer);
        }
    }

    fn on_hello(&mut self, now: Instant, from: SocketAddr, peer: PeerId, ch: String) {
        if ch != self.channel || self.phase != Phase::Searching {
            return;
        }
        self.last_peer_heard = Some(now);
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.note_source(from);
            s.last_heard = now;
            // It is still announcing, so it may lack our PAKE message.
            if !s.peer_ack.k {
                self.fast_retransmit(peer, now);
            }
            return;
        }
        self.open_session(now, from, peer);
    }

    fn open_session(&mut self, now: Instant, from: SocketAddr, peer: PeerId) -> bool {
        if self.sessions.len() >= MAX_SESSIONS && !self.evict_idle_session() {
            return false;
        }
        let identity = format!("{} channel={}", schedule::PROTOCOL, self.channel);
        let (spake, own_pake) = Spake2::<Ed25519Group>::start_symmetric_with_rng(
            &Password::new(self.code.password()),
            &Identity::new(identity.as_bytes()),
            &mut self.rng,
        );
        self.sessions.insert(
            peer,
            Session {
                addr: from,
                sources: vec![from],
                last_heard: now,
                spake: Some(spake),
                own_pake,
                peer_pake: None,
                keys: None,
                own_pieces: Vec::new(),
                key_sent_at: None,
                rx: Reassembly::default(),
                peer_payload: None,
                peer_mac: None,
                peer_verified: false,
                decision: Decision::Pending,
                confirm: None,
                peer_ack: Ack::default(),
                rto: RTO_INITIAL,
                retransmit_at: None,
                last_fast: None,
            },
        );
        self.events.push_back(Event::PeerSeen { peer, from });
        self.send_pake(peer);
        self.arm(peer, now);
        true
    }

    /// Makes room by dropping the stalest session that holds no key
    /// material, which costs nobody a guess.
    fn evict_idle_session(&mut self) -> bool {
        let victim = self
            .sessions
            .iter()
            .filter(|(_, s)| !s.key_material_sent())
            .min_by_key(|(_, s)| s.last_heard)
            .map(|(p, _)| *p);
        match victim {
            Some(p) => {
                self.sessions.remove(&p);
                true
            }
            None => false,
        }
    }

    fn on_directed(&mut self, now: Instant, from: SocketAddr, msg: Message) {
        let peer = *msg.sender();
        if let Message::Pake { m, .. } = &msg {
            // One of our own SPAKE2 messages sent back under another session
            // id: a reflection. It could never verify; drop it before it
            // takes a session or a guess slot.
            if self.sessions.values().any(|s| s.own_pake == m.0) {
                return;
            }
        }
        if !self.sessions.contains_key(&peer) {
            // Only a PAKE message may open a session: it answers our hello.
            let opens = matches!(msg, Message::Pake { .. }) && self.phase == Phase::Searching;
            if !opens || !self.open_session(now, from, peer) {
                return;
            }
        }
        self.last_peer_heard = Some(now);
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        s.note_source(from);
        s.last_heard = now;
        if let Some(ack) = msg.ack() {
            let grown = s.peer_ack.merge(ack);
            if grown != s.peer_ack {
                s.peer_ack = grown;
                s.rto = RTO_INITIAL;
            }
        }
        let (content, duplicate) = match msg {
            Message::Pake { m, .. } => match &s.peer_pake {
                Some(have) => (true, *have == m.0),
                None => {
                    let Some(spake) = s.spake.take() else {
                        return;
                    };
                    match spake.finish(&m.0) {
                        Ok(key) => {
                            s.keys = Some(schedule::derive(&PakeKey::new(key), &self.sid, &peer));
                            s.peer_pake = Some(m.0);
                            (true, false)
                        }
                        Err(_) => {
                            self.fail(peer, from);
                            return;
                        }
                    }
                }
            },
            Message::Data { i, n, d, .. } => (true, !s.rx.insert(i, n, d.0)),
            Message::Confirm { mac, .. } => {
                let dup = s.peer_verified || s.peer_mac.as_ref() == Some(&mac.0);
                if !s.peer_verified {
                    s.peer_mac = Some(mac.0);
                }
                (true, dup)
            }
            // Once we are verified, a bare acknowledgement without our MAC
            // means the peer is still waiting for it: answer at once, as
            // for a duplicate, rather than at our backed-off timer.
            Message::Ack { ack, .. } => (
                false,
                matches!(self.phase, Phase::Verified { .. }) && s.confirm.is_some() && !ack.c,
            ),
            Message::Abort { reason, detail, .. } => {
                self.on_abort(from, peer, reason, detail);
                return;
            }
            Message::Hello { .. } => return,
        };
        let sent = self.advance(peer, now);
        if self.finish_if_done(peer) {
            return;
        }
        if duplicate {
            self.fast_retransmit(peer, now);
        } else if content && sent == 0 {
            self.send_ack(peer);
        }
        self.arm(peer, now);
    }

    fn on_abort(
        &mut self,
        from: SocketAddr,
        peer: PeerId,
        reason: AbortReason,
        detail: Option<String>,
    ) {
        // Once verified, nothing unauthenticated may undo it.
        if self.phase != Phase::Searching {
            return;
        }
        let ending = match reason {
            AbortReason::Verify => Ending::Aborted,
            AbortReason::Rejected => Ending::Rejected(detail),
            AbortReason::Busy => Ending::Busy,
        };
        self.end(peer, from, ending);
    }

    /// Moves a session forward as far as it can go; returns how many
    /// datagrams that sent to the peer.
    fn advance(&mut self, peer: PeerId, now: Instant) -> usize {
        let mut sent = 0;
        let in_flight = self.guesses_in_flight();
        let Some(s) = self.sessions.get_mut(&peer) else {
            return 0;
        };
        // Key material: only while the guess budget lasts.
        let budget = self.failures + in_flight < MAX_FAILURES;
        if let (Some(keys), false, true) = (&s.keys, s.key_material_sent(), budget) {
            let sealed = schedule::seal(keys, &self.sid, &peer, &self.payload);
            s.own_pieces = sealed.chunks(PIECE_LEN).map(<[u8]>::to_vec).collect();
            s.key_sent_at = Some(now);
            sent += self.send_pieces(peer, false);
        }
        let Some(s) = self.sessions.get_mut(&peer) else {
            return sent;
        };
        // The peer's payload.
        if s.peer_payload.is_none() && s.rx.complete() {
            if let Some(keys) = &s.keys {
                match schedule::open(keys, &self.sid, &peer, &s.rx.assemble()) {
                    Some(plain) => {
                        s.peer_payload = Some(plain.clone());
                        self.events.push_back(Event::PeerPayload {
                            peer,
                            payload: plain,
                            sources: s.sources.clone(),
                        });
                    }
                    None => {
                        let from = s.addr;
                        self.fail(peer, from);
                        return sent;
                    }
                }
            }
        }
        let sid = self.sid;
        let own_payload = &self.payload;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return sent;
        };
        let (Some(keys), Some(peer_pake), Some(peer_payload)) =
            (&s.keys, &s.peer_pake, &s.peer_payload)
        else {
            return sent;
        };
        // The peer's confirmation.
        if !s.peer_verified {
            if let Some(mac) = s.peer_mac.take() {
                let t = Transcript {
                    sender: &peer,
                    receiver: &sid,
                    sender_pake: peer_pake,
                    receiver_pake: &s.own_pake,
                    sender_payload: peer_payload,
                    receiver_payload: own_payload,
                };
                if schedule::verify_confirmation(keys, &t, &mac) {
                    s.peer_verified = true;
                } else {
                    let from = s.addr;
                    self.fail(peer, from);
                    return sent;
                }
            }
        }
        // Our confirmation, once the driver accepted the peer.
        if s.decision == Decision::Accepted && s.confirm.is_none() && s.key_material_sent() {
            let t = Transcript {
                sender: &sid,
                receiver: &peer,
                sender_pake: &s.own_pake,
                receiver_pake: peer_pake,
                sender_payload: own_payload,
                receiver_payload: peer_payload,
            };
            s.confirm = Some(schedule::confirmation(keys, &t));
            sent += self.send_confirm(peer);
        }
        let Some(s) = self.sessions.get(&peer) else {
            return sent;
        };
        if self.phase == Phase::Searching && s.decision == Decision::Accepted && s.peer_verified {
            self.verified(peer, now);
        }
        sent
    }

    fn verified(&mut self, peer: PeerId, now: Instant) {
        let Some(s) = self.sessions.get(&peer) else {
            return;
        };
        let (Some(keys), Some(payload)) = (&s.keys, &s.peer_payload) else {
            return;
        };
        self.events.push_back(Event::Verified(Box::new(Verified {
            peer,
            payload: payload.clone(),
            sas: keys.sas.clone(),
            pair_secret: keys.pair_secret.clone(),
            sources: s.sources.clone(),
        })));
        self.phase = Phase::Verified { peer, since: now };
        // Other sessions can no longer lead anywhere.
        self.sessions.retain(|p, _| *p == peer);
    }

    /// Finishes once verified and the peer has checked our confirmation.
    /// The peer may still be waiting for our acknowledgement of its own, and
    /// nobody will be left to answer its retransmissions: send it a few times.
    fn finish_if_done(&mut self, peer: PeerId) -> bool {
        let done = matches!(self.phase, Phase::Verified { peer: p, .. } if p == peer)
            && self.sessions.get(&peer).is_some_and(|s| s.peer_ack.c);
        if done {
            for _ in 0..FINAL_ACK_COPIES {
                self.send_ack(peer);
            }
            self.finish();
        }
        done
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        self.sessions.clear();
        self.events.push_back(Event::Finished);
    }

    fn guesses_in_flight(&self) -> u32 {
        self.sessions
            .values()
            .filter(|s| s.key_material_sent() && !s.peer_verified)
            .count() as u32
    }

    /// A session failed verification (or took too long to verify): tell the
    /// peer, and count the guess it got.
    fn fail(&mut self, peer: PeerId, from: SocketAddr) {
        self.end(peer, from, Ending::Failed);
    }

    /// Ends a session that did not verify. Whatever the reason, a session
    /// that got key material from us spent one guess: aborts are
    /// unauthenticated, so an attacker's "abort" must never refund one.
    fn end(&mut self, peer: PeerId, from: SocketAddr, ending: Ending) {
        let Some(s) = self.sessions.remove(&peer) else {
            return;
        };
        self.remember_failed(peer);
        if let Ending::Failed = ending {
            self.send_to(
                s.addr,
                &Message::Abort {
                    sid: self.sid,
                    to: peer,
                    reason: AbortReason::Verify,
                    detail: None,
                },
            );
        }
        let spent = s.key_material_sent() && !s.peer_verified;
        if spent {
            self.failures += 1;
        }
        match ending {
            Ending::Rejected(detail) => self.events.push_back(Event::PeerRejected { peer, detail }),
            Ending::Busy if !spent => {}
            Ending::Failed | Ending::Aborted | Ending::Busy => {
                self.events.push_back(Event::VerifyFailed {
                    peer,
                    from,
                    failures: self.failures,
                })
            }
        }
        if self.failures >= MAX_FAILURES && self.phase == Phase::Searching {
            self.phase = Phase::Failed;
            self.sessions.clear();
            self.events.push_back(Event::TooManyFailures {
                failures: self.failures,
            });
        }
    }

    fn remember_failed(&mut self, peer: PeerId) {
        if self.failed.len() >= MAX_FAILED_REMEMBERED {
            self.failed.pop_front();
        }
        self.failed.push_back(peer);
    }

    fn announce(&mut self) {
        let hello = Message::Hello {
            sid: self.sid,
            ch: self.channel.clone(),
        };
        if let Ok(datagram) = codec::encode(&hello) {
            self.transmits.push_back(Transmit {
                destination: Destination::Multicast,
                datagram: datagram.clone(),
            });
            for addr in &self.peers {
                self.transmits.push_back(Transmit {
                    destination: Destination::Unicast(*addr),
                    datagram: datagram.clone(),
                });
            }
        }
    }

    fn scan_deadline(&self) -> Option<Instant> {
        if self.scan.is_empty() || self.phase != Phase::Searching {
            return None;
        }
        let quiet_since = self.last_peer_heard.unwrap_or(self.started);
        Some(match self.scan_at {
            Some(at) => at.max(quiet_since + SCAN_AFTER),
            None => quiet_since + SCAN_AFTER,
        })
    }

    /// Probes the scan targets by unicast, paced, while no peer is heard.
    fn scan_due(&mut self, now: Instant) {
        let Some(due) = self.scan_deadline() else {
            return;
        };
        if now < due {
            return;
        }
        let Ok(datagram) = codec::encode(&Message::Hello {
            sid: self.sid,
            ch: self.channel.clone(),
        }) else {
            return;
        };
        // Catch up a little if the driver was late, but never burst.
        let mut next = due;
        for _ in 0..4 {
            if self.scan_index >= self.scan.len() {
                self.scan_index = 0;
                next = now + SCAN_REPEAT;
                break;
            }
            let addr = self.scan[self.scan_index];
            self.scan_index += 1;
            self.transmits.push_back(Transmit {
                destination: Destination::Unicast(addr),
                datagram: datagram.clone(),
            });
            next += SCAN_PACE;
            if next > now {
                break;
            }
        }
        self.scan_at = Some(next.max(now));
    }

    fn retransmit_due(&mut self, peer: PeerId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        match s.retransmit_at {
            Some(at) if now >= at => {
                s.rto = (s.rto * 2).min(RTO_MAX);
                s.retransmit_at = None;
                // Nothing of ours missing: we are waiting for the peer's MAC.
                if self.send_missing(peer) == 0 {
                    self.send_ack(peer);
                }
                self.arm(peer, now);
            }
            _ => {}
        }
    }

    /// Answers a duplicate at once, but at most every
    /// `FAST_RETRANSMIT_GAP`, so that a flood of duplicates is not amplified.
    fn fast_retransmit(&mut self, peer: PeerId, now: Instant) {
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        if s.last_fast.is_some_and(|t| now < t + FAST_RETRANSMIT_GAP) {
            return;
        }
        s.last_fast = Some(now);
        if self.send_missing(peer) == 0 {
            self.send_ack(peer);
        }
    }

    /// (Re)arms the retransmission timer while anything is unacknowledged.
    fn arm(&mut self, peer: PeerId, now: Instant) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            if !s.outstanding() {
                s.retransmit_at = None;
            } else if s.retransmit_at.is_none() {
                s.retransmit_at = Some(now + s.rto);
            }
        }
    }

    fn send_missing(&mut self, peer: PeerId) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let (need_pake, need_confirm) = (!s.peer_ack.k, s.confirm.is_some() && !s.peer_ack.c);
        let mut sent = 0;
        if need_pake {
            sent += self.send_pake(peer);
        }
        sent += self.send_pieces(peer, true);
        if need_confirm {
            sent += self.send_confirm(peer);
        }
        sent
    }

    fn send_pake(&mut self, peer: PeerId) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let msg = Message::Pake {
            sid: self.sid,
            to: peer,
            m: Bytes(s.own_pake.clone()),
            ack: s.own_ack(),
        };
        self.send_to(s.addr, &msg)
    }

    fn send_pieces(&mut self, peer: PeerId, only_missing: bool) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let n = s.own_pieces.len() as u8;
        let msgs: Vec<Message> = s
            .own_pieces
            .iter()
            .enumerate()
            .filter(|(i, _)| !only_missing || s.peer_ack.p & (1 << i) == 0)
            .map(|(i, piece)| Message::Data {
                sid: self.sid,
                to: peer,
                i: i as u8,
                n,
                d: Bytes(piece.clone()),
                ack: s.own_ack(),
            })
            .collect();
        let addr = s.addr;
        msgs.iter().map(|m| self.send_to(addr, m)).sum()
    }

    fn send_confirm(&mut self, peer: PeerId) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let Some(mac) = s.confirm else {
            return 0;
        };
        let msg = Message::Confirm {
            sid: self.sid,
            to: peer,
            mac: Bytes(mac.to_vec()),
            ack: s.own_ack(),
        };
        self.send_to(s.addr, &msg)
    }

    fn send_ack(&mut self, peer: PeerId) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let msg = Message::Ack {
            sid: self.sid,
            to: peer,
            ack: s.own_ack(),
        };
        self.send_to(s.addr, &msg)
    }

    fn send_to(&mut self, addr: SocketAddr, msg: &Message) -> usize {
        match codec::encode(msg) {
            Ok(datagram) => {
                self.transmits.push_back(Transmit {
                    destination: Destination::Unicast(addr),
                    datagram,
                });
                1
            }
            Err(_) => {
                debug_assert!(false, "every message the machine builds fits a datagram");
                0
            }
        }
    }
}

#[cfg(test)]
mod tests;
