//! CLI tests: the real `git-pair` binary run as a process, at its edges. Help and version,
//! usage errors (exit 2), setup errors (exit 5), a lone side timing out (exit 3), signals
//! (exit 130), keeping the code secret, `--code-file`, `serve` run by hand, and one pairing on
//! loopback against a real sshd. Pairings between hosts are in tests/e2e.rs; `serve` is tested
//! in depth in tests/serve.rs.
//!
//! Network: git-pair runs here only with `--interface lo --no-scan`, a timeout of at most 3 s
//! and a UDP port of the test's own (see [`harness::Sandbox::new`]). Parallel tests, the e2e
//! suite and other runs never hear each other, and nothing leaves the machine.

mod harness {
    use std::collections::BTreeMap;
    use std::fs;
    use std::io::{BufRead, BufReader, Read};
    use std::net::TcpListener;
    use std::os::unix::fs::MetadataExt;
    use std::path::{Path, PathBuf};
    use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    pub const BIN: &str = env!("CARGO_BIN_EXE_git-pair");

    /// A temp dir holding its own HOME, a repository with one commit and an sshd host key;
    /// removed on drop, also when the test panics.
    pub struct Sandbox {
        pub root: PathBuf,
        pub home: PathBuf,
        pub repo: PathBuf,
        /// The UDP port of the exchange, unique to this test (`n`) and this run (the pid).
        pub port: u16,
        /// Stands in for this machine's sshd, which git pair checks before the network: it
        /// accepts TCP connections on 127.0.0.1 (the kernel completes them; nobody answers).
        pub sshd: TcpListener,
    }

    /// Every path under HOME with its mode and contents, and the repository's config.
    pub type Snapshot = BTreeMap<PathBuf, (u32, Option<Vec<u8>>)>;

    impl Sandbox {
        pub fn new(name: &str, n: u16) -> Sandbox {
            assert!(n < 50, "test numbers stay below 50 to keep ports apart");
            let pid = std::process::id();
            let root = std::env::temp_dir().join(format!("git-pair-cli-{pid}-{name}"));
            let _ = fs::remove_dir_all(&root);
            let sb = Sandbox {
                home: root.join("home"),
                repo: root.join("repo"),
                port: 40000 + (pid % 300) as u16 * 50 + n,
                sshd: TcpListener::bind("127.0.0.1:0").unwrap(),
                root,
            };
            fs::create_dir_all(&sb.home).unwrap();
            fs::create_dir_all(&sb.repo).unwrap();
            sb.git(&sb.repo, &["init", "-q"]);
            sb.commit("init");
            keygen(&sb.root.join("hostkey"));
            sb
        }

        pub fn host_key(&self) -> String {
            self.root.join("hostkey.pub").display().to_string()
        }

        /// A command with a clean environment: only PATH, this HOME, no system git config,
        /// and git's repository search stopped at the sandbox.
        pub fn command(&self, program: &str, cwd: &Path) -> Command {
            let mut c = Command::new(program);
            c.current_dir(cwd)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("HOME", &self.home)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CEILING_DIRECTORIES", &self.root);
            c
        }

        pub fn git(&self, cwd: &Path, args: &[&str]) -> String {
            let out = self.command("git", cwd).args(args).output().unwrap();
            assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
            text(&out.stdout)
        }

        pub fn commit(&self, message: &str) {
            let id = ["-c", "user.name=t", "-c", "user.email=t@t"];
            let commit = ["commit", "-q", "--allow-empty", "-m", message];
            self.git(&self.repo, &[&id[..], &commit[..]].concat());
        }

        /// Runs git-pair exactly with `args` in `cwd`, with `stdin` as its standard input.
        pub fn run_in(
            &self,
            cwd: &Path,
            args: &[String],
            env: &[(&str, &str)],
            stdin: Option<&str>,
        ) -> Output {
            let input = self.root.join("stdin");
            fs::write(&input, stdin.unwrap_or_default()).unwrap();
            let mut c = self.command(BIN, cwd);
            c.args(args).envs(env.iter().copied());
            c.stdin(fs::File::open(input).unwrap()).output().unwrap()
        }

        /// Runs git-pair exactly with `args` in the repository.
        pub fn run(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
            let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            self.run_in(&self.repo, &args, env, stdin)
        }

        /// The safe options of every pairing run, then `extra`; `--timeout 1` and the
        /// sandbox's host key unless `extra` has its own.
        pub fn pair_args(&self, extra: &[&str]) -> Vec<String> {
            let port = self.port.to_string();
            let mut args = vec!["--interface", "lo", "--no-scan", "--port", &port];
            if !extra.contains(&"--timeout") {
                args.extend(["--timeout", "1"]);
            }
            let key = self.host_key();
            if !extra.contains(&"--host-key") {
                args.extend(["--host-key", &key]);
            }
            let sshd = self.sshd.local_addr().unwrap().port().to_string();
            if !extra.contains(&"--ssh-port") {
                args.extend(["--ssh-port", &sshd]);
            }
            args.iter().chain(extra).map(|s| s.to_string()).collect()
        }

        /// Runs git-pair with [`Sandbox::pair_args`] in the repository.
        pub fn pair(&self, extra: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
            self.run_in(&self.repo, &self.pair_args(extra), env, stdin)
        }

        /// Starts git-pair with [`Sandbox::pair_args`] in the repository.
        pub fn spawn_pair(&self, extra: &[&str]) -> Proc {
            self.spawn_pair_in(&self.repo, extra)
        }

        /// Starts git-pair with [`Sandbox::pair_args`] in `cwd`.
        pub fn spawn_pair_in(&self, cwd: &Path, extra: &[&str]) -> Proc {
            self.spawn_wrapped(cwd, &[], extra)
        }

        /// Starts git-pair with [`Sandbox::pair_args`] in `cwd`, run by `wrapper` (a program and
        /// its arguments, which ends by running the rest of its command line).
        pub fn spawn_wrapped(&self, cwd: &Path, wrapper: &[String], extra: &[&str]) -> Proc {
            let (program, args): (&str, Vec<String>) = match wrapper.split_first() {
                None => (BIN, self.pair_args(extra)),
                Some((first, rest)) => {
                    let mut args = rest.to_vec();
                    args.push(BIN.to_string());
                    args.extend(self.pair_args(extra));
                    (first.as_str(), args)
                }
            };
            let mut child = self
                .command(program, cwd)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Proc { child, stdout }
        }

        /// Starts git-pair with exactly `args` in the repository.
        pub fn spawn(&self, args: &[&str]) -> Proc {
            let mut child = self
                .command(BIN, &self.repo)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = BufReader::new(child.stdout.take().unwrap());
            Proc { child, stdout }
        }

        /// Puts odd but valid files into ~/.ssh, which git-pair must keep byte for byte.
        pub fn seed_ssh(&self) {
            let ssh = self.home.join(".ssh");
            fs::create_dir_all(&ssh).unwrap();
            fs::write(ssh.join("config"), b"Host *\r\n  ServerAliveInterval 5").unwrap();
            fs::write(ssh.join("authorized_keys"), b"# mine\n\xff not utf-8\n").unwrap();
        }

