//! BENCHMARKS.md: the figures of one benchmark run against the issue's
//! targets, the machine it ran on and the command, plus the statistics
//! (median, p95, max) and the criterion results it reads back.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use git_pair::protocol::machine::MAX_FAILURES;

use crate::guess::{self, Rate};
use crate::namespaces::{Counters, Crowd, Loss, Timed};
use crate::sim::{self, Impairment, Run, LAN_HOP};
use crate::Options;

/// One network condition of the simulated time-to-pair table.
pub struct Condition {
    pub name: &'static str,
    pub imp: Impairment,
    pub seed: u64,
}

/// The issue's four conditions, in the simulated network.
pub fn conditions() -> Vec<Condition> {
    let imp = |loss, duplicate, delay, jitter| Impairment {
        loss,
        duplicate,
        delay,
        jitter,
        neighbours: false,
    };
    vec![
        Condition {
            name: "(a) no impairment (100 µs per hop)",
            imp: imp(0.0, 0.0, LAN_HOP, Duration::ZERO),
            seed: 1,
        },
        Condition {
            name: "(b) 30% loss each way",
            imp: imp(0.3, 0.0, LAN_HOP, Duration::ZERO),
            seed: 2,
        },
        Condition {
            name: "(c) 200 ms delay each way",
            imp: imp(0.0, 0.0, Duration::from_millis(200), Duration::ZERO),
            seed: 3,
        },
        Condition {
            name: "(d) 10% loss, 10% duplication, reordering (5 ms + 0-20 ms jitter)",
            imp: imp(
                0.1,
                0.1,
                Duration::from_millis(5),
                Duration::from_millis(20),
            ),
            seed: 4,
        },
        Condition {
            name: "(e) 30% loss of all frames each way, neighbour resolution included, cold caches",
            imp: Impairment {
                neighbours: true,
                ..imp(0.3, 0.0, LAN_HOP, Duration::ZERO)
            },
            seed: 5,
        },
    ]
}

/// git pair (and magic-wormhole, when it was run) under one condition of the namespace LAN.
pub struct LanCondition {
    pub loss: Loss,
    pub git_pair: Vec<Timed>,
    /// What the ingress counters saw of the git pair runs alone.
    pub counters: Counters,
    pub one_way: Vec<Timed>,
    pub both_ways: Vec<Timed>,
}

impl LanCondition {
    pub fn new(loss: Loss) -> LanCondition {
        LanCondition {
            loss,
            git_pair: Vec::new(),
            counters: Counters::default(),
            one_way: Vec::new(),
            both_ways: Vec::new(),
        }
    }
}

#[derive(Default)]
pub struct Report {
    pub guess: Option<Rate>,
    pub sim: Vec<Vec<Run>>,
    /// Starting `true` the way the timed runs start git-pair (from a thread inside the host's
    /// namespaces).
    pub wrapper: Option<Duration>,
    /// ...and through the end-to-end tests' wrappers, which the figures before included.
    pub test_wrapper: Option<Duration>,
    pub help_startup: Option<Duration>,
    pub binary_size: Option<u64>,
    pub peak_rss_kib: Vec<u64>,
    /// The namespace LAN's conditions: no impairment, then the two kinds of loss.
    pub lan: Vec<LanCondition>,
    pub crowds: Vec<Crowd>,
    pub sim_crowds: Vec<sim::Crowd>,
    pub neighbour_floor: Option<sim::NeighbourFloor>,
    pub phases: Option<crate::namespaces::Phases>,
    /// `/proc/loadavg` when the run started and when it ended.
    pub load: (String, String),
    pub criterion: Option<Vec<(String, f64)>>,
}

/// Median, p95 and max (nearest rank) of the successful runs, and how many
/// failed. A failed run counts as slower than every success, so the p95 is
/// reported only while at most 5% of the runs failed.
struct Stats {
    runs: usize,
    failed: usize,
    median: Option<Duration>,
    p95: Option<Duration>,
    max: Option<Duration>,
}

fn stats(ok: impl IntoIterator<Item = Duration>, runs: usize) -> Stats {
    let mut ok: Vec<Duration> = ok.into_iter().collect();
    ok.sort();
    let failed = runs - ok.len();
    // Nearest rank over all runs, the failures sorted last.
    let rank = |q: f64| ((q * runs as f64).ceil() as usize).clamp(1, runs.max(1)) - 1;
    let at = |i: usize| ok.get(i).copied();
    Stats {
        runs,
        failed,
        median: at(rank(0.5)),
        p95: at(rank(0.95)),
        max: if failed == 0 {
            ok.last().copied()
        } else {
            None
        },
    }
}

fn ms(d: Option<Duration>) -> String {
    match d {
        Some(d) if d < Duration::from_millis(10) => format!("{:.2} ms", d.as_secs_f64() * 1e3),
        Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
        None => "failed".to_owned(),
    }
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "**pass**"
    } else {
        "**miss**"
    }
}

fn human_time(seconds: f64) -> String {
    const MIN: f64 = 60.0;
    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86400.0;
    const YEAR: f64 = 365.25 * DAY;
    match seconds {
        s if s < 1.0 => format!("{:.0} ms", s * 1e3),
        s if s < MIN => format!("{s:.1} s"),
        s if s < HOUR => format!("{:.1} min", s / MIN),
        s if s < DAY => format!("{:.1} h", s / HOUR),
        s if s < YEAR => format!("{:.1} days", s / DAY),
        s => format!("{:.1} years", s / YEAR),
    }
}

fn sh(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "(unknown)".to_owned())
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .map_or("(unknown)", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "(unknown)".to_owned(), |s| s.trim().to_owned());
    format!(
        "| | |\n|---|---|\n| CPU | {cpu} |\n| cores | {cores} |\n| memory | {mem} |\n| kernel | Linux {kernel} |\n| rustc | {} |\n| date | {} |\n| commit | {} |\n",
        sh("rustc", &["--version"]),
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        sh("git", &["-C", env!("CARGO_MANIFEST_DIR"), "describe", "--always", "--dirty"]),
    )
}

