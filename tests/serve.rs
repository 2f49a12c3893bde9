//! End-to-end test of `git-pair serve --repo PATH` as the forced command of a paired key.
//!
//! No sshd and no network: `GIT_SSH_COMMAND` points at a small script that does what sshd does
//! for a key with a forced command (HOME, cd to it, SSH_ORIGINAL_COMMAND = what the client
//! asked for) and runs the real binary. Real `git clone`/`fetch`/`push`/`archive` talk to it.
//!
//! git-annex runs `ssh` from PATH instead, so its tests put a fake `ssh` there. Tests of the
//! git-annex-shell decision use a recording fake git-annex-shell; the tests named `real_*` use
//! the installed git-annex, and without it report themselves SKIPPED (and fail unless
//! GIT_PAIR_ALLOW_SKIP=1).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_git-pair");

/// Stands in for `ssh`: skips the options and the host git passes, then behaves like sshd with
/// `command="git-pair serve --repo ..."` in authorized_keys. With FAKE_SSH_DIRECT it runs git
/// without git-pair instead (the control case of the environment tests). FAKE_SSH_GIT_CONFIG
/// simulates an sshd `AcceptEnv GIT_*` letting the peer set GIT_CONFIG_PARAMETERS, and
/// FAKE_SSH_ENV (`NAME=VALUE` words) an `AcceptEnv *` letting it set anything.
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
if [ -n "$FAKE_SSH_ENV" ]; then
  export $FAKE_SSH_ENV
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
            .env_remove("FAKE_SSH_ENV")
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
                "git pair serve: refused: only git fetch/push and git-annex on {} are allowed with this key",
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
            "git pair serve: refused: only git fetch/push and git-annex on {} are allowed with \
             this key (cat is not one of git-upload-pack, git-receive-pack, git-upload-archive, \
             git-annex-shell); the request was: cat /etc/passwd\n",
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
        "git pair serve: refused: this key may only be used by git and git-annex (git pair serve): \
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

/// The issue's case: an sshd that accepts `XDG_CONFIG_HOME` lets the peer name a global git
/// config, and one that sets `uploadpack.packObjectsHook` makes `git upload-pack` run a command
/// of the peer's choosing. serve passes an allowlist only.
#[test]
fn a_global_config_named_by_the_peers_environment_does_not_reach_git() {
    let w = World::new();
    let marker = w.client.join("hook-ran");
    let xdg = w.client.join("peer-xdg");
    std::fs::create_dir_all(xdg.join("git")).unwrap();
    std::fs::write(
        xdg.join("git/config"),
        format!(
            "[uploadpack]\n\tpackObjectsHook = \"touch {}; exec\"\n",
            marker.display()
        ),
    )
    .unwrap();
    let peer_env = format!("XDG_CONFIG_HOME={}", xdg.display());
    let url = format!("fakehost:{}", w.notes.display());

    // Control: plain git upload-pack with that environment runs the hook.
    let out = w
        .command("git", &w.client)
        .args(["clone", "-q", &url, "direct"])
        .env("FAKE_SSH_ENV", &peer_env)
        .env("FAKE_SSH_DIRECT", "1")
        .output()
        .unwrap();
    check(&out, "clone through plain git upload-pack");
    assert!(marker.exists(), "control case: the hook did not run");
    std::fs::remove_file(&marker).unwrap();

    let out = w
        .command("git", &w.client)
        .args(["clone", "-q", &url, "through-git-pair"])
        .env("FAKE_SSH_ENV", &peer_env)
        .output()
        .unwrap();
    check(&out, "clone through git-pair serve");
    assert!(!marker.exists(), "XDG_CONFIG_HOME reached git upload-pack");
}

