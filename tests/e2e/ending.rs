//! End-to-end tests of how a pairing ends: in two phases (each side writes, tells the other,
//! sealed, and keeps its setup only if the other is set up too), `--verify`, two runs in one
//! repository at once, and `git pair list --check`, which logs in to the peer to see whether it
//! still lets this side in.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::gitpair::{self, exit, pair, PairOpts, PairRun};
use super::support::host::Host;
use super::support::lab::{Lab, Network};
use super::support::process::{Output, Running};
use super::{failure_reasons, git_in, snapshot};

fn reasons(out: &Output) -> Vec<String> {
    failure_reasons(out)
}

/// Asserts that neither host's repository config or ssh files changed.
fn assert_unchanged(run: &PairRun, before: &[(std::path::PathBuf, Option<Vec<u8>>)], host: &Host) {
    let after = snapshot(host);
    for ((path, was), (_, is)) in before.iter().zip(&after) {
        assert!(
            was == is,
            "{} changed on {}: before {:?}, after {:?}\n{run}",
            path.display(),
            host.hostname,
            was.as_deref().map(String::from_utf8_lossy),
            is.as_deref().map(String::from_utf8_lossy)
        );
    }
}

/// Issue 10, item 2: B's setup fails after both sides verified (its repository cannot take a
/// new remote). Before, A had already kept its pairing and printed "Paired" while B failed:
/// one-sided. Now B undoes its ssh files and tells A, sealed, that its setup failed; A, which
/// had written everything, undoes it all and exits 5 with B's reason. Nothing is left on
/// either side.
pub fn a_setup_that_fails_on_one_side_is_undone_on_both() {
    let lab = Lab::new(Network::DualStack);
    let before = (snapshot(&lab.a), snapshot(&lab.b));
    // libgit2 writes .git/config through .git/config.lock: a .git that B's user cannot write
    // to makes adding the remote fail, after the ssh files were written.
    let git_dir = lab.b.repo.join(".git");
    lab.b.root_cmd("chmod").args(["a-w"]).arg(&git_dir).run_ok();
    let run = pair(&lab, &PairOpts::default(), &PairOpts::default());
    lab.b.root_cmd("chmod").args(["u+w"]).arg(&git_dir).run_ok();
    assert_eq!(run.b.code(), Some(exit::SETUP_FAILED), "B must fail\n{run}");
    assert_eq!(
        run.a.code(),
        Some(exit::SETUP_FAILED),
        "A must not keep a pairing B could not make\n{run}"
    );
    assert_eq!(reasons(&run.a), ["peer_failed"], "{run}");
    let said = run.a.stderr_str();
    assert!(
        said.contains("setting up the other machine failed") && said.contains("remote"),
        "A must say why, in B's words\n{run}"
    );
    let names = gitpair::event_names(&gitpair::events(&run.a));
    assert!(
        !names.iter().any(|n| n == "paired"),
        "A must not report paired: {names:?}\n{run}"
    );
    assert_unchanged(&run, &before.0, &lab.a);
    assert_unchanged(&run, &before.1, &lab.b);
}

/// `--verify` answered no (with --json, `{"verify": false}` on standard input after the `sas`
/// event): nothing is written on either machine. This side exits 4 (declined); the peer,
/// which had already written its side and said so, hears it, sealed, undoes its side and exits
/// 4 too (peer_declined).
pub fn verify_answered_no_writes_nothing_on_either_side() {
    let lab = Lab::new(Network::DualStack);
    let before = (snapshot(&lab.a), snapshot(&lab.b));
    let run = pair(
        &lab,
        &PairOpts::default().verify(false),
        &PairOpts::default(),
    );
    assert_eq!(run.a.code(), Some(exit::VERIFICATION_FAILED), "{run}");
    assert_eq!(run.b.code(), Some(exit::VERIFICATION_FAILED), "{run}");
    assert_eq!(reasons(&run.a), ["declined"], "{run}");
    assert_eq!(reasons(&run.b), ["peer_declined"], "{run}");
    let sas = gitpair::events(&run.a)
        .into_iter()
        .find(|e| e["event"] == "sas")
        .unwrap_or_else(|| panic!("no sas event on A\n{run}"));
    assert_eq!(
        sas["verify"], true,
        "the sas event asks for the answer\n{run}"
    );
    assert_unchanged(&run, &before.0, &lab.a);
    assert_unchanged(&run, &before.1, &lab.b);
}

