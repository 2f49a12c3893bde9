//! End-to-end tests of finding a paired peer again: the pair secret each pairing stores, and
//! (with them) `git pair watch` and `git pair refresh` between the two namespace hosts of a lab,
//! with real sshd and a real ssh host-key check.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use git_pair::protocol::schedule::Role;
use git_pair::ssh_files::SecretRecord;

use super::support::gitpair::Paired;
use super::support::host::{self, Host};
use super::support::lab::{Lab, Network};
use super::{expect_ok, pair_default};

/// The `secret_*` files in a host's `~/.ssh/git-pair`.
fn secret_files(host: &Host) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(host.home.join(".ssh/git-pair"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("secret_"))
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn read_secret(path: &std::path::Path) -> SecretRecord {
    let bytes = host::read_file(path).unwrap_or_else(|| panic!("{} is gone", path.display()));
    SecretRecord::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A pairing stores the same pair secret on both sides, each in a file of its own (0600, owned
/// by the user, named after that side's alias), with opposite roles; it never reaches the
/// repository config or the output; `git pair remove` deletes it.
pub fn pairing_stores_the_pair_secret_and_remove_deletes_it() {
    let lab = Lab::new(Network::DualStack);
    let p: Paired = pair_default(&lab);
    let (a_files, b_files) = (secret_files(&lab.a), secret_files(&lab.b));
    assert_eq!(
        (a_files.len(), b_files.len()),
        (1, 1),
        "{a_files:?} {b_files:?}"
    );
    for (h, file, remote) in [
        (&lab.a, &a_files[0], &p.remote_on_a),
        (&lab.b, &b_files[0], &p.remote_on_b),
    ] {
        let meta = std::fs::metadata(file).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            0o600,
            "{}",
            file.display()
        );
        assert_eq!(
            (meta.uid(), meta.gid()),
            (h.uid, h.gid),
            "{}",
            file.display()
        );
        let alias = h.remote(remote).alias;
        assert_eq!(
            file.file_name().unwrap().to_string_lossy(),
            format!("secret_{alias}")
        );
    }
    let (a, b) = (read_secret(&a_files[0]), read_secret(&b_files[0]));
    assert_eq!(
        a.secret.expose(),
        b.secret.expose(),
        "both sides derive one secret"
    );
    assert_ne!(a.role, b.role);
    assert!(matches!(a.role, Role::Low | Role::High));
    assert_eq!((a.ssh_port, b.ssh_port), (22, 22));
    // The secret as stored (base64) is nowhere in either repository's config.
    let stored = String::from_utf8(host::read_file(&a_files[0]).unwrap()).unwrap();
    let encoded = stored
        .lines()
        .find_map(|l| l.strip_prefix("secret "))
        .unwrap()
        .to_owned();
    for h in [&lab.a, &lab.b] {
        let config = host::read_file(&h.repo.join(".git/config")).unwrap();
        assert!(!String::from_utf8_lossy(&config).contains(&encoded));
    }

    let out = expect_ok(
        &lab,
        lab.a
            .cmd(&lab.a.git_pair)
            .args(["remove", &p.remote_on_a])
            .run(),
    );
    assert!(secret_files(&lab.a).is_empty(), "{out}");
    assert!(!out.stderr_str().contains(&encoded));
    assert_eq!(secret_files(&lab.b).len(), 1, "B's side is B's to remove");
}

// ---------------------------------------------------------------------------------------------
// watch and refresh.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::support::gitpair::{events, exit};
use super::support::locate::helper;
use super::support::net;
use super::support::process::{Output, Running};

const GIT_SSH_COMMAND: &str = "ssh -o BatchMode=yes -o ConnectTimeout=3";

/// `git push REMOTE HEAD:refs/heads/BRANCH` as `host`'s user, giving up on a silent address.
fn push(host: &Host, remote: &str, branch: &str) -> Output {
    host.cmd("git")
        .env("GIT_SSH_COMMAND", GIT_SSH_COMMAND)
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["push", "-q", remote, &format!("HEAD:refs/heads/{branch}")])
        .run()
}

/// Starts `git pair watch --json` on `host`'s veth and waits for its `watching` event.
pub fn start_watch(host: &Host) -> (Running, Value) {
    let mut watch = host
        .cmd(&host.git_pair)
        .args(["watch", "--json", "--interface", &host.iface])
        .timeout(Duration::from_secs(600))
        .spawn();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let Some(line) = watch.next_line(deadline) else {
            let out = watch.wait(Duration::from_secs(2));
            panic!("git pair watch did not start\n{out}");
        };
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["event"] == "watching" {
                return (watch, v);
            }
        }
    }
}

