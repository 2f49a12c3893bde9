//! The wire codec: one versioned JSON object per UDP datagram.
//!
//! A datagram is at most [`MAX_DATAGRAM`] bytes so that it never fragments on
//! any link that carries IPv6. Decoding is total: any input, however large,
//! malformed or hostile, gives a [`Message`] or a [`DecodeError`], never a
//! panic, and every length is checked before the protocol sees it.
//!
//! Binary fields are base64 (standard alphabet, padded). Session ids are 16
//! random bytes in lowercase hex.

use std::fmt;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The protocol version carried in every datagram's `v` field. Version 3 added
/// [`Ack::tag`]: a version 2 peer's acknowledgements are not authenticated.
pub const VERSION: u64 = 3;
/// The largest datagram sent or accepted.
pub const MAX_DATAGRAM: usize = 1200;
/// The length of a SPAKE2 message in the Ed25519 group, side byte included.
pub const PAKE_MESSAGE_LEN: usize = 33;
/// Ciphertext bytes per `data` piece; with base64 and the envelope this
/// stays well under [`MAX_DATAGRAM`].
pub const PIECE_LEN: usize = 720;
/// At most this many pieces per payload (the `ack` bitmap is a u64).
pub const MAX_PIECES: usize = 64;
/// Channels longer than this are refused.
pub const MAX_CHANNEL_LEN: usize = 32;
/// The `detail` of an [`End`] is at most this many bytes.
pub const MAX_DETAIL_LEN: usize = 200;
/// The length of [`Ack::k`]: this many bytes of the addressee's PAKE message.
pub const ECHO_LEN: usize = 8;
/// A sealed [`End`] is at most this many bytes.
pub const MAX_END_LEN: usize = 512;
/// The length of [`Ack::tag`]: HMAC-SHA256 cut to 128 bits, as many as the
/// AEAD tags of the pieces and ends.
pub const ACK_TAG_LEN: usize = 16;

/// A random per-run session id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 16]);

impl SessionId {
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// Eight hex digits, enough to tell sessions apart in messages.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.short())
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = s.as_bytes();
        if bytes.len() != 32 {
            return Err(serde::de::Error::custom("session id must be 32 hex digits"));
        }
        let mut out = [0u8; 16];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_val(pair[0]);
            let lo = hex_val(pair[1]);
            match (hi, lo) {
                (Some(h), Some(l)) => out[i] = (h << 4) | l,
                _ => return Err(serde::de::Error::custom("session id must be lowercase hex")),
            }
        }
        Ok(SessionId(out))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Base64-encoded bytes on the wire.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&Base64::encode_string(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Base64::decode_vec(&s)
            .map(Bytes)
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

/// What the sender has received from the addressee so far. Carried by every
/// directed message, so that each side retransmits only what is missing.
///
/// Everything here but [`Ack::k`]'s use as an address proof is honoured only
/// with a valid [`Ack::tag`]: the session ids are plaintext, so anyone on the
/// LAN could otherwise claim that the peer has what it lacks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Ack {
    /// The sender has the addressee's PAKE message, and proves it with the
    /// [`ECHO_LEN`] bytes of that message after its side byte. The message
    /// went to one address only (by unicast), so this also shows that the
    /// sender receives datagrams at the address it sends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<Bytes>,
    /// Bit i: the sender has the addressee's payload piece i (opened).
    pub p: u64,
    /// The sender has verified the addressee's confirmation MAC.
    pub c: bool,
    /// The sender has the addressee's `end` message (opened).
    #[serde(default)]
    pub e: bool,
    /// [`ACK_TAG_LEN`] bytes that authenticate the whole message, this
    /// acknowledgement included, under the sender's ack key
    /// ([`crate::protocol::schedule::ack_tag`] over [`Message::signed_bytes`]).
    /// Absent until the sender has the session keys (its `hello` and the
    /// PAKE message that opens a session), when `p`, `c` and `e` are 0.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<Bytes>,
}

impl Ack {
    /// The echo of a PAKE message that [`Ack::k`] carries.
    pub fn echo(pake: &[u8]) -> Bytes {
        Bytes(pake.iter().skip(1).take(ECHO_LEN).copied().collect())
    }
}

