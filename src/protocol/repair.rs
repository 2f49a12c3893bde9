//! Proof of an earlier pairing's pair secret, for re-pairing.
//!
//! When two repositories pair again, the new peer replaces an earlier pairing only if it proves
//! it is the one that pairing was made with (`commands::pair::replace`). Holding the earlier
//! pairing's pair secret is such a proof. Each side offers, in its encrypted payload, one proof
//! per pair secret it holds for pairings of its repository:
//!
//! ```text
//! proof = HMAC-SHA256(pair secret, "git-pair re-pair proof v1" || sender sid || receiver sid)
//! ```
//!
//! Bound to both session ids, sender first, a proof is good for one direction of one session
//! only: the receiver's session id is random per run, so a proof seen by one peer (every peer a
//! side pairs with sees its proofs) cannot be replayed to another, nor reflected back. A side
//! always sends exactly [`MAX_PROOFS`] values, the real ones among random ones in random order,
//! so that a peer does not learn how many pairings the repository has.
//!
//! On the wire the proofs follow the payload inside the sealed plaintext: the payload's JSON, one
//! zero byte (JSON text never holds one), then the proofs, 32 bytes each ([`frame`], [`split`]).

use hmac::{Hmac, Mac};
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;

use super::codec::SessionId;
use super::schedule::PairSecret;

/// Proofs offered per payload, real or not.
pub const MAX_PROOFS: usize = 8;
/// The length of one proof.
pub const PROOF_LEN: usize = 32;
/// The bytes [`frame`] adds to a payload.
pub const FRAMED_EXTRA: usize = 1 + MAX_PROOFS * PROOF_LEN;

const LABEL: &[u8] = b"git-pair re-pair proof v1";

/// One proof.
pub type Proof = [u8; PROOF_LEN];

fn mac(secret: &PairSecret, sender: &SessionId, receiver: &SessionId) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose())
        .expect("HMAC accepts keys of any length");
    mac.update(LABEL);
    mac.update(sender.as_bytes());
    mac.update(receiver.as_bytes());
    mac
}

/// The proof `sender` gives `receiver` that it holds `secret`.
pub fn proof(secret: &PairSecret, sender: &SessionId, receiver: &SessionId) -> Proof {
    mac(secret, sender, receiver).finalize().into_bytes().into()
}

/// Whether any of `proofs` (sent by `sender` to `receiver`) proves `secret`; each compared in
/// constant time.
pub fn proves(
    secret: &PairSecret,
    sender: &SessionId,
    receiver: &SessionId,
    proofs: &[Proof],
) -> bool {
    proofs.iter().fold(false, |found, p| {
        mac(secret, sender, receiver).verify_slice(p).is_ok() | found
    })
}

/// The proofs a side sends one session: one per secret (at most [`MAX_PROOFS`]; the rest are
/// left out), the rest random, in random order.
pub fn offer(
    secrets: &[PairSecret],
    sender: &SessionId,
    receiver: &SessionId,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<Proof> {
    let mut out: Vec<Proof> = secrets
        .iter()
        .take(MAX_PROOFS)
        .map(|s| proof(s, sender, receiver))
        .collect();
    while out.len() < MAX_PROOFS {
        let mut filler = [0u8; PROOF_LEN];
        rng.fill_bytes(&mut filler);
        out.push(filler);
    }
    // Fisher-Yates, so that the real proofs are not always first.
    for i in (1..out.len()).rev() {
        let j = (rng.next_u32() as usize) % (i + 1);
        out.swap(i, j);
    }
    out
}

/// The sealed plaintext: `payload`, a zero byte, the proofs.
pub fn frame(payload: &[u8], proofs: &[Proof]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1 + proofs.len() * PROOF_LEN);
    out.extend_from_slice(payload);
    out.push(0);
    for p in proofs {
        out.extend_from_slice(p);
    }
    out
}

/// The payload and the proofs of an opened plaintext. A plaintext without the zero byte (a
/// peer that offers none) is all payload; a proofs part of the wrong length, or longer than
/// [`MAX_PROOFS`], proves nothing and is dropped.
pub fn split(plain: &[u8]) -> (&[u8], Vec<Proof>) {
    let Some(at) = plain.iter().position(|&b| b == 0) else {
        return (plain, Vec::new());
    };
    let (payload, rest) = (&plain[..at], &plain[at + 1..]);
    if rest.len() % PROOF_LEN != 0 || rest.len() > MAX_PROOFS * PROOF_LEN {
        return (payload, Vec::new());
    }
    let proofs = rest
        .chunks_exact(PROOF_LEN)
        .map(|c| {
            let mut p = [0u8; PROOF_LEN];
            p.copy_from_slice(c);
            p
        })
        .collect();
    (payload, proofs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    const LOW: SessionId = SessionId([0x11; 16]);
    const HIGH: SessionId = SessionId([0x22; 16]);

    fn secret(byte: u8) -> PairSecret {
        PairSecret::from_bytes([byte; 32])
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Computed by tests/vectors/locate.py, an independent implementation.
    #[test]
    fn kat_proof() {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        let p = proof(&PairSecret::from_bytes(bytes), &LOW, &HIGH);
        assert_eq!(
            hex(&p),
            "b5e04bae91bf9387e4286143717c921a2f57ceda8a1e52a2d8814bf4bd54964e"
        );
    }

    #[test]
    fn a_proof_holds_for_its_secret_direction_and_session_only() {
        let p = proof(&secret(1), &LOW, &HIGH);
        assert!(proves(&secret(1), &LOW, &HIGH, &[p]));
        assert!(!proves(&secret(2), &LOW, &HIGH, &[p]));
        assert!(!proves(&secret(1), &HIGH, &LOW, &[p]), "reflected");
        let other = SessionId([0x33; 16]);
        assert!(
            !proves(&secret(1), &LOW, &other, &[p]),
            "to another receiver"
        );
        assert!(!proves(&secret(1), &LOW, &HIGH, &[]));
    }

    #[test]
    fn an_offer_is_always_full_and_holds_each_secret_once() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for n in [0u8, 1, 3, 8, 12] {
            let secrets: Vec<PairSecret> = (0..n).map(secret).collect();
            let offered = offer(&secrets, &LOW, &HIGH, &mut rng);
            assert_eq!(offered.len(), MAX_PROOFS);
            for (i, s) in secrets.iter().enumerate() {
                assert_eq!(
                    proves(s, &LOW, &HIGH, &offered),
                    i < MAX_PROOFS,
                    "{n} secrets, secret {i}"
                );
            }
        }
    }

    #[test]
    fn frame_and_split_round_trip_and_tolerate_what_they_must() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let proofs = offer(&[secret(1)], &LOW, &HIGH, &mut rng);
        let payload = br#"{"user":"bob"}"#;
        let plain = frame(payload, &proofs);
        assert_eq!(plain.len(), payload.len() + FRAMED_EXTRA);
        let (p, got) = split(&plain);
        assert_eq!((p, got), (&payload[..], proofs.clone()));
        // A peer that offers none.
        assert_eq!(split(payload), (&payload[..], vec![]));
        // A broken proofs part proves nothing, and the payload is still read.
        let mut broken = plain.clone();
        broken.pop();
        assert_eq!(split(&broken), (&payload[..], vec![]));
        let mut long = frame(payload, &proofs);
        long.extend_from_slice(&[0; PROOF_LEN]);
        assert_eq!(split(&long).1, Vec::<Proof>::new());
    }
}
