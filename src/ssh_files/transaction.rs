//! The lock and the undo log that make [`apply`](super::apply) and [`remove`](super::remove)
//! all or nothing.
//!
//! Changes are staged first: each new file's bytes go to a temporary file next to it, and later
//! steps of the same transaction read the staged bytes ([`Applied::read`]). [`Applied::flush`]
//! then syncs every staged file at once, moves them into place in order, and syncs each
//! directory once (see [`atomic`]). Before a file is replaced, its exact previous bytes and mode
//! (or "did not exist") go into the log; rolling back replays the log backwards with the same
//! atomic writes. The flock on `~/.ssh/git-pair/.lock` is held for the whole life of the log, so
//! two git-pair processes never interleave their read-plan-write cycles on the same files.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use super::atomic::{self, FileContents, Temp};
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

/// Opens (creating it 0600) the lock file.
fn open_lock(lock_path: &Path) -> Result<File, Error> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(lock_path)
        .map_err(|source| Error::Lock {
            path: lock_path.to_path_buf(),
            source,
        })
}

fn lock_error(lock_path: &Path, errno: Errno) -> Error {
    Error::Lock {
        path: lock_path.to_path_buf(),
        source: io::Error::from(errno),
    }
}

/// A change waiting for [`Applied::flush`].
enum Op {
    /// Rename the staged file over the path.
    Replace(Temp),
    /// Link the staged file as the path, which must not exist.
    Create(Temp),
    /// Remove the path (the link itself).
    Delete,
}

struct Staged {
    path: PathBuf,
    op: Op,
}

fn copy(c: &FileContents) -> FileContents {
    FileContents {
        bytes: c.bytes.clone(),
        mode: c.mode,
    }
}

