//! The unicast subnet probe, planned: which addresses to greet when
//! multicast seems not to get through (Wi-Fi client isolation, switches that
//! filter multicast). Pure; the state machine paces the probes.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::iface::Interface;

/// The largest subnet probed per interface.
pub const MAX_PREFIX_SCANNED: u8 = 24;

/// Every other host address in each interface's IPv4 subnet, at most a /24
/// per interface (the /24 around our address when the subnet is larger).
/// IPv6 subnets are far too large to probe; IPv6 relies on multicast.
pub fn targets(interfaces: &[Interface], port: u16) -> Vec<SocketAddr> {
    let own_addrs: Vec<Ipv4Addr> = interfaces
        .iter()
        .flat_map(|i| &i.v4)
        .map(|n| n.addr)
        .collect();
    let mut out: Vec<SocketAddr> = Vec::new();
    for net in interfaces.iter().flat_map(|i| &i.v4) {
        let own = u32::from(net.addr);
        let prefix = net.prefix.max(MAX_PREFIX_SCANNED);
        let host_bits = 32 - u32::from(prefix);
        let mask = if host_bits == 32 {
            0
        } else {
            !0u32 << host_bits
        };
        let network = own & mask;
        let size = 1u64 << host_bits;
        for offset in 0..size {
            let ip = network.wrapping_add(offset as u32);
            // Network and broadcast addresses exist only on subnets with
            // room for them (not on /31 and /32).
            let edge = size > 2 && (offset == 0 || offset == size - 1);
            if own_addrs.contains(&Ipv4Addr::from(ip)) || edge {
                continue;
            }
            let target = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port));
            if !out.contains(&target) {
                out.push(target);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::iface::V4Net;

    fn with(addrs: &[(Ipv4Addr, u8)]) -> Vec<Interface> {
        vec![Interface {
            name: "eth0".into(),
            index: 2,
            up: true,
            multicast: true,
            loopback: false,
            v4: addrs
                .iter()
                .map(|&(addr, prefix)| V4Net { addr, prefix })
                .collect(),
            v6: vec![],
        }]
    }

    #[test]
    fn a_24_is_probed_whole_except_ourselves_and_the_edges() {
        let t = targets(&with(&[(Ipv4Addr::new(192, 168, 1, 20), 24)]), 9);
        assert_eq!(t.len(), 253);
        assert!(!t.contains(&"192.168.1.20:9".parse().unwrap()));
        assert!(!t.contains(&"192.168.1.0:9".parse().unwrap()));
        assert!(!t.contains(&"192.168.1.255:9".parse().unwrap()));
        assert!(t.contains(&"192.168.1.1:9".parse().unwrap()));
    }

    #[test]
    fn larger_subnets_are_capped_at_the_24_around_us() {
        let t = targets(&with(&[(Ipv4Addr::new(10, 1, 2, 3), 8)]), 9);
        assert_eq!(t.len(), 253);
        assert!(t.iter().all(|a| a.ip().to_string().starts_with("10.1.2.")));
    }

    #[test]
    fn small_subnets_are_probed_exactly() {
        let t = targets(&with(&[(Ipv4Addr::new(10, 0, 0, 1), 30)]), 9);
        assert_eq!(t, vec!["10.0.0.2:9".parse().unwrap()]);
        let t = targets(&with(&[(Ipv4Addr::new(10, 0, 0, 0), 31)]), 9);
        assert_eq!(t, vec!["10.0.0.1:9".parse().unwrap()]);
        assert!(targets(&with(&[(Ipv4Addr::new(10, 0, 0, 1), 32)]), 9).is_empty());
    }

    #[test]
    fn overlapping_addresses_are_probed_once_and_never_ourselves() {
        let t = targets(
            &with(&[
                (Ipv4Addr::new(10, 0, 0, 1), 24),
                (Ipv4Addr::new(10, 0, 0, 2), 24),
            ]),
            9,
        );
        assert_eq!(t.len(), 252);
    }
}