/// Median estimates (ns) of every criterion benchmark under `dir`
/// (`target/criterion`), by their full id.
pub fn criterion_results(dir: &Path) -> Vec<(String, f64)> {
    fn walk(dir: &Path, out: &mut Vec<(String, f64)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && p.file_name().is_some_and(|n| n == "new") {
                let read = |f: &str| -> Option<serde_json::Value> {
                    serde_json::from_str(&std::fs::read_to_string(p.join(f)).ok()?).ok()
                };
                if let (Some(b), Some(est)) = (read("benchmark.json"), read("estimates.json")) {
                    if let (Some(id), Some(ns)) = (
                        b["full_id"].as_str(),
                        est["median"]["point_estimate"].as_f64(),
                    ) {
                        out.push((id.to_owned(), ns));
                    }
                }
            } else if p.is_dir() && p.file_name().is_some_and(|n| n != "report") {
                walk(&p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn nanos(ns: f64) -> String {
    match ns {
        n if n < 1e3 => format!("{n:.0} ns"),
        n if n < 1e6 => format!("{:.1} µs", n / 1e3),
        n => format!("{:.2} ms", n / 1e6),
    }
}

/// Figures of simulated crowds: (trials with a shared channel, trials all
/// right, wrong partners, stats of the time until all were done).
fn crowd_figures(crowds: &[sim::Crowd]) -> (usize, usize, usize, Stats) {
    let shared = crowds.iter().filter(|c| c.sharing_channel > 0).count();
    let all_right = crowds.iter().filter(|c| c.took.is_some()).count();
    let wrong = crowds.iter().map(|c| c.wrong).sum();
    let st = stats(crowds.iter().filter_map(|c| c.took), crowds.len());
    (shared, all_right, wrong, st)
}

/// One line about simulated crowds, for `--sim-only`.
pub fn crowd_summary(crowds: &[sim::Crowd]) -> String {
    let (shared, all_right, wrong, st) = crowd_figures(crowds);
    let failures: Vec<String> = crowds
        .iter()
        .filter(|c| c.took.is_none())
        .map(|c| {
            format!(
                "{} sharing: {}",
                c.sharing_channel,
                c.failure.unwrap_or("?")
            )
        })
        .collect();
    format!(
        "{} trials, {shared} with a shared channel, {all_right} all right, {wrong} wrong partners, median {}, p95 {}; failed trials: {failures:?}",
        crowds.len(),
        ms(st.median),
        ms(st.p95)
    )
}

/// One line of figures of simulated runs, for `--sim-only`.
pub fn summary(runs: &[Run]) -> String {
    let st = sim_stats(runs);
    format!(
        "{} runs, {} failed, median {}, p95 {}, max {}",
        st.runs,
        st.failed,
        ms(st.median),
        ms(st.p95),
        ms(st.max)
    )
}

fn timed_stats(t: &[Timed]) -> Stats {
    stats(t.iter().filter(|t| t.ok).map(|t| t.took), t.len())
}

fn sim_stats(runs: &[Run]) -> Stats {
    stats(
        runs.iter().filter_map(|r| match r {
            Run::Paired(d) => Some(*d),
            Run::Failed(_) => None,
        }),
        runs.len(),
    )
}

impl Report {
    pub fn render(&self, o: &Options, conditions: &[super::report::Condition]) -> String {
        let mut s = String::new();
        let lan = |loss: fn(&Loss) -> bool| self.lan.iter().find(|c| loss(&c.loss));
        let clean_c = lan(|l| *l == Loss::None);
        let udp_tcp_c = lan(|l| matches!(l, Loss::UdpTcp(_)));
        let all_c = lan(|l| matches!(l, Loss::AllFrames(_)));
        let st = |c: Option<&LanCondition>| timed_stats(c.map_or(&[][..], |c| &c.git_pair));
        let (clean, udp_tcp, all) = (st(clean_c), st(udp_tcp_c), st(all_c));
        let sim_lossy = conditions
            .iter()
            .zip(&self.sim)
            .find(|(c, _)| c.name.starts_with("(b)"))
            .map(|(_, runs)| sim_stats(runs));
        let rss_max = self.peak_rss_kib.iter().copied().max();
        let crowd64 = self.crowds.iter().find(|c| c.k == 64);

        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Generated by `{}` (as root: it builds network namespaces with their own users \
             and sshd, like the end-to-end tests, and never touches a real interface). Do not \
             edit by hand; run the command again.\n",
            o.command
        );
        let _ = writeln!(s, "## Machine\n\n{}", machine());
        let quiet = |l: &str| {
            l.split_whitespace()
                .next()
                .and_then(|x| x.parse::<f64>().ok())
                .is_some_and(|x| x < 0.5)
        };
        let _ = writeln!(
            s,
            "How the run was taken: load average (1, 5, 15 min) {} at the start and {} at the \
             end{}.\n",
            self.load.0,
            self.load.1,
            if quiet(&self.load.0) && quiet(&self.load.1) {
                " (a quiet machine)"
            } else {
                ": **the machine was not quiet** (other work ran beside the benchmark on its 2 \
                 cores and one disk), so every wall-clock figure here is inflated by it, the \
                 clean-link and fsync-bound ones most; the simulated figures are not affected"
            }
        );

        let _ = writeln!(s, "## Targets\n");
        let _ = writeln!(s, "| figure | target | measured | |\n|---|---|---|---|");
        let ms_le = |d: Option<Duration>, limit_ms: u64| {
            d.is_some_and(|d| d <= Duration::from_millis(limit_ms))
        };
        let runs_failed = |st: &Stats| format!("{} runs, {} failed", st.runs, st.failed);
        // A p95 of a lossy condition over fewer runs moves by a hundred milliseconds from run to
        // run: say so beside the verdict.
        let few = |st: &Stats| {
            if st.runs < 100 {
                format!(" (p95 of {} runs: noisy)", st.runs)
            } else {
                String::new()
            }
        };
        let _ = writeln!(
            s,
            "| time to pair, median, no impairment (namespace LAN, process starts included) | ≤ 15 ms | {} ({}) | {} |",
            ms(clean.median),
            runs_failed(&clean),
            verdict(ms_le(clean.median, 15))
        );
        let _ = writeln!(
            s,
            "| time to pair, p95, 30% loss of UDP and TCP each way, ARP spared | ≤ 400 ms | {} ({}) | {}{} |",
            ms(udp_tcp.p95),
            runs_failed(&udp_tcp),
            verdict(udp_tcp.failed == 0 && ms_le(udp_tcp.p95, 400)),
            few(&udp_tcp)
        );
        let _ = writeln!(
            s,
            "| time to pair, p95, 30% loss of all frames each way, ARP included | ≤ 1200 ms | {} ({}) | {}{} |",
            ms(all.p95),
            runs_failed(&all),
            verdict(all.failed == 0 && ms_le(all.p95, 1200)),
            few(&all)
        );
        if let Some(sl) = &sim_lossy {
            let _ = writeln!(
                s,
                "| simulated 30% loss each way: failed runs | 0 of 10,000 | {} of {} | {} |",
                sl.failed,
                sl.runs,
                verdict(sl.failed == 0 && sl.runs >= 10_000)
            );
        }
        if !self.sim_crowds.is_empty() {
            let failed = self.sim_crowds.iter().filter(|c| c.took.is_none()).count();
            let wrong: usize = self.sim_crowds.iter().map(|c| c.wrong).sum();
            let _ = writeln!(
                s,
                "| 64 simultaneous pairings, simulated: crowds with any failed pairing | 0 of 1000 | {failed} of {} ({wrong} wrong partners) | {} |",
                self.sim_crowds.len(),
                verdict(failed == 0 && wrong == 0 && self.sim_crowds.len() >= 1000)
            );
        }
        let _ = writeln!(
            s,
            "| *earlier targets:* time to pair, median, no impairment | ≤ 50 ms | {} | {} |",
            ms(clean.median),
            verdict(ms_le(clean.median, 50))
        );
        let _ = writeln!(
            s,
            "| time to pair, p95, 30% loss (both kinds) | ≤ 2 s | {} / {} | {} |",
            ms(udp_tcp.p95),
            ms(all.p95),
            verdict(ms_le(udp_tcp.p95, 2000) && ms_le(all.p95, 2000))
        );
        match crowd64 {
            Some(c) => {
                let _ = writeln!(
                    s,
                    "| 64 simultaneous pairings (namespace LAN) | all correct, all done ≤ 5 s | {}/64 correct, {} wrong partners, all done in {} | {} |",
                    c.right,
                    c.wrong,
                    ms(Some(c.took)),
                    verdict(c.right == 64 && c.took <= Duration::from_secs(5))
                );
            }
            None => {
                let _ = writeln!(s, "| 64 simultaneous pairings (namespace LAN) | all correct, all done ≤ 5 s | not run | **miss** |");
            }
        }
        let _ = writeln!(
            s,
            "| peak RSS of a pairing run | ≤ 16 MiB | {} | {} |",
            rss_max.map_or("not measured".to_owned(), |k| format!(
                "{:.1} MiB",
                k as f64 / 1024.0
            )),
            verdict(rss_max.is_some_and(|k| k <= 16 * 1024))
        );
        let _ = writeln!(
            s,
            "| release binary, stripped | ≤ 6 MB | {} | {} |\n",
            self.binary_size
                .map_or("not measured".to_owned(), |b| format!(
                    "{:.2} MB ({b} bytes)",
                    b as f64 / 1e6
                )),
            verdict(self.binary_size.is_some_and(|b| b <= 6_000_000))
        );

        let _ = writeln!(s, "## Time to pair\n");
        let _ = writeln!(
            s,
            "Timed from the start of the second side (the first side has shown its code) until \
             both have exited. On the namespace LAN this is the real release binary on two hosts \
             whose veths meet on a Linux bridge in a third (switch) namespace, each side forked \
             and exec'd as its user by a thread of the benchmark that has entered its host's \
             network and UTS namespaces, with no program in between, as from a shell (starting \
             `true` so takes {}, included; the end-to-end tests' wrappers, `ip netns exec … \
             unshare … setpriv … env`, which the timings of earlier reports included, take {}; \
             one `nsenter`, which the last report's did, 2.92 ms), and its exit seen by a thread \
             blocked in `waitpid` (no polling), with a fresh `~/.ssh`, no remote and empty neighbour caches \
             (ARP and IPv6) before each run, as when two machines meet for the first time; it \
             includes the sshd check, key generation, the writes to `~/.ssh` and the git config. \
             Loss is made by nftables at each host's netdev ingress hook (`numgen random`), so \
             each way; a drop at output would hand the sender EPERM. The kernel has no netem, so \
             delay, duplication and reordering are measured in the protocol state machine's \
             simulated network in virtual time (`benches/pairing/sim.rs`: the real `Machine` on \
             both sides, the sshd check as SYN and SYN-ACK frames with the kernel's SYN \
             retransmissions, two address families, condition (e) with neighbour resolution \
             from cold caches, CPU time not counted).\n",
            ms(self.wrapper),
            ms(self.test_wrapper)
        );
        let _ = writeln!(
            s,
            "| condition | measured with | runs | failed | median | p95 | max |\n|---|---|---|---|---|---|---|"
        );
        let row = |s: &mut String, name: &str, how: &str, st: &Stats| {
            let _ = writeln!(
                s,
                "| {name} | {how} | {} | {} | {} | {} | {} |",
                st.runs,
                st.failed,
                ms(st.median),
                ms(st.p95),
                ms(st.max)
            );
        };
        for c in &self.lan {
            let k = c.counters;
            let lost = match c.loss {
                Loss::None => String::new(),
                Loss::UdpTcp(_) => format!(
                    " (dropped {} of {} frames: {:.1}%)",
                    k.lost,
                    k.packets,
                    100.0 * k.lost as f64 / k.packets.max(1) as f64
                ),
                Loss::AllFrames(_) => format!(
                    " (dropped {} of {} frames: {:.1}%; of them {} of {} ARP frames)",
                    k.lost + k.lost_arp,
                    k.packets,
                    100.0 * (k.lost + k.lost_arp) as f64 / k.packets.max(1) as f64,
                    k.lost_arp,
                    k.arp
                ),
            };
            row(
                &mut s,
                &format!("{}{lost}", c.loss.describe()),
                "namespace LAN, real binary",
                &timed_stats(&c.git_pair),
            );
        }
        for (c, runs) in conditions.iter().zip(&self.sim) {
            row(
                &mut s,
                c.name,
                "simulated network, virtual time",
                &sim_stats(runs),
            );
        }
        let mut why: Vec<(String, usize)> = Vec::new();
        for (c, runs) in conditions.iter().zip(&self.sim) {
            for r in runs {
                if let Run::Failed(reason) = r {
                    let key = format!("{}: {reason}", c.name);
                    match why.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, n)) => *n += 1,
                        None => why.push((key, 1)),
                    }
                }
            }
        }
        if !why.is_empty() {
            let _ = writeln!(s, "\nWhy simulated runs failed:\n");
            for (k, n) in why {
                let _ = writeln!(s, "- {k}: {n}");
            }
        }
        if let Some(c) = clean_c {
            let n = c.git_pair.len().max(1) as f64;
            let _ = writeln!(
                s,
                "\nOn the clean namespace LAN a pairing put {:.1} UDP datagrams and {:.1} frames \
                 in all (with the TCP sshd check, ARP and neighbour discovery; {:.1} ARP frames) \
                 on the wire, counted by nftables at both ingress hooks.",
                c.counters.udp as f64 / n,
                c.counters.packets as f64 / n,
                c.counters.arp as f64 / n,
            );
        }
        let failed: Vec<&Timed> = self
            .lan
            .iter()
            .flat_map(|c| &c.git_pair)
            .filter(|t| !t.ok)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                s,
                "\nFailed git pair runs on the namespace LAN, their last lines:\n\n```text"
            );
            for t in failed.iter().take(5) {
                let tail: Vec<&str> = t
                    .detail
                    .lines()
                    .filter(|l| l.contains("\"failed\"") || l.starts_with("code"))
                    .collect();
                let _ = writeln!(s, "{}", tail.join("\n"));
            }
            let _ = writeln!(s, "```");
        }
        if let Some(p) = &self.phases {
            let _ = writeln!(
                s,
                "\n**Where the time of a clean pairing goes** (median of 15 pairings on the \
                 namespace LAN, each side traced by `strace --seccomp-bpf` at the few syscalls \
                 that mark a phase, which costs each of those a few microseconds; the phases \
                 follow B, the side that types the code, which is on the critical path):\n"
            );
            let _ = writeln!(s, "| phase | what happens | median |\n|---|---|---|");
            let rows = [
                (
                    "starting a program",
                    "fork and exec as the host's user from a thread inside its namespaces, as from a shell (measured apart by running `true` the same way; the traced runs themselves start through the end-to-end tests' wrappers and `strace`)",
                    self.wrapper,
                ),
                (
                    "start",
                    "from `execve` to the first hello: loading, the repository (libgit2), the user, a new ed25519 login key, the host keys, the interfaces, whether this machine's own sshd listens (asked of the kernel's socket diagnostics), the sockets",
                    Some(p.start),
                ),
                (
                    "exchange",
                    "from the first hello to the first connect to the peer's sshd: A answers, both SPAKE2 halves, the encrypted payloads",
                    Some(p.exchange),
                ),
                (
                    "sshd check and confirmation",
                    "TCP connects to the peer's sshd (the most preferred address alone for a moment), then the MACs both ways",
                    Some(p.check),
                ),
                (
                    "setup",
                    "the ssh files and the git remote in one journaled transaction (the lock and the directories; the files and the journal written and synced in one round, put in place, their directories synced, the journal removed: three rounds of fsyncs, one fsync after another, each file's writeback started first), then both sides' ends; A's setup runs beside B's",
                    Some(p.setup),
                ),
                (
                    "finish",
                    "the last acknowledgements, the exits of both sides (A's setup runs beside B's)",
                    Some(p.finish),
                ),
                (
                    "total from B's execve",
                    "(the fork and exec before it come on top)",
                    Some(p.total),
                ),
            ];
            for (phase, what, took) in rows {
                let _ = writeln!(s, "| {phase} | {what} | {} |", ms(took));
            }
        }
        if let Some(f) = &self.neighbour_floor {
            let pc = |x: f64| format!("{:.1}%", 100.0 * x);
            let _ = writeln!(
                s,
                "\n**The floor that neighbour discovery sets (30% of all frames lost, ARP \
                 included).** Two hosts that have never talked must learn each other's \
                 link-layer address before the first unicast frame between them leaves: the \
                 kernel queues the frame, sends an ARP request (IPv4) or neighbour solicitation \
                 (IPv6) at once, and resends it only every second (`retrans_time_ms` 1000, 3 \
                 tries). A request that arrives also teaches the asker's address to the asked \
                 host. Modelled with each frame lost at 30% and both hosts asking at once \
                 (`sim::neighbour_floor`, {} trials): over one address family, the two hosts \
                 know each other only after the first resend (≥ 1 s) in **{}** of first \
                 meetings and after the second (≥ 2 s) in {}; over IPv4 and IPv6 resolved \
                 independently, taking whichever completes first, in **{}** and {}. So a \
                 pairing whose unicast exchange waits for one family has about {} of its runs \
                 at 1 s or more and a p95 of 1 s plus the rest of the run (and {} of runs at \
                 2 s or more); only a pairing that waits for whichever family resolves first \
                 stays below the 5% a p95 allows, and then by little. That is the floor the 1 s \
                 ARP retransmission sets: about 1 s for the slowest one run in twenty as soon \
                 as one family is waited for; just below it when both are raced. But in a \
                 pairing the two hosts do not ask at once: the first host's request, when it \
                 arrives, teaches the second host the first's address, so the second never asks, \
                 and a lost answer is made good only by the first host's resend a second later. \
                 Modelled so (the second host asks only if the first one's request was lost), \
                 with both families raced, the two hosts know each other only after 1 s or more \
                 in **{}** of first meetings and after 2 s or more in {}. The TCP check of the \
                 peer's sshd needs both directions resolved (SYN one way, SYN-ACK the other), so \
                 about one pairing in {} cannot finish before the kernel's first resend. Until \
                 the transport copied datagrams to unresolved neighbours to the multicast group \
                 (`transport::neighbour`), the whole UDP exchange waited for that resend too and \
                 ran its lossy round trips only after it; now the exchange runs beside the \
                 resolution and only the check waits, so the floor of a p95 is that resend plus \
                 one connection, not the resend plus the rest of the exchange.",
                f.trials,
                pc(f.one_family_1s),
                pc(f.one_family_2s),
                pc(f.either_family_1s),
                pc(f.either_family_2s),
                pc(f.one_family_1s),
                pc(f.one_family_2s),
                pc(f.answered_1s),
                pc(f.answered_2s),
                (1.0 / f.answered_1s.max(1e-9)).round(),
            );
        }
        self.render_wormhole(&mut s, o);

        let _ = writeln!(s, "\n## Crowds\n");
        let _ = writeln!(
            s,
            "K pairings at once on one bridge: the two hosts are each joined by a veth to a Linux \
             bridge in a third (switch) namespace; K processes on each of the two hosts, \
             each in its own repository, each pairing with its own generated code (a random \
             channel 1-999 and three words). All K first sides start and show their codes, then \
             all K second sides start; timed from then until every process has exited. \
             Datagrams are counted by nftables at both ingress hooks (every datagram between the \
             hosts crosses one of them once).\n"
        );
        let _ = writeln!(
            s,
            "| K | all done in | right partner | wrong partner | pairings sharing a channel | UDP datagrams per pairing | packets per pairing |\n|---|---|---|---|---|---|---|"
        );
        for c in &self.crowds {
            let _ = writeln!(
                s,
                "| {} | {} | {}/{} | {} | {} (on {} channels) | {:.1} | {:.1} |",
                c.k,
                ms(Some(c.took)),
                c.right,
                c.k,
                c.wrong,
                c.sharing_channel,
                c.shared_channels,
                c.counters.udp as f64 / c.k as f64,
                c.counters.packets as f64 / c.k as f64
            );
        }
        if !self.sim_crowds.is_empty() {
            let (shared, all_right, wrong, st) = crowd_figures(&self.sim_crowds);
            let n = self.sim_crowds.len();
            let _ = writeln!(
                s,
                "\nThe same with {} pairings in the simulated network (no impairment, virtual \
                 time, the sshd check as SYN and SYN-ACK frames), {n} trials with fresh random codes: \
                 {shared} of {n} trials had pairings sharing a channel number ({:.0}%; the \
                 birthday bound for 64 codes in 999 channels is 87%), {all_right} of {n} trials \
                 paired every pairing right, {wrong} sides verified a wrong partner; all done in \
                 median {}, p95 {} of virtual time.",
                crate::SIM_CROWD,
                100.0 * shared as f64 / n as f64,
                ms(st.median),
                ms(st.p95)
            );
            let mut why: Vec<(&str, usize)> = Vec::new();
            for c in self.sim_crowds.iter().filter(|c| c.took.is_none()) {
                let reason = c.failure.unwrap_or("unknown");
                match why.iter_mut().find(|(k, _)| *k == reason) {
                    Some((_, n)) => *n += 1,
                    None => why.push((reason, 1)),
                }
            }
            for (reason, count) in why {
                let _ = writeln!(
                    s,
                    "- trials with a failed pairing, first failure \"{reason}\": {count}"
                );
            }
        }
        let failures: Vec<&String> = self.crowds.iter().flat_map(|c| &c.failures).collect();
        if !failures.is_empty() {
            let _ = writeln!(s, "\nSides that did not pair:\n\n```text");
            for f in failures {
                let _ = writeln!(s, "{f}");
            }
            let _ = writeln!(s, "```");
        }

        let _ = writeln!(s, "\n## Footprint\n");
        let _ = writeln!(s, "| figure | value |\n|---|---|");
        let _ = writeln!(
            s,
            "| peak RSS of a pairing run (GNU time, both sides of {} runs: max / median) | {} |",
            self.peak_rss_kib.len() / 2,
            match rss_max {
                Some(max) => {
                    let mut v = self.peak_rss_kib.clone();
                    v.sort();
                    format!(
                        "{:.1} MiB / {:.1} MiB",
                        max as f64 / 1024.0,
                        v[v.len() / 2] as f64 / 1024.0
                    )
                }
                None => "not measured".to_owned(),
            }
        );
        let _ = writeln!(
            s,
            "| release binary (`strip = true`, thin LTO) | {} |",
            self.binary_size
                .map_or("not measured".to_owned(), |b| format!(
                    "{:.2} MB",
                    b as f64 / 1e6
                ))
        );
        let _ = writeln!(
            s,
            "| start-up: `git pair --help`, median of 50 | {} |\n",
            ms(self.help_startup)
        );

        if let Some(g) = &self.guess {
            let _ = writeln!(s, "## Cost of a guess\n");
            let _ = writeln!(
                s,
                "git-annex's assistant multicast each pairing message with `HMAC-SHA1(phrase, show \
                 message)` (`Utility/Verifiable.hs`). One recorded message lets anyone test phrases \
                 offline. The benchmark implements that check (`benches/pairing/guess.rs`) against \
                 a realistic recorded `PairReq` of {} bytes (host, user, directory, 2048-bit \
                 ssh-rsa key, UUID, address), checks that it finds a planted phrase, and counts \
                 candidates on one core: **{:.2} million phrases per second** ({} tested).{}\n",
                g.message_bytes,
                g.per_second / 1e6,
                g.tested,
                if g.found_planted { "" } else { " **The planted phrase was not found: the figure is suspect.**" }
            );
            let _ = writeln!(
                s,
                "| phrase space (assumption) | candidates | one core, all | one core, half on average |\n|---|---|---|---|"
            );
            for sp in guess::spaces() {
                let all = sp.size / g.per_second;
                let _ = writeln!(
                    s,
                    "| {} | {:.3e} | {} | {} |",
                    sp.name,
                    sp.size,
                    human_time(all),
                    human_time(all / 2.0)
                );
            }
            let _ = writeln!(
                s,
                "\ngit-pair gives an attacker nothing to test offline: the code only enters SPAKE2, \
                 whose messages do not depend on it for anyone without the secret exponent. Every \
                 guess is an online session, and a run allows **{MAX_FAILURES} guesses**: at most \
                 {MAX_FAILURES} sessions may get key material without verifying, then the run stops \
                 (exit 4). With a generated code (2^30 word combinations; the channel number is \
                 public) one run gives an attacker a {MAX_FAILURES} in 2^30 chance, about 1 in {:.0} \
                 million. Tested by `a_guessing_attacker_gets_three_guesses_then_the_run_stops`, \
                 `an_attacker_who_stalls_after_a_guess_still_spends_it` and \
                 `a_forged_end_never_refunds_a_guess` in `src/protocol/machine/tests.rs`, which count \
                 the sessions that received anything derived from the victim's PAKE key.\n",
                2f64.powi(30) / f64::from(MAX_FAILURES) / 1e6
            );
        }

        let _ = writeln!(s, "## Crypto micro-benchmarks (criterion, median)\n");
        match &self.criterion {
            Some(results) if !results.is_empty() => {
                let _ = writeln!(s, "| benchmark | median |\n|---|---|");
                for (id, ns) in results {
                    let _ = writeln!(s, "| `{id}` | {} |", nanos(*ns));
                }
            }
            _ => {
                let _ = writeln!(s, "Not run (`cargo bench --bench crypto`).");
            }
        }
        let _ = writeln!(s, "\n## What was found\n\n{}", FINDINGS.trim());
        s
    }
}

