//! The locate protocol, free of I/O: how two paired machines find each other again after an
//! address changed, proving the pairing with its pair secret instead of a code.
//!
//! `git pair refresh` sends a **query** carrying a fresh random nonce, authenticated with
//! HMAC-SHA256 under a key derived from the pair secret; `git pair watch` on the peer answers
//! only a query that verifies, with an **answer** that binds the same nonce (so an old answer
//! replayed later is refused) and carries the answering side's current addresses and sshd port,
//! authenticated under another key of the same secret. Nothing in a query names the pairing: a
//! watcher finds the secret that applies by trying each one it holds (at most
//! [`MAX_PAIRINGS`]), so an onlooker learns only that some pairing is being located.
//!
//! Each pairing's two sides have opposite [`Role`]s (from their pairing session), and each role
//! has its own query and answer keys: a query is never accepted as an answer or the other way
//! round, and a query reflected back to its sender's own watcher does not verify there.
//!
//! # Wire format
//! Binary, so that anything else is dropped after a length and prefix comparison:
//!
//! ```text
//! query  (53 bytes): "GPL" 0x01 | 0x01 | nonce (16) | tag (32)
//! answer (≤ 360):    "GPL" 0x01 | 0x02 | nonce (16) | ssh port (u16 BE) | n (u8, ≤ 16)
//!                    | n × (0x04 addr (4) | 0x06 addr (16)) | tag (32)
//! ```
//!
//! The tag is HMAC-SHA256 over every byte before it. The keys: HKDF-SHA256 with salt
//! `"git-pair/v1 locate"` and the pair secret as input keying material, expanded with
//! `"git-pair/v1 locate query low"`, `… query high`, `… answer low` and `… answer high`; a side
//! sends queries and answers with the keys of its own role and checks the peer's with the other
//! role's. Tags are compared in constant time.

pub mod responder;
pub mod seeker;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroize;

use super::schedule::{PairSecret, Role};

/// The UDP port of the locate protocol: next to the pairing's, so that a watcher never
/// receives (nor, on a host that shares the port, takes away) a pairing's unicast datagrams.
/// The multicast groups are the pairing's.
pub const PORT: u16 = 28621;

/// The first four bytes of every datagram: "GPL" and the protocol version.
pub const MAGIC: [u8; 4] = *b"GPL\x01";
/// The message type byte of a query.
pub const QUERY: u8 = 1;
/// The message type byte of an answer.
pub const ANSWER: u8 = 2;
/// Nonce length.
pub const NONCE_LEN: usize = 16;
/// Tag length (a whole HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// The length of every query.
pub const QUERY_LEN: usize = MAGIC.len() + 1 + NONCE_LEN + TAG_LEN;
/// At most this many addresses in an answer.
pub const MAX_ADDRESSES: usize = 16;
/// The length of the largest answer.
pub const MAX_ANSWER_LEN: usize =
    MAGIC.len() + 1 + NONCE_LEN + 2 + 1 + MAX_ADDRESSES * 17 + TAG_LEN;
/// A watcher uses at most this many pair secrets: the bound on the work one query can cause.
pub const MAX_PAIRINGS: usize = 64;

const SALT: &[u8] = b"git-pair/v1 locate";
const LABEL_QUERY_LOW: &[u8] = b"git-pair/v1 locate query low";
const LABEL_QUERY_HIGH: &[u8] = b"git-pair/v1 locate query high";
const LABEL_ANSWER_LOW: &[u8] = b"git-pair/v1 locate answer low";
const LABEL_ANSWER_HIGH: &[u8] = b"git-pair/v1 locate answer high";

/// A query's random nonce.
pub type Nonce = [u8; NONCE_LEN];

/// One HMAC-SHA256 key. Zeroized on drop, never printed.
#[derive(Clone)]
struct TagKey([u8; 32]);

impl Drop for TagKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl TagKey {
    fn tag(&self, bytes: &[u8]) -> [u8; TAG_LEN] {
        self.mac(bytes).finalize().into_bytes().into()
    }

    /// Constant-time comparison, through `hmac`'s `verify_slice`.
    fn verify(&self, bytes: &[u8], tag: &[u8]) -> bool {
        self.mac(bytes).verify_slice(tag).is_ok()
    }

    fn mac(&self, bytes: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC accepts keys of any length");
        mac.update(bytes);
        mac
    }
}

/// The four locate keys of one pairing, seen from one side.
#[derive(Clone)]
pub struct LocateKeys {
    own_query: TagKey,
    peer_query: TagKey,
    own_answer: TagKey,
    peer_answer: TagKey,
}

impl fmt::Debug for LocateKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocateKeys(<redacted>)")
    }
}

impl LocateKeys {
    /// Derives the keys of `secret` for the side whose role in the pairing was `own`.
    pub fn derive(secret: &PairSecret, own: Role) -> LocateKeys {
        // The locate protocol has its own version ("v1"), apart from the pairing protocol's.
        debug_assert!(SALT.starts_with(b"git-pair/v1 locate"));
        let hk = Hkdf::<Sha256>::new(Some(SALT), secret.expose());
        let key = |label: &[u8]| {
            let mut out = [0u8; 32];
            hk.expand(label, &mut out)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            TagKey(out)
        };
        let (query_low, query_high) = (key(LABEL_QUERY_LOW), key(LABEL_QUERY_HIGH));
        let (answer_low, answer_high) = (key(LABEL_ANSWER_LOW), key(LABEL_ANSWER_HIGH));
        match own {
            Role::Low => LocateKeys {
                own_query: query_low,
                peer_query: query_high,
                own_answer: answer_low,
                peer_answer: answer_high,
            },
            Role::High => LocateKeys {
                own_query: query_high,
                peer_query: query_low,
                own_answer: answer_high,
                peer_answer: answer_low,
            },
        }
    }
}

