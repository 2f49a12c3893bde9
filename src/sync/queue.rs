//! The background sync the hooks start: one run at a time, commits in quick succession
//! coalesced, a log.
//!
//! Each hook run of `git pair sync --hook` first leaves a request (it rewrites the file
//! `sync.pending`, whose modification time says when the last commit came), then tries to take
//! the lock `sync.lock` without waiting. The process that gets the lock waits until no request
//! has come for [`QUIET`] (at most [`MAX_WAIT`] in all), takes the request (removes the file),
//! syncs, and loops while a new request came in meanwhile. A process that does not get the lock
//! just leaves: the holder sees its request. After releasing the lock the holder looks once more,
//! so that a request left between its last look and the release is never lost (its sender
//! found the lock still held). Ten commits in a second thus make one or two syncs, and the
//! last commit always gets one that started after it.
//!
//! The files live in the repository's git directory, under `git-pair/` (the log in the common
//! git directory, shared by linked work trees). The log is plain text, one timestamped line per
//! event, and is started afresh (the old one kept as `sync.log.old`) when it passes
//! [`LOG_LIMIT`] bytes.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// How long no commit must come before a queued sync starts.
pub const QUIET: Duration = Duration::from_millis(500);

/// The longest a queued sync waits for commits to stop coming.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// The size past which the log is started afresh.
pub const LOG_LIMIT: u64 = 1 << 20;

/// The directory under the git directory.
pub const DIR: &str = "git-pair";
pub const LOG: &str = "sync.log";
const LOCK: &str = "sync.lock";
const PENDING: &str = "sync.pending";

/// How much longer to wait before taking a request made `since_request` ago, after having
/// waited `waited` already; `None`: take it now.
pub fn wait_more(since_request: Duration, waited: Duration) -> Option<Duration> {
    if since_request >= QUIET || waited >= MAX_WAIT {
        None
    } else {
        Some((QUIET - since_request).min(MAX_WAIT - waited))
    }
}

/// The request file, the lock and the log of one repository.
#[derive(Debug, Clone)]
pub struct Queue {
    dir: PathBuf,
    log: PathBuf,
}

impl Queue {
    /// The queue of the work tree whose git directory is `git_dir`; its log goes in
    /// `common_dir`. Creates the directories (0700) if needed.
    pub fn open(git_dir: &Path, common_dir: &Path) -> io::Result<Queue> {
        let dir = git_dir.join(DIR);
        let log_dir = common_dir.join(DIR);
        for d in [&dir, &log_dir] {
            match fs::DirBuilder::new().mode(0o700).create(d) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                _ => {}
            }
        }
        Ok(Queue {
            dir,
            log: log_dir.join(LOG),
        })
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    fn pending(&self) -> PathBuf {
        self.dir.join(PENDING)
    }

    /// Leaves a request (or renews it: the time of the last one is what counts).
    pub fn request(&self) -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(self.pending())?;
        writeln!(f, "{}", std::process::id())
    }

    /// Whether a request waits.
    pub fn has_request(&self) -> bool {
        self.pending().exists()
    }

    /// The lock, if no other process holds it.
    pub fn try_lock(&self) -> io::Result<Option<Flock<File>>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.dir.join(LOCK))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(lock)),
            Err((_, Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(io::Error::from(errno)),
        }
    }

    /// The lock, waiting for the process that holds it (calling `waiting` first, once).
    pub fn lock_waiting(&self, waiting: &mut dyn FnMut()) -> io::Result<Flock<File>> {
        if let Some(lock) = self.try_lock()? {
            return Ok(lock);
        }
        waiting();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(self.dir.join(LOCK))?;
        match Flock::lock(file, FlockArg::LockExclusive) {
            Ok(lock) => Ok(lock),
            Err((_, Errno::EINTR)) => self.lock_waiting(&mut || {}),
            Err((_, errno)) => Err(io::Error::from(errno)),
        }
    }

    /// Waits until the request has been quiet for [`QUIET`] (or [`MAX_WAIT`] passed), then
    /// takes it. `false` when there is none.
    pub fn take_when_quiet(&self) -> io::Result<bool> {
        let started = Instant::now();
        loop {
            let modified = match fs::metadata(self.pending()) {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            };
            let since = SystemTime::now()
                .duration_since(modified)
                .unwrap_or(Duration::ZERO);
            match wait_more(since, started.elapsed()) {
                Some(d) => std::thread::sleep(d),
                None => break,
            }
        }
        match fs::remove_file(self.pending()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(e),
        }
    }

    /// Appends one line to the log, with the time and this process's id in front.
    pub fn log(&self, line: &str) {
        let stamp = crate::repo::rfc3339(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        );
        let text = format!("{stamp} [{}] {line}\n", std::process::id());
        if let Ok(mut f) = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.log)
        {
            let _ = f.write_all(text.as_bytes());
        }
    }

    /// Starts the log afresh when it grew past [`LOG_LIMIT`].
    pub fn rotate_log(&self) {
        if fs::metadata(&self.log).is_ok_and(|m| m.len() > LOG_LIMIT) {
            let _ = fs::rename(&self.log, self.log.with_extension("log.old"));
        }
    }
}