impl Report {
    /// magic-wormhole beside git pair: the interleaved runs of each namespace LAN condition.
    fn render_wormhole(&self, s: &mut String, o: &Options) {
        let _ = writeln!(s, "\n## Beside magic-wormhole\n");
        if self.lan.iter().all(|c| c.one_way.is_empty()) {
            let _ = writeln!(
                s,
                "Not run: the benchmark was not given `--wormhole-venv` (`scripts/bench` makes \
                 the virtualenv and passes it)."
            );
            return;
        }
        let _ = writeln!(
            s,
            "magic-wormhole {} (`wormhole`, with `magic-wormhole-mailbox-server` and \
             `magic-wormhole-transit-relay`, installed by `scripts/bench` into a virtualenv from \
             the Python package index) on the same LAN in the same run: its mailbox and transit \
             relay run on a third namespace host on the bridge, whose ingress is spared (so a \
             message from one side to the other meets one lossy ingress, as git pair's do). Run \
             by run, the tools take turns: a git pair run, then wormhole sending one key one way \
             (A `wormhole send KEY.pub`, B `wormhole receive CODE`), then both keys both ways \
             (each side sends its key with its own code and receives the other's at once, as \
             `git annex p2p --pair` does), each from empty neighbour caches, for the first {} \
             runs of each condition. Timed the same way: from the start of the side that types \
             the code (the other has shown it) until every process has exited; both run as the \
             hosts' users, started the same way (forked inside the host's namespaces). Ratio: wormhole's figure over git \
             pair's.\n",
            wormhole_version(o),
            o.compare_runs
        );
        let _ = writeln!(
            s,
            "| condition | runs | git pair (both sides paired): median / p95 | wormhole, one key one way | wormhole, both keys both ways | ratio one way: median / p95 | ratio both ways: median / p95 |\n|---|---|---|---|---|---|---|"
        );
        for c in &self.lan {
            let n = c.one_way.len();
            let gp = timed_stats(&c.git_pair[..n.min(c.git_pair.len())]);
            let one = timed_stats(&c.one_way);
            let both = timed_stats(&c.both_ways);
            let cell = |st: &Stats| {
                let failed = if st.failed > 0 {
                    format!(" ({} failed)", st.failed)
                } else {
                    String::new()
                };
                format!("{} / {}{failed}", ms(st.median), ms(st.p95))
            };
            let ratio = |w: &Stats| {
                let r = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
                    (Some(a), Some(b)) if !b.is_zero() => {
                        format!("{:.1}×", a.as_secs_f64() / b.as_secs_f64())
                    }
                    _ => "–".to_owned(),
                };
                format!("{} / {}", r(w.median, gp.median), r(w.p95, gp.p95))
            };
            let _ = writeln!(
                s,
                "| {} | {n} | {} | {} | {} | {} | {} |",
                c.loss.describe(),
                cell(&gp),
                cell(&one),
                cell(&both),
                ratio(&one),
                ratio(&both)
            );
        }
        let _ = writeln!(
            s,
            "\nWhat wormhole leaves undone that git pair does in the time above (both sides): \
             sending the other key back (the one-way column moves one public key; the both-ways \
             column needs two codes), adding the key to `~/.ssh/authorized_keys` (with a forced \
             command that confines the peer to one repository), pinning the peer's sshd host key \
             (`known_hosts` and an ssh alias), checking that the peer's sshd answers, and adding \
             the git remote. wormhole's times also include starting the Python interpreter and \
             Twisted (`wormhole --version` alone takes about half a second here), and it needs a \
             mailbox server both sides reach; git pair needs no server.\n"
        );
        let failed: Vec<&Timed> = self
            .lan
            .iter()
            .flat_map(|c| c.one_way.iter().chain(&c.both_ways))
            .filter(|t| !t.ok)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                s,
                "{} wormhole runs failed (no exit 0 within 60 s, or the key did not arrive).\n",
                failed.len()
            );
        }
    }
}

