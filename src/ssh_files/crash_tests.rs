//! Crash tests of the journaled transaction in a temporary home: a transaction ended as a
//! SIGKILL would end it ([`Applied::crash`]) after any step, then the next run's [`recover`].
//! The end-to-end test `sigkill_during_setup_leaves_no_torn_pairing` kills the real binary.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::io_tests::{
    generated, lived_in_home, mode, never, setup, snapshot, without_created_dirs, Snapshot,
    TempHome,
};
use super::journal::{self, Journal};
use super::transaction::Lock;
use super::*;

/// Everything under the home but the lock file and the directories apply creates.
fn state(home: &TempHome) -> Snapshot {
    without_created_dirs(snapshot(home.path()))
}

/// Stops after `n` polls of `interrupted` (each poll comes before one step).
fn stop_after(n: usize) -> impl FnMut() -> bool {
    let mut calls = 0;
    move || {
        calls += 1;
        calls > n
    }
}

/// A repository config beside the ssh files, changed in the same transaction.
fn repo_config(home: &TempHome) -> std::path::PathBuf {
    let dir = home.path().join("repo/.git");
    fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config");
    fs::write(&config, b"[core]\n\tbare = false\n").unwrap();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o644)).unwrap();
    config
}

fn add_remote(old: Option<&[u8]>) -> Result<Option<Vec<u8>>, Error> {
    let mut new = old.unwrap_or_default().to_vec();
    new.extend_from_slice(b"[remote \"laptop\"]\n\turl = x:/y\n");
    Ok(Some(new))
}

/// Staged bytes stay in memory until the flush writes them all at once: a crash while staging
/// leaves nothing, not even a temporary file or a journal.
#[test]
fn a_crash_while_staging_leaves_nothing_behind() {
    for steps in 1..=7 {
        let home = lived_in_home();
        let config = repo_config(&home);
        let dir = SshDir::new(home.path());
        let before = state(&home);
        let mut tx = begin(&dir, "pairing for a test", &mut never()).unwrap();
        let mut stop = stop_after(steps);
        if apply_in(&mut tx, &dir, &setup(generated()), &mut stop).is_ok() {
            tx.update_git_file(&config, 0o644, add_remote).unwrap();
        }
        tx.crash();
        assert_eq!(state(&home), before, "after {steps} steps");
        assert!(!dir.journal().exists());
        assert!(recover(&dir).unwrap().is_empty());
        assert_eq!(state(&home), before);
    }
}

/// A crash after the flush with the first `in_place` changes in place and the others not yet
/// (as a SIGKILL between two renames leaves it) is undone by the next run.
#[test]
fn a_crash_during_or_after_the_flush_is_undone_by_the_next_run() {
    for in_place in 0..=8 {
        let home = lived_in_home();
        let config = repo_config(&home);
        let dir = SshDir::new(home.path());
        let before = state(&home);
        let mut tx = begin(&dir, "pairing for a test", &mut never()).unwrap();
        apply_in(&mut tx, &dir, &setup(generated()), &mut never()).unwrap();
        tx.update_git_file(&config, 0o644, add_remote).unwrap();
        tx.flush().unwrap();
        let journal = Journal::decode(&fs::read(dir.journal()).unwrap()).unwrap();
        tx.crash();
        // Undo the renames after the first `in_place`, as if they never happened.
        for entry in journal.entries.iter().skip(in_place) {
            match &entry.before {
                Some(saved) => {
                    fs::write(&entry.path, &saved.bytes).unwrap();
                    fs::set_permissions(&entry.path, fs::Permissions::from_mode(saved.mode))
                        .unwrap();
                }
                None => {
                    let _ = fs::remove_file(&entry.path);
                }
            }
        }
        assert_eq!(mode(&dir.journal()), 0o600);

        let recovered = recover(&dir).unwrap();
        let interrupted = recovered.interrupted.expect("the journal was found");
        assert_eq!(interrupted.label, "pairing for a test");
        assert_eq!(interrupted.pid, std::process::id());
        assert!(interrupted.changed_since.is_empty());
        assert!(recovered.unreadable.is_none());
        assert_eq!(state(&home), before, "with {in_place} changes in place");
        assert!(!dir.journal().exists());
        // A second run finds nothing to do.
        assert!(recover(&dir).unwrap().is_empty());
    }
}

