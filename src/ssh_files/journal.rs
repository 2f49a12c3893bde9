//! The crash journal: what an unfinished transaction changed, so that the next run of git pair
//! can undo it after a crash, a SIGKILL or a power cut.
//!
//! Before a transaction ([`Applied`](super::Applied)) changes a file, the journal records the
//! file's exact previous bytes and mode (or that it did not exist) and a digest of what the
//! transaction is about to put there; the journal is written atomically and fsynced before the
//! change. Committing deletes the journal: a journal on disk always means "not committed".
//! (A pairing commits before it waits for the peer's answer, and undoes itself in a second
//! transaction if the peer fails: a crash while it waits leaves it paired.) The next run of git pair takes the lock and, for each recorded file, last
//! first, [`plan`]s one of:
//!
//! - the file is as it was before: nothing to do (the crash came before the change);
//! - it holds something this transaction wrote: put the previous bytes and mode back (or
//!   remove it, if it did not exist);
//! - it holds anything else: someone changed it after the crash (the user, `git config`,
//!   `ssh-copy-id`), so it is left as it is and reported, rather than losing their change.
//!
//! This module is pure: the format and the planner, no I/O. The file format, version 1, all
//! integers big-endian:
//!
//! ```text
//! "git-pair journal 1\n"
//! u64 started (Unix seconds)  u32 pid  u32 length + label (UTF-8)
//! u32 number of entries, then for each:
//!   u32 length + path (absolute, no NUL)
//!   u8 0 (did not exist) | u8 1, u32 mode, u64 length + bytes
//!   u32 number of states written, each: u8 0 (removed) | u8 1 + 32-byte SHA-256 | u8 2 (anything)
//! 32-byte SHA-256 of everything above
//! ```
//!
//! The journal holds the previous bytes of every file it names, so it may hold a private key or
//! a pair secret that the transaction replaced or deleted: only what those files themselves held,
//! in a file of mode 0600 in git pair's own 0700 directory, deleted at commit. In memory the bytes
//! are zeroized on drop.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The journal's file name in `~/.ssh/git-pair`.
pub const FILE_NAME: &str = "journal";

/// The first bytes of every journal (the `1` is the format version).
pub const MAGIC: &[u8] = b"git-pair journal 1\n";

/// The largest journal read back: a transaction touches a handful of small files.
pub const MAX_LEN: usize = 64 << 20;

const MAX_ENTRIES: usize = 4096;
const MAX_STATES: usize = 64;
const MAX_PATH: usize = 4096;
const MAX_LABEL: usize = 4096;

/// A SHA-256 digest of a file's bytes.
pub type Digest = [u8; 32];

/// The digest of `bytes`.
pub fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// A file's bytes and permission bits.
#[derive(Clone, PartialEq, Eq)]
pub struct Saved {
    pub mode: u32,
    /// Zeroized on drop: they may be a private key.
    pub bytes: Zeroizing<Vec<u8>>,
}

// By hand: the bytes may be a secret.
impl fmt::Debug for Saved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Saved({:o}, {} bytes)", self.mode, self.bytes.len())
    }
}

/// A state the transaction left a file in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Removed it.
    Removed,
    /// Wrote exactly these bytes.
    Bytes(Digest),
    /// A temporary file of its own, such as git's `config.lock` while it is being filled: any
    /// content is ours.
    Anything,
}

/// One file of the transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path written (symlinks already resolved).
    pub path: PathBuf,
    /// What it held before the transaction first touched it; `None`: it did not exist.
    pub before: Option<Saved>,
    /// Every state the transaction may have left it in, oldest first.
    pub written: Vec<Written>,
}

/// An unfinished transaction.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Journal {
    /// When it began (Unix seconds), for messages.
    pub started: u64,
    /// The process that wrote it, for messages.
    pub pid: u32,
    /// What it was doing, for messages ("pairing alias X").
    pub label: String,
    /// In the order the files were first touched.
    pub entries: Vec<Entry>,
}

impl Journal {
    pub fn new(started: u64, pid: u32, label: impl Into<String>) -> Journal {
        Journal {
            started,
            pid,
            label: label.into(),
            entries: Vec::new(),
        }
    }

