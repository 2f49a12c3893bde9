//! Test vectors of the pairing protocol (doc/PROTOCOL.md): complete recorded exchanges, with
//! every input a side had (the code as typed, its payload, the seed of its random numbers, the
//! datagrams it received and when, what its driver decided), and everything it produced (the
//! datagrams it sent, byte for byte, and its events).
//!
//! - `recorded_exchanges_replay_byte_for_byte` feeds each side's recorded inputs into a fresh
//!   [`Machine`] built from the recorded inputs and checks that it sends the very same datagrams
//!   and reports the same events, step by step.
//! - `recorded_exchanges_are_coherent` checks that each vector is one exchange: every datagram a
//!   side received was sent by the other side, and its random inputs come from its seed.
//! - `an_independent_implementation_agrees` runs `tests/vectors/exchange.py`, a second
//!   implementation of the specification in Python's standard library alone (Ed25519, SPAKE2,
//!   HKDF, HMAC, ChaCha20-Poly1305 written from the RFCs), which opens every recorded datagram
//!   and recomputes every PAKE message, key, piece, MAC, end message and check string.
//!
//! `GIT_PAIR_BLESS=1 cargo test --test vectors` records the vectors again
//! (tests/vectors/exchange.json) by running two machines over a simulated, lossless LAN in
//! virtual time; rerun it after a change to the wire protocol, and review the diff.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use git_pair::protocol::codec::End;
use git_pair::protocol::machine::Event;
use git_pair::protocol::payload::Payload;
use git_pair::protocol::schedule::PairSecret;
use git_pair::protocol::{Code, Config, Destination, Machine};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

fn vectors_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/exchange.json")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn seed_of(s: &str) -> [u8; 32] {
    unhex(s).try_into().expect("a 32-byte seed")
}

/// One side of a scenario: what it types, what it sends about itself, and what its driver does.
struct SideSpec {
    name: &'static str,
    address: &'static str,
    typed: &'static str,
    /// Whether this side generated the code (its hellos say so) or was given it.
    generated: bool,
    seed: [u8; 32],
    payload: Payload,
    /// The pair secrets of earlier pairings this side holds: its payload proves each.
    proof_secrets: Vec<[u8; 32]>,
    /// On the peer's payload: `None` accepts it, `Some(detail)` refuses it.
    refuse: Option<&'static str>,
    /// Once verified: how this side concludes.
    conclude: End,
}

struct Scenario {
    name: &'static str,
    description: &'static str,
    sides: [SideSpec; 2],
}

const ALICE_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHTAEwnuqWpeqDTQBJqu5qonIo2yGExF9CDdEsbIuUsC git-pair alice@laptop";
const BOB_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDCGvKEsLX1yGIobDXbs381s+dtCWfh7dEUSoOHOqg/M git-pair bob@desktop";
const LAPTOP_HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMPoJuX45F5rhCpSHvqWFLrp58SPqxpjitVVXYEzkfWM root@laptop";
const DESKTOP_HOST_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPzCg4SR7HcYnqWMC+9fAyqdxlmFRRYYH4/29KgBrsby root@desktop";
const DESKTOP_RSA_HOST_KEY: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCxHRSgmez0H8b9P4/Q73Hom0TS/wDNUoqIa1L3BRTArp75193Lw+UKeMtGq5F2Rv7sCGiEJTy9SmCzoHHOBnBs3GeB/D/rcm0gSdGl5+VcGuENZAMiWvalRfsLZFCiR9nMagnzi5X2yPl3B+RWpig5EC6r7zASLDO/FDu9e5vdzbBCIiRu+w2Y9V+rz7QwaahtAyvQCTdLFRJl79j87zHGAC7nUHrrP9zfKZN+M29QDQqyPmS1c0IDpiQg8ZaA9UV5kjDQRd48U1lf+BYv3VJa5oDsiQfMIKLHzFpquXz//N0wsddqdSwOORMXcSWKpYY4JblfRiV509NSt/bLpppoj2uS2danIAwjhvu8RyfeRpF1yFH8jsgJNl0e1myeIYNWcJJ8vN2/MibEKZRbav4ewPSS7rb+/u0BEBpjZ+wSf22ZbbDZgkGEDMkfvt6Vq+J10wwJ3CQTanLi7qnhnh0io1s+XYHL4aFlvTky4gWUT0UIw2raQ0gL484l8ERBL40= root@desktop";

