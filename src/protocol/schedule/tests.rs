//! Known-answer and failure vectors for the key schedule. The expected
//! values come from tests/vectors/schedule.py, an independent Python
//! implementation of the same specification.

use super::*;
use spake2::{Ed25519Group, Identity, Password, Spake2};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const LOW: SessionId = SessionId([0x11; 16]);
const HIGH: SessionId = SessionId([0x22; 16]);

fn fixture() -> (SessionKeys, SessionKeys) {
    let pake: Vec<u8> = (0u8..32).collect();
    let low = derive(&PakeKey::new(pake.clone()), &LOW, &HIGH);
    let high = derive(&PakeKey::new(pake), &HIGH, &LOW);
    (low, high)
}

const PAKE_LOW: [u8; 33] = {
    let mut m = [0xA0; 33];
    m[0] = b'S';
    m
};
const PAKE_HIGH: [u8; 33] = {
    let mut m = [0xB0; 33];
    m[0] = b'S';
    m
};
const PAYLOAD_LOW: &[u8] = br#"{"user":"alice"}"#;
const PAYLOAD_HIGH: &[u8] = br#"{"user":"bob"}"#;

fn from_low() -> Transcript<'static> {
    Transcript {
        sender: &LOW,
        receiver: &HIGH,
        sender_pake: &PAKE_LOW,
        receiver_pake: &PAKE_HIGH,
        sender_payload: PAYLOAD_LOW,
        receiver_payload: PAYLOAD_HIGH,
    }
}

fn from_high() -> Transcript<'static> {
    Transcript {
        sender: &HIGH,
        receiver: &LOW,
        sender_pake: &PAKE_HIGH,
        receiver_pake: &PAKE_LOW,
        sender_payload: PAYLOAD_HIGH,
        receiver_payload: PAYLOAD_LOW,
    }
}

#[test]
fn kat_key_schedule() {
    let (low, high) = fixture();
    assert_eq!(low.role, Role::Low);
    assert_eq!(high.role, Role::High);
    assert_eq!(
        hex(&low.own_confirm.0),
        "1b397a9efb4280e60fa9824b6b5eed407130289ee4ab502ebbd549fcfcc76f99"
    );
    assert_eq!(
        hex(&low.peer_confirm.0),
        "b4fbcf1d1eba6dea3256b986a8d26ab520597bb4b8f06d6444d28b53b28f82b4"
    );
    assert_eq!(
        hex(&low.own_payload.0),
        "2ce1a0c457bd191845079a822a1d2c047450bd25f638ca6d0327b1d406284d00"
    );
    assert_eq!(
        hex(&low.peer_payload.0),
        "80b856a595cab36c4d8b06e1c5bbe54415a0c7d04657c0a381484cf5efc30f98"
    );
    assert_eq!(
        hex(low.pair_secret.expose()),
        "31fbde67c7284fa5cc990ce1e7febef4a0c419629f91bfc8ff9f08e9c49f5a59"
    );
    assert_eq!(low.sas.as_str(), "756 120");
    // The high side derives the same keys with the directions swapped.
    assert_eq!(high.own_confirm.0, low.peer_confirm.0);
    assert_eq!(high.peer_payload.0, low.own_payload.0);
    assert_eq!(high.sas, low.sas);
    assert_eq!(high.pair_secret.expose(), low.pair_secret.expose());
}

#[test]
fn kat_transcript_macs() {
    let (low, high) = fixture();
    let mac_low = confirmation(&low, &from_low());
    let mac_high = confirmation(&high, &from_high());
    assert_eq!(
        hex(&mac_low),
        "a4da182e4e3b94d2213dc2a8fcc901071b0722916c5b5f5575bed1177c27aa00"
    );
    assert_eq!(
        hex(&mac_high),
        "236964c140fb9f341bd1f684404849e491d7a313c0c4be6934593de84ce83fcd"
    );
    assert!(verify_confirmation(&high, &from_low(), &mac_low));
    assert!(verify_confirmation(&low, &from_high(), &mac_high));
}

#[test]
fn kat_payload_ciphertext() {
    let (low, high) = fixture();
    let ct = seal(&low, &LOW, &HIGH, PAYLOAD_LOW);
    assert_eq!(
        hex(&ct),
        "c03f78b73fc0f189fc0ae77d54eaecdd09d7045bcd7116ccc8bb6e53d9f9a4a3"
    );
    assert_eq!(
        open(&high, &HIGH, &LOW, &ct).unwrap().as_slice(),
        PAYLOAD_LOW
    );
}

#[test]
fn fail_reflected_confirmation() {
    // An attacker echoes the low side's own MAC back at it: the low side
    // checks it as the high side's MAC and must refuse it.
    let (low, _) = fixture();
    let mac_low = confirmation(&low, &from_low());
    assert!(!verify_confirmation(&low, &from_high(), &mac_low));
    assert!(!verify_confirmation(&low, &from_low(), &mac_low));
}

