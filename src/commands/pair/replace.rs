//! Whether a new pairing replaces an earlier one, and the proof it takes.
//!
//! Pairing the same two repositories again replaces the earlier pairing in place: the remote
//! keeps its name and gets the new address and keys, and the earlier ssh alias, pinned keys,
//! key files and `authorized_keys` line go. But who "the same" peer is must not be what the peer
//! says: any verified peer can claim an earlier pairing's `user@host:path`, and would otherwise
//! redirect that remote and lock the real peer out. So an earlier pairing is replaced only when
//! the new peer proves it is the one that pairing was made with; otherwise the new pairing is
//! made beside it, under its own names, and the user is told so.
//!
//! Two proofs count, either suffices:
//! - the sshd at the address the new peer is reached at proves, in a real ssh key exchange
//!   checked by ssh itself ([`transport::hostkey`](crate::transport::hostkey)), that it holds a
//!   host key pinned for the earlier pairing (`~/.ssh/git-pair/known_hosts`), and the new peer's
//!   payload pins that key again (the keys in the payload alone prove nothing: they are public);
//! - the new peer proves it holds the pair secret stored with the earlier pairing, by an HMAC
//!   over both session ids in its encrypted payload ([`crate::protocol::repair`]), so that a
//!   peer whose sshd got a new host key (reinstalled) can still re-pair in place.
//!
//! [`replacement_proof`] is the one place that decides, from the [`Evidence`].

use std::path::Path;

use anyhow::Context;
use ssh_key::PublicKey;

use crate::keys;
use crate::repo;
use crate::ssh_files::SshDir;

use super::error::PairError;

/// An earlier pairing of this repository that claims the same peer (`user@host:path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Earlier {
    /// Its remote; `None` for a `Host` block whose remote was deleted by hand.
    pub(super) remote: Option<String>,
    pub(super) alias: String,
    /// The marker of its `authorized_keys` line.
    pub(super) marker: Option<String>,
    /// The host keys pinned for its alias.
    pub(super) pinned: Vec<PublicKey>,
}

/// What is known when deciding.
pub(super) struct Evidence<'a> {
    /// The earlier pairings that claim the same peer.
    pub(super) earlier: &'a [Earlier],
    /// The host keys the sshd at the new peer's address proved, in a real key exchange, to hold
    /// (only keys pinned for an earlier pairing can be proven), or why none could be checked.
    pub(super) presented: Result<&'a [PublicKey], &'a str>,
    /// The host keys the new peer's payload asks to pin.
    pub(super) offered: &'a [PublicKey],
    /// The aliases of the earlier pairings whose pair secret the new peer proved it holds.
    pub(super) secret_proven: &'a [String],
}

/// The decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    /// No earlier pairing claims this peer.
    First,
    /// The peer proved it is the one `replaced` were made with; they are replaced. `kept`
    /// claim the same peer but were not proven (left as they are).
    Replace {
        replaced: Vec<Earlier>,
        kept: Vec<Earlier>,
        proof: String,
    },
    /// Earlier pairings claim this peer, but it did not prove it is theirs: a new pairing is
    /// made beside them, and they are left as they are.
    New { kept: Vec<Earlier>, why: String },
}

impl Decision {
    pub(super) fn replaced(&self) -> &[Earlier] {
        match self {
            Decision::Replace { replaced, .. } => replaced,
            _ => &[],
        }
    }

    pub(super) fn kept(&self) -> &[Earlier] {
        match self {
            Decision::First => &[],
            Decision::Replace { kept, .. } | Decision::New { kept, .. } => kept,
        }
    }

    /// The markers of the `authorized_keys` lines that go with the replaced pairings.
    pub(super) fn replaced_markers(&self) -> Vec<String> {
        self.replaced()
            .iter()
            .filter_map(|e| e.marker.clone())
            .collect()
    }

    /// The remote updated in place, and the further remotes of replaced pairings.
    pub(super) fn replaced_remotes(&self) -> (Option<String>, Vec<String>) {
        let mut remotes = self.replaced().iter().filter_map(|e| e.remote.clone());
        let first = remotes.next();
        (first, remotes.collect())
    }
}

