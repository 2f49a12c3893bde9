//! End-to-end tests of living with pairings: `git pair list`, `git pair remove`, re-pairing,
//! several peers and several repositories, bare repositories, and bad input. Same lab as the
//! rest of e2e: two namespace hosts with their own users and real sshd.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::support::gitpair::{exit, pair, PairOpts, Paired};
use super::support::host::{self, Host};
use super::support::lab::{Lab, Network};
use super::support::process::Output;
use super::{config_value, expect_ok, git_in};

/// `git pair ARGS` (not a pairing) as `host`'s user in `dir`.
fn git_pair_in(host: &Host, dir: &Path, args: &[&str]) -> Output {
    host.cmd(&host.git_pair).args(args).cwd(dir).run()
}

fn list_json(lab: &Lab, host: &Host, dir: &Path) -> Vec<Value> {
    let out = expect_ok(lab, git_pair_in(host, dir, &["list", "--json"]));
    let v: Value = serde_json::from_str(out.stdout_str().trim())
        .unwrap_or_else(|e| panic!("list --json is not JSON ({e})\n{out}"));
    v.as_array()
        .unwrap_or_else(|| panic!("list --json is not an array\n{out}"))
        .clone()
}

/// `ssh-keygen -lf FILE`'s SHA256 fingerprint.
fn fingerprint(host: &Host, pub_file: &Path) -> String {
    let out = host
        .cmd("ssh-keygen")
        .args(["-E", "sha256", "-lf"])
        .arg(pub_file)
        .run_ok();
    out.stdout_str()
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no fingerprint in\n{out}"))
        .to_owned()
}

/// The paired remotes of a repository (those with `pair-alias`).
fn paired_remotes(host: &Host, dir: &Path) -> Vec<String> {
    let out = host
        .cmd("git")
        .args(["config", "--get-regexp", r"^remote\..*\.pair-alias$"])
        .cwd(dir)
        .run();
    out.stdout_str()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|k| {
            k.trim_start_matches("remote.")
                .trim_end_matches(".pair-alias")
                .to_owned()
        })
        .collect()
}

/// git-pair's lines in a host's authorized_keys.
fn git_pair_lines(host: &Host) -> Vec<String> {
    let bytes = host::read_file(&host.home.join(".ssh/authorized_keys")).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains(" git-pair:"))
        .map(str::to_owned)
        .collect()
}

/// The `Host` aliases in a host's git-pair config.
fn pair_aliases(host: &Host) -> Vec<String> {
    let bytes = host::read_file(&host.home.join(".ssh/git-pair/config")).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| l.strip_prefix("Host "))
        .map(str::to_owned)
        .collect()
}

