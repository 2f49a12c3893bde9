//! The command line, declared with clap. Its doc comments are the `--help`
//! text, and the man page (man/git-pair.1) is generated from this
//! definition by [`crate::man`].

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, CommandFactory, Parser, Subcommand};

/// Pair this repository with one on another machine on the same LAN: each
/// becomes the other's git remote over ssh, verified with a short code.
#[derive(Debug, Parser)]
#[command(
    name = "git-pair",
    bin_name = "git pair",
    version,
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true,
    long_about = "Pair this repository with one on another machine on the same LAN.\n\n\
Run `git pair` in a repository on one machine: it shows a code. Run `git pair join` in a \
repository on the other machine and type the code at its prompt (the Tab key completes each word). \
The two find each other by UDP multicast, verify each other \
with a PAKE keyed by the code, exchange ssh keys and pinned sshd host keys, and each adds the \
other as a git remote that works over ssh at once. The peer is let in only to this one \
repository, through a forced command in ~/.ssh/authorized_keys. No server, no internet, no \
prompt from ssh."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// The code shown on the other machine, for scripts; people run `git pair join` instead.
    /// Without it (and without --code-file), a code is generated and shown, for the other side
    /// to type.
    ///
    /// It must have the shape of a code: its number, then its words (e.g. 535-bulb-fog-baby;
    /// case and runs of spaces or dashes do not matter). Anything else is a usage error, so that
    /// a mistyped command never starts a pairing. Given here, the code is visible to every user
    /// of this machine in the process list (and kept in the shell's history) while git pair
    /// runs: another user could read it and race to join first. The prompt of `git pair join`,
    /// --code-file and the environment variable GIT_PAIR_CODE keep it out of the process list;
    /// --code-file and GIT_PAIR_CODE also accept any phrase both sides type.
    #[arg(value_name = "CODE")]
    pub code: Option<String>,

    /// Read the code from FILE ('-': the first line of standard input). Any phrase both sides
    /// type is accepted here.
    #[arg(long, value_name = "FILE", conflicts_with = "code")]
    pub code_file: Option<PathBuf>,

    #[command(flatten)]
    pub pair: PairArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Join the pairing shown on the other machine: type its code at a prompt.
    ///
    /// The prompt reads the code from the terminal, completing each word with the Tab key (three
    /// letters of a word are always enough; Tab twice lists the words that fit). The code never
    /// appears in the process list, the environment, the shell's history, a file or a log. Any
    /// phrase both sides type is accepted too. Without a terminal, the code is read as one line
    /// from standard input. Takes the same options as `git pair`.
    Join {
        #[command(flatten)]
        pair: PairArgs,
    },
    /// List the pairings of this repository.
    ///
    /// For each: the remote, the peer as user@host:path, the address of its
    /// sshd, the fingerprints of its login key and pinned host keys, when it
    /// was paired, and whether its sshd answers now (a TCP connection, at
    /// most 1.5 s). A pairing whose remote was deleted by hand is listed as
    /// orphaned. With --check, each peer is also asked to let this side log
    /// in with the paired key.
    List {
        /// Print a JSON array, one object per pairing (see LIST JSON in the
        /// man page).
        #[arg(long)]
        json: bool,

        /// Also log in to each peer with the paired key (ssh in batch mode
        /// through the pairing's alias, running `true`) and say whether it
        /// lets this side in. Exit status 1 if a peer does not.
        #[arg(long)]
        check: bool,

        /// Only this pairing: its remote's name (or its ssh alias).
        #[arg(value_name = "NAME")]
        name: Option<String>,
    },
    /// Undo a pairing on this machine.
    ///
    /// Removes the peer's line from ~/.ssh/authorized_keys (so its key no
    /// longer gets in), the ssh alias and its pinned host keys, the pair
    /// secret, the key generated for the pairing unless another pairing uses
    /// it, and the remote with its records. Nothing else is touched. Removing a pairing
    /// that is half gone, or gone, is not an error. Run it on both machines
    /// to undo both sides.
    Remove {
        /// The remote's name, as `git pair list` shows it (or the ssh alias
        /// of an orphaned pairing).
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Find paired peers again after an address changed, and point their ssh
    /// aliases there.
    ///
    /// With no NAME, every pairing of this repository. For each, in this
    /// order: the peer's host name under .local, if it resolves (mDNS, with
    /// nss-mdns or avahi); the address the alias has now; a locate query
    /// authenticated with the pairing's pair secret, by multicast, to --peer
    /// hosts, then to every address of the local IPv4 subnets, answered by
    /// `git pair watch` on the peer. Whatever is found must prove, in an ssh
    /// key exchange, that it holds the pinned host key; only then is HostName
    /// (and Port, if the peer's sshd moved) changed in the alias, and nothing
    /// else. A host key other than the pinned one is refused: a changed
    /// address never changes trust.
    Refresh(RefreshArgs),
    /// Answer locate queries, so that paired peers find this machine after its
    /// address changed.
    ///
    /// Runs in the foreground until stopped (Ctrl-C, SIGTERM), for one user:
    /// it answers `git pair refresh` on a peer, for every pairing in
    /// ~/.ssh/git-pair, and notices pairings added or removed while it runs.
    /// It answers only queries authenticated with a pair secret it holds,
    /// with its current addresses, and bounds the work a flood of datagrams
    /// can cause. A systemd user unit runs it at login (see FINDING A PEER
    /// AGAIN in the man page).
    Watch(WatchArgs),
    /// Sync this repository with its paired peers, without ever merging.
    ///
    /// For the checked-out branch B: fetches every peer's branches; fast-forwards B to the
    /// newest of a peer's B and synced/B that contains it, when the work tree has no
    /// uncommitted changes; then pushes B to synced/B on each peer (never forced, never to the
    /// peer's checked-out branch: the peer's own sync fast-forwards it). Histories that have
    /// diverged are reported and left alone. In a git-annex repository it runs `git annex sync`
    /// with the paired remotes instead, with --content when annex.synccontent asks for it. A
    /// peer that cannot be reached is reported as unreachable and the others are synced. One
    /// line per peer says what happened (see SYNC in the man page).
    Sync {
        /// Sync only with this pairing (the remote's name, as `git pair list` shows it).
        #[arg(value_name = "NAME")]
        name: Option<String>,

        /// Print JSON events on standard output, one per line (see JSON EVENTS in the man
        /// page).
        #[arg(long, conflicts_with = "hook")]
        json: bool,

        /// What git pair's hooks run, in the background: print nothing, run one sync at a
        /// time, let commits made in quick succession coalesce into one sync, and log to
        /// .git/git-pair/sync.log. Does nothing in a repository without pairings.
        #[arg(long)]
        hook: bool,
    },
    /// Install or uninstall the hooks that run `git pair sync` after each commit.
    ///
    /// The hooks (post-commit, post-merge, and post-checkout on a branch switch) start
    /// `git pair sync --hook` in the background: git never waits for it. They go where git
    /// looks for hooks (core.hooksPath, else .git/hooks). A hook you already have is kept as
    /// HOOK.git-pair-user and runs first; its exit status stays the hook's exit status.
    Hooks {
        #[command(subcommand)]
        action: HooksAction,
    },
    /// The forced command in authorized_keys; sshd runs it, people do not.
    ///
    /// It reads SSH_ORIGINAL_COMMAND and runs git-upload-pack,
    /// git-receive-pack, git-upload-archive or git-annex-shell on the paired
    /// repository only; anything else is refused with a message on stderr and
    /// exit status 1.
    Serve {
        /// The one repository the peer may fetch from and push to.
        #[arg(long, value_name = "PATH")]
        repo: PathBuf,
    },
}

