//! A LAN attacker against one [`Machine`], driven by fuzz input.
//!
//! The machine is built with a fixed code, a small payload and a seeded ChaCha20 RNG, so its
//! session id and messages are the same on every run. The input is a list of operations, each
//! one opcode byte and its arguments (missing bytes read as 0): advance time, run to the
//! machine's next deadline, deliver raw bytes as a datagram, or send a well-formed message from
//! one of [`ATTACKERS`] fake peers. An attacker runs real SPAKE2 with its own code (so it can
//! finish a handshake and send payload pieces, MACs and sealed `end` messages under the key it
//! derived, each message tagged under its keys as a peer tags its acknowledgements), echoes or
//! misquotes the machine's PAKE message in its acknowledgements and claims what it likes, sends
//! `end` messages that are not sealed at all, replays the machine's datagrams, or reflects them
//! back as its own. Every datagram comes from one of a few fixed addresses, and `handle_timeout`
//! runs between operations.
//!
//! After every operation, all the machine's datagrams and events are drained and checked: each
//! datagram decodes with `codec::decode`, is at most `MAX_DATAGRAM` bytes, and is sent under
//! the machine's session id. On `PeerPayload` the harness does what the real driver does with a
//! good payload: `accept`; on `Verified` it concludes with `End::Ready`, as a driver that set up
//! does. The outcome says what the attacker achieved; the fuzz targets assert on it, and the
//! tests check that the same harness with the right code does verify.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use git_pair::protocol::codec::{self, Ack, Bytes, End, Message, SessionId, MAX_DATAGRAM};
use git_pair::protocol::machine::MAX_FAILURES;
use git_pair::protocol::schedule::{self, PakeKey, SessionKeys, Transcript};
use git_pair::protocol::{Code, Config, Event, Machine};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use spake2::{Ed25519Group, Identity, Password, Spake2};

/// The machine's code.
pub const CODE: &str = "7-guitar-orbit-velvet";
/// The attackers' code: same channel, other words.
pub const WRONG_CODE: &str = "7-guitar-orbit-violet";
/// The machine's payload.
pub const PAYLOAD: &[u8] = br#"{"user":"alice","host":"desk"}"#;
const ATTACKER_PAYLOAD: &[u8] = br#"{"user":"mallory","host":"lan"}"#;
const MACHINE_SEED: u64 = 0x6769_742d_7061_6972;
const ATTACKER_SEED: u64 = 0x6d61_6c6c_6f72_7921;
/// Fake peers, with session ids on both sides of the machine's (so both roles are played).
pub const ATTACKERS: usize = 8;
/// Operations per input, so that one input cannot run for long.
const MAX_OPS: usize = 400;
/// Datagrams remembered for replay and reflection.
const RECENT: usize = 32;

/// The opcodes; an opcode byte's low nibble picks one (modulo [`OPS`]), its high nibble the
/// attacker (`>> 4 & 7`) and, with bit 7, the source address.
pub mod op {
    /// `u16` LE milliseconds (mod 20 000); then `handle_timeout`.
    pub const ADVANCE: u8 = 0;
    /// To the machine's `poll_timeout` (if any); then `handle_timeout`.
    pub const DEADLINE: u8 = 1;
    /// `u16` LE length (mod 1400), then that many bytes, delivered as they are.
    pub const RAW: u8 = 2;
    /// `u8` flags: bit 0 another channel.
    pub const HELLO: u8 = 3;
    /// `u8` kind (mod 3: fresh SPAKE2 message, 33 input bytes, the machine's own message
    /// sent back), `u8` ack.
    pub const PAKE: u8 = 4;
    /// `u8` piece index, `u8` flags (bit 0: claim another piece count, bit 1: bytes from input
    /// instead of the sealed payload), [`u16` length, bytes], `u8` ack.
    pub const DATA: u8 = 5;
    /// `u8` flags (bit 0: 32 input bytes instead of the attacker's MAC), `u8` ack.
    pub const CONFIRM: u8 = 6;
    /// `u8` ack.
    pub const ACK: u8 = 7;
    /// `u8` flags: bit 0 `u8` length (mod 64, plus 16) and that many input bytes as the sealed
    /// box, else an end sealed under the attacker's keys (if it has any) whose kind is bits 1-2
    /// (ready, declined, refused, failed); then `u8` ack.
    pub const END: u8 = 8;
    /// `u8` index into the machine's recent datagrams, delivered as they are.
    pub const REPLAY: u8 = 9;
    /// `u8` index: a recent datagram of the machine, rewritten as the attacker's own (sender =
    /// attacker, addressee = machine).
    pub const REFLECT: u8 = 10;
    /// Number of opcodes.
    pub const OPS: u8 = 11;
}