fn alice() -> Payload {
    Payload {
        user: "alice".into(),
        host: "laptop".into(),
        path: "/home/alice/notes".into(),
        user_key: ALICE_KEY.into(),
        host_keys: vec![LAPTOP_HOST_KEY.into()],
        ssh_port: 22,
        addresses: vec!["192.0.2.1".into(), "fe80::1".into()],
        annex_uuid: None,
        annex_shell: false,
    }
}

/// Bob's payload is larger than one piece (704 bytes): it travels as two `data` pieces.
fn bob() -> Payload {
    Payload {
        user: "bob".into(),
        host: "desktop".into(),
        path: "/srv/git/notes".into(),
        user_key: BOB_KEY.into(),
        host_keys: vec![DESKTOP_HOST_KEY.into(), DESKTOP_RSA_HOST_KEY.into()],
        ssh_port: 2222,
        addresses: vec!["192.0.2.2".into(), "2001:db8::2".into()],
        annex_uuid: Some("0b3c5d4e-1111-4222-8333-123456789abc".into()),
        annex_shell: true,
    }
}

const SEED_A: [u8; 32] = [0xa1; 32];
/// The pair secret of an earlier pairing of Alice's and Bob's repositories.
const EARLIER_SECRET: [u8; 32] = [0x5e; 32];
const SEED_B: [u8; 32] = [0xb2; 32];
const ADDR_A: &str = "192.0.2.1:50001";
const ADDR_B: &str = "192.0.2.2:50002";

fn scenarios() -> Vec<Scenario> {
    let side = |name, address, typed, seed, payload| SideSpec {
        name,
        address,
        typed,
        // Side a shows the code it generated; side b types it.
        generated: name == "a",
        seed,
        payload,
        proof_secrets: Vec::new(),
        refuse: None,
        conclude: End::Ready,
    };
    vec![
        Scenario {
            name: "paired",
            description: "Both sides hold the code (typed differently: case, separators and a \
                          leading zero do not matter), verify each other and end ready. Bob's \
                          payload takes two pieces. A re-pair: both hold the pair secret of an \
                          earlier pairing of these repositories (Alice one more), and each \
                          payload proves the secrets its side holds.",
            sides: [
                SideSpec {
                    proof_secrets: vec![EARLIER_SECRET, [0x0a; 32]],
                    ..side("a", ADDR_A, "7-guitar-orbit-velvet", SEED_A, alice())
                },
                SideSpec {
                    proof_secrets: vec![EARLIER_SECRET],
                    ..side("b", ADDR_B, " 07 Guitar  orbit-VELVET", SEED_B, bob())
                },
            ],
        },
        Scenario {
            name: "codes_differ",
            description: "The last word differs. Both sides run SPAKE2 and send their sealed \
                          pieces, which do not open on the other side; after VERIFY_GRACE each \
                          counts a failed guess, and CODES_DIFFER_AFTER later both stop.",
            sides: [
                side("a", ADDR_A, "7-guitar-orbit-velvet", SEED_A, alice()),
                side("b", ADDR_B, "7-guitar-orbit-violin", SEED_B, bob()),
            ],
        },
        Scenario {
            name: "refused",
            description: "Bob opens Alice's payload but refuses it (its sshd does not answer): \
                          he never confirms, and tells her why in a sealed end.",
            sides: [
                side("a", ADDR_A, "42-abacus-abbey-able", SEED_A, alice()),
                SideSpec {
                    refuse: Some("your sshd on TCP port 22 does not answer"),
                    ..side("b", ADDR_B, "42-abacus-abbey-able", SEED_B, bob())
                },
            ],
        },
        Scenario {
            name: "declined",
            description: "Both verify; Alice's user does not confirm the check string \
                          (--verify), so she ends declined and Bob, set up already, learns it.",
            sides: [
                SideSpec {
                    conclude: End::Declined,
                    ..side("a", ADDR_A, "correct horse battery staple", SEED_A, alice())
                },
                side("b", ADDR_B, "Correct-Horse-Battery-Staple", SEED_B, bob()),
            ],
        },
    ]
}

