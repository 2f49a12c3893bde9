//! End-to-end tests: two hosts in network namespaces, each with its own unix user, HOME,
//! repository and real sshd, paired by the real git-pair binary, then used through git and ssh.
//!
//! Run as root (`cargo test --test e2e`); elsewhere every test reports itself as ignored with
//! the reason. The `infrastructure_*` and `harness_*` tests check the harness itself without
//! git-pair. Nothing here sends a packet outside the test's own namespaces.

mod support;

#[path = "e2e/annex.rs"]
mod annex;
#[path = "e2e/crash.rs"]
mod crash;
#[path = "e2e/ending.rs"]
mod ending;
#[path = "e2e/lifecycle.rs"]
mod lifecycle;
#[path = "e2e/locate.rs"]
mod locate;
#[path = "e2e/sync.rs"]
mod sync;

use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use serde_json::Value;

use annex::*;
use crash::*;
use ending::*;
use lifecycle::*;
use locate::*;
use support::gitpair::{self, exit, pair, pair_with, PairOpts, Paired};
use support::host::{self, Host};
use support::lab::{self, Lab, Network, SetupState, Stage};
use support::process::Output;
use support::{forge, mcast, net, preflight, Needs};
use sync::*;

/// `Needs: test_fn, ...` -> trials named after their functions.
macro_rules! trials {
    ($($needs:ident: $test:ident),* $(,)?) => {
        vec![$(trial(stringify!($test), Needs::$needs, $test)),*]
    };
}

fn main() -> ExitCode {
    // The forging helper first: the multicast helper takes any other mode as its own.
    if let Some(code) = forge::run_helper_if_requested() {
        std::process::exit(code);
    }
    if let Some(code) = mcast::run_helper_if_requested() {
        std::process::exit(code);
    }
    let args = Arguments::from_args();
    let manage = !args.list && nix::unistd::geteuid().is_root();
    if manage {
        lab::sweep_stale();
    }
    let trials = trials![
        Base: infrastructure_smoke,
        Base: infrastructure_smoke_ipv6_link_local_only,
        Nft: infrastructure_smoke_multicast_dropped,
        Base: harness_cleans_up_after_a_panic_mid_setup,
        Base: pair_then_push_and_fetch_over_ssh,
        Base: pairs_across_a_bridge,
        Base: paired_key_is_limited_to_the_repository,
        Base: wrong_code_fails_on_both_sides_and_writes_nothing,
        Base: a_mistyped_code_ends_both_sides_within_seconds,
        Base: forged_datagrams_on_the_lan_do_not_stop_a_pairing,
        Base: a_setup_that_fails_on_one_side_is_undone_on_both,
        Base: verify_answered_no_writes_nothing_on_either_side,
        Base: verify_answered_yes_pairs,
        Base: two_runs_in_one_repository_each_get_their_own_remote,
        Base: list_check_logs_in_to_the_peer,
        Nft: pairs_without_multicast_with_peer_flag,
        Nft: pairs_without_multicast_by_subnet_probe,
        Base: pairs_over_ipv6_link_local_only,
        Base: json_event_sequence_of_a_successful_pairing,
        Base: lone_side_gives_up_with_exit_3_and_writes_nothing,
        Base: a_peer_of_another_protocol_version_is_named,
        Nft: an_unreachable_sshd_stops_both_sides_and_writes_nothing,
        Nft: the_exchange_goes_by_multicast_copies_while_arp_fails,
        Base: list_then_remove_locks_the_peer_out,
        Base: a_half_removed_pairing_is_listed_and_cleaned_up,
        Base: repairing_replaces_the_old_pairing,
        Base: several_peers_and_several_repositories_on_one_host,
        Base: a_key_already_paired_with_another_repository_is_refused,
        Base: a_peer_whose_sshd_cannot_prove_an_earlier_pairing_gets_a_new_one,
        Base: a_key_already_authorized_by_hand_is_refused_on_both_sides,
        Base: a_bare_repository_pairs_and_takes_a_push,
        Base: an_unwritable_ssh_dir_is_refused_before_anything_happens,
        Annex: git_annex_sync_content_over_a_pairing,
        Annex: git_annex_assistants_on_both_sides_sync_a_new_file,
        Base: pairing_stores_the_pair_secret_and_remove_deletes_it,
        Base: refresh_finds_a_peer_whose_address_changed_through_its_watch,
        Base: an_impostor_and_a_replayed_answer_are_ignored,
        Base: a_host_key_other_than_the_pinned_one_is_refused,
        Base: watch_survives_a_flood_with_bounded_memory,
        Base: a_pairing_without_a_pair_secret_says_to_pair_again,
        Base: refresh_prefers_a_name_that_resolves,
        Base: watch_notices_pairings_made_and_removed_while_it_runs,
        Nft: refresh_without_multicast_by_peer_and_by_subnet_probe,
        Base: a_re_pair_proven_by_the_pair_secret_replaces_in_place,
        Base: a_commit_reaches_the_peer_by_itself,
        Base: a_users_hook_keeps_running_and_comes_back_byte_for_byte,
        Base: diverged_histories_are_reported_and_left_alone,
        Base: ten_quick_commits_make_few_syncs_and_the_last_arrives,
        Base: a_peer_switched_off_does_not_slow_a_commit,
        Annex: annex_content_travels_through_git_annex_sync,
        Base: a_moved_peer_is_refreshed_once_and_synced,
        Strace: sigkill_during_setup_leaves_no_torn_pairing,
        Strace: two_repositories_paired_at_once_both_succeed,
        Strace: two_pairings_of_one_repository_at_once_get_their_own_remotes,
    ];
    let conclusion = libtest_mimic::run(&args, trials);
    if manage {
        let left = lab::leftovers_of(std::process::id());
        if !left.is_empty() {
            eprintln!(
                "e2e: resources left behind after the tests:\n  {}",
                left.join("\n  ")
            );
            return ExitCode::FAILURE;
        }
    }
    conclusion.exit_code()
}

