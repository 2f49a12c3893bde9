//! `git pair sync`: keeps a repository in step with its paired peers, the way `git annex sync`
//! does for git-annex, without ever merging.
//!
//! In a plain git repository, for the current branch `B` and every paired peer:
//! 1. fetch the peer's branches (all peers at once), into `refs/remotes/<peer>/`;
//! 2. fast-forward `B` to the newest of the peers' `B` and `synced/B` that contains it, when the
//!    work tree has no uncommitted changes ([`plan::plan_fast_forward`]); never a merge;
//! 3. push `B` to `refs/heads/synced/B` on each peer, never forced: the peer's own checked-out
//!    branch is never touched, and its next sync fast-forwards it;
//! 4. report one outcome per peer ([`plan::peer_outcome`]): up to date, synced, diverged (nothing
//!    merged), held back by local changes, unreachable, host key changed, refused, failed.
//!
//! A peer that cannot be reached is refreshed once (`git pair refresh` for its pairing: the
//! [`Refresher`] the edge gives) and, when found, tried once more.
//!
//! In a git-annex repository (one with `annex.uuid`) it runs `git annex sync` with the paired
//! remotes instead (with `--content` when `annex.synccontent` asks for it), after checking which
//! peers answer, so that a peer that is off is reported as unreachable rather than failing the
//! run.
//!
//! The decisions are pure ([`plan`]); [`git`] runs the git commands; [`queue`] is the
//! background run the hooks start; [`hooks`] installs the hooks.

pub mod git;
pub mod hooks;
pub mod plan;
pub mod queue;

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use crate::exit::Exit;
use crate::repo::{self, PairedRemote};
use git::Git;
use plan::{Candidate, Failure, Outcome, PeerFacts, PeerRef, PeerResult, Pushed, Relation};