/// `wormhole --version` of the virtualenv, e.g. "0.24.0".
fn wormhole_version(o: &Options) -> String {
    let Some(venv) = &o.wormhole_venv else {
        return String::new();
    };
    let bin = venv.join("bin").join("wormhole");
    let v = sh(&bin.to_string_lossy(), &["--version"]);
    v.rsplit(' ').next().unwrap_or(&v).to_owned()
}

/// What profiling found where a figure missed, and what changed; written by
/// hand, kept with the generator so that a new run keeps it.
const FINDINGS: &str = r#"
- **Issue 13, the clean link, fifth round: the sshd check no longer
  makes the sshds work.** Profiled with `perf record -a` over 40 clean
  pairings (a build with symbols), the two sshds used as much CPU per
  pairing as both sides of git-pair together (the benchmark's own count:
  11.8 against 11.0 ms), all of it for the two checks of the peer's sshd:
  OpenSSH 9.2 forks and re-executes itself for every connection it
  accepts. On the two cores that carry both hosts that CPU was the
  critical path (in a traced run, the first side's check thread waited 6
  ms for a core while its sshd re-executed itself for the other side's
  check). A check only learns that something answers the SYN, and now it
  stops there (`probe::half_open`): `TCP_QUICKACK` is off before the
  connect, which makes Linux hold back the handshake's last ACK while the
  SYN-ACK still completes the connect, and the socket is closed with
  `SO_LINGER` 0, so a reset reaches the peer's kernel while the
  connection is still half made. The kernel drops it; sshd never sees it
  (no process, no line in its log). Health checkers such as HAProxy's do
  the same. A kernel that sent the ACK at once would get the connection
  accepted and reset, as a plain connect closed at once is. The
  preflight's connection to this machine's own sshd (only when
  `sock_diag` does not answer) is half-open too. The end-to-end test
  `pair_then_push_and_fetch_over_ssh` now checks that neither sshd logged
  a connection during the pairing (with the previous binary it fails:
  each sshd logged the other side's check). A/B on the namespace LAN, 40
  clean runs each, interleaved, load 1.2: median 17.0 -> 9.5 ms, p95
  20.3 -> 11.2 ms, sshd CPU per pairing 11.8 -> 0.0 ms, git-pair's 11.0
  -> 10.2 ms. Under 30% loss, 100 runs each against main 018e4ab: ARP
  spared, median 98.0 -> 98.8 ms, p95 223.1 -> 263.2 ms; ARP included,
  median 123.2 -> 156.1 ms, p95 1175.3 -> 1201.9 ms; sshd CPU 13.5 ->
  0.8 and 20.3 -> 2.3 ms (every reconnect under loss cost a process
  before). Those loss figures are within what one build gives from batch
  to batch (the same build, ARP included: p95 1149.6 ms over 300 runs,
  1184.6 ms over 200).
- **Issue 13, ARP included: the check's preference no longer waits out a
  resend.** The ARP-included runs captured on the bridge port (tcpdump):
  in the slow ones (about one in seven waits for the kernel's ARP or
  neighbour-discovery resend, a second in), the checks got through at
  1.00-1.06 s and the pairing ended 60-200 ms later. Part of that was the
  check's preference for the address the peer's datagrams came from (its
  IPv4 address): the IPv6 link-local connection got through on the
  resend, and the IPv4 address, whose SYNs went out but whose SYN-ACKs
  waited for the peer's own resend (its kernel had not resolved this
  side), was then given twice that second more, capped at 4 retransmission
  units (about 80 ms), for nothing. The extra wait now ends 4 units after
  the check began (by then the preferred addresses have had that many
  fresh connections): on a clean LAN it is unchanged (twice a
  millisecond), and after a resend it is gone. A/B, ARP included, 150
  runs each against the half-open build: p95 1208.0 -> 1071.7 ms, median
  119.7 -> 121.4 ms; clean 8.6 against 8.7 ms; ARP spared, two batches
  (100 and 150 runs): median 94.0 / 99.0 -> 114.0 / 94.3 ms, p95 168.5 /
  244.6 -> 260.2 / 220.7 ms, noise both ways. The simulation does not
  model the preference (its check ends at the first SYN-ACK), so its
  figures do not move.
