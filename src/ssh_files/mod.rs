//! Everything git-pair writes under `~/.ssh`, and nothing else.
//!
//! One pairing touches these paths:
//!
//! | path | owner | what git-pair puts there |
//! | --- | --- | --- |
//! | `~/.ssh/authorized_keys` | the user | one `restrict,command="…"` line per paired peer, tagged `git-pair:<marker>` |
//! | `~/.ssh/config` | the user | one `Include ~/.ssh/git-pair/config` line, first in the file |
//! | `~/.ssh/git-pair/config` | git-pair | one `Host <alias>` block per pairing |
//! | `~/.ssh/git-pair/known_hosts` | git-pair | the peer's sshd host keys, pinned under `HostKeyAlias <alias>` |
//! | `~/.ssh/git-pair/id_<alias>{,.pub}` | git-pair | a key generated for one pairing |
//! | `~/.ssh/git-pair/secret_<alias>` | git-pair | the pairing's pair secret ([`pair_secret`]) |
//! | `~/.ssh/git-pair/journal` | git-pair | while a transaction is uncommitted: what it changed ([`journal`]) |
//! | `~/.ssh/git-pair/.lock` | git-pair | flocked while a transaction runs |
//!
//! The work is split in two. The planners ([`authorized_keys`], [`client_config`], [`known_hosts`])
//! are pure functions from the old bytes of one file to its new bytes; every line they do not own
//! comes out byte for byte, whatever its line ending, encoding or syntax. [`apply`] and [`remove`]
//! run the planners inside a transaction: a flock on `~/.ssh/git-pair/.lock`, one atomic write per
//! file ([`atomic`]), and a [`journal`] on disk holding the exact previous bytes and mode of every
//! file touched, so that a failure, an interruption, a later [`Applied::rollback`] or a crash
//! (undone by the next run's [`recover`]) leaves every file as it was. The repository's config
//! joins the same transaction (`repo::write_remote`).
//!
//! Everything the peer sent (host name, user, keys, label) is untrusted: values that end up in
//! `ssh_config` are checked against a strict allowlist, and the label in `authorized_keys` is
//! stripped of control, bidi and zero-width characters.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub mod atomic;
pub mod authorized_keys;
pub mod client_config;
pub mod journal;
pub mod known_hosts;
pub mod pair_secret;
pub mod recovery;
mod transaction;

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod io_tests;
#[cfg(test)]
pub(crate) mod test_keys;

pub use client_config::{BlockRecord, FoundBlock, HostBlock, Refresh};
pub use pair_secret::SecretRecord;
pub use recovery::{recover, Recovery};
pub use transaction::{Applied, Committed, FileMode};