fn destination(d: &Destination) -> String {
    match d {
        Destination::Multicast => "multicast".into(),
        Destination::Unicast(a) => a.to_string(),
    }
}

fn event_json(e: &Event) -> Value {
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).expect("payloads are UTF-8 JSON");
    let addrs = |v: &[SocketAddr]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
    match e {
        Event::PeerSeen { peer, from } => {
            json!({"event": "peer_seen", "peer": hex(peer.as_bytes()), "from": from.to_string()})
        }
        Event::PeerPayload {
            peer,
            payload,
            sources,
            proofs,
        } => json!({"event": "peer_payload", "peer": hex(peer.as_bytes()),
                    "payload": text(payload), "sources": addrs(sources),
                    "proofs": proofs.iter().map(|p| hex(p)).collect::<Vec<_>>()}),
        Event::VerifyFailed {
            peer,
            from,
            failures,
        } => json!({"event": "verify_failed", "peer": hex(peer.as_bytes()),
                    "from": from.to_string(), "failures": failures}),
        Event::Verified(v) => json!({"event": "verified", "peer": hex(v.peer.as_bytes()),
            "payload": text(&v.payload), "sas": v.sas.as_str(),
            "pair_secret": hex(v.pair_secret.expose()), "sources": addrs(&v.sources)}),
        Event::PeerEnded { peer, end } => {
            json!({"event": "peer_ended", "peer": hex(peer.as_bytes()), "end": end})
        }
        Event::PeerSilent { peer } => json!({"event": "peer_silent", "peer": hex(peer.as_bytes())}),
        Event::Finished => json!({"event": "finished"}),
        Event::TooManyFailures { failures } => {
            json!({"event": "too_many_failures", "failures": failures})
        }
        Event::CodesDiffer { failures } => json!({"event": "codes_differ", "failures": failures}),
    }
}

/// What a machine sent and told after one input.
fn drain(m: &mut Machine<ChaCha20Rng>) -> (Vec<Value>, Vec<Value>, Vec<Event>) {
    let mut transmits = Vec::new();
    while let Some(t) = m.poll_transmit() {
        transmits.push(json!({
            "to": destination(&t.destination),
            "datagram": String::from_utf8(t.datagram).expect("datagrams are UTF-8 JSON"),
        }));
    }
    let mut events = Vec::new();
    let mut raw = Vec::new();
    while let Some(e) = m.poll_event() {
        events.push(event_json(&e));
        raw.push(e);
    }
    (transmits, events, raw)
}

fn at_us(start: Instant, t: Instant) -> u64 {
    t.duration_since(start).as_micros() as u64
}

/// One step of a side: an input and what it produced.
fn step(at: u64, input: Value, transmits: Vec<Value>, events: Vec<Value>) -> Value {
    json!({"at_us": at, "input": input, "sent": transmits, "events": events})
}

struct Node {
    spec: SideSpec,
    machine: Machine<ChaCha20Rng>,
    addr: SocketAddr,
    steps: Vec<Value>,
    /// The driver stopped driving (the peer ended the session unverified, as the real driver
    /// does on a refusal).
    stopped: bool,
}

/// Whether a driver stops on these events without the machine being done: the peer ended the
/// session before it was verified, with anything but ready.
fn driver_stops(events: &[Value]) -> bool {
    events
        .iter()
        .any(|e| e["event"] == "peer_ended" && e["end"]["end"] != "ready")
}

