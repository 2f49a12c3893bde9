//! What the next run of git pair does after a crash: undo an uncommitted transaction from its
//! [`journal`] and remove what a killed run can leave beside it.
//!
//! Every command that reads or writes pairings runs [`recover`] first (see
//! `git_pair::commands::recover`), and every transaction runs it again under the lock when it
//! begins. Under the lock, and in this order:
//!
//! 1. The journal, if any: each file it names, last first, is put back if it still holds what
//!    the transaction wrote, left alone if it is as before, and left alone **and reported** if
//!    someone changed it since (restoring old bytes would lose their change). Then the journal is
//!    deleted. A journal that cannot be read (damaged), or that another user could have written
//!    (not this user's, not 0600, or in a directory others may write), is never acted upon: it
//!    is moved aside to `journal.unreadable-<time>` and reported.
//! 2. Temporary files and directories of git pair's atomic writes
//!    (`.<name>.git-pair-<16 hex>.tmp`) in `~/.ssh`, `~/.ssh/git-pair` and the directory of every
//!    file the journal named: under the lock none of them can belong to a live run.
//! 3. Orphaned key files in `~/.ssh/git-pair`: a private key `id_<alias>` whose `.pub` is missing
//!    and that no `Host` block uses (left by versions of git pair without the journal).
//!
//! The lock is a flock, which the kernel drops with the process that held it, so a killed run
//! never blocks the next one.

use std::fs;
use std::path::{Path, PathBuf};

use super::atomic;
use super::journal::{self, Action, Journal, JournalError};
use super::transaction::Lock;
use super::{client_config, validate_alias, Error, SshDir};

/// What [`recover`] found and did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// An interrupted transaction, undone.
    pub interrupted: Option<Interrupted>,
    /// Temporary files and orphaned private keys removed.
    pub cleaned: Vec<PathBuf>,
    /// A damaged journal, moved aside to this path, and why it could not be used.
    pub unreadable: Option<(PathBuf, JournalError)>,
}

impl Recovery {
    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.interrupted.is_none() && self.cleaned.is_empty() && self.unreadable.is_none()
    }
}

/// A transaction that a crashed run left uncommitted.
#[derive(Debug)]
pub struct Interrupted {
    /// What it was doing (from git pair itself, but shown through `sanitize`).
    pub label: String,
    /// When it began, Unix seconds.
    pub started: u64,
    pub pid: u32,
    /// Files put back as they were, or removed.
    pub undone: Vec<PathBuf>,
    /// Files changed by someone else since, left as they are.
    pub changed_since: Vec<PathBuf>,
}

/// What undoing a journal did.
#[derive(Debug, Default)]
pub(crate) struct Undone {
    pub(crate) undone: Vec<PathBuf>,
    pub(crate) changed_since: Vec<PathBuf>,
    pub(crate) failed: Vec<(PathBuf, Error)>,
}

impl Undone {
    /// `Ok` when every file is as before; otherwise the files that are not, with the first
    /// reason.
    pub(crate) fn into_result(self) -> Result<(), Error> {
        let mut failed: Vec<PathBuf> = Vec::new();
        let mut first = None;
        for (path, e) in self.failed {
            failed.push(path);
            first.get_or_insert(e);
        }
        for path in self.changed_since {
            first.get_or_insert_with(|| Error::ChangedSince { path: path.clone() });
            failed.push(path);
        }
        match first {
            None => Ok(()),
            Some(first) => Err(Error::RollbackFailed {
                failed,
                first: Box::new(first),
            }),
        }
    }
}

/// Undoes every file of `journal`, last first, as the module doc says. Keeps going past a
/// failure.
pub(crate) fn undo(journal: &Journal) -> Undone {
    let mut out = Undone::default();
    for entry in journal.entries.iter().rev() {
        let current = match atomic::read(&entry.path) {
            Ok(current) => current,
            Err(e) => {
                out.failed.push((entry.path.clone(), e));
                continue;
            }
        };
        let done = match journal::plan(entry, current.as_ref().map(|c| c.bytes.as_slice())) {
            Action::Nothing => continue,
            Action::ChangedSince => {
                out.changed_since.push(entry.path.clone());
                continue;
            }
            Action::Restore(saved) => atomic::write(&entry.path, &saved.bytes, saved.mode),
            Action::Remove => atomic::remove(&entry.path),
        };
        match done {
            Ok(()) => out.undone.push(entry.path.clone()),
            Err(e) => out.failed.push((entry.path.clone(), e)),
        }
    }
    out
}

/// Finishes what a crashed run left in `dir`, unless another git-pair holds the lock right now
/// (that run is alive and will finish its own transaction). Cheap when there is nothing to do:
/// the lock is taken only if a journal, a temporary file or an orphaned key is there.
pub fn recover(dir: &SshDir) -> Result<Recovery, Error> {
    if !needs_recovery(dir) {
        return Ok(Recovery::default());
    }
    match Lock::take(&dir.lock_file(), false, None)? {
        Some(_lock) => recover_locked(dir),
        None => Ok(Recovery::default()),
    }
}

