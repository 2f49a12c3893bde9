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
        "f8288a58fa0477a39165c29f574be11c9cb6636545f41d848b8ffc91b96e25fd"
    );
    assert_eq!(
        hex(&low.peer_confirm.0),
        "4d92e9614c70c02568d3f0b8928eda994d4a87fcba11b0e7604aea29e73d370c"
    );
    assert_eq!(
        hex(&low.own_payload.0),
        "908eedd9495db7dad9c2b1e0de7d1597085fd036f63fe5bdd152bfb2ebc7838b"
    );
    assert_eq!(
        hex(&low.peer_payload.0),
        "2a41a035381173b6cc5e1789e5fb2540e44550aa2494b31e100e0b38929bcd1b"
    );
    assert_eq!(
        hex(&low.own_end.0),
        "1a03a303b11b12dfc64850bbeff09572d783834404dcaa8c545d78fae2f98e05"
    );
    assert_eq!(
        hex(&low.peer_end.0),
        "2c755568b2ffa026556e0c54ddefce33ac938623a8106958f3494192c00f30fa"
    );
    assert_eq!(
        hex(low.pair_secret.expose()),
        "27d47e0d1f008b89848790d395b5e97192361eab9831d767751f34403a0cbad7"
    );
    assert_eq!(low.sas.as_str(), "566 230");
    // The high side derives the same keys with the directions swapped.
    assert_eq!(high.own_confirm.0, low.peer_confirm.0);
    assert_eq!(high.peer_payload.0, low.own_payload.0);
    assert_eq!(high.own_end.0, low.peer_end.0);
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
        "cd941fe035887ea71cd7253b0e2bb7c902147043575f7700227d59f04e555fec"
    );
    assert_eq!(
        hex(&mac_high),
        "16bb7f08f7bcb48d550ce6f80014684011b72377dc89c6227fa3e5f3e7f9edad"
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
        "0d29942fc64ad5b67c38ce3425ab52c04c56dee3ad76bd6f56b04d2eadf79e1c"
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
        "56297c3a1123af057cd9113f154ff2904ddc9e6062b7aa11e6b8a83fc6980fc4"
    );
    assert_eq!(
        sha256_hex(&pieces[1]),
        "7f653397a6ece744e421e49e70fee06244ba3cba5040bb99a69e9ffa3028f5f0"
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
    assert_eq!(hex(&empty[0]), "32964281b3581ab7d9e9e66bc4b818bb");
}

#[test]
fn kat_end_message() {
    let (low, high) = fixture();
    let plain = br#"{"end":"refused","detail":"no"}"#;
    let sealed = seal_end(&low, &LOW, &HIGH, plain);
    assert_eq!(
        hex(&sealed),
        "8db6425a690977ad09426b2a79b721a5e5d71c0cac1aa3944cd8932e74801c58981de72afe5ed79b151222eb098e1c"
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
    let id = b"git-pair/v2 channel=7";
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
    let id = b"git-pair/v2 channel=7";
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
    let (a, msg_a) = spake("guitar-orbit-velvet", b"git-pair/v2 channel=7");
    let (b, msg_b) = spake("guitar-orbit-velvet", b"git-pair/v2 channel=8");
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