#[test]
fn fail_reflected_payload() {
    let (low, _) = fixture();
    let ct = seal(&low, &LOW, &HIGH, PAYLOAD_LOW);
    assert!(open(&low, &LOW, &HIGH, &ct).is_none());
}

#[test]
fn fail_spliced_payload() {
    // The MAC covers both payloads: the high side, shown a different low
    // payload than the one the low side sent, refuses the confirmation.
    let (low, high) = fixture();
    let mac_low = confirmation(&low, &from_low());
    let spliced = Transcript {
        sender_payload: br#"{"user":"mallory"}"#,
        ..from_low()
    };
    assert!(!verify_confirmation(&high, &spliced, &mac_low));
    // Likewise for the receiver's own payload and for each PAKE message.
    let t = Transcript {
        receiver_payload: br#"{"user":"eve"}"#,
        ..from_low()
    };
    assert!(!verify_confirmation(&high, &t, &mac_low));
    let t = Transcript {
        sender_pake: &PAKE_HIGH,
        ..from_low()
    };
    assert!(!verify_confirmation(&high, &t, &mac_low));
    // A ciphertext moved to another session (other ids) fails too.
    let ct = seal(&low, &LOW, &HIGH, PAYLOAD_LOW);
    let other = SessionId([0x33; 16]);
    assert!(open(&high, &other, &LOW, &ct).is_none());
    let mut flipped = ct.clone();
    flipped[0] ^= 1;
    assert!(open(&high, &HIGH, &LOW, &flipped).is_none());
}

#[test]
fn fail_truncated_or_empty_mac() {
    let (low, high) = fixture();
    let mac_low = confirmation(&low, &from_low());
    assert!(!verify_confirmation(&high, &from_low(), &mac_low[..16]));
    assert!(!verify_confirmation(&high, &from_low(), &[]));
}

fn spake(password: &str, id: &[u8]) -> (Spake2<Ed25519Group>, Vec<u8>) {
    Spake2::<Ed25519Group>::start_symmetric(&Password::new(password), &Identity::new(id))
}

#[test]
fn fail_wrong_code() {
    let id = b"git-pair/v1 channel=7";
    let (a, msg_a) = spake("guitar-orbit-velvet", id);
    let (b, msg_b) = spake("guitar-orbit-violin", id);
    let ka = derive(&PakeKey::new(a.finish(&msg_b).unwrap()), &LOW, &HIGH);
    let kb = derive(&PakeKey::new(b.finish(&msg_a).unwrap()), &HIGH, &LOW);
    // spake2 hands out a key either way; only confirmation tells.
    let t = Transcript {
        sender_pake: &msg_a,
        receiver_pake: &msg_b,
        ..from_low()
    };
    let mac = confirmation(&ka, &t);
    assert!(!verify_confirmation(&kb, &t, &mac));
    assert!(open(&kb, &HIGH, &LOW, &seal(&ka, &LOW, &HIGH, b"x")).is_none());
    assert_ne!(ka.sas, kb.sas);
}

#[test]
fn same_code_agrees() {
    let id = b"git-pair/v1 channel=7";
    let (a, msg_a) = spake("guitar-orbit-velvet", id);
    let (b, msg_b) = spake("guitar-orbit-velvet", id);
    let ka = derive(&PakeKey::new(a.finish(&msg_b).unwrap()), &LOW, &HIGH);
    let kb = derive(&PakeKey::new(b.finish(&msg_a).unwrap()), &HIGH, &LOW);
    let t = Transcript {
        sender_pake: &msg_a,
        receiver_pake: &msg_b,
        ..from_low()
    };
    assert!(verify_confirmation(&kb, &t, &confirmation(&ka, &t)));
    assert_eq!(ka.sas, kb.sas);
}

#[test]
fn fail_other_channel() {
    // The channel is bound into the SPAKE2 identity: the same words under
    // another number do not agree.
    let (a, msg_a) = spake("guitar-orbit-velvet", b"git-pair/v1 channel=7");
    let (b, msg_b) = spake("guitar-orbit-velvet", b"git-pair/v1 channel=8");
    let ka = derive(&PakeKey::new(a.finish(&msg_b).unwrap()), &LOW, &HIGH);
    let kb = derive(&PakeKey::new(b.finish(&msg_a).unwrap()), &HIGH, &LOW);
    assert_ne!(ka.sas, kb.sas);
}

#[test]
fn keys_never_show_in_debug() {
    let (low, _) = fixture();
    let dbg = format!("{low:?}");
    assert!(!dbg.contains("1b397a9e"), "{dbg}");
    assert!(!dbg.to_lowercase().contains("27, 57"), "{dbg}");
    assert!(dbg.contains("redacted"));
}