/// What git itself gets: a `git` first on PATH records the names of its variables when it
/// serves (`upload-pack`, `receive-pack`), then runs the real git. The peer's `LD_PRELOAD`,
/// `XDG_CONFIG_HOME`, `GIT_DIR`, `GIT_EXEC_PATH`, `GIT_PROTOCOL` in another form and a locale
/// that is a path never reach it; `GIT_PROTOCOL=version=2` does.
#[test]
fn git_gets_only_the_allowlisted_environment() {
    let w = World::new();
    let real_git = Command::new("sh")
        .args(["-c", "command -v git"])
        .output()
        .unwrap();
    let real_git = String::from_utf8(real_git.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert!(real_git.starts_with('/'), "git not found: {real_git:?}");
    let bin = w.client.join("git-wrapper-bin");
    assert!(!std::env::var("PATH").unwrap_or_default().contains(' '));
    let record = w.client.join("git-env");
    write_executable(
        &bin.join("git"),
        &format!(
            "#!/bin/sh\ncase \"$1\" in upload-pack|receive-pack) env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | sort > '{record}.env'; env | grep -q '^LANG=' && env | sed -n 's/^LANG=//p' > '{record}.lang' ;; esac\nexec '{real_git}' \"$@\"\n",
            record = record.display()
        ),
    );
    let url = format!("fakehost:{}", w.notes.display());
    for (variable, value) in [
        ("LD_PRELOAD", "/nonexistent/git-pair-test-preload.so"),
        ("XDG_CONFIG_HOME", "/nonexistent/xdg"),
        ("GIT_DIR", "/nonexistent/secret.git"),
        ("GIT_EXEC_PATH", "/nonexistent/libexec"),
        ("LANG", "/nonexistent/locale"),
    ] {
        let _ = std::fs::remove_file(format!("{}.env", record.display()));
        let _ = std::fs::remove_file(format!("{}.lang", record.display()));
        let out = w
            .command("git", &w.client)
            .args(["-c", "protocol.version=2", "ls-remote", &url])
            // On the server's side of the fake ssh: git puts its exec-path first in the PATH of
            // the ssh it runs, which would find the real git before the wrapper.
            .env(
                "FAKE_SSH_ENV",
                format!(
                    "PATH={} {variable}={value}",
                    path_with(&bin).to_str().unwrap()
                ),
            )
            .output()
            .unwrap();
        check(&out, variable);
        let names = env_names(&record);
        assert!(
            !names.iter().any(|n| n == variable) || variable == "LANG",
            "{variable}: {names:?}"
        );
        assert!(
            std::fs::read_to_string(format!("{}.lang", record.display()))
                .map_or(true, |lang| !lang.contains("nonexistent")),
            "{variable}"
        );
        assert_allowed_env(&names, &["GIT_PROTOCOL"]);
    }
}

// --- git-annex-shell ---

/// Stands in for git-annex-shell: records its arguments, then the variables serve must set or
/// scrub, then the names of every variable it got, in RECORD (written into the script: serve
/// passes no variable of the caller's on that could name it).
const FAKE_ANNEX_SHELL: &str = r#"#!/bin/sh
{
  for a in "$@"; do printf 'arg=%s\n' "$a"; done
  printf 'GIT_ANNEX_SHELL_DIRECTORY=%s\n' "${GIT_ANNEX_SHELL_DIRECTORY-unset}"
  printf 'GIT_ANNEX_SHELL_LIMITED=%s\n' "${GIT_ANNEX_SHELL_LIMITED-unset}"
  printf 'GIT_ANNEX_SHELL_READONLY=%s\n' "${GIT_ANNEX_SHELL_READONLY-unset}"
  printf 'GIT_DIR=%s\n' "${GIT_DIR-unset}"
  printf 'GIT_PROTOCOL=%s\n' "${GIT_PROTOCOL-unset}"
} > 'RECORD'
env | sed -n 's/^\([A-Za-z_][A-Za-z0-9_]*\)=.*/\1/p' | sort > 'RECORD.env'
echo fake-annex-shell-ran
"#;

/// Stands in for the `ssh` git-annex runs (it runs `ssh` from PATH, not GIT_SSH_COMMAND):
/// options may come before and after the host (`fakehost -S sock -o ... -T COMMAND`,
/// `-o BatchMode=true ... fakehost true`); the rest is the command, joined with spaces as ssh
/// does. Then it behaves like sshd with the forced command, as FAKE_SSH does.
const ANNEX_SSH: &str = r#"#!/bin/sh
host=
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-p|-l|-i|-F|-S|-O|-E|-b|-c|-m|-J|-L|-R|-D|-W|-w|-Q|-B|-e) shift 2 ;;
    -*) shift ;;
    *) if [ -z "$host" ]; then host=$1; shift; else break; fi ;;
  esac
done
echo "$*" >> "$ANNEX_SSH_LOG"
cd "$SERVE_HOME" || exit 255
exec env HOME="$SERVE_HOME" SSH_ORIGINAL_COMMAND="$*" "$GIT_PAIR_BIN" serve --repo "$SERVE_REPO"
"#;

