//! I/O tests of [`apply`], [`Applied`] and [`remove`] in a temporary home directory.
//!
//! These tests run as root, which ignores permission bits, so "not writable" is produced by
//! shapes that stop root too: `~/.ssh` being a regular file, `authorized_keys` being a directory,
//! a missing home.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::test_keys::{self, ECDSA_PUB, RSA_PUB};
use super::*;

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct TempHome {
    path: PathBuf,
}

impl TempHome {
    pub(crate) fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "git-pair-ssh-files-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).expect("create temp home");
        TempHome { path }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempHome {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Every entry under `root` (but the lock file): path -> (kind, mode, bytes or link target).
pub(super) type Snapshot = BTreeMap<PathBuf, (char, u32, Vec<u8>)>;

pub(super) fn snapshot(root: &Path) -> Snapshot {
    fn walk(root: &Path, dir: &Path, out: &mut Snapshot) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            if path.file_name() == Some(".lock".as_ref()) {
                continue;
            }
            if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).unwrap();
                out.insert(rel, ('l', 0, target.into_os_string().into_encoded_bytes()));
            } else if meta.is_dir() {
                out.insert(rel, ('d', mode, Vec::new()));
                walk(root, &path, out);
            } else {
                out.insert(rel, ('f', mode, fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Snapshot::new();
    walk(root, root, &mut out);
    out
}

/// Directories created by apply stay (see its doc), so compare without `~/.ssh` and
/// `~/.ssh/git-pair` themselves (their contents are still compared, and the mode of an existing
/// `~/.ssh` is checked in `apply_keeps_existing_modes_where_documented`).
pub(super) fn without_created_dirs(mut snap: Snapshot) -> Snapshot {
    snap.retain(|p, _| p != Path::new(".ssh") && p != Path::new(".ssh/git-pair"));
    snap
}

pub(super) fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

pub(super) fn setup(identity: Identity) -> PairSetup {
    let peer_user_key = test_keys::ed25519_public();
    PairSetup {
        alias: "git-pair-laptop-3f9a1c2e".to_owned(),
        host_name: "fe80::2%veth0".to_owned(),
        port: 2222,
        user: "bob".to_owned(),
        identity,
        host_keys: vec![
            ssh_key::PublicKey::from_openssh(ECDSA_PUB).unwrap(),
            test_keys::ed25519_public(),
        ],
        authorized: AuthorizedEntry {
            key: peer_user_key,
            command: forced_command(
                Path::new("/usr/bin/git-pair"),
                Path::new("/home/alice/notes"),
            )
            .unwrap(),
            marker: "repo-a:repo-b".to_owned(),
            label: "bob@desk:/home/bob/notes".to_owned(),
        },
        record: None,
        replaces: Vec::new(),
        replaces_markers: Vec::new(),
        secret: None,
        edit_config: true,
    }
}

pub(super) fn generated() -> Identity {
    Identity::Generated(test_keys::ed25519_private())
}

pub(super) fn never() -> impl FnMut() -> bool {
    || false
}

/// A home with a lived-in ~/.ssh: odd bytes everywhere, config mode 0644.
pub(super) fn lived_in_home() -> TempHome {
    let home = TempHome::new();
    let ssh = home.path().join(".ssh");
    fs::create_dir(&ssh).unwrap();
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).unwrap();
    let mut ak = format!("# keys\r\n{RSA_PUB}\r\n").into_bytes();
    ak.extend_from_slice(b"garbage \xff\xfe\n");
    ak.extend_from_slice(ECDSA_PUB.as_bytes()); // no final newline
    fs::write(ssh.join("authorized_keys"), &ak).unwrap();
    fs::set_permissions(
        ssh.join("authorized_keys"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    fs::write(ssh.join("config"), b"Host *\r\n  User me\r\n\xe9").unwrap();
    fs::set_permissions(ssh.join("config"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(ssh.join("known_hosts"), b"untouched\n").unwrap();
    home
}

#[test]
fn apply_creates_files_with_the_right_modes() {
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let s = setup(generated());
    let applied = apply(&dir, &s, &mut never()).unwrap();
    let alias = &s.alias;
    assert_eq!(
        applied.written(),
        vec![
            dir.identity(alias),
            dir.identity_pub(alias),
            dir.pair_known_hosts(),
            dir.pair_config(),
            dir.config(),
            dir.authorized_keys(),
        ]
    );
    applied.commit().unwrap();
    assert_eq!(mode(dir.root()), 0o700);
    assert_eq!(mode(&dir.pair_dir()), 0o700);
    assert_eq!(mode(&dir.identity(alias)), 0o600);
    assert_eq!(mode(&dir.identity_pub(alias)), 0o644);
    assert_eq!(mode(&dir.pair_known_hosts()), 0o600);
    assert_eq!(mode(&dir.pair_config()), 0o600);
    assert_eq!(mode(&dir.config()), 0o600);
    assert_eq!(mode(&dir.authorized_keys()), 0o600);

    let Identity::Generated(key) = &s.identity else {
        unreachable!()
    };
    let written_key =
        ssh_key::PrivateKey::from_openssh(fs::read(dir.identity(alias)).unwrap()).unwrap();
    assert_eq!(
        written_key.public_key().key_data(),
        key.public_key().key_data()
    );
    let pub_line = fs::read_to_string(dir.identity_pub(alias)).unwrap();
    assert_eq!(
        ssh_key::PublicKey::from_openssh(&pub_line)
            .unwrap()
            .key_data(),
        key.public_key().key_data()
    );
    let ak = fs::read(dir.authorized_keys()).unwrap();
    assert_eq!(authorized_keys::git_pair_lines(&ak).len(), 1);
    let config = fs::read_to_string(dir.config()).unwrap();
    assert!(
        config.contains("\nInclude ~/.ssh/git-pair/config\n"),
        "{config}"
    );
    let pair = fs::read(dir.pair_config()).unwrap();
    assert_eq!(client_config::host_aliases(&pair), vec![alias.clone()]);
    let kh = fs::read(dir.pair_known_hosts()).unwrap();
    assert_eq!(known_hosts::keys_for(&kh, alias).len(), 2);
    // Nothing left behind: no temporary files.
    let names: Vec<_> = fs::read_dir(dir.pair_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 5, "{names:?}");
}

#[test]
fn apply_keeps_existing_modes_where_documented() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    apply(&dir, &setup(generated()), &mut never())
        .unwrap()
        .commit()
        .unwrap();
    assert_eq!(mode(dir.root()), 0o755, "an existing ~/.ssh keeps its mode");
    assert_eq!(mode(&dir.config()), 0o644, "~/.ssh/config keeps its mode");
    assert_eq!(
        mode(&dir.authorized_keys()),
        0o600,
        "authorized_keys is 0600"
    );
    // The user's bytes are all still there, unchanged.
    let ak = fs::read(dir.authorized_keys()).unwrap();
    let mut old = format!("# keys\r\n{RSA_PUB}\r\n").into_bytes();
    old.extend_from_slice(b"garbage \xff\xfe\n");
    old.extend_from_slice(ECDSA_PUB.as_bytes());
    old.push(b'\n');
    assert!(ak.starts_with(&old));
    assert!(fs::read(dir.config())
        .unwrap()
        .ends_with(b"Host *\r\n  User me\r\n\xe9"));
}

#[test]
fn rollback_restores_exact_bytes_and_removes_created_files() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = snapshot(home.path());
    let applied = apply(&dir, &setup(generated()), &mut never()).unwrap();
    assert_ne!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );
    applied.rollback().unwrap();
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );
}

#[test]
fn dropping_applied_without_commit_rolls_back() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = snapshot(home.path());
    {
        let _applied = apply(&dir, &setup(generated()), &mut never()).unwrap();
    }
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );
}

