//! End-to-end test of `git-pair serve --repo PATH` as the forced command of a paired key.
//!
//! No sshd and no network: `GIT_SSH_COMMAND` points at a small script that does what sshd does
//! for a key with a forced command (HOME, cd to it, SSH_ORIGINAL_COMMAND = what the client
//! asked for) and runs the real binary. Real `git clone`/`fetch`/`push`/`archive` talk to it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_git-pair");

/// Stands in for `ssh`: skips the options and the host git passes, then behaves like sshd with
/// `command="git-pair serve --repo ..."` in authorized_keys. With FAKE_SSH_DIRECT it runs git
/// without git-pair instead (the control case of the environment test). FAKE_SSH_GIT_CONFIG
/// simulates an sshd `AcceptEnv GIT_*` letting the peer set GIT_CONFIG_PARAMETERS.
const FAKE_SSH: &str = r#"#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-l|-i|-F) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
shift
cd "$SERVE_HOME" || exit 255
if [ -n "$FAKE_SSH_GIT_CONFIG" ]; then
  GIT_CONFIG_PARAMETERS="$FAKE_SSH_GIT_CONFIG"
  export GIT_CONFIG_PARAMETERS
fi
if [ -n "$FAKE_SSH_DIRECT" ]; then
  exec env HOME="$SERVE_HOME" git upload-pack "$SERVE_REPO"
fi
exec env HOME="$SERVE_HOME" SSH_ORIGINAL_COMMAND="$*" "$GIT_PAIR_BIN" serve --repo "$SERVE_REPO"
"#;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "git-pair-serve-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(std::fs::canonicalize(dir).unwrap())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Server side: a home with the served repository `notes` and another one, `secret`.
/// Client side: its own home and a work directory.
struct World {
    _tmp: TempDir,
    server_home: PathBuf,
    notes: PathBuf,
    secret: PathBuf,
    client: PathBuf,
    client_home: PathBuf,
    fake_ssh: PathBuf,
}