#[test]
fn a_crash_after_the_commit_keeps_everything() {
    let home = lived_in_home();
    let config = repo_config(&home);
    let dir = SshDir::new(home.path());
    let mut tx = apply(&dir, &setup(generated()), &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, add_remote).unwrap();
    assert_eq!(mode(&dir.journal()), 0o600);
    tx.commit().unwrap();
    let after = state(&home);
    assert!(!dir.journal().exists());
    assert!(recover(&dir).unwrap().is_empty());
    assert_eq!(state(&home), after);
    assert!(fs::read(&config).unwrap().ends_with(b"url = x:/y\n"));
    assert_eq!(mode(&config), 0o644);
}

#[test]
fn the_journal_holds_the_previous_bytes_until_the_commit() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let old_keys = fs::read(dir.authorized_keys()).unwrap();
    let tx = apply(&dir, &setup(generated()), &mut never()).unwrap();
    let journal = Journal::decode(&fs::read(dir.journal()).unwrap()).unwrap();
    let keys = journal
        .entries
        .iter()
        .find(|e| e.path == dir.authorized_keys())
        .unwrap();
    let saved = keys.before.as_ref().unwrap();
    assert_eq!((saved.bytes.as_slice(), saved.mode), (&old_keys[..], 0o644));
    let identity = journal
        .entries
        .iter()
        .find(|e| e.path == dir.identity("git-pair-laptop-3f9a1c2e"))
        .unwrap();
    assert!(
        identity.before.is_none(),
        "a new key's bytes are not copied"
    );
    assert_eq!(journal.entries.len(), tx.written().len());
    tx.rollback().unwrap();
    assert!(!dir.journal().exists());
}

#[test]
fn a_file_changed_since_the_crash_is_left_as_it_is_and_reported() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = state(&home);
    let tx = apply(&dir, &setup(generated()), &mut never()).unwrap();
    tx.crash();
    // The user adds a key after the crash.
    let mut keys = fs::read(dir.authorized_keys()).unwrap();
    keys.extend_from_slice(b"ssh-ed25519 AAAAadded-after-the-crash me\n");
    fs::write(dir.authorized_keys(), &keys).unwrap();

    let recovered = recover(&dir).unwrap();
    let interrupted = recovered.interrupted.unwrap();
    assert_eq!(interrupted.changed_since, [dir.authorized_keys()]);
    assert_eq!(
        fs::read(dir.authorized_keys()).unwrap(),
        keys,
        "their key stays"
    );
    let mut now = state(&home);
    let mut expected = before.clone();
    now.remove(Path::new(".ssh/authorized_keys"));
    expected.remove(Path::new(".ssh/authorized_keys"));
    assert_eq!(now, expected, "everything else is undone");
    assert!(!dir.journal().exists(), "and the next run is not blocked");
}

#[test]
fn a_damaged_journal_is_moved_aside_and_never_acted_upon() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let tx = apply(&dir, &setup(generated()), &mut never()).unwrap();
    tx.crash();
    let mut bytes = fs::read(dir.journal()).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(dir.journal(), &bytes).unwrap();
    let crashed = state(&home);

    let recovered = recover(&dir).unwrap();
    let (aside, why) = recovered.unreadable.unwrap();
    assert_eq!(why, journal::JournalError::Checksum);
    assert!(recovered.interrupted.is_none());
    assert_eq!(fs::read(&aside).unwrap(), bytes);
    assert!(!dir.journal().exists());
    let mut now = state(&home);
    now.retain(|p, _| !p.to_string_lossy().contains("journal"));
    let mut then = crashed;
    then.retain(|p, _| !p.to_string_lossy().contains("journal"));
    assert_eq!(now, then, "no file was touched");
}

/// A journal that another user could have written (its directory writable by others, or the
/// journal readable or writable by them) is never acted upon, even when it is a valid one: it
/// names files to write, with bytes and modes.
#[test]
fn a_journal_others_could_have_written_is_moved_aside_and_never_acted_upon() {
    use std::os::unix::fs::PermissionsExt;
    for (what, journal_mode, dir_mode) in [
        ("group-writable directory", 0o600, 0o770),
        ("world-readable journal", 0o644, 0o700),
    ] {
        let home = lived_in_home();
        let dir = SshDir::new(home.path());
        let tx = apply(&dir, &setup(generated()), &mut never()).unwrap();
        tx.crash();
        fs::set_permissions(dir.journal(), fs::Permissions::from_mode(journal_mode)).unwrap();
        fs::set_permissions(dir.pair_dir(), fs::Permissions::from_mode(dir_mode)).unwrap();
        let crashed = state(&home);

        let recovered = recover(&dir).unwrap();
        let (_, why) = recovered.unreadable.expect(what);
        assert!(
            matches!(why, journal::JournalError::Untrusted(_)),
            "{what}: {why}"
        );
        assert!(recovered.interrupted.is_none(), "{what}");
        let keep = |mut s: std::collections::BTreeMap<PathBuf, _>| {
            s.retain(|p: &PathBuf, _| !p.to_string_lossy().contains("journal"));
            s
        };
        assert_eq!(
            keep(state(&home)),
            keep(crashed),
            "{what}: no file was touched"
        );
    }
}