/// Stops a watch with SIGTERM, as systemd does, and returns what it printed.
pub fn stop_watch(watch: Running) -> Output {
    let pid = nix::unistd::Pid::from_raw(watch.pid() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
    watch.wait(Duration::from_secs(10))
}

/// The resident set size of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS for {pid}:\n{status}"))
}

/// User and system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

/// Moves `host` to the addresses ending in `octet` (IPv4 and link-local IPv6), as a new DHCP
/// lease would; returns the new IPv4 address. Its sshd listens on every address and stays.
pub fn move_host(host: &Host, from: u8, to: u8) -> Ipv4Addr {
    let v4 = host.ipv4.expect("an IPv4 lab");
    let [a, b, c, _] = v4.octets();
    let (old, new) = (Ipv4Addr::new(a, b, c, from), Ipv4Addr::new(a, b, c, to));
    for args in [
        vec![
            "addr".to_owned(),
            "del".into(),
            format!("{old}/24"),
            "dev".into(),
            host.iface.clone(),
        ],
        vec![
            "addr".into(),
            "add".into(),
            format!("{new}/24"),
            "dev".into(),
            host.iface.clone(),
        ],
        vec![
            "addr".into(),
            "del".into(),
            format!("fe80::{from:x}/64"),
            "dev".into(),
            host.iface.clone(),
        ],
        vec![
            "addr".into(),
            "add".into(),
            format!("fe80::{to:x}/64"),
            "dev".into(),
            host.iface.clone(),
            "nodad".into(),
        ],
    ] {
        net::in_netns(&host.netns, "ip").args(&args).run_ok();
    }
    new
}

/// `git pair refresh --json --interface IF ARGS…` as `host`'s user in its repository.
fn refresh(host: &Host, args: &[&str]) -> Output {
    host.cmd(&host.git_pair)
        .args(["refresh", "--json", "--interface", &host.iface])
        .args(args)
        .timeout(Duration::from_secs(90))
        .run()
}

fn event<'a>(events: &'a [Value], name: &str) -> Option<&'a Value> {
    events.iter().find(|e| e["event"] == name)
}

fn pair_config(host: &Host) -> Vec<u8> {
    host::read_file(&host.home.join(".ssh/git-pair/config")).unwrap_or_default()
}

/// The HostName of `alias` in `host`'s git-pair config.
fn host_name(host: &Host, alias: &str) -> String {
    let config = String::from_utf8(pair_config(host)).unwrap();
    let mut in_block = false;
    for line in config.lines() {
        let t = line.trim();
        if let Some(a) = t.strip_prefix("Host ") {
            in_block = a == alias;
        } else if in_block {
            if let Some(h) = t.strip_prefix("HostName ") {
                return h.replace("%%", "%");
            }
        }
    }
    panic!("no HostName for {alias} in\n{config}");
}

