//! Which addresses a TCP port listens on, in this network namespace, asked of the kernel's
//! socket diagnostics (netlink `NETLINK_SOCK_DIAG`, as `ss -ltn` does).
//!
//! The preflight uses it to see that this machine's sshd listens without connecting to it:
//! OpenSSH forks and re-executes itself for every connection it accepts (a few milliseconds of
//! CPU, and a "Connection closed ... \[preauth\]" line in its log), which a pairing would wait for
//! on a small machine. `/proc/net/tcp` says the same, but reading it walks every TCP socket of
//! the machine (about 3 ms of CPU here); the request below asks for listening sockets only.
//!
//! [`parse`] is the pure part (unit-tested with messages built by hand); [`listening`] sends
//! the two requests (IPv4, IPv6) and reads the replies.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

/// `SOCK_DIAG_BY_FAMILY`: the request and reply type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const REQUEST_DUMP: u16 = 0x0001 | 0x0300;
/// `NLMSG_ERROR` and `NLMSG_DONE`.
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
/// `TCP_LISTEN` in the kernel's numbering of TCP states.
const TCP_LISTEN: u8 = 10;
/// The length of `struct nlmsghdr`.
const HEADER: usize = 16;
/// The length of `struct inet_diag_msg` (the part of a reply this reads).
const DIAG_MSG: usize = 72;
/// How long the kernel has to answer (it answers at once; this only bounds a surprise).
const TIMEOUT_MS: i64 = 200;

/// The request for the listening TCP sockets of one address family: a `struct nlmsghdr`
/// followed by a `struct inet_diag_req_v2` (family, protocol, extensions, padding, the states
/// wanted as a bit mask, and a socket id that a dump ignores).
pub fn request(family: AddressFamily, seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + 56);
    m.extend_from_slice(&((HEADER + 56) as u32).to_ne_bytes());
    m.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend_from_slice(&REQUEST_DUMP.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(family as i32 as u8);
    m.push(6); // IPPROTO_TCP
    m.push(0);
    m.push(0);
    m.extend_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    // The socket id: ports, addresses, interface (all 0), and "no cookie".
    m.extend_from_slice(&[0; 4 + 16 + 16 + 4]);
    m.extend_from_slice(&[0xff; 8]);
    m
}

/// What one reply buffer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More messages follow in the next buffer.
    More,
    /// The dump is complete.
    Done,
}