/// What an attacker did to the machine in one run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// `Event::PeerPayload`: a payload decrypted, which needs the code.
    pub payloads: usize,
    /// `Event::Verified`.
    pub verified: usize,
    /// `Event::VerifyFailed`.
    pub verify_failed: usize,
    /// `Event::TooManyFailures`.
    pub too_many_failures: usize,
    /// `Event::CodesDiffer`.
    pub codes_differ: usize,
    /// `Event::PeerEnded`: an end that opened, which needs the code.
    pub peer_ended: usize,
    /// `Machine::failures()` at the end.
    pub failures: u32,
    /// Distinct sessions to which the machine sent anything derived from a PAKE key (payload
    /// pieces, a MAC or an end): each is one guess at the code for whoever is at the other end.
    /// A session is told apart by the machine's SPAKE2 message in it.
    pub guesses: usize,
    /// Datagrams sent by the machine.
    pub transmits: usize,
}

struct Attacker {
    sid: SessionId,
    /// SPAKE2 started, waiting for the machine's message.
    pending: Option<(Spake2<Ed25519Group>, Vec<u8>)>,
    /// The machine's last SPAKE2 message to this attacker.
    machine_pake: Option<Vec<u8>>,
    /// Keys of the last finished run, with the attacker's message in it and the machine's.
    keys: Option<(SessionKeys, Vec<u8>, Vec<u8>)>,
    /// The machine's payload pieces this attacker could open (with the right code): what the
    /// machine sealed, its payload and its re-pair proofs, which its MAC covers.
    machine_plain: Vec<Option<Vec<u8>>>,
}

/// The machine's session id, for building seeds by hand.
pub fn machine_sid() -> SessionId {
    Harness::new(CODE, WRONG_CODE).sid
}

/// The attackers' session ids: `0x10, 0x30, …, 0xf0` repeated.
pub fn attacker_sid(k: usize) -> SessionId {
    SessionId([(k as u8 % ATTACKERS as u8) * 0x20 + 0x10; 16])
}

fn address(n: u8) -> SocketAddr {
    // Documentation addresses (TEST-NET-1); nothing is ever sent anywhere.
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, n), 40000))
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head.to_vec()
    }

    /// bit 0: echo the machine's PAKE message (`echo`, or 8 wrong bytes if the attacker has
    /// none); bit 1: c; bit 6: e; bit 7: every piece, else bits 2-5 as the piece bitmap.
    fn ack(&mut self, echo: Option<&[u8]>) -> Ack {
        let b = self.u8();
        Ack {
            k: (b & 1 != 0).then(|| echo.map_or_else(|| Bytes(vec![0x5a; 8]), Ack::echo)),
            c: b & 2 != 0,
            e: b & 0x40 != 0,
            p: if b & 0x80 != 0 {
                u64::MAX
            } else {
                u64::from(b >> 2 & 0x0f)
            },
            // Put on by `Harness::send_as` when the attacker has keys.
            tag: None,
        }
    }
}

struct Harness {
    machine: Machine<ChaCha20Rng>,
    sid: SessionId,
    channel: String,
    now: Instant,
    rng: ChaCha20Rng,
    attacker_code: Code,
    attackers: Vec<Attacker>,
    recent: Vec<Vec<u8>>,
    /// The machine's current SPAKE2 message per addressee.
    machine_pakes: HashMap<SessionId, Vec<u8>>,
    guessed: HashSet<(SessionId, Vec<u8>)>,
    outcome: Outcome,
}

