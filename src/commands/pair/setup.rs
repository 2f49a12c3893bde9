//! Writing a verified pairing on this machine: ~/.ssh, then the remote, as one unit that is
//! rolled back on any failure or interruption.

use std::fs;
use std::net::SocketAddr;
use std::time::SystemTime;

use anyhow::Context;
use rand_core::OsRng;

use crate::cli::PairArgs;
use crate::events::{Event as JsonEvent, NotReplaced, PeerView};
use crate::interrupt::Interrupts;
use crate::keys::{self, LoginKey};
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

/// Applies the pairing on this machine: ~/.ssh, then the remote, as one
/// unit. Any failure or interruption undoes all of it.
pub(super) fn setup(
    args: &PairArgs,
    p: &Prepared,
    v: &VerifiedPeer,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<Done> {
    let info = &v.info;
    let peer_id = peer_id(info);
    // Names drawn here, never from the peer's values (see `names`).
    let remotes = repo::paired_remotes(&p.repo).context(PairError::Setup)?;
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
        &p.info.remotes,
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

    let applied = ssh_files::apply(&p.ssh, &ssh_setup, &mut || interrupts.check().is_some())
        .map_err(|e| {
            let interrupted = matches!(e, ssh_files::Error::Interrupted);
            anyhow::Error::new(e).context(if interrupted {
                PairError::Interrupted
            } else {
                PairError::Setup
            })
        })?;
    let remote_undo = match repo::apply_remote(&p.repo, &plan) {
        Ok(undo) => undo,
        Err(e) => {
            let undo = applied.rollback();
            let err = anyhow::Error::new(e).context(PairError::Setup);
            return Err(match undo {
                Ok(()) => err,
                Err(u) => err.context(format!("undoing the ssh changes also failed: {u}")),
            });
        }
    };
    if interrupts.check().is_some() {
        let _ = repo::undo_remote(&p.repo, &plan.name, remote_undo);
        applied
            .rollback()
            .context("undoing the ssh changes after Ctrl-C failed")?;
        return Err(PairError::Interrupted.into());
    }
    drop(remote_undo);
    let written = applied.written();
    applied.commit();

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
        if let Err(e) = repo::remove_remote(&p.repo, extra) {
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
            "warning: {} does not include git pair's ssh configuration, so `git fetch {}` cannot \
             find host {alias} yet: add this line at the top of your ssh configuration:\n\n    \
             {line}\n",
            p.ssh.config().display(),
            plan.name
        ));
    }
    Ok(Done {
        remote: plan.name,
        alias,
        replacement,
    })
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
