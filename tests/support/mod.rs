//! Harness of the end-to-end tests: two hosts in network namespaces, each with its own unix
//! user, HOME, repository and real sshd, paired by the real git-pair binary.
//!
//! - [`process`]: commands, deadlines, spawned processes read line by line.
//! - [`net`]: namespaces, the veth "LAN", addresses, the nftables multicast drop.
//! - [`host`]: one host: its user, files, repository, sshd, and commands run as its user.
//! - [`lab`]: two hosts and the cleanup of everything (also after a panic, also of killed runs).
//! - [`gitpair`]: running git-pair on both sides and reading its JSON events and remotes.
//! - [`mcast`]: a multicast probe that needs no git-pair.
//! - [`forge`]: an attacker without the code that forges datagrams on the LAN.
//! - [`locate`]: a stolen query, an impostor and a flood, in the locate protocol.
//!
//! [`preflight`] says why a test cannot run here (not root, a tool missing, no namespaces):
//! such a test is reported as ignored with that reason, never as passed.

pub mod forge;
pub mod gitpair;
pub mod host;
pub mod lab;
pub mod locate;
pub mod mcast;
pub mod net;
pub mod process;

use std::path::Path;
use std::sync::OnceLock;

use process::Cmd;

/// What a test needs beyond the base (root, namespaces, users, sshd, git).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Base,
    /// nftables with netdev ingress hooks (the multicast-dropped variant).
    Nft,
    /// git-annex and git-annex-shell (the git-annex pairing).
    Annex,
    /// strace (the crash and concurrency tests kill or slow git-pair at chosen system calls).
    Strace,
}

const BASE_TOOLS: &[&str] = &[
    "ip",
    "sshd",
    "ssh",
    "ssh-keygen",
    "ssh-keyscan",
    "git",
    "useradd",
    "userdel",
    "setpriv",
    "unshare",
    "hostname",
    "sysctl",
    "cp",
    "chown",
    "env",
    "sh",
];

/// `None` when a test with these needs can run here, else why not.
pub fn preflight(needs: Needs) -> Option<String> {
    static BASE: OnceLock<Option<String>> = OnceLock::new();
    static NFT: OnceLock<Option<String>> = OnceLock::new();
    let base = BASE.get_or_init(check_base).clone();
    match needs {
        _ if base.is_some() => base,
        Needs::Base => None,
        Needs::Nft => NFT.get_or_init(check_nft).clone(),
        Needs::Annex => missing(&["git-annex", "git-annex-shell"])
            .map(|m| format!("{m} (apt-get install git-annex)")),
        Needs::Strace => missing(&["strace"]).map(|m| format!("{m} (apt-get install strace)")),
    }
}

fn find_tool(tool: &str) -> bool {
    process::PATH
        .split(':')
        .any(|dir| Path::new(dir).join(tool).is_file())
}

fn missing(tools: &[&str]) -> Option<String> {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !find_tool(t)).collect();
    (!missing.is_empty()).then(|| format!("missing tools: {}", missing.join(", ")))
}

fn check_base() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("needs root (network namespaces, useradd, sshd)".to_owned());
    }
    if let Some(m) = missing(BASE_TOOLS) {
        return Some(m);
    }
    if !Path::new("/usr/sbin/sshd").is_file() {
        return Some("sshd is not at /usr/sbin/sshd (apt-get install openssh-server)".to_owned());
    }
    with_probe_netns('a', |ns| {
        let uts = net::in_netns(ns, "unshare")
            .args(["--uts", "sh", "-c", "hostname gp-probe && hostname"])
            .run();
        (uts.stdout_str().trim() != "gp-probe")
            .then(|| format!("cannot set a host name in a UTS namespace\n{uts}"))
    })
}

fn check_nft() -> Option<String> {
    if let Some(m) = missing(&["nft"]) {
        return Some(format!("{m} (apt-get install nftables)"));
    }
    with_probe_netns('b', |ns| {
        let link = Cmd::root("ip")
            .args([
                "-n", ns, "link", "add", "gpp0", "type", "veth", "peer", "name", "gpp1",
            ])
            .run();
        if !link.success() {
            return Some(format!("cannot add a veth pair for the nft probe\n{link}"));
        }
        let load = net::in_netns(ns, "nft")
            .args(["-f", "-"])
            .stdin(net::multicast_drop_ruleset("gpp0"))
            .run();
        (!load.success()).then(|| format!("nftables netdev ingress rules do not load\n{load}"))
    })
}

/// Runs `probe` in a throwaway namespace `gp<pid>-0<side>`; an error creating it is the reason.
fn with_probe_netns(side: char, probe: impl FnOnce(&str) -> Option<String>) -> Option<String> {
    let ns = format!("gp{}-0{side}", std::process::id());
    let add = Cmd::root("ip").args(["netns", "add", &ns]).run();
    if !add.success() {
        return Some(format!("cannot create network namespaces\n{add}"));
    }
    let reason = probe(&ns);
    if let Err(e) = net::del_netns(&ns) {
        eprintln!("e2e: cannot delete probe namespace {ns}: {e}");
    }
    reason
}