/// The number of locate datagrams refresh said it sent, from its stderr.
fn datagrams(out: &Output) -> Option<u64> {
    out.stderr_str().lines().find_map(|l| {
        l.strip_prefix("sent ")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

/// B's address changes and A's push fails; with `git pair watch` on B, A's `git pair refresh`
/// finds B at its new address (by its pair secret), checks B's host key with ssh, changes only
/// HostName (and the record) in the alias, and the push works again. `git pair list` shows the
/// address in use and the refresh.
pub fn refresh_finds_a_peer_whose_address_changed_through_its_watch() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let alias = lab.a.remote(&p.remote_on_a).alias;
    let (watch, watching) = start_watch(&lab.b);
    let b_alias = lab.b.remote(&p.remote_on_b).alias;
    assert_eq!(
        watching["pairings"],
        serde_json::json!([b_alias]),
        "{watching}"
    );
    expect_ok(&lab, push(&lab.a, &p.remote_on_a, "before-move"));

    let new_ip = move_host(&lab.b, 2, 9);
    let failed = push(&lab.a, &p.remote_on_a, "while-moved");
    assert!(
        !failed.success(),
        "the push must fail once B moved\n{failed}"
    );

    let before = String::from_utf8(pair_config(&lab.a)).unwrap();
    let started = Instant::now();
    let out = refresh(&lab.a, &[]);
    let took = started.elapsed();
    let ev = events(&out);
    assert!(out.success(), "refresh failed\n{out}\n{}", lab.sshd_logs());
    let located = event(&ev, "located").unwrap_or_else(|| panic!("no located event\n{out}"));
    assert_eq!(located["alias"], alias.as_str());
    let refreshed = event(&ev, "refreshed").unwrap_or_else(|| panic!("no refreshed event\n{out}"));
    assert_eq!(refreshed["method"], "locate", "{out}");
    assert_eq!(refreshed["host_name"], new_ip.to_string(), "{out}");
    assert_eq!(refreshed["changed"], true);
    assert_eq!(host_name(&lab.a, &alias), new_ip.to_string());
    // Only HostName changed, and the refresh was recorded.
    let after = String::from_utf8(pair_config(&lab.a)).unwrap();
    let old_ip = lab.b.ipv4.unwrap().to_string();
    let diff: Vec<(&str, &str)> = before
        .lines()
        .zip(
            after
                .lines()
                .filter(|l| !l.contains("# git-pair-refreshed")),
        )
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        diff,
        vec![(
            format!("    HostName {old_ip}").as_str(),
            format!("    HostName {new_ip}").as_str()
        )],
        "{before}\n---\n{after}"
    );
    assert_eq!(after.lines().count(), before.lines().count() + 1);
    eprintln!(
        "  refresh found B at {new_ip} in {took:?} (the first try of the old address included), \
         {} locate datagrams",
        datagrams(&out).map_or("?".into(), |n| n.to_string())
    );

    let pushed = lab.a.commit("after-move.txt", "pushed after the refresh\n");
    expect_ok(&lab, push(&lab.a, &p.remote_on_a, "after-move"));
    assert_eq!(lab.b.rev_parse("refs/heads/after-move"), pushed);

    let listed = lab.a.cmd(&lab.a.git_pair).args(["list", "--json"]).run();
    let list: Value = serde_json::from_str(listed.stdout_str().trim()).unwrap();
    let entry = &list[0];
    assert_eq!(entry["current_address"], format!("{new_ip}:22"), "{entry}");
    assert_eq!(entry["refreshed_by"], "locate", "{entry}");
    assert!(entry["refreshed_at"].is_string(), "{entry}");
    assert_eq!(entry["reachable"], true, "{entry}");

    let stopped = stop_watch(watch);
    let ev = events(&stopped);
    let stats = event(&ev, "stopped").unwrap_or_else(|| panic!("no stopped event\n{stopped}"));
    assert!(stats["answered"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stopped.success(), "watch exits 0 on SIGTERM\n{stopped}");
}

/// The secret file of `host`'s only pairing.
fn only_secret(host: &Host) -> PathBuf {
    let files = secret_files(host);
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// An impostor on the LAN answers every locate query of A, without the pair secret and with an
/// authentic answer of B's watch to an older query (recorded before B moved): A's refresh
/// accepts none of it, changes nothing and exits 3. Once B's watch runs again, the same
/// refresh, with the impostor still answering, finds B.
pub fn an_impostor_and_a_replayed_answer_are_ignored() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let alias = lab.a.remote(&p.remote_on_a).alias;
    let old_ip = lab.b.ipv4.unwrap();
    // An authentic answer of B's watch, to a query A's side would send (made here from A's
    // secret, which root can read), recorded for the replay.
    let (watch, _) = start_watch(&lab.b);
    let recorded = helper(&lab.a, "locate-query")
        .arg(only_secret(&lab.a))
        .args([&old_ip.to_string(), "28621"])
        .run_ok();
    let replay = recorded
        .stdout_str()
        .lines()
        .find_map(|l| l.strip_prefix("answer ").map(str::to_owned))
        .unwrap_or_else(|| panic!("B's watch did not answer the recorded query\n{recorded}"));
    stop_watch(watch);

    let new_ip = move_host(&lab.b, 2, 9);
    let [a, b, c, _] = old_ip.octets();
    let impostor_ip = Ipv4Addr::new(a, b, c, 66);
    net::in_netns(&lab.b.netns, "ip")
        .args([
            "addr",
            "add",
            &format!("{impostor_ip}/24"),
            "dev",
            &lab.b.iface,
        ])
        .run_ok();
    let mut impostor = helper(&lab.b, "locate-impostor")
        .args([&lab.b.iface, &impostor_ip.to_string(), "28621", &replay])
        .timeout(Duration::from_secs(300))
        .spawn();
    assert_eq!(
        impostor
            .next_line(Instant::now() + Duration::from_secs(10))
            .as_deref(),
        Some("ready")
    );

    let before = pair_config(&lab.a);
    let out = refresh(&lab.a, &["--timeout", "4"]);
    let ev = events(&out);
    assert_eq!(out.code(), Some(exit::NO_PEER), "{out}");
    assert!(event(&ev, "located").is_none(), "{out}");
    let not = event(&ev, "not_refreshed").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(not["reason"], "no_peer");
    assert_eq!(ev.last().unwrap()["event"], "failed", "{out}");
    assert_eq!(pair_config(&lab.a), before, "the alias must be unchanged");
    assert_eq!(host_name(&lab.a, &alias), old_ip.to_string());
    let heard = impostor
        .next_line(Instant::now() + Duration::from_secs(5))
        .unwrap_or_default();
    assert!(
        heard.starts_with("answered "),
        "the impostor never heard a query: {heard:?}"
    );

    // B's watch back: found, the impostor notwithstanding.
    let (watch, _) = start_watch(&lab.b);
    let out = refresh(&lab.a, &["--timeout", "10"]);
    assert!(out.success(), "{out}");
    assert_eq!(host_name(&lab.a, &alias), new_ip.to_string(), "{out}");
    drop(impostor);
    stop_watch(watch);
}

/// A host key other than the pinned one is refused wherever it is met: at the alias's old
/// address, now held by another sshd (not used; B is found by locate instead), and at the
/// address B's own authenticated answer gives, once B's sshd has a new host key (refused, exit
/// 4, the alias byte for byte unchanged).
pub fn a_host_key_other_than_the_pinned_one_is_refused() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let alias = lab.a.remote(&p.remote_on_a).alias;
    let (watch, _) = start_watch(&lab.b);
    let old_ip = lab.b.ipv4.unwrap();
    let new_ip = move_host(&lab.b, 2, 9);

    // Another machine took B's old address: an sshd with its own host key, which A reaches
    // at that address (it lives on A's loopback, the only third machine this lab has).
    net::in_netns(&lab.a.netns, "ip")
        .args(["addr", "add", &format!("{old_ip}/32"), "dev", "lo"])
        .run_ok();
    let other_key = lab.dir.join("other_host_key");
    super::support::process::Cmd::root("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .run_ok();
    let config = lab.dir.join("other_sshd_config");
    host::write_file(
        &config,
        format!(
            "ListenAddress {old_ip}\nPort 22\nHostKey {}\nPidFile none\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nLogLevel VERBOSE\n",
            other_key.display()
        )
        .as_bytes(),
    );
    let other_sshd = net::in_netns(&lab.a.netns, "/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&config)
        .timeout(Duration::from_secs(300))
        .spawn();
    wait_for_sshd(&lab.a, &old_ip.to_string());

    let out = refresh(&lab.a, &[]);
    let ev = events(&out);
    assert!(out.success(), "{out}\n{}", lab.sshd_logs());
    let differs = event(&ev, "host_key_differs").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(differs["address"], old_ip.to_string());
    let refreshed = event(&ev, "refreshed").unwrap();
    assert_eq!(refreshed["method"], "locate");
    assert_eq!(host_name(&lab.a, &alias), new_ip.to_string());
    drop(other_sshd);

    // B's sshd gets a new host key (reinstalled): B's watch still proves the pairing, but the
    // sshd at the address it gives cannot prove it holds the pinned key.
    lab.b.replace_sshd_host_key();
    let before = pair_config(&lab.a);
    let out = refresh(&lab.a, &[]);
    let ev = events(&out);
    assert_eq!(out.code(), Some(exit::VERIFICATION_FAILED), "{out}");
    assert!(event(&ev, "located").is_some(), "{out}");
    let not = event(&ev, "not_refreshed").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(not["reason"], "host_key_changed", "{out}");
    assert!(
        not["message"]
            .as_str()
            .unwrap()
            .contains("host key other than the one pinned"),
        "{out}"
    );
    let failed = ev.last().unwrap();
    assert_eq!(
        (failed["event"].as_str(), failed["reason"].as_str()),
        (Some("failed"), Some("host_key_changed"))
    );
    assert_eq!(
        pair_config(&lab.a),
        before,
        "the alias must be byte for byte unchanged"
    );
    let failed = push(&lab.a, &p.remote_on_a, "to-the-wrong-key");
    assert!(
        !failed.success(),
        "ssh must refuse the new key too\n{failed}"
    );
    stop_watch(watch);
}

/// Waits until an sshd answers at `addr`:22 from inside `host`'s namespace.
fn wait_for_sshd(host: &Host, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let scan = host
            .root_cmd("ssh-keyscan")
            .args(["-T", "2", "-p", "22", addr])
            .run();
        if scan.stdout_str().contains("ssh-") {
            return;
        }
        assert!(Instant::now() < deadline, "no sshd at {addr}\n{scan}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `git pair watch` under a flood of garbage, of datagrams shaped like queries and of queries
/// authenticated with wrong secrets: it answers none, its memory stays put, it stays within its
/// rate limit, and afterwards it still answers a real query.
pub fn watch_survives_a_flood_with_bounded_memory() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let alias = lab.a.remote(&p.remote_on_a).alias;
    let (watch, _) = start_watch(&lab.b);
    let pid = watch.pid();
    std::thread::sleep(Duration::from_millis(300));
    let (rss_before, cpu_before) = (rss_kib(pid), cpu_ticks(pid));
    let seconds = 5;
    let flood = helper(&lab.a, "locate-flood")
        .args([
            &lab.b.ipv4.unwrap().to_string(),
            "28621",
            &seconds.to_string(),
            &lab.a.ipv4.unwrap().to_string(),
        ])
        .run_ok();
    let sent: u64 = flood
        .stdout_str()
        .trim()
        .strip_prefix("sent ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{flood}"));
    let (rss_after, cpu_after) = (rss_kib(pid), cpu_ticks(pid));
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;

    // Still answering: B moves, A finds it.
    let new_ip = move_host(&lab.b, 2, 9);
    let out = refresh(&lab.a, &[]);
    assert!(out.success(), "{out}");
    assert_eq!(host_name(&lab.a, &alias), new_ip.to_string());

    let stopped = stop_watch(watch);
    let ev = events(&stopped);
    let stats = event(&ev, "stopped")
        .unwrap_or_else(|| panic!("{stopped}"))
        .clone();
    let n = |k: &str| {
        stats[k]
            .as_u64()
            .unwrap_or_else(|| panic!("{k} in {stats}"))
    };
    eprintln!(
        "  flood: {sent} datagrams in {seconds} s ({} per s) sent; watch received {}, dropped {} \
         ({} over the rate limit, {} not authenticated), answered {}; RSS {rss_before} KiB \
         before, {rss_after} KiB after; CPU {:.2} s during the flood",
        sent / seconds,
        n("received"),
        n("dropped"),
        n("rate_limited"),
        n("unauthenticated"),
        n("answered"),
        (cpu_after - cpu_before) as f64 / ticks
    );
    assert!(
        sent > 10_000,
        "the flood was too thin to mean anything: {sent}"
    );
    assert!(n("received") > 10_000, "{stats}");
    assert_eq!(n("answered"), 1, "only the real query is answered: {stats}");
    assert!(n("unauthenticated") > 0 && n("rate_limited") > 0, "{stats}");
    assert!(
        rss_after <= rss_before + 1024,
        "memory grew under the flood: {rss_before} KiB -> {rss_after} KiB"
    );
}

/// A pairing made before pair secrets were stored (its secret file removed here) is still
/// refreshed by name or address when that works; when not, refresh says it cannot locate it
/// and to pair again, exit 2, and changes nothing.
pub fn a_pairing_without_a_pair_secret_says_to_pair_again() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    std::fs::remove_file(only_secret(&lab.a)).unwrap();
    let out = refresh(&lab.a, &[]);
    assert!(out.success(), "still found at its address\n{out}");
    assert!(
        out.stderr_str().contains("pair again to make it locatable"),
        "{out}"
    );
    assert_eq!(
        event(&events(&out), "refreshed").unwrap()["method"],
        "address"
    );

    let (watch, _) = start_watch(&lab.b);
    move_host(&lab.b, 2, 9);
    let before = pair_config(&lab.a);
    let out = refresh(&lab.a, &[&p.remote_on_a]);
    let ev = events(&out);
    assert_eq!(out.code(), Some(2), "{out}");
    let not = event(&ev, "not_refreshed").unwrap_or_else(|| panic!("{out}"));
    assert_eq!(not["reason"], "no_pair_secret");
    assert!(
        not["message"].as_str().unwrap().contains("Pair again"),
        "{out}"
    );
    assert!(event(&ev, "located").is_none());
    assert!(
        datagrams(&out).is_none(),
        "no query without a secret\n{out}"
    );
    assert_eq!(pair_config(&lab.a), before);
    stop_watch(watch);
}

/// With B's name resolvable as beta.local (an /etc/hosts entry in the mount namespace of A's
/// commands stands in for nss-mdns), refresh prefers the name to the address it has, sends no
/// query, and the alias then follows B wherever the name points.
pub fn refresh_prefers_a_name_that_resolves() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let alias = lab.a.remote(&p.remote_on_a).alias;
    let hosts = lab.dir.join("hosts-of-a");
    let name = format!("{}.local", lab.b.hostname);
    let write_hosts = |ip: Ipv4Addr| {
        host::write_file(
            &hosts,
            format!("127.0.0.1 localhost\n{ip} {name}\n").as_bytes(),
        );
        host::set_mode(&hosts, 0o644);
    };
    write_hosts(lab.b.ipv4.unwrap());
    let refresh_named = |args: &[&str]| {
        lab.a
            .cmd_with_hosts(&lab.a.git_pair, &hosts)
            .args(["refresh", "--json", "--interface", &lab.a.iface])
            .args(args)
            .run()
    };
    let out = refresh_named(&[]);
    let ev = events(&out);
    assert!(out.success(), "{out}");
    let refreshed = event(&ev, "refreshed").unwrap();
    assert_eq!(
        (
            refreshed["method"].as_str(),
            refreshed["host_name"].as_str()
        ),
        (Some("mdns"), Some(name.as_str())),
        "{out}"
    );
    assert_eq!(refreshed["changed"], true);
    assert!(
        datagrams(&out).is_none(),
        "a name that works needs no query\n{out}"
    );
    assert_eq!(host_name(&lab.a, &alias), name);

    // B moves and the name follows it: the push works without another refresh, and a refresh
    // changes nothing.
    let new_ip = move_host(&lab.b, 2, 9);
    write_hosts(new_ip);
    let pushed = lab.a.commit("by-name.txt", "pushed to beta.local\n");
    let push = lab
        .a
        .cmd_with_hosts("git", &hosts)
        .env("GIT_SSH_COMMAND", GIT_SSH_COMMAND)
        .args(["push", "-q", &p.remote_on_a, "HEAD:refs/heads/by-name"])
        .run();
    expect_ok(&lab, push);
    assert_eq!(lab.b.rev_parse("refs/heads/by-name"), pushed);
    let out = refresh_named(&[]);
    let refreshed = event(&events(&out), "refreshed").unwrap().clone();
    assert_eq!(
        (refreshed["method"].as_str(), refreshed["changed"].as_bool()),
        (Some("mdns"), Some(false)),
        "{out}"
    );
    let listed = lab
        .a
        .cmd_with_hosts(&lab.a.git_pair, &hosts)
        .args(["list", "--json"])
        .run();
    let list: Value = serde_json::from_str(listed.stdout_str().trim()).unwrap();
    assert_eq!(list[0]["current_address"], format!("{name}:22"));
    assert_eq!(list[0]["refreshed_by"], "mdns");
    assert_eq!(list[0]["reachable"], true, "{listed}");
}

/// Reads `watch`'s events until one named `name` (within 10 s).
fn next_event(watch: &mut Running, name: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let line = watch
            .next_line(deadline)
            .unwrap_or_else(|| panic!("no {name} event from git pair watch"));
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v["event"] == name {
                return v;
            }
        }
    }
}