/// A test that reports itself ignored, with the reason, when this machine cannot run it. A test
/// body fails by panicking (libtest-mimic catches it); the lab's cleanup runs while unwinding.
fn trial(name: &'static str, needs: Needs, test: fn()) -> Trial {
    Trial::ignorable_test(name, move || match preflight(needs) {
        Some(reason) => Ok(Completion::ignored_with(reason)),
        None => {
            test();
            Ok::<_, Failed>(Completion::Completed)
        }
    })
}

// ---------------------------------------------------------------------------------------------
// The harness itself, without git-pair.

const SSH_TEST_OPTS: &[&str] = &[
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
];

/// Gives A's user a key and puts it into B's authorized_keys by hand; returns the key path.
fn authorize_a_on_b(lab: &Lab) -> PathBuf {
    let key = lab.a.home.join(".ssh/id_ed25519");
    lab.a
        .cmd("sh")
        .args([
            "-c",
            r#"mkdir -m 700 -p "$HOME/.ssh" && ssh-keygen -q -t ed25519 -N "" -f "$1""#,
            "sh",
        ])
        .arg(&key)
        .run_ok();
    let public = host::read_file(&key.with_extension("pub")).expect("public key written");
    lab.b
        .write_user_file(&lab.b.home.join(".ssh/authorized_keys"), &public, 0o600);
    key
}

/// From A's namespace, as A's user: `ssh -i key userB@addr 'hostname; id -un'` must log into
/// B's sshd (host name beta) as B's user.
fn assert_ssh_login(lab: &Lab, key: &Path, addr: &str) {
    let started = Instant::now();
    let out = lab
        .a
        .cmd("ssh")
        .args(SSH_TEST_OPTS)
        .arg("-i")
        .arg(key)
        .arg(format!("{}@{addr}", lab.b.user))
        .arg("hostname; id -un")
        .run();
    let expected = format!("{}\n{}\n", lab.b.hostname, lab.b.user);
    assert!(
        out.success() && out.stdout_str() == expected,
        "ssh login to B at {addr} failed (expected stdout {expected:?})\n{out}\n{}",
        lab.sshd_logs()
    );
    eprintln!("  ssh {addr}: ok in {:?}", started.elapsed());
}

fn assert_host_names(lab: &Lab) {
    for h in [&lab.a, &lab.b] {
        let name = h.cmd("hostname").run_ok().stdout_str();
        assert_eq!(name.trim(), h.hostname, "host name inside {}", h.netns);
    }
}

/// Dual stack: host names differ per side, a key login from A's namespace into B's sshd works
/// over IPv4 and over IPv6 link-local, and multicast crosses the LAN.
fn infrastructure_smoke() {
    let lab = Lab::new(Network::DualStack);
    eprintln!(
        "  dual-stack lab {} ({}) with two sshds ready in {:?}",
        lab.id,
        lab.dir.display(),
        lab.setup_time
    );
    assert_host_names(&lab);
    let key = authorize_a_on_b(&lab);
    assert_ssh_login(&lab, &key, &lab.b.addr_from(&lab.a));
    assert_ssh_login(&lab, &key, &lab.b.ipv6_from(&lab.a));
    assert!(
        lab.b
            .sshd_log()
            .contains(&format!("Accepted publickey for {}", lab.b.user)),
        "B's sshd did not log the key logins\n{}",
        lab.sshd_logs()
    );
    let (v4, v6) = mcast::probe(&lab.a, &lab.b);
    assert!(
        v4.unwrap_or(0) > 0 && v6 > 0,
        "multicast must cross the LAN: v4 {v4:?}, v6 {v6}"
    );
}

