//! `git pair serve --repo PATH`: the forced command of a paired key in `~/.ssh/authorized_keys`.
//!
//! sshd runs it for every connection made with the peer's key, whatever the peer asked for; the
//! peer's request is in `SSH_ORIGINAL_COMMAND`. This module owns the decision: the peer may run
//! `git-upload-pack`, `git-receive-pack`, `git-upload-archive` or `git-annex-shell` on the one
//! repository the key was paired for, and nothing else.
//!
//! The request is never given to a shell. It is tokenized here, strictly (a subset of POSIX sh
//! quoting that covers everything git and git-annex send, refusing anything unusual), the path
//! is resolved the way git's `enter_repo` would, and only a canonical-path comparison with the
//! configured repository decides. git (or git-annex-shell) is then `exec`ed with *our*
//! canonical path, not the peer's string.
//!
//! # git-annex
//!
//! git-annex talks to an ssh remote by running `git-annex-shell COMMAND DIRECTORY [PARAMS...]
//! [-- FIELD=VALUE... --]` there, every word quoted with `'...'`. git-annex 10.20230126 sends,
//! for `sync --content`, `copy`, `get`, `drop`, `move`, `whereis`:
//!
//! ```text
//! git-annex-shell 'configlist' '/~/repo'
//! git-annex-shell 'configlist' '/~/repo' '--debug' '--' 'autoinit=1' '--'
//! git-annex-shell 'p2pstdio' '/~/repo' '<client uuid>' --uuid <server uuid>
//! true
//! ```
//!
//! (plus plain `git-upload-pack`/`git-receive-pack` for the git side). The directory is the
//! remote's path with `~` written as `/~/`; it goes through the same resolver and the same
//! canonical comparison as a git path, and git-annex-shell is given our canonical path instead.
//!
//! The commands are an allow-list, [`AnnexCommand`]: the commands git-annex-shell implements
//! itself (its man page and `--help`) that work on the repository's content: `configlist`,
//! `p2pstdio`, `notifychanges`, `inannex`, `recvkey`, `sendkey`, `dropkey`. Not `gcryptsetup`,
//! which rewrites the repository's config (git pair never sets up gcrypt). Anything else
//! git-annex-shell would hand to git-shell (`git-upload-pack` spelled its way, or whatever
//! git-shell allows), so it is refused here rather than trusted to git-annex-shell. Parameters
//! are checked too: words that do not start with `-` (keys, UUIDs), the few options git-annex
//! sends (`--uuid`, `--debug`, `--quiet`, `--force`, ...), and the `-- field=value --` block
//! with git-annex-shell's known field names. Anything else, notably `-c name=value` (git
//! configuration, which can name commands to run), is refused.
//!
//! Every git-annex-shell command is refused unless the served repository already has an
//! `annex.uuid` when the request arrives (read from its own config file only): git-annex-shell
//! would otherwise make a plain repository a git-annex repository on the peer's request, with
//! hooks, `filter.annex.*` and settings from a branch the peer pushed.
//!
//! The login-shell form `git-annex-shell -c "COMMAND ..."` is refused: sshd puts the client's
//! own command line in `SSH_ORIGINAL_COMMAND`, and git-annex never writes `-c` there.
//!
//! `true` alone succeeds without running anything: git-annex sends it to warm up its ssh
//! connection cache (`ssh -o BatchMode=true ... host true`), and would otherwise retry it on
//! every run. It gives the peer nothing.
//!
//! git-annex-shell runs with `GIT_ANNEX_SHELL_DIRECTORY` set to the canonical repository (it
//! then refuses any other directory itself: defence in depth) and `GIT_ANNEX_SHELL_LIMITED=1`
//! (it never falls back to git-shell). When git-annex-shell is not installed here the peer is
//! told so, and what to install; [`annex_shell_path`] lets pairing tell it in advance.
//!
//! # The environment
//!
//! git and git-annex-shell start from an empty environment plus an allowlist of ours
//! (`environment`): a peer whose variables sshd's `AcceptEnv` lets through must not choose
//! git's configuration (`XDG_CONFIG_HOME`, `GIT_CONFIG_*`), repository (`GIT_DIR`) or loader
//! (`LD_PRELOAD`).
//!
//! # Layout
//!
//! - `request`: `SSH_ORIGINAL_COMMAND` to a [`Request`] (pure);
//! - `path`: where a requested path leads, compared with the served repository;
//! - `annex`: where git-annex-shell is, and whether the repository is a git-annex one;
//! - `environment`: the allowlist;
//! - here: the errors and [`run`], which puts them together and execs.

