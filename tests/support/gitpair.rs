//! Driving the real git-pair binary between the two hosts of a lab, bound to its CLI:
//! `git-pair [CODE] --json --interface IF --host-key PUB --ssh-port 22 --timeout S [--peer H]...
//! [--code-file -]`, the JSON events on stdout, and the remote it leaves behind.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::host::Host;
use super::lab::Lab;
use super::process::{Cmd, Output, Running};

/// Exit codes of git-pair.
pub mod exit {
    pub const OK: i32 = 0;
    pub const NO_PEER: i32 = 3;
    pub const VERIFICATION_FAILED: i32 = 4;
    pub const SETUP_FAILED: i32 = 5;
}

/// How long git-pair may take to print its generated code.
const CODE_DEADLINE: Duration = Duration::from_secs(15);

/// Slack between git-pair's own `--timeout` and the moment we kill it.
const KILL_SLACK: Duration = Duration::from_secs(20);

/// Options of one side's git-pair run.
#[derive(Debug, Clone)]
pub struct PairOpts {
    pub timeout_secs: u64,
    /// `--peer` values.
    pub peers: Vec<String>,
    /// Give the code on stdin with `--code-file -` instead of as the CODE argument.
    pub code_on_stdin: bool,
    /// Run in this repository instead of the host's `repo`.
    pub cwd: Option<PathBuf>,
    /// More arguments (`--name`, `--key`).
    pub extra: Vec<String>,
    /// Standard input after the code (if `code_on_stdin`): a `--verify` answer.
    pub stdin: Option<String>,
    /// `--ssh-port`.
    pub ssh_port: u16,
    /// `--host-key`, instead of the host's sshd key.
    pub host_key: Option<PathBuf>,
}

impl Default for PairOpts {
    fn default() -> Self {
        PairOpts {
            timeout_secs: 20,
            peers: Vec::new(),
            code_on_stdin: false,
            cwd: None,
            extra: Vec::new(),
            stdin: None,
            ssh_port: 22,
            host_key: None,
        }
    }
}

impl PairOpts {
    pub fn timeout(secs: u64) -> PairOpts {
        PairOpts {
            timeout_secs: secs,
            ..PairOpts::default()
        }
    }

    pub fn peer(mut self, host: impl Into<String>) -> PairOpts {
        self.peers.push(host.into());
        self
    }

    pub fn code_on_stdin(mut self) -> PairOpts {
        self.code_on_stdin = true;
        self
    }

    pub fn in_repo(mut self, repo: impl Into<PathBuf>) -> PairOpts {
        self.cwd = Some(repo.into());
        self
    }

    /// Advertise another sshd of the host: its port and its host key.
    pub fn sshd(mut self, port: u16, host_key: impl Into<PathBuf>) -> PairOpts {
        self.ssh_port = port;
        self.host_key = Some(host_key.into());
        self
    }

    pub fn arg(mut self, arg: impl Into<String>) -> PairOpts {
        self.extra.push(arg.into());
        self
    }

    /// `--verify`, answered with `answer` as JSON on standard input.
    pub fn verify(mut self, answer: bool) -> PairOpts {
        self.extra.push("--verify".into());
        self.stdin = Some(format!("{{\"verify\": {answer}}}\n"));
        self
    }

    pub fn wait_limit(&self) -> Duration {
        Duration::from_secs(self.timeout_secs) + KILL_SLACK
    }
}

impl Host {
    /// The git-pair command of this host (the copy in the lab, as this host's user, in its
    /// repository, on its veth, announcing its sshd host key). `code: None` generates one.
    pub fn git_pair(&self, code: Option<&str>, opts: &PairOpts) -> Cmd {
        self.git_pair_under(&[], code, opts)
    }

    /// [`Host::git_pair`] run by `wrapper` (a program and its arguments, e.g. `strace …`),
    /// which must exec or trace git-pair, given as its last arguments.
    pub fn git_pair_under(&self, wrapper: &[String], code: Option<&str>, opts: &PairOpts) -> Cmd {
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => self.cmd(program).args(args).arg(&self.git_pair),
            None => self.cmd(&self.git_pair),
        }
        .args(["--json", "--interface", &self.iface, "--ssh-port"])
        .arg(opts.ssh_port.to_string())
        .arg("--host-key")
        .arg(opts.host_key.as_ref().unwrap_or(&self.host_key_pub))
        .args(["--timeout", &opts.timeout_secs.to_string()]);
        for peer in &opts.peers {
            cmd = cmd.args(["--peer", peer]);
        }
        cmd = cmd.args(&opts.extra);
        if let Some(dir) = &opts.cwd {
            cmd = cmd.cwd(dir);
        }
        let more = opts.stdin.clone().unwrap_or_default();
        match code {
            Some(code) if opts.code_on_stdin => cmd
                .args(["--code-file", "-"])
                .stdin(format!("{code}\n{more}")),
            Some(code) => cmd.arg(code),
            None => cmd,
        }
        .stdin_if(
            opts.stdin.is_some() && !(code.is_some() && opts.code_on_stdin),
            more,
        )
        .timeout(opts.wait_limit())
    }
}