        pub fn snapshot(&self) -> Snapshot {
            fn walk(dir: &Path, out: &mut Snapshot) {
                for e in fs::read_dir(dir).unwrap() {
                    let path = e.unwrap().path();
                    let meta = fs::symlink_metadata(&path).unwrap();
                    let content = if meta.is_dir() {
                        walk(&path, out);
                        None
                    } else {
                        Some(fs::read(&path).unwrap())
                    };
                    out.insert(path, (meta.mode(), content));
                }
            }
            let mut out = Snapshot::new();
            walk(&self.home, &mut out);
            let config = self.repo.join(".git/config");
            out.insert(config.clone(), (0, Some(fs::read(config).unwrap())));
            out
        }

        pub fn assert_unchanged(&self, before: &Snapshot, what: &str) {
            let after = self.snapshot();
            let mut changed: Vec<_> = before.keys().chain(after.keys()).collect();
            changed.retain(|k| before.get(*k) != after.get(*k));
            assert!(
                changed.is_empty(),
                "{what}: changed or created: {changed:?}"
            );
        }
    }

    impl Drop for Sandbox {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    /// A running git-pair, killed on drop if it still runs (a failing test leaves none behind).
    pub struct Proc {
        pub child: Child,
        stdout: BufReader<ChildStdout>,
    }

    impl Proc {
        /// Reads `--json` lines up to the first one named `name`. Every run ends by itself
        /// within its timeout, so this never blocks for long.
        pub fn until(&mut self, name: &str) -> Value {
            loop {
                let mut line = String::new();
                let read = self.stdout.read_line(&mut line).unwrap();
                assert!(read > 0, "no {name} event before the end of stdout");
                let e = event(&line);
                if e["event"] == name {
                    return e;
                }
            }
        }

        /// Waits at most `limit` for the exit; the status, the rest of stdout, and stderr.
        pub fn finish(&mut self, limit: Duration) -> (ExitStatus, String, String) {
            let deadline = Instant::now() + limit;
            let status = loop {
                if let Some(status) = self.child.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "still running after {limit:?}");
                std::thread::sleep(Duration::from_millis(10));
            };
            let (mut out, mut err) = (String::new(), String::new());
            self.stdout.read_to_string(&mut out).unwrap();
            let mut stderr = self.child.stderr.take().unwrap();
            stderr.read_to_string(&mut err).unwrap();
            (status, out, err)
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            if let Ok(None) = self.child.try_wait() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }

    pub fn keygen(path: &Path) {
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path)
            .stdin(Stdio::null())
            .status()
            .expect("ssh-keygen must be installed");
        assert!(status.success(), "ssh-keygen failed");
    }

    pub fn text(bytes: &[u8]) -> String {
        String::from_utf8_lossy(bytes).into_owned()
    }

    /// One `--json` line, checked: an object with `"v": 1` and an `event` name.
    pub fn event(line: &str) -> Value {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(v["v"], 1, "{line}");
        assert!(v["event"].is_string(), "{line}");
        v
    }

    /// Every line of a `--json` stdout, each checked by [`event`].
    pub fn events(stdout: &str) -> Vec<Value> {
        stdout.lines().map(event).collect()
    }

    pub fn names(events: &[Value]) -> Vec<&str> {
        events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect()
    }
}

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use harness::{event, events, names, text, Sandbox};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// A usage error: exit 2 and every one of `needles` on stderr. With `json` (`--json` was
/// given), stdout is exactly one `failed` event with reason `usage`; otherwise it is empty.
fn assert_usage(out: &Output, json: bool, needles: &[&str]) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    let stdout = text(&out.stdout);
    if json {
        let ev = events(&stdout);
        assert_eq!(names(&ev), ["failed"], "{stdout}");
        assert_eq!(ev[0]["reason"], "usage", "{stdout}");
    } else {
        assert!(stdout.is_empty(), "stdout: {stdout}");
    }
}

#[test]
fn help_and_version_exit_0_and_print_to_stdout() {
    let sb = Sandbox::new("help", 0);
    let help = sb.run(&["--help"], &[], None);
    assert_eq!(help.status.code(), Some(0));
    assert!(help.stderr.is_empty(), "{}", text(&help.stderr));
    let h = text(&help.stdout);
    let options = "[CODE] --interface --port --timeout --name --ssh-port --host-key --key \
                   --peer --no-scan --code-file --json join list remove serve";
    for option in options.split(' ') {
        assert!(h.contains(option), "--help lacks {option}: {h}");
    }

    let version = sb.run(&["--version"], &[], None);
    assert_eq!(version.status.code(), Some(0));
    assert!(version.stderr.is_empty());
    assert!(text(&version.stdout).contains(env!("CARGO_PKG_VERSION")));

    let serve = sb.run(&["serve", "--help"], &[], None);
    assert_eq!(serve.status.code(), Some(0));
    assert!(serve.stderr.is_empty());
    assert!(text(&serve.stdout).contains("--repo"));
}

#[test]
fn an_unknown_flag_is_a_usage_error_naming_it() {
    let sb = Sandbox::new("unknown-flag", 1);
    let out = sb.pair(&["--frobnicate"], &[], None);
    assert_usage(&out, false, &["--frobnicate"]);
    // A program that asked for --json still gets the documented last line.
    let out = sb.pair(&["--json", "--frobnicate"], &[], None);
    assert_usage(&out, true, &["--frobnicate"]);
}

#[test]
fn a_zero_timeout_is_a_usage_error() {
    let sb = Sandbox::new("timeout-0", 2);
    let out = sb.pair(&["--timeout", "0"], &[], None);
    assert_usage(&out, false, &["--timeout", "'0'"]);
}

#[test]
fn a_code_together_with_code_file_is_a_usage_error() {
    let sb = Sandbox::new("code-and-file", 3);
    let file = sb.root.join("code");
    fs::write(&file, "5-alpha-beta-gamma").unwrap();
    let file = file.to_str().unwrap();
    let out = sb.pair(&["7-guitar-orbit-velvet", "--code-file", file], &[], None);
    assert_usage(&out, false, &["--code-file", "cannot be used with"]);
}

#[test]
fn empty_and_number_only_codes_are_usage_errors() {
    let sb = Sandbox::new("bad-codes", 4);
    let before = sb.snapshot();
    let file = sb.root.join("code");
    for (code, why) in [("  ", "empty"), (" - - ", "empty"), ("12", "no words")] {
        assert_usage(&sb.pair(&["--json", code], &[], None), true, &[why]);
        // From a file, the same rules apply.
        fs::write(&file, code).unwrap();
        let out = sb.pair(
            &["--json", "--code-file", file.to_str().unwrap()],
            &[],
            None,
        );
        assert_usage(&out, true, &[why]);
    }
    sb.assert_unchanged(&before, "bad codes");
}