fn write_executable(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A PATH with `first` in front of the test's own.
fn path_with(first: &Path) -> std::ffi::OsString {
    let mut dirs = vec![first.to_path_buf()];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

impl World {
    /// Runs `git pair serve --repo notes` as sshd would for `request`: in the server's home,
    /// with HOME set to it.
    fn serve(&self, request: &str) -> Command {
        self.serve_repo(&self.notes, request)
    }

    /// [`World::serve`] for the forced command of a pairing of `repo`.
    fn serve_repo(&self, repo: &Path, request: &str) -> Command {
        let mut cmd = self.command(BIN, &self.server_home);
        cmd.args([OsStr::new("serve"), OsStr::new("--repo"), repo.as_os_str()])
            .env("HOME", &self.server_home)
            .env("SSH_ORIGINAL_COMMAND", request);
        cmd
    }

    /// A bare repository `name` in the server's home, made with `git init --bare ARGS` and
    /// holding notes' main.
    fn bare_repo(&self, name: &str, args: &[&str]) -> PathBuf {
        let bare = self.server_home.join(name);
        let mut init = vec!["init", "-q", "--bare", "--initial-branch=main"];
        init.extend_from_slice(args);
        init.push(bare.to_str().unwrap());
        check(&self.git(&self.server_home, &init), "git init --bare");
        check(
            &self.git(&self.notes, &["push", "-q", bare.to_str().unwrap(), "main"]),
            "push main to the bare repository",
        );
        bare
    }

    /// `git ARGS` in `cwd` on the client, with ANNEX_SSH as the `ssh` on PATH, so that git and
    /// git-annex reach `git pair serve` as through sshd; each command ssh was asked to run is
    /// appended to [`World::fake_ssh_log`].
    fn git_via_fake_ssh(&self, cwd: &Path, args: &[&str]) -> Output {
        let bin = self.client.join("ssh-bin");
        if !bin.join("ssh").exists() {
            write_executable(&bin.join("ssh"), ANNEX_SSH);
        }
        self.command("git", cwd)
            .args(args)
            .env("PATH", path_with(&bin))
            .env("ANNEX_SSH_LOG", self.fake_ssh_log())
            .output()
            .unwrap()
    }

    fn fake_ssh_log(&self) -> PathBuf {
        self.client.join("ssh-log")
    }

    /// A directory holding the recording git-annex-shell, and the record file it writes.
    fn fake_annex_shell(&self) -> (PathBuf, PathBuf) {
        let bin = self.client.join("fake-annex-bin");
        let record = self.client.join("annex-record");
        write_executable(
            &bin.join("git-annex-shell"),
            &FAKE_ANNEX_SHELL.replace("RECORD", record.to_str().unwrap()),
        );
        (bin, record)
    }

    /// Makes `dir` (a repository of `make_repo`) a git-annex repository; returns its UUID.
    fn annex_init(&self, dir: &Path, home: &Path, description: &str) -> String {
        let out = self
            .command("git", dir)
            .args(["annex", "init", "-q", description])
            .env("HOME", home)
            .output()
            .unwrap();
        check(&out, "git annex init");
        let out = self
            .command("git", dir)
            .args(["config", "annex.uuid"])
            .output()
            .unwrap();
        check(&out, "git config annex.uuid");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }
}

/// Whether the real git-annex is installed. When it is not, the test says so and passes only
/// if skipping was asked for with GIT_PAIR_ALLOW_SKIP=1, as the other tests that need
/// software from outside do: it never passes silently having checked nothing.
fn git_annex_installed(test: &str) -> bool {
    let runs = Command::new("git-annex")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if runs && git_pair::commands::serve::annex_shell_available() {
        return true;
    }
    eprintln!("SKIPPED {test}: git-annex (with git-annex-shell) is not installed");
    assert_eq!(
        std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
        Ok("1"),
        "git-annex is missing: install git-annex, or set GIT_PAIR_ALLOW_SKIP=1 to skip"
    );
    false
}

/// The names of the variables the fake git-annex-shell (or git wrapper) got, without those the
/// shell running it adds itself.
fn env_names(record: &Path) -> Vec<String> {
    let mut file = record.as_os_str().to_owned();
    file.push(".env");
    std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("no environment was recorded ({e})"))
        .lines()
        .filter(|n| !["PWD", "OLDPWD", "SHLVL", "_"].contains(n))
        .map(str::to_owned)
        .collect()
}

/// Every name is one serve passes on (its allowlist, or one it sets itself), and `required`
/// are among them.
fn assert_allowed_env(names: &[String], required: &[&str]) {
    const PASSED: [&str; 10] = [
        "HOME",
        "PATH",
        "USER",
        "LOGNAME",
        "SHELL",
        "LANG",
        "TZ",
        "GIT_PROTOCOL",
        "GIT_ANNEX_SHELL_DIRECTORY",
        "GIT_ANNEX_SHELL_LIMITED",
    ];
    for name in names {
        assert!(
            PASSED.contains(&name.as_str()) || name.starts_with("LC_"),
            "{name} reached the child; all it got: {names:?}"
        );
    }
    for name in ["HOME", "PATH"].iter().chain(required) {
        assert!(
            names.iter().any(|n| n == name),
            "{name} is missing: {names:?}"
        );
    }
}

fn record(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("git-annex-shell did not run ({}: {e})", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn allowed_annex_commands_reach_git_annex_shell_with_our_canonical_path() {
    let w = World::new();
    let (bin, rec) = w.fake_annex_shell();
    std::os::unix::fs::symlink(&w.notes, w.server_home.join("notes-link")).unwrap();
    let canonical = std::fs::canonicalize(&w.notes).unwrap();
    let canonical = canonical.to_str().unwrap();
    let uuid = "4b73dc0e-59e2-4221-a977-ca3e845fc53a";
    // A git-annex repository: only there does git-annex-shell run.
    check(
        &w.git(&w.notes, &["config", "annex.uuid", uuid]),
        "annex.uuid",
    );
    let abs = w.notes.display().to_string();
    for (request, args) in [
        (
            "git-annex-shell 'configlist' '/~/notes'".to_owned(),
            vec!["configlist"],
        ),
        (
            "git-annex-shell 'configlist' '/~/notes' '--debug' '--' 'autoinit=1' '--'".to_owned(),
            vec!["configlist", "--debug", "--", "autoinit=1", "--"],
        ),
        (
            format!("git-annex-shell 'p2pstdio' '{abs}/' '{uuid}' --uuid {uuid}"),
            vec!["p2pstdio", uuid, "--uuid", uuid],
        ),
        (
            "git-annex-shell 'notifychanges' 'notes-link'".to_owned(),
            vec!["notifychanges"],
        ),
        (
            format!("git-annex-shell 'inannex' '{abs}/.git' 'K1' 'K2'"),
            vec!["inannex", "K1", "K2"],
        ),
    ] {
        let _ = std::fs::remove_file(&rec);
        let out = w
            .serve(&request)
            .env("PATH", path_with(&bin))
            // What an sshd with AcceptEnv could let the peer set: none may reach it.
            .env("GIT_DIR", &w.secret)
            .env("GIT_ANNEX_SHELL_DIRECTORY", &w.secret)
            .env("GIT_ANNEX_SHELL_READONLY", "1")
            .env("GIT_PROTOCOL", "version=2")
            .env("XDG_CONFIG_HOME", &w.secret)
            .env("LD_PRELOAD", "/nonexistent/git-pair-test-preload.so")
            .output()
            .unwrap();
        check(&out, &request);
        assert_eq!(out.stdout, b"fake-annex-shell-ran\n", "{request}");
        assert_allowed_env(
            &env_names(&rec),
            &["GIT_ANNEX_SHELL_DIRECTORY", "GIT_PROTOCOL"],
        );
        // The command, then our canonical path in place of the peer's, then the rest.
        let mut expected: Vec<String> = vec![format!("arg={}", args[0])];
        expected.push(format!("arg={canonical}"));
        expected.extend(args[1..].iter().map(|a| format!("arg={a}")));
        expected.extend([
            format!("GIT_ANNEX_SHELL_DIRECTORY={canonical}"),
            "GIT_ANNEX_SHELL_LIMITED=1".to_owned(),
            "GIT_ANNEX_SHELL_READONLY=unset".to_owned(),
            "GIT_DIR=unset".to_owned(),
            "GIT_PROTOCOL=version=2".to_owned(),
        ]);
        assert_eq!(record(&rec), expected, "{request}");
    }
}

#[test]
fn annex_requests_for_other_directories_are_refused() {
    let w = World::new();
    let (bin, rec) = w.fake_annex_shell();
    std::os::unix::fs::symlink(&w.secret, w.server_home.join("secret-link")).unwrap();
    let secret = w.secret.display().to_string();
    for request in [
        format!("git-annex-shell 'configlist' '{secret}'"),
        format!("git-annex-shell 'p2pstdio' '{secret}/.git' 'U'"),
        "git-annex-shell 'configlist' '/~/secret'".to_owned(),
        "git-annex-shell 'configlist' 'secret'".to_owned(),
        "git-annex-shell 'configlist' '/~/notes/../secret'".to_owned(),
        "git-annex-shell 'configlist' 'secret-link'".to_owned(),
        "git-annex-shell 'configlist' '/~'".to_owned(),
        "git-annex-shell 'configlist' '/'".to_owned(),
        "git-annex-shell 'configlist' '/~root/notes'".to_owned(),
    ] {
        let out = w
            .serve(&request)
            .env("PATH", path_with(&bin))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{request}");
        assert!(out.stdout.is_empty(), "{request}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!(
                "git pair serve: refused: only git fetch/push and git-annex on {} are allowed \
                 with this key",
                w.notes.display()
            )),
            "{request}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{request}: {err}");
        assert!(!rec.exists(), "{request} ran git-annex-shell");
    }
}

#[test]
fn unknown_annex_commands_options_and_the_login_shell_form_are_refused() {
    let w = World::new();
    let (bin, rec) = w.fake_annex_shell();
    for (request, reason) in [
        (
            "git-annex-shell 'lockcontent' '/~/notes'",
            "(git-annex-shell lockcontent is not one of configlist, p2pstdio, notifychanges, \
             inannex, recvkey, sendkey, dropkey)",
        ),
        (
            "git-annex-shell 'git-upload-pack' '/~/notes'",
            "(git-annex-shell git-upload-pack is not one of configlist,",
        ),
        (
            "git-annex-shell -c \"configlist /~/notes\"",
            "(git-annex-shell -c is not accepted; git-annex sends its command without it)",
        ),
        (
            "git-annex-shell 'configlist' '/~/notes' -c 'core.fsmonitor=touch /tmp/x'",
            "(-c is not an option git-annex sends)",
        ),
        (
            "git-annex-shell 'configlist' '/~/notes' '--' 'hook=x' '--'",
            "(hook=x is not one of the fields",
        ),
        ("true; id", "(the command uses shell syntax (;)"),
    ] {
        let out = w
            .serve(request)
            .env("PATH", path_with(&bin))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{request}");
        assert!(out.stdout.is_empty(), "{request}");
        let err = stderr(&out);
        assert!(err.contains(reason), "{request}: {err}");
        assert_eq!(err.lines().count(), 1, "{request}: {err}");
        assert!(!rec.exists(), "{request} ran git-annex-shell");
    }
}

#[test]
fn the_connection_probe_succeeds_without_running_anything() {
    let w = World::new();
    let (bin, rec) = w.fake_annex_shell();
    let out = w
        .serve("true")
        .env("PATH", path_with(&bin))
        .output()
        .unwrap();
    check(&out, "true");
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(!rec.exists());
}

#[test]
fn a_missing_git_annex_shell_is_reported_with_the_fix() {
    let w = World::new();
    // A PATH without git-annex-shell (the test machine's may well have one).
    let empty = w.client.join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let out = w
        .serve("git-annex-shell 'configlist' '/~/notes'")
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let host = nix::unistd::gethostname().unwrap().into_string().unwrap();
    assert_eq!(
        stderr(&out),
        format!(
            "git pair serve: git-annex-shell is not installed on {host}, so git-annex cannot use \
             this remote; install git-annex on {host} (Debian/Ubuntu: sudo apt install \
             git-annex) and try again\n"
        )
    );
    // The same request for another repository is still refused as such, first.
    let out = w
        .serve("git-annex-shell 'configlist' '/~/secret'")
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert!(stderr(&out).starts_with("git pair serve: refused: "));
}

/// The settings, hooks and annex markers a git-annex initialisation leaves in a repository.
fn annex_traces(repo: &Path) -> Vec<String> {
    let git_dir = if repo.join(".git").is_dir() {
        repo.join(".git")
    } else {
        repo.to_path_buf()
    };
    let config = std::fs::read_to_string(git_dir.join("config")).unwrap();
    let mut traces: Vec<String> = config
        .lines()
        .map(str::trim)
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("uuid")
                || l.starts_with("version")
                || l.contains("annex")
                || l.contains("gcrypt")
        })
        .map(|l| format!("config: {l}"))
        .collect();
    for hook in std::fs::read_dir(git_dir.join("hooks"))
        .into_iter()
        .flatten()
    {
        let name = hook.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".sample") {
            traces.push(format!("hook: {name}"));
        }
    }
    if git_dir.join("annex").exists() {
        traces.push("the annex directory".to_owned());
    }
    traces
}