fn check(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl World {
    fn new() -> Self {
        let tmp = TempDir::new();
        let server_home = tmp.0.join("server-home");
        let client_home = tmp.0.join("client-home");
        let client = tmp.0.join("client");
        for d in [&server_home, &client_home, &client] {
            std::fs::create_dir_all(d).unwrap();
        }
        let fake_ssh = tmp.0.join("fake-ssh");
        std::fs::write(&fake_ssh, FAKE_SSH).unwrap();
        let world = World {
            notes: server_home.join("notes"),
            secret: server_home.join("secret"),
            server_home,
            client,
            client_home,
            fake_ssh,
            _tmp: tmp,
        };
        world.make_repo(&world.notes, "notes.txt", "shared notes\n");
        world.make_repo(&world.secret, "secret.txt", "TOP SECRET\n");
        world
    }

    fn command(&self, program: &str, cwd: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(cwd)
            .stdin(Stdio::null())
            .env("HOME", &self.client_home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.invalid")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.invalid")
            .env(
                "GIT_SSH_COMMAND",
                format!("sh '{}'", self.fake_ssh.display()),
            )
            .env("GIT_SSH_VARIANT", "ssh")
            .env("GIT_PAIR_BIN", BIN)
            .env("SERVE_HOME", &self.server_home)
            .env("SERVE_REPO", &self.notes)
            .env_remove("SSH_ORIGINAL_COMMAND")
            .env_remove("FAKE_SSH_DIRECT")
            .env_remove("FAKE_SSH_GIT_CONFIG")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE");
        cmd
    }

    fn git(&self, cwd: &Path, args: &[&str]) -> Output {
        self.command("git", cwd).args(args).output().unwrap()
    }

    fn make_repo(&self, dir: &Path, file: &str, content: &str) {
        std::fs::create_dir_all(dir).unwrap();
        check(&self.git(dir, &["init", "-q", "-b", "main"]), "git init");
        std::fs::write(dir.join(file), content).unwrap();
        check(&self.git(dir, &["add", file]), "git add");
        check(
            &self.git(dir, &["commit", "-q", "-m", "first"]),
            "git commit",
        );
    }

    /// `git ls-remote URL` from the client.
    fn ls_remote(&self, url: &str) -> Output {
        self.git(&self.client, &["ls-remote", url])
    }

    /// Runs the fake ssh by hand with a remote command, as `ssh host COMMAND` would.
    fn ssh(&self, remote_command: &str) -> Output {
        self.command("sh", &self.client)
            .arg(&self.fake_ssh)
            .arg("fakehost")
            .arg(remote_command)
            .output()
            .unwrap()
    }
}

#[test]
fn clone_and_push_work_on_the_served_repository() {
    let w = World::new();
    let url = format!("fakehost:{}", w.notes.display());
    check(&w.git(&w.client, &["clone", "-q", &url, "copy"]), "clone");
    let copy = w.client.join("copy");
    assert_eq!(
        std::fs::read_to_string(copy.join("notes.txt")).unwrap(),
        "shared notes\n"
    );

    std::fs::write(copy.join("more.txt"), "from the peer\n").unwrap();
    check(&w.git(&copy, &["add", "more.txt"]), "add");
    check(&w.git(&copy, &["commit", "-q", "-m", "peer"]), "commit");
    check(
        &w.git(
            &copy,
            &["push", "-q", "origin", "HEAD:refs/heads/from-peer"],
        ),
        "push",
    );
    let pushed = w.git(&w.notes, &["show", "from-peer:more.txt"]);
    check(&pushed, "show pushed file");
    assert_eq!(pushed.stdout, b"from the peer\n");

    check(&w.git(&copy, &["fetch", "-q", "origin"]), "fetch");
}

#[test]
fn every_path_form_git_sends_reaches_the_served_repository() {
    let w = World::new();
    std::os::unix::fs::symlink(&w.notes, w.server_home.join("notes-link")).unwrap();
    let abs = w.notes.display().to_string();
    for url in [
        format!("fakehost:{abs}"),
        format!("fakehost:{abs}/"),
        format!("fakehost:{abs}/.git"),
        format!("ssh://fakehost{abs}"),
        "fakehost:notes".to_owned(),
        "fakehost:notes/".to_owned(),
        "fakehost:~/notes".to_owned(),
        "ssh://fakehost/~/notes".to_owned(),
        "fakehost:notes-link".to_owned(),
    ] {
        let out = w.ls_remote(&url);
        check(&out, &url);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("refs/heads/main"),
            "{url}"
        );
    }
}

#[test]
fn other_repositories_are_refused() {
    let w = World::new();
    std::os::unix::fs::symlink(&w.secret, w.server_home.join("secret-link")).unwrap();
    let secret = w.secret.display().to_string();
    for url in [
        format!("fakehost:{secret}"),
        format!("fakehost:{secret}/.git"),
        "fakehost:secret".to_owned(),
        "fakehost:~/secret".to_owned(),
        "fakehost:notes/../secret".to_owned(),
        "fakehost:secret-link".to_owned(),
        "fakehost:/".to_owned(),
    ] {
        let out = w.ls_remote(&url);
        assert!(!out.status.success(), "{url} was served");
        assert!(out.stdout.is_empty(), "{url} leaked refs");
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "git pair serve: refused: only git fetch/push to {} are allowed with this key",
                w.notes.display()
            )),
            "{url}: {err}"
        );
    }

    let out = w.git(
        &w.client,
        &["clone", "-q", &format!("fakehost:{secret}"), "s"],
    );
    assert!(!out.status.success());
    assert!(!w.client.join("s/secret.txt").exists());
}

#[test]
fn non_git_commands_are_refused_with_one_clear_line() {
    let w = World::new();
    let out = w.ssh("cat /etc/passwd");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        stderr(&out),
        format!(
            "git pair serve: refused: only git fetch/push to {} are allowed with this key \
             (cat is not one of git-upload-pack, git-receive-pack, git-upload-archive); \
             the request was: cat /etc/passwd\n",
            w.notes.display()
        )
    );

    for command in [
        format!("git-upload-pack '{}'; cat /etc/passwd", w.notes.display()),
        format!("git-upload-pack '{}' && id", w.notes.display()),
        format!("git-upload-pack \"$(id){}\"", w.notes.display()),
        format!("git-upload-pack '{}' --extra", w.notes.display()),
        "git-upload-pack '--help'".to_owned(),
        "sh".to_owned(),
        "internal-sftp".to_owned(),
        String::new(),
    ] {
        let out = w.ssh(&command);
        assert_eq!(out.status.code(), Some(1), "{command:?}");
        assert!(out.stdout.is_empty(), "{command:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("git pair serve: refused: "),
            "{command:?}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{command:?}: {err}");
    }
}