/// Adds to `out` the local address of every listening socket on `port` in `reply` (one buffer
/// read from the netlink socket), and says whether the dump is complete. A reply that is cut
/// short or malformed, or an error from the kernel, is an error.
pub fn parse(reply: &[u8], port: u16, out: &mut Vec<IpAddr>) -> io::Result<Parsed> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply");
    let mut rest = reply;
    while !rest.is_empty() {
        let u32_at = |b: &[u8], i: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
        };
        let len = u32_at(rest, 0).ok_or_else(bad)? as usize;
        let kind = u16::from_ne_bytes(
            rest.get(4..6)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        if len < HEADER || len > rest.len() {
            return Err(bad());
        }
        let body = &rest[HEADER..len];
        match kind {
            NLMSG_DONE => return Ok(Parsed::Done),
            NLMSG_ERROR => {
                let errno = u32_at(body, 0).ok_or_else(bad)? as i32;
                return Err(io::Error::from_raw_os_error(-errno));
            }
            SOCK_DIAG_BY_FAMILY => {
                if body.len() < DIAG_MSG {
                    return Err(bad());
                }
                let (family, state) = (body[0], body[1]);
                let sport = u16::from_be_bytes([body[4], body[5]]);
                let src = &body[8..24];
                if state == TCP_LISTEN && sport == port {
                    let addr = match i32::from(family) {
                        f if f == AddressFamily::Inet as i32 => {
                            IpAddr::from(Ipv4Addr::new(src[0], src[1], src[2], src[3]))
                        }
                        f if f == AddressFamily::Inet6 as i32 => {
                            let octets: [u8; 16] = src.try_into().map_err(|_| bad())?;
                            IpAddr::from(Ipv6Addr::from(octets))
                        }
                        _ => return Err(bad()),
                    };
                    out.push(addr);
                }
            }
            // Anything else (NLMSG_NOOP, an overrun notice) carries no socket.
            _ => {}
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    Ok(Parsed::More)
}

/// The local addresses of the TCP sockets listening on `port` in this network namespace, IPv4
/// and IPv6 (`0.0.0.0` or `::` for a socket bound to every address).
pub fn listening(port: u16) -> io::Result<Vec<IpAddr>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )?;
    setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &TimeVal::new(0, TIMEOUT_MS * 1000),
    )?;
    let kernel = NetlinkAddr::new(0, 0);
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    for (seq, family) in [(1, AddressFamily::Inet), (2, AddressFamily::Inet6)] {
        sendto(
            fd.as_raw_fd(),
            &request(family, seq),
            &kernel,
            MsgFlags::empty(),
        )?;
        loop {
            let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            if n == 0 || parse(&buf[..n], port, &mut out)? == Parsed::Done {
                break;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn header(len: usize, kind: u16) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(&(len as u32).to_ne_bytes());
        h.extend_from_slice(&kind.to_ne_bytes());
        h.extend_from_slice(&[0; 10]);
        h
    }

    /// A reply message for one socket, as the kernel lays out `struct inet_diag_msg`.
    fn socket_msg(family: AddressFamily, state: u8, port: u16, addr: &[u8]) -> Vec<u8> {
        let mut m = header(HEADER + DIAG_MSG, SOCK_DIAG_BY_FAMILY);
        let mut body = vec![0u8; DIAG_MSG];
        body[0] = family as i32 as u8;
        body[1] = state;
        body[4..6].copy_from_slice(&port.to_be_bytes());
        body[8..8 + addr.len()].copy_from_slice(addr);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn the_request_is_a_header_and_an_inet_diag_req_v2() {
        let r = request(AddressFamily::Inet6, 7);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 72);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 20);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x0301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 7);
        assert_eq!(r[16], AddressFamily::Inet6 as i32 as u8);
        assert_eq!(r[17], 6);
        assert_eq!(u32::from_ne_bytes(r[20..24].try_into().unwrap()), 1 << 10);
    }

    #[test]
    fn listening_sockets_on_the_port_are_found_and_the_rest_ignored() {
        let mut reply = Vec::new();
        reply.extend(socket_msg(
            AddressFamily::Inet,
            TCP_LISTEN,
            22,
            &[0, 0, 0, 0],
        ));
        reply.extend(socket_msg(
            AddressFamily::Inet,
            TCP_LISTEN,
            2222,
            &[127, 0, 0, 1],
        ));
        reply.extend(socket_msg(AddressFamily::Inet, 1, 22, &[10, 0, 0, 1]));
        let v6 = "fe80::1".parse::<Ipv6Addr>().unwrap().octets();
        reply.extend(socket_msg(AddressFamily::Inet6, TCP_LISTEN, 22, &v6));
        let mut out = Vec::new();
        assert_eq!(parse(&reply, 22, &mut out).unwrap(), Parsed::More);
        assert_eq!(
            out,
            vec![
                IpAddr::from([0, 0, 0, 0]),
                IpAddr::from("fe80::1".parse::<Ipv6Addr>().unwrap())
            ]
        );
        let mut done = header(HEADER + 4, NLMSG_DONE);
        done.extend_from_slice(&[0; 4]);
        assert_eq!(parse(&done, 22, &mut out).unwrap(), Parsed::Done);
    }

    #[test]
    fn a_kernel_error_and_a_cut_reply_are_errors() {
        let mut err = header(HEADER + 4, NLMSG_ERROR);
        err.extend_from_slice(&(-13i32).to_ne_bytes());
        let e = parse(&err, 22, &mut Vec::new()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(13));
        let whole = socket_msg(AddressFamily::Inet, TCP_LISTEN, 22, &[0, 0, 0, 0]);
        for cut in [3, HEADER - 1, HEADER + 10, whole.len() - 1] {
            assert!(parse(&whole[..cut], 22, &mut Vec::new()).is_err(), "{cut}");
        }
        let mut short = header(HEADER + 8, SOCK_DIAG_BY_FAMILY);
        short.extend_from_slice(&[0; 8]);
        assert!(parse(&short, 22, &mut Vec::new()).is_err());
    }

    /// The real kernel: a socket listening here is reported, on its address and port.
    #[test]
    fn a_socket_listening_here_is_reported_by_the_kernel() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        let at = open.local_addr().unwrap();
        let found = listening(at.port()).unwrap();
        assert!(found.contains(&at.ip()), "{found:?}");
    }
}
