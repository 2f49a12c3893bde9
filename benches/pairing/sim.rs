//! Time to pair over a simulated LAN in virtual time: the real protocol
//! machine (`git_pair::protocol::Machine`) on both sides, wired through an
//! in-memory network that delays, jitters (and so reorders), loses and
//! duplicates datagrams. The kernel here has no netem, so delay, reordering
//! and duplication cannot be made on the namespace LAN; this is how the
//! benchmark measures them.
//!
//! What the simulation leaves out, and what it models:
//! - CPU time is not counted (virtual time stands still while a machine
//!   computes); the crypto micro-benchmarks give it: well under 1 ms per run.
//! - The driver's check of the peer's sshd is modelled as the TCP
//!   connections that `transport::probe` makes: one at once and one at each
//!   of its `RETRY_AFTER`, each a round trip where the SYN and the SYN-ACK
//!   are each lost with the datagram loss rate, and the kernel resends an
//!   unanswered SYN after 1 s, then 2 s more, until the probe's 3 s timeout.
//!   Like the real driver, a side checking the peer's sshd handles no
//!   datagram and no timer until the check is done.
//! - Setup (files, git config) takes no time here; the namespace benchmark
//!   measures it for real.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

use git_pair::protocol::codec::{End, SessionId};
use git_pair::protocol::payload::Payload;
use git_pair::protocol::{Code, Config, Destination, Event, Machine};
use git_pair::transport::probe::RETRY_AFTER;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// How the simulated LAN treats each datagram, in each direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub loss: f64,
    pub duplicate: f64,
    /// Every datagram takes `delay` plus a uniform share of `jitter`;
    /// datagrams sent closer together than the jitter arrive reordered.
    pub delay: Duration,
    pub jitter: Duration,
}

/// The wire time of an unimpaired LAN hop (veth, switch) in the simulation.
pub const LAN_HOP: Duration = Duration::from_micros(100);

/// When the kernel sends a connection's SYN, counted from the start of the
/// connection: at once, then after its 1 s initial retransmission timeout,
/// then 2 s later (Linux's SYN backoff).
const SYN_SENT_AT: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(3),
];
/// `SSHD_PROBE_TIMEOUT` of `commands::pair`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// How long the first side runs alone before the second one starts (as in
/// the namespace benchmark, where the second side starts once the first has
/// shown its code).
const HEAD_START: Duration = Duration::from_millis(500);

/// The outcome of one simulated pairing.
#[derive(Debug, Clone, Copy)]
pub enum Run {
    /// Both sides finished, verified, with each other; the time from the
    /// second side's start until both had finished.
    Paired(Duration),
    /// Something else happened within the limit: why.
    Failed(&'static str),
}

enum What {
    Start(usize),
    Deliver {
        to: usize,
        from: SocketAddr,
        datagram: Vec<u8>,
    },
    /// The sshd check of `node` is over: accept (`true`) or reject.
    Checked {
        node: usize,
        peer: SessionId,
        reachable: bool,
    },
}

struct Scheduled {
    at: Instant,
    seq: u64,
    what: What,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

struct Node {
    machine: Option<Machine<ChaCha20Rng>>,
    addr: SocketAddr,
    payload: Vec<u8>,
    /// Busy checking the peer's sshd until then: nothing else runs.
    busy_until: Option<Instant>,
    verified_with: Option<SessionId>,
    finished_at: Option<Instant>,
    failed: Option<&'static str>,
}

struct Sim {
    now: Instant,
    queue: BinaryHeap<Reverse<Scheduled>>,
    seq: u64,
    rng: ChaCha20Rng,
    imp: Impairment,
    nodes: Vec<Node>,
    /// Node `2k` and `2k + 1` are pairing `k`, with `codes[k]`.
    codes: Vec<String>,
}

/// A payload of the size a real one has: user, host, path, an ed25519 login
/// key and one host key, the sshd port and two addresses.
fn payload(name: &str) -> Vec<u8> {
    let key = |c: &str| {
        format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{c:A<43} git-pair {name}@{name}-laptop")
    };
    Payload {
        user: name.to_owned(),
        host: format!("{name}-laptop"),
        path: format!("/home/{name}/src/notes"),
        user_key: key("B"),
        host_keys: vec![key("C")],
        ssh_port: 22,
        addresses: vec!["192.168.1.20".into(), "fe80::1c2d:3e4f:5a6b:7c8d".into()],
        annex_uuid: None,
        annex_shell: false,
    }
    .to_bytes()
}

impl Sim {
    /// `k` pairings, each with a fresh generated code, like people would
    /// have: channels may collide.
    fn new(seed: u64, imp: Impairment, k: usize) -> Sim {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let codes = (0..k)
            .map(|_| Code::generate(&mut rng).reveal().to_string())
            .collect();
        let nodes = (0..2 * k)
            .map(|i| Node {
                machine: None,
                addr: SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1),
                    40000,
                )),
                payload: payload(&format!("user{i}")),
                busy_until: None,
                verified_with: None,
                finished_at: None,
                failed: None,
            })
            .collect();
        Sim {
            now: Instant::now(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            imp,
            nodes,
            codes,
        }
    }

