//! Known-answer vectors of the locate protocol (computed by tests/vectors/locate.py, an
//! independent Python implementation of the format in the module documentation), and
//! properties of its codec.

use super::*;
use proptest::prelude::*;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn secret() -> PairSecret {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = i as u8;
    }
    PairSecret::from_bytes(bytes)
}

const NONCE: Nonce = [0xa5; 16];

#[test]
fn kat_keys() {
    let low = LocateKeys::derive(&secret(), Role::Low);
    let high = LocateKeys::derive(&secret(), Role::High);
    let q_low = "54f88b2d070de64f70ee046a1e7a9b02b4a37bb2ce03db8a74872b4d1bc19934";
    let q_high = "d4c4f68310df22a8dd07f797843c64fe23c6ec2d8f75cb6db073d35edf381734";
    let a_low = "87a81f5701f091f3e06bc924ff1ba5000e925efa113d92e4ffb296ba1069a9ad";
    let a_high = "315c956d0e764fd0b9db1d175ce471f941b41383a8ab4fe4a26be4ac2820e3e2";
    assert_eq!(
        [
            hex(&low.own_query.0),
            hex(&low.peer_query.0),
            hex(&low.own_answer.0),
            hex(&low.peer_answer.0)
        ],
        [q_low, q_high, a_low, a_high]
    );
    assert_eq!(
        [
            hex(&high.own_query.0),
            hex(&high.peer_query.0),
            hex(&high.own_answer.0),
            hex(&high.peer_answer.0)
        ],
        [q_high, q_low, a_high, a_low]
    );
}

#[test]
fn kat_query_and_answer() {
    let low = LocateKeys::derive(&secret(), Role::Low);
    let high = LocateKeys::derive(&secret(), Role::High);
    let q = encode_query(&low, &NONCE);
    assert_eq!(
        hex(&q),
        "47504c0101a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5\
         8ed272efc0b454921ad03ecc569b906dc65d98e2b612ea26359b9773e959bcd6"
    );
    let view = parse_query(&q).unwrap();
    assert_eq!(view.nonce, NONCE);
    assert!(verify_query(&high, &view));
    let answer = Answer {
        nonce: NONCE,
        ssh_port: 22,
        addresses: vec!["10.0.0.2".parse().unwrap(), "fe80::2".parse().unwrap()],
    };
    let a = encode_answer(&high, &answer);
    assert_eq!(
        hex(&a),
        "47504c0102a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a50016020\
         40a00000206fe800000000000000000000000000002\
         4dee0d826ec116c5b24a4f4c1679050ee4f26cd64a432a5da68426d1e7a5506a"
    );
    assert_eq!(open_answer(&low, &a, &[NONCE]), Ok(answer));
}

#[test]
fn directions_and_roles_never_mix() {
    let low = LocateKeys::derive(&secret(), Role::Low);
    let high = LocateKeys::derive(&secret(), Role::High);
    let q = encode_query(&low, &NONCE);
    // A query reflected to a watcher of the same role does not verify.
    assert!(!verify_query(&low, &parse_query(&q).unwrap()));
    // An answer made by the querying role is not accepted by it.
    let a = encode_answer(
        &low,
        &Answer {
            nonce: NONCE,
            ssh_port: 22,
            addresses: vec![],
        },
    );
    assert_eq!(
        open_answer(&low, &a, &[NONCE]),
        Err(AnswerError::Unauthenticated)
    );
    assert!(open_answer(&high, &a, &[NONCE]).is_ok());
    // A query is not an answer, an answer is not a query.
    assert_eq!(
        open_answer(&high, &q, &[NONCE]),
        Err(AnswerError::Malformed)
    );
    assert!(parse_query(&a).is_none());
}

