//! Authenticated acknowledgements: an outsider on the LAN reads the session ids (and the PAKE
//! echo) off the wire and sends acknowledgements under the peer's id, from the peer's address,
//! that claim everything arrived. Without the tag under the peer's ack key they change nothing:
//! no retransmission is skipped, no side ends early, no round trip is measured. The peer's own
//! acknowledgements still work, and replaying them changes nothing either.

use std::collections::HashSet;

use super::*;

/// How the outsider tags a forged datagram.
#[derive(Clone, Copy, Debug)]
enum Forgery {
    /// No tag, as a version 2 peer sent.
    Untagged,
    /// Sixteen bytes of its own.
    BadTag,
    /// A correct tag under another session's keys (the same two session ids, another SPAKE2
    /// key): what a guessing attacker could make.
    OtherSession,
    /// The tag of the peer's latest genuine datagram, moved onto the forged one.
    Spliced,
}

const FORGERIES: [Forgery; 4] = [
    Forgery::Untagged,
    Forgery::BadTag,
    Forgery::OtherSession,
    Forgery::Spliced,
];

/// `msg` tagged as `kind` says; `sniffed` is the peer's latest genuine tag.
fn forge(kind: Forgery, mut msg: Message, sniffed: Option<&Bytes>) -> Vec<u8> {
    let tag = match kind {
        Forgery::Untagged => None,
        Forgery::BadTag => Some(Bytes(vec![0x5a; codec::ACK_TAG_LEN])),
        Forgery::OtherSession => {
            let (sid, to) = (*msg.sender(), *msg.addressee().unwrap());
            let keys = schedule::derive(&PakeKey::new(vec![0x42; 32]), &sid, &to);
            let tag = schedule::ack_tag(&keys, &msg.signed_bytes().unwrap());
            Some(Bytes(tag.to_vec()))
        }
        Forgery::Spliced => sniffed.cloned(),
    };
    msg.ack_mut().unwrap().tag = tag;
    codec::encode(&msg).unwrap()
}

/// An acknowledgement under `sid` to `to` that claims every piece, the MAC and the end.
fn claims_everything(sid: SessionId, to: SessionId, echo: Option<Bytes>) -> Message {
    Message::Ack {
        sid,
        to,
        ack: Ack {
            k: echo,
            p: u64::MAX,
            c: true,
            e: true,
            tag: None,
        },
    }
}

/// What an outsider learns from the wire: the latest PAKE echo and tag of the peer's datagrams.
#[derive(Default)]
struct Sniffer {
    echo: Option<Bytes>,
    tag: Option<Bytes>,
}

impl Sniffer {
    fn sniff(&mut self, msg: &Message) {
        if let Some(ack) = msg.ack() {
            if ack.k.is_some() {
                self.echo = ack.k.clone();
            }
            if ack.tag.is_some() {
                self.tag = ack.tag.clone();
            }
        }
    }
}

/// What alice believes bob has of hers is true: every acknowledgement she honoured came from
/// bob, whatever the outsider sent in his name.
fn acks_tell_the_truth(nodes: &[Node], a: usize, b: usize) {
    let (alice, bob) = (nodes[a].machine.session_id(), nodes[b].machine.session_id());
    let (Some(sa), Some(sb)) = (
        nodes[a].machine.sessions.get(&bob),
        nodes[b].machine.sessions.get(&alice),
    ) else {
        return;
    };
    let claimed = sa.peer_ack;
    assert_eq!(claimed.p & !sb.rx.have, 0, "pieces bob does not have");
    assert!(!claimed.c || sb.peer_verified, "a MAC bob did not verify");
    assert!(
        !claimed.e || sb.peer_end.is_some(),
        "an end bob does not have"
    );
    assert!(
        !claimed.k || sb.peer_pake.is_some(),
        "a PAKE message bob does not have"
    );
}

fn ids(lan: &Lan, a: usize, b: usize) -> (SessionId, SessionId) {
    (
        lan.nodes[a].machine.session_id(),
        lan.nodes[b].machine.session_id(),
    )
}