/// IPv6 link-local only: no IPv4 address anywhere on the veths, ssh over fe80::2%va works, and
/// IPv6 multicast crosses the LAN.
fn infrastructure_smoke_ipv6_link_local_only() {
    let lab = Lab::new(Network::Ipv6LinkLocalOnly);
    eprintln!("  IPv6-only lab ready in {:?}", lab.setup_time);
    for h in [&lab.a, &lab.b] {
        assert_eq!(net::ipv4_addrs(&h.netns, &h.iface), Vec::<String>::new());
    }
    let key = authorize_a_on_b(&lab);
    assert_ssh_login(&lab, &key, &lab.b.ipv6_from(&lab.a));
    let (v4, v6) = mcast::probe(&lab.a, &lab.b);
    assert_eq!(v4, None, "no IPv4 probe without an IPv4 address");
    assert!(v6 > 0, "IPv6 multicast must cross the LAN");
}

/// Multicast dropped: the nft rules load, multicast and broadcast from A never reach B and are
/// counted by B's rules, while unicast ssh (and neighbour discovery under it) still works.
fn infrastructure_smoke_multicast_dropped() {
    let lab = Lab::new(Network::MulticastDropped);
    eprintln!("  multicast-dropped lab ready in {:?}", lab.setup_time);
    let before = net::drop_counters(&lab.b.netns);
    let (v4, v6) = mcast::probe(&lab.a, &lab.b);
    assert_eq!(
        (v4, v6),
        (Some(0), 0),
        "multicast and broadcast must not arrive"
    );
    let after = net::drop_counters(&lab.b.netns);
    assert!(
        after.multicast_v4 > before.multicast_v4
            && after.broadcast_v4 > before.broadcast_v4
            && after.multicast_v6 > before.multicast_v6,
        "every kind must be counted as dropped: before {before:?}, after {after:?}"
    );
    let key = authorize_a_on_b(&lab);
    assert_ssh_login(&lab, &key, &lab.b.addr_from(&lab.a));
    assert_ssh_login(&lab, &key, &lab.b.ipv6_from(&lab.a));
    assert!(lab.drop_counters().multicast() >= after.multicast());
}

/// A panic after the sshds started (everything exists by then) leaves no namespace, user,
/// directory or sshd behind.
fn harness_cleans_up_after_a_panic_mid_setup() {
    let mut seen = SetupState::default();
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        Lab::build(Network::MulticastDropped, &mut |stage, state| {
            seen = state.clone();
            if stage == Stage::Sshd {
                // resume_unwind unwinds like a panic but skips the panic hook, so that a passing
                // run prints no alarming message or backtrace (even with RUST_BACKTRACE set).
                panic::resume_unwind(Box::new("injected: the cleanup of a half-built lab"));
            }
        })
    }));
    assert!(result.is_err(), "the injected panic must propagate");
    assert_eq!(seen.namespaces.len(), 2, "{seen:?}");
    assert_eq!(seen.users.len(), 2, "{seen:?}");
    assert_eq!(seen.sshd_pids.len(), 2, "{seen:?}");
    let namespaces = net::list_netns();
    for ns in &seen.namespaces {
        assert!(!namespaces.contains(ns), "namespace {ns} left behind");
    }
    for user in &seen.users {
        assert!(!host::user_exists(user), "user {user} left behind");
    }
    assert!(!seen.dir.exists(), "{} left behind", seen.dir.display());
    for pid in &seen.sshd_pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "sshd {pid} left behind"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Pairing with the real git-pair.

const GIT_SSH_COMMAND: &str = "ssh -o BatchMode=yes";

/// `git ARGS` as `host`'s user with ssh in batch mode (a prompt would fail instead of hang).
fn git_over_ssh(host: &Host, args: &[&str]) -> Output {
    git_in(host, &host.repo, args)
}

/// [`git_over_ssh`] in another directory than the host's repository.
fn git_in(host: &Host, dir: &Path, args: &[&str]) -> Output {
    host.cmd("git")
        .env("GIT_SSH_COMMAND", GIT_SSH_COMMAND)
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(args)
        .cwd(dir)
        .run()
}

/// `git config --get KEY` in `dir`, as `host`'s user.
fn config_value(host: &Host, dir: &Path, key: &str) -> String {
    host.cmd("git")
        .args(["config", "--get", key])
        .cwd(dir)
        .run_ok()
        .stdout_str()
        .trim()
        .to_owned()
}