impl Harness {
    fn new(code: &str, attacker_code: &str) -> Harness {
        let now = Instant::now();
        let code = Code::parse(code).expect("valid code");
        let channel = code.channel().to_owned();
        let config = Config {
            code,
            payload: PAYLOAD.to_vec(),
            peers: vec![address(200)],
            scan: vec![address(201), address(202)],
            proof_secrets: Vec::new(),
            generated: false,
        };
        let machine = Machine::new(config, now, ChaCha20Rng::seed_from_u64(MACHINE_SEED))
            .expect("small payload");
        Harness {
            sid: machine.session_id(),
            machine,
            channel,
            now,
            rng: ChaCha20Rng::seed_from_u64(ATTACKER_SEED),
            attacker_code: Code::parse(attacker_code).expect("valid code"),
            attackers: (0..ATTACKERS)
                .map(|k| Attacker {
                    sid: attacker_sid(k),
                    pending: None,
                    machine_pake: None,
                    keys: None,
                    machine_plain: Vec::new(),
                })
                .collect(),
            recent: Vec::new(),
            machine_pakes: HashMap::new(),
            guessed: HashSet::new(),
            outcome: Outcome::default(),
        }
    }

    fn deliver(&mut self, from: SocketAddr, datagram: &[u8]) {
        self.machine.handle_datagram(self.now, from, datagram);
        self.drain();
    }

    fn send(&mut self, from: SocketAddr, msg: &Message) {
        // The harness only builds messages that fit; if one does not, nothing is sent.
        if let Ok(datagram) = codec::encode(msg) {
            self.deliver(from, &datagram);
        }
    }

    /// Sends a message attacker `k` built, tagged under the keys it derived (if any), as a peer
    /// tags its messages: with the wrong code the tag never verifies, with the right one it does
    /// (the tests), and a message without keys goes untagged.
    fn send_as(&mut self, k: usize, from: SocketAddr, mut msg: Message) {
        if let (Some((keys, _, _)), Some(signed)) = (&self.attackers[k].keys, msg.signed_bytes()) {
            let tag = schedule::ack_tag(keys, &signed);
            if let Some(ack) = msg.ack_mut() {
                ack.tag = Some(Bytes(tag.to_vec()));
            }
        }
        self.send(from, &msg);
    }

    /// Drains and checks everything the machine has to send or say.
    fn drain(&mut self) {
        loop {
            let mut any = false;
            let mut batch = Vec::new();
            while let Some(t) = self.machine.poll_transmit() {
                any = true;
                batch.push(t.datagram);
            }
            // The machine may queue a session's first payload piece before the PAKE message it
            // answers with (both come from handling one datagram): learn the batch's PAKE
            // messages first, so that such a piece counts for the session it belongs to.
            for datagram in &batch {
                if let Ok(Message::Pake { to, m, .. }) = codec::decode(datagram) {
                    self.machine_pakes.insert(to, m.0);
                }
            }
            for datagram in &batch {
                self.check_transmit(datagram);
            }
            while let Some(event) = self.machine.poll_event() {
                any = true;
                match event {
                    Event::PeerPayload { peer, .. } => {
                        self.outcome.payloads += 1;
                        // What the driver does with a payload it can use.
                        self.machine.accept(self.now, peer);
                    }
                    Event::Verified(_) => {
                        self.outcome.verified += 1;
                        // What the driver does once it has set up.
                        self.machine.conclude(self.now, End::Ready);
                    }
                    Event::VerifyFailed { .. } => self.outcome.verify_failed += 1,
                    Event::TooManyFailures { .. } => self.outcome.too_many_failures += 1,
                    Event::CodesDiffer { .. } => self.outcome.codes_differ += 1,
                    Event::PeerEnded { .. } => self.outcome.peer_ended += 1,
                    Event::PeerSeen { .. } | Event::PeerSilent { .. } | Event::Finished => {}
                }
            }
            if !any {
                break;
            }
        }
    }

