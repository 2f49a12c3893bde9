//! Small, crash-safe file operations for `~/.ssh`.
//!
//! A file is never written in place: the new bytes go to a temporary file created in the same
//! directory with `O_CREAT|O_EXCL` and its final mode, are fsynced, and then replace the old file
//! by `rename` (or appear by `link`, for files that must never be overwritten); finally the
//! directory is fsynced so that the rename itself survives a crash. A reader (sshd, ssh) sees the
//! old file or the new one, never a mix.
//!
//! A transaction that writes several files keeps their bytes in memory ([`NewFile`]), then writes
//! them and syncs all of them in one round ([`write_and_sync`]: every file's writeback started
//! first, then one fsync after another), renames them into place, and syncs each directory once
//! ([`sync_dirs`]): the same guarantees, but the file system commits its journal a few times in
//! all instead of twice per file.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
use rand_core::RngCore;
use zeroize::Zeroizing;

use super::Error;

/// The longest symlink chain [`resolve`] follows (the kernel's own limit is 40).
const MAX_SYMLINKS: usize = 40;

/// Replaces `path` with `bytes`, with mode exactly `mode` (not reduced by the umask).
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let (tmp, file) = create_temp(path, mode)?;
    let result = fill(file, bytes).and_then(|()| fs::rename(&tmp, path));
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        });
    }
    sync_dir(path)
}

/// Creates `path` with `bytes` and mode `mode`; fails with [`Error::IdentityExists`] if anything
/// (even a dangling symlink) already has that name. Atomic: the name appears by `link(2)` only
/// once the contents are on disk, so a crash never leaves a truncated key behind.
pub fn create_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let (tmp, file) = create_temp(path, mode)?;
    let result = fill(file, bytes).and_then(|()| fs::hard_link(&tmp, path));
    let _ = fs::remove_file(&tmp);
    match result {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::IdentityExists {
            path: path.to_path_buf(),
        }),
        Err(source) => Err(Error::Io {
            action: "create",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Takes git's lock on `path`: creates `lock` (`<path>.lock`, git's convention) with `O_EXCL`
/// and mode exactly `mode`. While it exists no git command writes `path`. Fails with
/// [`Error::FileLocked`] if the lock file exists already (a git command is writing `path`, or
/// one crashed).
pub fn take_lock(path: &Path, lock: &Path, mode: u32) -> Result<File, Error> {
    let file = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(lock)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::FileLocked {
                path: path.to_path_buf(),
                lock: lock.to_path_buf(),
            })
        }
        Err(source) => return Err(temp_error(path, source)),
    };
    if let Err(source) = file.set_permissions(Permissions::from_mode(mode)) {
        let _ = fs::remove_file(lock);
        return Err(Error::Io {
            action: "set the mode of",
            path: lock.to_path_buf(),
            source,
        });
    }
    Ok(file)
}

/// Fills the lock file that [`take_lock`] created with `bytes`, fsyncs it and renames it over
/// `path`: git's own way of replacing its config. On failure the lock file is removed.
pub fn commit_lock(file: File, lock: &Path, path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Err(source) = fill(file, bytes).and_then(|()| fs::rename(lock, path)) {
        let _ = fs::remove_file(lock);
        return Err(Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        });
    }
    sync_dir(path)
}