/// Leaves a request and, unless a sync already runs, syncs (`sync` is called once per taken
/// request) until no request is left. Returns how many syncs this process ran.
pub fn run(queue: &Queue, sync: &mut dyn FnMut()) -> io::Result<u32> {
    queue.request()?;
    let mut runs = 0;
    loop {
        let Some(lock) = queue.try_lock()? else {
            return Ok(runs);
        };
        while queue.take_when_quiet()? {
            runs += 1;
            sync();
        }
        drop(lock);
        if !queue.has_request() {
            return Ok(runs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[test]
    fn waits_for_quiet_but_not_forever() {
        assert_eq!(wait_more(QUIET, Duration::ZERO), None);
        assert_eq!(
            wait_more(Duration::from_millis(100), Duration::ZERO),
            Some(QUIET - Duration::from_millis(100))
        );
        assert_eq!(wait_more(Duration::ZERO, MAX_WAIT), None);
        let near_the_end = MAX_WAIT - Duration::from_millis(10);
        assert_eq!(
            wait_more(Duration::ZERO, near_the_end),
            Some(Duration::from_millis(10))
        );
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("git-pair-queue-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn one_request_one_sync_and_the_lock_is_exclusive() {
        let dir = temp("one");
        let q = Queue::open(&dir, &dir).unwrap();
        let mut n = 0;
        assert_eq!(run(&q, &mut || n += 1).unwrap(), 1);
        assert_eq!(n, 1);
        assert!(!q.has_request());
        let held = q.try_lock().unwrap().expect("free");
        assert!(q.try_lock().unwrap().is_none(), "flock is per open file");
        // With the lock held elsewhere, a run only leaves its request.
        assert_eq!(run(&q, &mut || panic!("must not sync")).unwrap(), 0);
        assert!(q.has_request());
        drop(held);
        q.log("line one");
        let log = fs::read_to_string(q.log_path()).unwrap();
        assert!(log.ends_with(&format!("[{}] line one\n", std::process::id())));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn requests_in_quick_succession_coalesce_and_none_is_lost() {
        let dir = temp("burst");
        let q = Queue::open(&dir, &dir).unwrap();
        let syncs = Arc::new(AtomicU32::new(0));
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        let mut last_request = Instant::now();
        for _ in 0..10 {
            let (q, syncs, starts) = (q.clone(), syncs.clone(), starts.clone());
            last_request = Instant::now();
            handles.push(std::thread::spawn(move || {
                run(&q, &mut || {
                    starts.lock().unwrap().push(Instant::now());
                    syncs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                })
                .unwrap()
            }));
            std::thread::sleep(Duration::from_millis(60));
        }
        let total: u32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, syncs.load(Ordering::SeqCst));
        assert!((1..=2).contains(&total), "{total} syncs for 10 requests");
        assert!(!q.has_request(), "the last request was taken");
        let last_start = *starts.lock().unwrap().iter().max().unwrap();
        assert!(
            last_start > last_request,
            "a sync started after the last request"
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