/// The files in `~/.ssh/git-pair` named `id_*`.
fn key_files(host: &Host) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(host.home.join(".ssh/git-pair"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("id_"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Seeds `host`'s authorized_keys with lines git-pair must keep byte for byte: a comment with
/// CRLF, a line no parser understands, and a real key with options. Returns the bytes.
fn seed_authorized_keys(lab: &Lab, host: &Host) -> Vec<u8> {
    let public =
        super::foreign_public_key(lab, &format!("seed-{}", host.hostname), "kept@elsewhere");
    let mut bytes = b"# mine\r\nthis line is not a key \xff at all\n".to_vec();
    bytes.extend_from_slice(b"from=\"192.0.2.1\" ");
    bytes.extend_from_slice(&public);
    host.write_user_file(&host.home.join(".ssh/authorized_keys"), &bytes, 0o600);
    bytes
}

/// `git pair list` shows the pairing with every field the issue names, `git pair remove` on B
/// revokes A's key (A's fetch fails at B's sshd), keeps every other authorized_keys line byte
/// for byte, removes the alias, pinned keys, key files and the remote, and is idempotent.
pub fn list_then_remove_locks_the_peer_out() {
    let lab = Lab::new(Network::DualStack);
    let seeded = seed_authorized_keys(&lab, &lab.b);
    let ssh_config = b"# mine\r\nHost seeded\n    HostName 192.0.2.1\n# no final newline".to_vec();
    lab.b
        .write_user_file(&lab.b.home.join(".ssh/config"), &ssh_config, 0o644);
    let p: Paired = pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();

    let listed = list_json(&lab, &lab.a, &lab.a.repo);
    assert_eq!(listed.len(), 1, "{listed:?}");
    let entry = &listed[0];
    assert_eq!(entry["name"], p.remote_on_a.as_str());
    assert_eq!(
        entry["peer"],
        format!("{}@{}:{}", lab.b.user, lab.b.hostname, lab.b.repo.display()).as_str()
    );
    assert_eq!(entry["reachable"], true, "{entry}");
    assert_eq!(entry["orphaned"], false);
    assert!(entry["paired_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    assert!(entry["address"]
        .as_str()
        .is_some_and(|a| a.ends_with(":22")));
    let b_identity = config_value(
        &lab.b,
        &lab.b.repo,
        &format!("remote.{}.pair-identity", p.remote_on_b),
    );
    let b_key = fingerprint(&lab.b, &PathBuf::from(format!("{b_identity}.pub")));
    assert_eq!(
        entry["peer_key"],
        b_key.as_str(),
        "ssh-keygen's fingerprint"
    );
    let host_key = fingerprint(&lab.b, &lab.b.host_key_pub);
    assert_eq!(entry["host_keys"], serde_json::json!([host_key]));
    let human = expect_ok(&lab, git_pair_in(&lab.a, &lab.a.repo, &["list"]));
    for needle in [p.remote_on_a.as_str(), "sshd answers", &b_key, &host_key] {
        assert!(human.stdout_str().contains(needle), "{needle}\n{human}");
    }

    // A can fetch; B removes the pairing; A cannot any more.
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["fetch", &p.remote_on_a]),
    );
    let removed = expect_ok(
        &lab,
        git_pair_in(&lab.b, &lab.b.repo, &["remove", &p.remote_on_b]),
    );
    let refused = git_in(&lab.a, &lab.a.repo, &["fetch", &p.remote_on_a]);
    assert!(!refused.success(), "A's key must be refused now\n{refused}");
    assert!(
        refused.stderr_str().contains("Permission denied"),
        "sshd must refuse the key\n{refused}"
    );

    assert_eq!(
        host::read_file(&lab.b.home.join(".ssh/authorized_keys")).unwrap(),
        seeded,
        "every other authorized_keys line is kept byte for byte\n{removed}"
    );
    assert_eq!(
        host::read_file(&lab.b.home.join(".ssh/config")).unwrap(),
        ssh_config,
        "with the last pairing gone, ~/.ssh/config is as it was\n{removed}"
    );
    assert!(pair_aliases(&lab.b).is_empty(), "{removed}");
    assert!(key_files(&lab.b).is_empty(), "{:?}", key_files(&lab.b));
    let kh = host::read_file(&lab.b.home.join(".ssh/git-pair/known_hosts")).unwrap_or_default();
    assert!(kh.is_empty(), "{}", String::from_utf8_lossy(&kh));
    assert!(paired_remotes(&lab.b, &lab.b.repo).is_empty());
    let remotes = lab.b.git(&["remote"]);
    assert!(!remotes.contains(&p.remote_on_b), "{remotes}");
    assert!(list_json(&lab, &lab.b, &lab.b.repo).is_empty());
    // It says what it did to each file: authorized_keys and the configs were updated, the
    // pairing's key files deleted.
    let said = removed.stderr_str();
    let home = lab.b.home.display().to_string();
    assert!(
        said.contains(&format!("updated {home}/.ssh/authorized_keys")),
        "{said}"
    );
    assert!(
        said.contains(&format!("deleted {home}/.ssh/git-pair/id_")),
        "{said}"
    );
    assert!(!said.contains("updated or deleted"), "{said}");

    let again = git_pair_in(&lab.b, &lab.b.repo, &["remove", &p.remote_on_b]);
    assert_eq!(
        again.code(),
        Some(exit::OK),
        "removal is idempotent\n{again}"
    );
    assert!(again.stderr_str().contains("nothing to remove"), "{again}");
    // A's own side is untouched, and its sshd still lets nobody else in.
    assert_eq!(
        paired_remotes(&lab.a, &lab.a.repo),
        std::slice::from_ref(&p.remote_on_a)
    );
}

/// Someone deletes the remote by hand: `git pair list` shows the rest as orphaned, and `git
/// pair remove` with the old remote name removes it, after which the peer is locked out.
pub fn a_half_removed_pairing_is_listed_and_cleaned_up() {
    let lab = Lab::new(Network::DualStack);
    let p = pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();
    lab.a.git(&["remote", "remove", &p.remote_on_a]);
    let listed = list_json(&lab, &lab.a, &lab.a.repo);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["orphaned"], true);
    assert_eq!(listed[0]["name"], p.remote_on_a.as_str());

    expect_ok(
        &lab,
        git_in(&lab.b, &lab.b.repo, &["fetch", &p.remote_on_b]),
    );
    expect_ok(
        &lab,
        git_pair_in(&lab.a, &lab.a.repo, &["remove", &p.remote_on_a]),
    );
    let refused = git_in(&lab.b, &lab.b.repo, &["fetch", &p.remote_on_b]);
    assert!(!refused.success(), "B's key must be refused now\n{refused}");
    assert!(git_pair_lines(&lab.a).is_empty());
    assert!(pair_aliases(&lab.a).is_empty());
    assert!(key_files(&lab.a).is_empty());
    assert!(list_json(&lab, &lab.a, &lab.a.repo).is_empty());
    let again = git_pair_in(&lab.a, &lab.a.repo, &["remove", &p.remote_on_a]);
    assert_eq!(again.code(), Some(exit::OK), "{again}");
}

/// Pairing the same two repositories again leaves one remote (same name, remote-tracking
/// branches kept), one authorized_keys line, one alias, one key, and it works.
pub fn repairing_replaces_the_old_pairing() {
    let lab = Lab::new(Network::DualStack);
    let first = pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["fetch", &first.remote_on_a]),
    );
    let tracking = format!("refs/remotes/{}/main", first.remote_on_a);
    let old_alias = lab.a.remote(&first.remote_on_a).alias;

    let second = pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();
    assert_eq!(
        second.remote_on_a, first.remote_on_a,
        "the remote keeps its name"
    );
    assert_eq!(second.remote_on_b, first.remote_on_b);
    for (host, remote) in [(&lab.a, &second.remote_on_a), (&lab.b, &second.remote_on_b)] {
        assert_eq!(
            paired_remotes(host, &host.repo),
            std::slice::from_ref(remote)
        );
        assert_eq!(git_pair_lines(host).len(), 1, "{:?}", git_pair_lines(host));
        let aliases = pair_aliases(host);
        assert_eq!(
            aliases,
            [host.remote(remote).alias],
            "one alias, the new one"
        );
        assert_eq!(
            key_files(host).len(),
            2,
            "one key pair: {:?}",
            key_files(host)
        );
        let kh = host::read_file(&host.home.join(".ssh/git-pair/known_hosts")).unwrap();
        let kh = String::from_utf8_lossy(&kh);
        assert_eq!(kh.lines().count(), 1, "only the new alias's host key\n{kh}");
    }
    assert_ne!(lab.a.remote(&second.remote_on_a).alias, old_alias);
    assert!(
        !lab.a.rev_parse(&tracking).is_empty(),
        "remote-tracking branch kept"
    );
    let pushed = lab.a.commit("after-repair.txt", "x\n");
    expect_ok(
        &lab,
        git_in(
            &lab.a,
            &lab.a.repo,
            &["push", &second.remote_on_a, "HEAD:refs/heads/r"],
        ),
    );
    assert_eq!(lab.b.rev_parse("refs/heads/r"), pushed);
    expect_ok(
        &lab,
        git_in(&lab.b, &lab.b.repo, &["fetch", &second.remote_on_b]),
    );
}

