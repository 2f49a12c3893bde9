//! `git pair remove NAME`: undoes one pairing on this machine, and nothing else.
//!
//! [`plan`] is pure: from the repository's paired remotes and git-pair's `Host` blocks it picks
//! what belongs to the pairing called NAME: the peer's `authorized_keys` line (by marker and
//! by the recorded key fingerprint), the ssh aliases with their pinned host keys, pair secrets and key files,
//! and the remote. [`run`] applies it: the ssh files first, in one locked transaction (so the
//! peer loses access before anything else changes), then the remote. Every other line and file
//! stays byte for byte; key files another pairing still uses stay. A pairing that is already
//! half removed (a remote deleted by hand, ssh files edited) is cleaned up as far as it exists,
//! and removing it twice is not an error.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::repo::{self, PairedRemote};
use crate::sanitize;
use crate::ssh_files::{self, FoundBlock};

/// What removing one pairing touches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Removal {
    /// The remote to delete, if it still exists.
    pub remote: Option<String>,
    /// `(alias, marker of its authorized_keys line)`.
    pub aliases: Vec<(String, Option<String>)>,
    /// The fingerprint recorded for the peer's login key.
    pub fingerprint: Option<String>,
}

impl Removal {
    pub fn is_empty(&self) -> bool {
        self.remote.is_none() && self.aliases.is_empty()
    }
}

/// What belongs to the pairing `name` of the repository at `local`: the paired remote called
/// `name`, or else the `Host` blocks recorded for this repository under that remote name or
/// that alias.
pub fn plan(local: &Path, name: &str, remotes: &[PairedRemote], blocks: &[FoundBlock]) -> Removal {
    let local_text = local.to_string_lossy();
    let ours = |b: &&FoundBlock| b.repo.as_deref() == Some(&*local_text);
    let mut removal = Removal::default();
    let mut add = |alias: &str, marker: Option<String>| {
        if ssh_files::validate_alias(alias).is_ok()
            && !removal
                .aliases
                .iter()
                .any(|(a, _)| a.eq_ignore_ascii_case(alias))
        {
            removal.aliases.push((alias.to_string(), marker));
        }
    };
    if let Some(r) = remotes.iter().find(|r| r.name == name) {
        // The marker recorded in the remote's Host block; a pairing made before markers were
        // random may have lost its block, and its marker derives from the two repositories.
        let marker = blocks
            .iter()
            .find(|b| b.alias.eq_ignore_ascii_case(&r.alias))
            .and_then(|b| b.marker.clone())
            .or_else(|| r.peer.as_deref().map(|peer| repo::pair_marker(local, peer)));
        add(&r.alias, marker.clone());
        // The remote's earlier aliases, if a hand edit kept them.
        for b in blocks.iter().filter(ours) {
            if b.marker.is_some() && b.marker == marker {
                add(&b.alias, b.marker.clone());
            }
        }
        removal.remote = Some(r.name.clone());
        removal.fingerprint = r.peer_key.clone();
        return removal;
    }
    let used: Vec<String> = remotes.iter().map(|r| r.alias.to_lowercase()).collect();
    for b in blocks.iter().filter(ours) {
        let named = b.remote.as_deref() == Some(name) || b.alias.eq_ignore_ascii_case(name);
        if named && !used.contains(&b.alias.to_lowercase()) {
            add(&b.alias, b.marker.clone());
        }
    }
    removal
}

/// Runs `git pair remove NAME`.
pub fn run(name: &str) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (repository, info) = repo::open(&cwd).map_err(super::pair::usage)?;
    let remotes = repo::paired_remotes(&repository)?;
    let ssh = crate::local::ssh_dir()?;
    let blocks = ssh.pair_blocks()?;
    let removal = plan(&info.path, name, &remotes, &blocks);
    let shown = sanitize::for_terminal(name);
    if removal.is_empty() {
        if info.remotes.iter().any(|r| r == name) {
            return Err(super::pair::PairError::Usage(format!(
                "remote {shown} was not made by git pair: remove it with `git remote remove {shown}`"
            ))
            .into());
        }
        say(&format!(
            "git pair: nothing to remove: no pairing named {shown} in {} (`git pair list` shows them)\n",
            info.path.display()
        ));
        return Ok(());
    }
    let fingerprint = removal
        .fingerprint
        .as_deref()
        .and_then(|f| f.parse::<ssh_key::Fingerprint>().ok());
    let mut changed = Vec::new();
    for (alias, marker) in &removal.aliases {
        let files = ssh_files::remove(&ssh, alias, fingerprint.as_ref(), marker.as_deref())
            .with_context(|| format!("cannot remove the ssh files of pairing {shown}"))?;
        changed.extend(files);
    }
    if removal.aliases.is_empty() {
        if let Some(fp) = &fingerprint {
            // No alias is recorded any more, but the remote says which key was let in.
            changed.extend(
                ssh_files::remove_authorized(&ssh, fp)
                    .with_context(|| format!("cannot revoke the key of pairing {shown}"))?,
            );
        }
    }
    if let Some(remote) = &removal.remote {
        repo::remove_remote(&repository, remote)?;
    }
    changed.sort();
    changed.dedup();
    let changed: Vec<(PathBuf, Change)> = changed
        .into_iter()
        .map(|path| {
            let change = if std::fs::symlink_metadata(&path).is_ok() {
                Change::Updated
            } else {
                Change::Deleted
            };
            (path, change)
        })
        .collect();
    say(&report(&shown, &removal, &changed));
    if repo::paired_remotes(&repository).is_ok_and(|left| left.is_empty()) {
        super::hooks::after_last_pairing(&cwd);
    }
    Ok(())
}