/// A test that cannot run here says why, and fails unless skipping was allowed.
fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
    assert_eq!(
        std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
        Ok("1"),
        "{why}: set GIT_PAIR_ALLOW_SKIP=1 to skip"
    );
}

/// Runs git-pair with exactly `args` (no `--interface`: what a person types) in a network
/// namespace of its own, where nothing it might send could leave the machine, under strace.
/// Returns its output and every network system call it made; None when namespaces (root) or
/// strace are missing.
fn run_isolated(sb: &Sandbox, args: &[&str]) -> Option<(Output, String)> {
    if !nix::unistd::Uid::effective().is_root() || !Path::new("/usr/bin/strace").exists() {
        skip("needs root (a network namespace) and strace to watch for sockets");
        return None;
    }
    let trace = sb.root.join("strace.out");
    let _ = fs::remove_file(&trace);
    let script = format!(
        "ip link set lo up && exec strace -f -qq -e trace=%network -o '{}' \"$0\" \"$@\"",
        trace.display()
    );
    let out = sb
        .command("unshare", &sb.repo)
        .args(["--net", "--", "sh", "-c", &script, harness::BIN])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let calls = fs::read_to_string(&trace).unwrap_or_else(|e| {
        panic!("no strace output ({e}): {}", text(&out.stderr));
    });
    Some((out, calls))
}

#[test]
fn a_word_that_is_not_a_code_names_a_command_and_opens_no_socket() {
    let sb = Sandbox::new("typo", 25);
    let before = sb.snapshot();
    for (args, needles) in [
        (
            &["lst"][..],
            &["`lst`", "did you mean `git pair list`?"][..],
        ),
        (&["ls", "--json"], &["did you mean `git pair list --json`?"]),
        (&["rm", "vm"], &["did you mean `git pair remove vm`?"]),
        (&["joni"], &["did you mean `git pair join`?"]),
        (
            &["frobnicate"],
            &["not a git pair command", "join, list, remove"],
        ),
        (&["535"], &["no words"]),
        (&["535-bulb-fgo-baby"], &["word 2"]),
        (&["535", "bulb", "fog", "baby"], &["one word, with dashes"]),
        (&["--", "-1"], &["no words"]),
    ] {
        let Some((out, calls)) = run_isolated(&sb, args) else {
            return;
        };
        let json = args.contains(&"--json");
        assert_usage(&out, json, needles);
        let err = text(&out.stderr);
        assert!(err.starts_with("git pair: error: "), "{args:?}: {err}");
        assert!(
            calls.trim().is_empty(),
            "{args:?} made network calls:\n{calls}"
        );
    }
    sb.assert_unchanged(&before, "typos");
    // The same harness does see the sockets of a real run (here, cut short by a bad --port
    // only after the interfaces are known would be too late: so a real, tiny run on lo).
    let port = sb.port.to_string();
    let key = sb.host_key();
    let args = [
        "--interface",
        "lo",
        "--no-scan",
        "--timeout",
        "1",
        "--port",
        &port,
        "--host-key",
        &key,
    ];
    if let Some((_, calls)) = run_isolated(&sb, &args) {
        assert!(
            calls.contains("socket("),
            "strace saw no socket of a real run: {calls}"
        );
    }
}

#[test]
fn a_missing_sshd_is_found_before_anything_is_sent() {
    let sb = Sandbox::new("no-sshd", 31);
    let before = sb.snapshot();
    // In a network namespace of its own nothing listens on any port; lo is the interface.
    let port = sb.port.to_string();
    let key = sb.host_key();
    let args = [
        "--json",
        "--interface",
        "lo",
        "--no-scan",
        "--timeout",
        "1",
        "--port",
        &port,
        "--host-key",
        &key,
        "--ssh-port",
        "2222",
    ];
    let Some((out, calls)) = run_isolated(&sb, &args) else {
        return;
    };
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    let ev = events(&text(&out.stdout));
    assert_eq!(
        names(&ev),
        ["failed"],
        "no code is shown for a pairing that cannot work"
    );
    assert_eq!(ev[0]["reason"], "no_sshd");
    for needle in [
        "sshd",
        "TCP port 2222",
        "apt install openssh-server",
        "--ssh-port",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    // It tried TCP connections to itself, and opened no UDP socket: nothing was sent. (Netlink
    // and unix sockets are the C library asking the kernel about interfaces and users, and
    // git-pair asking it which sockets listen: a netlink request names the address families
    // it asks about, and goes to the kernel.)
    assert!(calls.contains("connect("), "{calls}");
    let to_kernel = |c: &&str| c.contains("sa_family=AF_NETLINK");
    for call in calls
        .lines()
        .filter(|c| c.contains("AF_INET"))
        .filter(|c| !to_kernel(c))
    {
        assert!(!call.contains("SOCK_DGRAM"), "a UDP socket: {call}");
        assert!(
            !call.contains("sendto(") && !call.contains("sendmsg("),
            "{call}"
        );
    }
    sb.assert_unchanged(&before, "no sshd");
}

#[test]
fn help_as_a_word_shows_the_help() {
    let sb = Sandbox::new("help-word", 26);
    for (args, needle) in [
        (&["help"][..], "git pair join"),
        (&["help", "remove"], "NAME"),
    ] {
        let out = sb.run(args, &[], None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains(needle), "{}", text(&out.stdout));
    }
}

#[test]
fn parser_errors_have_the_prefix_and_a_negative_number_is_a_bad_value() {
    let sb = Sandbox::new("negative", 27);
    for (args, needles) in [
        (
            &["--timeout", "-1"][..],
            &["'-1'", "--timeout", "1 to 86400"][..],
        ),
        (&["--ssh-port", "-5"], &["'-5'", "--ssh-port", "1 to 65535"]),
        (&["--frobnicate"], &["--frobnicate"]),
    ] {
        let out = sb.pair(args, &[], None);
        assert_usage(&out, false, needles);
        let err = text(&out.stderr);
        assert!(err.starts_with("git pair: error: "), "{err}");
        assert!(!err.contains("-- -"), "suggests making it the code: {err}");
    }
}

#[test]
fn a_blank_git_pair_code_is_ignored_and_a_code_is_generated() {
    let sb = Sandbox::new("blank-env-code", 5);
    let out = sb.pair(&["--json"], &[("GIT_PAIR_CODE", " \t ")], None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let ev = events(&text(&out.stdout));
    assert_eq!(names(&ev)[0], "code");
    assert!(ev[0]["code"].as_str().unwrap().split('-').count() >= 3);
}

#[test]
fn an_unknown_interface_is_a_usage_error_listing_the_available_ones() {
    // Safe: the interface does not exist, so git-pair stops before opening any socket.
    assert!(!Path::new("/sys/class/net/nosuch0").exists());
    let sb = Sandbox::new("nosuch-iface", 6);
    let mut args = sb.pair_args(&["--json"]);
    let lo = args.iter().position(|a| a == "lo").unwrap();
    args[lo] = "nosuch0".into();
    let out = sb.run_in(&sb.repo, &args, &[], None);
    assert_usage(&out, true, &["nosuch0", "available:"]);
    let err = text(&out.stderr);
    let listed = err.split("available:").nth(1).unwrap();
    assert!(listed.split([',', ' ', ')']).any(|n| n == "lo"), "{err}");
}

#[test]
fn a_name_of_an_existing_remote_is_refused() {
    let sb = Sandbox::new("name-exists", 7);
    sb.git(&sb.repo, &["remote", "add", "laptop", "/nowhere"]);
    let before = sb.snapshot();
    let out = sb.pair(&["--json", "--name", "laptop"], &[], None);
    assert_usage(&out, true, &["\"laptop\"", "already exists"]);
    sb.assert_unchanged(&before, "--name laptop");
}

#[test]
fn an_invalid_remote_name_is_refused() {
    let sb = Sandbox::new("bad-name", 8);
    let out = sb.pair(&["--json", "--name", "bad name"], &[], None);
    assert_usage(&out, true, &["\"bad name\"", "not a valid remote name"]);
}

#[test]
fn a_key_file_that_is_not_an_ssh_key_is_refused() {
    let sb = Sandbox::new("key-not-ssh", 9);
    let file = sb.root.join("notakey");
    fs::write(&file, "hello\n").unwrap();
    let file = file.to_str().unwrap();
    let out = sb.pair(&["--json", "--key", file], &[], None);
    assert_usage(&out, true, &[file, "not an OpenSSH private key"]);
}

#[test]
fn a_key_pointing_at_a_pub_file_is_refused() {
    let sb = Sandbox::new("key-pub", 10);
    let public = sb.host_key();
    let out = sb.pair(&["--json", "--key", &public], &[], None);
    assert_usage(&out, true, &[&public, "is a public key"]);
}

#[test]
fn outside_a_git_repository_is_a_usage_error() {
    let sb = Sandbox::new("no-repo", 11);
    let empty = sb.root.join("empty");
    fs::create_dir(&empty).unwrap();
    // GIT_CEILING_DIRECTORIES (the sandbox root, parent of `empty`) keeps git from looking
    // above. libgit2's discovery does not read it, but nothing above the temp dir is a repo.
    let out = sb.run_in(&empty, &sb.pair_args(&["--json"]), &[], None);
    assert_usage(&out, true, &["not in a git repository", "git init"]);
    assert!(!sb.home.join(".ssh").exists());
}

/// A setup error: exit 5, one `failed` event with reason `setup`, `needles` on stderr,
/// nothing written.
fn assert_setup_error(sb: &Sandbox, extra: &[&str], needles: &[&str]) {
    let before = sb.snapshot();
    let out = sb.pair(&[&["--json"], extra].concat(), &[], None);
    let (stdout, err) = (text(&out.stdout), text(&out.stderr));
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}: {err}");
    }
    let ev = events(&stdout);
    assert_eq!(names(&ev), ["failed"], "{stdout}");
    assert_eq!(out.status.code(), Some(5), "exit status; stderr: {err}");
    assert_eq!(ev[0]["reason"], "setup", "{stdout}");
    sb.assert_unchanged(&before, "setup error");
}

