//! Writing a verified pairing on this machine: ~/.ssh, then the remote, as one unit that is
//! rolled back on any failure or interruption.

use std::fs;
use std::net::SocketAddr;
use std::time::SystemTime;

use anyhow::Context;

use crate::cli::PairArgs;
use crate::events::Event as JsonEvent;
use crate::interrupt::Interrupts;
use crate::keys::{self, LoginKey};
use crate::repo;
use crate::sanitize;
use crate::ssh_files::{self, AuthorizedEntry, Identity, PairSetup};
use crate::transport::iface::Interface;

use super::error::{usage, PairError};
use super::peer::{annex_warnings, peer_id, VerifiedPeer};
use super::{Prepared, Reporter};

/// What setup made.
pub(super) struct Done {
    pub(super) remote: String,
    pub(super) alias: String,
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
    let alias = format!(
        "git-pair-{}-{}",
        repo::name_from_host(&info.host),
        v.peer.short()
    );
    let (identity, identity_path) = match &p.login {
        LoginKey::Generated(key) => (Identity::Generated((**key).clone()), p.ssh.identity(&alias)),
        LoginKey::Existing { path, .. } => (Identity::Existing(path.clone()), path.clone()),
    };
    let host_name = host_name_for(v.address, &p.interfaces);
    let peer_id = peer_id(info);
    let marker = repo::pair_marker(&p.info.path, &peer_id);
    let earlier = earlier_pairings(p, &peer_id, &marker)?;
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
        earlier.remote.as_deref(),
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
        replaces: earlier.aliases.clone(),
        secret: Some(ssh_files::SecretRecord {
            role: v.role,
            ssh_port: args.ssh_port,
            secret: v.secret.clone(),
        }),
    };

    // The ssh files and the git config are different files: written at once, the git config's
    // lock-write-rename cycles hide behind the fsyncs of the ssh files.
    let git_dir = p.repo.path().to_path_buf();
    let (ssh_applied, remote_applied) = std::thread::scope(|s| {
        let plan = &plan;
        let remote = s.spawn(move || -> anyhow::Result<repo::RemoteUndo> {
            // A handle of its own: a Repository may not be shared between threads.
            let own = git2::Repository::open(&git_dir).context(PairError::Setup)?;
            let undo = repo::apply_remote(&own, plan).context(PairError::Setup)?;
            Ok(undo)
        });
        let ssh = ssh_files::apply(&p.ssh, &ssh_setup, &mut || interrupts.check().is_some());
        let remote = remote
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("setting up the remote panicked")));
        (ssh, remote)
    });
    let ssh_error = |e: ssh_files::Error| {
        let interrupted = matches!(e, ssh_files::Error::Interrupted);
        anyhow::Error::new(e).context(if interrupted {
            PairError::Interrupted
        } else {
            PairError::Setup
        })
    };
    // A half that failed undid itself; the other half is undone here.
    let (applied, remote_undo) = match (ssh_applied, remote_applied) {
        (Ok(applied), Ok(undo)) => (applied, undo),
        (Ok(applied), Err(err)) => {
            return Err(match applied.rollback() {
                Ok(()) => err,
                Err(u) => err.context(format!("undoing the ssh changes also failed: {u}")),
            });
        }
        (Err(e), remote) => {
            let err = ssh_error(e);
            return Err(
                match remote.map(|undo| repo::undo_remote(&p.repo, &plan.name, undo)) {
                    Ok(Err(u)) => err.context(format!("undoing the remote also failed: {u}")),
                    Ok(Ok(())) | Err(_) => err,
                },
            );
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

    out.event(JsonEvent::Remote {
        name: plan.name.clone(),
        url: sanitize::for_terminal(&plan.url).into_owned(),
        alias: alias.clone(),
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
    if plan.replaces.is_some() || !earlier.aliases.is_empty() {
        out.line("        (this replaces the earlier pairing of these two repositories)");
    }
    for extra in &earlier.extra_remotes {
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
    Ok(Done {
        remote: plan.name,
        alias,
    })
}

/// What an earlier pairing of the same two repositories left, for a re-pair to replace.
#[derive(Debug, Default)]
pub(super) struct Earlier {
    /// The remote to update in place.
    pub(super) remote: Option<String>,
    /// Further remotes of the same peer repository (only from hand edits), removed after.
    pub(super) extra_remotes: Vec<String>,
    /// Their ssh aliases, and those of `Host` blocks whose remote is gone.
    pub(super) aliases: Vec<String>,
}

/// Finds the remotes recorded for `peer_id`, and the `Host` blocks recorded for this repository
/// with this pairing's marker.
pub(super) fn earlier_pairings(
    p: &Prepared,
    peer_id: &str,
    marker: &str,
) -> anyhow::Result<Earlier> {
    let mut earlier = Earlier::default();
    for r in repo::paired_remotes(&p.repo).context(PairError::Setup)? {
        if r.peer.as_deref() != Some(peer_id) {
            continue;
        }
        if earlier.remote.is_none() {
            earlier.remote = Some(r.name);
        } else {
            earlier.extra_remotes.push(r.name);
        }
        if ssh_files::validate_alias(&r.alias).is_ok() && !earlier.aliases.contains(&r.alias) {
            earlier.aliases.push(r.alias);
        }
    }
    let local = p.info.path.to_string_lossy();
    for b in p.ssh.pair_blocks().context(PairError::Setup)? {
        if b.repo.as_deref() == Some(&*local)
            && b.marker.as_deref() == Some(marker)
            && !earlier.aliases.contains(&b.alias)
        {
            earlier.aliases.push(b.alias);
        }
    }
    Ok(earlier)
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
