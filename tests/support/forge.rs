//! A LAN attacker without the code, as a real process on real sockets: the test binary
//! re-executes itself inside a host's namespace (`GIT_PAIR_E2E_HELPER=forge IFACE IPV4 SECONDS`).
//! It listens to the git-pair multicast group like any machine on the LAN, learns the session
//! ids and addresses of the two git-pair runs from their `hello`s, and then, for SECONDS, sends
//! each run datagrams under the other's session id: an `abort` of protocol version 1 with reason
//! `rejected` and words of its own (what ended a pairing before), `data` pieces and a `confirm`
//! it cannot seal, of every version, an `end` it cannot seal, and (version 3) acknowledgements
//! that claim every piece, the MAC and the end arrived, without a tag or with one of its own. The
//! datagrams are written as JSON by hand, so that the same helper attacks any version of
//! git-pair.
//!
//! A second mode (`GIT_PAIR_E2E_HELPER=old IFACE IPV4 SECONDS CHANNEL`) plays an older git-pair:
//! it announces itself on CHANNEL with version 2 `hello`s, by multicast, every 100 ms.
//!
//! Inside the namespace of the host it runs on, it sends from that host's own IPv4 address, so
//! to the other host its datagrams come from the right address.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::host::Host;
use super::process::{Cmd, Running};

const ENV: &str = "GIT_PAIR_E2E_HELPER";
const MODE: &str = "forge";
const MODE_OLD: &str = "old";
/// git-pair's defaults (the lab runs it without --port).
const PORT: u16 = 28620;
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 88);
/// What the forged refusal says; it must never reach a user.
pub const EVIL_WORDS: &str = "forged refusal: evil words";
/// Gap between two rounds of forgeries.
const PACE: Duration = Duration::from_millis(5);

/// If this process was started as the forging helper, does the job and returns its exit code.
pub fn run_helper_if_requested() -> Option<i32> {
    let mode = std::env::var(ENV).ok()?;
    if mode != MODE && mode != MODE_OLD {
        return None;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [_, ipv4, seconds, channel] if mode == MODE_OLD => match (ipv4.parse(), seconds.parse()) {
            (Ok(ip), Ok(secs)) => announce_old(ip, Duration::from_secs(secs), channel),
            _ => Err(format!("bad old-version arguments: {args:?}")),
        },
        [iface, ipv4, seconds] if mode == MODE => match (ipv4.parse(), seconds.parse()) {
            (Ok(ip), Ok(secs)) => forge(iface, ip, Duration::from_secs(secs)),
            _ => Err(format!("bad forge arguments: {args:?}")),
        },
        _ => Err(format!("bad forge arguments: {args:?}")),
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("e2e forge helper: {e}");
            1
        }
    })
}

fn err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// A git-pair run heard on the LAN: its session id and where it sends from.
#[derive(Debug, Clone)]
struct Run {
    sid: String,
    from: SocketAddr,
}

fn forge(iface: &str, own: Ipv4Addr, seconds: Duration) -> Result<(), String> {
    let listen =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket"))?;
    listen
        .set_reuse_address(true)
        .map_err(err("SO_REUSEADDR"))?;
    listen
        .bind(&SockAddr::from(SocketAddrV4::new(
            Ipv4Addr::UNSPECIFIED,
            PORT,
        )))
        .map_err(err("bind"))?;
    listen
        .join_multicast_v4(&GROUP_V4, &own)
        .map_err(err("join"))?;
    let listen: UdpSocket = listen.into();
    listen
        .set_read_timeout(Some(PACE))
        .map_err(err("timeout"))?;
    let send = UdpSocket::bind(SocketAddrV4::new(own, 0)).map_err(err("bind sender"))?;
    let _ = iface;
    println!("ready");
    let end = Instant::now() + seconds;
    // Runs by source address: the one on this host, and the other one.
    let mut runs: HashMap<bool, Run> = HashMap::new();
    let mut forged = 0usize;
    let mut round = 0u32;
    let mut buf = [0u8; 1500];
    while Instant::now() < end {
        if let Ok((n, from)) = listen.recv_from(&mut buf) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&buf[..n]) {
                if v["t"] == "hello" {
                    if let Some(sid) = v["sid"].as_str() {
                        let local = from.ip() == std::net::IpAddr::V4(own);
                        runs.entry(local).or_insert(Run {
                            sid: sid.to_owned(),
                            from,
                        });
                    }
                }
            }
        }
        let (Some(here), Some(there)) = (runs.get(&true), runs.get(&false)) else {
            continue;
        };
        round += 1;
        for (victim, claimed) in [(there, here), (here, there)] {
            for datagram in forgeries(&claimed.sid, &victim.sid, round) {
                if send.send_to(datagram.as_bytes(), victim.from).is_ok() {
                    forged += 1;
                }
            }
        }
        std::thread::sleep(PACE);
    }
    println!("forged {forged}");
    Ok(())
}