/// A fresh ed25519 public key line (with `comment`) that no test host holds the private half of.
fn foreign_public_key(lab: &Lab, name: &str, comment: &str) -> Vec<u8> {
    let key = lab.dir.join(name);
    support::process::Cmd::root("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&key)
        .run_ok();
    host::read_file(&key.with_extension("pub")).expect("seed key written")
}

fn expect_ok(lab: &Lab, out: Output) -> Output {
    assert!(out.success(), "command failed\n{out}\n{}", lab.sshd_logs());
    out
}

/// Pairs A (generating the code) with B (typing it) with default options.
fn pair_default(lab: &Lab) -> Paired {
    pair(lab, &PairOpts::default(), &PairOpts::default()).expect_paired()
}

/// The remote points at the peer's repository through an ssh alias defined in
/// ~/.ssh/git-pair/config, which ~/.ssh/config includes.
fn assert_remote_layout(host: &Host, remote: &str, peer: &Host) {
    let r = host.remote(remote);
    let peer_repo = peer.repo.to_string_lossy();
    assert!(
        r.path == peer_repo || r.path == format!("{peer_repo}/.git"),
        "remote {remote} on {} has URL {}, expected <alias>:{peer_repo}",
        host.hostname,
        r.url
    );
    let pair_config = host.home.join(".ssh/git-pair/config");
    let text =
        String::from_utf8_lossy(&host::read_file(&pair_config).unwrap_or_default()).into_owned();
    assert!(
        text.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next().is_some_and(|k| k.eq_ignore_ascii_case("host")) && w.any(|a| a == r.alias)
        }),
        "{} has no `Host {}` block:\n{text}",
        pair_config.display(),
        r.alias
    );
    let config = String::from_utf8_lossy(
        &host::read_file(&host.home.join(".ssh/config")).unwrap_or_default(),
    )
    .into_owned();
    assert!(
        config.lines().any(
            |l| l.trim_start().to_ascii_lowercase().starts_with("include")
                && l.contains("git-pair/config")
        ),
        "~/.ssh/config of {} does not Include git-pair/config:\n{config}",
        host.hostname
    );
}

/// After pairing, A pushes a new commit to a branch of B, and B fetches A's newer main: both
/// through the added remotes, over ssh, without any prompt.
fn pair_then_push_and_fetch_over_ssh() {
    let lab = Lab::new(Network::DualStack);
    let accepted = |h: &Host| h.sshd_log().matches("Connection from").count();
    let before = (accepted(&lab.a), accepted(&lab.b));
    let p = pair_default(&lab);
    // Each side checked the other's sshd half-open: neither sshd accepted a connection, so
    // neither started a process or logged one (LogLevel VERBOSE logs every connection it
    // accepts). Looked at past the longest delayed-ACK timer (200 ms), after which a completed
    // handshake would have been accepted.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        (accepted(&lab.a), accepted(&lab.b)),
        before,
        "the pairing made an sshd accept a connection\n{}",
        lab.sshd_logs()
    );
    assert!(
        p.remote_on_a.contains(&lab.b.hostname) && p.remote_on_b.contains(&lab.a.hostname),
        "remotes are named after the peer's host name: A has {:?}, B has {:?}",
        p.remote_on_a,
        p.remote_on_b
    );
    assert_remote_layout(&lab.a, &p.remote_on_a, &lab.b);
    assert_remote_layout(&lab.b, &p.remote_on_b, &lab.a);

    let pushed = lab.a.commit("from-alpha.txt", "pushed by alpha\n");
    expect_ok(
        &lab,
        git_over_ssh(&lab.a, &["push", &p.remote_on_a, "HEAD:refs/heads/from-a"]),
    );
    assert_eq!(
        lab.b.rev_parse("refs/heads/from-a"),
        pushed,
        "B has A's pushed commit"
    );

    let fetched = lab
        .a
        .commit("later.txt", "committed by alpha after the push\n");
    expect_ok(&lab, git_over_ssh(&lab.b, &["fetch", &p.remote_on_b]));
    let tracking = format!("refs/remotes/{}/main", p.remote_on_b);
    assert_eq!(lab.b.rev_parse(&tracking), fetched, "B fetched A's main");
    lab.b
        .git(&["cat-file", "-e", &format!("{fetched}^{{commit}}")]);
}

/// The same across a Linux bridge in a switch namespace, the LAN of the crowd benchmark.
fn pairs_across_a_bridge() {
    let lab = Lab::new(Network::Bridged);
    let p = pair_default(&lab);
    assert_remote_works(&lab, &lab.a, &p.remote_on_a);
    assert_remote_works(&lab, &lab.b, &p.remote_on_b);
}

