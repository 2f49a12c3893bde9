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
