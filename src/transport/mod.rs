//! The transport: UDP sockets on the chosen interfaces, and the thin loop
//! ([`driver`]) that feeds them to the protocol machine.
//!
//! Each address family gets two sockets. The *listening* socket is bound to
//! the well-known port and joins the multicast group on every chosen
//! interface explicitly (a namespace or host without a default route refuses
//! a join on INADDR_ANY). The *unicast* socket has an ephemeral port and
//! sends everything, so that peers answer to an address only this process
//! owns, even when two git-pair processes share a host and the well-known
//! port. Multicast goes out with TTL / hop limit 1 on each interface in turn.
//! While the kernel has not resolved the link-layer address a unicast datagram
//! goes to, the datagram is also copied to the group, from the same socket
//! ([`neighbour`]): a lost ARP request would otherwise hold it for a second.
//!
//! Datagrams are accepted only from the chosen interfaces' own subnets (or
//! the `--peer` hosts), so that `--interface` really confines pairing.
//!
//! The same sockets carry the locate protocol (`git pair watch` listens on its
//! port like a pairing; `git pair refresh` only sends, from
//! [`Sockets::open_sender`]). [`hostkey`] checks an sshd's host key with ssh
//! itself.

pub mod driver;
pub mod hostkey;
pub mod iface;
pub mod listening;
pub mod neighbour;
pub mod netlink;
pub mod probe;
pub mod scan;

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockRef, Socket, Type};

use crate::protocol::codec::MAX_DATAGRAM;
use crate::protocol::{Destination, Transmit};
use iface::Interface;
use neighbour::{Kernel, Mirror};

/// The UDP port of the exchange, unless `--port` or `pair.port` say otherwise.
pub const DEFAULT_PORT: u16 = 28620;
/// The IPv4 group: in the link-local block 224.0.0.0/24, which routers never
/// forward.
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 88);
/// The IPv6 group: link-local scope (ff02::/16); the group id spells "pair".
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0x7061, 0x6972);

/// Why the sockets could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("cannot use UDP port {port} (is another program using it? Choose another with --port on both machines)")]
    Bind {
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("cannot open a UDP socket")]
    Socket(#[source] io::Error),
    #[error("cannot join the pairing multicast group on any of {interfaces}: {detail}")]
    NoMulticast { interfaces: String, detail: String },
    #[error("waiting for the network failed")]
    Poll(#[source] nix::Error),
    #[error("cannot watch for Ctrl-C")]
    Signals(#[source] nix::Error),
}

struct Family {
    /// Bound to the well-known port; `None` for a set that only sends ([`Sockets::open_sender`]).
    listen: Option<UdpSocket>,
    unicast: UdpSocket,
}

/// The sockets of one pairing run.
pub struct Sockets {
    interfaces: Vec<Interface>,
    port: u16,
    v4: Option<Family>,
    v6: Option<Family>,
    /// Interfaces (by their IPv4 address) on which IPv4 multicast works.
    multicast_v4: Vec<(Ipv4Addr, String)>,
    /// Interfaces (by index) on which IPv6 multicast works.
    multicast_v6: Vec<(u32, String)>,
    /// `--peer` hosts: accepted even when not on a chosen subnet.
    peers: Vec<IpAddr>,
    warnings: Vec<String>,
    /// Copies by multicast of unicast datagrams that wait for neighbour discovery
    /// ([`neighbour`]); `None` for a set that only sends.
    mirror: Option<Mirror>,
    /// The kernel's neighbour tables, opened when first asked; `None` until then.
    kernel: Option<Kernel>,
}

fn udp(domain: Domain) -> Result<Socket, TransportError> {
    let socket =
        Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(TransportError::Socket)?;
    if domain == Domain::IPV6 {
        socket.set_only_v6(true).map_err(TransportError::Socket)?;
    }
    Ok(socket)
}

fn unspecified(domain: Domain, port: u16) -> SocketAddr {
    if domain == Domain::IPV4 {
        SocketAddr::from((Ipv4Addr::UNSPECIFIED, port))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, port))
    }
}

