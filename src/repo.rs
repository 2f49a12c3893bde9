//! The repository: what pairing reads from it, and the remote it adds.
//!
//! Everything is read through libgit2 (git2). [`plan_remote`] is pure: it turns
//! the peer and the existing remotes into the exact config entries to write.
//! [`append_remote`] (a new remote, pure, the text libgit2 would write, checked by
//! libgit2 reading it back) or [`plan_config`] (anything else: libgit2 does the edit
//! on a scratch copy) turn those into the new bytes of the repository's config, and
//! [`write_remote`] writes them
//! in one atomic, journaled step of the pairing's transaction, so a repository
//! never keeps half a pairing, not even after a SIGKILL (libgit2 writing the
//! real config would rewrite it once per variable). [`paired_remotes`] reads
//! the records back for `git pair list` and `git pair remove`.

use std::path::{Path, PathBuf};

use git2::Repository;

use crate::ssh_files;

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
    /// Every variable above, in the order `list` shows them.
    pub const ALL: [&str; 7] = [ALIAS, PEER, PEER_KEY, HOST_KEYS, ADDRESS, IDENTITY, TIME];
    /// git-annex's record of the remote's repository UUID.
    pub const ANNEX_UUID: &str = "annex-uuid";
    /// git-annex's cost of the remote.
    pub const ANNEX_COST: &str = "annex-cost";
}

/// The `annex-cost` of a paired remote. git-annex's own LAN pairing used 175: cheaper than
/// an ordinary ssh remote (200), dearer than a local one (100).
pub const ANNEX_COST: &str = "175";

/// Why the repository could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RepoError {
    #[error("not in a git repository ({0}): run git pair inside the repository to pair, or `git init` one")]
    NotARepository(String),
    #[error("a remote named {0:?} already exists: choose another --name, or remove it with `git remote remove {0}`")]
    RemoteExists(String),
    #[error("remote {name:?} is already paired (with {peer}): pairing those two repositories again keeps its name, so leave out --name; to pair with another peer under this name, `git pair remove {name}` first")]
    PairingExists { name: String, peer: String },
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
    #[error("cannot move the remote-tracking branches of remote {name:?}: `git fetch {name}` makes them again")]
    RenameRefs {
        name: String,
        #[source]
        source: git2::Error,
    },
    #[error("cannot plan the repository config in the scratch directory {}", .path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the remote into the repository config")]
    Write(#[from] ssh_files::Error),
    #[error("cannot remove remote {name:?}: try `git remote remove {name}`")]
    RemoveRemote {
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
    /// `pair.sshConfig`: false pairs without editing ~/.ssh/config, like --no-ssh-config.
    pub ssh_config: Option<bool>,
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
    let remotes = remote_names(repo)?;
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
        ssh_config: config.get_bool("pair.sshConfig").ok(),
        remotes,
    })
}

/// Every remote name in use, as the config says now.
pub fn remote_names(repo: &Repository) -> Result<Vec<String>, RepoError> {
    Ok(repo
        .remotes()
        .map_err(RepoError::Config)?
        .iter()
        // Names that are not UTF-8 cannot collide with ours.
        .filter_map(|name| name.ok().flatten().map(str::to_string))
        .collect())
}

/// A remote to add: its name, URL and the pairing's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemotePlan {
    pub name: String,
    pub url: String,
    /// `(variable under remote.<name>., value)`.
    pub entries: Vec<(&'static str, String)>,
    /// Set only where the remote has no value yet, so that a re-pair keeps the user's choice.
    pub defaults: Vec<(&'static str, String)>,
    /// An earlier remote of the same pairing to update in place (renamed to `name` if that
    /// differs), keeping its fetch settings and remote-tracking branches.
    pub replaces: Option<String>,
}

/// A remote git-pair set up, as recorded in the repository's config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PairedRemote {
    pub name: String,
    pub url: Option<String>,
    pub alias: String,
    pub peer: Option<String>,
    pub peer_key: Option<String>,
    pub host_keys: Vec<String>,
    pub address: Option<String>,
    pub identity: Option<String>,
    pub time: Option<String>,
    pub annex_uuid: Option<String>,
}

