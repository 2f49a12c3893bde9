//! magic-wormhole beside git pair, on the same bridged namespace LAN: the tool people use for
//! the same job, and the one `git annex p2p --pair` drives.
//!
//! `scripts/bench` installs magic-wormhole, its mailbox server and its transit relay from the
//! Python package index into a virtualenv (`--wormhole-venv DIR`). The mailbox and the relay run
//! on a third namespace host on the bridge (a [`Station`]), so that nothing leaves the lab:
//! every client is given `--relay-url` and `--transit-helper` on that host. The clients run as
//! the lab hosts' users, started the way git-pair is (the same namespace wrappers).
//!
//! Two ways of using it are timed, from the start of the side that types the code (the other
//! side has shown its code) until every process has exited, as for git pair:
//! - one key one way: A runs `wormhole send KEY.pub`, B runs `wormhole receive CODE`;
//! - both keys both ways: each side sends its key with its own code and receives the other's,
//!   both at once (what `git annex p2p --pair` does: two codes, sent and received concurrently).
//!
//! What wormhole leaves undone here, and git pair does, is stated in the report.

use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use crate::namespaces::Timed;
use crate::support::host::Host;
use crate::support::lab::{Lab, Station};
use crate::support::net::in_netns;
use crate::support::process::{Cmd, Running};

const MAILBOX_PORT: u16 = 4000;
const TRANSIT_PORT: u16 = 4001;
/// How long one wormhole run may take before it counts as failed.
const LIMIT: Duration = Duration::from_secs(60);
const CODE_DEADLINE: Duration = Duration::from_secs(30);

/// An ed25519 public key line of the usual size: what is sent.
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh5oYbP3oTA4kG0lqCpRIrTm+uqJdVG2fJp0ct8Vj0N git-pair bench key\n";

/// The mailbox and transit relay on the station, and how clients reach them.
pub struct Wormhole {
    venv: PathBuf,
    relay_url: String,
    transit: String,
    _mailbox: Running,
    _relay: Running,
    runs: u32,
}

impl Wormhole {
    /// Starts the mailbox server and the transit relay on `station` and waits until the
    /// mailbox answers from host A.
    pub fn start(lab: &Lab, station: &Station, venv: &Path) -> Wormhole {
        let twist = venv.join("bin").join("twist");
        let db = |name: &str| lab.dir.join(name).to_string_lossy().into_owned();
        let mailbox = in_netns(&station.netns, &twist.to_string_lossy())
            .args([
                "wormhole-mailbox".to_owned(),
                format!("--port=tcp:{MAILBOX_PORT}"),
                format!("--channel-db={}", db("wormhole-channels.sqlite")),
            ])
            .cwd(&lab.dir)
            .spawn();
        let relay = in_netns(&station.netns, &twist.to_string_lossy())
            .args([
                "transitrelay".to_owned(),
                format!("--port=tcp:{TRANSIT_PORT}"),
            ])
            .cwd(&lab.dir)
            .spawn();
        let w = Wormhole {
            venv: venv.to_owned(),
            relay_url: format!("ws://{}:{MAILBOX_PORT}/v1", station.ipv4),
            transit: format!("tcp:{}:{TRANSIT_PORT}", station.ipv4),
            _mailbox: mailbox,
            _relay: relay,
            runs: 0,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        for port in [MAILBOX_PORT, TRANSIT_PORT] {
            loop {
                let probe = lab
                    .a
                    .cmd("bash")
                    .args(["-c", &format!("exec 3<>/dev/tcp/{}/{port}", station.ipv4)])
                    .run();
                if probe.success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the wormhole server on port {port} did not start:\n{probe}"
                );
                thread::sleep(Duration::from_millis(100));
            }
        }
        for h in [&lab.a, &lab.b] {
            h.write_user_file(&key_file(h), KEY.as_bytes(), 0o644);
        }
        w
    }