    fn at(&mut self, at: Instant, what: What) {
        self.seq += 1;
        self.queue.push(Reverse(Scheduled {
            at,
            seq: self.seq,
            what,
        }));
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.rng.next_u64() as f64 / u64::MAX as f64) < p
    }

    fn one_way(&mut self) -> Duration {
        let jitter = if self.imp.jitter.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.rng.next_u64() % self.imp.jitter.as_nanos() as u64)
        };
        self.imp.delay + jitter
    }

    /// Puts one datagram on the simulated wire towards `to`.
    fn put(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        if self.chance(self.imp.loss) {
            return;
        }
        let copies = if self.chance(self.imp.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.one_way();
            self.at(
                at,
                What::Deliver {
                    to,
                    from,
                    datagram: datagram.to_vec(),
                },
            );
        }
    }

    /// How long the check of the peer's sshd takes, `None` when no
    /// connection gets through within the probe's timeout. Like
    /// `transport::probe`, a fresh connection starts at once and at each of
    /// `probe::RETRY_AFTER`; each one's SYN is sent again by the kernel.
    fn sshd_check(&mut self) -> Option<Duration> {
        let starts = std::iter::once(Duration::ZERO).chain(RETRY_AFTER);
        let mut best: Option<Duration> = None;
        for start in starts {
            for resend in SYN_SENT_AT {
                let syn_lost = self.chance(self.imp.loss);
                let syn_ack_lost = self.chance(self.imp.loss);
                let at = start + resend + self.one_way() + self.one_way();
                if !syn_lost && !syn_ack_lost && at < PROBE_TIMEOUT {
                    best = Some(best.map_or(at, |b| b.min(at)));
                }
            }
        }
        best
    }

    fn start(&mut self, i: usize) {
        let config = Config {
            code: Code::parse(&self.codes[i / 2]).expect("a generated code parses"),
            payload: self.nodes[i].payload.clone(),
            peers: Vec::new(),
            scan: Vec::new(),
            proof_secrets: Vec::new(),
        };
        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        let machine = Machine::new(config, self.now, rng).expect("the payload fits");
        self.nodes[i].machine = Some(machine);
        self.pump(i);
    }

    /// The driver's part for node `i`: send what the machine wants sent,
    /// act on its events.
    fn pump(&mut self, i: usize) {
        loop {
            let mut out = Vec::new();
            let mut events = Vec::new();
            let Some(m) = self.nodes[i].machine.as_mut() else {
                return;
            };
            while let Some(t) = m.poll_transmit() {
                out.push(t);
            }
            while let Some(e) = m.poll_event() {
                events.push(e);
            }
            if out.is_empty() && events.is_empty() {
                return;
            }
            let from = self.nodes[i].addr;
            for t in out {
                match t.destination {
                    // Everyone else hears the multicast.
                    Destination::Multicast => {
                        for j in (0..self.nodes.len()).filter(|&j| j != i) {
                            self.put(j, from, &t.datagram);
                        }
                    }
                    Destination::Unicast(to) => {
                        if let Some(j) = self.nodes.iter().position(|n| n.addr == to) {
                            self.put(j, from, &t.datagram);
                        }
                    }
                }
            }
            for e in events {
                match e {
                    Event::PeerPayload { peer, .. } => {
                        let (took, reachable) = match self.sshd_check() {
                            Some(took) => (took, true),
                            None => (PROBE_TIMEOUT, false),
                        };
                        let done = self.now + took;
                        self.nodes[i].busy_until = Some(done);
                        self.at(
                            done,
                            What::Checked {
                                node: i,
                                peer,
                                reachable,
                            },
                        );
                    }
                    Event::Verified(v) => {
                        self.nodes[i].verified_with = Some(v.peer);
                        // Setup takes no time here: tell the peer at once.
                        if let Some(m) = self.nodes[i].machine.as_mut() {
                            m.conclude(self.now, End::Ready);
                        }
                    }
                    Event::Finished => self.nodes[i].finished_at = Some(self.now),
                    Event::TooManyFailures { .. } => {
                        self.nodes[i].failed = Some("too many failed verifications");
                    }
                    Event::CodesDiffer { .. } => {
                        self.nodes[i].failed = Some("the codes differ");
                    }
                    Event::PeerEnded { end, .. } if end != End::Ready => {
                        self.nodes[i].failed = Some("the peer could not reach our sshd");
                    }
                    Event::PeerSilent { .. } => {
                        self.nodes[i].failed = Some("the peer did not say how it ended");
                    }
                    Event::PeerEnded { .. }
                    | Event::PeerSeen { .. }
                    | Event::VerifyFailed { .. } => {}
                }
            }
        }
    }

    fn done(&self) -> bool {
        self.nodes.iter().all(|n| {
            n.failed.is_some()
                || n.machine.as_ref().is_some_and(|m| m.is_done())
                || n.finished_at.is_some()
        })
    }

    /// Runs until every side is done or `limit` passed: the first side of
    /// every pairing starts at once, the second ones [`HEAD_START`] later.
    fn run(mut self, limit: Duration) -> Crowd {
        let begin = self.now;
        let second_start = begin + HEAD_START;
        for k in 0..self.codes.len() {
            self.start(2 * k);
            self.at(second_start, What::Start(2 * k + 1));
        }
        let end = begin + limit;
        while !self.done() {
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| n.busy_until.is_none())
                .filter_map(|n| n.machine.as_ref()?.poll_timeout())
                .min();
            let next_event = self.queue.peek().map(|Reverse(s)| s.at);
            let Some(next) = [next_timer, next_event].into_iter().flatten().min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            while self.queue.peek().is_some_and(|Reverse(s)| s.at <= self.now) {
                let Reverse(s) = self.queue.pop().expect("peeked");
                match s.what {
                    What::Start(i) => self.start(i),
                    What::Deliver { to, from, datagram } => {
                        if let Some(until) = self.nodes[to].busy_until {
                            // Queued in the socket until the driver is back.
                            self.at(until, What::Deliver { to, from, datagram });
                            continue;
                        }
                        if let Some(m) = self.nodes[to].machine.as_mut() {
                            m.handle_datagram(self.now, from, &datagram);
                        }
                        self.pump(to);
                    }
                    What::Checked {
                        node,
                        peer,
                        reachable,
                    } => {
                        self.nodes[node].busy_until = None;
                        if let Some(m) = self.nodes[node].machine.as_mut() {
                            if reachable {
                                m.accept(self.now, peer);
                            } else {
                                m.refuse(self.now, peer, "sshd unreachable");
                                self.nodes[node].failed = Some("the peer's sshd did not answer");
                            }
                        }
                        self.pump(node);
                    }
                }
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].busy_until.is_some() {
                    continue;
                }
                let now = self.now;
                if let Some(m) = self.nodes[i].machine.as_mut() {
                    if m.poll_timeout().is_some_and(|t| t <= now) {
                        m.handle_timeout(now);
                    }
                }
                self.pump(i);
            }
        }
        let ids: Vec<Option<SessionId>> = self
            .nodes
            .iter()
            .map(|n| n.machine.as_ref().map(|m| m.session_id()))
            .collect();
        let mut crowd = Crowd {
            took: None,
            right: 0,
            wrong: 0,
            sharing_channel: sharing_channel(&self.codes),
            failure: None,
        };
        let mut last = second_start;
        for k in 0..self.codes.len() {
            let (x, y) = (&self.nodes[2 * k], &self.nodes[2 * k + 1]);
            for (n, partner) in [(x, 2 * k + 1), (y, 2 * k)] {
                if n.verified_with.is_some() && n.verified_with != ids[partner] {
                    crowd.wrong += 1;
                }
            }
            let right = x.verified_with.is_some()
                && x.verified_with == ids[2 * k + 1]
                && y.verified_with == ids[2 * k];
            match (right, x.finished_at, y.finished_at) {
                (true, Some(a), Some(b)) => {
                    crowd.right += 1;
                    last = last.max(a).max(b);
                }
                _ => {
                    crowd.failure.get_or_insert(
                        x.failed
                            .or(y.failed)
                            .unwrap_or("not finished within the time limit"),
                    );
                }
            }
        }
        if crowd.right == self.codes.len() {
            crowd.took = Some(last - second_start);
        }
        crowd
    }
}

