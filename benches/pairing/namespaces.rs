//! The benchmarks that run the real release binary between the end-to-end
//! tests' namespace hosts (`tests/support`: two network namespaces on one
//! veth LAN, each with its own user, HOME, repositories and real sshd): time
//! to pair (clean, and with loss made by nftables at each namespace's netdev
//! ingress hook), crowds of simultaneous pairings, and the footprint.
//!
//! Nothing here touches a real interface: git-pair always runs inside a lab
//! namespace with `--interface` naming the lab's veth, and the `--help`
//! start-up timing names `lo`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::gitpair::{events, PairOpts};
use crate::support::host::Host;
use crate::support::lab::Lab;
use crate::support::net::in_netns;
use crate::support::process::{Cmd, Output, Running, DEFAULT_TIMEOUT};

/// nftables table of the benchmark's loss and counting rules.
const TABLE: &str = "gpbench";
const CODE_DEADLINE: Duration = Duration::from_secs(20);

/// One timed pairing.
pub struct Timed {
    pub took: Duration,
    /// Both exited 0, each with a `paired` event naming the other's path.
    pub ok: bool,
    pub detail: String,
}

/// What the benchmark's ingress rules drop, on each host, of what arrives there (so each way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    None,
    /// This many per mille of the UDP and TCP packets; ARP, neighbour discovery (ICMPv6) and
    /// everything else pass, as on a LAN whose neighbour caches are warm.
    UdpTcp(u32),
    /// This many per mille of every frame, ARP and neighbour discovery included.
    AllFrames(u32),
}

impl Loss {
    /// How the report names it.
    pub fn describe(self) -> String {
        match self {
            Loss::None => "no impairment".to_owned(),
            Loss::UdpTcp(p) => format!("{}% loss of UDP and TCP each way, ARP spared", p / 10),
            Loss::AllFrames(p) => {
                format!("{}% loss of all frames each way, ARP included", p / 10)
            }
        }
    }
}

/// The ingress ruleset on `iface`: count every frame, every UDP datagram and every ARP frame,
/// and drop what `loss` says at random (`numgen random`). A drop at ingress looks like a loss
/// on the wire; a drop at output would hand the sender EPERM, which no real LAN does.
fn ruleset(iface: &str, loss: Loss) -> String {
    let drop = match loss {
        Loss::None => String::new(),
        Loss::UdpTcp(p) => format!(
            "meta l4proto {{ udp, tcp }} numgen random mod 1000 < {p} counter drop comment \"lost\""
        ),
        // Two rules so that lost ARP frames are counted apart; a frame meets only one of them.
        Loss::AllFrames(p) => format!(
            "meta protocol arp numgen random mod 1000 < {p} counter drop comment \"lost arp\"\n        \
             meta protocol != arp numgen random mod 1000 < {p} counter drop comment \"lost\""
        ),
    };
    format!(
        r#"table netdev {TABLE} {{
    chain ingress {{
        type filter hook ingress device "{iface}" priority -10; policy accept;
        counter comment "all"
        meta l4proto udp counter comment "udp"
        meta protocol arp counter comment "arp"
        {drop}
    }}
}}
"#
    )
}

/// Replaces the benchmark's ingress rules on both hosts (fresh counters).
pub fn set_rules(lab: &Lab, loss: Loss) {
    for h in [&lab.a, &lab.b] {
        clear_rules(h);
        in_netns(&h.netns, "nft")
            .args(["-f", "-"])
            .stdin(ruleset(&h.iface, loss))
            .run_ok();
    }
}

/// Empties the neighbour caches (ARP and IPv6 neighbours) of both hosts and of `others`: each
/// run is then a first meeting, as when two machines pair that have not talked before.
pub fn forget_neighbours(lab: &Lab, others: &[&str]) {
    for ns in [lab.a.netns.as_str(), lab.b.netns.as_str()]
        .into_iter()
        .chain(others.iter().copied())
    {
        Cmd::root("ip")
            .args(["-n", ns, "neigh", "flush", "all"])
            .run_ok();
    }
}

fn clear_rules(h: &Host) {
    // Absent the first time: ignore the error.
    let _ = in_netns(&h.netns, "nft")
        .args(["delete", "table", "netdev", TABLE])
        .run();
}