/// Options of `git pair refresh`.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// The remote's name, as `git pair list` shows it, or its ssh alias.
    /// Without it, every pairing of this repository.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Send locate queries only on this network interface (repeatable), as
    /// for pairing.
    #[arg(long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,

    /// Also send locate queries to this host by unicast (repeatable), for
    /// networks that drop multicast.
    #[arg(long = "peer", value_name = "HOST")]
    pub peers: Vec<String>,

    /// UDP port of the locate protocol; the peer's watch must use the same.
    #[arg(long, value_name = "PORT", default_value_t = crate::protocol::locate::PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Give up on a peer after this many seconds of locate queries.
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub timeout: u64,

    /// Do not send locate queries to every address of the local IPv4
    /// subnets when multicast gets no answer.
    #[arg(long)]
    pub no_scan: bool,

    /// Print machine-readable events on standard output, one JSON object per
    /// line (see JSON EVENTS in the man page).
    #[arg(long)]
    pub json: bool,
}

/// Options of `git pair watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Answer only on this network interface (repeatable). By default every
    /// interface that is up, multicast-capable and not loopback, as for
    /// pairing.
    #[arg(long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,

    /// UDP port of the locate protocol.
    #[arg(long, value_name = "PORT", default_value_t = crate::protocol::locate::PORT,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub port: u16,

    /// Print machine-readable events on standard output, one JSON object per
    /// line (see JSON EVENTS in the man page).
    #[arg(long)]
    pub json: bool,
}