/// Decides whether a new pairing replaces earlier ones (see the module documentation): an
/// earlier pairing is replaced only when the new peer proved its pair secret, or when a host key
/// the sshd at the new peer's address proved it holds is pinned for it and offered again by the
/// new peer. Pure.
pub(super) fn replacement_proof(evidence: &Evidence) -> Decision {
    if evidence.earlier.is_empty() {
        return Decision::First;
    }
    let by_secret = |e: &Earlier| {
        evidence
            .secret_proven
            .iter()
            .any(|a| a.eq_ignore_ascii_case(&e.alias))
    };
    if evidence.earlier.iter().any(by_secret) {
        let (replaced, kept): (Vec<Earlier>, Vec<Earlier>) =
            evidence.earlier.iter().cloned().partition(by_secret);
        return Decision::Replace {
            replaced,
            kept,
            proof: "it proved it holds the pair secret of that pairing".to_owned(),
        };
    }
    let presented = match evidence.presented {
        Ok(keys) => keys,
        Err(why) => {
            return Decision::New {
                kept: evidence.earlier.to_vec(),
                why: format!("its sshd's host keys could not be checked: {why}"),
            }
        }
    };
    let has =
        |set: &[PublicKey], key: &PublicKey| set.iter().any(|k| k.key_data() == key.key_data());
    // Keys the sshd really holds that the new pairing pins again.
    let proven_keys: Vec<&PublicKey> = presented
        .iter()
        .filter(|k| has(evidence.offered, k))
        .collect();
    let (replaced, kept): (Vec<Earlier>, Vec<Earlier>) = evidence
        .earlier
        .iter()
        .cloned()
        .partition(|e| proven_keys.iter().any(|k| has(&e.pinned, k)));
    match replaced.first() {
        Some(first) => {
            let key = proven_keys
                .iter()
                .find(|k| has(&first.pinned, k))
                .map(|k| keys::fingerprint(k))
                .unwrap_or_default();
            Decision::Replace {
                replaced,
                kept,
                proof: format!("its sshd proved it holds host key {key}, pinned for that pairing"),
            }
        }
        None => Decision::New {
            kept,
            why: if proven_keys.is_empty() {
                "its sshd proved none of the host keys it sent and an earlier pairing pinned"
                    .to_owned()
            } else {
                "its sshd presented no host key pinned for that pairing".to_owned()
            },
        },
    }
}

