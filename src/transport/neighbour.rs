//! Copies by multicast of what waits for neighbour discovery.
//!
//! A unicast datagram to a host on the LAN leaves only once the kernel knows the host's
//! link-layer address (ARP for IPv4, neighbour discovery for IPv6). Two machines that have never
//! talked learn it with the first directed message of a pairing, and on a LAN that loses frames
//! the request or its answer is often lost: Linux asks again only after a second
//! (`retrans_time_ms`), and the datagram waits in the kernel meanwhile. The hellos travel by
//! multicast, which needs no neighbour, so the peer's address is known to work that way.
//!
//! So while the kernel has not resolved the address a unicast datagram goes to, the transport
//! also sends the same datagram to the pairing group, on that address's family and interface,
//! from the same socket: the peer sees the same source address and port, and its machine handles
//! the copy as the datagram itself (a second copy, when the unicast one leaves later, is a
//! duplicate like any the network makes). A neighbour is given [`MIRROR_AFTER`] to resolve
//! first, so that on a LAN that loses nothing no copy is sent at all: the decision is
//! [`Mirror`], pure and unit-tested; the kernel is asked with netlink (`RTM_GETNEIGH`, as
//! `ip neigh` does, unprivileged), [`parse`] being the pure part of that and [`Kernel`] the
//! small I/O one. Once an address is seen resolved, it is never asked about again in the run.
//! If the kernel cannot be asked, nothing is copied (every datagram still goes by unicast).
//!
//! What this shows to others: a copy is seen by every host on the LAN, where a switch would have
//! shown the unicast datagram to the peer alone. The copies are the same directed messages
//! (the SPAKE2 message, safe against passive eavesdroppers; payload pieces, sealed; tagged
//! acknowledgements), and other pairing runs ignore them by session id. The machine's
//! amplification budget gates every datagram as before: a copy only ever follows a unicast
//! datagram the machine chose to send.

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use nix::sys::socket::{AddressFamily, SockProtocol};

use super::netlink::{self, u16_at, u32_at, Parsed};

/// How long the kernel gets to resolve a neighbour, from the first datagram to it, before what
/// goes there is copied by multicast. A LAN answers ARP within a millisecond, Wi-Fi within a few;
/// a lost request costs a second.
pub const MIRROR_AFTER: Duration = Duration::from_millis(5);
/// At most this many copies wait for [`MIRROR_AFTER`] to pass (a pairing sends a handful).
const MAX_PENDING: usize = 64;
/// At most this many addresses heard from are remembered (a crowd of 64 pairings has 128 hosts).
const MAX_HEARD: usize = 1024;

/// `RTM_NEWNEIGH` (a reply) and `RTM_GETNEIGH` (the request).
const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
/// The length of `struct ndmsg`.
const NDMSG: usize = 12;
/// `NDA_DST`: the attribute that holds the neighbour's network address.
const NDA_DST: u16 = 1;
/// The neighbour states (`NUD_*`) in which the kernel sends at once: it knows the link-layer
/// address (REACHABLE, STALE, DELAY, PROBE, PERMANENT) or needs none (NOARP). The others are
/// INCOMPLETE (asking), FAILED (gave up) and NONE.
const RESOLVED: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80 | 0x40;

/// Whether a neighbour in state `state` (`ndm_state`) gets unicast frames at once.
pub fn is_resolved(state: u16) -> bool {
    state & RESOLVED != 0
}

/// One entry of the kernel's neighbour table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub ifindex: u32,
    pub addr: IpAddr,
    pub state: u16,
}

/// The request for the whole neighbour table of one address family: a `struct nlmsghdr`
/// followed by a `struct ndmsg` that names only the family (as `ip neigh show` sends).
pub fn request(family: AddressFamily, seq: u32) -> Vec<u8> {
    let mut m = netlink::dump_request(RTM_GETNEIGH, seq, NDMSG);
    m.push(family as i32 as u8);
    m.extend_from_slice(&[0; NDMSG - 1]);
    m
}