/// A datagram on the simulated LAN: (arrival, sequence, to node, from, bytes).
type InFlight = (Instant, u64, usize, SocketAddr, Vec<u8>);

/// The delay of every datagram on the simulated LAN.
const LATENCY: Duration = Duration::from_millis(1);
/// A scenario that is not over after this much virtual time is a bug.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs a scenario over a lossless LAN in virtual time and records both sides.
fn record(s: Scenario, start: Instant) -> Value {
    let mut nodes: Vec<Node> = s
        .sides
        .into_iter()
        .map(|spec| {
            let config = Config {
                code: Code::parse(spec.typed).expect("a valid code"),
                payload: spec.payload.to_bytes(),
                peers: Vec::new(),
                scan: Vec::new(),
                proof_secrets: spec
                    .proof_secrets
                    .iter()
                    .map(|s| PairSecret::from_bytes(*s))
                    .collect(),
                generated: spec.generated,
            };
            let machine = Machine::new(config, start, ChaCha20Rng::from_seed(spec.seed))
                .expect("the payload fits");
            Node {
                addr: spec.address.parse().unwrap(),
                spec,
                machine,
                steps: Vec::new(),
                stopped: false,
            }
        })
        .collect();
    let mut wire: BinaryHeap<Reverse<InFlight>> = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        if nodes.iter().all(|n| n.stopped || n.machine.is_done()) {
            break;
        }
        let next_timer = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !n.stopped)
            .filter_map(|(i, n)| n.machine.poll_timeout().map(|t| (t, i)))
            .min();
        let next_arrival = wire.peek().map(|Reverse((t, ..))| *t);
        let (now, input) = match (next_timer, next_arrival) {
            (Some((t, i)), None) => (t, Ok(i)),
            (Some((t, i)), Some(a)) if t < a => (t, Ok(i)),
            (_, Some(a)) => (a, Err(())),
            (None, None) => break,
        };
        assert!(now - start < LIMIT, "scenario {} did not end", s.name);
        let (i, input_json) = match input {
            Ok(i) => {
                nodes[i].machine.handle_timeout(now);
                (i, json!("timeout"))
            }
            Err(()) => {
                let Reverse((_, _, to, from, datagram)) = wire.pop().unwrap();
                if nodes[to].stopped {
                    // Its sockets are closed.
                    continue;
                }
                nodes[to].machine.handle_datagram(now, from, &datagram);
                let text = String::from_utf8(datagram).unwrap();
                (
                    to,
                    json!({"datagram": {"from": from.to_string(), "bytes": text}}),
                )
            }
        };
        // The step, then whatever the driver does about its events, as steps of their own.
        let mut pending = vec![input_json];
        let mut first = true;
        while let Some(input_json) = pending.pop() {
            if !first {
                // A driver call.
                let call = input_json.as_object().unwrap();
                let m = &mut nodes[i].machine;
                if let Some(peer) = call.get("accept") {
                    m.accept(now, peer_id(peer));
                } else if let Some(r) = call.get("refuse") {
                    m.refuse(now, peer_id(&r["peer"]), r["detail"].as_str().unwrap());
                } else if let Some(end) = call.get("conclude") {
                    m.conclude(now, serde_json::from_value(end.clone()).unwrap());
                }
            }
            first = false;
            let (transmits, events, raw) = drain(&mut nodes[i].machine);
            for t in &transmits {
                let bytes = t["datagram"].as_str().unwrap().as_bytes().to_vec();
                let to = t["to"].as_str().unwrap();
                for (j, other) in nodes.iter().enumerate() {
                    if j != i && (to == "multicast" || to == other.addr.to_string()) {
                        seq += 1;
                        wire.push(Reverse((
                            now + LATENCY,
                            seq,
                            j,
                            nodes[i].addr,
                            bytes.clone(),
                        )));
                    }
                }
            }
            if driver_stops(&events) {
                nodes[i].stopped = true;
            }
            nodes[i]
                .steps
                .push(step(at_us(start, now), input_json, transmits, events));
            // The driver's answers, in the order of the events.
            for e in raw.iter().rev() {
                match e {
                    Event::PeerPayload { peer, .. } => pending.push(match nodes[i].spec.refuse {
                        None => json!({"accept": hex(peer.as_bytes())}),
                        Some(detail) => {
                            json!({"refuse": {"peer": hex(peer.as_bytes()), "detail": detail}})
                        }
                    }),
                    Event::Verified(_) => pending.push(json!({"conclude": nodes[i].spec.conclude})),
                    _ => {}
                }
            }
        }
    }
    let sides: Vec<Value> = nodes
        .into_iter()
        .map(|n| {
            let code = Code::parse(n.spec.typed).unwrap();
            let sessions = n
                .steps
                .iter()
                .flat_map(|s| s["events"].as_array().unwrap().iter())
                .filter(|e| e["event"] == "peer_seen")
                .count();
            json!({
                "name": n.spec.name,
                "address": n.spec.address,
                "typed_code": n.spec.typed,
                "generated": n.spec.generated,
                "channel": code.channel(),
                "password": String::from_utf8(code.password().to_vec()).unwrap(),
                "rng_seed": hex(&n.spec.seed),
                "sid": hex(n.machine.session_id().as_bytes()),
                "spake2_x_wide": spake2_randoms(&n.spec.seed, sessions),
                "payload": String::from_utf8(n.spec.payload.to_bytes()).unwrap(),
                "proof_secrets": n.spec.proof_secrets.iter().map(|s| hex(s)).collect::<Vec<_>>(),
                "steps": n.steps,
            })
        })
        .collect();
    json!({"name": s.name, "description": s.description, "sides": sides})
}