/// The key git-pair installed lets the peer reach this one repository with git and nothing
/// else: no shell command, no other repository of the same user.
fn paired_key_is_limited_to_the_repository() {
    let lab = Lab::new(Network::DualStack);
    let p = pair_default(&lab);
    let remote = lab.a.remote(&p.remote_on_a);
    let other = lab.b.home.join("other");
    lab.b.init_repo(&other);

    let shell = lab
        .a
        .cmd("ssh")
        .args(["-o", "BatchMode=yes", &remote.alias, "cat", "/etc/passwd"])
        .run();
    let stdout = shell.stdout_str();
    assert!(
        !shell.success(),
        "a shell command through the paired key must fail\n{shell}"
    );
    assert!(
        !stdout.contains(":0:0:") && !stdout.contains(&lab.b.user),
        "passwd content leaked\n{shell}"
    );
    assert!(
        !shell.stderr_str().trim().is_empty(),
        "the refusal must say why on stderr\n{shell}"
    );

    for path in [
        other.to_string_lossy().into_owned(),
        format!("{}/../other", lab.b.repo.display()),
    ] {
        let url = format!("{}:{path}", remote.alias);
        let out = git_over_ssh(&lab.a, &["ls-remote", &url]);
        assert!(
            !out.success(),
            "another repository of B must be refused: {url}\n{out}"
        );
    }

    let listed = expect_ok(&lab, git_over_ssh(&lab.a, &["ls-remote", &p.remote_on_a]));
    let head = lab.b.rev_parse("HEAD");
    assert!(
        listed
            .stdout_str()
            .lines()
            .any(|l| l == format!("{head}\trefs/heads/main")),
        "ls-remote of the paired repository must list B's main ({head})\n{listed}"
    );
}

/// Files a failed pairing must not touch, with their bytes (`None`: did not exist).
fn snapshot(host: &Host) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    [
        host.repo.join(".git/config"),
        host.home.join(".ssh/authorized_keys"),
        host.home.join(".ssh/config"),
        host.home.join(".ssh/git-pair/config"),
    ]
    .into_iter()
    .map(|p| {
        let bytes = host::read_file(&p);
        (p, bytes)
    })
    .collect()
}

/// The same number with the same words in another order: a well-formed code that differs.
fn wrong_code(code: &str) -> String {
    let (number, words) = code
        .split_once('-')
        .unwrap_or_else(|| panic!("code {code:?} has no words"));
    let mut words: Vec<&str> = words.split('-').collect();
    words.rotate_left(1);
    let wrong = format!("{number}-{}", words.join("-"));
    assert_ne!(wrong, code, "cannot derive a different code from {code:?}");
    wrong
}

fn failure_reasons(out: &Output) -> Vec<String> {
    gitpair::events(out)
        .into_iter()
        .filter(|e| e["event"] == "failed")
        .filter_map(|e| e["reason"].as_str().map(str::to_owned))
        .collect()
}

/// B types a different code with the same number: both sides stop with exit 4 (verification
/// failed, reason wrong_code), and neither side's git config, authorized_keys or ssh config
/// changes by a single byte.
fn wrong_code_fails_on_both_sides_and_writes_nothing() {
    let lab = Lab::new(Network::DualStack);
    let seed_pub = foreign_public_key(&lab, "seed_key", "seeded@elsewhere");
    let seed_pub = String::from_utf8_lossy(&seed_pub);
    for h in [&lab.a, &lab.b] {
        // Odd but legal content: a CRLF comment, a real key, no final newline.
        let keys = format!("# seeded by the e2e test\r\n{}", seed_pub.trim_end());
        h.write_user_file(&h.home.join(".ssh/authorized_keys"), keys.as_bytes(), 0o600);
        let config = b"Host seeded\n    HostName 192.0.2.1\n# end";
        h.write_user_file(&h.home.join(".ssh/config"), config, 0o600);
    }
    let before = (snapshot(&lab.a), snapshot(&lab.b));

    let run = pair_with(
        &lab,
        &PairOpts::timeout(6),
        &PairOpts::timeout(6),
        wrong_code,
    );
    for (side, out) in [("A", &run.a), ("B", &run.b)] {
        assert_eq!(
            out.code(),
            Some(exit::VERIFICATION_FAILED),
            "side {side} must exit 4\n{run}"
        );
        assert!(
            failure_reasons(out).iter().any(|r| r == "wrong_code"),
            "side {side} must report a failed event with reason wrong_code\n{run}"
        );
        // The sequence a failing run produces, through the JSON interface only.
        let events =
            gitpair::events_strict(out).unwrap_or_else(|e| panic!("side {side}: {e}\n{run}"));
        let names = gitpair::event_names(&events);
        let expected: &[&str] = if side == "A" {
            &["code", "listening", "peer", "verify_failed", "failed"]
        } else {
            &["listening", "peer", "verify_failed", "failed"]
        };
        let mut at = 0;
        for want in expected {
            match names[at..].iter().position(|n| n == want) {
                Some(i) => at += i + 1,
                None => panic!("side {side}: no {want:?} in order in {names:?}\n{run}"),
            }
        }
        assert_eq!(
            names.last().map(String::as_str),
            Some("failed"),
            "side {side}: failed must be last\n{run}"
        );
        for forbidden in ["verified", "sas", "remote", "paired"] {
            assert!(
                !names.iter().any(|n| n == forbidden),
                "side {side}: a failed run must not report {forbidden:?}: {names:?}\n{run}"
            );
        }
    }
    let after = (snapshot(&lab.a), snapshot(&lab.b));
    for ((path, was), (_, is)) in before
        .0
        .iter()
        .chain(&before.1)
        .zip(after.0.iter().chain(&after.1))
    {
        assert!(
            was == is,
            "{} changed: before {:?}, after {:?}",
            path.display(),
            was.as_deref().map(String::from_utf8_lossy),
            is.as_deref().map(String::from_utf8_lossy)
        );
    }
}

