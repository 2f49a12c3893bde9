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
//! has both PAKE messages it derives the session keys and, once the peer's
//! address has shown that it receives (see *Amplification*), sends its
//! payload in `data` pieces, each sealed on its own. When the peer's payload
//! has opened, the driver checks it (is the peer's sshd reachable?) and
//! [`Machine::accept`]s it, or [`Machine::refuse`]s it; only an accepted
//! peer gets this side's `confirm` MAC over the whole transcript. A side is
//! verified once it has accepted the peer's payload and checked the peer's
//! MAC.
//!
//! # The end
//! A verified side sets up, then tells the peer how that went with
//! [`Machine::conclude`]: an [`End`] sealed under the session's end keys, so
//! that only the holder of the code can say it. Each side learns the peer's
//! [`End`] ([`Event::PeerEnded`]) and keeps its setup only if the peer is set
//! up too; if the peer goes quiet without saying, [`Event::PeerSilent`]
//! tells the driver that the outcome is unknown. A refusal before
//! verification ([`Machine::refuse`]) is an [`End`] too. Nothing that is not
//! sealed under the session keys ends a session or is shown as the peer's
//! words: there is no unauthenticated abort.
//!
//! # Forgeries
//! The peer's session id is public, so an outsider can send datagrams under
//! it. Every piece of the peer's payload, its MAC and its end message are
//! checked on their own as they arrive; one that does not open is dropped and
//! costs nothing. Since a peer with another code sends nothing that opens
//! either, a session that has had only such datagrams from its peer for
//! [`VERIFY_GRACE`] (time enough for the real peer's to arrive) has failed:
//! the codes differ. When every peer on the channel has failed and no new one
//! appears for [`CODES_DIFFER_AFTER`], the run stops ([`Event::CodesDiffer`]).
//!
//! # Guessing
//! Every session in which this side sent something derived from the PAKE key
//! gives whoever is at the other end exactly one guess at the code. Such a
//! session either verifies, proves that the peer holds the code (something it
//! sent opened), or counts as a failure. At most [`MAX_FAILURES`] sessions may
//! be failed or in flight, so an attacker gets at most that many guesses per
//! run, and the run stops after that many failures.
//!
//! # Amplification
//! A `hello` can come with anyone's source address. Until an address has
//! shown that it receives what is sent to it, it gets at most
//! [`AMPLIFICATION`] times the bytes received from it, as in QUIC. An address
//! shows it by echoing this side's PAKE message (sent there alone, by
//! unicast) in [`Ack::k`], or by sending something sealed under the session
//! keys. Payload pieces go only to such an address, and a session's replies
//! move to a new source address only once that address has shown it.
//!
//! # Crowds
//! A generated code's channel number is one of 999, so in a crowd of
//! pairings some share a channel, and every session with another pairing's
//! side costs a guess ([`MAX_FAILURES`]). A hello says whether its side
//! generated the code in this run ([`Config::generated`]). Two sides that
//! generated their codes hold two independent random codes: a side that
//! generated its code ignores the hellos of others that did. Two sides that
//! were given their codes may hold the same phrase, but in a crowd they are
//! usually two joiners of different pairings: such a peer is remembered and
//! greeted only [`TYPED_PEERS_AFTER`] after this side started, and its PAKE
//! message is left unanswered until then, by when a joiner has usually paired
//! with the side that generated its code. A hello without the field (an older
//! peer) is answered as before. None of this gives anyone another guess: it
//! only leaves sessions unopened.
//!
//! # Delivery
//! Every directed message carries an [`Ack`] of what the sender has received,
//! so each side retransmits only what is missing, with exponential backoff
//! from a timeout that follows the round trip measured in the session (see
//! [`RTT_FACTOR`]: [`RTO_INITIAL`] until measured, never below [`RTO_MIN`]).
//! Before a measurement, and on a link measured to be a LAN, the first
//! [`FLAT_RETRANSMITS`] retransmissions wait the timeout itself and only the
//! later ones back off: at 30% loss each way a datagram and its
//! acknowledgement both get through only one time in two, so a few rounds in
//! a row fail often, and a LAN loses frames, it is not congested. A
//! session opened by the peer's PAKE message answers with ours, which echoes
//! the peer's. Duplicates are answered at once (rate-limited) since
//! they mean the peer lacks something; so is a hello from a peer that still
//! lacks our PAKE message or a piece of our payload (it is still searching).
//! A side that was given its code expects its peer to be waiting already, and
//! sends its first hellos [`HELLO_INITIAL`] apart ([`HELLO_STEADY`]); a side
//! that generated its code backs off at once, since a person is reading it
//! out. A verified side keeps telling the peer
//! what it lacks until the peer's end arrives, so each knows the other is
//! still there.
//!
//! An acknowledgement is believed only when its message carries the peer's
//! tag ([`schedule::ack_tag`], under the session keys): the session ids are
//! public, and anyone who could claim in the peer's name that everything
//! arrived would stop our retransmissions, end this side after a single
//! `end`, or fake fast round trips. A message without a valid tag is handled
//! as usual otherwise (its echo still shows that its address receives). What
//! the peer has only grows, so a replayed acknowledgement says nothing new,
//! and a round trip is measured only from a tagged one that newly covers what
//! is timed, timed from a copy sent on our own timer (never from one that
//! answered a duplicate, which anyone can replay).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};
use spake2::{Ed25519Group, Group, Identity, Password, Spake2};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::code::Code;
use super::codec::{self, Ack, Bytes, End, Message, SessionId, MAX_PIECES, PAKE_MESSAGE_LEN};
use super::payload::MAX_PAYLOAD;
use super::repair;
use super::schedule::{
    self, PairSecret, PakeKey, SessionKeys, ShortAuthString, Transcript, PIECE_PLAIN,
};
use rtt::Rtt;
pub use rtt::RTT_FACTOR;