/// The first copy of each of alice's payload pieces, of her MAC and of her end is lost, and
/// an outsider says in bob's name, from bob's address, that it arrived. Each is sent again, and
/// both sides learn how the other ended: a forged `e` does not end alice after a single `end`
/// (which left bob with "peer silent"), a forged `p` or `c` does not stall the pairing.
#[test]
fn forged_acknowledgements_neither_stop_resends_nor_end_a_side() {
    for (seed, kind) in (90..).zip(FORGERIES) {
        let mut lan = Lan::new(seed, Impairment::NONE);
        let a = lan.add(CODE, "alice");
        let b = lan.add(CODE, "bob");
        let (alice, bob) = ids(&lan, a, b);
        let from_bob = lan.nodes[b].addr;
        let mut sniffer = Sniffer::default();
        let mut lost = HashSet::new();
        lan.run_attacked(Duration::from_secs(30), |nodes, p| {
            acks_tell_the_truth(nodes, a, b);
            let Ok(msg) = codec::decode(&p.datagram) else {
                return (true, Vec::new());
            };
            if p.to == a {
                sniffer.sniff(&msg);
                return (true, Vec::new());
            }
            let what = match &msg {
                Message::Data { i, .. } => u16::from(*i),
                Message::Confirm { .. } => 1000,
                Message::End { .. } => 1001,
                _ => return (true, Vec::new()),
            };
            if !lost.insert(what) {
                return (true, Vec::new());
            }
            let forged = forge(
                kind,
                claims_everything(bob, alice, sniffer.echo.clone()),
                sniffer.tag.as_ref(),
            );
            (false, vec![(a, from_bob, forged)])
        });
        assert!(
            lost.contains(&1000) && lost.contains(&1001),
            "{kind:?}: {lost:?}"
        );
        lan.assert_paired(a, b);
        assert!(
            !lan.nodes[a].peer_silent && !lan.nodes[b].peer_silent,
            "{kind:?}"
        );
    }
}

/// Datagrams an attacker delivers: `(to node, claimed source, bytes)`.
type Forged = Vec<(usize, SocketAddr, Vec<u8>)>;

/// The lowest retransmission timeout either side had while `attack` ran (given alice's node
/// and bob's address), on a LAN with 10 ms each way (a 20 ms round trip: at least `RTT_FACTOR`
/// times that).
fn lowest_timeout(
    seed: u64,
    mut attack: impl FnMut(usize, SocketAddr, &mut Sniffer, &InFlight) -> Forged,
) -> Duration {
    let imp = Impairment {
        delay: Duration::from_millis(10),
        ..Impairment::NONE
    };
    let mut lan = Lan::new(seed, imp);
    let a = lan.add(CODE, "alice");
    let b = lan.add(CODE, "bob");
    let (alice, bob) = ids(&lan, a, b);
    let mut sniffer = Sniffer::default();
    let mut lowest: Option<Duration> = None;
    lan.run_attacked(Duration::from_secs(30), |nodes, p| {
        acks_tell_the_truth(nodes, a, b);
        let timeouts = [
            nodes[a].machine.retransmit_timeout(&bob),
            nodes[b].machine.retransmit_timeout(&alice),
        ];
        for t in timeouts.into_iter().flatten() {
            lowest = Some(lowest.map_or(t, |l| l.min(t)));
        }
        (true, attack(a, nodes[b].addr, &mut sniffer, p))
    });
    lan.assert_paired(a, b);
    lowest.expect("the round trip was measured")
}

/// The timeout a 20 ms round trip gives.
fn honest_timeout() -> Duration {
    (Duration::from_millis(20) * RTT_FACTOR).clamp(RTO_MIN, RTO_INITIAL)
}

/// As each of alice's datagrams reaches bob, half a round trip after she sent it, an outsider
/// acknowledges everything in bob's name: without the tag, that is no round trip, and alice's
/// timeout stays what the real one gives (a forged sample would have halved it, and a stream
/// of them pinned it to `RTO_MIN`).
#[test]
fn forged_acknowledgements_do_not_shorten_the_retransmission_timeout() {
    for (seed, kind) in (94..).zip(FORGERIES) {
        let lowest = lowest_timeout(seed, |a, from_bob, sniffer, p| {
            let Ok(msg) = codec::decode(&p.datagram) else {
                return Vec::new();
            };
            if p.to == a {
                sniffer.sniff(&msg);
                return Vec::new();
            }
            let (Some(&to), Some(echo)) = (msg.addressee(), sniffer.echo.clone()) else {
                return Vec::new();
            };
            let forged = forge(
                kind,
                claims_everything(to, *msg.sender(), Some(echo)),
                sniffer.tag.as_ref(),
            );
            vec![(a, from_bob, forged)]
        });
        assert!(
            lowest >= honest_timeout(),
            "{kind:?}: {lowest:?} < {:?}",
            honest_timeout()
        );
    }
}

/// Every genuine directed datagram is delivered again to its addressee, many times, whenever
/// anything reaches either side: acknowledgements only grow, so old ones change nothing, and the
/// duplicates they ride on (answered at once) do not shorten the measured round trip either.
#[test]
fn replayed_acknowledgements_change_nothing() {
    let mut recorded: Vec<(usize, SocketAddr, Vec<u8>)> = Vec::new();
    let lowest = lowest_timeout(98, |_, _, _, p| {
        if codec::decode(&p.datagram).is_ok_and(|m| m.addressee().is_some()) {
            recorded.push((p.to, p.from, p.datagram.clone()));
            if recorded.len() > 16 {
                recorded.remove(0);
            }
        }
        recorded.clone()
    });
    assert!(
        lowest >= honest_timeout(),
        "{lowest:?} < {:?}",
        honest_timeout()
    );
}