/// Issue 8, item 1: git-annex-shell runs only in a repository its owner made a git-annex
/// repository, decided when the request arrives. Plain repositories, bare and not, refuse every
/// command (the fake git-annex-shell never runs and nothing changes); annexed ones allow them.
#[test]
fn annex_commands_run_only_in_git_annex_repositories() {
    let w = World::new();
    let (bin, rec) = w.fake_annex_shell();
    let uuid = "4b73dc0e-59e2-4221-a977-ca3e845fc53a";
    let bare = w.bare_repo("store.git", &["--shared=group"]);
    for repo in [w.notes.clone(), bare] {
        let dir = repo.display().to_string();
        let requests = [
            format!("git-annex-shell 'configlist' '{dir}'"),
            format!("git-annex-shell 'configlist' '{dir}' '--' 'autoinit=1' '--'"),
            format!("git-annex-shell 'p2pstdio' '{dir}' '{uuid}' --uuid {uuid}"),
            format!("git-annex-shell 'notifychanges' '{dir}'"),
            format!("git-annex-shell 'inannex' '{dir}' 'K1'"),
            format!("git-annex-shell 'recvkey' '{dir}' 'K1'"),
            format!("git-annex-shell 'sendkey' '{dir}' 'K1'"),
            format!("git-annex-shell 'dropkey' '{dir}' '--quiet' '--force' 'K1'"),
        ];
        let config = if repo.join(".git").is_dir() {
            repo.join(".git/config")
        } else {
            repo.join("config")
        };
        let before = std::fs::read(&config).unwrap();
        for request in &requests {
            let _ = std::fs::remove_file(&rec);
            let out = w
                .serve_repo(&repo, request)
                .env("PATH", path_with(&bin))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "{request}");
            assert!(out.stdout.is_empty(), "{request}");
            let err = stderr(&out);
            assert!(
                err.contains(
                    "(git-annex-shell runs only in a git-annex repository, and this one has no \
                     annex.uuid; its owner can make it one with `git annex init`)"
                ),
                "{request}: {err}"
            );
            assert_eq!(err.lines().count(), 1, "{request}: {err}");
            assert!(
                !rec.exists(),
                "{request} ran git-annex-shell in a plain repository"
            );
        }
        assert_eq!(
            std::fs::read(&config).unwrap(),
            before,
            "{}",
            config.display()
        );

        // Made a git-annex repository by its owner: the next request is served.
        check(
            &w.git(&repo, &["config", "annex.uuid", uuid]),
            "git config annex.uuid",
        );
        for request in &requests {
            let _ = std::fs::remove_file(&rec);
            let out = w
                .serve_repo(&repo, request)
                .env("PATH", path_with(&bin))
                .output()
                .unwrap();
            check(&out, request);
            assert_eq!(out.stdout, b"fake-annex-shell-ran\n", "{request}");
        }
    }
}

