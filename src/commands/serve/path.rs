//! Where a requested path leads: resolved as git's `enter_repo` would, compared by canonical
//! path with the served repository.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::request::is_other_users_home;
use super::{Refusal, ServeError};

/// Turns the requested path into an absolute one, as git on this side would read it: a leading
/// `~` or `~/` is `home`, other relative paths are relative to `cwd` (the directory sshd started
/// us in, which is the home directory). `~otheruser` is refused. Nothing is checked against
/// the file system here; [`is_allowed`] does that.
pub fn resolve(requested: &str, home: &Path, cwd: &Path) -> Result<PathBuf, ServeError> {
    if is_other_users_home(requested) {
        return Err(ServeError::refused(Refusal::OtherUsersHome, requested));
    }
    if let Some(rest) = requested.strip_prefix('~') {
        // `~//etc` must stay under home: `Path::join` with an absolute path would replace it.
        return Ok(home.join(rest.trim_start_matches('/')));
    }
    let path = Path::new(requested);
    if path.is_absolute() {
        Ok(path.to_path_buf())
    } else {
        Ok(cwd.join(path))
    }
}

/// The canonical paths a request may resolve to: the repository itself and, for a repository
/// with a work tree, its `.git`.
pub(super) fn allowed_targets(repo: &Path) -> io::Result<(PathBuf, Vec<PathBuf>)> {
    let canonical = std::fs::canonicalize(repo)?;
    let mut targets = vec![canonical.clone()];
    if let Ok(git_dir) = std::fs::canonicalize(canonical.join(".git")) {
        targets.push(git_dir);
    }
    // A `.git` file (linked work tree, submodule) canonicalizes to itself: also a target.
    let git_entry = canonical.join(".git");
    if !targets.contains(&git_entry) && git_entry.is_file() {
        targets.push(git_entry);
    }
    Ok((canonical, targets))
}

/// Whether any path git's `enter_repo` would try for the request is one of `targets`.
pub(super) fn matches_targets(requested_resolved: &Path, targets: &[PathBuf]) -> bool {
    let mut base = requested_resolved.as_os_str().as_bytes();
    if base.is_empty() {
        return false;
    }
    // Like enter_repo: drop trailing slashes, but keep a lone "/".
    while base.len() > 1 && base.ends_with(b"/") {
        base = &base[..base.len() - 1];
    }
    // enter_repo's suffixes, in its order.
    ["/.git", "", ".git/.git", ".git"].iter().any(|suffix| {
        let mut candidate = base.to_vec();
        candidate.extend_from_slice(suffix.as_bytes());
        std::fs::canonicalize(OsStr::from_bytes(&candidate))
            .is_ok_and(|canonical| targets.contains(&canonical))
    })
}