fn interrupt_at(n: usize) -> impl FnMut() -> bool {
    let mut calls = 0;
    move || {
        calls += 1;
        calls >= n
    }
}

#[test]
fn interrupted_before_the_third_write_leaves_everything_byte_identical() {
    for identity in [
        generated(),
        Identity::Existing(PathBuf::from("/home/alice/.ssh/id_ed25519")),
    ] {
        for home in [lived_in_home(), TempHome::new()] {
            let dir = SshDir::new(home.path());
            let before = snapshot(home.path());
            // Poll 1 is before the directories, polls 2, 3, 4 are before writes 1, 2, 3.
            let mut polls = 0;
            let mut interrupted = interrupt_at(4);
            let mut counting = || {
                polls += 1;
                interrupted()
            };
            let err = apply(&dir, &setup(identity.clone()), &mut counting).unwrap_err();
            assert!(matches!(err, Error::Interrupted), "{err}");
            assert_eq!(polls, 4);
            assert_eq!(
                without_created_dirs(snapshot(home.path())),
                without_created_dirs(before.clone())
            );
        }
    }
}

#[test]
fn interrupted_at_every_step_leaves_everything_byte_identical() {
    for n in 1..=7 {
        let home = lived_in_home();
        let dir = SshDir::new(home.path());
        let before = snapshot(home.path());
        let err = apply(&dir, &setup(generated()), &mut interrupt_at(n)).unwrap_err();
        assert!(matches!(err, Error::Interrupted), "{n}: {err}");
        assert_eq!(
            without_created_dirs(snapshot(home.path())),
            without_created_dirs(before.clone()),
            "{n}"
        );
    }
    // Seven polls in all: an interruption at the eighth comes too late to matter.
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    apply(&dir, &setup(generated()), &mut interrupt_at(8))
        .unwrap()
        .commit()
        .unwrap();
}

#[test]
fn failure_in_a_later_write_rolls_back_the_earlier_ones() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = snapshot(home.path());
    let ak = dir.authorized_keys();
    let saved = fs::read(&ak).unwrap();
    // Just before the last write, authorized_keys turns into a directory: the rename fails.
    let mut polls = 0;
    let mut sabotage = || {
        polls += 1;
        if polls == 7 {
            fs::remove_file(&ak).unwrap();
            fs::create_dir(&ak).unwrap();
            fs::write(ak.join("x"), b"").unwrap();
        }
        false
    };
    let err = apply(&dir, &setup(generated()), &mut sabotage).unwrap_err();
    assert!(
        matches!(err, Error::NotAFile { .. } | Error::Io { .. }),
        "{err}"
    );
    fs::remove_dir_all(&ak).unwrap();
    fs::write(&ak, saved).unwrap();
    fs::set_permissions(&ak, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );
}

