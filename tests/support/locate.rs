//! Helpers of the locate tests that speak the locate protocol without git-pair's binary: the test
//! binary re-executes itself inside a namespace (`GIT_PAIR_E2E_HELPER=locate-…`, see
//! [`run_helper`]) to play a refresher with a stolen query, an impostor, or a flood.
//!
//! - `locate-query SECRET_FILE DEST PORT`: one query authenticated with the pair secret in
//!   SECRET_FILE, to DEST; prints the answer in hex (`answer <hex>`) or `none` after 3 s.
//! - `locate-impostor IFACE BIND_IP PORT REPLAY_HEX`: listens on PORT (multicast on IFACE too)
//!   and answers every query, from BIND_IP, three ways: an answer made without the secret that
//!   binds the query's nonce, the recorded authentic answer REPLAY_HEX (to an older query), and
//!   the query itself. Prints `ready`, then `answered <from>` per query.
//! - `locate-flood DEST PORT SECONDS OWN_IP`: for SECONDS, as fast as it can: random bytes of
//!   random length, 53-byte datagrams with the query prefix and a random tag, and queries made
//!   with random secrets, by unicast to DEST and by multicast (from OWN_IP's interface). Prints
//!   `sent <n>`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use git_pair::protocol::locate::{self, Answer, LocateKeys};
use git_pair::protocol::schedule::{PairSecret, Role};
use git_pair::ssh_files::SecretRecord;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};

use super::host::Host;
use super::process::Cmd;

const ENV: &str = "GIT_PAIR_E2E_HELPER";

/// Runs helper `mode` with `args`; `None` when the mode is not one of these.
pub fn run_helper(mode: &str, args: &[String]) -> Option<Result<(), String>> {
    Some(match (mode, args) {
        ("locate-query", [secret, dest, port]) => query(secret, dest, port),
        ("locate-impostor", [iface, bind, port, replay]) => impostor(iface, bind, port, replay),
        ("locate-flood", [dest, port, seconds, own]) => flood(dest, port, seconds, own),
        (m, _) if m.starts_with("locate-") => Err(format!("bad helper invocation: {m} {args:?}")),
        _ => return None,
    })
}

/// The helper as a command in `host`'s namespace (as root).
pub fn helper(host: &Host, mode: &str) -> Cmd {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    super::net::in_netns(&host.netns, &exe.to_string_lossy()).env(ENV, mode)
}

fn parse<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("bad {what}: {s}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("x"), 16))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad hex: {e}"))
}

fn udp(bind: SocketAddr) -> Result<Socket, String> {
    let s =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| e.to_string())?;
    s.set_reuse_address(true).map_err(|e| e.to_string())?;
    s.bind(&bind.into())
        .map_err(|e| format!("bind {bind}: {e}"))?;
    Ok(s)
}

fn query(secret: &str, dest: &str, port: &str) -> Result<(), String> {
    let bytes = std::fs::read(secret).map_err(|e| format!("{secret}: {e}"))?;
    let record = SecretRecord::parse(&bytes).map_err(|e| e.to_string())?;
    let keys = LocateKeys::derive(&record.secret, record.role);
    let to = SocketAddr::new(parse::<IpAddr>("address", dest)?, parse("port", port)?);
    let s: UdpSocket = udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?.into();
    s.set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    let nonce = [0x42; 16];
    s.send_to(&locate::encode_query(&keys, &nonce), to)
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 2048];
    match s.recv_from(&mut buf) {
        Ok((n, _)) if locate::open_answer(&keys, &buf[..n], &[nonce]).is_ok() => {
            println!("answer {}", hex(&buf[..n]));
        }
        _ => println!("none"),
    }
    Ok(())
}

fn impostor(iface: &str, bind: &str, port: &str, replay: &str) -> Result<(), String> {
    let port: u16 = parse("port", port)?;
    let bind: Ipv4Addr = parse("address", bind)?;
    let replay = unhex(replay)?;
    let index = nix::net::if_::if_nametoindex(iface).map_err(|e| format!("{iface}: {e}"))?;
    let listen = udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
    listen
        .join_multicast_v4_n(
            &git_pair::transport::GROUP_V4,
            &InterfaceIndexOrAddress::Index(index),
        )
        .map_err(|e| format!("join: {e}"))?;
    let listen: UdpSocket = listen.into();
    let send: UdpSocket = udp(SocketAddr::from((bind, 0)))?.into();
    let mut rng = ChaCha20Rng::from_entropy();
    println!("ready");
    let mut buf = [0u8; 2048];
    loop {
        let Ok((n, from)) = listen.recv_from(&mut buf) else {
            continue;
        };
        let Some(q) = locate::parse_query(&buf[..n]) else {
            continue;
        };
        let mut fake = [0u8; 32];
        rng.fill_bytes(&mut fake);
        for role in [Role::Low, Role::High] {
            let keys = LocateKeys::derive(&PairSecret::from_bytes(fake), role);
            let forged = locate::encode_answer(
                &keys,
                &Answer {
                    nonce: q.nonce,
                    ssh_port: 22,
                    addresses: vec![IpAddr::V4(bind)],
                },
            );
            let _ = send.send_to(&forged, from);
        }
        let _ = send.send_to(&replay, from);
        let _ = send.send_to(&buf[..n], from);
        println!("answered {}", from.ip());
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
}

fn flood(dest: &str, port: &str, seconds: &str, own: &str) -> Result<(), String> {
    let port: u16 = parse("port", port)?;
    let to = SocketAddr::new(parse::<IpAddr>("address", dest)?, port);
    let group = SocketAddr::V4(SocketAddrV4::new(git_pair::transport::GROUP_V4, port));
    let until = Instant::now() + Duration::from_secs(parse("seconds", seconds)?);
    let s = udp(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)))?;
    s.set_multicast_if_v4(&parse("address", own)?)
        .map_err(|e| format!("IP_MULTICAST_IF: {e}"))?;
    let s: UdpSocket = s.into();
    let mut rng = ChaCha20Rng::from_entropy();
    let wrong: Vec<LocateKeys> = (0..8)
        .map(|i| {
            let mut secret = [0u8; 32];
            rng.fill_bytes(&mut secret);
            let role = if i % 2 == 0 { Role::Low } else { Role::High };
            LocateKeys::derive(&PairSecret::from_bytes(secret), role)
        })
        .collect();
    // Made up front, so that sending is as fast as the kernel lets it be.
    let pool: Vec<Vec<u8>> = (0..1024)
        .map(|i| match i % 3 {
            0 => {
                let mut garbage = vec![0u8; 1 + (rng.next_u32() as usize % 1200)];
                rng.fill_bytes(&mut garbage);
                garbage
            }
            1 => {
                let mut shaped = vec![0u8; locate::QUERY_LEN];
                rng.fill_bytes(&mut shaped);
                shaped[..4].copy_from_slice(&locate::MAGIC);
                shaped[4] = locate::QUERY;
                shaped
            }
            _ => {
                let mut nonce = [0u8; 16];
                rng.fill_bytes(&mut nonce);
                locate::encode_query(&wrong[i % wrong.len()], &nonce).to_vec()
            }
        })
        .collect();
    let mut sent = 0u64;
    let mut i = 0usize;
    while Instant::now() < until {
        for _ in 0..256 {
            i = i.wrapping_add(1);
            // One in 16 by multicast, the rest to the watcher's address.
            let dest = if i % 16 == 0 { group } else { to };
            if s.send_to(&pool[i % pool.len()], dest).is_ok() {
                sent += 1;
            }
        }
    }
    println!("sent {sent}");
    Ok(())
}
