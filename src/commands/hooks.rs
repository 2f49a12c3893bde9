//! `git pair hooks install|uninstall`: the edge of [`crate::sync::hooks`], and the offer
//! `git pair remove` makes when it removed the last pairing.
//!
//! The hooks go where git looks for them: `git rev-parse --git-path hooks`, which follows
//! `core.hooksPath`. Messages go to stderr, like `git pair remove`'s.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, Context};

use crate::cli::HooksAction;
use crate::repo;
use crate::sync::hooks::{self, Op, SAVED_SUFFIX};
use crate::sync::queue;

/// Runs `git pair hooks ACTION`.
pub fn run(action: HooksAction) -> anyhow::Result<()> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (repository, _) = repo::open(&cwd).map_err(super::pair::usage)?;
    let dir = hooks_dir(&cwd)?;
    match action {
        HooksAction::Install => install(&dir, &repository),
        HooksAction::Uninstall => uninstall(&dir),
    }
}

/// Where git runs this repository's hooks from.
pub fn hooks_dir(cwd: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks"])
        .current_dir(cwd)
        .output()
        .context("cannot run git: is it installed?")?;
    if !out.status.success() {
        return Err(anyhow!(
            "git cannot tell where this repository's hooks are: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let text = String::from_utf8(out.stdout).context("the hooks path is not UTF-8")?;
    let path = PathBuf::from(text.trim_end_matches('\n'));
    Ok(if path.is_absolute() {
        path
    } else {
        cwd.join(path)
    })
}

/// The path of this git-pair binary for the hooks to run, when it can be written into a shell
/// script unambiguously; `None` lets the hooks find `git-pair` on `PATH`.
fn binary() -> Option<String> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let text = exe.to_str()?;
    (!text.chars().any(char::is_control)).then(|| text.to_string())
}

fn install(dir: &Path, repository: &git2::Repository) -> anyhow::Result<()> {
    let slots = hooks::read_slots(dir)?;
    let exe = binary();
    let ops = hooks::plan_install(&slots, exe.as_deref()).map_err(|problems| {
        anyhow!(
            "the hooks were not installed; nothing was changed:\n    {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n    ")
        )
    })?;
    hooks::apply(dir, &ops)?;
    let shown = dir.display();
    let mut text = if ops.is_empty() {
        format!("git pair's hooks are already installed in {shown}.\n")
    } else {
        let mut t = format!("Installed git pair's hooks in {shown}:\n");
        for (name, _) in hooks::HOOKS {
            let kept = ops.contains(&Op::Save(name));
            t.push_str(&format!("    {name}"));
            if kept {
                t.push_str(&format!(
                    " (your own {name} runs first; it is kept as {name}{SAVED_SUFFIX})"
                ));
            }
            t.push('\n');
        }
        t
    };
    let log = repository.commondir().join(queue::DIR).join(queue::LOG);
    text.push_str(&format!(
        "After each commit, merge and switch of branch, `git pair sync` runs in the background; \
         it logs to {}. `git pair hooks uninstall` puts back what was here before.\n",
        log.display()
    ));
    if exe.is_none() {
        text.push_str(
            "warning: the path of this git-pair binary cannot be written into a hook; the \
             hooks run `git-pair` from PATH\n",
        );
    }
    if repository
        .config()
        .and_then(|c| c.get_path("core.hooksPath"))
        .is_ok()
    {
        text.push_str(&format!(
            "note: core.hooksPath is set: other repositories that use {shown} run these hooks \
             too (they do nothing where there is no pairing)\n"
        ));
    }
    if repo::paired_remotes(repository).is_ok_and(|p| p.is_empty()) {
        text.push_str(
            "note: this repository has no pairings yet; the hooks do nothing until `git pair` \
             pairs it\n",
        );
    }
    say(&text);
    Ok(())
}

fn uninstall(dir: &Path) -> anyhow::Result<()> {
    let slots = hooks::read_slots(dir)?;
    let (ops, problems) = hooks::plan_uninstall(&slots);
    hooks::apply(dir, &ops)?;
    say(&uninstall_report(dir, &ops));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(anyhow!(
            "some hooks were left in place:\n    {}",
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n    ")
        ))
    }
}

fn uninstall_report(dir: &Path, ops: &[Op]) -> String {
    if ops.is_empty() {
        return format!("No git pair hooks to uninstall in {}.\n", dir.display());
    }
    let mut t = format!("Uninstalled git pair's hooks from {}:\n", dir.display());
    for op in ops {
        match op {
            Op::Remove(name) => t.push_str(&format!("    removed {name}\n")),
            Op::Restore(name) => t.push_str(&format!(
                "    put back your {name} (from {name}{SAVED_SUFFIX})\n"
            )),
            Op::Save(_) | Op::Write(..) => {}
        }
    }
    t
}

/// After `git pair remove` removed the last pairing of the repository at `cwd`: when git-pair's
/// hooks are still installed, offers to uninstall them (only when a person answers at a
/// terminal), or says how.
pub fn after_last_pairing(cwd: &Path) {
    let Ok(dir) = hooks_dir(cwd) else {
        return;
    };
    let Ok(slots) = hooks::read_slots(&dir) else {
        return;
    };
    if !hooks::any_installed(&slots) {
        return;
    }
    let how = "`git pair hooks uninstall` removes them";
    if !(io::stdin().is_terminal() && io::stderr().is_terminal()) {
        say(&format!(
            "That was the last pairing here; git pair's hooks are still installed in {} (they \
             now do nothing): {how}.\n",
            dir.display()
        ));
        return;
    }
    say(&format!(
        "That was the last pairing here. Uninstall git pair's hooks from {} too? [y/N] ",
        dir.display()
    ));
    let mut answer = String::new();
    let _ = io::stdin().lock().read_line(&mut answer);
    if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes" | "YES") {
        say(&format!("The hooks stay (they do nothing now); {how}.\n"));
        return;
    }
    if let Err(e) = uninstall(&dir) {
        say(&format!("git pair: error: {e:#}\n"));
    }
}

fn say(text: &str) {
    let _ = io::stderr().write_all(text.as_bytes());
}
