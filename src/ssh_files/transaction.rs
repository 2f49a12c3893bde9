//! The lock and the undo log that make [`apply`](super::apply) and [`remove`](super::remove)
//! all or nothing.
//!
//! Before a file is replaced, its exact previous bytes and mode (or "did not exist") go into the
//! log; rolling back replays the log backwards with the same atomic writes. The flock on
//! `~/.ssh/git-pair/.lock` is held for the whole life of the log, so two git-pair processes never
//! interleave their read-plan-write cycles on the same files.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::atomic::{self, FileContents};
use super::Error;
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// Which mode a rewritten file gets.
#[derive(Debug, Clone, Copy)]
pub(crate) enum FileMode {
    /// Always this mode.
    Fixed(u32),
    /// The existing file's mode, or this one for a new file.
    KeepOr(u32),
}

/// One file as it was before the transaction touched it.
struct Undo {
    /// The path actually written (symlinks resolved).
    path: PathBuf,
    /// Bytes and mode, or `None` if the file did not exist.
    before: Option<FileContents>,
}

impl Undo {
    fn restore(&self) -> Result<(), Error> {
        match &self.before {
            Some(old) => atomic::write(&self.path, &old.bytes, old.mode),
            None => atomic::remove(&self.path),
        }
    }
}

/// The changes [`apply`](super::apply) made, still undoable, with the lock still held.
///
/// Call [`commit`](Applied::commit) to keep them or [`rollback`](Applied::rollback) to undo them.
/// **Dropping it without either rolls back** (best effort, errors ignored), so that an early
/// return or a panic between `apply` and `commit` cannot leave a half-made pairing behind.
#[must_use = "dropping an Applied rolls the changes back; call commit() to keep them"]
pub struct Applied {
    undo: Vec<Undo>,
    written: Vec<PathBuf>,
    finished: bool,
    // Declared last so that it is dropped (unlocked) after `Drop::drop` has rolled back.
    _lock: Flock<File>,
}

impl Applied {
    /// Opens (creating it 0600) and flocks `lock_path`, waiting for another git-pair to finish.
    /// A signal interrupting the wait makes it poll `interrupted`, if given.
    pub(crate) fn begin(
        lock_path: &Path,
        mut interrupted: Option<&mut dyn FnMut() -> bool>,
    ) -> Result<Self, Error> {
        let lock_error = |source| Error::Lock {
            path: lock_path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(lock_path)
            .map_err(lock_error)?;
        let lock = loop {
            match Flock::lock(file, FlockArg::LockExclusive) {
                Ok(lock) => break lock,
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
        };
        Ok(Applied {
            undo: Vec::new(),
            written: Vec::new(),
            finished: false,
            _lock: lock,
        })
    }

    /// Rewrites `path` (through symlinks) with what `plan` makes of its current bytes (`None`
    /// if it does not exist). `plan` returning `None`, or the current bytes, means no write.
    pub(crate) fn update(
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
        let mode = match (mode, &before) {
            (FileMode::Fixed(m), _) | (FileMode::KeepOr(m), None) => m,
            (FileMode::KeepOr(_), Some(old)) => old.mode,
        };
        // Logged before writing: if the write fails after the rename, the rollback still knows
        // what to put back (and restoring unchanged bytes is harmless).
        self.undo.push(Undo {
            path: real.clone(),
            before,
        });
        self.written.push(path.to_path_buf());
        atomic::write(&real, &new, mode)
    }

    /// Creates `path`, which must not exist (see [`atomic::create_new`]).
    pub(crate) fn create(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
        match atomic::create_new(path, bytes, mode) {
            Ok(()) => {}
            // Logged on success only, since an existing file must never be removed by a
            // rollback. If only the final directory fsync failed the file does exist: log it.
            Err(e @ Error::Io { .. }) if path.exists() => {
                self.log_created(path);
                return Err(e);
            }
            Err(e) => return Err(e),
        }
        self.log_created(path);
        Ok(())
    }

    fn log_created(&mut self, path: &Path) {
        self.undo.push(Undo {
            path: path.to_path_buf(),
            before: None,
        });
        self.written.push(path.to_path_buf());
    }

    /// Deletes `path` if it exists (the link itself, not a symlink's target).
    pub(crate) fn delete(&mut self, path: &Path) -> Result<(), Error> {
        if std::fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let Some(before) = atomic::read(path)? else {
            return Ok(());
        };
        self.undo.push(Undo {
            path: path.to_path_buf(),
            before: Some(before),
        });
        self.written.push(path.to_path_buf());
        atomic::remove(path)
    }

    /// The paths written, created or deleted, in order (as named, before resolving symlinks).
    pub fn written(&self) -> Vec<PathBuf> {
        self.written.clone()
    }

    /// Keeps the changes and releases the lock.
    pub fn commit(mut self) {
        self.undo.clear();
        self.finished = true;
    }

    /// Puts every touched file back to its exact previous bytes and mode, removes the files that
    /// were created, then releases the lock. Keeps going past a failure and reports every file
    /// it could not restore.
    pub fn rollback(mut self) -> Result<(), Error> {
        self.finished = true;
        self.undo_all()
    }

    fn undo_all(&mut self) -> Result<(), Error> {
        let mut failed = Vec::new();
        let mut first = None;
        while let Some(undo) = self.undo.pop() {
            if let Err(e) = undo.restore() {
                failed.push(undo.path);
                first.get_or_insert(e);
            }
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

impl Drop for Applied {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.undo_all();
        }
    }
}

// By hand: the undo log may hold a private key.
impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applied")
            .field("written", &self.written)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
