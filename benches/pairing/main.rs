//! The whole git-pair benchmark, run by `scripts/bench`: time to pair (clean,
//! 30% loss of UDP and TCP, and 30% loss of all frames on the bridged
//! namespace LAN, magic-wormhole timed beside it run by run; 200 ms delay and
//! loss with reordering and duplication in the state machine's simulated
//! network), crowds of simultaneous pairings, footprint, and the cost of a
//! guess against git-annex's design. It writes BENCHMARKS.md.
//!
//! It needs root (network namespaces, users, sshd, nftables), like the
//! end-to-end tests whose harness (`tests/support`) it reuses; without root
//! it says why and exits with status 2. It never touches a real interface.
//!
//! `cargo bench --bench pairing -- [--out FILE] [--runs N] [--compare-runs N]
//! [--conditions clean,udp-tcp,all-frames] [--wormhole-venv DIR] [--binary FILE] [--sim-runs N] [--crowds 1,4,16,64] [--crowd-repeats N]
//! [--sim-crowds N] [--criterion DIR] [--command TEXT] [--trace DIR [--trace-only SYSCALLS]]
//! [--sim-only]`
//!
//! `--binary FILE` measures another build of git-pair (e.g. the one before a
//! change) instead of the one cargo built. `--wormhole-venv DIR` is a virtualenv with magic-wormhole, its mailbox
//! server and its transit relay (`scripts/bench` makes it); without it the
//! comparison is left out of the report, which says so.
//!
//! `--ab FILE` only compares another build of git-pair (FILE, e.g. main's) with the one under
//! test on the namespace LAN, alternating them run by run (`--runs` each) on each of
//! `--conditions`, and prints both medians and p95s: a before/after that the machine's load
//! cannot bias. It writes no report.
//!
//! `--trace DIR` only runs one pairing with both sides under strace, for
//! profiling, and writes no report; `--trace-only fsync,rename,...` stops
//! only at those syscalls, so that the timings stay near an untraced run. `--sim-only` only runs the simulated
//! network (no root needed) and prints its figures; with it, `GP_SIM_ONLY=b,e` runs only the
//! simulated conditions so lettered, `--sim-crowds 0` leaves the crowds out, `GP_SIM_LIST=1`
//! prints each run's seed, time and datagrams sent, and `GP_SIM_TRACE=SEED[,SEED...]` prints
//! every frame and event of the runs with those seeds (how the slow runs were explained).
//! `GP_SIM_SEED=N` draws the runs from another seed (is a difference more than chance?), and
//! `GP_SIM_HEAD_START_MS=N` starts the second side N ms after the first instead of 500 (on the
//! namespace LAN it starts about 20 ms after, once the first has shown its code).

// The end-to-end tests' harness, shared rather than copied; the benchmark
// uses only part of it, hence the allowance.
#[allow(dead_code)]
#[path = "../../tests/support/mod.rs"]
mod support;

mod guess;
mod namespaces;
mod report;
mod sim;
mod wormhole;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use namespaces::Loss;
use support::lab::{self, Lab, Network};
use support::{preflight, Needs};