/// The flush moves the journal into place before the round that writes the staged files and
/// makes them and the journal durable; a power cut in that round can leave the journal's name
/// without its bytes, and nothing changed yet. (A temporary file in the repository that only
/// the lost journal named may stay then, as it could before: it is never read.)
#[test]
fn an_empty_journal_means_nothing_changed_and_goes_with_the_temporary_files() {
    let home = lived_in_home();
    let config = repo_config(&home);
    let dir = SshDir::new(home.path());
    let before = state(&home);
    let mut tx = begin(&dir, "pairing for a test", &mut never()).unwrap();
    apply_in(&mut tx, &dir, &setup(generated()), &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, add_remote).unwrap();
    tx.crash();
    fs::write(dir.journal(), b"").unwrap();

    let recovered = recover(&dir).unwrap();
    assert!(recovered.unreadable.is_none());
    assert!(recovered.interrupted.is_none());
    assert!(!dir.journal().exists());
    assert_eq!(state(&home), before);
}

#[test]
fn temporary_files_and_orphaned_keys_go_and_nothing_else() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    // A pairing that uses its key, committed.
    apply(&dir, &setup(generated()), &mut never())
        .unwrap()
        .commit()
        .unwrap();
    let keep = state(&home);
    let pair = dir.pair_dir();
    let litter = [
        dir.root()
            .join(".authorized_keys.git-pair-0123456789abcdef.tmp"),
        pair.join(".journal.git-pair-fedcba9876543210.tmp"),
        // A private key whose .pub never came, used by no Host block.
        dir.identity("git-pair-desk-00000000"),
    ];
    for path in &litter {
        fs::write(path, b"left by a killed run").unwrap();
    }
    let scratch = pair.join(".repo-config.git-pair-0000000000000001.tmp");
    fs::create_dir(&scratch).unwrap();
    fs::write(scratch.join("config"), b"x").unwrap();
    // Look-alikes that are not git pair's litter: they stay.
    let mine = [
        dir.root().join(".authorized_keys.git-pair-XYZ.tmp"),
        dir.root().join("id_mine"),
        pair.join("id_git-pair-pub-only-00000000.pub"),
    ];
    for path in &mine {
        fs::write(path, b"mine").unwrap();
    }

    let recovered = recover(&dir).unwrap();
    assert!(recovered.interrupted.is_none());
    let mut cleaned = recovered.cleaned.clone();
    cleaned.sort();
    let mut expected = litter.to_vec();
    expected.push(scratch);
    expected.sort();
    assert_eq!(cleaned, expected);
    for path in &mine {
        assert!(path.exists(), "{}", path.display());
        fs::remove_file(path).unwrap();
    }
    assert_eq!(
        state(&home),
        keep,
        "the pairing's key and everything else stay"
    );
}

#[test]
fn recovery_leaves_a_live_transaction_alone() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let tx = apply(&dir, &setup(generated()), &mut never()).unwrap();
    let live = state(&home);
    // Another git pair, while this one holds the lock.
    assert!(recover(&dir).unwrap().is_empty());
    assert_eq!(state(&home), live);
    tx.commit().unwrap();
}