fn needs_recovery(dir: &SshDir) -> bool {
    let pair_dir = dir.pair_dir();
    if !pair_dir.is_dir() {
        return false;
    }
    fs::symlink_metadata(dir.journal()).is_ok()
        || !temp_files(dir.root()).is_empty()
        || !temp_files(&pair_dir).is_empty()
        || !orphaned_keys(dir).is_empty()
}

/// A journal names files to write and the bytes and modes to write them with: it is acted upon
/// only if no one but this user could have written it. Its directory must be this user's and
/// writable by no one else, and the journal itself a regular file of this user's that no one
/// else may write or read.
fn trusted(dir: &SshDir) -> Result<(), JournalError> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    let owned_and_private = |m: fs::Metadata, others: u32| m.uid() == me && m.mode() & others == 0;
    if !fs::metadata(dir.pair_dir()).is_ok_and(|m| owned_and_private(m, 0o022)) {
        return Err(JournalError::Untrusted(
            "its directory is not this user's or is writable by others",
        ));
    }
    let journal = dir.journal();
    if !fs::symlink_metadata(&journal)
        .is_ok_and(|m| m.file_type().is_file() && owned_and_private(m, 0o077))
    {
        return Err(JournalError::Untrusted(
            "it is not a file of this user's with mode 0600",
        ));
    }
    Ok(())
}

/// [`recover`] with the lock held by the caller.
pub(crate) fn recover_locked(dir: &SshDir) -> Result<Recovery, Error> {
    let mut out = Recovery::default();
    let journal_path = dir.journal();
    let mut dirs: Vec<PathBuf> = vec![dir.root().to_path_buf(), dir.pair_dir()];
    let found = atomic::read(&journal_path)?;
    if found.as_ref().is_some_and(|f| f.bytes.is_empty()) {
        // A power cut while a transaction synced its journal (moved into place just before):
        // its bytes never reached the disk, and nothing was changed before they had.
        atomic::remove(&journal_path)?;
    } else if let Some(found) = found {
        match trusted(dir).and_then(|()| Journal::decode(&found.bytes)) {
            Ok(journal) => {
                let undone = undo(&journal);
                if !undone.failed.is_empty() {
                    // Keep the journal: the next run tries again.
                    return Err(undone.into_result().expect_err("some files failed"));
                }
                atomic::remove(&journal_path)?;
                for entry in &journal.entries {
                    if let Some(parent) = entry.path.parent() {
                        if !dirs.iter().any(|d| d == parent) {
                            dirs.push(parent.to_path_buf());
                        }
                    }
                }
                out.interrupted = Some(Interrupted {
                    label: journal.label,
                    started: journal.started,
                    pid: journal.pid,
                    undone: undone.undone,
                    changed_since: undone.changed_since,
                });
            }
            Err(why) => {
                let aside = dir.pair_dir().join(format!(
                    "{}.unreadable-{}",
                    journal::FILE_NAME,
                    found_time()
                ));
                fs::rename(&journal_path, &aside).map_err(|source| Error::Io {
                    action: "move aside the unreadable journal",
                    path: journal_path.clone(),
                    source,
                })?;
                out.unreadable = Some((aside, why));
            }
        }
    }
    for d in &dirs {
        for temp in temp_files(d) {
            let removed = if temp.is_dir() && d == &dir.pair_dir() {
                fs::remove_dir_all(&temp)
            } else {
                fs::remove_file(&temp)
            };
            if removed.is_ok() {
                out.cleaned.push(temp);
            }
        }
    }
    for key in orphaned_keys(dir) {
        if atomic::remove(&key).is_ok() {
            out.cleaned.push(key);
        }
    }
    Ok(out)
}

fn found_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// git pair's temporary files and directories directly in `dir`.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(journal::is_temp_name))
        .map(|e| e.path())
        .collect()
}

/// Private keys `id_<alias>` in `~/.ssh/git-pair` without their `.pub` and used by no `Host`
/// block. Nothing if git pair's config cannot be read (then nothing is known to be unused).
fn orphaned_keys(dir: &SshDir) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir.pair_dir()) else {
        return Vec::new();
    };
    let candidates: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|name| name.strip_prefix("id_").map(str::to_owned))
        .filter(|alias| !alias.ends_with(".pub") && validate_alias(alias).is_ok())
        .filter(|alias| fs::symlink_metadata(dir.identity_pub(alias)).is_err())
        .collect();
    if candidates.is_empty() {
        return Vec::new();
    }
    let Ok(blocks) = dir.pair_blocks() else {
        return Vec::new();
    };
    candidates
        .into_iter()
        .filter(|alias| {
            let Ok(text) = client_config::identity_file_text(dir, &dir.identity(alias)) else {
                return false;
            };
            !blocks
                .iter()
                .any(|b| b.identity_file.as_deref() == Some(text.as_str()))
        })
        .map(|alias| dir.identity(&alias))
        .collect()
}