/// How one side's part of a session ended, told to the peer sealed under the
/// session's end keys (see [`crate::protocol::schedule::seal_end`]), so that
/// only the holder of the code can say it: an outsider can neither end a
/// session nor put words in the peer's mouth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "end", rename_all = "snake_case")]
pub enum End {
    /// Verified and set up here; keep the pairing if you are set up too.
    Ready,
    /// This side opened the peer's payload but cannot use it (its sshd does
    /// not answer, its key opens another repository here, ...); nothing was
    /// confirmed.
    Refused { detail: String },
    /// Verified, but the person here did not confirm that the check strings
    /// match; nothing was written here.
    Declined,
    /// Verified, but setting up here failed and was undone.
    Failed { detail: String },
}

impl End {
    /// The plaintext that is sealed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an End always serializes")
    }

    /// Parses an opened `end` message.
    pub fn parse(bytes: &[u8]) -> Result<End, DecodeError> {
        let end: End =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        match &end {
            End::Refused { detail } | End::Failed { detail } if detail.len() > MAX_DETAIL_LEN => {
                Err(DecodeError::Invalid("end detail too long"))
            }
            _ => Ok(end),
        }
    }

    /// A detail that fits: control characters become spaces (so that JSON
    /// escaping cannot blow it up) and it is cut at [`MAX_DETAIL_LEN`] bytes,
    /// on a character boundary.
    pub fn detail(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            let c = if c.is_control() { ' ' } else { c };
            if out.len() + c.len_utf8() > MAX_DETAIL_LEN {
                break;
            }
            out.push(c);
        }
        out
    }
}

/// One datagram.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Unknown fields are ignored so that a later v1 can add optional ones.
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Message {
    /// Announces a session on a channel; sent by multicast, to `--peer`
    /// hosts and to probed addresses. `gen` says whether the sender generated
    /// its code in this run (`true`) or was given it (`false`); absent from
    /// older senders.
    Hello {
        sid: SessionId,
        ch: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gen: Option<bool>,
    },
    /// This side's SPAKE2 message for the session with `to`.
    Pake {
        sid: SessionId,
        to: SessionId,
        m: Bytes,
        ack: Ack,
    },
    /// Piece `i` of `n` of this side's encrypted payload.
    Data {
        sid: SessionId,
        to: SessionId,
        i: u8,
        n: u8,
        d: Bytes,
        ack: Ack,
    },
    /// This side's transcript MAC.
    Confirm {
        sid: SessionId,
        to: SessionId,
        mac: Bytes,
        ack: Ack,
    },
    /// Nothing new, only what the sender has received.
    Ack {
        sid: SessionId,
        to: SessionId,
        ack: Ack,
    },
    /// How the sender's part of this session ended: an [`End`], sealed.
    End {
        sid: SessionId,
        to: SessionId,
        #[serde(rename = "box")]
        sealed: Bytes,
        ack: Ack,
    },
}

impl Message {
    /// The sender's session id.
    pub fn sender(&self) -> &SessionId {
        match self {
            Message::Hello { sid, .. }
            | Message::Pake { sid, .. }
            | Message::Data { sid, .. }
            | Message::Confirm { sid, .. }
            | Message::Ack { sid, .. }
            | Message::End { sid, .. } => sid,
        }
    }

    /// The acknowledgement a directed message carries.
    pub fn ack(&self) -> Option<&Ack> {
        match self {
            Message::Pake { ack, .. }
            | Message::Data { ack, .. }
            | Message::Confirm { ack, .. }
            | Message::Ack { ack, .. }
            | Message::End { ack, .. } => Some(ack),
            Message::Hello { .. } => None,
        }
    }

    /// The acknowledgement of a directed message, to put its tag on.
    pub fn ack_mut(&mut self) -> Option<&mut Ack> {
        match self {
            Message::Pake { ack, .. }
            | Message::Data { ack, .. }
            | Message::Confirm { ack, .. }
            | Message::Ack { ack, .. }
            | Message::End { ack, .. } => Some(ack),
            Message::Hello { .. } => None,
        }
    }