/// Adds to `out` every neighbour in `reply` (one buffer read from the netlink socket) that has
/// an IPv4 or IPv6 address, and says whether the dump is complete. A reply that is cut short or
/// malformed, or an error from the kernel, is an error.
pub fn parse(reply: &[u8], out: &mut Vec<Entry>) -> io::Result<Parsed> {
    netlink::messages(reply, "neighbour table", |kind, body| {
        // Anything else (NLMSG_NOOP, an overrun notice) carries no neighbour.
        if kind != RTM_NEWNEIGH {
            return Ok(());
        }
        if body.len() < NDMSG {
            return Err(());
        }
        let ifindex = u32_at(body, 4).ok_or(())?;
        let state = u16_at(body, 8).ok_or(())?;
        // The attributes: each a length (header included), a type and the value, aligned to 4
        // bytes.
        let mut attrs = &body[NDMSG..];
        let mut addr = None;
        while attrs.len() >= 4 {
            let alen = usize::from(u16_at(attrs, 0).ok_or(())?);
            let atype = u16_at(attrs, 2).ok_or(())?;
            if alen < 4 || alen > attrs.len() {
                return Err(());
            }
            let value = &attrs[4..alen];
            if atype == NDA_DST {
                addr = match value.len() {
                    4 => Some(IpAddr::from(Ipv4Addr::new(
                        value[0], value[1], value[2], value[3],
                    ))),
                    16 => Some(IpAddr::from(Ipv6Addr::from(
                        <[u8; 16]>::try_from(value).map_err(|_| ())?,
                    ))),
                    // Another family's address (a bridge's table): not ours.
                    _ => None,
                };
            }
            attrs = attrs.get((alen + 3) & !3..).unwrap_or(&[]);
        }
        if let Some(addr) = addr {
            out.push(Entry {
                ifindex,
                addr,
                state,
            });
        }
        Ok(())
    })
}

/// Whether `entries` hold `addr` on interface `ifindex` in a state that gets frames at once.
/// No entry (the kernel has not been asked to send there yet) is unresolved.
pub fn resolved_in(entries: &[Entry], addr: IpAddr, ifindex: u32) -> bool {
    entries
        .iter()
        .any(|e| e.addr == addr && e.ifindex == ifindex && is_resolved(e.state))
}

/// Whether `entries` show the kernel still resolving `addr` on some interface (or given up on
/// it), and nowhere resolved: a connection to it waits for neighbour discovery. No entry at all
/// (nothing was sent there, or it is reached through a router) says nothing: `false`.
pub fn waiting_in(entries: &[Entry], addr: IpAddr) -> bool {
    let mine = || entries.iter().filter(|e| e.addr == addr);
    mine().next().is_some() && !mine().any(|e| is_resolved(e.state))
}

/// A netlink socket to ask the kernel's neighbour tables with.
pub struct Kernel {
    socket: netlink::Socket,
    seq: u32,
}

impl Kernel {
    pub fn open() -> io::Result<Kernel> {
        Ok(Kernel {
            socket: netlink::Socket::open(SockProtocol::NetlinkRoute)?,
            seq: 0,
        })
    }

    /// Whether the kernel sends to `addr` on interface `ifindex` at once.
    pub fn resolved(&mut self, addr: IpAddr, ifindex: u32) -> io::Result<bool> {
        Ok(resolved_in(&self.entries(addr)?, addr, ifindex))
    }

    /// Whether a connection to `addr` waits for the kernel to resolve it ([`waiting_in`]).
    pub fn waiting(&mut self, addr: IpAddr) -> io::Result<bool> {
        Ok(waiting_in(&self.entries(addr)?, addr))
    }

    /// The neighbour table of `addr`'s family.
    fn entries(&mut self, addr: IpAddr) -> io::Result<Vec<Entry>> {
        let family = if addr.is_ipv4() {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        self.seq = self.seq.wrapping_add(1);
        let mut entries = Vec::new();
        self.socket.dump(&request(family, self.seq), |reply| {
            parse(reply, &mut entries)
        })?;
        Ok(entries)
    }
}

/// The decision of what to copy by multicast, and when, for one run. The kernel is asked
/// through the closures given (`Some(resolved)`, or `None` when it cannot be asked: then
/// nothing is copied for the rest of the run).
#[derive(Debug, Default)]
pub struct Mirror {
    /// Addresses a datagram came from: only these get copies. A hello to an address that has
    /// not spoken (a `--peer` host, the subnet probe) is not copied: hellos go to the group
    /// anyway, and the probe's addresses mostly do not exist.
    heard: HashSet<IpAddr>,
    /// Addresses seen resolved: never asked about again.
    resolved: HashSet<IpAddr>,
    /// Addresses not seen resolved yet, with the time of the first datagram to them.
    since: HashMap<IpAddr, Instant>,
    /// Copies waiting for their address's [`MIRROR_AFTER`] to pass: when, where, what.
    pending: Vec<(Instant, SocketAddr, Vec<u8>)>,
    /// The kernel could not be asked.
    off: bool,
}

impl Mirror {
    /// A datagram came from `from`.
    pub fn heard(&mut self, from: IpAddr) {
        if self.heard.len() < MAX_HEARD {
            self.heard.insert(from);
        }
    }