fn peer_id(v: &Value) -> git_pair::protocol::codec::SessionId {
    git_pair::protocol::codec::SessionId(unhex(v.as_str().unwrap()).try_into().unwrap())
}

/// The 64 random bytes the SPAKE2 run of a side reduces its secret scalar from
/// (`x = little-endian integer mod l`): the machine draws its 16-byte session id from its random
/// number generator first, then 64 bytes for the first session's SPAKE2 run (then the filler
/// proofs of that session's payload, and so on). Every vector has one session per side.
fn spake2_randoms(seed: &[u8; 32], sessions: usize) -> Vec<String> {
    assert_eq!(sessions, 1, "the vectors have one session per side");
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let mut sid = [0u8; 16];
    rng.fill_bytes(&mut sid);
    (0..sessions)
        .map(|_| {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            hex(&wide)
        })
        .collect()
}

fn recorded() -> Value {
    let text = std::fs::read_to_string(vectors_path()).expect(
        "tests/vectors/exchange.json: record it with GIT_PAIR_BLESS=1 cargo test --test vectors",
    );
    serde_json::from_str(&text).expect("exchange.json is JSON")
}

fn fresh() -> Value {
    let start = Instant::now();
    json!({
        "about": "Recorded exchanges of the git-pair pairing protocol, version 3 (doc/PROTOCOL.md). \
                  Written by `GIT_PAIR_BLESS=1 cargo test --test vectors`; replayed by tests/vectors.rs, \
                  checked independently by tests/vectors/exchange.py. Times are microseconds from the \
                  side's start; `sent` datagrams are byte for byte, as JSON strings.",
        "protocol": git_pair::protocol::schedule::PROTOCOL,
        "latency_us": LATENCY.as_micros() as u64,
        "vectors": scenarios().into_iter().map(|s| record(s, start)).collect::<Vec<_>>(),
    })
}

#[test]
fn recorded_exchanges_replay_byte_for_byte() {
    if std::env::var_os("GIT_PAIR_BLESS").is_some() {
        let text = serde_json::to_string_pretty(&fresh()).unwrap() + "\n";
        std::fs::write(vectors_path(), text).unwrap();
    }
    let all = recorded();
    let vectors = all["vectors"].as_array().unwrap();
    assert_eq!(vectors.len(), scenarios().len());
    for v in vectors {
        for side in v["sides"].as_array().unwrap() {
            replay(v["name"].as_str().unwrap(), side);
        }
    }
}

