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
        "4bb3d4d7c42486b7cf8c5b2804a65306f3dc569021d7ce5658ef5fc27c67e2f1"
    );
    assert_eq!(
        hex(&low.peer_confirm.0),
        "bf645b51eee1eeb2a93c912f06b86d9cd85c3ee1dedfdbe0db5eb5c04c170dfc"
    );
    assert_eq!(
        hex(&low.own_payload.0),
        "006dea01ef7dab4753899afc388676b078d7a3de635e4e8d0bde1b99fafdc2fe"
    );
    assert_eq!(
        hex(&low.peer_payload.0),
        "8abe55e849cf0f6d264c8fdbe910fad7220100df3e211ff705e7a852f6da71ad"
    );
    assert_eq!(
        hex(&low.own_end.0),
        "5c4327085ecab5be6f11f4b50d3c743e1c6aa76b69cd18b69a8ba4986fa2c86d"
    );
    assert_eq!(
        hex(&low.peer_end.0),
        "8483be98e39a0db107025d1dce0004012985666888f9df53e6cd752b17f06c8a"
    );
    assert_eq!(
        hex(low.pair_secret.expose()),
        "825ccc6ab5fedc2d16786f772129f12166a442b8dca262a692ae6f86655e476d"
    );
    assert_eq!(
        hex(&low.own_ack.0),
        "7a528f2744d6dc4f325581641bc494a38f3fbaa0730af149b17fa152b5fcab3c"
    );
    assert_eq!(
        hex(&low.peer_ack.0),
        "ea73663d5f8c4ddbf1d40a74acb61ebeace898180207d61524076eb0355a7d2a"
    );
    assert_eq!(low.sas.as_str(), "106 579");
    // The high side derives the same keys with the directions swapped.
    assert_eq!(high.own_confirm.0, low.peer_confirm.0);
    assert_eq!(high.peer_payload.0, low.own_payload.0);
    assert_eq!(high.own_end.0, low.peer_end.0);
    assert_eq!(high.own_ack.0, low.peer_ack.0);
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
        "c732b345b449919728b84b706985f4f17c97962fd34e27042aeb0c33ad1802dd"
    );
    assert_eq!(
        hex(&mac_high),
        "d198e1711d5a7ab41cebba1b169e7647980f0f8dd50e2942f59d8769223a62e0"
    );
    assert!(verify_confirmation(&high, &from_low(), &mac_low));
    assert!(verify_confirmation(&low, &from_high(), &mac_high));
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(bytes))
}

#[test]
fn kat_payload_pieces() {
    let (low, high) = fixture();
    let pieces = seal_pieces(&low, &LOW, &HIGH, PAYLOAD_LOW).unwrap();
    assert_eq!(pieces.len(), 1);
    assert_eq!(
        hex(&pieces[0]),
        "5c7a92ab16cd33b3133014f18d710c344dda0585198e89187b6b80323b9b9a5f"
    );
    assert_eq!(
        open_piece(&high, &HIGH, &LOW, 0, 1, &pieces[0])
            .unwrap()
            .as_slice(),
        PAYLOAD_LOW
    );
    // Two pieces, the first one full.
    let long: Vec<u8> = (0..800).map(|k| (k % 251) as u8).collect();
    let pieces = seal_pieces(&high, &HIGH, &LOW, &long).unwrap();
    assert_eq!(
        pieces.iter().map(Vec::len).collect::<Vec<_>>(),
        [PIECE_LEN, 800 - PIECE_PLAIN + TAG_LEN]
    );
    assert_eq!(
        sha256_hex(&pieces[0]),
        "7438c01d8c136b78d1eb091d771b8f249bf207087cd7775bfcc2508e815c5212"
    );
    assert_eq!(
        sha256_hex(&pieces[1]),
        "e05de991e378de80de9ef3ca0e028f4ca9d8563d137fb4251a771683fc27a2c6"
    );
    let opened: Vec<u8> = pieces
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            open_piece(&low, &LOW, &HIGH, i as u8, 2, p)
                .unwrap()
                .to_vec()
        })
        .collect();
    assert_eq!(opened, long);
    // An empty payload is one piece that holds only its tag.
    let empty = seal_pieces(&low, &LOW, &HIGH, b"").unwrap();
    assert_eq!(hex(&empty[0]), "345dd6e7c89a3f3ad7bcb0fba2b2d1af");
}