/// A private scratch directory, `.<base>.git-pair-<hex>.tmp` (mode 0700), removed with
/// everything in it when dropped. Its name is a temporary file's name, so that the next run
/// removes it if a crash leaves it behind.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates it in `parent`.
    pub fn new(parent: &Path, base: &str) -> Result<TempDir, Error> {
        let mut last_error = None;
        for _ in 0..16 {
            let path = parent.join(temp_name(base));
            match fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(TempDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_error = Some(e),
                Err(source) => return Err(temp_error(&parent.join(base), source)),
            }
        }
        Err(temp_error(
            &parent.join(base),
            last_error.unwrap_or_else(|| io::Error::other("no free temporary name")),
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// `.<base>.git-pair-<16 random hex digits>.tmp`; see [`super::journal::is_temp_name`].
fn temp_name(base: &str) -> String {
    format!(".{base}.git-pair-{:016x}.tmp", rand_core::OsRng.next_u64())
}

/// Removes `path` if it exists and fsyncs its directory. A missing file is not an error.
pub fn remove(path: &Path) -> Result<(), Error> {
    match fs::remove_file(path) {
        Ok(()) => sync_dir(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Io {
            action: "remove",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// New bytes for a file, written to a temporary file next to it (created with `O_EXCL` and the
/// final mode) but not yet synced nor in place. Dropping it removes the temporary file.
pub struct Temp {
    tmp: PathBuf,
    file: File,
    /// `false` once the temporary name is gone (renamed or removed).
    present: bool,
}

impl Temp {
    /// Stages `bytes` with mode exactly `mode` for `path` (nothing is synced yet).
    pub fn stage(path: &Path, bytes: &[u8], mode: u32) -> Result<Temp, Error> {
        let (tmp, file) = create_temp(path, mode)?;
        Temp::fill(tmp, file, path, bytes)
    }

    /// [`Temp::stage`] under the temporary name `tmp` chosen beforehand with [`temp_path`] (so
    /// that it can be journaled before it exists).
    pub fn stage_at(tmp: PathBuf, path: &Path, bytes: &[u8], mode: u32) -> Result<Temp, Error> {
        let file = open_temp(&tmp, mode).map_err(|e| match e {
            TempError::Io(source) => temp_error(path, source),
            TempError::Other(e) => e,
        })?;
        Temp::fill(tmp, file, path, bytes)
    }

    fn fill(tmp: PathBuf, file: File, path: &Path, bytes: &[u8]) -> Result<Temp, Error> {
        // Built first, so that a failed write removes the temporary file.
        let temp = Temp {
            tmp,
            file,
            present: true,
        };
        (&temp.file).write_all(bytes).map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
        Ok(temp)
    }

    /// Moves the staged bytes over `path` (which is replaced if it exists).
    pub fn rename_to(mut self, path: &Path) -> Result<(), Error> {
        fs::rename(&self.tmp, path).map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
        self.present = false;
        Ok(())
    }

    /// Moves the staged bytes over `path` now, keeping the open file so that they can still be
    /// synced ([`sync_round`]): for the journal, whose name and bytes are synced in one round
    /// with everything else (a name whose bytes a power cut lost is an empty file, which
    /// recovery knows changed nothing yet).
    pub fn rename_keeping(&mut self, path: &Path) -> Result<(), Error> {
        fs::rename(&self.tmp, path).map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
        self.present = false;
        Ok(())
    }

    /// Makes the staged bytes appear as `path`, which must not exist (see [`create_new`]).
    pub fn link_to(self, path: &Path) -> Result<(), Error> {
        match fs::hard_link(&self.tmp, path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(Error::IdentityExists {
                path: path.to_path_buf(),
            }),
            Err(source) => Err(Error::Io {
                action: "create",
                path: path.to_path_buf(),
                source,
            }),
        }
        // Dropping `self` removes the temporary name; the file lives on under `path`.
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.present {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// New bytes for a file, kept in memory until [`write_and_sync`] writes them to a temporary file
/// next to it (created with `O_EXCL` and the final mode) right before they are synced, so that
/// nothing is written before a transaction's flush.
pub struct NewFile {
    path: PathBuf,
    /// The temporary name chosen beforehand (to journal it), or `None` for any free one.
    tmp: Option<PathBuf>,
    bytes: Zeroizing<Vec<u8>>,
    mode: u32,
}

impl NewFile {
    /// `bytes` with mode exactly `mode` for `path`, under any free temporary name.
    pub fn new(path: &Path, bytes: Zeroizing<Vec<u8>>, mode: u32) -> NewFile {
        NewFile {
            path: path.to_path_buf(),
            tmp: None,
            bytes,
            mode,
        }
    }

    /// Like [`NewFile::new`], under the temporary name `tmp` (from [`temp_path`]).
    pub fn named(tmp: PathBuf, path: &Path, bytes: Zeroizing<Vec<u8>>, mode: u32) -> NewFile {
        NewFile {
            tmp: Some(tmp),
            ..NewFile::new(path, bytes, mode)
        }
    }

    fn write(&self) -> Result<Temp, Error> {
        match &self.tmp {
            Some(tmp) => Temp::stage_at(tmp.clone(), &self.path, &self.bytes, self.mode),
            None => Temp::stage(&self.path, &self.bytes, self.mode),
        }
    }
}

/// Writes each of `files` to its temporary file, one after another, then syncs all of them,
/// `journal` and each of `dirs` in one round (see [`sync_round`]); returns the temporary files in
/// the order of `files`. On an error every temporary file made here is removed again.
pub fn write_and_sync(
    files: &[&NewFile],
    journal: (&Temp, &Path),
    dirs: &[PathBuf],
) -> Result<Vec<Temp>, Error> {
    let temps = files
        .iter()
        .map(|f| f.write())
        .collect::<Result<Vec<Temp>, Error>>()?;
    let synced = temps
        .iter()
        .zip(files)
        .map(|(t, f)| (t, f.path.as_path()))
        .chain([journal]);
    sync_round(synced, dirs)?;
    Ok(temps)
}

/// Makes the renames, links and unlinks in each of `dirs` durable.
pub fn sync_dirs(dirs: &[PathBuf]) -> Result<(), Error> {
    sync_round([], dirs)
}

/// The bytes of `temps` and the entries of `dirs` made durable in one round, one fsync after
/// another on this thread. Not on a thread each: ext4's journal (jbd2) makes a synchronous
/// commit wait a little for other writers when the previous one came from another thread, hoping
/// to batch them, so that 8 small files and their directory took 4-5 ms synced at once and 1.5
/// ms one after another here. Before the first fsync, the writeback of every file is started
/// (Linux does that for `POSIX_FADV_DONTNEED`; a hint, whose failure changes nothing), so that
/// the first journal commit takes all of them and the later fsyncs find little left to do: 0.8
/// ms instead of 1.5 for the same files. Durability rests on the fsyncs alone.
pub fn sync_round<'a>(
    temps: impl IntoIterator<Item = (&'a Temp, &'a Path)>,
    dirs: &[PathBuf],
) -> Result<(), Error> {
    let temps: Vec<(&Temp, &Path)> = temps.into_iter().collect();
    for (t, _) in &temps {
        let _ = posix_fadvise(&t.file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
    for (t, path) in temps {
        t.file.sync_all().map_err(|source| Error::Io {
            action: "write",
            path: path.to_path_buf(),
            source,
        })?;
    }
    dirs.iter().try_for_each(|dir| sync_dir_itself(dir))
}

/// A file's bytes and permission bits, as [`read`] found them.
pub struct FileContents {
    /// Zeroized on drop, since they may be a private key.
    pub bytes: Zeroizing<Vec<u8>>,
    pub mode: u32,
}

/// The current contents and mode of a regular file, or `None` if it does not exist.
pub fn read(path: &Path) -> Result<Option<FileContents>, Error> {
    let io_err = |source| Error::Io {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(e)),
    };
    let meta = file.metadata().map_err(io_err)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes).map_err(io_err)?;
    Ok(Some(FileContents {
        bytes,
        mode: meta.permissions().mode() & 0o7777,
    }))
}

/// Follows `path` through symlinks to the file that is really written, so that a `~/.ssh/config`
/// symlinked into a dotfiles repository stays a symlink and its target gets the change. A
/// missing file or a dangling link resolves to the path where the file would be created.
pub fn resolve(path: &Path) -> Result<PathBuf, Error> {
    let mut current = path.to_path_buf();
    for _ in 0..=MAX_SYMLINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&current).map_err(|source| Error::Io {
                    action: "read the symlink",
                    path: current.clone(),
                    source,
                })?;
                current = match current.parent() {
                    Some(parent) if target.is_relative() => parent.join(target),
                    _ => target,
                };
            }
            Ok(_) => return Ok(current),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(source) => {
                return Err(Error::Io {
                    action: "inspect",
                    path: current,
                    source,
                })
            }
        }
    }
    Err(Error::SymlinkLoop {
        path: path.to_path_buf(),
    })
}

/// Creates directory `path` with mode exactly `mode` unless it exists; an existing directory's
/// mode is left alone. Returns whether it was created.
pub fn ensure_dir(path: &Path, mode: u32) -> Result<bool, Error> {
    let created = ensure_dir_unsynced(path, mode)?;
    if created {
        sync_dir(path)?;
    }
    Ok(created)
}

/// [`ensure_dir`] without making the new directory's name durable: the caller syncs its parent
/// (`path.parent()`) later, e.g. with [`sync_dirs`] at the end of a transaction.
pub fn ensure_dir_unsynced(path: &Path, mode: u32) -> Result<bool, Error> {
    match fs::DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {
            // The umask may have cleared bits of `mode`; it can never have added any, so there
            // is no moment where the directory is more open than asked.
            fs::set_permissions(path, Permissions::from_mode(mode)).map_err(|source| {
                Error::Io {
                    action: "set the mode of",
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false) {
                Ok(false)
            } else {
                Err(Error::NotADirectory {
                    path: path.to_path_buf(),
                })
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoHome {
            path: path.parent().unwrap_or(Path::new("/")).to_path_buf(),
        }),
        Err(source) => Err(Error::Io {
            action: "create the directory",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// A new, empty file next to `path`, created with `O_EXCL` and `mode` (then set to exactly
/// `mode`, before anything is written to it, in case the umask cleared bits).
fn create_temp(path: &Path, mode: u32) -> Result<(PathBuf, File), Error> {
    let mut last_error = None;
    for _ in 0..16 {
        let tmp = temp_path(path);
        match open_temp(&tmp, mode) {
            Ok(file) => return Ok((tmp, file)),
            Err(TempError::Io(e)) if e.kind() == io::ErrorKind::AlreadyExists => {
                last_error = Some(e)
            }
            Err(TempError::Io(source)) => return Err(temp_error(path, source)),
            Err(TempError::Other(e)) => return Err(e),
        }
    }
    Err(temp_error(
        path,
        last_error.unwrap_or_else(|| io::Error::other("no free temporary name")),
    ))
}

/// A fresh temporary name next to `path` (see [`super::journal::is_temp_name`]).
pub fn temp_path(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.join(temp_name(&name))
}

enum TempError {
    Io(io::Error),
    Other(Error),
}

/// Creates `tmp` with `O_EXCL` and mode exactly `mode` (set again before anything is written,
/// in case the umask cleared bits).
fn open_temp(tmp: &Path, mode: u32) -> Result<File, TempError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(TempError::Io)?;
    if let Err(source) = file.set_permissions(Permissions::from_mode(mode)) {
        let _ = fs::remove_file(tmp);
        return Err(TempError::Other(Error::Io {
            action: "set the mode of",
            path: tmp.to_path_buf(),
            source,
        }));
    }
    Ok(file)
}

/// Whether this user may create the temporary file for `path` in its directory, asked without
/// writing anything (`access`); the error is the one creating it would give.
pub fn check_temp_for(path: &Path) -> Result<(), Error> {
    use nix::unistd::{access, AccessFlags};
    let dir = path.parent().unwrap_or(Path::new("/"));
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|errno| temp_error(path, io::Error::from(errno)))
}

fn temp_error(path: &Path, source: io::Error) -> Error {
    let read_only = source.raw_os_error() == Some(nix::errno::Errno::EROFS as i32);
    if source.kind() == io::ErrorKind::PermissionDenied || read_only {
        // Say what to do rather than just "permission denied".
        Error::NotWritable {
            path: path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            hint: "git pair creates a temporary file next to each file it changes",
            source,
        }
    } else {
        Error::Io {
            action: "create a temporary file for",
            path: path.to_path_buf(),
            source,
        }
    }
}

fn fill(mut file: File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

/// Makes a rename, link or unlink in the directory of `path` durable.
fn sync_dir(path: &Path) -> Result<(), Error> {
    sync_dir_itself(path.parent().unwrap_or(Path::new("/")))
}

fn sync_dir_itself(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| Error::Io {
            action: "sync the directory",
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh_files::io_tests::TempHome;

    fn mode_of(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn write_creates_and_replaces_with_exact_mode_and_no_leftovers() {
        let home = TempHome::new();
        let p = home.path().join("f");
        write(&p, b"one", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(mode_of(&p), 0o600);
        write(&p, b"two\xff", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two\xff");
        assert_eq!(mode_of(&p), 0o644);
        assert_eq!(names(home.path()), vec!["f"]);
    }

    #[test]
    fn write_into_missing_directory_fails_cleanly() {
        let home = TempHome::new();
        let p = home.path().join("nope/f");
        assert!(write(&p, b"x", 0o600).is_err());
        assert!(names(home.path()).is_empty());
    }

    #[test]
    fn create_new_never_overwrites() {
        let home = TempHome::new();
        let p = home.path().join("id");
        create_new(&p, b"secret", 0o600).unwrap();
        assert_eq!(mode_of(&p), 0o600);
        let err = create_new(&p, b"other", 0o600).unwrap_err();
        assert!(matches!(err, Error::IdentityExists { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        // A dangling symlink blocks the name too.
        let link = home.path().join("dangling");
        std::os::unix::fs::symlink(home.path().join("missing"), &link).unwrap();
        assert!(matches!(
            create_new(&link, b"x", 0o600),
            Err(Error::IdentityExists { .. })
        ));
        assert!(!home.path().join("missing").exists());
        assert_eq!(names(home.path()), vec!["dangling", "id"]);
    }

    #[test]
    fn read_and_remove() {
        let home = TempHome::new();
        let p = home.path().join("f");
        assert!(read(&p).unwrap().is_none());
        write(&p, b"abc", 0o640).unwrap();
        let found = read(&p).unwrap().unwrap();
        assert_eq!((&found.bytes[..], found.mode), (&b"abc"[..], 0o640));
        remove(&p).unwrap();
        assert!(!p.exists());
        remove(&p).unwrap();
        assert!(matches!(read(home.path()), Err(Error::NotAFile { .. })));
    }

    #[test]
    fn resolve_follows_symlink_chains_and_detects_loops() {
        let home = TempHome::new();
        let real = home.path().join("real");
        fs::write(&real, b"x").unwrap();
        std::os::unix::fs::symlink("real", home.path().join("a")).unwrap();
        std::os::unix::fs::symlink(home.path().join("a"), home.path().join("b")).unwrap();
        assert_eq!(resolve(&home.path().join("b")).unwrap(), real);
        assert_eq!(
            resolve(&home.path().join("plain")).unwrap(),
            home.path().join("plain")
        );
        std::os::unix::fs::symlink("loop2", home.path().join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", home.path().join("loop2")).unwrap();
        assert!(matches!(
            resolve(&home.path().join("loop1")),
            Err(Error::SymlinkLoop { .. })
        ));
    }

    #[test]
    fn ensure_dir_creates_0700_and_leaves_existing_alone() {
        let home = TempHome::new();
        let d = home.path().join("d");
        assert!(ensure_dir(&d, 0o700).unwrap());
        assert_eq!(mode_of(&d), 0o700);
        fs::set_permissions(&d, Permissions::from_mode(0o755)).unwrap();
        assert!(!ensure_dir(&d, 0o700).unwrap());
        assert_eq!(mode_of(&d), 0o755);
        let f = home.path().join("f");
        fs::write(&f, b"").unwrap();
        assert!(matches!(
            ensure_dir(&f, 0o700),
            Err(Error::NotADirectory { .. })
        ));
    }
}
