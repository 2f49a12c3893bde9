//! A multicast probe that needs no git-pair: the test binary re-executes itself inside a
//! namespace (`GIT_PAIR_E2E_HELPER=mcast-send|mcast-recv IFACE [IPV4]`) to send or receive UDP
//! multicast (and IPv4 broadcast) on one interface. It proves the lab's LAN carries multicast,
//! and that the multicast-dropped variant really drops it.

use std::mem::MaybeUninit;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::host::Host;
use super::process::{Output, Running};

const ENV: &str = "GIT_PAIR_E2E_HELPER";
const PORT: u16 = 47_480;
const GROUP_V4: Ipv4Addr = Ipv4Addr::new(239, 255, 74, 80);
const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0x4745, 0x3245);
const SENDS: usize = 10;
const RECV_WAIT: Duration = Duration::from_secs(3);

/// If this process was started as the helper, does the job and returns its exit code.
pub fn run_helper_if_requested() -> Option<i32> {
    let mode = std::env::var(ENV).ok()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match (mode.as_str(), args.as_slice()) {
        ("mcast-send", [iface, rest @ ..]) => send(iface, parse_v4(rest)),
        ("mcast-recv", [iface, rest @ ..]) => recv(iface, parse_v4(rest)),
        _ => super::locate::run_helper(&mode, &args)
            .unwrap_or_else(|| Err(format!("bad helper invocation: {mode} {args:?}"))),
    };
    Some(match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("e2e helper: {e}");
            1
        }
    })
}

fn parse_v4(rest: &[String]) -> Option<Ipv4Addr> {
    rest.first().and_then(|a| a.parse().ok())
}

/// Maps an io::Error to a message naming the step that failed.
fn err(what: &'static str) -> impl Fn(std::io::Error) -> String {
    move |e| format!("{what}: {e}")
}

fn ifindex(iface: &str) -> Result<u32, String> {
    nix::net::if_::if_nametoindex(iface).map_err(|e| format!("no interface {iface}: {e}"))
}

fn send(iface: &str, v4: Option<Ipv4Addr>) -> Result<(), String> {
    let idx = ifindex(iface)?;
    let s6 =
        Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket v6"))?;
    s6.set_multicast_if_v6(idx)
        .map_err(err("IPV6_MULTICAST_IF"))?;
    let to6 = SockAddr::from(SocketAddrV6::new(GROUP_V6, PORT, 0, idx));
    let v4_socket = match v4 {
        Some(addr) => {
            let s4 = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
                .map_err(err("socket v4"))?;
            s4.set_multicast_if_v4(&addr)
                .map_err(err("IP_MULTICAST_IF"))?;
            s4.set_broadcast(true).map_err(err("SO_BROADCAST"))?;
            let [a, b, c, _] = addr.octets();
            let bcast = SockAddr::from(SocketAddrV4::new(Ipv4Addr::new(a, b, c, 255), PORT));
            Some((s4, SockAddr::from(SocketAddrV4::new(GROUP_V4, PORT)), bcast))
        }
        None => None,
    };
    for _ in 0..SENDS {
        s6.send_to(b"gp-e2e", &to6)
            .map_err(err("send v6 multicast"))?;
        if let Some((s4, group, bcast)) = &v4_socket {
            s4.send_to(b"gp-e2e", group)
                .map_err(err("send v4 multicast"))?;
            s4.send_to(b"gp-e2e", bcast)
                .map_err(err("send v4 broadcast"))?;
        }
        thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// Joins the groups on `iface`, prints `ready`, then `v6 N` and (with an IPv4 address) `v4 N`:
/// how many probe datagrams arrived within [`RECV_WAIT`].
fn recv(iface: &str, v4: Option<Ipv4Addr>) -> Result<(), String> {
    let idx = ifindex(iface)?;
    let s6 =
        Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).map_err(err("socket v6"))?;
    s6.set_only_v6(true).map_err(err("IPV6_V6ONLY"))?;
    s6.bind(&SockAddr::from(SocketAddr::from((
        Ipv6Addr::UNSPECIFIED,
        PORT,
    ))))
    .map_err(err("bind v6"))?;
    s6.join_multicast_v6(&GROUP_V6, idx)
        .map_err(err("join v6"))?;
    let s4 = match v4 {
        Some(addr) => {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))
                .map_err(err("socket v4"))?;
            s.bind(&SockAddr::from(SocketAddr::from((
                Ipv4Addr::UNSPECIFIED,
                PORT,
            ))))
            .map_err(err("bind v4"))?;
            s.join_multicast_v4(&GROUP_V4, &addr)
                .map_err(err("join v4"))?;
            Some(s)
        }
        None => None,
    };
    println!("ready");
    let t6 = thread::spawn(move || count(&s6));
    if let Some(s4) = s4 {
        println!("v4 {}", count(&s4));
    }
    println!("v6 {}", t6.join().unwrap_or(0));
    Ok(())
}

fn count(socket: &Socket) -> usize {
    let _ = socket.set_read_timeout(Some(RECV_WAIT));
    let mut buf = [MaybeUninit::<u8>::uninit(); 64];
    let mut n = 0;
    while socket.recv_from(&mut buf).is_ok() {
        n += 1;
    }
    n
}

fn helper(host: &Host, mode: &str) -> super::process::Cmd {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let mut cmd = super::net::in_netns(&host.netns, &exe.to_string_lossy())
        .env(ENV, mode)
        .arg(&host.iface);
    if let Some(v4) = host.ipv4 {
        cmd = cmd.arg(v4.to_string());
    }
    cmd
}

/// Multicast probe datagrams that `to` received from `from` (`(v4, v6)`; v4 is `None` when
/// `to` has no IPv4 address). `from` sends both multicast and IPv4 broadcast.
pub fn probe(from: &Host, to: &Host) -> (Option<usize>, usize) {
    let mut receiver: Running = helper(to, "mcast-recv").spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    match receiver.next_line(deadline) {
        Some(line) if line == "ready" => {}
        other => {
            let out = receiver.wait(Duration::from_secs(1));
            panic!("multicast receiver did not start ({other:?})\n{out}");
        }
    }
    helper(from, "mcast-send").run_ok();
    let out: Output = receiver.wait(RECV_WAIT * 3);
    assert!(out.success(), "multicast receiver failed\n{out}");
    let text = out.stdout_str();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key).and_then(|n| n.trim().parse().ok()))
    };
    (
        field("v4 "),
        field("v6 ").unwrap_or_else(|| panic!("no v6 count\n{out}")),
    )
}
