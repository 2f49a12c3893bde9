//! git-pair's hooks (the scripts in the project's `git-hooks/` folder, built into the binary)
//! and their installation next to the hooks a user already has.
//!
//! A hook a user already has is never overwritten: it is renamed to `<hook>.git-pair-user`
//! (a rename keeps its bytes, mode, owner, and a symlink stays a symlink), and git-pair's hook,
//! which runs it first and exits with its status, takes its place. Uninstalling removes
//! git-pair's hook and renames the user's back, so that what was there before is there again,
//! byte for byte. A hook git-pair's installer recognises as its own is rewritten in place, so
//! installing twice changes nothing; one that was edited since is left alone, with a message.
//!
//! [`plan_install`] and [`plan_uninstall`] are pure: from what is in the hooks directory (the
//! bytes of each hook and of its saved user hook) to the list of renames, writes and removals;
//! [`read_slots`] and [`apply`] are the I/O around them.

use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The hooks git-pair installs, with their scripts from `git-hooks/`.
pub const HOOKS: [(&str, &str); 3] = [
    ("post-commit", include_str!("../../git-hooks/post-commit")),
    ("post-merge", include_str!("../../git-hooks/post-merge")),
    (
        "post-checkout",
        include_str!("../../git-hooks/post-checkout"),
    ),
];

/// The suffix of a user's hook that git-pair's hook runs first.
pub const SAVED_SUFFIX: &str = ".git-pair-user";

/// The line of every git-pair hook that names it as such.
const MARKER: &str = "# git-pair hook v";

/// The line of a template that the installer replaces with the path of the git-pair binary.
const BINARY_LINE: &str = "git_pair=git-pair";

/// The mode of a hook git-pair writes.
pub const MODE: u32 = 0o755;

/// What is at one name in the hooks directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Absent,
    /// A regular file, with its bytes.
    File(Vec<u8>),
    /// A symbolic link (to anything): never git-pair's own, kept as it is.
    Symlink,
    /// A directory or anything else that is not a hook.
    Other,
}

impl Entry {
    fn present(&self) -> bool {
        *self != Entry::Absent
    }
}

/// One hook: what is at its name and at its saved user hook's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub name: &'static str,
    pub current: Entry,
    pub saved: Entry,
}

/// Whose a hook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Nobody,
    /// git-pair's, exactly as some git-pair binary installed it.
    GitPair,
    /// git-pair's, but edited since.
    GitPairEdited,
    /// Someone else's (including a symlink).
    User,
    /// Not a file at all.
    NotAHook,
}

