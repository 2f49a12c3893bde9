//! The lock, the staging and the journal that make a pairing all or nothing, even across a
//! crash.
//!
//! A transaction ([`Applied`]) holds the flock on `~/.ssh/git-pair/.lock` from
//! [`begin`](Applied::begin) to [`commit`](Applied::commit) or [`rollback`](Applied::rollback),
//! so two git-pair processes never interleave their read-plan-write cycles. The flock belongs to
//! the open file, so it dies with the process: a killed run never leaves a lock that blocks the
//! next one.
//!
//! Changes are staged first, in memory, and later steps of the same transaction read the staged
//! bytes ([`Applied::read`]). [`Applied::flush`] then puts them in place:
//!
//! 1. every touched file goes into the [journal](super::journal): its exact previous bytes and
//!    mode (or "did not exist") and a digest of its new bytes;
//! 2. the journal is moved into place; then each staged file is written to a temporary file next
//!    to it, and those, the journal's bytes and name and the names of new directories are synced,
//!    all at once, in one round: from now on a crash is undone by the next run (a power cut during
//!    that round leaves at worst an empty journal, with nothing changed yet; a later flush of the
//!    same transaction syncs the new journal before it replaces the one that holds the undo of
//!    the changes already made);
//! 3. the staged files are renamed, linked or removed in order, and each directory synced once
//!    (see [`atomic`]).
//!
//! [`commit`](Applied::commit) deletes the journal (durably): that is the moment the changes are
//! kept. Until then, a transaction that has flushed everything is uncommitted, and a crash
//! rolls it back. (A pairing commits before it waits for the peer's answer, and undoes itself
//! in a second transaction if the peer fails: a crash while it waits leaves it paired.) Rolling back, here or in the
//! next run ([`super::recovery`]), puts back every file that still holds what the transaction
//! wrote. Any file can be part of a transaction (the ssh files, key files, a pair secret, the
//! repository's `.git/config`): the journal knows paths and bytes, not file types.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use zeroize::Zeroizing;