/// The earlier pairings of the repository at `local` that claim `peer_id`: its remotes recorded
/// with that peer, and `Host` blocks of pairings made before markers were random (their marker
/// derives from the two repositories) whose remote is gone.
pub(super) fn earlier_pairings(
    repository: &git2::Repository,
    local: &Path,
    ssh: &SshDir,
    peer_id: &str,
) -> anyhow::Result<Vec<Earlier>> {
    let blocks = ssh.pair_blocks().context(PairError::Setup)?;
    let legacy_marker = repo::pair_marker(local, peer_id);
    let mut earlier: Vec<Earlier> = Vec::new();
    let mut add = |remote: Option<String>, alias: String, marker: Option<String>| {
        if crate::ssh_files::validate_alias(&alias).is_err()
            || earlier.iter().any(|e| e.alias.eq_ignore_ascii_case(&alias))
        {
            return anyhow::Ok(());
        }
        let pinned = ssh.pinned_keys(&alias).context(PairError::Setup)?;
        earlier.push(Earlier {
            remote,
            alias,
            marker,
            pinned,
        });
        Ok(())
    };
    for r in repo::paired_remotes(repository).context(PairError::Setup)? {
        if r.peer.as_deref() != Some(peer_id) {
            continue;
        }
        let marker = blocks
            .iter()
            .find(|b| b.alias.eq_ignore_ascii_case(&r.alias))
            .and_then(|b| b.marker.clone())
            .or_else(|| Some(legacy_marker.clone()));
        add(Some(r.name), r.alias, marker)?;
    }
    let local_text = local.to_string_lossy();
    for b in &blocks {
        if b.repo.as_deref() == Some(&*local_text) && b.marker.as_deref() == Some(&legacy_marker) {
            add(None, b.alias.clone(), b.marker.clone())?;
        }
    }
    Ok(earlier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh_files::test_keys::{ECDSA_PUB, ED25519_PUB, RSA_PUB};

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    fn earlier(remote: &str, pinned: &[&str]) -> Earlier {
        Earlier {
            remote: Some(remote.to_owned()),
            alias: format!("git-pair-{remote}-00000001"),
            marker: Some(format!("marker-{remote}")),
            pinned: pinned.iter().map(|k| key(k)).collect(),
        }
    }

    #[test]
    fn a_first_pairing_replaces_nothing() {
        let d = replacement_proof(&Evidence {
            earlier: &[],
            presented: Err("not asked"),
            offered: &[key(ED25519_PUB)],
            secret_proven: &[],
        });
        assert_eq!(d, Decision::First);
    }

    /// Issue 8, item 3: a peer that claims an earlier pairing's identity replaces it only when
    /// its sshd proves, in a key exchange, to hold a host key pinned for it.
    #[test]
    fn only_a_pinned_host_key_presented_by_the_sshd_proves_the_peer() {
        let old = [earlier("beta", &[ED25519_PUB])];
        let same = [key(ED25519_PUB)];
        let new = [key(ECDSA_PUB)];
        // The genuine peer, re-pairing: its sshd presents the pinned key, and it sends it.
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Ok(&same),
            offered: &same,
            secret_proven: &[],
        });
        assert!(
            matches!(&d, Decision::Replace { replaced, kept, proof }
            if replaced.len() == 1 && kept.is_empty() && proof.contains("SHA256:")),
            "{d:?}"
        );
        assert_eq!(d.replaced_markers(), ["marker-beta"]);
        assert_eq!(d.replaced_remotes(), (Some("beta".to_owned()), vec![]));

        // Another sshd (new host key): the same claim makes a new pairing.
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Ok(&new),
            offered: &new,
            secret_proven: &[],
        });
        assert!(
            matches!(&d, Decision::New { kept, why }
            if kept.len() == 1 && why.contains("no host key pinned")),
            "{d:?}"
        );
        assert!(d.replaced_markers().is_empty());

        // The payload copies the old, public, host key; the sshd at its address does not hold
        // it. Claims prove nothing.
        let both = [key(ED25519_PUB), key(ECDSA_PUB)];
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Ok(&new),
            offered: &both,
            secret_proven: &[],
        });
        assert!(matches!(d, Decision::New { .. }), "{d:?}");

        // The sshd at the address holds the pinned key (the real peer's, the new peer pointed
        // us at it) but the new pairing would pin other keys: not proven either.
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Ok(&same),
            offered: &new,
            secret_proven: &[],
        });
        assert!(
            matches!(&d, Decision::New { why, .. } if why.contains("none of the host keys it sent")),
            "{d:?}"
        );

        // No key exchange possible: never a replacement.
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Err("ssh: connect to host 10.0.0.2 port 22: Connection refused"),
            offered: &same,
            secret_proven: &[],
        });
        assert!(
            matches!(&d, Decision::New { why, .. } if why.contains("Connection refused")),
            "{d:?}"
        );
    }

    #[test]
    fn only_the_proven_pairings_are_replaced() {
        let old = [
            earlier("beta", &[ED25519_PUB]),
            earlier("beta-2", &[RSA_PUB]),
            earlier("beta-3", &[ED25519_PUB, ECDSA_PUB]),
        ];
        let presented = [key(ED25519_PUB)];
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Ok(&presented),
            offered: &presented,
            secret_proven: &[],
        });
        let replaced: Vec<_> = d
            .replaced()
            .iter()
            .map(|e| e.remote.clone().unwrap())
            .collect();
        let kept: Vec<_> = d.kept().iter().map(|e| e.remote.clone().unwrap()).collect();
        assert_eq!(replaced, ["beta", "beta-3"]);
        assert_eq!(kept, ["beta-2"]);
        assert_eq!(
            d.replaced_remotes(),
            (Some("beta".to_owned()), vec!["beta-3".to_owned()])
        );
    }

    /// The second proof: the pair secret of an earlier pairing, proven in the payload, is
    /// enough even when the sshd shows a new host key (or cannot be asked), and replaces only
    /// the pairings whose secret was proven.
    #[test]
    fn a_proven_pair_secret_replaces_its_pairing_whatever_the_sshd_shows() {
        let old = [
            earlier("beta", &[ED25519_PUB]),
            earlier("beta-2", &[RSA_PUB]),
        ];
        let new = [key(ECDSA_PUB)];
        let proven = ["GIT-PAIR-BETA-00000001".to_owned()];
        for presented in [
            Ok(&new[..]),
            Err("ssh: connect to host x port 22: Connection refused"),
        ] {
            let d = replacement_proof(&Evidence {
                earlier: &old,
                presented,
                offered: &new,
                secret_proven: &proven,
            });
            assert!(
                matches!(&d, Decision::Replace { replaced, kept, proof }
                if replaced.len() == 1 && replaced[0].alias == "git-pair-beta-00000001"
                    && kept.len() == 1 && proof.contains("pair secret")),
                "{d:?}"
            );
        }
        // A secret of a pairing that is not one of the earlier ones proves nothing here.
        let d = replacement_proof(&Evidence {
            earlier: &old,
            presented: Ok(&new),
            offered: &new,
            secret_proven: &["git-pair-other-1".to_owned()],
        });
        assert!(matches!(d, Decision::New { .. }), "{d:?}");
    }
}