    /// What [`Ack::tag`] authenticates: every field of a directed message but
    /// the tag itself, each as `u64be(length) || bytes`, in this order: the
    /// type (`t`), `sid`, `to`; the type's own fields (`pake`: `m`; `data`:
    /// `i`, `n`, `d`; `confirm`: `mac`; `ack`: none; `end`: `box`); then
    /// `k` (empty when absent), `p` (u64 big-endian), `c`, `e` (one byte, 0
    /// or 1). Length prefixes make it injective; integers and booleans are
    /// fixed-width. `None` for a `hello`, which carries no acknowledgement.
    pub fn signed_bytes(&self) -> Option<Vec<u8>> {
        let (t, sid, to, own, ack): (&str, _, _, Vec<&[u8]>, _) = match self {
            Message::Hello { .. } => return None,
            Message::Pake { sid, to, m, ack } => ("pake", sid, to, vec![&m.0], ack),
            Message::Data {
                sid,
                to,
                i,
                n,
                d,
                ack,
            } => (
                "data",
                sid,
                to,
                vec![std::slice::from_ref(i), std::slice::from_ref(n), &d.0],
                ack,
            ),
            Message::Confirm { sid, to, mac, ack } => ("confirm", sid, to, vec![&mac.0], ack),
            Message::Ack { sid, to, ack } => ("ack", sid, to, vec![], ack),
            Message::End {
                sid,
                to,
                sealed,
                ack,
            } => ("end", sid, to, vec![&sealed.0], ack),
        };
        let p = ack.p.to_be_bytes();
        let (c, e) = ([u8::from(ack.c)], [u8::from(ack.e)]);
        let k = ack.k.as_ref().map_or(&[][..], |k| &k.0);
        let mut fields: Vec<&[u8]> = vec![t.as_bytes(), sid.as_bytes(), to.as_bytes()];
        fields.extend(own);
        fields.extend([k, &p[..], &c, &e]);
        let mut out = Vec::new();
        for field in fields {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field);
        }
        Some(out)
    }

    /// The addressee, for everything but `hello`.
    pub fn addressee(&self) -> Option<&SessionId> {
        match self {
            Message::Hello { .. } => None,
            Message::Pake { to, .. }
            | Message::Data { to, .. }
            | Message::Confirm { to, .. }
            | Message::Ack { to, .. }
            | Message::End { to, .. } => Some(to),
        }
    }
}

/// Why a datagram was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("datagram of {0} bytes is larger than {MAX_DATAGRAM}")]
    TooLarge(usize),
    #[error("not a git-pair message: {0}")]
    Malformed(String),
    #[error("git-pair protocol version {0} is not supported (this is version {VERSION}): update git-pair on both machines")]
    Version(u64),
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    /// A `data` piece of a payload in more pieces than [`MAX_PIECES`]: the sender's payload is
    /// larger than the protocol carries. A variant of its own so that the machine can tell the
    /// user, instead of the run ending as if no peer had answered (issue 8).
    #[error("a payload in {0} pieces, more than the {MAX_PIECES} the protocol carries")]
    TooManyPieces(u8),
}

/// Why a message could not be encoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("message of {0} bytes does not fit in one datagram")]
    TooLarge(usize),
}

#[derive(Deserialize)]
struct Version {
    v: u64,
}

/// Encodes one message as a datagram.
pub fn encode(msg: &Message) -> Result<Vec<u8>, EncodeError> {
    let mut value = serde_json::to_value(msg).expect("messages always serialize");
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("v".into(), VERSION.into());
    }
    let bytes = serde_json::to_vec(&value).expect("JSON values always serialize");
    if bytes.len() > MAX_DATAGRAM {
        return Err(EncodeError::TooLarge(bytes.len()));
    }
    Ok(bytes)
}

/// Decodes and validates one datagram.
pub fn decode(datagram: &[u8]) -> Result<Message, DecodeError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(DecodeError::TooLarge(datagram.len()));
    }
    // The version is read first, so that a future version's messages are
    // reported as such rather than as malformed.
    let version: Version = serde_json::from_slice(datagram)
        .map_err(|_| DecodeError::Malformed("no version field \"v\"".into()))?;
    if version.v != VERSION {
        return Err(DecodeError::Version(version.v));
    }
    let msg: Message =
        serde_json::from_slice(datagram).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    validate(&msg)?;
    Ok(msg)
}

