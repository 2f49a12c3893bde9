//! The network of a test: two network namespaces joined by one veth pair (or each by its own veth
//! to a bridge in a third namespace), their addresses, and
//! the nftables rules that drop multicast on the LAN.
//!
//! Nothing here sends a packet from the root namespace: `ip`/`sysctl`/`nft` only configure, and
//! everything that talks runs inside a namespace.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

use super::process::Cmd;

/// nftables table loaded into each namespace of the multicast-dropped network.
pub const NFT_TABLE: &str = "gpe2e";

/// Runs `program` as root inside namespace `ns` (no user switch, no UTS change).
pub fn in_netns(ns: &str, program: &str) -> Cmd {
    Cmd::with_prefix(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "env",
            "-i",
            &format!("PATH={}", super::process::PATH),
        ]
        .map(Into::into)
        .to_vec(),
        program,
        format!("{ns} root"),
    )
}

pub fn add_netns(name: &str) {
    Cmd::root("ip").args(["netns", "add", name]).run_ok();
}

/// Deletes a namespace; returns the error text instead of panicking (used during cleanup).
pub fn del_netns(name: &str) -> Result<(), String> {
    let out = Cmd::root("ip").args(["netns", "del", name]).run();
    if out.success() {
        Ok(())
    } else {
        Err(out.to_string())
    }
}

pub fn list_netns() -> Vec<String> {
    let out = Cmd::root("ip").args(["netns", "list"]).run();
    out.stdout_str()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// Pids of the processes living in namespace `ns`.
pub fn netns_pids(ns: &str) -> Vec<i32> {
    let out = Cmd::root("ip").args(["netns", "pids", ns]).run();
    out.stdout_str()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Creates the veth pair directly inside the two namespaces (never in the root namespace, so
/// the fixed names `va`/`vb` cannot collide between parallel tests).
pub fn add_veth(ns_a: &str, if_a: &str, ns_b: &str, if_b: &str) {
    Cmd::root("ip")
        .args([
            "-n", ns_a, "link", "add", if_a, "type", "veth", "peer", "name", if_b,
        ])
        .args(["netns", ns_b])
        .run_ok();
}

/// A bridge in `ns`, up. Multicast snooping is off: with no querier on the test LAN, snooping
/// would make the bridge's forwarding of the pairing groups depend on timing.
pub fn add_bridge(ns: &str, bridge: &str) {
    Cmd::root("ip")
        .args([
            "-n",
            ns,
            "link",
            "add",
            bridge,
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])
        .run_ok();
    Cmd::root("ip")
        .args(["-n", ns, "link", "set", bridge, "up"])
        .run_ok();
}

/// Makes `port` in `ns` a port of `bridge`, up.
pub fn attach(ns: &str, port: &str, bridge: &str) {
    Cmd::root("ip")
        .args(["-n", ns, "link", "set", port, "master", bridge, "up"])
        .run_ok();
}

/// Brings up `lo` and `iface` in `ns` with the given addresses. DAD is off and the kernel's own
/// link-local address is not generated, so `ipv6_ll` is the one link-local address and is usable
/// at once.
pub fn configure(ns: &str, iface: &str, ipv4: Option<(Ipv4Addr, u8)>, ipv6_ll: Ipv6Addr) {
    Cmd::root("ip")
        .args(["-n", ns, "link", "set", "lo", "up"])
        .run_ok();
    in_netns(ns, "sysctl")
        .arg("-qw")
        .arg(format!("net.ipv6.conf.{iface}.accept_dad=0"))
        .arg(format!("net.ipv6.conf.{iface}.addr_gen_mode=1"))
        .run_ok();
    if let Some((addr, len)) = ipv4 {
        Cmd::root("ip")
            .args([
                "-n",
                ns,
                "addr",
                "add",
                &format!("{addr}/{len}"),
                "dev",
                iface,
            ])
            .run_ok();
    }
    Cmd::root("ip")
        .args([
            "-n",
            ns,
            "addr",
            "add",
            &format!("{ipv6_ll}/64"),
            "dev",
            iface,
            "nodad",
        ])
        .run_ok();
    Cmd::root("ip")
        .args(["-n", ns, "link", "set", iface, "up"])
        .run_ok();
}

/// IPv4 addresses (CIDR) on `iface` in `ns`.
pub fn ipv4_addrs(ns: &str, iface: &str) -> Vec<String> {
    let out = Cmd::root("ip")
        .args(["-n", ns, "-o", "-4", "addr", "show", "dev", iface])
        .run_ok();
    out.stdout_str()
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next().map(str::to_owned)
        })
        .collect()
}

/// The ruleset that makes the LAN drop multicast: at the ingress hook of `iface` (a drop at
/// output would give the sender EPERM, which no real LAN does). Neighbour discovery and MLD are
/// ICMPv6 and ARP is not IP, so they pass; every rule counts what it drops.
pub fn multicast_drop_ruleset(iface: &str) -> String {
    format!(
        r#"table netdev {NFT_TABLE} {{
    chain ingress {{
        type filter hook ingress device "{iface}" priority 0; policy accept;
        ip daddr 224.0.0.0/4 counter drop comment "mcast4"
        meta protocol ip meta pkttype broadcast counter drop comment "bcast4"
        ip6 daddr ff00::/8 meta l4proto udp counter drop comment "mcast6"
    }}
}}
"#
    )
}

pub fn load_multicast_drop(ns: &str, iface: &str) {
    in_netns(ns, "nft")
        .args(["-f", "-"])
        .stdin(multicast_drop_ruleset(iface))
        .run_ok();
}

/// Packets dropped by the multicast-drop rules of one or more namespaces.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DropCounters {
    pub multicast_v4: u64,
    pub broadcast_v4: u64,
    pub multicast_v6: u64,
}

impl DropCounters {
    pub fn multicast(&self) -> u64 {
        self.multicast_v4 + self.multicast_v6
    }

    pub fn add(self, other: DropCounters) -> DropCounters {
        DropCounters {
            multicast_v4: self.multicast_v4 + other.multicast_v4,
            broadcast_v4: self.broadcast_v4 + other.broadcast_v4,
            multicast_v6: self.multicast_v6 + other.multicast_v6,
        }
    }
}

/// Reads the drop counters of `ns` from `nft -j list table`.
pub fn drop_counters(ns: &str) -> DropCounters {
    let out = in_netns(ns, "nft")
        .args(["-j", "list", "table", "netdev", NFT_TABLE])
        .run_ok();
    parse_drop_counters(&out.stdout_str())
        .unwrap_or_else(|e| panic!("cannot read the nft counters of {ns}: {e}\n{out}"))
}

fn parse_drop_counters(json: &str) -> Result<DropCounters, String> {
    let v: Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let items = v["nftables"].as_array().ok_or("no \"nftables\" array")?;
    let mut counters = DropCounters::default();
    let mut seen = 0;
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let packets = rule["expr"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|e| e["counter"]["packets"].as_u64())
            .ok_or("a rule without counter")?;
        let slot = match rule["comment"].as_str() {
            Some("mcast4") => &mut counters.multicast_v4,
            Some("bcast4") => &mut counters.broadcast_v4,
            Some("mcast6") => &mut counters.multicast_v6,
            _ => continue,
        };
        *slot += packets;
        seen += 1;
    }
    if seen == 3 {
        Ok(counters)
    } else {
        Err(format!("expected 3 counted rules, found {seen}"))
    }
}
