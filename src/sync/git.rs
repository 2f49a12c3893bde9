//! The git commands `git pair sync` runs, each a small function around one `git` process.
//!
//! Every command runs in the repository with the same environment:
//! - what git sets for a hook and must not outlive it is removed (`GIT_INDEX_FILE` may name a
//!   temporary index, `GIT_PREFIX` a subdirectory, the `*_DATE`s the commit just made);
//! - `GIT_OPTIONAL_LOCKS=0`, so that a background `git status` never holds `index.lock` while
//!   the user runs git;
//! - `GIT_PAIR_SYNC=1`, which tells git-pair's own hooks not to start another sync for what
//!   this one does (a fast-forward runs post-merge, `git annex sync` commits);
//! - ssh in batch mode with a connect timeout, so that a peer that is off costs seconds and a
//!   prompt never waits for nobody: `GIT_SSH_COMMAND` is the user's own ssh command
//!   (`GIT_SSH_COMMAND`, else `core.sshCommand`, else `ssh`) followed by [`SSH_OPTIONS`]. A
//!   `GIT_SSH` program without `GIT_SSH_COMMAND` is left alone: it takes no options.
//!
//! The remotes are named, not their URLs: git reads the paired remote's URL, an ssh alias in
//! `~/.ssh/git-pair/config` with the peer's host keys pinned.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// ssh options added to every connection to a peer.
pub const SSH_OPTIONS: &str =
    "-o BatchMode=yes -o ConnectTimeout=5 -o ServerAliveInterval=10 -o ServerAliveCountMax=3";

/// The seconds of `ConnectTimeout` in [`SSH_OPTIONS`], for the man page.
pub const CONNECT_TIMEOUT_SECS: u32 = 5;

/// Set in the environment of everything sync runs; git-pair's hooks do nothing when they see it.
pub const SYNC_ENV: &str = "GIT_PAIR_SYNC";

/// Variables git sets for hooks that would mislead a command run after the hook returned.
const HOOK_ONLY_ENV: [&str; 7] = [
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_AUTHOR_DATE",
    "GIT_COMMITTER_DATE",
    "GIT_EDITOR",
    "GIT_REFLOG_ACTION",
    "GIT_QUARANTINE_PATH",
];

/// What one git command did.
#[derive(Debug, Clone)]
pub struct Output {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs git in one repository.
#[derive(Debug, Clone)]
pub struct Git {
    /// The work tree, or the git directory of a bare repository.
    dir: PathBuf,
    /// `GIT_DIR` and `GIT_WORK_TREE` as absolute paths, when the user's own were set (a
    /// relative one would mean something else from `dir`).
    explicit: Vec<(&'static str, PathBuf)>,
    ssh_command: Option<String>,
}

impl Git {
    /// Git in the repository whose work tree (or, when bare, git directory) is `dir`.
    pub fn new(dir: &Path, git_dir: &Path, work_tree: Option<&Path>) -> Git {
        let mut explicit = Vec::new();
        if std::env::var_os("GIT_DIR").is_some() {
            explicit.push(("GIT_DIR", git_dir.to_path_buf()));
            if let Some(w) = work_tree {
                explicit.push(("GIT_WORK_TREE", w.to_path_buf()));
            }
        }
        let mut git = Git {
            dir: dir.to_path_buf(),
            explicit,
            ssh_command: None,
        };
        git.ssh_command = git.ssh_command_with_options();
        git
    }

    fn ssh_command_with_options(&self) -> Option<String> {
        let from_env = std::env::var("GIT_SSH_COMMAND")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let base = match from_env {
            Some(cmd) => cmd,
            None if std::env::var_os("GIT_SSH").is_some_and(|s| !s.is_empty()) => return None,
            None => self
                .config("core.sshCommand")
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| "ssh".to_string()),
        };
        Some(format!("{base} {SSH_OPTIONS}"))
    }

    /// A `git ARGS` command with sync's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("git");
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        for var in HOOK_ONLY_ENV {
            cmd.env_remove(var);
        }
        for (var, value) in &self.explicit {
            cmd.env(var, value);
        }
        cmd.env(SYNC_ENV, "1");
        // A sync runs behind the user's back: `git status` must not take index.lock, or the
        // user's own git command could fail on it.
        cmd.env("GIT_OPTIONAL_LOCKS", "0");
        if let Some(ssh) = &self.ssh_command {
            cmd.env("GIT_SSH_COMMAND", ssh);
        }
        cmd
    }

    /// Runs `git ARGS` to the end, capturing its output.
    pub fn run(&self, args: &[&str]) -> io::Result<Output> {
        self.run_with(args, &[])
    }

