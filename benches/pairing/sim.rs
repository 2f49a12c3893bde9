//! Time to pair over a simulated LAN in virtual time: the real protocol
//! machine (`git_pair::protocol::Machine`) on both sides, wired through an
//! in-memory network that delays, jitters (and so reorders), loses and
//! duplicates frames. The kernel here has no netem, so delay, reordering
//! and duplication cannot be made on the namespace LAN; this is how the
//! benchmark measures them.
//!
//! What the simulation leaves out, and what it models:
//! - CPU time is not counted (virtual time stands still while a machine
//!   computes); the crypto micro-benchmarks give it: well under 1 ms per run.
//! - Every host has an IPv4 and an IPv6 address, as on the namespace LAN: a
//!   multicast datagram goes out once per family (the transport sends on both
//!   groups), and each copy is lost on its own.
//! - With [`Impairment::neighbours`], neighbour resolution is modelled as
//!   Linux does it, from cold caches: a unicast frame to a host whose
//!   link-layer address is unknown waits while a request goes out at once and
//!   again every second (three in all, then the waiting frames are dropped); a
//!   request that arrives teaches the asked host the asker's address, and its
//!   answer teaches the asker. Requests and answers are lost like any frame.
//!   IPv4 (ARP) and IPv6 (neighbour discovery) are resolved independently.
//!   As the transport does (`transport::neighbour`), a datagram to a host not
//!   yet resolved [`MIRROR_AFTER`] after the first datagram to it is also sent
//!   to the group on that family (everyone hears it), then or at that moment.
//!   Without it, every neighbour is known (warm caches, ARP spared).
//! - The driver's check of the peer's sshd is modelled as the TCP
//!   connections that `transport::probe` makes to the peer's addresses of
//!   both families: one each at once and at each of its `retry_after` (paced
//!   by the machine's retransmission timeout for the peer); the
//!   kernel sends each connection's SYN again after 1 s and 3 s; SYN and
//!   SYN-ACK are frames like any other (lost, and waiting for neighbour
//!   resolution). The first connection to complete ends the check. Like the
//!   real driver, a side checking the peer's sshd handles no datagram and no
//!   timer until the check is done.
//! - Setup (files, git config) takes no time here; the namespace benchmark
//!   measures it for real.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use git_pair::protocol::codec::{End, SessionId};
use git_pair::protocol::payload::Payload;
use git_pair::protocol::{Code, Config, Destination, Event, Machine};
use git_pair::transport::neighbour::MIRROR_AFTER;
use git_pair::transport::probe;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// How the simulated LAN treats each frame, in each direction.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    pub loss: f64,
    pub duplicate: f64,
    /// Every frame takes `delay` plus a uniform share of `jitter`;
    /// frames sent closer together than the jitter arrive reordered.
    pub delay: Duration,
    pub jitter: Duration,
    /// Neighbour caches start cold and resolution frames (ARP, neighbour
    /// discovery) are lost like the others; otherwise every neighbour is known.
    pub neighbours: bool,
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
const PROBE_TIMEOUT: Duration = Duration::from_secs(6);
/// Linux's `retrans_time_ms`: a neighbour request is sent again after this...
const NEIGH_RETRANS: Duration = Duration::from_secs(1);
/// ...this many times in all (`mcast_solicit`), then the waiting frames are dropped.
const NEIGH_PROBES: u32 = 3;

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

/// An address family: each has its own addresses and its own neighbour resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Family {
    V4,
    V6,
}

const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

/// A unicast frame between two hosts, as the neighbour layer carries it.
#[derive(Debug, Clone)]
enum Frame {
    /// A datagram from the sender's address of the family.
    Datagram(Vec<u8>),
    /// A SYN of the sshd check `check`.
    Syn { check: usize },
    /// The answer to a SYN.
    SynAck { check: usize },
}