/// `git pair hooks ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum HooksAction {
    /// Install the hooks; installing again changes nothing.
    ///
    /// A hook you already have is renamed to HOOK.git-pair-user (bytes, mode and symlinks
    /// kept), and git pair's hook runs it first. Refuses, changing nothing, when that name is
    /// taken or git pair's own hook was edited.
    Install,
    /// Uninstall the hooks and put back, byte for byte, the hooks that were there before.
    ///
    /// A git pair hook that was edited since it was installed is left alone, with a message.
    Uninstall,
}

/// Options of a pairing: `git pair [CODE]` and `git pair join`.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// Use only this network interface (repeatable). By default every
    /// interface that is up, multicast-capable and not loopback is used;
    /// lo is used only when named.
    #[arg(long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,

    /// UDP port of the exchange; both sides must use the same one.
    /// [default: 28620, or git config pair.port]
    #[arg(long, value_name = "PORT", value_parser = port, allow_negative_numbers = true)]
    pub port: Option<u16>,

    /// Give up after this many seconds without a verified peer.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = seconds,
          allow_negative_numbers = true)]
    pub timeout: u64,

    /// Name of the new remote. By default it derives from the peer's host
    /// name, with a suffix if that name is taken.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Port on which this machine's sshd listens, told to the peer. git pair checks that it
    /// accepts a connection before it starts.
    #[arg(long, value_name = "PORT", default_value_t = 22, value_parser = port,
          allow_negative_numbers = true)]
    pub ssh_port: u16,

    /// This machine's sshd public host key to advertise for the peer to pin
    /// (repeatable). [default: /etc/ssh/ssh_host_*_key.pub]
    #[arg(long = "host-key", value_name = "FILE")]
    pub host_keys: Vec<PathBuf>,

    /// Log in to the peer with this existing private key (its .pub beside
    /// it), instead of a dedicated ed25519 key generated for this pairing.
    #[arg(long, value_name = "FILE")]
    pub key: Option<PathBuf>,

    /// Also greet this host by unicast (repeatable), for networks that drop
    /// multicast: Wi-Fi client isolation, multicast filtering, VLANs, VPNs.
    /// One side is enough.
    #[arg(long = "peer", value_name = "HOST")]
    pub peers: Vec<String>,

    /// Do not probe the local IPv4 subnet by unicast when no peer answers
    /// multicast. [default: probe after 3 s; git config pair.scan]
    #[arg(long)]
    pub no_scan: bool,

    /// Do not add the Include line for git pair's ssh configuration to ~/.ssh/config (for a
    /// read-only one, e.g. made by home-manager); git pair's own files under ~/.ssh/git-pair/
    /// are written as usual. ssh finds the new alias once the line git pair prints is in your
    /// ssh configuration. [default: git config pair.sshConfig, true]
    #[arg(long)]
    pub no_ssh_config: bool,

    /// Print machine-readable events on standard output, one JSON object per
    /// line (see JSON EVENTS in the man page). Nothing else goes to stdout.
    #[arg(long)]
    pub json: bool,

    /// Before anything is written, ask whether the check code shown on
    /// both machines is the same (y to go on). With --json, the sas event
    /// says "verify": true and the answer is one line {"verify": true} on
    /// standard input. No, no answer within 120 s, or the end of the input
    /// writes nothing on either machine.
    #[arg(long)]
    pub verify: bool,
}

