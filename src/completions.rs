//! Shell completion for bash, zsh and fish, generated from the clap definition in
//! [`crate::cli`] by clap_complete, with two dynamic parts clap cannot know: network interface
//! names after `--interface`, and the remotes git pair made after `remove`, `refresh` and `sync`.
//!
//! clap_complete writes static lists. So, for generation only, those arguments get a one-word
//! list of possible values, a marker; clap_complete puts it exactly where each shell expects
//! the candidates, and [`render`] replaces it with a call to a small shell function that lists
//! them at completion time (`/sys/class/net`, `git config remote.*.pair-alias`). A marker left
//! over, or one that was not found, is a bug that [`render`] panics on, so that a changed
//! clap_complete cannot silently produce a broken script.
//!
//! The bash script also defines `_git_pair`, which git's own bash completion calls for
//! `git pair <TAB>` (it loads the `git-pair` completion file on demand); zsh's `_git` calls
//! `_git-pair`, and fish's git completion hands `git pair …` to the `git-pair` completions.
//! The files are committed under `completions/`; `tests/completions.rs` fails when they are
//! stale (`GIT_PAIR_BLESS=1 cargo test --test completions` rewrites them).

use clap::builder::PossibleValuesParser;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// The name the completions are registered for: the executable git runs as `git pair`.
pub const BIN: &str = "git-pair";

/// The name bash completion is generated for; see [`render`].
const BASH_NAME: &str = "gitpair";

const IFACES: &str = "__GIT_PAIR_IFACES__";
const REMOTES: &str = "__GIT_PAIR_REMOTES__";

/// The shells completion is generated for, with the file name each one looks for.
pub const FILES: [(Shell, &str); 3] = [
    (Shell::Bash, "git-pair.bash"),
    (Shell::Zsh, "_git-pair"),
    (Shell::Fish, "git-pair.fish"),
];

/// The commands whose NAME is a paired remote.
const NAMED: [&str; 4] = ["list", "remove", "refresh", "sync"];

/// Puts the markers on the arguments whose values are found at completion time.
fn mark(cmd: clap::Command) -> clap::Command {
    let named = NAMED.contains(&cmd.get_name());
    cmd.mut_args(move |a| {
        let iface = a
            .get_value_names()
            .is_some_and(|v| v.iter().any(|n| n == "IFACE"));
        if iface {
            a.value_parser(PossibleValuesParser::new([IFACES]))
        } else if named && a.is_positional() && a.get_id() == "name" {
            a.value_parser(PossibleValuesParser::new([REMOTES]))
        } else {
            a
        }
    })
}

/// The completion script for `shell`.
pub fn render(shell: Shell) -> String {
    // clap_complete 4.6's bash script names the function of a subcommand differently where it
    // is chosen and where it is defined when the program's name has a dash (git__pair__subcmd__
    // against git__subcmd__pair__subcmd__), so no subcommand would complete: bash is generated
    // for a name without one, and registered for git-pair below.
    let name = if shell == Shell::Bash { BASH_NAME } else { BIN };
    let mut cmd = mark(Cli::command().bin_name(name)).mut_subcommands(mark);
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    let generated = String::from_utf8(out).expect("clap_complete writes UTF-8");
    let script = match shell {
        Shell::Bash => bash(&generated),
        Shell::Zsh => zsh(&generated),
        Shell::Fish => fish(&generated, &cmd),
        other => panic!("no completion for {other}"),
    };
    assert!(
        !script.contains(IFACES) && !script.contains(REMOTES),
        "a marker was left in the {shell} completion"
    );
    // zsh's compinit reads `#compdef` on the first line only.
    match script.split_once('\n') {
        Some((first, rest)) if first.starts_with("#compdef") => format!("{first}\n{HEADER}{rest}"),
        _ => format!("{HEADER}{script}"),
    }
}

const HEADER: &str = "# Generated from git-pair's command line (src/cli.rs, src/completions.rs); \
                      do not edit.\n";

/// Replaces every `from` (there must be at least one) with `to`.
fn replace_all(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "{from:?} not found: clap_complete changed its output"
    );
    text.replace(from, to)
}

fn bash(generated: &str) -> String {
    let script = replace_all(
        generated,
        &format!("\"{IFACES}\""),
        "\"$(__git_pair_interfaces)\"",
    );
    let script = replace_all(&script, REMOTES, "$(__git_pair_remotes)");
    let script = replace_all(
        &script,
        &format!("-o default {BASH_NAME}\n"),
        &format!("-o default {BIN}\n"),
    );
    format!(
        r#"# Network interfaces, for --interface.
__git_pair_interfaces() {{
    local f
    for f in /sys/class/net/*; do
        [ -e "$f" ] && printf '%s\n' "${{f##*/}}"
    done
}}

