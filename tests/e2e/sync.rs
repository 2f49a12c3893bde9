//! End-to-end tests of `git pair sync` and its hooks between two namespace hosts paired by the
//! real git-pair, over the real sshd and `git pair serve`: a commit travels by itself, a user's
//! hook keeps running and comes back byte for byte, diverged histories are left alone, a burst
//! of commits makes few syncs, a peer that is off does not slow a commit down, and git-annex
//! content travels through `git annex sync`.
//!
//! Timings are printed (`--nocapture`), for the report; the only timed assertions are generous
//! bounds, and the check that a commit does not wait for its sync is an ordering: the commit
//! returned before the sync had logged its end.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::annex::two_annex_repositories;
use super::locate::{move_host, start_watch, stop_watch};
use super::support::gitpair::{pair, PairOpts, Paired};
use super::support::host::Host;
use super::support::lab::{Lab, Network};
use super::support::net;
use super::support::process::{Cmd, Output};
use super::{expect_ok, git_in, pair_default};

/// How long a commit may take to reach the peer before the test fails (it takes about a
/// second; see the printed figures).
const ARRIVAL_LIMIT: Duration = Duration::from_secs(30);

/// `git pair ARGS` as `host`'s user in `dir`.
fn git_pair(host: &Host, dir: &Path, args: &[&str]) -> Output {
    host.cmd(&host.git_pair).args(args).cwd(dir).run()
}

fn install_hooks(lab: &Lab, host: &Host, dir: &Path) {
    let out = expect_ok(lab, git_pair(host, dir, &["hooks", "install"]));
    assert!(
        out.stderr_str().contains("Installed git pair's hooks"),
        "{out}"
    );
}

fn sync_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(".git/git-pair/sync.log")).unwrap_or_default()
}

/// The commit `rev` names in `dir`, if any.
fn try_rev(host: &Host, dir: &Path, rev: &str) -> Option<String> {
    let out = host
        .cmd("git")
        .args(["rev-parse", "--verify", "-q", rev])
        .cwd(dir)
        .run();
    out.success().then(|| out.stdout_str().trim().to_owned())
}