/// Issue 8, item 1, the second repro with the real git-annex: a peer pushes a `git-annex`
/// branch (carrying `annex.largefiles=anything`) into a plain repository and asks for
/// `configlist`. Run directly, git-annex-shell initialises git-annex there (the control case);
/// through serve it is refused, and no hook, `filter.annex.*`, `annex.uuid` or `annex.version`
/// appears: the owner's next commit stores the file itself.
#[test]
fn real_configlist_cannot_make_a_plain_repository_a_git_annex_one() {
    if !git_annex_installed("real_configlist_cannot_make_a_plain_repository_a_git_annex_one") {
        return;
    }
    let w = World::new();
    std::fs::write(
        w.server_home.join(".gitconfig"),
        "[user]\n\tname = Server\n\temail = server@example.invalid\n",
    )
    .unwrap();
    let run = |cwd: &Path, args: &[&str]| w.git_via_fake_ssh(cwd, args);
    check(
        &run(&w.client, &["clone", "-q", "fakehost:~/notes", "copy"]),
        "clone",
    );
    let copy = w.client.join("copy");
    check(&run(&copy, &["annex", "init", "-q", "peer"]), "annex init");
    check(
        &run(
            &copy,
            &["annex", "config", "--set", "annex.largefiles", "anything"],
        ),
        "annex config",
    );
    check(
        &run(&copy, &["push", "-q", "origin", "git-annex"]),
        "push the git-annex branch",
    );
    assert!(
        annex_traces(&w.notes).is_empty(),
        "{:?}",
        annex_traces(&w.notes)
    );

    // Control: the same repository, copied, is initialised by git-annex-shell run directly.
    let control = w.server_home.join("control");
    check(
        &w.command("cp", &w.server_home)
            .arg("-a")
            .arg(&w.notes)
            .arg(&control)
            .output()
            .unwrap(),
        "cp",
    );
    let real = git_pair::commands::serve::annex_shell_path().unwrap();
    let out = w
        .command(real.to_str().unwrap(), &w.server_home)
        .args([OsStr::new("configlist"), control.as_os_str()])
        .env("HOME", &w.server_home)
        .env("GIT_ANNEX_SHELL_DIRECTORY", &control)
        .env("GIT_ANNEX_SHELL_LIMITED", "1")
        .output()
        .unwrap();
    check(&out, "git-annex-shell configlist, directly");
    let traces = annex_traces(&control);
    assert!(
        traces.iter().any(|t| t.starts_with("hook: "))
            && traces.iter().any(|t| t.contains("filter"))
            && traces.iter().any(|t| t.contains("uuid")),
        "control case: git-annex-shell did not initialise the repository: {traces:?}"
    );

    for request in [
        "git-annex-shell 'configlist' '/~/notes'",
        "git-annex-shell 'configlist' '/~/notes' '--' 'autoinit=1' '--'",
    ] {
        let out = w.serve(request).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{request}: {}", stderr(&out));
        assert!(
            !String::from_utf8_lossy(&out.stdout).contains("annex.uuid"),
            "{request}"
        );
    }
    // The peer's own git-annex, which asks with autoinit=1, learns no UUID either.
    let _ = run(&copy, &["annex", "sync", "--no-content"]);
    let out = run(&copy, &["config", "remote.origin.annex-uuid"]);
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(annex_traces(&w.notes), Vec::<String>::new());

    std::fs::write(w.notes.join("owner.txt"), "the owner's file\n").unwrap();
    check(&w.git(&w.notes, &["add", "owner.txt"]), "add");
    check(&w.git(&w.notes, &["commit", "-q", "-m", "owner"]), "commit");
    let out = w.git(&w.notes, &["show", "HEAD:owner.txt"]);
    check(&out, "show");
    assert_eq!(
        out.stdout, b"the owner's file\n",
        "the commit stored a pointer"
    );
}