/// The protocol version and channel of a `hello` that [`decode`] refused for
/// its version: a side running another version of git-pair, on some channel.
/// Read leniently (only `v`, `t` and `ch`), since other versions may differ in
/// everything else. Unauthenticated: only for explaining a run that found no
/// peer.
pub fn foreign_hello(datagram: &[u8]) -> Option<(u64, String)> {
    #[derive(Deserialize)]
    struct AnyHello {
        v: u64,
        t: String,
        ch: String,
    }
    if datagram.len() > MAX_DATAGRAM {
        return None;
    }
    let hello: AnyHello = serde_json::from_slice(datagram).ok()?;
    (hello.t == "hello" && hello.v != VERSION && hello.ch.len() <= MAX_CHANNEL_LEN)
        .then_some((hello.v, hello.ch))
}

fn validate(msg: &Message) -> Result<(), DecodeError> {
    if let Some(ack) = msg.ack() {
        if ack.k.as_ref().is_some_and(|echo| echo.0.len() != ECHO_LEN) {
            return Err(DecodeError::Invalid("PAKE echo has the wrong length"));
        }
        if ack
            .tag
            .as_ref()
            .is_some_and(|tag| tag.0.len() != ACK_TAG_LEN)
        {
            return Err(DecodeError::Invalid("ack tag has the wrong length"));
        }
    }
    match msg {
        Message::Hello { ch, .. } if ch.len() > MAX_CHANNEL_LEN => {
            Err(DecodeError::Invalid("channel too long"))
        }
        Message::Pake { m, .. } if m.0.len() != PAKE_MESSAGE_LEN => {
            Err(DecodeError::Invalid("PAKE message has the wrong length"))
        }
        Message::Data { i, n, d, .. } => {
            if usize::from(*n) > MAX_PIECES {
                Err(DecodeError::TooManyPieces(*n))
            } else if *n == 0 || i >= n {
                Err(DecodeError::Invalid("piece number out of range"))
            } else if d.0.len() < 16 || d.0.len() > PIECE_LEN {
                Err(DecodeError::Invalid("piece has the wrong length"))
            } else {
                Ok(())
            }
        }
        Message::Confirm { mac, .. } if mac.0.len() != 32 => {
            Err(DecodeError::Invalid("MAC has the wrong length"))
        }
        Message::End { sealed, .. } if sealed.0.len() < 16 || sealed.0.len() > MAX_END_LEN => {
            Err(DecodeError::Invalid("end message has the wrong length"))
        }
        _ => Ok(()),
    }
}

