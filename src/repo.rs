//! The repository: what pairing reads from it, and the remote it adds.
//!
//! Everything goes through libgit2 (git2). [`plan_remote`] is pure: it turns
//! the peer and the existing remotes into the exact config entries to write.
//! [`add_remote`] applies a plan, and removes the remote again if any part of
//! it fails, so a repository never keeps half a pairing.

use std::path::{Path, PathBuf};

use git2::Repository;

/// The config variables recorded for a paired remote, under
/// `remote.<name>.`; `git pair list` and `remove` read them back.
pub mod keys {
    /// The ssh Host alias in ~/.ssh/git-pair/config.
    pub const ALIAS: &str = "pair-alias";
    /// The peer, as user@host:path.
    pub const PEER: &str = "pair-peer";
    /// The fingerprint of the peer's login key, allowed in authorized_keys.
    pub const PEER_KEY: &str = "pair-key";
    /// The fingerprints of the peer's pinned sshd host keys.
    pub const HOST_KEYS: &str = "pair-host-keys";
    /// The address of the peer's sshd at pairing time.
    pub const ADDRESS: &str = "pair-address";
    /// The private key this side logs in with.
    pub const IDENTITY: &str = "pair-identity";
    /// When the pairing was made (RFC 3339, UTC).
    pub const TIME: &str = "pair-time";
}

/// Why the repository could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    #[error("not in a git repository ({0}): run git pair inside the repository to pair, or `git init` one")]
    NotARepository(String),
    #[error("a remote named {0:?} already exists: choose another --name, or remove it with `git remote remove {0}`")]
    RemoteExists(String),
    #[error("{0:?} is not a valid remote name: use letters, digits, '-', '_' and '.'")]
    BadName(String),
    #[error("cannot read the repository config")]
    Config(#[source] git2::Error),
    #[error("cannot add remote {name:?}")]
    AddRemote {
        name: String,
        #[source]
        source: git2::Error,
    },
}

/// What pairing needs to know about the local repository.
#[derive(Debug, Clone)]
pub struct RepoInfo {
    /// The path the peer will fetch from: the work tree, or the repository
    /// itself when it is bare.
    pub path: PathBuf,
    pub bare: bool,
    pub annex_uuid: Option<String>,
    /// `pair.port`
    pub port: Option<u16>,
    /// `pair.scan`
    pub scan: Option<bool>,
    /// Every remote name in use.
    pub remotes: Vec<String>,
}

/// Opens the repository containing `cwd`, as git would.
pub fn open(cwd: &Path) -> Result<(Repository, RepoInfo), RepoError> {
    let repo = Repository::discover(cwd)
        .map_err(|e| RepoError::NotARepository(e.message().to_string()))?;
    let info = read_info(&repo)?;
    Ok((repo, info))
}

fn read_info(repo: &Repository) -> Result<RepoInfo, RepoError> {
    let bare = repo.is_bare();
    let path = match repo.workdir() {
        Some(w) if !bare => w,
        _ => repo.path(),
    };
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let config = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map_err(RepoError::Config)?;
    let remotes = repo
        .remotes()
        .map_err(RepoError::Config)?
        .iter()
        // Names that are not UTF-8 cannot collide with ours.
        .filter_map(|name| name.ok().flatten().map(str::to_string))
        .collect();
    Ok(RepoInfo {
        path,
        bare,
        annex_uuid: config
            .get_string("annex.uuid")
            .ok()
            .filter(|u| !u.is_empty()),
        port: config
            .get_i64("pair.port")
            .ok()
            .and_then(|p| u16::try_from(p).ok()),
        scan: config.get_bool("pair.scan").ok(),
        remotes,
    })
}

/// A remote to add: its name, URL and the pairing's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePlan {
    pub name: String,
    pub url: String,
    /// `(variable under remote.<name>., value)`.
    pub entries: Vec<(&'static str, String)>,
}

/// What the plan records about the peer.
#[derive(Debug, Clone)]
pub struct PairRecord {
    pub alias: String,
    pub peer: String,
    pub peer_path: String,
    pub peer_key: String,
    pub host_keys: Vec<String>,
    pub address: String,
    pub identity: String,
    pub time: String,
}

/// Plans the remote: `requested` (from `--name`) must be free; otherwise
/// the name derives from the peer's host name, with a numeric suffix on a
/// collision, as `git clone` does not but a person would.
pub fn plan_remote(
    existing: &[String],
    requested: Option<&str>,
    peer_host: &str,
    record: &PairRecord,
) -> Result<RemotePlan, RepoError> {
    let name = match requested {
        Some(n) => {
            check_name(n)?;
            if existing.iter().any(|e| e == n) {
                return Err(RepoError::RemoteExists(n.to_string()));
            }
            n.to_string()
        }
        None => {
            let base = name_from_host(peer_host);
            let mut name = base.clone();
            let mut n = 2;
            while existing.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            name
        }
    };
    let url = format!("{}:{}", record.alias, record.peer_path);
    let entries = vec![
        (keys::ALIAS, record.alias.clone()),
        (keys::PEER, record.peer.clone()),
        (keys::PEER_KEY, record.peer_key.clone()),
        (keys::HOST_KEYS, record.host_keys.join(" ")),
        (keys::ADDRESS, record.address.clone()),
        (keys::IDENTITY, record.identity.clone()),
        (keys::TIME, record.time.clone()),
    ];
    Ok(RemotePlan { name, url, entries })
}

