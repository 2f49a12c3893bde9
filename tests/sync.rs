//! `git pair sync` and `git pair hooks` run as the real binary between repositories on this
//! machine: the peers are local paths, made paired remotes by giving them git-pair's records
//! (`remote.<name>.pair-alias`). No ssh, no network: the same sync over ssh between two hosts is
//! in tests/e2e/sync.rs. These cover the planner's outcomes end to end (fast-forward, local
//! changes, divergence, refusals) and the hooks (chaining, byte-for-byte uninstall,
//! core.hooksPath, coalescing, a hook that can never fail a commit).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_git-pair");

/// Two repositories `a` and `b` sharing one commit, each the other's paired remote (`beta` on
/// a, `alpha` on b), with a HOME of their own; removed on drop.
struct Two {
    root: PathBuf,
    home: PathBuf,
    a: PathBuf,
    b: PathBuf,
}

impl Two {
    fn new(name: &str) -> Two {
        let root =
            std::env::temp_dir().join(format!("git-pair-sync-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let t = Two {
            home: root.join("home"),
            a: root.join("a"),
            b: root.join("b"),
            root,
        };
        fs::create_dir_all(&t.home).unwrap();
        fs::write(
            t.home.join(".gitconfig"),
            "[user]\n\tname = t\n\temail = t@t\n[init]\n\tdefaultBranch = main\n",
        )
        .unwrap();
        t.git(&t.root, &["init", "-q", "a"]);
        t.commit(&t.a, "f", "one\n");
        let b = t.b.to_string_lossy().into_owned();
        t.git(&t.root, &["clone", "-q", "a", &b]);
        t.git(&t.b, &["remote", "remove", "origin"]);
        t.pair(&t.a, "beta", &t.b);
        t.pair(&t.b, "alpha", &t.a);
        t
    }

    fn pair(&self, repo: &Path, name: &str, peer: &Path) {
        self.git(repo, &["remote", "add", name, &peer.to_string_lossy()]);
        self.git(
            repo,
            &[
                "config",
                &format!("remote.{name}.pair-alias"),
                &format!("git-pair-{name}-1"),
            ],
        );
    }

    fn command(&self, program: &str, cwd: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(cwd)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CEILING_DIRECTORIES", &self.root);
        c
    }

    fn git_out(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command("git", cwd).args(args).output().unwrap()
    }

    fn git(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.git_out(cwd, args);
        assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    }

    fn commit(&self, repo: &Path, file: &str, content: &str) -> String {
        fs::write(repo.join(file), content).unwrap();
        self.git(repo, &["add", file]);
        self.git(repo, &["commit", "-q", "-m", &format!("write {file}")]);
        self.rev(repo, "HEAD")
    }

    fn rev(&self, repo: &Path, rev: &str) -> String {
        self.git(repo, &["rev-parse", "--verify", "-q", rev])
            .trim()
            .to_string()
    }

    fn try_rev(&self, repo: &Path, rev: &str) -> Option<String> {
        let out = self.git_out(repo, &["rev-parse", "--verify", "-q", rev]);
        out.status
            .success()
            .then(|| text(&out.stdout).trim().to_string())
    }

    fn pair_cmd(&self, repo: &Path, args: &[&str]) -> Output {
        self.command(BIN, repo).args(args).output().unwrap()
    }

    /// `git pair sync --json` in `repo`: the exit code and the events.
    fn sync(&self, repo: &Path) -> (i32, Vec<Value>, String) {
        let out = self.pair_cmd(repo, &["sync", "--json"]);
        let events = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        (out.status.code().unwrap(), events, text(&out.stderr))
    }

    fn log(&self, repo: &Path) -> String {
        fs::read_to_string(repo.join(".git/git-pair/sync.log")).unwrap_or_default()
    }

    /// Waits until the background syncs of `repo` are over: `done` "sync done" lines logged
    /// and nothing pending.
    fn wait_for_syncs(&self, repo: &Path, done: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log(repo);
            let finished = log.matches("sync done").count() + log.matches("sync not run").count();
            if finished >= done && !repo.join(".git/git-pair/sync.pending").exists() {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no {done} syncs in 30 s; log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Two {
    fn drop(&mut self) {
        // A background sync may still be writing; give it a moment before removing its files.
        for repo in [&self.a, &self.b] {
            let deadline = Instant::now() + Duration::from_secs(10);
            while repo.join(".git/git-pair/sync.pending").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn peer_event(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "sync_peer")
        .unwrap_or_else(|| panic!("no sync_peer event: {events:?}"))
}

#[test]
fn a_commit_travels_as_synced_main_and_fast_forwards_the_peer() {
    let t = Two::new("ff");
    let c = t.commit(&t.a, "f", "two\n");
    let (code, ev, err) = t.sync(&t.a);
    assert_eq!(code, 0, "{err}");
    let p = peer_event(&ev);
    assert_eq!(
        (p["remote"].as_str(), p["outcome"].as_str()),
        (Some("beta"), Some("synced"))
    );
    assert_eq!(
        (p["pushed"].as_bool(), p["fast_forwarded"].as_bool()),
        (Some(true), Some(false))
    );
    assert_eq!(ev.last().unwrap()["event"], "sync_done");
    assert_eq!(ev.last().unwrap()["commit"], c.as_str());
    assert_eq!(t.rev(&t.b, "refs/heads/synced/main"), c);
    assert_ne!(
        t.rev(&t.b, "main"),
        c,
        "the peer's checked-out branch is not touched"
    );

    let (code, ev, err) = t.sync(&t.b);
    assert_eq!(code, 0, "{err}");
    let p = peer_event(&ev);
    assert_eq!(p["outcome"], "synced");
    assert_eq!(p["fast_forwarded"], true);
    assert_eq!(t.rev(&t.b, "main"), c);
    assert_eq!(fs::read_to_string(t.b.join("f")).unwrap(), "two\n");
    // b pushed its main (now a's commit) to a's synced/main.
    assert_eq!(t.rev(&t.a, "refs/heads/synced/main"), c);
    assert_eq!(
        t.git(&t.b, &["log", "-1", "--format=%P"])
            .split_whitespace()
            .count(),
        1
    );

    // Nothing new: up to date on both sides, in plain text too.
    let out = t.pair_cmd(&t.a, &["sync"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("beta: up to date (main at {})\n", &c[..10])
    );
}

#[test]
fn uncommitted_changes_hold_the_fast_forward_back_and_are_kept() {
    let t = Two::new("dirty");
    let c = t.commit(&t.a, "f", "two\n");
    assert_eq!(t.sync(&t.a).0, 0);
    fs::write(t.b.join("f"), "my work in progress\n").unwrap();
    let before = t.rev(&t.b, "main");
    let (code, ev, err) = t.sync(&t.b);
    assert_eq!(code, 6, "{err}");
    assert_eq!(peer_event(&ev)["outcome"], "local_changes");
    assert!(err.contains("commit or stash"), "{err}");
    assert_eq!(t.rev(&t.b, "main"), before);
    assert_eq!(
        fs::read_to_string(t.b.join("f")).unwrap(),
        "my work in progress\n"
    );
    // Once the change is stashed away the same sync fast-forwards.
    t.git(&t.b, &["stash", "-q"]);
    assert_eq!(t.sync(&t.b).0, 0);
    assert_eq!(t.rev(&t.b, "main"), c);
}

#[test]
fn an_untracked_file_in_the_way_is_not_overwritten() {
    let t = Two::new("untracked");
    t.commit(&t.a, "new", "from a\n");
    assert_eq!(t.sync(&t.a).0, 0);
    fs::write(t.b.join("new"), "mine, untracked\n").unwrap();
    let (code, ev, err) = t.sync(&t.b);
    assert_eq!(code, 6, "{err}");
    let p = peer_event(&ev);
    assert_eq!(p["outcome"], "local_changes");
    assert!(p["message"].as_str().unwrap().contains("untracked"), "{p}");
    assert_eq!(
        fs::read_to_string(t.b.join("new")).unwrap(),
        "mine, untracked\n"
    );
}

#[test]
fn diverged_histories_are_reported_and_left_alone_on_both_sides() {
    let t = Two::new("diverged");
    let ca = t.commit(&t.a, "f", "a\n");
    let cb = t.commit(&t.b, "f", "b\n");
    for (repo, mine, theirs) in [(&t.a, &ca, "alpha"), (&t.b, &cb, "beta"), (&t.a, &ca, "")] {
        let (code, ev, err) = t.sync(repo);
        assert_eq!(code, 6, "{err}");
        assert_eq!(peer_event(&ev)["outcome"], "diverged");
        assert!(err.contains("nothing was merged"), "{err}");
        assert_eq!(&t.rev(repo, "main"), mine, "{theirs}");
    }
    assert_eq!(t.rev(&t.a, "main"), ca);
    assert_eq!(t.rev(&t.b, "main"), cb);
    assert_eq!(fs::read_to_string(t.a.join("f")).unwrap(), "a\n");
    assert_eq!(fs::read_to_string(t.b.join("f")).unwrap(), "b\n");
}

#[test]
fn what_cannot_be_synced_is_refused_with_exit_2() {
    let t = Two::new("refused");
    type Setup = Box<dyn Fn(&Two) -> PathBuf>;
    let cases: Vec<(Setup, &str)> = vec![
        (
            Box::new(|t: &Two| {
                let head = t.rev(&t.a, "HEAD");
                t.git(&t.a, &["checkout", "-q", &head]);
                t.a.clone()
            }),
            "detached",
        ),
        (
            Box::new(|t: &Two| {
                t.git(&t.b, &["checkout", "-q", "--orphan", "fresh"]);
                t.b.clone()
            }),
            "no commits yet",
        ),
        (
            Box::new(|t: &Two| {
                let lone = t.root.join("lone");
                t.git(&t.root, &["init", "-q", "lone"]);
                lone
            }),
            "no pairings",
        ),
        (
            Box::new(|t: &Two| t.root.clone()),
            "not in a git repository",
        ),
    ];
    for (setup, needle) in cases {
        let dir = setup(&t);
        let out = t.pair_cmd(&dir, &["sync", "--json"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{needle}: {err}");
        assert!(err.contains(needle), "{needle}: {err}");
        let stdout = text(&out.stdout);
        let ev: Value = serde_json::from_str(stdout.trim()).unwrap();
        assert_eq!(
            (ev["event"].as_str(), ev["reason"].as_str()),
            (Some("failed"), Some("usage"))
        );
    }
    let out = t.pair_cmd(&t.b, &["sync", "nosuch"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no pairing named nosuch"));
    t.git(&t.b, &["checkout", "-q", "-b", "synced/x", "main"]);
    let out = t.pair_cmd(&t.b, &["sync"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("git switch x"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn name_restricts_the_sync_to_one_peer_and_a_missing_peer_fails_alone() {
    let t = Two::new("name");
    t.pair(&t.a, "gone", &t.root.join("nowhere"));
    let c = t.commit(&t.a, "f", "two\n");
    let (code, ev, _) = t.sync(&t.a);
    assert_eq!(code, 1);
    let outcomes: Vec<(&str, &str)> = ev
        .iter()
        .filter(|e| e["event"] == "sync_peer")
        .map(|e| {
            (
                e["remote"].as_str().unwrap(),
                e["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("beta", "synced"), ("gone", "failed")]);
    assert_eq!(t.rev(&t.b, "synced/main"), c);
    let out = t.pair_cmd(&t.a, &["sync", "beta"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("gone"));
}

fn hooks_dir(t: &Two, repo: &Path) -> PathBuf {
    let p = t.git(repo, &["rev-parse", "--git-path", "hooks"]);
    repo.join(p.trim())
}

#[test]
fn hooks_chain_to_the_users_hook_and_uninstall_restores_it_byte_for_byte() {
    let t = Two::new("hooks");
    let dir = hooks_dir(&t, &t.a);
    fs::create_dir_all(&dir).unwrap();
    let mine = "#!/bin/sh\n# mine \u{e9}\r\necho \"$@\" >> \"$HOME/user-hook-ran\"\nexit 0\n";
    let path = dir.join("post-commit");
    fs::write(&path, mine).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o750)).unwrap();
    let checkout = dir.join("post-checkout");
    fs::write(&checkout, "#!/bin/sh\nexit 3\n").unwrap();
    fs::set_permissions(&checkout, fs::Permissions::from_mode(0o700)).unwrap();

    // What git makes of the user's failing post-checkout on its own (it reports 1).
    let alone = t
        .git_out(&t.a, &["checkout", "-q", "-b", "before"])
        .status
        .code();
    assert_ne!(alone, Some(0));
    t.git_out(&t.a, &["checkout", "-q", "main"]);

    let out = t.pair_cmd(&t.a, &["hooks", "install"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(said.contains("post-commit.git-pair-user"), "{said}");
    let again = t.pair_cmd(&t.a, &["hooks", "install"]);
    assert!(
        text(&again.stderr).contains("already installed"),
        "{}",
        text(&again.stderr)
    );

    let c = t.commit(&t.a, "f", "two\n");
    let log = t.wait_for_syncs(&t.a, 1);
    assert!(log.contains("beta: pushed main"), "{log}");
    assert_eq!(t.rev(&t.b, "synced/main"), c);
    assert!(t.home.join("user-hook-ran").exists(), "the user's hook ran");
    // The user's post-checkout still decides git's exit status.
    let out = t.git_out(&t.a, &["checkout", "-q", "-b", "side"]);
    assert_eq!(out.status.code(), alone, "{}", text(&out.stderr));

    let out = t.pair_cmd(&t.a, &["hooks", "uninstall"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(fs::read_to_string(&path).unwrap(), mine);
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
        0o750
    );
    assert_eq!(fs::read(&checkout).unwrap(), b"#!/bin/sh\nexit 3\n");
    assert_eq!(
        fs::metadata(&checkout).unwrap().permissions().mode() & 0o7777,
        0o700
    );
    assert!(!dir.join("post-merge").exists());
    assert!(!dir.join("post-commit.git-pair-user").exists());
    let out = t.pair_cmd(&t.a, &["hooks", "uninstall"]);
    assert!(out.status.success());
    assert!(
        text(&out.stderr).contains("No git pair hooks"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn hooks_go_where_core_hooks_path_says() {
    let t = Two::new("hookspath");
    t.git(&t.a, &["config", "core.hooksPath", "my-hooks"]);
    let out = t.pair_cmd(&t.a, &["hooks", "install"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("core.hooksPath"),
        "{}",
        text(&out.stderr)
    );
    assert!(t.a.join("my-hooks/post-commit").is_file());
    assert!(!t.a.join(".git/hooks/post-commit").exists());
    let c = t.commit(&t.a, "g", "x\n");
    t.wait_for_syncs(&t.a, 1);
    assert_eq!(t.rev(&t.b, "synced/main"), c);
}

#[test]
fn ten_quick_commits_make_few_syncs_and_the_last_one_arrives() {
    let t = Two::new("burst");
    assert!(t.pair_cmd(&t.a, &["hooks", "install"]).status.success());
    let started = Instant::now();
    let mut last = String::new();
    for i in 0..10 {
        last = t.commit(&t.a, "f", &format!("{i}\n"));
    }
    let burst = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.try_rev(&t.b, "synced/main").as_deref() != Some(last.as_str()) {
        assert!(
            Instant::now() < deadline,
            "the last commit never arrived:\n{}",
            t.log(&t.a)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = t.wait_for_syncs(&t.a, 1);
    let runs = log.matches("sync started").count();
    eprintln!("10 commits in {burst:?}: {runs} sync runs");
    assert!((1..=3).contains(&runs), "{runs} runs:\n{log}");
}

#[test]
fn a_hook_never_fails_or_holds_up_a_commit() {
    let t = Two::new("robust");
    assert!(t.pair_cmd(&t.a, &["hooks", "install"]).status.success());
    let hook = hooks_dir(&t, &t.a).join("post-commit");
    let script = fs::read_to_string(&hook).unwrap();
    assert!(script.contains(&format!(
        "git_pair='{}'",
        fs::canonicalize(BIN).unwrap().display()
    )));
    // The binary is gone (and git-pair is not on PATH): the commit still works, silently.
    let broken = script.replacen(
        &format!("git_pair='{}'", fs::canonicalize(BIN).unwrap().display()),
        "git_pair='/nonexistent/git-pair'",
        1,
    );
    fs::write(&hook, &broken).unwrap();
    fs::write(t.a.join("f"), "x\n").unwrap();
    t.git(&t.a, &["add", "f"]);
    let out = t.git_out(&t.a, &["commit", "-q", "-m", "x"]);
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // An edited hook is not git-pair's to remove (another binary path is no edit).
    fs::write(&hook, format!("{broken}echo mine\n")).unwrap();
    let out = t.pair_cmd(&t.a, &["hooks", "uninstall"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("edited"),
        "{}",
        text(&out.stderr)
    );
    assert!(hook.exists());
}

#[test]
fn removing_the_last_pairing_says_how_to_uninstall_the_hooks() {
    let t = Two::new("remove");
    assert!(t.pair_cmd(&t.b, &["hooks", "install"]).status.success());
    let out = t.pair_cmd(&t.b, &["remove", "alpha"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("git pair hooks uninstall"), "{err}");
    assert!(
        hooks_dir(&t, &t.b).join("post-commit").exists(),
        "not uninstalled unasked"
    );
}