/// Announces a session on `channel` in protocol version 2 for `seconds`, as an older git-pair.
fn announce_old(own: Ipv4Addr, seconds: Duration, channel: &str) -> Result<(), String> {
    let send =
        Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket"))?;
    // A fresh namespace has no default route: multicast needs the interface named.
    send.set_multicast_if_v4(&own)
        .map_err(err("IP_MULTICAST_IF"))?;
    send.bind(&SockAddr::from(SocketAddrV4::new(own, 0)))
        .map_err(err("bind"))?;
    let send: UdpSocket = send.into();
    let hello = format!(
        r#"{{"ch":"{channel}","gen":false,"sid":"{}","t":"hello","v":2}}"#,
        "0d".repeat(16)
    );
    println!("ready");
    let end = Instant::now() + seconds;
    let mut sent = 0usize;
    while Instant::now() < end {
        if send
            .send_to(hello.as_bytes(), SocketAddrV4::new(GROUP_V4, PORT))
            .is_ok()
        {
            sent += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("forged {sent}");
    Ok(())
}

/// One round of forgeries under `claimed`'s session id, to `victim`.
fn forgeries(claimed: &str, victim: &str, round: u32) -> Vec<String> {
    let ack = r#"{"c":false,"k":false,"p":0}"#;
    let ack2 = r#"{"c":false,"e":false,"p":0}"#;
    let junk = base64(&[round as u8; 48]);
    let mac = base64(&[round as u8; 32]);
    // Everything arrived, says the attacker: without a tag, and with 16 bytes of its own.
    let claims = r#"{"c":true,"e":true,"p":18446744073709551615}"#;
    let tagged = format!(
        r#"{{"a":"{}","c":true,"e":true,"p":18446744073709551615}}"#,
        base64(&[round as u8; 16])
    );
    vec![
        format!(
            r#"{{"v":3,"t":"data","sid":"{claimed}","to":"{victim}","i":0,"n":1,"d":"{junk}","ack":{claims}}}"#
        ),
        format!(
            r#"{{"v":3,"t":"confirm","sid":"{claimed}","to":"{victim}","mac":"{mac}","ack":{tagged}}}"#
        ),
        format!(
            r#"{{"v":3,"t":"end","sid":"{claimed}","to":"{victim}","box":"{junk}","ack":{tagged}}}"#
        ),
        format!(r#"{{"v":3,"t":"ack","sid":"{claimed}","to":"{victim}","ack":{claims}}}"#),
        format!(r#"{{"v":3,"t":"ack","sid":"{claimed}","to":"{victim}","ack":{tagged}}}"#),
        format!(
            r#"{{"v":1,"t":"abort","sid":"{claimed}","to":"{victim}","reason":"rejected","detail":"{EVIL_WORDS}"}}"#
        ),
        format!(
            r#"{{"v":1,"t":"data","sid":"{claimed}","to":"{victim}","i":0,"n":1,"d":"{junk}","ack":{ack}}}"#
        ),
        format!(
            r#"{{"v":2,"t":"data","sid":"{claimed}","to":"{victim}","i":0,"n":1,"d":"{junk}","ack":{ack2}}}"#
        ),
        format!(
            r#"{{"v":2,"t":"end","sid":"{claimed}","to":"{victim}","box":"{junk}","ack":{ack2}}}"#
        ),
    ]
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Starts the forging helper in `host`'s namespace for `seconds`; returns once it listens.
pub fn start(host: &Host, seconds: u64) -> Running {
    spawn(host, seconds, MODE, None, "forging")
}

/// Starts the old-version helper in `host`'s namespace: version 2 `hello`s on `channel` for
/// `seconds`; returns once it sends.
pub fn start_old(host: &Host, seconds: u64, channel: &str) -> Running {
    spawn(host, seconds, MODE_OLD, Some(channel), "old-version")
}

/// This test binary re-run as a helper in `mode` inside `host`'s namespace (its interface, its
/// IPv4 address, `seconds`, and `channel` if given); returns once the helper says "ready".
fn spawn(host: &Host, seconds: u64, mode: &str, channel: Option<&str>, what: &str) -> Running {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let v4 = host.ipv4.unwrap_or_else(|| {
        panic!(
            "the {what} helper needs an IPv4 address on {}",
            host.hostname
        )
    });
    let cmd: Cmd = super::net::in_netns(&host.netns, &exe.to_string_lossy())
        .env(ENV, mode)
        .arg(&host.iface)
        .arg(v4.to_string())
        .arg(seconds.to_string())
        .args(channel)
        .timeout(Duration::from_secs(seconds + 10));
    let mut running = cmd.spawn();
    match running.next_line(Instant::now() + Duration::from_secs(10)) {
        Some(line) if line == "ready" => running,
        other => {
            let out = running.wait(Duration::from_secs(1));
            panic!("the {what} helper did not start ({other:?})\n{out}");
        }
    }
}

/// How many datagrams the helper forged, from its last line.
pub fn forged(out: &super::process::Output) -> usize {
    out.stdout_str()
        .lines()
        .find_map(|l| l.strip_prefix("forged ")?.trim().parse().ok())
        .unwrap_or(0)
}