/// A watch started before any pairing picks up a pairing made while it runs, answers for it,
/// and lets it go when it is removed: no restart.
pub fn watch_notices_pairings_made_and_removed_while_it_runs() {
    let lab = Lab::new(Network::DualStack);
    let (mut watch, watching) = start_watch(&lab.b);
    assert_eq!(watching["pairings"], serde_json::json!([]));
    let p = pair_default(&lab);
    let b_alias = lab.b.remote(&p.remote_on_b).alias;
    let added = next_event(&mut watch, "pairings");
    assert_eq!(added["pairings"], serde_json::json!([b_alias]));

    let new_ip = move_host(&lab.b, 2, 9);
    let out = refresh(&lab.a, &[]);
    assert!(out.success(), "{out}");
    assert_eq!(
        host_name(&lab.a, &lab.a.remote(&p.remote_on_a).alias),
        new_ip.to_string()
    );
    assert_eq!(
        next_event(&mut watch, "answered")["alias"],
        b_alias.as_str()
    );

    expect_ok(
        &lab,
        lab.b
            .cmd(&lab.b.git_pair)
            .args(["remove", &p.remote_on_b])
            .run(),
    );
    let removed = next_event(&mut watch, "pairings");
    assert_eq!(removed["pairings"], serde_json::json!([]));
    // Moved again, A's refresh finds no one to answer for that pairing.
    move_host(&lab.b, 9, 10);
    let out = refresh(&lab.a, &["--timeout", "3", "--no-scan"]);
    assert_eq!(out.code(), Some(exit::NO_PEER), "{out}");
    stop_watch(watch);
}