    /// A unicast `datagram` to `to` went out at `now`: whether to copy it by multicast at once.
    /// A copy may instead wait for [`Mirror::due`] (the kernel is not asked before its address
    /// has had [`MIRROR_AFTER`] to resolve).
    pub fn sent(
        &mut self,
        now: Instant,
        to: SocketAddr,
        datagram: &[u8],
        resolved: impl FnOnce(SocketAddr) -> Option<bool>,
    ) -> bool {
        let ip = to.ip();
        if self.off || self.resolved.contains(&ip) || !self.heard.contains(&ip) {
            return false;
        }
        let at = *self.since.entry(ip).or_insert(now) + MIRROR_AFTER;
        if now < at {
            if self.pending.len() < MAX_PENDING {
                self.pending.push((at, to, datagram.to_vec()));
            }
            return false;
        }
        self.ask(to, resolved)
    }

    /// Whether `to`'s address is still unresolved; remembers the answer.
    fn ask(&mut self, to: SocketAddr, resolved: impl FnOnce(SocketAddr) -> Option<bool>) -> bool {
        let ip = to.ip();
        match resolved(to) {
            Some(true) => {
                self.resolved.insert(ip);
                self.since.remove(&ip);
                self.pending.retain(|(_, to, _)| to.ip() != ip);
                false
            }
            Some(false) => true,
            None => {
                self.off = true;
                self.pending.clear();
                false
            }
        }
    }

    /// When the next waiting copy is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|(at, _, _)| *at).min()
    }