/// The changes [`apply`](super::apply) made, still undoable, with the lock still held.
///
/// Call [`commit`](Applied::commit) to keep them or [`rollback`](Applied::rollback) to undo them.
/// **Dropping it without either rolls back** (best effort, errors ignored), so that an early
/// return or a panic between `apply` and `commit` cannot leave a half-made pairing behind.
#[must_use = "dropping an Applied rolls the changes back; call commit() to keep them"]
pub struct Applied {
    /// Changes staged and not yet in place, in order; at most one per path.
    staged: Vec<Staged>,
    /// What each touched path holds as far as this transaction is concerned: the staged bytes
    /// and mode, or `None` once deleted or when it never existed.
    view: HashMap<PathBuf, Option<FileContents>>,
    /// What each touched path held before the transaction, for the undo log.
    before: HashMap<PathBuf, Option<FileContents>>,
    /// Directories whose entries changed, synced once by [`Applied::flush`].
    dirs: Vec<PathBuf>,
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
        let mut file = open_lock(lock_path)?;
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
                Err((_, errno)) => return Err(lock_error(lock_path, errno)),
            }
        };
        Ok(Self::locked(lock))
    }

    /// Like [`Applied::begin`], without waiting: `None` while another git-pair holds the lock.
    pub(crate) fn try_begin(lock_path: &Path) -> Result<Option<Self>, Error> {
        let file = open_lock(lock_path)?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(Self::locked(lock))),
            Err((_, Errno::EWOULDBLOCK | Errno::EINTR)) => Ok(None),
            Err((_, errno)) => Err(lock_error(lock_path, errno)),
        }
    }

    fn locked(lock: Flock<File>) -> Self {
        Applied {
            staged: Vec::new(),
            view: HashMap::new(),
            before: HashMap::new(),
            dirs: Vec::new(),
            undo: Vec::new(),
            written: Vec::new(),
            finished: false,
            _lock: lock,
        }
    }

    /// Also syncs `dir` in [`Applied::flush`] (e.g. the parent of a directory just created).
    pub(crate) fn sync_later(&mut self, dir: &Path) {
        if !self.dirs.iter().any(|d| d == dir) {
            self.dirs.push(dir.to_path_buf());
        }
    }

    /// What `real` (symlinks resolved) holds for this transaction: staged bytes, or the disk's.
    fn current(&mut self, real: &Path) -> Result<Option<FileContents>, Error> {
        if let Some(seen) = self.view.get(real) {
            return Ok(seen.as_ref().map(copy));
        }
        let on_disk = atomic::read(real)?;
        self.before
            .insert(real.to_path_buf(), on_disk.as_ref().map(copy));
        self.view
            .insert(real.to_path_buf(), on_disk.as_ref().map(copy));
        Ok(on_disk)
    }

    /// The bytes of `path` (through symlinks) as this transaction has made them so far.
    pub(crate) fn read(&mut self, path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
        let real = atomic::resolve(path)?;
        Ok(self.current(&real)?.map(|c| c.bytes))
    }

    fn stage(&mut self, path: PathBuf, op: Op, now: Option<FileContents>, named: &Path) {
        // A later change to the same file replaces the earlier one (its temporary file goes).
        self.staged.retain(|s| s.path != path);
        self.view.insert(path.clone(), now);
        self.staged.push(Staged { path, op });
        if !self.written.iter().any(|w| w == named) {
            self.written.push(named.to_path_buf());
        }
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
        let current = self.current(&real)?;
        let old_bytes = current.as_ref().map(|old| old.bytes.as_slice());
        let Some(new) = plan(old_bytes)? else {
            return Ok(());
        };
        if old_bytes == Some(new.as_slice()) {
            return Ok(());
        }
        let mode = match (mode, &current) {
            (FileMode::Fixed(m), _) | (FileMode::KeepOr(m), None) => m,
            (FileMode::KeepOr(_), Some(old)) => old.mode,
        };
        let temp = Temp::stage(&real, &new, mode)?;
        let now = FileContents {
            bytes: Zeroizing::new(new),
            mode,
        };
        self.stage(real, Op::Replace(temp), Some(now), path);
        Ok(())
    }

    /// Creates `path`, which must not exist (see [`atomic::create_new`]).
    pub(crate) fn create(&mut self, path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
        let taken = match self.view.get(path) {
            Some(seen) => seen.is_some(),
            None => std::fs::symlink_metadata(path).is_ok(),
        };
        if taken {
            return Err(Error::IdentityExists {
                path: path.to_path_buf(),
            });
        }
        let temp = Temp::stage(path, bytes, mode)?;
        let now = FileContents {
            bytes: Zeroizing::new(bytes.to_vec()),
            mode,
        };
        // Deleted earlier in this transaction: the file is there until the flush, so the new
        // one replaces it (and a rollback puts the old one back).
        let deleted_here = self
            .staged
            .iter()
            .any(|s| s.path == path && matches!(s.op, Op::Delete));
        let op = if deleted_here {
            Op::Replace(temp)
        } else {
            Op::Create(temp)
        };
        self.stage(path.to_path_buf(), op, Some(now), path);
        Ok(())
    }

    /// Deletes `path` if it exists (the link itself, not a symlink's target).
    pub(crate) fn delete(&mut self, path: &Path) -> Result<(), Error> {
        let exists = match self.view.get(path) {
            Some(seen) => seen.is_some(),
            None => std::fs::symlink_metadata(path).is_ok(),
        };
        if !exists || self.current(path)?.is_none() {
            return Ok(());
        }
        self.stage(path.to_path_buf(), Op::Delete, None, path);
        Ok(())
    }

    /// Puts every staged change in place: syncs the staged files all at once, renames, links
    /// and removes in order (each logged for the rollback), then syncs every directory touched
    /// once. On an error the changes already in place stay logged, for the rollback.
    pub(crate) fn flush(&mut self) -> Result<(), Error> {
        let temps = self.staged.iter().filter_map(|s| match &s.op {
            Op::Replace(t) | Op::Create(t) => Some((t, s.path.as_path())),
            Op::Delete => None,
        });
        atomic::sync_all(temps)?;
        for s in std::mem::take(&mut self.staged) {
            let before = self.before.remove(&s.path).flatten();
            match s.op {
                Op::Replace(temp) => {
                    // Logged before renaming: if the rename fails after all, restoring the
                    // unchanged bytes is harmless.
                    self.undo.push(Undo {
                        path: s.path.clone(),
                        before,
                    });
                    temp.rename_to(&s.path)?;
                }
                Op::Create(temp) => {
                    // Logged on success only: an existing file must never be removed by a
                    // rollback.
                    temp.link_to(&s.path)?;
                    self.undo.push(Undo {
                        path: s.path.clone(),
                        before: None,
                    });
                }
                Op::Delete => {
                    self.undo.push(Undo {
                        path: s.path.clone(),
                        before,
                    });
                    match std::fs::remove_file(&s.path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(Error::Io {
                                action: "remove",
                                path: s.path.clone(),
                                source,
                            })
                        }
                    }
                }
            }
            let dir = s.path.parent().unwrap_or(Path::new("/"));
            self.sync_later(dir);
        }
        atomic::sync_dirs(&std::mem::take(&mut self.dirs))
    }

    /// The paths written, created or deleted, in order (as named, before resolving symlinks).
    pub fn written(&self) -> Vec<PathBuf> {
        self.written.clone()
    }

    /// Keeps the changes and releases the lock.
    pub fn commit(mut self) {
        debug_assert!(self.staged.is_empty(), "commit before flush");
        self.undo.clear();
        self.finished = true;
    }

    /// Keeps the changes and releases the lock, like [`Applied::commit`], and returns what each
    /// file held before and holds now, so that they can be undone later, under the lock again,
    /// by [`undo_committed`](super::undo_committed): a pairing keeps its files while it waits
    /// for the peer to say that it is set up too, without holding the lock that long.
    pub fn commit_keeping_undo(mut self) -> Committed {
        debug_assert!(self.staged.is_empty(), "commit before flush");
        let mut changes = Vec::new();
        for undo in std::mem::take(&mut self.undo) {
            let after = self.view.get(&undo.path).and_then(|v| v.as_ref().map(copy));
            changes.push(Change {
                path: undo.path,
                before: undo.before,
                after,
            });
        }
        self.finished = true;
        Committed { changes }
    }

    /// Puts every touched file back to its exact previous bytes and mode, removes the files that
    /// were created, then releases the lock. Keeps going past a failure and reports every file
    /// it could not restore.
    pub fn rollback(mut self) -> Result<(), Error> {
        self.finished = true;
        self.undo_all()
    }

    fn undo_all(&mut self) -> Result<(), Error> {
        // Staged changes never reached their files: dropping them removes the temporary files.
        self.staged.clear();
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

/// What a committed transaction changed: each file's bytes and mode before and after (`None`:
/// it did not exist), in the order the changes were made.
pub struct Committed {
    pub(crate) changes: Vec<Change>,
}

/// One file a committed transaction changed.
pub(crate) struct Change {
    /// The path written (symlinks resolved).
    pub(crate) path: PathBuf,
    pub(crate) before: Option<FileContents>,
    pub(crate) after: Option<FileContents>,
}

// By hand: it may hold a private key.
impl fmt::Debug for Committed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.changes.iter().map(|c| &c.path))
            .finish()
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