/// On a LAN that drops multicast, refresh reaches the peer's watch by unicast: to a --peer
/// host, and without one by probing the subnet.
pub fn refresh_without_multicast_by_peer_and_by_subnet_probe() {
    let lab = Lab::new(Network::MulticastDropped);
    let p = pair_default_with_peer(&lab);
    let alias = lab.a.remote(&p.remote_on_a).alias;
    let (watch, _) = start_watch(&lab.b);
    let new_ip = move_host(&lab.b, 2, 9);
    let out = refresh(&lab.a, &["--peer", &new_ip.to_string(), "--no-scan"]);
    assert!(out.success(), "{out}");
    assert_eq!(host_name(&lab.a, &alias), new_ip.to_string());
    let by_peer = datagrams(&out);

    let newer = move_host(&lab.b, 9, 10);
    let started = Instant::now();
    let out = refresh(&lab.a, &[]);
    assert!(out.success(), "{out}");
    assert_eq!(host_name(&lab.a, &alias), newer.to_string());
    eprintln!(
        "  without multicast: found with --peer ({} datagrams), then by the subnet probe in {:?} ({} datagrams)",
        by_peer.map_or("?".into(), |n| n.to_string()),
        started.elapsed(),
        datagrams(&out).map_or("?".into(), |n| n.to_string())
    );
    assert!(
        lab.drop_counters().multicast() > 0,
        "multicast was really dropped"
    );
    stop_watch(watch);
}

