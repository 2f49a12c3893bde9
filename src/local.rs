//! This machine and this user, as git, ssh and sshd see them: the login name, the host name,
//! the home directory and the user's `~/.ssh`. One home for these, so that pairing, listing,
//! removing and serving all agree on them.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ssh_files::SshDir;

/// Why this user or machine cannot be described.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    #[error("HOME is not set and this user (uid {uid}) has no passwd entry: set HOME")]
    NoHome { uid: u32 },
    #[error(
        "this user (uid {uid}) has no passwd entry, so a peer could not log in as it: \
         run git pair as a user with an account"
    )]
    NoAccount { uid: u32 },
}

/// Who runs git-pair, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// The login name ssh will use: the account's, not `$USER`.
    pub user: String,
    /// The host name, or `localhost` when it has none.
    pub host: String,
}

/// This user and this machine.
pub fn whoami() -> Result<Me, LocalError> {
    let uid = nix::unistd::getuid();
    let user = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or(LocalError::NoAccount { uid: uid.as_raw() })?;
    Ok(Me {
        user,
        host: host_name().unwrap_or_else(|| "localhost".into()),
    })
}

/// The host name, if it has one that is UTF-8. Untrusted for terminals like any other name:
/// whoever shows it to a peer sanitizes it.
pub fn host_name() -> Option<String> {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
}

/// The home directory as git uses it: `$HOME`, else the passwd entry's.
pub fn home_dir() -> Result<PathBuf, LocalError> {
    // ssh itself reads the passwd entry, which is the same directory unless HOME was changed on
    // purpose (a demo, a test, `sudo -E`); see [`ssh_dir`].
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    passwd_home().ok_or(LocalError::NoHome {
        uid: nix::unistd::getuid().as_raw(),
    })
}

/// The home directory in the passwd database: what ssh expands `~` to.
pub fn passwd_home() -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
}

/// The user's `~/.ssh`, as git-pair and ssh both see it.
pub fn ssh_dir() -> Result<SshDir, LocalError> {
    let home = home_dir()?;
    Ok(match passwd_home() {
        Some(pw) if !same_dir(&pw, &home) => SshDir::with_tilde(&home, &pw),
        _ => SshDir::new(&home),
    })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_user_a_home_and_an_ssh_dir() {
        // The test runs as some account with a home; if not, the error must say what to do.
        match whoami() {
            Ok(me) => assert!(!me.user.is_empty() && !me.host.is_empty()),
            Err(e) => assert!(e.to_string().contains("passwd entry")),
        }
        if let Ok(dir) = ssh_dir() {
            assert!(dir.root().ends_with(".ssh"));
        }
    }

    #[test]
    fn same_dir_follows_symlinks_and_falls_back_to_equality() {
        assert!(same_dir(Path::new("/"), Path::new("/.")));
        assert!(same_dir(
            Path::new("/nonexistent/x"),
            Path::new("/nonexistent/x")
        ));
        assert!(!same_dir(
            Path::new("/nonexistent/x"),
            Path::new("/nonexistent/y")
        ));
    }
}
