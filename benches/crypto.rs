//! Criterion micro-benchmarks of the crypto path of one pairing: the SPAKE2
//! exchange, the key schedule and confirmation MACs, the payload seal and
//! open, ed25519 login key generation, the wire codec, and git-annex's
//! HMAC-SHA1 phrase check (the anchor of the cost-of-a-guess figure).
//! `scripts/bench` runs them and copies the medians into BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hmac::{Hmac, Mac};
use sha1::Sha1;
use spake2::{Ed25519Group, Identity, Password, Spake2};

use git_pair::keys::LoginKey;
use git_pair::protocol::codec::{self, Ack, Bytes, Message, SessionId, PIECE_LEN};
use git_pair::protocol::schedule::{self, PakeKey, Transcript};

const PASSWORD: &[u8] = b"guitar-orbit-velvet";
const IDENTITY: &[u8] = b"git-pair/v1 channel=7";
const A: SessionId = SessionId([0x11; 16]);
const B: SessionId = SessionId([0x22; 16]);

/// Both sides' SPAKE2 start and finish: one side's share is half of this.
fn pake_exchange() -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
    let (sa, ma) =
        Spake2::<Ed25519Group>::start_symmetric(&Password::new(PASSWORD), &Identity::new(IDENTITY));
    let (sb, mb) =
        Spake2::<Ed25519Group>::start_symmetric(&Password::new(PASSWORD), &Identity::new(IDENTITY));
    let ka = sa.finish(&mb).expect("valid message");
    let kb = sb.finish(&ma).expect("valid message");
    (ka, kb, ma, mb)
}

fn pake(c: &mut Criterion) {
    c.bench_function("pake/spake2 exchange, both sides", |b| {
        b.iter(|| black_box(pake_exchange()))
    });
    c.bench_function("pake/spake2 one side (start + finish)", |b| {
        let (_, mb) = Spake2::<Ed25519Group>::start_symmetric(
            &Password::new(PASSWORD),
            &Identity::new(IDENTITY),
        );
        b.iter(|| {
            let (s, m) = Spake2::<Ed25519Group>::start_symmetric(
                &Password::new(black_box(PASSWORD)),
                &Identity::new(IDENTITY),
            );
            black_box((s.finish(&mb).expect("valid message"), m))
        })
    });
}

fn confirmation(c: &mut Criterion) {
    let (ka, kb, ma, mb) = pake_exchange();
    let payload_a = vec![b'a'; 600];
    let payload_b = vec![b'b'; 600];
    c.bench_function("schedule/derive session keys (HKDF)", |b| {
        b.iter(|| black_box(schedule::derive(&PakeKey::new(ka.clone()), &A, &B)))
    });
    let keys_a = schedule::derive(&PakeKey::new(ka), &A, &B);
    let keys_b = schedule::derive(&PakeKey::new(kb), &B, &A);
    let t_a = Transcript {
        sender: &A,
        receiver: &B,
        sender_pake: &ma,
        receiver_pake: &mb,
        sender_payload: &payload_a,
        receiver_payload: &payload_b,
    };
    c.bench_function("confirm/transcript MAC (HMAC-SHA256)", |b| {
        b.iter(|| black_box(schedule::confirmation(&keys_a, black_box(&t_a))))
    });
    let tag = schedule::confirmation(&keys_a, &t_a);
    c.bench_function("confirm/verify peer MAC", |b| {
        b.iter(|| {
            assert!(schedule::verify_confirmation(
                &keys_b,
                black_box(&t_a),
                &tag
            ))
        })
    });
    c.bench_function("payload/seal 600 bytes (ChaCha20-Poly1305)", |b| {
        b.iter(|| {
            black_box(schedule::seal_pieces(
                &keys_a,
                &A,
                &B,
                black_box(&payload_a),
            ))
        })
    });
    let sealed = schedule::seal_pieces(&keys_a, &A, &B, &payload_a).expect("fits");
    let n = sealed.len() as u8;
    c.bench_function("payload/open 600 bytes", |b| {
        b.iter(|| {
            for (i, piece) in sealed.iter().enumerate() {
                black_box(
                    schedule::open_piece(&keys_b, &B, &A, i as u8, n, black_box(piece))
                        .expect("opens"),
                );
            }
        })
    });
}

fn keygen(c: &mut Criterion) {
    c.bench_function("keys/ed25519 login key generation", |b| {
        b.iter(|| black_box(LoginKey::generate("git-pair bench@host").expect("generates")))
    });
}

fn codec_bench(c: &mut Criterion) {
    let data = Message::Data {
        sid: A,
        to: B,
        i: 0,
        n: 1,
        d: Bytes(vec![0x5a; PIECE_LEN]),
        ack: Ack::default(),
    };
    let pake = Message::Pake {
        sid: A,
        to: B,
        m: Bytes(vec![0x33; codec::PAKE_MESSAGE_LEN]),
        ack: Ack::default(),
    };
    for (name, msg) in [("data piece", &data), ("pake", &pake)] {
        let bytes = codec::encode(msg).expect("encodes");
        c.bench_function(&format!("codec/encode {name}"), |b| {
            b.iter(|| black_box(codec::encode(black_box(msg)).expect("encodes")))
        });
        c.bench_function(&format!("codec/decode {name}"), |b| {
            b.iter(|| black_box(codec::decode(black_box(&bytes)).expect("decodes")))
        });
    }
}

fn annex_anchor(c: &mut Criterion) {
    // The length of a recorded git-annex PairReq's shown value (see
    // benches/pairing/guess.rs); only the length matters to the cost.
    let shown = vec![b'x'; 640];
    c.bench_function("git-annex anchor/HMAC-SHA1 check of one phrase", |b| {
        b.iter(|| {
            let mut mac =
                <Hmac<Sha1> as Mac>::new_from_slice(black_box(b"abcdef")).expect("any key length");
            mac.update(&shown);
            black_box(mac.finalize().into_bytes())
        })
    });
}

criterion_group! {
    name = benches;
    // Shorter than criterion's defaults: the figures settle well within
    // this, and scripts/bench runs fifteen of them.
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = pake, confirmation, keygen, codec_bench, annex_anchor
}
criterion_main!(benches);