/// Issue 8, item 1, the first repro with the real git-annex: `gcryptsetup` on a bare
/// repository made with `git init --bare --shared=group` turned `receive.denyNonFastForwards`
/// off (the control case, run directly). Through serve it is refused, plain or annexed, the
/// config keeps every byte, and a force-push that rewrites history is still refused.
#[test]
fn real_gcryptsetup_is_refused_and_a_shared_bare_repository_keeps_refusing_force_pushes() {
    if !git_annex_installed(
        "real_gcryptsetup_is_refused_and_a_shared_bare_repository_keeps_refusing_force_pushes",
    ) {
        return;
    }
    let w = World::new();
    let bare = w.bare_repo("store.git", &["--shared=group"]);
    let control = w.bare_repo("control.git", &["--shared=group"]);
    let real = git_pair::commands::serve::annex_shell_path().unwrap();
    let out = w
        .command(real.to_str().unwrap(), &w.server_home)
        .args([
            OsStr::new("gcryptsetup"),
            control.as_os_str(),
            OsStr::new(":id:x"),
        ])
        .env("HOME", &w.server_home)
        .env("GIT_ANNEX_SHELL_DIRECTORY", &control)
        .env("GIT_ANNEX_SHELL_LIMITED", "1")
        .output()
        .unwrap();
    check(&out, "git-annex-shell gcryptsetup, directly");
    let out = w.git(
        &control,
        &["config", "--bool", "receive.denyNonFastForwards"],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "false",
        "control case: gcryptsetup did not turn receive.denyNonFastForwards off"
    );

    let config = bare.join("config");
    let request = format!("git-annex-shell 'gcryptsetup' '{}' ':id:x'", bare.display());
    for annexed in [false, true] {
        if annexed {
            w.annex_init(&bare, &w.server_home, "store");
        }
        let before = std::fs::read(&config).unwrap();
        let out = w.serve_repo(&bare, &request).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("(git-annex-shell gcryptsetup is not one of configlist,"),
            "{}",
            stderr(&out)
        );
        assert_eq!(std::fs::read(&config).unwrap(), before);
    }
    let out = w.git(&bare, &["config", "--bool", "receive.denyNonFastForwards"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true");

    // A history rewrite pushed through serve is refused as before.
    let url = format!("fakehost:{}", bare.display());
    let out = w
        .command("git", &w.client)
        .args(["clone", "-q", &url, "copy"])
        .env("SERVE_REPO", &bare)
        .output()
        .unwrap();
    check(&out, "clone");
    let copy = w.client.join("copy");
    check(
        &w.git(&copy, &["commit", "-q", "--amend", "-m", "rewritten"]),
        "amend",
    );
    let out = w
        .command("git", &copy)
        .args(["push", "-q", "--force", "origin", "main"])
        .env("SERVE_REPO", &bare)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the force-push was accepted");
    assert!(
        stderr(&out).contains("non-fast-forward"),
        "{}",
        stderr(&out)
    );
}

/// git-annex works on a bare git-annex repository through serve as on one with a work tree.
#[test]
fn real_git_annex_shell_answers_configlist_for_a_served_bare_annex_repository() {
    if !git_annex_installed(
        "real_git_annex_shell_answers_configlist_for_a_served_bare_annex_repository",
    ) {
        return;
    }
    let w = World::new();
    let bare = w.bare_repo("store.git", &[]);
    let uuid = w.annex_init(&bare, &w.server_home, "store");
    let out = w
        .serve_repo(
            &bare,
            &format!("git-annex-shell 'configlist' '{}'", bare.display()),
        )
        .output()
        .unwrap();
    check(&out, "configlist through serve");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l == format!("annex.uuid={uuid}")),
        "{text}"
    );
}

#[test]
fn real_git_annex_shell_answers_configlist_for_the_served_repository() {
    if !git_annex_installed("real_git_annex_shell_answers_configlist_for_the_served_repository") {
        return;
    }
    let w = World::new();
    let uuid = w.annex_init(&w.notes, &w.server_home, "served");
    let out = w
        .serve("git-annex-shell 'configlist' '/~/notes'")
        .output()
        .unwrap();
    check(&out, "configlist through serve");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l == format!("annex.uuid={uuid}")),
        "{text}"
    );
}

/// serve never hands git-annex-shell another directory, so this shows the second line of
/// defence on its own: with the environment serve sets (recorded by the fake), the real
/// git-annex-shell refuses a directory other than the served repository by itself.
#[test]
fn real_git_annex_shell_refuses_other_directories_under_the_environment_serve_sets() {
    if !git_annex_installed(
        "real_git_annex_shell_refuses_other_directories_under_the_environment_serve_sets",
    ) {
        return;
    }
    let w = World::new();
    w.annex_init(&w.notes, &w.server_home, "served");
    w.annex_init(&w.secret, &w.server_home, "secret");
    let (bin, rec) = w.fake_annex_shell();
    let out = w
        .serve("git-annex-shell 'configlist' '/~/notes'")
        .env("PATH", path_with(&bin))
        .output()
        .unwrap();
    check(&out, "configlist through serve to the fake");
    let env: Vec<(String, String)> = record(&rec)
        .iter()
        .filter(|l| l.starts_with("GIT_ANNEX_SHELL_") && !l.ends_with("=unset"))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(env.len(), 2, "{env:?}");

    let real = git_pair::commands::serve::annex_shell_path().unwrap();
    let out = w
        .command(real.to_str().unwrap(), &w.server_home)
        .args([OsStr::new("configlist"), w.secret.as_os_str()])
        .env("HOME", &w.server_home)
        .envs(env)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "git-annex-shell served another directory"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("annex.uuid"));
    let err = stderr(&out);
    assert!(err.contains("Only allowed to access"), "{err}");
}

/// Makes the served repository a git-annex repository holding one annexed file, `big.bin`;
/// returns its annex UUID. git-annex-shell records its changes with git commits on the
/// server, where serve scrubs GIT_AUTHOR_* and friends: it needs an identity of its own.
fn annexed_server(w: &World) -> String {
    std::fs::write(
        w.server_home.join(".gitconfig"),
        "[user]\n\tname = Server\n\temail = server@example.invalid\n",
    )
    .unwrap();
    let server_uuid = w.annex_init(&w.notes, &w.server_home, "served");
    std::fs::write(w.notes.join("big.bin"), "annexed on the server\n").unwrap();
    for args in [
        &["annex", "add", "-q", "big.bin"][..],
        &["commit", "-q", "-m", "annexed"],
    ] {
        let out = w
            .command("git", &w.notes)
            .args(args)
            .env("HOME", &w.server_home)
            .output()
            .unwrap();
        check(&out, &args.join(" "));
    }
    server_uuid
}

