//! A test's world: two hosts (`alpha` in namespace `gp<pid>-<n>a`, `beta` in `...b`) on one veth
//! "LAN", their users, repositories sharing one history, and sshds, all under one per-test
//! directory; and the cleanup that removes every piece of it, in reverse order, even when the
//! test panics halfway through building it.
//!
//! Names are `gp<pid>-<n>` + `a`/`b` (namespace and user alike) and `<base>/gp<pid>-<n>` (the
//! directory), so parallel tests never collide, and leftovers of a killed run can be recognised
//! by their dead pid and swept ([`sweep_stale`]).

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::host::{self, lock_slot, Host};
use super::net::{self, DropCounters};
use super::process::Cmd;

/// Lab counter of this process (0 is the preflight's probe namespace).
static NEXT_LAB: AtomicU32 = AtomicU32::new(1);

/// The bridge in the switch namespace of [`Network::Bridged`].
const BRIDGE: &str = "br0";

/// The network variants the tests need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// IPv4 /24 and IPv6 link-local on the veth pair; multicast flows.
    DualStack,
    /// IPv6 link-local addresses only: no IPv4 address on the veths at all.
    Ipv6LinkLocalOnly,
    /// Dual stack, but each side's ingress drops IPv4 multicast and broadcast and IPv6 UDP
    /// multicast (nftables, netdev ingress, with counters).
    MulticastDropped,
    /// Dual stack, each host on its own veth to one Linux bridge in a third namespace (a
    /// switch), as on a LAN with more than two machines.
    Bridged,
}

/// How far [`Lab::build`] got; passed to the setup hook after each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Dir,
    Users,
    Namespaces,
    Network,
    Repos,
    Sshd,
}

/// What exists so far during setup, for the setup hook (the cleanup test records it).
#[derive(Debug, Clone, Default)]
pub struct SetupState {
    pub dir: PathBuf,
    pub namespaces: Vec<String>,
    pub users: Vec<String>,
    pub sshd_pids: Vec<u32>,
}

pub struct Lab {
    pub id: String,
    pub dir: PathBuf,
    pub network: Network,
    pub a: Host,
    pub b: Host,
    /// Time spent in [`Lab::build`].
    pub setup_time: Duration,
    // Last field: dropped after the hosts, and it runs the cleanup.
    _cleanup: Cleanup,
}

impl Lab {
    pub fn new(network: Network) -> Lab {
        Lab::build(network, &mut |_, _| {})
    }