#[test]
fn ssh_dir_that_is_a_file_is_reported_and_nothing_is_written() {
    let home = TempHome::new();
    fs::write(home.path().join(".ssh"), b"not a dir").unwrap();
    let dir = SshDir::new(home.path());
    let before = snapshot(home.path());
    let err = dir.check_writable().unwrap_err();
    assert!(
        matches!(&err, Error::NotADirectory { path } if path == dir.root()),
        "{err}"
    );
    assert!(err.to_string().contains("is not a directory"), "{err}");
    let err = apply(&dir, &setup(generated()), &mut never()).unwrap_err();
    assert!(matches!(err, Error::NotADirectory { .. }), "{err}");
    assert_eq!(snapshot(home.path()), before);
    assert!(matches!(
        remove(&dir, "git-pair-x", None, Some("m")),
        Err(Error::NotADirectory { .. })
    ));
}

#[test]
fn authorized_keys_that_is_a_directory_is_reported_and_nothing_is_written() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    fs::remove_file(dir.authorized_keys()).unwrap();
    fs::create_dir(dir.authorized_keys()).unwrap();
    let before = snapshot(home.path());
    let err = dir.check_writable().unwrap_err();
    assert!(
        matches!(&err, Error::NotAFile { path } if *path == dir.authorized_keys()),
        "{err}"
    );
    apply(&dir, &setup(generated()), &mut never()).unwrap_err();
    assert_eq!(snapshot(home.path()), before);
}

#[test]
fn missing_home_is_reported() {
    let home = TempHome::new();
    let dir = SshDir::new(&home.path().join("nobody"));
    assert!(matches!(dir.check_writable(), Err(Error::NoHome { .. })));
    assert!(SshDir::new(home.path()).check_writable().is_ok());
}

#[test]
fn existing_identity_is_never_overwritten() {
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let s = setup(generated());
    fs::create_dir_all(dir.pair_dir()).unwrap();
    fs::write(dir.identity_pub(&s.alias), b"stale").unwrap();
    let before = snapshot(home.path());
    let err = apply(&dir, &s, &mut never()).unwrap_err();
    assert!(matches!(err, Error::IdentityExists { .. }), "{err}");
    assert_eq!(snapshot(home.path()), before);
}

#[test]
fn re_applying_a_pairing_that_replaces_itself_skips_unchanged_files() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let s = setup(Identity::Existing(home.path().join(".ssh/id_ed25519")));
    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    let first = snapshot(home.path());
    let mut itself = s.clone();
    itself.replaces = vec![s.alias.clone()];
    itself.replaces_markers = vec![s.authorized.marker.clone()];
    let again = apply(&dir, &itself, &mut never()).unwrap();
    assert!(again.written().is_empty(), "{:?}", again.written());
    again.commit().unwrap();
    assert_eq!(snapshot(home.path()), first);
    // A new peer key for the same pairing (its marker replaced) replaces the old line.
    let mut s2 = itself.clone();
    s2.authorized.key =
        ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519)
            .unwrap()
            .public_key()
            .clone();
    let applied = apply(&dir, &s2, &mut never()).unwrap();
    assert_eq!(applied.written(), vec![dir.authorized_keys()]);
    applied.commit().unwrap();
    let lines = authorized_keys::git_pair_lines(&fs::read(dir.authorized_keys()).unwrap());
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].key.key_data(), s2.authorized.key.key_data());
}