/// A's `project` pairs with B's `project` and B's `second`; then A's `second` pairs with B's
/// `project`. Every remote reaches exactly its own repository: in particular B's two remotes
/// for A's two repositories, which git-annex once got wrong by reusing the first key.
pub fn several_peers_and_several_repositories_on_one_host() {
    let lab = Lab::new(Network::DualStack);
    let a2 = lab.a.home.join("second");
    let b2 = lab.b.home.join("second");
    lab.a.init_repo(&a2);
    lab.b.init_repo(&b2);
    let in_repo = |dir: &Path| PairOpts::default().in_repo(dir);

    let ab = pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();
    let ab2 = pair(&lab, &PairOpts::default(), &in_repo(&b2)).expect_paired();
    let a2b = pair(&lab, &in_repo(&a2), &PairOpts::default()).expect_paired();
    assert_ne!(
        ab.remote_on_a, ab2.remote_on_a,
        "two remotes in A's project"
    );
    assert_ne!(
        ab.remote_on_b, a2b.remote_on_b,
        "two remotes in B's project"
    );
    assert_eq!(git_pair_lines(&lab.a).len(), 3);
    assert_eq!(git_pair_lines(&lab.b).len(), 3);

    // Each repository says who it is in a commit of its own.
    let heads: Vec<(&Host, PathBuf, String)> = [
        (&lab.a, lab.a.repo.clone()),
        (&lab.a, a2.clone()),
        (&lab.b, lab.b.repo.clone()),
        (&lab.b, b2.clone()),
    ]
    .into_iter()
    .map(|(h, dir)| {
        let name = format!("{}:{}", h.hostname, dir.display());
        std::fs::write(dir.join("who"), &name).unwrap();
        let out = h
            .cmd("sh")
            .args([
                "-c",
                "git add who && git commit -qm who && git rev-parse HEAD",
            ])
            .cwd(&dir)
            .run_ok();
        (h, dir, out.stdout_str().trim().to_owned())
    })
    .collect();
    let head_of = |host: &Host, dir: &Path| {
        heads
            .iter()
            .find(|(h, d, _)| h.hostname == host.hostname && d == dir)
            .map(|(_, _, head)| head.clone())
            .unwrap()
    };
    let checks = [
        (
            &lab.a,
            lab.a.repo.clone(),
            ab.remote_on_a.clone(),
            &lab.b,
            lab.b.repo.clone(),
        ),
        (
            &lab.a,
            lab.a.repo.clone(),
            ab2.remote_on_a.clone(),
            &lab.b,
            b2.clone(),
        ),
        (
            &lab.a,
            a2.clone(),
            a2b.remote_on_a.clone(),
            &lab.b,
            lab.b.repo.clone(),
        ),
        (
            &lab.b,
            lab.b.repo.clone(),
            ab.remote_on_b.clone(),
            &lab.a,
            lab.a.repo.clone(),
        ),
        (
            &lab.b,
            b2.clone(),
            ab2.remote_on_b.clone(),
            &lab.a,
            lab.a.repo.clone(),
        ),
        (
            &lab.b,
            lab.b.repo.clone(),
            a2b.remote_on_b.clone(),
            &lab.a,
            a2.clone(),
        ),
    ];
    for (host, dir, remote, peer, peer_dir) in checks {
        let out = expect_ok(
            &lab,
            git_in(host, &dir, &["ls-remote", &remote, "refs/heads/main"]),
        );
        let want = head_of(peer, &peer_dir);
        assert!(
            out.stdout_str().starts_with(&want),
            "remote {remote} of {}:{} must reach {}:{} ({want})\n{out}",
            host.hostname,
            dir.display(),
            peer.hostname,
            peer_dir.display()
        );
    }
}