/// Why `git pair sync` could not run, or what a finished run asks the user to look at.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    #[error("not in a git repository ({0}): run git pair sync inside a paired repository")]
    NotARepository(String),
    #[error("this repository has no pairings: pair it with `git pair` first")]
    NoPairings,
    #[error("no pairing named {0}: `git pair list` shows them")]
    UnknownPairing(String),
    #[error("HEAD is detached: check out a branch (git switch BRANCH) to sync it")]
    Detached,
    #[error(
        "branch {0} has no commits yet: nothing to sync. Commit first, or take a peer's \
         history with `git pull REMOTE {0}`"
    )]
    Unborn(String),
    #[error(
        "the checked-out branch {0} is where peers push to: switch to the branch it mirrors \
         (git switch {1}) and sync that"
    )]
    SyncedBranch(String, String),
    #[error(
        "this is a git-annex repository, but git-annex does not run here: install it \
         (apt-get install git-annex) and sync again"
    )]
    NoAnnex,
    #[error("cannot read the repository")]
    Repo(#[from] repo::RepoError),
    #[error("cannot read the repository")]
    Git2(#[from] git2::Error),
    #[error("cannot run git: is it installed?")]
    RunGit(#[source] std::io::Error),
    /// The run finished, but something needs the user (the per-peer lines say what).
    #[error("{message}")]
    Finished { status: Exit, message: String },
}

impl SyncError {
    pub fn exit(&self) -> Exit {
        match self {
            SyncError::NotARepository(_)
            | SyncError::NoPairings
            | SyncError::UnknownPairing(_)
            | SyncError::Detached
            | SyncError::Unborn(_)
            | SyncError::SyncedBranch(..) => Exit::Usage,
            SyncError::NoAnnex | SyncError::Repo(_) | SyncError::Git2(_) | SyncError::RunGit(_) => {
                Exit::Error
            }
            SyncError::Finished { status, .. } => *status,
        }
    }
}

/// The [`SyncError`] an error carries, if any.
pub fn find(err: &anyhow::Error) -> Option<&SyncError> {
    err.chain().find_map(|c| c.downcast_ref::<SyncError>())
}

/// One peer's line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerReport {
    /// The remote's name (set here at pairing time, from a sanitized host name).
    pub remote: String,
    pub result: PeerResult,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub branch: String,
    /// The branch's commit after the sync.
    pub commit: Option<String>,
    /// The branch was fast-forwarded from this commit.
    pub fast_forwarded_from: Option<String>,
    pub annex: bool,
    pub peers: Vec<PeerReport>,
}

impl Report {
    pub fn status(&self) -> Exit {
        let outcomes: Vec<Outcome> = self.peers.iter().map(|p| p.result.outcome).collect();
        plan::exit_status(&outcomes)
    }
}

/// A repository and the pairings to sync with.
pub struct Context {
    git: Git,
    git_dir: PathBuf,
    common_dir: PathBuf,
    bare: bool,
    annex: bool,
    peers: Vec<PairedRemote>,
}

impl Context {
    /// The repository git would use here (honouring `GIT_DIR`), and its pairings (only `name`,
    /// when given).
    pub fn open(name: Option<&str>) -> Result<Context, SyncError> {
        let repo = Repository::open_from_env()
            .map_err(|e| SyncError::NotARepository(e.message().to_string()))?;
        let mut peers = repo::paired_remotes(&repo)?;
        if peers.is_empty() {
            return Err(SyncError::NoPairings);
        }
        if let Some(name) = name {
            peers.retain(|p| p.name == name);
            if peers.is_empty() {
                return Err(SyncError::UnknownPairing(
                    crate::sanitize::for_terminal(name).into_owned(),
                ));
            }
        }
        let git_dir = absolute(repo.path());
        let common_dir = absolute(repo.commondir());
        let work_tree = repo.workdir().map(absolute);
        let bare = repo.is_bare();
        let dir = work_tree.clone().unwrap_or_else(|| git_dir.clone());
        let annex = repo
            .config()
            .and_then(|c| c.get_string("annex.uuid"))
            .is_ok_and(|u| !u.is_empty());
        Ok(Context {
            git: Git::new(&dir, &git_dir, work_tree.as_deref()),
            git_dir,
            common_dir,
            bare,
            annex,
            peers,
        })
    }

    /// The repository's git directory (per work tree).
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }

    /// The git directory shared by all work trees.
    pub fn common_dir(&self) -> &Path {
        &self.common_dir
    }

    pub fn peers(&self) -> &[PairedRemote] {
        &self.peers
    }

    /// Syncs the checked-out branch with every peer. `progress` gets `git annex sync`'s output
    /// lines, unsanitized; `refresh` is asked, once per run, to find a peer that could not be
    /// reached (see [`Refresh`]).
    pub fn sync(
        &self,
        progress: &mut dyn FnMut(&str),
        refresh: Refresher,
    ) -> Result<Report, SyncError> {
        let repo = Repository::open(&self.git_dir)?;
        let branch = current_branch(&repo)?;
        if self.annex {
            self.sync_annex(&branch, progress, refresh)
        } else {
            self.sync_plain(&branch, refresh)
        }
    }

    /// Fetches from (or, for git-annex, probes) every peer at once; a peer that could not be
    /// reached is refreshed once and, if found, tried once more.
    fn reach_all(
        &self,
        attempt: impl Fn(&str) -> Result<(), (Failure, String)> + Sync,
        refresh: Refresher,
    ) -> Vec<Result<(), (Failure, String)>> {
        let first: Vec<_> = parallel(&self.peers, |p| attempt(&p.name));
        first
            .into_iter()
            .zip(&self.peers)
            .map(|(result, peer)| match result {
                Err((Failure::Unreachable, why)) => match refresh(peer) {
                    Refresh::Found => attempt(&peer.name),
                    Refresh::NotFound(more) => Err((
                        Failure::Unreachable,
                        match more {
                            Some(more) => format!("{why}; {more}"),
                            None => why,
                        },
                    )),
                },
                other => other,
            })
            .collect()
    }

    fn sync_plain(&self, branch: &str, refresh: Refresher) -> Result<Report, SyncError> {
        let git = &self.git;
        let fetched = self.reach_all(|remote| checked(git.fetch(remote)), refresh);
        // A fresh handle: the fetch wrote objects and refs behind the back of any earlier one.
        let repo = Repository::open(&self.git_dir)?;
        let head = repo.refname_to_id(&format!("refs/heads/{branch}"))?;
        let is_ancestor =
            |a: &Oid, b: &Oid| a == b || repo.graph_descendant_of(*b, *a).unwrap_or(false);
        let mut candidates = Vec::new();
        for (i, (peer, fetch)) in self.peers.iter().zip(&fetched).enumerate() {
            if fetch.is_err() {
                continue;
            }
            for (which, name) in [
                (
                    PeerRef::Branch,
                    format!("refs/remotes/{}/{branch}", peer.name),
                ),
                (
                    PeerRef::Synced,
                    format!("refs/remotes/{}/synced/{branch}", peer.name),
                ),
            ] {
                if let Ok(commit) = repo.refname_to_id(&name) {
                    candidates.push(Candidate {
                        peer: i,
                        which,
                        commit,
                    });
                }
            }
        }
        let clean = self.bare || !git.dirty().map_err(SyncError::RunGit)?;
        let ff = plan::plan_fast_forward(&head, &candidates, clean, &is_ancestor);
        let mut new_head = head;
        let mut ff_failed: Option<String> = None;
        if let Some(target) = ff.target {
            let out = if self.bare {
                git.update_branch(branch, &target.to_string(), &head.to_string())
            } else {
                git.fast_forward(&target.to_string())
            }
            .map_err(SyncError::RunGit)?;
            if out.success {
                new_head = target;
            } else {
                ff_failed = Some(plan::last_lines(&out.stderr, 4, 300));
            }
        }
        let ahead_of_old =
            |c: &Candidate<Oid>| plan::relation(&head, &c.commit, &is_ancestor) == Relation::Ahead;
        // No push where the peer's synced branch has our commit already, or more (then we are
        // behind, held back: a push would only be refused).
        let needs_push: Vec<bool> = (0..self.peers.len())
            .map(|i| {
                fetched[i].is_ok()
                    && !candidates.iter().any(|c| {
                        c.peer == i
                            && c.which == PeerRef::Synced
                            && matches!(
                                plan::relation(&new_head, &c.commit, &is_ancestor),
                                Relation::Same | Relation::Ahead
                            )
                    })
            })
            .collect();
        let pushes: Vec<Option<Result<Pushed, (Failure, String)>>> =
            parallel_indexed(&self.peers, |i, p| {
                needs_push[i].then(|| push(git, &p.name, branch))
            });
        let peers = self
            .peers
            .iter()
            .enumerate()
            .map(|(i, peer)| {
                let mine: Vec<&Candidate<Oid>> =
                    candidates.iter().filter(|c| c.peer == i).collect();
                let offered = mine.iter().any(|c| ahead_of_old(c));
                let gave = new_head != head && mine.iter().any(|c| c.commit == new_head);
                let held_back = offered && (ff.held_back || ff_failed.is_some()) && !gave;
                let facts = PeerFacts {
                    fetch_failed: fetched[i].clone().err(),
                    relation: plan::worst(
                        mine.iter()
                            .map(|c| plan::relation(&new_head, &c.commit, &is_ancestor)),
                    ),
                    gave,
                    held_back,
                    push: pushes[i].clone().or(Some(Ok(Pushed::UpToDate))),
                };
                let mut result = plan::peer_outcome(&facts);
                if fetched[i].is_err() {
                    result.pushed = false;
                }
                if result.outcome == Outcome::LocalChanges {
                    result.detail = ff_failed.clone();
                }
                PeerReport {
                    remote: peer.name.clone(),
                    result,
                }
            })
            .collect();
        Ok(Report {
            branch: branch.to_string(),
            commit: Some(new_head.to_string()),
            fast_forwarded_from: (new_head != head).then(|| head.to_string()),
            annex: false,
            peers,
        })
    }

    fn sync_annex(
        &self,
        branch: &str,
        progress: &mut dyn FnMut(&str),
        refresh: Refresher,
    ) -> Result<Report, SyncError> {
        let git = &self.git;
        let version = git
            .run(&["annex", "version", "--raw"])
            .map_err(SyncError::RunGit)?;
        if !version.success {
            return Err(SyncError::NoAnnex);
        }
        let probed = self.reach_all(|remote| checked(git.probe(remote)), refresh);
        let reachable: Vec<String> = self
            .peers
            .iter()
            .zip(&probed)
            .filter(|(_, r)| r.is_ok())
            .map(|(p, _)| p.name.clone())
            .collect();
        let before = head_commit(&self.git_dir);
        let mut outcome: Option<(git::Output, Vec<String>)> = None;
        if !reachable.is_empty() {
            let content = plan::annex_sync_content(
                git.config("annex.synccontent").as_deref(),
                git.annex_config("annex.synccontent").as_deref(),
            );
            let out = git
                .annex_sync(&reachable, content, progress)
                .map_err(SyncError::RunGit)?;
            let failed = plan::annex_failed_remotes(&out.stdout, &reachable);
            outcome = Some((out, failed));
        }
        let after = head_commit(&self.git_dir);
        let peers = self
            .peers
            .iter()
            .zip(probed)
            .map(|(peer, probe)| {
                let mut result = PeerResult {
                    outcome: Outcome::Synced,
                    pushed: false,
                    fast_forwarded: false,
                    detail: None,
                };
                match (probe, &outcome) {
                    (Err((failure, detail)), _) => {
                        result.outcome = match failure {
                            Failure::Unreachable => Outcome::Unreachable,
                            Failure::HostKeyChanged => Outcome::HostKeyChanged,
                            Failure::Refused => Outcome::Refused,
                            Failure::Other => Outcome::Failed,
                        };
                        result.detail = Some(detail);
                    }
                    (Ok(()), Some((out, failed))) => {
                        if failed.contains(&peer.name) || !out.success {
                            result.outcome = Outcome::Failed;
                            result.detail = Some(format!(
                                "git annex sync failed: {}",
                                plan::last_lines(&out.stderr, 3, 300)
                            ));
                        }
                    }
                    (Ok(()), None) => {}
                }
                PeerReport {
                    remote: peer.name.clone(),
                    result,
                }
            })
            .collect();
        Ok(Report {
            branch: branch.to_string(),
            commit: after.clone(),
            fast_forwarded_from: if before != after { before } else { None },
            annex: true,
            peers,
        })
    }
}