- **Issue 13, ARP included: copies by multicast while a neighbour is
  unresolved.** Every directed message went by unicast, so when an ARP
  request or answer was lost the whole exchange waited in the kernel's
  neighbour queue for its resend a second later. The transport now asks
  the kernel (netlink `RTM_GETNEIGH`, as `ip neigh`) about an address it
  has heard from and sends to: if it is still unresolved 5 ms after the
  first datagram to it (`MIRROR_AFTER`, so that a LAN that answers ARP at
  once gets no copy at all), every datagram to it also goes to the
  pairing group on its family and interface, from the same socket, until
  it resolves (`transport::neighbour`; the machine is unchanged and sees
  a copy as the datagram). The exchange then no longer waits for the
  neighbour; the sshd check still does, and became the first to need it:
  Linux gives a resolution up after three requests a second apart ("no
  route to host"), so the check now lasts 6 s (was 3 s: a firewall that
  drops connections is named 3 s later) and a connection that failed so
  is tried again, not taken as final. Three things in the namespace A/B
  that the simulation does not model made the first build slower there
  (100 runs each against ec76303: p95 1534 -> 2083 ms, 8 runs against 3
  over 2 s, 1 failed with "no route to host"): a peer heard over IPv4
  alone had its link-local IPv6 address skipped by the check (no scope),
  so the check raced no second family (it now gets the scope of the
  interface the IPv4 source is on); the grace a more preferred address
  gets once another connected was twice the time that took, a second or
  two when that time was a lost ARP (now at most 4 retransmission units,
  and the grace alone when the kernel says the preferred address is
  still being resolved); and an address that connected during that grace
  was dropped at the deadline. Simulated, 10,000 runs each, same seeds,
  main 3ae9540 -> this change: (e) median 151.0 -> 96.2 ms, p95 1551.3 ->
  1071.0 ms, but 0 -> 1 failed (every resolution frame of both families
  lost for 6 s: the sshd did not answer); (b) 71.0 / 211.2 ms, 0 failed,
  unchanged (no neighbour resolution there, so no copies). On the
  namespace LAN the gain is not measurable: interleaved A/B, 100 runs per
  build per batch (two against ec76303, the last against 3ae9540), load
  average 1-3, the fraction of runs that wait for the kernel's first
  resend is the same (main 58 of 400 runs over 1 s, this change and its
  last variants 47 of 300), because the TCP check needs the same
  resolution the exchange used to wait for, and on this LAN what follows
  the resend was already short: p95 main 1608.8 / 1466.2 / 1227.2 ms
  against this change 1107.6 / 1226.4 / 2137.8 ms (the last batch, after
  merging main's stagger, with 6 runs over 2 s against 2), medians 139 /
  141 / 171 against 118 / 165 / 179 ms, none failed in the last 300 runs.
  The floor is the one described above: about one pairing in seven waits
  for the resend whatever the UDP exchange does, so the 1200 ms p95 is
  met or missed by the 50-250 ms after it. Clean link, 40 runs against
  3ae9540: median 17.1 -> 17.2 ms, 35.0 -> 35.1 UDP datagrams per pairing
  (no copies), sshd CPU 13.0 -> 11.8 ms. What the copies do show (every
  host on the LAN sees them while the peer is unresolved; they are the
  directed messages, sealed or safe to see) is in doc/PROTOCOL.md and
  SECURITY.md; the end-to-end test
  `the_exchange_goes_by_multicast_copies_while_arp_fails` drops every ARP
  frame at one host: the two sides now verify and name the sshd, where
  before they never got past the PAKE.
- **Issue 13, the clean link, fourth round: what the cores and the disk
  wait for.** Traced again (`--trace`, a few syscalls), a clean pairing
  still waited on three things. (1) The fsyncs of the transaction ran on a
  thread each: ext4's journal (jbd2) makes a synchronous commit from a
  thread other than the last one wait a little for more, so 8 small files
  and their directory took 4-5 ms synced at once and 1.5 ms one after
  another (two processes doing it at once: 3.5-4.5 against 1.8 ms; Python
  on this disk, 40 rounds each). They are now synced one after another,
  after every file's writeback has been started together
  (`POSIX_FADV_DONTNEED`, which Linux turns into a writeback; a hint
  only, durability rests on the fsyncs): 0.8 ms for the same files, 2.65
  against 3.4-4.3 ms with two processes. The last report's claim that
  concurrent fsyncs share commits does not hold on this machine. (2) The
  check of the peer's sshd connected to every address at once, and
  OpenSSH forks and re-executes itself for each connection (5-6 ms of CPU
  each, on the two cores that carry both hosts): the most preferred
  address now goes alone for a quarter of the retry unit (5 ms on a LAN,
  `probe::stagger`), counted from when its thread began to connect, so a
  clean pairing costs the two sshds two processes instead of three. In
  the simulation that costs a little where a SYN is lost: (b) p95 211.1
  -> 216.0 ms, median 71.0 -> 71.1 ms (4000 runs each); (e) p95 1700.9 ->
  1691.0 ms. (3) Tried and backed out: the side whose key confirmation
  goes first waits for the other's, and it wrote the pairing ahead
  meanwhile (the journal and every file's temporary copy written and
  synced under the lock, nothing in place, put in place once verified;
  crash-tested). A/B, 60 runs each: 19.0 against 19.0 ms median. The
  critical path is the side that confirms last: it is verified at once,
  so it has no wait to use, and its whole setup stays on the path.
  Measured A/B on the namespace LAN, alternating run by run, while a
  helper built and tested beside it: fsyncs one after
  another 19.5 -> 18.3 ms median (40 runs each, load 2.2-2.9); the
  stagger 20.5 -> 16.8 ms (40, load 2.5; sshd CPU per pairing 15.8 ->
  12.8 ms); writeback started first 18.8 -> 17.9 ms (40, load 2); the
  stagger's clock from the connection's start 16.9 -> 16.1 ms (40, load
  1.2). These A/B figures move by a millisecond or two from one run to
  the next under such load. The benchmark itself: each side is now
  forked and exec'd by a thread that has entered its host's namespaces (no `nsenter`, whose 2.92
  ms per start the last report's figures included), its exit is seen by
  a thread blocked in `waitpid` (it was polled every millisecond: up to a
  millisecond late), and the file system is synced after each run's reset
  (the harness's writes were committed by the pairing's first fsync).
  Main's binary measured both ways: 22.6 ms median the old way, 19.5 ms
  the new (40 runs each, separate runs, load about 2.4).
- **Issue 13, the clean link, third round: CPU, not the network.** Each
  run now counts CPU time: the reaped children of the benchmark (both sides
  of git-pair) and of both hosts' sshd (the processes it starts for
  connections), from `/proc/PID/stat`. Under the load of other builds (load
  average 5-7), a clean pairing cost 22 ms of CPU in git-pair (both sides)
  and 26 ms in sshd: OpenSSH 9.2 forks and re-executes itself for every
  connection it accepts (5-6 ms of CPU each here), and a pairing made four
  (each side's check that its own sshd answers, and each side's check of
  the peer's). On two cores that carry both hosts, that CPU is the critical
  path. The preflight now sees its own sshd listening in the kernel's
  socket diagnostics (netlink `sock_diag`, listening sockets only; a
  connection only when they do not answer): A/B, alternating run by run
  (`--ab`), 40 and 50 runs each: median 38.5 -> 32.6 ms and 44.6 -> 33.3
  ms, sshd CPU per pairing 26.2 -> 13.8 ms. The two checks of the peer's
  sshd remain: they are the point. Each side is now started by one
  `nsenter` into its host's namespaces (1.6 ms per start, against 7.3 ms
  for the end-to-end tests' five wrappers, which the figures before
  included). Measured apart, by an A/B against a build with every fsync
  removed (not kept), the transaction's three rounds of fsyncs cost 6.4 ms
  of the median (27.2 against 20.8 ms, 30 runs each) while both hosts write
  to one disk at once. Tried and backed out: reading `/proc/net/tcp` for
  the preflight (it walks every TCP socket of the machine: git-pair's CPU
  per pairing went from 20.8 to 32.8 ms); starting the peer's second
  address one timeout after the first (Happy Eyeballs: one sshd process
  less per side, no measurable gain on the clean LAN, and in the
  simulation 10 ms more median and 13 ms more p95 at 30% loss, as racing
  both families hides a lost SYN); closer late reconnects in the check (no
  change in the simulation, whose slowest runs wait in the exchange).
- **Issue 13, the clean link: fsyncs were most of a pairing.** Traced one
  syscall class at a time (`--trace DIR --trace-only fsync,rename,...`, which
  stops the process only at those), a pairing's setup made 14 fsyncs per
  side, one after another: for each of the six files in `~/.ssh` the
  temporary file and then its directory (two journal commits per file on
  ext4), plus one for each new directory. A transaction now stages every
  file first (`ssh_files::atomic::Temp`), fsyncs all of them at once (a
  concurrent fsync joins the journal commit under way), renames them in
  order and fsyncs each directory once: two rounds of commits instead of
  fourteen, with the same guarantee (a file is in place only once its bytes
  are on disk; the rollback log is kept as each one lands). Six fsyncs on
  this disk take 4 ms one after another and 1.4 ms at once (best of 20,
  `python3` on the same file system). The run above also wrote the git
  remote (libgit2 rewrites `.git/config` under its lock once per entry, nine
  times) on a second thread while the ssh files were written; that change
  was dropped when the two-phase end of a pairing rewrote the setup, and the
  remote is written after the ssh files again: under load its nine
  lock-write-rename cycles are now the longest part of the setup.
  Measured A/B, interleaved in batches of 10 clean pairings on the namespace
  LAN while other builds loaded the machine (load average 13-15): the build
  before these changes 98.2 ms median, after 79.2 ms (40 runs each, both
  changes in). The
  table "Where the time goes" above shows what is left. Nothing else on the
  path was worth removing: no sleep, no DNS lookup, one netlink dump, a
  login key costs 37 µs.
- **Issue 13, the clean link again: a scratch repository, then the rounds
  of fsyncs.** After the journaled transaction (crash safety) landed, the
  same trace, stopped at a few syscalls plus marks written to stderr by a
  build instrumented for it (not kept), showed B's setup at 64 ms from
  "verified" to the remote event (median of 10 runs, load 4-5 on the 2
  cores): 33 ms of it libgit2 planning the new
  `.git/config` on a scratch repository (`git init` of a bare repository:
  nine directories and four files, then one lock-write-rename cycle per
  variable, then all of it removed), 8 ms creating the six ssh files'
  temporary files one after another, 12 ms in the flush, 6 ms for the lock
  and `~/.ssh`. Every file creation waited about a millisecond for the
  file system's journal while other work wrote to the disk. Changes:
  `repo::append_remote` writes a new remote's section itself (pure; byte
  for byte what libgit2 writes, checked by a test against libgit2 for
  quoting and escaping, and at run time by libgit2 reading the result back
  from an in-memory file: any difference, a re-pair or a config that names
  the remote already falls back to libgit2 on the scratch copy); staged
  files stay in memory until the flush; the flush moves the journal into
  place first and then syncs the files, the journal and the new
  directories in one round (before: the files, then the journal's
  directory: two), so a transaction takes three rounds of fsyncs (files
  and journal; directories after the renames; the journal's removal) and
  the guarantees are those of before (nothing changes before the journal
  and the new bytes are on disk; a power cut in that round leaves at worst
  an empty journal, which the next run removes, nothing having changed);
  the check of this machine's own sshd connects to loopback alone first
  (each connection the sshd accepts costs it a process, and connecting to
  every address at once cost 2.9 ms of the start under load).
  Measured A/B, interleaved in 6 batches of 10 clean pairings on the
  namespace LAN, process starts and the namespace wrappers included, load
  average 3.5-6.4 (two other helpers building and testing): main 103.9 ms
  median (p95 149.0 ms), this change 42.9 ms (p95 136.8 ms), 60 runs each,
  none failed; per batch the medians were 59-129 ms against 36-99 ms. The
  traced phases (6 x 15 pairings each): start 7.4 -> 3.0 ms, setup 87.0 ->
  25.8 ms, total from B's execve 111.0 -> 38.9 ms; the wrappers (7.7 ms)
  are the benchmark's. **The 15 ms target is missed, and under this load it
  cannot be met**: the wrappers the timed figure includes (7.7 ms) and the
  phases other than the setup (start, exchange, check, finish: 10.5 ms)
  already exceed it, and the setup has a floor that only giving up crash
  safety would lower. Of B's setup, now 31 ms
  from "verified" to the remote event in the instrumented runs (10 runs,
  interleaved with the 64 ms above), 5 ms go to the lock, the directories,
  the repository, the names and the plans, 12 ms to creating the temporary
  files and the journal (a millisecond each while the disk is busy), 7 ms
  to the first two rounds of fsyncs and the renames between them, 2 ms to
  the journal's removal and 5.5 ms to the two sides' ends crossing (each
  side wakes up once more, on two loaded cores). Three journal commits in a
  row per side is the floor
  of a transaction that can be undone after a power cut (no rename before
  its bytes and the undo are on disk; no removal of the undo before the
  renames are); one fsync costs 0.25 ms on this disk when it is quiet and 3
  to 7 ms under the load of these runs. Left: the peer's sshd check still
  connects to every candidate address at once (a process of the peer's sshd
  each, during the peer's own setup: `transport::probe`, being reworked by
  another helper); of the 3 ms start, 1.5 ms pass before `git pair` begins
  (loading, the arguments, the check for a crashed run's journal).
- **Issue 13, 30% loss: the retransmission timeout now follows the measured
  round trip.** The simulation was rewritten to model what the namespace LAN
  has: two address families (every multicast goes out once per family, each
  copy lost on its own), neighbour resolution from cold caches (condition
  (e): requests resent every second, three tries, lost like any frame) and
  the sshd check as SYN and SYN-ACK frames. `GP_SIM_TRACE=SEED` prints one
  run frame by frame; that is how each slow run below was explained. With
  the old timers (100 ms, doubling to 1 s) it gives median 301 ms, p95
  1201 ms for (b) (4000 runs). What the traces showed, and what changed:
  the retransmission timeout is now 3 times the shortest round trip
  measured in the session (from the latest copy of the PAKE message, a
  piece, the MAC or the end to the ack that covers it), at least 20 ms and
  at most 100 ms (`machine/rtt.rs`): a LAN's round trip is well under a
  millisecond, so a lost datagram costs 20 ms instead of 100 to 1000. The
  first estimator tried (RFC 6298's smoothed mean and variance, with a 1 s
  cap) took round trips lengthened by lost acks at face value (one lost ack
  made a 60 ms sample and a 180 ms timeout) and gave p95 981 ms; the
  shortest sample, never above the initial timeout, does not. A side whose
  session is opened by the peer's PAKE message now answers with its own,
  echoing the peer's, in one datagram (it sent its PAKE first, without the
  echo, and a separate ack). 3 copies of the last ack were all lost in 1
  run of 37 at 30% loss, and the other side then lingered 2.5 s before it
  exited: 6 copies now (1 in 1400). Hellos start 50 ms apart instead of
  100 (with the 3 more final acks, most of why a clean pairing now puts
  about 37 UDP datagrams on the wire instead of 26: each hello is one per
  address family). The check of the peer's sshd paces its fresh connections by the
  peer's measured timeout (1, 2, 3, 5, 8... timeouts; 50 ms units when
  nothing was measured). Together: (b) median 81 ms, p95 341 ms, no
  failure in 10,000 runs; (d) p95 265 ms (was 319). Condition (c), 200 ms
  delay, takes 1800 ms where an older report said 1400 ms: not because of
  the measured timeout (see "the loss tail" below).
