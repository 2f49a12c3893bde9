//! The decisions of `git pair sync`, without I/O: which commit the current branch may
//! fast-forward to, what each peer's outcome is, what git's output means, and the exit status.
//!
//! Commits are any `Eq + Clone` value and ancestry is a function given by the caller, so that the
//! tests describe histories as small graphs and the real run asks libgit2.

use serde::Serialize;

use crate::exit::Exit;

/// Where a peer's commit stands against ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The same commit.
    Same,
    /// Theirs is an ancestor of ours: they have nothing we lack.
    Behind,
    /// Ours is an ancestor of theirs: a fast-forward takes their commits.
    Ahead,
    /// Neither contains the other: only a merge or a rebase, by a person, can join them.
    Diverged,
}

/// How `theirs` relates to `ours`; `is_ancestor(a, b)` says whether `a` is an ancestor of `b`.
pub fn relation<C: Eq>(ours: &C, theirs: &C, is_ancestor: &impl Fn(&C, &C) -> bool) -> Relation {
    if ours == theirs {
        Relation::Same
    } else if is_ancestor(theirs, ours) {
        Relation::Behind
    } else if is_ancestor(ours, theirs) {
        Relation::Ahead
    } else {
        Relation::Diverged
    }
}

/// Which ref of a peer a commit was read from (after the fetch, as a remote-tracking ref).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerRef {
    /// The peer's own branch of the same name: `refs/remotes/<peer>/<branch>`.
    Branch,
    /// What the peer's peers pushed to it: `refs/remotes/<peer>/synced/<branch>`.
    Synced,
}

/// A commit a peer has for the current branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate<C> {
    /// The peer's index in the list of peers being synced.
    pub peer: usize,
    pub which: PeerRef,
    pub commit: C,
}

/// What the fast-forward step decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FastForward<C> {
    /// Move the branch to this commit (a descendant of the current one).
    pub target: Option<C>,
    /// A fast-forward was possible but waits for the user to commit or stash local changes.
    pub held_back: bool,
}

/// Picks the commit to fast-forward to: among the candidates ahead of `head`, the first (in
/// peer order) that contains every other one ahead; if they disagree (two peers ahead on
/// different lines), simply the first one ahead, so that sync still makes the progress it safely
/// can and the other line is then reported as diverged. A dirty work tree (`clean == false`)
/// holds the fast-forward back.
pub fn plan_fast_forward<C: Eq + Clone>(
    head: &C,
    candidates: &[Candidate<C>],
    clean: bool,
    is_ancestor: &impl Fn(&C, &C) -> bool,
) -> FastForward<C> {
    let ahead: Vec<&C> = candidates
        .iter()
        .map(|c| &c.commit)
        .filter(|c| relation(head, c, is_ancestor) == Relation::Ahead)
        .collect();
    let Some(first) = ahead.first() else {
        return FastForward {
            target: None,
            held_back: false,
        };
    };
    let newest = ahead
        .iter()
        .find(|c| ahead.iter().all(|o| o == *c || is_ancestor(o, c)))
        .unwrap_or(first);
    if clean {
        FastForward {
            target: Some((*newest).clone()),
            held_back: false,
        }
    } else {
        FastForward {
            target: None,
            held_back: true,
        }
    }
}

/// Why talking to a peer failed, from git's and ssh's messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// No connection: the machine is off, asleep, elsewhere, or its sshd is not running.
    Unreachable,
    /// The peer's sshd answered with a host key that is not the pinned one.
    HostKeyChanged,
    /// The peer's sshd or its `git pair serve` refused this pairing's key.
    Refused,
    /// Anything else; the message says what.
    Other,
}

/// Classifies a failed git command by what ssh and git wrote on stderr.
pub fn classify(stderr: &str) -> Failure {
    let has = |needle: &str| stderr.contains(needle);
    if has("Host key verification failed")
        || has("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || has("No ED25519 host key is known")
        || has("host key for") && has("has changed")
    {
        Failure::HostKeyChanged
    } else if has("ssh: connect to host")
        || has("Could not resolve hostname")
        || has("Connection timed out")
        || has("Connection refused")
        || has("No route to host")
        || has("Network is unreachable")
        || has("Connection closed by")
        || has("Connection reset by")
        || has("kex_exchange_identification")
    {
        Failure::Unreachable
    } else if has("Permission denied (publickey")
        || has("git pair serve:")
        || has("Too many authentication failures")
    {
        Failure::Refused
    } else {
        Failure::Other
    }
}

/// The last few non-empty lines of git's stderr, for a message: one line, at most `max` chars.
pub fn last_lines(stderr: &str, lines: usize, max: usize) -> String {
    let kept: Vec<&str> = stderr
        .split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty() && *l != "fatal: Could not read from remote repository.")
        .filter(|l| {
            !l.starts_with("Please make sure you have the correct access rights")
                && *l != "and the repository exists."
        })
        .collect();
    let start = kept.len().saturating_sub(lines);
    let joined = kept[start..].join(" / ");
    match joined.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &joined[..cut]),
        None => joined,
    }
}