#[test]
fn git_s_lock_is_honoured_and_never_left_behind() {
    let home = lived_in_home();
    let config = repo_config(&home);
    let lock = config.with_file_name("config.lock");
    let dir = SshDir::new(home.path());
    let before = fs::read(&config).unwrap();

    // git is writing the config at the flush: refused, its lock untouched, all undone.
    let mut tx = begin(&dir, "t", &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, add_remote).unwrap();
    fs::write(&lock, b"git's").unwrap();
    let err = tx.flush().unwrap_err();
    assert!(matches!(err, Error::FileLocked { .. }), "{err}");
    assert!(err.to_string().contains("config.lock"), "{err}");
    tx.rollback().unwrap();
    assert_eq!(fs::read(&lock).unwrap(), b"git's");
    assert_eq!(fs::read(&config).unwrap(), before);
    assert!(!dir.journal().exists());
    fs::remove_file(&lock).unwrap();

    // git changed the config between the plan and the flush: refused, its change kept.
    let mut tx = begin(&dir, "t", &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, add_remote).unwrap();
    fs::write(&config, b"[core]\n\tbare = false\n[user]\n\tname = me\n").unwrap();
    let err = tx.flush().unwrap_err();
    assert!(matches!(err, Error::ChangedSince { .. }), "{err}");
    tx.rollback().unwrap();
    assert!(!lock.exists());
    assert!(fs::read(&config).unwrap().ends_with(b"name = me\n"));
    fs::write(&config, &before).unwrap();

    // A crash between taking git's lock and renaming it: the next run removes it.
    let mut tx = begin(&dir, "t", &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, add_remote).unwrap();
    tx.flush().unwrap();
    let planned = fs::read(&config).unwrap();
    tx.crash();
    fs::write(&config, &before).unwrap();
    fs::write(&lock, &planned).unwrap();
    let recovered = recover(&dir).unwrap();
    assert!(recovered.interrupted.unwrap().undone.contains(&lock));
    assert!(!lock.exists());
    assert_eq!(fs::read(&config).unwrap(), before);

    // No change planned: nothing staged, nothing written.
    let mut tx = begin(&dir, "t", &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, |old| {
        Ok::<_, Error>(old.map(<[u8]>::to_vec))
    })
    .unwrap();
    assert!(tx.written().is_empty());
    tx.commit().unwrap();
    assert!(!lock.exists());
    assert!(!dir.journal().exists());
}