/// What can go wrong while planning or writing files under `~/.ssh`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path that must be a directory is something else.
    #[error("{} exists but is not a directory: git pair keeps ssh files there; move it aside and retry", .path.display())]
    NotADirectory { path: PathBuf },

    /// A file git-pair has to rewrite is a directory, a socket, …
    #[error("{} exists but is not a regular file: move it aside and retry", .path.display())]
    NotAFile { path: PathBuf },

    /// We lack permission to write a file or a directory (or it is on a read-only file system).
    #[error("{} is not writable by you: check its owner and mode ({hint})", .path.display())]
    NotWritable {
        path: PathBuf,
        hint: &'static str,
        #[source]
        source: io::Error,
    },

    /// `~/.ssh/config` lacks git pair's `Include` line and cannot be changed: it is often a
    /// symlink into a read-only store (home-manager) or otherwise managed by another tool.
    #[error(
        "{} cannot be changed: {why}. git pair needs one line at its top so that ssh finds the \
         aliases git pair makes. Add this line at the top of your ssh configuration (with \
         home-manager: programs.ssh.includes), then run git pair again:\n\n    {include}\n\n\
         Or pair now without editing it, with --no-ssh-config (or once for all: git config \
         --global pair.sshConfig false), and add the line later",
        .path.display()
    )]
    ConfigReadOnly {
        path: PathBuf,
        why: String,
        include: String,
    },

    /// The home directory does not exist, so `~/.ssh` cannot be created.
    #[error("the home directory {} does not exist: set HOME to your home directory", .path.display())]
    NoHome { path: PathBuf },

    /// A value (alias, host name, user, marker, command) would be unsafe or ambiguous in an ssh file.
    #[error("{what} {value:?} cannot be written to an ssh file: {reason}")]
    InvalidValue {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    /// A path would be unsafe or ambiguous in an ssh file or in the forced command.
    #[error("{what} {} cannot be used: {reason}", .path.display())]
    InvalidPath {
        what: &'static str,
        path: PathBuf,
        reason: &'static str,
    },

    /// A key file for this alias already exists; git-pair never overwrites a key.
    #[error("{} already exists and git pair never overwrites a key file: run `git pair remove` for this pairing or move the file aside, then retry", .path.display())]
    IdentityExists { path: PathBuf },

    /// A name this pairing would write under already belongs to another pairing. git pair
    /// chooses its names itself and checks them first, so this is a bug; nothing is written.
    #[error("{name} is already used by another pairing here ({what}), and git pair never overwrites another pairing: this is a bug in git pair, please report it; nothing was changed")]
    InUse { what: &'static str, name: String },

    /// A line of `authorized_keys` that git pair did not write already lets the peer's key in.
    #[error("line {line} of ~/.ssh/authorized_keys already lets the peer's key in, and git pair did not write that line; git pair never changes a line it did not write: remove or change that line yourself, or have the peer pair with its own key (without --key), then pair again")]
    KeyAuthorizedByHand { line: usize },

    /// git pair's line of another pairing already lets the peer's key in.
    #[error("line {line} of ~/.ssh/authorized_keys lets the peer's key in for another pairing ({marker}); one key can open only one repository")]
    KeyInAnotherPairing { line: usize, marker: String },

    /// The lock file could not be opened or locked.
    #[error("cannot lock {}: check that ~/.ssh/git-pair belongs to you and is writable", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file system call failed.
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Another program holds git's lock on a file git pair must change.
    #[error("{} is being changed by another program ({} exists): retry when it has finished; if no git command is running, remove {} and retry", .path.display(), .lock.display(), .lock.display())]
    FileLocked { path: PathBuf, lock: PathBuf },

    /// Undoing found a file changed by someone else since git pair wrote it; it was left as is.
    #[error("{} was changed by another program after git pair wrote it, so git pair left it as it is", .path.display())]
    ChangedSince { path: PathBuf },

    /// A symlink chain under `~/.ssh` does not end.
    #[error("{} is a symlink loop: fix or remove the symlink and retry", .path.display())]
    SymlinkLoop { path: PathBuf },

    /// The pairing's `Host` block is not in git-pair's config (removed meanwhile).
    #[error("git pair's ssh config has no Host block {alias}: was the pairing removed? `git pair list` shows what is left")]
    NoHostBlock { alias: String },

    /// A pair secret file is damaged or of an unknown format.
    #[error("{} is not a usable pair secret ({source}): run `git pair remove` for this pairing and pair again", .path.display())]
    BadSecret {
        path: PathBuf,
        #[source]
        source: pair_secret::SecretError,
    },

    /// An ssh key could not be encoded.
    #[error("cannot encode an ssh key")]
    Key(#[from] ssh_key::Error),

    /// The caller's `interrupted` callback asked to stop; everything done so far was undone.
    #[error("interrupted; the changes to ~/.ssh were undone")]
    Interrupted,

    /// Undoing changes failed for some files.
    #[error("could not undo the changes to {}: check these files by hand", display_paths(.failed))]
    RollbackFailed {
        failed: Vec<PathBuf>,
        #[source]
        first: Box<Error>,
    },

    /// A step failed, and undoing the steps before it failed too.
    #[error("{cause}; undoing the earlier changes also failed, so files under ~/.ssh may be half changed")]
    Incomplete {
        cause: Box<Error>,
        #[source]
        rollback: Box<Error>,
    },
}

/// The start of a pair secret's file name, before the alias.
pub const SECRET_PREFIX: &str = "secret_";

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The paths of one user's `~/.ssh` that git-pair knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshDir {
    home: PathBuf,
    root: PathBuf,
    /// The directory ssh expands `~` to: the passwd home, which is `home`
    /// unless HOME was pointed elsewhere (a demo, a test, `sudo -E`).
    tilde: PathBuf,
}

impl SshDir {
    /// `home` is the user's home directory; the root is `home/.ssh`.
    pub fn new(home: &Path) -> Self {
        SshDir {
            home: home.to_path_buf(),
            root: home.join(".ssh"),
            tilde: home.to_path_buf(),
        }
    }

    /// Like [`SshDir::new`], for when ssh's `~` (the passwd home) is not
    /// `home`: paths are then written absolute, so that they mean the same
    /// to ssh as to git-pair.
    pub fn with_tilde(home: &Path, tilde: &Path) -> Self {
        SshDir {
            tilde: tilde.to_path_buf(),
            ..SshDir::new(home)
        }
    }

    /// The home directory this was built from.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// What `~` means to ssh (used to write `~/…` paths into ssh_config).
    pub fn tilde(&self) -> &Path {
        &self.tilde
    }

    /// `~/.ssh`
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `~/.ssh/authorized_keys`
    pub fn authorized_keys(&self) -> PathBuf {
        self.root.join("authorized_keys")
    }

    /// `~/.ssh/config`
    pub fn config(&self) -> PathBuf {
        self.root.join("config")
    }

    /// `~/.ssh/git-pair`, owned by git-pair.
    pub fn pair_dir(&self) -> PathBuf {
        self.root.join("git-pair")
    }

    /// `~/.ssh/git-pair/config`, owned by git-pair: one `Host` block per pairing.
    pub fn pair_config(&self) -> PathBuf {
        self.pair_dir().join("config")
    }

    /// `~/.ssh/git-pair/known_hosts`, owned by git-pair: the pinned host keys.
    pub fn pair_known_hosts(&self) -> PathBuf {
        self.pair_dir().join("known_hosts")
    }

    /// `~/.ssh/git-pair/id_<alias>`. The alias is not checked here: call [`validate_alias`] on
    /// anything that did not come from git-pair itself, since `/` or `..` would leave the directory.
    pub fn identity(&self, alias: &str) -> PathBuf {
        self.pair_dir().join(format!("id_{alias}"))
    }

    /// `~/.ssh/git-pair/id_<alias>.pub` (the alias may contain dots, so this is not
    /// `with_extension`).
    pub fn identity_pub(&self, alias: &str) -> PathBuf {
        self.pair_dir().join(format!("id_{alias}.pub"))
    }

    /// `~/.ssh/git-pair/secret_<alias>`, the pairing's pair secret (mode 0600). The alias is not
    /// checked here: see [`SshDir::identity`].
    pub fn pair_secret(&self, alias: &str) -> PathBuf {
        self.pair_dir().join(format!("{SECRET_PREFIX}{alias}"))
    }

    /// The pair secret stored for `alias`: `None` when there is none (a pairing made before
    /// git pair stored them), an error when the file cannot be read or is not a pair secret.
    pub fn read_pair_secret(&self, alias: &str) -> Result<Option<SecretRecord>, Error> {
        validate_alias(alias)?;
        let path = self.pair_secret(alias);
        let Some(file) = atomic::read(&path)? else {
            return Ok(None);
        };
        SecretRecord::parse(&file.bytes)
            .map(Some)
            .map_err(|source| Error::BadSecret { path, source })
    }

    /// Every pair secret in `~/.ssh/git-pair`, by alias, sorted; files that cannot be read are
    /// returned as errors beside the others. None when the directory does not exist.
    #[allow(clippy::type_complexity)]
    pub fn pair_secrets(&self) -> Result<Vec<(String, Result<SecretRecord, Error>)>, Error> {
        let dir = self.pair_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::Io {
                    action: "list",
                    path: dir,
                    source,
                })
            }
        };
        let mut aliases: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|name| name.strip_prefix(SECRET_PREFIX).map(str::to_owned))
            .filter(|alias| validate_alias(alias).is_ok())
            .collect();
        aliases.sort();
        Ok(aliases
            .into_iter()
            .filter_map(|alias| match self.read_pair_secret(&alias) {
                Ok(Some(record)) => Some((alias, Ok(record))),
                // Removed between the listing and the read.
                Ok(None) => None,
                Err(e) => Some((alias, Err(e))),
            })
            .collect())
    }

    /// What already uses `alias` here, if anything: a `Host` block of git-pair's config
    /// (compared without case, as ssh does), pinned host keys, a key file or a pair secret.
    /// A new pairing's alias must be free of all of them.
    pub fn alias_in_use(&self, alias: &str) -> Result<Option<&'static str>, Error> {
        validate_alias(alias)?;
        if self
            .pair_blocks()?
            .iter()
            .any(|b| b.alias.eq_ignore_ascii_case(alias))
        {
            return Ok(Some("a Host block in ~/.ssh/git-pair/config"));
        }
        let known = atomic::read(&atomic::resolve(&self.pair_known_hosts())?)?;
        if known.is_some_and(|f| !known_hosts::keys_for(&f.bytes, alias).is_empty()) {
            return Ok(Some("host keys pinned in ~/.ssh/git-pair/known_hosts"));
        }
        for (what, path) in [
            ("a key file in ~/.ssh/git-pair", self.identity(alias)),
            ("a key file in ~/.ssh/git-pair", self.identity_pub(alias)),
            ("a pair secret in ~/.ssh/git-pair", self.pair_secret(alias)),
        ] {
            if std::fs::symlink_metadata(&path).is_ok() {
                return Ok(Some(what));
            }
        }
        Ok(None)
    }

    /// The host keys pinned for `alias` in git-pair's known_hosts; none if it does not exist.
    pub fn pinned_keys(&self, alias: &str) -> Result<Vec<ssh_key::PublicKey>, Error> {
        let known = atomic::read(&atomic::resolve(&self.pair_known_hosts())?)?;
        Ok(known
            .map(|f| known_hosts::keys_for(&f.bytes, alias))
            .unwrap_or_default())
    }

    /// What already uses `marker` here, if anything: a line of `authorized_keys` or the record
    /// of a `Host` block.
    pub fn marker_in_use(&self, marker: &str) -> Result<Option<&'static str>, Error> {
        if self
            .pair_blocks()?
            .iter()
            .any(|b| b.marker.as_deref() == Some(marker))
        {
            return Ok(Some("the record of a Host block in ~/.ssh/git-pair/config"));
        }
        let keys = atomic::read(&atomic::resolve(&self.authorized_keys())?)?;
        if keys.is_some_and(|f| {
            authorized_keys::git_pair_lines(&f.bytes)
                .iter()
                .any(|l| l.marker == marker)
        }) {
            return Ok(Some("a line of ~/.ssh/authorized_keys"));
        }
        Ok(None)
    }

    /// The `Host` blocks of git-pair's config, with their records; none if it does not exist.
    pub fn pair_blocks(&self) -> Result<Vec<FoundBlock>, Error> {
        let bytes = atomic::read(&atomic::resolve(&self.pair_config())?)?;
        Ok(bytes
            .map(|f| client_config::pair_blocks(&f.bytes))
            .unwrap_or_default())
    }

    /// `~/.ssh/git-pair/journal`: the undo journal of an uncommitted transaction (see
    /// [`journal`]).
    pub fn journal(&self) -> PathBuf {
        self.pair_dir().join(journal::FILE_NAME)
    }

    /// `~/.ssh/git-pair/.lock`, flocked while a transaction runs.
    pub fn lock_file(&self) -> PathBuf {
        self.pair_dir().join(".lock")
    }

    /// Preflight, before any network traffic: `~/.ssh` (or the home, if `~/.ssh` does not exist
    /// yet) is a writable directory, and every file git-pair would rewrite is a regular file that
    /// we may write, in a directory where we may create the temporary file. Symlinks are followed
    /// the way the writes follow them. `~/.ssh/config`, which git pair may leave alone, is
    /// checked by [`SshDir::include_state`].
    ///
    /// Root passes every permission check except on a read-only file system, so as root this
    /// mostly catches "is not a directory" / "is not a regular file".
    pub fn check_writable(&self) -> Result<(), Error> {
        match dir_state(&self.root)? {
            DirState::Missing => {
                return match dir_state(&self.home)? {
                    DirState::Missing => Err(Error::NoHome {
                        path: self.home.clone(),
                    }),
                    DirState::Present => writable_dir(&self.home, "it should be yours"),
                };
            }
            DirState::Present => writable_dir(&self.root, SSH_DIR_HINT)?,
        }
        check_file(&self.authorized_keys())?;
        match dir_state(&self.pair_dir())? {
            DirState::Missing => Ok(()),
            DirState::Present => {
                writable_dir(&self.pair_dir(), SSH_DIR_HINT)?;
                check_file(&self.pair_config())?;
                check_file(&self.pair_known_hosts())
            }
        }
    }
}

