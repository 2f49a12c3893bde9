//! Shell completion: the files under completions/ must be what the clap definition renders
//! (regenerate them with `GIT_PAIR_BLESS=1 cargo test --test completions`), and each one is
//! run by its real shell: bash through git's own completion (`git pair <TAB>`) and
//! bash-completion's on-demand loading, zsh through git's `_git` on a pseudo-terminal, fish
//! through `complete -C` (fish 3.6's own git completion hands `git pair` to `git-git-pair`, a
//! fish bug, so there `git-pair` is tested as itself).
//!
//! Nothing here runs git-pair: completion only reads /sys/class/net and `git config`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use git_pair::completions::{render, FILES};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("completions")
}

#[test]
fn completions_are_current() {
    let bless = std::env::var_os("GIT_PAIR_BLESS").is_some();
    for (shell, file) in FILES {
        let path = dir().join(file);
        let rendered = render(shell);
        if bless {
            fs::create_dir_all(dir()).unwrap();
            fs::write(&path, &rendered).unwrap();
            continue;
        }
        let checked_in = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == rendered,
            "{} is stale: run `GIT_PAIR_BLESS=1 cargo test --test completions` and commit it",
            path.display()
        );
    }
}

/// A test that cannot run here says why, and fails unless skipping was allowed.
fn skip(why: &str) {
    eprintln!("SKIPPED: {why}");
    assert_eq!(
        std::env::var("GIT_PAIR_ALLOW_SKIP").as_deref(),
        Ok("1"),
        "{why}: install it (scripts/deps), or set GIT_PAIR_ALLOW_SKIP=1 to skip"
    );
}