#[test]
fn an_answer_binds_its_nonce_and_every_byte() {
    let low = LocateKeys::derive(&secret(), Role::Low);
    let high = LocateKeys::derive(&secret(), Role::High);
    let a = encode_answer(
        &high,
        &Answer {
            nonce: NONCE,
            ssh_port: 2222,
            addresses: vec!["10.0.0.2".parse().unwrap()],
        },
    );
    assert_eq!(
        open_answer(&low, &a, &[[0; 16]]),
        Err(AnswerError::UnknownNonce)
    );
    assert_eq!(open_answer(&low, &a, &[]), Err(AnswerError::UnknownNonce));
    for i in 0..a.len() {
        let mut bad = a.clone();
        bad[i] ^= 0x01;
        assert!(open_answer(&low, &bad, &[NONCE]).is_err(), "byte {i}");
    }
}

#[test]
fn structurally_bad_answers_are_malformed() {
    let high = LocateKeys::derive(&secret(), Role::High);
    let low = LocateKeys::derive(&secret(), Role::Low);
    let good = encode_answer(
        &high,
        &Answer {
            nonce: NONCE,
            ssh_port: 22,
            addresses: vec!["10.0.0.2".parse().unwrap()],
        },
    );
    let mut port_zero = good.clone();
    port_zero[21] = 0;
    port_zero[22] = 0;
    let mut bad_family = good.clone();
    bad_family[24] = 5;
    let mut too_many = good.clone();
    too_many[23] = 17;
    let mut count_short = good.clone();
    count_short[23] = 2;
    for bad in [
        &good[..good.len() - 1],
        &port_zero[..],
        &bad_family,
        &too_many,
        &count_short,
        &[0u8; MAX_ANSWER_LEN + 1],
        b"",
    ] {
        assert_eq!(
            open_answer(&low, bad, &[NONCE]),
            Err(AnswerError::Malformed)
        );
    }
}

#[test]
fn answers_carry_at_most_max_addresses_and_fit_the_limit() {
    let high = LocateKeys::derive(&secret(), Role::High);
    let low = LocateKeys::derive(&secret(), Role::Low);
    let many: Vec<IpAddr> = (0..40u16)
        .map(|i| IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, i)))
        .collect();
    let a = encode_answer(
        &high,
        &Answer {
            nonce: NONCE,
            ssh_port: 22,
            addresses: many.clone(),
        },
    );
    assert_eq!(a.len(), MAX_ANSWER_LEN);
    let opened = open_answer(&low, &a, &[NONCE]).unwrap();
    assert_eq!(opened.addresses, many[..MAX_ADDRESSES]);
}

#[test]
fn debug_shows_no_key() {
    let shown = format!("{:?}", LocateKeys::derive(&secret(), Role::Low));
    assert_eq!(shown, "LocateKeys(<redacted>)");
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b))),
    ]
}

proptest! {
    #[test]
    fn every_answer_round_trips(
        nonce in any::<[u8; 16]>(),
        port in 1u16..,
        addresses in proptest::collection::vec(arb_ip(), 0..=MAX_ADDRESSES),
        byte in any::<u8>(),
    ) {
        let s = PairSecret::from_bytes([byte; 32]);
        let answer = Answer { nonce, ssh_port: port, addresses };
        let a = encode_answer(&LocateKeys::derive(&s, Role::Low), &answer);
        prop_assert!(a.len() <= MAX_ANSWER_LEN);
        prop_assert_eq!(open_answer(&LocateKeys::derive(&s, Role::High), &a, &[nonce]), Ok(answer));
    }

    #[test]
    fn every_query_verifies_for_the_peer_only(nonce in any::<[u8; 16]>(), byte in any::<u8>()) {
        let s = PairSecret::from_bytes([byte; 32]);
        let q = encode_query(&LocateKeys::derive(&s, Role::High), &nonce);
        let view = parse_query(&q).unwrap();
        prop_assert_eq!(view.nonce, nonce);
        prop_assert!(verify_query(&LocateKeys::derive(&s, Role::Low), &view));
        let other = PairSecret::from_bytes([byte.wrapping_add(1); 32]);
        prop_assert!(!verify_query(&LocateKeys::derive(&other, Role::Low), &view));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let keys = LocateKeys::derive(&secret(), Role::Low);
        if let Some(q) = parse_query(&bytes) {
            prop_assert!(!verify_query(&keys, &q));
        }
        prop_assert!(open_answer(&keys, &bytes, &[NONCE]).is_err());
    }
}