/// Options from the command line.
pub struct Options {
    pub out: PathBuf,
    /// git pair runs per condition on the namespace LAN.
    pub runs: usize,
    /// Of those, how many are interleaved with magic-wormhole runs.
    pub compare_runs: usize,
    /// The namespace LAN's conditions to run (all three by default).
    pub conditions: Vec<Loss>,
    pub wormhole_venv: Option<PathBuf>,
    pub sim_runs: usize,
    pub crowds: Vec<usize>,
    /// Trials of each crowd size on the namespace LAN.
    pub crowd_repeats: usize,
    /// Trials of 64 simultaneous pairings in the simulated network.
    pub sim_crowds: usize,
    pub criterion: Option<PathBuf>,
    pub command: String,
    /// Only trace one pairing with strace into this directory.
    pub trace: Option<PathBuf>,
    /// ...stopping only at these syscalls (`--trace-only fsync,rename`).
    pub trace_only: Option<String>,
    /// Only run the simulated network (no root needed) and print its table.
    pub sim_only: bool,
    /// Only compare this other build with the one under test, run by run, on the conditions.
    pub ab: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        out: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("BENCHMARKS.md"),
        runs: 100,
        compare_runs: 20,
        conditions: vec![Loss::None, Loss::UdpTcp(300), Loss::AllFrames(300)],
        wormhole_venv: None,
        sim_runs: 10_000,
        crowds: vec![1, 4, 16, 64],
        crowd_repeats: 3,
        sim_crowds: 1000,
        criterion: None,
        command: "scripts/bench".to_owned(),
        trace: None,
        trace_only: None,
        sim_only: false,
        ab: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            // cargo bench passes this to every bench binary.
            "--bench" => {}
            "--out" => o.out = PathBuf::from(value()?),
            "--runs" => o.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--compare-runs" => {
                o.compare_runs = value()?
                    .parse()
                    .map_err(|e| format!("--compare-runs: {e}"))?
            }
            "--wormhole-venv" => o.wormhole_venv = Some(PathBuf::from(value()?)),
            // Read by the lab harness when it installs the binary into each lab.
            "--binary" => std::env::set_var("GIT_PAIR_LAB_BINARY", value()?),
            "--conditions" => {
                o.conditions = value()?
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(|c| match c.trim() {
                        "clean" => Ok(Loss::None),
                        "udp-tcp" => Ok(Loss::UdpTcp(300)),
                        "all-frames" => Ok(Loss::AllFrames(300)),
                        other => Err(format!(
                            "--conditions: {other:?} is not clean, udp-tcp or all-frames"
                        )),
                    })
                    .collect::<Result<_, _>>()?
            }
            "--sim-runs" => {
                o.sim_runs = value()?.parse().map_err(|e| format!("--sim-runs: {e}"))?
            }
            "--crowds" => {
                o.crowds = value()?
                    .split(',')
                    .filter(|k| !k.is_empty() && *k != "none")
                    .map(|k| k.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| format!("--crowds: {e}"))?
            }
            "--crowd-repeats" => {
                o.crowd_repeats = value()?
                    .parse()
                    .map_err(|e| format!("--crowd-repeats: {e}"))?
            }
            "--sim-crowds" => {
                o.sim_crowds = value()?.parse().map_err(|e| format!("--sim-crowds: {e}"))?
            }
            "--criterion" => o.criterion = Some(PathBuf::from(value()?)),
            "--command" => o.command = value()?,
            "--trace" => o.trace = Some(PathBuf::from(value()?)),
            "--trace-only" => o.trace_only = Some(value()?),
            "--sim-only" => o.sim_only = true,
            "--ab" => o.ab = Some(PathBuf::from(value()?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.runs == 0 || o.sim_runs == 0 || o.crowd_repeats == 0 || o.crowds.contains(&0) {
        return Err(
            "--runs, --sim-runs, --crowd-repeats and every crowd size must be at least 1"
                .to_owned(),
        );
    }
    Ok(o)
}

fn main() -> ExitCode {
    if let Some(code) = support::mcast::run_helper_if_requested() {
        std::process::exit(code);
    }
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("git-pair benchmark: {e}");
            return ExitCode::from(2);
        }
    };
    if options.sim_only {
        let conditions = report::conditions();
        let only = std::env::var("GP_SIM_ONLY").unwrap_or_default();
        for c in &conditions {
            if !only.is_empty()
                && !only
                    .split(',')
                    .any(|o| c.name.starts_with(&format!("({o})")))
            {
                continue;
            }
            let runs = sim::time_to_pair(c.imp, options.sim_runs, c.seed);
            eprintln!("{}: {}", c.name, report::summary(&runs));
        }
        if options.sim_crowds == 0 {
            return ExitCode::SUCCESS;
        }
        eprintln!("{:?}", sim::neighbour_floor(0.3, 100_000, 5));
        let crowds = sim::crowds(SIM_CROWD, options.sim_crowds, 64);
        eprintln!(
            "{SIM_CROWD} pairings at once: {}",
            report::crowd_summary(&crowds)
        );
        return ExitCode::SUCCESS;
    }
    if let Some(reason) = preflight(Needs::Nft) {
        eprintln!(
            "git-pair benchmark: cannot run here: {reason}. It builds network namespaces with \
             their own users and sshd, like the end-to-end tests: run `sudo scripts/bench` (or as \
             root)."
        );
        return ExitCode::from(2);
    }
    lab::sweep_stale();
    let result = std::panic::catch_unwind(|| run(&options));
    let left = lab::leftovers_of(std::process::id());
    if !left.is_empty() {
        eprintln!(
            "git-pair benchmark: resources left behind:\n  {}",
            left.join("\n  ")
        );
        return ExitCode::FAILURE;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => {
            eprintln!("git-pair benchmark: failed (see the message above); nothing was written");
            ExitCode::FAILURE
        }
    }
}

