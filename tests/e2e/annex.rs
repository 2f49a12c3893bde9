//! End-to-end test of two git-annex repositories paired by git-pair: the real git-annex from
//! Debian's packages, through the real sshd and `git pair serve`, moves an annexed file's
//! content from A to B with `git annex sync --content`.

use std::path::Path;
use std::time::{Duration, Instant};

use super::support::gitpair::{pair, PairOpts};
use super::support::host::Host;
use super::support::lab::{Lab, Network};
use super::support::process::Cmd;
use super::{config_value, expect_ok, git_in};

/// A's repository becomes a git-annex repository; B gets a clone of it (git annex sync needs
/// a shared history), with its own annex UUID and no remote back to A.
pub fn two_annex_repositories(lab: &Lab) -> std::path::PathBuf {
    expect_ok(
        lab,
        git_in(&lab.a, &lab.a.repo, &["annex", "init", "-q", "alpha"]),
    );
    let b_repo = lab.b.home.join("annexed");
    // Each user owns its files, so the history travels as a bundle that root hands over.
    let bundle_a = lab.a.home.join("history.bundle");
    let bundle_b = lab.b.home.join("history.bundle");
    let bundle_a_text = bundle_a.to_string_lossy().into_owned();
    expect_ok(
        lab,
        git_in(
            &lab.a,
            &lab.a.repo,
            &["bundle", "create", "-q", &bundle_a_text, "--all"],
        ),
    );
    Cmd::root("cp").arg(&bundle_a).arg(&bundle_b).run_ok();
    Cmd::root("chown")
        .arg(format!("{}:{}", lab.b.uid, lab.b.gid))
        .arg(&bundle_b)
        .run_ok();
    let b_repo_text = b_repo.to_string_lossy().into_owned();
    let bundle_b_text = bundle_b.to_string_lossy().into_owned();
    expect_ok(
        lab,
        git_in(
            &lab.b,
            &lab.b.home,
            &["clone", "-q", &bundle_b_text, &b_repo_text],
        ),
    );
    expect_ok(
        lab,
        git_in(&lab.b, &b_repo, &["remote", "remove", "origin"]),
    );
    expect_ok(
        lab,
        git_in(&lab.b, &b_repo, &["annex", "init", "-q", "beta"]),
    );
    b_repo
}

fn annex_uuid(host: &Host, dir: &Path) -> String {
    host.cmd("git")
        .args(["config", "annex.uuid"])
        .cwd(dir)
        .run_ok()
        .stdout_str()
        .trim()
        .to_owned()
}

/// The pairing gives each remote the peer's annex UUID and cost 175; an annexed file added on
/// A arrives on B with `git annex sync --content`, and `whereis` on each side knows the other.
pub fn git_annex_sync_content_over_a_pairing() {
    let lab = Lab::new(Network::DualStack);
    let b_repo = two_annex_repositories(&lab);
    let p = pair(
        &lab,
        &PairOpts::default(),
        &PairOpts::default().in_repo(&b_repo),
    )
    .expect_paired();
    let (a_uuid, b_uuid) = (annex_uuid(&lab.a, &lab.a.repo), annex_uuid(&lab.b, &b_repo));
    let a_remote = &p.remote_on_a;
    let b_remote = &p.remote_on_b;
    assert_eq!(
        config_value(
            &lab.a,
            &lab.a.repo,
            &format!("remote.{a_remote}.annex-uuid")
        ),
        b_uuid
    );
    assert_eq!(
        config_value(&lab.b, &b_repo, &format!("remote.{b_remote}.annex-uuid")),
        a_uuid
    );
    assert_eq!(
        config_value(
            &lab.a,
            &lab.a.repo,
            &format!("remote.{a_remote}.annex-cost")
        ),
        "175"
    );

    let content = "annexed content from alpha\n".repeat(1000);
    lab.a
        .write_user_file(&lab.a.repo.join("big.txt"), content.as_bytes(), 0o644);
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["annex", "add", "-q", "big.txt"]),
    );
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["commit", "-q", "-m", "add big.txt"]),
    );
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["annex", "sync", "--content"]),
    );

    expect_ok(&lab, git_in(&lab.b, &b_repo, &["annex", "sync"]));
    let arrived = std::fs::read_to_string(b_repo.join("big.txt"))
        .unwrap_or_else(|e| panic!("big.txt's content is not on B: {e}"));
    assert_eq!(arrived, content, "the content arrived on B");
    let present = expect_ok(
        &lab,
        git_in(&lab.b, &b_repo, &["annex", "find", "--in=here"]),
    );
    assert!(present.stdout_str().contains("big.txt"), "{present}");

    for (host, dir, peer_uuid) in [(&lab.a, &lab.a.repo, &b_uuid), (&lab.b, &b_repo, &a_uuid)] {
        let whereis = expect_ok(&lab, git_in(host, dir, &["annex", "whereis", "big.txt"]));
        let text = whereis.stdout_str();
        assert!(
            text.contains(peer_uuid.as_str()) && text.contains("copies"),
            "whereis on {} must list the peer ({peer_uuid})\n{whereis}",
            host.hostname
        );
    }
}