/// The retransmission timeout before the session's round trip is measured,
/// and the most a measurement can make it; doubled on each retransmission
/// after the first [`FLAT_RETRANSMITS`]. Half of the 100 ms it was: a lost
/// PAKE message or its answer is retransmitted before any round trip is
/// measured, and a measurement lengthened by a lost acknowledgement is held
/// to it.
pub const RTO_INITIAL: Duration = Duration::from_millis(50);
/// The retransmission timeout never goes below this, however short the
/// measured round trip: a slow Wi-Fi link adds this much now and then.
pub const RTO_MIN: Duration = Duration::from_millis(20);
/// The backed-off retransmission timeout never grows past this.
pub const RTO_MAX: Duration = Duration::from_millis(1000);
/// Retransmissions (since the peer last acknowledged something new) that
/// wait the timeout itself before it starts doubling, when no round trip has
/// been measured yet or an unambiguous measurement showed a LAN (see
/// `rtt`): a few small datagrams, [`RTO_MIN`] or [`RTO_INITIAL`] apart.
pub const FLAT_RETRANSMITS: u32 = 3;
/// The first interval between announcements; doubled up to [`HELLO_MAX`].
pub const HELLO_INITIAL: Duration = Duration::from_millis(50);
/// Announcements are never further apart than this.
pub const HELLO_MAX: Duration = Duration::from_millis(1000);
/// A side that was given its code keeps its first this many intervals
/// between announcements at [`HELLO_INITIAL`] before doubling them (a side
/// that generated its code doubles at once): its peer is usually waiting
/// already, and until it hears us, every lost hello, and every lost answer
/// to one, costs an interval.
pub const HELLO_STEADY: u32 = 4;

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
/// After a datagram under the peer's id failed to open (a payload piece, a
/// MAC), a session that has had nothing authentic from the peer fails this
/// long after: an outsider can send such datagrams but cannot stop the real
/// peer's, which with the same code open well within this time. A peer with
/// another code never sends anything that opens.
pub const VERIFY_GRACE: Duration = Duration::from_secs(2);
/// When every peer on the channel has failed verification and no new one
/// has appeared for this long, the run stops: the codes differ.
pub const CODES_DIFFER_AFTER: Duration = Duration::from_secs(3);
/// A verified side waiting for the peer to finish stops after the peer has
/// been quiet for this long (longer than two of its retransmissions).
pub const LINGER_QUIET: Duration = Duration::from_millis(2500);
/// ...and in any case this long after it ended its own part.
pub const LINGER_MAX: Duration = Duration::from_secs(10);
/// A verified side that lacks the peer's [`End`] gives up waiting for it
/// when the peer has been quiet for this long ([`Event::PeerSilent`]); a
/// peer that is still setting up or asking its user keeps saying so.
pub const OUTCOME_QUIET: Duration = Duration::from_secs(5);
/// ...and in any case after this long, which covers a person answering
/// `--verify` on the other machine.
pub const OUTCOME_MAX: Duration = Duration::from_secs(150);
/// A side that was given its code opens sessions with peers that were given
/// theirs only this long after it started (see *Crowds* in the module
/// documentation): time enough for a peer that generated the code, already
/// waiting, to answer its first hellos.
pub const TYPED_PEERS_AFTER: Duration = Duration::from_millis(500);
/// Sessions tracked at once; more peers are ignored until one goes.
pub const MAX_SESSIONS: usize = 16;
/// Guesses an attacker gets per run; the run stops after this many failures.
pub const MAX_FAILURES: u32 = 3;
/// Copies of the last acknowledgement, sent when finishing, since nobody will
/// be left to answer a retransmission. If every copy is lost the peer lingers
/// until [`LINGER_QUIET`]: at 30% loss, 3 copies left 1 run in 37 lingering
/// 2.5 s; 6 leave 1 in 1400.
pub const FINAL_ACK_COPIES: usize = 6;
/// An address that has not shown that it receives gets at most this many
/// times the bytes received from it (QUIC's anti-amplification limit).
pub const AMPLIFICATION: usize = 3;
/// Answers to duplicates are sent at most this often per session.
const FAST_RETRANSMIT_GAP: Duration = Duration::from_millis(50);
const MAX_SOURCES: usize = 8;
const MAX_FAILED_REMEMBERED: usize = 256;
/// Addresses whose byte budget is tracked; the least recently heard goes.
const MAX_ADDRESSES: usize = 64;
/// Candidate MACs kept per session until the peer's payload is complete.
const MAX_MACS: usize = 4;

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
    /// The peer's payload opened, so the peer holds the code. Check it and
    /// call [`Machine::accept`] or [`Machine::refuse`].
    PeerPayload {
        peer: PeerId,
        payload: Zeroizing<Vec<u8>>,
        sources: Vec<SocketAddr>,
        /// The peer's proofs of the pair secrets it holds ([`repair`]), for this session.
        proofs: Vec<repair::Proof>,
    },
    /// A session failed verification: wrong code, or someone guessing.
    VerifyFailed {
        peer: PeerId,
        from: SocketAddr,
        failures: u32,
    },
    /// Both sides are verified. Set up (or ask the user first), then call
    /// [`Machine::conclude`], and keep driving the machine until
    /// [`Event::Finished`] so that the peer learns how this side ended.
    Verified(Box<Verified>),
    /// The peer told how its part ended, sealed under the session keys. With
    /// [`End::Ready`] after [`Event::Verified`], keep the pairing if this
    /// side is set up too; anything else ends the pairing on both sides.
    PeerEnded { peer: PeerId, end: End },
    /// Verified, but the peer went quiet, or took too long, without saying
    /// how its setup ended: the outcome on the other side is unknown.
    PeerSilent { peer: PeerId },
    /// Nothing is left to do; the driver may stop.
    Finished,
    /// Too many failed verifications: stop, write nothing.
    TooManyFailures { failures: u32 },
    /// Every peer on the channel failed verification and no new one
    /// appeared for [`CODES_DIFFER_AFTER`]: stop, write nothing.
    CodesDiffer { failures: u32 },
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
    /// The pair secrets of this repository's earlier pairings (at most
    /// [`repair::MAX_PROOFS`] are used): each session's payload carries a proof of each, bound
    /// to both session ids, so that a peer re-pairing with one of them can tell it is the same.
    pub proof_secrets: Vec<PairSecret>,
    /// Whether this side generated its code in this run (rather than being
    /// given it: typed, from a file or the environment). Hellos say so; see
    /// *Crowds* in the module documentation.
    pub generated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Searching,
    /// Verified with `peer` at `since`: the two ends are exchanged.
    Verified {
        peer: PeerId,
        since: Instant,
    },
    /// This side refused `peer`: its [`End`] is delivered, then the run stops.
    Closing {
        peer: PeerId,
    },
    Finished,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Pending,
    Accepted,
}

/// What became of a `data` piece.
enum Piece {
    /// It opened and is new.
    Opened,
    /// It opened, and we had it already.
    Duplicate,
    /// It did not open (forged, or another code), or contradicts the count.
    Forged,
}

/// The peer's payload, as its pieces open.
#[derive(Default)]
struct Reassembly {
    n: u8,
    pieces: Vec<Option<Zeroizing<Vec<u8>>>>,
    have: u64,
}

impl Reassembly {
    /// Opens piece `i` of `n` and keeps it if it is new. Only a piece that
    /// opens may set the count, so a forgery cannot spoil the real pieces.
    #[allow(clippy::too_many_arguments)]
    fn offer(
        &mut self,
        keys: &SessionKeys,
        own: &SessionId,
        peer: &SessionId,
        i: u8,
        n: u8,
        d: &[u8],
    ) -> Piece {
        if self.n != 0 && n != self.n {
            return Piece::Forged;
        }
        let Some(plain) = schedule::open_piece(keys, own, peer, i, n, d) else {
            return Piece::Forged;
        };
        if self.n == 0 {
            self.n = n;
            self.pieces = vec![None; usize::from(n)];
        }
        let slot = &mut self.pieces[usize::from(i)];
        if slot.is_some() {
            return Piece::Duplicate;
        }
        *slot = Some(plain);
        self.have |= 1 << i;
        Piece::Opened
    }

    fn complete(&self) -> bool {
        self.n > 0 && self.pieces.iter().all(Option::is_some)
    }

