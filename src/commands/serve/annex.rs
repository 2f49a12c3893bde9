//! git-annex-shell: where it is, and whether the served repository is a git-annex repository
//! (only then is git-annex-shell run at all).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ANNEX_SHELL;

/// Where `git-annex-shell` is on this process's `PATH`, or `None` when it is not there. This
/// is what [`run`](super::run) execs. Pairing can use it to tell the peer in advance whether git-annex will
/// work through the key; note that an interactive shell's `PATH` may be wider than the one
/// sshd gives the forced command (OpenSSH's default is about `/usr/local/bin:/usr/bin:/bin`),
/// so a git-annex found only in, say, `~/.local/bin` counts here but not under sshd. Use
/// [`annex_shell_in`] with sshd's `PATH` for the stricter answer.
pub fn annex_shell_path() -> Option<PathBuf> {
    // execvp's default when PATH is unset.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    annex_shell_in(&path)
}

/// Where `git-annex-shell` is in the `PATH`-style list `path` (absolute entries only).
pub fn annex_shell_in(path: &OsStr) -> Option<PathBuf> {
    find_executable(ANNEX_SHELL, path)
}

/// Whether `git-annex-shell` is installed here; see [`annex_shell_path`].
pub fn annex_shell_available() -> bool {
    annex_shell_path().is_some()
}

/// The first `dir/name` in the `PATH`-style list `path` that is an executable file. Empty
/// entries are skipped (for exec they mean the current directory, which sshd sets to the
/// peer-writable home; never run from there).
fn find_executable(name: &str, path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The repository's own `annex.uuid`, read when the request arrives; `None` when it has none
/// (or it cannot be read), which means git-annex-shell must not run there.
///
/// git-annex-shell initialises git-annex in a repository that has a `git-annex` branch when it
/// is asked (`configlist ... autoinit=1`), and changes settings on request (`gcryptsetup`):
/// hooks, `filter.annex.*`, `annex.uuid` and `annex.largefiles` read from a branch the peer
/// pushed would then change what the owner's next `git commit` does. So git-annex-shell is
/// served only on a repository its owner already made a git-annex repository, and
/// `annex.uuid` is what `git annex init` sets.
///
/// Read with `git config --local --no-includes`: only the repository's own config file (the
/// common one for a linked work tree), not the user's or the system's, not what an include
/// names, and with `env` (serve's allowlist, see [`environment`](super::environment)) as the
/// whole environment, so that no variable of the peer's (`GIT_DIR`, `GIT_CONFIG_*`,
/// `XDG_CONFIG_HOME`) chooses what is read.
pub(super) fn annex_uuid(canonical: &Path, env: &[(OsString, OsString)]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(canonical)
        .args(["config", "--local", "--no-includes", "--get", "annex.uuid"])
        .env_clear()
        .envs(env.iter().map(|(n, v)| (n, v)))
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let uuid = String::from_utf8(out.stdout).ok()?;
    let uuid = uuid.trim();
    (!uuid.is_empty()).then(|| uuid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::serve::environment;
    use crate::commands::serve::test_dir::{mkdirs, TempDir};

    #[test]
    fn find_executable_searches_absolute_path_entries_only() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new();
        let bin = t.0.join("bin");
        mkdirs(&bin);
        let program = bin.join("git-annex-shell");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        let path = |dirs: &[&Path]| std::env::join_paths(dirs).unwrap();
        // Not executable: not found.
        assert_eq!(find_executable(ANNEX_SHELL, &path(&[&bin])), None);
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find_executable(ANNEX_SHELL, &path(&[&bin])),
            Some(program.clone())
        );
        assert_eq!(annex_shell_in(&path(&[&bin])), Some(program.clone()));
        // A directory of that name is not a program.
        mkdirs(&t.0.join("git-annex-shell"));
        assert_eq!(
            find_executable(ANNEX_SHELL, &path(&[&t.0, &bin])),
            Some(program)
        );
        // Relative entries would search the peer-writable working directory: skipped.
        assert_eq!(find_executable(ANNEX_SHELL, OsStr::new("bin:.:")), None);
        assert_eq!(find_executable(ANNEX_SHELL, OsStr::new("")), None);
    }

    /// `git ARGS` in `dir` with `home` as HOME and nothing of the test's own environment that
    /// could change what git does.
    fn git(dir: &Path, home: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("HOME", home)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
    }

    fn env_with_home(home: &Path) -> Vec<(OsString, OsString)> {
        vec![
            ("HOME".into(), home.into()),
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
        ]
    }

    const UUID: &str = "4b73dc0e-59e2-4221-a977-ca3e845fc53a";

    #[test]
    fn annex_uuid_is_read_from_the_repositorys_own_config_only() {
        let t = TempDir::new();
        let home = t.0.join("home");
        mkdirs(&home);
        let env = env_with_home(&home);
        let repo = t.0.join("plain");
        mkdirs(&repo);
        git(&repo, &home, &["init", "-q"]);
        assert_eq!(annex_uuid(&repo, &env), None, "a plain repository");

        // Set anywhere but in the repository's own file, it does not count.
        std::fs::write(
            home.join(".gitconfig"),
            format!("[annex]\n\tuuid = {UUID}\n"),
        )
        .unwrap();
        std::fs::write(t.0.join("included"), format!("[annex]\n\tuuid = {UUID}\n")).unwrap();
        git(&repo, &home, &["config", "include.path", "../../included"]);
        assert_eq!(annex_uuid(&repo, &env), None, "global config and includes");
        let mut peer_env = env.clone();
        peer_env.push((
            "GIT_CONFIG_PARAMETERS".into(),
            format!("'annex.uuid'='{UUID}'").into(),
        ));
        peer_env.push(("GIT_CONFIG_COUNT".into(), "1".into()));
        peer_env.push(("GIT_CONFIG_KEY_0".into(), "annex.uuid".into()));
        peer_env.push(("GIT_CONFIG_VALUE_0".into(), UUID.into()));
        assert_eq!(annex_uuid(&repo, &environment::allowed(peer_env)), None);
        git(&repo, &home, &["config", "annex.uuid", ""]);
        assert_eq!(annex_uuid(&repo, &env), None, "an empty annex.uuid");

        git(&repo, &home, &["config", "annex.uuid", UUID]);
        assert_eq!(annex_uuid(&repo, &env).as_deref(), Some(UUID));
        assert_eq!(annex_uuid(&repo.join(".git"), &env).as_deref(), Some(UUID));

        let bare = t.0.join("bare.git");
        mkdirs(&bare);
        git(&bare, &home, &["init", "-q", "--bare", "--shared=group"]);
        assert_eq!(annex_uuid(&bare, &env), None, "a plain bare repository");
        git(&bare, &home, &["config", "annex.uuid", UUID]);
        assert_eq!(annex_uuid(&bare, &env).as_deref(), Some(UUID));

        // A linked work tree shares its main repository's config.
        git(&repo, &home, &["commit", "-q", "--allow-empty", "-m", "x"]);
        let linked = t.0.join("linked");
        git(
            &repo,
            &home,
            &["worktree", "add", "-q", linked.to_str().unwrap()],
        );
        assert_eq!(annex_uuid(&linked, &env).as_deref(), Some(UUID));

        assert_eq!(annex_uuid(&t.0.join("missing"), &env), None);
    }
}