/// Whether the resolved request names `repo`.
///
/// Tries the path as git's server side would (with `/.git`, nothing, `.git/.git` and `.git`
/// appended, trailing slashes ignored), canonicalizes each candidate that exists, and allows
/// the request only when one equals the canonical repository or its `.git` directory. Symlinks
/// are followed by canonicalization, so a link to the repository works and a link anywhere else
/// does not. A repository that does not exist allows nothing.
pub fn is_allowed(requested_resolved: &Path, repo: &Path) -> bool {
    match allowed_targets(repo) {
        Ok((_, targets)) => matches_targets(requested_resolved, &targets),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::serve::annex_to_git_path;
    use proptest::prelude::*;

    #[test]
    fn annex_tilde_paths_map_to_gits() {
        assert_eq!(annex_to_git_path("/~/repo"), "~/repo");
        assert_eq!(annex_to_git_path("/~"), "~");
        assert_eq!(annex_to_git_path("/~/"), "~/");
        assert_eq!(annex_to_git_path("/~bob/x"), "~bob/x");
        assert_eq!(annex_to_git_path("~/repo"), "~/repo");
        assert_eq!(annex_to_git_path("/home/u/~/x"), "/home/u/~/x");
        assert_eq!(annex_to_git_path("repo"), "repo");
        let home = Path::new("/home/bob");
        let r = |s: &str| resolve(annex_to_git_path(s), home, home).unwrap();
        assert_eq!(r("/~/repo"), PathBuf::from("/home/bob/repo"));
        assert_eq!(r("/~//etc"), PathBuf::from("/home/bob/etc"));
        assert_eq!(r("/srv/repo"), PathBuf::from("/srv/repo"));
        assert_eq!(r("repo"), PathBuf::from("/home/bob/repo"));
    }

    #[test]
    fn resolve_expands_home_and_relative_paths() {
        let home = Path::new("/home/bob");
        let cwd = Path::new("/home/bob");
        let r = |s: &str| resolve(s, home, cwd).unwrap();
        assert_eq!(r("~"), PathBuf::from("/home/bob"));
        assert_eq!(r("~/"), PathBuf::from("/home/bob/"));
        assert_eq!(r("~/notes"), PathBuf::from("/home/bob/notes"));
        assert_eq!(r("~//etc"), PathBuf::from("/home/bob/etc"));
        assert_eq!(r("/srv/x"), PathBuf::from("/srv/x"));
        assert_eq!(r("notes"), PathBuf::from("/home/bob/notes"));
        assert_eq!(
            resolve("notes", home, Path::new("/elsewhere")).unwrap(),
            PathBuf::from("/elsewhere/notes")
        );
        assert!(matches!(
            resolve("~alice/x", home, cwd),
            Err(ServeError::Refused {
                refusal: Refusal::OtherUsersHome,
                ..
            })
        ));
    }

    proptest! {
            #[test]
            fn resolve_never_escapes_home_for_tilde_paths(
    rest in "[/a-z.]{0,20}") {
                let home = Path::new("/home/bob");
                let p = resolve(&format!("~/{rest}"), home, Path::new("/")).unwrap();
                prop_assert!(p.starts_with(home));
            }
        }

    // --- is_allowed: real directories ---

    use crate::commands::serve::test_dir::{mkdirs, TempDir};

    fn allowed(request: impl AsRef<OsStr>, repo: &Path) -> bool {
        is_allowed(Path::new(request.as_ref()), repo)
    }

    #[test]
    fn work_tree_repo_accepts_its_own_path_forms() {
        let t = TempDir::new();
        let repo = t.0.join("notes");
        mkdirs(&repo.join(".git"));
        mkdirs(&repo.join("sub"));
        let r = repo.to_str().unwrap();
        for req in [
            r.to_owned(),
            format!("{r}/"),
            format!("{r}///"),
            format!("{r}/.git"),
            format!("{r}/.git/"),
            format!("{r}/sub/.."),
            format!("{}/./notes", t.0.display()),
        ] {
            assert!(allowed(&req, &repo), "{req}");
        }
        // --repo given with a trailing slash or as a non-canonical path works too.
        assert!(allowed(r, Path::new(&format!("{r}/"))));
        assert!(allowed(r, &repo.join("sub/..")));
    }

    #[test]
    fn work_tree_repo_refuses_everything_else() {
        let t = TempDir::new();
        let repo = t.0.join("notes");
        mkdirs(&repo.join(".git"));
        mkdirs(&repo.join("sub"));
        mkdirs(&t.0.join("other/.git"));
        let r = repo.to_str().unwrap();
        for req in [
            format!("{r}/sub"),
            format!("{r}/.."),
            format!("{r}.git"),
            format!("{r}/.git/objects"),
            format!("{r}x"),
            t.0.join("other").to_str().unwrap().to_owned(),
            t.0.to_str().unwrap().to_owned(),
            "/".to_owned(),
            "/etc".to_owned(),
            String::new(),
        ] {
            assert!(!allowed(&req, &repo), "{req:?}");
        }
    }

    #[test]
    fn bare_repo_accepts_with_and_without_dot_git() {
        let t = TempDir::new();
        let repo = t.0.join("notes.git");
        mkdirs(&repo.join("objects"));
        let base = t.0.join("notes");
        assert!(allowed(&repo, &repo));
        assert!(allowed(format!("{}/", repo.display()), &repo));
        assert!(allowed(&base, &repo), "git appends .git");
        assert!(allowed(format!("{}/", base.display()), &repo));
        assert!(!allowed(t.0.join("note"), &repo));
    }

    #[test]
    fn symlinks_count_only_by_where_they_lead() {
        let t = TempDir::new();
        let repo = t.0.join("notes");
        mkdirs(&repo.join(".git"));
        let secret = t.0.join("secret");
        mkdirs(&secret.join(".git"));
        std::os::unix::fs::symlink(&repo, t.0.join("link-to-notes")).unwrap();
        std::os::unix::fs::symlink(&secret, t.0.join("link-to-secret")).unwrap();
        // A link planted inside the served work tree (e.g. by a push with updateInstead).
        std::os::unix::fs::symlink(&secret, repo.join("evil")).unwrap();
        std::os::unix::fs::symlink(secret.join(".git"), repo.join("evil.git")).unwrap();
        assert!(allowed(t.0.join("link-to-notes"), &repo));
        assert!(allowed(
            format!("{}/", t.0.join("link-to-notes").display()),
            &repo
        ));
        assert!(!allowed(t.0.join("link-to-secret"), &repo));
        assert!(!allowed(repo.join("evil"), &repo));
        assert!(!allowed(repo.join("evil/.git"), &repo));
        assert!(!allowed(repo.join("evil.git"), &repo));
        assert!(!allowed(format!("{}/../secret", repo.display()), &repo));
        // Served through a link: --repo itself may be a symlink.
        assert!(allowed(&repo, &t.0.join("link-to-notes")));
    }

    #[test]
    fn git_file_work_tree_is_accepted() {
        let t = TempDir::new();
        let repo = t.0.join("wt");
        mkdirs(&repo);
        mkdirs(&t.0.join("main/.git/worktrees/wt"));
        std::fs::write(
            repo.join(".git"),
            format!("gitdir: {}/main/.git/worktrees/wt\n", t.0.display()),
        )
        .unwrap();
        assert!(allowed(&repo, &repo));
        assert!(allowed(repo.join(".git"), &repo));
        assert!(!allowed(t.0.join("main"), &repo));
    }

    #[test]
    fn missing_repo_allows_nothing() {
        let t = TempDir::new();
        let gone = t.0.join("gone");
        assert!(!allowed(&gone, &gone));
        assert!(!allowed("/", &gone));
    }
}