/// Pairings whose channel number another pairing of `codes` also has.
fn sharing_channel(codes: &[String]) -> usize {
    let channel = |c: &String| c.split('-').next().unwrap_or_default().to_owned();
    codes
        .iter()
        .filter(|c| codes.iter().filter(|d| channel(d) == channel(c)).count() > 1)
        .count()
}

/// The outcome of simulated simultaneous pairings.
#[derive(Debug, Clone, Copy)]
pub struct Crowd {
    /// From the second sides' start until every side finished, when every
    /// pairing paired right.
    pub took: Option<Duration>,
    pub right: usize,
    /// Sides verified with somebody else's partner (must be 0).
    pub wrong: usize,
    pub sharing_channel: usize,
    /// Why the first pairing that did not pair failed.
    pub failure: Option<&'static str>,
}

fn seed_of(seed: u64, run: u64) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(run)
}

/// Runs `runs` simulated pairings under `imp`, seeded from `seed`; each gets
/// two minutes of virtual time.
pub fn time_to_pair(imp: Impairment, runs: usize, seed: u64) -> Vec<Run> {
    (0..runs as u64)
        .map(|r| {
            let c = Sim::new(seed_of(seed, r), imp, 1).run(Duration::from_secs(120));
            match c.took {
                Some(took) => Run::Paired(took),
                None => Run::Failed(c.failure.unwrap_or("not finished within the time limit")),
            }
        })
        .collect()
}

