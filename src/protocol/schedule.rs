//! The key schedule: everything derived from the SPAKE2 key, and the four
//! uses of those keys: the transcript MACs (key confirmation), the payload
//! AEAD (each `data` piece sealed on its own), the sealed `end` message
//! that tells the peer how this side's part ended, and the tags that
//! authenticate each directed message's acknowledgement.
//!
//! Each key has one purpose and a type that says so, and each direction has
//! its own keys. A session's two sides are told apart by their random session
//! ids: the side with the smaller id is [`Role::Low`]. A MAC or ciphertext
//! made by one side is therefore never accepted as the other side's, which
//! defeats reflection: an attacker who echoes our own confirmation back at us
//! gets it checked under the peer's key, with the peer's session id first.

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload as AeadPayload};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::codec::{SessionId, ACK_TAG_LEN, PIECE_LEN};

/// Protocol name and version, bound into every label, MAC and AAD.
pub const PROTOCOL: &str = "git-pair/v3";

const LABEL_CONFIRM_LOW: &[u8] = b"git-pair/v3 confirm low";
const LABEL_CONFIRM_HIGH: &[u8] = b"git-pair/v3 confirm high";
const LABEL_PAYLOAD_LOW: &[u8] = b"git-pair/v3 payload low";
const LABEL_PAYLOAD_HIGH: &[u8] = b"git-pair/v3 payload high";
const LABEL_END_LOW: &[u8] = b"git-pair/v3 end low";
const LABEL_END_HIGH: &[u8] = b"git-pair/v3 end high";
const LABEL_ACK_LOW: &[u8] = b"git-pair/v3 ack low";
const LABEL_ACK_HIGH: &[u8] = b"git-pair/v3 ack high";
const LABEL_SAS: &[u8] = b"git-pair/v3 short authentication string";
const LABEL_PAIR_SECRET: &[u8] = b"git-pair/v3 pair secret";

/// Plaintext bytes per `data` piece: each piece is sealed on its own, and
/// the AEAD tag takes the rest of [`PIECE_LEN`].
pub const PIECE_PLAIN: usize = PIECE_LEN - TAG_LEN;
/// The ChaCha20-Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// Which end of a session a side is, decided by comparing session ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Low,
    High,
}

impl Role {
    pub fn of(own: &SessionId, peer: &SessionId) -> Role {
        if own < peer {
            Role::Low
        } else {
            Role::High
        }
    }

    fn other(self) -> Role {
        match self {
            Role::Low => Role::High,
            Role::High => Role::Low,
        }
    }

    /// The labels of this role's confirmation, payload, end and ack keys.
    fn labels(self) -> [&'static [u8]; 4] {
        match self {
            Role::Low => [
                LABEL_CONFIRM_LOW,
                LABEL_PAYLOAD_LOW,
                LABEL_END_LOW,
                LABEL_ACK_LOW,
            ],
            Role::High => [
                LABEL_CONFIRM_HIGH,
                LABEL_PAYLOAD_HIGH,
                LABEL_END_HIGH,
                LABEL_ACK_HIGH,
            ],
        }
    }
}

/// The SPAKE2 output. Zeroized on drop.
pub struct PakeKey(Zeroizing<Vec<u8>>);

impl PakeKey {
    pub fn new(bytes: Vec<u8>) -> Self {
        PakeKey(Zeroizing::new(bytes))
    }
}

macro_rules! secret_key {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name([u8; 32]);

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

secret_key!(
    /// HMAC-SHA256 key for one direction's transcript MAC.
    ConfirmKey
);
secret_key!(
    /// ChaCha20-Poly1305 key for one direction's payload.
    PayloadKey
);
secret_key!(
    /// ChaCha20-Poly1305 key for one direction's `end` message.
    EndKey
);
secret_key!(
    /// HMAC-SHA256 key for one direction's ack tags (see [`ack_tag`]).
    AckKey
);
secret_key!(
    /// A long-term secret both sides share after pairing, for later use
    /// (re-keying, re-pairing without a code). Never shown.
    PairSecret
);

impl PairSecret {
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// A pair secret read back from where pairing stored it
    /// (`ssh_files::pair_secret`).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PairSecret(bytes)
    }
}

/// Every key of one session, seen from one side.
#[derive(Debug)]
pub struct SessionKeys {
    pub role: Role,
    pub own_confirm: ConfirmKey,
    pub peer_confirm: ConfirmKey,
    pub own_payload: PayloadKey,
    pub peer_payload: PayloadKey,
    pub own_end: EndKey,
    pub peer_end: EndKey,
    pub own_ack: AckKey,
    pub peer_ack: AckKey,
    pub sas: ShortAuthString,
    pub pair_secret: PairSecret,
}

