//! One host of a test: a network namespace with its own host name, a unix user with its own HOME,
//! a git repository owned by that user, and a real sshd listening inside the namespace.
//!
//! Commands run "on" a host go through `ip netns exec NS unshare --uts sh -c 'hostname H && exec
//! "$@"'` (and `setpriv` to the host's user for user commands), so each side sees its own host
//! name and only its own interfaces. Every wrapper execs the next one: the pid we hold is the
//! program's.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::process::{Cmd, Running, Spawner, Within, PATH};

/// How long sshd may take to accept connections.
const SSHD_READY: Duration = Duration::from_secs(10);

/// Serialises useradd/userdel of this process: parallel tests would otherwise fight for the
/// /etc/passwd lock (other processes still can, hence the retries).
static USER_DB: Mutex<()> = Mutex::new(());

/// Shell snippet that sets the UTS host name (in a fresh UTS namespace) and execs the rest.
const SET_HOSTNAME: &str = r#"hostname "$0" && exec "$@""#;

/// A running sshd, shared by its host (for its log) and the cleanup (which kills it by pid).
pub type SshdSlot = Arc<Mutex<Option<Running>>>;

pub struct Host {
    /// Host name seen inside the namespace (`alpha`, `beta`): git-pair names remotes after it.
    pub hostname: String,
    pub netns: String,
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    pub home: PathBuf,
    /// The repository being paired: `<home>/project`.
    pub repo: PathBuf,
    /// The veth end inside this namespace.
    pub iface: String,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6_ll: Ipv6Addr,
    /// Root-owned directory of this host's sshd config and host key.
    pub sshd_dir: PathBuf,
    pub host_key_pub: PathBuf,
    /// The copy of the git-pair binary under test (mode 0755, reachable by the test users).
    pub git_pair: PathBuf,
    pub(crate) sshd: SshdSlot,
    /// A process that holds this host's namespaces for [`Host::lean`], started on first use;
    /// dropped (killed by its pid) with the host. Only the benchmark starts commands so.
    #[allow(dead_code)]
    pub(crate) anchor: Mutex<Option<Running>>,
    /// The thread that starts commands inside this host's namespaces for [`Host::lean`],
    /// started on first use; it ends when the host is dropped.
    #[allow(dead_code)]
    pub(crate) spawner: Mutex<Option<Arc<Spawner>>>,
}

impl Host {
    /// `program` as this host's user inside its namespace, with a clean environment and the
    /// repository as the working directory.
    pub fn cmd(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut prefix = self.uts_prefix();
        prefix.extend(
            [
                "setpriv".to_owned(),
                format!("--reuid={}", self.uid),
                format!("--regid={}", self.gid),
                "--init-groups".to_owned(),
                "env".to_owned(),
                "-i".to_owned(),
                format!("HOME={}", self.home.display()),
                format!("PATH={PATH}"),
                format!("USER={}", self.user),
                format!("LOGNAME={}", self.user),
                "SHELL=/bin/sh".to_owned(),
                "LANG=C.UTF-8".to_owned(),
            ]
            .map(Into::into),
        );
        Cmd::with_prefix(prefix, program, format!("{} {}", self.hostname, self.user))
            .cwd(&self.repo)
    }

