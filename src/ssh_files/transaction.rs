//! The lock and the journal that make a pairing all or nothing, even across a crash.
//!
//! A transaction ([`Applied`]) holds the flock on `~/.ssh/git-pair/.lock` from
//! [`begin`](Applied::begin) to [`commit`](Applied::commit) or [`rollback`](Applied::rollback),
//! so two git-pair processes never interleave their read-plan-write cycles. The flock belongs to
//! the open file, so it dies with the process: a killed run never leaves a lock that blocks the
//! next one.
//!
//! Before a file is changed, its exact previous bytes and mode (or "did not exist") and a digest
//! of the new bytes go into the [journal](super::journal), which is written atomically and
//! fsynced first; commit deletes the journal. Rolling back, in this process or in the next run
//! after a crash ([`super::recovery`]), puts back every file that still holds what the
//! transaction wrote. Any file can be part of a transaction (the ssh files, key files, a pair
//! secret, the repository's `.git/config`): the journal knows paths and bytes, not file types.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::atomic::{self, FileContents, TempDir};
use super::journal::{self, Journal, Saved, Written};
use super::recovery::{self, Recovery};
use super::{Error, SshDir};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Which mode a rewritten file gets.
#[derive(Debug, Clone, Copy)]
pub enum FileMode {
    /// Always this mode.
    Fixed(u32),
    /// The existing file's mode, or this one for a new file.
    KeepOr(u32),
}

impl FileMode {
    fn for_file(self, before: Option<&FileContents>) -> u32 {
        match (self, before) {
            (FileMode::Fixed(m), _) | (FileMode::KeepOr(m), None) => m,
            (FileMode::KeepOr(_), Some(old)) => old.mode,
        }
    }
}