/// Issue 8, item 2, the takeover: an earlier pairing made with `--key` has no key file of its
/// own; a new pairing whose alias came out the same (as a peer-chosen session id once made it)
/// replaced its Host block and pinned host keys. Any name of another pairing is now refused,
/// under the lock and before anything is written.
#[test]
fn apply_never_overwrites_another_pairing() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let victim = recorded(
        setup(Identity::Existing(home.path().join(".ssh/id_ed25519"))),
        "git-pair-laptop-3f9a1c2e",
        "laptop",
    );
    apply(&dir, &victim, &mut never())
        .unwrap()
        .commit()
        .unwrap();
    let before = snapshot(home.path());

    let mut attacker = recorded(setup(generated()), "git-pair-laptop-3f9a1c2e", "laptop-2");
    attacker.host_name = "10.0.0.66".to_owned();
    attacker.authorized.marker = "attacker".to_owned();
    attacker.authorized.key = ssh_key::PublicKey::from_openssh(ECDSA_PUB).unwrap();
    attacker.record.as_mut().unwrap().marker = "attacker".to_owned();
    for identity in [
        generated(),
        Identity::Existing(home.path().join("other_key")),
    ] {
        attacker.identity = identity;
        let err = apply(&dir, &attacker, &mut never()).unwrap_err();
        assert!(
            matches!(&err, Error::InUse { name, .. } if name == "git-pair-laptop-3f9a1c2e"),
            "{err}"
        );
        assert!(
            err.to_string().contains("never overwrites another pairing"),
            "{err}"
        );
        assert_eq!(snapshot(home.path()), before);
    }

    // The block gone by hand, its pinned keys still name the alias: still refused.
    let config = fs::read(dir.pair_config()).unwrap();
    fs::write(
        dir.pair_config(),
        client_config::plan_remove_host(&config, "git-pair-laptop-3f9a1c2e"),
    )
    .unwrap();
    let before = snapshot(home.path());
    let err = apply(&dir, &attacker, &mut never()).unwrap_err();
    assert!(
        matches!(&err, Error::InUse { what, .. } if what.contains("known_hosts")),
        "{err}"
    );
    assert_eq!(snapshot(home.path()), before);

    // Another alias, but the victim's marker: its authorized_keys line is not taken either.
    let mut same_marker = attacker.clone();
    same_marker.alias = "git-pair-laptop-00000002".to_owned();
    same_marker.authorized.marker = victim.authorized.marker.clone();
    same_marker.record.as_mut().unwrap().marker = victim.authorized.marker.clone();
    let err = apply(&dir, &same_marker, &mut never()).unwrap_err();
    assert!(
        matches!(&err, Error::InUse { what, .. } if what.contains("authorized_keys")),
        "{err}"
    );
    assert_eq!(snapshot(home.path()), before);

    // A key file or a pair secret under the alias counts too.
    let mut fresh = attacker.clone();
    fresh.alias = "git-pair-laptop-00000003".to_owned();
    fs::write(dir.pair_secret(&fresh.alias), b"someone's").unwrap();
    let before = snapshot(home.path());
    let err = apply(&dir, &fresh, &mut never()).unwrap_err();
    assert!(
        matches!(&err, Error::InUse { what, .. } if what.contains("pair secret")),
        "{err}"
    );
    assert_eq!(snapshot(home.path()), before);
    fs::remove_file(dir.pair_secret(&fresh.alias)).unwrap();
    fs::write(dir.identity_pub(&fresh.alias), b"someone's").unwrap();
    fresh.identity = Identity::Existing(home.path().join("other_key"));
    let err = apply(&dir, &fresh, &mut never()).unwrap_err();
    assert!(
        matches!(&err, Error::InUse { what, .. } if what.contains("key file")),
        "{err}"
    );
}

/// Issue 8, item 4 at the level of the files: a line git pair did not write that lets the
/// peer's key in refuses the whole setup before anything is written, and stays as it was.
#[test]
fn apply_refuses_a_key_that_a_line_it_did_not_write_lets_in() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let s = setup(generated());
    let mut keys = fs::read(dir.authorized_keys()).unwrap();
    keys.extend_from_slice(format!("\n{}\n", s.authorized.key.to_openssh().unwrap()).as_bytes());
    fs::write(dir.authorized_keys(), &keys).unwrap();
    let before = snapshot(home.path());
    let err = apply(&dir, &s, &mut never()).unwrap_err();
    assert!(matches!(err, Error::KeyAuthorizedByHand { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("never changes a line it did not write"),
        "{err}"
    );
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before)
    );
}

#[test]
fn symlinked_config_is_written_through_and_restored() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let dotfiles = home.path().join("dotfiles");
    fs::create_dir(&dotfiles).unwrap();
    fs::rename(dir.config(), dotfiles.join("ssh_config")).unwrap();
    std::os::unix::fs::symlink("../dotfiles/ssh_config", dir.config()).unwrap();
    let before = snapshot(home.path());
    let applied = apply(&dir, &setup(generated()), &mut never()).unwrap();
    assert!(fs::symlink_metadata(dir.config())
        .unwrap()
        .file_type()
        .is_symlink());
    let target = fs::read_to_string(dotfiles.join("ssh_config")).unwrap_or_default();
    assert!(
        fs::read(dotfiles.join("ssh_config"))
            .unwrap()
            .starts_with(b"# Added by git pair"),
        "{target}"
    );
    assert_eq!(mode(&dotfiles.join("ssh_config")), 0o644);
    applied.rollback().unwrap();
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );
}