# The remotes git pair made in this repository, for remove, refresh and sync.
__git_pair_remotes() {{
    git config --get-regexp '^remote\..*\.pair-alias$' 2>/dev/null |
        sed -n 's/^remote\.\(.*\)\.pair-alias .*/\1/p'
}}

{script}
# `git pair <TAB>`: git's completion (which loads this file as the completion of git-pair)
# calls _git_pair with its own words; hand them to _{BASH_NAME} as if git-pair was typed.
_git_pair() {{
    local at=${{__git_cmd_idx:-}}
    if [ -z "$at" ]; then
        for ((at = 1; at < ${{#words[@]}}; at++)); do
            [ "${{words[at]}}" = pair ] && break
        done
    fi
    local COMP_WORDS=("git-pair" "${{words[@]:at+1}}")
    local COMP_CWORD=$((cword - at))
    _{BASH_NAME} {BIN} "$cur" "${{COMP_WORDS[COMP_CWORD-1]}}"
    # git's completion runs with -o nospace: end each whole word with a space, as git's own
    # completions do (not directories, which go on with a /).
    local i
    for i in "${{!COMPREPLY[@]}}"; do
        [ -d "${{COMPREPLY[i]}}" ] || COMPREPLY[i]+=" "
    done
}}
"#
    )
}

fn zsh(generated: &str) -> String {
    // The optional CODE before the command would take the command's word (`git pair remove
    // <TAB>` would complete commands again); a code is never completed anyway, so it goes, and
    // the command is the first word on the line.
    let code = generated
        .lines()
        .find(|l| l.starts_with("'::code -- "))
        .expect("clap_complete's zsh script has the CODE argument");
    let generated = replace_all(generated, &format!("{code}\n"), "");
    let generated = replace_all(&generated, "$line[2]", "$line[1]");
    let script = replace_all(&generated, &format!("({IFACES})"), "__git_pair_interfaces");
    let script = replace_all(&script, &format!("({REMOTES})"), "__git_pair_remotes");
    // The helpers go before the last lines, which run or register _git-pair.
    let tail = "if [ \"$funcstack[1]\" = \"_git-pair\" ]; then";
    let at = script
        .rfind(tail)
        .expect("clap_complete's zsh script ends by calling _git-pair");
    format!(
        r#"{}(( $+functions[__git_pair_interfaces] )) ||
__git_pair_interfaces() {{
    local -a names
    names=(/sys/class/net/*(N:t))
    _describe -t interfaces 'network interface' names
}}
(( $+functions[__git_pair_remotes] )) ||
__git_pair_remotes() {{
    local -a names
    names=(${{(f)"$(git config --get-regexp '^remote\..*\.pair-alias$' 2>/dev/null |
        sed -n 's/^remote\.\(.*\)\.pair-alias .*/\1/p')"}})
    _describe -t remotes 'paired remote' names
}}

{}"#,
        &script[..at],
        &script[at..]
    )
}

fn fish(generated: &str, cmd: &clap::Command) -> String {
    let script = replace_all(
        generated,
        &format!("\"{IFACES}\\t''\""),
        "\"(__fish_git_pair_interfaces)\"",
    );
    // clap_complete's fish script offers no value after a top-level option (`git-pair
    // --interface <TAB>`: its condition fails on the option still waiting for its value), and
    // does not complete positionals (the NAME of remove and refresh).
    let mut named = String::new();
    let subcommands: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
    for a in cmd.get_arguments() {
        let iface = a
            .get_value_names()
            .is_some_and(|v| v.iter().any(|n| n == "IFACE"));
        if let (true, Some(long)) = (iface, a.get_long()) {
            named.push_str(&format!(
                "complete -c {BIN} -n \"not __fish_seen_subcommand_from {}\" -l {long} -r -f -a \"(__fish_git_pair_interfaces)\"\n",
                subcommands.join(" ")
            ));
        }
    }
    for sub in cmd.get_subcommands() {
        if NAMED.contains(&sub.get_name()) {
            named.push_str(&format!(
                "complete -c {BIN} -n \"__fish_git_pair_using_subcommand {}\" -f -a \"(__fish_git_pair_remotes)\"\n",
                sub.get_name()
            ));
        }
    }
    format!(
        r#"# Network interfaces, for --interface.
function __fish_git_pair_interfaces
    for f in /sys/class/net/*
        string replace -r '.*/' '' -- $f
    end
end

# The remotes git pair made in this repository, for remove, refresh and sync.
function __fish_git_pair_remotes
    git config --get-regexp '^remote\..*\.pair-alias$' 2>/dev/null | string replace -rf '^remote\.(.*)\.pair-alias .*' '$1'
end

{script}{named}"#
    )
}