/// The paired remote of `host` answers `git ls-remote`.
fn assert_remote_works(lab: &Lab, host: &Host, remote: &str) {
    expect_ok(lab, git_over_ssh(host, &["ls-remote", remote]));
}

fn assert_multicast_was_dropped(lab: &Lab) {
    let counters = lab.drop_counters();
    assert!(
        counters.multicast() > 0,
        "git-pair's multicast must have been sent and dropped by the LAN: {counters:?}"
    );
}

/// With multicast dropped on the LAN, B finds A through `--peer <A's address>`.
fn pairs_without_multicast_with_peer_flag() {
    let lab = Lab::new(Network::MulticastDropped);
    let b_opts = PairOpts::default().peer(lab.a.addr_from(&lab.b));
    let p = pair(&lab, &PairOpts::default(), &b_opts).expect_paired();
    assert_remote_works(&lab, &lab.b, &p.remote_on_b);
    assert_remote_works(&lab, &lab.a, &p.remote_on_a);
    assert_multicast_was_dropped(&lab);
}

/// With multicast dropped on the LAN and no --peer, the subnet probe finds the peer.
fn pairs_without_multicast_by_subnet_probe() {
    let lab = Lab::new(Network::MulticastDropped);
    let started = Instant::now();
    let p = pair(&lab, &PairOpts::timeout(30), &PairOpts::timeout(30)).expect_paired();
    eprintln!("  paired by subnet probe in {:?}", started.elapsed());
    assert_remote_works(&lab, &lab.b, &p.remote_on_b);
    assert_remote_works(&lab, &lab.a, &p.remote_on_a);
    assert_multicast_was_dropped(&lab);
}

/// With IPv6 link-local addresses only (B gives the code on stdin), pairing works and A can
/// push to B.
fn pairs_over_ipv6_link_local_only() {
    let lab = Lab::new(Network::Ipv6LinkLocalOnly);
    let p = pair(
        &lab,
        &PairOpts::default(),
        &PairOpts::default().code_on_stdin(),
    )
    .expect_paired();
    let pushed = lab
        .a
        .commit("over-ipv6.txt", "pushed over IPv6 link-local\n");
    expect_ok(
        &lab,
        git_over_ssh(&lab.a, &["push", &p.remote_on_a, "HEAD:refs/heads/from-a"]),
    );
    assert_eq!(lab.b.rev_parse("refs/heads/from-a"), pushed);
}

const KNOWN_EVENTS: &[&str] = &[
    "code",
    "listening",
    "peer",
    "verified",
    "sas",
    "remote",
    "paired",
];

/// `expected` must appear in this order (first occurrences), `paired` exactly once and last.
fn check_sequence(side: &str, events: &[Value], expected: &[&str]) -> Result<(), String> {
    let names = gitpair::event_names(events);
    let mut last = None;
    for want in expected {
        let Some(at) = names.iter().position(|n| n == want) else {
            return Err(format!("side {side}: no {want:?} event in {names:?}"));
        };
        if last.is_some_and(|prev| at <= prev) {
            return Err(format!("side {side}: {want:?} out of order in {names:?}"));
        }
        last = Some(at);
    }
    if let Some(unknown) = names.iter().find(|n| !KNOWN_EVENTS.contains(&n.as_str())) {
        return Err(format!(
            "side {side}: unexpected event {unknown:?} in {names:?}"
        ));
    }
    if names.iter().filter(|n| *n == "paired").count() != 1
        || names.last().map(String::as_str) != Some("paired")
    {
        return Err(format!(
            "side {side}: \"paired\" must come once, last: {names:?}"
        ));
    }
    Ok(())
}

/// Every stdout line of both sides is one JSON event; A (which generated the code) says code,
/// listening, peer, verified, ..., remote, paired; B the same without code.
fn json_event_sequence_of_a_successful_pairing() {
    let lab = Lab::new(Network::DualStack);
    let run = pair(&lab, &PairOpts::default(), &PairOpts::default());
    run.expect_paired();
    let a = gitpair::events_strict(&run.a).unwrap_or_else(|e| panic!("side A: {e}\n{run}"));
    let b = gitpair::events_strict(&run.b).unwrap_or_else(|e| panic!("side B: {e}\n{run}"));
    let checks = [
        check_sequence(
            "A",
            &a,
            &["code", "listening", "peer", "verified", "remote", "paired"],
        ),
        check_sequence(
            "B",
            &b,
            &["listening", "peer", "verified", "remote", "paired"],
        ),
        if gitpair::event_names(&b).iter().any(|n| n == "code") {
            Err("side B was given the code and must not print a code event".to_owned())
        } else {
            Ok(())
        },
    ];
    for check in checks {
        if let Err(e) = check {
            panic!("{e}\n{run}");
        }
    }
    let code_event = a
        .iter()
        .find(|e| e["event"] == "code")
        .expect("checked above");
    assert_eq!(code_event["code"].as_str(), Some(run.code.as_str()));
}

