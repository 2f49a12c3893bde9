//! What `git pair refresh` does on the network, free of I/O: when to send which query where,
//! and which answers to accept.
//!
//! One seeker looks for several pairings at once (each a *target*, with its own keys). A round
//! sends every target that is still missing a query with a fresh nonce, by multicast and to each
//! `--peer` host, at once and then after the delays in [`ROUNDS`], then every
//! [`ROUND_EVERY`]. From [`SCAN_AFTER`] on, every address of the local IPv4 subnets is sent the
//! current queries by unicast, one address every [`SCAN_PACE`], for networks that drop
//! multicast (as pairing does). An answer is accepted only for a target still missing, under
//! that target's keys, and only when it binds one of the last [`MAX_NONCES`] nonces sent for it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rand_core::{CryptoRng, RngCore};

use super::{encode_query, open_answer, Answer, LocateKeys, Nonce};
use crate::protocol::machine::{Destination, Transmit};

/// Delays of the first rounds after the start; later rounds come every [`ROUND_EVERY`].
pub const ROUNDS: [Duration; 4] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(1000),
    Duration::from_millis(2000),
];
/// The interval between rounds after [`ROUNDS`].
pub const ROUND_EVERY: Duration = Duration::from_secs(2);
/// When the unicast probe of the local subnets starts, if a target is still missing.
pub const SCAN_AFTER: Duration = Duration::from_millis(1500);
/// One probed address every so often.
pub const SCAN_PACE: Duration = Duration::from_millis(4);
/// The probe of the subnets starts again this long after it started, if still needed.
pub const SCAN_AGAIN: Duration = Duration::from_secs(10);
/// Nonces remembered per target: answers to older queries are refused.
pub const MAX_NONCES: usize = 32;

/// A pairing being looked for.
#[derive(Debug)]
struct Target {
    id: usize,
    keys: LocateKeys,
    nonces: VecDeque<Nonce>,
    /// The query of the current round, for the probe of the subnets.
    current: Option<Vec<u8>>,
    found: bool,
}

/// An authenticated answer for target `id`, from `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub id: usize,
    pub from: SocketAddr,
    pub answer: Answer,
}

/// The state of one refresh on the network.
#[derive(Debug)]
pub struct Seeker<R> {
    targets: Vec<Target>,
    peers: Vec<SocketAddr>,
    scan: Vec<SocketAddr>,
    started: Instant,
    rounds_sent: usize,
    next_round: Instant,
    /// Index of the next address to probe, and when.
    scan_next: Option<(usize, Instant)>,
    scan_started: Option<Instant>,
    transmits: VecDeque<Transmit>,
    sent: u64,
    rng: R,
}

impl<R: RngCore + CryptoRng> Seeker<R> {
    /// Starts looking for `targets` (`(id, keys)`); the first round is due at once.
    pub fn new(
        targets: Vec<(usize, LocateKeys)>,
        peers: Vec<SocketAddr>,
        scan: Vec<SocketAddr>,
        now: Instant,
        rng: R,
    ) -> Seeker<R> {
        let mut seeker = Seeker {
            targets: targets
                .into_iter()
                .map(|(id, keys)| Target {
                    id,
                    keys,
                    nonces: VecDeque::with_capacity(MAX_NONCES),
                    current: None,
                    found: false,
                })
                .collect(),
            peers,
            scan,
            started: now,
            rounds_sent: 0,
            next_round: now,
            scan_next: None,
            scan_started: None,
            transmits: VecDeque::new(),
            sent: 0,
            rng,
        };
        seeker.handle_timeout(now);
        seeker
    }

    /// Targets still missing.
    pub fn missing(&self) -> usize {
        self.targets.iter().filter(|t| !t.found).count()
    }