/// What the ingress counters of both hosts saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub packets: u64,
    pub udp: u64,
    pub arp: u64,
    /// Dropped frames other than ARP.
    pub lost: u64,
    pub lost_arp: u64,
    /// CPU time of the timed processes (both sides of git-pair, reaped by this benchmark), and
    /// of the processes both hosts' sshd started for connections (reaped by the sshd), in
    /// clock ticks (1/100 s on Linux; precise enough summed over many runs).
    pub cpu_git_pair: u64,
    pub cpu_sshd: u64,
}

impl Counters {
    /// What was counted between `earlier` and `self`.
    pub fn since(self, earlier: Counters) -> Counters {
        Counters {
            packets: self.packets - earlier.packets,
            udp: self.udp - earlier.udp,
            arp: self.arp - earlier.arp,
            lost: self.lost - earlier.lost,
            lost_arp: self.lost_arp - earlier.lost_arp,
            cpu_git_pair: self.cpu_git_pair - earlier.cpu_git_pair,
            cpu_sshd: self.cpu_sshd - earlier.cpu_sshd,
        }
    }

    pub fn add(self, o: Counters) -> Counters {
        Counters {
            packets: self.packets + o.packets,
            udp: self.udp + o.udp,
            arp: self.arp + o.arp,
            lost: self.lost + o.lost,
            lost_arp: self.lost_arp + o.lost_arp,
            cpu_git_pair: self.cpu_git_pair + o.cpu_git_pair,
            cpu_sshd: self.cpu_sshd + o.cpu_sshd,
        }
    }
}

/// The CPU time (user and system, in clock ticks) of the reaped children of the process `pid`
/// (`cutime` and `cstime` in `/proc/PID/stat`), 0 if it cannot be read.
fn children_cpu(pid: &str) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let field = |n: usize| -> u64 {
        // Field n of the whole line is field n - 3 after the name (state is field 3).
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
    };
    field(16) + field(17)
}

/// CPU counters only (see [`Counters`]): this benchmark's reaped children, and both sshds'.
fn cpu(lab: &Lab) -> Counters {
    let sshd = |h: &Host| {
        let slot = h.sshd.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref()
            .map_or(0, |r| children_cpu(&r.pid().to_string()))
    };
    Counters {
        cpu_git_pair: children_cpu("self"),
        cpu_sshd: sshd(&lab.a) + sshd(&lab.b),
        ..Counters::default()
    }
}

