//! Checks that the peer's sshd answers, before anything is written.
//!
//! All candidate addresses are tried at once, each with its own thread and
//! timeout, and the most preferred one that connects wins. A peer that
//! advertises an address from another network (a VPN, a container bridge)
//! therefore costs no waiting when a better address answers first.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

/// At most this many addresses are tried.
pub const MAX_CANDIDATES: usize = 16;

/// The first of `candidates` (in order of preference) on which a TCP
/// connection succeeds within `timeout`, or every failure.
pub fn first_reachable(
    candidates: &[SocketAddr],
    timeout: Duration,
) -> Result<SocketAddr, Vec<(SocketAddr, io::Error)>> {
    let candidates = &candidates[..candidates.len().min(MAX_CANDIDATES)];
    let (tx, rx) = mpsc::channel();
    for (i, addr) in candidates.iter().copied().enumerate() {
        let tx = tx.clone();
        // Detached: a thread still connecting when a better address has
        // answered ends on its own timeout without holding anyone up.
        std::thread::spawn(move || {
            let result = TcpStream::connect_timeout(&addr, timeout).map(drop);
            let _ = tx.send((i, result));
        });
    }
    drop(tx);
    let mut results: Vec<Option<io::Result<()>>> = candidates.iter().map(|_| None).collect();
    for (i, result) in rx.iter() {
        results[i] = Some(result);
        // Done once some address connected and every more preferred one
        // has failed.
        for (j, r) in results.iter().enumerate() {
            match r {
                None => break,
                Some(Ok(())) => return Ok(candidates[j]),
                Some(Err(_)) => {}
            }
        }
    }
    Err(candidates
        .iter()
        .zip(results)
        .map(|(a, r)| {
            let err = match r {
                Some(Err(e)) => e,
                _ => io::Error::new(io::ErrorKind::TimedOut, "no answer"),
            };
            (*a, err)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

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