/// Checks a `--name` before any network traffic.
pub fn check_requested_name(existing: &[String], requested: &str) -> Result<(), RepoError> {
    check_name(requested)?;
    if existing.iter().any(|e| e == requested) {
        return Err(RepoError::RemoteExists(requested.to_string()));
    }
    Ok(())
}

fn check_name(name: &str) -> Result<(), RepoError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && !name.ends_with(['.', '/'])
        && !name.contains("..")
        && !name.ends_with(".lock")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RepoError::BadName(name.to_string()))
    }
}

/// A remote name from a host name: its first label, lowercased, anything
/// but letters, digits, '-' and '_' turned into '-'. Never empty.
pub fn name_from_host(host: &str) -> String {
    let label = host.split('.').next().unwrap_or_default().to_lowercase();
    let mut name = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name: String = name.trim_matches('-').chars().take(32).collect();
    let name = name.trim_end_matches('-').to_string();
    if name.is_empty() {
        "peer".to_string()
    } else {
        name
    }
}

/// Adds the planned remote; on any failure the remote is removed again.
pub fn add_remote(repo: &Repository, plan: &RemotePlan) -> Result<(), RepoError> {
    let fail = |source| RepoError::AddRemote {
        name: plan.name.clone(),
        source,
    };
    repo.remote(&plan.name, &plan.url).map_err(fail)?;
    let written = repo.config().and_then(|mut config| {
        for (key, value) in &plan.entries {
            config.set_str(&format!("remote.{}.{key}", plan.name), value)?;
        }
        Ok(())
    });
    if let Err(e) = written {
        let _ = repo.remote_delete(&plan.name);
        return Err(fail(e));
    }
    Ok(())
}

/// Removes a remote added by [`add_remote`] (rollback).
pub fn remove_remote(repo: &Repository, name: &str) -> Result<(), RepoError> {
    repo.remote_delete(name)
        .map_err(|source| RepoError::AddRemote {
            name: name.to_string(),
            source,
        })
}

/// Seconds since the epoch as an RFC 3339 UTC timestamp.
pub fn rfc3339(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> PairRecord {
        PairRecord {
            alias: "git-pair-laptop-1a2b3c4d".into(),
            peer: "bob@laptop:/home/bob/notes".into(),
            peer_path: "/home/bob/notes".into(),
            peer_key: "SHA256:abc".into(),
            host_keys: vec!["SHA256:h1".into(), "SHA256:h2".into()],
            address: "10.0.0.2:22".into(),
            identity: "/home/alice/.ssh/git-pair/id_git-pair-laptop-1a2b3c4d".into(),
            time: "2026-11-26T10:00:00Z".into(),
        }
    }

    #[test]
    fn names_derive_from_the_host_and_avoid_collisions() {
        let existing = vec![
            "origin".to_string(),
            "laptop".to_string(),
            "laptop-2".to_string(),
        ];
        let plan = plan_remote(&existing, None, "Laptop.local", &record()).unwrap();
        assert_eq!(plan.name, "laptop-3");
        assert_eq!(plan.url, "git-pair-laptop-1a2b3c4d:/home/bob/notes");
        assert!(plan
            .entries
            .contains(&(keys::HOST_KEYS, "SHA256:h1 SHA256:h2".into())));
    }

    #[test]
    fn host_names_are_sanitized() {
        assert_eq!(
            name_from_host("Bob's MacBook Pro.local"),
            "bob-s-macbook-pro"
        );
        assert_eq!(name_from_host("\u{1b}[31mevil"), "31mevil");
        assert_eq!(name_from_host("..."), "peer");
        assert_eq!(name_from_host(""), "peer");
        assert_eq!(name_from_host("ünïcödé"), "n-c-d");
        assert!(name_from_host(&"x".repeat(100)).len() <= 32);
        for host in ["a b", "-x-", "x--y", "日本"] {
            assert!(check_name(&name_from_host(host)).is_ok(), "{host}");
        }
    }

    #[test]
    fn a_requested_name_must_be_free_and_valid() {
        let existing = vec!["origin".to_string()];
        assert!(matches!(
            plan_remote(&existing, Some("origin"), "x", &record()),
            Err(RepoError::RemoteExists(_))
        ));
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a/b"] {
            assert!(
                matches!(
                    check_requested_name(&existing, bad),
                    Err(RepoError::BadName(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            plan_remote(&existing, Some("server"), "x", &record())
                .unwrap()
                .name,
            "server"
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_687_322), "2026-11-26T10:02:02Z");
    }

    #[test]
    fn add_remote_writes_everything_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("git-pair-repo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = Repository::init(&dir).unwrap();
        let (_, info) = open(&dir).unwrap();
        assert!(!info.bare);
        assert_eq!(info.path, std::fs::canonicalize(&dir).unwrap());
        let plan = plan_remote(&info.remotes, None, "laptop", &record()).unwrap();
        add_remote(&repo, &plan).unwrap();
        let config = repo.config().unwrap().snapshot().unwrap();
        assert_eq!(config.get_string("remote.laptop.url").unwrap(), plan.url);
        assert_eq!(
            config.get_string("remote.laptop.pair-peer").unwrap(),
            "bob@laptop:/home/bob/notes"
        );
        assert_eq!(
            config.get_string("remote.laptop.fetch").unwrap(),
            "+refs/heads/*:refs/remotes/laptop/*"
        );
        let (_, info) = open(&dir).unwrap();
        assert_eq!(info.remotes, ["laptop"]);
        remove_remote(&repo, "laptop").unwrap();
        let config = repo.config().unwrap().snapshot().unwrap();
        assert!(config.get_string("remote.laptop.pair-peer").is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