/// A peer that logs in with `--key` already paired with another repository here is refused
/// on both sides before anything is written, with a message that says what to do.
pub fn a_key_already_paired_with_another_repository_is_refused() {
    let lab = Lab::new(Network::DualStack);
    let key = lab.b.home.join(".ssh/id_ed25519");
    lab.b
        .cmd("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .run_ok();
    let a2 = lab.a.home.join("second");
    lab.a.init_repo(&a2);
    let with_key = || PairOpts::default().arg("--key").arg(key.to_string_lossy());
    pair(&lab, &PairOpts::default(), &with_key()).expect_paired();
    let before = host::read_file(&lab.a.home.join(".ssh/authorized_keys"));
    let run = pair(&lab, &PairOpts::timeout(10).in_repo(&a2), &with_key());
    assert_eq!(run.a.code(), Some(exit::SETUP_FAILED), "{run}");
    assert_eq!(run.b.code(), Some(exit::SETUP_FAILED), "{run}");
    assert!(
        run.a
            .stderr_str()
            .contains("one key can open only one repository"),
        "{run}"
    );
    assert!(run.b.stderr_str().contains("pair without --key"), "{run}");
    assert_eq!(
        host::read_file(&lab.a.home.join(".ssh/authorized_keys")),
        before
    );
    assert!(paired_remotes(&lab.a, &a2).is_empty());
}

/// A bare repository pairs (documented as supported): the peer pushes into it and fetches.
pub fn a_bare_repository_pairs_and_takes_a_push() {
    let lab = Lab::new(Network::DualStack);
    let bare = lab.b.home.join("store.git");
    lab.b
        .cmd("git")
        .args(["clone", "-q", "--bare"])
        .arg(&lab.b.repo)
        .arg(&bare)
        .cwd(&lab.b.home)
        .run_ok();
    let p = pair(
        &lab,
        &PairOpts::default(),
        &PairOpts::default().in_repo(&bare),
    )
    .expect_paired();
    assert!(lab.a.remote(&p.remote_on_a).path.ends_with("store.git"));
    let pushed = lab.a.commit("to-bare.txt", "x\n");
    expect_ok(
        &lab,
        git_in(
            &lab.a,
            &lab.a.repo,
            &["push", &p.remote_on_a, "HEAD:refs/heads/from-a"],
        ),
    );
    let got = lab
        .b
        .cmd("git")
        .args(["rev-parse", "refs/heads/from-a"])
        .cwd(&bare)
        .run_ok();
    assert_eq!(got.stdout_str().trim(), pushed);
    expect_ok(&lab, git_in(&lab.b, &bare, &["fetch", &p.remote_on_b]));
}

/// An unwritable ~/.ssh (a real user, so permissions apply) stops git pair before the network
/// with exit 5 and a message naming the directory; nothing is written.
pub fn an_unwritable_ssh_dir_is_refused_before_anything_happens() {
    let lab = Lab::new(Network::DualStack);
    let ssh = lab.b.home.join(".ssh");
    lab.b
        .write_user_file(&ssh.join("authorized_keys"), b"", 0o600);
    host::set_mode(&ssh, 0o500);
    let before = super::snapshot(&lab.b);
    let out = lab
        .b
        .git_pair(Some("7-guitar-orbit-velvet"), &PairOpts::timeout(5))
        .run();
    host::set_mode(&ssh, 0o700);
    assert_eq!(out.code(), Some(exit::SETUP_FAILED), "{out}");
    let said = out.stderr_str();
    assert!(
        said.contains(".ssh") && said.contains("not writable"),
        "the message must name ~/.ssh and the problem\n{out}"
    );
    assert!(
        !super::support::gitpair::event_names(&super::support::gitpair::events(&out))
            .iter()
            .any(|n| n == "listening"),
        "it must stop before the network\n{out}"
    );
    assert!(super::snapshot(&lab.b) == before);
}

/// The `remote` event of a run, for its replacement fields.
fn remote_event(out: &Output) -> Value {
    super::support::gitpair::events(out)
        .into_iter()
        .find(|e| e["event"] == "remote")
        .unwrap_or_else(|| panic!("no remote event\n{out}"))
}

/// Issue 8, item 3: a peer that claims an earlier pairing's `user@host:path` but whose sshd
/// presents another host key (here B's second sshd, with a key made now) and that does not hold
/// that pairing's pair secret gets a new pairing of its own name on A, said plainly; A's earlier pairing is untouched and still works. The peer
/// that does prove it (A, whose sshd is the same, seen from B) replaces in place. A logs in
/// with `--key` both times, as in the issue's repro, so that B's in-place update keeps A's old
/// pairing working.
pub fn a_peer_whose_sshd_cannot_prove_an_earlier_pairing_gets_a_new_one() {
    let lab = Lab::new(Network::DualStack);
    let key = lab.a.home.join(".ssh/id_ed25519");
    lab.a
        .cmd("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .run_ok();
    let with_key = || PairOpts::default().arg("--key").arg(key.to_string_lossy());
    let first = pair(&lab, &with_key(), &PairOpts::default()).expect_paired();
    let old = lab.a.remote(&first.remote_on_a);
    let files = |h: &Host| {
        [
            ".ssh/git-pair/config",
            ".ssh/git-pair/known_hosts",
            ".ssh/authorized_keys",
        ]
        .map(|f| host::read_file(&h.home.join(f)).unwrap_or_default())
    };
    let a_before = files(&lab.a);
    let old_config: Vec<String> = ["url", "pair-alias", "pair-host-keys", "pair-address"]
        .iter()
        .map(|k| {
            config_value(
                &lab.a,
                &lab.a.repo,
                &format!("remote.{}.{k}", first.remote_on_a),
            )
        })
        .collect();

    // B without its pair secret of the first pairing stands for a machine that claims B's
    // user@host:path but holds neither B's host key nor that pairing's secret (the secret is
    // the other proof, see `a_re_pair_proven_by_the_pair_secret_replaces_in_place`).
    for entry in std::fs::read_dir(lab.b.home.join(".ssh/git-pair")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("secret_"))
        {
            std::fs::remove_file(path).unwrap();
        }
    }
    let extra = lab.b.start_extra_sshd("ssh_host_ed25519_key_new", 2222);
    let run = pair(
        &lab,
        &with_key(),
        &PairOpts::default().sshd(2222, &extra.host_key_pub),
    );
    let second = run.expect_paired();
    // A: a new pairing, beside the old one, said plainly to people and programs.
    assert_ne!(second.remote_on_a, first.remote_on_a, "{run}");
    let said = run.a.stderr_str();
    assert!(
        said.contains("did not prove it")
            && said.contains(&format!("{} stays as it was", first.remote_on_a)),
        "{run}"
    );
    let event = remote_event(&run.a);
    assert_eq!(
        event["not_replaced"]["remotes"],
        serde_json::json!([first.remote_on_a]),
        "{run}"
    );
    assert!(event["replaced"].is_null(), "{run}");
    let remotes = paired_remotes(&lab.a, &lab.a.repo);
    assert!(
        remotes.contains(&first.remote_on_a) && remotes.contains(&second.remote_on_a),
        "{remotes:?}"
    );
    // The old pairing's settings, Host block and pinned key are as they were.
    for (k, was) in ["url", "pair-alias", "pair-host-keys", "pair-address"]
        .iter()
        .zip(&old_config)
    {
        let now = config_value(
            &lab.a,
            &lab.a.repo,
            &format!("remote.{}.{k}", first.remote_on_a),
        );
        assert_eq!(&now, was, "remote.{}.{k}", first.remote_on_a);
    }
    let a_after = files(&lab.a);
    let pair_config = String::from_utf8_lossy(&a_after[0]);
    let block = |bytes: &[u8], alias: &str| -> String {
        String::from_utf8_lossy(bytes)
            .split("\nHost ")
            .find(|b| b.starts_with(alias) || b.starts_with(&format!("Host {alias}")))
            .unwrap_or_default()
            .trim_end()
            .to_owned()
    };
    assert_eq!(
        block(&a_before[0], &old.alias),
        block(&a_after[0], &old.alias),
        "{pair_config}"
    );
    let pinned = |bytes: &[u8], alias: &str| -> Vec<String> {
        String::from_utf8_lossy(bytes)
            .lines()
            .filter(|l| l.starts_with(&format!("{alias} ")))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        pinned(&a_before[1], &old.alias),
        pinned(&a_after[1], &old.alias)
    );
    // Every authorized_keys line A had is still there.
    let before_lines: Vec<&[u8]> = a_before[2].split(|b| *b == b'\n').collect();
    for line in &before_lines {
        assert!(
            a_after[2].split(|b| *b == b'\n').any(|l| l == *line),
            "line lost: {}",
            String::from_utf8_lossy(line)
        );
    }
    // Both of A's remotes work: the old one reaches B's first sshd, the new one the second.
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["fetch", &first.remote_on_a]),
    );
    expect_ok(
        &lab,
        git_in(&lab.a, &lab.a.repo, &["fetch", &second.remote_on_a]),
    );
    assert!(lab.a.remote(&second.remote_on_a).alias != old.alias);

    // B: A proved it is the same (its sshd kept its key): replaced in place, said so.
    assert_eq!(second.remote_on_b, first.remote_on_b, "{run}");
    let event = remote_event(&run.b);
    assert_eq!(event["replaced"], first.remote_on_b.as_str(), "{run}");
    assert!(
        run.b
            .stderr_str()
            .contains("this replaces the earlier pairing"),
        "{run}"
    );
    assert_eq!(
        paired_remotes(&lab.b, &lab.b.repo),
        std::slice::from_ref(&first.remote_on_b)
    );
    assert_eq!(
        git_pair_lines(&lab.b).len(),
        1,
        "{:?}",
        git_pair_lines(&lab.b)
    );
    expect_ok(
        &lab,
        git_in(&lab.b, &lab.b.repo, &["fetch", &first.remote_on_b]),
    );
    drop(extra);
}