/// A query as it arrived, structurally valid but not yet verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryView<'a> {
    signed: &'a [u8],
    tag: &'a [u8],
    pub nonce: Nonce,
}

/// This side's query for `nonce`.
pub fn encode_query(keys: &LocateKeys, nonce: &Nonce) -> [u8; QUERY_LEN] {
    let mut out = [0u8; QUERY_LEN];
    out[..4].copy_from_slice(&MAGIC);
    out[4] = QUERY;
    out[5..5 + NONCE_LEN].copy_from_slice(nonce);
    let tag = keys.own_query.tag(&out[..QUERY_LEN - TAG_LEN]);
    out[QUERY_LEN - TAG_LEN..].copy_from_slice(&tag);
    out
}

/// The cheap part of receiving a query: its length, prefix and type, no cryptography. `None`
/// for anything else.
pub fn parse_query(datagram: &[u8]) -> Option<QueryView<'_>> {
    if datagram.len() != QUERY_LEN || datagram[..4] != MAGIC || datagram[4] != QUERY {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&datagram[5..5 + NONCE_LEN]);
    Some(QueryView {
        signed: &datagram[..QUERY_LEN - TAG_LEN],
        tag: &datagram[QUERY_LEN - TAG_LEN..],
        nonce,
    })
}

/// Whether the peer of `keys` made this query (constant time).
pub fn verify_query(keys: &LocateKeys, query: &QueryView<'_>) -> bool {
    keys.peer_query.verify(query.signed, query.tag)
}

/// What a watcher tells the peer that located it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The nonce of the query it answers.
    pub nonce: Nonce,
    /// The port of the answering side's sshd.
    pub ssh_port: u16,
    /// The answering side's addresses, best first; IPv6 link-local ones without a scope.
    pub addresses: Vec<IpAddr>,
}

/// Why a datagram is not an answer this side accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnswerError {
    #[error("not a locate answer")]
    Malformed,
    #[error("the answer is not authenticated with the pair secret")]
    Unauthenticated,
    #[error("the answer is for a query this side did not send (or no longer waits for): a replay")]
    UnknownNonce,
}

/// This side's answer. Addresses beyond [`MAX_ADDRESSES`] are left out.
pub fn encode_answer(keys: &LocateKeys, answer: &Answer) -> Vec<u8> {
    let addresses = &answer.addresses[..answer.addresses.len().min(MAX_ADDRESSES)];
    let mut out = Vec::with_capacity(MAX_ANSWER_LEN);
    out.extend_from_slice(&MAGIC);
    out.push(ANSWER);
    out.extend_from_slice(&answer.nonce);
    out.extend_from_slice(&answer.ssh_port.to_be_bytes());
    out.push(addresses.len() as u8);
    for a in addresses {
        match a {
            IpAddr::V4(v4) => {
                out.push(4);
                out.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                out.push(6);
                out.extend_from_slice(&v6.octets());
            }
        }
    }
    let tag = keys.own_answer.tag(&out);
    out.extend_from_slice(&tag);
    out
}

/// Parses an answer's fields without checking its tag: `(answer, signed bytes, tag)`.
fn parse_answer(datagram: &[u8]) -> Option<(Answer, &[u8], &[u8])> {
    if datagram.len() > MAX_ANSWER_LEN || datagram.len() < QUERY_LEN + 3 {
        return None;
    }
    if datagram[..4] != MAGIC || datagram[4] != ANSWER {
        return None;
    }
    let (signed, tag) = datagram.split_at(datagram.len() - TAG_LEN);
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&signed[5..5 + NONCE_LEN]);
    let mut at = 5 + NONCE_LEN;
    let ssh_port = u16::from_be_bytes([signed[at], signed[at + 1]]);
    let n = usize::from(signed[at + 2]);
    at += 3;
    if ssh_port == 0 || n > MAX_ADDRESSES {
        return None;
    }
    let mut addresses = Vec::with_capacity(n);
    for _ in 0..n {
        let family = *signed.get(at)?;
        at += 1;
        let len = match family {
            4 => 4,
            6 => 16,
            _ => return None,
        };
        let bytes = signed.get(at..at + len)?;
        at += len;
        addresses.push(if len == 4 {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?))
        } else {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))
        });
    }
    if at != signed.len() {
        return None;
    }
    Some((
        Answer {
            nonce,
            ssh_port,
            addresses,
        },
        signed,
        tag,
    ))
}

/// Accepts an answer only when the peer of `keys` made it and it binds one of `nonces` (the
/// queries this side is still waiting on).
pub fn open_answer(
    keys: &LocateKeys,
    datagram: &[u8],
    nonces: &[Nonce],
) -> Result<Answer, AnswerError> {
    let (answer, signed, tag) = parse_answer(datagram).ok_or(AnswerError::Malformed)?;
    if !keys.peer_answer.verify(signed, tag) {
        return Err(AnswerError::Unauthenticated);
    }
    if !nonces.contains(&answer.nonce) {
        return Err(AnswerError::UnknownNonce);
    }
    Ok(answer)
}

#[cfg(test)]
mod tests;