/// A six-digit string both people can compare; equal on both sides exactly
/// when both derived the same key.
#[derive(Clone, PartialEq, Eq)]
pub struct ShortAuthString(String);

impl ShortAuthString {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ShortAuthString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ShortAuthString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortAuthString({})", self.0)
    }
}

/// Derives all session keys with HKDF-SHA256. The salt binds both session
/// ids in a fixed order, so the two sides derive the same keys.
pub fn derive(pake: &PakeKey, own: &SessionId, peer: &SessionId) -> SessionKeys {
    let role = Role::of(own, peer);
    let (low, high) = match role {
        Role::Low => (own, peer),
        Role::High => (peer, own),
    };
    let mut salt = Vec::with_capacity(PROTOCOL.len() + 32);
    salt.extend_from_slice(PROTOCOL.as_bytes());
    salt.extend_from_slice(low.as_bytes());
    salt.extend_from_slice(high.as_bytes());
    let hk = Hkdf::<Sha256>::new(Some(&salt), &pake.0);
    let expand = |label: &[u8]| -> [u8; 32] {
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit.
        hk.expand(label, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    };
    let [own_confirm_label, own_payload_label, own_end_label, own_ack_label] = role.labels();
    let [peer_confirm_label, peer_payload_label, peer_end_label, peer_ack_label] =
        role.other().labels();
    let mut sas_bytes = Zeroizing::new(expand(LABEL_SAS));
    let n = u32::from_be_bytes([0, sas_bytes[0], sas_bytes[1], sas_bytes[2]]) % 1_000_000;
    sas_bytes.zeroize();
    SessionKeys {
        role,
        own_confirm: ConfirmKey(expand(own_confirm_label)),
        peer_confirm: ConfirmKey(expand(peer_confirm_label)),
        own_payload: PayloadKey(expand(own_payload_label)),
        peer_payload: PayloadKey(expand(peer_payload_label)),
        own_end: EndKey(expand(own_end_label)),
        peer_end: EndKey(expand(peer_end_label)),
        own_ack: AckKey(expand(own_ack_label)),
        peer_ack: AckKey(expand(peer_ack_label)),
        sas: ShortAuthString(format!("{:03} {:03}", n / 1000, n % 1000)),
        pair_secret: PairSecret(expand(LABEL_PAIR_SECRET)),
    }
}

/// One side's view of the whole exchange, in the order "sender first":
/// the MAC a side sends covers its own id, PAKE message and payload before
/// the peer's.
pub struct Transcript<'a> {
    pub sender: &'a SessionId,
    pub receiver: &'a SessionId,
    pub sender_pake: &'a [u8],
    pub receiver_pake: &'a [u8],
    pub sender_payload: &'a [u8],
    pub receiver_payload: &'a [u8],
}

impl Transcript<'_> {
    fn mac(&self, key: &ConfirmKey) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC accepts keys of any length");
        mac.update(PROTOCOL.as_bytes());
        mac.update(b" transcript");
        for field in [
            self.sender.as_bytes().as_slice(),
            self.receiver.as_bytes(),
            self.sender_pake,
            self.receiver_pake,
            self.sender_payload,
            self.receiver_payload,
        ] {
            // Length prefixes make the encoding injective: no two different
            // transcripts feed the same bytes to HMAC.
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac
    }
}

/// The MAC this side sends: its own key over its own view, own id first.
pub fn confirmation(keys: &SessionKeys, t: &Transcript<'_>) -> [u8; 32] {
    t.mac(&keys.own_confirm).finalize().into_bytes().into()
}

/// Checks the peer's MAC in constant time, under the peer's key and with the
/// peer as the sender.
pub fn verify_confirmation(keys: &SessionKeys, t: &Transcript<'_>, tag: &[u8]) -> bool {
    t.mac(&keys.peer_confirm).verify_slice(tag).is_ok()
}

fn ack_mac(key: &AckKey, signed: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&key.0).expect("HMAC accepts keys of any length");
    mac.update(PROTOCOL.as_bytes());
    mac.update(b" ack");
    mac.update(signed);
    mac
}

/// The tag this side puts on a directed message once it has the session keys: HMAC-SHA256
/// under its own ack key over `PROTOCOL || " ack" ||` [`Message::signed_bytes`] (every field
/// of the message, its acknowledgement included), cut to [`ACK_TAG_LEN`] bytes. It lets the
/// peer honour what the acknowledgement says (see `machine`'s *Delivery*): an outsider who
/// reads the session ids off the LAN cannot make one, so it cannot stop our retransmissions,
/// end a side early or fake a fast round trip.
///
/// [`Message::signed_bytes`]: super::codec::Message::signed_bytes
pub fn ack_tag(keys: &SessionKeys, signed: &[u8]) -> [u8; ACK_TAG_LEN] {
    let full = ack_mac(&keys.own_ack, signed).finalize().into_bytes();
    let mut tag = [0u8; ACK_TAG_LEN];
    tag.copy_from_slice(&full[..ACK_TAG_LEN]);
    tag
}

