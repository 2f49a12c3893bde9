//! Child processes of the end-to-end tests: a command builder, run-to-completion under a
//! deadline, and spawned processes whose stdout is read line by line while the other side starts.
//!
//! Every process is ended by its own pid (the `Child` we spawned), never by name. Commands are
//! built so that each wrapper (`ip netns exec`, `unshare`, `sh -c 'exec ...'`, `setpriv`, `env`)
//! execs the next one: the pid we hold is the pid of the real program.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// PATH given to every command, in and out of the namespaces.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default deadline of a command run to completion.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to wait for the pipes to reach EOF after the process exited (a grandchild that
/// inherited them may keep them open; we then stop waiting rather than hang).
const PIPE_DRAIN: Duration = Duration::from_secs(5);

/// A command to run: `prefix` (namespace/user wrappers ending in `env -i BASE_ENV...`), then the
/// caller's extra environment, then the program and its arguments.
#[derive(Clone)]
pub struct Cmd {
    prefix: Vec<OsString>,
    env: Vec<OsString>,
    /// Variables set directly in the environment of the first program (PATH is always set).
    vars: Vec<(String, String)>,
    program: OsString,
    args: Vec<OsString>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    context: String,
    /// Started by a thread already in the host's namespaces, as this user and group, rather
    /// than through `prefix` (see [`Spawner`]).
    within: Option<Within>,
}

/// Where and as whom a [`Spawner`] starts a command.
#[derive(Clone)]
pub struct Within {
    pub spawner: Arc<Spawner>,
    pub uid: u32,
    pub gid: u32,
}

/// A thread that has entered a host's namespaces and starts commands from there: a child
/// inherits the namespaces of the thread that forks it, so the program is the first one
/// started, with nothing in between (the benchmark's timings). Namespaces that a thread of a
/// process may enter alone (network, UTS) only.
pub struct Spawner {
    requests: Mutex<Sender<(Command, Sender<std::io::Result<Child>>)>>,
}

impl Spawner {
    /// Starts the thread; `enter` runs on it first (it enters the namespaces), and its error
    /// is returned here.
    pub fn new(
        enter: impl FnOnce() -> std::io::Result<()> + Send + 'static,
    ) -> std::io::Result<Spawner> {
        let (requests, incoming) = mpsc::channel::<(Command, Sender<std::io::Result<Child>>)>();
        let (ready_tx, ready) = mpsc::channel();
        thread::spawn(move || {
            let entered = enter();
            let ok = entered.is_ok();
            let _ = ready_tx.send(entered);
            if ok {
                for (mut cmd, reply) in incoming {
                    let _ = reply.send(cmd.spawn());
                }
            }
        });
        ready
            .recv()
            .map_err(|_| std::io::Error::other("the spawning thread ended"))??;
        Ok(Spawner {
            requests: Mutex::new(requests),
        })
    }

    fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (reply, answer) = mpsc::channel();
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .send((cmd, reply))
            .map_err(|_| std::io::Error::other("the spawning thread ended"))?;
        answer
            .recv()
            .map_err(|_| std::io::Error::other("the spawning thread ended"))?
    }
}

impl Cmd {
    /// A command in the root namespace as root, with a clean environment (PATH only).
    pub fn root(program: impl AsRef<OsStr>) -> Cmd {
        Cmd::with_prefix(
            vec!["env".into(), "-i".into(), format!("PATH={PATH}").into()],
            program,
            "root".to_owned(),
        )
    }

    /// A command after `prefix`; `context` says where it runs, for messages.
    pub fn with_prefix(prefix: Vec<OsString>, program: impl AsRef<OsStr>, context: String) -> Cmd {
        Cmd {
            prefix,
            env: Vec::new(),
            vars: Vec::new(),
            program: program.as_ref().to_owned(),
            args: Vec::new(),
            cwd: None,
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            context,
            within: None,
        }
    }

    /// The prefix after the namespace and host name part of a host's command (from `setpriv`
    /// on), for a variant of the same command with another way into the namespace.
    pub fn prefix_after_host(&self) -> Vec<OsString> {
        let start = self
            .prefix
            .iter()
            .position(|a| a == "setpriv" || a == "env")
            .unwrap_or(self.prefix.len());
        self.prefix[start..].to_vec()
    }

    /// The same program, arguments, input and working directory, started by `prefix` instead,
    /// with `vars` as its whole environment (the `KEY=VALUE` words given to the old prefix's `env`
    /// by [`Cmd::env`] become variables too). Only the benchmark starts commands another way.
    #[allow(dead_code)]
    pub fn relaunch(mut self, prefix: Vec<OsString>, vars: Vec<(String, String)>) -> Cmd {
        let extra = std::mem::take(&mut self.env).into_iter().filter_map(|kv| {
            let kv = kv.into_string().ok()?;
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        });
        self.vars = vars.into_iter().chain(extra).collect();
        self.prefix = prefix;
        self
    }