/// Whether `~/.ssh/config` includes git pair's config, and whether a pairing adds the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncludeState {
    /// The `Include` line is there (written by git pair, by hand or by a tool): nothing to do.
    Present,
    /// It is missing and the pairing adds it.
    Add,
    /// It is missing and stays so (--no-ssh-config): ssh will not find the aliases until this
    /// line is added by hand.
    Missing { line: String },
}

impl SshDir {
    /// The `Include` line git pair puts at the top of `~/.ssh/config`.
    pub fn include_line(&self) -> Result<String, Error> {
        client_config::include_line(&self.pair_config(), self.tilde())
    }

    /// Whether `~/.ssh/config` already includes git pair's config at its top level.
    pub fn includes_pair_config(&self) -> Result<bool, Error> {
        let existing = atomic::read(&atomic::resolve(&self.config())?)?;
        let plan = client_config::plan_include(
            existing.as_ref().map(|f| f.bytes.as_slice()),
            &self.pair_config(),
            self.tilde(),
        )?;
        Ok(plan.is_none())
    }

    /// What a pairing does with `~/.ssh/config`: nothing if the `Include` line is there; add it
    /// if `edit` (after checking the file may be written, else [`Error::ConfigReadOnly`] with the
    /// line to add by hand); else nothing, and the line is missing.
    pub fn include_state(&self, edit: bool) -> Result<IncludeState, Error> {
        if self.includes_pair_config()? {
            return Ok(IncludeState::Present);
        }
        if !edit {
            return Ok(IncludeState::Missing {
                line: self.include_line()?,
            });
        }
        self.check_config_writable()?;
        Ok(IncludeState::Add)
    }

    /// `~/.ssh/config` may be rewritten (as the other files are checked); if not for lack of permission or a
    /// read-only file system, says why in terms of what the person sees (a symlink into a
    /// read-only store) and which line to add by hand.
    pub fn check_config_writable(&self) -> Result<(), Error> {
        if let DirState::Missing = dir_state(&self.root)? {
            // Created with ~/.ssh, which check_writable checked can be.
            return Ok(());
        }
        let path = self.config();
        match check_file(&path) {
            Err(Error::NotWritable { source, .. }) => {
                let real = atomic::resolve(&path)?;
                let read_only_fs = source.raw_os_error() == Some(nix::libc::EROFS);
                let what = if read_only_fs {
                    "is on a read-only file system"
                } else {
                    "you may not write"
                };
                let why = if real != path {
                    format!("it is a symlink to {}, which {what}", real.display())
                } else if read_only_fs {
                    format!("it {what}")
                } else {
                    "you may not write it or its directory".to_string()
                };
                Err(Error::ConfigReadOnly {
                    path,
                    why,
                    include: self.include_line()?,
                })
            }
            other => other,
        }
    }
}

enum DirState {
    Missing,
    Present,
}