    /// Records that the transaction is about to put `path` in state `state`. The first time a
    /// path is seen, `before` is what it holds now; later calls keep the first `before`.
    pub fn record(&mut self, path: &Path, before: Option<Saved>, state: Written) {
        match self.entries.iter_mut().find(|e| e.path == path) {
            Some(entry) => {
                if !entry.written.contains(&state) {
                    entry.written.push(state);
                }
            }
            None => self.entries.push(Entry {
                path: path.to_path_buf(),
                before,
                written: vec![state],
            }),
        }
    }

    /// Takes back [`Journal::record`]`(path, _, state)`: the transaction did not write it after
    /// all. An entry left without states goes.
    pub fn unrecord(&mut self, path: &Path, state: Written) {
        for entry in self.entries.iter_mut().filter(|e| e.path == path) {
            entry.written.retain(|w| *w != state);
        }
        self.entries.retain(|e| !e.written.is_empty());
    }

    /// Whether the journal names `path`.
    pub fn names(&self, path: &Path) -> bool {
        self.entries.iter().any(|e| e.path == path)
    }

    /// The journal as bytes (see the module doc); zeroized on drop.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.started.to_be_bytes());
        out.extend_from_slice(&self.pid.to_be_bytes());
        put_bytes32(&mut out, self.label.as_bytes());
        put_u32(&mut out, self.entries.len());
        for entry in &self.entries {
            put_bytes32(&mut out, entry.path.as_os_str().as_bytes());
            match &entry.before {
                None => out.push(0),
                Some(saved) => {
                    out.push(1);
                    out.extend_from_slice(&saved.mode.to_be_bytes());
                    out.extend_from_slice(&(saved.bytes.len() as u64).to_be_bytes());
                    out.extend_from_slice(&saved.bytes);
                }
            }
            put_u32(&mut out, entry.written.len());
            for state in &entry.written {
                match state {
                    Written::Removed => out.push(0),
                    Written::Bytes(d) => {
                        out.push(1);
                        out.extend_from_slice(d);
                    }
                    Written::Anything => out.push(2),
                }
            }
        }
        let sum = digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Parses a journal. Only what [`Journal::encode`] makes is accepted, checksum included, so
    /// that a damaged journal is never acted upon.
    pub fn decode(bytes: &[u8]) -> Result<Journal, JournalError> {
        if !bytes.starts_with(MAGIC) {
            return Err(JournalError::NotAJournal);
        }
        if bytes.len() > MAX_LEN {
            return Err(JournalError::TooLarge);
        }
        if bytes.len() < MAGIC.len() + 32 {
            return Err(JournalError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if digest(body) != sum {
            return Err(JournalError::Checksum);
        }
        let mut r = Reader {
            rest: &body[MAGIC.len()..],
        };
        let started = u64::from_be_bytes(r.array()?);
        let pid = u32::from_be_bytes(r.array()?);
        let label = r.bytes32(MAX_LABEL)?;
        let label = std::str::from_utf8(label)
            .map_err(|_| JournalError::Invalid("the label is not UTF-8"))?
            .to_owned();
        let count = r.count(MAX_ENTRIES)?;
        let mut entries = Vec::with_capacity(count.min(64));
        for _ in 0..count {
            let path = r.bytes32(MAX_PATH)?;
            if path.first() != Some(&b'/') || path.contains(&0) {
                return Err(JournalError::Invalid("a path is not absolute"));
            }
            let path = PathBuf::from(OsStr::from_bytes(path));
            if entries.iter().any(|e: &Entry| e.path == path) {
                return Err(JournalError::Invalid("a path is named twice"));
            }
            let before = match r.byte()? {
                0 => None,
                1 => {
                    let mode = u32::from_be_bytes(r.array()?);
                    // Only permission bits: git pair never saves a setuid, setgid or sticky
                    // file, and a journal must not be able to make one.
                    if mode > 0o777 {
                        return Err(JournalError::Invalid("a mode is out of range"));
                    }
                    let len = u64::from_be_bytes(r.array()?);
                    let len = usize::try_from(len).map_err(|_| JournalError::Truncated)?;
                    let bytes = Zeroizing::new(r.take(len)?.to_vec());
                    Some(Saved { mode, bytes })
                }
                _ => return Err(JournalError::Invalid("an unknown file state")),
            };
            let states = r.count(MAX_STATES)?;
            if states == 0 {
                return Err(JournalError::Invalid("an entry without a written state"));
            }
            let mut written = Vec::with_capacity(states);
            for _ in 0..states {
                let state = match r.byte()? {
                    0 => Written::Removed,
                    1 => Written::Bytes(r.array()?),
                    2 => Written::Anything,
                    _ => return Err(JournalError::Invalid("an unknown written state")),
                };
                if written.contains(&state) {
                    return Err(JournalError::Invalid("a written state is named twice"));
                }
                written.push(state);
            }
            entries.push(Entry {
                path,
                before,
                written,
            });
        }
        if !r.rest.is_empty() {
            return Err(JournalError::Invalid("bytes after the last entry"));
        }
        Ok(Journal {
            started,
            pid,
            label,
            entries,
        })
    }
}

fn put_u32(out: &mut Vec<u8>, n: usize) {
    let n = u32::try_from(n).expect("journal fields are far below 4 GiB");
    out.extend_from_slice(&n.to_be_bytes());
}

fn put_bytes32(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], JournalError> {
        if self.rest.len() < n {
            return Err(JournalError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], JournalError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, JournalError> {
        Ok(self.take(1)?[0])
    }

    fn count(&mut self, max: usize) -> Result<usize, JournalError> {
        let n = u32::from_be_bytes(self.array()?) as usize;
        if n > max {
            return Err(JournalError::Invalid("a count is out of range"));
        }
        Ok(n)
    }

    fn bytes32(&mut self, max: usize) -> Result<&'a [u8], JournalError> {
        let n = self.count(max)?;
        self.take(n)
    }
}

/// Why a journal cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("it does not start like a git pair journal")]
    NotAJournal,
    #[error("it is cut short")]
    Truncated,
    #[error("its checksum does not match: it is damaged")]
    Checksum,
    #[error("it is larger than any journal git pair writes")]
    TooLarge,
    #[error("it is malformed: {0}")]
    Invalid(&'static str),
    /// Someone other than this user could have written it: it is never acted upon.
    #[error("{0}, so another user could have written it")]
    Untrusted(&'static str),
}

/// What the next run does with one file of an unfinished transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// It is as it was before the transaction.
    Nothing,
    /// It holds what the transaction wrote: put these bytes and mode back.
    Restore(&'a Saved),
    /// It holds what the transaction wrote and did not exist before: remove it.
    Remove,
    /// It was changed by someone else since: leave it.
    ChangedSince,
}

/// Decides what to do with `entry`'s file, which now holds `current` (`None`: does not exist).
pub fn plan<'a>(entry: &'a Entry, current: Option<&[u8]>) -> Action<'a> {
    let as_before = match (&entry.before, current) {
        (None, None) => true,
        (Some(saved), Some(now)) => saved.bytes.as_slice() == now,
        _ => false,
    };
    if as_before {
        return Action::Nothing;
    }
    let ours = match current {
        None => entry.written.contains(&Written::Removed),
        Some(now) => {
            entry.written.contains(&Written::Anything)
                || entry.written.contains(&Written::Bytes(digest(now)))
        }
    };
    match (ours, &entry.before) {
        (false, _) => Action::ChangedSince,
        (true, Some(saved)) => Action::Restore(saved),
        (true, None) => Action::Remove,
    }
}

/// Whether `name` is one of git pair's temporary files or directories,
/// `.<name>.git-pair-<16 hex digits>.tmp`: a crash can leave one behind, and it is never
/// anything else's.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(".tmp") else {
        return false;
    };
    let Some((base, hex)) = rest.rsplit_once(".git-pair-") else {
        return false;
    };
    !base.is_empty()
        && hex.len() == 16
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(mode: u32, bytes: &[u8]) -> Option<Saved> {
        Some(Saved {
            mode,
            bytes: Zeroizing::new(bytes.to_vec()),
        })
    }

    fn sample() -> Journal {
        let mut j = Journal::new(
            1_795_687_322,
            4242,
            "pairing alias git-pair-laptop-1a2b3c4d",
        );
        j.record(
            Path::new("/home/a/.ssh/git-pair/id_x"),
            None,
            Written::Bytes(digest(b"PRIVATE")),
        );
        j.record(
            Path::new("/home/a/.ssh/authorized_keys"),
            saved(0o600, b"ssh-ed25519 AAAA mine\r\n\xff"),
            Written::Bytes(digest(b"new")),
        );
        j.record(
            Path::new("/home/a/.ssh/authorized_keys"),
            saved(0o644, b"ignored: the first before stays"),
            Written::Bytes(digest(b"newer")),
        );
        j.record(
            Path::new("/home/a/.ssh/git-pair/id_old"),
            saved(0o600, b"OLD KEY"),
            Written::Removed,
        );
        j.record(Path::new("/r/.git/config.lock"), None, Written::Anything);
        j
    }

    #[test]
    fn record_keeps_the_first_before_and_every_state_once() {
        let j = sample();
        assert_eq!(j.entries.len(), 4);
        let ak = &j.entries[1];
        assert_eq!(ak.before, saved(0o600, b"ssh-ed25519 AAAA mine\r\n\xff"));
        assert_eq!(
            ak.written,
            [
                Written::Bytes(digest(b"new")),
                Written::Bytes(digest(b"newer"))
            ]
        );
        let mut again = j.clone();
        again.record(&ak.path, None, Written::Bytes(digest(b"new")));
        assert_eq!(again, j);
        assert!(j.names(Path::new("/r/.git/config.lock")));
        assert!(!j.names(Path::new("/r/.git/config")));
    }

    #[test]
    fn unrecord_takes_back_one_state() {
        let mut j = sample();
        let ak = j.entries[1].path.clone();
        j.unrecord(&ak, Written::Bytes(digest(b"newer")));
        assert_eq!(j.entries[1].written, [Written::Bytes(digest(b"new"))]);
        j.unrecord(&ak, Written::Bytes(digest(b"new")));
        assert!(!j.names(&ak));
        assert_eq!(j.entries.len(), 3);
    }

    #[test]
    fn encode_decode_round_trip() {
        let j = sample();
        let bytes = j.encode();
        assert!(bytes.starts_with(MAGIC));
        assert_eq!(Journal::decode(&bytes).unwrap(), j);
        let empty = Journal::new(0, 0, "");
        assert_eq!(Journal::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn a_damaged_journal_is_refused() {
        let bytes = sample().encode().to_vec();
        assert_eq!(Journal::decode(b""), Err(JournalError::NotAJournal));
        assert_eq!(
            Journal::decode(b"some other file\n"),
            Err(JournalError::NotAJournal)
        );
        assert_eq!(Journal::decode(MAGIC), Err(JournalError::Truncated));
        // Every single flipped bit and every truncation is caught.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            assert!(Journal::decode(&bad).is_err(), "bit flip at {i}");
            assert!(Journal::decode(&bytes[..i]).is_err(), "cut at {i}");
        }
    }

    /// A journal with a valid checksum over a body `f` produces.
    fn sealed(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        f(&mut out);
        let sum = digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    fn header(out: &mut Vec<u8>) {
        out.extend_from_slice(&7u64.to_be_bytes());
        out.extend_from_slice(&9u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
    }

    fn entry(out: &mut Vec<u8>, path: &[u8]) {
        out.extend_from_slice(&(path.len() as u32).to_be_bytes());
        out.extend_from_slice(path);
    }

    #[test]
    fn a_well_sealed_but_malformed_journal_is_refused() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "relative path",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&1u32.to_be_bytes());
                    entry(o, b"home/x");
                    o.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
                }),
            ),
            (
                "NUL in path",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&1u32.to_be_bytes());
                    entry(o, b"/a\0b");
                    o.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
                }),
            ),
            (
                "no state",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&1u32.to_be_bytes());
                    entry(o, b"/a");
                    o.extend_from_slice(&[0, 0, 0, 0, 0]);
                }),
            ),
            (
                "unknown state",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&1u32.to_be_bytes());
                    entry(o, b"/a");
                    o.extend_from_slice(&[0, 0, 0, 0, 1, 7]);
                }),
            ),
            (
                "mode out of range",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&1u32.to_be_bytes());
                    entry(o, b"/a");
                    o.push(1);
                    o.extend_from_slice(&0o10000u32.to_be_bytes());
                    o.extend_from_slice(&0u64.to_be_bytes());
                    o.extend_from_slice(&[0, 0, 0, 1, 0]);
                }),
            ),
            (
                "huge length",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&1u32.to_be_bytes());
                    entry(o, b"/a");
                    o.push(1);
                    o.extend_from_slice(&0o600u32.to_be_bytes());
                    o.extend_from_slice(&u64::MAX.to_be_bytes());
                }),
            ),
            (
                "too many entries",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&u32::MAX.to_be_bytes());
                }),
            ),
            (
                "trailing bytes",
                sealed(|o| {
                    header(o);
                    o.extend_from_slice(&0u32.to_be_bytes());
                    o.push(0);
                }),
            ),
            (
                "label not UTF-8",
                sealed(|o| {
                    o.extend_from_slice(&7u64.to_be_bytes());
                    o.extend_from_slice(&9u32.to_be_bytes());
                    o.extend_from_slice(&1u32.to_be_bytes());
                    o.push(0xff);
                    o.extend_from_slice(&0u32.to_be_bytes());
                }),
            ),
        ];
        for (what, bytes) in cases {
            assert!(
                matches!(
                    Journal::decode(&bytes),
                    Err(JournalError::Invalid(_) | JournalError::Truncated)
                ),
                "{what}: {:?}",
                Journal::decode(&bytes)
            );
        }
        let twice = sealed(|o| {
            header(o);
            o.extend_from_slice(&2u32.to_be_bytes());
            for _ in 0..2 {
                entry(o, b"/a");
                o.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
            }
        });
        assert_eq!(
            Journal::decode(&twice),
            Err(JournalError::Invalid("a path is named twice"))
        );
    }

    #[test]
    fn the_planner_restores_only_what_the_transaction_wrote() {
        let j = sample();
        let (key, ak, old_key, lock) = (&j.entries[0], &j.entries[1], &j.entries[2], &j.entries[3]);
        // A file created by the transaction.
        assert_eq!(plan(key, None), Action::Nothing);
        assert_eq!(plan(key, Some(b"PRIVATE")), Action::Remove);
        assert_eq!(plan(key, Some(b"someone else's")), Action::ChangedSince);
        // A file changed twice: either state is ours.
        assert_eq!(
            plan(ak, Some(b"ssh-ed25519 AAAA mine\r\n\xff")),
            Action::Nothing
        );
        assert_eq!(
            plan(ak, Some(b"new")),
            Action::Restore(ak.before.as_ref().unwrap())
        );
        assert_eq!(
            plan(ak, Some(b"newer")),
            Action::Restore(ak.before.as_ref().unwrap())
        );
        assert_eq!(plan(ak, Some(b"new plus a key")), Action::ChangedSince);
        assert_eq!(plan(ak, None), Action::ChangedSince);
        // A file the transaction deleted.
        assert_eq!(
            plan(old_key, None),
            Action::Restore(old_key.before.as_ref().unwrap())
        );
        assert_eq!(plan(old_key, Some(b"OLD KEY")), Action::Nothing);
        assert_eq!(plan(old_key, Some(b"recreated")), Action::ChangedSince);
        // A lock file of ours: whatever it holds.
        assert_eq!(plan(lock, None), Action::Nothing);
        assert_eq!(plan(lock, Some(b"")), Action::Remove);
        assert_eq!(plan(lock, Some(b"[core]\n\tbare")), Action::Remove);
    }

    #[test]
    fn temporary_names() {
        for ok in [
            ".config.git-pair-0123456789abcdef.tmp",
            ".id_git-pair-laptop-1a2b3c4d.pub.git-pair-ffffffffffffffff.tmp",
            ".journal.git-pair-0000000000000000.tmp",
        ] {
            assert!(is_temp_name(ok), "{ok}");
        }
        for bad in [
            "config",
            "config.lock",
            ".config.git-pair-0123456789abcde.tmp",
            ".config.git-pair-0123456789ABCDEF.tmp",
            ".config.git-pair-0123456789abcdef.tmpx",
            "config.git-pair-0123456789abcdef.tmp",
            "..git-pair-0123456789abcdef.tmp",
            ".git-pair-0123456789abcdef.tmp",
        ] {
            assert!(!is_temp_name(bad), "{bad}");
        }
    }

    #[test]
    fn debug_shows_no_bytes() {
        let shown = format!("{:?}", sample());
        assert!(
            !shown.contains("OLD KEY") && !shown.contains("mine"),
            "{shown}"
        );
    }
}