    /// [`Cmd::relaunch`] with no prefix at all: the program is started by `within`'s spawner,
    /// as its user and group (no supplementary groups: the standard library drops them when
    /// root starts a program as another user).
    #[allow(dead_code)]
    pub fn started_within(self, within: Within, vars: Vec<(String, String)>) -> Cmd {
        let mut cmd = self.relaunch(Vec::new(), vars);
        cmd.within = Some(within);
        cmd
    }

    pub fn program(&self) -> &OsStr {
        &self.program
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Cmd {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Adds `key=value` to the program's environment.
    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Cmd {
        let mut kv = OsString::from(format!("{key}="));
        kv.push(value.as_ref());
        self.env.push(kv);
        self
    }

    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.cwd = Some(dir.as_ref().to_owned());
        self
    }

    /// Bytes written to the program's stdin, which is then closed. Without it stdin is /dev/null.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    /// [`Cmd::stdin`] when `give`.
    pub fn stdin_if(self, give: bool, bytes: impl Into<Vec<u8>>) -> Cmd {
        if give {
            self.stdin(bytes)
        } else {
            self
        }
    }

    pub fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The command as shown in messages: where it runs, then the program and its arguments
    /// (the wrappers are left out: they are the same for every command of a host).
    pub fn label(&self) -> String {
        let mut s = format!("[{}] ", self.context);
        for e in &self.env {
            s.push_str(&e.to_string_lossy());
            s.push(' ');
        }
        s.push_str(&self.program.to_string_lossy());
        for a in &self.args {
            s.push(' ');
            s.push_str(&shell_quote(&a.to_string_lossy()));
        }
        s
    }

    fn build(&self) -> Command {
        let mut argv = self.prefix.iter().chain(&self.env);
        let mut cmd = match argv.next() {
            Some(first) => {
                let mut cmd = Command::new(first);
                cmd.args(argv).arg(&self.program);
                cmd
            }
            None => Command::new(&self.program),
        };
        cmd.args(&self.args)
            .env_clear()
            .env("PATH", PATH)
            .envs(self.vars.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        if let Some(w) = &self.within {
            use std::os::unix::process::CommandExt;
            cmd.uid(w.uid).gid(w.gid);
        }
        cmd
    }

    /// Runs to completion. Panics (failing the test, with the output so far) when the command
    /// cannot be started or outlives its deadline; a non-zero exit is returned, not a panic.
    pub fn run(&self) -> Output {
        let timeout = self.timeout;
        let out = self.spawn().wait(timeout);
        if out.timed_out {
            panic!("command timed out after {timeout:?}\n{out}");
        }
        out
    }

    /// Runs to completion and panics unless it exited 0.
    pub fn run_ok(&self) -> Output {
        let out = self.run();
        if !out.success() {
            panic!("command failed\n{out}");
        }
        out
    }

    /// Starts the command and returns at once; stdout can then be read line by line.
    pub fn spawn(&self) -> Running {
        let label = self.label();
        let spawned = match &self.within {
            Some(w) => w.spawner.spawn(self.build()),
            None => self.build().spawn(),
        };
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => panic!("cannot start {label}: {e}"),
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        if let (Some(mut pipe), Some(bytes)) = (stdin, self.stdin.clone()) {
            thread::spawn(move || feed(&mut pipe, &bytes));
        }
        let stdout_all = Arc::new(Mutex::new(Vec::new()));
        let stderr_all = Arc::new(Mutex::new(Vec::new()));
        let (line_tx, lines) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        if let Some(pipe) = stdout {
            let (all, done_tx) = (Arc::clone(&stdout_all), done_tx.clone());
            thread::spawn(move || read_lines(pipe, &all, &line_tx, &done_tx));
        }
        if let Some(mut pipe) = stderr {
            let all = Arc::clone(&stderr_all);
            thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    lock(&all).extend_from_slice(&buf[..n]);
                }
                let _ = done_tx.send(());
            });
        }
        Running {
            label,
            child: Some(child),
            lines,
            stdout_all,
            stderr_all,
            done,
        }
    }
}

fn feed(pipe: &mut ChildStdin, bytes: &[u8]) {
    // The program may exit without reading its stdin; a broken pipe is then expected.
    let _ = pipe.write_all(bytes);
}