/// Entry point for `cargo fuzz`: decoding never panics, and whatever decodes
/// re-encodes to something that decodes to the same message.
#[cfg(fuzzing)]
pub fn fuzz_roundtrip(data: &[u8]) {
    if let Ok(msg) = decode(data) {
        let bytes = encode(&msg).expect("a decoded message fits in a datagram");
        assert_eq!(decode(&bytes).as_ref(), Ok(&msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const A: SessionId = SessionId([0xab; 16]);
    const B: SessionId = SessionId([0x01; 16]);

    fn full_ack() -> Ack {
        Ack {
            k: Some(Bytes(vec![0xff; ECHO_LEN])),
            p: u64::MAX,
            c: true,
            e: true,
            tag: Some(Bytes(vec![0xff; ACK_TAG_LEN])),
        }
    }

    #[test]
    fn hello_wire_format_is_stable() {
        let bytes = encode(&Message::Hello {
            sid: A,
            ch: "7".into(),
            gen: None,
        })
        .unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"ch":"7","sid":"abababababababababababababababab","t":"hello","v":3}"#
        );
    }

    /// The hello of a side that generated its code says so; older senders' hellos, without the
    /// field, still decode (as `None`).
    #[test]
    fn a_hello_says_whether_its_side_generated_the_code() {
        for (gen, field) in [(true, "true"), (false, "false")] {
            let bytes = encode(&Message::Hello {
                sid: A,
                ch: "7".into(),
                gen: Some(gen),
            })
            .unwrap();
            let text = format!(
                r#"{{"ch":"7","gen":{field},"sid":"abababababababababababababababab","t":"hello","v":3}}"#
            );
            assert_eq!(std::str::from_utf8(&bytes).unwrap(), text);
            assert!(matches!(decode(&bytes), Ok(Message::Hello { gen: g, .. }) if g == Some(gen)));
        }
        let old = r#"{"ch":"7","sid":"abababababababababababababababab","t":"hello","v":3}"#;
        assert!(matches!(
            decode(old.as_bytes()),
            Ok(Message::Hello { gen: None, .. })
        ));
    }

    #[test]
    fn largest_messages_fit_in_a_datagram() {
        let data = Message::Data {
            sid: A,
            to: B,
            i: 62,
            n: 64,
            d: Bytes(vec![0xff; PIECE_LEN]),
            ack: full_ack(),
        };
        let bytes = encode(&data).unwrap();
        assert!(bytes.len() <= MAX_DATAGRAM, "{}", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), data);
        let end = Message::End {
            sid: A,
            to: B,
            sealed: Bytes(vec![0xff; MAX_END_LEN]),
            ack: full_ack(),
        };
        let bytes = encode(&end).unwrap();
        assert!(bytes.len() <= MAX_DATAGRAM, "{}", bytes.len());
        assert_eq!(decode(&bytes).unwrap(), end);
        // The largest detail, all quotes (escaped to two bytes each), sealed, fits.
        let worst = End::Failed {
            detail: End::detail(&"\"".repeat(MAX_DETAIL_LEN)),
        };
        assert!(worst.to_bytes().len() + 16 <= MAX_END_LEN);
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        let too_big = vec![b' '; MAX_DATAGRAM + 1];
        assert_eq!(
            decode(&too_big),
            Err(DecodeError::TooLarge(MAX_DATAGRAM + 1))
        );
        assert!(matches!(
            decode(b"\xff\xfe"),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(decode(b"[]"), Err(DecodeError::Malformed(_))));
        assert!(matches!(
            decode(br#"{"t":"hello","sid":"abababababababababababababababab","ch":"7"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert_eq!(
            decode(br#"{"v":4,"t":"hello"}"#),
            Err(DecodeError::Version(4))
        );
        // Version 2 (unauthenticated acknowledgements) is refused as such.
        assert_eq!(
            decode(br#"{"v":2,"t":"hello","sid":"abababababababababababababababab","ch":"7"}"#),
            Err(DecodeError::Version(2))
        );
        // Version 1 (no per-piece sealing, unauthenticated aborts) is refused as such.
        assert_eq!(
            decode(br#"{"v":1,"t":"abort","sid":"abababababababababababababababab"}"#),
            Err(DecodeError::Version(1))
        );
        assert!(matches!(
            decode(br#"{"v":3,"t":"hello","sid":"ABABABABABABABABABABABABABABABAB","ch":"7"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(br#"{"v":3,"t":"hello","sid":"abab","ch":"7"}"#),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            decode(br#"{"v":3,"t":"nope","sid":"abababababababababababababababab"}"#),
            Err(DecodeError::Malformed(_))
        ));
        let short_pake = format!(
            r#"{{"v":3,"t":"pake","sid":"{a}","to":"{a}","m":"AAAA","ack":{{"p":0,"c":false}}}}"#,
            a = "ab".repeat(16)
        );
        assert_eq!(
            decode(short_pake.as_bytes()),
            Err(DecodeError::Invalid("PAKE message has the wrong length"))
        );
        let bad_piece = format!(
            r#"{{"v":3,"t":"data","sid":"{a}","to":"{a}","i":3,"n":3,"d":"AAAAAAAAAAAAAAAAAAAAAA==","ack":{{"p":0,"c":false}}}}"#,
            a = "ab".repeat(16)
        );
        assert_eq!(
            decode(bad_piece.as_bytes()),
            Err(DecodeError::Invalid("piece number out of range"))
        );
        let short_piece = format!(
            r#"{{"v":3,"t":"data","sid":"{a}","to":"{a}","i":0,"n":1,"d":"AAAA","ack":{{"p":0,"c":false}}}}"#,
            a = "ab".repeat(16)
        );
        assert_eq!(
            decode(short_piece.as_bytes()),
            Err(DecodeError::Invalid("piece has the wrong length"))
        );
        let bad_echo = format!(
            r#"{{"v":3,"t":"ack","sid":"{a}","to":"{a}","ack":{{"k":"AAAA","p":0,"c":false}}}}"#,
            a = "ab".repeat(16)
        );
        assert_eq!(
            decode(bad_echo.as_bytes()),
            Err(DecodeError::Invalid("PAKE echo has the wrong length"))
        );
        let short_tag = format!(
            r#"{{"v":3,"t":"ack","sid":"{a}","to":"{a}","ack":{{"p":0,"c":false,"a":"AAAA"}}}}"#,
            a = "ab".repeat(16)
        );
        assert_eq!(
            decode(short_tag.as_bytes()),
            Err(DecodeError::Invalid("ack tag has the wrong length"))
        );
        let extra = format!(
            r#"{{"v":3,"t":"hello","sid":"{a}","ch":"7","evil":1}}"#,
            a = "ab".repeat(16)
        );
        assert!(
            matches!(decode(extra.as_bytes()), Ok(Message::Hello { .. })),
            "unknown fields are ignored for forward compatibility"
        );
    }

    /// The tag's input, as doc/PROTOCOL.md states it (and tests/vectors/exchange.py computes it):
    /// each field length-prefixed, the type's own fields between `to` and the acknowledgement.
    #[test]
    fn the_signed_bytes_are_every_field_but_the_tag() {
        fn lp(fields: &[&[u8]]) -> Vec<u8> {
            fields
                .iter()
                .flat_map(|f| {
                    (f.len() as u64)
                        .to_be_bytes()
                        .into_iter()
                        .chain(f.iter().copied())
                })
                .collect()
        }
        let ack = Ack {
            k: Some(Bytes(vec![9; ECHO_LEN])),
            p: 0x0102,
            c: true,
            e: false,
            tag: Some(Bytes(vec![0xee; ACK_TAG_LEN])),
        };
        let data = Message::Data {
            sid: A,
            to: B,
            i: 1,
            n: 2,
            d: Bytes(vec![7; 20]),
            ack: ack.clone(),
        };
        assert_eq!(
            data.signed_bytes().unwrap(),
            lp(&[
                b"data",
                A.as_bytes(),
                B.as_bytes(),
                &[1],
                &[2],
                &[7; 20],
                &[9; ECHO_LEN],
                &0x0102u64.to_be_bytes(),
                &[1],
                &[0],
            ])
        );
        // Without the echo, `k` is an empty field; the tag itself is never covered.
        let bare = Message::Ack {
            sid: A,
            to: B,
            ack: Ack::default(),
        };
        let mut tagged = bare.clone();
        tagged.ack_mut().unwrap().tag = Some(Bytes(vec![1; ACK_TAG_LEN]));
        let expected = lp(&[b"ack", A.as_bytes(), B.as_bytes(), b"", &[0; 8], &[0], &[0]]);
        assert_eq!(bare.signed_bytes().unwrap(), expected);
        assert_eq!(tagged.signed_bytes().unwrap(), expected);
        let hello = Message::Hello {
            sid: A,
            ch: "7".into(),
            gen: None,
        };
        assert_eq!(hello.signed_bytes(), None);
    }

    /// A hello of another version is refused, and read just enough to tell the user.
    #[test]
    fn a_hello_of_another_version_says_its_version_and_channel() {
        let old = br#"{"v":2,"t":"hello","sid":"abababababababababababababababab","ch":"7"}"#;
        assert_eq!(decode(old), Err(DecodeError::Version(2)));
        assert_eq!(foreign_hello(old), Some((2, "7".into())));
        let newer = br#"{"v":9,"t":"hello","ch":"12","what":[1]}"#;
        assert_eq!(foreign_hello(newer), Some((9, "12".into())));
        let current = encode(&Message::Hello {
            sid: A,
            ch: "7".into(),
            gen: None,
        })
        .unwrap();
        assert_eq!(foreign_hello(&current), None);
        assert_eq!(foreign_hello(br#"{"v":2,"t":"ack","ch":"7"}"#), None);
        let long = format!(r#"{{"v":2,"t":"hello","ch":"{}"}}"#, "7".repeat(40));
        assert_eq!(foreign_hello(long.as_bytes()), None);
    }

    fn arb_sid() -> impl Strategy<Value = SessionId> {
        any::<[u8; 16]>().prop_map(SessionId)
    }

    fn arb_ack() -> impl Strategy<Value = Ack> {
        (
            proptest::option::of(any::<[u8; ECHO_LEN]>()),
            any::<u64>(),
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(any::<[u8; ACK_TAG_LEN]>()),
        )
            .prop_map(|(k, p, c, e, tag)| Ack {
                k: k.map(|k| Bytes(k.to_vec())),
                p,
                c,
                e,
                tag: tag.map(|t| Bytes(t.to_vec())),
            })
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                arb_sid(),
                "[0-9]{0,32}",
                proptest::option::of(any::<bool>())
            )
                .prop_map(|(sid, ch, gen)| Message::Hello { sid, ch, gen }),
            (arb_sid(), arb_sid(), any::<[u8; 32]>(), arb_ack()).prop_map(|(sid, to, m, ack)| {
                let mut m = m.to_vec();
                m.insert(0, b'S');
                Message::Pake {
                    sid,
                    to,
                    m: Bytes(m),
                    ack,
                }
            }),
            (
                arb_sid(),
                arb_sid(),
                (1u8..=64).prop_flat_map(|n| (Just(n), 0..n)),
                proptest::collection::vec(any::<u8>(), 16..=PIECE_LEN),
                arb_ack()
            )
                .prop_map(|(sid, to, (n, i), d, ack)| Message::Data {
                    sid,
                    to,
                    i,
                    n,
                    d: Bytes(d),
                    ack
                }),
            (arb_sid(), arb_sid(), any::<[u8; 32]>(), arb_ack()).prop_map(|(sid, to, mac, ack)| {
                Message::Confirm {
                    sid,
                    to,
                    mac: Bytes(mac.to_vec()),
                    ack,
                }
            }),
            (arb_sid(), arb_sid(), arb_ack()).prop_map(|(sid, to, ack)| Message::Ack {
                sid,
                to,
                ack
            }),
            (
                arb_sid(),
                arb_sid(),
                proptest::collection::vec(any::<u8>(), 16..=MAX_END_LEN),
                arb_ack()
            )
                .prop_map(|(sid, to, sealed, ack)| Message::End {
                    sid,
                    to,
                    sealed: Bytes(sealed),
                    ack
                }),
        ]
    }

    #[test]
    fn end_messages_round_trip_and_refuse_long_details() {
        for end in [
            End::Ready,
            End::Declined,
            End::Refused {
                detail: "your sshd on TCP port 22 does not answer".into(),
            },
            End::Failed {
                detail: End::detail("x\u{1b}[31m\ny"),
            },
        ] {
            assert_eq!(End::parse(&end.to_bytes()).unwrap(), end);
        }
        assert_eq!(End::detail("a\u{1b}b\nc"), "a b c");
        assert_eq!(End::detail(&"é".repeat(150)).len(), MAX_DETAIL_LEN);
        let long = format!(
            r#"{{"end":"failed","detail":"{}"}}"#,
            "x".repeat(MAX_DETAIL_LEN + 1)
        );
        assert_eq!(
            End::parse(long.as_bytes()),
            Err(DecodeError::Invalid("end detail too long"))
        );
        assert!(End::parse(br#"{"end":"abort"}"#).is_err());
        assert_eq!(
            serde_json::to_string(&End::Ready).unwrap(),
            r#"{"end":"ready"}"#
        );
    }

    proptest! {
        #[test]
        fn every_message_round_trips_within_the_size_limit(msg in arb_message()) {
            let bytes = encode(&msg).unwrap();
            prop_assert!(bytes.len() <= MAX_DATAGRAM);
            prop_assert_eq!(decode(&bytes).unwrap(), msg);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1400)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn decoding_mutated_messages_never_panics(msg in arb_message(), pos in any::<usize>(), byte in any::<u8>()) {
            let mut bytes = encode(&msg).unwrap();
            let at = pos % bytes.len();
            bytes[at] = byte;
            if let Ok(m) = decode(&bytes) {
                // Whatever decodes must be valid enough to re-encode.
                prop_assert!(encode(&m).is_ok());
            }
        }
    }
}