fn dir_state(path: &Path) -> Result<DirState, Error> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Ok(DirState::Present),
        Ok(_) => Err(Error::NotADirectory {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(DirState::Missing),
        Err(source) => Err(Error::Io {
            action: "inspect",
            path: path.to_path_buf(),
            source,
        }),
    }
}

const SSH_DIR_HINT: &str = "it should be yours, chmod 700";

fn writable_dir(path: &Path, hint: &'static str) -> Result<(), Error> {
    use nix::unistd::{access, AccessFlags};
    access(path, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|errno| Error::NotWritable {
        path: path.to_path_buf(),
        hint,
        source: errno.into(),
    })
}

/// A file we may rewrite: if it exists it must be a writable regular file; either way the
/// directory it (or its symlink target) lives in must let us create the temporary file.
fn check_file(path: &Path) -> Result<(), Error> {
    use nix::unistd::{access, AccessFlags};
    let real = atomic::resolve(path)?;
    match std::fs::metadata(&real) {
        Ok(m) if !m.is_file() => {
            return Err(Error::NotAFile {
                path: path.to_path_buf(),
            })
        }
        Ok(_) => access(&real, AccessFlags::W_OK).map_err(|errno| Error::NotWritable {
            path: path.to_path_buf(),
            hint: "it should be yours, chmod 600",
            source: errno.into(),
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(Error::Io {
                action: "inspect",
                path: path.to_path_buf(),
                source,
            })
        }
    }
    let parent = real.parent().unwrap_or(Path::new("/"));
    match dir_state(parent)? {
        DirState::Present => writable_dir(parent, SSH_DIR_HINT),
        DirState::Missing => Err(Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source: io::Error::new(
                io::ErrorKind::NotFound,
                format!("its directory {} does not exist", parent.display()),
            ),
        }),
    }
}

/// Everything one pairing writes under `~/.ssh`. Pure data; [`apply`] validates it.
#[derive(Debug, Clone)]
pub struct PairSetup {
    /// ssh `Host` alias, e.g. `git-pair-laptop-3f9a1c2e`; see [`validate_alias`].
    pub alias: String,
    /// What goes in `HostName`: `10.0.0.2`, `fe80::2%veth0`, `host.lan`.
    pub host_name: String,
    pub port: u16,
    /// The remote login user.
    pub user: String,
    /// Which private key the alias uses.
    pub identity: Identity,
    /// The peer's sshd host keys, pinned under `HostKeyAlias <alias>`.
    pub host_keys: Vec<ssh_key::PublicKey>,
    /// The peer's user key, let in with a forced command.
    pub authorized: AuthorizedEntry,
    /// Which repository and remote the `Host` block belongs to, recorded in it.
    pub record: Option<client_config::BlockRecord>,
    /// Aliases of an earlier pairing of the same two repositories: their `Host` blocks, pinned
    /// keys, pair secrets and unshared key files go in the same transaction (the
    /// `authorized_keys` line is replaced through the marker).
    pub replaces: Vec<String>,
    /// The `authorized_keys` markers of the pairings in `replaces`: their lines go in the same
    /// transaction. Any other line that lets the peer's key in makes [`apply`] refuse.
    pub replaces_markers: Vec<String>,
    /// The pairing's pair secret, written to [`SshDir::pair_secret`] (0600). `None` writes
    /// none (and leaves an existing one).
    pub secret: Option<SecretRecord>,
    /// Whether `~/.ssh/config` may get git pair's `Include` line (false: --no-ssh-config).
    pub edit_config: bool,
}

/// Which private key a pairing's `Host` block uses.
// Not boxed: this is the shape the callers asked for, and there is one per run.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Identity {
    /// A key generated for this pairing: written to `identity(alias)` (0600, never overwriting)
    /// and `identity_pub(alias)` (0644).
    Generated(ssh_key::PrivateKey),
    /// An existing key the user named with `--key`: referenced by absolute path, never written.
    Existing(PathBuf),
}

// By hand, so that no secret can reach a log through `{:?}`.
impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Generated(key) => f
                .debug_tuple("Generated")
                .field(&format_args!(
                    "{}",
                    key.public_key().fingerprint(ssh_key::HashAlg::Sha256)
                ))
                .finish(),
            Identity::Existing(path) => f.debug_tuple("Existing").field(path).finish(),
        }
    }
}

/// The peer's user key as one `authorized_keys` line; see [`authorized_keys::render_line`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedEntry {
    pub key: ssh_key::PublicKey,
    /// The forced command, already shell-quoted (see [`forced_command`]). Must not contain
    /// control characters or end with a backslash.
    pub command: String,
    /// Identifies "this local repo paired with that peer repo"; a re-pair replaces lines with the
    /// same marker. Characters: `A-Z a-z 0-9 . _ - : @ + = /`.
    pub marker: String,
    /// Human part of the comment, e.g. `alice@laptop:/home/alice/notes`. Control, bidi and
    /// zero-width characters are replaced by `?` when written.
    pub label: String,
}

/// Checks an ssh `Host` alias: 1 to 64 characters from `A-Z a-z 0-9 . _ -`, not starting with
/// `-` (it would read as an option on an ssh or git command line) or `.`.
pub fn validate_alias(alias: &str) -> Result<(), Error> {
    let invalid = |reason| Error::InvalidValue {
        what: "ssh alias",
        value: alias.to_owned(),
        reason,
    };
    if alias.is_empty() || alias.len() > 64 {
        return Err(invalid("it must be 1 to 64 characters long"));
    }
    if !alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(invalid("use only letters, digits, '.', '_' and '-'"));
    }
    if alias.starts_with(['-', '.']) {
        return Err(invalid("it must not start with '-' or '.'"));
    }
    Ok(())
}

/// Shell-quotes the forced command `'<exe>' serve --repo '<repo>'` (POSIX single quotes, with
/// `'` written as `'\''`). sshd runs it through the user's login shell.
///
/// Refuses relative paths, paths that are not UTF-8, and paths with a control character
/// (a newline would end the `authorized_keys` line) or a backslash (fish, a common login shell,
/// treats `\\` and `\'` as escapes even inside single quotes, so the path would change).
pub fn forced_command(exe: &Path, repo: &Path) -> Result<String, Error> {
    let exe = command_path("git-pair executable", exe)?;
    let repo = command_path("repository path", repo)?;
    Ok(format!(
        "{} serve --repo {}",
        shell_quote(exe),
        shell_quote(repo)
    ))
}

fn command_path<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, Error> {
    let text = plain_path(what, path)?;
    if text.contains('\\') {
        return Err(Error::InvalidPath {
            what,
            path: path.to_path_buf(),
            reason: "it contains a backslash, which some login shells (fish) would read as an escape; rename it",
        });
    }
    Ok(text)
}