fn read_lines(
    pipe: impl Read,
    all: &Mutex<Vec<u8>>,
    line_tx: &Sender<String>,
    done_tx: &Sender<()>,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                lock(all).extend_from_slice(&line);
                let text = String::from_utf8_lossy(&line);
                let _ = line_tx.send(text.trim_end_matches(['\n', '\r']).to_owned());
            }
        }
    }
    let _ = done_tx.send(());
}

fn lock(m: &Mutex<Vec<u8>>) -> std::sync::MutexGuard<'_, Vec<u8>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A spawned process. Dropping it kills the process (by its pid) if it still runs, and reaps it.
pub struct Running {
    label: String,
    child: Option<Child>,
    lines: Receiver<String>,
    stdout_all: Arc<Mutex<Vec<u8>>>,
    stderr_all: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Whether the process has exited (it is then reaped; `wait` still reports its status).
    pub fn has_exited(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }

    /// The next stdout line (without its line ending), or `None` at EOF or at the deadline.
    pub fn next_line(&mut self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.lines.recv_timeout(left).ok()
    }

    /// What the process wrote to stdout and stderr so far (for messages).
    pub fn output_so_far(&self) -> (String, String) {
        (
            String::from_utf8_lossy(&lock(&self.stdout_all)).into_owned(),
            String::from_utf8_lossy(&lock(&self.stderr_all)).into_owned(),
        )
    }

    /// Waits for the process to exit; at the deadline kills it by pid. Never panics: the
    /// returned `Output` says whether it timed out.
    pub fn wait(self, timeout: Duration) -> Output {
        self.wait_polling(timeout, Duration::from_millis(20)).0
    }

    /// Like [`Running::wait`], and also returns when the process exited, to within the
    /// wake-up of a thread blocked in `waitpid` (the benchmarks time short runs with it; a
    /// poll would add up to its interval).
    #[allow(dead_code)]
    pub fn wait_exact(mut self, timeout: Duration) -> (Output, Instant) {
        let Some(mut child) = self.child.take() else {
            panic!("{}: waited for twice", self.label);
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let (tx, rx) = mpsc::channel();
        let waiter = thread::spawn(move || {
            let status = child.wait();
            let _ = tx.send(Instant::now());
            status
        });
        let (exited, timed_out) = match rx.recv_timeout(timeout) {
            Ok(at) => (at, false),
            Err(_) => {
                // Not reaped yet (the waiter has not returned), so the pid is still ours.
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                (rx.recv().unwrap_or_else(|_| Instant::now()), true)
            }
        };
        let status = match waiter.join() {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("{}: cannot wait: {e}", self.label),
            Err(_) => panic!("{}: the waiting thread panicked", self.label),
        };
        (self.output(status, timed_out), exited)
    }

    /// Like [`Running::wait`], checking for the exit every `poll`; also returns when the exit
    /// was first seen (at most `poll` late). The benchmarks time short runs with a small `poll`.
    pub fn wait_polling(mut self, timeout: Duration, poll: Duration) -> (Output, Instant) {
        let deadline = Instant::now() + timeout;
        let Some(mut child) = self.child.take() else {
            panic!("{}: waited for twice", self.label);
        };
        let mut timed_out = false;
        let (status, exited) = loop {
            match child.try_wait() {
                Ok(Some(status)) => break (status, Instant::now()),
                Ok(None) if Instant::now() < deadline => thread::sleep(poll),
                Ok(None) => {
                    timed_out = true;
                    let _ = child.kill();
                    match child.wait() {
                        Ok(status) => break (status, Instant::now()),
                        Err(e) => panic!("{}: cannot reap after kill: {e}", self.label),
                    }
                }
                Err(e) => panic!("{}: cannot wait: {e}", self.label),
            }
        };
        (self.output(status, timed_out), exited)
    }

    /// What the exited process printed (its pipes read to their end, within [`PIPE_DRAIN`]).
    fn output(&self, status: ExitStatus, timed_out: bool) -> Output {
        let drain_deadline = Instant::now() + PIPE_DRAIN;
        for _ in 0..2 {
            let left = drain_deadline.saturating_duration_since(Instant::now());
            if self.done.recv_timeout(left).is_err() {
                break;
            }
        }
        Output {
            command: self.label.clone(),
            status,
            timed_out,
            stdout: lock(&self.stdout_all).clone(),
            stderr: lock(&self.stderr_all).clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a finished command did.
pub struct Output {
    pub command: String,
    pub status: ExitStatus,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.success()
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "$ {}", self.command)?;
        if self.timed_out {
            writeln!(f, "(killed: timed out)")?;
        }
        writeln!(f, "exit: {}", self.status)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout_str().trim_end())?;
        write!(f, "--- stderr ---\n{}", self.stderr_str().trim_end())
    }
}

fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