#[test]
fn remove_undoes_apply_and_is_idempotent() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let s = setup(generated());
    let ak_before = fs::read(dir.authorized_keys()).unwrap();
    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    // A second pairing must survive the removal of the first.
    let mut other = setup(Identity::Existing(PathBuf::from("/k")));
    other.alias = "git-pair-other".to_owned();
    other.authorized.marker = "other".to_owned();
    apply(&dir, &other, &mut never()).unwrap().commit().unwrap();

    let fp = s.authorized.key.fingerprint(ssh_key::HashAlg::Sha256);
    let changed = remove(&dir, &s.alias, Some(&fp), None).unwrap();
    assert_eq!(
        changed,
        vec![
            dir.authorized_keys(),
            dir.pair_config(),
            dir.pair_known_hosts(),
            dir.identity(&s.alias),
            dir.identity_pub(&s.alias),
        ]
    );
    assert!(!dir.identity(&s.alias).exists());
    let ak = fs::read(dir.authorized_keys()).unwrap();
    let remaining = authorized_keys::git_pair_lines(&ak);
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0].marker, "other");
    assert_eq!(
        client_config::host_aliases(&fs::read(dir.pair_config()).unwrap()),
        vec!["git-pair-other"]
    );
    assert!(known_hosts::keys_for(&fs::read(dir.pair_known_hosts()).unwrap(), &s.alias).is_empty());

    assert!(remove(&dir, &s.alias, Some(&fp), None).unwrap().is_empty());
    remove(&dir, &other.alias, None, Some("other")).unwrap();
    // The user's authorized_keys is back to its bytes, plus the '\n' its last line lacked.
    let mut expected = ak_before;
    expected.push(b'\n');
    assert_eq!(fs::read(dir.authorized_keys()).unwrap(), expected);
}

#[test]
fn remove_without_ssh_dir_does_nothing() {
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    assert!(remove(&dir, "git-pair-x", None, Some("m"))
        .unwrap()
        .is_empty());
    assert!(snapshot(home.path()).is_empty());
    assert!(remove(&dir, "../evil", None, None).is_err());
}

#[test]
fn lock_is_held_until_commit() {
    use nix::fcntl::{Flock, FlockArg};
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let applied = apply(&dir, &setup(generated()), &mut never()).unwrap();
    let try_lock = || {
        let file = fs::File::open(dir.lock_file()).unwrap();
        Flock::lock(file, FlockArg::LockExclusiveNonblock).is_ok()
    };
    assert!(!try_lock(), "the lock must be held while Applied lives");
    applied.commit().unwrap();
    assert!(try_lock(), "commit must release the lock");
    assert_eq!(mode(&dir.lock_file()), 0o600);
}

#[test]
fn invalid_setup_fails_before_touching_anything() {
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let mut s = setup(generated());
    s.host_name = "evil\n  ProxyCommand sh".to_owned();
    assert!(matches!(
        apply(&dir, &s, &mut never()),
        Err(Error::InvalidValue { .. })
    ));
    let mut s = setup(generated());
    s.host_keys.clear();
    assert!(apply(&dir, &s, &mut never()).is_err());
    let mut s = setup(generated());
    s.alias = "../../etc".to_owned();
    assert!(apply(&dir, &s, &mut never()).is_err());
    assert!(snapshot(home.path()).is_empty());
}

pub(super) fn recorded(mut s: PairSetup, alias: &str, remote: &str) -> PairSetup {
    s.alias = alias.to_owned();
    s.record = Some(BlockRecord {
        repo: "/home/alice/notes".to_owned(),
        remote: remote.to_owned(),
        marker: s.authorized.marker.clone(),
    });
    s
}

#[test]
fn a_repair_replaces_the_old_alias_in_the_same_transaction() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let first = recorded(setup(generated()), "git-pair-desk-00000001", "desk");
    apply(&dir, &first, &mut never()).unwrap().commit().unwrap();
    let old_key = dir.identity("git-pair-desk-00000001");
    assert!(old_key.exists());

    let mut second = recorded(setup(generated()), "git-pair-desk-00000002", "desk");
    second.authorized.marker = "m2".to_owned();
    second.record.as_mut().unwrap().marker = "m2".to_owned();
    second.replaces = vec!["git-pair-desk-00000001".to_owned()];
    second.replaces_markers = vec![first.authorized.marker.clone()];
    let applied = apply(&dir, &second, &mut never()).unwrap();
    let blocks = dir.pair_blocks().unwrap();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!(blocks[0].alias, "git-pair-desk-00000002");
    assert_eq!(blocks[0].remote.as_deref(), Some("desk"));
    assert_eq!(blocks[0].repo.as_deref(), Some("/home/alice/notes"));
    assert!(!old_key.exists());
    let kh = fs::read(dir.pair_known_hosts()).unwrap();
    assert!(known_hosts::keys_for(&kh, "git-pair-desk-00000001").is_empty());
    assert_eq!(
        known_hosts::keys_for(&kh, "git-pair-desk-00000002").len(),
        2
    );
    let ak = fs::read(dir.authorized_keys()).unwrap();
    assert_eq!(authorized_keys::git_pair_lines(&ak).len(), 1);

    // Rolled back, the first pairing is whole again.
    applied.rollback().unwrap();
    assert!(old_key.exists());
    assert_eq!(
        dir.pair_blocks().unwrap()[0].alias,
        "git-pair-desk-00000001"
    );

    remove(
        &dir,
        "git-pair-desk-00000001",
        None,
        Some(&first.authorized.marker),
    )
    .unwrap();
    assert!(dir.pair_blocks().unwrap().is_empty());
    let ak = fs::read(dir.authorized_keys()).unwrap();
    assert!(authorized_keys::git_pair_lines(&ak).is_empty());
    assert!(!old_key.exists());
}