/// An absolute, UTF-8 path without control characters: the only kind that
/// can be written into an ssh file unambiguously.
pub(crate) fn plain_path<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, Error> {
    let invalid = |reason| Error::InvalidPath {
        what,
        path: path.to_path_buf(),
        reason,
    };
    if !path.is_absolute() {
        return Err(invalid("it must be an absolute path"));
    }
    let text = path
        .to_str()
        .ok_or_else(|| invalid("it is not valid UTF-8; rename it"))?;
    if text.chars().any(char::is_control) {
        return Err(invalid(
            "it contains a newline or another control character; rename it",
        ));
    }
    Ok(text)
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The validated, rendered pieces of a [`PairSetup`], computed before anything is written.
struct Prepared {
    block: HostBlock,
    /// Private key (OpenSSH PEM, LF) and public key line, if the identity is generated.
    identity: Option<(Zeroizing<String>, String)>,
}

fn prepare(dir: &SshDir, setup: &PairSetup) -> Result<Prepared, Error> {
    validate_alias(&setup.alias)?;
    for old in &setup.replaces {
        validate_alias(old)?;
    }
    let block = HostBlock::for_setup(dir, setup)?;
    // Render once only to validate marker, command and key, so that a bad entry fails before
    // the first write rather than after four of them.
    authorized_keys::render_line(&setup.authorized)?;
    if setup.host_keys.is_empty() {
        return Err(Error::InvalidValue {
            what: "host key list",
            value: String::new(),
            reason: "the peer sent no sshd host key, so ssh could never verify it; the peer's sshd may not be running",
        });
    }
    known_hosts::plan(b"", &setup.alias, &setup.host_keys)?;
    client_config::plan_include(None, &dir.pair_config(), dir.tilde())?;
    let identity = match &setup.identity {
        Identity::Generated(key) => {
            let private = key.to_openssh(ssh_key::LineEnding::LF)?;
            let public = format!("{}\n", key.public_key().to_openssh()?);
            Some((private, public))
        }
        Identity::Existing(_) => None,
    };
    Ok(Prepared { block, identity })
}

/// Starts a transaction on `dir`: creates `~/.ssh` and `~/.ssh/git-pair` (0700) if missing,
/// takes the lock (waiting for another git-pair; held until the returned [`Applied`] is
/// committed, rolled back or dropped) and undoes what a crashed run left (see
/// [`Applied::recovered`]). `label` says what the transaction does, for the message of the run
/// after a crash. Directories created here are left in place (the lock file lives in one of
/// them, and removing a lock file others may be waiting on is unsafe).
pub fn begin(
    dir: &SshDir,
    label: &str,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Applied, Error> {
    dir.check_writable()?;
    poll(interrupted)?;
    let created = ensure_dirs(dir)?;
    let mut tx = Applied::begin(dir, label, Some(interrupted))?;
    for d in &created {
        tx.sync_later(d);
    }
    Ok(tx)
}

/// Applies a whole [`PairSetup`] inside `tx` (see [`begin`]): stages the identity files (if
/// generated), the pair secret (if given), git-pair's known_hosts, git-pair's config (the `Host`
/// block), `~/.ssh/config` (the `Include` line), `~/.ssh/authorized_keys`, then the removal of
/// what `replaces` names. A file whose planned bytes equal its current bytes is not rewritten.
///
/// `interrupted` is polled before each of those steps; if it returns true,
/// [`Error::Interrupted`] is returned. The changes are staged: [`Applied::flush`] puts them in
/// place (with whatever else the transaction stages), [`Applied::commit`] keeps them. On any
/// error the caller rolls `tx` back (dropping it does).
pub fn apply_in(
    tx: &mut Applied,
    dir: &SshDir,
    setup: &PairSetup,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Error> {
    let prepared = prepare(dir, setup)?;
    let include = dir.include_state(setup.edit_config)?;
    check_identity_free(dir, setup, &prepared)?;
    // Under the lock, so that no other pairing can take a name between the check and the write.
    check_free(dir, setup)?;
    apply_steps(tx, dir, setup, &prepared, &include, interrupted)
}

/// [`begin`], [`apply_in`] and [`Applied::flush`]: a whole [`PairSetup`] in place, all or
/// nothing. Any failure undoes everything before it returns. Dropping the returned [`Applied`]
/// without calling [`Applied::commit`] rolls the changes back.
pub fn apply(
    dir: &SshDir,
    setup: &PairSetup,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Applied, Error> {
    // Checked before the lock and the directories, so that a bad setup changes nothing at all.
    prepare(dir, setup)?;
    dir.check_writable()?;
    dir.include_state(setup.edit_config)?;
    let label = format!("pairing, ssh alias {}", setup.alias);
    let mut tx = begin(dir, &label, interrupted)?;
    match apply_in(&mut tx, dir, setup, interrupted).and_then(|()| tx.flush()) {
        Ok(()) => Ok(tx),
        Err(cause) => Err(undo_after(tx, cause)),
    }
}

/// Takes the lock of `dir` for a pairing without waiting: `None` while another git-pair holds
/// it. A pairing polls this while its protocol keeps running, so that the peer keeps hearing
/// from it, and then decides what to write (the remote's name among them) under the lock, with
/// [`apply_locked`]. Creates `~/.ssh` and `~/.ssh/git-pair` (0700) if missing, for the lock file.
pub fn try_lock(dir: &SshDir, label: &str) -> Result<Option<Applied>, Error> {
    dir.check_writable()?;
    let created = ensure_dirs(dir)?;
    let Some(mut tx) = Applied::try_begin(dir, label)? else {
        return Ok(None);
    };
    for d in &created {
        tx.sync_later(d);
    }
    Ok(Some(tx))
}

/// [`apply`] in a transaction taken with [`try_lock`]: all or nothing, and on failure the lock
/// is released with everything undone.
pub fn apply_locked(
    mut tx: Applied,
    dir: &SshDir,
    setup: &PairSetup,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<Applied, Error> {
    match apply_in(&mut tx, dir, setup, interrupted).and_then(|()| tx.flush()) {
        Ok(()) => Ok(tx),
        Err(cause) => Err(undo_after(tx, cause)),
    }
}

/// Which pairing a [`Committed`] set up: what [`undo_committed`] removes from a file that
/// changed since.
#[derive(Debug, Clone)]
pub struct Written<'a> {
    pub alias: &'a str,
    pub marker: &'a str,
    pub fingerprint: &'a ssh_key::Fingerprint,
}

/// Undoes a committed pairing, under the lock, all or nothing: a file that still holds what the
/// pairing wrote gets its earlier bytes and mode back (or goes, if the pairing created it); a
/// file that another git pair changed since keeps that change and loses only this pairing's
/// part (its `authorized_keys` line, its `Host` block, its pinned host keys). A file created by
/// the pairing that changed since is left. Returns the paths changed.
pub fn undo_committed(
    dir: &SshDir,
    committed: Committed,
    written: &Written<'_>,
) -> Result<Vec<PathBuf>, Error> {
    let label = format!("undoing the pairing of ssh alias {}", written.alias);
    let mut tx = Applied::begin(dir, &label, None)?;
    let real = |p: PathBuf| atomic::resolve(&p).unwrap_or(p);
    let steps = (|| {
        for change in committed.changes.iter().rev() {
            let now = tx.read(&change.path)?;
            let unchanged = match (&now, &change.after) {
                (Some(now), Some(after)) => now.as_slice() == after.bytes.as_slice(),
                (None, None) => true,
                _ => false,
            };
            // The Include line this pairing added to ~/.ssh/config now also serves any pairing
            // committed while this one waited for its peer (that one found it present and did
            // not write it): it goes back only when no other pairing's Host block is left.
            if unchanged && change.path == real(dir.config()) {
                let others = match tx.read(&real(dir.pair_config()))? {
                    Some(pairs) => client_config::host_aliases(&pairs)
                        .iter()
                        .any(|alias| alias != written.alias),
                    None => false,
                };
                if others {
                    continue;
                }
            }
            if unchanged {
                match &change.before {
                    // A file git writes (the repository's config) goes back git's way.
                    Some(before) if change.git => {
                        let bytes = before.bytes.to_vec();
                        tx.update_git_file(&change.path, before.mode, |_| {
                            Ok::<_, Error>(Some(bytes))
                        })?
                    }
                    Some(before) => {
                        let bytes = before.bytes.to_vec();
                        tx.update(&change.path, FileMode::Fixed(before.mode), |_| {
                            Ok(Some(bytes))
                        })?
                    }
                    None => tx.delete(&change.path)?,
                }
                continue;
            }
            if change.path == real(dir.authorized_keys()) {
                tx.update(&change.path, FileMode::KeepOr(0o600), |old| {
                    Ok(old.map(|old| {
                        authorized_keys::plan_remove(
                            old,
                            Some(written.fingerprint),
                            Some(written.marker),
                        )
                    }))
                })?;
            } else if change.path == real(dir.pair_config()) {
                tx.update(&change.path, FileMode::KeepOr(0o600), |old| {
                    Ok(old.map(|old| client_config::plan_remove_host(old, written.alias)))
                })?;
            } else if change.path == real(dir.pair_known_hosts()) {
                tx.update(&change.path, FileMode::KeepOr(0o600), |old| {
                    Ok(old.map(|old| known_hosts::plan_remove(old, written.alias)))
                })?;
            }
            // ~/.ssh/config (its Include line serves every pairing), the repository's config
            // (the caller undoes the remote by name) and files the pairing created that changed
            // since are left as they are.
        }
        tx.flush()
    })();
    match steps {
        Ok(()) => {
            let written = tx.written();
            tx.commit()?;
            Ok(written)
        }
        Err(cause) => Err(undo_after(tx, cause)),
    }
}

/// A generated identity is never written over an existing file.
fn check_identity_free(dir: &SshDir, setup: &PairSetup, prepared: &Prepared) -> Result<(), Error> {
    if prepared.identity.is_some() {
        for path in [dir.identity(&setup.alias), dir.identity_pub(&setup.alias)] {
            if std::fs::symlink_metadata(&path).is_ok() {
                return Err(Error::IdentityExists { path });
            }
        }
    }
    Ok(())
}

/// Creates `~/.ssh` and `~/.ssh/git-pair` (0700) if missing; returns the parents whose entries
/// changed, for the transaction to sync (a new directory's name is made durable with the files,
/// by the transaction's flush).
fn ensure_dirs(dir: &SshDir) -> Result<Vec<PathBuf>, Error> {
    let mut created = Vec::new();
    for d in [dir.root().to_path_buf(), dir.pair_dir()] {
        if atomic::ensure_dir_unsynced(&d, 0o700)? {
            created.push(d.parent().unwrap_or(Path::new("/")).to_path_buf());
        }
    }
    Ok(created)
}

fn apply_steps(
    tx: &mut Applied,
    dir: &SshDir,
    setup: &PairSetup,
    prepared: &Prepared,
    include: &IncludeState,
    interrupted: &mut dyn FnMut() -> bool,
) -> Result<(), Error> {
    let alias = &setup.alias;
    if let Some((private, public)) = &prepared.identity {
        poll(interrupted)?;
        tx.create(&dir.identity(alias), private.as_bytes(), 0o600)?;
        poll(interrupted)?;
        tx.create(&dir.identity_pub(alias), public.as_bytes(), 0o644)?;
    }
    if let Some(secret) = &setup.secret {
        poll(interrupted)?;
        // check_free made sure no file is there (the alias is new to every pairing).
        tx.create(
            &dir.pair_secret(alias),
            secret.render(alias).as_bytes(),
            0o600,
        )?;
    }
    poll(interrupted)?;
    tx.update(&dir.pair_known_hosts(), FileMode::Fixed(0o600), |old| {
        known_hosts::plan(old.unwrap_or_default(), alias, &setup.host_keys).map(Some)
    })?;
    poll(interrupted)?;
    tx.update(&dir.pair_config(), FileMode::Fixed(0o600), |old| {
        Ok(Some(client_config::plan_host(
            old.unwrap_or_default(),
            &prepared.block,
        )))
    })?;
    if *include == IncludeState::Add {
        poll(interrupted)?;
        tx.update(&dir.config(), FileMode::KeepOr(0o600), |old| {
            client_config::plan_include(old, &dir.pair_config(), dir.tilde())
        })?;
    }
    poll(interrupted)?;
    tx.update(&dir.authorized_keys(), FileMode::Fixed(0o600), |old| {
        authorized_keys::plan_add(
            old.unwrap_or_default(),
            &setup.authorized,
            &setup.replaces_markers,
        )
        .map(Some)
    })?;
    for old in &setup.replaces {
        if !old.eq_ignore_ascii_case(alias) {
            poll(interrupted)?;
            remove_alias_steps(tx, dir, old)?;
        }
    }
    Ok(())
}

/// Refuses, before anything is written, a setup that would overwrite what belongs to another
/// pairing: its `Host` block, pinned host keys, key files or pair secret (by alias), its
/// `authorized_keys` line or `Host` block record (by marker), or a line that lets the peer's key
/// in and is not this pairing's or a replaced one's (see [`authorized_keys::plan_add`]). What the
/// setup replaces (`replaces`, `replaces_markers`) is not another pairing's.
fn check_free(dir: &SshDir, setup: &PairSetup) -> Result<(), Error> {
    let replaced_alias = |a: &str| setup.replaces.iter().any(|r| r.eq_ignore_ascii_case(a));
    if !replaced_alias(&setup.alias) {
        if let Some(what) = dir.alias_in_use(&setup.alias)? {
            return Err(Error::InUse {
                what,
                name: setup.alias.clone(),
            });
        }
    }
    let marker = &setup.authorized.marker;
    if !setup.replaces_markers.contains(marker) {
        if let Some(what) = dir.marker_in_use(marker)? {
            return Err(Error::InUse {
                what,
                name: marker.clone(),
            });
        }
    }
    let existing = atomic::read(&atomic::resolve(&dir.authorized_keys())?)?
        .map(|f| f.bytes)
        .unwrap_or_default();
    authorized_keys::plan_add(&existing, &setup.authorized, &setup.replaces_markers).map(drop)
}

fn poll(interrupted: &mut dyn FnMut() -> bool) -> Result<(), Error> {
    if interrupted() {
        Err(Error::Interrupted)
    } else {
        Ok(())
    }
}

fn undo_after(tx: Applied, cause: Error) -> Error {
    match tx.rollback() {
        Ok(()) => cause,
        Err(rollback) => Error::Incomplete {
            cause: Box::new(cause),
            rollback: Box::new(rollback),
        },
    }
}

/// Removes one pairing, under the lock, all or nothing; returns the paths it changed or deleted.
///
/// - `authorized_keys`: git-pair lines (those tagged `git-pair:<marker>`) whose marker equals
///   `marker` or whose key has `authorized_fingerprint` (either suffices). Lines git-pair did not
///   write are never removed. Skipped when both are `None`.
/// - git-pair's config: the `Host <alias>` block; git-pair's known_hosts: the lines for `alias`;
///   the identity files `id_<alias>{,.pub}` (unless another block uses them); the pair secret
///   `secret_<alias>`.
///
/// The `Include` line in `~/.ssh/config` goes with the last pairing (exactly as git-pair wrote
/// it; a line the user moved or edited stays). Idempotent: a second call changes nothing and returns `[]`.
/// If `~/.ssh` does not exist there is nothing to do; if it exists, `~/.ssh/git-pair` is created
/// (0700) when missing, to hold the lock file.
pub fn remove(
    dir: &SshDir,
    alias: &str,
    authorized_fingerprint: Option<&ssh_key::Fingerprint>,
    marker: Option<&str>,
) -> Result<Vec<PathBuf>, Error> {
    validate_alias(alias)?;
    let label = format!("removing the pairing of ssh alias {alias}");
    removal(dir, &label, |tx| {
        remove_steps(tx, dir, alias, authorized_fingerprint, marker)
    })
}

/// Points `alias` at a new address (`HostName`, and `Port` if it moved) in git-pair's config and
/// records when and how (see [`client_config::plan_refresh`]), under the lock, atomically; nothing
/// else changes. Returns the paths written (none when the block already said all of it). Fails
/// when the pairing's block is gone.
pub fn refresh(
    dir: &SshDir,
    alias: &str,
    refresh: &client_config::Refresh<'_>,
) -> Result<Vec<PathBuf>, Error> {
    validate_alias(alias)?;
    if matches!(dir_state(dir.root())?, DirState::Missing) {
        return Err(Error::NoHostBlock {
            alias: alias.to_owned(),
        });
    }
    let label = format!("refreshing the address of ssh alias {alias}");
    removal(dir, &label, |tx| {
        tx.update(
            &dir.pair_config(),
            FileMode::KeepOr(0o600),
            |old| match old {
                Some(old) => client_config::plan_refresh(old, alias, refresh).map(Some),
                None => Err(Error::NoHostBlock {
                    alias: alias.to_owned(),
                }),
            },
        )
    })
}

/// Removes git-pair's `authorized_keys` lines for the key with `fingerprint`, under the lock:
/// for a pairing whose ssh alias is already gone. Returns the paths changed.
pub fn remove_authorized(
    dir: &SshDir,
    fingerprint: &ssh_key::Fingerprint,
) -> Result<Vec<PathBuf>, Error> {
    removal(dir, "revoking a paired key", |tx| {
        tx.update(&dir.authorized_keys(), FileMode::KeepOr(0o600), |old| {
            Ok(old.map(|old| authorized_keys::plan_remove(old, Some(fingerprint), None)))
        })
    })
}

/// Runs `steps` in one locked transaction, all or nothing; returns the paths changed. Without
/// `~/.ssh` there is nothing to do; with it, `~/.ssh/git-pair` is created when missing, to
/// hold the lock file.
fn removal(
    dir: &SshDir,
    label: &str,
    steps: impl FnOnce(&mut Applied) -> Result<(), Error>,
) -> Result<Vec<PathBuf>, Error> {
    match dir_state(dir.root())? {
        DirState::Missing => return Ok(Vec::new()),
        DirState::Present => {}
    }
    dir.check_writable()?;
    atomic::ensure_dir(&dir.pair_dir(), 0o700)?;
    let mut tx = Applied::begin(dir, label, None)?;
    match steps(&mut tx).and_then(|()| tx.flush()) {
        Ok(()) => {
            let written = tx.written();
            tx.commit()?;
            Ok(written)
        }
        Err(cause) => Err(undo_after(tx, cause)),
    }
}

fn remove_steps(
    tx: &mut Applied,
    dir: &SshDir,
    alias: &str,
    fingerprint: Option<&ssh_key::Fingerprint>,
    marker: Option<&str>,
) -> Result<(), Error> {
    // Revoke the peer's access first: if anything below fails, the rollback puts it back anyway.
    if fingerprint.is_some() || marker.is_some() {
        tx.update(&dir.authorized_keys(), FileMode::KeepOr(0o600), |old| {
            Ok(old.map(|old| authorized_keys::plan_remove(old, fingerprint, marker)))
        })?;
    }
    remove_alias_steps(tx, dir, alias)?;
    // The last pairing gone: the Include line goes too, so that ~/.ssh/config is as it was.
    let config = tx.read(&dir.pair_config())?;
    let no_blocks_left = config.is_none_or(|c| client_config::pair_blocks(&c).is_empty());
    if no_blocks_left {
        tx.update(&dir.config(), FileMode::KeepOr(0o600), |old| match old {
            Some(old) => client_config::plan_remove_include(old, &dir.pair_config(), dir.tilde()),
            None => Ok(None),
        })?;
    }
    Ok(())
}

/// Drops `alias`'s `Host` block, pinned keys and pair secret, and its generated key files unless
/// another block still names them as its `IdentityFile`.
fn remove_alias_steps(tx: &mut Applied, dir: &SshDir, alias: &str) -> Result<(), Error> {
    let config = tx.read(&dir.pair_config())?.unwrap_or_default();
    let own_identity = client_config::identity_file_text(dir, &dir.identity(alias))?;
    let shared = client_config::pair_blocks(&config).iter().any(|b| {
        !b.alias.eq_ignore_ascii_case(alias) && b.identity_file.as_deref() == Some(&own_identity)
    });
    tx.update(&dir.pair_config(), FileMode::KeepOr(0o600), |old| {
        Ok(old.map(|old| client_config::plan_remove_host(old, alias)))
    })?;
    tx.update(&dir.pair_known_hosts(), FileMode::KeepOr(0o600), |old| {
        Ok(old.map(|old| known_hosts::plan_remove(old, alias)))
    })?;
    if !shared {
        tx.delete(&dir.identity(alias))?;
        tx.delete(&dir.identity_pub(alias))?;
    }
    tx.delete(&dir.pair_secret(alias))?;
    Ok(())
}

/// Splits bytes into lines, each keeping its `\n` (the last one may have none).
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    bytes.split_inclusive(|&b| b == b'\n')
}

/// A line without its terminator: the `\n` and, for CRLF files, the `\r` before it.
pub(crate) fn line_content(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Appends `\n` unless `out` is empty or already ends with one.
pub(crate) fn terminate_last_line(out: &mut Vec<u8>) {
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn ssh_dir_paths() {
        let dir = SshDir::new(Path::new("/home/alice"));
        assert_eq!(dir.root(), Path::new("/home/alice/.ssh"));
        assert_eq!(
            dir.authorized_keys(),
            Path::new("/home/alice/.ssh/authorized_keys")
        );
        assert_eq!(dir.config(), Path::new("/home/alice/.ssh/config"));
        assert_eq!(dir.pair_dir(), Path::new("/home/alice/.ssh/git-pair"));
        assert_eq!(
            dir.pair_config(),
            Path::new("/home/alice/.ssh/git-pair/config")
        );
        assert_eq!(
            dir.pair_known_hosts(),
            Path::new("/home/alice/.ssh/git-pair/known_hosts")
        );
        assert_eq!(
            dir.identity("git-pair-a.b"),
            Path::new("/home/alice/.ssh/git-pair/id_git-pair-a.b")
        );
        assert_eq!(
            dir.identity_pub("git-pair-a.b"),
            Path::new("/home/alice/.ssh/git-pair/id_git-pair-a.b.pub")
        );
        assert_eq!(
            dir.lock_file(),
            Path::new("/home/alice/.ssh/git-pair/.lock")
        );
    }

    #[test]
    fn alias_validation() {
        for ok in ["git-pair-laptop-3f9a1c2e", "a", "A.b_c-9", &"x".repeat(64)] {
            assert!(validate_alias(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "-oProxyCommand=x",
            ".",
            "..",
            "../x",
            "a/b",
            "a b",
            "a\nb",
            "a*",
            "a%h",
            "é",
            &"x".repeat(65),
        ] {
            assert!(
                matches!(validate_alias(bad), Err(Error::InvalidValue { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn forced_command_quotes_with_posix_single_quotes() {
        let cmd = forced_command(
            Path::new("/usr/local/bin/git-pair"),
            Path::new("/home/o'brien/my notes"),
        )
        .unwrap();
        assert_eq!(
            cmd,
            r"'/usr/local/bin/git-pair' serve --repo '/home/o'\''brien/my notes'"
        );
    }

    #[test]
    fn forced_command_refuses_unsafe_paths() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let exe = Path::new("/usr/bin/git-pair");
        let bad_repos: [&Path; 5] = [
            Path::new("/home/a/line\nbreak"),
            Path::new("/home/a/cr\rhere"),
            Path::new("/home/a/back\\slash"),
            Path::new("relative/repo"),
            Path::new(OsStr::from_bytes(b"/home/a/\xff\xfe")),
        ];
        for repo in bad_repos {
            assert!(
                matches!(forced_command(exe, repo), Err(Error::InvalidPath { .. })),
                "{repo:?}"
            );
        }
        assert!(forced_command(Path::new("git-pair"), Path::new("/r")).is_err());
    }

    /// The quoting is checked by the real /bin/sh: it must split the command back into exactly
    /// the executable, `serve`, `--repo` and the repository path.
    #[test]
    fn forced_command_round_trips_through_sh() {
        let repos = [
            "/home/a/plain",
            "/home/a/with space",
            "/home/a/it's",
            "/home/a/''",
            "/home/a/$HOME `id` $(id) ; | & > < * ? [a] ~ # !",
            "/home/a/\"double\"",
            "/home/a/ünïcødé/日本",
        ];
        for repo in repos {
            let cmd = forced_command(Path::new("/opt/it's/git-pair"), Path::new(repo)).unwrap();
            let script = format!("set -- {cmd}; printf '%s\\0' \"$@\"");
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("run /bin/sh");
            assert!(out.status.success(), "{script}");
            let words: Vec<&[u8]> = out
                .stdout
                .split(|&b| b == 0)
                .filter(|w| !w.is_empty())
                .collect();
            let expected: Vec<&[u8]> =
                vec![b"/opt/it's/git-pair", b"serve", b"--repo", repo.as_bytes()];
            assert_eq!(words, expected, "{cmd}");
        }
    }

    #[test]
    fn identity_debug_shows_no_secret() {
        let key = test_keys::ed25519_private();
        let secret = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
        let shown = format!("{:?}", Identity::Generated(key.clone()));
        assert!(shown.starts_with("Generated(SHA256:"), "{shown}");
        let body: String = secret.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!shown.contains(&body));
    }

    #[test]
    fn line_helpers() {
        let l: Vec<&[u8]> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(l, vec![&b"a\r\n"[..], b"b\n", b"\n", b"c"]);
        assert_eq!(line_content(b"a\r\n"), b"a");
        assert_eq!(line_content(b"a\r"), b"a");
        assert_eq!(line_content(b"a\n"), b"a");
        assert_eq!(line_content(b"a"), b"a");
        let mut v = b"x".to_vec();
        terminate_last_line(&mut v);
        assert_eq!(v, b"x\n");
        terminate_last_line(&mut v);
        assert_eq!(v, b"x\n");
        let mut e = Vec::new();
        terminate_last_line(&mut e);
        assert!(e.is_empty());
    }
}