/// The template of hook `name`.
pub fn template(name: &str) -> Option<&'static str> {
    HOOKS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The hook `name` as installed by the git-pair binary at `exe` (`None`: found on `PATH` when
/// the hook runs).
pub fn render(name: &str, exe: Option<&str>) -> Option<Vec<u8>> {
    let template = template(name)?;
    let line = match exe {
        Some(path) => format!("git_pair={}", shell_quote(path)),
        None => BINARY_LINE.to_string(),
    };
    Some(template.replacen(BINARY_LINE, &line, 1).into_bytes())
}

/// POSIX single quotes, `'` written as `'\''`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether `bytes` are git-pair's hook `name` as some binary path would render it.
fn is_pristine(name: &str, bytes: &[u8]) -> bool {
    let (Some(template), Ok(text)) = (template(name), std::str::from_utf8(bytes)) else {
        return false;
    };
    let mut normalized = String::with_capacity(text.len());
    let mut replaced = false;
    for line in text.split_inclusive('\n') {
        if !replaced && line.starts_with("git_pair=") {
            normalized.push_str(BINARY_LINE);
            if line.ends_with('\n') {
                normalized.push('\n');
            }
            replaced = true;
        } else {
            normalized.push_str(line);
        }
    }
    normalized == template
}

/// Who owns what is at a hook's name.
pub fn owner(name: &str, entry: &Entry) -> Owner {
    match entry {
        Entry::Absent => Owner::Nobody,
        Entry::Symlink => Owner::User,
        Entry::Other => Owner::NotAHook,
        Entry::File(bytes) if is_pristine(name, bytes) => Owner::GitPair,
        Entry::File(bytes) => {
            let second_line = bytes.split(|&b| b == b'\n').nth(1).unwrap_or_default();
            if second_line.starts_with(MARKER.as_bytes()) {
                Owner::GitPairEdited
            } else {
                Owner::User
            }
        }
    }
}

/// One change in the hooks directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Rename `<name>` to `<name>.git-pair-user`.
    Save(&'static str),
    /// Write `<name>` (mode [`MODE`]) with these bytes, replacing what is there.
    Write(&'static str, Vec<u8>),
    /// Remove `<name>`.
    Remove(&'static str),
    /// Rename `<name>.git-pair-user` back to `<name>`.
    Restore(&'static str),
}

/// Why a hook was not (un)installed. Nothing was changed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// git-pair's hook was edited by hand.
    Edited(&'static str),
    /// The hook's name is taken by a directory or another non-file.
    NotAHook(&'static str),
    /// Installing: a saved user hook exists already beside someone else's hook.
    SavedTaken(&'static str),
    /// Installing: a saved user hook exists but no hook: it was left behind by hand.
    SavedAlone(&'static str),
    /// Uninstalling: git-pair's hook was replaced since, and the user's earlier hook is still
    /// saved.
    Replaced(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Edited(n) => write!(
                f,
                "{n} is git pair's hook, edited since it was installed: left alone; move your \
                 changes to {n}{SAVED_SUFFIX} (which runs first), delete {n}, and run this again"
            ),
            Problem::NotAHook(n) => {
                write!(f, "{n} is not a file: move it aside and run this again")
            }
            Problem::SavedTaken(n) => write!(
                f,
                "{n} would be kept as {n}{SAVED_SUFFIX}, but that name is taken: move one of the \
                 two aside and run this again"
            ),
            Problem::SavedAlone(n) => write!(
                f,
                "{n}{SAVED_SUFFIX} is there without {n}: rename it back to {n} (or delete it) \
                 and run this again"
            ),
            Problem::Replaced(n) => write!(
                f,
                "{n} is no longer git pair's hook: left alone; the hook that was there before \
                 git pair's is still in {n}{SAVED_SUFFIX}"
            ),
        }
    }
}

/// What to do to install every hook. All or nothing: any problem, and nothing is done.
pub fn plan_install(slots: &[Slot], exe: Option<&str>) -> Result<Vec<Op>, Vec<Problem>> {
    let mut ops = Vec::new();
    let mut problems = Vec::new();
    for slot in slots {
        let Some(ours) = render(slot.name, exe) else {
            continue;
        };
        let name = slot.name;
        match (owner(name, &slot.current), slot.saved.present()) {
            (Owner::Nobody, false) => ops.push(Op::Write(name, ours)),
            (Owner::Nobody, true) => problems.push(Problem::SavedAlone(name)),
            (Owner::GitPair, _) => {
                if slot.current != Entry::File(ours.clone()) {
                    ops.push(Op::Write(name, ours));
                }
            }
            (Owner::GitPairEdited, _) => problems.push(Problem::Edited(name)),
            (Owner::User, false) => {
                ops.push(Op::Save(name));
                ops.push(Op::Write(name, ours));
            }
            (Owner::User, true) => problems.push(Problem::SavedTaken(name)),
            (Owner::NotAHook, _) => problems.push(Problem::NotAHook(name)),
        }
    }
    if problems.is_empty() {
        Ok(ops)
    } else {
        Err(problems)
    }
}

/// What to do to uninstall every hook, and what has to stay (each problem concerns one hook;
/// the others are still uninstalled).
pub fn plan_uninstall(slots: &[Slot]) -> (Vec<Op>, Vec<Problem>) {
    let mut ops = Vec::new();
    let mut problems = Vec::new();
    for slot in slots {
        let name = slot.name;
        let saved = match slot.saved {
            Entry::Absent => false,
            Entry::File(_) | Entry::Symlink => true,
            Entry::Other => {
                problems.push(Problem::NotAHook(name));
                continue;
            }
        };
        match owner(name, &slot.current) {
            Owner::GitPair => {
                ops.push(Op::Remove(name));
                if saved {
                    ops.push(Op::Restore(name));
                }
            }
            // git-pair's hook was deleted by hand: the user's hook goes back all the same.
            Owner::Nobody if saved => ops.push(Op::Restore(name)),
            Owner::Nobody => {}
            Owner::GitPairEdited => problems.push(Problem::Edited(name)),
            Owner::User | Owner::NotAHook if saved => problems.push(Problem::Replaced(name)),
            Owner::User | Owner::NotAHook => {}
        }
    }
    (ops, problems)
}

/// Whether any of git-pair's hooks (edited or not) is installed.
pub fn any_installed(slots: &[Slot]) -> bool {
    slots.iter().any(|s| {
        matches!(
            owner(s.name, &s.current),
            Owner::GitPair | Owner::GitPairEdited
        )
    })
}

/// Why the hooks directory could not be read or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HooksError {
    #[error("cannot {action} {}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> HooksError {
    let path = path.to_path_buf();
    move |source| HooksError::Io {
        action,
        path,
        source,
    }
}

fn saved_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{SAVED_SUFFIX}"))
}

fn read_entry(path: &Path) -> Result<Entry, HooksError> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Entry::Absent),
        Err(e) => Err(io_err("inspect", path)(e)),
        Ok(m) if m.file_type().is_symlink() => Ok(Entry::Symlink),
        Ok(m) if m.is_file() => fs::read(path)
            .map(Entry::File)
            .map_err(io_err("read", path)),
        Ok(_) => Ok(Entry::Other),
    }
}

/// What is in `dir` for each of git-pair's hooks (a missing directory holds nothing).
pub fn read_slots(dir: &Path) -> Result<Vec<Slot>, HooksError> {
    HOOKS
        .iter()
        .map(|(name, _)| {
            Ok(Slot {
                name,
                current: read_entry(&dir.join(name))?,
                saved: read_entry(&saved_path(dir, name))?,
            })
        })
        .collect()
}

/// Applies `ops` in `dir` (created if missing); on a failure, what was already done is undone.
pub fn apply(dir: &Path, ops: &[Op]) -> Result<(), HooksError> {
    if !ops.is_empty() && !dir.is_dir() {
        fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    }
    let mut done: Vec<(Op, Option<Vec<u8>>)> = Vec::new();
    for op in ops {
        let before = match op {
            Op::Write(name, _) | Op::Remove(name) => match read_entry(&dir.join(name)) {
                Ok(Entry::File(bytes)) => Some(bytes),
                _ => None,
            },
            _ => None,
        };
        if let Err(e) = apply_one(dir, op) {
            for (op, before) in done.into_iter().rev() {
                let _ = undo_one(dir, &op, before);
            }
            return Err(e);
        }
        done.push((op.clone(), before));
    }
    Ok(())
}

fn apply_one(dir: &Path, op: &Op) -> Result<(), HooksError> {
    match op {
        Op::Save(name) => {
            let (from, to) = (dir.join(name), saved_path(dir, name));
            rename_new(&from, &to)
        }
        Op::Restore(name) => {
            let (from, to) = (saved_path(dir, name), dir.join(name));
            rename_new(&from, &to)
        }
        Op::Write(name, bytes) => write_hook(&dir.join(name), bytes),
        Op::Remove(name) => {
            let path = dir.join(name);
            fs::remove_file(&path).map_err(io_err("remove", &path))
        }
    }
}

fn undo_one(dir: &Path, op: &Op, before: Option<Vec<u8>>) -> Result<(), HooksError> {
    match op {
        Op::Save(name) => apply_one(dir, &Op::Restore(name)),
        Op::Restore(name) => apply_one(dir, &Op::Save(name)),
        Op::Write(name, _) | Op::Remove(name) => match before {
            Some(bytes) => write_hook(&dir.join(name), &bytes),
            None => {
                let path = dir.join(name);
                fs::remove_file(&path).map_err(io_err("remove", &path))
            }
        },
    }
}

/// Renames `from` to `to`, refusing to replace anything at `to`.
fn rename_new(from: &Path, to: &Path) -> Result<(), HooksError> {
    if fs::symlink_metadata(to).is_ok() {
        return Err(io_err("rename onto", to)(
            io::ErrorKind::AlreadyExists.into(),
        ));
    }
    fs::rename(from, to).map_err(io_err("rename", from))
}

/// Writes a hook through a temporary file and a rename, so that git never runs half of one.
fn write_hook(path: &Path, bytes: &[u8]) -> Result<(), HooksError> {
    let tmp = path.with_file_name(format!(
        ".{}.git-pair-tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("hook"),
        std::process::id()
    ));
    let result = fs::write(&tmp, bytes)
        .and_then(|()| fs::set_permissions(&tmp, fs::Permissions::from_mode(MODE)))
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write", path)(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const EXE: &str = "/usr/local/bin/git-pair";

    fn ours(name: &str) -> Vec<u8> {
        render(name, Some(EXE)).unwrap()
    }

    /// A hooks directory in memory: name -> entry.
    type Dir = BTreeMap<String, Entry>;

    fn slots(dir: &Dir) -> Vec<Slot> {
        HOOKS
            .iter()
            .map(|(name, _)| Slot {
                name,
                current: dir.get(*name).cloned().unwrap_or(Entry::Absent),
                saved: dir
                    .get(&format!("{name}{SAVED_SUFFIX}"))
                    .cloned()
                    .unwrap_or(Entry::Absent),
            })
            .collect()
    }

    fn run(dir: &mut Dir, ops: &[Op]) {
        for op in ops {
            match op {
                Op::Save(n) => {
                    let e = dir.remove(*n).expect("saved hook exists");
                    assert!(dir.insert(format!("{n}{SAVED_SUFFIX}"), e).is_none());
                }
                Op::Restore(n) => {
                    let e = dir.remove(&format!("{n}{SAVED_SUFFIX}")).expect("saved");
                    assert!(dir.insert(n.to_string(), e).is_none());
                }
                Op::Write(n, b) => {
                    dir.insert(n.to_string(), Entry::File(b.clone()));
                }
                Op::Remove(n) => {
                    dir.remove(*n).expect("removed hook exists");
                }
            }
        }
    }

    fn install(dir: &mut Dir) {
        let ops = plan_install(&slots(dir), Some(EXE)).unwrap();
        run(dir, &ops);
    }

    fn uninstall(dir: &mut Dir) -> Vec<Problem> {
        let (ops, problems) = plan_uninstall(&slots(dir));
        run(dir, &ops);
        problems
    }

    #[test]
    fn templates_are_recognised_and_name_the_binary() {
        for (name, template) in HOOKS {
            assert!(template.starts_with("#!/bin/sh\n# git-pair hook v1: "));
            assert!(template.contains(BINARY_LINE), "{name}");
            assert!(template.contains("sync --hook"), "{name}");
            let bytes = ours(name);
            let text = String::from_utf8(bytes.clone()).unwrap();
            assert!(
                text.contains("git_pair='/usr/local/bin/git-pair'\n"),
                "{text}"
            );
            assert_eq!(owner(name, &Entry::File(bytes)), Owner::GitPair);
            assert_eq!(
                owner(name, &Entry::File(render(name, None).unwrap())),
                Owner::GitPair
            );
        }
        let odd = render("post-commit", Some("/opt/it's here/git-pair")).unwrap();
        assert!(String::from_utf8(odd.clone())
            .unwrap()
            .contains(r"git_pair='/opt/it'\''s here/git-pair'"));
        assert_eq!(owner("post-commit", &Entry::File(odd)), Owner::GitPair);
    }

    #[test]
    fn owners() {
        let mut edited = ours("post-commit");
        edited.extend_from_slice(b"echo mine\n");
        assert_eq!(
            owner("post-commit", &Entry::File(edited)),
            Owner::GitPairEdited
        );
        // Another hook's script under this name is an edit too.
        assert_eq!(
            owner("post-commit", &Entry::File(ours("post-merge"))),
            Owner::GitPairEdited
        );
        assert_eq!(
            owner(
                "post-commit",
                &Entry::File(b"#!/bin/sh\necho hi\n".to_vec())
            ),
            Owner::User
        );
        assert_eq!(owner("post-commit", &Entry::File(vec![0xff])), Owner::User);
        assert_eq!(owner("post-commit", &Entry::Symlink), Owner::User);
        assert_eq!(owner("post-commit", &Entry::Other), Owner::NotAHook);
        assert_eq!(owner("post-commit", &Entry::Absent), Owner::Nobody);
    }

    #[test]
    fn install_into_an_empty_directory_and_uninstall_leave_it_empty() {
        let mut dir = Dir::new();
        install(&mut dir);
        assert_eq!(dir.len(), 3);
        for (name, _) in HOOKS {
            assert_eq!(dir[name], Entry::File(ours(name)));
        }
        assert!(uninstall(&mut dir).is_empty());
        assert!(dir.is_empty());
    }

    #[test]
    fn a_users_hook_is_kept_run_first_and_restored_byte_for_byte() {
        let user = b"#!/bin/sh\r\nexec make -C build \xe9 check\n".to_vec();
        let mut dir = Dir::from([
            ("post-commit".to_string(), Entry::File(user.clone())),
            ("post-merge".to_string(), Entry::Symlink),
            ("pre-commit".to_string(), Entry::File(b"other".to_vec())),
        ]);
        let before = dir.clone();
        install(&mut dir);
        assert_eq!(dir["post-commit"], Entry::File(ours("post-commit")));
        assert_eq!(dir["post-commit.git-pair-user"], Entry::File(user));
        assert_eq!(dir["post-merge.git-pair-user"], Entry::Symlink);
        assert_eq!(dir["pre-commit"], Entry::File(b"other".to_vec()));
        assert!(uninstall(&mut dir).is_empty());
        assert_eq!(dir, before);
    }

    #[test]
    fn installing_twice_changes_nothing_and_a_new_binary_path_is_written() {
        let mut dir = Dir::from([(
            "post-commit".to_string(),
            Entry::File(b"#!/bin/sh\ntrue\n".to_vec()),
        )]);
        install(&mut dir);
        let once = dir.clone();
        assert_eq!(plan_install(&slots(&dir), Some(EXE)), Ok(vec![]));
        install(&mut dir);
        assert_eq!(dir, once);
        let moved = plan_install(&slots(&dir), Some("/opt/git-pair")).unwrap();
        assert_eq!(moved.len(), 3);
        assert!(moved.iter().all(|op| matches!(op, Op::Write(..))));
    }

    #[test]
    fn install_refuses_what_it_cannot_do_without_losing_something() {
        let mut edited = ours("post-merge");
        edited.extend_from_slice(b"# mine\n");
        let dir = Dir::from([
            ("post-commit".to_string(), Entry::File(b"user".to_vec())),
            (
                "post-commit.git-pair-user".to_string(),
                Entry::File(b"older".to_vec()),
            ),
            ("post-merge".to_string(), Entry::File(edited)),
            ("post-checkout".to_string(), Entry::Other),
        ]);
        let problems = plan_install(&slots(&dir), Some(EXE)).unwrap_err();
        assert_eq!(
            problems,
            [
                Problem::SavedTaken("post-commit"),
                Problem::Edited("post-merge"),
                Problem::NotAHook("post-checkout"),
            ]
        );
        for p in &problems {
            assert!(p.to_string().contains("run this again"), "{p}");
        }
        let alone = Dir::from([(
            "post-commit.git-pair-user".to_string(),
            Entry::File(b"x".to_vec()),
        )]);
        assert_eq!(
            plan_install(&slots(&alone), Some(EXE)),
            Err(vec![Problem::SavedAlone("post-commit")])
        );
    }

    #[test]
    fn uninstall_leaves_what_is_not_its_own() {
        let mut dir = Dir::new();
        install(&mut dir);
        dir.insert("post-commit".into(), Entry::File(b"replaced".to_vec()));
        let mut edited = ours("post-merge");
        edited.push(b'#');
        dir.insert("post-merge".into(), Entry::File(edited));
        let problems = uninstall(&mut dir);
        assert_eq!(problems, [Problem::Edited("post-merge")]);
        assert_eq!(dir["post-commit"], Entry::File(b"replaced".to_vec()));
        assert!(!dir.contains_key("post-checkout"));

        // Replaced while the user's earlier hook is still saved: both stay.
        let mut dir = Dir::from([("post-commit".to_string(), Entry::File(b"u".to_vec()))]);
        install(&mut dir);
        dir.insert("post-commit".into(), Entry::File(b"new".to_vec()));
        assert_eq!(uninstall(&mut dir), [Problem::Replaced("post-commit")]);
        assert_eq!(dir["post-commit.git-pair-user"], Entry::File(b"u".to_vec()));

        // git-pair's hook deleted by hand: the user's comes back.
        let mut dir = Dir::from([("post-commit".to_string(), Entry::File(b"u".to_vec()))]);
        install(&mut dir);
        dir.remove("post-commit");
        assert!(uninstall(&mut dir).is_empty());
        assert_eq!(dir["post-commit"], Entry::File(b"u".to_vec()));
        // Nothing installed: nothing to do.
        assert_eq!(plan_uninstall(&slots(&Dir::new())), (vec![], vec![]));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn entry() -> impl Strategy<Value = Entry> {
            prop_oneof![
                Just(Entry::Absent),
                Just(Entry::Symlink),
                proptest::collection::vec(any::<u8>(), 0..64).prop_map(Entry::File),
            ]
        }

        proptest! {
            /// Whatever the user has (no saved hooks of their own), install then uninstall
            /// gives it back exactly, and installing twice is installing once.
            #[test]
            fn install_then_uninstall_is_the_identity(a in entry(), b in entry(), c in entry()) {
                let mut dir = Dir::new();
                for ((name, _), e) in HOOKS.iter().zip([a, b, c]) {
                    if e != Entry::Absent {
                        dir.insert(name.to_string(), e);
                    }
                }
                let before = dir.clone();
                install(&mut dir);
                let once = dir.clone();
                install(&mut dir);
                prop_assert_eq!(&dir, &once);
                prop_assert!(uninstall(&mut dir).is_empty());
                prop_assert_eq!(dir, before);
            }
        }
    }

    fn temp(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("git-pair-hooks-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn on_disk_a_users_hook_keeps_its_bytes_mode_and_symlink() {
        use std::os::unix::fs::symlink;
        let dir = temp("disk");
        fs::create_dir_all(&dir).unwrap();
        let user = b"#!/bin/sh\necho user\n";
        fs::write(dir.join("post-commit"), user).unwrap();
        fs::set_permissions(dir.join("post-commit"), fs::Permissions::from_mode(0o750)).unwrap();
        symlink("../shared/merge-hook", dir.join("post-merge")).unwrap();

        let ops = plan_install(&read_slots(&dir).unwrap(), Some(EXE)).unwrap();
        apply(&dir, &ops).unwrap();
        let installed = fs::read(dir.join("post-checkout")).unwrap();
        assert_eq!(installed, ours("post-checkout"));
        let mode = fs::metadata(dir.join("post-checkout"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, MODE);
        assert_eq!(
            fs::read(dir.join("post-commit.git-pair-user")).unwrap(),
            user
        );
        assert!(any_installed(&read_slots(&dir).unwrap()));

        let (ops, problems) = plan_uninstall(&read_slots(&dir).unwrap());
        assert!(problems.is_empty());
        apply(&dir, &ops).unwrap();
        assert_eq!(fs::read(dir.join("post-commit")).unwrap(), user);
        let mode = fs::metadata(dir.join("post-commit"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o750);
        assert_eq!(
            fs::read_link(dir.join("post-merge")).unwrap(),
            Path::new("../shared/merge-hook")
        );
        assert!(!dir.join("post-checkout").exists());
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["post-commit", "post-merge"]);
        assert!(!any_installed(&read_slots(&dir).unwrap()));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failed_install_undoes_what_it_did() {
        let dir = temp("undo");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("post-commit"), b"mine").unwrap();
        // The last write fails: its name is a directory by the time it is written.
        let ops = vec![
            Op::Save("post-commit"),
            Op::Write("post-commit", ours("post-commit")),
            Op::Write("post-merge", ours("post-merge")),
        ];
        fs::create_dir(dir.join("post-merge")).unwrap();
        fs::write(dir.join("post-merge/x"), b"x").unwrap();
        assert!(apply(&dir, &ops).is_err());
        assert_eq!(fs::read(dir.join("post-commit")).unwrap(), b"mine");
        assert!(!dir.join("post-commit.git-pair-user").exists());
        fs::remove_dir_all(dir).unwrap();
    }
}