/// A TCP or UDP port, with a message that says what is allowed.
fn port(text: &str) -> Result<u16, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err("a port is a whole number from 1 to 65535".into()),
    }
}

/// `--timeout`: whole seconds, at most a day.
fn seconds(text: &str) -> Result<u64, String> {
    match text.trim().parse::<i64>() {
        Ok(n) if (1..=86_400).contains(&n) => Ok(n as u64),
        _ => Err("give a whole number of seconds from 1 to 86400".into()),
    }
}

/// Why a command line was refused.
#[derive(Debug)]
pub enum ParseError {
    /// clap refused it, or it asked for `--help` or `--version` (see [`clap::Error::use_stderr`]).
    Clap(clap::Error),
    /// What looked like a code is not one (a mistyped command, most likely): said before
    /// anything else happens, so that nothing is sent on the network.
    Usage(String),
}

impl ParseError {
    /// The message for stderr, starting with `error:`. clap's tip "to pass '-1' as a value, use
    /// '-- -1'" is left out: after `--` the word would be taken for the CODE, which is never
    /// what was meant.
    pub fn message(&self) -> String {
        match self {
            ParseError::Clap(e) => {
                let text = e.to_string();
                let mut out = String::with_capacity(text.len());
                let mut lines = text.split_inclusive('\n').peekable();
                while let Some(line) = lines.next() {
                    let tip = line.trim_start().starts_with("tip: to pass '");
                    if tip {
                        // The blank line before it goes too, unless it ends a paragraph.
                        if out.ends_with("\n\n")
                            && lines.peek().is_some_and(|l| l.trim().is_empty())
                        {
                            out.pop();
                        }
                        continue;
                    }
                    out.push_str(line);
                }
                out
            }
            ParseError::Usage(message) => format!("error: {message}\n"),
        }
    }
}

/// Parses the process's command line; see [`parse_from`].
pub fn parse() -> Result<Cli, ParseError> {
    parse_from(std::env::args_os())
}

/// Parses a command line (the program name first).
///
/// Before clap sees it, the first word that is not an option is looked at:
/// - `help` shows the help (of the command after it, if any);
/// - a command (`join`, `list`, ...) is moved to the front, so that options given before it
///   belong to it (`git pair --interface lo join`);
/// - anything else is the CODE and must have the shape of a code
///   ([`crate::protocol::code::check_shape`]); if not, the error names the nearest command
///   (`git pair lst`: did you mean `git pair list`?). Nothing reaches the network before this.
pub fn parse_from<I, T>(args: I) -> Result<Cli, ParseError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let cmd = Cli::command();
    let positionals = top_level_positionals(&cmd, &args);
    if let Some(&first) = positionals.first() {
        let word = args[first].to_string_lossy().into_owned();
        if word == "help" {
            // `git pair help [COMMAND]` is `git pair [COMMAND] --help`.
            let mut rewritten = vec![args[0].clone()];
            rewritten.extend(positionals.get(1).map(|&i| args[i].clone()));
            rewritten.push("--help".into());
            args = rewritten;
        } else if cmd.find_subcommand(&word).is_some() {
            let sub = args.remove(first);
            args.insert(1, sub);
        } else {
            check_code_argument(&cmd, &args, &positionals)?;
        }
    }
    Cli::try_parse_from(args).map_err(ParseError::Clap)
}

/// The indexes of the words of `args` that are neither options nor option values, up to the
/// first command (whose own arguments follow it). After `--`, every word is one.
fn top_level_positionals(cmd: &clap::Command, args: &[OsString]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut i = 1;
    let mut options_done = false;
    while i < args.len() {
        let word = args[i].to_string_lossy();
        if !options_done && word == "--" {
            options_done = true;
        } else if !options_done && word.starts_with("--") {
            let name = word[2..].split('=').next().unwrap_or_default();
            let takes_value = cmd
                .get_arguments()
                .find(|a| a.get_long() == Some(name))
                .is_some_and(|a| a.get_action().takes_values());
            if takes_value && !word.contains('=') {
                i += 1;
            }
        } else if !options_done && word.starts_with('-') && word.len() > 1 {
            // Short flags: only -h and -V, which take no value.
        } else {
            out.push(i);
            if !options_done && cmd.find_subcommand(&*word).is_some() {
                break;
            }
        }
        i += 1;
    }
    out
}