/// Checks the peer's tag on a message it sent, in constant time, under the peer's ack key. The
/// signed bytes name the sender first, so one of our own tags reflected back never verifies.
pub fn verify_ack_tag(keys: &SessionKeys, signed: &[u8], tag: &[u8]) -> bool {
    // `verify_truncated_left` compares as many bytes as it is given: insist on all of them.
    tag.len() == ACK_TAG_LEN
        && ack_mac(&keys.peer_ack, signed)
            .verify_truncated_left(tag)
            .is_ok()
}

/// `PROTOCOL || " " || what || sender id || receiver id || extra`: the associated data of
/// every sealed message, binding it to its kind, its direction and its session.
fn aad(what: &str, sender: &SessionId, receiver: &SessionId, extra: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(PROTOCOL.len() + what.len() + 34 + extra.len());
    aad.extend_from_slice(PROTOCOL.as_bytes());
    aad.push(b' ');
    aad.extend_from_slice(what.as_bytes());
    aad.extend_from_slice(sender.as_bytes());
    aad.extend_from_slice(receiver.as_bytes());
    aad.extend_from_slice(extra);
    aad
}

/// Piece `i`'s nonce: eleven zero bytes, then `i`. Each payload key seals
/// one payload (one direction of one session, with keys fresh from a new
/// SPAKE2 run), and each piece of it once, so no nonce repeats under a key.
fn piece_nonce(i: u8) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[11] = i;
    nonce
}

// Each end key seals exactly one message (a side ends a session once), so a
// fixed nonce is safe.
const END_NONCE: [u8; 12] = [0; 12];

fn seal_with(key: &[u8; 32], nonce: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    ChaCha20Poly1305::new(key.into())
        .encrypt(
            nonce.into(),
            AeadPayload {
                msg: plaintext,
                aad,
            },
        )
        .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail")
}

fn open_with(
    key: &[u8; 32],
    nonce: &[u8; 12],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            nonce.into(),
            AeadPayload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

/// Encrypts this side's payload for the peer as `n` pieces of at most
/// [`PIECE_PLAIN`] bytes each (at least one, so an empty payload is one
/// piece), each sealed on its own so that the peer can check every piece as
/// it arrives: a forged piece is dropped without spoiling the real one. The
/// piece's index and the count are bound into its nonce and associated data.
/// `None` if the payload needs more than 255 pieces.
pub fn seal_pieces(
    keys: &SessionKeys,
    own: &SessionId,
    peer: &SessionId,
    plaintext: &[u8],
) -> Option<Vec<Vec<u8>>> {
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[]]
    } else {
        plaintext.chunks(PIECE_PLAIN).collect()
    };
    let n = u8::try_from(chunks.len()).ok()?;
    Some(
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let i = i as u8;
                seal_with(
                    &keys.own_payload.0,
                    &piece_nonce(i),
                    &aad("piece", own, peer, &[i, n]),
                    chunk,
                )
            })
            .collect(),
    )
}

/// Opens piece `i` of `n` of the peer's payload; `None` when it was not made
/// with the same key (the codes differ, or it is forged), or it was
/// tampered with, reflected, moved to another index or count, or spliced from
/// another session.
pub fn open_piece(
    keys: &SessionKeys,
    own: &SessionId,
    peer: &SessionId,
    i: u8,
    n: u8,
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    open_with(
        &keys.peer_payload.0,
        &piece_nonce(i),
        &aad("piece", peer, own, &[i, n]),
        ciphertext,
    )
}

/// Seals this side's `end` message (how its part of the session ended) for
/// the peer.
pub fn seal_end(
    keys: &SessionKeys,
    own: &SessionId,
    peer: &SessionId,
    plaintext: &[u8],
) -> Vec<u8> {
    seal_with(
        &keys.own_end.0,
        &END_NONCE,
        &aad("end", own, peer, &[]),
        plaintext,
    )
}

/// Opens the peer's `end` message; `None` unless the peer holds this
/// session's keys, i.e. the code.
pub fn open_end(
    keys: &SessionKeys,
    own: &SessionId,
    peer: &SessionId,
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    open_with(
        &keys.peer_end.0,
        &END_NONCE,
        &aad("end", peer, own, &[]),
        ciphertext,
    )
}

#[cfg(test)]
mod tests;