/// What `git push --porcelain` said about the one ref pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The ref was created or fast-forwarded.
    Updated,
    /// It already pointed at our commit.
    UpToDate,
    /// The peer refused it; the reason git gave (`non-fast-forward`, `fetch first`,
    /// `branch is currently checked out`, a hook's refusal, ...).
    Rejected(String),
}

/// Reads `git push --porcelain` output for the ref `dst` (`refs/heads/synced/<branch>`). `None`
/// when the output has no line for it (git failed before it got that far).
pub fn parse_push(stdout: &str, dst: &str) -> Option<Pushed> {
    stdout.lines().find_map(|line| {
        let mut fields = line.splitn(3, '\t');
        let flag = fields.next()?;
        let refs = fields.next()?;
        let summary = fields.next().unwrap_or_default();
        let (_, to) = refs.split_once(':')?;
        if to != dst {
            return None;
        }
        Some(match flag {
            "=" => Pushed::UpToDate,
            " " | "*" | "+" => Pushed::Updated,
            _ => Pushed::Rejected(
                summary
                    .trim()
                    .trim_start_matches("[rejected]")
                    .trim_start_matches("[remote rejected]")
                    .trim()
                    .trim_start_matches('(')
                    .trim_end_matches(')')
                    .to_string(),
            ),
        })
    })
}

/// One peer's outcome, as the report and the JSON events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing to send or take.
    UpToDate,
    /// Commits went one way or both: pushed to the peer's synced branch, fast-forwarded from
    /// the peer, or (git-annex) `git annex sync` succeeded with it.
    Synced,
    /// Our branch and the peer's have diverged; nothing was merged.
    Diverged,
    /// The peer has new commits, but uncommitted changes here hold the fast-forward back.
    LocalChanges,
    /// The peer could not be reached.
    Unreachable,
    /// The peer's host key is not the pinned one; nothing was sent.
    HostKeyChanged,
    /// The peer refused this pairing's key, or refused the push.
    Refused,
    /// Anything else went wrong.
    Failed,
}

impl Outcome {
    /// Every outcome with its wire name and meaning, for the man page.
    pub const ALL: [(Outcome, &'static str, &'static str); 8] = [
        (Outcome::UpToDate, "up_to_date", "nothing to send or take"),
        (
            Outcome::Synced,
            "synced",
            "commits were pushed to the peer's synced branch or fast-forwarded from the peer (see pushed and fast_forwarded), or git annex sync succeeded with it",
        ),
        (
            Outcome::Diverged,
            "diverged",
            "this branch and the peer's have diverged: nothing was merged; merge or rebase, then sync again",
        ),
        (
            Outcome::LocalChanges,
            "local_changes",
            "the peer has new commits, but uncommitted changes here hold the fast-forward back",
        ),
        (
            Outcome::Unreachable,
            "unreachable",
            "the peer's sshd did not answer (machine off or elsewhere); it is tried again next time",
        ),
        (
            Outcome::HostKeyChanged,
            "host_key_changed",
            "the peer's sshd offered a host key that is not the pinned one; nothing was sent",
        ),
        (
            Outcome::Refused,
            "refused",
            "the peer refused this pairing's key (was the pairing removed there?) or refused the push",
        ),
        (Outcome::Failed, "failed", "anything else; the message says what"),
    ];

    fn of_failure(f: Failure) -> Outcome {
        match f {
            Failure::Unreachable => Outcome::Unreachable,
            Failure::HostKeyChanged => Outcome::HostKeyChanged,
            Failure::Refused => Outcome::Refused,
            Failure::Other => Outcome::Failed,
        }
    }
}