#[test]
fn remove_keeps_a_key_file_another_pairing_uses() {
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let first = recorded(setup(generated()), "git-pair-a-1", "a");
    apply(&dir, &first, &mut never()).unwrap().commit().unwrap();
    let shared = dir.identity("git-pair-a-1");
    let mut second = recorded(
        setup(Identity::Existing(shared.clone())),
        "git-pair-b-2",
        "b",
    );
    second.authorized.marker = "other-marker".to_owned();
    second.authorized.key = ssh_key::PublicKey::from_openssh(RSA_PUB).unwrap();
    apply(&dir, &second, &mut never())
        .unwrap()
        .commit()
        .unwrap();

    remove(&dir, "git-pair-a-1", None, Some(&first.authorized.marker)).unwrap();
    assert!(shared.exists(), "still used by git-pair-b-2");
    assert_eq!(dir.pair_blocks().unwrap().len(), 1);
    let ak = fs::read(dir.authorized_keys()).unwrap();
    let left = authorized_keys::git_pair_lines(&ak);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].marker, "other-marker");

    remove(&dir, "git-pair-b-2", None, Some("other-marker")).unwrap();
    assert!(
        shared.exists(),
        "an --key file is never deleted through another alias"
    );
    // Idempotent.
    assert!(remove(&dir, "git-pair-b-2", None, Some("other-marker"))
        .unwrap()
        .is_empty());
}

#[test]
fn remove_authorized_drops_only_git_pair_lines_of_that_key() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = fs::read(dir.authorized_keys()).unwrap();
    let s = setup(generated());
    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    let fp = s.authorized.key.fingerprint(ssh_key::HashAlg::Sha256);
    let changed = remove_authorized(&dir, &fp).unwrap();
    assert_eq!(changed, vec![dir.authorized_keys()]);
    // The lived-in file had no final newline; apply added one before its line.
    let mut expected = before.clone();
    expected.push(b'\n');
    assert_eq!(fs::read(dir.authorized_keys()).unwrap(), expected);
}

/// Staged changes reach no file before `flush` (they are kept in memory until then); later steps
/// read them; a transaction dropped before its flush leaves every byte as it was.
#[test]
fn staged_changes_are_read_back_and_invisible_until_flushed() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    atomic::ensure_dir(&dir.pair_dir(), 0o700).unwrap();
    let before = snapshot(home.path());
    let config = dir.pair_config();
    {
        let mut tx = Applied::begin(&dir, "test", None).unwrap();
        tx.update(&config, FileMode::Fixed(0o600), |_| {
            Ok(Some(b"one\n".to_vec()))
        })
        .unwrap();
        tx.update(&config, FileMode::Fixed(0o600), |old| {
            assert_eq!(old, Some(&b"one\n"[..]), "the second step sees the first");
            Ok(Some(b"one\ntwo\n".to_vec()))
        })
        .unwrap();
        assert_eq!(
            tx.read(&config).unwrap().map(|b| b.to_vec()),
            Some(b"one\ntwo\n".to_vec())
        );
        tx.delete(&dir.authorized_keys()).unwrap();
        assert_eq!(tx.read(&dir.authorized_keys()).unwrap(), None);
        assert_eq!(
            snapshot(home.path()),
            before,
            "nothing is written before the flush, not even a temporary file"
        );
    }
    assert_eq!(snapshot(home.path()), before);

    let mut tx = Applied::begin(&dir, "test", None).unwrap();
    tx.update(&config, FileMode::Fixed(0o600), |_| {
        Ok(Some(b"kept\n".to_vec()))
    })
    .unwrap();
    tx.flush().unwrap();
    assert_eq!(fs::read(&config).unwrap(), b"kept\n");
    tx.rollback().unwrap();
    assert_eq!(snapshot(home.path()), before);
}

pub(super) fn secret(role: crate::protocol::schedule::Role, byte: u8) -> SecretRecord {
    SecretRecord {
        role,
        ssh_port: 2222,
        secret: crate::protocol::schedule::PairSecret::from_bytes([byte; 32]),
    }
}

#[test]
fn the_pair_secret_is_written_0600_rolled_back_and_removed_with_its_pairing() {
    use crate::protocol::schedule::Role;
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = snapshot(home.path());
    let mut s = setup(generated());
    s.secret = Some(secret(Role::High, 7));
    let path = dir.pair_secret(&s.alias);

    let applied = apply(&dir, &s, &mut never()).unwrap();
    assert!(applied.written().contains(&path));
    assert_eq!(mode(&path), 0o600);
    let read = dir.read_pair_secret(&s.alias).unwrap().unwrap();
    assert_eq!(
        (read.role, read.ssh_port, *read.secret.expose()),
        (Role::High, 2222, [7; 32])
    );
    applied.rollback().unwrap();
    assert!(!path.exists());
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );

    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    assert_eq!(dir.pair_secrets().unwrap().len(), 1);
    let changed = remove(&dir, &s.alias, None, Some(&s.authorized.marker)).unwrap();
    assert!(changed.contains(&path), "{changed:?}");
    assert!(!path.exists());
    assert!(dir.read_pair_secret(&s.alias).unwrap().is_none());
    assert!(dir.pair_secrets().unwrap().is_empty());
}