    fn assemble(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(
            self.pieces
                .iter()
                .flatten()
                .flat_map(|p| p.iter())
                .copied()
                .collect(),
        )
    }
}

/// Bytes received from and sent to one address, and whether it has shown
/// that it receives.
#[derive(Debug, Default)]
struct Budget {
    received: usize,
    sent: usize,
    validated: bool,
    last_heard: Option<Instant>,
}

/// What the peer has of ours, as its acknowledgements say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Acked {
    /// Our PAKE message (proven by its echo).
    k: bool,
    p: u64,
    c: bool,
    e: bool,
}

struct Session {
    /// Where replies go.
    addr: SocketAddr,
    /// Addresses that have shown that they are the peer's (best first).
    sources: Vec<SocketAddr>,
    last_heard: Instant,
    spake: Option<Spake2<Ed25519Group>>,
    own_pake: Vec<u8>,
    peer_pake: Option<Vec<u8>>,
    keys: Option<SessionKeys>,
    /// Payload pieces that arrived before the keys, tried once they exist.
    early: Vec<(u8, u8, Vec<u8>, SocketAddr)>,
    /// Our sealed payload pieces, present once key material was sent.
    own_pieces: Vec<Vec<u8>>,
    /// What those pieces seal: the payload and this session's proofs ([`repair::frame`]).
    own_plain: Zeroizing<Vec<u8>>,
    key_sent_at: Option<Instant>,
    rx: Reassembly,
    peer_payload: Option<Zeroizing<Vec<u8>>>,
    /// MACs under the peer's id, checked once its payload is complete.
    peer_macs: Vec<(Vec<u8>, SocketAddr)>,
    peer_verified: bool,
    /// Something under the peer's id opened: whoever sent it holds the code.
    authentic: bool,
    /// When something under the peer's id first failed to open.
    suspect_since: Option<Instant>,
    decision: Decision,
    confirm: Option<[u8; 32]>,
    /// Our sealed end message and when it was made.
    own_end: Option<(End, Vec<u8>, Instant)>,
    peer_end: Option<End>,
    /// Whether the peer's end was handed to the driver.
    peer_end_told: bool,
    /// Whether the verified phase is on (keep the peer informed).
    verified: bool,
    /// What the peer has of ours.
    peer_ack: Acked,
    /// The round trip measured in this session.
    rtt: Rtt,
    /// Retransmissions since the peer last acknowledged something new.
    backoff: u32,
    /// The one first transmission being timed, when its latest copy on our
    /// timer went, and whether no copy went on the timer since the first (an
    /// unambiguous measurement, see `rtt`).
    timing: Option<(Timed, Instant, bool)>,
    retransmit_at: Option<Instant>,
    last_fast: Option<Instant>,
}

/// What a round-trip measurement times, from its first transmission until
/// the peer acknowledges it (see [`rtt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timed {
    /// Our PAKE message, until the peer echoes it.
    Pake,
    /// Payload piece `i`, until the peer acknowledges it.
    Piece(u8),
    /// Our MAC.
    Confirm,
    /// Our end.
    End,
}

impl Session {
    /// The retransmission timeout: the measured one, doubled per
    /// retransmission after the first [`FLAT_RETRANSMITS`] before a
    /// measurement or on a LAN, after every one otherwise.
    fn rto(&self) -> Duration {
        let flat = if !self.rtt.measured() || self.rtt.lan() {
            FLAT_RETRANSMITS
        } else {
            0
        };
        self.rtt
            .rto()
            .saturating_mul(1 << self.backoff.saturating_sub(flat).min(16))
            .min(RTO_MAX)
    }

    fn key_material_sent(&self) -> bool {
        self.key_sent_at.is_some()
    }

    /// When this session is given up: idle, a guess held open too long, or
    /// only forgeries (or another code) for [`VERIFY_GRACE`].
    fn expires(&self) -> Instant {
        let idle = self.last_heard + SESSION_IDLE;
        match self.key_sent_at {
            Some(at) if !self.peer_verified && !self.authentic => {
                let grace = self.suspect_since.map(|t| t + VERIFY_GRACE);
                [Some(at + VERIFY_WITHIN), Some(idle), grace]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(idle)
            }
            Some(at) if !self.peer_verified => (at + VERIFY_WITHIN).min(idle),
            _ => idle,
        }
    }

    fn suspect(&mut self, now: Instant) {
        self.suspect_since.get_or_insert(now);
    }

    /// What we have of the peer's.
    fn own_ack(&self) -> Ack {
        Ack {
            k: self.peer_pake.as_deref().map(Ack::echo),
            p: self.rx.have,
            c: self.peer_verified,
            e: self.peer_end.is_some(),
            tag: None,
        }
    }

    /// Whether the retransmission timer must run: something of ours is
    /// unacknowledged, or we lack something the peer will only resend if it
    /// hears from us. We lack the peer's PAKE message: the peer may resend it
    /// only within the bytes it may send to an address that has not shown
    /// that it receives, so it needs to hear from us (see *Amplification*).
    /// We confirmed and lack the peer's MAC: a peer that has
    /// verified us would otherwise hear nothing more, go quiet and stop
    /// lingering while its MAC is still being lost. We are verified and the
    /// two ends are not both exchanged: each side keeps waiting for the
    /// other's end only while it hears from it.
    fn outstanding(&self) -> bool {
        let pieces_missing = (0..self.own_pieces.len()).any(|i| self.peer_ack.p & (1 << i) == 0);
        let awaiting_peer_mac = self.confirm.is_some() && !self.peer_verified;
        let awaiting_end = self.verified && (self.peer_end.is_none() || self.own_end.is_none());
        let awaiting_peer_pake = self.peer_pake.is_none();
        !self.peer_ack.k
            || awaiting_peer_pake
            || pieces_missing
            || (self.confirm.is_some() && !self.peer_ack.c)
            || (self.own_end.is_some() && !self.peer_ack.e)
            || awaiting_peer_mac
            || awaiting_end
    }
}

/// The pairing state machine. See the module documentation.
pub struct Machine<R> {
    rng: R,
    sid: SessionId,
    channel: String,
    code: Code,
    payload: Vec<u8>,
    proof_secrets: Vec<PairSecret>,
    peers: Vec<SocketAddr>,
    scan: Vec<SocketAddr>,
    phase: Phase,
    sessions: HashMap<PeerId, Session>,
    failed: VecDeque<PeerId>,
    failures: u32,
    /// When the last session failed, and when the last one opened: the run
    /// stops [`CODES_DIFFER_AFTER`] after both, if all have failed.
    last_failure: Option<Instant>,
    last_opened: Option<Instant>,
    /// Whether the driver was told that the peer went quiet.
    silent_told: bool,
    budgets: HashMap<SocketAddr, Budget>,
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
    /// The first side heard announcing itself on our channel in another protocol version (an
    /// older or newer git-pair), and that version: reported by the driver when the run ends
    /// unverified, rather than "no peer".
    other_version: Option<(SocketAddr, u64)>,
    /// Whether this side generated its code.
    generated: bool,
    /// Peers that were given their code too, heard before [`TYPED_PEERS_AFTER`]:
    /// greeted then (at most [`MAX_SESSIONS`]).
    deferred: Vec<(PeerId, SocketAddr)>,
    /// Announcements made so far (see [`HELLO_STEADY`]).
    hellos: u32,
}