    /// `wormhole ARGS` as `h`'s user, stderr into stdout (the code is printed on stderr),
    /// started the lean way, as git pair is.
    fn cmd(&self, h: &Host, args: &[&str]) -> Cmd {
        let wormhole = self.venv.join("bin").join("wormhole");
        let cmd = h
            .cmd("sh")
            .args(["-c", r#"exec "$0" "$@" 2>&1"#])
            .arg(wormhole)
            .args([
                "--relay-url",
                &self.relay_url,
                "--transit-helper",
                &self.transit,
            ])
            .args(args)
            .cwd(&h.home)
            .timeout(LIMIT);
        h.lean(cmd)
    }

    fn send(&self, h: &Host) -> Running {
        let key = key_file(h);
        self.cmd(h, &["send", "--hide-progress", "--no-qr"])
            .arg(key)
            .spawn()
    }

    fn receive(&self, h: &Host, code: &str, into: &Path) -> Running {
        let _ = std::fs::remove_file(into);
        self.cmd(h, &["receive", "--accept-file", "--hide-progress", "-o"])
            .arg(into)
            .arg(code)
            .spawn()
    }

    fn received_file(&mut self, h: &Host) -> PathBuf {
        self.runs += 1;
        h.home.join(format!("wormhole-received-{}.pub", self.runs))
    }

    /// One key one way: A sends, B receives.
    pub fn one_way(&mut self, lab: &Lab) -> Timed {
        let mut send = self.send(&lab.a);
        let code = match read_code(&mut send) {
            Ok(code) => code,
            Err(e) => return failed(e),
        };
        let into = self.received_file(&lab.b);
        let started = Instant::now();
        let recv = self.receive(&lab.b, &code, &into);
        let both = [send, recv].map(|r| thread::spawn(move || r.wait_exact(LIMIT)));
        finish(started, both, &[into])
    }

    /// Both keys both ways: each side sends with its own code and receives with the other's.
    pub fn both_ways(&mut self, lab: &Lab) -> Timed {
        let mut send_a = self.send(&lab.a);
        let mut send_b = self.send(&lab.b);
        let codes = (read_code(&mut send_a), read_code(&mut send_b));
        let (code_a, code_b) = match codes {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return failed(e),
        };
        let into_b = self.received_file(&lab.b);
        let into_a = self.received_file(&lab.a);
        let started = Instant::now();
        let recv_b = self.receive(&lab.b, &code_a, &into_b);
        let recv_a = self.receive(&lab.a, &code_b, &into_a);
        let all =
            [send_a, send_b, recv_b, recv_a].map(|r| thread::spawn(move || r.wait_exact(LIMIT)));
        finish(started, all, &[into_b, into_a])
    }
}

fn key_file(h: &Host) -> PathBuf {
    h.home.join("wormhole-key.pub")
}

fn failed(detail: String) -> Timed {
    Timed {
        took: Duration::ZERO,
        ok: false,
        detail,
    }
}

/// Waits for every process; the run worked when all exited 0 and every received file holds
/// the key.
fn finish<const N: usize>(
    started: Instant,
    waiters: [thread::JoinHandle<(crate::support::process::Output, Instant)>; N],
    received: &[PathBuf],
) -> Timed {
    let results: Vec<_> = waiters
        .into_iter()
        .map(|w| w.join().expect("waiter thread"))
        .collect();
    let took = results
        .iter()
        .map(|(_, t)| *t)
        .max()
        .expect("processes")
        .saturating_duration_since(started);
    let all_exited_0 = results.iter().all(|(o, _)| o.success());
    let keys_arrived = received
        .iter()
        .all(|f| std::fs::read_to_string(f).is_ok_and(|s| s == KEY));
    let ok = all_exited_0 && keys_arrived;
    let detail = if ok {
        String::new()
    } else {
        results
            .iter()
            .map(|(o, _)| o.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    };
    Timed { took, ok, detail }
}

/// The code a `wormhole send` prints: "Wormhole code is: 7-guitar-orbit".
fn read_code(send: &mut Running) -> Result<String, String> {
    let deadline = Instant::now() + CODE_DEADLINE;
    while let Some(line) = send.next_line(deadline) {
        if let Some(code) = line.trim().strip_prefix("Wormhole code is:") {
            return Ok(code.trim().to_owned());
        }
    }
    Err(format!(
        "wormhole send printed no code within {CODE_DEADLINE:?}\n{:?}",
        send.output_so_far()
    ))
}