    /// [`Git::run`] with more environment.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> io::Result<Output> {
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied());
        let out = cmd.output()?;
        Ok(Output {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// `git config --get NAME`, `None` when unset.
    pub fn config(&self, name: &str) -> Option<String> {
        let out = self.run(&["config", "--get", name]).ok()?;
        out.success.then(|| out.stdout.trim_end().to_string())
    }

    /// Fetches every branch of `remote` into `refs/remotes/<remote>/`, whatever the remote's
    /// own fetch settings say, so that `<remote>/<branch>` and `<remote>/synced/<branch>` are
    /// there to compare.
    pub fn fetch(&self, remote: &str) -> io::Result<Output> {
        let refspec = format!("+refs/heads/*:refs/remotes/{remote}/*");
        self.run(&[
            "fetch",
            "--quiet",
            "--no-write-fetch-head",
            remote,
            &refspec,
        ])
    }

    /// Pushes `refs/heads/<branch>` to `refs/heads/synced/<branch>` on `remote`: never forced.
    pub fn push_synced(&self, remote: &str, branch: &str) -> io::Result<Output> {
        let refspec = format!("refs/heads/{branch}:refs/heads/synced/{branch}");
        self.run(&["push", "--porcelain", remote, &refspec])
    }

    /// Asks `remote` for nothing but its ref list: whether it can be reached and lets us in.
    pub fn probe(&self, remote: &str) -> io::Result<Output> {
        self.run(&[
            "ls-remote",
            "--heads",
            remote,
            "refs/heads/git-pair-probe-matches-nothing",
        ])
    }

    /// Whether the work tree has uncommitted changes to tracked files (untracked files do not
    /// count: a fast-forward that would overwrite one is refused by git itself).
    pub fn dirty(&self) -> io::Result<bool> {
        let out = self.run(&["status", "--porcelain", "--untracked-files=no"])?;
        if !out.success {
            return Err(io::Error::other(format!(
                "git status failed: {}",
                out.stderr.trim()
            )));
        }
        Ok(!out.stdout.trim().is_empty())
    }

    /// Fast-forwards the checked-out branch to `commit`, updating the work tree; git refuses
    /// anything but a fast-forward and any change that would lose local work.
    pub fn fast_forward(&self, commit: &str) -> io::Result<Output> {
        self.run_with(
            &["merge", "--ff-only", "--quiet", "--no-edit", commit],
            &[("GIT_REFLOG_ACTION", "git pair sync")],
        )
    }

    /// Moves `refs/heads/<branch>` of a bare repository from `old` to `new`, only if it still
    /// is at `old`.
    pub fn update_branch(&self, branch: &str, new: &str, old: &str) -> io::Result<Output> {
        let name = format!("refs/heads/{branch}");
        self.run(&[
            "update-ref",
            "-m",
            "git pair sync: fast-forward",
            &name,
            new,
            old,
        ])
    }

    /// `git annex config --get NAME`: a setting stored for every clone in the git-annex branch.
    pub fn annex_config(&self, name: &str) -> Option<String> {
        let out = self.run(&["annex", "config", "--get", name]).ok()?;
        out.success
            .then(|| out.stdout.trim_end().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `git annex sync [--content] REMOTE...`, its output passed line by line to `line` as it
    /// comes (stdout and stderr alike).
    pub fn annex_sync(
        &self,
        remotes: &[String],
        content: bool,
        line: &mut dyn FnMut(&str),
    ) -> io::Result<Output> {
        let mut args: Vec<OsString> = vec!["annex".into(), "sync".into()];
        if content {
            args.push("--content".into());
        }
        args.extend(remotes.iter().map(OsString::from));
        let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
        let mut cmd = self.command(&args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, rx) = std::sync::mpsc::channel::<(bool, String)>();
        let readers: Vec<_> = [
            stdout.map(|p| Box::new(p) as Box<dyn io::Read + Send>),
            stderr.map(|p| Box::new(p) as Box<dyn io::Read + Send>),
        ]
        .into_iter()
        .enumerate()
        .filter_map(|(i, pipe)| {
            let pipe = pipe?;
            let tx = tx.clone();
            Some(std::thread::spawn(move || {
                use io::BufRead;
                let mut reader = io::BufReader::new(pipe);
                let mut buf = Vec::new();
                while let Ok(n) = reader.read_until(b'\n', &mut buf) {
                    if n == 0 {
                        break;
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send((i == 1, text)).is_err() {
                        break;
                    }
                    buf.clear();
                }
            }))
        })
        .collect();
        drop(tx);
        let (mut out, mut err) = (String::new(), String::new());
        for (is_err, text) in rx {
            for piece in text.split(['\n', '\r']).filter(|p| !p.trim().is_empty()) {
                line(piece);
            }
            if is_err {
                err.push_str(&text);
            } else {
                out.push_str(&text);
            }
        }
        for r in readers {
            let _ = r.join();
        }
        let status = child.wait()?;
        Ok(Output {
            success: status.success(),
            stdout: out,
            stderr: err,
        })
    }
}
