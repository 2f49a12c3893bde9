//! The cost of a guess, git-annex's design as the anchor: how many candidate
//! phrases one core tests per second against one recorded git-annex pairing
//! request, and what that means for the phrase spaces people use.
//!
//! git-annex's assistant (`Utility/Verifiable.hs`, `Assistant/Pairing.hs`)
//! multicast a `PairMsg`: a `Verifiable (PairStage, PairData, SomeAddr)`,
//! that is the value and `calcDigest (show value) secret`, HMAC-SHA1 keyed
//! with the secret phrase over the Haskell `show` text of the value. Anyone
//! on the LAN who records one such message can test phrases offline at the
//! speed below, as fast as their hardware goes. git-pair sends nothing a
//! guess can be checked against (SPAKE2): each guess costs one online
//! session, and a run allows [`git_pair::protocol::machine::MAX_FAILURES`].

use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// A recorded `PairReq` the way git-annex's assistant sent it: the `show`
/// text of the stage, the pair data (host, user, directory, the ssh-rsa key
/// it generated for pairing, the repository UUID) and the sender's address,
/// then the hex HMAC-SHA1 digest.
pub struct Recorded {
    pub shown: String,
    pub digest_hex: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(phrase: &[u8], shown: &[u8]) -> [u8; 20] {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(phrase).expect("HMAC takes any key length");
    mac.update(shown);
    mac.finalize().into_bytes().into()
}

/// git-annex's `verify`: recompute the digest with the candidate phrase and
/// compare it with the recorded one.
pub fn check(recorded: &Recorded, phrase: &[u8]) -> bool {
    hex(&digest(phrase, recorded.shown.as_bytes())) == recorded.digest_hex
}

/// A realistic recorded request, made with `phrase`.
pub fn record(phrase: &str) -> Recorded {
    // A 2048-bit ssh-rsa public key line is 372 base64 characters; the
    // content does not matter to the cost, only the length.
    let key_b64: String = "AAAAB3NzaC1yc2EAAAADAQABAAABAQ"
        .chars()
        .chain((0..342).map(|i| (b'A' + (i * 7 % 26) as u8) as char))
        .collect();
    let shown = format!(
        "(PairReq,PairData {{remoteHostName = Just \"laptop\", remoteUserName = \"alice\", \
         remoteDirectory = \"~/annex\", remoteSshPubKey = \"ssh-rsa {key_b64} alice@laptop\\n\", \
         pairUUID = UUID \"0b6a1f62-8a8e-4c55-9d6f-2f6f0a3c9e11\"}},IPv4Addr 335653056)"
    );
    let digest_hex = hex(&digest(phrase.as_bytes(), shown.as_bytes()));
    Recorded { shown, digest_hex }
}

/// Writes the `n`-th candidate of the lowercase 6-letter space into `buf`.
fn candidate(mut n: u64, buf: &mut [u8; 6]) {
    for b in buf.iter_mut().rev() {
        *b = b'a' + (n % 26) as u8;
        n /= 26;
    }
}

/// Offline guessing speed on one core.
pub struct Rate {
    pub per_second: f64,
    pub tested: u64,
    pub message_bytes: usize,
    /// The search found the real phrase where it was hidden (a check that
    /// the loop really tests what git-annex checks).
    pub found_planted: bool,
}

/// Tests lowercase 6-letter candidates against one recorded request for
/// about `for_how_long` on this thread, the way an attacker would: compare
/// raw digests (the hex encoding is decoded once).
pub fn rate(for_how_long: Duration) -> Rate {
    // The phrase is candidate number 5000 of the search order: found early,
    // so the sanity check does not depend on how long the search runs.
    let mut planted = [0u8; 6];
    candidate(5000, &mut planted);
    let recorded = record(std::str::from_utf8(&planted).expect("ASCII"));
    assert!(check(&recorded, &planted) && !check(&recorded, b"wrong!"));
    let target: Vec<u8> = (0..recorded.digest_hex.len() / 2)
        .map(|i| u8::from_str_radix(&recorded.digest_hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let shown = recorded.shown.as_bytes();
    let mut buf = [0u8; 6];
    let mut found = None;
    let mut n = 0u64;
    let started = Instant::now();
    let elapsed = loop {
        // Check the clock once per batch, not per guess.
        for _ in 0..4096 {
            candidate(n, &mut buf);
            if digest(&buf, shown)[..] == target[..] {
                found = Some(n);
            }
            n += 1;
        }
        let elapsed = started.elapsed();
        if elapsed >= for_how_long {
            break elapsed;
        }
    };
    Rate {
        per_second: n as f64 / elapsed.as_secs_f64(),
        tested: n,
        message_bytes: shown.len(),
        found_planted: found == Some(5000),
    }
}

/// One phrase space an attacker might search.
pub struct Space {
    pub name: &'static str,
    pub size: f64,
}

/// The phrase spaces of the report, with their assumptions in the name.
pub fn spaces() -> Vec<Space> {
    vec![
        Space {
            name: "6 characters, lowercase letters (26^6)",
            size: 26f64.powi(6),
        },
        Space {
            name: "6 characters, letters and digits (62^6)",
            size: 62f64.powi(6),
        },
        Space {
            name: "3 words from a 2048-word list (BIP-39 size, 2048^3)",
            size: 2048f64.powi(3),
        },
        Space {
            name: "3 words from a 7776-word diceware list (7776^3)",
            size: 7776f64.powi(3),
        },
        Space {
            name: "git-pair's generated code: 3 words of 1024 (2^30), for reference",
            size: 1024f64.powi(3),
        },
    ]
}