/// Pairs on a LAN without multicast, A naming B with --peer.
fn pair_default_with_peer(lab: &Lab) -> Paired {
    use super::support::gitpair::{pair, PairOpts};
    pair(
        lab,
        &PairOpts::default().peer(lab.b.addr_from(&lab.a)),
        &PairOpts::default(),
    )
    .expect_paired()
}

/// Issue 11: proof of the stored pair secret counts as proof that a re-pairing peer is the one
/// an earlier pairing was made with. B's sshd gets a new host key (reinstalled), so it cannot
/// prove the pinned one; B still holds the pair secret, so A's re-pair replaces the earlier
/// pairing in place (same remote, one alias, the old secret replaced by the new one), and the
/// remote works with the new host key.
pub fn a_re_pair_proven_by_the_pair_secret_replaces_in_place() {
    use super::support::gitpair::{pair, PairOpts};
    let lab = Lab::new(Network::DualStack);
    let first = pair_default(&lab);
    let old_alias = lab.a.remote(&first.remote_on_a).alias;
    let old_secret = only_secret(&lab.a);
    let new_key = lab.b.replace_sshd_host_key();
    let run = pair(
        &lab,
        &PairOpts::default(),
        &PairOpts::default().sshd(22, &new_key),
    );
    let second = run.expect_paired();
    assert_eq!(second.remote_on_a, first.remote_on_a, "{run}");
    let ev = events(&run.a);
    let remote = event(&ev, "remote").unwrap_or_else(|| panic!("{run}"));
    assert_eq!(remote["replaced"], first.remote_on_a.as_str(), "{run}");
    assert!(
        run.a.stderr_str().contains("pair secret"),
        "A says how the peer proved it\n{run}"
    );
    let new_alias = lab.a.remote(&first.remote_on_a).alias;
    assert_ne!(new_alias, old_alias);
    let config = String::from_utf8(pair_config(&lab.a)).unwrap();
    assert!(!config.contains(&format!("Host {old_alias}")), "{config}");
    assert!(
        !old_secret.exists(),
        "the replaced pairing's secret is gone"
    );
    assert_eq!(secret_files(&lab.a).len(), 1);
    expect_ok(&lab, push(&lab.a, &first.remote_on_a, "after-re-pair"));
}