/// What happened with one peer of a plain git repository, as the run collected it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerFacts {
    /// Why the fetch failed, with git's last words; `None` when it worked.
    pub fetch_failed: Option<(Failure, String)>,
    /// The worst relation of the peer's branch and synced branch to our branch after the
    /// fast-forward step (`None`: the peer has neither).
    pub relation: Option<Relation>,
    /// Our branch was fast-forwarded to this peer's commit.
    pub gave: bool,
    /// The fast-forward this peer offered waits for local changes.
    pub held_back: bool,
    /// The push's result; `None` when no push was tried.
    pub push: Option<Result<Pushed, (Failure, String)>>,
}

/// The worst of several relations: diverged, then ahead, then the rest.
pub fn worst(relations: impl IntoIterator<Item = Relation>) -> Option<Relation> {
    let rank = |r: &Relation| match r {
        Relation::Diverged => 3,
        Relation::Ahead => 2,
        Relation::Behind => 1,
        Relation::Same => 0,
    };
    relations.into_iter().max_by_key(rank)
}

/// One peer's outcome and the facts a report needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerResult {
    pub outcome: Outcome,
    pub pushed: bool,
    pub fast_forwarded: bool,
    /// git's own words, when it failed (not yet sanitized).
    pub detail: Option<String>,
}

/// Decides one peer's outcome.
pub fn peer_outcome(facts: &PeerFacts) -> PeerResult {
    let mut result = PeerResult {
        outcome: Outcome::UpToDate,
        pushed: matches!(facts.push, Some(Ok(Pushed::Updated))),
        fast_forwarded: facts.gave,
        detail: None,
    };
    if let Some((failure, detail)) = &facts.fetch_failed {
        result.outcome = Outcome::of_failure(*failure);
        result.detail = Some(detail.clone());
        return result;
    }
    result.outcome = match (&facts.push, facts.relation) {
        (Some(Err((failure, detail))), _) => {
            result.detail = Some(detail.clone());
            Outcome::of_failure(*failure)
        }
        (_, Some(Relation::Diverged)) => Outcome::Diverged,
        // A push refused as not a fast-forward means the peer's synced branch diverged.
        (Some(Ok(Pushed::Rejected(why))), _)
            if why.contains("non-fast-forward") || why.contains("fetch first") =>
        {
            Outcome::Diverged
        }
        (Some(Ok(Pushed::Rejected(why))), _) => {
            result.detail = Some(why.clone());
            Outcome::Refused
        }
        _ if facts.held_back => Outcome::LocalChanges,
        _ if result.pushed || result.fast_forwarded => Outcome::Synced,
        _ => Outcome::UpToDate,
    };
    result
}

/// The exit status of a sync: 1 if anything failed outright, else 6 if something needs the user
/// (diverged, held back by local changes), else 3 if a peer was unreachable, else 0.
pub fn exit_status(outcomes: &[Outcome]) -> Exit {
    let any = |f: fn(&Outcome) -> bool| outcomes.iter().any(f);
    if any(|o| {
        matches!(
            o,
            Outcome::HostKeyChanged | Outcome::Refused | Outcome::Failed
        )
    }) {
        Exit::Error
    } else if any(|o| matches!(o, Outcome::Diverged | Outcome::LocalChanges)) {
        Exit::Diverged
    } else if any(|o| *o == Outcome::Unreachable) {
        Exit::NoPeer
    } else {
        Exit::Success
    }
}

/// A git boolean (`git config --type=bool` spelling and the usual aliases); `None` if it is
/// none.
pub fn git_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Some(true),
        "false" | "no" | "off" | "0" | "" => Some(false),
        _ => None,
    }
}

/// Whether `git annex sync` gets `--content`, as git-annex itself decides: the repository's git
/// config `annex.synccontent` wins; without it, the value set for every clone with `git annex
/// config --set annex.synccontent`; without either, git-annex's default (no content).
pub fn annex_sync_content(git_config: Option<&str>, annex_config: Option<&str>) -> bool {
    git_config
        .and_then(git_bool)
        .or_else(|| annex_config.and_then(git_bool))
        .unwrap_or(false)
}