enum What {
    Start(usize),
    /// A frame arrives at `to` from `from` over `family`.
    Arrive {
        to: usize,
        from: usize,
        family: Family,
        frame: Frame,
    },
    /// A multicast datagram arrives at `to`.
    Multicast {
        to: usize,
        from: SocketAddr,
        datagram: Vec<u8>,
    },
    /// A neighbour request from `asker` arrives at `asked`.
    NeighRequest {
        asker: usize,
        asked: usize,
        family: Family,
    },
    /// The answer to a neighbour request arrives at `asker`.
    NeighReply {
        asker: usize,
        asked: usize,
        family: Family,
    },
    /// `asker` sends its neighbour request for `asked` again, if still unanswered.
    NeighRetry {
        asker: usize,
        asked: usize,
        family: Family,
    },
    /// The sshd check `check` starts a fresh connection to each family, or its kernel sends
    /// a SYN again.
    SendSyn {
        check: usize,
        family: Family,
    },
    /// The sshd check `check` gives up.
    CheckTimeout {
        check: usize,
    },
    /// The transport's moment to copy a datagram from `from` to `to` by multicast, if `from`
    /// has still not resolved `to` over `family`.
    MirrorDue {
        from: usize,
        to: usize,
        family: Family,
        datagram: Vec<u8>,
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

/// What a host knows of another's link-layer address over one family.
#[derive(Debug, Default)]
struct Neighbour {
    known: bool,
    /// Requests sent in the current resolution (0: none under way).
    probes: u32,
    /// Frames waiting for the resolution.
    queue: Vec<Frame>,
    /// When the transport first sent a datagram there (its copies by multicast start
    /// [`MIRROR_AFTER`] later).
    since: Option<Instant>,
}

/// One check of a peer's sshd, from `client` to `server`.
struct Check {
    client: usize,
    server: usize,
    peer: SessionId,
    done: bool,
}

struct Node {
    machine: Option<Machine<ChaCha20Rng>>,
    v4: SocketAddr,
    v6: SocketAddr,
    payload: Vec<u8>,
    /// Busy checking the peer's sshd: nothing else runs.
    busy: bool,
    /// Datagrams that arrived while busy, handled once the check is done.
    backlog: Vec<(SocketAddr, Vec<u8>)>,
    verified_with: Option<SessionId>,
    finished_at: Option<Instant>,
    failed: Option<&'static str>,
}

impl Node {
    fn addr(&self, family: Family) -> SocketAddr {
        match family {
            Family::V4 => self.v4,
            Family::V6 => self.v6,
        }
    }
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
    /// (host, neighbour, family).
    neighbours: HashMap<(usize, usize, Family), Neighbour>,
    checks: Vec<Check>,
    /// Which node has which address.
    by_addr: HashMap<SocketAddr, (usize, Family)>,
    tracing: bool,
    /// Datagrams sent by the machines (a multicast once per family and listener).
    sent: usize,
    begin: Instant,
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
        let nodes: Vec<Node> = (0..2 * k)
            .map(|i| Node {
                machine: None,
                v4: SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::new(10, 0, (i / 250) as u8, (i % 250) as u8 + 1),
                    40000,
                )),
                v6: SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i as u16 + 1),
                    40000,
                    0,
                    2,
                )),
                payload: payload(&format!("user{i}")),
                busy: false,
                backlog: Vec::new(),
                verified_with: None,
                finished_at: None,
                failed: None,
            })
            .collect();
        let by_addr = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| [(n.v4, (i, Family::V4)), (n.v6, (i, Family::V6))])
            .collect();
        let now = Instant::now();
        Sim {
            tracing: std::env::var("GP_SIM_TRACE")
                .is_ok_and(|t| t.split(',').any(|t| t.trim() == seed.to_string())),
            begin: now,
            now,
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            imp,
            nodes,
            codes,
            neighbours: HashMap::new(),
            checks: Vec::new(),
            by_addr,
            sent: 0,
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

    /// Puts one frame on the simulated wire: lost, duplicated, delayed.
    fn wire(&mut self, what: impl Fn() -> What) {
        if self.chance(self.imp.loss) {
            if self.tracing {
                let w = match what() {
                    What::Arrive {
                        to,
                        frame: Frame::Datagram(_),
                        ..
                    } => format!("datagram to {to}"),
                    What::Arrive { to, frame, .. } => format!("{frame:?} to {to}"),
                    What::Multicast { to, .. } => format!("multicast to {to}"),
                    What::NeighRequest { asked, .. } => format!("neigh request to {asked}"),
                    What::NeighReply { asker, .. } => format!("neigh reply to {asker}"),
                    _ => String::new(),
                };
                self.trace(format_args!("   lost {w}"));
            }
            return;
        }
        let copies = if self.chance(self.imp.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let at = self.now + self.one_way();
            self.at(at, what());
        }
    }

    /// A unicast frame from `from` to `to` over `family`, through the neighbour layer.
    fn unicast(&mut self, from: usize, to: usize, family: Family, frame: Frame) {
        if !self.imp.neighbours {
            self.wire(|| What::Arrive {
                to,
                from,
                family,
                frame: frame.clone(),
            });
            return;
        }
        let n = self.neighbours.entry((from, to, family)).or_default();
        if n.known {
            self.wire(|| What::Arrive {
                to,
                from,
                family,
                frame: frame.clone(),
            });
            return;
        }
        let mirror = match &frame {
            Frame::Datagram(d) => {
                let due = *n.since.get_or_insert(self.now) + MIRROR_AFTER;
                Some((due, d.clone()))
            }
            _ => None,
        };
        n.queue.push(frame);
        if n.probes == 0 {
            self.neigh_request(from, to, family);
        }
        match mirror {
            Some((due, datagram)) if due <= self.now => self.mirror(from, family, &datagram),
            Some((due, datagram)) => self.at(
                due,
                What::MirrorDue {
                    from,
                    to,
                    family,
                    datagram,
                },
            ),
            None => {}
        }
    }

    /// The transport's copy of a datagram from `from` to the group of `family`: every other
    /// host hears it.
    fn mirror(&mut self, from: usize, family: Family, datagram: &[u8]) {
        self.trace(format_args!("{from} -> copy by multicast ({family:?})"));
        let src = self.nodes[from].addr(family);
        self.sent += self.nodes.len() - 1;
        for j in (0..self.nodes.len()).filter(|&j| j != from) {
            self.wire(|| What::Multicast {
                to: j,
                from: src,
                datagram: datagram.to_vec(),
            });
        }
    }

    fn neigh_request(&mut self, asker: usize, asked: usize, family: Family) {
        self.neighbours
            .entry((asker, asked, family))
            .or_default()
            .probes += 1;
        self.wire(|| What::NeighRequest {
            asker,
            asked,
            family,
        });
        let at = self.now + NEIGH_RETRANS;
        self.at(
            at,
            What::NeighRetry {
                asker,
                asked,
                family,
            },
        );
    }

    /// `host` learns `neighbour`'s link-layer address: what waited goes out.
    fn neigh_known(&mut self, host: usize, neighbour: usize, family: Family) {
        let n = self
            .neighbours
            .entry((host, neighbour, family))
            .or_default();
        n.known = true;
        n.probes = 0;
        for frame in std::mem::take(&mut n.queue) {
            self.wire(|| What::Arrive {
                to: neighbour,
                from: host,
                family,
                frame: frame.clone(),
            });
        }
    }

    fn start(&mut self, i: usize) {
        let config = Config {
            code: Code::parse(&self.codes[i / 2]).expect("a generated code parses"),
            payload: self.nodes[i].payload.clone(),
            peers: Vec::new(),
            scan: Vec::new(),
            proof_secrets: Vec::new(),
            // The first side of each pairing shows the code it generated; the second types it.
            generated: i % 2 == 0,
        };
        let rng = ChaCha20Rng::seed_from_u64(self.rng.next_u64());
        let machine = Machine::new(config, self.now, rng).expect("the payload fits");
        self.nodes[i].machine = Some(machine);
        self.pump(i);
    }

    /// Starts node `i`'s check of `server`'s sshd: a connection to its first family, to the second a moment later ([`probe::stagger`]), and
    /// fresh ones at each of the probe's `retry_after`; the kernel resends each one's SYN.
    fn start_check(&mut self, i: usize, server: usize, peer: SessionId) {
        let unit = self.nodes[i]
            .machine
            .as_ref()
            .and_then(|m| m.retransmit_timeout(&peer))
            .unwrap_or(probe::DEFAULT_RETRY);
        let check = self.checks.len();
        self.checks.push(Check {
            client: i,
            server,
            peer,
            done: false,
        });
        self.nodes[i].busy = true;
        let starts: Vec<Duration> = std::iter::once(Duration::ZERO)
            .chain(probe::retry_after(unit))
            .collect();
        for start in starts {
            for resend in SYN_SENT_AT {
                for family in FAMILIES {
                    // The first family alone for a moment (a connection that answers spares the
                    // others); the retries go to both at once.
                    let late = if start.is_zero() && family != FAMILIES[0] {
                        probe::stagger(unit)
                    } else {
                        Duration::ZERO
                    };
                    let at = start + resend + late;
                    if at < PROBE_TIMEOUT {
                        let when = self.now + at;
                        self.at(when, What::SendSyn { check, family });
                    }
                }
            }
        }
        let timeout = self.now + PROBE_TIMEOUT;
        self.at(timeout, What::CheckTimeout { check });
    }

    /// The check is over: the node handles what queued meanwhile and goes on.
    fn end_check(&mut self, check: usize, reachable: bool) {
        if self.checks[check].done {
            return;
        }
        self.trace(format_args!(
            "{} check done {reachable}",
            self.checks[check].client
        ));
        self.checks[check].done = true;
        let (node, peer) = (self.checks[check].client, self.checks[check].peer);
        self.nodes[node].busy = false;
        let now = self.now;
        if let Some(m) = self.nodes[node].machine.as_mut() {
            if reachable {
                m.accept(now, peer);
            } else {
                m.refuse(now, peer, "sshd unreachable");
                self.nodes[node].failed = Some("the peer's sshd did not answer");
            }
        }
        self.pump(node);
        for (from, datagram) in std::mem::take(&mut self.nodes[node].backlog) {
            self.deliver(node, from, &datagram);
        }
    }

    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.tracing {
            let t = self.now.saturating_duration_since(self.begin);
            eprintln!("{:>9.3} ms {what}", t.as_secs_f64() * 1e3);
        }
    }

    /// A datagram reaches node `to`'s socket.
    fn deliver(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        if self.tracing {
            let kind = git_pair::protocol::codec::decode(datagram)
                .map(|m| format!("{m:?}"))
                .unwrap_or_default();
            let kind: String = kind.chars().take(140).collect();
            self.trace(format_args!(
                "{to} <- {from} {}{kind}",
                if self.nodes[to].busy { "(busy) " } else { "" }
            ));
        }
        if self.nodes[to].busy {
            // Queued in the socket until the driver is back.
            self.nodes[to].backlog.push((from, datagram.to_vec()));
            return;
        }
        let now = self.now;
        if let Some(m) = self.nodes[to].machine.as_mut() {
            m.handle_datagram(now, from, datagram);
        }
        self.pump(to);
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
            for t in out {
                if self.tracing {
                    let kind = git_pair::protocol::codec::decode(&t.datagram)
                        .map(|m| format!("{m:?}"))
                        .unwrap_or_default();
                    let kind: String = kind.chars().take(110).collect();
                    self.trace(format_args!("{i} -> {:?} {kind}", t.destination));
                }
                self.sent += match t.destination {
                    Destination::Multicast => 2 * (self.nodes.len() - 1),
                    Destination::Unicast(_) => 1,
                };
                match t.destination {
                    // Everyone else hears the multicast, once per family.
                    Destination::Multicast => {
                        for j in (0..self.nodes.len()).filter(|&j| j != i) {
                            for family in FAMILIES {
                                let from = self.nodes[i].addr(family);
                                self.wire(|| What::Multicast {
                                    to: j,
                                    from,
                                    datagram: t.datagram.clone(),
                                });
                            }
                        }
                    }
                    Destination::Unicast(to) => {
                        if let Some(&(j, family)) = self.by_addr.get(&to) {
                            self.unicast(i, j, family, Frame::Datagram(t.datagram));
                        }
                    }
                }
            }
            for e in events {
                if self.tracing {
                    let d = format!("{e:?}");
                    self.trace(format_args!(
                        "{i} event {}",
                        d.chars().take(100).collect::<String>()
                    ));
                }
                match e {
                    Event::PeerPayload { peer, sources, .. } => {
                        let server = sources
                            .first()
                            .and_then(|a| self.by_addr.get(a))
                            .map(|&(j, _)| j);
                        match server {
                            Some(server) => self.start_check(i, server, peer),
                            None => {
                                self.nodes[i].failed = Some("a payload from nowhere");
                            }
                        }
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

    fn handle(&mut self, what: What) {
        match what {
            What::Start(i) => self.start(i),
            What::Multicast { to, from, datagram } => self.deliver(to, from, &datagram),
            What::Arrive {
                to,
                from,
                family,
                frame,
            } => match frame {
                Frame::Datagram(datagram) => {
                    let from = self.nodes[from].addr(family);
                    self.deliver(to, from, &datagram);
                }
                // Every host runs an sshd; its kernel answers at once.
                Frame::Syn { check } => self.unicast(to, from, family, Frame::SynAck { check }),
                Frame::SynAck { check } => self.end_check(check, true),
            },
            What::NeighRequest {
                asker,
                asked,
                family,
            } => {
                // The request teaches the asked host the asker's address; it answers.
                self.neigh_known(asked, asker, family);
                self.wire(|| What::NeighReply {
                    asker,
                    asked,
                    family,
                });
            }
            What::NeighReply {
                asker,
                asked,
                family,
            } => self.neigh_known(asker, asked, family),
            What::NeighRetry {
                asker,
                asked,
                family,
            } => {
                let n = self.neighbours.entry((asker, asked, family)).or_default();
                if n.known || n.probes == 0 {
                } else if n.probes < NEIGH_PROBES {
                    self.neigh_request(asker, asked, family);
                } else {
                    // Failed: what waited is dropped; the next frame starts again.
                    n.probes = 0;
                    n.queue.clear();
                }
            }
            What::SendSyn { check, family } => {
                if !self.checks[check].done {
                    let (client, server) = (self.checks[check].client, self.checks[check].server);
                    self.unicast(client, server, family, Frame::Syn { check });
                }
            }
            What::CheckTimeout { check } => self.end_check(check, false),
            What::MirrorDue {
                from,
                to,
                family,
                datagram,
            } => {
                let known = self
                    .neighbours
                    .get(&(from, to, family))
                    .is_some_and(|n| n.known);
                if !known {
                    self.mirror(from, family, &datagram);
                }
            }
        }
    }

    /// Runs until every side is done or `limit` passed: the first side of
    /// every pairing starts at once, the second ones [`HEAD_START`] later.
    fn run(mut self, limit: Duration) -> Crowd {
        let begin = self.now;
        let head = std::env::var("GP_SIM_HEAD_START_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(HEAD_START, Duration::from_millis);
        let second_start = begin + head;
        for k in 0..self.codes.len() {
            self.start(2 * k);
            self.at(second_start, What::Start(2 * k + 1));
        }
        let end = begin + limit;
        while !self.done() {
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| !n.busy)
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
                self.handle(s.what);
            }
            for i in 0..self.nodes.len() {
                if self.nodes[i].busy {
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
            datagrams: self.sent,
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
    /// Datagrams the machines sent.
    pub datagrams: usize,
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
    let seed = std::env::var("GP_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(seed);
    (0..runs as u64)
        .map(|r| {
            let c = Sim::new(seed_of(seed, r), imp, 1).run(Duration::from_secs(120));
            if std::env::var("GP_SIM_LIST").is_ok() {
                eprintln!(
                    "seed {} took {:?} datagrams {} failure {:?}",
                    seed_of(seed, r),
                    c.took,
                    c.datagrams,
                    c.failure
                );
            }
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
        neighbours: false,
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
    /// As a pairing has it: the first host asks, and the second asks only if the first one's
    /// request did not arrive (a request that arrives teaches it the asker's address, so it
    /// never asks); whichever of two families completes first (≥ 1 s, ≥ 2 s).
    pub answered_1s: f64,
    pub answered_2s: f64,
}

/// Rounds (each `retrans_time` apart) until both hosts know each other, over one family. With
/// `answered`, the second host decides whether to ask after the first one's request arrived
/// or not (it asks only if it still does not know the first); otherwise both ask at once.
fn resolution_rounds(rng: &mut ChaCha20Rng, loss: f64, answered: bool) -> u32 {
    let lost = |rng: &mut ChaCha20Rng| (rng.next_u64() as f64 / u64::MAX as f64) < loss;
    let (mut a_knows_b, mut b_knows_a) = (false, false);
    for round in 0..16 {
        // Requests of this round, from whoever does not know the other yet.
        let a_asks = !a_knows_b;
        let mut b_asks = !b_knows_a;
        if a_asks && !lost(rng) {
            b_knows_a = true;
            if !lost(rng) {
                a_knows_b = true;
            }
        }
        if answered {
            b_asks = !b_knows_a;
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
    let (mut answered1, mut answered2) = (0, 0);
    for _ in 0..trials {
        let v4 = resolution_rounds(&mut rng, loss, false);
        let v6 = resolution_rounds(&mut rng, loss, false);
        one1 += usize::from(v4 >= 1);
        one2 += usize::from(v4 >= 2);
        either1 += usize::from(v4.min(v6) >= 1);
        either2 += usize::from(v4.min(v6) >= 2);
        let v4 = resolution_rounds(&mut rng, loss, true);
        let v6 = resolution_rounds(&mut rng, loss, true);
        answered1 += usize::from(v4.min(v6) >= 1);
        answered2 += usize::from(v4.min(v6) >= 2);
    }
    let share = |n: usize| n as f64 / trials as f64;
    NeighbourFloor {
        trials,
        one_family_1s: share(one1),
        one_family_2s: share(one2),
        either_family_1s: share(either1),
        either_family_2s: share(either2),
        answered_1s: share(answered1),
        answered_2s: share(answered2),
    }
}