#[test]
fn an_ssh_dir_that_is_a_regular_file_is_a_setup_error_and_writes_nothing() {
    let sb = Sandbox::new("ssh-is-file", 12);
    // Root ignores permission bits, so "cannot write ~/.ssh" is made with a regular file where
    // the directory should be: that stops root too.
    fs::write(sb.home.join(".ssh"), "not a directory\n").unwrap();
    assert_setup_error(&sb, &[], &[".ssh", "not a directory"]);
}

#[test]
fn a_missing_host_key_file_is_a_setup_error_and_writes_nothing() {
    let sb = Sandbox::new("no-host-key", 13);
    let missing = sb.root.join("missing_host_key.pub");
    let missing = missing.to_str().unwrap();
    // 5 is the documented status for "no sshd host keys" (src/exit.rs, the man page).
    assert_setup_error(&sb, &["--host-key", missing], &[missing]);
}

#[test]
fn a_lone_side_times_out_with_exit_3_json_events_and_writes_nothing() {
    let sb = Sandbox::new("timeout", 14);
    let before = sb.snapshot();
    let started = Instant::now();
    let out = sb.pair(&["--json", "--timeout", "1"], &[], None);
    let took = started.elapsed();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stderr: {err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");

    let ev = events(&text(&out.stdout));
    assert_eq!(names(&ev), ["code", "listening", "timeout", "failed"]);
    assert_eq!(ev[1]["interfaces"], serde_json::json!(["lo"]));
    assert_eq!(ev[1]["port"], sb.port);
    assert_eq!(ev[2]["seconds"], 1);
    assert_eq!(ev[3]["reason"], "no_peer");

    // It says what to do: check the port, or name the peer.
    assert!(err.contains(&format!("port {}", sb.port)), "{err}");
    assert!(err.contains("--peer"), "{err}");

    assert!(!sb.home.join(".ssh").exists(), "~/.ssh was created");
    sb.assert_unchanged(&before, "timeout");
}

#[test]
fn a_given_code_is_never_printed() {
    let sb = Sandbox::new("secret-code", 15);
    let code = "7-guitar-orbit-velvet";
    let file = sb.root.join("code");
    fs::write(&file, code).unwrap();
    let file = file.to_str().unwrap();
    let env = [("GIT_PAIR_CODE", code)];
    for (how, args, env) in [
        ("argument", &["--json", code][..], &[][..]),
        ("--code-file", &["--json", "--code-file", file], &[]),
        ("GIT_PAIR_CODE", &["--json"], &env),
    ] {
        let out = sb.pair(args, env, None);
        assert_eq!(out.status.code(), Some(3), "{how}: {}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            !names(&events(&stdout)).contains(&"code"),
            "{how}: {stdout}"
        );
        let both = format!("{stdout}{}", text(&out.stderr)).to_lowercase();
        for word in ["guitar", "orbit", "velvet"] {
            assert!(!both.contains(word), "{how}: {word:?} printed: {both}");
        }
    }
}

#[test]
fn a_generated_code_is_shown_only_in_the_code_event_or_the_banner() {
    let sb = Sandbox::new("generated-code", 16);
    let out = sb.pair(&["--json"], &[], None);
    let stdout = text(&out.stdout);
    let code = events(&stdout)[0]["code"].as_str().unwrap().to_string();
    let lines: Vec<&str> = stdout.lines().filter(|l| l.contains(&code)).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(event(lines[0])["event"], "code");
    assert!(!text(&out.stderr).contains(&code), "{}", text(&out.stderr));

    // Without --json: nothing on stdout; the banner on stderr, plain off a terminal, and the
    // code's words nowhere after it.
    let out = sb.pair(&[], &[], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        !err.contains('\x1b'),
        "escape codes off a terminal: {err:?}"
    );
    let (banner, after) = err
        .split_once("On the other machine, run:  git pair join\n")
        .unwrap_or_else(|| panic!("no banner: {err}"));
    // The code is in the box, spaced out: "│      535 - bulb - fog - baby      │".
    let boxed = banner
        .lines()
        .find(|l| l.contains(" - "))
        .unwrap_or_else(|| panic!("no code in the banner: {err}"));
    let words: Vec<&str> = boxed
        .trim_matches(|c: char| c == '│' || c.is_whitespace())
        .split(" - ")
        .skip(1)
        .collect();
    assert!(words.len() >= 3, "{boxed}");
    // Whole words only: a code word may be part of an ordinary one ("net" in "network").
    let printed: Vec<&str> = after.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    for w in words {
        assert!(
            !printed.contains(&w),
            "{w:?} printed after the banner: {err}"
        );
    }
}

#[test]
fn code_file_dash_reads_the_code_from_stdin() {
    let sb = Sandbox::new("code-stdin", 17);
    let stdin = Some("5-alpha-beta-gamma\n");
    let out = sb.pair(&["--json", "--code-file", "-"], &[], stdin);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // A code was given, so none was generated.
    let ev = events(&text(&out.stdout));
    assert_eq!(names(&ev), ["listening", "timeout", "failed"]);
    let both = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!both.contains("alpha"), "{both}");
}