/// Stops the git-annex assistants and ends the ssh connection-cache masters git-annex left in
/// the repositories, when dropped: also when the test fails halfway.
struct Assistants<'a> {
    lab: &'a Lab,
    running: Vec<(&'a Host, std::path::PathBuf)>,
}

impl Drop for Assistants<'_> {
    fn drop(&mut self) {
        for (host, dir) in &self.running {
            let _ = host
                .cmd("git")
                .args(["annex", "assistant", "--stop"])
                .cwd(dir)
                .run();
            // git-annex's ControlPersist masters: `ssh -O exit` on each socket it made.
            let sockets = dir.join(".git/annex/ssh");
            for socket in std::fs::read_dir(&sockets).into_iter().flatten().flatten() {
                let _ = host
                    .cmd("ssh")
                    .arg("-S")
                    .arg(socket.path())
                    .args(["-O", "exit", "ignored"])
                    .run();
            }
        }
        let _ = self.lab;
    }
}

/// What must keep working (issue 8): two paired git-annex repositories, each with
/// `git annex assistant` running. A file added on A arrives on B, content included, within
/// seconds, through the forced command `git pair serve` (which now serves git-annex-shell only
/// in a git-annex repository, with an allowlisted environment); and the other way round.
pub fn git_annex_assistants_on_both_sides_sync_a_new_file() {
    let lab = Lab::new(Network::DualStack);
    let b_repo = two_annex_repositories(&lab);
    let p = pair(
        &lab,
        &PairOpts::default(),
        &PairOpts::default().in_repo(&b_repo),
    )
    .expect_paired();
    let _ = p;
    let mut assistants = Assistants {
        lab: &lab,
        running: Vec::new(),
    };
    for (host, dir) in [(&lab.a, lab.a.repo.clone()), (&lab.b, b_repo.clone())] {
        expect_ok(&lab, git_in(host, &dir, &["annex", "assistant"]));
        assistants.running.push((host, dir));
    }

    let arrives = |host: &Host, dir: &Path, file: &str, content: &str, within: Duration| {
        let started = Instant::now();
        loop {
            if std::fs::read_to_string(dir.join(file)).ok().as_deref() == Some(content) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "{file} did not arrive on {} within {within:?}\n{}\n--- daemon log ---\n{}",
                host.hostname,
                lab.sshd_logs(),
                std::fs::read_to_string(dir.join(".git/annex/daemon.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let content = "from alpha's assistant\n".repeat(500);
    lab.a
        .write_user_file(&lab.a.repo.join("new.txt"), content.as_bytes(), 0o644);
    let took = arrives(
        &lab.b,
        &b_repo,
        "new.txt",
        &content,
        Duration::from_secs(60),
    );
    eprintln!("  A -> B through the assistants in {took:?}");
    let content = "from beta's assistant\n".repeat(500);
    lab.b
        .write_user_file(&b_repo.join("back.txt"), content.as_bytes(), 0o644);
    let took = arrives(
        &lab.a,
        &lab.a.repo,
        "back.txt",
        &content,
        Duration::from_secs(60),
    );
    eprintln!("  B -> A through the assistants in {took:?}");
    // Annexed, not committed as plain git: the content is in the annex on the receiving side.
    let out = expect_ok(
        &lab,
        git_in(&lab.b, &b_repo, &["annex", "find", "--in=here"]),
    );
    assert!(out.stdout_str().contains("new.txt"), "{out}");
    drop(assistants);
}