/// The socket on the well-known port. Shared with other git-pair processes
/// on this host (SO_REUSEADDR), and receiving only the groups it joins
/// rather than every group some other program joined.
fn listening(domain: Domain, port: u16) -> Result<Socket, TransportError> {
    let socket = udp(domain)?;
    socket
        .set_reuse_address(true)
        .map_err(TransportError::Socket)?;
    socket
        .bind(&unspecified(domain, port).into())
        .map_err(|source| TransportError::Bind { port, source })?;
    let only_joined = if domain == Domain::IPV4 {
        socket.set_multicast_all_v4(false)
    } else {
        socket.set_multicast_all_v6(false)
    };
    only_joined.map_err(TransportError::Socket)?;
    Ok(socket)
}

/// The socket everything is sent from, on an ephemeral port, with multicast
/// confined to the link (TTL / hop limit 1) and looped back, so that two
/// git-pair processes on one host hear each other.
fn sending(domain: Domain) -> Result<Socket, TransportError> {
    let socket = udp(domain)?;
    socket
        .bind(&unspecified(domain, 0).into())
        .map_err(|source| TransportError::Bind { port: 0, source })?;
    let link_only = if domain == Domain::IPV4 {
        socket
            .set_multicast_ttl_v4(1)
            .and_then(|()| socket.set_multicast_loop_v4(true))
    } else {
        socket
            .set_multicast_hops_v6(1)
            .and_then(|()| socket.set_multicast_loop_v6(true))
    };
    link_only.map_err(TransportError::Socket)?;
    Ok(socket)
}

/// The warning for a host whose IPv6 sockets cannot be opened: it still pairs over IPv4. The
/// whole chain of causes is named, since the outermost error alone ("cannot open a socket")
/// does not say why.
fn ipv6_unavailable(e: &TransportError) -> String {
    let why: Vec<String> = std::iter::successors(Some(e as &dyn std::error::Error), |e| e.source())
        .map(ToString::to_string)
        .collect();
    format!(
        "IPv6 is not available ({}); using IPv4 only",
        why.join(": ")
    )
}

/// The error for chosen interfaces on which no multicast can be sent or received; `errors` are
/// the failed joins, if any were tried.
fn no_multicast(interfaces: &[Interface], errors: &[String]) -> TransportError {
    TransportError::NoMulticast {
        interfaces: interfaces
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        detail: if errors.is_empty() {
            "they have no IPv4 or IPv6 address".into()
        } else {
            errors.join("; ")
        },
    }
}

impl Sockets {
    /// Opens the sockets and joins the groups on `interfaces`.
    pub fn open(
        interfaces: Vec<Interface>,
        port: u16,
        peers: Vec<IpAddr>,
    ) -> Result<Sockets, TransportError> {
        let mut warnings = Vec::new();
        let mut multicast_v4 = Vec::new();
        let mut multicast_v6 = Vec::new();
        let mut errors = Vec::new();

        let v4 = if interfaces.iter().any(|i| !i.v4.is_empty()) {
            let listen = listening(Domain::IPV4, port)?;
            for i in interfaces.iter().filter(|i| !i.v4.is_empty()) {
                match listen
                    .join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(i.index))
                {
                    Ok(()) => multicast_v4.push((i.v4[0].addr, i.name.clone())),
                    Err(e) => errors.push(format!("{} (IPv4): {e}", i.name)),
                }
            }
            let unicast = sending(Domain::IPV4)?;
            Some(Family {
                listen: Some(listen.into()),
                unicast: unicast.into(),
            })
        } else {
            None
        };

