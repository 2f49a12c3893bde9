//! Writing a verified pairing on this machine: ~/.ssh, then the remote, as one unit under the
//! ssh lock, kept once the peer is set up too and rolled back otherwise, or on any failure or
//! interruption.

use std::fs;
use std::net::SocketAddr;
use std::time::SystemTime;

use anyhow::Context;
use rand_core::OsRng;

use crate::cli::PairArgs;
use crate::events::{Event as JsonEvent, NotReplaced, PeerView};
use crate::interrupt::Interrupts;
use crate::keys::{self, LoginKey};
use crate::protocol::payload::PeerInfo;
use crate::repo;
use crate::sanitize;
use crate::ssh_files::{self, AuthorizedEntry, Identity, PairSetup};
use crate::transport::iface::Interface;

use super::error::{usage, PairError};
use super::names;
use super::peer::{annex_warnings, peer_id, view_of, VerifiedPeer};
use super::replace::Decision;
use super::{Prepared, Reporter};

/// What setup made.
pub(super) struct Done {
    pub(super) remote: String,
    pub(super) alias: String,
    pub(super) replacement: Replacement,
}

/// What the new pairing did to earlier ones that claim the same peer, for people and programs.
#[derive(Debug, Clone, Default)]
pub(super) struct Replacement {
    /// The remote of the earlier pairing this one replaced in place (the peer proved it).
    pub(super) replaced: Option<String>,
    /// Earlier pairings that claim the same peer and were left as they are, and why.
    pub(super) not_replaced: Option<NotReplaced>,
    proof: Option<String>,
}

impl Replacement {
    fn of(decision: &Decision, updated: Option<&str>) -> Self {
        let kept: Vec<String> = decision
            .kept()
            .iter()
            .map(|e| e.remote.clone().unwrap_or_else(|| e.alias.clone()))
            .collect();
        let (why, proof) = match decision {
            Decision::First => (None, None),
            Decision::Replace { proof, .. } => (
                Some("the peer did not prove it is theirs".to_owned()),
                Some(proof.clone()),
            ),
            Decision::New { why, .. } => (Some(why.clone()), None),
        };
        Replacement {
            replaced: updated
                .map(str::to_owned)
                .or_else(|| decision.replaced().first().and_then(|e| e.remote.clone())),
            not_replaced: (!kept.is_empty()).then(|| NotReplaced {
                remotes: kept,
                reason: why.unwrap_or_default(),
            }),
            proof,
        }
    }

    /// What to tell the user, plainly.
    fn lines(&self, remote: &str, peer: &PeerView) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(replaced) = &self.replaced {
            out.push(format!(
                "        (this replaces the earlier pairing {replaced} of these two repositories: {})",
                self.proof.as_deref().unwrap_or("the peer proved it is the same")
            ));
        }
        if let Some(kept) = &self.not_replaced {
            let names = kept.remotes.join(", ");
            out.push(format!(
                "Note: {}@{}:{} claims to be the peer of {names} too, but did not prove it ({}): \
                 so this is a new pairing, {remote}, and {names} stays as it was. If it is the same \
                 machine (reinstalled, with new host keys), remove the old pairing with \
                 `git pair remove {}`.",
                peer.user,
                peer.host,
                peer.path,
                kept.reason,
                kept.remotes[0]
            ));
        }
        out
    }
}

/// A pairing written on this machine while the peer has not yet said that it is set up too:
/// kept then ([`Pending::keep`]), undone if the peer failed or declined ([`Pending::undo`]).
/// The ssh files and the repository's config are written in one journaled transaction (a crash
/// while it writes is undone by the next run) and committed at once, so that the lock is not
/// held while the peer decides (two pairings between the same two users, or of two
/// repositories of one user, would wait for each other's lock); what they held before is kept
/// for the undo.
pub(super) struct Pending {
    committed: ssh_files::Committed,
    written: Vec<std::path::PathBuf>,
    /// The repository opened again under the lock, so that it showed what other runs wrote.
    repo: git2::Repository,
    plan: repo::RemotePlan,
    extra_remotes: Vec<String>,
    alias: String,
    marker: String,
    fingerprint: ssh_key::Fingerprint,
}