pub fn counters(lab: &Lab) -> Counters {
    let mut c = Counters::default();
    for h in [&lab.a, &lab.b] {
        let out = in_netns(&h.netns, "nft")
            .args(["-j", "list", "table", "netdev", TABLE])
            .run_ok();
        let v: Value = serde_json::from_str(&out.stdout_str())
            .unwrap_or_else(|e| panic!("nft -j output: {e}\n{out}"));
        for rule in v["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|i| i.get("rule"))
        {
            let packets = rule["expr"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|e| e["counter"]["packets"].as_u64())
                .unwrap_or(0);
            match rule["comment"].as_str() {
                Some("all") => c.packets += packets,
                Some("udp") => c.udp += packets,
                Some("arp") => c.arp += packets,
                Some("lost") => c.lost += packets,
                Some("lost arp") => c.lost_arp += packets,
                _ => {}
            }
        }
    }
    c
}

pub fn remove_rules(lab: &Lab) {
    for h in [&lab.a, &lab.b] {
        clear_rules(h);
    }
}

/// Forgets every pairing of a host: its ~/.ssh and the remotes of `repos`,
/// so that each timed run starts from the same state.
fn reset(h: &Host, repos: &[PathBuf]) {
    let ssh = h.home.join(".ssh");
    if ssh.exists() {
        fs::remove_dir_all(&ssh).unwrap_or_else(|e| panic!("rm -r {}: {e}", ssh.display()));
    }
    for repo in repos {
        let script = r#"for r in $(git remote); do git remote remove "$r"; done"#;
        h.cmd("sh").args(["-c", script]).cwd(repo).run_ok();
    }
}

/// git-pair on `h` in `repo`, as the end-to-end tests run it.
/// A timed side: started the lean way ([`Host::lean`]), so that the time is git-pair's and not
/// the namespace wrappers' (the report measures both ways of starting).
fn git_pair(h: &Host, repo: &Path, code: Option<&str>, timeout_secs: u64) -> Cmd {
    h.lean(h.git_pair(code, &PairOpts::timeout(timeout_secs)).cwd(repo))
}

/// Reads the generated code from a first side's JSON events.
fn read_code(first: &mut Running) -> String {
    let deadline = Instant::now() + CODE_DEADLINE;
    while let Some(line) = first.next_line(deadline) {
        if let Ok(ev) = serde_json::from_str::<Value>(&line) {
            if ev["event"] == "code" {
                if let Some(code) = ev["code"].as_str() {
                    return code.to_owned();
                }
            }
        }
    }
    panic!(
        "the first side printed no code within {CODE_DEADLINE:?}\n{:?}",
        first.output_so_far()
    );
}

/// The path of the peer named in the last `paired` event, if it exited 0.
fn paired_with(out: &Output) -> Option<String> {
    if !out.success() {
        return None;
    }
    let ev = events(out)
        .into_iter()
        .rev()
        .find(|e| e["event"] == "paired")?;
    ev["peer"]["path"].as_str().map(str::to_owned)
}

/// Waits for `running` on its own thread, so that exits are seen when they
/// happen whatever the order (a thread blocked in `waitpid` each: no polling,
/// no CPU taken from the pairings being measured).
fn waiter(running: Running, limit: Duration) -> thread::JoinHandle<(Output, Instant)> {
    thread::spawn(move || running.wait_exact(limit))
}

/// One pairing: A starts and shows its code; then B starts with it; timed
/// from B's start until both have exited.
fn pair_once(lab: &Lab, timeout_secs: u64) -> Timed {
    let limit = Duration::from_secs(timeout_secs + 20);
    let mut a = git_pair(&lab.a, &lab.a.repo, None, timeout_secs).spawn();
    let code = read_code(&mut a);
    let a = waiter(a, limit);
    let started = Instant::now();
    let b = git_pair(&lab.b, &lab.b.repo, Some(&code), timeout_secs).spawn();
    let (b, b_exit) = b.wait_exact(limit);
    let (a, a_exit) = a.join().expect("waiter thread");
    let took = a_exit.max(b_exit) - started;
    let right = paired_with(&a).as_deref() == Some(&*lab.b.repo.to_string_lossy())
        && paired_with(&b).as_deref() == Some(&*lab.a.repo.to_string_lossy());
    let detail = if right {
        String::new()
    } else {
        format!("code {code}\n=== A ===\n{a}\n=== B ===\n{b}")
    };
    Timed {
        took,
        ok: right,
        detail,
    }
}

/// One timed pairing of the lab's two repositories from a fresh start (no `~/.ssh`, no
/// remote, empty neighbour caches, also on `others`), and what the ingress counters saw of it.
pub fn time_one(lab: &Lab, timeout_secs: u64, others: &[&str]) -> (Timed, Counters) {
    reset(&lab.a, std::slice::from_ref(&lab.a.repo));
    reset(&lab.b, std::slice::from_ref(&lab.b.repo));
    // The reset's writes on disk before the run, as on a machine where nothing was written in
    // the last seconds (ext4 commits every 5 s): otherwise the pairing's first fsync commits
    // them (and their data, in ordered mode) along with its own.
    nix::unistd::sync();
    forget_neighbours(lab, others);
    let before = counters(lab);
    let cpu_before = cpu(lab);
    let t = pair_once(lab, timeout_secs);
    let cpu_used = cpu(lab).since(cpu_before);
    let seen = counters(lab).since(before).add(cpu_used);
    (t, seen)
}

/// What starting a command on a host costs before git-pair runs at all: the median time to
/// run `true` the same way, over `runs`, started the lean way (`nsenter`, as the timed runs
/// are) when `lean`, else through the end-to-end tests' wrappers (`ip netns exec`, `unshare`,
/// `sh`, `setpriv` and `env`).
pub fn wrapper_overhead(lab: &Lab, runs: usize, lean: bool) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let cmd = lab.b.cmd("true");
            let cmd = if lean { lab.b.lean(cmd) } else { cmd };
            let started = Instant::now();
            let (out, exited) = cmd.spawn().wait_exact(DEFAULT_TIMEOUT);
            assert!(out.success(), "{out}");
            exited - started
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Result of `k` simultaneous pairings.
pub struct Crowd {
    pub k: usize,
    pub took: Duration,
    /// Pairings whose both sides exited 0 paired with their own partner.
    pub right: usize,
    /// Sides that paired with somebody else's partner (must be 0).
    pub wrong: usize,
    /// Pairings sharing their channel number with another pairing.
    pub sharing_channel: usize,
    /// Channels used by more than one pairing.
    pub shared_channels: usize,
    pub counters: Counters,
    /// Exit statuses and failure messages of the sides that failed.
    pub failures: Vec<String>,
}

/// Makes `k` repositories per host for the crowd, sharing one history
/// pairwise: `<home>/crowd/<i>`.
pub fn crowd_repos(lab: &Lab, k: usize) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let mut ra = Vec::new();
    let mut rb = Vec::new();
    for i in 0..k {
        let (pa, pb) = (
            lab.a.home.join("crowd").join(i.to_string()),
            lab.b.home.join("crowd").join(i.to_string()),
        );
        if !pa.exists() {
            lab.a.init_repo(&pa);
        }
        if !pb.exists() {
            let parent = pb.parent().expect("has a parent");
            lab.b
                .cmd("mkdir")
                .arg("-p")
                .arg(parent)
                .cwd(&lab.b.home)
                .run_ok();
            Cmd::root("cp").arg("-a").arg(&pa).arg(&pb).run_ok();
            Cmd::root("chown")
                .arg("-R")
                .arg(format!("{}:{}", lab.b.uid, lab.b.gid))
                .arg(&pb)
                .run_ok();
        }
        ra.push(pa);
        rb.push(pb);
    }
    (ra, rb)
}