use super::atomic::{self, FileContents, NewFile, Temp, TempDir};
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
    fn for_file(self, current: Option<&FileContents>) -> u32 {
        match (self, current) {
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

/// A change waiting for [`Applied::flush`]; the new bytes stay in memory until then.
enum Op {
    /// Rename the staged file over the path.
    Replace(NewFile),
    /// Link the staged file as the path, which must not exist.
    Create(NewFile),
    /// Remove the path (the link itself).
    Delete,
    /// Replace the path the way git does: link the staged file as `lock` (`<path>.lock`, which
    /// must not exist: otherwise a git command is writing the file), check that the file still
    /// holds what the plan was made from, and rename the lock file over it.
    GitReplace {
        temp: NewFile,
        lock: PathBuf,
        /// What the file held when the plan was made (`None`: did not exist).
        base: Option<Zeroizing<Vec<u8>>>,
    },
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

/// A flush wrote fewer temporary files than it staged: a bug, reported rather than a panic.
fn missing_temp(path: &Path) -> Error {
    Error::Io {
        action: "write",
        path: path.to_path_buf(),
        source: io::Error::other("its temporary file was not written"),
    }
}

/// [`Op::GitReplace`]: links `temp` as `lock`, checks that `path` still holds `base`, renames.
fn git_replace(
    path: &Path,
    temp: Temp,
    lock: &Path,
    base: Option<Zeroizing<Vec<u8>>>,
) -> Result<(), Error> {
    match temp.link_to(lock) {
        Ok(()) => {}
        Err(Error::IdentityExists { .. }) => {
            return Err(Error::FileLocked {
                path: path.to_path_buf(),
                lock: lock.to_path_buf(),
            })
        }
        Err(e) => return Err(e),
    }
    let now = atomic::read(path);
    let unchanged = match (&now, &base) {
        (Ok(Some(now)), Some(then)) => now.bytes == *then,
        (Ok(None), None) => true,
        _ => false,
    };
    if !unchanged {
        let _ = std::fs::remove_file(lock);
        return Err(match now {
            Err(e) => e,
            Ok(_) => Error::ChangedSince {
                path: path.to_path_buf(),
            },
        });
    }
    std::fs::rename(lock, path).map_err(|source| {
        let _ = std::fs::remove_file(lock);
        Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The changes a transaction made, still undoable, with the lock still held.
///
/// Call [`commit`](Applied::commit) to keep them or [`rollback`](Applied::rollback) to undo them.
/// **Dropping it without either rolls back** (best effort, errors ignored), so that an early
/// return or a panic between the changes and the commit cannot leave a half-made pairing behind;
/// a crash leaves the journal, and the next run rolls back.
#[must_use = "dropping an Applied rolls the changes back; call commit() to keep them"]
pub struct Applied {
    /// Changes staged and not yet in place, in order; at most one per path.
    staged: Vec<Staged>,
    /// What each touched path holds as far as this transaction is concerned: the staged bytes
    /// and mode, or `None` once deleted or when it never existed.
    view: HashMap<PathBuf, Option<FileContents>>,
    /// What each touched path held before the transaction.
    before: HashMap<PathBuf, Option<FileContents>>,
    /// Directories whose entries changed, synced once by [`Applied::flush`].
    dirs: Vec<PathBuf>,
    /// The files written with [`Applied::update_git_file`].
    git_files: Vec<PathBuf>,
    /// Every file flushed so far, with its previous state; on disk from the first flush to the
    /// commit.
    journal: Journal,
    journal_path: PathBuf,
    /// Where the next run looks for temporary files anyway (`~/.ssh`, `~/.ssh/git-pair`); a
    /// temporary file staged anywhere else is journaled before it is made.
    swept: [PathBuf; 2],
    /// Whether the journal file exists.
    on_disk: bool,
    /// Whether a flush has begun to put changes in place (the journal on disk holds their undo).
    placed: bool,
    /// Whether a staged file has a temporary name the journal must hold before it is made.
    named_temps: bool,
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
        Self::locked(dir, label, lock)
    }

    /// Like [`Applied::begin`], without waiting: `None` while another git-pair holds the lock.
    pub(crate) fn try_begin(dir: &SshDir, label: &str) -> Result<Option<Self>, Error> {
        match Lock::take(&dir.lock_file(), false, None)? {
            Some(lock) => Self::locked(dir, label, lock).map(Some),
            None => Ok(None),
        }
    }

    fn locked(dir: &SshDir, label: &str, lock: Lock) -> Result<Self, Error> {
        let recovered = recovery::recover_locked(dir)?;
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(Applied {
            staged: Vec::new(),
            view: HashMap::new(),
            before: HashMap::new(),
            dirs: Vec::new(),
            git_files: Vec::new(),
            journal: Journal::new(started, std::process::id(), label),
            journal_path: dir.journal(),
            swept: [dir.root().to_path_buf(), dir.pair_dir()],
            on_disk: false,
            placed: false,
            named_temps: false,
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

    /// Stages `bytes` for `real`, in memory: the flush writes every staged file. A
    /// temporary file outside the directories the next run sweeps anyway gets its name now, and
    /// the journal names it before it is made (see [`Applied::flush`]), so that a crash never
    /// leaves one behind, e.g. in a repository's `.git`.
    ///
    /// Whether the directory lets this user create the temporary file is asked now (`access`,
    /// nothing is written), so that a directory that does not fails the step that staged the
    /// file, with that step's message (say, the remote's), rather than the flush.
    fn stage_temp(&mut self, real: &Path, bytes: &[u8], mode: u32) -> Result<NewFile, Error> {
        atomic::check_temp_for(real)?;
        let dir = real.parent().unwrap_or(Path::new("/"));
        let bytes = Zeroizing::new(bytes.to_vec());
        if self.swept.iter().any(|d| d == dir) {
            return Ok(NewFile::new(real, bytes, mode));
        }
        let tmp = atomic::temp_path(real);
        self.journal.record(&tmp, None, Written::Anything);
        self.named_temps = true;
        Ok(NewFile::named(tmp, real, bytes, mode))
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
    pub fn update(
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
        let mode = mode.for_file(current.as_ref());
        let temp = self.stage_temp(&real, &new, mode)?;
        let now = FileContents {
            bytes: Zeroizing::new(new),
            mode,
        };
        self.stage(real, Op::Replace(temp), Some(now), path);
        Ok(())
    }

    /// Like [`update`](Applied::update), for a file that git itself writes (a repository's
    /// `config`): at the flush the new bytes go in through git's lock protocol (linked in as
    /// `<path>.lock`, which must not exist, then renamed over the file), so that a `git config` running at that moment neither loses our
    /// change nor has its own lost; if the file changed since it was read, the flush fails and
    /// nothing of it is written. The mode of an existing file is kept, `new_mode` is for a new
    /// one. `plan`'s own errors pass through as they are.
    pub fn update_git_file<E: From<Error>>(
        &mut self,
        path: &Path,
        new_mode: u32,
        plan: impl FnOnce(Option<&[u8]>) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<(), E> {
        let real = atomic::resolve(path)?;
        let current = self.current(&real)?;
        let old_bytes = current.as_ref().map(|old| old.bytes.as_slice());
        let new = match plan(old_bytes)? {
            Some(new) if old_bytes != Some(new.as_slice()) => new,
            _ => return Ok(()),
        };
        let mode = FileMode::KeepOr(new_mode).for_file(current.as_ref());
        let temp = self.stage_temp(&real, &new, mode)?;
        let mut lock_name = real.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        let lock = real.with_file_name(lock_name);
        let now = FileContents {
            bytes: Zeroizing::new(new),
            mode,
        };
        let base = current.map(|c| c.bytes);
        if !self.git_files.contains(&real) {
            self.git_files.push(real.clone());
        }
        self.stage(real, Op::GitReplace { temp, lock, base }, Some(now), path);
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
        let temp = self.stage_temp(path, bytes, mode)?;
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
        if !deleted_here {
            // Seen as absent: a rollback may remove what this transaction makes there.
            self.before.entry(path.to_path_buf()).or_insert(None);
        }
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

    /// A private scratch directory beside the journal, removed when dropped (and by the next
    /// run if this one crashes).
    pub fn scratch_dir(&self, base: &str) -> Result<TempDir, Error> {
        TempDir::new(self.journal_path.parent().unwrap_or(Path::new("/")), base)
    }

    /// Records every staged change in the journal (see the module doc).
    fn journal_staged(&mut self) {
        for s in &self.staged {
            let before = self
                .before
                .get(&s.path)
                .and_then(|b| b.as_ref())
                .map(|b| Saved {
                    mode: b.mode,
                    bytes: b.bytes.clone(),
                });
            let new = match self.view.get(&s.path) {
                Some(Some(now)) => Written::Bytes(journal::digest(&now.bytes)),
                _ => Written::Removed,
            };
            if let Op::GitReplace { lock, .. } = &s.op {
                // Linked in with the new bytes: a crash before the rename leaves it holding
                // exactly those, and only then is it ours to remove.
                self.journal.record(lock, None, new);
            }
            self.journal.record(&s.path, before, new);
        }
    }

    /// Puts every staged change in place, as the module doc says. On an error the changes
    /// already in place stay in the journal, for the rollback.
    pub fn flush(&mut self) -> Result<(), Error> {
        if self.staged.is_empty() {
            return atomic::sync_dirs(&std::mem::take(&mut self.dirs));
        }
        self.journal_staged();
        let mut journal = Temp::stage(&self.journal_path, &self.journal.encode(), 0o600)?;
        let journal_dir = self
            .journal_path
            .parent()
            .unwrap_or(Path::new("/"))
            .to_path_buf();
        // The journal's bytes and name, the staged files' bytes and the names of directories
        // just created are all durable before the first file changes. Before any change is in
        // place, that takes one round: the journal is moved into place first (it names every
        // temporary file outside ~/.ssh before that file is made), then every staged file is
        // written, and all are synced with the journal and the directories at once (a power cut in
        // that round leaves at worst an empty journal, and nothing changed). Once a flush has
        // changed files, the journal on disk must hold their undo until the new one is
        // durable: its bytes are synced before it replaces the old one.
        let early = !self.placed;
        let dirs = if early {
            journal.rename_keeping(&self.journal_path)?;
            self.on_disk = true;
            self.sync_later(&journal_dir);
            std::mem::take(&mut self.dirs)
        } else {
            if self.named_temps {
                // Named before they are made, as before any flush, but synced: the journal it
                // replaces holds the undo of the changes already in place, and a power cut must
                // not leave an empty or short one in its stead.
                atomic::write(&self.journal_path, &self.journal.encode(), 0o600)?;
            }
            Vec::new()
        };
        let files: Vec<&NewFile> = self
            .staged
            .iter()
            .filter_map(|s| match &s.op {
                Op::Replace(f) | Op::Create(f) | Op::GitReplace { temp: f, .. } => Some(f),
                Op::Delete => None,
            })
            .collect();
        let mut temps =
            atomic::write_and_sync(&files, (&journal, self.journal_path.as_path()), &dirs)?
                .into_iter();
        if !early {
            journal.rename_to(&self.journal_path)?;
            self.on_disk = true;
            self.sync_later(&journal_dir);
            atomic::sync_dirs(&std::mem::take(&mut self.dirs))?;
        }
        self.placed = true;
        self.named_temps = false;
        for s in std::mem::take(&mut self.staged) {
            let mut temp = || temps.next().ok_or_else(|| missing_temp(&s.path));
            match s.op {
                Op::Replace(_) => temp()?.rename_to(&s.path)?,
                Op::Create(_) => temp()?.link_to(&s.path)?,
                Op::Delete => match std::fs::remove_file(&s.path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(source) => {
                        return Err(Error::Io {
                            action: "remove",
                            path: s.path.clone(),
                            source,
                        })
                    }
                },
                Op::GitReplace { lock, base, .. } => {
                    if let Err(e) = git_replace(&s.path, temp()?, &lock, base) {
                        // Neither was written: a rollback must touch neither (the lock may be
                        // git's own, the file someone else's change).
                        if let Some(Some(now)) = self.view.get(&s.path) {
                            let state = Written::Bytes(journal::digest(&now.bytes));
                            self.journal.unrecord(&lock, state);
                            self.journal.unrecord(&s.path, state);
                        }
                        return Err(e);
                    }
                }
            }
            let dir = s.path.parent().unwrap_or(Path::new("/"));
            self.sync_later(dir);
        }
        atomic::sync_dirs(&std::mem::take(&mut self.dirs))
    }

    /// Ends the transaction the way a SIGKILL would: neither commit nor rollback; the journal
    /// and the files stay as they are, and the lock goes.
    #[cfg(test)]
    pub(crate) fn crash(mut self) {
        self.finished = true;
        // Staged bytes are only in memory until the flush: nothing of them stays.
        self.staged.clear();
    }

    /// The paths written, created or deleted, in order (as named, before resolving symlinks).
    pub fn written(&self) -> Vec<PathBuf> {
        self.written.clone()
    }

    /// Keeps the changes (deletes the journal, durably) and releases the lock. Flushes first,
    /// if anything is still staged. If the journal cannot be deleted, the changes are undone
    /// (so that this run and the next agree), and the error returned.
    pub fn commit(mut self) -> Result<(), Error> {
        self.finished = true;
        if let Err(cause) = self.flush() {
            return Err(self.undone_after(cause));
        }
        if !self.on_disk {
            return Ok(());
        }
        match atomic::remove(&self.journal_path) {
            Ok(()) => {
                self.on_disk = false;
                self.journal.entries.clear();
                Ok(())
            }
            Err(cause) => Err(self.undone_after(cause)),
        }
    }

    /// Undoes everything after `cause`, and says so if that fails too.
    fn undone_after(&mut self, cause: Error) -> Error {
        match self.undo_all() {
            Ok(()) => cause,
            Err(rollback) => Error::Incomplete {
                cause: Box::new(cause),
                rollback: Box::new(rollback),
            },
        }
    }

    /// Keeps the changes and releases the lock, like [`Applied::commit`], and returns what each
    /// file held before and holds now, so that they can be undone later, under the lock again,
    /// by [`undo_committed`](super::undo_committed): a pairing keeps its files while it waits
    /// for the peer to say that it is set up too, without holding the lock that long.
    pub fn commit_keeping_undo(mut self) -> Result<Committed, Error> {
        if let Err(cause) = self.flush() {
            self.finished = true;
            return Err(self.undone_after(cause));
        }
        let changes = self
            .journal
            .entries
            .iter()
            // Temporary files and git's lock file are gone once the changes are in place.
            .filter_map(|entry| {
                let after = self.view.get(&entry.path)?;
                Some(Change {
                    path: entry.path.clone(),
                    before: entry.before.as_ref().map(|b| FileContents {
                        bytes: b.bytes.clone(),
                        mode: b.mode,
                    }),
                    after: after.as_ref().map(copy),
                    git: self.git_files.contains(&entry.path),
                })
            })
            .collect();
        self.commit()?;
        Ok(Committed { changes })
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
        // Staged changes never reached their files: dropping them removes the temporary files.
        self.staged.clear();
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

/// What a committed transaction changed: each file's bytes and mode before and after (`None`:
/// it did not exist), in the order the files were first changed.
pub struct Committed {
    pub(crate) changes: Vec<Change>,
}

/// One file a committed transaction changed.
pub(crate) struct Change {
    /// The path written (symlinks resolved).
    pub(crate) path: PathBuf,
    pub(crate) before: Option<FileContents>,
    pub(crate) after: Option<FileContents>,
    /// Written git's way ([`Applied::update_git_file`]): undone the same way.
    pub(crate) git: bool,
}

// By hand: it may hold a private key.
impl fmt::Debug for Committed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.changes.iter().map(|c| &c.path))
            .finish()
    }
}

// By hand: the journal and the views hold file bytes, maybe a private key.
impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Applied")
            .field("written", &self.written)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