/// With nobody else pairing, git-pair gives up at its --timeout with exit 3 (no peer), says so
/// in its last event, and leaves the repository and ~/.ssh as they were.
fn lone_side_gives_up_with_exit_3_and_writes_nothing() {
    let lab = Lab::new(Network::DualStack);
    let before = snapshot(&lab.a);
    let started = Instant::now();
    let out = lab.a.git_pair(None, &PairOpts::timeout(4)).run();
    let took = started.elapsed();
    assert_eq!(out.code(), Some(exit::NO_PEER), "expected exit 3\n{out}");
    assert!(
        took >= Duration::from_secs(3),
        "gave up after {took:?}, before its 4 s timeout\n{out}"
    );
    let last = gitpair::events(&out).pop();
    let last_name = last.as_ref().and_then(|e| e["event"].as_str());
    let reason = last.as_ref().and_then(|e| e["reason"].as_str());
    assert!(
        last_name == Some("timeout") || (last_name == Some("failed") && reason == Some("no_peer")),
        "the last event must be timeout or failed/no_peer\n{out}"
    );
    assert!(
        before == snapshot(&lab.a),
        "a lone run must not change the repository or ~/.ssh"
    );
}

/// An older git-pair (protocol version 2) on B announces itself on A's channel; the two cannot
/// pair. A, whose run finds no peer it can talk to, says which machine runs another version and
/// what to do, rather than "no peer answered", and writes nothing.
fn a_peer_of_another_protocol_version_is_named() {
    let lab = Lab::new(Network::DualStack);
    let before = snapshot(&lab.a);
    let old = forge::start_old(&lab.b, 8, "7");
    let out = lab
        .a
        .git_pair(Some("7-guitar-orbit-velvet"), &PairOpts::timeout(4))
        .run();
    let sent = forge::forged(&old.wait(Duration::from_secs(15)));
    assert!(sent > 0, "the old-version helper sent nothing\n{out}");
    let said = out.stderr_str();
    assert!(
        said.contains(&lab.b.ipv4.unwrap().to_string())
            && said.contains("protocol version 2")
            && said.contains("install the same version of git-pair on both machines"),
        "A must name the machine and the versions\n{out}"
    );
    assert_eq!(out.code(), Some(exit::SETUP_FAILED), "{out}");
    assert!(
        before == snapshot(&lab.a),
        "a run that paired with nobody must not change the repository or ~/.ssh"
    );
}

/// B's sshd runs, but a firewall on B rejects every connection to it that does not come from
/// B itself. (An sshd that is not running at all is found by B before the network: see
/// tests/cli.rs.) A, which cannot reach it, says so plainly and exits 5 (sshd_unreachable); B
/// hears that A refused and exits 5 too (peer_rejected). Neither side writes anything,
/// although both held the right code.
fn an_unreachable_sshd_stops_both_sides_and_writes_nothing() {
    let lab = Lab::new(Network::DualStack);
    let firewall = "table inet gp_sshd_firewall {\n\
                    chain input {\n\
                    type filter hook input priority 0; policy accept;\n\
                    iifname != \"lo\" tcp dport 22 reject with tcp reset\n\
                    }\n}\n";
    net::in_netns(&lab.b.netns, "nft")
        .args(["-f", "-"])
        .stdin(firewall)
        .run_ok();
    let before = (snapshot(&lab.a), snapshot(&lab.b));
    let run = pair(&lab, &PairOpts::timeout(20), &PairOpts::timeout(20));
    assert_eq!(
        run.a.code(),
        Some(exit::SETUP_FAILED),
        "A must exit 5\n{run}"
    );
    assert_eq!(
        run.b.code(),
        Some(exit::SETUP_FAILED),
        "B must exit 5\n{run}"
    );
    assert_eq!(failure_reasons(&run.a), ["sshd_unreachable"], "{run}");
    assert_eq!(failure_reasons(&run.b), ["peer_rejected"], "{run}");
    let said = run.a.stderr_str();
    assert!(
        said.contains("is sshd running on the peer") && said.contains("TCP port 22"),
        "A must say plainly what to check\n{run}"
    );
    for (side, host, was) in [("A", &lab.a, &before.0), ("B", &lab.b, &before.1)] {
        assert!(snapshot(host) == *was, "side {side} wrote something\n{run}");
    }
}