/// `--verify` answered yes on both sides (B gives the code and then the answer on standard
/// input): both pair, and the check string was the same on both.
pub fn verify_answered_yes_pairs() {
    let lab = Lab::new(Network::DualStack);
    let run = pair(
        &lab,
        &PairOpts::default().verify(true),
        &PairOpts::default().code_on_stdin().verify(true),
    );
    let p = run.expect_paired();
    let sas = |out: &Output| -> Value {
        gitpair::events(out)
            .into_iter()
            .find(|e| e["event"] == "sas")
            .map(|e| e["sas"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(sas(&run.a), sas(&run.b), "{run}");
    assert!(sas(&run.a).is_string(), "{run}");
    expect_ls_remote(&lab, &lab.a, &lab.a.repo, &p.remote_on_a);
}

fn expect_ls_remote(lab: &Lab, host: &Host, dir: &Path, remote: &str) {
    let out = git_in(host, dir, &["ls-remote", remote]);
    assert!(
        out.success(),
        "ls-remote {remote} on {} failed\n{out}\n{}",
        host.hostname,
        lab.sshd_logs()
    );
}

/// Starts a git-pair that generates its code; returns it with the code.
fn start_generating(host: &Host, opts: &PairOpts) -> (Running, String) {
    let mut run = host.git_pair(None, opts).spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    while let Some(line) = run.next_line(deadline) {
        if let Ok(ev) = serde_json::from_str::<Value>(&line) {
            if ev["event"] == "code" {
                let code = ev["code"].as_str().unwrap_or_default().to_owned();
                return (run, code);
            }
        }
    }
    let out = run.wait(Duration::from_secs(2));
    panic!("git-pair on {} printed no code\n{out}", host.hostname);
}

fn remote_of(out: &Output) -> Option<String> {
    gitpair::events(out)
        .into_iter()
        .rev()
        .find(|e| e["event"] == "paired")
        .and_then(|e| e["remote"].as_str().map(str::to_owned))
}

/// Issue 9 and 10: two runs in one repository at once. A's repository pairs with B's `project`
/// and, at the same time, with B's `second`; both peers are on host beta, so both remotes would
/// be named after it. Before, both runs picked the same name at the start, one failed after
/// verification with libgit2's "remote 'beta' already exists" and its peer was left paired on
/// its own. Now the name is picked under the lock (held only while writing, never while a run
/// waits for its peer, so the four runs cannot wait for each other), and each pairing ends with
/// a remote of its own on both sides.
pub fn two_runs_in_one_repository_each_get_their_own_remote() {
    let lab = Lab::new(Network::DualStack);
    let b2 = lab.b.home.join("second");
    lab.b.init_repo(&b2);
    let opts = PairOpts::timeout(60);
    let (a1, code1) = start_generating(&lab.a, &opts);
    let (a2, code2) = start_generating(&lab.a, &opts);
    let b1 = lab.b.git_pair(Some(&code1), &opts).spawn();
    let b2_run = lab
        .b
        .git_pair(Some(&code2), &opts.clone().in_repo(&b2))
        .spawn();
    let limit = Duration::from_secs(90);
    let (a1, a2, b1, b2_out) = (
        a1.wait(limit),
        a2.wait(limit),
        b1.wait(limit),
        b2_run.wait(limit),
    );
    let show = format!(
        "=== A1 ===\n{a1}\n=== B1 ===\n{b1}\n=== A2 ===\n{a2}\n=== B2 ===\n{b2_out}\n{}",
        lab.sshd_logs()
    );
    for (a, b, which) in [(&a1, &b1, "first"), (&a2, &b2_out, "second")] {
        assert_eq!(
            a.success(),
            b.success(),
            "the {which} pairing ended on one side only\n{show}"
        );
        for out in [a, b] {
            assert!(
                !out.stderr_str().contains("already exists"),
                "a run must never trip over the other's remote\n{show}"
            );
        }
    }
    let done: Vec<(&Output, &Output, &Path)> = [
        (&a1, &b1, lab.b.repo.as_path()),
        (&a2, &b2_out, b2.as_path()),
    ]
    .into_iter()
    .filter(|(a, ..)| a.success())
    .collect();
    assert_eq!(done.len(), 2, "both pairings must succeed\n{show}");
    let names: Vec<String> = done.iter().map(|(a, ..)| remote_of(a).unwrap()).collect();
    assert_ne!(names[0], names[1], "each run has its own remote\n{show}");
    for ((_, b, b_dir), name) in done.iter().zip(&names) {
        expect_ls_remote(&lab, &lab.a, &lab.a.repo, name);
        expect_ls_remote(&lab, &lab.b, b_dir, &remote_of(b).unwrap());
    }
}

/// `git pair list --check [NAME]` logs in to the peer with the paired key: accepted while the
/// peer keeps the pairing (exit 0), refused once the peer ran `git pair remove` (exit 1, with
/// what ssh said).
pub fn list_check_logs_in_to_the_peer() {
    let lab = Lab::new(Network::DualStack);
    let p = pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();
    let list = |args: &[&str]| lab.a.cmd(&lab.a.git_pair).args(args).cwd(&lab.a.repo).run();
    let ok = list(&["list", "--check", "--json", &p.remote_on_a]);
    assert!(ok.success(), "the peer must accept the paired key\n{ok}");
    let v: Value = serde_json::from_str(ok.stdout_str().trim()).expect("JSON");
    assert_eq!(v[0]["accepts"], true, "{ok}");
    let text = list(&["list", "--check"]);
    assert!(
        text.success() && text.stdout_str().contains("accepted"),
        "{text}"
    );

    let removed = lab
        .b
        .cmd(&lab.b.git_pair)
        .args(["remove", &p.remote_on_b])
        .cwd(&lab.b.repo)
        .run();
    assert!(removed.success(), "{removed}");
    let refused = list(&["list", "--check", "--json", &p.remote_on_a]);
    assert_eq!(
        refused.code(),
        Some(1),
        "a refused login exits 1\n{refused}"
    );
    let v: Value = serde_json::from_str(refused.stdout_str().trim())
        .unwrap_or_else(|e| panic!("stdout must stay one JSON array ({e})\n{refused}"));
    assert_eq!(v[0]["accepts"], false, "{refused}");
    let why = v[0]["check_error"].as_str().unwrap_or_default();
    assert!(why.contains("Permission denied"), "{refused}");
    let unknown = list(&["list", "--check", "no-such-remote"]);
    assert_eq!(unknown.code(), Some(2), "{unknown}");
}