/// Issue 8, item 4: the peer's key (`--key`) is already in authorized_keys on a line git pair
/// did not write (here the user's own unrestricted line). Both sides refuse before anything is
/// written, A naming the line and what to do; the line stays, byte for byte.
pub fn a_key_already_authorized_by_hand_is_refused_on_both_sides() {
    let lab = Lab::new(Network::DualStack);
    let key = lab.b.home.join(".ssh/id_ed25519");
    lab.b
        .cmd("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .run_ok();
    let public = host::read_file(&key.with_extension("pub")).unwrap();
    let mut keys = b"# my own keys\n".to_vec();
    keys.extend_from_slice(&public);
    lab.a
        .write_user_file(&lab.a.home.join(".ssh/authorized_keys"), &keys, 0o600);
    let before = (super::snapshot(&lab.a), super::snapshot(&lab.b));
    let run = pair(
        &lab,
        &PairOpts::timeout(10),
        &PairOpts::timeout(10)
            .arg("--key")
            .arg(key.to_string_lossy()),
    );
    assert_eq!(run.a.code(), Some(exit::SETUP_FAILED), "{run}");
    assert_eq!(run.b.code(), Some(exit::SETUP_FAILED), "{run}");
    let said = run.a.stderr_str();
    assert!(
        said.contains("line 2 of")
            && said.contains("git pair did not write that line")
            && said.contains("without --key"),
        "{run}"
    );
    assert!(run.b.stderr_str().contains("pair without --key"), "{run}");
    assert!(
        super::snapshot(&lab.a) == before.0,
        "A wrote something\n{run}"
    );
    assert!(
        super::snapshot(&lab.b) == before.1,
        "B wrote something\n{run}"
    );
    assert_eq!(
        host::read_file(&lab.a.home.join(".ssh/authorized_keys")).unwrap(),
        keys
    );
    // The user's own access with that key is still theirs.
    let out = lab
        .b
        .cmd("ssh")
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no"])
        .args(["-o", "UserKnownHostsFile=/dev/null", "-i"])
        .arg(&key)
        .arg(format!("{}@{}", lab.a.user, lab.a.addr_from(&lab.b)))
        .arg("echo still mine")
        .run();
    assert_eq!(out.stdout_str(), "still mine\n", "{out}");
}