impl<R: RngCore + CryptoRng> Machine<R> {
    /// A machine that starts announcing itself at `now`.
    pub fn new(config: Config, now: Instant, mut rng: R) -> Result<Self, MachineError> {
        // The proofs follow the payload in the same pieces.
        let pieces = (config.payload.len() + repair::FRAMED_EXTRA)
            .div_ceil(PIECE_PLAIN)
            .max(1);
        if config.payload.len() > MAX_PAYLOAD || pieces > MAX_PIECES {
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
            proof_secrets: config.proof_secrets,
            peers: config.peers,
            scan: config.scan,
            phase: Phase::Searching,
            sessions: HashMap::new(),
            failed: VecDeque::new(),
            failures: 0,
            last_failure: None,
            last_opened: None,
            silent_told: false,
            budgets: HashMap::new(),
            oversized: None,
            other_version: None,
            generated: config.generated,
            deferred: Vec::new(),
            hellos: 0,
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

    /// The retransmission timeout that the round trip to `peer`, measured
    /// during the exchange, gives (before any backoff), or `None` before a
    /// measurement. The driver paces its own retries to the peer (the check of
    /// its sshd) by it.
    pub fn retransmit_timeout(&self, peer: &PeerId) -> Option<Duration> {
        self.sessions
            .get(peer)
            .filter(|s| s.rtt.measured())
            .map(|s| s.rtt.rto())
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

    /// Who announced itself on this channel in another protocol version than
    /// [`codec::VERSION`], and which: such a side runs another version of
    /// git-pair, cannot pair with this one, and a run that ends unverified
    /// should say so. Unauthenticated, like `oversized_payload`.
    pub fn other_version(&self) -> Option<(SocketAddr, u64)> {
        self.other_version
    }

    /// Whether the machine has nothing more to do.
    pub fn is_done(&self) -> bool {
        matches!(self.phase, Phase::Finished | Phase::Failed)
    }

    /// Whether this side has ended its part of a session (refused the peer,
    /// or is verified) and should keep being driven until
    /// [`Event::Finished`], so that the peer learns how it ended.
    pub fn is_ending(&self) -> bool {
        matches!(self.phase, Phase::Verified { .. } | Phase::Closing { .. })
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
        let ending = |peer: PeerId, since: Option<Instant>| {
            let s = self.sessions.get(&peer)?;
            let (silent, finish) = self.end_deadlines(s, since);
            [s.retransmit_at, silent, finish]
                .into_iter()
                .flatten()
                .min()
        };
        match self.phase {
            Phase::Finished | Phase::Failed => None,
            Phase::Verified { peer, since } => ending(peer, Some(since)),
            Phase::Closing { peer } => ending(peer, None),
            Phase::Searching => {
                let sessions = self
                    .sessions
                    .values()
                    .flat_map(|s| [s.retransmit_at, Some(s.expires())]);
                [
                    Some(self.next_hello),
                    self.scan_deadline(),
                    self.codes_differ_deadline(),
                    self.deferred_deadline(),
                ]
                .into_iter()
                .chain(sessions)
                .flatten()
                .min()
            }
        }
    }

    /// Handles the passage of time: announcements, scans, retransmissions,
    /// idle and failed sessions, and the end of a session.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Finished | Phase::Failed => return,
            Phase::Verified { peer, since } => {
                self.retransmit_due(peer, now);
                self.ending_due(peer, Some(since), now);
                return;
            }
            Phase::Closing { peer } => {
                self.retransmit_due(peer, now);
                self.ending_due(peer, None, now);
                return;
            }
            Phase::Searching => {}
        }
        if now >= self.next_hello {
            self.announce();
            self.next_hello = now + self.hello_interval;
            self.hellos = self.hellos.saturating_add(1);
            if self.generated || self.hellos >= HELLO_STEADY {
                self.hello_interval = (self.hello_interval * 2).min(HELLO_MAX);
            }
        }
        self.scan_due(now);
        if self.deferred_deadline().is_some_and(|at| now >= at) {
            for (peer, from) in std::mem::take(&mut self.deferred) {
                if !self.sessions.contains_key(&peer) && !self.failed.contains(&peer) {
                    self.open_session(now, from, peer, true);
                }
            }
        }
        let peers: Vec<PeerId> = self.sessions.keys().copied().collect();
        for peer in peers {
            let Some(s) = self.sessions.get(&peer) else {
                continue;
            };
            if now >= s.expires() {
                if s.key_material_sent() {
                    self.fail(peer, now);
                } else {
                    self.sessions.remove(&peer);
                }
                continue;
            }
            self.retransmit_due(peer, now);
        }
        if self
            .codes_differ_deadline()
            .is_some_and(|deadline| now >= deadline)
        {
            self.phase = Phase::Failed;
            self.sessions.clear();
            self.events.push_back(Event::CodesDiffer {
                failures: self.failures,
            });
        }
    }

    /// Handles one received datagram. Garbage, our own echoes, other
    /// channels, stale sessions and forgeries are ignored.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, datagram: &[u8]) {
        let msg = match codec::decode(datagram) {
            Ok(msg) => msg,
            // Remembered only to explain a run that ends unverified (see `oversized_payload`);
            // unauthenticated, so it changes nothing else.
            Err(codec::DecodeError::TooManyPieces(n)) => {
                self.oversized.get_or_insert((from, n));
                return;
            }
            // Likewise: a side on our channel that speaks another version of the protocol.
            Err(codec::DecodeError::Version(_)) => {
                if let Some((v, ch)) = codec::foreign_hello(datagram) {
                    if ch == self.channel {
                        self.other_version.get_or_insert((from, v));
                    }
                }
                return;
            }
            Err(_) => return,
        };
        self.note_received(from, datagram.len(), now);
        if *msg.sender() == self.sid || self.failed.contains(msg.sender()) {
            return;
        }
        match msg {
            Message::Hello { sid, ch, gen } => self.on_hello(now, from, sid, ch, gen),
            msg if msg.addressee() == Some(&self.sid) => self.on_directed(now, from, msg),
            _ => {}
        }
    }

