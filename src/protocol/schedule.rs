//! The key schedule: everything derived from the SPAKE2 key, and the two
//! uses of those keys, the transcript MACs (key confirmation) and the
//! payload AEAD.
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

use super::codec::SessionId;

/// Protocol name and version, bound into every label, MAC and AAD.
pub const PROTOCOL: &str = "git-pair/v1";

const LABEL_CONFIRM_LOW: &[u8] = b"git-pair/v1 confirm low";
const LABEL_CONFIRM_HIGH: &[u8] = b"git-pair/v1 confirm high";
const LABEL_PAYLOAD_LOW: &[u8] = b"git-pair/v1 payload low";
const LABEL_PAYLOAD_HIGH: &[u8] = b"git-pair/v1 payload high";
const LABEL_SAS: &[u8] = b"git-pair/v1 short authentication string";
const LABEL_PAIR_SECRET: &[u8] = b"git-pair/v1 pair secret";

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

    fn labels(self) -> (&'static [u8], &'static [u8]) {
        match self {
            Role::Low => (LABEL_CONFIRM_LOW, LABEL_PAYLOAD_LOW),
            Role::High => (LABEL_CONFIRM_HIGH, LABEL_PAYLOAD_HIGH),
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
    let (own_confirm_label, own_payload_label) = role.labels();
    let (peer_confirm_label, peer_payload_label) = role.other().labels();
    let mut sas_bytes = Zeroizing::new(expand(LABEL_SAS));
    let n = u32::from_be_bytes([0, sas_bytes[0], sas_bytes[1], sas_bytes[2]]) % 1_000_000;
    sas_bytes.zeroize();
    SessionKeys {
        role,
        own_confirm: ConfirmKey(expand(own_confirm_label)),
        peer_confirm: ConfirmKey(expand(peer_confirm_label)),
        own_payload: PayloadKey(expand(own_payload_label)),
        peer_payload: PayloadKey(expand(peer_payload_label)),
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

fn aad(sender: &SessionId, receiver: &SessionId) -> Vec<u8> {
    let mut aad = Vec::with_capacity(PROTOCOL.len() + 40);
    aad.extend_from_slice(PROTOCOL.as_bytes());
    aad.extend_from_slice(b" payload");
    aad.extend_from_slice(sender.as_bytes());
    aad.extend_from_slice(receiver.as_bytes());
    aad
}

// Each payload key encrypts exactly one message (one direction of one
// session, with keys fresh from a new SPAKE2 run), so a fixed nonce is safe.
const NONCE: [u8; 12] = [0; 12];

/// Encrypts this side's payload for the peer.
pub fn seal(keys: &SessionKeys, own: &SessionId, peer: &SessionId, plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new((&keys.own_payload.0).into());
    cipher
        .encrypt(
            (&NONCE).into(),
            AeadPayload {
                msg: plaintext,
                aad: &aad(own, peer),
            },
        )
        .expect("ChaCha20-Poly1305 encryption of an in-memory buffer cannot fail")
}

/// Decrypts the peer's payload; `None` when it was not made with the same
/// key, i.e. the codes differ, or it was tampered with, reflected or spliced.
pub fn open(
    keys: &SessionKeys,
    own: &SessionId,
    peer: &SessionId,
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let cipher = ChaCha20Poly1305::new((&keys.peer_payload.0).into());
    cipher
        .decrypt(
            (&NONCE).into(),
            AeadPayload {
                msg: ciphertext,
                aad: &aad(peer, own),
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests;
