//! What `git pair watch` does with each datagram, free of I/O.
//!
//! Everyone on the LAN can send a watcher datagrams, so the work one datagram can cause is
//! bounded before any of it is done:
//!
//! 1. Anything that is not exactly a query (length, prefix, type) is dropped at once.
//! 2. Checking a query costs one HMAC per pair secret held (at most
//!    [`MAX_PAIRINGS`]); that work is paid for from one global token bucket
//!    ([`BUCKET_CAPACITY`] HMACs, refilled at [`BUCKET_RATE`] per second). When it is empty,
//!    queries are dropped unchecked. There is no state per sender: a flood from many addresses
//!    costs no more memory than one from a single address.
//! 3. A query that verifies under none of the secrets is dropped.
//! 4. A query whose nonce was answered recently ([`RECENT_NONCES`] of them are kept) is a
//!    replay, or the same query heard twice (by multicast and by unicast): dropped, before the
//!    HMACs.
//!
//! Only then is an answer made, with the same pairing's secret, binding the query's nonce. The
//! memory used is fixed once the pairings are loaded.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{encode_answer, parse_query, verify_query, Answer, LocateKeys, Nonce, MAX_PAIRINGS};
use crate::ssh_files::SecretRecord;

/// The most HMACs the bucket holds: a burst of that much checking is allowed.
pub const BUCKET_CAPACITY: u32 = 2048;
/// HMACs per second the bucket refills with.
pub const BUCKET_RATE: u32 = 1024;
/// Nonces of answered queries remembered, to drop a replayed query.
pub const RECENT_NONCES: usize = 256;

/// One pairing a watcher answers for.
#[derive(Debug)]
struct Pairing {
    alias: String,
    keys: LocateKeys,
    ssh_port: u16,
}

/// A token bucket counted in thousandths of a token, so that it refills smoothly without
/// floating point.
#[derive(Debug, Clone)]
struct Bucket {
    milli: u64,
    last: Instant,
}

impl Bucket {
    const FULL: u64 = BUCKET_CAPACITY as u64 * 1000;

    fn new(now: Instant) -> Bucket {
        Bucket {
            milli: Self::FULL,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last);
        // Whole milliseconds, so that rounding never creates tokens out of nothing.
        let ms = elapsed.as_millis().min(u128::from(u32::MAX)) as u64;
        if ms > 0 {
            self.milli = (self.milli + ms * u64::from(BUCKET_RATE)).min(Self::FULL);
            self.last += Duration::from_millis(ms);
        }
    }

    /// Takes `tokens` if there are that many.
    fn take(&mut self, now: Instant, tokens: u32) -> bool {
        self.refill(now);
        let want = u64::from(tokens) * 1000;
        if self.milli >= want {
            self.milli -= want;
            true
        } else {
            false
        }
    }
}

/// The nonces of the last [`RECENT_NONCES`] answered queries, in a fixed ring.
#[derive(Debug, Clone)]
struct RecentNonces {
    ring: Box<[Nonce; RECENT_NONCES]>,
    len: usize,
    next: usize,
}

impl RecentNonces {
    fn new() -> RecentNonces {
        RecentNonces {
            ring: Box::new([[0; 16]; RECENT_NONCES]),
            len: 0,
            next: 0,
        }
    }

    fn contains(&self, nonce: &Nonce) -> bool {
        self.ring[..self.len].contains(nonce)
    }

    fn insert(&mut self, nonce: Nonce) {
        self.ring[self.next] = nonce;
        self.next = (self.next + 1) % RECENT_NONCES;
        self.len = (self.len + 1).min(RECENT_NONCES);
    }
}

/// Why a datagram got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not a query.
    Malformed,
    /// No pair secret is held: nothing could verify.
    NoPairings,
    /// The token bucket was empty; the query was not checked.
    RateLimited,
    /// A query recently answered, heard again.
    Replayed,
    /// It verified under none of the pair secrets.
    Unauthenticated,
}

/// What to do with one datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send `datagram` back to where the query came from; it is for pairing `alias`.
    Answer {
        alias: String,
        datagram: Vec<u8>,
    },
    Dropped(DropReason),
}

/// Counters of what a watcher did, for its log and its tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub received: u64,
    pub answered: u64,
    pub malformed: u64,
    pub no_pairings: u64,
    pub rate_limited: u64,
    pub replayed: u64,
    pub unauthenticated: u64,
    /// HMACs computed to check queries.
    pub hmacs: u64,
}

impl Stats {
    /// Everything dropped.
    pub fn dropped(&self) -> u64 {
        self.malformed + self.no_pairings + self.rate_limited + self.replayed + self.unauthenticated
    }
}

/// The watcher's state: its pairings, the bucket and the recent nonces.
#[derive(Debug)]
pub struct Responder {
    pairings: Vec<Pairing>,
    bucket: Bucket,
    recent: RecentNonces,
    stats: Stats,
}

impl Responder {
    pub fn new(now: Instant) -> Responder {
        Responder {
            pairings: Vec::new(),
            bucket: Bucket::new(now),
            recent: RecentNonces::new(),
            stats: Stats::default(),
        }
    }