#[test]
fn a_killed_process_never_keeps_the_lock() {
    if Command::new("flock").arg("--version").output().is_err() {
        eprintln!("skipped: flock(1) is not installed (util-linux)");
        return;
    }
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    atomic::ensure_dir(dir.root(), 0o700).unwrap();
    atomic::ensure_dir(&dir.pair_dir(), 0o700).unwrap();
    // One process that holds the lock: the shell execs sleep with the locked fd open.
    let mut holder = Command::new("sh")
        .args(["-c", r#"exec 9>>"$1" && flock -x 9 && exec sleep 60"#, "sh"])
        .arg(dir.lock_file())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Lock::take(&dir.lock_file(), false, None).unwrap().is_some() {
        assert!(Instant::now() < deadline, "flock(1) never took the lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    holder.kill().unwrap();
    holder.wait().unwrap();
    // SIGKILL: the kernel closes the fd, and the flock goes with it.
    assert!(Lock::take(&dir.lock_file(), false, None).unwrap().is_some());
    let tx = begin(&dir, "after a kill", &mut never()).unwrap();
    tx.commit().unwrap();
}

#[test]
fn a_create_that_finds_the_file_journals_nothing() {
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let mut tx = begin(&dir, "t", &mut never()).unwrap();
    let path = dir.pair_dir().join("known_hosts");
    fs::write(&path, b"someone else's").unwrap();
    assert!(matches!(
        tx.create(&path, b"ours", 0o600),
        Err(Error::IdentityExists { .. })
    ));
    tx.crash();
    // Nothing was journaled, so the next run does not touch it.
    assert!(recover(&dir).unwrap().interrupted.is_none());
    assert_eq!(fs::read(&path).unwrap(), b"someone else's");
    let _ = journal::Written::Removed;
}

/// A pairing committed before the peer's answer (so that the lock is free while it waits) and
/// undone then: every file, the repository's config among them, byte for byte, git's way.
#[test]
fn a_committed_pairing_and_its_repository_config_are_undone_byte_for_byte() {
    let home = lived_in_home();
    let config = repo_config(&home);
    let dir = SshDir::new(home.path());
    let before = state(&home);
    let s = setup(generated());
    let mut tx = begin(&dir, "t", &mut never()).unwrap();
    apply_in(&mut tx, &dir, &s, &mut never()).unwrap();
    tx.update_git_file(&config, 0o644, add_remote).unwrap();
    let committed = tx.commit_keeping_undo().unwrap();
    assert!(!dir.journal().exists(), "committed");
    assert_ne!(state(&home), before);
    let fingerprint = s.authorized.key.fingerprint(ssh_key::HashAlg::Sha256);
    undo_committed(
        &dir,
        committed,
        &Written {
            alias: &s.alias,
            marker: &s.authorized.marker,
            fingerprint: &fingerprint,
        },
    )
    .unwrap();
    assert_eq!(state(&home), before);
    assert!(!config.with_file_name("config.lock").exists());
    assert!(!dir.journal().exists());
}

/// Whether `needle` occurs in `hay`.
fn holds(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The files under the home that hold `secret` anywhere in their bytes.
fn holders(home: &TempHome, secret: &[u8]) -> Vec<std::path::PathBuf> {
    state(home)
        .into_iter()
        .filter(|(_, (kind, _, bytes))| *kind == 'f' && holds(bytes, secret))
        .map(|(path, _)| path)
        .collect()
}

/// A re-pair deletes the old pairing's private key and pair secret, so the journal holds their
/// bytes while the transaction runs: in a file of mode 0600 in git pair's 0700 directory, and
/// nowhere once the transaction has ended, however it ends (commit, rollback, a crash and the
/// next run, or a commit undone later): then each secret is in its own file or in none.
#[test]
fn secrets_the_journal_holds_are_0600_and_gone_when_the_transaction_ends() {
    use super::io_tests::{recorded, secret, written_of};
    use crate::protocol::schedule::Role;
    for end in ["commit", "rollback", "crash", "undone later"] {
        let home = lived_in_home();
        let dir = SshDir::new(home.path());
        let old_alias = "git-pair-desk-00000001";
        let mut first = recorded(setup(generated()), old_alias, "desk");
        first.secret = Some(secret(Role::Low, 1));
        apply(&dir, &first, &mut never()).unwrap().commit().unwrap();
        let old_key = fs::read(dir.identity(old_alias)).unwrap();
        let old_secret = fs::read(dir.pair_secret(old_alias)).unwrap();
        assert_eq!(mode(&dir.identity(old_alias)), 0o600);
        assert_eq!(mode(&dir.pair_secret(old_alias)), 0o600);

        let mut second = recorded(setup(generated()), "git-pair-desk-00000002", "desk");
        second.authorized.marker = "m2".to_owned();
        second.record.as_mut().unwrap().marker = "m2".to_owned();
        second.secret = Some(secret(Role::High, 2));
        second.replaces = vec![old_alias.to_owned()];
        second.replaces_markers = vec![first.authorized.marker.clone()];
        let tx = apply(&dir, &second, &mut never()).unwrap();
        let new_key = fs::read(dir.identity(&second.alias)).unwrap();
        let new_secret = fs::read(dir.pair_secret(&second.alias)).unwrap();
        assert!(!dir.identity(old_alias).exists(), "replaced");

        // While it runs: the old secrets are in the journal, and only there.
        let journal = fs::read(dir.journal()).unwrap();
        assert!(holds(&journal, &old_key) && holds(&journal, &old_secret));
        assert_eq!(
            holders(&home, &old_key),
            [Path::new(".ssh/git-pair/journal")]
        );
        assert_eq!(
            holders(&home, &old_secret),
            [Path::new(".ssh/git-pair/journal")]
        );
        assert_eq!(mode(&dir.journal()), 0o600);
        assert_eq!(mode(&dir.pair_dir()), 0o700);
        assert!(
            !holds(&journal, &new_key),
            "a new file's bytes are not copied"
        );

        let rel = |p: std::path::PathBuf| p.strip_prefix(home.path()).unwrap().to_path_buf();
        let kept_old = (old_alias, old_key, old_secret);
        let new = (second.alias.as_str(), new_key, new_secret);
        let ((kept, kept_key, kept_secret), (_, gone_key, gone_secret)) = match end {
            "commit" => {
                tx.commit().unwrap();
                (new, kept_old)
            }
            "rollback" => {
                tx.rollback().unwrap();
                (kept_old, new)
            }
            "crash" => {
                tx.crash();
                let recovered = recover(&dir).unwrap();
                assert!(recovered.interrupted.is_some());
                (kept_old, new)
            }
            _ => {
                let committed = tx.commit_keeping_undo().unwrap();
                assert!(!dir.journal().exists());
                let (alias, marker, fingerprint) = written_of(&second);
                undo_committed(
                    &dir,
                    committed,
                    &Written {
                        alias: &alias,
                        marker: &marker,
                        fingerprint: &fingerprint,
                    },
                )
                .unwrap();
                (kept_old, new)
            }
        };
        assert!(!dir.journal().exists(), "{end}");
        let (key_path, secret_path) = (dir.identity(kept), dir.pair_secret(kept));
        assert_eq!(holders(&home, &kept_key), [rel(key_path.clone())], "{end}");
        assert_eq!(
            holders(&home, &kept_secret),
            [rel(secret_path.clone())],
            "{end}"
        );
        assert_eq!(
            (mode(&key_path), mode(&secret_path)),
            (0o600, 0o600),
            "{end}"
        );
        assert!(holders(&home, &gone_key).is_empty(), "{end}");
        assert!(holders(&home, &gone_secret).is_empty(), "{end}");
    }
}