/// Every remote with a `pair-alias`, in config order.
pub fn paired_remotes(repo: &Repository) -> Result<Vec<PairedRemote>, RepoError> {
    let config = repo
        .config()
        .and_then(|mut c| c.snapshot())
        .map_err(RepoError::Config)?;
    let names = repo.remotes().map_err(RepoError::Config)?;
    let get = |name: &str, key: &str| {
        config
            .get_string(&format!("remote.{name}.{key}"))
            .ok()
            .filter(|v| !v.is_empty())
    };
    Ok(names
        .iter()
        .filter_map(|n| n.ok().flatten())
        .filter_map(|name| {
            Some(PairedRemote {
                name: name.to_string(),
                url: get(name, "url"),
                alias: get(name, keys::ALIAS)?,
                peer: get(name, keys::PEER),
                peer_key: get(name, keys::PEER_KEY),
                host_keys: get(name, keys::HOST_KEYS)
                    .map(|h| h.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default(),
                address: get(name, keys::ADDRESS),
                identity: get(name, keys::IDENTITY),
                time: get(name, keys::TIME),
                annex_uuid: get(name, keys::ANNEX_UUID),
            })
        })
        .collect())
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
    /// The peer's git-annex UUID, if it sent one.
    pub annex_uuid: Option<String>,
    /// Whether this repository is a git-annex repository.
    pub local_annex: bool,
}

/// Plans the remote: `requested` (from `--name`) must be free; otherwise
/// the name derives from the peer's host name, with a numeric suffix on a
/// collision, as `git clone` does not but a person would.
///
/// `replaces` names an earlier remote of the same two repositories: a re-pair updates it in
/// place and keeps its name, unless `requested` gives another.
pub fn plan_remote(
    existing: &[String],
    requested: Option<&str>,
    peer_host: &str,
    record: &PairRecord,
    replaces: Option<&str>,
) -> Result<RemotePlan, RepoError> {
    let name = match (requested, replaces) {
        (Some(n), _) => {
            check_name(n)?;
            if existing.iter().any(|e| e == n) && replaces != Some(n) {
                return Err(RepoError::RemoteExists(n.to_string()));
            }
            n.to_string()
        }
        (None, Some(old)) => old.to_string(),
        (None, None) => {
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
    let mut entries = entries;
    let mut defaults = Vec::new();
    // Only between two git-annex repositories: a plain repository has no use for annex
    // settings, and git-annex finds out about a plain peer by itself.
    if let (Some(uuid), true) = (&record.annex_uuid, record.local_annex) {
        entries.push((keys::ANNEX_UUID, uuid.clone()));
        defaults.push((keys::ANNEX_COST, ANNEX_COST.to_string()));
    }
    Ok(RemotePlan {
        name,
        url,
        entries,
        defaults,
        replaces: replaces.map(str::to_string),
    })
}

/// Checks a `--name` before any network traffic: it must be free. The name of an existing
/// pairing gets its own message, since a re-pair keeps that name without `--name`.
pub fn check_requested_name(
    existing: &[String],
    paired: &[PairedRemote],
    requested: &str,
) -> Result<(), RepoError> {
    check_name(requested)?;
    if let Some(p) = paired.iter().find(|p| p.name == requested) {
        return Err(RepoError::PairingExists {
            name: requested.to_string(),
            // From the peer at pairing time: it reaches a terminal.
            peer: crate::sanitize::for_terminal(p.peer.as_deref().unwrap_or("?")).into_owned(),
        });
    }
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

/// The file that holds this repository's own settings, where its remotes live (for a linked
/// worktree, the main repository's).
pub fn config_path(repo: &Repository) -> PathBuf {
    repo.commondir().join("config")
}

/// Writes `plan` into the repository's config as one step of the transaction `tx`: the new
/// bytes are planned from the current ones (a new remote by [`append_remote`], checked by
/// libgit2 reading them back; anything else by [`plan_config`] on a scratch copy), written
/// under git's `config.lock`, and replace the file in one atomic rename, journaled (so a crash
/// is undone by the next run, byte for byte). A rename of the remote's remote-tracking
/// branches is left to [`rename_tracking_refs`], after the commit.
pub fn write_remote(
    tx: &mut ssh_files::Applied,
    repo: &Repository,
    plan: &RemotePlan,
) -> Result<(), RepoError> {
    let path = config_path(repo);
    let old = tx.read(&path)?;
    let old: &[u8] = old.as_deref().map_or(&[], |o| o.as_slice());
    // Values of the remote set at another level (the user's global config) count as set, as
    // they do when libgit2 plans on a scratch copy.
    let snapshot = repo.config().and_then(|mut c| c.snapshot()).ok();
    let preset = |key: &str| {
        snapshot
            .as_ref()
            .is_some_and(|s| s.get_string(&format!("remote.{}.{key}", plan.name)).is_ok())
    };
    if let Some(new) = append_remote(old, plan, &preset).filter(|new| reads_back(old, new, plan)) {
        return tx.update_git_file(&path, 0o644, |_| Ok::<_, RepoError>(Some(new)));
    }
    let scratch = tx.scratch_dir("repo-config")?;
    tx.update_git_file(&path, 0o644, |old| {
        plan_config(old.unwrap_or_default(), plan, scratch.path()).map(Some)
    })
}

/// The config `old` with the new remote of `plan` added at its end, byte for byte as libgit2
/// writes it (`git_remote_create`, then one `git_config_set_string` per entry): a
/// `[remote "<name>"]` section with the url, the default fetch refspec, the entries, and each
/// default that `preset` (is it set at another level?) does not name; values quoted and
/// escaped the way libgit2 does. `None` where this does not apply and the config must be
/// planned by libgit2 itself ([`plan_config`]): a re-pair (an earlier remote is updated in
/// place), a config that names the remote already, a last line that a backslash continues,
/// or a value git cannot hold (a NUL byte). Pure, so that the common case needs no scratch
/// repository: on a loaded disk, creating its files was most of a pairing's setup.
pub fn append_remote(
    old: &[u8],
    plan: &RemotePlan,
    preset: &dyn Fn(&str) -> bool,
) -> Option<Vec<u8>> {
    if plan.replaces.is_some() || contains(old, format!("\"{}\"", plan.name).as_bytes()) {
        return None;
    }
    // A backslash at the end of the last line would continue it into ours.
    let last_line = old.strip_suffix(b"\n").unwrap_or(old);
    let last_line = last_line.strip_suffix(b"\r").unwrap_or(last_line);
    if last_line.ends_with(b"\\") {
        return None;
    }
    let fetch = format!("+refs/heads/*:refs/remotes/{}/*", plan.name);
    let mut values: Vec<(&str, &str)> = vec![("url", &plan.url), ("fetch", &fetch)];
    values.extend(plan.entries.iter().map(|(k, v)| (*k, v.as_str())));
    values.extend(
        plan.defaults
            .iter()
            .filter(|(k, _)| !preset(k))
            .map(|(k, v)| (*k, v.as_str())),
    );
    if values.iter().any(|(_, v)| v.contains('\0')) || plan.name.contains('\0') {
        return None;
    }
    let mut out = old.to_vec();
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    out.extend_from_slice(format!("[remote \"{}\"]\n", escape_value(&plan.name)).as_bytes());
    for (key, value) in values {
        let quote = if value.is_empty()
            || value.starts_with(' ')
            || value.ends_with(' ')
            || value.contains([';', '#'])
        {
            "\""
        } else {
            ""
        };
        out.extend_from_slice(
            format!("\t{key} = {quote}{}{quote}\n", escape_value(value)).as_bytes(),
        );
    }
    Some(out)
}

/// libgit2's escaping of a config value (and of a subsection name).
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether libgit2, reading `new`, finds exactly the variables of `old`, in order, then the
/// new remote's url, fetch refspec and entries of `plan`, and no other variable of that
/// remote: the check that [`append_remote`]'s text means what libgit2's own edit would. The
/// bytes are read from an in-memory file, so that nothing touches the disk. Any doubt (an
/// error, a config libgit2 cannot read) says no, and the config is planned by libgit2 itself.
fn reads_back(old: &[u8], new: &[u8], plan: &RemotePlan) -> bool {
    let (Some(before), Some(after)) = (config_entries(old), config_entries(new)) else {
        return false;
    };
    let ours = format!("remote.{}.", plan.name);
    if before.iter().any(|(name, _)| name.starts_with(&ours)) {
        return false;
    }
    let Some(added) = after.strip_prefix(before.as_slice()) else {
        return false;
    };
    let fetch = format!("+refs/heads/*:refs/remotes/{}/*", plan.name);
    let mut wanted: Vec<(String, String)> = vec![
        (format!("{ours}url"), plan.url.clone()),
        (format!("{ours}fetch"), fetch),
    ];
    wanted.extend(
        plan.entries
            .iter()
            .map(|(k, v)| (format!("{ours}{k}"), v.clone())),
    );
    // A default is either added, or left out because it is set elsewhere.
    let (known, rest) = added.split_at(wanted.len().min(added.len()));
    known == wanted.as_slice()
        && rest.len() <= plan.defaults.len()
        && rest.iter().all(|(name, value)| {
            plan.defaults
                .iter()
                .any(|(k, v)| *name == format!("{ours}{k}") && v == value)
        })
}

/// Every variable of the config text `bytes`, in order, as libgit2 reads it (names with the
/// section and key lowercased); `None` if it cannot.
fn config_entries(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    use nix::sys::memfd::{memfd_create, MFdFlags};
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut file =
        std::fs::File::from(memfd_create("git-pair-config", MFdFlags::MFD_CLOEXEC).ok()?);
    file.write_all(bytes).ok()?;
    let config =
        git2::Config::open(Path::new(&format!("/proc/self/fd/{}", file.as_raw_fd()))).ok()?;
    let mut out = Vec::new();
    let mut readable = true;
    config
        .entries(None)
        .ok()?
        .for_each(|e| match (e.name(), e.value()) {
            (Ok(n), Ok(v)) => out.push((n.to_string(), v.to_string())),
            _ => readable = false,
        })
        .ok()?;
    readable.then_some(out)
}

/// The repository config `old` (its bytes) with `plan` applied: libgit2 adds, renames or updates
/// the remote in a copy of it, in a scratch repository at `scratch` (an empty directory), so
/// that the result is exactly what libgit2 would have written, but is written to the real
/// config in one step. A new remote gets its url and default fetch refspec; a re-pair updates
/// the old remote in place (renamed to the plan's name if that differs, which also moves its
/// `branch.*.remote` settings), keeping the user's own settings. On any error nothing is
/// written anywhere.
///
/// Values read while planning (whether `annex-cost` is set) come from the copy and the user's
/// global and system config; an `include.path` relative to the repository is not followed.
pub fn plan_config(old: &[u8], plan: &RemotePlan, scratch: &Path) -> Result<Vec<u8>, RepoError> {
    let io = |source| RepoError::Scratch {
        path: scratch.to_path_buf(),
        source,
    };
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(true).external_template(false).no_reinit(true);
    drop(Repository::init_opts(scratch, &opts).map_err(RepoError::Config)?);
    let config = scratch.join("config");
    std::fs::write(&config, old).map_err(io)?;
    let repo = Repository::open_bare(scratch).map_err(RepoError::Config)?;
    change_remote(&repo, plan)?;
    drop(repo);
    std::fs::read(&config).map_err(io)
}

/// Adds the planned remote, or updates the one it replaces, in `repo`.
fn change_remote(repo: &Repository, plan: &RemotePlan) -> Result<(), RepoError> {
    let fail = |source| RepoError::AddRemote {
        name: plan.name.clone(),
        source,
    };
    match &plan.replaces {
        None => {
            repo.remote(&plan.name, &plan.url).map_err(fail)?;
        }
        Some(old) if *old != plan.name => {
            repo.remote_rename(old, &plan.name).map_err(fail)?;
        }
        Some(_) => {}
    }
    set_entries(repo, plan).map_err(fail)
}

fn set_entries(repo: &Repository, plan: &RemotePlan) -> Result<(), git2::Error> {
    let mut config = repo.config()?;
    let current = |config: &mut git2::Config, key: &str| {
        config
            .snapshot()
            .ok()
            .and_then(|snap| snap.get_string(key).ok())
    };
    if plan.replaces.is_some() {
        config.set_str(&format!("remote.{}.url", plan.name), &plan.url)?;
    }
    for (key, value) in &plan.entries {
        config.set_str(&format!("remote.{}.{key}", plan.name), value)?;
    }
    for (key, value) in &plan.defaults {
        let key = format!("remote.{}.{key}", plan.name);
        if current(&mut config, &key).is_none() {
            config.set_str(&key, value)?;
        }
    }
    Ok(())
}

/// After a re-pair renamed remote `old` to `new` (in the config, through [`write_remote`]):
/// moves its remote-tracking branches `refs/remotes/<old>/*` to `refs/remotes/<new>/*`, as
/// `git remote rename` does, a symbolic `HEAD` among them pointing into the new place. A ref
/// whose new name is taken stays where it is. They are only a cache of the peer's branches
/// (the next fetch makes them again), so this runs after the commit, outside the transaction.
pub fn rename_tracking_refs(repo: &Repository, old: &str, new: &str) -> Result<(), RepoError> {
    let fail = |source| RepoError::RenameRefs {
        name: new.to_string(),
        source,
    };
    let old_prefix = format!("refs/remotes/{old}/");
    let new_prefix = format!("refs/remotes/{new}/");
    let names: Vec<String> = repo
        .references_glob(&format!("{old_prefix}*"))
        .map_err(fail)?
        .names()
        .filter_map(|n| n.ok().map(str::to_string))
        .collect();
    for name in names {
        let Some(rest) = name.strip_prefix(&old_prefix) else {
            continue;
        };
        let target = format!("{new_prefix}{rest}");
        if repo.find_reference(&target).is_ok() {
            continue;
        }
        let mut reference = repo.find_reference(&name).map_err(fail)?;
        let message = format!("remote: renamed {name} to {target}");
        let mut renamed = reference.rename(&target, false, &message).map_err(fail)?;
        let symbolic = renamed.symbolic_target().ok().flatten().map(str::to_string);
        if let Some(points_to) = symbolic.and_then(|t| {
            t.strip_prefix(&old_prefix)
                .map(|rest| format!("{new_prefix}{rest}"))
        }) {
            renamed
                .symbolic_set_target(&points_to, &message)
                .map_err(fail)?;
        }
    }
    Ok(())
}

/// Deletes a remote with its config section and remote-tracking branches, as
/// `git remote remove` does. A remote that is already gone is not an error.
pub fn remove_remote(repo: &Repository, name: &str) -> Result<(), RepoError> {
    match repo.remote_delete(name) {
        Ok(()) => Ok(()),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(()),
        Err(source) => Err(RepoError::RemoveRemote {
            name: name.to_string(),
            source,
        }),
    }
}

/// Names "this repository paired with that peer repository" (`peer` is user@host:path) in
/// authorized_keys and the ssh config, so that pairing the same two again replaces the old
/// pairing, and `git pair remove` finds its line.
pub fn pair_marker(local: &Path, peer: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(local.as_os_str().as_encoded_bytes());
    h.update([0]);
    h.update(peer.as_bytes());
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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
            annex_uuid: None,
            local_annex: false,
        }
    }

    fn temp_repo(tag: &str) -> (PathBuf, Repository) {
        let dir = std::env::temp_dir().join(format!("git-pair-repo-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let repo = Repository::init(&dir).unwrap();
        (dir, repo)
    }

    fn get(repo: &Repository, key: &str) -> Option<String> {
        repo.config()
            .unwrap()
            .snapshot()
            .unwrap()
            .get_string(key)
            .ok()
    }

    #[test]
    fn names_derive_from_the_host_and_avoid_collisions() {
        let existing = vec![
            "origin".to_string(),
            "laptop".to_string(),
            "laptop-2".to_string(),
        ];
        let plan = plan_remote(&existing, None, "Laptop.local", &record(), None).unwrap();
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
            plan_remote(&existing, Some("origin"), "x", &record(), None),
            Err(RepoError::RemoteExists(_))
        ));
        for bad in ["", "-x", "a..b", "a b", "x.lock", "a/b"] {
            assert!(
                matches!(
                    check_requested_name(&existing, &[], bad),
                    Err(RepoError::BadName(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            plan_remote(&existing, Some("server"), "x", &record(), None)
                .unwrap()
                .name,
            "server"
        );
    }

    #[test]
    fn markers_are_stable_and_distinct() {
        let a = pair_marker(Path::new("/home/alice/r"), "bob@laptop:/home/bob/r");
        assert_eq!(
            a,
            pair_marker(Path::new("/home/alice/r"), "bob@laptop:/home/bob/r")
        );
        assert_ne!(
            a,
            pair_marker(Path::new("/home/alice/s"), "bob@laptop:/home/bob/r")
        );
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_687_322), "2026-11-26T10:02:02Z");
    }

    #[test]
    fn a_requested_name_of_a_pairing_says_how_to_repair() {
        let existing = vec!["laptop".to_string()];
        let paired = [PairedRemote {
            name: "laptop".into(),
            peer: Some("bob@laptop:/r".into()),
            ..PairedRemote::default()
        }];
        let err = check_requested_name(&existing, &paired, "laptop").unwrap_err();
        assert!(matches!(err, RepoError::PairingExists { .. }));
        assert!(err.to_string().contains("leave out --name"), "{err}");
    }

    #[test]
    fn annex_settings_only_between_two_annex_repositories() {
        let mut r = record();
        r.annex_uuid = Some("0b1c2d3e-0000-4000-8000-000000000001".into());
        let plain = plan_remote(&[], None, "laptop", &r, None).unwrap();
        assert!(!plain.entries.iter().any(|(k, _)| *k == keys::ANNEX_UUID));
        assert!(plain.defaults.is_empty());
        r.local_annex = true;
        let annex = plan_remote(&[], None, "laptop", &r, None).unwrap();
        assert!(annex.entries.contains(&(
            keys::ANNEX_UUID,
            "0b1c2d3e-0000-4000-8000-000000000001".into()
        )));
        assert_eq!(annex.defaults, [(keys::ANNEX_COST, "175".to_string())]);
    }

    #[test]
    fn a_repair_keeps_the_old_name_unless_another_is_asked_for() {
        let existing = vec!["laptop".to_string(), "other".to_string()];
        let plan = plan_remote(&existing, None, "laptop", &record(), Some("laptop")).unwrap();
        assert_eq!(
            (plan.name.as_str(), plan.replaces.as_deref()),
            ("laptop", Some("laptop"))
        );
        let plan =
            plan_remote(&existing, Some("desk"), "laptop", &record(), Some("laptop")).unwrap();
        assert_eq!(plan.name, "desk");
        assert!(matches!(
            plan_remote(
                &existing,
                Some("other"),
                "laptop",
                &record(),
                Some("laptop")
            ),
            Err(RepoError::RemoteExists(_))
        ));
        assert!(plan_remote(
            &existing,
            Some("laptop"),
            "laptop",
            &record(),
            Some("laptop")
        )
        .is_ok());
    }

    /// What `write_remote` does, without a transaction: plans on a scratch copy, then writes.
    fn apply(repo: &Repository, plan: &RemotePlan) {
        let path = config_path(repo);
        let old = std::fs::read(&path).unwrap();
        let scratch = crate::ssh_files::atomic::TempDir::new(repo.path(), "t").unwrap();
        let new = plan_config(&old, plan, scratch.path()).unwrap();
        drop(scratch);
        std::fs::write(&path, new).unwrap();
    }

    #[test]
    fn a_planned_remote_has_everything_and_reads_back() {
        let (dir, repo) = temp_repo("add");
        let (_, info) = open(&dir).unwrap();
        assert!(!info.bare);
        assert_eq!(info.path, std::fs::canonicalize(&dir).unwrap());
        let before = std::fs::read(config_path(&repo)).unwrap();
        let plan = plan_remote(&info.remotes, None, "laptop", &record(), None).unwrap();
        apply(&repo, &plan);
        let after = std::fs::read(config_path(&repo)).unwrap();
        assert!(
            after.starts_with(&before),
            "the old lines stay as they were"
        );
        assert_eq!(get(&repo, "remote.laptop.url").unwrap(), plan.url);
        assert_eq!(
            get(&repo, "remote.laptop.pair-peer").unwrap(),
            "bob@laptop:/home/bob/notes"
        );
        assert_eq!(
            get(&repo, "remote.laptop.fetch").unwrap(),
            "+refs/heads/*:refs/remotes/laptop/*"
        );
        let (_, info) = open(&dir).unwrap();
        assert_eq!(info.remotes, ["laptop"]);
        assert_eq!(remote_names(&repo).unwrap(), ["laptop"]);
        let listed = paired_remotes(&repo).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].alias, "git-pair-laptop-1a2b3c4d");
        assert_eq!(listed[0].host_keys, ["SHA256:h1", "SHA256:h2"]);
        // Nothing but the config changed: the scratch repository is gone.
        let names: Vec<String> = std::fs::read_dir(repo.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
        remove_remote(&repo, "laptop").unwrap();
        remove_remote(&repo, "laptop").unwrap();
        assert!(get(&repo, "remote.laptop.pair-peer").is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// The config libgit2 plans for `plan` from `old`, on a scratch copy.
    fn by_libgit2(old: &[u8], plan: &RemotePlan) -> Vec<u8> {
        let dir = std::env::temp_dir().join(format!(
            "git-pair-scratch-{}-{}",
            std::process::id(),
            rand_core::RngCore::next_u64(&mut rand_core::OsRng)
        ));
        std::fs::create_dir(&dir).unwrap();
        let new = plan_config(old, plan, &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        new
    }

    #[test]
    fn a_new_remote_is_appended_byte_for_byte_as_libgit2_writes_it() {
        let olds: [&[u8]; 6] = [
            b"",
            b"[core]\n\tbare = false\n",
            b"[core]\n\tbare = false",
            b"[core]\n\tbare = false\n# a comment at the end\n\n",
            b"[remote \"other\"]\n\turl = x:y\n[branch \"main\"]\n\tremote = other\n",
            b"[core]\r\n\tbare = false\r\n",
        ];
        let odd = [
            "/home/bob/my notes",
            " leading space",
            "trailing space ",
            "semi;colon",
            "hash#tag",
            "quote\"and\\backslash",
            "tab\tand\u{8}backspace",
            "new\nline",
            "ünïcode",
            "",
        ];
        for old in olds {
            for (i, value) in odd.iter().enumerate() {
                let mut r = record();
                r.peer_path = value.to_string();
                r.peer = format!("bob@laptop:{value}");
                r.annex_uuid = (i % 2 == 0).then(|| "0b1c2d3e-0000-4000-8000-000000000001".into());
                r.local_annex = true;
                let plan = plan_remote(&["other".into()], None, "laptop", &r, None).unwrap();
                let ours = append_remote(old, &plan, &|_| false).expect("a new remote");
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&by_libgit2(old, &plan)),
                    "old {:?}, value {value:?}",
                    String::from_utf8_lossy(old)
                );
                assert!(reads_back(old, &ours, &plan), "{value:?}");
            }
        }
    }

    #[test]
    fn a_default_set_elsewhere_is_left_out_and_the_read_back_accepts_that() {
        let mut r = record();
        r.annex_uuid = Some("0b1c2d3e-0000-4000-8000-000000000001".into());
        r.local_annex = true;
        let plan = plan_remote(&[], None, "laptop", &r, None).unwrap();
        let with = append_remote(b"", &plan, &|_| false).unwrap();
        let without = append_remote(b"", &plan, &|k| k == keys::ANNEX_COST).unwrap();
        assert!(String::from_utf8_lossy(&with).contains("annex-cost = 175"));
        assert!(!String::from_utf8_lossy(&without).contains("annex-cost"));
        assert!(reads_back(b"", &with, &plan) && reads_back(b"", &without, &plan));
    }

    #[test]
    fn libgit2_plans_what_the_append_cannot() {
        let plan = plan_remote(&[], None, "laptop", &record(), None).unwrap();
        // A re-pair updates the earlier remote in place.
        let mut repair = plan.clone();
        repair.replaces = Some("laptop".into());
        assert!(append_remote(b"", &repair, &|_| false).is_none());
        // A config that names the remote already, in a section of its own or not.
        assert!(append_remote(b"[remote \"laptop\"]\n\tfetch = x\n", &plan, &|_| false).is_none());
        // The last line goes on into the next.
        assert!(append_remote(b"[core]\n\tx = a\\\n", &plan, &|_| false).is_none());
        assert!(append_remote(b"[core]\n\tx = a\\", &plan, &|_| false).is_none());
        // The deprecated [remote.laptop] spelling is caught by the read back.
        let old = b"[remote.laptop]\n\tfetch = x\n";
        let new = append_remote(old, &plan, &|_| false).unwrap();
        assert!(!reads_back(old, &new, &plan));
        // Text that does not say what it should.
        assert!(!reads_back(
            b"",
            b"[remote \"laptop\"]\n\turl = elsewhere\n",
            &plan
        ));
        assert!(!reads_back(b"[core\n", &new, &plan));
    }

    #[test]
    fn write_remote_writes_a_new_remote_as_libgit2_would() {
        let (dir, repo) = temp_repo("append");
        let home = dir.join("home");
        std::fs::create_dir(&home).unwrap();
        let ssh = crate::ssh_files::SshDir::new(&home);
        let plan = plan_remote(&[], None, "laptop", &record(), None).unwrap();
        let before = std::fs::read(config_path(&repo)).unwrap();
        let mut tx = crate::ssh_files::try_lock(&ssh, "test").unwrap().unwrap();
        write_remote(&mut tx, &repo, &plan).unwrap();
        tx.commit().unwrap();
        let after = std::fs::read(config_path(&repo)).unwrap();
        assert_eq!(after, by_libgit2(&before, &plan));
        assert_eq!(get(&repo, "remote.laptop.url").unwrap(), plan.url);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_taken_name_fails_the_plan_and_writes_nothing() {
        let (dir, repo) = temp_repo("taken");
        let plan = plan_remote(&[], None, "laptop", &record(), None).unwrap();
        apply(&repo, &plan);
        let old = std::fs::read(config_path(&repo)).unwrap();
        let scratch = crate::ssh_files::atomic::TempDir::new(repo.path(), "t").unwrap();
        let err = plan_config(&old, &plan, scratch.path()).unwrap_err();
        assert!(matches!(err, RepoError::AddRemote { .. }), "{err}");
        assert_eq!(std::fs::read(config_path(&repo)).unwrap(), old);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_repair_with_a_new_name_keeps_user_settings_and_moves_tracking_branches() {
        let (dir, repo) = temp_repo("repair");
        let mut first = record();
        first.annex_uuid = Some("0b1c2d3e-0000-4000-8000-000000000001".into());
        first.local_annex = true;
        let plan = plan_remote(&[], None, "laptop", &first, None).unwrap();
        apply(&repo, &plan);
        let mut config = repo.config().unwrap();
        config.set_str("remote.laptop.annex-cost", "50").unwrap();
        config
            .set_str("remote.laptop.pushurl", "elsewhere:x")
            .unwrap();
        config.set_str("branch.main.remote", "laptop").unwrap();
        // A remote-tracking branch and its symbolic HEAD.
        let sig = git2::Signature::now("t", "t@e.invalid").unwrap();
        let tree = repo.treebuilder(None).unwrap().write().unwrap();
        let tree = repo.find_tree(tree).unwrap();
        let commit = repo.commit(None, &sig, &sig, "c", &tree, &[]).unwrap();
        repo.reference("refs/remotes/laptop/main", commit, false, "t")
            .unwrap();
        repo.reference_symbolic(
            "refs/remotes/laptop/HEAD",
            "refs/remotes/laptop/main",
            false,
            "t",
        )
        .unwrap();

        let mut second = first.clone();
        second.alias = "git-pair-laptop-99999999".into();
        second.address = "10.0.0.9:22".into();
        let names = vec!["laptop".to_string()];
        let plan = plan_remote(&names, Some("desk"), "laptop", &second, Some("laptop")).unwrap();
        apply(&repo, &plan);
        rename_tracking_refs(&repo, "laptop", "desk").unwrap();
        assert_eq!(
            get(&repo, "remote.desk.url").unwrap(),
            "git-pair-laptop-99999999:/home/bob/notes"
        );
        assert_eq!(get(&repo, "remote.desk.annex-cost").unwrap(), "50");
        assert_eq!(get(&repo, "remote.desk.pushurl").unwrap(), "elsewhere:x");
        assert_eq!(
            get(&repo, "remote.desk.fetch").unwrap(),
            "+refs/heads/*:refs/remotes/desk/*"
        );
        assert_eq!(get(&repo, "branch.main.remote").unwrap(), "desk");
        assert!(get(&repo, "remote.laptop.url").is_none());
        assert_eq!(
            repo.refname_to_id("refs/remotes/desk/main").unwrap(),
            commit
        );
        assert!(repo.find_reference("refs/remotes/laptop/main").is_err());
        let head = repo.find_reference("refs/remotes/desk/HEAD").unwrap();
        assert_eq!(
            head.symbolic_target().unwrap(),
            Some("refs/remotes/desk/main")
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_repair_in_place_changes_only_the_pairing_records() {
        let (dir, repo) = temp_repo("repair-in-place");
        let plan = plan_remote(&[], None, "laptop", &record(), None).unwrap();
        apply(&repo, &plan);
        let mut config = repo.config().unwrap();
        config.set_str("remote.laptop.pushurl", "mine:x").unwrap();
        let before = settings(&repo);

        let mut second = record();
        second.alias = "git-pair-laptop-99999999".into();
        let names = vec!["laptop".to_string()];
        let plan = plan_remote(&names, None, "laptop", &second, Some("laptop")).unwrap();
        assert_eq!(plan.name, "laptop");
        apply(&repo, &plan);
        let after = settings(&repo);
        let changed: Vec<&str> = after
            .iter()
            .filter(|kv| !before.contains(kv))
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(changed, ["remote.laptop.pair-alias", "remote.laptop.url"]);
        assert_eq!(after.len(), before.len());
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// Every `name=value` of the repository's own config, sorted.
    fn settings(repo: &Repository) -> Vec<(String, String)> {
        let config = repo
            .config()
            .unwrap()
            .open_level(git2::ConfigLevel::Local)
            .unwrap();
        let mut out = Vec::new();
        let mut entries = config.entries(None).unwrap();
        while let Some(e) = entries.next() {
            let e = e.unwrap();
            out.push((
                e.name().unwrap().to_string(),
                e.value().unwrap_or_default().to_string(),
            ));
        }
        out.sort();
        out
    }
}