#[test]
fn a_missing_code_file_is_a_usage_error() {
    let sb = Sandbox::new("code-file-missing", 18);
    let missing = sb.root.join("missing").display().to_string();
    let out = sb.pair(&["--json", "--code-file", &missing], &[], None);
    assert_usage(&out, true, &[&missing, "cannot read the code"]);
}

/// `git pair join` run on a pseudo-terminal by script(1), as a person at a terminal runs it:
/// its stdout and stderr go to files, the prompt to the terminal.
struct Prompted {
    child: Child,
    screen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    pid_file: PathBuf,
}

impl Prompted {
    fn start(sb: &Sandbox, extra: &[&str]) -> Prompted {
        let pid_file = sb.root.join("join.pid");
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let args: Vec<String> = sb.pair_args(extra).iter().map(|a| quote(a)).collect();
        let script = sb.root.join("join.sh");
        fs::write(
            &script,
            format!(
                "sh -c 'echo $$ > \"$0\"; exec \"$@\"' {} {} join {} > {} 2> {}\n\
                 status=$?\nstty -a > {}\nexit $status\n",
                quote(&pid_file.display().to_string()),
                quote(harness::BIN),
                args.join(" "),
                quote(&sb.root.join("join.stdout").display().to_string()),
                quote(&sb.root.join("join.stderr").display().to_string()),
                quote(&sb.root.join("join.stty").display().to_string()),
            ),
        )
        .unwrap();
        let mut child = sb
            .command("script", &sb.repo)
            .args([
                "-q",
                "-e",
                "-c",
                &format!("sh {}", quote(&script.display().to_string())),
            ])
            .arg("/dev/null")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("script(1) from util-linux must be installed");
        let screen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut stdout = child.stdout.take().unwrap();
        let shared = std::sync::Arc::clone(&screen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
                if n == 0 {
                    break;
                }
                shared.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Prompted {
            child,
            screen,
            pid_file,
        }
    }

    fn screen(&self) -> String {
        text(&self.screen.lock().unwrap())
    }

    /// Waits until the terminal shows `needle` (at most 5 s).
    fn wait_for(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.screen().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {needle:?}: {:?}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn type_keys(&mut self, keys: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(keys.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    fn pid(&self) -> u32 {
        fs::read_to_string(&self.pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The exit status of git-pair (script -e passes it on), at most `limit` from now.
    fn wait(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Prompted {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads /proc/PID/cmdline and /proc/PID/environ until the process is gone; what it read.
fn watch_process(pid: u32, limit: Duration) -> String {
    let mut seen = String::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"));
        let environ = fs::read(format!("/proc/{pid}/environ"));
        match (cmdline, environ) {
            (Ok(c), Ok(e)) if !c.is_empty() => {
                seen.push_str(&text(&c));
                seen.push_str(&text(&e));
            }
            // Gone (or a zombie, whose cmdline is empty).
            _ => return seen,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    seen
}

#[test]
fn join_prompts_for_the_code_with_tab_completion_and_keeps_it_out_of_argv_env_and_files() {
    let sb = Sandbox::new("join-prompt", 28);
    let mut p = Prompted::start(&sb, &["--json", "--timeout", "2"]);
    p.wait_for("Code from the other machine");
    // Three letters complete a word, and a dash follows it.
    p.type_keys("535-bul\t");
    p.wait_for("535-bulb-");
    // Two Tabs on letters several words share list them.
    p.type_keys("fo\t\t");
    p.wait_for("foam");
    p.wait_for("fossil");
    p.type_keys("g\tBAB\t");
    p.wait_for("535-bulb-fog-baby-");
    let pid = p.pid();
    // While it waits at the prompt and while it pairs, the code is not in its argv or its
    // environment (readable by other users and root: ps, /proc).
    let mut seen = watch_process(pid, Duration::from_millis(100));
    p.type_keys("\r");
    seen.push_str(&watch_process(pid, Duration::from_secs(10)));
    assert!(
        seen.contains("join"),
        "did not watch the right process: {seen:?}"
    );
    let status = p.wait(Duration::from_secs(10));
    let stdout = fs::read_to_string(sb.root.join("join.stdout")).unwrap();
    let stderr = fs::read_to_string(sb.root.join("join.stderr")).unwrap();
    assert_eq!(status, Some(3), "{stderr}");
    let ev = events(&stdout);
    assert_eq!(names(&ev), ["listening", "timeout", "failed"], "{stdout}");
    // Not in stdout, stderr (files here, as a log would be), argv, the environment or HOME.
    let mut files = String::new();
    for (path, (_, content)) in sb.snapshot() {
        if let Some(c) = content {
            files.push_str(&format!("{}: {}\n", path.display(), text(&c)));
        }
    }
    for word in ["bulb", "fog", "baby"] {
        assert!(!stdout.contains(word), "{word} on stdout: {stdout}");
        assert!(!stderr.contains(word), "{word} on stderr: {stderr}");
        assert!(!seen.contains(word), "{word} in /proc/{pid}: {seen:?}");
        assert!(!files.contains(word), "{word} in a file: {files}");
    }
}

#[test]
fn ctrl_c_and_ctrl_d_at_the_prompt_end_the_run_and_restore_the_terminal() {
    let sb = Sandbox::new("join-abort", 29);
    let before = sb.snapshot();
    for (keys, status, needle) in [
        ("53\x03", 130, "interrupted"),
        ("\x04", 2, "no code was typed"),
    ] {
        let mut p = Prompted::start(&sb, &["--json"]);
        p.wait_for("Code from the other machine");
        p.type_keys(keys);
        assert_eq!(p.wait(Duration::from_secs(5)), Some(status), "{keys:?}");
        let stderr = fs::read_to_string(sb.root.join("join.stderr")).unwrap();
        assert!(stderr.contains(needle), "{keys:?}: {stderr}");
        let stdout = fs::read_to_string(sb.root.join("join.stdout")).unwrap();
        let ev = events(&stdout);
        assert_eq!(names(&ev), ["failed"], "{stdout}");
        // The terminal is back in its normal mode: lines, echo, signals.
        let stty = fs::read_to_string(sb.root.join("join.stty")).unwrap();
        for mode in ["icanon", "echo", "isig"] {
            let on = stty.split_whitespace().any(|w| w == mode);
            assert!(on, "{mode} is off after the prompt: {stty}");
        }
    }
    sb.assert_unchanged(&before, "aborted prompts");
}

#[test]
fn join_without_a_terminal_reads_one_line_of_standard_input() {
    let sb = Sandbox::new("join-stdin", 30);
    let mut args = vec!["join".to_string()];
    args.extend(sb.pair_args(&["--json"]));
    // setsid: no controlling terminal, even when the tests run on one.
    let out = sb
        .command("setsid", &sb.repo)
        .arg("-w")
        .arg(harness::BIN)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"535-bulb-fog-baby\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let ev = events(&text(&out.stdout));
    assert_eq!(names(&ev), ["listening", "timeout", "failed"]);
    assert!(!text(&out.stderr).contains("bulb"));
}

/// Starts a generating run, waits for `listening`, sends `signal`, and checks exit 130 within
/// 2 s, a last `failed` event with reason `interrupted`, and that nothing was written.
fn interrupted_by(signal: Signal, name: &str, n: u16) {
    let sb = Sandbox::new(name, n);
    sb.seed_ssh();
    let before = sb.snapshot();
    let mut p = sb.spawn_pair(&["--json", "--timeout", "3"]);
    p.until("listening");
    kill(Pid::from_raw(p.child.id() as i32), signal).unwrap();
    let (status, rest, err) = p.finish(Duration::from_secs(2));
    assert_eq!(status.code(), Some(130), "{signal}: {err}");
    let ev = events(&rest);
    let last = ev.last().expect("an event after the signal");
    assert_eq!(last["event"], "failed", "{rest}");
    assert_eq!(last["reason"], "interrupted", "{rest}");
    assert!(err.contains("interrupted"), "{err}");
    sb.assert_unchanged(&before, signal.as_str());
}

#[test]
fn sigint_exits_130_with_an_interrupted_event_and_writes_nothing() {
    interrupted_by(Signal::SIGINT, "sigint", 19);
}

#[test]
fn sigterm_exits_130_with_an_interrupted_event_and_writes_nothing() {
    interrupted_by(Signal::SIGTERM, "sigterm", 20);
}

#[test]
fn sighup_exits_130_with_an_interrupted_event_and_writes_nothing() {
    interrupted_by(Signal::SIGHUP, "sighup", 21);
}

#[test]
fn serve_without_ssh_original_command_refuses_an_interactive_login() {
    let sb = Sandbox::new("serve-interactive", 22);
    let repo = sb.repo.display().to_string();
    // The sandbox's clean environment has no SSH_ORIGINAL_COMMAND.
    let out = sb.run(&["serve", "--repo", &repo], &[], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(text(&out.stderr).contains("interactive logins are refused"));
}

const SSHD: &str = "/usr/sbin/sshd";

/// sshd on 127.0.0.1 with its own config and host key in `dir`, killed by its pid on drop.
struct Sshd {
    child: Child,
    port: u16,
}

impl Sshd {
    fn start(dir: &Path, authorized_keys: &[PathBuf]) -> Sshd {
        // sshd refuses to start without its privilege separation directory.
        fs::create_dir_all("/run/sshd").unwrap();
        harness::keygen(&dir.join("sshd_host_key"));
        // A free port; the short race with other programs is harmless here.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let files = authorized_keys.iter().map(|p| p.display().to_string());
        let config = dir.join("sshd_config");
        let settings = format!(
            "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nUsePAM no\nStrictModes no\n\
             PidFile none\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nAuthorizedKeysFile {}\n",
            dir.join("sshd_host_key").display(),
            files.collect::<Vec<_>>().join(" ")
        );
        fs::write(&config, settings).unwrap();
        let log_path = dir.join("sshd.log");
        let child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log_path).unwrap())
            .spawn()
            .unwrap();
        let mut sshd = Sshd { child, port };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log = fs::read_to_string(&log_path).unwrap_or_default();
            assert!(sshd.child.try_wait().unwrap().is_none(), "{log}");
            assert!(Instant::now() < deadline, "sshd does not listen: {log}");
            std::thread::sleep(Duration::from_millis(20));
        }
        sshd
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn pairs_two_repositories_on_loopback_against_a_real_sshd() {
    if !Path::new(SSHD).exists() {
        eprintln!("SKIPPED: {SSHD} is not installed (openssh-server); cannot pair on loopback");
        assert_eq!(
            std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
            Ok("1"),
            "{SSHD} is missing: install openssh-server, or set GIT_PAIR_ALLOW_SKIP=1 to skip"
        );
        return;
    }
    let a = Sandbox::new("sshd-a", 23);
    let mut b = Sandbox::new("sshd-b", 24);
    b.port = a.port;
    // One sshd serves both sides: each side's key is in the other's authorized_keys, so the
    // key a client logs in with picks the forced command, and with it the repository.
    let keys = [
        a.home.join(".ssh/authorized_keys"),
        b.home.join(".ssh/authorized_keys"),
    ];
    let sshd = Sshd::start(&a.root, &keys);
    // A commit only each side has, so that the fetches prove something.
    a.commit("from-a");
    b.commit("from-b");
    let head = |s: &Sandbox| s.git(&s.repo, &["rev-parse", "HEAD"]).trim().to_string();
    let (head_a, head_b) = (head(&a), head(&b));

    let ssh_port = sshd.port.to_string();
    let host_key = a.root.join("sshd_host_key.pub").display().to_string();
    let common = format!("--json --timeout 3 --ssh-port {ssh_port} --host-key {host_key}");
    let common: Vec<&str> = common.split(' ').collect();
    let mut pa = a.spawn_pair(&common);
    let code = pa.until("code")["code"].as_str().unwrap().to_string();
    let mut pb = b.spawn_pair(&[&common[..], &[&code]].concat());
    let (status_b, stdout_b, err_b) = pb.finish(Duration::from_secs(15));
    let (status_a, stdout_a, err_a) = pa.finish(Duration::from_secs(15));
    assert_eq!(status_a.code(), Some(0), "A: {err_a}");
    assert_eq!(status_b.code(), Some(0), "B: {err_b}");
    let paired_a = events(&stdout_a).pop().unwrap();
    let paired_b = events(&stdout_b).pop().unwrap();
    assert_eq!(paired_a["event"], "paired", "{stdout_a}");
    assert_eq!(paired_b["event"], "paired", "{stdout_b}");

    // HOME is not root's passwd home, and ssh expands `~` from passwd, so every path
    // git-pair wrote for ssh must be absolute.
    for side in [&a, &b] {
        for file in [".ssh/config", ".ssh/git-pair/config"] {
            let written = fs::read_to_string(side.home.join(file)).unwrap();
            assert!(!written.contains('~'), "{file}: {written}");
            let home = side.home.to_str().unwrap();
            assert!(written.contains(home), "{file}: {written}");
        }
    }

    let fetch = |side: &Sandbox, remote: &serde_json::Value| {
        let remote = remote.as_str().unwrap();
        let config = side.home.join(".ssh/config").display().to_string();
        let ssh = format!("ssh -F {config} -o BatchMode=yes");
        let out = side
            .command("git", &side.repo)
            .args(["fetch", remote])
            .env("GIT_SSH_COMMAND", ssh)
            .output()
            .unwrap();
        assert!(out.status.success(), "{remote}: {}", text(&out.stderr));
        side.git(
            &side.repo,
            &["for-each-ref", "--format=%(objectname)", "refs/remotes/"],
        )
    };
    let fetched = fetch(&b, &paired_b["remote"]);
    assert!(
        fetched.lines().any(|r| r == head_a),
        "B fetched {fetched:?}, A is at {head_a}"
    );
    // And the other way: A fetches from B through the same sshd.
    let fetched = fetch(&a, &paired_a["remote"]);
    assert!(
        fetched.lines().any(|r| r == head_b),
        "A fetched {fetched:?}"
    );
}

#[test]
fn a_repository_cannot_pair_with_itself() {
    let sb = Sandbox::new("self", 32);
    let before = sb.snapshot();
    let common = ["--json", "--timeout", "5"];
    let mut a = sb.spawn_pair(&common);
    let code = a.until("code")["code"].as_str().unwrap().to_string();
    let mut b = sb.spawn_pair(&[&common[..], &[&code]].concat());
    let (status_b, out_b, err_b) = b.finish(Duration::from_secs(10));
    let (status_a, out_a, err_a) = a.finish(Duration::from_secs(10));
    for (side, status, out, err) in [("A", status_a, out_a, err_a), ("B", status_b, out_b, err_b)] {
        let last = events(&out).pop().unwrap();
        assert_eq!(last["event"], "failed", "{side}: {out}");
        // Each side finds it itself (exit 2), unless the other's refusal came first (exit 5);
        // either way the message says what happened.
        match last["reason"].as_str().unwrap() {
            "same_repository" => assert_eq!(status.code(), Some(2), "{side}: {err}"),
            "peer_rejected" => assert_eq!(status.code(), Some(5), "{side}: {err}"),
            other => panic!("{side}: reason {other}: {err}"),
        }
        assert!(err.contains("this same repository"), "{side}: {err}");
    }
    sb.assert_unchanged(&before, "a repository paired with itself");
}

#[test]
fn two_repositories_of_one_user_on_one_machine_pair() {
    if !Path::new(SSHD).exists() {
        return skip(&format!("{SSHD} is not installed (openssh-server)"));
    }
    let sb = Sandbox::new("one-home", 33);
    let other = sb.root.join("other");
    fs::create_dir(&other).unwrap();
    sb.git(&other, &["init", "-q"]);
    // Same HOME, same sshd and host keys: only the paths differ.
    let sshd = Sshd::start(&sb.root, &[sb.home.join(".ssh/authorized_keys")]);
    let ssh_port = sshd.port.to_string();
    let host_key = sb.root.join("sshd_host_key.pub").display().to_string();
    let common = [
        "--json",
        "--timeout",
        "5",
        "--ssh-port",
        &ssh_port,
        "--host-key",
        &host_key,
    ];
    let mut a = sb.spawn_pair(&common);
    let code = a.until("code")["code"].as_str().unwrap().to_string();
    let mut b = sb.spawn_pair_in(&other, &[&common[..], &[&code]].concat());
    let (status_b, out_b, err_b) = b.finish(Duration::from_secs(15));
    let (status_a, out_a, err_a) = a.finish(Duration::from_secs(15));
    assert_eq!(status_a.code(), Some(0), "A: {err_a}");
    assert_eq!(status_b.code(), Some(0), "B: {err_b}");
    assert_eq!(events(&out_a).pop().unwrap()["event"], "paired");
    assert_eq!(events(&out_b).pop().unwrap()["event"], "paired");
    let keys = fs::read_to_string(sb.home.join(".ssh/authorized_keys")).unwrap();
    assert_eq!(
        keys.lines().filter(|l| l.contains("git-pair:")).count(),
        2,
        "{keys}"
    );
}

/// Makes ~/.ssh/config a symlink into a "store" directory, as home-manager does, holding
/// `content`. Returns the wrapper that runs a command with that store mounted read-only (in a
/// mount namespace of its own, gone when the command ends); None without root.
fn read_only_ssh_config(sb: &Sandbox, content: &str) -> Option<Vec<String>> {
    if !nix::unistd::Uid::effective().is_root() {
        skip("needs root, to mount a read-only store in a mount namespace");
        return None;
    }
    let store = sb.root.join("store");
    fs::create_dir_all(&store).unwrap();
    fs::write(store.join("hm-ssh-config"), content).unwrap();
    let ssh = sb.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    std::os::unix::fs::symlink(store.join("hm-ssh-config"), ssh.join("config")).unwrap();
    let script = "mount --bind -o ro \"$0\" \"$0\" && exec \"$@\"";
    Some(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([store.display().to_string()])
        .collect(),
    )
}

/// Runs git-pair with exactly `args` in `cwd` through `wrapper`.
fn run_wrapped(sb: &Sandbox, cwd: &Path, wrapper: &[String], args: &[String]) -> Output {
    sb.command(&wrapper[0], cwd)
        .args(&wrapper[1..])
        .arg(harness::BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const MANAGED_CONFIG: &str = "# made by home-manager\nHost *\n  ServerAliveInterval 5\n";

#[test]
fn a_read_only_ssh_config_says_what_is_wrong_and_which_line_to_add() {
    let sb = Sandbox::new("ro-config", 34);
    let Some(ro) = read_only_ssh_config(&sb, MANAGED_CONFIG) else {
        return;
    };
    let before = sb.snapshot();
    let out = run_wrapped(&sb, &sb.repo, &ro, &sb.pair_args(&["--json"]));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    let ev = events(&text(&out.stdout));
    assert_eq!(names(&ev), ["failed"]);
    assert_eq!(ev[0]["reason"], "setup");
    // HOME is not the passwd home here, so the path is absolute (ssh reads ~ from passwd).
    let include = format!("Include {}/.ssh/git-pair/config", sb.home.display());
    for needle in [
        "is a symlink to",
        "hm-ssh-config",
        "read-only file system",
        &include,
        "--no-ssh-config",
        "pair.sshConfig",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(!err.contains("chmod"), "{err}");
    sb.assert_unchanged(&before, "read-only config");
    // With --no-ssh-config it goes on (and, alone, times out); list and remove cope too.
    let out = run_wrapped(&sb, &sb.repo, &ro, &sb.pair_args(&["--no-ssh-config"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    for args in [&["list"][..], &["remove", "nosuch"]] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run_wrapped(&sb, &sb.repo, &ro, &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    sb.assert_unchanged(&before, "--no-ssh-config, list, remove");
}

#[test]
fn pairs_with_a_read_only_ssh_config_and_removes_the_pairing_again() {
    if !Path::new(SSHD).exists() {
        return skip(&format!("{SSHD} is not installed (openssh-server)"));
    }
    let a = Sandbox::new("ro-pair-a", 35);
    let mut b = Sandbox::new("ro-pair-b", 36);
    b.port = a.port;
    let Some(ro) = read_only_ssh_config(&b, MANAGED_CONFIG) else {
        return;
    };
    let keys = [
        a.home.join(".ssh/authorized_keys"),
        b.home.join(".ssh/authorized_keys"),
    ];
    let sshd = Sshd::start(&a.root, &keys);
    let ssh_port = sshd.port.to_string();
    let host_key = a.root.join("sshd_host_key.pub").display().to_string();
    let common = [
        "--json",
        "--timeout",
        "5",
        "--ssh-port",
        &ssh_port,
        "--host-key",
        &host_key,
    ];
    let mut pa = a.spawn_pair(&common);
    let code = pa.until("code")["code"].as_str().unwrap().to_string();
    let b_args = [&common[..], &["--no-ssh-config", &code]].concat();
    let mut pb = b.spawn_wrapped(&b.repo, &ro, &b_args);
    let (status_b, out_b, err_b) = pb.finish(Duration::from_secs(15));
    let (status_a, _, err_a) = pa.finish(Duration::from_secs(15));
    assert_eq!(status_a.code(), Some(0), "A: {err_a}");
    assert_eq!(status_b.code(), Some(0), "B: {err_b}");
    let paired = events(&out_b).pop().unwrap();
    assert_eq!(paired["event"], "paired", "{out_b}");
    // B was told the one line to add, its config is as it was, git pair's own files are there.
    let include = format!("Include {}/.ssh/git-pair/config", b.home.display());
    assert!(err_b.contains(&include), "{err_b}");
    let store = b.root.join("store/hm-ssh-config");
    assert_eq!(fs::read_to_string(&store).unwrap(), MANAGED_CONFIG);
    let own = fs::read_to_string(b.home.join(".ssh/git-pair/config")).unwrap();
    assert!(own.contains(paired["alias"].as_str().unwrap()), "{own}");
    // With the line in a configuration of the user's, the remote works.
    let with_include = b.root.join("with-include");
    let home = b.home.display();
    fs::write(
        &with_include,
        format!("Include {home}/.ssh/git-pair/config\n"),
    )
    .unwrap();
    let remote = paired["remote"].as_str().unwrap();
    let ssh = format!("ssh -F {} -o BatchMode=yes", with_include.display());
    let fetch = b
        .command("git", &b.repo)
        .args(["fetch", remote])
        .env("GIT_SSH_COMMAND", ssh)
        .output()
        .unwrap();
    assert!(fetch.status.success(), "{}", text(&fetch.stderr));
    // And remove copes with the read-only config.
    let args = vec!["remove".to_string(), remote.to_string()];
    let out = run_wrapped(&b, &b.repo, &ro, &args);
    let said = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("deleted "), "{said}");
    assert_eq!(fs::read_to_string(&store).unwrap(), MANAGED_CONFIG);
}

#[test]
fn list_of_a_repository_without_pairings_is_empty() {
    let sb = Sandbox::new("list-empty", 19);
    let out = sb.run(&["list", "--json"], &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "[]\n");
    let out = sb.run(&["list"], &[], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stdout).contains("No pairings"),
        "{}",
        text(&out.stdout)
    );
    assert!(!sb.home.join(".ssh").exists(), "list writes nothing");
}

#[test]
fn list_and_remove_outside_a_repository_are_usage_errors() {
    let sb = Sandbox::new("lifecycle-no-repo", 20);
    let empty = sb.root.join("empty");
    fs::create_dir(&empty).unwrap();
    for args in [&["list"][..], &["list", "--json"], &["remove", "x"]] {
        let json = args.contains(&"--json");
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = sb.run_in(&empty, &args, &[], None);
        // list --json still prints JSON: the failed event.
        assert_usage(&out, json, &["not in a git repository"]);
    }
}

#[test]
fn remove_refuses_a_remote_git_pair_did_not_make_and_ignores_unknown_names() {
    let sb = Sandbox::new("remove-foreign", 21);
    sb.git(&sb.repo, &["remote", "add", "origin", "/elsewhere"]);
    let before = sb.snapshot();
    let out = sb.run(&["remove", "origin"], &[], None);
    assert_usage(
        &out,
        false,
        &["not made by git pair", "git remote remove origin"],
    );
    sb.assert_unchanged(&before, "remove origin");
    let out = sb.run(&["remove", "nosuch"], &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to remove"));
    sb.assert_unchanged(&before, "remove nosuch");
}

/// (No network: both end before any socket is opened.)
#[test]
fn refresh_without_pairings_or_of_an_unknown_name_sends_nothing() {
    let sb = Sandbox::new("refresh-none", 19);
    let before = sb.snapshot();
    let out = sb.run(&["refresh"], &[], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to refresh"));
    let out = sb.run(&["refresh", "nosuch", "--json"], &[], None);
    assert_usage(&out, true, &["no pairing named nosuch", "git pair list"]);
    let empty = sb.root.join("empty");
    fs::create_dir(&empty).unwrap();
    let out = sb.run_in(&empty, &["refresh".to_string()], &[], None);
    assert_usage(&out, false, &["not in a git repository"]);
    sb.assert_unchanged(&before, "refresh");
}

/// On loopback and this test's own port (number 22 is that of a test without network).
#[test]
fn watch_on_loopback_answers_for_no_one_and_stops_cleanly_on_sigterm() {
    let sb = Sandbox::new("watch-lo", 22);
    let out = sb.run(&["watch", "--interface", "nosuch0"], &[], None);
    assert_usage(&out, false, &["nosuch0", "lo"]);
    let port = sb.port.to_string();
    let mut watch = sb.spawn(&["watch", "--json", "--interface", "lo", "--port", &port]);
    let watching = watch.until("watching");
    assert_eq!(watching["interfaces"], serde_json::json!(["lo"]));
    assert_eq!(watching["pairings"], serde_json::json!([]));
    kill(Pid::from_raw(watch.child.id() as i32), Signal::SIGTERM).unwrap();
    let (status, stdout, stderr) = watch.finish(Duration::from_secs(10));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let evs = events(&stdout);
    // `until` took the `watching` line; `stopped` is the last one.
    assert_eq!(names(&evs), ["stopped"], "{stdout}");
    assert!(stderr.contains("stopped after"), "{stderr}");
}
