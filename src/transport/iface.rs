//! Network interfaces: which ones exist, which ones pairing uses, and the
//! addresses on them.
//!
//! [`list`] reads the kernel's view once (getifaddrs, from nix, because
//! if-addrs skips IPv6 link-local addresses, the only ones an IPv6-only LAN
//! may have); [`select`] is the pure policy on top.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nix::ifaddrs::getifaddrs;
use nix::net::if_::{if_nametoindex, InterfaceFlags};

/// An IPv4 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V4Net {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// An IPv6 address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V6Net {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

impl V6Net {
    pub fn is_link_local(&self) -> bool {
        self.addr.segments()[0] & 0xffc0 == 0xfe80
    }
}

/// One network interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub up: bool,
    pub multicast: bool,
    pub loopback: bool,
    pub v4: Vec<V4Net>,
    pub v6: Vec<V6Net>,
}

impl Interface {
    /// Whether `ip` is on one of this interface's subnets.
    pub fn on_link(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(ip) => self
                .v4
                .iter()
                .any(|n| same_prefix(&n.addr.octets(), &ip.octets(), n.prefix)),
            IpAddr::V6(ip) => self
                .v6
                .iter()
                .any(|n| same_prefix(&n.addr.octets(), &ip.octets(), n.prefix)),
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (x, y) in a.iter().zip(b) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask = !0u8 << (8 - take);
        if x & mask != y & mask {
            return false;
        }
        bits -= take;
    }
    true
}

/// Why interfaces could not be chosen.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterfaceError {
    #[error("cannot list network interfaces")]
    List(#[source] nix::Error),
    #[error("there is no network interface named {name:?}; `ip link` lists them (available: {available})")]
    Unknown { name: String, available: String },
    #[error("interface {0} is down: bring it up (`ip link set {0} up`) or choose another with --interface")]
    Down(String),
    #[error("no network interface is up and multicast-capable (loopback is used only when named): connect to a network, or name one with --interface")]
    NoneUsable,
}

/// Every interface, with its addresses.
pub fn list() -> Result<Vec<Interface>, InterfaceError> {
    let mut by_name: BTreeMap<String, Interface> = BTreeMap::new();
    for ifa in getifaddrs().map_err(InterfaceError::List)? {
        let entry = by_name
            .entry(ifa.interface_name.clone())
            .or_insert_with(|| Interface {
                index: if_nametoindex(ifa.interface_name.as_str()).unwrap_or(0),
                name: ifa.interface_name.clone(),
                up: ifa.flags.contains(InterfaceFlags::IFF_UP),
                multicast: ifa.flags.contains(InterfaceFlags::IFF_MULTICAST),
                loopback: ifa.flags.contains(InterfaceFlags::IFF_LOOPBACK),
                v4: Vec::new(),
                v6: Vec::new(),
            });
        let Some(address) = ifa.address else { continue };
        if let Some(sin) = address.as_sockaddr_in() {
            let prefix = ifa
                .netmask
                .and_then(|m| {
                    m.as_sockaddr_in()
                        .map(|m| u32::from(m.ip()).count_ones() as u8)
                })
                .unwrap_or(32);
            entry.v4.push(V4Net {
                addr: sin.ip(),
                prefix,
            });
        } else if let Some(sin6) = address.as_sockaddr_in6() {
            let prefix = ifa
                .netmask
                .and_then(|m| {
                    m.as_sockaddr_in6()
                        .map(|m| u128::from(m.ip()).count_ones() as u8)
                })
                .unwrap_or(128);
            entry.v6.push(V6Net {
                addr: sin6.ip(),
                prefix,
            });
        }
    }
    Ok(by_name.into_values().filter(|i| i.index != 0).collect())
}

/// Chooses the interfaces to pair on. Named interfaces are used as given
/// (loopback included) but must exist and be up; with no names, every
/// interface that is up, multicast-capable and not loopback.
pub fn select(all: &[Interface], named: &[String]) -> Result<Vec<Interface>, InterfaceError> {
    if named.is_empty() {
        let chosen: Vec<Interface> = all
            .iter()
            .filter(|i| i.up && i.multicast && !i.loopback)
            .cloned()
            .collect();
        if chosen.is_empty() {
            return Err(InterfaceError::NoneUsable);
        }
        return Ok(chosen);
    }
    let mut chosen: Vec<Interface> = Vec::new();
    for name in named {
        let Some(iface) = all.iter().find(|i| &i.name == name) else {
            return Err(InterfaceError::Unknown {
                name: name.clone(),
                available: all
                    .iter()
                    .map(|i| i.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        if !iface.up {
            return Err(InterfaceError::Down(name.clone()));
        }
        if !chosen.iter().any(|c| c.name == iface.name) {
            chosen.push(iface.clone());
        }
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, up: bool, multicast: bool, loopback: bool) -> Interface {
        Interface {
            name: name.into(),
            index: 1,
            up,
            multicast,
            loopback,
            v4: vec![V4Net {
                addr: Ipv4Addr::new(192, 168, 1, 20),
                prefix: 24,
            }],
            v6: vec![V6Net {
                addr: "fe80::1".parse().unwrap(),
                prefix: 64,
            }],
        }
    }

    #[test]
    fn default_selection_skips_loopback_down_and_non_multicast() {
        let all = vec![
            iface("lo", true, false, true),
            iface("eth0", true, true, false),
            iface("wlan0", false, true, false),
            iface("tun0", true, false, false),
        ];
        let names: Vec<String> = select(&all, &[])
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["eth0"]);
    }

    #[test]
    fn named_interfaces_may_be_loopback_but_must_exist_and_be_up() {
        let all = vec![
            iface("lo", true, false, true),
            iface("wlan0", false, true, false),
        ];
        assert_eq!(select(&all, &["lo".into()]).unwrap()[0].name, "lo");
        let err = select(&all, &["eth9".into()]).unwrap_err().to_string();
        assert!(err.contains("eth9") && err.contains("lo, wlan0"), "{err}");
        assert!(matches!(
            select(&all, &["wlan0".into()]),
            Err(InterfaceError::Down(_))
        ));
        assert!(matches!(
            select(&all[..1], &[]),
            Err(InterfaceError::NoneUsable)
        ));
        assert_eq!(select(&all, &["lo".into(), "lo".into()]).unwrap().len(), 1);
    }

    #[test]
    fn on_link_checks_the_prefix() {
        let i = iface("eth0", true, true, false);
        assert!(i.on_link("192.168.1.200".parse().unwrap()));
        assert!(!i.on_link("192.168.2.1".parse().unwrap()));
        assert!(i.on_link("fe80::abcd".parse().unwrap()));
        assert!(!i.on_link("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn listing_finds_loopback() {
        let all = list().unwrap();
        let lo = all
            .iter()
            .find(|i| i.loopback)
            .expect("a loopback interface");
        assert!(lo
            .v4
            .iter()
            .any(|n| n.addr == Ipv4Addr::LOCALHOST && n.prefix == 8));
    }
}
