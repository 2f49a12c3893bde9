//! End-to-end tests of crashes and concurrency.
//!
//! **SIGKILL at every system call of the setup phase.** The joining side (B) runs under
//! `strace`, which kills it (`-e inject=NAME:signal=KILL:when=N`) on entering the N-th call of
//! one system call NAME: a precise, repeatable moment, with no test code in git-pair. A dry run
//! under strace lists every system call of B's main thread from the first `mkdir` of its setup
//! (creating `~/.ssh`) to the `remote` event that follows the commit; each of them, as
//! (NAME, N), is one kill point. The points are the same run after run (the dry run is made
//! twice and only points both runs agree on are kept; calls whose count depends on the network,
//! such as `poll`, are left out). After each kill, B runs `git pair list` (the next run of git
//! pair, which must finish or undo the interrupted setup), and then each of authorized_keys,
//! `~/.ssh/config`, git pair's own files under `~/.ssh/git-pair/` and `.git/config` must be
//! either exactly as before (bytes and modes) or exactly as after a complete pairing (compared
//! with a reference pairing made from the same state, with the run's new alias, keys,
//! fingerprints and times replaced by placeholders), all of them the same one; no temporary
//! file, journal, `config.lock` or private key without its `.pub` may be left.
//!
//! Three starting states: a fresh user (no `~/.ssh`), a lived-in one (its own authorized_keys
//! and ssh config lines, and an earlier pairing with another repository), and a re-pairing of
//! the same two repositories (which replaces the old alias, key files and authorized_keys line).
//!
//! **Concurrent runs** of one user: two repositories paired at once, and two pairings of one
//! repository at once. strace delays B's renames (`delay_enter`) so that one run holds the lock
//! while the other reaches its setup.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use regex::bytes::Regex;

use super::support::gitpair::{self, start_with_code, PairOpts};
use super::support::host::{self, Host};
use super::support::lab::{Lab, Network};
use super::support::process::Output;

/// System calls whose count depends on timing, the network or the allocator: never used as kill
/// points, since the N-th of them is not the same moment from one run to the next. (`read` is
/// among them: the exchange polls the Ctrl-C pipe with it; the `openat` and `close` around each
/// file read are kill points.)
const VOLATILE: &[&str] = &[
    "read",
    "brk",
    "mmap",
    "munmap",
    "mprotect",
    "madvise",
    "mremap",
    "poll",
    "ppoll",
    "epoll_wait",
    "epoll_pwait",
    "select",
    "pselect6",
    "recvfrom",
    "recvmsg",
    "sendto",
    "sendmsg",
    "futex",
    "clock_nanosleep",
    "nanosleep",
    "sched_yield",
    "rt_sigtimedwait",
];

/// How long one kill run may take before it counts as hung.
const RUN_LIMIT: Duration = Duration::from_secs(30);

/// One moment of B's setup: on entering the `nth` call of `syscall` (counted from the start of
/// the process, in its main thread).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    syscall: String,
    nth: u32,
    /// The call as the dry run saw it (shortened), for messages.
    seen: String,
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{} ({})", self.syscall, self.nth, self.seen)
    }
}

/// A strace log's kill points (every call from the first `mkdir` to the write of the `remote`
/// or `paired` event), and how many calls of each name came before that window.
fn window(log: &str) -> (Vec<Point>, BTreeMap<String, u32>) {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut before = BTreeMap::new();
    let mut points = Vec::new();
    let mut inside = false;
    for line in log.lines() {
        let Some(open) = line.find('(') else { continue };
        let name = &line[..open];
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            continue;
        }
        if name == "mkdir" && !inside {
            inside = true;
            before = counts.clone();
        }
        let n = counts.entry(name.to_owned()).or_default();
        *n += 1;
        if !inside {
            continue;
        }
        let event = |e: &str| line.contains(&format!("\\\"event\\\":\\\"{e}\\\""));
        if name == "write" && (event("remote") || event("paired")) {
            break;
        }
        if VOLATILE.contains(&name) {
            continue;
        }
        points.push(Point {
            syscall: name.to_owned(),
            nth: *n,
            seen: line.chars().take(110).collect(),
        });
    }
    (points, before)
}

// ---------------------------------------------------------------------------------------------
// Snapshots of a host's files.

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir(u32),
    File(Vec<u8>, u32),
}

/// `~/.ssh` (every directory and file, by path relative to the home) and the repository's
/// `.git` top level (files only: config and whatever a crash may leave beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snap {
    ssh: BTreeMap<PathBuf, Node>,
    git: BTreeMap<PathBuf, Node>,
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, Node>) {
    let dir = root.join(rel);
    let Ok(entries) = fs::read_dir(&dir) else {
        return;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let rel = rel.join(entry.file_name());
        let meta = fs::symlink_metadata(root.join(&rel)).unwrap();
        if meta.is_dir() {
            out.insert(rel.clone(), Node::Dir(mode_of(&meta)));
            walk(root, &rel, out);
        } else {
            let bytes = fs::read(root.join(&rel)).unwrap();
            out.insert(rel, Node::File(bytes, mode_of(&meta)));
        }
    }
}