/// Both sides of one pairing attempt, finished.
pub struct PairRun {
    pub code: String,
    pub a: Output,
    pub b: Output,
    logs: String,
}

/// Runs one pairing attempt: A generates the code, then B joins with `code_for_b(code)`.
/// Returns whatever happened; assertions are the caller's (see [`PairRun::expect_paired`]).
pub fn pair_with(
    lab: &Lab,
    a_opts: &PairOpts,
    b_opts: &PairOpts,
    code_for_b: impl FnOnce(&str) -> String,
) -> PairRun {
    let (a, code) = start_with_code(&lab.a, a_opts);
    let b = lab.b.git_pair(Some(&code_for_b(&code)), b_opts).spawn();
    let a = a.wait(a_opts.wait_limit());
    let b = b.wait(b_opts.wait_limit());
    PairRun {
        code,
        a,
        b,
        logs: lab.sshd_logs(),
    }
}

/// Starts git-pair on `host` without a code, and reads the code it generated from its `code`
/// event.
pub fn start_with_code(host: &Host, opts: &PairOpts) -> (Running, String) {
    let mut a = host.git_pair(None, opts).spawn();
    let deadline = Instant::now() + CODE_DEADLINE;
    let code = loop {
        let Some(line) = a.next_line(deadline) else {
            let why = if Instant::now() < deadline {
                "exited".to_owned()
            } else {
                format!("was killed after {CODE_DEADLINE:?}")
            };
            let out = a.wait(Duration::from_secs(2));
            panic!(
                "git-pair on {} {why} without printing a code event\n{out}",
                host.hostname
            );
        };
        if let Ok(ev) = serde_json::from_str::<Value>(&line) {
            if ev["event"] == "code" {
                match ev["code"].as_str() {
                    Some(code) => break code.to_owned(),
                    None => panic!("code event without a string \"code\": {line}"),
                }
            }
        }
    };
    (a, code)
}

/// A pairing where B types the code it was told.
pub fn pair(lab: &Lab, a_opts: &PairOpts, b_opts: &PairOpts) -> PairRun {
    pair_with(lab, a_opts, b_opts, str::to_owned)
}

/// A successful pairing: the name of the remote each side added.
#[derive(Debug, Clone)]
pub struct Paired {
    pub remote_on_a: String,
    pub remote_on_b: String,
}

impl PairRun {
    /// Asserts that both sides exited 0 and reported a `paired` event with a remote name.
    pub fn expect_paired(&self) -> Paired {
        let remote = |out: &Output| -> Option<String> {
            if out.code() != Some(exit::OK) || out.timed_out {
                return None;
            }
            let paired = events(out)
                .into_iter()
                .rev()
                .find(|e| e["event"] == "paired")?;
            paired["remote"].as_str().map(str::to_owned)
        };
        match (remote(&self.a), remote(&self.b)) {
            (Some(remote_on_a), Some(remote_on_b)) => Paired {
                remote_on_a,
                remote_on_b,
            },
            _ => panic!("pairing failed (expected exit 0 and a \"paired\" event with \"remote\" on both sides)\n{self}"),
        }
    }
}

impl std::fmt::Display for PairRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "code: {}\n=== side A ===\n{}\n=== side B ===\n{}\n{}",
            self.code, self.a, self.b, self.logs
        )
    }
}

/// The JSON events on stdout, skipping lines that are not JSON objects with an "event".
pub fn events(out: &Output) -> Vec<Value> {
    out.stdout_str()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["event"].is_string())
        .collect()
}

/// Every stdout line must be one JSON object with a string "event", and stdout must end with a
/// newline: `--json` promises nothing else on stdout.
pub fn events_strict(out: &Output) -> Result<Vec<Value>, String> {
    let text = std::str::from_utf8(&out.stdout).map_err(|e| format!("stdout is not UTF-8: {e}"))?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("stdout does not end with a newline".to_owned());
    }
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let v: Value = serde_json::from_str(line)
                .map_err(|e| format!("stdout line {} is not JSON ({e}): {line:?}", i + 1))?;
            if !v.is_object() || !v["event"].is_string() {
                return Err(format!(
                    "stdout line {} is not an object with a string \"event\": {line}",
                    i + 1
                ));
            }
            Ok(v)
        })
        .collect()
}

pub fn event_names(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| e["event"].as_str().map(str::to_owned))
        .collect()
}

/// A remote as git-pair configured it: URL `<alias>:<path>`.
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub alias: String,
    pub path: String,
}

impl Host {
    pub fn remote(&self, name: &str) -> Remote {
        let url = self.git(&["remote", "get-url", name]).trim().to_owned();
        let Some((alias, path)) = url.split_once(':') else {
            panic!(
                "remote {name} on {} has URL {url:?}, expected <ssh alias>:<path>",
                self.hostname
            );
        };
        Remote {
            alias: alias.to_owned(),
            path: path.to_owned(),
            url,
        }
    }
}