    /// Datagrams handed out so far (a multicast one counts once).
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        let t = self.transmits.pop_front()?;
        self.sent += 1;
        Some(t)
    }

    /// When [`Seeker::handle_timeout`] is next due; `None` once every target was found.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.missing() == 0 {
            return None;
        }
        let scan = match (self.scan_next, self.scan_started) {
            _ if self.scan.is_empty() => None,
            (Some((_, at)), _) => Some(at),
            (None, None) => Some(self.started + SCAN_AFTER),
            (None, Some(at)) => Some(at + SCAN_AGAIN),
        };
        Some(scan.map_or(self.next_round, |at| at.min(self.next_round)))
    }

    /// Sends what is due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.missing() == 0 {
            return;
        }
        if now >= self.next_round {
            self.round();
            self.next_round = now
                + ROUNDS
                    .get(self.rounds_sent - 1)
                    .copied()
                    .unwrap_or(ROUND_EVERY);
        }
        let elapsed = now.saturating_duration_since(self.started);
        let scan_due = match self.scan_started {
            None => elapsed >= SCAN_AFTER,
            Some(at) => self.scan_next.is_none() && now >= at + SCAN_AGAIN,
        };
        if scan_due && !self.scan.is_empty() {
            self.scan_started = Some(now);
            self.scan_next = Some((0, now));
        }
        while let Some((i, at)) = self.scan_next {
            if at > now {
                break;
            }
            let to = self.scan[i];
            for t in self.targets.iter().filter(|t| !t.found) {
                if let Some(q) = &t.current {
                    self.transmits.push_back(Transmit {
                        destination: Destination::Unicast(to),
                        datagram: q.clone(),
                    });
                }
            }
            self.scan_next = (i + 1 < self.scan.len()).then(|| (i + 1, at + SCAN_PACE));
        }
    }

    fn round(&mut self) {
        self.rounds_sent += 1;
        for t in self.targets.iter_mut().filter(|t| !t.found) {
            let mut nonce = [0u8; 16];
            self.rng.fill_bytes(&mut nonce);
            if t.nonces.len() == MAX_NONCES {
                t.nonces.pop_front();
            }
            t.nonces.push_back(nonce);
            let q = encode_query(&t.keys, &nonce).to_vec();
            self.transmits.push_back(Transmit {
                destination: Destination::Multicast,
                datagram: q.clone(),
            });
            for p in &self.peers {
                self.transmits.push_back(Transmit {
                    destination: Destination::Unicast(*p),
                    datagram: q.clone(),
                });
            }
            t.current = Some(q);
        }
    }

    /// A datagram from `from`: an answer for a missing target, authenticated and binding one of
    /// its nonces, or `None`. The target then counts as found and gets no more queries.
    pub fn handle_datagram(&mut self, from: SocketAddr, datagram: &[u8]) -> Option<Found> {
        for t in self.targets.iter_mut().filter(|t| !t.found) {
            let nonces: Vec<Nonce> = t.nonces.iter().copied().collect();
            if let Ok(answer) = open_answer(&t.keys, datagram, &nonces) {
                t.found = true;
                return Some(Found {
                    id: t.id,
                    from,
                    answer,
                });
            }
        }
        None
    }

    /// Looks for target `id` again (its answer led nowhere): its next queries go out with the
    /// next round.
    pub fn retry(&mut self, id: usize) {
        if let Some(t) = self.targets.iter_mut().find(|t| t.id == id) {
            t.found = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode_answer, parse_query};
    use super::*;
    use crate::protocol::schedule::{PairSecret, Role};
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn keys(byte: u8, role: Role) -> LocateKeys {
        LocateKeys::derive(&PairSecret::from_bytes([byte; 32]), role)
    }

    fn seeker(now: Instant, scan: Vec<SocketAddr>) -> Seeker<ChaCha20Rng> {
        Seeker::new(
            vec![(0, keys(1, Role::Low)), (1, keys(2, Role::High))],
            vec!["10.9.9.9:28621".parse().unwrap()],
            scan,
            now,
            ChaCha20Rng::seed_from_u64(7),
        )
    }

    fn drain(s: &mut Seeker<ChaCha20Rng>) -> Vec<Transmit> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    fn answer_to(q: &[u8], watcher: &LocateKeys) -> Vec<u8> {
        let nonce = parse_query(q).unwrap().nonce;
        encode_answer(
            watcher,
            &Answer {
                nonce,
                ssh_port: 22,
                addresses: vec!["10.0.0.7".parse().unwrap()],
            },
        )
    }

    #[test]
    fn the_first_round_goes_out_at_once_by_multicast_and_to_each_peer() {
        let t0 = Instant::now();
        let mut s = seeker(t0, Vec::new());
        let sent = drain(&mut s);
        assert_eq!(sent.len(), 4, "two targets, multicast and one peer each");
        assert_eq!(sent[0].destination, Destination::Multicast);
        assert_eq!(
            sent[1].destination,
            Destination::Unicast("10.9.9.9:28621".parse().unwrap())
        );
        assert_eq!(sent[0].datagram, sent[1].datagram);
        assert_ne!(sent[0].datagram, sent[2].datagram);
        assert_eq!(s.poll_timeout(), Some(t0 + ROUNDS[0]));
    }

    #[test]
    fn rounds_back_off_and_each_has_a_fresh_nonce() {
        let t0 = Instant::now();
        let mut s = seeker(t0, Vec::new());
        let mut nonces = vec![parse_query(&drain(&mut s)[0].datagram).unwrap().nonce];
        let mut at = t0;
        for delay in ROUNDS.iter().chain([ROUND_EVERY, ROUND_EVERY].iter()) {
            at += *delay;
            assert_eq!(s.poll_timeout(), Some(at));
            s.handle_timeout(at);
            let sent = drain(&mut s);
            assert_eq!(sent.len(), 4);
            let n = parse_query(&sent[0].datagram).unwrap().nonce;
            assert!(!nonces.contains(&n));
            nonces.push(n);
        }
    }

    #[test]
    fn only_an_authenticated_answer_to_a_recent_query_is_accepted() {
        let t0 = Instant::now();
        let mut s = seeker(t0, Vec::new());
        let sent = drain(&mut s);
        let from: SocketAddr = "10.0.0.7:40000".parse().unwrap();
        // Target 1's watcher holds the opposite role of the seeker's.
        let watcher = keys(2, Role::Low);
        // An impostor without the secret; the seeker's own query echoed back.
        assert_eq!(
            s.handle_datagram(from, &answer_to(&sent[2].datagram, &keys(3, Role::Low))),
            None
        );
        assert_eq!(s.handle_datagram(from, &sent[2].datagram), None);
        // An answer for a nonce this seeker never sent (an old answer, replayed).
        let old = encode_answer(
            &watcher,
            &Answer {
                nonce: [0xee; 16],
                ssh_port: 22,
                addresses: vec![],
            },
        );
        assert_eq!(s.handle_datagram(from, &old), None);
        let good = answer_to(&sent[2].datagram, &watcher);
        let found = s.handle_datagram(from, &good).unwrap();
        assert_eq!((found.id, found.from, found.answer.ssh_port), (1, from, 22));
        assert_eq!(s.missing(), 1);
        // Found targets get no more queries, and the same answer again is not news.
        assert_eq!(s.handle_datagram(from, &good), None);
        s.handle_timeout(t0 + ROUNDS[0]);
        assert_eq!(drain(&mut s).len(), 2);
        s.retry(1);
        s.handle_timeout(t0 + ROUNDS[0] + ROUNDS[1]);
        assert_eq!(drain(&mut s).len(), 4);
    }

    #[test]
    fn answers_to_queries_older_than_the_remembered_nonces_are_refused() {
        let t0 = Instant::now();
        let mut s = seeker(t0, Vec::new());
        let first = drain(&mut s)[0].datagram.clone();
        let mut at = t0;
        for _ in 0..MAX_NONCES {
            at = s.poll_timeout().unwrap();
            s.handle_timeout(at);
            drain(&mut s);
        }
        let from: SocketAddr = "10.0.0.7:40000".parse().unwrap();
        assert_eq!(
            s.handle_datagram(from, &answer_to(&first, &keys(1, Role::High))),
            None
        );
        assert!(at > t0);
    }

    #[test]
    fn the_subnet_probe_starts_late_is_paced_and_stops_when_all_are_found() {
        let t0 = Instant::now();
        let scan: Vec<SocketAddr> = (1..=10)
            .map(|i| format!("10.0.0.{i}:28621").parse().unwrap())
            .collect();
        let mut s = seeker(t0, scan.clone());
        drain(&mut s);
        let mut now = t0;
        let mut probed = Vec::new();
        while now < t0 + SCAN_AFTER + SCAN_PACE * 10 {
            now = s.poll_timeout().unwrap();
            s.handle_timeout(now);
            for t in drain(&mut s) {
                if let Destination::Unicast(a) = t.destination {
                    if scan.contains(&a) {
                        assert!(now >= t0 + SCAN_AFTER);
                        probed.push(a);
                    }
                }
            }
        }
        // Two missing targets: each address gets both queries.
        assert_eq!(probed.len(), 20);
        let from: SocketAddr = "10.0.0.7:1".parse().unwrap();
        let mut at = now;
        at += ROUND_EVERY;
        s.handle_timeout(at);
        let sent = drain(&mut s);
        for (i, watcher) in [(0, keys(1, Role::High)), (2, keys(2, Role::Low))] {
            assert!(s
                .handle_datagram(from, &answer_to(&sent[i].datagram, &watcher))
                .is_some());
        }
        assert_eq!(s.missing(), 0);
        assert_eq!(s.poll_timeout(), None);
        s.handle_timeout(at + SCAN_AGAIN * 2);
        assert!(drain(&mut s).is_empty());
    }
}