fn capture(h: &Host) -> Snap {
    let mut ssh = BTreeMap::new();
    let root = h.home.join(".ssh");
    if let Ok(meta) = fs::metadata(&root) {
        ssh.insert(PathBuf::from(".ssh"), Node::Dir(mode_of(&meta)));
        walk(&h.home, Path::new(".ssh"), &mut ssh);
    }
    let mut git = BTreeMap::new();
    let dot_git = h.repo.join(".git");
    for entry in fs::read_dir(&dot_git).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_file() {
            let bytes = fs::read(entry.path()).unwrap();
            git.insert(
                PathBuf::from(entry.file_name()),
                Node::File(bytes, mode_of(&meta)),
            );
        }
    }
    Snap { ssh, git }
}

/// Puts a host's `~/.ssh` and `.git` top-level files back as `snap` has them (as root, given to
/// the host's user).
fn restore(h: &Host, snap: &Snap) {
    let root = h.home.join(".ssh");
    if root.exists() {
        fs::remove_dir_all(&root).unwrap();
    }
    for (rel, node) in &snap.ssh {
        let path = h.home.join(rel);
        match node {
            Node::Dir(_) => fs::create_dir(&path).unwrap(),
            Node::File(bytes, _) => fs::write(&path, bytes).unwrap(),
        }
        let mode = match node {
            Node::Dir(m) | Node::File(_, m) => *m,
        };
        chown(&path, Some(h.uid), Some(h.gid)).unwrap();
        host::set_mode(&path, mode);
    }
    let dot_git = h.repo.join(".git");
    for entry in fs::read_dir(&dot_git).unwrap() {
        let entry = entry.unwrap();
        let name = PathBuf::from(entry.file_name());
        if entry.metadata().unwrap().is_file() && !snap.git.contains_key(&name) {
            fs::remove_file(entry.path()).unwrap();
        }
    }
    for (name, node) in &snap.git {
        if let Node::File(bytes, mode) = node {
            let path = dot_git.join(name);
            if fs::read(&path).ok().as_ref() != Some(bytes) {
                let tmp = dot_git.join(".restore.tmp");
                fs::write(&tmp, bytes).unwrap();
                chown(&tmp, Some(h.uid), Some(h.gid)).unwrap();
                host::set_mode(&tmp, *mode);
                fs::rename(&tmp, &path).unwrap();
            }
            host::set_mode(&path, *mode);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Judging a state: as before, as after a complete pairing, or torn.

/// The four parts the issue names.
const PARTS: [&str; 4] = [
    "authorized_keys",
    "~/.ssh/config",
    "~/.ssh/git-pair/",
    ".git/config",
];

/// Files a crash may leave that must never survive the next run: temporary files of atomic
/// writes, git's config lock, git pair's journal.
fn is_leftover(name: &str) -> bool {
    (name.contains(".git-pair-") && name.ends_with(".tmp"))
        || name == "config.lock"
        || name.starts_with("journal")
}

/// The files of one part, by path: `None` for a part whose file does not exist.
fn part(snap: &Snap, which: &str) -> BTreeMap<PathBuf, (Vec<u8>, u32)> {
    let file = |node: &Node| match node {
        Node::File(b, m) => Some((b.clone(), *m)),
        Node::Dir(_) => None,
    };
    let ssh = |rel: &str| {
        snap.ssh
            .get(Path::new(rel))
            .and_then(file)
            .map(|f| (PathBuf::from(rel), f))
    };
    match which {
        "authorized_keys" => ssh(".ssh/authorized_keys").into_iter().collect(),
        "~/.ssh/config" => ssh(".ssh/config").into_iter().collect(),
        "~/.ssh/git-pair/" => snap
            .ssh
            .iter()
            .filter(|(rel, _)| rel.starts_with(".ssh/git-pair"))
            .filter(|(rel, _)| {
                let name = rel.file_name().unwrap().to_string_lossy();
                name != ".lock" && !is_leftover(&name)
            })
            .filter_map(|(rel, node)| file(node).map(|f| (rel.clone(), f)))
            .collect(),
        ".git/config" => snap
            .git
            .get(Path::new("config"))
            .and_then(file)
            .map(|f| (PathBuf::from(".git/config"), f))
            .into_iter()
            .collect(),
        _ => unreachable!(),
    }
}

/// Replaces what differs from one pairing to the next (aliases, keys, fingerprints, times)
/// with placeholders, unless `before` already holds that very string: an earlier pairing's
/// values stay as they are, so that "the old alias kept" never looks like "the new alias added".
struct Normalizer {
    patterns: Vec<(Regex, &'static [u8])>,
    known: BTreeSet<Vec<u8>>,
}

impl Normalizer {
    fn new(before: &Snap) -> Normalizer {
        let patterns =
            vec![
            (
                Regex::new(
                    r"(?s)-----BEGIN OPENSSH PRIVATE KEY-----.*?-----END OPENSSH PRIVATE KEY-----",
                )
                .unwrap(),
                &b"<private key>"[..],
            ),
            (
                Regex::new(r"git-pair-[a-z0-9-]+-[0-9a-f]{8}").unwrap(),
                &b"<alias>"[..],
            ),
            (
                Regex::new(r"AAAA[A-Za-z0-9+/]{40,}={0,2}").unwrap(),
                &b"<key>"[..],
            ),
            (
                Regex::new(r"SHA256:[A-Za-z0-9+/]{43}").unwrap(),
                &b"<fingerprint>"[..],
            ),
            (
                Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").unwrap(),
                &b"<time>"[..],
            ),
            // The pair secret file: the secret, and which side of the session this one was.
            (
                Regex::new(r"(?m)^secret [A-Za-z0-9+/]{43}=$").unwrap(),
                &b"<secret>"[..],
            ),
            (Regex::new(r"(?m)^role (low|high)$").unwrap(), &b"<role>"[..]),
            // The pairing's marker (drawn at random), in authorized_keys and its Host block.
            (Regex::new(r"\b[0-9a-f]{16}\b").unwrap(), &b"<marker>"[..]),
            // Which of the peer's addresses (IPv4, or IPv6 link-local) a run verified first.
            (Regex::new(r"HostName [^\n]*").unwrap(), &b"<hostname>"[..]),
            (Regex::new(r"pair-address = [^\n]*").unwrap(), &b"<address>"[..]),
        ];
        // Never known: the reference pairing may well be made in the same second as the
        // earlier one, and take the same role.
        let known_exempt = [
            b"<time>".as_slice(),
            b"<role>".as_slice(),
            b"<hostname>".as_slice(),
            b"<address>".as_slice(),
        ];
        let mut n = Normalizer {
            patterns,
            known: BTreeSet::new(),
        };
        let mut texts: Vec<Vec<u8>> = Vec::new();
        for (rel, node) in before.ssh.iter().chain(&before.git) {
            texts.push(rel.to_string_lossy().as_bytes().to_vec());
            if let Node::File(bytes, _) = node {
                texts.push(bytes.clone());
            }
        }
        for text in texts {
            for (re, placeholder) in &n.patterns {
                if known_exempt.contains(placeholder) {
                    continue;
                }
                for m in re.find_iter(&text) {
                    n.known.insert(m.as_bytes().to_vec());
                }
            }
        }
        n
    }

    fn apply(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (re, placeholder) in &self.patterns {
            out = re
                .replace_all(&out, |c: &regex::bytes::Captures| {
                    let m = c.get(0).unwrap().as_bytes();
                    if self.known.contains(m) {
                        m.to_vec()
                    } else {
                        placeholder.to_vec()
                    }
                })
                .into_owned();
        }
        out
    }

    fn part(&self, snap: &Snap, which: &str) -> BTreeMap<Vec<u8>, (Vec<u8>, u32)> {
        part(snap, which)
            .into_iter()
            .map(|(rel, (bytes, mode))| {
                (
                    self.apply(rel.to_string_lossy().as_bytes()),
                    (self.apply(&bytes), mode),
                )
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Before,
    Paired,
    Torn,
}

/// What one kill left, after the next run.
struct Judged {
    verdict: Verdict,
    /// Per part: (as before, as paired).
    parts: Vec<(&'static str, bool, bool)>,
    leftovers: Vec<String>,
}

impl fmt::Display for Judged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}:", self.verdict)?;
        for (name, before, paired) in &self.parts {
            let state = match (before, paired) {
                (true, true) => "unchanged (same either way)",
                (true, false) => "as before",
                (false, true) => "paired",
                (false, false) => "TORN",
            };
            write!(f, " {name} {state};")?;
        }
        if !self.leftovers.is_empty() {
            write!(f, " left behind: {}", self.leftovers.join(", "))?;
        }
        Ok(())
    }
}

fn judge(before: &Snap, reference: &Snap, now: &Snap) -> Judged {
    let norm = Normalizer::new(before);
    let mut parts = Vec::new();
    for which in PARTS {
        let is_before = part(now, which) == part(before, which);
        let is_paired = norm.part(now, which) == norm.part(reference, which);
        parts.push((which, is_before, is_paired));
    }
    let mut leftovers: Vec<String> = now
        .ssh
        .keys()
        .chain(now.git.keys())
        .filter(|rel| is_leftover(&rel.file_name().unwrap().to_string_lossy()))
        .map(|rel| rel.display().to_string())
        .collect();
    // A private key without its .pub.
    for rel in now.ssh.keys() {
        let name = rel.file_name().unwrap().to_string_lossy();
        if name.starts_with("id_") && !name.ends_with(".pub") {
            let public = rel.with_file_name(format!("{name}.pub"));
            if !now.ssh.contains_key(&public) {
                leftovers.push(format!("{} (no .pub)", rel.display()));
            }
        }
    }
    let all_before = parts.iter().all(|p| p.1);
    let all_paired = parts.iter().all(|p| p.2);
    let verdict = if !leftovers.is_empty() {
        Verdict::Torn
    } else if all_before {
        Verdict::Before
    } else if all_paired {
        Verdict::Paired
    } else {
        Verdict::Torn
    };
    Judged {
        verdict,
        parts,
        leftovers,
    }
}

/// A human diff of two snapshots' changed files (for failure messages).
fn diff(before: &Snap, now: &Snap) -> String {
    let mut out = String::new();
    let show = |b: &[u8]| String::from_utf8_lossy(b).replace('\n', "\n      ");
    for (map_b, map_n) in [(&before.ssh, &now.ssh), (&before.git, &now.git)] {
        let keys: BTreeSet<&PathBuf> = map_b.keys().chain(map_n.keys()).collect();
        for k in keys {
            match (map_b.get(k), map_n.get(k)) {
                (a, b) if a == b => {}
                (_, Some(Node::File(bytes, mode))) => {
                    let _ = writeln!(out, "  {} ({mode:o}):\n      {}", k.display(), show(bytes));
                }
                (_, Some(Node::Dir(mode))) => {
                    let _ = writeln!(out, "  {}/ ({mode:o})", k.display());
                }
                (_, None) => {
                    let _ = writeln!(out, "  {}: gone", k.display());
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Running B under strace.

/// A directory every test user may write to: strace logs.
fn log_dir(lab: &Lab) -> PathBuf {
    let dir = lab.dir.join("strace");
    if !dir.exists() {
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777)).unwrap();
    }
    dir
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

/// A pairing: A (in `a_repo`) shows a code, B (in `b_repo`) joins under `wrapper`. Both are
/// waited for; returns (A, B).
fn pair_under(
    lab: &Lab,
    a_opts: &PairOpts,
    b_opts: &PairOpts,
    wrapper: &[String],
) -> (Output, Output) {
    let (a, code) = start_with_code(&lab.a, a_opts);
    let b = lab
        .b
        .git_pair_under(wrapper, Some(&code), b_opts)
        .spawn()
        .wait(b_opts.wait_limit());
    (a.wait(a_opts.wait_limit()), b)
}

/// A successful pairing with B traced in full: its kill points (see [`window`]).
fn dry_run(lab: &Lab, log: &Path, b_opts: &PairOpts) -> (Vec<Point>, BTreeMap<String, u32>) {
    let mut wrapper = strings(&["strace", "-qq", "-s", "96", "-o"]);
    wrapper.push(log.display().to_string());
    wrapper.push("--".to_owned());
    let (a, b) = pair_under(lab, &PairOpts::default(), b_opts, &wrapper);
    assert!(
        a.success() && b.success(),
        "the dry run must pair\n{a}\n{b}"
    );
    window(&fs::read_to_string(log).unwrap())
}

struct Kill {
    point: Point,
    /// B was killed by SIGKILL at that point (not: exited by itself before reaching it).
    killed: bool,
    judged: Judged,
    next_run: Output,
    /// The killed run left its journal: the next run must say what it undid.
    journal_left: bool,
}

/// Pairs with B killed at `point`, then runs `git pair list` on B and judges B's files.
fn kill_at(lab: &Lab, point: &Point, b_opts: &PairOpts, before: &Snap, reference: &Snap) -> Kill {
    let log = log_dir(lab).join(format!("kill-{}-{}", point.syscall, point.nth));
    let wrapper = vec![
        "strace".to_owned(),
        "-qq".to_owned(),
        "-o".to_owned(),
        log.display().to_string(),
        "-e".to_owned(),
        format!("trace={}", point.syscall),
        "-e".to_owned(),
        format!("inject={}:signal=KILL:when={}", point.syscall, point.nth),
        "--seccomp-bpf".to_owned(),
        "--".to_owned(),
    ];
    let a_opts = PairOpts::timeout(8);
    let (a, code) = start_with_code(&lab.a, &a_opts);
    let b = lab
        .b
        .git_pair_under(&wrapper, Some(&code), b_opts)
        .spawn()
        .wait(RUN_LIMIT);
    // A's side does not matter here: stop it (its files are put back below).
    drop(a);
    let traced = fs::read_to_string(&log).unwrap_or_default();
    let calls = traced
        .lines()
        .filter(|l| l.starts_with(&format!("{}(", point.syscall)))
        .count();
    let killed = b.status.signal() == Some(9)
        && calls == point.nth as usize
        && traced.contains("+++ killed by SIGKILL");
    let journal_left = lab.b.home.join(".ssh/git-pair/journal").exists();
    let next_run = lab
        .b
        .cmd(&lab.b.git_pair)
        .args(["list"])
        .cwd(b_opts.cwd.as_deref().unwrap_or(&lab.b.repo))
        .timeout(RUN_LIMIT)
        .run();
    let now = capture(&lab.b);
    let judged = judge(before, reference, &now);
    Kill {
        point: point.clone(),
        killed,
        judged,
        next_run,
        journal_left,
    }
}

/// How a scenario prepares B (and A) before its snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// No `~/.ssh` at all.
    Fresh,
    /// B's own authorized_keys and ssh config lines, and B already paired with another
    /// repository of A.
    LivedIn,
    /// B's repository already paired with A's: the kill runs re-pair the same two.
    Repair,
}

#[derive(Default)]
struct Tally {
    kills: usize,
    points: BTreeSet<(String, u32, &'static str)>,
    before: usize,
    paired: usize,
    torn: Vec<String>,
    missed: Vec<String>,
    next_run_failed: Vec<String>,
    /// Kills that left a journal for the next run.
    journals: usize,
}

fn run_scenario(lab: &Lab, start: Start, kills: Kills, offset: usize, tally: &mut Tally) {
    let scenario: &'static str = match start {
        Start::Fresh => "fresh",
        Start::LivedIn => "lived-in",
        Start::Repair => "re-pair",
    };
    match start {
        Start::Fresh => {}
        Start::LivedIn => {
            let a2 = lab.a.home.join("second");
            if !a2.exists() {
                lab.a.init_repo(&a2);
            }
            let (a, b) = pair_under(
                lab,
                &PairOpts::default().in_repo(&a2),
                &PairOpts::default(),
                &[],
            );
            assert!(a.success() && b.success(), "{a}\n{b}");
            let keys = b"# mine\r\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDZpaqOFP8Focd9pYWXxjkTE3Q0U/hZAv5ABDIwfZWjN dave@ed-host\n";
            let mut ak = host::read_file(&lab.b.home.join(".ssh/authorized_keys")).unwrap();
            ak.extend_from_slice(keys);
            lab.b
                .write_user_file(&lab.b.home.join(".ssh/authorized_keys"), &ak, 0o600);
            let mut config = host::read_file(&lab.b.home.join(".ssh/config")).unwrap();
            config.extend_from_slice(b"\nHost mine\n    HostName 192.0.2.7\n# no final newline");
            lab.b
                .write_user_file(&lab.b.home.join(".ssh/config"), &config, 0o644);
        }
        Start::Repair => {
            let (a, b) = pair_under(lab, &PairOpts::default(), &PairOpts::default(), &[]);
            assert!(a.success() && b.success(), "{a}\n{b}");
        }
    }
    let before = capture(&lab.b);
    let a_before = capture(&lab.a);
    let b_opts = PairOpts::timeout(8);

    // Two dry runs from the same state; the reference state is what the first one left.
    let logs = log_dir(lab);
    let first = dry_run(lab, &logs.join(format!("dry-{scenario}-1")), &b_opts);
    let reference = capture(&lab.b);
    assert_ne!(reference, before, "the reference pairing changed nothing");
    restore(&lab.b, &before);
    restore(&lab.a, &a_before);
    let second = dry_run(lab, &logs.join(format!("dry-{scenario}-2")), &b_opts);
    restore(&lab.b, &before);
    restore(&lab.a, &a_before);
    // A point is kept only if both dry runs reached the window after the same number of calls
    // of its name, and have it there.
    let ((first, first_base), (second, second_base)) = (first, second);
    let key = |p: &Point| (p.syscall.clone(), p.nth);
    let stable: BTreeSet<(String, u32)> = second.iter().map(key).collect();
    let points: Vec<Point> = first
        .into_iter()
        .filter(|p| stable.contains(&key(p)))
        .filter(|p| first_base.get(&p.syscall) == second_base.get(&p.syscall))
        .collect();
    // From the journal's first write to the commit: where a kill finds files half changed.
    let critical = points
        .iter()
        .position(|p| p.seen.contains(".journal.git-pair-"))
        .unwrap_or(points.len());
    let chosen = kills.choose(points.len(), critical, offset);
    eprintln!(
        "  {scenario}: {} system calls in the setup phase (not counting the volatile ones), {} at the same place in both dry runs, {} of them from the journal's first write on; killing at {}",
        second.len(),
        points.len(),
        points.len() - critical,
        chosen.len()
    );

    let started = Instant::now();
    for point in chosen.into_iter().map(|i| &points[i]) {
        let kill = kill_at(lab, point, &b_opts, &before, &reference);
        tally.kills += 1;
        let what = format!("[{scenario}] kill at {}", kill.point);
        if !kill.killed {
            tally.missed.push(what.clone());
        } else {
            tally
                .points
                .insert((point.syscall.clone(), point.nth, scenario));
        }
        if kill.journal_left {
            tally.journals += 1;
            if !kill.next_run.stderr_str().contains("was interrupted") {
                tally.next_run_failed.push(format!(
                    "{what}: the next run did not say what it undid\n{}",
                    kill.next_run
                ));
            }
        }
        if !kill.next_run.success() {
            tally
                .next_run_failed
                .push(format!("{what}\n{}", kill.next_run));
        }
        match kill.judged.verdict {
            Verdict::Before => tally.before += 1,
            Verdict::Paired => tally.paired += 1,
            Verdict::Torn => {
                let now = capture(&lab.b);
                tally.torn.push(format!(
                    "{what}: {}\n  changed since before:\n{}",
                    kill.judged,
                    diff(&before, &now)
                ));
            }
        }
        restore(&lab.b, &before);
        restore(&lab.a, &a_before);
    }
    eprintln!("  {scenario}: done in {:?}", started.elapsed());
}

/// How many points of each scenario to kill at.
#[derive(Debug, Clone, Copy)]
enum Kills {
    All,
    /// This many points evenly spread over the staging, and this many over the part from the
    /// journal's first write to the commit (all of them, if there are fewer).
    Spread {
        staging: usize,
        critical: usize,
    },
}

impl Kills {
    /// `GIT_PAIR_CRASH_KILLS`: `all`, or `STAGING,CRITICAL` per starting state (default
    /// `40,60`).
    fn from_env() -> Kills {
        match std::env::var("GIT_PAIR_CRASH_KILLS").ok().as_deref() {
            Some("all") => Kills::All,
            Some(pair) => {
                let parse = |s: &str| {
                    s.trim()
                        .parse()
                        .expect("GIT_PAIR_CRASH_KILLS: `all` or `N,M`")
                };
                let (a, b) = pair
                    .split_once(',')
                    .expect("GIT_PAIR_CRASH_KILLS: `all` or `N,M`");
                Kills::Spread {
                    staging: parse(a),
                    critical: parse(b),
                }
            }
            None => Kills::Spread {
                staging: 40,
                critical: 60,
            },
        }
    }

    /// Indices into `len` points, of which those from `critical` on come after the journal's
    /// first write. Evenly spaced picks start `offset` thirds of a step in, so that each
    /// starting state covers other calls of the same phase.
    fn choose(self, len: usize, critical: usize, offset: usize) -> Vec<usize> {
        let spread = |from: usize, to: usize, n: usize| -> Vec<usize> {
            if to - from <= n {
                return (from..to).collect();
            }
            let step = (to - from) as f64 / n as f64;
            let shift = step * (offset as f64) / 3.0;
            (0..n)
                .map(|i| from + ((i as f64 * step + shift) as usize).min(to - from - 1))
                .collect()
        };
        match self {
            Kills::All => (0..len).collect(),
            Kills::Spread {
                staging,
                critical: n,
            } => spread(0, critical, staging)
                .into_iter()
                .chain(spread(critical, len, n))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        }
    }

    fn is_small(self) -> bool {
        matches!(self, Kills::Spread { staging, critical } if staging + critical < 67)
    }
}

/// Whether strace is there and may trace (and kill) a child here.
fn strace_works(lab: &Lab) -> Result<(), String> {
    let out = lab
        .b
        .cmd("strace")
        .args([
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "inject=getpid:signal=KILL",
            "--",
            "sh",
            "-c",
            "kill -0 $$; exit 3",
        ])
        .run();
    if out.status.signal() == Some(9) {
        Ok(())
    } else {
        Err(format!("strace cannot kill a traced child here\n{out}"))
    }
}

/// SIGKILL at every system call of the joining side's setup, from three starting states. After
/// the next run of git pair, each part is as before or fully paired, the same for all parts;
/// nothing is left behind; the next run never fails.
///
/// By default, in each starting state, 60 points evenly spread from the journal's first write
/// to the commit (where a kill finds files half changed) and 40 over the staging before it: 300
/// kills, a few minutes. `GIT_PAIR_CRASH_KILLS=all` kills at every point (about 2000, half an
/// hour), `GIT_PAIR_CRASH_KILLS=N,M` at N and M per starting state.
pub fn sigkill_during_setup_leaves_no_torn_pairing() {
    let lab = Lab::new(Network::DualStack);
    if let Err(why) = strace_works(&lab) {
        panic!("{why}");
    }
    let kills = Kills::from_env();
    let mut tally = Tally::default();
    for (offset, start) in [Start::Fresh, Start::LivedIn, Start::Repair]
        .into_iter()
        .enumerate()
    {
        run_scenario(&lab, start, kills, offset, &mut tally);
    }
    let distinct: BTreeSet<(String, u32)> = tally
        .points
        .iter()
        .map(|(s, n, _)| (s.clone(), *n))
        .collect();
    eprintln!(
        "  {} kills at {} distinct points ({} distinct (call, N) pairs), {} of them leaving a journal; after the next run: {} as before, {} paired, {} torn; {} points not reached; {} next runs failed",
        tally.kills,
        tally.points.len(),
        distinct.len(),
        tally.journals,
        tally.before,
        tally.paired,
        tally.torn.len(),
        tally.missed.len(),
        tally.next_run_failed.len()
    );
    let mut problems = String::new();
    for t in &tally.torn {
        let _ = writeln!(problems, "TORN {t}");
    }
    for f in &tally.next_run_failed {
        let _ = writeln!(problems, "NEXT RUN FAILED {f}");
    }
    // A point that a run reached after a different number of calls than the dry runs (the
    // network's timing can still shift one): reported, and not counted as a point; more than a
    // few would mean the points are not what they claim to be.
    for m in &tally.missed {
        eprintln!("  not killed where planned: {m}");
    }
    if tally.missed.len() * 100 > tally.kills * 3 {
        let _ = writeln!(
            problems,
            "{} of {} kills missed their point",
            tally.missed.len(),
            tally.kills
        );
    }
    assert!(
        problems.is_empty(),
        "{} of {} kills left a torn pairing, {} next runs failed:\n{problems}",
        tally.torn.len(),
        tally.kills,
        tally.next_run_failed.len(),
    );
    assert!(
        tally.points.len() >= 200 || kills.is_small(),
        "only {} kill points",
        tally.points.len()
    );
    assert!(
        tally.before > 0 && tally.paired > 0,
        "both outcomes must occur"
    );
    // Nothing of the kills blocks a real pairing now.
    let p = gitpair::pair(&lab, &PairOpts::default(), &PairOpts::default()).expect_paired();
    let _ = p;
}

// ---------------------------------------------------------------------------------------------
// Concurrent runs of one user.

/// One side's run, with the moment each JSON event arrived.
struct Timed {
    out: Output,
    events: Vec<(String, Instant)>,
}

impl Timed {
    fn at(&self, event: &str) -> Option<Instant> {
        self.events
            .iter()
            .find(|(e, _)| e == event)
            .map(|(_, t)| *t)
    }

    fn remote(&self) -> Option<String> {
        gitpair::events(&self.out)
            .into_iter()
            .find(|e| e["event"] == "paired")
            .and_then(|e| e["remote"].as_str().map(str::to_owned))
    }
}

/// Reads `running`'s events as they come, in a thread, until it exits.
fn timed(
    running: super::support::process::Running,
    limit: Duration,
) -> std::thread::JoinHandle<Timed> {
    std::thread::spawn(move || {
        let mut running = running;
        let deadline = Instant::now() + limit;
        let mut events = Vec::new();
        while let Some(line) = running.next_line(deadline) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if let Some(e) = v["event"].as_str() {
                    events.push((e.to_owned(), Instant::now()));
                }
            }
        }
        Timed {
            out: running.wait(Duration::from_secs(5)),
            events,
        }
    })
}

/// strace that makes every `rename` of git-pair wait `ms` first: a setup that holds the lock
/// for seconds.
fn slow_renames(ms: u32) -> Vec<String> {
    vec![
        "strace".to_owned(),
        "-qq".to_owned(),
        "-o".to_owned(),
        "/dev/null".to_owned(),
        "--seccomp-bpf".to_owned(),
        "-e".to_owned(),
        "trace=rename".to_owned(),
        "-e".to_owned(),
        format!("inject=rename:delay_enter={}", u64::from(ms) * 1000),
        "--".to_owned(),
    ]
}

/// Two pairings between A and B at once: A's `a_repos[i]` with B's `b_repos[i]`. B's first run
/// renames slowly, so it holds the lock through its whole setup while the second run reaches
/// its own. Returns both sides of both runs.
fn two_at_once(lab: &Lab, a_repos: [&Path; 2], b_repos: [&Path; 2]) -> Vec<(Timed, Timed)> {
    let limit = Duration::from_secs(60);
    let opts = |repo: &Path| PairOpts::timeout(40).in_repo(repo);
    let (a1, code1) = start_with_code(&lab.a, &opts(a_repos[0]));
    let (a2, code2) = start_with_code(&lab.a, &opts(a_repos[1]));
    let b1 = lab
        .b
        .git_pair_under(&slow_renames(250), Some(&code1), &opts(b_repos[0]))
        .spawn();
    let b2 = lab.b.git_pair(Some(&code2), &opts(b_repos[1])).spawn();
    let runs = [
        (timed(a1, limit), timed(b1, limit)),
        (timed(a2, limit), timed(b2, limit)),
    ];
    runs.into_iter()
        .map(|(a, b)| (a.join().unwrap(), b.join().unwrap()))
        .collect()
}

fn describe(runs: &[(Timed, Timed)]) -> String {
    let mut s = String::new();
    for (i, (a, b)) in runs.iter().enumerate() {
        let _ = write!(
            s,
            "=== run {} side A ===\n{}\n=== run {} side B ===\n{}\n",
            i + 1,
            a.out,
            i + 1,
            b.out
        );
    }
    s
}

/// The first B run was still setting up (it had not reported its remote) when the second one
/// was verified: the two setups overlapped, and the lock ordered them.
fn assert_overlapped(runs: &[(Timed, Timed)]) {
    let first_done = runs[0].1.at("remote");
    let second_verified = runs[1].1.at("verified");
    let first_verified = runs[0].1.at("verified");
    assert!(
        matches!((first_verified, second_verified, first_done), (Some(v1), Some(v2), Some(d1)) if v2 < d1 && v1 < d1),
        "the two setups did not overlap (verified at {first_verified:?} and {second_verified:?}, first remote at {first_done:?})\n{}",
        describe(runs)
    );
}

/// `git ls-remote REMOTE` in `dir` works over ssh.
fn ls_remote(host: &Host, dir: &Path, remote: &str) -> Output {
    host.cmd("git")
        .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
        .args(["ls-remote", remote])
        .cwd(dir)
        .run()
}

/// git pair's lines in a host's authorized_keys.
fn pair_lines(h: &Host) -> Vec<String> {
    let bytes = host::read_file(&h.home.join(".ssh/authorized_keys")).unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter(|l| l.contains(" git-pair:"))
        .map(str::to_owned)
        .collect()
}

/// Two runs of one user pair two repositories at the same time (on both hosts): both succeed,
/// authorized_keys holds both lines on each side, and all four remotes work.
pub fn two_repositories_paired_at_once_both_succeed() {
    let lab = Lab::new(Network::DualStack);
    let (a2, b2) = (lab.a.home.join("second"), lab.b.home.join("second"));
    lab.a.init_repo(&a2);
    lab.b.init_repo(&b2);
    let runs = two_at_once(&lab, [&lab.a.repo, &a2], [&lab.b.repo, &b2]);
    for (i, (a, b)) in runs.iter().enumerate() {
        assert!(
            a.out.success() && b.out.success() && a.remote().is_some() && b.remote().is_some(),
            "run {} failed\n{}",
            i + 1,
            describe(&runs)
        );
    }
    assert_overlapped(&runs);
    for h in [&lab.a, &lab.b] {
        let lines = pair_lines(h);
        assert_eq!(
            lines.len(),
            2,
            "{}: {lines:#?}\n{}",
            h.hostname,
            describe(&runs)
        );
    }
    let checks = [
        (&lab.a, lab.a.repo.as_path(), &runs[0].0),
        (&lab.b, lab.b.repo.as_path(), &runs[0].1),
        (&lab.a, a2.as_path(), &runs[1].0),
        (&lab.b, b2.as_path(), &runs[1].1),
    ];
    for (h, dir, run) in checks {
        let remote = run.remote().unwrap();
        let out = ls_remote(h, dir, &remote);
        assert!(
            out.success(),
            "{remote} in {}\n{out}\n{}",
            dir.display(),
            lab.sshd_logs()
        );
    }
}

/// Two runs in one repository at the same time, with two peers (two repositories of A, whose
/// host names are the same): each ends with its own remote (`alpha` and `alpha-2`), each with
/// its own alias, and both work. The remote name is picked under the lock.
pub fn two_pairings_of_one_repository_at_once_get_their_own_remotes() {
    let lab = Lab::new(Network::DualStack);
    let a2 = lab.a.home.join("second");
    lab.a.init_repo(&a2);
    let runs = two_at_once(&lab, [&lab.a.repo, &a2], [&lab.b.repo, &lab.b.repo]);
    for (i, (a, b)) in runs.iter().enumerate() {
        assert!(
            a.out.success() && b.out.success(),
            "run {} failed\n{}",
            i + 1,
            describe(&runs)
        );
    }
    assert_overlapped(&runs);
    let mut remotes: Vec<String> = runs.iter().map(|(_, b)| b.remote().unwrap()).collect();
    remotes.sort();
    assert_eq!(remotes, ["alpha", "alpha-2"], "{}", describe(&runs));
    let aliases: BTreeSet<String> = remotes.iter().map(|r| lab.b.remote(r).alias).collect();
    assert_eq!(aliases.len(), 2, "{aliases:?}");
    assert_eq!(pair_lines(&lab.b).len(), 2, "{:#?}", pair_lines(&lab.b));
    for r in &remotes {
        let out = ls_remote(&lab.b, &lab.b.repo, r);
        assert!(out.success(), "{r}\n{out}\n{}", lab.sshd_logs());
    }
    for (dir, (a, _)) in [lab.a.repo.as_path(), a2.as_path()].into_iter().zip(&runs) {
        let out = ls_remote(&lab.a, dir, &a.remote().unwrap());
        assert!(out.success(), "{}\n{out}", dir.display());
    }
}