#[test]
fn interactive_logins_are_refused() {
    let w = World::new();
    let out = w
        .command(BIN, &w.server_home)
        .args([
            OsStr::new("serve"),
            OsStr::new("--repo"),
            w.notes.as_os_str(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "git pair serve: refused: this key may only be used by git (git pair serve): \
         interactive logins are refused\n"
    );
}

#[test]
fn a_missing_repository_is_reported() {
    let w = World::new();
    let gone = w.server_home.join("gone");
    let out = w
        .command(BIN, &w.server_home)
        .args([OsStr::new("serve"), OsStr::new("--repo"), gone.as_os_str()])
        .env(
            "SSH_ORIGINAL_COMMAND",
            format!("git-upload-pack '{}'", gone.display()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with(&format!("git pair serve: cannot serve {}", gone.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn git_archive_remote_works() {
    let w = World::new();
    let out = w.git(
        &w.client,
        &[
            "archive",
            &format!("--remote=fakehost:{}", w.notes.display()),
            "--format=tar",
            "main",
        ],
    );
    check(&out, "git archive --remote");
    // A tar archive: the member name, then the content, in 512-byte blocks.
    assert!(out.stdout.len() >= 1024 && out.stdout.len() % 512 == 0);
    let tar = String::from_utf8_lossy(&out.stdout);
    assert!(tar.contains("notes.txt") && tar.contains("shared notes"));
}

/// The server speaks protocol v2 only if GIT_PROTOCOL (set by the client for ssh) reaches
/// `git upload-pack` through git-pair.
#[test]
fn git_protocol_v2_passes_through() {
    let w = World::new();
    let url = format!("fakehost:{}", w.notes.display());
    let server_greeting = |version: &str| {
        let trace = w.client.join(format!("packet-trace-v{version}"));
        let out = w
            .command("git", &w.client)
            .args([
                "-c",
                &format!("protocol.version={version}"),
                "ls-remote",
                &url,
            ])
            .env("GIT_TRACE_PACKET", &trace)
            .output()
            .unwrap();
        check(&out, "ls-remote");
        std::fs::read_to_string(trace).unwrap()
    };
    let v2 = server_greeting("2");
    assert!(v2.contains("< version 2"), "server did not speak v2:\n{v2}");
    assert!(v2.contains("> command=ls-refs"), "{v2}");
    // Control: asked for v0, the same trace has no v2 greeting.
    let v0 = server_greeting("0");
    assert!(!v0.contains("version 2"), "{v0}");
}

#[test]
fn git_config_from_the_peers_environment_does_not_reach_git() {
    let w = World::new();
    let marker = w.client.join("hook-ran");
    let inject = format!(
        "'uploadpack.packobjectshook'='touch {}; exec'",
        marker.display()
    );
    let url = format!("fakehost:{}", w.notes.display());

    // Control: without git-pair in between, the injected hook runs. This proves the test
    // would notice if git-pair passed the variable on.
    let out = w
        .command("git", &w.client)
        .args(["clone", "-q", &url, "direct"])
        .env("FAKE_SSH_GIT_CONFIG", &inject)
        .env("FAKE_SSH_DIRECT", "1")
        .output()
        .unwrap();
    check(&out, "clone through plain git upload-pack");
    assert!(
        marker.exists(),
        "control case: the injected hook did not run"
    );
    std::fs::remove_file(&marker).unwrap();

    let out = w
        .command("git", &w.client)
        .args(["clone", "-q", &url, "through-git-pair"])
        .env("FAKE_SSH_GIT_CONFIG", &inject)
        .output()
        .unwrap();
    check(&out, "clone through git-pair serve");
    assert!(
        !marker.exists(),
        "GIT_CONFIG_PARAMETERS reached git upload-pack"
    );
}