/// Writes the pairing on this machine under `lock` (taken with [`ssh_files::try_lock`]):
/// ~/.ssh, then the remote, as one unit that is kept or undone later. The names are chosen
/// here, under the lock, from what the repository and ~/.ssh hold now, so that two runs in one
/// repository never pick the same remote name. Any failure or interruption undoes all of it.
pub(super) fn write(
    args: &PairArgs,
    p: &Prepared,
    v: &VerifiedPeer,
    lock: ssh_files::Applied,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<Pending> {
    let info = &v.info;
    let peer_id = peer_id(info);
    for line in crate::commands::recover::describe(lock.recovered()) {
        out.line(&line);
    }
    // Under the lock: what the repository holds now, not when this run started.
    let repository = git2::Repository::open(p.repo.path())
        .with_context(|| format!("cannot open {} again", p.info.path.display()))
        .context(PairError::Setup)?;
    let remote_names = repo::remote_names(&repository).context(PairError::Setup)?;
    // Names drawn here, never from the peer's values (see `names`).
    let remotes = repo::paired_remotes(&repository).context(PairError::Setup)?;
    let names = names::choose(&info.host, &mut OsRng, &mut |n| {
        names::in_use(&p.ssh, &remotes, n)
    })?;
    let alias = names.alias.clone();
    let marker = names.marker.clone();
    let (identity, identity_path) = match &p.login {
        LoginKey::Generated(key) => (Identity::Generated((**key).clone()), p.ssh.identity(&alias)),
        LoginKey::Existing { path, .. } => (Identity::Existing(path.clone()), path.clone()),
    };
    let host_name = host_name_for(v.address, &p.interfaces);
    let (replaced_remote, extra_remotes) = v.decision.replaced_remotes();
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .context("cannot find the git-pair executable for the forced command")?;
    let command = ssh_files::forced_command(&exe, &p.info.path).context(PairError::Setup)?;
    let record = repo::PairRecord {
        alias: alias.clone(),
        peer: peer_id.clone(),
        peer_path: info.path.clone(),
        peer_key: keys::fingerprint(&info.user_key),
        host_keys: info.host_keys.iter().map(keys::fingerprint).collect(),
        address: v.address.to_string(),
        identity: identity_path.to_string_lossy().into_owned(),
        time: repo::rfc3339(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        annex_uuid: info.annex_uuid.clone(),
        local_annex: p.info.annex_uuid.is_some(),
    };
    let plan = repo::plan_remote(
        &remote_names,
        args.name.as_deref(),
        &info.host,
        &record,
        replaced_remote.as_deref(),
    )
    .map_err(usage)?;
    let ssh_setup = PairSetup {
        alias: alias.clone(),
        host_name,
        port: v.address.port(),
        user: info.user.clone(),
        identity,
        host_keys: info.host_keys.clone(),
        authorized: AuthorizedEntry {
            key: info.user_key.clone(),
            command,
            marker: marker.clone(),
            label: peer_id.clone(),
        },
        record: Some(ssh_files::BlockRecord {
            repo: p.info.path.to_string_lossy().into_owned(),
            remote: plan.name.clone(),
            marker,
        }),
        replaces: v
            .decision
            .replaced()
            .iter()
            .map(|e| e.alias.clone())
            .collect(),
        replaces_markers: v.decision.replaced_markers(),
        secret: Some(ssh_files::SecretRecord {
            role: v.role,
            ssh_port: args.ssh_port,
            secret: v.secret.clone(),
        }),
        edit_config: p.edit_config,
    };

    let mut tx = lock;
    let mut interrupted = || interrupts.check().is_some();
    if let Err(e) = ssh_files::apply_in(&mut tx, &p.ssh, &ssh_setup, &mut interrupted) {
        return Err(undo(tx, setup_error(e)));
    }
    if let Err(e) = repo::write_remote(&mut tx, &repository, &plan) {
        return Err(undo(tx, anyhow::Error::new(e).context(PairError::Setup)));
    }
    // Everything goes in place, journaled: a crash from here to the commit is undone by the
    // next run.
    if let Err(e) = tx.flush() {
        return Err(undo(tx, setup_error(e)));
    }
    let written = tx.written();
    let committed = tx.commit_keeping_undo().map_err(setup_error)?;
    let pending = Pending {
        committed,
        written,
        repo: repository,
        plan,
        extra_remotes,
        alias,
        marker: names.marker.clone(),
        fingerprint: info.user_key.fingerprint(ssh_key::HashAlg::Sha256),
    };
    if interrupts.check().is_some() {
        pending
            .undo(p)
            .context("undoing the setup after Ctrl-C failed")?;
        return Err(PairError::Interrupted.into());
    }
    Ok(pending)
}

impl Pending {
    /// The remote's name.
    pub(super) fn remote(&self) -> &str {
        &self.plan.name
    }

    /// Keeps the pairing (releasing the lock) and says what was set up.
    pub(super) fn keep(self, p: &Prepared, v: &VerifiedPeer, out: &mut Reporter) -> Done {
        let info: &PeerInfo = &v.info;
        let Pending {
            written,
            repo: repository,
            plan,
            extra_remotes,
            alias,
            ..
        } = self;
        if let Some(old) = plan.replaces.as_deref().filter(|old| *old != plan.name) {
            if let Err(e) = repo::rename_tracking_refs(&repository, old, &plan.name) {
                out.line(&format!("warning: {:#}", anyhow::Error::new(e)));
            }
        }

        let replacement = Replacement::of(&v.decision, plan.replaces.as_deref());
        out.event(JsonEvent::Remote {
            name: plan.name.clone(),
            url: sanitize::for_terminal(&plan.url).into_owned(),
            alias: alias.clone(),
            replaced: replacement.replaced.clone(),
            not_replaced: replacement.not_replaced.clone(),
        });
        out.line(&format!(
            "Set up: remote {} -> {}",
            plan.name,
            sanitize::for_terminal(&plan.url)
        ));
        out.line(&format!(
            "        ssh alias {alias} in {} (host key pinned)",
            p.ssh.pair_config().display()
        ));
        out.line(&format!(
            "        the peer may fetch and push {} only ({})",
            p.info.path.display(),
            p.ssh.authorized_keys().display()
        ));
        if written.is_empty() {
            out.line("        (the ssh files already held this pairing)");
        }
        for line in replacement.lines(&plan.name, &view_of(info)) {
            out.line(&line);
        }
        for extra in &extra_remotes {
            if let Err(e) = repo::remove_remote(&repository, extra) {
                out.line(&format!(
                    "warning: remote {extra} of the earlier pairing is left: {:#}",
                    anyhow::Error::new(e)
                ));
            }
        }
        for warning in annex_warnings(&plan, info, p.annex_shell) {
            out.line(&format!("warning: {warning}"));
        }
        if let ssh_files::IncludeState::Missing { line } = &p.include {
            out.line(&format!(
                "warning: {} does not include git pair's ssh configuration, so `git fetch {}` \
                 cannot find host {alias} yet: add this line at the top of your ssh \
                 configuration:\n\n    {line}\n",
                p.ssh.config().display(),
                plan.name
            ));
        }
        Done {
            remote: plan.name,
            alias,
            replacement,
        }
    }

    /// Undoes the remote, then the ssh files (under the lock again).
    pub(super) fn undo(self, p: &Prepared) -> anyhow::Result<()> {
        // Every file that still holds what the pairing wrote, the repository's config among
        // them, goes back byte for byte, in one transaction.
        let ssh = ssh_files::undo_committed(
            &p.ssh,
            self.committed,
            &ssh_files::Written {
                alias: &self.alias,
                marker: &self.marker,
                fingerprint: &self.fingerprint,
            },
        );
        // A config someone changed since keeps that change: only a remote this pairing added
        // is taken out of it (an updated one is left as the re-pair made it).
        let ours = repo::paired_remotes(&self.repo)
            .map(|r| {
                r.iter()
                    .any(|r| r.name == self.plan.name && r.alias == self.alias)
            })
            .unwrap_or(false);
        let remote = if ours && self.plan.replaces.is_none() {
            repo::remove_remote(&self.repo, &self.plan.name)
        } else {
            Ok(())
        };
        match (remote, ssh) {
            (Ok(()), Ok(_)) => Ok(()),
            (Err(e), Ok(_)) => Err(anyhow::Error::new(e).context("cannot undo the remote")),
            (Ok(()), Err(e)) => Err(anyhow::Error::new(e).context("cannot undo the ssh changes")),
            (Err(r), Err(e)) => Err(anyhow::Error::new(e)
                .context(format!("cannot undo the ssh changes, nor the remote ({r})"))),
        }
    }
}

/// `e` with the [`PairError`] that says how it failed.
fn setup_error(e: ssh_files::Error) -> anyhow::Error {
    let interrupted = matches!(e, ssh_files::Error::Interrupted);
    anyhow::Error::new(e).context(if interrupted {
        PairError::Interrupted
    } else {
        PairError::Setup
    })
}

/// Rolls `tx` back after `cause`, adding to it if that fails too.
fn undo(tx: ssh_files::Applied, cause: anyhow::Error) -> anyhow::Error {
    match tx.rollback() {
        Ok(()) => cause,
        Err(u) => cause.context(format!("undoing the changes also failed: {u}")),
    }
}

/// `HostName` for the alias: a link-local IPv6 address needs the name of
/// the local interface it is reached through.
pub(crate) fn host_name_for(address: SocketAddr, interfaces: &[Interface]) -> String {
    match address {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            match interfaces.iter().find(|i| i.index == v6.scope_id()) {
                Some(i) => format!("{}%{}", v6.ip(), i.name),
                None => v6.ip().to_string(),
            }
        }
        a => a.ip().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::pair::fixtures::eth0;
    use std::net::SocketAddrV6;

    #[test]
    fn link_local_host_names_name_the_interface() {
        let a = SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 22, 0, 2));
        assert_eq!(host_name_for(a, &[eth0()]), "fe80::2%eth0");
        assert_eq!(
            host_name_for("10.0.0.2:22".parse().unwrap(), &[eth0()]),
            "10.0.0.2"
        );
    }
}
