//! Test fixtures shared by the pairing modules' unit tests.

use crate::protocol::payload::{Payload, PeerInfo};
use crate::transport::iface::{Interface, V4Net};

pub(crate) fn info(addresses: &[&str]) -> PeerInfo {
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOvz9/dlwEDfuqj1WBVMQbjFs+6w+Vvr8nI1VbWq+uGP";
    let p = Payload {
        user: "bob".into(),
        host: "laptop".into(),
        path: "/home/bob/r".into(),
        user_key: key.into(),
        host_keys: vec![key.into()],
        ssh_port: 2222,
        addresses: addresses.iter().map(|s| s.to_string()).collect(),
        annex_uuid: None,
        annex_shell: false,
    };
    PeerInfo::parse(&p.to_bytes()).unwrap()
}

pub(crate) fn eth0() -> Interface {
    Interface {
        name: "eth0".into(),
        index: 2,
        up: true,
        multicast: true,
        loopback: false,
        v4: vec![V4Net {
            addr: "10.0.0.1".parse().unwrap(),
            prefix: 24,
        }],
        v6: vec![],
    }
}