/// Forged confirmations under the peer's id, sent before the peer's payload is complete (when
/// they cannot be checked yet), used to fill the few candidate slots and crowd out the peer's
/// own MAC. Only a MAC whose datagram carries the peer's tag is a candidate now.
#[test]
fn forged_confirmations_do_not_crowd_out_the_peers_mac() {
    let mut lan = Lan::new(99, Impairment::NONE);
    let a = lan.add(CODE, "alice");
    let b = lan.add(CODE, "bob");
    let (alice, bob) = ids(&lan, a, b);
    let from_bob = lan.nodes[b].addr;
    let mut sniffer = Sniffer::default();
    // Bob's payload pieces are held back until his MAC has arrived.
    let mut genuine: Option<Vec<u8>> = None;
    let mut checked = false;
    lan.run_attacked(Duration::from_secs(30), |nodes, p| {
        if let (Some(mac), false) = (&genuine, checked) {
            // Bob's MAC has arrived; his payload has not.
            let s = &nodes[a].machine.sessions[&bob];
            assert!(s.peer_payload.is_none());
            let macs: Vec<&Vec<u8>> = s.peer_macs.iter().map(|(m, _)| m).collect();
            assert_eq!(macs, [mac], "only bob's MAC is a candidate");
            checked = true;
        }
        let Ok(msg) = codec::decode(&p.datagram) else {
            return (true, Vec::new());
        };
        if p.to != a {
            return (true, Vec::new());
        }
        sniffer.sniff(&msg);
        match msg {
            Message::Data { .. } => (genuine.is_some(), Vec::new()),
            Message::Confirm { mac, .. } if genuine.is_none() => {
                genuine = Some(mac.0);
                // Ahead of it, more forged MACs than there are slots, tagged every way.
                let forged = (0..2 * MAX_MACS as u8)
                    .flat_map(|k| {
                        FORGERIES.map(|kind| {
                            let msg = Message::Confirm {
                                sid: bob,
                                to: alice,
                                mac: Bytes(vec![k; 32]),
                                ack: Ack {
                                    k: sniffer.echo.clone(),
                                    ..Ack::default()
                                },
                            };
                            (a, from_bob, forge(kind, msg, sniffer.tag.as_ref()))
                        })
                    })
                    .collect();
                (true, forged)
            }
            _ => (true, Vec::new()),
        }
    });
    assert!(checked, "bob's MAC arrived before his payload");
    lan.assert_paired(a, b);
}

/// Until the sender has the keys, nothing it sends is tagged or acknowledges anything but the
/// PAKE echo; from then on, everything it sends is tagged.
#[test]
fn every_datagram_is_tagged_once_the_sender_has_the_keys() {
    let mut lan = Lan::new(100, Impairment::NONE);
    let a = lan.add(CODE, "alice");
    let b = lan.add(CODE, "bob");
    lan.run(Duration::from_secs(5));
    lan.assert_paired(a, b);
    for n in [a, b] {
        let mut untagged_pakes = 0;
        for (_, msg) in lan.sent_by(n) {
            let Some(ack) = msg.ack() else {
                continue;
            };
            match (&msg, &ack.tag) {
                (Message::Pake { .. }, None) => {
                    untagged_pakes += 1;
                    assert_eq!(
                        (ack.k.is_some(), ack.p, ack.c, ack.e),
                        (false, 0, false, false)
                    );
                }
                (_, None) => panic!("an untagged {msg:?}"),
                (_, Some(_)) => {}
            }
        }
        assert!(untagged_pakes <= 1, "{untagged_pakes}");
    }
}

/// A side of another protocol version (an older git-pair) announcing itself on our channel is
/// remembered, for the driver to name when the run finds no peer; on another channel it is not.
#[test]
fn a_side_of_another_version_on_our_channel_is_remembered() {
    let mut lan = Lan::new(101, Impairment::NONE);
    let a = lan.add(CODE, "alice");
    lan.step_all();
    let old = |ch: &str| {
        format!(
            r#"{{"v":2,"t":"hello","sid":"{}","ch":"{ch}","gen":false}}"#,
            "12".repeat(16)
        )
    };
    lan.inject_raw(a, addr(60), old("8").as_bytes());
    assert_eq!(lan.nodes[a].machine.other_version(), None);
    lan.inject_raw(a, addr(61), old("7").as_bytes());
    lan.inject_raw(a, addr(62), old("7").as_bytes());
    assert_eq!(lan.nodes[a].machine.other_version(), Some((addr(61), 2)));
    assert_eq!(lan.nodes[a].seen, 0, "nothing else came of it");
}