    /// Builds the lab, calling `hook` after each stage (a hook that panics exercises the
    /// cleanup of a half-built lab).
    pub fn build(network: Network, hook: &mut dyn FnMut(Stage, &SetupState)) -> Lab {
        let started = Instant::now();
        let pid = std::process::id();
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let id = format!("gp{pid}-{n}");
        let mut cleanup = Cleanup::default();
        let mut state = SetupState::default();

        // Directory: <base>/<id>, 0755, so that the test users can reach their homes and the
        // git-pair binary that sshd runs for them.
        let dir = base_dir().join(&id);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        {
            let dir = dir.clone();
            cleanup.push(format!("remove {}", dir.display()), move || {
                fs::remove_dir_all(&dir).map_err(|e| e.to_string())
            });
        }
        host::set_mode(&dir, 0o755);
        let git_pair = install_binary(&dir);
        state.dir = dir.clone();
        hook(Stage::Dir, &state);

        let mut hosts = Vec::new();
        for (side, hostname, octet) in [("a", "alpha", 1u8), ("b", "beta", 2u8)] {
            let name = format!("{id}{side}");
            let root = dir.join(side);
            let home = root.join("home");
            let sshd_dir = root.join("sshd");
            for d in [&root, &home, &sshd_dir] {
                fs::create_dir(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
                host::set_mode(d, 0o755);
            }
            let (uid, gid) = host::add_user(&name, &home);
            {
                let name = name.clone();
                cleanup.push(format!("userdel {name}"), move || host::del_user(&name));
            }
            state.users.push(name.clone());
            std::os::unix::fs::chown(&home, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {}: {e}", home.display()));
            hosts.push(Host {
                hostname: hostname.to_owned(),
                netns: name.clone(),
                user: name,
                uid,
                gid,
                repo: home.join("project"),
                home,
                iface: format!("v{side}"),
                ipv4: match network {
                    Network::Ipv6LinkLocalOnly => None,
                    _ => Some(lab_subnet(pid, n, octet)),
                },
                ipv6_ll: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(octet)),
                host_key_pub: sshd_dir.join("ssh_host_ed25519_key.pub"),
                sshd_dir,
                git_pair: git_pair.clone(),
                sshd: Arc::new(Mutex::new(None)),
                anchor: Mutex::new(None),
                spawner: Mutex::new(None),
            });
        }
        hook(Stage::Users, &state);

        for h in &hosts {
            net::add_netns(&h.netns);
            let ns = h.netns.clone();
            cleanup.push(format!("delete namespace {ns}"), move || remove_netns(&ns));
            state.namespaces.push(h.netns.clone());
        }
        hook(Stage::Namespaces, &state);

        let (a, b) = (&hosts[0], &hosts[1]);
        if network == Network::Bridged {
            let switch = format!("{id}s");
            net::add_netns(&switch);
            {
                let switch = switch.clone();
                cleanup.push(format!("delete namespace {switch}"), move || {
                    remove_netns(&switch)
                });
            }
            state.namespaces.push(switch.clone());
            net::add_bridge(&switch, BRIDGE);
            for (h, port) in [(a, "pa"), (b, "pb")] {
                net::add_veth(&h.netns, &h.iface, &switch, port);
                net::attach(&switch, port, BRIDGE);
            }
        } else {
            net::add_veth(&a.netns, &a.iface, &b.netns, &b.iface);
        }
        for h in &hosts {
            net::configure(&h.netns, &h.iface, h.ipv4.map(|v4| (v4, 24)), h.ipv6_ll);
            if network == Network::MulticastDropped {
                net::load_multicast_drop(&h.netns, &h.iface);
            }
            if network == Network::Ipv6LinkLocalOnly {
                let v4 = net::ipv4_addrs(&h.netns, &h.iface);
                assert!(v4.is_empty(), "{} has IPv4 addresses {v4:?}", h.netns);
            }
        }
        hook(Stage::Network, &state);

        setup_repos(a, b);
        hook(Stage::Repos, &state);

        for h in &hosts {
            let (slot, ns) = (Arc::clone(&h.sshd), h.netns.clone());
            cleanup.push(format!("stop sshd of {ns}"), move || {
                stop_sshd(&ns, &slot);
                Ok(())
            });
            h.start_sshd();
            state.sshd_pids.extend(h.sshd_pid());
        }
        hook(Stage::Sshd, &state);

        let b = hosts.pop().expect("two hosts");
        let a = hosts.pop().expect("two hosts");
        Lab {
            id,
            dir,
            network,
            a,
            b,
            setup_time: started.elapsed(),
            _cleanup: cleanup,
        }
    }

    /// Drop counters of both sides' multicast-drop rules (only for `MulticastDropped`).
    pub fn drop_counters(&self) -> DropCounters {
        assert_eq!(
            self.network,
            Network::MulticastDropped,
            "no drop rules in {:?}",
            self.network
        );
        net::drop_counters(&self.a.netns).add(net::drop_counters(&self.b.netns))
    }

    /// A third namespace on the bridge of a [`Network::Bridged`] lab (`<id>m`, address `.3`):
    /// a machine with no user or sshd, for a server that both hosts reach (the benchmark's
    /// magic-wormhole mailbox). It is removed with the lab, and whatever runs in it is ended.
    // Only the benchmark (benches/pairing) has a third machine.
    #[allow(dead_code)]
    pub fn add_station(&mut self) -> Station {
        assert_eq!(self.network, Network::Bridged, "a station needs the bridge");
        let (pid, n) = owner_pid_and_n(&self.id).expect("the lab's own id");
        let netns = format!("{}m", self.id);
        net::add_netns(&netns);
        {
            let ns = netns.clone();
            self._cleanup
                .push(format!("delete namespace {ns}"), move || remove_netns(&ns));
        }
        let station = Station {
            netns,
            iface: "vm".to_owned(),
            ipv4: lab_subnet(pid, n, 3),
        };
        let switch = format!("{}s", self.id);
        net::add_veth(&station.netns, &station.iface, &switch, "pm");
        net::attach(&switch, "pm", BRIDGE);
        net::configure(
            &station.netns,
            &station.iface,
            Some((station.ipv4, 24)),
            Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 3),
        );
        station
    }

