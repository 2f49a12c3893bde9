//! Checks for `git pair sync`'s pure parts: the hook installer's planners and the readers of
//! git's output.

use std::collections::BTreeMap;

use git_pair::sync::hooks::{self, Entry, Op, Owner, Slot, HOOKS, SAVED_SUFFIX};
use git_pair::sync::plan;

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

/// Applies `ops` as the real applier would, checking that none of them loses anything: a write
/// replaces only nothing or git-pair's own hook, a removal removes only git-pair's own hook,
/// and a rename never lands on something.
fn run(dir: &mut Dir, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Save(n) => {
                let e = dir.remove(*n).expect("Save of a missing hook");
                let old = dir.insert(format!("{n}{SAVED_SUFFIX}"), e);
                assert!(old.is_none(), "Save onto an existing {n}{SAVED_SUFFIX}");
            }
            Op::Restore(n) => {
                let e = dir
                    .remove(&format!("{n}{SAVED_SUFFIX}"))
                    .expect("Restore of a missing saved hook");
                assert!(dir.insert(n.to_string(), e).is_none(), "Restore onto {n}");
            }
            Op::Write(n, bytes) => {
                let before = dir.get(*n).cloned().unwrap_or(Entry::Absent);
                assert!(
                    matches!(hooks::owner(n, &before), Owner::Nobody | Owner::GitPair),
                    "Write over {n}, which is not git-pair's: {before:?}"
                );
                dir.insert(n.to_string(), Entry::File(bytes.clone()));
            }
            Op::Remove(n) => {
                let before = dir.remove(*n).expect("Remove of a missing hook");
                assert_eq!(hooks::owner(n, &before), Owner::GitPair, "Remove of {n}");
            }
        }
    }
}

/// The first byte says, two bits per name, what each of the six names (three hooks and their
/// saved hooks) holds: nothing, a symlink, a file, or git-pair's own hook; the rest, split at
/// 0 bytes, gives the files' bytes.
fn dir_from(data: &[u8]) -> Dir {
    let (head, rest) = data.split_first().unwrap_or((&0, &[]));
    let second = rest.first().copied().unwrap_or(0);
    let bits = u16::from(*head) | (u16::from(second) << 8);
    let mut pieces = rest.get(1..).unwrap_or_default().split(|&b| b == 0);
    let mut dir = Dir::new();
    for (i, (name, _)) in HOOKS.iter().enumerate() {
        for (j, path) in [name.to_string(), format!("{name}{SAVED_SUFFIX}")]
            .into_iter()
            .enumerate()
        {
            let entry = match (bits >> ((i * 2 + j) * 2)) & 3 {
                0 => continue,
                1 => Entry::Symlink,
                2 => Entry::File(pieces.next().unwrap_or_default().to_vec()),
                _ => Entry::File(hooks::render(name, Some("/opt/git-pair")).unwrap()),
            };
            dir.insert(path, entry);
        }
    }
    dir
}

/// `plan_install` and `plan_uninstall`, from any hooks directory:
/// - never panic, and no operation overwrites or removes what is not git-pair's own hook, nor
///   renames onto anything;
/// - after an install every hook is git-pair's, and installing again changes nothing;
/// - uninstalling after an install gives the same directory as uninstalling without it (so,
///   without git-pair hooks before, exactly the directory before the install);
/// - a refused install lists at least one problem, each a one-line message.
pub fn hooks(data: &[u8]) {
    let before = dir_from(data);
    let mut uninstalled = before.clone();
    let (ops, _) = hooks::plan_uninstall(&slots(&uninstalled));
    run(&mut uninstalled, &ops);

    match hooks::plan_install(&slots(&before), Some("/usr/bin/git-pair")) {
        Err(problems) => {
            assert!(!problems.is_empty());
            for p in problems {
                assert!(!p.to_string().contains('\n'), "{p}");
            }
        }
        Ok(ops) => {
            let mut dir = before.clone();
            run(&mut dir, &ops);
            for s in slots(&dir) {
                assert_eq!(
                    hooks::owner(s.name, &s.current),
                    Owner::GitPair,
                    "{}",
                    s.name
                );
            }
            assert_eq!(
                hooks::plan_install(&slots(&dir), Some("/usr/bin/git-pair")),
                Ok(vec![]),
                "installing twice changes something"
            );
            let (ops, problems) = hooks::plan_uninstall(&slots(&dir));
            assert!(problems.is_empty(), "{problems:?}");
            run(&mut dir, &ops);
            assert_eq!(dir, uninstalled, "uninstall after install differs");
            let had_ours = slots(&before).iter().any(|s| {
                matches!(hooks::owner(s.name, &s.current), Owner::GitPair)
                    || s.saved != Entry::Absent
            });
            if !had_ours {
                assert_eq!(dir, before, "install then uninstall is not the identity");
            }
        }
    }
}

/// The readers of git's output never panic: `parse_push`, `classify`, `last_lines` (whose
/// result is one line of at most its limit plus `...`) and `annex_failed_remotes` (which names
/// only remotes it was given).
pub fn git_output(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = plan::parse_push(&text, "refs/heads/synced/main");
    let _ = plan::classify(&text);
    let short = plan::last_lines(&text, 3, 80);
    assert!(!short.contains('\n') && !short.contains('\r'), "{short:?}");
    assert!(short.chars().count() <= 83, "{short:?}");
    let remotes = vec!["beta".to_string(), "gamma".to_string()];
    for name in plan::annex_failed_remotes(&text, &remotes) {
        assert!(remotes.contains(&name), "{name}");
    }
}