    /// The driver checked the peer's payload and will use it: send our
    /// confirmation.
    pub fn accept(&mut self, now: Instant, peer: PeerId) {
        if self.phase != Phase::Searching {
            return;
        }
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

    /// The driver cannot use the peer's payload: tell the peer why, sealed
    /// under the session keys, and end the run once it has heard (or gone
    /// quiet). Nothing is confirmed to it.
    pub fn refuse(&mut self, now: Instant, peer: PeerId, detail: &str) {
        if self.phase != Phase::Searching {
            return;
        }
        let sid = self.sid;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let Some(keys) = &s.keys else {
            return;
        };
        let end = End::Refused {
            detail: End::detail(detail),
        };
        let sealed = schedule::seal_end(keys, &sid, &peer, &end.to_bytes());
        s.own_end = Some((end, sealed, now));
        s.timing.get_or_insert((Timed::End, now, true));
        s.backoff = 0;
        s.retransmit_at = None;
        self.phase = Phase::Closing { peer };
        self.sessions.retain(|p, _| *p == peer);
        self.send_end(peer);
        self.arm(peer, now);
    }

    /// After [`Event::Verified`]: how this side's part ended. [`End::Ready`]
    /// once set up, [`End::Declined`] when the person did not confirm the
    /// check string, [`End::Failed`] when setting up failed. Told to the peer
    /// sealed under the session keys, until it acknowledges.
    pub fn conclude(&mut self, now: Instant, end: End) {
        let Phase::Verified { peer, .. } = self.phase else {
            return;
        };
        let sid = self.sid;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let Some(keys) = &s.keys else {
            return;
        };
        if s.own_end.is_some() {
            return;
        }
        let end = match end {
            End::Refused { detail } => End::Refused {
                detail: End::detail(&detail),
            },
            End::Failed { detail } => End::Failed {
                detail: End::detail(&detail),
            },
            other => other,
        };
        let sealed = schedule::seal_end(keys, &sid, &peer, &end.to_bytes());
        s.own_end = Some((end, sealed, now));
        s.timing.get_or_insert((Timed::End, now, true));
        s.backoff = 0;
        s.retransmit_at = None;
        self.send_end(peer);
        if self.silent_told {
            // The peer went quiet: say it once, and stop.
            self.finish();
        } else if !self.finish_if_done(peer) {
            self.arm(peer, now);
        }
    }

    fn on_hello(
        &mut self,
        now: Instant,
        from: SocketAddr,
        peer: PeerId,
        ch: String,
        gen: Option<bool>,
    ) {
        if ch != self.channel || self.phase != Phase::Searching {
            return;
        }
        // Two generated codes are two independent random codes.
        if self.generated && gen == Some(true) {
            return;
        }
        self.last_peer_heard = Some(now);
        if !self.generated && gen == Some(false) && self.defers(now) {
            if let Some(d) = self.deferred.iter_mut().find(|(p, _)| *p == peer) {
                d.1 = from;
            } else if self.deferred.len() < MAX_SESSIONS {
                self.deferred.push((peer, from));
            }
            return;
        }
        if self.sessions.contains_key(&peer) {
            self.route(peer, from);
            let Some(s) = self.sessions.get_mut(&peer) else {
                return;
            };
            s.last_heard = now;
            // It is still announcing, so it may lack our PAKE message, or
            // the pieces of our payload it has not acknowledged.
            let pieces_missing = (0..s.own_pieces.len()).any(|i| s.peer_ack.p & (1 << i) == 0);
            if !s.peer_ack.k || pieces_missing {
                self.fast_retransmit(peer, now);
            }
            return;
        }
        self.open_session(now, from, peer, true);
    }

    /// Opens a session with `peer`; with `greet`, sends our PAKE message at
    /// once (a session opened by the peer's PAKE message answers it once that
    /// is handled, so that the answer echoes it).
    /// Whether sessions with peers that were given their code wait: see
    /// *Crowds* in the module documentation.
    fn defers(&self, now: Instant) -> bool {
        now < self.started + TYPED_PEERS_AFTER
    }

    /// When the deferred peers are greeted.
    fn deferred_deadline(&self) -> Option<Instant> {
        (!self.deferred.is_empty() && self.phase == Phase::Searching)
            .then_some(self.started + TYPED_PEERS_AFTER)
    }

    fn open_session(&mut self, now: Instant, from: SocketAddr, peer: PeerId, greet: bool) -> bool {
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
                sources: Vec::new(),
                last_heard: now,
                spake: Some(spake),
                own_pake,
                peer_pake: None,
                keys: None,
                early: Vec::new(),
                own_pieces: Vec::new(),
                own_plain: Zeroizing::new(Vec::new()),
                key_sent_at: None,
                rx: Reassembly::default(),
                peer_payload: None,
                peer_macs: Vec::new(),
                peer_verified: false,
                authentic: false,
                suspect_since: None,
                decision: Decision::Pending,
                confirm: None,
                own_end: None,
                peer_end: None,
                peer_end_told: false,
                verified: false,
                peer_ack: Acked::default(),
                rtt: Rtt::default(),
                backoff: 0,
                timing: None,
                retransmit_at: None,
                last_fast: None,
            },
        );
        self.last_opened = Some(now);
        self.events.push_back(Event::PeerSeen { peer, from });
        if greet {
            self.greet(peer, now);
        }
        true
    }

    /// Sends our PAKE message for the first time, timed for the round trip.
    fn greet(&mut self, peer: PeerId, now: Instant) {
        self.send_pake(peer);
        if let Some(s) = self.sessions.get_mut(&peer) {
            s.timing = Some((Timed::Pake, now, true));
        }
        self.arm(peer, now);
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
            // takes a session or a guess slot. A message that is no SPAKE2
            // message at all is dropped too: it must not spend the session's
            // one SPAKE2 run.
            if self.sessions.values().any(|s| s.own_pake == m.0) || !valid_pake(&m.0) {
                return;
            }
        }
        let opened = !self.sessions.contains_key(&peer);
        if opened && self.defers(now) && self.deferred.iter().any(|(p, _)| *p == peer) {
            // A peer that was given its code too: answered once the wait is over.
            return;
        }
        if opened {
            // Only a PAKE message may open a session: it answers our hello.
            let opens = matches!(msg, Message::Pake { .. }) && self.phase == Phase::Searching;
            if !opens || !self.open_session(now, from, peer, false) {
                return;
            }
        }
        self.last_peer_heard = Some(now);
        let sid = self.sid;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        s.last_heard = now;
        let echoed = msg
            .ack()
            .and_then(|a| a.k.as_ref())
            // Constant time: the echo is what proves an address receives what we send, and an
            // off-path sender must not learn it byte by byte.
            .is_some_and(|k| bool::from(k.0.ct_eq(&Ack::echo(&s.own_pake).0)));
        // The acknowledgement is applied once the message's content is handled: a PAKE message
        // may bring the keys its tag is checked under.
        let ack = msg.ack().cloned();
        let signed = ack
            .as_ref()
            .and_then(|a| a.tag.as_ref())
            .and_then(|tag| Some((msg.signed_bytes()?, tag.0.clone())));
        let genuine = |keys: &SessionKeys| {
            signed
                .as_ref()
                .is_some_and(|(bytes, tag)| schedule::verify_ack_tag(keys, bytes, tag))
        };
        // Addresses shown to receive: `from`, and where early pieces came from.
        let mut shown: Vec<SocketAddr> = Vec::new();
        if echoed {
            shown.push(from);
        }
        let mut new_end = false;
        let (content, duplicate) = match msg {
            Message::Pake { m, .. } => match &s.peer_pake {
                Some(have) => (true, *have == m.0),
                None => {
                    let Some(spake) = s.spake.take() else {
                        return;
                    };
                    let Ok(key) = spake.finish(&m.0) else {
                        // Checked above; should it happen anyway, this
                        // session can never derive keys: let it go.
                        self.sessions.remove(&peer);
                        return;
                    };
                    let keys = schedule::derive(&PakeKey::new(key), &sid, &peer);
                    for (i, n, d, at) in std::mem::take(&mut s.early) {
                        match s.rx.offer(&keys, &sid, &peer, i, n, &d) {
                            Piece::Opened | Piece::Duplicate => {
                                s.authentic = true;
                                shown.push(at);
                            }
                            Piece::Forged => s.suspect(now),
                        }
                    }
                    s.keys = Some(keys);
                    s.peer_pake = Some(m.0);
                    (true, false)
                }
            },
            Message::Data { i, n, d, .. } => match &s.keys {
                None => {
                    let early = (i, n, d.0, from);
                    if s.early.len() < MAX_PIECES && !s.early.contains(&early) {
                        s.early.push(early);
                    }
                    (true, false)
                }
                Some(keys) => match s.rx.offer(keys, &sid, &peer, i, n, &d.0) {
                    Piece::Opened => {
                        s.authentic = true;
                        shown.push(from);
                        (true, false)
                    }
                    Piece::Duplicate => {
                        s.authentic = true;
                        shown.push(from);
                        (true, true)
                    }
                    Piece::Forged => {
                        s.suspect(now);
                        (false, false)
                    }
                },
            },
            // Only a MAC whose message carries the peer's tag is a candidate: the peer confirms
            // only once it has opened our payload, so it has the keys and tags it. Otherwise an
            // outsider could fill the candidates before the peer's payload is complete and
            // crowd out the peer's MAC.
            Message::Confirm { mac, .. } => match &s.keys {
                Some(keys) if genuine(keys) => {
                    let dup = s.peer_verified || s.peer_macs.iter().any(|(m, _)| *m == mac.0);
                    if !dup && s.peer_macs.len() < MAX_MACS {
                        s.peer_macs.push((mac.0, from));
                    }
                    (true, dup)
                }
                Some(_) => {
                    s.suspect(now);
                    (false, false)
                }
                None => (false, false),
            },
            // A bare acknowledgement that lacks our PAKE message, from where
            // our replies go, means the peer cannot go on without it: answer
            // at once, as for a duplicate, rather than at our backed-off
            // timer (one from elsewhere may be forged, and must not draw our
            // replies there). So does one in the end phases that lacks our
            // MAC or our end: the peer is still waiting for it.
            Message::Ack { ack, .. } => {
                let ending = matches!(self.phase, Phase::Verified { .. } | Phase::Closing { .. });
                let lacks = (s.confirm.is_some() && !ack.c) || (s.own_end.is_some() && !ack.e);
                let lacks_pake = !echoed && !s.peer_ack.k && from == s.addr;
                (false, lacks_pake || ending && lacks)
            }
            Message::End { sealed, .. } => {
                let Some(keys) = &s.keys else {
                    return;
                };
                // Only the holder of the code can seal an end; anything else
                // is a forgery and changes nothing.
                let Some(end) = schedule::open_end(keys, &sid, &peer, &sealed.0)
                    .and_then(|plain| End::parse(&plain).ok())
                else {
                    return;
                };
                s.authentic = true;
                shown.push(from);
                if s.peer_end.is_some() {
                    (true, true)
                } else {
                    s.peer_end = Some(end);
                    new_end = true;
                    (true, false)
                }
            }
            Message::Hello { .. } => return,
        };
        let tagged = s.keys.as_ref().is_some_and(genuine);
        if let (Some(ack), true) = (&ack, tagged) {
            Self::acknowledged(s, ack, echoed, now);
        }
        for addr in shown {
            self.validate(addr);
        }
        self.route(peer, from);
        if new_end && self.on_peer_end(peer) {
            return;
        }
        let sent = self.advance(peer, now);
        if self.finish_if_done(peer) || !self.sessions.contains_key(&peer) {
            return;
        }
        if opened {
            // Our PAKE message answers the peer's and echoes it.
            self.greet(peer, now);
        } else if duplicate {
            self.fast_retransmit(peer, now);
        } else if content && sent == 0 {
            self.send_ack(peer);
        }
        self.arm(peer, now);
    }

    /// Applies an acknowledgement whose tag verified (see *Delivery* in the
    /// module documentation): what the peer has of ours only grows, and a
    /// round trip is measured only when this acknowledgement newly covers
    /// what is being timed, so a replayed one changes nothing.
    fn acknowledged(s: &mut Session, ack: &Ack, echoed: bool, now: Instant) {
        let before = s.peer_ack;
        let grown = Acked {
            k: before.k || echoed,
            p: before.p | ack.p,
            c: before.c || ack.c,
            e: before.e || ack.e,
        };
        if grown == before {
            return;
        }
        // Progress: the timer starts again, from the measured timeout.
        s.peer_ack = grown;
        s.backoff = 0;
        s.retransmit_at = None;
        let newly = |was: bool, is: bool| !was && is;
        let acked = match s.timing {
            Some((Timed::Pake, at, once)) => newly(before.k, grown.k).then_some((at, once)),
            Some((Timed::Piece(i), at, once)) => {
                newly(before.p & (1 << i) != 0, grown.p & (1 << i) != 0).then_some((at, once))
            }
            Some((Timed::Confirm, at, once)) => newly(before.c, grown.c).then_some((at, once)),
            Some((Timed::End, at, once)) => newly(before.e, grown.e).then_some((at, once)),
            None => None,
        };
        if let Some((at, once)) = acked {
            s.rtt.sample(now.saturating_duration_since(at), once);
            s.timing = None;
        }
    }

    /// The peer's end has just arrived. Returns whether this session is over.
    fn on_peer_end(&mut self, peer: PeerId) -> bool {
        let Some(end) = self.sessions.get(&peer).and_then(|s| s.peer_end.clone()) else {
            return false;
        };
        match self.phase {
            Phase::Searching if end == End::Ready => {
                // The peer verified us first; it is told once we verify it.
                false
            }
            Phase::Searching => {
                // The peer holds the code and ends before we verified it:
                // tell the driver, acknowledge, and drop the session (no
                // guess was spent: it holds the code).
                self.tell_peer_end(peer);
                for _ in 0..FINAL_ACK_COPIES {
                    self.send_ack(peer);
                }
                self.sessions.remove(&peer);
                self.remember_failed(peer);
                true
            }
            Phase::Verified { peer: p, .. } if p == peer => {
                self.tell_peer_end(peer);
                if end != End::Ready {
                    // Nothing of ours matters any more.
                    for _ in 0..FINAL_ACK_COPIES {
                        self.send_ack(peer);
                    }
                    self.finish();
                    return true;
                }
                false
            }
            _ => false,
        }
    }

    fn tell_peer_end(&mut self, peer: PeerId) {
        if let Some(s) = self.sessions.get_mut(&peer) {
            if let (Some(end), false) = (&s.peer_end, s.peer_end_told) {
                s.peer_end_told = true;
                self.events.push_back(Event::PeerEnded {
                    peer,
                    end: end.clone(),
                });
            }
        }
    }

    /// Where the session's replies go. They move to a new source address
    /// only once it has shown that it receives, or while the current one has
    /// not shown it either; addresses that have shown it are the peer's
    /// sources (for the sshd check).
    fn route(&mut self, peer: PeerId, from: SocketAddr) {
        let shown = self.is_validated(&from);
        let Some(addr) = self.sessions.get(&peer).map(|s| s.addr) else {
            return;
        };
        let current_shown = self.is_validated(&addr);
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        if from != s.addr && (shown || !current_shown) {
            s.addr = from;
        }
        if shown && !s.sources.contains(&from) && s.sources.len() < MAX_SOURCES {
            s.sources.push(from);
        }
    }

    /// Moves a session forward as far as it can go; returns how many
    /// datagrams that sent to the peer.
    fn advance(&mut self, peer: PeerId, now: Instant) -> usize {
        let mut sent = 0;
        let in_flight = self.guesses_in_flight();
        let Some(addr) = self.sessions.get(&peer).map(|s| s.addr) else {
            return 0;
        };
        let receives = self.is_validated(&addr);
        let sid = self.sid;
        let Some(s) = self.sessions.get_mut(&peer) else {
            return 0;
        };
        // Key material: only while the guess budget lasts, and only to an
        // address that has shown that it receives.
        let budget = self.failures + in_flight < MAX_FAILURES;
        if let (Some(keys), false, true, true, Phase::Searching) =
            (&s.keys, s.key_material_sent(), budget, receives, self.phase)
        {
            let proofs = repair::offer(&self.proof_secrets, &sid, &peer, &mut self.rng);
            let plain = Zeroizing::new(repair::frame(&self.payload, &proofs));
            s.own_pieces = schedule::seal_pieces(keys, &sid, &peer, &plain)
                .expect("the payload's size was checked when the machine was made");
            s.own_plain = plain;
            s.key_sent_at = Some(now);
            if s.timing.is_none() {
                s.timing = Some((Timed::Piece(0), now, true));
            }
            sent += self.send_pieces(peer, false);
        }
        let Some(s) = self.sessions.get_mut(&peer) else {
            return sent;
        };
        // The peer's payload.
        if s.peer_payload.is_none() && s.rx.complete() {
            let plain = s.rx.assemble();
            let (payload, proofs) = repair::split(&plain);
            let payload = Zeroizing::new(payload.to_vec());
            s.peer_payload = Some(plain);
            self.events.push_back(Event::PeerPayload {
                peer,
                payload,
                sources: s.sources.clone(),
                proofs,
            });
        }
        // The transcript covers what was sealed: payloads and proofs.
        let own_payload = &s.own_plain;
        let (Some(keys), Some(peer_pake), Some(peer_payload)) =
            (&s.keys, &s.peer_pake, &s.peer_payload)
        else {
            return sent;
        };
        // The peer's confirmation: the first candidate that verifies.
        let mut shown = None;
        if !s.peer_verified {
            let t = Transcript {
                sender: &peer,
                receiver: &sid,
                sender_pake: peer_pake,
                receiver_pake: &s.own_pake,
                sender_payload: peer_payload,
                receiver_payload: own_payload,
            };
            for (mac, at) in std::mem::take(&mut s.peer_macs) {
                if schedule::verify_confirmation(keys, &t, &mac) {
                    s.peer_verified = true;
                    s.authentic = true;
                    shown = Some(at);
                    break;
                }
                s.suspect_since.get_or_insert(now);
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
            s.timing.get_or_insert((Timed::Confirm, now, true));
            sent += self.send_confirm(peer);
        }
        if let Some(at) = shown {
            self.validate(at);
            self.route(peer, at);
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
        let Some(s) = self.sessions.get_mut(&peer) else {
            return;
        };
        let (Some(keys), Some(payload)) = (&s.keys, &s.peer_payload) else {
            return;
        };
        s.verified = true;
        self.events.push_back(Event::Verified(Box::new(Verified {
            peer,
            payload: Zeroizing::new(repair::split(payload).0.to_vec()),
            sas: keys.sas.clone(),
            pair_secret: keys.pair_secret.clone(),
            sources: s.sources.clone(),
        })));
        self.phase = Phase::Verified { peer, since: now };
        // Other sessions can no longer lead anywhere.
        self.sessions.retain(|p, _| *p == peer);
        // The peer may have told its end before we verified it.
        self.tell_peer_end(peer);
        self.arm(peer, now);
    }

    /// Finishes once this session has nothing left to exchange: the peer
    /// ended without a pairing, or our end is acknowledged and either the
    /// peer's end is here or ours ended the pairing anyway. Nobody will be
    /// left to answer the peer's retransmissions: send the last
    /// acknowledgement a few times.
    fn finish_if_done(&mut self, peer: PeerId) -> bool {
        let ending = match self.phase {
            Phase::Verified { peer: p, .. } | Phase::Closing { peer: p } => p == peer,
            _ => false,
        };
        let Some(s) = self.sessions.get(&peer) else {
            return false;
        };
        let done = ending
            && match (&s.own_end, &s.peer_end) {
                (_, Some(theirs)) if *theirs != End::Ready => true,
                (Some((ours, ..)), theirs) => {
                    s.peer_ack.e && (theirs.is_some() || *ours != End::Ready)
                }
                (None, _) => false,
            };
        if done {
            for _ in 0..FINAL_ACK_COPIES {
                self.send_ack(peer);
            }
            self.finish();
        }
        done
    }

    /// When, in the end phases, to tell the driver that the peer went quiet
    /// without its end, and when to stop lingering.
    fn end_deadlines(
        &self,
        s: &Session,
        verified_since: Option<Instant>,
    ) -> (Option<Instant>, Option<Instant>) {
        let silent = match verified_since {
            Some(since)
                if s.peer_end.is_none()
                    && !self.silent_told
                    && s.own_end.as_ref().is_none_or(|(e, ..)| *e == End::Ready) =>
            {
                Some((s.last_heard.max(since) + OUTCOME_QUIET).min(since + OUTCOME_MAX))
            }
            _ => None,
        };
        let finish = match &s.own_end {
            Some((ours, _, at)) if s.peer_end.is_some() || *ours != End::Ready => {
                Some((s.last_heard.max(*at) + LINGER_QUIET).min(*at + LINGER_MAX))
            }
            _ => None,
        };
        (silent, finish)
    }

    fn ending_due(&mut self, peer: PeerId, verified_since: Option<Instant>, now: Instant) {
        let Some(s) = self.sessions.get(&peer) else {
            self.finish();
            return;
        };
        let (silent, finish) = self.end_deadlines(s, verified_since);
        if silent.is_some_and(|t| now >= t) {
            self.silent_told = true;
            let told = s.own_end.is_some();
            self.events.push_back(Event::PeerSilent { peer });
            if told {
                self.finish();
            }
            return;
        }
        if finish.is_some_and(|t| now >= t) {
            self.finish();
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Finished;
        self.sessions.clear();
        self.events.push_back(Event::Finished);
    }

    fn guesses_in_flight(&self) -> u32 {
        self.sessions
            .values()
            .filter(|s| s.key_material_sent() && !s.peer_verified && !s.authentic)
            .count() as u32
    }

    /// A session that got key material from us did not verify in time, or
    /// had only datagrams that do not open for [`VERIFY_GRACE`]: unless its
    /// peer proved that it holds the code, it spent a guess.
    fn fail(&mut self, peer: PeerId, now: Instant) {
        let Some(s) = self.sessions.remove(&peer) else {
            return;
        };
        self.remember_failed(peer);
        if !s.key_material_sent() || s.peer_verified || s.authentic {
            return;
        }
        self.failures += 1;
        self.last_failure = Some(now);
        self.events.push_back(Event::VerifyFailed {
            peer,
            from: s.addr,
            failures: self.failures,
        });
        if self.failures >= MAX_FAILURES && self.phase == Phase::Searching {
            self.phase = Phase::Failed;
            self.sessions.clear();
            self.events.push_back(Event::TooManyFailures {
                failures: self.failures,
            });
        }
    }

    /// When the run stops because the codes differ: every peer heard on the
    /// channel failed, none is being verified, and none appeared since.
    fn codes_differ_deadline(&self) -> Option<Instant> {
        if self.phase != Phase::Searching || self.failures == 0 {
            return None;
        }
        if self.sessions.values().any(|s| s.peer_pake.is_some()) {
            return None;
        }
        let last = self
            .last_failure?
            .max(self.last_opened.unwrap_or(self.started));
        Some(last + CODES_DIFFER_AFTER)
    }

    fn remember_failed(&mut self, peer: PeerId) {
        if self.failed.len() >= MAX_FAILED_REMEMBERED {
            self.failed.pop_front();
        }
        self.failed.push_back(peer);
    }

    /// Counts what `from` sent, for its budget.
    fn note_received(&mut self, from: SocketAddr, len: usize, now: Instant) {
        let b = self.budget(from);
        b.received = b.received.saturating_add(len);
        b.last_heard = Some(now);
    }

    /// `addr` has shown that it receives what is sent to it.
    fn validate(&mut self, addr: SocketAddr) {
        self.budget(addr).validated = true;
    }

    fn is_validated(&self, addr: &SocketAddr) -> bool {
        self.budgets.get(addr).is_some_and(|b| b.validated)
    }

    fn budget(&mut self, addr: SocketAddr) -> &mut Budget {
        if !self.budgets.contains_key(&addr) && self.budgets.len() >= MAX_ADDRESSES {
            // Forget the least recently heard, unvalidated first.
            let old = self
                .budgets
                .iter()
                .min_by_key(|(_, b)| (b.validated, b.last_heard))
                .map(|(a, _)| *a);
            if let Some(old) = old {
                self.budgets.remove(&old);
            }
        }
        self.budgets.entry(addr).or_default()
    }

    /// Whether `len` more bytes may go to `addr`; counts them if so.
    fn allow(&mut self, addr: SocketAddr, len: usize) -> bool {
        let b = self.budget(addr);
        let fits = b.validated || b.sent + len <= AMPLIFICATION * b.received;
        if fits {
            b.sent += len;
        }
        fits
    }

    fn announce(&mut self) {
        let hello = Message::Hello {
            sid: self.sid,
            ch: self.channel.clone(),
            gen: Some(self.generated),
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
            gen: Some(self.generated),
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
                s.backoff = (s.backoff + 1).min(16);
                s.retransmit_at = None;
                // What is being timed is timed from this copy on. Only here, on our own timer: a
                // fast retransmission answers a datagram anyone can replay, and timing from it
                // would let an outsider shorten the measured round trip at will (a replayed
                // duplicate just before the peer's acknowledgement of the earlier copy). The
                // measurement is no longer unambiguous: the acknowledgement may answer the
                // earlier copy. (A fast retransmission leaves it so: an acknowledgement of
                // that copy only makes the measurement longer, never shorter.)
                if let Some((_, at, once)) = &mut s.timing {
                    *at = now;
                    *once = false;
                }
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
        let gap = FAST_RETRANSMIT_GAP.min(s.rtt.rto());
        if s.last_fast.is_some_and(|t| now < t + gap) {
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
                s.retransmit_at = Some(now + s.rto());
            }
        }
    }

    /// Sends again what the peer has not acknowledged.
    fn send_missing(&mut self, peer: PeerId) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let need_pake = !s.peer_ack.k;
        let need_confirm = s.confirm.is_some() && !s.peer_ack.c;
        let need_end = s.own_end.is_some() && !s.peer_ack.e;
        let mut sent = 0;
        if need_pake {
            sent += self.send_pake(peer);
        }
        sent += self.send_pieces(peer, true);
        if need_confirm {
            sent += self.send_confirm(peer);
        }
        if need_end {
            sent += self.send_end(peer);
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
        self.send_directed(peer, msg)
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
        msgs.into_iter().map(|m| self.send_directed(peer, m)).sum()
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
        self.send_directed(peer, msg)
    }

    fn send_end(&mut self, peer: PeerId) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        let Some((_, sealed, _)) = &s.own_end else {
            return 0;
        };
        let msg = Message::End {
            sid: self.sid,
            to: peer,
            sealed: Bytes(sealed.clone()),
            ack: s.own_ack(),
        };
        self.send_directed(peer, msg)
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
        self.send_directed(peer, msg)
    }

    /// Sends a directed message to where the session's replies go, with the
    /// tag that authenticates its acknowledgement once the session has keys
    /// (see *Delivery* in the module documentation).
    fn send_directed(&mut self, peer: PeerId, mut msg: Message) -> usize {
        let Some(s) = self.sessions.get(&peer) else {
            return 0;
        };
        if let (Some(keys), Some(signed)) = (&s.keys, msg.signed_bytes()) {
            let tag = schedule::ack_tag(keys, &signed);
            if let Some(ack) = msg.ack_mut() {
                ack.tag = Some(Bytes(tag.to_vec()));
            }
        }
        let addr = s.addr;
        self.send_to(addr, &msg)
    }

    /// Sends a directed message, within `addr`'s budget (see
    /// *Amplification* in the module documentation); returns how many
    /// datagrams went out (0 or 1).
    fn send_to(&mut self, addr: SocketAddr, msg: &Message) -> usize {
        match codec::encode(msg) {
            Ok(datagram) => {
                if !self.allow(addr, datagram.len()) {
                    return 0;
                }
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

/// Whether `m` is a SPAKE2 message of the symmetric mode: the side byte,
/// then a valid point. Checked before the session's one SPAKE2 run is spent
/// on it.
fn valid_pake(m: &[u8]) -> bool {
    m.len() == PAKE_MESSAGE_LEN
        && m[0] == b'S'
        && <Ed25519Group as Group>::bytes_to_element(&m[1..]).is_some()
}

mod rtt;
#[cfg(test)]
mod tests;