/// A scratch directory with a repository that has one remote git pair made ("laptop") and one
/// it did not ("origin"); removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let root =
            std::env::temp_dir().join(format!("git-pair-completion-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let repo = root.join("repo");
        fs::create_dir_all(&repo).unwrap();
        for args in [
            &["init", "-q"][..],
            &["config", "remote.laptop.url", "git-pair-laptop-1:/r"],
            &["config", "remote.laptop.pair-alias", "git-pair-laptop-1"],
            &["config", "remote.origin.url", "/elsewhere"],
        ] {
            let ok = Command::new("git")
                .args(args)
                .current_dir(&repo)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .status()
                .unwrap()
                .success();
            assert!(ok, "git {args:?}");
        }
        Scratch(root)
    }

    fn repo(&self) -> PathBuf {
        self.0.join("repo")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The candidates bash offers for `line` (the cursor at its end), with the completion loaded
/// the way bash-completion loads it for a command: on demand, from a completions directory.
/// For `git pair …`, git's completion is loaded the same way and itself loads ours.
fn bash_candidates(scratch: &Scratch, line: &str) -> Vec<String> {
    let data = scratch.0.join("data/bash-completion/completions");
    fs::create_dir_all(&data).unwrap();
    fs::copy(dir().join("git-pair.bash"), data.join("git-pair")).unwrap();
    let script = r#"
source /usr/share/bash-completion/bash_completion
line="$1"
COMP_LINE="$line"; COMP_POINT=${#line}
read -ra COMP_WORDS <<< "$line"
[[ "$line" == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
cmd=${COMP_WORDS[0]}
_comp_load "$cmd" 2>/dev/null || __load_completion "$cmd" 2>/dev/null || _completion_loader "$cmd"
func=$(complete -p "$cmd" | sed -n 's/.*-F \([^ ]*\).*/\1/p')
COMPREPLY=()
"$func" "$cmd" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .args(["-c", script, "bash", line])
        .current_dir(scratch.repo())
        .env(
            "BASH_COMPLETION_USER_DIR",
            scratch.0.join("data/bash-completion"),
        )
        .env("PATH", path_with_git_pair(scratch))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{line:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// PATH with a `git-pair` in it, as git's completion lists `git-*` programs (never run here).
fn path_with_git_pair(scratch: &Scratch) -> String {
    let bin = scratch.0.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let _ = std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_git-pair"), bin.join("git-pair"));
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn bash_completes_git_pair_through_gits_completion() {
    if !Path::new("/usr/share/bash-completion/bash_completion").exists()
        || !Path::new("/usr/share/bash-completion/completions/git").exists()
    {
        return skip("bash-completion and git's bash completion are not installed");
    }
    let scratch = Scratch::new("bash");
    let has = |line: &str, want: &[&str]| {
        let got = bash_candidates(&scratch, line);
        for w in want {
            assert!(got.iter().any(|g| g == w), "{line:?} lacks {w:?}: {got:?}");
        }
        got
    };
    // Through git: `git pair <TAB>`, the way people type it.
    has("git pair ", &["join", "list", "remove", "--interface"]);
    has("git pair li", &["list"]);
    has("git pair join --inter", &["--interface"]);
    has("git pair --interface ", &["lo"]);
    has("git pair join --interface l", &["lo"]);
    let remotes = has("git pair remove ", &["laptop"]);
    assert!(!remotes.iter().any(|r| r == "origin"), "{remotes:?}");
    // And git-pair typed as itself.
    has("git-pair jo", &["join"]);
    has("git-pair --interface ", &["lo"]);
    has("git-pair remove la", &["laptop"]);
}

#[test]
fn fish_completes_options_interfaces_and_paired_remotes() {
    if Command::new("fish").arg("--version").output().is_err() {
        return skip("fish is not installed");
    }
    let scratch = Scratch::new("fish");
    let functions = scratch.0.join("fish");
    fs::create_dir_all(&functions).unwrap();
    fs::copy(dir().join("git-pair.fish"), functions.join("git-pair.fish")).unwrap();
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("fish")
            .args([
                "--no-config",
                "-c",
                &format!(
                    "set -p fish_complete_path {}; complete -C '{line}'",
                    functions.display()
                ),
            ])
            .current_dir(scratch.repo())
            .env("PATH", path_with_git_pair(&scratch))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    for (line, want) in [
        ("git-pair jo", "join"),
        ("git-pair join --inter", "--interface"),
        ("git-pair --interface ", "lo"),
        ("git-pair join --interface ", "lo"),
        ("git-pair remove ", "laptop"),
        ("git-pair refresh ", "laptop"),
    ] {
        let got = complete(line);
        assert!(
            got.iter().any(|g| g == want),
            "{line:?} lacks {want:?}: {got:?}"
        );
        assert!(!got.iter().any(|g| g == "origin"), "{line:?}: {got:?}");
    }
}

/// What zsh offers for `line`: an interactive zsh on a pseudo-terminal (zpty), with compinit,
/// git's `_git` and our `_git-pair` from fpath, and compadd wrapped to print what it adds.
const ZSH_CAPTURE: &str = r#"
zmodload zsh/zpty
zpty -b z zsh -f -i
zpty -w z "PS1='> '; fpath=($1 \$fpath); autoload -Uz compinit; compinit -u; echo READY"
zpty -r -m z out '*READY*'
zpty -w z 'compadd() { local -a hits; builtin compadd -O hits "$@"; (( $#hits )) && print -r -- "HI""T ${(j: :)hits}" }'
zpty -w z '_capture() { _main_complete; print -r -- "DO""NE" }'
zpty -w z 'zle -C capture complete-word _capture; bindkey "^I" capture; echo SET'
zpty -r -m z out '*SET*'
zpty -n -w z "$2"$'\t'
zpty -r -m z out '*DONE*'
print -r -- "$out" | tr '\r' '\n' | grep -a '^HIT'
zpty -d z
"#;

#[test]
fn zsh_completes_git_pair_through_gits_completion() {
    if Command::new("zsh").arg("--version").output().is_err() {
        return skip("zsh is not installed");
    }
    let scratch = Scratch::new("zsh");
    let fpath = scratch.0.join("zsh");
    fs::create_dir_all(&fpath).unwrap();
    fs::copy(dir().join("_git-pair"), fpath.join("_git-pair")).unwrap();
    let script = fs::read_to_string(dir().join("_git-pair")).unwrap();
    // compinit reads the first line only.
    assert!(script.starts_with("#compdef git-pair\n"), "{script}");
    let complete = |line: &str| -> Vec<String> {
        let out = Command::new("timeout")
            .args(["30", "zsh", "-f", "-c", ZSH_CAPTURE, "zsh"])
            .arg(&fpath)
            .arg(line)
            .current_dir(scratch.repo())
            .env("HOME", &scratch.0)
            .env("PATH", path_with_git_pair(&scratch))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("HIT "))
            .flat_map(|l| l.split(' ').map(str::to_string).collect::<Vec<_>>())
            .collect()
    };
    for (line, want) in [
        ("git pair ", "join"),
        ("git pair jo", "join"),
        ("git pair join --inter", "--interface"),
        ("git pair --interface ", "lo"),
        ("git pair remove ", "laptop"),
        ("git-pair remove ", "laptop"),
        ("git-pair join --interface ", "lo"),
    ] {
        let got = complete(line);
        assert!(
            got.iter().any(|g| g == want),
            "{line:?} lacks {want:?}: {got:?}"
        );
        assert!(!got.iter().any(|g| g == "origin"), "{line:?}: {got:?}");
    }
}
