//! The Debian package: built the documented way (`scripts/deb`, cargo-deb), unpacked into a
//! scratch root with `dpkg -x`, checked file by file, its control fields read with
//! `dpkg-deb -f`, and the unpacked binary run (`git pair --version`).
//!
//! The package is built in a target directory of its own (a release build; the first one takes
//! minutes), so that it never waits on the lock of the `cargo test` that runs this.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
    assert_eq!(
        std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
        Ok("1"),
        "{why}: run scripts/deps, or set GIT_PAIR_ALLOW_SKIP=1 to skip"
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_debian_package_holds_everything_and_runs_from_a_scratch_root() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo_deb = Command::new("cargo").args(["deb", "--version"]).output();
    if !cargo_deb.is_ok_and(|o| o.status.success()) {
        return skip("cargo-deb is not installed (cargo install cargo-deb --locked)");
    }
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        return skip("dpkg-deb is not installed");
    }
    let target = manifest.join("target/deb-test");
    let built = Command::new(manifest.join("scripts/deb"))
        .arg("--quiet")
        .current_dir(manifest)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "scripts/deb: {}",
        text(&built.stderr)
    );
    let version = env!("CARGO_PKG_VERSION");
    let debs: Vec<PathBuf> = fs::read_dir(target.join("debian"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("git-pair_{version}-"))
        })
        .collect();
    assert_eq!(debs.len(), 1, "{debs:?}");
    let deb = &debs[0];

    let field = |name: &str| {
        let out = Command::new("dpkg-deb")
            .arg("-f")
            .arg(deb)
            .arg(name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "git-pair");
    let depends = field("Depends");
    for needed in ["openssh-client", "git"] {
        assert!(
            depends
                .split(", ")
                .any(|d| d.split(' ').next() == Some(needed)),
            "Depends: {depends}"
        );
    }
    assert_eq!(field("Recommends"), "openssh-server");

    let root = Scratch(std::env::temp_dir().join(format!("git-pair-deb-{}", std::process::id())));
    let _ = fs::remove_dir_all(&root.0);
    let unpacked = Command::new("dpkg")
        .arg("-x")
        .arg(deb)
        .arg(&root.0)
        .output()
        .unwrap();
    assert!(unpacked.status.success(), "{}", text(&unpacked.stderr));
    let file = |rel: &str| {
        let path = root.0.join(rel);
        assert!(path.is_file(), "the package lacks /{rel}");
        path
    };
    let binary = file("usr/bin/git-pair");
    assert_eq!(
        fs::metadata(&binary).unwrap().permissions().mode() & 0o777,
        0o755
    );
    // The files are the committed ones.
    for (installed, source) in [
        (
            "usr/share/bash-completion/completions/git-pair",
            "completions/git-pair.bash",
        ),
        (
            "usr/share/zsh/vendor-completions/_git-pair",
            "completions/_git-pair",
        ),
        (
            "usr/share/fish/vendor_completions.d/git-pair.fish",
            "completions/git-pair.fish",
        ),
        ("usr/share/doc/git-pair/README.md", "README.md"),
        ("usr/share/doc/git-pair/PROTOCOL.md", "doc/PROTOCOL.md"),
        ("usr/share/doc/git-pair/SECURITY.md", "SECURITY.md"),
        // Not enabled by the package: each user enables it (see FINDING A PEER AGAIN).
        (
            "usr/lib/systemd/user/git-pair-watch.service",
            "contrib/systemd/git-pair-watch.service",
        ),
    ] {
        assert_eq!(
            fs::read(file(installed)).unwrap(),
            fs::read(manifest.join(source)).unwrap(),
            "/{installed}"
        );
    }
    let man = Command::new("gzip")
        .arg("-dc")
        .arg(file("usr/share/man/man1/git-pair.1.gz"))
        .output()
        .unwrap();
    assert_eq!(
        man.stdout,
        fs::read(manifest.join("man/git-pair.1")).unwrap()
    );
    let copyright = fs::read_to_string(file("usr/share/doc/git-pair/copyright")).unwrap();
    assert!(
        copyright.contains("MIT") && copyright.contains("Apache-2.0"),
        "{copyright}"
    );

    // It runs from there, as git runs it.
    let out = Command::new(&binary).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("git-pair {version}"));
    let size = fs::metadata(deb).unwrap().len();
    eprintln!("{}: {size} bytes", deb.display());
}