    fn check_transmit(&mut self, datagram: &[u8]) {
        self.outcome.transmits += 1;
        assert!(
            datagram.len() <= MAX_DATAGRAM,
            "the machine sent {} bytes, more than {MAX_DATAGRAM}",
            datagram.len()
        );
        let msg = match codec::decode(datagram) {
            Ok(msg) => msg,
            Err(e) => panic!(
                "the machine sent a datagram that does not decode ({e}): {:?}",
                String::from_utf8_lossy(datagram)
            ),
        };
        assert_eq!(*msg.sender(), self.sid, "the machine sent under another id");
        match &msg {
            Message::Pake { to, m, .. } => {
                self.machine_pakes.insert(*to, m.0.clone());
                if let Some(k) = self.attackers.iter().position(|a| a.sid == *to) {
                    self.attackers[k].machine_pake = Some(m.0.clone());
                    self.finish_pake(k);
                }
            }
            Message::Data { to, .. } | Message::Confirm { to, .. } | Message::End { to, .. } => {
                let epoch = self.machine_pakes.get(to).cloned().unwrap_or_default();
                self.guessed.insert((*to, epoch));
                self.outcome.guesses = self.guessed.len();
                if let Message::Data { i, n, d, .. } = &msg {
                    self.keep_piece(*to, *i, *n, &d.0);
                }
            }
            _ => {}
        }
        if self.recent.len() == RECENT {
            self.recent.remove(0);
        }
        self.recent.push(datagram.to_vec());
    }

    /// Keeps a payload piece the machine sent to an attacker that can open it.
    fn keep_piece(&mut self, to: SessionId, i: u8, n: u8, d: &[u8]) {
        let machine = self.sid;
        let Some(a) = self.attackers.iter_mut().find(|a| a.sid == to) else {
            return;
        };
        let Some((keys, _, _)) = &a.keys else {
            return;
        };
        if let Some(plain) = schedule::open_piece(keys, &a.sid, &machine, i, n, d) {
            if a.machine_plain.len() != usize::from(n) {
                a.machine_plain = vec![None; usize::from(n)];
            }
            a.machine_plain[usize::from(i)] = Some(plain.to_vec());
        }
    }

    /// Completes attacker `k`'s SPAKE2 if it is waiting and has the machine's message.
    fn finish_pake(&mut self, k: usize) {
        let a = &mut self.attackers[k];
        let (Some(theirs), Some((spake, ours))) = (a.machine_pake.clone(), a.pending.take()) else {
            return;
        };
        if let Ok(key) = spake.finish(&theirs) {
            let keys = schedule::derive(&PakeKey::new(key), &a.sid, &self.sid);
            a.keys = Some((keys, ours, theirs));
            a.machine_plain.clear();
        }
    }

    fn fresh_pake(&mut self, k: usize) -> Vec<u8> {
        let identity = format!("{} channel={}", schedule::PROTOCOL, self.channel);
        let (spake, msg) = Spake2::<Ed25519Group>::start_symmetric_with_rng(
            &Password::new(self.attacker_code.password()),
            &Identity::new(identity.as_bytes()),
            &mut self.rng,
        );
        // A new SPAKE2 run: the machine's message of an earlier run no longer fits.
        self.attackers[k].pending = Some((spake, msg.clone()));
        self.attackers[k].keys = None;
        msg
    }

