//! Which addresses a TCP port listens on, in this network namespace, asked of the kernel's
//! socket diagnostics (netlink `NETLINK_SOCK_DIAG`, as `ss -ltn` does).
//!
//! The preflight uses it to see that this machine's sshd listens without connecting to it:
//! OpenSSH forks and re-executes itself for every connection it accepts (a few milliseconds of
//! CPU, and a "Connection closed ... \[preauth\]" line in its log), which a pairing would wait for
//! on a small machine. `/proc/net/tcp` says the same, but reading it walks every TCP socket of
//! the machine (about 3 ms of CPU here); the request below asks for listening sockets only.
//!
//! `parse` is the pure part (unit-tested with messages built by hand; the framing is
//! [`netlink`]'s); [`listening`] sends the two requests (IPv4, IPv6) and reads
//! the replies.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::sys::socket::{AddressFamily, SockProtocol};

use super::netlink::{self, Parsed};

/// `SOCK_DIAG_BY_FAMILY`: the request and reply type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCP_LISTEN` in the kernel's numbering of TCP states.
const TCP_LISTEN: u8 = 10;
/// The length of `struct inet_diag_msg` (the part of a reply this reads).
const DIAG_MSG: usize = 72;

/// The request for the listening TCP sockets of one address family: a `struct nlmsghdr`
/// followed by a `struct inet_diag_req_v2` (family, protocol, extensions, padding, the states
/// wanted as a bit mask, and a socket id that a dump ignores).
fn request(family: AddressFamily, seq: u32) -> Vec<u8> {
    let mut m = netlink::dump_request(SOCK_DIAG_BY_FAMILY, seq, 56);
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

/// Adds to `out` the local address of every listening socket on `port` in `reply` (one buffer
/// read from the netlink socket), and says whether the dump is complete. A reply that is cut
/// short or malformed, or an error from the kernel, is an error.
fn parse(reply: &[u8], port: u16, out: &mut Vec<IpAddr>) -> io::Result<Parsed> {
    netlink::messages(reply, "sock_diag", |kind, body| {
        // Anything else (NLMSG_NOOP, an overrun notice) carries no socket.
        if kind != SOCK_DIAG_BY_FAMILY {
            return Ok(());
        }
        if body.len() < DIAG_MSG {
            return Err(());
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
                    let octets: [u8; 16] = src.try_into().map_err(|_| ())?;
                    IpAddr::from(Ipv6Addr::from(octets))
                }
                _ => return Err(()),
            };
            out.push(addr);
        }
        Ok(())
    })
}

/// The local addresses of the TCP sockets listening on `port` in this network namespace, IPv4
/// and IPv6 (`0.0.0.0` or `::` for a socket bound to every address).
pub fn listening(port: u16) -> io::Result<Vec<IpAddr>> {
    let mut socket = netlink::Socket::open(SockProtocol::NetlinkSockDiag)?;
    let mut out = Vec::new();
    for (seq, family) in [(1, AddressFamily::Inet), (2, AddressFamily::Inet6)] {
        socket.dump(&request(family, seq), |reply| parse(reply, port, &mut out))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::netlink::{header, HEADER, NLMSG_DONE, NLMSG_ERROR};
    use std::net::TcpListener;

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