    /// Both sshd logs, for failure messages.
    pub fn sshd_logs(&self) -> String {
        format!(
            "--- sshd log of {} ---\n{}\n--- sshd log of {} ---\n{}",
            self.a.hostname,
            self.a.sshd_log().trim_end(),
            self.b.hostname,
            self.b.sshd_log().trim_end()
        )
    }
}

/// A bare third machine on a bridged lab's LAN (see [`Lab::add_station`]).
#[allow(dead_code)]
pub struct Station {
    pub netns: String,
    pub iface: String,
    pub ipv4: Ipv4Addr,
}

/// 10.<x>.<y>.<host>: distinct per lab of this process (the namespaces isolate labs anyway).
fn lab_subnet(pid: u32, n: u32, host: u8) -> Ipv4Addr {
    let x = 64 + (pid % 128) as u8;
    let y = (n % 250) as u8 + 1;
    Ipv4Addr::new(10, x, y, host)
}

/// Where lab directories go: `$GIT_PAIR_E2E_TMPDIR` or /tmp. Every ancestor must be
/// traversable by others: the test users and their sshds must reach their homes and the binary.
pub fn base_dir() -> PathBuf {
    let base = std::env::var_os("GIT_PAIR_E2E_TMPDIR")
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let base = base
        .canonicalize()
        .unwrap_or_else(|e| panic!("lab base directory {}: {e}", base.display()));
    for dir in base.ancestors() {
        let mode = fs::metadata(dir)
            .unwrap_or_else(|e| panic!("stat {}: {e}", dir.display()))
            .permissions()
            .mode();
        assert!(
            mode & 0o001 != 0,
            "{} (mode {:o}) is not traversable by the test users: set GIT_PAIR_E2E_TMPDIR to a \
             directory whose every ancestor has o+x (e.g. /tmp)",
            dir.display(),
            mode & 0o7777
        );
    }
    base
}

/// Copies the binary under test into the lab: authorized_keys will name the binary that ran
/// the pairing, and sshd runs it as the test user, who cannot reach a target dir under /root.
fn install_binary(dir: &Path) -> PathBuf {
    let bin_dir = dir.join("bin");
    fs::create_dir(&bin_dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", bin_dir.display()));
    host::set_mode(&bin_dir, 0o755);
    let bin = bin_dir.join("git-pair");
    fs::copy(binary_under_test(), &bin)
        .unwrap_or_else(|e| panic!("copy git-pair into {}: {e}", bin_dir.display()));
    host::set_mode(&bin, 0o755);
    bin
}

/// The git-pair binary the lab runs: the one cargo built for this test or benchmark, or
/// `$GIT_PAIR_LAB_BINARY` (the benchmark's `--binary`, to measure another build the same way).
pub fn binary_under_test() -> PathBuf {
    std::env::var_os("GIT_PAIR_LAB_BINARY").map_or_else(
        || PathBuf::from(env!("CARGO_BIN_EXE_git-pair")),
        PathBuf::from,
    )
}

/// A's repository gets one commit; B's is a copy of it (same history, no `origin` remote).
fn setup_repos(a: &Host, b: &Host) {
    for h in [a, b] {
        let gitconfig = format!(
            "[user]\n\tname = {0} tester\n\temail = {0}@e2e.invalid\n[init]\n\tdefaultBranch = main\n",
            h.hostname
        );
        h.write_user_file(&h.home.join(".gitconfig"), gitconfig.as_bytes(), 0o644);
    }
    a.init_repo(&a.repo);
    Cmd::root("cp").arg("-a").arg(&a.repo).arg(&b.repo).run_ok();
    Cmd::root("chown")
        .arg("-R")
        .arg(format!("{}:{}", b.uid, b.gid))
        .arg(&b.repo)
        .run_ok();
    assert_eq!(
        a.rev_parse("HEAD"),
        b.rev_parse("HEAD"),
        "the repositories must share history"
    );
}

/// Stops a host's sshd. Its session processes get a moment to end first, so that sshd reaps
/// them (killed after the listener, they would be orphans); then the listener is killed by its
/// pid and reaped (dropping the `Running` does both).
fn stop_sshd(ns: &str, slot: &host::SshdSlot) {
    let Some(listener) = lock_slot(slot).as_ref().map(|r| r.pid()) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let others: Vec<i32> = net::netns_pids(ns)
            .into_iter()
            .filter(|&p| u32::try_from(p).ok() != Some(listener))
            .collect();
        if others.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for pid in others {
                kill(pid);
            }
            thread::sleep(Duration::from_millis(100));
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    drop(lock_slot(slot).take());
}

fn kill(pid: i32) {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}

/// Kills what still lives in the namespace (sshd's session children, a stray git-pair: all
/// started by this lab), then deletes it.
fn remove_netns(ns: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let pids = net::netns_pids(ns);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("processes {pids:?} survive in namespace {ns}"));
        }
        for pid in pids {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
        }
        thread::sleep(Duration::from_millis(50));
    }
    net::del_netns(ns)
}

