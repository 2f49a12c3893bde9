//! Checks for the locate protocol: a LAN attacker without the pair secret against the codec
//! and against the watcher's responder.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use git_pair::protocol::locate::responder::{Outcome, Responder};
use git_pair::protocol::locate::{self, LocateKeys};
use git_pair::protocol::schedule::{PairSecret, Role};
use git_pair::ssh_files::SecretRecord;

/// The secret of the harness's pairings. Seeds are made with other secrets, so that an input
/// that verifies would be a forgery.
pub const SECRET: [u8; 32] = [0x5a; 32];

fn addresses() -> Vec<IpAddr> {
    vec!["10.0.0.9".parse().unwrap(), "fe80::9".parse().unwrap()]
}

/// The input is a list of datagrams, each a length byte and that many bytes (the rest of the
/// input when shorter). Each goes through the codec, as a query and as an answer, under both
/// roles of [`SECRET`], and then to a responder holding [`SECRET`] (and a second pairing), 1 ms
/// apart: nothing verifies, nothing is answered, every datagram is counted once, and the work
/// done stays within the token bucket.
pub fn locate(data: &[u8]) {
    let keys: Vec<LocateKeys> = [Role::Low, Role::High]
        .into_iter()
        .map(|role| LocateKeys::derive(&PairSecret::from_bytes(SECRET), role))
        .collect();
    let start = Instant::now();
    let mut responder = Responder::new(start);
    responder.set_pairings(
        [Role::Low, Role::High]
            .into_iter()
            .enumerate()
            .map(|(i, role)| {
                (
                    format!("git-pair-fuzz-{i}"),
                    SecretRecord {
                        role,
                        ssh_port: 22,
                        secret: PairSecret::from_bytes(SECRET),
                    },
                )
            }),
    );
    let mut rest = data;
    let mut n = 0u64;
    while let Some((&len, tail)) = rest.split_first() {
        let len = usize::from(len).min(tail.len());
        let (datagram, after) = tail.split_at(len);
        rest = after;
        for k in &keys {
            if let Some(q) = locate::parse_query(datagram) {
                assert!(!locate::verify_query(k, &q), "a forged query verified");
            }
            let nonce: [u8; 16] = datagram
                .get(5..21)
                .and_then(|s| s.try_into().ok())
                .unwrap_or([0; 16]);
            assert!(
                locate::open_answer(k, datagram, &[nonce]).is_err(),
                "a forged answer was accepted"
            );
        }
        let now = start + Duration::from_millis(n);
        match responder.handle(now, datagram, addresses) {
            Outcome::Answer { .. } => panic!("answered a query made without the secret"),
            Outcome::Dropped(_) => {}
        }
        n += 1;
    }
    let stats = responder.stats();
    assert_eq!(stats.received, n);
    assert_eq!(stats.dropped(), n);
    let budget = u64::from(locate::responder::BUCKET_CAPACITY)
        + n * u64::from(locate::responder::BUCKET_RATE) / 1000
        + 2;
    assert!(stats.hmacs <= budget, "{stats:?} over {budget}");
}