- **Issue 13, the loss tail: it was in the exchange, and its timers backed
  off too soon.** The slowest 200 of 2000 simulated runs of (b), traced
  (`GP_SIM_TRACE` takes several seeds now) and cut into phases from the
  second side's start: finding the peer 3% of their time, the PAKE
  exchange (until both sides sent their payloads) 58%, the payloads 24%,
  the sshd check 7%, the MACs 3%, the ends 4%. What the traces showed:
  before any round trip is measured, a lost PAKE message or answer cost
  the 100 ms initial timeout, then 200 ms; the side answering a hello may
  resend its PAKE message only within three times the bytes it heard from
  that address (about one per hello copy), so it waited for the joiner's
  next hello, 50, 100, 200, 400 ms apart; on a LAN, with a measured 20 ms
  timeout, the timeout doubled from the first retransmission, and at 30%
  loss each way a datagram and its acknowledgement both arrive only one
  time in two, so four failed rounds in a row (about one stall in 15) cost
  20 + 40 + 80 + 160 ms; and a first measurement lengthened by the peer's
  timer (its answer lost, its retransmission 100 ms later bringing the
  echo) gave a LAN a 100 ms timeout. Changed, in the machine's sending
  policy only (no wire change): `RTO_INITIAL` 100 -> 50 ms (also the most a
  measurement gives); the first `FLAT_RETRANSMITS` (3) retransmissions wait
  the timeout itself before it doubles, before any measurement and on a
  LAN, where a LAN is what an *unambiguous* measurement says (of something
  no copy of which went again on the timer: Karn's rule), so that a slow
  link, where a copy sent again just before the first one's acknowledgement
  measures a tiny round trip, still backs off; a side given its code keeps
  its first `HELLO_STEADY` (4) hello intervals at 50 ms (a side that
  generated its code backs off at once: its person is reading the code
  out, and the clean link's datagrams stay the same); a hello from a peer
  that still lacks a piece of our payload draws it at once. Tried and left
  out: a measured cap above the initial timeout (the lengthened first
  measurements came back), answering a peer's PAKE message that lacks ours
  with ours instead of an ack, resending on an ack that shows a gap older
  than a round trip (neither gained), Karn's rule for the timeout itself
  (too few measurements under loss: median 71 -> 91 ms), flat hellos on both
  sides (the gain in the simulation was its 500 ms head start meeting the
  first side's hello schedule). Simulated, 10,000 runs each, main (90eec57)
  -> this change: (b) median 81 -> 71 ms, p95 381 -> 211 ms, max 4.0 -> 2.8
  s, none failed; with the second side 20 ms after the first, as on the
  namespace LAN (`GP_SIM_HEAD_START_MS=20`), p95 352 -> 191 ms; (d) p95 281
  -> 225 ms; (e) p95 2001 -> 1551 ms; (c) 1800 ms both; datagrams per run
  (`GP_SIM_LIST`): clean 37.0 -> 37.0, (b) 43.6 -> 43.8, (c) 92 -> 103; 64
  pairings at once: 1000 of 1000 crowds right. On the namespace LAN, A/B
  interleaved (6 batches of 50 runs per build, main cef06a2 against this
  change on it, load average 2 to 7): 30% loss of UDP and TCP each way, ARP
  spared, median 146.6 -> 119.3 ms, p95 713.4 -> 300.3 ms, max 1857 -> 538
  ms, none of 300 failed; clean median 39.9 -> 40.2 ms, p95 60.2 -> 57.6 ms,
  36.1 -> 36.4 UDP datagrams per clean pairing (noise: 35.7 to 36.8 per
  batch for both). What is left of the simulated p95 is mostly the PAKE
  exchange under the amplification limit; the namespace LAN adds CPU time
  (process start, SPAKE2, the setup's fsyncs) on a loaded machine.
- **Issue 13, condition (c): the last round trip is the two-phase end.**
  The 1400 ms of an older report were measured at ad340b5, before protocol
  version 2 (88345b6) made the last side to verify tell its end and wait
  for its acknowledgement; the build just before the measured timeout
  (b858d24^) takes 1800 ms in its own simulation too. With 200 ms each way
  a pairing is 9 one-way trips from the second side's start: its hello
  reaches the first side (1), whose PAKE message comes back (2); its echo
  goes to the first side (3), which may then send its payload to that
  address (4); the TCP check of the first side's sshd (5, 6); its MAC
  reaches the first side (7), which verifies, tells its end (8) and waits
  for the acknowledgement (9). The last round trip keeps the two sides'
  outcomes consistent (each keeps its setup only if the other is set up);
  nothing cheap removes it.
- **Issue 13, the namespace figures of the two loss conditions are noisy
  at 60 runs.** A second run of only those two conditions, 200 runs each
  (`--conditions udp-tcp,all-frames --runs 200`, load average 3 to 4),
  gave ARP spared median 212.5 ms, p95 497.7 ms, and ARP included median
  277.1 ms, p95 1451.2 ms, none failed. So the "pass" of the ARP-spared p95
  above (399.1 ms over 60 runs) is within the noise: the 400 ms target is
  **not reliably met** on the namespace LAN. The simulation's 341 ms leaves
  out CPU time: process start, SPAKE2, the sshd check's connects and the
  setup's fsyncs, which the loaded machine stretches.
- **Issue 13, ARP: the floor, and what multicast would and would not do.**
  See the paragraph under the time-to-pair table: even with both families
  raced, a first meeting waits for the kernel's 1 s resend in about one run
  in twenty when both hosts ask at once, and in more as a pairing has it
  (the second host never asks when the first one's request reached it, so
  a lost answer costs the full second). The TCP check of the peer's sshd
  cannot avoid that wait: it needs the neighbour resolved; it already races the two families (it
  takes a less preferred address that answered while a more preferred one
  is still silent, `probe::PREFERENCE_GRACE`). Simulated (e) is median 202 ms, p95 1831
  ms (10,000 runs, none failed). Resending the protocol's datagrams also by
  multicast (which needs no neighbour resolution) was tried in the
  simulation (4000 runs each): every retransmission once more to the group took (b) to
  median 41 ms, p95 171 ms, but (e) to 22 failed runs in 4000 (the
  exchange now finished before the neighbours were resolved, and the sshd
  check's 3 s ran out when resolution failed three times in a row; 3 in
  4000 with a 5 s check) with its p95 unchanged near 2 s. That variant is
  not in the code; copies only while a neighbour is unresolved are (see
  the finding at the top).
- **Issue 13, crowds: hellos say who generated the code.** With 64 random
  channels out of 999, three or more pairings share a channel in a few
  crowds in a hundred, and their sides spent each other's three guesses:
  37 of 1000 simulated crowds had a pairing fail ("someone may be
  guessing"). A hello now carries `gen` (doc/PROTOCOL.md, Crowds): a side
  that generated its code runs no PAKE with another that did (two
  generated codes are independent), and a side given its code runs one
  with another side given its code only 500 ms after it started (in a
  crowd those are joiners of different pairings, which by then have paired
  with their generators; two sides that both typed one agreed phrase still
  pair, 500 ms later). Older peers' hellos, without the field, are answered
  as before, and older peers ignore it. Nobody gets another guess: the
  rules only leave sessions unopened. Now 0 of 1000 crowds fail. Four
  pairings on one channel (about one crowd in 1600) could still exhaust a
  side's three guesses.
- **Issue 13, the clean link: not changed in this round.** The table "Where
  the time goes" shows the setup's fsyncs and the git config writes
  (libgit2 rewrites `.git/config` under its lock once per entry) as the
  bulk; under the load of this run the 15 ms target is far off.
- **Earlier: the sshd check's reconnects.** At 30% loss a TCP connect gets
  through (SYN and SYN-ACK) one time in two, and the kernel resends a SYN
  only after 1 s: fresh connections at 150, 300, 600, 1000 and 1600 ms left
  one side in seven without an answer after 300 ms. They now start early
  (see above; every extra connection that completes costs the peer's sshd
  a fork, so they thin out).
- **Earlier: 30% loss, the sshd check, not the protocol, was the cause.**
  The first runs of this benchmark missed the 30%-loss target: the check of
  the peer's sshd was a single TCP connect per address, and a lost SYN or
  SYN-ACK is resent by the kernel only after 1 s and then 3 s.
  `transport::probe` starts fresh connections instead (see above).
- **Earlier: a one-sided pairing under loss, found by the simulation.** In
  about 1 run in 700 at 30% loss one side verified and finished while the
  other never verified. The machine now keeps its retransmission timer
  running while it lacks the peer's MAC. Test:
  `a_side_still_lacking_the_peer_mac_keeps_the_verified_peer_lingering`.
"#;
