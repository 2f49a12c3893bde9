//! Writing a pairing ahead: once the peer's sealed payload has opened (it holds the code) and
//! its sshd answered, this side has sent its key confirmation and waits for the peer's. That
//! wait is spent writing the pairing's files beside the old ones and syncing them, with
//! nothing put in place ([`setup::stage`]); the verification then only puts them in place.
//! The fsyncs of a first round (a few milliseconds, the largest part of a pairing on a clean
//! LAN) thus leave the critical path.
//!
//! It is an optimisation and nothing else: it is never done with `--verify` (nothing is written
//! before the person answers), it is tried once per run, only when the ssh lock is free at once,
//! and given up (undone, the lock released) if the verification does not name the same peer or
//! does not come within [`AHEAD_HOLD`], so that the lock is never held long while a peer is
//! waited for. Any failure in it is dropped: the normal path after the verification does the
//! same work again and reports what goes wrong. Until the verification nothing changes on disk
//! but the journal and temporary files, which a crash leaves to the next run to remove (see
//! [`ssh_files::Applied::prepare`]).

use std::time::{Duration, Instant};

use rand_core::OsRng;

use crate::cli::PairArgs;
use crate::protocol::codec::SessionId;
use crate::protocol::schedule::Role;
use crate::protocol::Machine;
use crate::ssh_files;

use super::peer::Session;
use super::setup::{self, Staged, With};
use super::{Prepared, Reporter};

/// How long a pairing written ahead may wait for its verification, holding the ssh lock: on a
/// LAN the confirmation takes a round trip or two; beyond this, it is undone (another run of
/// this user may be waiting for the lock).
pub(super) const AHEAD_HOLD: Duration = Duration::from_millis(200);

/// The pairing written ahead, if any, for one accepted peer.
#[derive(Default)]
pub(super) struct WriteAhead {
    written: Option<(SessionId, Staged, Instant)>,
    tried: bool,
}

impl WriteAhead {
    /// Writes ahead for the first accepted peer whose payload opened, once; gives up what was
    /// written once [`AHEAD_HOLD`] has passed without the verification.
    pub(super) fn tick(
        &mut self,
        args: &PairArgs,
        p: &Prepared,
        m: &Machine<OsRng>,
        session: &Session,
        out: &mut Reporter,
    ) {
        if let Some((_, _, since)) = &self.written {
            if since.elapsed() > AHEAD_HOLD {
                self.written = None;
            }
            return;
        }
        // Once the machine has verified (its event may still wait in the queue), the normal
        // path does the work at once.
        if self.tried
            || p.verify
            || m.is_ending()
            || session.verified.is_some()
            || session.error.is_some()
        {
            return;
        }
        let Some(a) = session.accepted.first() else {
            return;
        };
        let Some(secret) = m.pair_secret(&a.peer) else {
            return;
        };
        self.tried = true;
        let label = format!("pairing {}", p.info.path.display());
        let Ok(Some(lock)) = ssh_files::try_lock(&p.ssh, &label) else {
            return;
        };
        let with = With {
            info: &a.info,
            address: a.address,
            decision: &a.decision,
            role: Role::of(&m.session_id(), &a.peer),
            secret: &secret,
        };
        if let Ok(staged) = setup::stage(args, p, &with, lock, out, &mut || false) {
            self.written = Some((a.peer, staged, Instant::now()));
        }
    }

    /// What was written ahead for `peer`, the verified one; anything written for another peer
    /// is undone.
    pub(super) fn take(&mut self, peer: SessionId) -> Option<Staged> {
        match self.written.take() {
            Some((written_for, staged, _)) if written_for == peer => Some(staged),
            _ => None,
        }
    }

    /// Undoes what was written ahead (the run is ending without a verification).
    pub(super) fn give_up(&mut self) {
        self.written = None;
    }
}