fn channel(code: &str) -> &str {
    code.split('-').next().unwrap_or(code)
}

/// `k` pairings at once, each with its own generated code: all `k` first
/// sides start and show their codes, then all `k` second sides start; timed
/// from the first second side's start until every process has exited.
pub fn crowd(lab: &Lab, k: usize, timeout_secs: u64) -> Crowd {
    let (ra, rb) = crowd_repos(lab, k);
    reset(&lab.a, &ra);
    reset(&lab.b, &rb);
    set_rules(lab, Loss::None);
    let limit = Duration::from_secs(timeout_secs + 30);
    let mut firsts: Vec<Running> = ra
        .iter()
        .map(|r| git_pair(&lab.a, r, None, timeout_secs).spawn())
        .collect();
    let codes: Vec<String> = firsts.iter_mut().map(read_code).collect();
    let started = Instant::now();
    let seconds: Vec<Running> = rb
        .iter()
        .zip(&codes)
        .map(|(r, code)| git_pair(&lab.b, r, Some(code), timeout_secs).spawn())
        .collect();
    let waiters: Vec<_> = firsts
        .into_iter()
        .chain(seconds)
        .map(|r| waiter(r, limit))
        .collect();
    let results: Vec<(Output, Instant)> = waiters
        .into_iter()
        .map(|w| w.join().expect("waiter thread"))
        .collect();
    let took = results
        .iter()
        .map(|(_, t)| *t)
        .max()
        .expect("k >= 1")
        .saturating_duration_since(started);
    let counters = counters(lab);
    let (outs_a, outs_b) = results.split_at(k);
    let mut right = 0;
    let mut wrong = 0;
    let mut failures = Vec::new();
    for i in 0..k {
        let a = paired_with(&outs_a[i].0);
        let b = paired_with(&outs_b[i].0);
        let a_right = a.as_deref() == Some(&*rb[i].to_string_lossy());
        let b_right = b.as_deref() == Some(&*ra[i].to_string_lossy());
        wrong += usize::from(a.is_some() && !a_right) + usize::from(b.is_some() && !b_right);
        if a_right && b_right {
            right += 1;
        } else {
            for (side, (out, _)) in [("A", &outs_a[i]), ("B", &outs_b[i])] {
                let failed = events(out)
                    .into_iter()
                    .find(|e| e["event"] == "failed")
                    .map(|e| format!("{}: {}", e["reason"], e["message"]))
                    .unwrap_or_else(|| format!("status {}", out.status));
                failures.push(format!(
                    "pairing {i} (code {}) side {side}: {failed}",
                    codes[i]
                ));
            }
        }
    }
    let mut per_channel = std::collections::HashMap::<&str, usize>::new();
    for c in &codes {
        *per_channel.entry(channel(c)).or_default() += 1;
    }
    let shared_channels = per_channel.values().filter(|&&n| n > 1).count();
    let sharing_channel = per_channel.values().filter(|&&n| n > 1).sum();
    Crowd {
        k,
        took,
        right,
        wrong,
        sharing_channel,
        shared_channels,
        counters,
        failures,
    }
}

