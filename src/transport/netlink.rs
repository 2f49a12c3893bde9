//! The netlink plumbing that [`listening`](super::listening) (socket diagnostics) and
//! [`neighbour`](super::neighbour) (the neighbour tables) share: the header of a dump request,
//! the framing of a dump's reply, and a socket that sends one request and reads its dump.
//!
//! [`messages`] is the pure part (unit-tested here and through both users' parsers, with
//! messages built by hand); [`Socket`] is the small I/O one.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{
    recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

/// The length of `struct nlmsghdr`.
pub const HEADER: usize = 16;
/// `NLM_F_REQUEST | NLM_F_DUMP`.
const REQUEST_DUMP: u16 = 0x0001 | 0x0300;
/// `NLMSG_ERROR` and `NLMSG_DONE`.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
/// How long the kernel has to answer (it answers at once; this only bounds a surprise).
const TIMEOUT_MS: i64 = 200;

/// What one reply buffer held.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More messages follow in the next buffer.
    More,
    /// The dump is complete.
    Done,
}

/// The header of a dump request of type `kind` whose body (`body_len` bytes) follows it.
pub fn dump_request(kind: u16, seq: u32, body_len: usize) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER + body_len);
    m.extend_from_slice(&((HEADER + body_len) as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&REQUEST_DUMP.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m
}

/// Hands every message of `reply` (one buffer read from a netlink socket) but the last to
/// `message(kind, body)`, and says whether the dump is complete. A message cut short, an error
/// from the kernel, or an error from `message` is an error; `what` names the reply in one.
pub fn messages(
    reply: &[u8],
    what: &str,
    mut message: impl FnMut(u16, &[u8]) -> Result<(), ()>,
) -> io::Result<Parsed> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed {what} reply"),
        )
    };
    let mut rest = reply;
    while !rest.is_empty() {
        let len = u32_at(rest, 0).ok_or_else(bad)? as usize;
        let kind = u16_at(rest, 4).ok_or_else(bad)?;
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
            _ => message(kind, body).map_err(|()| bad())?,
        }
        // Messages are aligned to 4 bytes.
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or(&[]);
    }
    Ok(Parsed::More)
}

/// The native-endian `u16` at `i` of `b`, if `b` holds it.
pub fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

/// The native-endian `u32` at `i` of `b`, if `b` holds it.
pub fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// A reply message's header: `len` bytes in all (the header's included), of type `kind` (the
/// parsers' tests build replies with it).
#[cfg(test)]
pub fn header(len: usize, kind: u16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&(len as u32).to_ne_bytes());
    h.extend_from_slice(&kind.to_ne_bytes());
    h.extend_from_slice(&[0; 10]);
    h
}

/// A netlink socket of one protocol, for dumps.
pub struct Socket {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Socket {
    pub fn open(protocol: SockProtocol) -> io::Result<Socket> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            protocol,
        )?;
        setsockopt(
            &fd,
            sockopt::ReceiveTimeout,
            &TimeVal::new(0, TIMEOUT_MS * 1000),
        )?;
        Ok(Socket {
            fd,
            buf: vec![0u8; 32 * 1024],
        })
    }

    /// Sends `request` to the kernel and hands each buffer of the reply to `parse`, until it
    /// says the dump is complete.
    pub fn dump(
        &mut self,
        request: &[u8],
        mut parse: impl FnMut(&[u8]) -> io::Result<Parsed>,
    ) -> io::Result<()> {
        sendto(
            self.fd.as_raw_fd(),
            request,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut self.buf, MsgFlags::empty())?;
            if n == 0 || parse(&self.buf[..n])? == Parsed::Done {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut m = dump_request(kind, 0, body.len());
        m.extend_from_slice(body);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn messages_are_handed_over_until_done() {
        let mut reply = message(20, &[1, 2, 3]);
        reply.extend(message(21, &[4; 8]));
        let mut seen = Vec::new();
        let got = messages(&reply, "test", |k, b| {
            seen.push((k, b.to_vec()));
            Ok(())
        });
        assert_eq!(got.unwrap(), Parsed::More);
        assert_eq!(seen, vec![(20, vec![1, 2, 3]), (21, vec![4; 8])]);
        reply.extend(message(NLMSG_DONE, &[0; 4]));
        reply.extend(message(22, &[9]));
        let mut after = 0;
        let got = messages(&reply, "test", |k, _| {
            after += usize::from(k == 22);
            Ok(())
        });
        assert_eq!(got.unwrap(), Parsed::Done);
        assert_eq!(after, 0);
    }

    #[test]
    fn errors_cut_messages_and_refusals_are_errors() {
        let err = message(NLMSG_ERROR, &(-13i32).to_ne_bytes());
        let e = messages(&err, "test", |_, _| Ok(())).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(13));
        let whole = message(20, &[1; 8]);
        for cut in [3, HEADER - 1, whole.len() - 1] {
            let e = messages(&whole[..cut], "test", |_, _| Ok(())).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "cut at {cut}");
        }
        let e = messages(&whole, "the kernel's", |_, _| Err(())).unwrap_err();
        assert_eq!(e.to_string(), "malformed the kernel's reply");
    }
}