#[test]
fn interrupted_at_every_step_leaves_no_pair_secret_behind() {
    use crate::protocol::schedule::Role;
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = without_created_dirs(snapshot(home.path()));
    let mut s = setup(generated());
    s.secret = Some(secret(Role::Low, 1));
    for n in 0..12 {
        match apply(&dir, &s, &mut interrupt_at(n)) {
            Err(Error::Interrupted) => {
                assert_eq!(
                    without_created_dirs(snapshot(home.path())),
                    before,
                    "step {n}"
                );
            }
            Ok(applied) => {
                applied.rollback().unwrap();
                break;
            }
            Err(e) => panic!("step {n}: {e}"),
        }
    }
    assert!(!dir.pair_secret(&s.alias).exists());
}

/// A pair secret under the new alias is another pairing's (or a leftover nobody cleaned up):
/// never overwritten.
#[test]
fn a_stale_pair_secret_under_the_alias_is_never_overwritten() {
    use crate::protocol::schedule::Role;
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let mut s = setup(generated());
    fs::create_dir_all(dir.pair_dir()).unwrap();
    let path = dir.pair_secret(&s.alias);
    fs::write(&path, b"stale").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    s.secret = Some(secret(Role::Low, 9));
    let before = snapshot(home.path());
    let err = apply(&dir, &s, &mut never()).unwrap_err();
    assert!(matches!(err, Error::InUse { .. }), "{err}");
    assert_eq!(snapshot(home.path()), before);
    assert_eq!(fs::read(&path).unwrap(), b"stale");
    let listed = dir.pair_secrets().unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].1.is_err());
}

#[test]
fn a_repair_deletes_the_replaced_pairings_secret() {
    use crate::protocol::schedule::Role;
    let home = TempHome::new();
    let dir = SshDir::new(home.path());
    let mut first = recorded(setup(generated()), "git-pair-desk-00000001", "desk");
    first.secret = Some(secret(Role::Low, 1));
    apply(&dir, &first, &mut never()).unwrap().commit().unwrap();
    let mut second = recorded(setup(generated()), "git-pair-desk-00000002", "desk");
    second.secret = Some(secret(Role::High, 2));
    second.replaces = vec!["git-pair-desk-00000001".to_owned()];
    second.replaces_markers = vec![first.authorized.marker.clone()];
    apply(&dir, &second, &mut never())
        .unwrap()
        .commit()
        .unwrap();
    let secrets = dir.pair_secrets().unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(secrets[0].0, "git-pair-desk-00000002");
    assert!(!dir.pair_secret("git-pair-desk-00000001").exists());
}

#[test]
fn refresh_rewrites_only_the_pairings_address_under_the_lock() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let s = recorded(setup(generated()), "git-pair-desk-1", "desk");
    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    let before = snapshot(home.path());
    let config_before = fs::read(dir.pair_config()).unwrap();
    let r = Refresh {
        host_name: "10.0.0.9",
        port: 2222,
        time: "2026-11-30T10:00:00Z",
        method: "locate",
    };
    assert_eq!(
        refresh(&dir, "git-pair-desk-1", &r).unwrap(),
        vec![dir.pair_config()]
    );
    let after = snapshot(home.path());
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p)
        .collect();
    assert_eq!(changed, [&PathBuf::from(".ssh/git-pair/config")]);
    assert_eq!(mode(&dir.pair_config()), 0o600);
    let block = &dir.pair_blocks().unwrap()[0];
    assert_eq!(block.host_name.as_deref(), Some("10.0.0.9"));
    assert_eq!(
        fs::read(dir.pair_config()).unwrap(),
        client_config::plan_refresh(&config_before, "git-pair-desk-1", &r).unwrap()
    );
    // Nothing new to say: nothing written.
    assert!(refresh(&dir, "git-pair-desk-1", &r).unwrap().is_empty());
    assert!(matches!(
        refresh(&dir, "git-pair-gone", &r),
        Err(Error::NoHostBlock { .. })
    ));
    let empty = TempHome::new();
    assert!(matches!(
        refresh(&SshDir::new(empty.path()), "git-pair-desk-1", &r),
        Err(Error::NoHostBlock { .. })
    ));
}

pub(super) fn written_of(setup: &PairSetup) -> (String, String, ssh_key::Fingerprint) {
    (
        setup.alias.clone(),
        setup.authorized.marker.clone(),
        setup.authorized.key.fingerprint(ssh_key::HashAlg::Sha256),
    )
}