/// The flock on `~/.ssh/git-pair/.lock`.
pub(crate) struct Lock(#[allow(dead_code)] Flock<File>);

impl Lock {
    /// Opens (creating it 0600) and flocks `path`. With `wait`, waits for another git-pair to
    /// finish (a signal interrupting the wait makes it poll `interrupted`, if given); without,
    /// returns `None` at once when another git-pair holds it.
    pub(crate) fn take(
        path: &Path,
        wait: bool,
        mut interrupted: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<Option<Lock>, Error> {
        let lock_error = |source| Error::Lock {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(lock_error)?;
        let how = if wait {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockExclusiveNonblock
        };
        loop {
            match Flock::lock(file, how) {
                Ok(lock) => return Ok(Some(Lock(lock))),
                Err((_, Errno::EWOULDBLOCK)) if !wait => return Ok(None),
                Err((back, Errno::EINTR)) => {
                    if let Some(interrupted) = interrupted.as_deref_mut() {
                        if interrupted() {
                            return Err(Error::Interrupted);
                        }
                    }
                    file = back;
                }
                Err((_, errno)) => return Err(lock_error(io::Error::from(errno))),
            }
        }
    }
}

/// The changes a transaction made, still undoable, with the lock still held.
///
/// Call [`commit`](Applied::commit) to keep them or [`rollback`](Applied::rollback) to undo them.
/// **Dropping it without either rolls back** (best effort, errors ignored), so that an early
/// return or a panic between the changes and the commit cannot leave a half-made pairing behind;
/// a crash leaves the journal, and the next run rolls back.
#[must_use = "dropping an Applied rolls the changes back; call commit() to keep them"]
pub struct Applied {
    journal: Journal,
    journal_path: PathBuf,
    /// Whether the journal file exists (it is written at the first change).
    on_disk: bool,
    written: Vec<PathBuf>,
    finished: bool,
    recovered: Recovery,
    // Declared last so that it is dropped (unlocked) after `Drop::drop` has rolled back.
    _lock: Lock,
}

impl Applied {
    /// Takes the lock of `dir` (waiting for another git-pair to finish), then finishes what a
    /// crashed run left (see [`Applied::recovered`]). `label` says what the transaction does,
    /// for the next run's message should this one crash.
    pub(crate) fn begin(
        dir: &SshDir,
        label: &str,
        interrupted: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<Self, Error> {
        let lock = Lock::take(&dir.lock_file(), true, interrupted)?
            .expect("a waiting lock is always taken");
        let recovered = recovery::recover_locked(dir)?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Applied {
            journal: Journal::new(started, std::process::id(), label),
            journal_path: dir.journal(),
            on_disk: false,
            written: Vec::new(),
            finished: false,
            recovered,
            _lock: lock,
        })
    }

    /// What was found and undone of an earlier, crashed run when this transaction began.
    pub fn recovered(&self) -> &Recovery {
        &self.recovered
    }

    /// Adds `state` for `path` to the journal and writes it to disk, before the change.
    fn record(
        &mut self,
        path: &Path,
        before: Option<&FileContents>,
        state: Written,
    ) -> Result<(), Error> {
        let before = before.map(|b| Saved {
            mode: b.mode,
            bytes: b.bytes.clone(),
        });
        self.journal.record(path, before, state);
        self.save()
    }

    fn save(&mut self) -> Result<(), Error> {
        atomic::write(&self.journal_path, &self.journal.encode(), 0o600)?;
        self.on_disk = true;
        Ok(())
    }

    /// Rewrites `path` (through symlinks) with what `plan` makes of its current bytes (`None`
    /// if it does not exist). `plan` returning `None`, or the current bytes, means no write.
    pub fn update(
        &mut self,
        path: &Path,
        mode: FileMode,
        plan: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, Error>,
    ) -> Result<(), Error> {
        let real = atomic::resolve(path)?;
        let before = atomic::read(&real)?;
        let old_bytes = before.as_ref().map(|old| old.bytes.as_slice());
        let Some(new) = plan(old_bytes)? else {
            return Ok(());
        };
        if old_bytes == Some(new.as_slice()) {
            return Ok(());
        }
        let mode = mode.for_file(before.as_ref());
        self.record(
            &real,
            before.as_ref(),
            Written::Bytes(journal::digest(&new)),
        )?;
        self.written.push(path.to_path_buf());
        atomic::write(&real, &new, mode)
    }

    /// Like [`update`](Applied::update), but under git's lock protocol, for a file git itself
    /// writes (a repository's `config`): the new bytes are planned from the current ones while
    /// `<path>.lock` is held, written into the lock file and renamed over `path`, so that a
    /// `git config` running at the same moment neither loses our change nor has its own lost.
    /// The mode of an existing file is kept. `plan`'s own errors pass through as they are.
    pub fn update_git_file<E: From<Error>>(
        &mut self,
        path: &Path,
        new_mode: u32,
        plan: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), E> {
        let real = atomic::resolve(path)?;
        let mut lock_name = real.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock = real.with_file_name(lock_name);
        let mode = FileMode::KeepOr(new_mode).for_file(atomic::read(&real)?.as_ref());
        // Journaled before it exists: a crash while it is held leaves it to the next run.
        let saved = self.journal.clone();
        self.record(&lock, None, Written::Anything)?;
        let file = match atomic::take_lock(&real, &lock, mode) {
            Ok(file) => file,
            Err(e) => {
                // Not ours (git holds it), or never made: forget it.
                self.journal = saved;
                self.save()?;
                return Err(e.into());
            }
        };
        let result = (|| {
            let before = atomic::read(&real)?;
            let old_bytes = before.as_ref().map(|old| old.bytes.as_slice());
            let new = match plan(old_bytes)? {
                Some(new) if old_bytes != Some(new.as_slice()) => new,
                _ => return Ok(None),
            };
            self.record(
                &real,
                before.as_ref(),
                Written::Bytes(journal::digest(&new)),
            )?;
            Ok::<_, E>(Some(new))
        })();
        match result {
            Ok(Some(new)) => {
                self.written.push(path.to_path_buf());
                Ok(atomic::commit_lock(file, &lock, &real, &new)?)
            }
            Ok(None) => {
                drop(file);
                Ok(atomic::remove(&lock)?)
            }
            Err(e) => {
                drop(file);
                let _ = atomic::remove(&lock);
                Err(e)
            }
        }
    }

    /// Creates `path`, which must not exist (see [`atomic::create_new`]).
    pub(crate) fn create(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
        // An existing file is never journaled as ours, so no rollback can remove it.
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::IdentityExists {
                path: path.to_path_buf(),
            });
        }
        let saved = self.journal.clone();
        self.record(path, None, Written::Bytes(journal::digest(bytes)))?;
        match atomic::create_new(path, bytes, mode) {
            Ok(()) => {}
            Err(e @ Error::IdentityExists { .. }) => {
                // Someone else made it in between: it is not ours.
                self.journal = saved;
                self.save()?;
                return Err(e);
            }
            // It may exist now; the journal knows its bytes, so a rollback removes it only if
            // it holds exactly those.
            Err(e) => {
                self.written.push(path.to_path_buf());
                return Err(e);
            }
        }
        self.written.push(path.to_path_buf());
        Ok(())
    }

    /// Deletes `path` if it exists (the link itself, not a symlink's target).
    pub(crate) fn delete(&mut self, path: &Path) -> Result<(), Error> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let Some(before) = atomic::read(path)? else {
            return Ok(());
        };
        self.record(path, Some(&before), Written::Removed)?;
        self.written.push(path.to_path_buf());
        atomic::remove(path)
    }

    /// A private scratch directory beside the journal, removed when dropped (and by the next
    /// run if this one crashes).
    pub fn scratch_dir(&self, base: &str) -> Result<TempDir, Error> {
        TempDir::new(self.journal_path.parent().unwrap_or(Path::new("/")), base)
    }

    /// Ends the transaction the way a SIGKILL would: neither commit nor rollback; the journal
    /// and the files stay as they are, and the lock goes.
    #[cfg(test)]
    pub(crate) fn crash(mut self) {
        self.finished = true;
    }

    /// The paths written, created or deleted, in order (as named, before resolving symlinks).
    pub fn written(&self) -> Vec<PathBuf> {
        self.written.clone()
    }

    /// Keeps the changes (deletes the journal, durably) and releases the lock. If the journal
    /// cannot be deleted, the changes are undone (so that this run and the next agree), and the
    /// error returned.
    pub fn commit(mut self) -> Result<(), Error> {
        self.finished = true;
        if !self.on_disk {
            return Ok(());
        }
        match atomic::remove(&self.journal_path) {
            Ok(()) => {
                self.on_disk = false;
                Ok(())
            }
            Err(cause) => Err(match self.undo_all() {
                Ok(()) => cause,
                Err(rollback) => Error::Incomplete {
                    cause: Box::new(cause),
                    rollback: Box::new(rollback),
                },
            }),
        }
    }

    /// Puts every touched file back to its exact previous bytes and mode, removes the files that
    /// were created, then releases the lock. Keeps going past a failure and reports every file
    /// it could not restore. A file someone else changed in the meantime is left as it is, and
    /// reported.
    pub fn rollback(mut self) -> Result<(), Error> {
        self.finished = true;
        self.undo_all()
    }

    fn undo_all(&mut self) -> Result<(), Error> {
        let undone = recovery::undo(&self.journal);
        if undone.failed.is_empty() && self.on_disk {
            atomic::remove(&self.journal_path)?;
            self.on_disk = false;
        }
        self.journal.entries.clear();
        undone.into_result()
    }
}

impl Drop for Applied {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.undo_all();
        }
    }
}

// By hand: the journal holds the previous bytes of the files, maybe a private key.
impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applied")
            .field("written", &self.written)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