/// Issue 13: B's ingress drops every ARP frame, so B can never resolve A's link-layer address
/// and no unicast datagram of B's ever leaves B (A learns B's address from B's ARP requests, so
/// A's unicast reaches B); both ingresses drop IPv6, so that everything runs over IPv4. The
/// exchange can then run only on the copies that the transport sends to the multicast group
/// while a neighbour is unresolved (`transport::neighbour`): without them A never gets B's
/// SPAKE2 message and neither side gets as far as checking the other's sshd. With them both do,
/// and the TCP check, which needs unicast both ways, names the problem: each side says the
/// peer's sshd does not answer, or that the peer refused for that reason. Nothing is written.
fn the_exchange_goes_by_multicast_copies_while_arp_fails() {
    let lab = Lab::new(Network::DualStack);
    for (host, arp) in [(&lab.a, ""), (&lab.b, "meta protocol arp drop\n")] {
        let rules = format!(
            "table netdev gp_arp_drop {{\n\
             chain ingress {{\n\
             type filter hook ingress device \"{}\" priority 0; policy accept;\n\
             {arp}meta protocol ip6 drop\n\
             }}\n}}\n",
            host.iface
        );
        net::in_netns(&host.netns, "nft")
            .args(["-f", "-"])
            .stdin(rules)
            .run_ok();
    }
    let before = (snapshot(&lab.a), snapshot(&lab.b));
    let run = pair(&lab, &PairOpts::timeout(30), &PairOpts::timeout(30));
    let reasons: Vec<String> = failure_reasons(&run.a)
        .into_iter()
        .chain(failure_reasons(&run.b))
        .collect();
    assert!(
        reasons.iter().any(|r| r == "sshd_unreachable")
            && reasons
                .iter()
                .all(|r| r == "sshd_unreachable" || r == "peer_rejected"),
        "both sides must have got as far as the sshd check: {reasons:?}\n{run}"
    );
    for (side, out) in [("A", &run.a), ("B", &run.b)] {
        assert_eq!(
            out.code(),
            Some(exit::SETUP_FAILED),
            "{side} must exit 5\n{run}"
        );
    }
    for (side, host, was) in [("A", &lab.a, &before.0), ("B", &lab.b, &before.1)] {
        assert!(snapshot(host) == *was, "side {side} wrote something\n{run}");
    }
}

/// Issue 10, item 5: with a mistyped code and a long --timeout, both sides stop with exit 4 a few
/// seconds after they met (every peer failed, none new appeared), saying that the codes differ
/// and to start again on both machines. Before, both waited the whole --timeout.
fn a_mistyped_code_ends_both_sides_within_seconds() {
    let lab = Lab::new(Network::DualStack);
    let started = Instant::now();
    let run = pair_with(
        &lab,
        &PairOpts::timeout(120),
        &PairOpts::timeout(120),
        wrong_code,
    );
    let took = started.elapsed();
    eprintln!("  a mistyped code ended both sides after {took:?}");
    for (side, out) in [("A", &run.a), ("B", &run.b)] {
        assert_eq!(
            out.code(),
            Some(exit::VERIFICATION_FAILED),
            "side {side} must exit 4\n{run}"
        );
        assert_eq!(failure_reasons(out), ["wrong_code"], "side {side}\n{run}");
        let said = out.stderr_str();
        assert!(
            said.contains("the codes differ") && said.contains("Start again on both machines"),
            "side {side} must say plainly what happened and what to do\n{run}"
        );
    }
    assert!(
        took < Duration::from_secs(20),
        "both sides must stop within seconds, not at --timeout: {took:?}\n{run}"
    );
}

/// Issue 9, forged datagrams: an attacker on the LAN without the code hears both runs' hellos
/// and, for the whole pairing, sends each run datagrams under the other's session id from the
/// other's own address: a version-1 `abort` (reason `rejected`, with its own words) that ended
/// the run before, forged `data` pieces (which made the old version count a failed guess and
/// say the codes differ), and an `end` it cannot seal. The pairing still succeeds on both
/// sides, no guess is counted, and the attacker's words are never shown.
fn forged_datagrams_on_the_lan_do_not_stop_a_pairing() {
    let lab = Lab::new(Network::DualStack);
    let attacker = forge::start(&lab.b, 15);
    let run = pair(&lab, &PairOpts::default(), &PairOpts::default());
    let forged = forge::forged(&attacker.wait(Duration::from_secs(30)));
    eprintln!("  {forged} forged datagrams during the pairing");
    assert!(forged > 0, "the attacker must have forged something\n{run}");
    run.expect_paired();
    for (side, out) in [("A", &run.a), ("B", &run.b)] {
        let names = gitpair::event_names(&gitpair::events(out));
        assert!(
            !names.iter().any(|n| n == "verify_failed"),
            "side {side}: a forgery counted as a failed guess: {names:?}\n{run}"
        );
        for text in [out.stdout_str(), out.stderr_str()] {
            assert!(
                !text.contains(forge::EVIL_WORDS),
                "side {side} showed the attacker's words\n{run}"
            );
        }
    }
}
