//! Exit statuses. Each failure a user or a program must tell apart has its
//! own, documented in the man page's EXIT STATUS section.

/// The process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success = 0,
    Error = 1,
    Usage = 2,
    NoPeer = 3,
    Verification = 4,
    Setup = 5,
    Diverged = 6,
    Interrupted = 130,
}

impl Exit {
    /// Every status with its meaning, for the man page.
    pub const ALL: [(Exit, &'static str); 8] = [
        (Exit::Success, "Paired: everything is set up on this machine (git pair); listed or removed (git pair list, git pair remove, also when there was nothing left to remove); every pairing asked for reaches its peer (git pair refresh); stopped by a signal (git pair watch); every peer synced or up to date (git pair sync); hooks installed or uninstalled (git pair hooks)."),
        (Exit::Error, "Any other error, including a refused `git pair serve` request, and a peer that git pair sync could reach but not sync with (host key changed, key refused, push refused)."),
        (Exit::Usage, "Usage error: bad arguments or code, a word that is neither a command nor a code, not in a git repository, a repository paired with itself, the requested remote name is taken, or git pair remove was given a remote git pair did not make. git pair refresh: no pairing of that name, or a pairing without a pair secret (made before git pair stored one) that was not found by name or address: pair again. git pair sync: a repository without pairings, an unknown NAME, a detached HEAD, a branch without commits, or a synced/ branch."),
        (Exit::NoPeer, "No peer answered before the timeout (git pair refresh: a peer was found neither by name, nor at its address, nor by a locate query; git pair sync: a peer could not be reached, and the others were synced)."),
        (Exit::Verification, "Verification failed: the codes differ (every machine that answered had another code, and no other answered within a few seconds), someone may be guessing the code, or the check codes were not confirmed (--verify, here or on the other machine). Nothing was written. git pair refresh: the peer was found, but its sshd presents a host key other than the pinned one; the alias was not changed."),
        (Exit::Setup, "The setup failed (~/.ssh not writable, no sshd host keys, this machine's sshd not answering on --ssh-port, the peer's sshd unreachable, a login key that already opens another repository, ...), here or, as the peer said in a sealed end message, on the other machine (this side then undoes its own setup); or another git pair of this user held the lock too long. Nothing was left behind here."),
        (Exit::Diverged, "git pair sync: a peer's history has diverged from this branch, or uncommitted changes hold a fast-forward back. Nothing was merged; the per-peer lines say what to do."),
        (Exit::Interrupted, "Interrupted by Ctrl-C or a termination signal. Nothing was written (git pair refresh: no alias was changed)."),
    ];

    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The status for an error: the first part of its chain that knows one.
pub fn of(err: &anyhow::Error) -> Exit {
    if let Some(e) = crate::commands::refresh::find(err) {
        return e.exit();
    }
    if let Some(e) = crate::commands::pair::find(err) {
        return e.exit();
    }
    if let Some(e) = crate::sync::find(err) {
        return e.exit();
    }
    if err
        .chain()
        .any(|c| c.downcast_ref::<clap::Error>().is_some())
    {
        return Exit::Usage;
    }
    Exit::Error
}