        let v6 = if interfaces.iter().any(|i| !i.v6.is_empty()) {
            match Self::open_v6(&interfaces, port, &mut multicast_v6, &mut errors) {
                Ok(family) => Some(family),
                // A host with IPv6 disabled still pairs over IPv4.
                Err(e) if v4.is_some() => {
                    warnings.push(ipv6_unavailable(&e));
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };

        if multicast_v4.is_empty() && multicast_v6.is_empty() {
            return Err(no_multicast(&interfaces, &errors));
        }
        warnings.extend(
            errors
                .into_iter()
                .map(|e| format!("cannot join the multicast group on {e}")),
        );
        for family in v4.iter().chain(v6.iter()) {
            for s in family.sockets() {
                s.set_nonblocking(true).map_err(TransportError::Socket)?;
            }
        }
        Ok(Sockets {
            interfaces,
            port,
            v4,
            v6,
            multicast_v4,
            multicast_v6,
            peers,
            warnings,
            mirror: Some(Mirror::default()),
            kernel: None,
        })
    }

    fn open_v6(
        interfaces: &[Interface],
        port: u16,
        joined: &mut Vec<(u32, String)>,
        errors: &mut Vec<String>,
    ) -> Result<Family, TransportError> {
        let listen = listening(Domain::IPV6, port)?;
        // Linux routes no IPv6 multicast over loopback; lo pairs over IPv4.
        for i in interfaces
            .iter()
            .filter(|i| !i.v6.is_empty() && !i.loopback)
        {
            match listen.join_multicast_v6(&GROUP_V6, i.index) {
                Ok(()) => joined.push((i.index, i.name.clone())),
                Err(e) => errors.push(format!("{} (IPv6): {e}", i.name)),
            }
        }
        let unicast = sending(Domain::IPV6)?;
        Ok(Family {
            listen: Some(listen.into()),
            unicast: unicast.into(),
        })
    }

    /// Sockets that only send (and receive the answers to what they sent, on their ephemeral
    /// ports): nothing is bound to `port`, so that this process never receives datagrams meant
    /// for another one on this host that listens there. Multicast goes out on every chosen
    /// interface with an address of the family (no group is joined: sending needs none).
    pub fn open_sender(
        interfaces: Vec<Interface>,
        port: u16,
        peers: Vec<IpAddr>,
    ) -> Result<Sockets, TransportError> {
        let mut warnings = Vec::new();
        let with_v4: Vec<(Ipv4Addr, String)> = interfaces
            .iter()
            .filter_map(|i| i.v4.first().map(|n| (n.addr, i.name.clone())))
            .collect();
        // Linux routes no IPv6 multicast over loopback, as in `open`.
        let with_v6: Vec<(u32, String)> = interfaces
            .iter()
            .filter(|i| !i.v6.is_empty() && !i.loopback)
            .map(|i| (i.index, i.name.clone()))
            .collect();
        let v4 = if with_v4.is_empty() {
            None
        } else {
            Some(Family {
                listen: None,
                unicast: sending(Domain::IPV4)?.into(),
            })
        };
        let v6 = if interfaces.iter().any(|i| !i.v6.is_empty()) {
            match sending(Domain::IPV6) {
                Ok(socket) => Some(Family {
                    listen: None,
                    unicast: socket.into(),
                }),
                Err(e) if v4.is_some() => {
                    warnings.push(ipv6_unavailable(&e));
                    None
                }
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        if v4.is_none() && v6.is_none() {
            return Err(no_multicast(&interfaces, &[]));
        }
        for family in v4.iter().chain(v6.iter()) {
            family
                .unicast
                .set_nonblocking(true)
                .map_err(TransportError::Socket)?;
        }
        let multicast_v6 = if v6.is_some() { with_v6 } else { Vec::new() };
        Ok(Sockets {
            interfaces,
            port,
            v4,
            v6,
            multicast_v4: with_v4,
            multicast_v6,
            peers,
            warnings,
            mirror: None,
            kernel: None,
        })
    }

    /// Answers `to` from the socket on the well-known port when there is one (so that the
    /// answer comes from the port the question went to, as stateful firewalls expect), else
    /// from the ephemeral one. Failures are not fatal, as for [`Sockets::send`].
    pub fn reply(&self, to: SocketAddr, datagram: &[u8]) {
        let family = if to.is_ipv4() { &self.v4 } else { &self.v6 };
        if let Some(f) = family {
            let socket = f.listen.as_ref().unwrap_or(&f.unicast);
            let _ = socket.send_to(datagram, to);
        }
    }

    /// The interfaces these sockets were opened on.
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Problems worth telling the user once (e.g. no IPv6 multicast on lo).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Sends one datagram. Failures on one interface or to one address are
    /// not fatal: a scan reaches many hosts that do not exist, and one
    /// interface may lack a route for multicast. A unicast datagram to a neighbour that the
    /// kernel has not resolved is also copied to the group (see [`neighbour`]), now or at
    /// [`Sockets::next_due`].
    pub fn send(&mut self, t: &Transmit) {
        match t.destination {
            Destination::Multicast => self.send_multicast(&t.datagram),
            Destination::Unicast(to) => {
                let family = if to.is_ipv4() { &self.v4 } else { &self.v6 };
                if let Some(f) = family {
                    let _ = f.unicast.send_to(&t.datagram, to);
                    self.mirror_sent(to, &t.datagram);
                }
            }
        }
    }

    /// The interface by which a copy of a datagram to `to` would go, by its index: the one
    /// whose link `to` is on ([`link_of`]), if this run sends multicast of that family there.
    /// `None` where no copy is due: the address is not on a chosen interface's link (a `--peer`
    /// host behind a router), is this machine's own (no neighbour to resolve), or is on
    /// loopback.
    fn mirror_interface(&self, to: SocketAddr) -> Option<u32> {
        let ip = to.ip();
        let own = self.interfaces.iter().any(|i| match ip {
            IpAddr::V4(a) => i.v4.iter().any(|n| n.addr == a),
            IpAddr::V6(a) => i.v6.iter().any(|n| n.addr == a),
        });
        if own {
            return None;
        }
        let i = link_of(&self.interfaces, to)?;
        if i.loopback {
            return None;
        }
        let sends = match ip {
            IpAddr::V4(_) => self.multicast_v4.iter().any(|(_, name)| *name == i.name),
            IpAddr::V6(_) => self.multicast_v6.iter().any(|(index, _)| *index == i.index),
        };
        sends.then_some(i.index)
    }

    /// Asks the kernel whether it sends to `ip` on interface `index` at once; `None` if it
    /// cannot be asked.
    fn resolved(kernel: &mut Option<Kernel>, ip: IpAddr, index: u32) -> Option<bool> {
        if kernel.is_none() {
            *kernel = Kernel::open().ok();
        }
        kernel.as_mut()?.resolved(ip, index).ok()
    }

    /// After a unicast datagram to `to`: its copy by multicast, if one is due now.
    fn mirror_sent(&mut self, to: SocketAddr, datagram: &[u8]) {
        if self.mirror.is_none() {
            return;
        }
        let Some(index) = self.mirror_interface(to) else {
            return;
        };
        let kernel = &mut self.kernel;
        let copy = self.mirror.as_mut().is_some_and(|m| {
            m.sent(Instant::now(), to, datagram, |to| {
                Self::resolved(kernel, to.ip(), index)
            })
        });
        if copy {
            self.send_copy(to, index, datagram);
        }
    }

    /// When a copy by multicast waits to be sent (see [`Sockets::send_due`]).
    pub fn next_due(&self) -> Option<Instant> {
        self.mirror.as_ref()?.next_due()
    }

    /// Sends the copies by multicast that are due at `now`, for addresses still unresolved.
    pub fn send_due(&mut self, now: Instant) {
        let Some(mirror) = self.mirror.as_mut() else {
            return;
        };
        if mirror.next_due().is_none_or(|at| at > now) {
            return;
        }
        let (interfaces, kernel) = (&self.interfaces, &mut self.kernel);
        // Only addresses with a link get a waiting copy (`mirror_interface`).
        let copies = mirror.due(now, |to| match link_of(interfaces, to) {
            Some(i) => Self::resolved(kernel, to.ip(), i.index),
            None => Some(true),
        });
        for (to, datagram) in copies {
            if let Some(index) = self.mirror_interface(to) {
                self.send_copy(to, index, &datagram);
            }
        }
    }

    /// Sends `datagram`, meant for `to`, to the group of `to`'s family on interface `index`,
    /// from the socket that sent it by unicast.
    fn send_copy(&self, to: SocketAddr, index: u32, datagram: &[u8]) {
        let port = self.port;
        match to {
            SocketAddr::V4(_) => {
                let Some(f) = &self.v4 else { return };
                let Some(i) = self.interfaces.iter().find(|i| i.index == index) else {
                    return;
                };
                let Some(&(addr, _)) = self.multicast_v4.iter().find(|(_, n)| *n == i.name) else {
                    return;
                };
                let _ = SockRef::from(&f.unicast)
                    .set_multicast_if_v4(&addr)
                    .and_then(|()| {
                        f.unicast
                            .send_to(datagram, SocketAddrV4::new(GROUP_V4, port))
                    });
            }
            SocketAddr::V6(_) => {
                let Some(f) = &self.v6 else { return };
                let _ = SockRef::from(&f.unicast)
                    .set_multicast_if_v6(index)
                    .and_then(|()| {
                        f.unicast
                            .send_to(datagram, SocketAddrV6::new(GROUP_V6, port, 0, index))
                    });
            }
        }
    }

    /// [`Sockets::send`], returning how many datagrams it tried to put on the wire: one per
    /// interface and family for multicast, one for unicast.
    pub fn send_counted(&mut self, t: &Transmit) -> usize {
        let n = match t.destination {
            Destination::Multicast => {
                self.v4.as_ref().map_or(0, |_| self.multicast_v4.len())
                    + self.v6.as_ref().map_or(0, |_| self.multicast_v6.len())
            }
            Destination::Unicast(to) => usize::from(if to.is_ipv4() {
                self.v4.is_some()
            } else {
                self.v6.is_some()
            }),
        };
        self.send(t);
        n
    }

    fn send_multicast(&mut self, datagram: &[u8]) {
        let port = self.port;
        if let Some(f) = &self.v4 {
            let sock = SockRef::from(&f.unicast);
            let mut failed = Vec::new();
            for (addr, name) in &self.multicast_v4 {
                let sent = sock.set_multicast_if_v4(addr).and_then(|()| {
                    f.unicast
                        .send_to(datagram, SocketAddrV4::new(GROUP_V4, port))
                });
                if let Err(e) = sent {
                    if !transient(&e) {
                        failed.push((name.clone(), e));
                    }
                }
            }
            for (name, e) in failed {
                self.warnings.push(format!(
                    "IPv4 multicast on {name} does not work ({e}); not using it"
                ));
                self.multicast_v4.retain(|(_, n)| *n != name);
            }
        }
        if let Some(f) = &self.v6 {
            let sock = SockRef::from(&f.unicast);
            let mut failed = Vec::new();
            for (index, name) in &self.multicast_v6 {
                let sent = sock.set_multicast_if_v6(*index).and_then(|()| {
                    f.unicast
                        .send_to(datagram, SocketAddrV6::new(GROUP_V6, port, 0, *index))
                });
                if let Err(e) = sent {
                    if !transient(&e) {
                        failed.push((name.clone(), e));
                    }
                }
            }
            for (name, e) in failed {
                self.warnings.push(format!(
                    "IPv6 multicast on {name} does not work ({e}); not using it"
                ));
                self.multicast_v6.retain(|(_, n)| *n != name);
            }
        }
    }

    /// Reads every waiting datagram, passing on those from a chosen
    /// interface's subnet or a `--peer` host.
    pub fn recv_all(&mut self, mut deliver: impl FnMut(SocketAddr, &[u8])) {
        // One byte more than the limit, so that an oversized datagram is
        // seen as such instead of silently truncated.
        let mut buf = [0u8; MAX_DATAGRAM + 1];
        // Who spoke may get copies of what goes back to it (see `neighbour`).
        let mut mirror = self.mirror.take();
        for family in self.v4.iter().chain(self.v6.iter()) {
            for socket in family.sockets() {
                // Bounded, so that a flood cannot starve the timers.
                for _ in 0..256 {
                    match socket.recv_from(&mut buf) {
                        Ok((len, from)) => {
                            if self.accepts(&from) {
                                if let Some(m) = &mut mirror {
                                    m.heard(from.ip());
                                }
                                deliver(from, &buf[..len]);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        // ICMP errors from earlier sends surface here: skip.
                        Err(_) => break,
                    }
                }
            }
        }
        self.mirror = mirror;
    }

    fn accepts(&self, from: &SocketAddr) -> bool {
        let ip = from.ip();
        if self.peers.contains(&ip) {
            return true;
        }
        match from {
            SocketAddr::V6(v6) if v6.scope_id() != 0 => {
                self.interfaces.iter().any(|i| i.index == v6.scope_id())
            }
            _ => self.interfaces.iter().any(|i| i.on_link(ip)),
        }
    }

    /// The file descriptors to wait on.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.v4
            .iter()
            .chain(self.v6.iter())
            .flat_map(|f| f.sockets().map(|s| s.as_fd()))
            .collect()
    }
}

impl Family {
    fn sockets(&self) -> impl Iterator<Item = &UdpSocket> {
        self.listen.iter().chain([&self.unicast])
    }
}

/// The chosen interface whose link `to` is on: the scope of a link-local IPv6 address, else the
/// one with a subnet that holds it.
fn link_of(interfaces: &[Interface], to: SocketAddr) -> Option<&Interface> {
    match to {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            interfaces.iter().find(|i| i.index == v6.scope_id())
        }
        _ => interfaces.iter().find(|i| i.on_link(to.ip())),
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    ) || e.raw_os_error() == Some(nix::libc::ENOBUFS)
}