/// The crowd size tried many times in the simulated network.
pub const SIM_CROWD: usize = 64;

/// `--ab`: the other build and the one under test, alternating run by run in one lab.
fn ab(o: &Options, other: &std::path::Path) {
    let lab = Lab::new(Network::Bridged);
    let installed = lab.dir.join("bin").join("git-pair");
    let builds = [
        ("other", other.to_path_buf()),
        ("under test", lab::binary_under_test()),
    ];
    for &loss in &o.conditions {
        section(&format!("A/B, {}", loss.describe()));
        namespaces::set_rules(&lab, loss);
        let timeout = if loss == Loss::None { 20 } else { 30 };
        let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        let mut failed = [0usize; 2];
        let mut seen = [namespaces::Counters::default(); 2];
        for i in 0..o.runs {
            // Which goes first alternates too, so that neither always follows the other.
            for k in [i % 2, 1 - i % 2] {
                std::fs::copy(&builds[k].1, &installed)
                    .unwrap_or_else(|e| panic!("install {}: {e}", builds[k].1.display()));
                let (t, counted) = namespaces::time_one(&lab, timeout, &[]);
                if std::env::var_os("GP_AB_LIST").is_some() {
                    eprintln!(
                        "run {i} {}: {:.1} ms, {} datagrams",
                        builds[k].0,
                        t.took.as_secs_f64() * 1e3,
                        counted.udp
                    );
                }
                seen[k] = seen[k].add(counted);
                if t.ok {
                    times[k].push(t.took.as_secs_f64() * 1e3);
                } else {
                    failed[k] += 1;
                    eprintln!("{}", t.detail);
                }
            }
        }
        for (k, (name, path)) in builds.iter().enumerate() {
            let t = &mut times[k];
            t.sort_by(f64::total_cmp);
            let at = |q: f64| t.get(((t.len() as f64 * q).ceil() as usize).saturating_sub(1));
            let per_run = |x: u64| x as f64 / o.runs as f64;
            eprintln!(
                "  {name:>10} ({}): {} runs, {} failed, median {:.1} ms, p95 {:.1} ms, max {:.1} ms; \
                 per run: {:.1} datagrams, CPU {:.1} ms git-pair (both sides), {:.1} ms sshd",
                path.display(),
                t.len(),
                failed[k],
                at(0.5).copied().unwrap_or(f64::NAN),
                at(0.95).copied().unwrap_or(f64::NAN),
                t.last().copied().unwrap_or(f64::NAN),
                per_run(seen[k].udp),
                per_run(seen[k].cpu_git_pair) * 10.0,
                per_run(seen[k].cpu_sshd) * 10.0,
            );
        }
    }
}

fn section(name: &str) {
    eprintln!("\n== {name}");
}