/// A pairing is committed at once (the lock is not held while the peer decides), and undone
/// later if the peer failed: every file it changed gets its exact bytes and mode back, the files
/// it created go, and the lock is free in between.
#[test]
fn a_committed_pairing_is_undone_byte_for_byte() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let before = snapshot(home.path());
    let mut s = recorded(setup(generated()), "git-pair-laptop-3f9a1c2e", "laptop");
    s.secret = Some(secret(crate::protocol::schedule::Role::Low, 7));
    let committed = apply(&dir, &s, &mut never())
        .unwrap()
        .commit_keeping_undo()
        .unwrap();
    assert_ne!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before.clone())
    );
    // The lock is free while the peer decides.
    Applied::try_begin(&dir, "test")
        .unwrap()
        .expect("the lock is free after the commit")
        .commit()
        .unwrap();
    let (alias, marker, fingerprint) = written_of(&s);
    let changed = undo_committed(
        &dir,
        committed,
        &Written {
            alias: &alias,
            marker: &marker,
            fingerprint: &fingerprint,
        },
    )
    .unwrap();
    assert!(!changed.is_empty());
    assert_eq!(
        without_created_dirs(snapshot(home.path())),
        without_created_dirs(before)
    );
}

/// If another pairing was written in between (another run of the same user), the undo keeps
/// that one's lines and removes only its own.
#[test]
fn undoing_a_committed_pairing_keeps_what_another_wrote_since() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let first = recorded(setup(generated()), "git-pair-laptop-3f9a1c2e", "laptop");
    let committed = apply(&dir, &first, &mut never())
        .unwrap()
        .commit_keeping_undo()
        .unwrap();
    let mut second = recorded(setup(generated()), "git-pair-desk-00000002", "desk");
    second.host_name = "10.0.0.7".to_owned();
    second.authorized.marker = "second".to_owned();
    // setup() gives each pairing a fresh Ed25519 peer key.
    second.record.as_mut().unwrap().marker = "second".to_owned();
    apply(&dir, &second, &mut never())
        .unwrap()
        .commit()
        .unwrap();

    let (alias, marker, fingerprint) = written_of(&first);
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
    let text = |p: PathBuf| String::from_utf8_lossy(&fs::read(p).unwrap()).into_owned();
    let ak = text(dir.authorized_keys());
    assert!(
        ak.contains("git-pair:second") && !ak.contains("git-pair:repo-a:repo-b"),
        "{ak}"
    );
    assert!(
        ak.starts_with("# keys\r\n"),
        "lines git pair did not write stay: {ak}"
    );
    let config = text(dir.pair_config());
    assert!(config.contains("git-pair-desk-00000002"), "{config}");
    assert!(!config.contains("git-pair-laptop-3f9a1c2e"), "{config}");
    let known = text(dir.pair_known_hosts());
    assert!(known.contains("git-pair-desk-00000002"), "{known}");
    assert!(!known.contains("git-pair-laptop-3f9a1c2e"), "{known}");
    // Its own key files went; the other pairing's stay.
    assert!(!dir.identity(&first.alias).exists());
    assert!(dir.identity(&second.alias).exists());
    // The first pairing added the Include line, and the second found it there: ssh still needs
    // it to read the second one's Host block, though ~/.ssh/config is as the first one left it.
    let ssh_config = fs::read(dir.config()).unwrap();
    assert!(
        text(dir.config()).contains("\nInclude ") && ssh_config.ends_with(b"User me\r\n\xe9"),
        "{}",
        String::from_utf8_lossy(&ssh_config)
    );
}

#[test]
fn without_edit_config_the_ssh_config_is_left_alone_and_git_pairs_files_are_written() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    let config = fs::read(dir.config()).unwrap();
    let line = match dir.include_state(false).unwrap() {
        IncludeState::Missing { line } => line,
        other => panic!("{other:?}"),
    };
    assert_eq!(line, "Include ~/.ssh/git-pair/config");
    let mut s = setup(generated());
    s.edit_config = false;
    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    assert_eq!(
        fs::read(dir.config()).unwrap(),
        config,
        "~/.ssh/config changed"
    );
    assert!(fs::read_to_string(dir.pair_config())
        .unwrap()
        .contains(&s.alias));
    assert!(dir.identity(&s.alias).exists());
    // Removing it leaves the config alone too.
    remove(&dir, &s.alias, None, Some(&s.authorized.marker)).unwrap();
    assert_eq!(fs::read(dir.config()).unwrap(), config);
}

#[test]
fn an_include_line_already_there_needs_no_write_and_stays_on_removal_if_not_ours() {
    let home = lived_in_home();
    let dir = SshDir::new(home.path());
    // As a tool such as home-manager writes it: not git pair's two lines.
    let managed = b"# managed elsewhere\nInclude ~/.ssh/git-pair/config\nHost *\n  User me\n";
    fs::write(dir.config(), managed).unwrap();
    assert_eq!(dir.include_state(true).unwrap(), IncludeState::Present);
    assert_eq!(dir.include_state(false).unwrap(), IncludeState::Present);
    let s = setup(generated());
    apply(&dir, &s, &mut never()).unwrap().commit().unwrap();
    assert_eq!(fs::read(dir.config()).unwrap(), managed);
    remove(&dir, &s.alias, None, Some(&s.authorized.marker)).unwrap();
    assert_eq!(fs::read(dir.config()).unwrap(), managed);
    // Without it, and allowed to edit: git pair adds it.
    fs::write(dir.config(), b"Host *\n").unwrap();
    assert_eq!(dir.include_state(true).unwrap(), IncludeState::Add);
}
