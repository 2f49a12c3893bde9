//! The names a new pairing is written under on this machine: the ssh alias (which also names
//! its key files, pinned host keys and pair secret) and the `authorized_keys` marker.
//!
//! They come from this side's own randomness, never from anything the peer chose: an alias
//! built from the peer's session id (as git pair once did) let a verified peer pick one that an
//! earlier pairing already used, and take its `Host` block and pinned keys over. The peer's host
//! name stays in the alias for readability, reduced to `[a-z0-9_-]`; uniqueness comes from the
//! random part, and a name that is in use anyway is never taken (and [`ssh_files::apply`]
//! refuses to overwrite one, under its lock).

use anyhow::Context;
use rand_core::RngCore;

use crate::repo;
use crate::ssh_files::SshDir;

use super::error::PairError;

/// Where a new pairing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Names {
    /// `git-pair-<peer host, sanitized>-<8 random hex digits>`.
    pub(super) alias: String,
    /// 16 random hex digits.
    pub(super) marker: String,
}

/// How many random draws to try before giving up: with 32 random bits per alias a second draw
/// is already a curiosity.
const DRAWS: usize = 16;

/// Draws names until `taken` says they are free.
pub(super) fn choose(
    peer_host: &str,
    rng: &mut impl RngCore,
    taken: &mut dyn FnMut(&Names) -> anyhow::Result<bool>,
) -> anyhow::Result<Names> {
    for _ in 0..DRAWS {
        let names = draw(peer_host, rng);
        if !taken(&names)? {
            return Ok(names);
        }
    }
    Err(anyhow::anyhow!(
        "cannot find a free name for the pairing after {DRAWS} random draws"
    ))
    .context(PairError::Setup)
}

fn draw(peer_host: &str, rng: &mut impl RngCore) -> Names {
    let mut id = [0u8; 4];
    let mut marker = [0u8; 8];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut marker);
    Names {
        alias: format!("git-pair-{}-{}", repo::name_from_host(peer_host), hex(&id)),
        marker: hex(&marker),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `names` are used here already: by git pair's ssh files (see
/// [`SshDir::alias_in_use`], [`SshDir::marker_in_use`]) or by a remote of this repository.
pub(super) fn in_use(
    ssh: &SshDir,
    remotes: &[repo::PairedRemote],
    names: &Names,
) -> anyhow::Result<bool> {
    Ok(ssh.alias_in_use(&names.alias)?.is_some()
        || ssh.marker_in_use(&names.marker)?.is_some()
        || remotes
            .iter()
            .any(|r| r.alias.eq_ignore_ascii_case(&names.alias)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh_files::authorized_keys::validate_marker;
    use crate::ssh_files::validate_alias;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn names_are_random_valid_and_only_readable_from_the_host() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let a = choose("Bob's Laptop.local", &mut rng, &mut |_| Ok(false)).unwrap();
        let b = choose("Bob's Laptop.local", &mut rng, &mut |_| Ok(false)).unwrap();
        assert_ne!(a, b);
        for n in [&a, &b] {
            assert!(n.alias.starts_with("git-pair-bob-s-laptop-"), "{}", n.alias);
            validate_alias(&n.alias).unwrap();
            validate_marker(&n.marker).unwrap();
            assert_eq!(n.marker.len(), 16);
        }
        // Whatever the host name holds, the alias is a safe one.
        for host in [
            "../../x",
            "-oProxyCommand=x",
            "a\nb",
            "日本",
            &"x".repeat(300),
        ] {
            let n = choose(host, &mut rng, &mut |_| Ok(false)).unwrap();
            validate_alias(&n.alias).unwrap();
        }
    }

    /// Issue 8, item 2: names never collide with one in use. A peer can no longer aim at an
    /// alias: nothing it sends but its host name goes into the alias, and the part that makes
    /// it unique is drawn here.
    #[test]
    fn names_in_use_are_drawn_again_and_never_taken() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let first = draw("laptop", &mut ChaCha20Rng::seed_from_u64(2));
        let mut seen = Vec::new();
        let chosen = choose("laptop", &mut rng, &mut |n| {
            seen.push(n.clone());
            Ok(n == &first)
        })
        .unwrap();
        assert_eq!(seen.len(), 2);
        assert_ne!(chosen, first);
        let err = choose("laptop", &mut rng, &mut |_| Ok(true)).unwrap_err();
        assert!(format!("{err:#}").contains("cannot find a free name"));
    }
}