    /// The copies due at `now` whose address is still unresolved (each address asked once).
    pub fn due(
        &mut self,
        now: Instant,
        mut resolved: impl FnMut(SocketAddr) -> Option<bool>,
    ) -> Vec<(SocketAddr, Vec<u8>)> {
        if self.next_due().is_none_or(|at| at > now) {
            return Vec::new();
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(at, _, _)| *at <= now);
        self.pending = later;
        let mut asked: HashMap<IpAddr, bool> = HashMap::new();
        let mut out = Vec::new();
        for (_, to, datagram) in due {
            let ip = to.ip();
            let copy = match asked.get(&ip) {
                Some(&copy) => copy,
                None => {
                    let copy = self.ask(to, &mut resolved);
                    asked.insert(ip, copy);
                    copy
                }
            };
            if copy && !self.off {
                out.push((to, datagram));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::netlink::{header, HEADER, NLMSG_DONE, NLMSG_ERROR};

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        while a.len() % 4 != 0 {
            a.push(0);
        }
        a
    }

    /// A neighbour as the kernel reports it: `struct ndmsg`, then NDA_DST and NDA_LLADDR.
    fn neighbour(family: AddressFamily, ifindex: u32, state: u16, addr: &[u8]) -> Vec<u8> {
        let mut body = vec![family as i32 as u8, 0, 0, 0];
        body.extend_from_slice(&ifindex.to_ne_bytes());
        body.extend_from_slice(&state.to_ne_bytes());
        body.extend_from_slice(&[0, 1]);
        body.extend(attr(NDA_DST, addr));
        body.extend(attr(2, &[0x02, 0, 0, 0, 0, 0x01]));
        let mut m = header(HEADER + body.len(), RTM_NEWNEIGH);
        m.extend(body);
        m
    }

    const REACHABLE: u16 = 0x02;
    const STALE: u16 = 0x04;
    const INCOMPLETE: u16 = 0x01;
    const FAILED: u16 = 0x20;
    const NOARP: u16 = 0x40;

    #[test]
    fn the_request_is_a_header_and_an_ndmsg_naming_the_family() {
        let r = request(AddressFamily::Inet6, 9);
        assert_eq!(r.len(), 28);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().unwrap()), 28);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().unwrap()), 30);
        assert_eq!(u16::from_ne_bytes(r[6..8].try_into().unwrap()), 0x0301);
        assert_eq!(u32::from_ne_bytes(r[8..12].try_into().unwrap()), 9);
        assert_eq!(r[16], AddressFamily::Inet6 as i32 as u8);
        assert!(r[17..].iter().all(|&b| b == 0));
    }

    #[test]
    fn neighbours_are_read_with_their_interface_and_state() {
        let v6 = "fe80::2".parse::<Ipv6Addr>().unwrap();
        let mut reply = neighbour(AddressFamily::Inet, 3, REACHABLE, &[10, 0, 0, 2]);
        reply.extend(neighbour(
            AddressFamily::Inet,
            3,
            INCOMPLETE,
            &[10, 0, 0, 3],
        ));
        reply.extend(neighbour(AddressFamily::Inet6, 4, STALE, &v6.octets()));
        // A bridge's entry, with a link-layer "address" only: skipped.
        reply.extend(neighbour(
            AddressFamily::Inet,
            5,
            NOARP,
            &[1, 2, 3, 4, 5, 6],
        ));
        let mut out = Vec::new();
        assert_eq!(parse(&reply, &mut out).unwrap(), Parsed::More);
        assert_eq!(
            out,
            vec![
                Entry {
                    ifindex: 3,
                    addr: IpAddr::from([10, 0, 0, 2]),
                    state: REACHABLE
                },
                Entry {
                    ifindex: 3,
                    addr: IpAddr::from([10, 0, 0, 3]),
                    state: INCOMPLETE
                },
                Entry {
                    ifindex: 4,
                    addr: IpAddr::from(v6),
                    state: STALE
                },
            ]
        );
        let mut done = header(HEADER + 4, NLMSG_DONE);
        done.extend_from_slice(&[0; 4]);
        assert_eq!(parse(&done, &mut out).unwrap(), Parsed::Done);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn a_kernel_error_and_a_cut_reply_are_errors() {
        let mut err = header(HEADER + 4, NLMSG_ERROR);
        err.extend_from_slice(&(-1i32).to_ne_bytes());
        assert_eq!(
            parse(&err, &mut Vec::new()).unwrap_err().raw_os_error(),
            Some(1)
        );
        let whole = neighbour(AddressFamily::Inet, 3, REACHABLE, &[10, 0, 0, 2]);
        for cut in [3, HEADER - 1, HEADER + 5, whole.len() - 1] {
            assert!(parse(&whole[..cut], &mut Vec::new()).is_err(), "{cut}");
        }
        // An attribute longer than its message.
        let mut long = whole.clone();
        long[HEADER + NDMSG..HEADER + NDMSG + 2].copy_from_slice(&200u16.to_ne_bytes());
        assert!(parse(&long, &mut Vec::new()).is_err());
    }

    #[test]
    fn resolved_means_the_kernel_sends_at_once() {
        for state in [REACHABLE, STALE, 0x08, 0x10, 0x80, NOARP] {
            assert!(is_resolved(state), "{state:#x}");
        }
        for state in [0, INCOMPLETE, FAILED] {
            assert!(!is_resolved(state), "{state:#x}");
        }
        let entries = [
            Entry {
                ifindex: 3,
                addr: IpAddr::from([10, 0, 0, 2]),
                state: REACHABLE,
            },
            Entry {
                ifindex: 3,
                addr: IpAddr::from([10, 0, 0, 3]),
                state: INCOMPLETE,
            },
        ];
        assert!(resolved_in(&entries, IpAddr::from([10, 0, 0, 2]), 3));
        // The same address on another interface is another neighbour.
        assert!(!resolved_in(&entries, IpAddr::from([10, 0, 0, 2]), 4));
        assert!(!resolved_in(&entries, IpAddr::from([10, 0, 0, 3]), 3));
        // No entry: nothing has been sent there yet.
        assert!(!resolved_in(&entries, IpAddr::from([10, 0, 0, 9]), 3));
        assert!(!waiting_in(&entries, IpAddr::from([10, 0, 0, 2])));
        assert!(waiting_in(&entries, IpAddr::from([10, 0, 0, 3])));
        assert!(!waiting_in(&entries, IpAddr::from([10, 0, 0, 9])));
    }

    fn peer() -> SocketAddr {
        "10.0.0.2:40000".parse().unwrap()
    }

    fn never(_: SocketAddr) -> Option<bool> {
        panic!("the kernel must not be asked")
    }

    #[test]
    fn a_neighbour_that_resolves_in_time_gets_no_copy_and_is_not_asked_again() {
        let mut m = Mirror::default();
        m.heard(peer().ip());
        let t = Instant::now();
        assert!(!m.sent(t, peer(), b"pake", never));
        assert!(!m.sent(t + Duration::from_millis(1), peer(), b"data", never));
        assert_eq!(m.next_due(), Some(t + MIRROR_AFTER));
        assert!(m.due(t + Duration::from_millis(4), never).is_empty());
        let mut asked = 0;
        let copies = m.due(t + MIRROR_AFTER, |to| {
            asked += 1;
            assert_eq!(to, peer());
            Some(true)
        });
        assert!(copies.is_empty());
        assert_eq!(asked, 1);
        assert_eq!(m.next_due(), None);
        assert!(!m.sent(t + Duration::from_secs(1), peer(), b"more", never));
        assert_eq!(m.next_due(), None);
    }

    #[test]
    fn an_unresolved_neighbour_gets_copies_late_then_at_once_until_it_resolves() {
        let mut m = Mirror::default();
        let t = Instant::now();
        let other: SocketAddr = "[fe80::3%2]:40000".parse().unwrap();
        m.heard(peer().ip());
        m.heard(other.ip());
        assert!(!m.sent(t, peer(), b"pake", never));
        assert!(!m.sent(t + Duration::from_millis(2), other, b"x", never));
        assert!(!m.sent(t + Duration::from_millis(3), peer(), b"again", never));
        let copies = m.due(t + MIRROR_AFTER, |_| Some(false));
        assert_eq!(
            copies,
            vec![(peer(), b"pake".to_vec()), (peer(), b"again".to_vec())]
        );
        // The other address's copy is due later.
        assert_eq!(
            m.next_due(),
            Some(t + Duration::from_millis(2) + MIRROR_AFTER)
        );
        // Past its moment, an unresolved address gets its copy at once.
        let later = t + Duration::from_millis(50);
        assert!(m.sent(later, peer(), b"data", |_| Some(false)));
        assert!(!m.sent(later, peer(), b"data", |_| Some(true)));
        assert!(!m.sent(later, peer(), b"data", never));
        assert_eq!(
            m.due(later, |to| Some(to == peer())),
            vec![(other, b"x".to_vec())]
        );
    }

    #[test]
    fn a_kernel_that_cannot_be_asked_turns_copies_off() {
        let mut m = Mirror::default();
        m.heard(peer().ip());
        let t = Instant::now();
        assert!(!m.sent(t, peer(), b"pake", never));
        assert!(m.due(t + MIRROR_AFTER, |_| None).is_empty());
        assert_eq!(m.next_due(), None);
        assert!(!m.sent(t + Duration::from_secs(1), peer(), b"data", never));
        assert_eq!(m.next_due(), None);
    }

    #[test]
    fn waiting_copies_are_bounded() {
        let mut m = Mirror::default();
        m.heard(peer().ip());
        let t = Instant::now();
        for _ in 0..MAX_PENDING + 10 {
            m.sent(t, peer(), b"x", never);
        }
        assert_eq!(m.due(t + MIRROR_AFTER, |_| Some(false)).len(), MAX_PENDING);
    }

    /// Hellos to addresses that never spoke (the subnet probe, `--peer` hosts) get no copies.
    #[test]
    fn only_addresses_heard_from_get_copies() {
        let mut m = Mirror::default();
        let t = Instant::now();
        let later = t + Duration::from_millis(50);
        for i in 1..=254u8 {
            let to = SocketAddr::from(([10, 0, 0, i], 28620));
            assert!(!m.sent(t, to, b"hello", never));
            assert!(!m.sent(later, to, b"hello", never));
        }
        assert_eq!(m.next_due(), None);
        m.heard(peer().ip());
        assert!(!m.sent(later, peer(), b"pake", never));
        assert!(m.sent(later + MIRROR_AFTER, peer(), b"data", |_| Some(false)));
    }

    /// The real kernel: loopback needs no neighbour, and an address never sent to has no entry.
    #[test]
    fn the_kernel_answers_for_its_own_tables() {
        let mut k = Kernel::open().unwrap();
        // 192.0.2.0/24 is for documentation: nothing here has sent to it.
        assert!(!k.resolved(IpAddr::from([192, 0, 2, 77]), 1).unwrap());
        assert!(!k.resolved("2001:db8::77".parse().unwrap(), 1).unwrap());
    }
}