/// git-pair on `h` in its repository, run by `wrapper` (a program and its
/// arguments, which end with the program to run), with the arguments the
/// end-to-end tests give it.
fn wrapped(h: &Host, wrapper: &[&str], code: Option<&str>) -> Cmd {
    let (program, args) = wrapper.split_first().expect("a wrapper program");
    let mut cmd = h
        .cmd(program)
        .args(args)
        .arg(&h.git_pair)
        .args(["--json", "--interface", &h.iface, "--ssh-port", "22"])
        .arg("--host-key")
        .arg(&h.host_key_pub)
        .args(["--timeout", "20"])
        .timeout(Duration::from_secs(40));
    if let Some(code) = code {
        cmd = cmd.arg(code);
    }
    cmd
}

/// One pairing with both sides under `strace -f -ttt -T`, the traces written
/// to `dir/a.strace` and `dir/b.strace`: where the time of a pairing goes.
/// With `only` (a syscall list such as `fsync,rename,connect`), strace stops
/// the process only at those (`--seccomp-bpf`), so that the timings stay
/// close to an untraced run.
pub fn trace(lab: &Lab, dir: &Path, only: Option<&str>) {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    host_writable(dir);
    reset(&lab.a, std::slice::from_ref(&lab.a.repo));
    reset(&lab.b, std::slice::from_ref(&lab.b.repo));
    let file = |side: &str| {
        dir.join(format!("{side}.strace"))
            .to_string_lossy()
            .into_owned()
    };
    let (fa, fb) = (file("a"), file("b"));
    let filter = only.map(|list| format!("trace={list}"));
    let strace = |out: &str| {
        let mut args = vec!["strace", "-f", "-ttt", "-T"];
        if let Some(f) = &filter {
            args.extend(["--seccomp-bpf", "-e"]);
            args.push(f);
        }
        args.extend(["-o", out]);
        args.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    let (sa, sb) = (strace(&fa), strace(&fb));
    fn as_strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let mut a = wrapped(&lab.a, &as_strs(&sa), None).spawn();
    let code = read_code(&mut a);
    let b = wrapped(&lab.b, &as_strs(&sb), Some(&code))
        .spawn()
        .wait(Duration::from_secs(40));
    let a = a.wait(Duration::from_secs(40));
    assert!(
        a.success() && b.success(),
        "traced pairing failed\n{a}\n{b}"
    );
    eprintln!("  traces in {fa} and {fb}");
}

fn host_writable(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o1777))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", dir.display()));
}

/// Peak resident set size (KiB) of each side of `runs` pairings, measured
/// by GNU time around the binary itself (inside the namespace, as the
/// host's user).
pub fn peak_rss_kib(lab: &Lab, runs: usize) -> Vec<u64> {
    let timed = |h: &Host, code: Option<&str>| {
        wrapped(h, &["/usr/bin/time", "-f", "git-pair-maxrss-kib %M"], code)
    };
    let rss = |out: &Output| -> u64 {
        assert!(
            out.success(),
            "pairing for the RSS measurement failed\n{out}"
        );
        out.stderr_str()
            .lines()
            .find_map(|l| l.strip_prefix("git-pair-maxrss-kib ")?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no maxrss line\n{out}"))
    };
    let mut all = Vec::new();
    for _ in 0..runs {
        reset(&lab.a, std::slice::from_ref(&lab.a.repo));
        reset(&lab.b, std::slice::from_ref(&lab.b.repo));
        let mut a = timed(&lab.a, None).spawn();
        let code = read_code(&mut a);
        let b = timed(&lab.b, Some(&code))
            .spawn()
            .wait(Duration::from_secs(40));
        let a = a.wait(Duration::from_secs(40));
        all.push(rss(&a));
        all.push(rss(&b));
    }
    all
}

/// Median wall time of `git-pair --interface lo --help` over `runs`
/// (`--help` sends nothing; `lo` is named all the same).
pub fn help_startup(binary: &Path, runs: usize) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            let out = Command::new(binary)
                .args(["--interface", "lo", "--help"])
                .output()
                .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()));
            let took = started.elapsed();
            assert!(out.status.success(), "git-pair --help failed: {out:?}");
            took
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Where the time of a clean pairing goes: the moments each side reaches, from a trace of the
/// syscalls that mark them (`strace --seccomp-bpf`, which stops the process at those alone).
#[derive(Debug, Clone, Copy, Default)]
pub struct Phases {
    /// B's `execve` to its first hello: process start (dynamic loading), the repository, the
    /// user, a new login key, the host keys, the interfaces, the check of this machine's own
    /// sshd, the sockets.
    pub start: Duration,
    /// B's first hello to its first TCP connect to the peer's sshd: A's answer, both SPAKE2
    /// halves, the encrypted payloads.
    pub exchange: Duration,
    /// The sshd check and the confirmations, until B is verified.
    pub check: Duration,
    /// B's setup: the ssh files, the git remote.
    pub setup: Duration,
    /// B's last event to the later of both exits.
    pub finish: Duration,
    /// B's `execve` to the later of both exits.
    pub total: Duration,
}