    fn step(&mut self, r: &mut Reader<'_>) {
        let opcode = r.u8();
        let k = usize::from(opcode >> 4 & 7);
        let from = if opcode & 0x80 != 0 {
            address(1)
        } else {
            address(2 + k as u8)
        };
        let sid = self.attackers[k].sid;
        let to = self.sid;
        let echo = self.attackers[k].machine_pake.clone();
        let echo = echo.as_deref();
        match (opcode & 0x0f) % op::OPS {
            op::ADVANCE => {
                self.now += Duration::from_millis(u64::from(r.u16() % 20_000));
                self.machine.handle_timeout(self.now);
                self.drain();
            }
            op::DEADLINE => {
                if let Some(at) = self.machine.poll_timeout() {
                    self.now = self.now.max(at);
                }
                self.machine.handle_timeout(self.now);
                self.drain();
            }
            op::RAW => {
                let len = usize::from(r.u16() % 1400);
                let datagram = r.bytes(len);
                self.deliver(from, &datagram);
            }
            op::HELLO => {
                let b = r.u8();
                let ch = if b & 1 != 0 {
                    "8".to_owned()
                } else {
                    self.channel.clone()
                };
                // Whether the attacker says it generated its code: an older peer says nothing.
                let gen = match (b >> 1) % 3 {
                    0 => None,
                    1 => Some(true),
                    _ => Some(false),
                };
                self.send(from, &Message::Hello { sid, ch, gen });
            }
            op::PAKE => {
                let kind = r.u8() % 3;
                let ack = r.ack(echo);
                let m = match kind {
                    0 => self.fresh_pake(k),
                    1 => r.bytes(codec::PAKE_MESSAGE_LEN),
                    _ => self.attackers[k].machine_pake.clone().unwrap_or_default(),
                };
                self.send_as(
                    k,
                    from,
                    Message::Pake {
                        sid,
                        to,
                        m: Bytes(m),
                        ack,
                    },
                );
                // The machine may have answered before this run started: use its message.
                self.finish_pake(k);
            }
            op::DATA => {
                let index = r.u8();
                let flags = r.u8();
                let pieces = match &self.attackers[k].keys {
                    Some((keys, _, _)) if flags & 2 == 0 => {
                        schedule::seal_pieces(keys, &sid, &to, ATTACKER_PAYLOAD).unwrap_or_default()
                    }
                    _ => {
                        let len = usize::from(r.u16() % 2048);
                        r.bytes(len)
                            .chunks(codec::PIECE_LEN)
                            .map(<[u8]>::to_vec)
                            .collect()
                    }
                };
                let ack = r.ack(echo);
                if pieces.is_empty() {
                    return;
                }
                let n = pieces.len() as u8;
                let i = index % n;
                let n = if flags & 1 != 0 { n.wrapping_add(1) } else { n };
                self.send_as(
                    k,
                    from,
                    Message::Data {
                        sid,
                        to,
                        i,
                        n,
                        d: Bytes(pieces[usize::from(i)].clone()),
                        ack,
                    },
                );
            }
            op::CONFIRM => {
                let flags = r.u8();
                let a = &self.attackers[k];
                // What the machine sealed, when the attacker could open all of it; otherwise
                // the payload it is known to send (its proofs unknown).
                let machine_plain: Option<Vec<u8>> = (!a.machine_plain.is_empty())
                    .then(|| a.machine_plain.iter().cloned().collect::<Option<Vec<_>>>())
                    .flatten()
                    .map(|pieces| pieces.concat());
                let mac = match &a.keys {
                    Some((keys, ours, theirs)) if flags & 1 == 0 => {
                        // Even knowing the machine's payload does not help without the code.
                        let t = Transcript {
                            sender: &sid,
                            receiver: &to,
                            sender_pake: ours,
                            receiver_pake: theirs,
                            sender_payload: ATTACKER_PAYLOAD,
                            receiver_payload: machine_plain.as_deref().unwrap_or(PAYLOAD),
                        };
                        schedule::confirmation(keys, &t).to_vec()
                    }
                    _ => r.bytes(32),
                };
                let ack = r.ack(echo);
                self.send_as(
                    k,
                    from,
                    Message::Confirm {
                        sid,
                        to,
                        mac: Bytes(mac),
                        ack,
                    },
                );
            }
            op::ACK => {
                let ack = r.ack(echo);
                self.send_as(k, from, Message::Ack { sid, to, ack });
            }
            op::END => {
                let flags = r.u8();
                let sealed = match &self.attackers[k].keys {
                    Some((keys, _, _)) if flags & 1 == 0 => {
                        let end = match flags >> 1 & 3 {
                            0 => End::Ready,
                            1 => End::Declined,
                            2 => End::Refused {
                                detail: "evil words".into(),
                            },
                            _ => End::Failed {
                                detail: "evil words".into(),
                            },
                        };
                        schedule::seal_end(keys, &sid, &to, &end.to_bytes())
                    }
                    _ => {
                        let len = usize::from(r.u8() % 64) + 16;
                        r.bytes(len)
                    }
                };
                let ack = r.ack(echo);
                self.send_as(
                    k,
                    from,
                    Message::End {
                        sid,
                        to,
                        sealed: Bytes(sealed),
                        ack,
                    },
                );
            }
            op::REPLAY => {
                let i = usize::from(r.u8());
                if let Some(datagram) = self.recent.get(i % self.recent.len().max(1)).cloned() {
                    self.deliver(from, &datagram);
                }
            }
            op::REFLECT => {
                let i = usize::from(r.u8());
                let Some(datagram) = self.recent.get(i % self.recent.len().max(1)).cloned() else {
                    return;
                };
                let Ok(mut msg) = codec::decode(&datagram) else {
                    return;
                };
                match &mut msg {
                    Message::Hello { sid: s, .. } => *s = sid,
                    Message::Pake { sid: s, to: t, .. }
                    | Message::Data { sid: s, to: t, .. }
                    | Message::Confirm { sid: s, to: t, .. }
                    | Message::Ack { sid: s, to: t, .. }
                    | Message::End { sid: s, to: t, .. } => {
                        *s = sid;
                        *t = to;
                    }
                }
                self.send(from, &msg);
            }
            _ => unreachable!("opcodes are taken modulo OPS"),
        }
    }
}