/// Feeds one side's recorded inputs into a new machine; every step must produce exactly the
/// recorded datagrams and events.
fn replay(vector: &str, side: &Value) {
    let name = format!("{vector}/{}", side["name"].as_str().unwrap());
    let code = Code::parse(side["typed_code"].as_str().unwrap()).unwrap();
    assert_eq!(code.channel(), side["channel"], "{name}: channel");
    assert_eq!(
        code.password(),
        side["password"].as_str().unwrap().as_bytes(),
        "{name}: password"
    );
    let start = Instant::now();
    let mut m = Machine::new(
        Config {
            code,
            payload: side["payload"].as_str().unwrap().as_bytes().to_vec(),
            peers: Vec::new(),
            scan: Vec::new(),
            proof_secrets: side["proof_secrets"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| PairSecret::from_bytes(seed_of(s.as_str().unwrap())))
                .collect(),
            generated: side["generated"].as_bool().unwrap(),
        },
        start,
        ChaCha20Rng::from_seed(seed_of(side["rng_seed"].as_str().unwrap())),
    )
    .unwrap();
    assert_eq!(hex(m.session_id().as_bytes()), side["sid"], "{name}: sid");
    let steps = side["steps"].as_array().unwrap();
    assert!(!steps.is_empty());
    for (k, s) in steps.iter().enumerate() {
        let now = start + Duration::from_micros(s["at_us"].as_u64().unwrap());
        let input = &s["input"];
        if input == "timeout" {
            assert!(
                m.poll_timeout().is_some_and(|t| t <= now),
                "{name} step {k}: a timeout that was not due"
            );
            m.handle_timeout(now);
        } else if let Some(d) = input.get("datagram") {
            let from: SocketAddr = d["from"].as_str().unwrap().parse().unwrap();
            m.handle_datagram(now, from, d["bytes"].as_str().unwrap().as_bytes());
        } else if let Some(peer) = input.get("accept") {
            m.accept(now, peer_id(peer));
        } else if let Some(r) = input.get("refuse") {
            m.refuse(now, peer_id(&r["peer"]), r["detail"].as_str().unwrap());
        } else if let Some(end) = input.get("conclude") {
            m.conclude(now, serde_json::from_value(end.clone()).unwrap());
        } else {
            panic!("{name} step {k}: unknown input {input}");
        }
        let (sent, events, _) = drain(&mut m);
        assert_eq!(
            Value::from(sent),
            s["sent"],
            "{name} step {k}: the datagrams differ"
        );
        assert_eq!(
            Value::from(events),
            s["events"],
            "{name} step {k}: the events differ"
        );
    }
    let last = steps.last().unwrap()["events"].as_array().unwrap();
    assert!(
        m.is_done() || driver_stops(last),
        "{name}: the machine is not done after its last step"
    );
}

#[test]
fn recorded_exchanges_are_coherent() {
    let all = recorded();
    for v in all["vectors"].as_array().unwrap() {
        let sides = v["sides"].as_array().unwrap();
        assert_eq!(sides.len(), 2);
        for (i, side) in sides.iter().enumerate() {
            let other = &sides[1 - i];
            let me = side["address"].as_str().unwrap();
            let sent_to_me: Vec<&str> = other["steps"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|s| s["sent"].as_array().unwrap())
                .filter(|t| t["to"] == "multicast" || t["to"] == me)
                .map(|t| t["datagram"].as_str().unwrap())
                .collect();
            let received: Vec<&str> = side["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|s| s["input"].get("datagram"))
                .inspect(|d| assert_eq!(d["from"], other["address"]))
                .map(|d| d["bytes"].as_str().unwrap())
                .collect();
            // Lossless: every datagram sent to a side arrived, in order (one latency for all),
            // but those still in flight when the receiver was done.
            assert!(
                sent_to_me.starts_with(&received),
                "{}: {} received what {} did not send",
                v["name"],
                side["name"],
                other["name"]
            );
            let sessions = side["spake2_x_wide"].as_array().unwrap().len();
            let wide: Vec<Value> =
                spake2_randoms(&seed_of(side["rng_seed"].as_str().unwrap()), sessions)
                    .into_iter()
                    .map(Value::from)
                    .collect();
            assert_eq!(Value::from(wide), side["spake2_x_wide"]);
        }
    }
}

#[test]
fn an_independent_implementation_agrees() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/exchange.py");
    let out = match Command::new("python3")
        .arg(&script)
        .arg(vectors_path())
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run python3 (scripts/deps installs it): {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "tests/vectors/exchange.py disagrees:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all vectors agree"), "{stdout}");
}