/// The tag of an `ack` message from the low side (`Message::signed_bytes` is checked against
/// the same encoding in codec's tests).
#[test]
fn kat_ack_tag() {
    let (low, high) = fixture();
    let mut signed = Vec::new();
    for field in [
        &b"ack"[..],
        LOW.as_bytes(),
        HIGH.as_bytes(),
        &PAKE_HIGH[1..9],
        &5u64.to_be_bytes(),
        &[1],
        &[0],
    ] {
        signed.extend_from_slice(&(field.len() as u64).to_be_bytes());
        signed.extend_from_slice(field);
    }
    let tag = ack_tag(&low, &signed);
    assert_eq!(hex(&tag), "fa4a4af03c726f23d13531b3bfe508cb");
    assert!(verify_ack_tag(&high, &signed, &tag));
    // Reflected back at its sender, or checked as the other direction: refused.
    assert!(!verify_ack_tag(&low, &signed, &tag));
    // Any change to what it covers, a changed tag, or a shorter one: refused.
    let mut changed = signed.clone();
    *changed.last_mut().unwrap() = 1;
    assert!(!verify_ack_tag(&high, &changed, &tag));
    let mut bad = tag;
    bad[15] ^= 1;
    assert!(!verify_ack_tag(&high, &signed, &bad));
    assert!(!verify_ack_tag(&high, &signed, &tag[..15]));
    assert!(!verify_ack_tag(&high, &signed, &[]));
}

#[test]
fn kat_end_message() {
    let (low, high) = fixture();
    let plain = br#"{"end":"refused","detail":"no"}"#;
    let sealed = seal_end(&low, &LOW, &HIGH, plain);
    assert_eq!(
        hex(&sealed),
        "0ca81071dae603973b81966149c398220c8e5adde087342da0312f35e1e4e05514ee63d4d34508fdc49d1246a1a92c"
    );
    assert_eq!(
        open_end(&high, &HIGH, &LOW, &sealed).unwrap().as_slice(),
        plain
    );
    // Reflected back at its sender, or opened as the other direction: refused.
    assert!(open_end(&low, &LOW, &HIGH, &sealed).is_none());
    assert!(open_end(&high, &LOW, &HIGH, &sealed).is_none());
}

#[test]
fn fail_moved_or_forged_pieces() {
    let (low, high) = fixture();
    let long: Vec<u8> = (0..800).map(|k| (k % 251) as u8).collect();
    let pieces = seal_pieces(&low, &LOW, &HIGH, &long).unwrap();
    // Another index, another count, a reflection, another session.
    assert!(open_piece(&high, &HIGH, &LOW, 1, 2, &pieces[0]).is_none());
    assert!(open_piece(&high, &HIGH, &LOW, 0, 3, &pieces[0]).is_none());
    assert!(open_piece(&low, &LOW, &HIGH, 0, 2, &pieces[0]).is_none());
    let other = SessionId([0x33; 16]);
    assert!(open_piece(&high, &other, &LOW, 0, 2, &pieces[0]).is_none());
    // An outsider's bytes never open.
    assert!(open_piece(&high, &HIGH, &LOW, 0, 2, &[0u8; 64]).is_none());
    let mut flipped = pieces[1].clone();
    flipped[0] ^= 1;
    assert!(open_piece(&high, &HIGH, &LOW, 1, 2, &flipped).is_none());
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
    let ct = seal_pieces(&low, &LOW, &HIGH, PAYLOAD_LOW).unwrap();
    assert!(open_piece(&low, &LOW, &HIGH, 0, 1, &ct[0]).is_none());
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
    let ct = seal_pieces(&low, &LOW, &HIGH, PAYLOAD_LOW)
        .unwrap()
        .remove(0);
    let other = SessionId([0x33; 16]);
    assert!(open_piece(&high, &other, &LOW, 0, 1, &ct).is_none());
    let mut flipped = ct.clone();
    flipped[0] ^= 1;
    assert!(open_piece(&high, &HIGH, &LOW, 0, 1, &flipped).is_none());
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
    let id = b"git-pair/v3 channel=7";
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
    let piece = seal_pieces(&ka, &LOW, &HIGH, b"x").unwrap().remove(0);
    assert!(open_piece(&kb, &HIGH, &LOW, 0, 1, &piece).is_none());
    assert!(open_end(&kb, &HIGH, &LOW, &seal_end(&ka, &LOW, &HIGH, b"{}")).is_none());
    assert_ne!(ka.sas, kb.sas);
}

#[test]
fn same_code_agrees() {
    let id = b"git-pair/v3 channel=7";
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
    let (a, msg_a) = spake("guitar-orbit-velvet", b"git-pair/v3 channel=7");
    let (b, msg_b) = spake("guitar-orbit-velvet", b"git-pair/v3 channel=8");
    let ka = derive(&PakeKey::new(a.finish(&msg_b).unwrap()), &LOW, &HIGH);
    let kb = derive(&PakeKey::new(b.finish(&msg_a).unwrap()), &HIGH, &LOW);
    assert_ne!(ka.sas, kb.sas);
}

#[test]
fn keys_never_show_in_debug() {
    let (low, _) = fixture();
    let dbg = format!("{low:?}");
    assert!(!dbg.contains("f8288a58"), "{dbg}");
    assert!(!dbg.to_lowercase().contains("248, 40"), "{dbg}");
    assert!(dbg.contains("redacted"));
}