/// Polls `check` every 20 ms until it holds; panics with `what` and the log after `limit`.
fn wait_for(limit: Duration, what: &str, log: &Path, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < limit,
            "{what} did not happen within {limit:?}; sync log:\n{}",
            sync_log(log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// Waits until `dir`'s background syncs are over (`n` ends logged, nothing pending), so that a
/// test never ends while one runs.
fn wait_for_syncs(dir: &Path, n: usize) {
    wait_for(ARRIVAL_LIMIT, "the background syncs", dir, || {
        let log = sync_log(dir);
        log.matches("sync done").count() + log.matches("sync not run").count() >= n
            && !dir.join(".git/git-pair/sync.pending").exists()
    });
}

/// A commit on `host` in its repository, timed: (commit id, how long `git commit` took).
fn timed_commit(host: &Host, file: &str, content: &str) -> (String, Duration) {
    host.write_user_file(&host.repo.join(file), content.as_bytes(), 0o644);
    host.git(&["add", "--", file]);
    let started = Instant::now();
    let out = host
        .cmd("git")
        .args([
            "commit",
            "-q",
            "-m",
            &format!("{} writes {file}", host.hostname),
        ])
        .run();
    let took = started.elapsed();
    assert!(out.success(), "{out}");
    assert!(
        out.stdout.is_empty() && out.stderr.is_empty(),
        "the hook must be quiet\n{out}"
    );
    (host.rev_parse("HEAD"), took)
}

fn sync_json(host: &Host, dir: &Path) -> (Option<i32>, Vec<Value>, Output) {
    let out = git_pair(host, dir, &["sync", "--json"]);
    let events = out
        .stdout_str()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{out}")))
        .collect();
    (out.code(), events, out)
}

fn peer_outcomes(events: &[Value]) -> Vec<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "sync_peer")
        .map(|e| {
            (
                e["remote"].as_str().unwrap_or_default().to_owned(),
                e["outcome"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// With the hooks installed on A, a commit there appears as synced/main on B within seconds,
/// with no command typed after it; B's own sync then fast-forwards its main over ssh.
pub fn a_commit_reaches_the_peer_by_itself() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    install_hooks(&lab, &lab.a, &lab.a.repo);
    let b_main = lab.b.rev_parse("main");

    let (commit, took) = timed_commit(&lab.a, "note.txt", "written on alpha\n");
    let committed = Instant::now();
    wait_for(ARRIVAL_LIMIT, "synced/main on B", &lab.a.repo, || {
        try_rev(&lab.b, &lab.b.repo, "refs/heads/synced/main").as_deref() == Some(&commit)
    });
    let arrived = committed.elapsed();
    eprintln!("  git commit returned in {took:?}; synced/main on B {arrived:?} after the commit");
    assert_eq!(
        lab.b.rev_parse("main"),
        b_main,
        "B's checked-out main is not touched"
    );
    wait_for_syncs(&lab.a.repo, 1);
    let log = sync_log(&lab.a.repo);
    assert!(
        log.contains(&format!("{}: pushed main", p.remote_on_a)),
        "{log}"
    );

    let started = Instant::now();
    let (code, events, out) = sync_json(&lab.b, &lab.b.repo);
    eprintln!(
        "  git pair sync on B (fetch, fast-forward, push) took {:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(0), "{out}\n{}", lab.sshd_logs());
    assert_eq!(
        peer_outcomes(&events),
        [(p.remote_on_b.clone(), "synced".to_owned())]
    );
    assert_eq!(events[0]["fast_forwarded"], true, "{out}");
    assert_eq!(lab.b.rev_parse("main"), commit);
    let note = std::fs::read_to_string(lab.b.repo.join("note.txt")).unwrap();
    assert_eq!(note, "written on alpha\n");
}

/// A post-commit hook A's user already had keeps running after `git pair hooks install`, and
/// `git pair hooks uninstall` gives it back byte for byte, with its mode.
pub fn a_users_hook_keeps_running_and_comes_back_byte_for_byte() {
    let lab = Lab::new(Network::DualStack);
    pair_default(&lab);
    let hook = lab.a.repo.join(".git/hooks/post-commit");
    let ran = lab.a.home.join("user-hook-ran");
    let mine = format!(
        "#!/bin/sh\n# my hook, caf\u{e9}\r\necho \"post-commit ran\" >> '{}'\n",
        ran.display()
    );
    lab.a.write_user_file(&hook, mine.as_bytes(), 0o751);
    install_hooks(&lab, &lab.a, &lab.a.repo);
    assert!(lab
        .a
        .repo
        .join(".git/hooks/post-commit.git-pair-user")
        .exists());

    let (commit, _) = timed_commit(&lab.a, "a.txt", "a\n");
    wait_for(ARRIVAL_LIMIT, "synced/main on B", &lab.a.repo, || {
        try_rev(&lab.b, &lab.b.repo, "refs/heads/synced/main").as_deref() == Some(&commit)
    });
    let log = std::fs::read_to_string(&ran).unwrap_or_default();
    assert_eq!(log, "post-commit ran\n", "the user's hook ran once");
    wait_for_syncs(&lab.a.repo, 1);

    expect_ok(&lab, git_pair(&lab.a, &lab.a.repo, &["hooks", "uninstall"]));
    assert_eq!(std::fs::read(&hook).unwrap(), mine.as_bytes());
    let mode = std::fs::metadata(&hook).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o751);
    let mut left: Vec<String> = std::fs::read_dir(lab.a.repo.join(".git/hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".sample"))
        .collect();
    left.sort();
    assert_eq!(left, ["post-commit"]);
}

/// A and B both commit on main: each side's sync reports the divergence with exit 6 and
/// changes neither main; nothing is merged anywhere.
pub fn diverged_histories_are_reported_and_left_alone() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let a = lab.a.commit("a.txt", "alpha's\n");
    let b = lab.b.commit("b.txt", "beta's\n");
    for (host, remote) in [(&lab.a, &p.remote_on_a), (&lab.b, &p.remote_on_b)] {
        let (code, events, out) = sync_json(host, &host.repo);
        assert_eq!(code, Some(6), "{out}\n{}", lab.sshd_logs());
        assert_eq!(
            peer_outcomes(&events),
            [(remote.clone(), "diverged".to_owned())],
            "{out}"
        );
        assert!(out.stderr_str().contains("nothing was merged"), "{out}");
    }
    assert_eq!(lab.a.rev_parse("main"), a);
    assert_eq!(lab.b.rev_parse("main"), b);
    for host in [&lab.a, &lab.b] {
        let merges = host.git(&["rev-list", "--merges", "--all"]);
        assert!(
            merges.trim().is_empty(),
            "a merge on {}: {merges}",
            host.hostname
        );
    }
    // Each side's commit waits on the other as synced/main, for a person to merge.
    assert_eq!(lab.b.rev_parse("refs/heads/synced/main"), a);
    assert_eq!(lab.a.rev_parse("refs/heads/synced/main"), b);
}

/// Ten commits within a second on A, with the hooks installed: a bounded number of syncs run,
/// and the last commit arrives on B.
pub fn ten_quick_commits_make_few_syncs_and_the_last_arrives() {
    let lab = Lab::new(Network::DualStack);
    pair_default(&lab);
    install_hooks(&lab, &lab.a, &lab.a.repo);
    let script = "for i in 0 1 2 3 4 5 6 7 8 9; do echo $i > burst.txt; git add burst.txt; \
                  git commit -q -m \"burst $i\" || exit 1; done";
    let started = Instant::now();
    lab.a.cmd("sh").args(["-c", script]).run_ok();
    let burst = started.elapsed();
    let last = lab.a.rev_parse("HEAD");
    let arrived = wait_for(ARRIVAL_LIMIT, "the last commit on B", &lab.a.repo, || {
        try_rev(&lab.b, &lab.b.repo, "refs/heads/synced/main").as_deref() == Some(&last)
    });
    wait_for_syncs(&lab.a.repo, 1);
    let log = sync_log(&lab.a.repo);
    let runs = log.matches("sync started").count();
    eprintln!(
        "  10 commits in {burst:?}: {runs} sync run(s); the last commit on B {arrived:?} after the burst"
    );
    assert!(
        burst < Duration::from_secs(5),
        "the burst itself took {burst:?}"
    );
    assert!(
        (1..=3).contains(&runs),
        "{runs} sync runs for 10 commits:\n{log}"
    );
}

/// B is switched off (its end of the LAN link down): a commit on A returns at once, before its
/// background sync has even found B unreachable; the sync then logs B as unreachable, and
/// once B is back the next commit arrives.
pub fn a_peer_switched_off_does_not_slow_a_commit() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    install_hooks(&lab, &lab.a, &lab.a.repo);
    set_link(&lab.b, "down");

    let (_, took) = timed_commit(&lab.a, "off.txt", "while beta is off\n");
    let returned = Instant::now();
    let log_then = sync_log(&lab.a.repo);
    assert!(
        !log_then.contains("sync done"),
        "the commit returned only after its sync ended:\n{log_then}"
    );
    assert!(
        took < Duration::from_secs(5),
        "git commit took {took:?} with the peer off (ssh's connect timeout is 5 s)"
    );
    let trying = format!("{}: unreachable; trying git pair refresh", p.remote_on_a);
    wait_for(ARRIVAL_LIMIT, "the refresh of B", &lab.a.repo, || {
        sync_log(&lab.a.repo).contains(&trying)
    });
    let tried = returned.elapsed();
    let unreachable = format!("{}: unreachable (", p.remote_on_a);
    wait_for(ARRIVAL_LIMIT, "the unreachable report", &lab.a.repo, || {
        sync_log(&lab.a.repo).contains(&unreachable)
    });
    eprintln!(
        "  with beta off: git commit returned in {took:?}; the background sync found beta \
         unreachable {tried:?} after that, and reported it, after one refresh, {:?} after that",
        returned.elapsed()
    );
    wait_for_syncs(&lab.a.repo, 1);
    assert!(sync_log(&lab.a.repo).contains("exit status 3"));

    set_link(&lab.b, "up");
    let (commit, _) = timed_commit(&lab.a, "on.txt", "beta is back\n");
    wait_for(
        ARRIVAL_LIMIT,
        "synced/main on B once it is back",
        &lab.a.repo,
        || try_rev(&lab.b, &lab.b.repo, "refs/heads/synced/main").as_deref() == Some(&commit),
    );
    wait_for_syncs(&lab.a.repo, 2);
}

/// B moves to a new address (a new DHCP lease) while its `git pair watch` runs: A's next
/// commit finds B unreachable at the old address, its sync refreshes the pairing once (B's
/// watch answers the locate query, B's sshd proves the pinned host key), tries again, and the
/// commit arrives all the same.
pub fn a_moved_peer_is_refreshed_once_and_synced() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    install_hooks(&lab, &lab.a, &lab.a.repo);
    let (watch, _) = start_watch(&lab.b);
    let new = move_host(&lab.b, 2, 77);

    let (commit, took) = timed_commit(&lab.a, "moved.txt", "beta has moved\n");
    let arrived = wait_for(
        ARRIVAL_LIMIT,
        "synced/main on the moved B",
        &lab.a.repo,
        || try_rev(&lab.b, &lab.b.repo, "refs/heads/synced/main").as_deref() == Some(&commit),
    );
    wait_for_syncs(&lab.a.repo, 1);
    let watched = stop_watch(watch);
    let log = sync_log(&lab.a.repo);
    eprintln!(
        "  beta moved to {new}: git commit returned in {took:?}; synced/main on B {arrived:?} \
         later, after one refresh"
    );
    assert!(
        log.contains(&format!(
            "{}: unreachable; trying git pair refresh",
            p.remote_on_a
        )),
        "{log}\n{watched}"
    );
    assert!(
        log.contains(&format!("{}: pushed main", p.remote_on_a)),
        "{log}\n{watched}"
    );
    assert!(log.contains("exit status 0"), "{log}");
}

fn set_link(host: &Host, state: &str) {
    net::in_netns(&host.netns, "ip")
        .args(["link", "set", &host.iface, state])
        .run_ok();
}

/// Two git-annex repositories with annex.synccontent on A: after `git annex add` and a commit,
/// A's hook runs `git pair sync`, which runs `git annex sync --content` and copies the content
/// to B; B's `git pair sync` then brings the file into its work tree.
pub fn annex_content_travels_through_git_annex_sync() {
    let lab = Lab::new(Network::DualStack);
    let b_repo = two_annex_repositories(&lab);
    let p: Paired = pair(
        &lab,
        &PairOpts::default(),
        &PairOpts::default().in_repo(&b_repo),
    )
    .expect_paired();
    expect_ok(
        &lab,
        git_in(
            &lab.a,
            &lab.a.repo,
            &["config", "annex.synccontent", "true"],
        ),
    );
    install_hooks(&lab, &lab.a, &lab.a.repo);

    let content = "annexed by alpha, synced by its hook\n".repeat(500);
    lab.a
        .write_user_file(&lab.a.repo.join("big.txt"), content.as_bytes(), 0o644);
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["annex", "add", "-q", "big.txt"]),
    );
    let key = expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["annex", "lookupkey", "big.txt"]),
    )
    .stdout_str()
    .trim()
    .to_owned();
    let started = Instant::now();
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["commit", "-q", "-m", "add big.txt"]),
    );
    let took = started.elapsed();
    let arrived = wait_for(ARRIVAL_LIMIT, "the content on B", &lab.a.repo, || {
        git_in(&lab.b, &b_repo, &["annex", "contentlocation", &key]).success()
    });
    eprintln!("  annex: git commit returned in {took:?}; the content was on B {arrived:?} later");
    wait_for_syncs(&lab.a.repo, 1);
    let log = sync_log(&lab.a.repo);
    assert!(log.contains("synced with git annex sync"), "{log}");
    assert!(
        log.contains("copy big.txt"),
        "git annex sync --content copied it:\n{log}"
    );

    let (code, events, out) = sync_json(&lab.b, &b_repo);
    assert_eq!(code, Some(0), "{out}\n{}", lab.sshd_logs());
    assert_eq!(
        peer_outcomes(&events),
        [(p.remote_on_b.clone(), "synced".to_owned())]
    );
    assert_eq!(events.last().unwrap()["annex"], true, "{out}");
    let arrived = std::fs::read_to_string(b_repo.join("big.txt"))
        .unwrap_or_else(|e| panic!("big.txt is not in B's work tree: {e}\n{out}"));
    assert_eq!(arrived, content);
    end_ssh_masters(&lab);
}

/// Ends what git-annex's ssh connection caching left running in the lab's namespaces (its
/// ControlPersist masters), by pid; git-annex normally stops them itself.
fn end_ssh_masters(lab: &Lab) {
    for host in [&lab.a, &lab.b] {
        for pid in net::netns_pids(&host.netns) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if comm.trim() == "ssh" {
                eprintln!("  ending a leftover ssh (pid {pid}) in {}", host.netns);
                let _ = Cmd::root("kill").arg(pid.to_string()).run();
            }
        }
    }
}