/// The CODE argument (the first of `positionals`) must have the shape of a code; several words
/// where one code belongs are most likely a command or a code typed with spaces.
fn check_code_argument(
    cmd: &clap::Command,
    args: &[OsString],
    positionals: &[usize],
) -> Result<(), ParseError> {
    use crate::protocol::code::{check_shape, ShapeError};
    let first = positionals[0];
    let word = args[first].to_string_lossy();
    let all: Vec<String> = positionals
        .iter()
        .map(|&i| args[i].to_string_lossy().into_owned())
        .collect();
    match check_shape(&word) {
        Ok(()) if positionals.len() == 1 => Ok(()),
        Ok(()) => Err(ParseError::Usage(
            "unexpected words after the code: give git pair one code, e.g. 535-bulb-fog-baby"
                .into(),
        )),
        Err(ShapeError::NoWords)
            if positionals.len() > 1 && check_shape(&all.join("-")).is_ok() =>
        {
            Err(ParseError::Usage(
                "type the code as one word, with dashes between its parts, e.g. 535-bulb-fog-baby \
                 (or run `git pair join` and type it at the prompt)"
                    .into(),
            ))
        }
        Err(ShapeError::NoNumber) => Err(ParseError::Usage(not_a_command(cmd, args, positionals))),
        Err(e) => Err(ParseError::Usage(e.to_string())),
    }
}

/// The message for a word that is neither a command nor a code, naming the nearest command.
fn not_a_command(cmd: &clap::Command, args: &[OsString], positionals: &[usize]) -> String {
    let at = positionals[0];
    let word = args[at].to_string_lossy();
    // A lone word is shown (it is a mistyped command, most likely); a phrase might be a secret.
    let shown = if word.len() <= 24
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        format!("`{word}`")
    } else {
        "the argument".to_string()
    };
    let commands = visible_commands(cmd);
    match nearest_command(&word, &commands) {
        Some(name) => {
            let rest = suggested_arguments(&name, args, positionals);
            let suggestion = std::iter::once(format!("git pair {name}"))
                .chain(
                    rest.iter()
                        .map(|a| crate::sanitize::for_terminal(&a.to_string_lossy()).into_owned()),
                )
                .collect::<Vec<_>>()
                .join(" ");
            format!("{shown} is not a git pair command, nor a code: did you mean `{suggestion}`?")
        }
        None => format!(
            "{shown} is not a git pair command, nor a code (a code is the number and words shown \
             on the other machine, e.g. 535-bulb-fog-baby). The commands are {}; see `git pair \
             --help`",
            commands.join(", ")
        ),
    }
}

/// What to keep of the other arguments in a suggested command: all of them when the command
/// accepts them (`git pair lst --json` -> `git pair list --json`), else only the words after
/// the mistyped one (`git pair rm vm --interface lo` -> `git pair remove vm`), so that the
/// suggestion is a command line that works.
fn suggested_arguments(name: &str, args: &[OsString], positionals: &[usize]) -> Vec<OsString> {
    let at = positionals[0];
    let others: Vec<OsString> = args
        .iter()
        .enumerate()
        .skip(1)
        .filter(|&(i, _)| i != at)
        .map(|(_, a)| a.clone())
        .collect();
    let candidate = [args[0].clone(), name.into()]
        .into_iter()
        .chain(others.iter().cloned());
    if Cli::try_parse_from(candidate).is_ok() {
        return others;
    }
    args.iter()
        .skip(at + 1)
        .take_while(|a| !a.to_string_lossy().starts_with('-'))
        .cloned()
        .collect()
}

/// The commands people use (not `serve`, which sshd runs).
fn visible_commands(cmd: &clap::Command) -> Vec<String> {
    cmd.get_subcommands()
        .filter(|s| s.get_name() != "serve" && !s.is_hide_set())
        .map(|s| s.get_name().to_string())
        .collect()
}