/// Runs the attack in `data` against a machine with [`CODE`], the attackers using
/// `attacker_code`.
pub fn run(data: &[u8], attacker_code: &str) -> Outcome {
    let mut h = Harness::new(CODE, attacker_code);
    h.drain();
    let mut r = Reader { data };
    let mut ops = 0;
    while !r.data.is_empty() && ops < MAX_OPS {
        h.step(&mut r);
        // Time passes between datagrams.
        h.machine.handle_timeout(h.now);
        h.drain();
        ops += 1;
    }
    h.outcome.failures = h.machine.failures();
    h.outcome
}

/// The `machine` target. An attacker without the code never gets a payload opened, never makes
/// the machine verify, and never gets an `end` accepted as the peer's words (nothing it sends
/// can end a session or speak for a peer); everything the machine sends is a valid datagram
/// (checked while running). And the threat model's point 2: at most [`MAX_FAILURES`] sessions
/// per run get anything derived from a PAKE key, so the attacker gets at most that many guesses.
///
/// (The guess budget was a target of its own, `machine_guesses`, on the same harness and the
/// same inputs; one target that checks both costs half as much per input checked, which
/// matters for a harness that runs real SPAKE2.)
pub fn machine(data: &[u8]) {
    let outcome = run(data, WRONG_CODE);
    assert_eq!(
        outcome.payloads, 0,
        "payload opened without the code: {outcome:?}"
    );
    assert_eq!(
        outcome.verified, 0,
        "verified without the code: {outcome:?}"
    );
    assert_eq!(
        outcome.peer_ended, 0,
        "an end accepted without the code: {outcome:?}"
    );
    assert!(
        outcome.guesses <= MAX_FAILURES as usize,
        "{} sessions got key material from one run: {outcome:?}",
        outcome.guesses
    );
    assert!(outcome.failures <= MAX_FAILURES, "{outcome:?}");
}

/// Builds inputs for [`run`]: seeds, and the scripted attacks in the tests.
#[derive(Default)]
pub struct Script(pub Vec<u8>);

impl Script {
    fn opcode(&mut self, code: u8, attacker: usize) -> &mut Self {
        self.0.push(code | ((attacker as u8 & 7) << 4));
        self
    }