/// What refreshing a peer that could not be reached found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    /// The peer was found (its alias may point elsewhere now): try it once more.
    Found,
    /// Not found; what to add to the unreachable peer's message, if anything.
    NotFound(Option<String>),
}

/// Finds a peer that could not be reached (`git pair refresh` for that pairing, given by the
/// edge, `commands::sync`); asked once per peer and run.
pub type Refresher<'a> = &'a mut dyn FnMut(&PairedRemote) -> Refresh;

/// The checked-out branch's short name; detached, unborn and `synced/` branches are refused.
fn current_branch(repo: &Repository) -> Result<String, SyncError> {
    let head = repo.find_reference("HEAD")?;
    let Some(target) = head.symbolic_target()? else {
        return Err(SyncError::Detached);
    };
    let Some(branch) = target.strip_prefix("refs/heads/") else {
        return Err(SyncError::Detached);
    };
    if repo.refname_to_id(target).is_err() {
        return Err(SyncError::Unborn(
            crate::sanitize::for_terminal(branch).into_owned(),
        ));
    }
    if !plan::syncable_branch(branch) {
        let mirrored = branch.strip_prefix("synced/").unwrap_or(branch);
        return Err(SyncError::SyncedBranch(
            crate::sanitize::for_terminal(branch).into_owned(),
            crate::sanitize::for_terminal(mirrored).into_owned(),
        ));
    }
    Ok(branch.to_string())
}