/// What `git annex sync`'s output says about each remote: for each `pull NAME` / `push NAME`
/// step that ended in `failed`, the name. git-annex prints a step's name, its messages, and then
/// `ok` or `failed` on a line of its own.
pub fn annex_failed_remotes(output: &str, remotes: &[String]) -> Vec<String> {
    let mut failed: Vec<String> = Vec::new();
    let mut current: Option<&str> = None;
    for line in output.split(['\n', '\r']).map(str::trim_end) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [step, name] if matches!(*step, "pull" | "push") && line.starts_with(step) => {
                current = remotes
                    .iter()
                    .find(|r| r.as_str() == *name)
                    .map(String::as_str);
            }
            ["ok"] => current = None,
            ["failed"] => {
                if let Some(name) = current.take() {
                    if !failed.iter().any(|f| f == name) {
                        failed.push(name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    failed
}

/// Whether the current branch may be synced at all: not a `synced/` branch itself, whose
/// counterpart on the peers would be `synced/synced/...`.
pub fn syncable_branch(branch: &str) -> bool {
    !branch.starts_with("synced/") && branch != "synced"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history as child -> parents, over small integers.
    struct Graph(Vec<(u32, Vec<u32>)>);

    impl Graph {
        fn is_ancestor(&self, a: &u32, b: &u32) -> bool {
            if a == b {
                return true;
            }
            self.0
                .iter()
                .find(|(c, _)| c == b)
                .is_some_and(|(_, parents)| parents.iter().any(|p| self.is_ancestor(a, p)))
        }
    }

    /// 1 - 2 - 3 - 4 (main line), 2 - 5 - 6 (a side line), 4 + 6 -> 7 (a merge).
    fn graph() -> Graph {
        Graph(vec![
            (1, vec![]),
            (2, vec![1]),
            (3, vec![2]),
            (4, vec![3]),
            (5, vec![2]),
            (6, vec![5]),
            (7, vec![4, 6]),
        ])
    }

    fn cand(peer: usize, which: PeerRef, commit: u32) -> Candidate<u32> {
        Candidate {
            peer,
            which,
            commit,
        }
    }

    #[test]
    fn relations_follow_the_history() {
        let g = graph();
        let anc = |a: &u32, b: &u32| g.is_ancestor(a, b);
        assert_eq!(relation(&3, &3, &anc), Relation::Same);
        assert_eq!(relation(&3, &2, &anc), Relation::Behind);
        assert_eq!(relation(&3, &4, &anc), Relation::Ahead);
        assert_eq!(relation(&3, &6, &anc), Relation::Diverged);
        assert_eq!(relation(&6, &7, &anc), Relation::Ahead);
    }

    #[test]
    fn fast_forwards_to_the_newest_commit_ahead() {
        let g = graph();
        let anc = |a: &u32, b: &u32| g.is_ancestor(a, b);
        let c = [
            cand(0, PeerRef::Synced, 3),
            cand(0, PeerRef::Branch, 4),
            cand(1, PeerRef::Branch, 1),
        ];
        assert_eq!(
            plan_fast_forward(&2, &c, true, &anc),
            FastForward {
                target: Some(4),
                held_back: false
            }
        );
    }

    #[test]
    fn nothing_ahead_means_no_fast_forward() {
        let g = graph();
        let anc = |a: &u32, b: &u32| g.is_ancestor(a, b);
        let c = [cand(0, PeerRef::Branch, 3), cand(1, PeerRef::Synced, 6)];
        let ff = plan_fast_forward(&4, &c, true, &anc);
        assert_eq!(ff.target, None);
        assert!(!ff.held_back);
        assert_eq!(plan_fast_forward(&4, &[], false, &anc).target, None);
    }

    #[test]
    fn local_changes_hold_a_fast_forward_back() {
        let g = graph();
        let anc = |a: &u32, b: &u32| g.is_ancestor(a, b);
        let ff = plan_fast_forward(&3, &[cand(0, PeerRef::Branch, 4)], false, &anc);
        assert_eq!(
            ff,
            FastForward {
                target: None,
                held_back: true
            }
        );
        // A dirty tree with nothing to take holds nothing back.
        assert!(!plan_fast_forward(&4, &[cand(0, PeerRef::Branch, 4)], false, &anc).held_back);
    }

    #[test]
    fn peers_ahead_on_different_lines_give_the_first_line() {
        let g = graph();
        let anc = |a: &u32, b: &u32| g.is_ancestor(a, b);
        let c = [cand(0, PeerRef::Branch, 4), cand(1, PeerRef::Branch, 6)];
        assert_eq!(plan_fast_forward(&2, &c, true, &anc).target, Some(4));
        // ... unless one line contains the other.
        let c = [cand(0, PeerRef::Branch, 4), cand(1, PeerRef::Branch, 7)];
        assert_eq!(plan_fast_forward(&2, &c, true, &anc).target, Some(7));
    }

    #[test]
    fn failures_are_classified_by_what_ssh_says() {
        for (stderr, want) in [
            ("ssh: connect to host 10.0.0.2 port 22: No route to host\r\nfatal: Could not read from remote repository.", Failure::Unreachable),
            ("ssh: connect to host x port 22: Connection timed out", Failure::Unreachable),
            ("Connection timed out during banner exchange", Failure::Unreachable),
            ("ssh: Could not resolve hostname nope: Name or service not known", Failure::Unreachable),
            ("kex_exchange_identification: Connection closed by remote host", Failure::Unreachable),
            ("Host key verification failed.\r\nfatal: Could not read", Failure::HostKeyChanged),
            ("@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@", Failure::HostKeyChanged),
            ("user@10.0.0.2: Permission denied (publickey).", Failure::Refused),
            ("git pair serve: refused: not the paired repository", Failure::Refused),
            ("fatal: '/x' does not appear to be a git repository", Failure::Other),
            ("", Failure::Other),
        ] {
            assert_eq!(classify(stderr), want, "{stderr}");
        }
    }

    #[test]
    fn last_lines_drop_gits_boilerplate_and_stay_short() {
        let stderr = "ssh: connect to host a port 22: No route to host\r\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(
            last_lines(stderr, 2, 200),
            "ssh: connect to host a port 22: No route to host"
        );
        assert_eq!(last_lines("a\nb\nc\n", 2, 200), "b / c");
        assert_eq!(last_lines(&"x".repeat(50), 1, 10), "xxxxxxxxxx...");
        assert_eq!(last_lines("", 3, 10), "");
    }

    #[test]
    fn push_porcelain_is_read_for_our_ref_only() {
        let dst = "refs/heads/synced/main";
        let out = "To beta:/r\n*\trefs/heads/main:refs/heads/synced/main\t[new branch]\nDone\n";
        assert_eq!(parse_push(out, dst), Some(Pushed::Updated));
        let out = "To beta:/r\n \trefs/heads/main:refs/heads/synced/main\t1111111..2222222\nDone\n";
        assert_eq!(parse_push(out, dst), Some(Pushed::Updated));
        let out = "To beta:/r\n=\trefs/heads/main:refs/heads/synced/main\t[up to date]\nDone\n";
        assert_eq!(parse_push(out, dst), Some(Pushed::UpToDate));
        let out = "To beta:/r\n!\trefs/heads/main:refs/heads/synced/main\t[rejected] (non-fast-forward)\nDone\n";
        assert_eq!(
            parse_push(out, dst),
            Some(Pushed::Rejected("non-fast-forward".into()))
        );
        let out = "To beta:/r\n!\trefs/heads/main:refs/heads/synced/main\t[remote rejected] (branch is currently checked out)\n";
        assert_eq!(
            parse_push(out, dst),
            Some(Pushed::Rejected("branch is currently checked out".into()))
        );
        let other = "To x\n*\trefs/heads/main:refs/heads/other\t[new branch]\n";
        assert_eq!(parse_push(other, dst), None);
        assert_eq!(parse_push("", dst), None);
    }

    fn facts() -> PeerFacts {
        PeerFacts {
            fetch_failed: None,
            relation: Some(Relation::Same),
            gave: false,
            held_back: false,
            push: Some(Ok(Pushed::UpToDate)),
        }
    }

    #[test]
    fn outcomes_per_peer() {
        assert_eq!(peer_outcome(&facts()).outcome, Outcome::UpToDate);

        let pushed = PeerFacts {
            push: Some(Ok(Pushed::Updated)),
            relation: Some(Relation::Behind),
            ..facts()
        };
        let r = peer_outcome(&pushed);
        assert_eq!(
            (r.outcome, r.pushed, r.fast_forwarded),
            (Outcome::Synced, true, false)
        );

        let gave = PeerFacts {
            gave: true,
            ..facts()
        };
        let r = peer_outcome(&gave);
        assert_eq!(
            (r.outcome, r.pushed, r.fast_forwarded),
            (Outcome::Synced, false, true)
        );

        let diverged = PeerFacts {
            relation: Some(Relation::Diverged),
            push: Some(Ok(Pushed::Updated)),
            ..facts()
        };
        let r = peer_outcome(&diverged);
        assert_eq!((r.outcome, r.pushed), (Outcome::Diverged, true));

        let rejected = PeerFacts {
            push: Some(Ok(Pushed::Rejected("non-fast-forward".into()))),
            ..facts()
        };
        assert_eq!(peer_outcome(&rejected).outcome, Outcome::Diverged);
        let refused = PeerFacts {
            push: Some(Ok(Pushed::Rejected("pre-receive hook declined".into()))),
            ..facts()
        };
        let r = peer_outcome(&refused);
        assert_eq!(r.outcome, Outcome::Refused);
        assert_eq!(r.detail.as_deref(), Some("pre-receive hook declined"));

        let held = PeerFacts {
            relation: Some(Relation::Ahead),
            held_back: true,
            ..facts()
        };
        assert_eq!(peer_outcome(&held).outcome, Outcome::LocalChanges);

        let off = PeerFacts {
            fetch_failed: Some((Failure::Unreachable, "No route to host".into())),
            push: None,
            relation: None,
            ..facts()
        };
        let r = peer_outcome(&off);
        assert_eq!(r.outcome, Outcome::Unreachable);
        assert_eq!(r.detail.as_deref(), Some("No route to host"));

        let key = PeerFacts {
            push: Some(Err((
                Failure::HostKeyChanged,
                "Host key verification failed.".into(),
            ))),
            ..facts()
        };
        assert_eq!(peer_outcome(&key).outcome, Outcome::HostKeyChanged);
    }

    #[test]
    fn the_worst_relation_wins() {
        use Relation::*;
        assert_eq!(worst([Same, Diverged, Ahead]), Some(Diverged));
        assert_eq!(worst([Behind, Ahead]), Some(Ahead));
        assert_eq!(worst([Same, Behind]), Some(Behind));
        assert_eq!(worst([]), None);
    }

    #[test]
    fn exit_statuses_rank_failures_then_the_user_then_absence() {
        use Outcome::*;
        assert_eq!(exit_status(&[]), Exit::Success);
        assert_eq!(exit_status(&[UpToDate, Synced]), Exit::Success);
        assert_eq!(exit_status(&[Synced, Unreachable]), Exit::NoPeer);
        assert_eq!(exit_status(&[Unreachable, Diverged]), Exit::Diverged);
        assert_eq!(exit_status(&[LocalChanges]), Exit::Diverged);
        assert_eq!(exit_status(&[Diverged, Refused]), Exit::Error);
        assert_eq!(exit_status(&[HostKeyChanged]), Exit::Error);
    }

    #[test]
    fn every_outcome_is_documented_with_its_wire_name() {
        for (outcome, name, _) in Outcome::ALL {
            assert_eq!(serde_json::to_value(outcome).unwrap(), *name);
        }
    }

    #[test]
    fn sync_content_follows_git_annex() {
        assert!(!annex_sync_content(None, None));
        assert!(annex_sync_content(Some("true"), None));
        assert!(annex_sync_content(None, Some("true")));
        assert!(!annex_sync_content(Some("false"), Some("true")));
        assert!(annex_sync_content(Some("yes"), Some("false")));
        assert!(annex_sync_content(Some("bogus"), Some("on")));
        assert!(!annex_sync_content(Some("0"), None));
    }

    #[test]
    fn annex_output_names_the_failed_remotes() {
        let out = "commit \nok\npull beta \nok\npull gamma \nssh: connect to host x port 22: No route to host\nok\n\
                   push beta \nTo beta:/r\n * [new branch] main -> synced/main\nok\n\
                   push gamma \nssh: connect to host x port 22: No route to host\n  Pushing to gamma failed.\nfailed\nsync: 1 failed\n";
        let remotes = vec!["beta".to_string(), "gamma".to_string()];
        assert_eq!(annex_failed_remotes(out, &remotes), ["gamma"]);
        assert!(annex_failed_remotes("commit \nfailed\n", &remotes).is_empty());
        // A file named like a step is not one.
        assert!(annex_failed_remotes("copy pull beta\nfailed\n", &remotes).is_empty());
    }

    #[test]
    fn synced_branches_are_not_synced_again() {
        assert!(syncable_branch("main"));
        assert!(syncable_branch("feature/synced"));
        assert!(!syncable_branch("synced/main"));
        assert!(!syncable_branch("synced"));
    }
}