/// The whole of git-annex over the paired key: `git annex get`, `copy --to`, `sync --content`,
/// `whereis` and `drop --from` from a clone, through the fake ssh and `git pair serve`.
#[test]
fn real_git_annex_works_through_serve() {
    if !git_annex_installed("real_git_annex_works_through_serve") {
        return;
    }
    let w = World::new();
    let server_uuid = annexed_server(&w);

    let annex = |cwd: &Path, args: &[&str]| w.git_via_fake_ssh(cwd, args);
    let log = w.fake_ssh_log();
    check(
        &annex(&w.client, &["clone", "-q", "fakehost:~/notes", "copy"]),
        "clone",
    );
    let copy = w.client.join("copy");
    check(
        &annex(&copy, &["annex", "init", "-q", "peer"]),
        "annex init",
    );
    let out = annex(&copy, &["config", "remote.origin.annex-uuid"]);
    check(&out, "the remote's uuid, learnt by configlist");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), server_uuid);

    check(&annex(&copy, &["annex", "get", "big.bin"]), "annex get");
    assert_eq!(
        std::fs::read_to_string(copy.join("big.bin")).unwrap(),
        "annexed on the server\n"
    );

    std::fs::write(copy.join("from-peer.bin"), "annexed on the peer\n").unwrap();
    check(
        &annex(&copy, &["annex", "add", "-q", "from-peer.bin"]),
        "annex add",
    );
    check(&annex(&copy, &["commit", "-q", "-m", "peer"]), "commit");
    check(
        &annex(&copy, &["annex", "copy", "--to", "origin", "from-peer.bin"]),
        "annex copy --to",
    );
    std::fs::write(copy.join("synced.bin"), "synced content\n").unwrap();
    check(
        &annex(&copy, &["annex", "add", "-q", "synced.bin"]),
        "annex add",
    );
    check(&annex(&copy, &["commit", "-q", "-m", "more"]), "commit");
    check(
        &annex(&copy, &["annex", "sync", "-q", "--content"]),
        "annex sync --content",
    );

    // The server holds both files' content now, by its own account.
    let out = w
        .command("git", &w.notes)
        .args(["annex", "find", "--in", "here", "--branch", "synced/main"])
        .env("HOME", &w.server_home)
        .output()
        .unwrap();
    check(&out, "annex find on the server");
    let held = String::from_utf8_lossy(&out.stdout);
    for file in ["big.bin", "from-peer.bin", "synced.bin"] {
        assert!(
            held.lines().any(|l| l == file),
            "{file} not on the server: {held}"
        );
    }

    let out = annex(&copy, &["annex", "whereis", "synced.bin"]);
    check(&out, "annex whereis");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&server_uuid),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    check(
        &annex(
            &copy,
            &["annex", "drop", "--from", "origin", "from-peer.bin"],
        ),
        "annex drop --from",
    );

    // Everything went through git-pair serve, git-annex-shell included.
    let sent = std::fs::read_to_string(&log).unwrap();
    assert!(
        sent.lines()
            .any(|l| l == "git-annex-shell 'configlist' '/~/notes'"),
        "{sent}"
    );
    assert!(
        sent.lines()
            .any(|l| l.starts_with("git-annex-shell 'p2pstdio' '/~/notes' ")),
        "{sent}"
    );
}

/// A clone whose remote is another repository of the server gets nothing from git-annex
/// either: configlist is refused, so git-annex never learns a UUID and cannot get content.
#[test]
fn real_git_annex_cannot_reach_another_repository() {
    if !git_annex_installed("real_git_annex_cannot_reach_another_repository") {
        return;
    }
    let w = World::new();
    w.annex_init(&w.secret, &w.server_home, "secret");
    let run = |cwd: &Path, args: &[&str]| w.git_via_fake_ssh(cwd, args);
    let log = w.fake_ssh_log();
    // Cloning secret is refused by git already; so clone notes and point git-annex at secret.
    check(
        &run(&w.client, &["clone", "-q", "fakehost:~/notes", "copy"]),
        "clone",
    );
    let copy = w.client.join("copy");
    check(
        &run(&copy, &["remote", "add", "other", "fakehost:~/secret"]),
        "remote add",
    );
    check(&run(&copy, &["annex", "init", "-q", "peer"]), "annex init");
    // `git annex init` asked every remote for its configuration, `other` included.
    let out = run(&copy, &["config", "remote.other.annex-uuid"]);
    assert!(
        out.stdout.is_empty(),
        "git-annex learnt the other repository's uuid: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let sent = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        sent.lines()
            .any(|l| l.starts_with("git-annex-shell 'configlist' '/~/secret'")),
        "git-annex never asked: {sent}"
    );
}

const SSHD: &str = "/usr/sbin/sshd";
const SSH: &str = "/usr/bin/ssh";

/// sshd on 127.0.0.1 whose only key is the client's, with `git pair serve --repo notes` as
/// its forced command and the server's home as HOME; killed by its pid on drop, after the
/// connection-cache masters git-annex left behind (`ControlPersist=yes`) are told to exit.
struct LoopbackSshd {
    child: std::process::Child,
    ssh_config: PathBuf,
    sockets: PathBuf,
}