    /// Replaces the pairings answered for. At most [`MAX_PAIRINGS`] are kept (in the given
    /// order); returns how many were left out.
    pub fn set_pairings(
        &mut self,
        records: impl IntoIterator<Item = (String, SecretRecord)>,
    ) -> usize {
        let mut left_out = 0;
        self.pairings.clear();
        for (alias, record) in records {
            if self.pairings.len() == MAX_PAIRINGS {
                left_out += 1;
                continue;
            }
            self.pairings.push(Pairing {
                keys: LocateKeys::derive(&record.secret, record.role),
                ssh_port: record.ssh_port,
                alias,
            });
        }
        left_out
    }

    /// The aliases answered for.
    pub fn aliases(&self) -> Vec<&str> {
        self.pairings.iter().map(|p| p.alias.as_str()).collect()
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Handles one datagram that arrived at `now`. `addresses` gives this machine's current
    /// addresses, best first, for an answer: it is called only for a query that verified, so
    /// that it may look them up afresh (an address that just changed is the point of it all).
    pub fn handle(
        &mut self,
        now: Instant,
        datagram: &[u8],
        addresses: impl FnOnce() -> Vec<IpAddr>,
    ) -> Outcome {
        self.stats.received += 1;
        let outcome = self.decide(now, datagram, addresses);
        let s = &mut self.stats;
        match &outcome {
            Outcome::Answer { .. } => s.answered += 1,
            Outcome::Dropped(DropReason::Malformed) => s.malformed += 1,
            Outcome::Dropped(DropReason::NoPairings) => s.no_pairings += 1,
            Outcome::Dropped(DropReason::RateLimited) => s.rate_limited += 1,
            Outcome::Dropped(DropReason::Replayed) => s.replayed += 1,
            Outcome::Dropped(DropReason::Unauthenticated) => s.unauthenticated += 1,
        }
        outcome
    }

    fn decide(
        &mut self,
        now: Instant,
        datagram: &[u8],
        addresses: impl FnOnce() -> Vec<IpAddr>,
    ) -> Outcome {
        let Some(query) = parse_query(datagram) else {
            return Outcome::Dropped(DropReason::Malformed);
        };
        if self.pairings.is_empty() {
            return Outcome::Dropped(DropReason::NoPairings);
        }
        // Only verified nonces are remembered, so this costs an attacker nothing it could use.
        if self.recent.contains(&query.nonce) {
            return Outcome::Dropped(DropReason::Replayed);
        }
        let cost = self.pairings.len() as u32;
        if !self.bucket.take(now, cost) {
            return Outcome::Dropped(DropReason::RateLimited);
        }
        let mut hmacs = 0;
        let found = self.pairings.iter().find(|p| {
            hmacs += 1;
            verify_query(&p.keys, &query)
        });
        self.stats.hmacs += hmacs;
        let Some(pairing) = found else {
            return Outcome::Dropped(DropReason::Unauthenticated);
        };
        self.recent.insert(query.nonce);
        let answer = Answer {
            nonce: query.nonce,
            ssh_port: pairing.ssh_port,
            addresses: addresses(),
        };
        Outcome::Answer {
            alias: pairing.alias.clone(),
            datagram: encode_answer(&pairing.keys, &answer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{encode_query, open_answer, AnswerError};
    use super::*;
    use crate::protocol::schedule::{PairSecret, Role};

    fn record(byte: u8, role: Role) -> SecretRecord {
        SecretRecord {
            role,
            ssh_port: 2222,
            secret: PairSecret::from_bytes([byte; 32]),
        }
    }

    /// The refreshing side of pairing `byte`, whose watcher holds `record(byte, Role::High)`.
    fn seeker_keys(byte: u8) -> LocateKeys {
        LocateKeys::derive(&PairSecret::from_bytes([byte; 32]), Role::Low)
    }

    fn responder(now: Instant, n: u8) -> Responder {
        let mut r = Responder::new(now);
        r.set_pairings((1..=n).map(|b| (format!("git-pair-p-{b}"), record(b, Role::High))));
        r
    }

    fn addrs() -> Vec<IpAddr> {
        vec!["10.0.0.9".parse().unwrap(), "fe80::9".parse().unwrap()]
    }

    #[test]
    fn answers_a_query_of_one_of_its_pairings_with_that_pairings_keys() {
        let now = Instant::now();
        let mut r = responder(now, 3);
        let nonce = [7; 16];
        let q = encode_query(&seeker_keys(2), &nonce);
        let Outcome::Answer { alias, datagram } = r.handle(now, &q, addrs) else {
            panic!("no answer");
        };
        assert_eq!(alias, "git-pair-p-2");
        let answer = open_answer(&seeker_keys(2), &datagram, &[nonce]).unwrap();
        assert_eq!(answer.ssh_port, 2222);
        assert_eq!(answer.addresses, addrs());
        // Under another pairing's keys, it is not an answer.
        assert_eq!(
            open_answer(&seeker_keys(1), &datagram, &[nonce]),
            Err(AnswerError::Unauthenticated)
        );
        assert_eq!(r.stats().answered, 1);
        assert!(r.stats().hmacs <= 3);
    }

    #[test]
    fn drops_garbage_forgeries_reflections_and_replays() {
        let now = Instant::now();
        let mut r = responder(now, 2);
        for junk in [&b""[..], b"GPL\x01", &[0u8; 53], &[0xff; 1200]] {
            assert_eq!(
                r.handle(now, junk, addrs),
                Outcome::Dropped(DropReason::Malformed)
            );
        }
        // The right shape, a tag made without the secret.
        let forged = encode_query(&seeker_keys(99), &[1; 16]);
        assert_eq!(
            r.handle(now, &forged, addrs),
            Outcome::Dropped(DropReason::Unauthenticated)
        );
        // The watcher's own role's query (its own refresh, reflected to it): not accepted.
        let own = LocateKeys::derive(&PairSecret::from_bytes([1; 32]), Role::High);
        assert_eq!(
            r.handle(now, &encode_query(&own, &[2; 16]), addrs),
            Outcome::Dropped(DropReason::Unauthenticated)
        );
        let q = encode_query(&seeker_keys(1), &[3; 16]);
        assert!(matches!(r.handle(now, &q, addrs), Outcome::Answer { .. }));
        let hmacs = r.stats().hmacs;
        assert_eq!(
            r.handle(now, &q, addrs),
            Outcome::Dropped(DropReason::Replayed)
        );
        assert_eq!(
            r.stats().hmacs,
            hmacs,
            "a replay is dropped before any HMAC"
        );
        // An answer sent back at the watcher is not a query.
        let Outcome::Answer { datagram, .. } =
            r.handle(now, &encode_query(&seeker_keys(1), &[4; 16]), addrs)
        else {
            panic!("no answer");
        };
        assert_eq!(
            r.handle(now, &datagram, addrs),
            Outcome::Dropped(DropReason::Malformed)
        );
    }

    #[test]
    fn without_pairings_nothing_is_checked() {
        let now = Instant::now();
        let mut r = Responder::new(now);
        let q = encode_query(&seeker_keys(1), &[3; 16]);
        assert_eq!(
            r.handle(now, &q, Vec::new),
            Outcome::Dropped(DropReason::NoPairings)
        );
        assert_eq!(r.stats().hmacs, 0);
    }

    #[test]
    fn a_flood_is_bounded_by_the_bucket_and_recovers() {
        let start = Instant::now();
        let n = 4u8;
        let mut r = responder(start, n);
        // Made without the secret: a tag under another key, a new nonce each time.
        let base = encode_query(&seeker_keys(200), &[0; 16]);
        let forged = |i: u32| {
            let mut q = base;
            q[5..9].copy_from_slice(&i.to_be_bytes());
            q
        };
        // 100 000 forged queries within one second.
        for i in 0..100_000u32 {
            let now = start + Duration::from_micros(u64::from(i) * 10);
            let _ = r.handle(now, &forged(i), addrs);
        }
        let s = r.stats();
        let budget = u64::from(BUCKET_CAPACITY) + u64::from(BUCKET_RATE) + u64::from(n);
        assert!(s.hmacs <= budget, "{s:?}");
        assert!(s.rate_limited > 90_000, "{s:?}");
        assert_eq!(s.answered, 0);
        assert_eq!(s.received, s.dropped());
        // Once the flood stops, the bucket refills and a real query is answered.
        let later = start + Duration::from_secs(2);
        let q = encode_query(&seeker_keys(3), &[9; 16]);
        assert!(matches!(r.handle(later, &q, addrs), Outcome::Answer { .. }));
    }

    #[test]
    fn the_replay_memory_is_a_fixed_ring() {
        let mut ring = RecentNonces::new();
        for i in 0..(RECENT_NONCES as u32 + 10) {
            let mut n = [0u8; 16];
            n[..4].copy_from_slice(&i.to_be_bytes());
            ring.insert(n);
        }
        assert_eq!(ring.len, RECENT_NONCES);
        let first = [0u8; 16];
        assert!(!ring.contains(&first), "the oldest was forgotten");
        let mut last = [0u8; 16];
        last[..4].copy_from_slice(&(RECENT_NONCES as u32 + 9).to_be_bytes());
        assert!(ring.contains(&last));
    }

    #[test]
    fn at_most_max_pairings_are_kept() {
        let mut r = Responder::new(Instant::now());
        let left = r.set_pairings(
            (0..MAX_PAIRINGS + 3).map(|i| (format!("a{i}"), record(i as u8, Role::High))),
        );
        assert_eq!((left, r.aliases().len()), (3, MAX_PAIRINGS));
    }

    #[test]
    fn the_bucket_refills_at_its_rate_and_never_beyond_its_capacity() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        assert!(b.take(t0, BUCKET_CAPACITY));
        assert!(!b.take(t0, 1));
        assert!(b.take(t0 + Duration::from_millis(10), BUCKET_RATE / 100));
        assert!(!b.take(t0 + Duration::from_millis(10), 1));
        let much_later = t0 + Duration::from_secs(3600);
        assert!(b.take(much_later, BUCKET_CAPACITY));
        assert!(!b.take(much_later, 1));
    }
}