/// What removing a pairing did to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Lines were taken out; the file stays.
    Updated,
    /// The file is gone (a key file, or a file that held only this pairing).
    Deleted,
}

/// What `git pair remove` tells the user it did.
fn report(shown: &str, removal: &Removal, changed: &[(PathBuf, Change)]) -> String {
    let mut out = format!("Removed pairing {shown}:\n");
    if let Some(remote) = &removal.remote {
        out.push_str(&format!(
            "    remote {} and its remote-tracking branches\n",
            sanitize::for_terminal(remote)
        ));
    }
    for (alias, _) in &removal.aliases {
        out.push_str(&format!(
            "    ssh alias {alias}, its pinned host keys and pair secret, and its key files unless another pairing uses them\n"
        ));
    }
    for (path, change) in changed {
        let what = match change {
            Change::Updated => "updated",
            Change::Deleted => "deleted",
        };
        out.push_str(&format!("    {what} {}\n", path.display()));
    }
    out.push_str("The peer can no longer log in here with that pairing's key.\n");
    out
}

/// Writes to stderr; a closed stderr must not turn a done removal into a panic.
fn say(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(name: &str, alias: &str) -> PairedRemote {
        PairedRemote {
            name: name.into(),
            alias: alias.into(),
            peer: Some("bob@desk:/srv/r".into()),
            peer_key: Some("SHA256:k".into()),
            ..PairedRemote::default()
        }
    }

    fn block(alias: &str, repo: &str, remote: &str, marker: &str) -> FoundBlock {
        FoundBlock {
            alias: alias.into(),
            repo: Some(repo.into()),
            remote: Some(remote.into()),
            marker: Some(marker.into()),
            ..FoundBlock::default()
        }
    }

    #[test]
    fn a_paired_remote_takes_its_alias_marker_and_key() {
        let local = Path::new("/home/a/r");
        let marker = repo::pair_marker(local, "bob@desk:/srv/r");
        let blocks = [
            block("git-pair-desk-1", "/home/a/r", "desk", &marker),
            block("git-pair-desk-0", "/home/a/r", "desk", &marker),
            block("git-pair-other", "/home/a/r", "other", "x"),
        ];
        let got = plan(local, "desk", &[remote("desk", "git-pair-desk-1")], &blocks);
        assert_eq!(got.remote.as_deref(), Some("desk"));
        assert_eq!(got.fingerprint.as_deref(), Some("SHA256:k"));
        assert_eq!(
            got.aliases,
            [
                ("git-pair-desk-1".to_string(), Some(marker.clone())),
                ("git-pair-desk-0".to_string(), Some(marker)),
            ]
        );
    }

    #[test]
    fn a_remote_deleted_by_hand_is_found_through_its_block() {
        let local = Path::new("/home/a/r");
        let blocks = [
            block("git-pair-desk-1", "/home/a/r", "desk", "m1"),
            block("git-pair-desk-2", "/home/a/elsewhere", "desk", "m2"),
        ];
        let got = plan(local, "desk", &[], &blocks);
        assert_eq!(got.remote, None);
        assert_eq!(
            got.aliases,
            [("git-pair-desk-1".to_string(), Some("m1".to_string()))]
        );
        // By alias too, as `git pair list` shows it.
        assert_eq!(
            plan(local, "git-pair-desk-1", &[], &blocks).aliases.len(),
            1
        );
    }

    #[test]
    fn unknown_names_and_other_repositories_plan_nothing() {
        let local = Path::new("/home/a/r");
        let blocks = [block("git-pair-x", "/other", "x", "m")];
        assert!(plan(local, "x", &[], &blocks).is_empty());
        assert!(plan(local, "nope", &[remote("desk", "a")], &[]).is_empty());
    }

    #[test]
    fn the_report_says_which_file_was_updated_and_which_deleted() {
        let removal = Removal {
            remote: Some("desk".into()),
            aliases: vec![("git-pair-desk-1".into(), None)],
            fingerprint: None,
        };
        let text = report(
            "desk",
            &removal,
            &[
                ("/h/.ssh/authorized_keys".into(), Change::Updated),
                (
                    "/h/.ssh/git-pair/id_git-pair-desk-1".into(),
                    Change::Deleted,
                ),
            ],
        );
        assert!(
            text.contains("    updated /h/.ssh/authorized_keys\n"),
            "{text}"
        );
        assert!(
            text.contains("    deleted /h/.ssh/git-pair/id_git-pair-desk-1\n"),
            "{text}"
        );
        assert!(!text.contains("updated or deleted"), "{text}");
    }

    #[test]
    fn a_block_in_use_by_another_remote_is_not_taken_by_name() {
        let local = Path::new("/home/a/r");
        // The remote "desk" was renamed to "d2"; its block still records "desk".
        let blocks = [block("git-pair-desk-1", "/home/a/r", "desk", "m")];
        let got = plan(local, "desk", &[remote("d2", "git-pair-desk-1")], &blocks);
        assert!(got.is_empty());
    }
}