type Action = Box<dyn FnOnce() -> Result<(), String> + Send>;

/// Undo actions, run in reverse order on drop (also while unwinding from a panic). A failing
/// action is reported on stderr and does not stop the others.
#[derive(Default)]
pub struct Cleanup {
    actions: Vec<(String, Action)>,
}

impl Cleanup {
    pub fn push(
        &mut self,
        what: String,
        action: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) {
        self.actions.push((what, Box::new(action)));
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        while let Some((what, action)) = self.actions.pop() {
            match panic::catch_unwind(AssertUnwindSafe(action)) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("e2e cleanup: {what} failed: {e}"),
                Err(_) => eprintln!("e2e cleanup: {what} panicked"),
            }
        }
    }
}

/// The pid that created a lab resource, from its name `gp<pid>-<n>[a|b|s|m]`.
pub fn owner_pid(name: &str) -> Option<u32> {
    owner_pid_and_n(name).map(|(pid, _)| pid)
}

fn owner_pid_and_n(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("gp")?;
    let (pid, rest) = rest.split_once('-')?;
    let n = rest.strip_suffix(['a', 'b', 's', 'm']).unwrap_or(rest);
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if all_digits(pid) && all_digits(n) {
        Some((pid.parse().ok()?, n.parse().ok()?))
    } else {
        None
    }
}

fn users_named_like_labs() -> Vec<String> {
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .filter_map(|l| l.split(':').next())
        .filter(|name| owner_pid(name).is_some())
        .map(str::to_owned)
        .collect()
}

fn dirs_named_like_labs() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(base_dir()) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().and_then(owner_pid).is_some())
        .map(|e| e.path())
        .collect()
}

/// Resources this process created and has not removed (checked after all tests).
pub fn leftovers_of(pid: u32) -> Vec<String> {
    let mine = |name: &str| owner_pid(name) == Some(pid);
    let mut left: Vec<String> = net::list_netns()
        .into_iter()
        .filter(|n| mine(n))
        .map(|n| format!("namespace {n}"))
        .collect();
    left.extend(
        users_named_like_labs()
            .into_iter()
            .filter(|u| mine(u))
            .map(|u| format!("user {u}")),
    );
    left.extend(
        dirs_named_like_labs()
            .into_iter()
            .filter(|d| d.file_name().and_then(|f| f.to_str()).is_some_and(mine))
            .map(|d| format!("directory {}", d.display())),
    );
    left
}

/// Removes what earlier runs of this harness left behind when they were killed (no Drop ran):
/// only resources named like ours whose creating process no longer exists.
pub fn sweep_stale() {
    let dead = |name: &str| {
        owner_pid(name).is_some_and(|pid| !Path::new(&format!("/proc/{pid}")).exists())
    };
    for ns in net::list_netns().into_iter().filter(|n| dead(n)) {
        if let Err(e) = remove_netns(&ns) {
            eprintln!("e2e: cannot sweep stale namespace {ns}: {e}");
        }
    }
    for user in users_named_like_labs().into_iter().filter(|u| dead(u)) {
        if let Err(e) = host::del_user(&user) {
            eprintln!("e2e: cannot sweep stale user {user}: {e}");
        }
    }
    for dir in dirs_named_like_labs() {
        if dir.file_name().and_then(|f| f.to_str()).is_some_and(dead) {
            if let Err(e) = fs::remove_dir_all(&dir) {
                eprintln!("e2e: cannot sweep stale directory {}: {e}", dir.display());
            }
        }
    }
}