impl LoopbackSshd {
    fn start(w: &World, dir: &Path, sockets: PathBuf) -> Self {
        use std::net::{TcpListener, TcpStream};
        use std::time::{Duration, Instant};
        std::fs::create_dir_all(dir).unwrap();
        // sshd refuses to start without its privilege separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .output()
                .unwrap();
            check(&out, "ssh-keygen");
        }
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(
            &authorized_keys,
            format!(
                "restrict,command=\"{BIN} serve --repo {}\" {}",
                w.notes.display(),
                read("client_key.pub")
            ),
        )
        .unwrap();
        // A free port; the short race with other programs is harmless here.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let sshd_config = dir.join("sshd_config");
        std::fs::write(
            &sshd_config,
            format!(
                "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nUsePAM no\nStrictModes no\n\
                 PidFile none\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nAuthorizedKeysFile {}\nSetEnv HOME={}\n",
                dir.join("host_key").display(),
                authorized_keys.display(),
                w.server_home.display()
            ),
        )
        .unwrap();
        let user = nix::unistd::User::from_uid(nix::unistd::getuid())
            .unwrap()
            .unwrap()
            .name;
        std::fs::write(
            dir.join("known_hosts"),
            format!("loophost {}", read("host_key.pub")),
        )
        .unwrap();
        let ssh_config = dir.join("ssh_config");
        std::fs::write(
            &ssh_config,
            format!(
                "Host loophost\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  \
                 IdentityFile {}\n  IdentitiesOnly yes\n  HostKeyAlias loophost\n  \
                 UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
                dir.join("client_key").display(),
                dir.join("known_hosts").display()
            ),
        )
        .unwrap();
        let log_path = dir.join("sshd.log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&sshd_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = LoopbackSshd {
            child,
            ssh_config,
            sockets,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            assert!(sshd.child.try_wait().unwrap().is_none(), "{log}");
            assert!(Instant::now() < deadline, "sshd does not listen: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }

    /// The `ssh` git and git-annex find on PATH: the real one with our config, logging the
    /// command it is asked to run.
    fn ssh_wrapper(&self, bin: &Path, log: &Path) {
        write_executable(
            &bin.join("ssh"),
            &format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\nexec {SSH} -F '{}' \"$@\"\n",
                log.display(),
                self.ssh_config.display()
            ),
        );
    }
}

impl Drop for LoopbackSshd {
    fn drop(&mut self) {
        for socket in std::fs::read_dir(&self.sockets).into_iter().flatten() {
            let Ok(socket) = socket else { continue };
            let _ = Command::new(SSH)
                .arg("-F")
                .arg(&self.ssh_config)
                .arg("-S")
                .arg(socket.path())
                .args(["-O", "exit", "loophost"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// git-annex through a real sshd on loopback with the forced command: shows what really
/// arrives in SSH_ORIGINAL_COMMAND (no `-c`; the `true` probe of the connection cache) and
/// that get / copy --to / sync --content / whereis work with connection caching on.
#[test]
fn real_git_annex_through_a_real_sshd_on_loopback() {
    let test = "real_git_annex_through_a_real_sshd_on_loopback";
    if !git_annex_installed(test) {
        return;
    }
    if !Path::new(SSHD).exists() || !Path::new(SSH).exists() {
        eprintln!("SKIPPED {test}: {SSHD} or {SSH} is not installed (openssh)");
        assert_eq!(
            std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
            Ok("1"),
            "openssh is missing: install openssh-server and openssh-client, or set \
             GIT_PAIR_ALLOW_SKIP=1 to skip"
        );
        return;
    }
    let w = World::new();
    let server_uuid = annexed_server(&w);
    let copy = w.client.join("copy");
    let sshd = LoopbackSshd::start(&w, &w.client.join("sshd"), copy.join(".git/annex/ssh"));
    let bin = w.client.join("ssh-bin");
    let log = w.client.join("ssh-log");
    sshd.ssh_wrapper(&bin, &log);
    let run = |cwd: &Path, args: &[&str]| -> Output {
        w.command("git", cwd)
            .args(args)
            .env("PATH", path_with(&bin))
            .env_remove("GIT_SSH_COMMAND")
            .env_remove("GIT_SSH_VARIANT")
            .output()
            .unwrap()
    };
    check(
        &run(&w.client, &["clone", "-q", "loophost:~/notes", "copy"]),
        "clone",
    );
    check(&run(&copy, &["annex", "init", "-q", "peer"]), "annex init");
    let out = run(&copy, &["config", "remote.origin.annex-uuid"]);
    check(&out, "the remote's uuid, learnt by configlist");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), server_uuid);
    check(&run(&copy, &["annex", "get", "big.bin"]), "annex get");
    assert_eq!(
        std::fs::read_to_string(copy.join("big.bin")).unwrap(),
        "annexed on the server\n"
    );
    std::fs::write(copy.join("from-peer.bin"), "annexed on the peer\n").unwrap();
    check(
        &run(&copy, &["annex", "add", "-q", "from-peer.bin"]),
        "annex add",
    );
    check(&run(&copy, &["commit", "-q", "-m", "peer"]), "commit");
    check(
        &run(&copy, &["annex", "copy", "--to", "origin", "from-peer.bin"]),
        "annex copy --to",
    );
    check(
        &run(&copy, &["annex", "sync", "-q", "--content"]),
        "annex sync --content",
    );
    let out = run(&copy, &["annex", "whereis", "from-peer.bin"]);
    check(&out, "annex whereis");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&server_uuid));

    // What the real ssh was asked to run: the remote command is its last argument.
    let sent = std::fs::read_to_string(&log).unwrap();
    let asked = |what: &str| sent.lines().any(|l| l.ends_with(what));
    assert!(asked(" git-annex-shell 'configlist' '/~/notes'"), "{sent}");
    assert!(asked(" true"), "the connection cache probe: {sent}");
    assert!(
        sent.lines()
            .any(|l| l.contains(" git-annex-shell 'p2pstdio' '/~/notes' ")),
        "{sent}"
    );
    assert!(!sent.contains("git-annex-shell -c"), "{sent}");
    drop(sshd);
}