/// `runs` trials of `k` simultaneous pairings with random codes on one
/// unimpaired simulated LAN: how often channel numbers collide, and what
/// that does.
pub fn crowds(k: usize, runs: usize, seed: u64) -> Vec<Crowd> {
    let imp = Impairment {
        loss: 0.0,
        duplicate: 0.0,
        delay: LAN_HOP,
        jitter: Duration::ZERO,
    };
    (0..runs as u64)
        .map(|r| Sim::new(seed_of(seed, r), imp, k).run(Duration::from_secs(120)))
        .collect()
}

/// How long two hosts that have never talked take to learn each other's link-layer address
/// when frames are lost, ARP and neighbour discovery included: the floor the kernel's 1 s
/// neighbour retransmission sets for the first unicast exchange of a pairing.
///
/// The model follows Linux: a host with a packet for an unknown neighbour queues it and sends a
/// request at once, then every `retrans_time` (1 s); a request that arrives teaches its sender's
/// address to the receiver (which can then send at once) and is answered; an answer that arrives
/// teaches the requester. Both hosts start at the same moment (each has something to send to
/// the other), each frame is lost with probability `loss`.
#[derive(Debug, Clone, Copy)]
pub struct NeighbourFloor {
    pub trials: usize,
    /// One address family (ARP for IPv4, or neighbour discovery for IPv6): share of trials in
    /// which both hosts know each other only after the first retransmission (≥ 1 s)...
    pub one_family_1s: f64,
    /// ...and after the second (≥ 2 s).
    pub one_family_2s: f64,
    /// Two families resolved independently, whichever completes first (≥ 1 s, ≥ 2 s).
    pub either_family_1s: f64,
    pub either_family_2s: f64,
}

/// Rounds (each `retrans_time` apart) until both hosts know each other, over one family.
fn resolution_rounds(rng: &mut ChaCha20Rng, loss: f64) -> u32 {
    let lost = |rng: &mut ChaCha20Rng| (rng.next_u64() as f64 / u64::MAX as f64) < loss;
    let (mut a_knows_b, mut b_knows_a) = (false, false);
    for round in 0..16 {
        // Requests of this round, from whoever does not know the other yet.
        let a_asks = !a_knows_b;
        let b_asks = !b_knows_a;
        if a_asks && !lost(rng) {
            b_knows_a = true;
            if !lost(rng) {
                a_knows_b = true;
            }
        }
        if b_asks && !lost(rng) {
            a_knows_b = true;
            if !lost(rng) {
                b_knows_a = true;
            }
        }
        if a_knows_b && b_knows_a {
            return round;
        }
    }
    16
}

pub fn neighbour_floor(loss: f64, trials: usize, seed: u64) -> NeighbourFloor {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (mut one1, mut one2, mut either1, mut either2) = (0, 0, 0, 0);
    for _ in 0..trials {
        let v4 = resolution_rounds(&mut rng, loss);
        let v6 = resolution_rounds(&mut rng, loss);
        one1 += usize::from(v4 >= 1);
        one2 += usize::from(v4 >= 2);
        either1 += usize::from(v4.min(v6) >= 1);
        either2 += usize::from(v4.min(v6) >= 2);
    }
    let share = |n: usize| n as f64 / trials as f64;
    NeighbourFloor {
        trials,
        one_family_1s: share(one1),
        one_family_2s: share(one2),
        either_family_1s: share(either1),
        either_family_2s: share(either2),
    }
}