/// Words people type for a command, from other tools.
const SYNONYMS: [(&str, &str); 14] = [
    ("ls", "list"),
    ("l", "list"),
    ("show", "list"),
    ("status", "list"),
    ("rm", "remove"),
    ("del", "remove"),
    ("delete", "remove"),
    ("unpair", "remove"),
    ("forget", "remove"),
    ("revoke", "remove"),
    ("receive", "join"),
    ("recv", "join"),
    ("accept", "join"),
    ("connect", "join"),
];

/// The command `word` most likely meant: a known synonym, or the closest name by edit distance
/// (at most a third of the word's letters, at least one, changed).
fn nearest_command(word: &str, commands: &[String]) -> Option<String> {
    let word = word.to_lowercase();
    if let Some((_, name)) = SYNONYMS.iter().find(|(w, _)| *w == word) {
        if commands.iter().any(|c| c == name) {
            return Some(name.to_string());
        }
    }
    let limit = (word.chars().count() / 3).max(1);
    commands
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Result<Cli, ParseError> {
        parse_from(std::iter::once("git-pair").chain(args.iter().copied()))
    }

    fn usage_message(args: &[&str]) -> String {
        match parse(args) {
            Err(ParseError::Usage(message)) => message,
            other => panic!("{args:?}: expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn parses_a_code_and_options() {
        let cli = parse(&[
            "7-guitar-orbit-velvet",
            "--interface",
            "va",
            "--interface",
            "lo",
            "--json",
            "--timeout",
            "5",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.code.as_deref(), Some("7-guitar-orbit-velvet"));
        assert_eq!(cli.pair.interfaces, ["va", "lo"]);
        assert_eq!(cli.pair.timeout, 5);
        assert!(cli.pair.json);
    }

    #[test]
    fn serve_is_a_subcommand() {
        let cli = parse(&["serve", "--repo", "/r"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve { .. })));
    }

    #[test]
    fn list_remove_and_join_are_subcommands() {
        let cli = parse(&["list", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::List {
                json: true,
                check: false,
                name: None
            })
        ));
        let cli = parse(&["list", "--check", "desk"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::List { json: false, check: true, name: Some(n) }) if n == "desk"
        ));
        let cli = parse(&["remove", "desk"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Remove { name }) if name == "desk"));
        let cli = parse(&["join", "--interface", "lo", "--timeout", "3"]).unwrap();
        match cli.command {
            Some(Command::Join { pair }) => {
                assert_eq!(pair.interfaces, ["lo"]);
                assert_eq!(pair.timeout, 3);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn options_before_a_command_belong_to_it() {
        let cli = parse(&["--interface", "lo", "join", "--no-scan"]).unwrap();
        match cli.command {
            Some(Command::Join { pair }) => {
                assert_eq!(pair.interfaces, ["lo"]);
                assert!(pair.no_scan);
            }
            other => panic!("{other:?}"),
        }
        let cli = parse(&["--json", "list"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::List { json: true, .. })
        ));
    }

    #[test]
    fn join_takes_no_code() {
        assert!(parse(&["join", "7-guitar-orbit-velvet"]).is_err());
        assert!(parse(&["join", "--code-file", "f"]).is_err());
    }

    #[test]
    fn a_word_that_is_not_a_code_names_the_nearest_command() {
        for (args, suggestion) in [
            (&["lst"][..], "`git pair list`"),
            (&["ls"], "`git pair list`"),
            (&["--interface", "lo", "lsit"], "`git pair list`"),
            (&["rm", "vm"], "`git pair remove vm`"),
            // Options are kept only where the suggested command takes them.
            (&["lst", "--json"], "`git pair list --json`"),
            (&["--json", "lst"], "`git pair list --json`"),
            (
                &["rm", "vm", "--interface", "lo", "--timeout", "1"],
                "`git pair remove vm`",
            ),
            (&["lst", "--interface", "lo"], "`git pair list`"),
            (&["remvoe", "vm"], "`git pair remove vm`"),
            (&["jion"], "`git pair join`"),
            (&["receive"], "`git pair join`"),
        ] {
            let message = usage_message(args);
            assert!(message.contains(suggestion), "{args:?}: {message}");
            assert!(message.contains("not a git pair command"), "{message}");
        }
        let message = usage_message(&["frobnicate"]);
        assert!(message.contains("`frobnicate`"), "{message}");
        assert!(message.contains("join, list, remove"), "{message}");
        assert!(!message.contains("did you mean"), "{message}");
        // A phrase is not repeated: it might be a secret.
        let message = usage_message(&["correct-horse-battery"]);
        assert!(!message.contains("horse"), "{message}");
    }

    #[test]
    fn a_code_must_have_the_shape_of_a_code() {
        assert!(usage_message(&["535"]).contains("no words"));
        assert!(usage_message(&["535-bulb-fgo-baby"]).contains("word 2"));
        assert!(usage_message(&["--", "-1"]).contains("no words"));
        assert!(usage_message(&["--", "x-1"]).contains("not a git pair command"));
        let message = usage_message(&["212", "kayak", "lemon", "moth"]);
        assert!(message.contains("one word, with dashes"), "{message}");
        assert!(!message.contains("kayak"), "{message}");
        assert!(usage_message(&["535-bulb-fog-baby", "extra"]).contains("one code"));
        assert!(parse(&["535 BULB fog-baby"]).is_ok());
    }

    #[test]
    fn help_shows_the_help() {
        for (args, needle) in [(&["help"][..], "join"), (&["help", "list"], "--json")] {
            match parse(args) {
                Err(ParseError::Clap(e)) => {
                    assert!(!e.use_stderr(), "{args:?}: {e}");
                    assert!(e.to_string().contains(needle), "{args:?}: {e}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_negative_number_is_a_bad_value_not_a_code() {
        for args in [
            &["--timeout", "-1"][..],
            &["--port", "-5"],
            &["--ssh-port=-1"],
        ] {
            match parse(args) {
                Err(e @ ParseError::Clap(_)) => {
                    let text = e.message();
                    assert!(!text.contains("-- -1"), "{text}");
                    assert!(text.contains("whole number"), "{text}");
                }
                other => panic!("{args:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn watch_and_refresh_are_subcommands() {
        let cli = Cli::try_parse_from(["git-pair", "watch", "--interface", "lo"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Watch(w)) if w.interfaces == ["lo"] && w.port == 28621)
        );
        let cli = Cli::try_parse_from([
            "git-pair",
            "refresh",
            "desk",
            "--json",
            "--peer",
            "10.0.0.2",
            "--timeout",
            "3",
        ])
        .unwrap();
        let Some(Command::Refresh(r)) = cli.command else {
            panic!("not refresh");
        };
        assert_eq!(r.name.as_deref(), Some("desk"));
        assert_eq!((r.json, r.timeout, r.peers.len()), (true, 3, 1));
        let cli = Cli::try_parse_from(["git-pair", "refresh"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Refresh(r)) if r.name.is_none()));
    }

    #[test]
    fn sync_and_hooks_are_subcommands() {
        let cli = parse(&["sync"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Sync {
                name: None,
                json: false,
                hook: false
            })
        ));
        let cli = parse(&["--json", "sync", "desk"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Sync { name: Some(n), json: true, .. }) if n == "desk")
        );
        let cli = parse(&["hooks", "install"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Hooks {
                action: HooksAction::Install
            })
        ));
        for args in [
            &["hooks"][..],
            &["hooks", "frob"],
            &["sync", "--json", "--hook"],
            &["sync", "a", "b"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
        assert!(usage_message(&["snyc"]).contains("`git pair sync`"));
    }

    #[test]
    fn bad_usage_is_refused() {
        for args in [
            &["--timeout", "0"][..],
            &["--port", "70000"],
            &["7-guitar-orbit-velvet", "--code-file", "f"],
            &["--frobnicate"],
            &["serve"],
            &["remove"],
            &["list", "x", "y"],
            &["refresh", "a", "b"],
            &["refresh", "--timeout", "0"],
            &["watch", "x"],
            &["watch", "--port", "0"],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
