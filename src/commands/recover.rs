//! Before a command reads or writes pairings: finish what a crashed run of git pair left (undo
//! its uncommitted transaction, remove its temporary files), and say so on stderr.
//!
//! Every command but `serve` runs [`before_command`] first (see `git_pair::run`); `serve` is the
//! peer's forced command and changes nothing. A run that finds the lock held by a live git pair
//! leaves that run's files alone, and every transaction recovers again under the lock when it
//! begins.

use std::io::Write;

use crate::local;
use crate::repo;
use crate::sanitize;
use crate::ssh_files::{self, Recovery};

/// Best effort: a failure is reported and the command goes on (a command that writes will
/// meet the same failure under the lock, and stop there).
pub fn before_command() {
    let Ok(dir) = local::ssh_dir() else {
        return;
    };
    let lines = match ssh_files::recover(&dir) {
        Ok(recovered) => describe(&recovered),
        Err(e) => vec![format!(
            "git pair: warning: cannot undo what an interrupted run of git pair left: {:#}",
            anyhow::Error::new(e)
        )],
    };
    let mut err = std::io::stderr().lock();
    for line in lines {
        let _ = writeln!(err, "{line}");
    }
}

/// What [`Recovery`] says, as lines for a person.
pub fn describe(r: &Recovery) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(i) = &r.interrupted {
        let what = format!(
            "git pair: an earlier run (process {}, started {}) was interrupted while {}",
            i.pid,
            repo::rfc3339(i.started),
            sanitize::for_terminal(&i.label)
        );
        if i.undone.is_empty() {
            lines.push(format!(
                "{what}; it had changed nothing that is still there"
            ));
        } else {
            lines.push(format!("{what}; undid its changes to {}", paths(&i.undone)));
        }
        for path in &i.changed_since {
            lines.push(format!(
                "git pair: warning: {} was changed by another program after that run was interrupted, so git pair left it as it is: check it for that pairing's lines (`git pair list` shows what is left, `git pair remove` removes it)",
                sanitize::for_terminal(&path.to_string_lossy())
            ));
        }
    }
    if let Some((aside, why)) = &r.unreadable {
        lines.push(format!(
            "git pair: warning: the journal of an interrupted run cannot be used ({why}); it was moved to {} and not acted upon: `git pair list` shows a half-made pairing, `git pair remove` removes it",
            sanitize::for_terminal(&aside.to_string_lossy())
        ));
    }
    if !r.cleaned.is_empty() {
        lines.push(format!(
            "git pair: removed what an interrupted run left: {}",
            paths(&r.cleaned)
        ));
    }
    lines
}

fn paths(paths: &[std::path::PathBuf]) -> String {
    paths
        .iter()
        .map(|p| sanitize::for_terminal(&p.to_string_lossy()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}