fn head_commit(git_dir: &Path) -> Option<String> {
    let repo = Repository::open(git_dir).ok()?;
    let id = repo.head().ok()?.target()?;
    Some(id.to_string())
}

/// A git command's result as sync needs it: success, or why it failed.
fn checked(out: std::io::Result<git::Output>) -> Result<(), (Failure, String)> {
    match out {
        Ok(o) if o.success => Ok(()),
        Ok(o) => Err((
            plan::classify(&o.stderr),
            plan::last_lines(&o.stderr, 3, 300),
        )),
        Err(e) => Err((Failure::Other, format!("cannot run git: {e}"))),
    }
}

fn push(git: &Git, remote: &str, branch: &str) -> Result<Pushed, (Failure, String)> {
    let dst = format!("refs/heads/synced/{branch}");
    match git.push_synced(remote, branch) {
        Ok(o) => match plan::parse_push(&o.stdout, &dst) {
            Some(p) => Ok(p),
            None => Err((
                plan::classify(&o.stderr),
                plan::last_lines(&o.stderr, 3, 300),
            )),
        },
        Err(e) => Err((Failure::Other, format!("cannot run git: {e}"))),
    }
}

fn parallel<T: Send>(peers: &[PairedRemote], f: impl Fn(&PairedRemote) -> T + Sync) -> Vec<T> {
    parallel_indexed(peers, |_, p| f(p))
}

/// Runs `f` for every peer at once (each talks to another machine) and keeps the order.
fn parallel_indexed<T: Send>(
    peers: &[PairedRemote],
    f: impl Fn(usize, &PairedRemote) -> T + Sync,
) -> Vec<T> {
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = peers
            .iter()
            .enumerate()
            .map(|(i, p)| scope.spawn(move || f(i, p)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}