    /// The environment [`Host::cmd`] gives this host's user (after `env -i`).
    // Only the benchmark (benches/pairing) starts commands the lean way.
    #[allow(dead_code)]
    fn user_env(&self) -> Vec<(String, String)> {
        [
            ("HOME", self.home.display().to_string()),
            ("PATH", PATH.to_owned()),
            ("USER", self.user.clone()),
            ("LOGNAME", self.user.clone()),
            ("SHELL", "/bin/sh".to_owned()),
            ("LANG", "C.UTF-8".to_owned()),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .to_vec()
    }

    /// `cmd` (one of [`Host::cmd`]'s) started the lean way, for the benchmark's timings: by a
    /// thread of this process that has entered the namespaces of this host's anchor process
    /// (its network namespace, and a UTS namespace with its host name), as its user and group
    /// (no supplementary groups), with the same environment. Nothing runs before the program:
    /// no `ip netns exec`, `unshare`, `sh`, `setpriv`, `env` (the end-to-end tests' way), not
    /// even an `nsenter`, as when a user types the command in a shell.
    #[allow(dead_code)]
    pub fn lean(&self, cmd: Cmd) -> Cmd {
        let within = Within {
            spawner: self.spawner(),
            uid: self.uid,
            gid: self.gid,
        };
        cmd.started_within(within, self.user_env())
    }

    /// The thread that starts this host's lean commands, started on first use.
    #[allow(dead_code)]
    fn spawner(&self) -> Arc<Spawner> {
        let mut slot = self.spawner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(spawner) = slot.as_ref() {
            return Arc::clone(spawner);
        }
        let pid = self.anchor_pid();
        let spawner = Spawner::new(move || {
            use nix::sched::{setns, CloneFlags};
            for (ns, flag) in [
                ("net", CloneFlags::CLONE_NEWNET),
                ("uts", CloneFlags::CLONE_NEWUTS),
            ] {
                let file = fs::File::open(format!("/proc/{pid}/ns/{ns}"))?;
                setns(&file, flag).map_err(std::io::Error::from)?;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("cannot enter the namespaces of {}: {e}", self.hostname));
        Arc::clone(slot.insert(Arc::new(spawner)))
    }

    /// The pid of this host's anchor: `sleep` in its network namespace and in a UTS namespace
    /// of its own with the host's name, started on first use. Returns once the anchor has
    /// exec'd `sleep` (the namespaces and the name are then in place).
    #[allow(dead_code)]
    fn anchor_pid(&self) -> u32 {
        let mut anchor = self.anchor.lock().unwrap_or_else(|p| p.into_inner());
        let running = anchor.get_or_insert_with(|| self.root_cmd("sleep").arg("86400").spawn());
        let pid = running.pid();
        let deadline = Instant::now() + SSHD_READY;
        while fs::read_to_string(format!("/proc/{pid}/comm")).map_or(true, |c| c.trim() != "sleep")
        {
            assert!(
                Instant::now() < deadline && !running.has_exited(),
                "the anchor of {} did not start",
                self.hostname
            );
            thread::sleep(Duration::from_millis(1));
        }
        pid
    }

    /// Like [`Host::cmd`], with `hosts` bind-mounted over /etc/hosts in a mount namespace of
    /// the command's own: a name resolves there as nss-mdns would resolve it, and nowhere else.
    pub fn cmd_with_hosts(&self, program: impl AsRef<OsStr>, hosts: &Path) -> Cmd {
        let mut prefix: Vec<std::ffi::OsString> = [
            "ip",
            "netns",
            "exec",
            &self.netns,
            "unshare",
            "--uts",
            "--mount",
            "sh",
            "-c",
            r#"hostname "$0" && mount --bind "$1" /etc/hosts && shift && exec "$@""#,
            self.hostname.as_str(),
        ]
        .into_iter()
        .map(Into::into)
        .collect();
        prefix.push(hosts.as_os_str().to_owned());
        let user = self.cmd(program);
        // The user part of `cmd`'s prefix (setpriv … env …) follows the host part.
        Cmd::with_prefix(
            prefix.into_iter().chain(user.prefix_after_host()).collect(),
            user.program(),
            format!("{} {} (own /etc/hosts)", self.hostname, self.user),
        )
        .cwd(&self.repo)
    }

    /// `program` as root inside this host's namespace, with its host name.
    pub fn root_cmd(&self, program: impl AsRef<OsStr>) -> Cmd {
        let mut prefix = self.uts_prefix();
        prefix.extend(["env", "-i", &format!("PATH={PATH}")].map(Into::into));
        Cmd::with_prefix(prefix, program, format!("{} root", self.hostname))
    }

    fn uts_prefix(&self) -> Vec<std::ffi::OsString> {
        [
            "ip",
            "netns",
            "exec",
            &self.netns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            SET_HOSTNAME,
        ]
        .into_iter()
        .chain([self.hostname.as_str()])
        .map(Into::into)
        .collect()
    }

    /// `git ARGS` as this host's user in its repository; panics unless it succeeds.
    pub fn git(&self, args: &[&str]) -> String {
        self.cmd("git").args(args).run_ok().stdout_str()
    }

    /// The commit id of `rev` in this host's repository.
    pub fn rev_parse(&self, rev: &str) -> String {
        self.git(&["rev-parse", "--verify", "--end-of-options", rev])
            .trim()
            .to_owned()
    }

    /// Makes a commit on the checked-out branch touching `file`; returns its id.
    pub fn commit(&self, file: &str, content: &str) -> String {
        self.write_user_file(&self.repo.join(file), content.as_bytes(), 0o644);
        self.git(&["add", "--", file]);
        self.git(&[
            "commit",
            "-q",
            "-m",
            &format!("{} writes {file}", self.hostname),
        ]);
        self.rev_parse("HEAD")
    }

    /// Creates a repository with one commit at `path` (owned by this host's user).
    pub fn init_repo(&self, path: &Path) {
        let script = r#"git init -q -b main "$1" && cd "$1" && echo "$2" > README && git add README && git commit -q -m initial"#;
        self.cmd("sh")
            .args([OsStr::new("-c"), OsStr::new(script), OsStr::new("sh")])
            .arg(path)
            .arg(format!("repository of {}", self.hostname))
            .cwd(&self.home)
            .run_ok();
    }

    /// Writes a file as root and gives it to this host's user with `mode`; missing parent
    /// directories are created 0700 and given to the user too.
    pub fn write_user_file(&self, path: &Path, bytes: &[u8], mode: u32) {
        if let Some(parent) = path.parent() {
            self.make_user_dir(parent);
        }
        fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.give(path, mode);
    }

    fn make_user_dir(&self, dir: &Path) {
        if dir.exists() {
            return;
        }
        if let Some(parent) = dir.parent() {
            self.make_user_dir(parent);
        }
        fs::create_dir(dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        self.give(dir, 0o700);
    }

    fn give(&self, path: &Path, mode: u32) {
        chown(path, Some(self.uid), Some(self.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
    }

    /// The address of this host as `from` reaches it: IPv4 when this host has one, else its
    /// link-local IPv6 address scoped to `from`'s interface.
    pub fn addr_from(&self, from: &Host) -> String {
        match self.ipv4 {
            Some(v4) => v4.to_string(),
            None => self.ipv6_from(from),
        }
    }

    /// `fe80::N%<from's interface>`.
    pub fn ipv6_from(&self, from: &Host) -> String {
        format!("{}%{}", self.ipv6_ll, from.iface)
    }

    /// What sshd logged so far (`-e`: its log goes to stderr, which we capture).
    pub fn sshd_log(&self) -> String {
        match lock_slot(&self.sshd).as_ref() {
            Some(sshd) => sshd.output_so_far().1,
            None => "(sshd not running)".to_owned(),
        }
    }

    pub fn sshd_pid(&self) -> Option<u32> {
        lock_slot(&self.sshd).as_ref().map(Running::pid)
    }

    /// Generates the host key, writes sshd_config, starts sshd in the namespace and waits until
    /// it answers with that host key from inside the namespace.
    pub(crate) fn start_sshd(&self) {
        let target = match self.ipv4 {
            Some(v4) => v4.to_string(),
            None => format!("{}%{}", self.ipv6_ll, self.iface),
        };
        let sshd = self.spawn_sshd("ssh_host_ed25519_key", 22);
        *lock_slot(&self.sshd) = Some(sshd);
        self.wait_sshd_ready(&self.host_key_pub, &target, 22);
    }

    /// Stops this host's sshd and starts it again with a new host key (as if reinstalled):
    /// what the peer pinned no longer matches. Returns the new public key file. (Checked ready
    /// on 127.0.0.1: the host may have moved since the lab was built.)
    pub fn replace_sshd_host_key(&self) -> PathBuf {
        drop(lock_slot(&self.sshd).take());
        let sshd = self.spawn_sshd("ssh_host_ed25519_key_new", 22);
        *lock_slot(&self.sshd) = Some(sshd);
        let key_pub = self.sshd_dir.join("ssh_host_ed25519_key_new.pub");
        self.wait_sshd_ready(&key_pub, "127.0.0.1", 22);
        key_pub
    }

    /// A second sshd of this host on `port`, with a host key of its own made now (named
    /// `key_name` in the sshd directory), serving the same user; killed by its pid when the
    /// returned [`ExtraSshd`] is dropped (and with the namespace at the latest).
    pub fn start_extra_sshd(&self, key_name: &str, port: u16) -> ExtraSshd {
        let running = self.spawn_sshd(key_name, port);
        let host_key_pub = self.sshd_dir.join(format!("{key_name}.pub"));
        let extra = ExtraSshd {
            _running: running,
            host_key_pub,
        };
        let target = self.addr_from(self);
        self.wait_sshd_ready(&extra.host_key_pub, &target, port);
        extra
    }

    /// Generates the host key `key_name` and starts an sshd with it on `port`.
    fn spawn_sshd(&self, key_name: &str, port: u16) -> Running {
        let key = self.sshd_dir.join(key_name);
        Cmd::root("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", ""])
            .arg("-C")
            .arg(format!("{} host key", self.hostname))
            .arg("-f")
            .arg(&key)
            .run_ok();
        set_mode(&self.sshd_dir.join(format!("{key_name}.pub")), 0o644);
        let config = self.sshd_dir.join(format!("sshd_config-{port}"));
        write_file(&config, sshd_config(&key, &self.user, port).as_bytes());
        fs::create_dir_all("/run/sshd").unwrap_or_else(|e| panic!("mkdir /run/sshd: {e}"));
        set_mode(Path::new("/run/sshd"), 0o755);
        self.root_cmd("/usr/sbin/sshd")
            .args([OsStr::new("-D"), OsStr::new("-e"), OsStr::new("-f")])
            .arg(&config)
            .spawn()
    }

    /// Waits until the sshd on `port` answers at `target` with the key in `key_pub`.
    fn wait_sshd_ready(&self, key_pub: &Path, target: &str, port: u16) {
        let want = read_file(key_pub).unwrap_or_default();
        let want = String::from_utf8_lossy(&want);
        let want_b64 = want
            .split_whitespace()
            .nth(1)
            .unwrap_or("(no key)")
            .to_owned();
        let deadline = Instant::now() + SSHD_READY;
        loop {
            if let Some(sshd) = lock_slot(&self.sshd).as_mut().filter(|_| port == 22) {
                if sshd.has_exited() {
                    panic!(
                        "sshd of {} exited at start:\n{}",
                        self.hostname,
                        sshd.output_so_far().1
                    );
                }
            }
            let scan = self
                .root_cmd("ssh-keyscan")
                .args(["-T", "2", "-p", &port.to_string(), "-t", "ed25519", target])
                .run();
            if scan.stdout_str().contains(&want_b64) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "sshd of {} did not answer on {target}:{port} within {SSHD_READY:?}\n{scan}\n--- sshd log ---\n{}",
                    self.hostname,
                    self.sshd_log()
                );
            }
            thread::sleep(Duration::from_millis(50));
        }
    }
}

pub(crate) fn lock_slot(slot: &SshdSlot) -> MutexGuard<'_, Option<Running>> {
    slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A second sshd of a host (see [`Host::start_extra_sshd`]).
pub struct ExtraSshd {
    /// Held to kill it, by its pid, on drop.
    _running: Running,
    /// Its host key, made when it started.
    pub host_key_pub: PathBuf,
}

fn sshd_config(host_key: &Path, user: &str, port: u16) -> String {
    // Inside the namespace the wildcard addresses cover only the namespace's own interfaces.
    format!(
        "ListenAddress 0.0.0.0\n\
         ListenAddress ::\n\
         Port {port}\n\
         HostKey {}\n\
         PidFile none\n\
         UsePAM no\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         PubkeyAuthentication yes\n\
         PermitRootLogin no\n\
         AuthorizedKeysFile .ssh/authorized_keys\n\
         StrictModes yes\n\
         AllowUsers {user}\n\
         AcceptEnv GIT_PROTOCOL\n\
         UseDNS no\n\
         PrintMotd no\n\
         X11Forwarding no\n\
         LogLevel VERBOSE\n",
        host_key.display()
    )
}

/// Adds a unix user without a home directory of its own making; the password field is `*` (no
/// password, but not locked: with `UsePAM no` sshd refuses locked `!` accounts even for keys).
pub fn add_user(name: &str, home: &Path) -> (u32, u32) {
    user_db_retry("useradd", || {
        Cmd::root("useradd")
            .args(["-M", "-s", "/bin/sh", "-p", "*", "-d"])
            .arg(home)
            .arg(name)
            .run()
    })
    .unwrap_or_else(|e| panic!("{e}"));
    match nix::unistd::User::from_name(name) {
        Ok(Some(u)) => (u.uid.as_raw(), u.gid.as_raw()),
        other => panic!("user {name} was added but cannot be looked up: {other:?}"),
    }
}

pub fn del_user(name: &str) -> Result<(), String> {
    user_db_retry("userdel", || Cmd::root("userdel").arg(name).run())
}

pub fn user_exists(name: &str) -> bool {
    matches!(nix::unistd::User::from_name(name), Ok(Some(_)))
}

fn user_db_retry(
    what: &str,
    mut attempt: impl FnMut() -> super::process::Output,
) -> Result<(), String> {
    let _guard = USER_DB
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut last = String::new();
    for _ in 0..50 {
        let out = attempt();
        if out.success() {
            return Ok(());
        }
        last = out.to_string();
        if !out.stderr_str().contains("lock") {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    Err(format!("{what} failed\n{last}"))
}

/// Contents of a file, `None` when it does not exist.
pub fn read_file(path: &Path) -> Option<Vec<u8>> {
    match fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => panic!("read {}: {e}", path.display()),
    }
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

pub fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {:o} {}: {e}", mode, path.display()));
}