    pub fn advance(&mut self, ms: u16) -> &mut Self {
        self.opcode(op::ADVANCE, 0);
        self.0.extend_from_slice(&ms.to_le_bytes());
        self
    }

    pub fn deadline(&mut self) -> &mut Self {
        self.opcode(op::DEADLINE, 0)
    }

    pub fn raw(&mut self, attacker: usize, datagram: &[u8]) -> &mut Self {
        self.opcode(op::RAW, attacker);
        self.0
            .extend_from_slice(&(datagram.len() as u16).to_le_bytes());
        self.0.extend_from_slice(datagram);
        self
    }

    pub fn hello(&mut self, attacker: usize) -> &mut Self {
        self.opcode(op::HELLO, attacker);
        self.0.push(0);
        self
    }

    /// Runs `op`, whose datagram then comes from the address the attackers share (192.0.2.1,
    /// opcode bit 7) instead of the attacker's own.
    pub fn shared(&mut self, op: impl FnOnce(&mut Self) -> &mut Self) -> &mut Self {
        let at = self.0.len();
        op(self);
        self.0[at] |= 0x80;
        self
    }

    /// A fresh SPAKE2 message with the attacker's code; acks nothing.
    pub fn pake(&mut self, attacker: usize) -> &mut Self {
        self.opcode(op::PAKE, attacker);
        self.0.extend_from_slice(&[0, 0]);
        self
    }

    /// Acks the machine's PAKE message (echoing it) and nothing else: shows that the
    /// attacker's address receives.
    pub fn echo(&mut self, attacker: usize) -> &mut Self {
        self.opcode(op::ACK, attacker);
        self.0.push(0x01);
        self
    }

    /// Piece `i` of the attacker's sealed payload; acks the machine's PAKE message and pieces.
    pub fn data(&mut self, attacker: usize, i: u8) -> &mut Self {
        self.opcode(op::DATA, attacker);
        self.0.extend_from_slice(&[i, 0, 0x81]);
        self
    }

    /// A piece of `len` input bytes (not sealed), index `i`.
    pub fn forged_data(&mut self, attacker: usize, i: u8, bytes: &[u8]) -> &mut Self {
        self.opcode(op::DATA, attacker);
        self.0.extend_from_slice(&[i, 2]);
        self.0
            .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.0.extend_from_slice(bytes);
        self.0.push(0x01);
        self
    }

    /// The attacker's MAC; acks everything.
    pub fn confirm(&mut self, attacker: usize) -> &mut Self {
        self.opcode(op::CONFIRM, attacker);
        self.0.extend_from_slice(&[0, 0x83]);
        self
    }

    /// Acks everything of the machine's, its end included.
    pub fn ack_all(&mut self, attacker: usize) -> &mut Self {
        self.opcode(op::ACK, attacker);
        self.0.push(0xc3);
        self
    }

    /// An end sealed under the attacker's keys; kind: 0 ready, 1 declined, 2 refused, 3 failed.
    pub fn end(&mut self, attacker: usize, kind: u8) -> &mut Self {
        self.opcode(op::END, attacker);
        self.0.extend_from_slice(&[(kind & 3) << 1, 0x01]);
        self
    }

    /// An end whose box is `len` (clamped to 16..=79) input bytes.
    pub fn forged_end(&mut self, attacker: usize, len: u8) -> &mut Self {
        let len = len.clamp(16, 79);
        self.opcode(op::END, attacker);
        self.0.extend_from_slice(&[1, len - 16]);
        self.0.extend(std::iter::repeat_n(0xab, usize::from(len)));
        self.0.push(0x01);
        self
    }

    pub fn replay(&mut self, index: u8) -> &mut Self {
        self.opcode(op::REPLAY, 0);
        self.0.push(index);
        self
    }

    pub fn reflect(&mut self, attacker: usize, index: u8) -> &mut Self {
        self.opcode(op::REFLECT, attacker);
        self.0.push(index);
        self
    }
}