/// The encoding rules doc/PROTOCOL.md states, checked against the codec and the code parser, so
/// that the document cannot drift from them.
#[test]
fn the_encodings_the_specification_states() {
    use git_pair::protocol::code::CodeError;
    use git_pair::protocol::codec::{decode, DecodeError, Message};

    // The code: channel and password.
    let parsed = |typed: &str| {
        let c = Code::parse(typed).unwrap();
        (
            c.channel().to_owned(),
            String::from_utf8(c.password().to_vec()).unwrap(),
        )
    };
    assert_eq!(parsed("007-x"), ("7".into(), "x".into()));
    assert_eq!(parsed("12abc-x"), ("".into(), "12abc-x".into()));
    assert_eq!(parsed("0-x"), ("0".into(), "x".into()));
    assert_eq!(parsed("correct horse"), ("".into(), "correct-horse".into()));
    assert_eq!(
        parsed("7 Guitar\u{3000}orbit--VELVET"),
        ("7".into(), "guitar-orbit-velvet".into())
    );
    assert_eq!(
        parsed(&format!("{}-x", "9".repeat(21))),
        ("".into(), format!("{}-x", "9".repeat(21)))
    );
    // U+001C is no separator (Python's isspace says it is; Unicode's White_Space does not).
    assert_eq!(parsed("7-a\u{1c}b"), ("7".into(), "a\u{1c}b".into()));
    // No normalization: a precomposed and a decomposed é are different codes.
    assert_ne!(parsed("7-caf\u{e9}"), parsed("7-cafe\u{301}"));
    assert_eq!(Code::parse("12").unwrap_err(), CodeError::NoSecret);
    assert_eq!(Code::parse(" - ").unwrap_err(), CodeError::Empty);
    assert!(matches!(
        Code::parse(&"a".repeat(257)),
        Err(CodeError::TooLong(257))
    ));

    let sid = "ab".repeat(16);
    let hello = |ch: &str| format!(r#"{{"v":3,"t":"hello","sid":"{sid}","ch":"{ch}"}}"#);
    assert!(matches!(
        decode(hello("007").as_bytes()),
        Ok(Message::Hello { .. })
    ));
    assert!(matches!(
        decode(hello("").as_bytes()),
        Ok(Message::Hello { .. })
    ));
    assert_eq!(
        decode(hello(&"1".repeat(33)).as_bytes()),
        Err(DecodeError::Invalid("channel too long"))
    );
    let malformed = |text: &str| matches!(decode(text.as_bytes()), Err(DecodeError::Malformed(_)));
    // Session ids: 32 lowercase hex digits only.
    assert!(malformed(&hello("7").replace(&sid, &"AB".repeat(16))));
    assert!(malformed(&hello("7").replace(&sid, &"ab".repeat(15))));
    // The version: an unsigned integer, read first.
    assert!(malformed(r#"{"v":"3","t":"hello"}"#));
    assert_eq!(decode(br#"{"v":1}"#), Err(DecodeError::Version(1)));
    assert_eq!(decode(br#"{"v":2}"#), Err(DecodeError::Version(2)));
    // No `ch`, a duplicated field, an unknown type: malformed. Unknown fields: ignored.
    assert!(malformed(&format!(
        r#"{{"v":3,"t":"hello","sid":"{sid}"}}"#
    )));
    assert!(malformed(&format!(
        r#"{{"v":3,"t":"hello","sid":"{sid}","ch":"7","ch":"8"}}"#
    )));
    assert!(malformed(&format!(
        r#"{{"v":3,"t":"abort","sid":"{sid}"}}"#
    )));
    assert!(
        decode(format!(r#"{{"v":3,"t":"hello","sid":"{sid}","ch":"7","x":[1]}}"#).as_bytes())
            .is_ok()
    );

    // Binary fields: standard base64 with padding.
    let ack_with = |k: &str, p: &str| {
        format!(
            r#"{{"v":3,"t":"ack","sid":"{sid}","to":"{sid}","ack":{{"k":{k},"p":{p},"c":false}}}}"#
        )
    };
    let ack = |text: String| match decode(text.as_bytes()) {
        Ok(Message::Ack { ack, .. }) => Some(ack),
        _ => None,
    };
    // 8 bytes 0xfb 0xff ...: "+/" in the standard alphabet, "-_" in the URL-safe one.
    let k = ack(ack_with(r#""+/////////8=""#, "0")).expect("standard padded base64");
    assert_eq!(
        k.k.unwrap().0,
        vec![0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
    );
    assert!(ack(ack_with(r#""+/////////8""#, "0")).is_none(), "unpadded");
    assert!(
        ack(ack_with(r#""-_________8=""#, "0")).is_none(),
        "URL-safe"
    );
    assert!(ack(ack_with(r#""AAAAAAAAAAA=""#, "0")).is_some());
    // `k` absent or null: none; `e` absent: false; `p` a u64.
    let none = ack(ack_with("null", "18446744073709551615")).unwrap();
    assert_eq!((none.k, none.p, none.e), (None, u64::MAX, false));
    assert!(ack(ack_with("null", "18446744073709551616")).is_none());
    assert!(ack(ack_with("null", "-1")).is_none());
    // Non-canonical trailing bits are refused too.
    assert!(
        ack(ack_with(r#""AAAAAAAAAAB=""#, "0")).is_none(),
        "trailing bits"
    );
    // `a`, the tag: absent, or 16 bytes.
    let tag_with = |a: &str| {
        format!(
            r#"{{"v":3,"t":"ack","sid":"{sid}","to":"{sid}","ack":{{"p":0,"c":false,"a":{a}}}}}"#
        )
    };
    assert_eq!(
        ack(tag_with(r#""AAAAAAAAAAAAAAAAAAAAAA==""#))
            .unwrap()
            .tag
            .unwrap()
            .0,
        [0; 16]
    );
    assert!(ack(tag_with("null")).unwrap().tag.is_none());
    assert_eq!(
        decode(tag_with(r#""AAAAAAAAAAAAAAAAAAAA""#).as_bytes()),
        Err(DecodeError::Invalid("ack tag has the wrong length"))
    );
    // `c` is required.
    assert!(malformed(&format!(
        r#"{{"v":3,"t":"ack","sid":"{sid}","to":"{sid}","ack":{{"p":0}}}}"#
    )));

    // A receiver compares `ch` byte for byte with its own channel: "007" is not channel 7.
    let answers = |ch: &str| {
        let mut m = Machine::new(
            Config {
                code: Code::parse("7-guitar-orbit-velvet").unwrap(),
                payload: b"{}".to_vec(),
                peers: Vec::new(),
                scan: Vec::new(),
                proof_secrets: Vec::new(),
                generated: false,
            },
            Instant::now(),
            ChaCha20Rng::from_seed([1; 32]),
        )
        .unwrap();
        let from: SocketAddr = "192.0.2.9:40000".parse().unwrap();
        m.handle_datagram(Instant::now(), from, hello(ch).as_bytes());
        std::iter::from_fn(|| m.poll_transmit())
            .any(|t| t.destination == Destination::Unicast(from))
    };
    assert!(answers("7"));
    assert!(!answers("007"));
    assert!(!answers(""));
}