fn run(o: &Options) {
    if let Some(dir) = &o.trace {
        section("one pairing under strace");
        namespaces::trace(&Lab::new(Network::Bridged), dir, o.trace_only.as_deref());
        return;
    }
    if let Some(other) = &o.ab {
        ab(o, other);
        return;
    }
    let mut r = report::Report::default();
    let loadavg = || {
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(", "))
            .unwrap_or_default()
    };
    let load_at_start = loadavg();
    let binary = lab::binary_under_test();

    section("cost of a guess (git-annex's HMAC-SHA1, one core)");
    r.guess = Some(guess::rate(Duration::from_secs(3)));

    section("time to pair, simulated network in virtual time");
    let conditions = report::conditions();
    for c in &conditions {
        eprintln!("  {}", c.name);
        r.sim.push(sim::time_to_pair(c.imp, o.sim_runs, c.seed));
    }
    section(&format!(
        "{SIM_CROWD} simultaneous pairings with random codes, simulated, {} trials",
        o.sim_crowds
    ));
    r.sim_crowds = sim::crowds(SIM_CROWD, o.sim_crowds, 64);
    r.neighbour_floor = Some(sim::neighbour_floor(0.3, 100_000, 5));

    {
        let mut lab = Lab::new(Network::Bridged);
        let station = o.wormhole_venv.as_ref().map(|_| lab.add_station());
        let mut wormhole = match (&o.wormhole_venv, &station) {
            (Some(venv), Some(station)) => {
                section("magic-wormhole mailbox and transit relay on the third host");
                Some(wormhole::Wormhole::start(&lab, station, venv))
            }
            _ => None,
        };
        let others: Vec<&str> = station.iter().map(|s| s.netns.as_str()).collect();

        section("start-up wrappers and footprint");
        r.wrapper = Some(namespaces::wrapper_overhead(&lab, 30, true));
        r.test_wrapper = Some(namespaces::wrapper_overhead(&lab, 30, false));
        r.help_startup = Some(namespaces::help_startup(&binary, 50));
        r.binary_size = std::fs::metadata(&binary).map(|m| m.len()).ok();
        r.peak_rss_kib = namespaces::peak_rss_kib(&lab, 3);

        section("where the time of a clean pairing goes (traced at a few syscalls)");
        namespaces::set_rules(&lab, Loss::None);
        let traces = lab.dir.join("phases");
        r.phases = namespaces::phases(&lab, &traces, 15);

        for &loss in &o.conditions {
            section(&format!(
                "time to pair, namespace LAN, {}{}",
                loss.describe(),
                if wormhole.is_some() {
                    format!(
                        ", the first {} runs interleaved with magic-wormhole",
                        o.compare_runs
                    )
                } else {
                    String::new()
                }
            ));
            namespaces::set_rules(&lab, loss);
            let mut c = report::LanCondition::new(loss);
            let timeout = if loss == Loss::None { 20 } else { 30 };
            for i in 0..o.runs {
                let (t, seen) = namespaces::time_one(&lab, timeout, &others);
                eprintln!(
                    "  run {:>3}: git pair {:>8.1} ms {}",
                    i + 1,
                    t.took.as_secs_f64() * 1e3,
                    if t.ok { "paired" } else { "FAILED" }
                );
                if !t.ok {
                    eprintln!("{}", t.detail);
                }
                c.git_pair.push(t);
                c.counters = c.counters.add(seen);
                if let Some(w) = wormhole.as_mut().filter(|_| i < o.compare_runs) {
                    namespaces::forget_neighbours(&lab, &others);
                    let one = w.one_way(&lab);
                    namespaces::forget_neighbours(&lab, &others);
                    let both = w.both_ways(&lab);
                    eprintln!(
                        "           wormhole one way {:>8.1} ms {}, both ways {:>8.1} ms {}",
                        one.took.as_secs_f64() * 1e3,
                        if one.ok { "ok" } else { "FAILED" },
                        both.took.as_secs_f64() * 1e3,
                        if both.ok { "ok" } else { "FAILED" },
                    );
                    for t in [&one, &both].into_iter().filter(|t| !t.ok) {
                        eprintln!("{}", t.detail);
                    }
                    c.one_way.push(one);
                    c.both_ways.push(both);
                }
            }
            r.lan.push(c);
        }
        namespaces::remove_rules(&lab);
        drop(wormhole);

        for &k in &o.crowds {
            for trial in 1..=o.crowd_repeats {
                section(&format!("{k} simultaneous pairings, trial {trial}"));
                let c = namespaces::crowd(&lab, k, 60);
                eprintln!(
                    "  {}/{} right, {} wrong, {:.0} ms, {} sharing a channel",
                    c.right,
                    c.k,
                    c.wrong,
                    c.took.as_secs_f64() * 1e3,
                    c.sharing_channel
                );
                for f in &c.failures {
                    eprintln!("  {f}");
                }
                r.crowds.push(c);
            }
        }
        namespaces::remove_rules(&lab);
    }

    r.criterion = o.criterion.as_deref().map(report::criterion_results);
    r.load = (load_at_start, loadavg());
    let text = r.render(o, &conditions);
    std::fs::write(&o.out, text)
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", o.out.display()));
    eprintln!("\nwrote {}", o.out.display());
}
