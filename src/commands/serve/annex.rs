//! git-annex-shell: where it is.

use std::ffi::OsStr;
use std::path::PathBuf;

use super::ANNEX_SHELL;

/// Where `git-annex-shell` is on this process's `PATH`, or `None` when it is not there. This
/// is what [`run`] execs. Pairing can use it to tell the peer in advance whether git-annex will
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::serve::test_dir::{mkdirs, TempDir};
    use std::path::Path;

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
}