mod annex;
mod environment;
mod path;
mod request;

pub use annex::{annex_shell_available, annex_shell_in, annex_shell_path};
pub use path::{is_allowed, resolve};
pub use request::{
    allowed_annex_commands, allowed_services, annex_to_git_path, parse_request, AnnexCommand,
    Refusal, Request, Service, ANNEX_SHELL, MAX_REQUEST_LEN,
};

use std::convert::Infallible;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sanitize::for_terminal_within;

use path::{allowed_targets, matches_targets};

/// Errors of `git pair serve`. Every variant means "exit with status 1"; each displays as one
/// line meant to follow a `git pair serve: ` prefix on stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No `SSH_ORIGINAL_COMMAND`: someone tried to log in with the paired key.
    #[error(
        "refused: this key may only be used by git and git-annex (git pair serve): interactive logins are refused"
    )]
    Interactive,

    /// The request is not something this key may do. `repo` is filled in by [`run`] (it is
    /// `None` from the pure functions, which do not know the repository).
    #[error("{}", refused_message(.refusal, .request, .repo.as_deref()))]
    Refused {
        refusal: Refusal,
        request: String,
        repo: Option<PathBuf>,
    },

    /// The repository this key serves cannot be opened (moved or deleted since pairing).
    #[error(
        "cannot serve {}: {source}; if the repository moved, pair again with `git pair` from its new place",
        .repo.display()
    )]
    Repo {
        repo: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Neither `HOME` nor the user database says where this user's home is.
    #[error(
        "cannot find the home directory: HOME is unset and the user database has no entry for uid {uid}"
    )]
    NoHome { uid: u32 },

    /// `exec git` failed.
    #[error("could not run git ({source}): is git installed and on the PATH of this account?")]
    Exec {
        #[source]
        source: io::Error,
    },

    /// git-annex-shell was asked for but is not on this account's PATH. `host` is this
    /// machine's name, so that the message makes sense on the peer's terminal.
    #[error(
        "{ANNEX_SHELL} is not installed on {host}, so git-annex cannot use this remote; \
         install git-annex on {host} (Debian/Ubuntu: sudo apt install git-annex) and try again"
    )]
    AnnexShellMissing { host: String },

    /// `exec git-annex-shell` failed for another reason than its absence. The message leaves
    /// the cause to the error chain (`...: Permission denied`).
    #[error(
        "could not run {}; check the git-annex installation on this machine",
        .path.display()
    )]
    AnnexExec {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ServeError {
    fn refused(refusal: Refusal, request: &str) -> Self {
        ServeError::Refused {
            refusal,
            request: request.to_owned(),
            repo: None,
        }
    }

    /// The same error, naming the served repository in the message.
    fn with_repo(self, served: &Path) -> Self {
        match self {
            ServeError::Refused {
                refusal, request, ..
            } => ServeError::Refused {
                refusal,
                request,
                repo: Some(served.to_path_buf()),
            },
            other => other,
        }
    }
}

fn refused_message(refusal: &Refusal, request: &str, repo: Option<&Path>) -> String {
    let what = match repo {
        Some(repo) => format!(
            "only git fetch/push and git-annex on {} are allowed with this key",
            for_terminal_within(&repo.to_string_lossy(), usize::MAX)
        ),
        None => "only git fetch/push and git-annex are allowed with this key".to_owned(),
    };
    // For a wrong path the first half already says it all.
    let why = match refusal {
        Refusal::OtherRepository => String::new(),
        other => format!(" ({other})"),
    };
    format!(
        "refused: {what}{why}; the request was: {}",
        for_terminal_within(request, MAX_ECHO_CHARS)
    )
}

/// How much of a refused request is echoed back.
const MAX_ECHO_CHARS: usize = 200;

/// The request git-annex sends to warm up its ssh connection cache; it gets exit status 0 and
/// nothing else.
pub const CONNECTION_PROBE: &str = "true";

/// This machine's name for messages the peer reads, sanitized (it ends up on their terminal).
fn host_name() -> String {
    let name = crate::local::host_name().unwrap_or_else(|| "the remote machine".to_owned());
    for_terminal_within(&name, 64)
}

/// Runs the forced command: checks `SSH_ORIGINAL_COMMAND` against `repo` and, when it is a git
/// fetch, push or archive of that repository, replaces this process with
/// `git <service> <canonical repo>`; when it is an allowed git-annex-shell command on that
/// repository, with `git-annex-shell <command> <canonical repo> <params...>` under
/// `GIT_ANNEX_SHELL_DIRECTORY=<canonical repo>` and `GIT_ANNEX_SHELL_LIMITED=1`, but only when
/// that repository has an `annex.uuid` at this moment. stdin/stdout stay connected to the peer;
/// the environment is cleared down to an allowlist (see the module documentation). git-annex's
/// connection probe `true` exits 0 at once.
///
/// Only returns on refusal or failure; the caller prints `git pair serve: {error}` on stderr and
/// exits with status 1.
pub fn run(repo: &Path) -> Result<Infallible, ServeError> {
    let original = match std::env::var_os("SSH_ORIGINAL_COMMAND") {
        None => return Err(ServeError::Interactive),
        Some(original) => original,
    };
    if original == CONNECTION_PROBE {
        // Nothing to run and nothing to check: success is all git-annex wants to know.
        std::process::exit(0);
    }
    let (canonical, targets) = allowed_targets(repo).map_err(|source| ServeError::Repo {
        repo: repo.to_path_buf(),
        source,
    })?;
    let original = match original.into_string() {
        Ok(original) => original,
        Err(raw) => {
            return Err(ServeError::Refused {
                refusal: Refusal::NotUtf8,
                request: raw.to_string_lossy().into_owned(),
                repo: Some(canonical),
            })
        }
    };
    let request = parse_request(&original).map_err(|e| e.with_repo(&canonical))?;
    let home = crate::local::home_dir().map_err(|e| match e {
        crate::local::LocalError::NoHome { uid } | crate::local::LocalError::NoAccount { uid } => {
            ServeError::NoHome { uid }
        }
    })?;
    let (path, cwd) = match request.service {
        // git-annex-shell reads `/~/x` as `~/x`, and relative paths from the home directory.
        Service::AnnexShell(_) => (annex_to_git_path(&request.path), home.clone()),
        _ => (
            request.path.as_str(),
            std::env::current_dir().unwrap_or_else(|_| home.clone()),
        ),
    };
    let resolved = resolve(path, &home, &cwd).map_err(|e| e.with_repo(&canonical))?;
    if !matches_targets(&resolved, &targets) {
        return Err(ServeError::Refused {
            refusal: Refusal::OtherRepository,
            request: original,
            repo: Some(canonical),
        });
    }

    let env = environment::allowed(std::env::vars_os());
    match (request.service, request.service.subcommand()) {
        (Service::AnnexShell(command), _) => {
            let Some(program) = annex_shell_path() else {
                return Err(ServeError::AnnexShellMissing { host: host_name() });
            };
            if annex::annex_uuid(&canonical, &env).is_none() {
                return Err(ServeError::Refused {
                    refusal: Refusal::NotAnnexRepository,
                    request: original,
                    repo: Some(canonical),
                });
            }
            let mut annex = Command::new(&program);
            annex
                .arg(command.name())
                .arg(&canonical)
                .args(&request.args)
                .env_clear()
                .envs(env)
                .env("GIT_ANNEX_SHELL_DIRECTORY", &canonical)
                .env("GIT_ANNEX_SHELL_LIMITED", "1");
            let source = annex.exec();
            Err(if source.kind() == io::ErrorKind::NotFound {
                ServeError::AnnexShellMissing { host: host_name() }
            } else {
                ServeError::AnnexExec {
                    path: program,
                    source,
                }
            })
        }
        (_, Some(subcommand)) => {
            let mut git = Command::new("git");
            git.arg(subcommand).arg(&canonical).env_clear().envs(env);
            Err(ServeError::Exec { source: git.exec() })
        }
        // Every service but git-annex-shell is a git subcommand; refuse rather than panic
        // should a future variant break that.
        (service, None) => Err(ServeError::Refused {
            refusal: Refusal::UnknownProgram(service.program().to_owned()),
            request: original,
            repo: Some(canonical),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line_and_escape_the_request() {
        let err = parse_request("cat /etc/passwd\n\u{1b}[2J\u{202e}").unwrap_err();
        let err = err.with_repo(Path::new("/home/bob/notes"));
        let msg = err.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}') && !msg.contains('\u{202e}'));
        assert!(msg.starts_with(
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with this key ("
        ));
        assert!(msg.ends_with("; the request was: cat /etc/passwd\\n\\u{1b}[2J\\u{202e}"));

        let err = parse_request("cat /etc/passwd").unwrap_err();
        assert_eq!(
            err.with_repo(Path::new("/home/bob/notes")).to_string(),
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with this \
             key (cat is not one of git-upload-pack, git-receive-pack, git-upload-archive, \
             git-annex-shell); the request was: cat /etc/passwd"
        );
        let other = ServeError::Refused {
            refusal: Refusal::OtherRepository,
            request: "git-upload-pack '/home/bob/secret'".into(),
            repo: Some("/home/bob/notes".into()),
        };
        assert_eq!(
            other.to_string(),
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with this \
             key; the request was: git-upload-pack '/home/bob/secret'"
        );
        assert_eq!(
            ServeError::Interactive.to_string(),
            "refused: this key may only be used by git and git-annex (git pair serve): interactive logins are refused"
        );
        let long = parse_request(&"x".repeat(1000)).unwrap_err().to_string();
        // 1000 characters in, well under that out: the refusal text plus 200 echoed.
        assert!(long.chars().count() < 450, "echo is cut short");
    }

    #[test]
    fn annex_refusals_are_one_escaped_line() {
        let err = parse_request("git-annex-shell 'lockcontent\u{1b}[2J\u{202e}' '/p'")
            .unwrap_err()
            .with_repo(Path::new("/home/bob/notes"));
        let msg = err.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}') && !msg.contains('\u{202e}'));
        assert_eq!(
            parse_request("git-annex-shell 'commit' '/p'")
                .unwrap_err()
                .with_repo(Path::new("/home/bob/notes"))
                .to_string(),
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with \
             this key (git-annex-shell commit is not one of configlist, p2pstdio, \
             notifychanges, inannex, recvkey, sendkey, dropkey); the request \
             was: git-annex-shell 'commit' '/p'"
        );
        assert_eq!(
            ServeError::AnnexShellMissing {
                host: "laptop".into()
            }
            .to_string(),
            "git-annex-shell is not installed on laptop, so git-annex cannot use this remote; \
             install git-annex on laptop (Debian/Ubuntu: sudo apt install git-annex) and try \
             again"
        );
    }

    #[test]
    fn the_connection_probe_is_only_a_bare_true() {
        // run() answers exactly this string before parsing; parsing itself refuses `true`,
        // so nothing near it (`true x`, `'true'`) gets the same free pass.
        assert_eq!(CONNECTION_PROBE, "true");
        assert!(matches!(
            parse_request("true"),
            Err(ServeError::Refused {
                refusal: Refusal::UnknownProgram(_),
                ..
            })
        ));
    }
}

/// A temporary directory for the submodules' tests, removed on drop.
#[cfg(test)]
pub(crate) mod test_dir {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};

    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "git-pair-serve-unit-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(std::fs::canonicalize(dir).unwrap())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    pub(crate) fn mkdirs(p: &Path) {
        std::fs::create_dir_all(p).unwrap();
    }
}