/// The moments of one side in a `strace -ttt` trace, in seconds.
#[derive(Debug, Default)]
struct Marks {
    exec: Option<f64>,
    hello: Option<f64>,
    check: Option<f64>,
    verified: Option<f64>,
    remote: Option<f64>,
    exit: Option<f64>,
}

fn marks(trace: &str) -> Marks {
    let mut m = Marks::default();
    for line in trace.lines() {
        let mut words = line.split_whitespace();
        let (Some(_pid), Some(t)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(t) = t.parse::<f64>() else {
            continue;
        };
        let rest = &line[line.find(char::is_alphabetic).unwrap_or(0)..];
        let first = |slot: &mut Option<f64>| {
            slot.get_or_insert(t);
        };
        if rest.contains("execve(") && rest.contains("= 0") {
            first(&mut m.exec);
        } else if rest.starts_with("sendto(") && rest.contains(r#"\"ch\":"#) {
            first(&mut m.hello);
        } else if rest.starts_with("connect(") && rest.contains("htons(22)") && m.hello.is_some() {
            // After the first hello: the connects before it check this machine's own sshd.
            first(&mut m.check);
        } else if rest.starts_with("write(1,") && rest.contains(r#"\"event\":\"verified\""#) {
            first(&mut m.verified);
        } else if rest.starts_with("write(1,") && rest.contains(r#"\"event\":\"remote\""#) {
            first(&mut m.remote);
        } else if rest.starts_with("exit_group(") || rest.contains("+++ exited") {
            first(&mut m.exit);
        }
    }
    m
}

/// `runs` clean pairings traced at the marking syscalls only; the median of each phase.
pub fn phases(lab: &Lab, dir: &Path, runs: usize) -> Option<Phases> {
    const ONLY: &str = "execve,sendto,connect,write,exit_group";
    let mut all: Vec<Phases> = Vec::new();
    for _ in 0..runs {
        reset(&lab.a, std::slice::from_ref(&lab.a.repo));
        reset(&lab.b, std::slice::from_ref(&lab.b.repo));
        nix::unistd::sync();
        forget_neighbours(lab, &[]);
        trace(lab, dir, Some(ONLY));
        let read = |side: &str| fs::read_to_string(dir.join(format!("{side}.strace")));
        let (Ok(a), Ok(b)) = (read("a"), read("b")) else {
            continue;
        };
        let (a, b) = (marks(&a), marks(&b));
        let (
            Some(exec),
            Some(hello),
            Some(check),
            Some(verified),
            Some(remote),
            Some(xb),
            Some(xa),
        ) = (
            b.exec, b.hello, b.check, b.verified, b.remote, b.exit, a.exit,
        )
        else {
            eprintln!("  a trace lacks a mark: A {a:?} B {b:?}");
            continue;
        };
        let d = |from: f64, to: f64| Duration::from_secs_f64((to - from).max(0.0));
        let end = xa.max(xb);
        all.push(Phases {
            start: d(exec, hello),
            exchange: d(hello, check),
            check: d(check, verified),
            setup: d(verified, remote),
            finish: d(remote, end),
            total: d(exec, end),
        });
    }
    if all.is_empty() {
        return None;
    }
    let median = |f: fn(&Phases) -> Duration| {
        let mut v: Vec<Duration> = all.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    Some(Phases {
        start: median(|p| p.start),
        exchange: median(|p| p.exchange),
        check: median(|p| p.check),
        setup: median(|p| p.setup),
        finish: median(|p| p.finish),
        total: median(|p| p.total),
    })
}
