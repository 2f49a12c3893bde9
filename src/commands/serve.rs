//! `git pair serve --repo PATH`: the forced command of a paired key in `~/.ssh/authorized_keys`.
//!
//! sshd runs it for every connection made with the peer's key, whatever the peer asked for; the
//! peer's request is in `SSH_ORIGINAL_COMMAND`. This module owns the decision: the peer may run
//! `git-upload-pack`, `git-receive-pack`, `git-upload-archive` or `git-annex-shell` on the one
//! repository the key was paired for, and nothing else.
//!
//! The request is never given to a shell. It is tokenized here, strictly (a subset of POSIX sh
//! quoting that covers everything git and git-annex send, refusing anything unusual), the path
//! is resolved the way git's `enter_repo` would, and only a canonical-path comparison with the
//! configured repository decides. git (or git-annex-shell) is then `exec`ed with *our*
//! canonical path, not the peer's string.
//!
//! # git-annex
//!
//! git-annex talks to an ssh remote by running `git-annex-shell COMMAND DIRECTORY [PARAMS...]
//! [-- FIELD=VALUE... --]` there, every word quoted with `'...'`. git-annex 10.20230126 sends,
//! for `sync --content`, `copy`, `get`, `drop`, `move`, `whereis`:
//!
//! ```text
//! git-annex-shell 'configlist' '/~/repo'
//! git-annex-shell 'configlist' '/~/repo' '--debug' '--' 'autoinit=1' '--'
//! git-annex-shell 'p2pstdio' '/~/repo' '<client uuid>' --uuid <server uuid>
//! true
//! ```
//!
//! (plus plain `git-upload-pack`/`git-receive-pack` for the git side). The directory is the
//! remote's path with `~` written as `/~/`; it goes through the same resolver and the same
//! canonical comparison as a git path, and git-annex-shell is given our canonical path instead.
//!
//! The commands are an allow-list, [`AnnexCommand`]: exactly the commands git-annex-shell
//! itself implements (its man page and `--help`): `configlist`, `p2pstdio`, `notifychanges`,
//! `gcryptsetup`, `inannex`, `recvkey`, `sendkey`, `dropkey`. Every one works on the given
//! directory only. Anything else git-annex-shell would hand to git-shell (`git-upload-pack`
//! spelled its way, or whatever git-shell allows), so it is refused here rather than trusted to
//! git-annex-shell. Parameters are checked too: words that do not start with `-` (keys, UUIDs),
//! the few options git-annex sends (`--uuid`, `--debug`, `--quiet`, `--force`, ...), and the
//! `-- field=value --` block with git-annex-shell's known field names. Anything else, notably
//! `-c name=value` (git configuration, which can name commands to run), is refused.
//!
//! The login-shell form `git-annex-shell -c "COMMAND ..."` is refused: sshd puts the client's
//! own command line in `SSH_ORIGINAL_COMMAND`, and git-annex never writes `-c` there.
//!
//! `true` alone succeeds without running anything: git-annex sends it to warm up its ssh
//! connection cache (`ssh -o BatchMode=true ... host true`), and would otherwise retry it on
//! every run. It gives the peer nothing.
//!
//! git-annex-shell runs with `GIT_ANNEX_SHELL_DIRECTORY` set to the canonical repository (it
//! then refuses any other directory itself: defence in depth) and `GIT_ANNEX_SHELL_LIMITED=1`
//! (it never falls back to git-shell). When git-annex-shell is not installed here the peer is
//! told so, and what to install; [`annex_shell_path`] lets pairing tell it in advance.

use std::convert::Infallible;
use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::sanitize::for_terminal_within;

/// A service the peer may run. Adding one is one variant plus its names in the `match`es below;
/// the compiler points at every place that needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Service {
    /// `git-upload-pack`: fetch, clone, ls-remote.
    UploadPack,
    /// `git-receive-pack`: push.
    ReceivePack,
    /// `git-upload-archive`: `git archive --remote`.
    UploadArchive,
    /// `git-annex-shell COMMAND DIR ...`: git-annex's side of an ssh remote.
    AnnexShell(AnnexCommand),
}

impl Service {
    /// The git services, in the order of [`allowed_services`].
    pub const GIT: [Service; 3] = [
        Service::UploadPack,
        Service::ReceivePack,
        Service::UploadArchive,
    ];

    /// The program name clients send, e.g. `git-upload-pack`.
    pub fn program(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
            Service::UploadArchive => "git-upload-archive",
            Service::AnnexShell(_) => ANNEX_SHELL,
        }
    }

    /// The `git` subcommand that runs it, e.g. `upload-pack`; `None` for git-annex-shell,
    /// which is a program of its own.
    pub fn subcommand(self) -> Option<&'static str> {
        match self {
            Service::UploadPack => Some("upload-pack"),
            Service::ReceivePack => Some("receive-pack"),
            Service::UploadArchive => Some("upload-archive"),
            Service::AnnexShell(_) => None,
        }
    }

    /// The git service for a dashed program name (`git-upload-pack`); exact match.
    pub fn from_program(name: &str) -> Option<Self> {
        Self::GIT.into_iter().find(|s| s.program() == name)
    }

    /// The git service for a `git` subcommand (`upload-pack`); exact match.
    pub fn from_subcommand(name: &str) -> Option<Self> {
        Self::GIT.into_iter().find(|s| s.subcommand() == Some(name))
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Service::AnnexShell(command) => write!(f, "{ANNEX_SHELL} {command}"),
            other => f.write_str(other.program()),
        }
    }
}

/// The program git-annex runs on an ssh remote.
pub const ANNEX_SHELL: &str = "git-annex-shell";

/// A git-annex-shell command the peer may run: all of those git-annex-shell 10.20230126
/// implements itself (see the module documentation for why all, and why only these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnnexCommand {
    /// `configlist DIR`: prints `annex.uuid` and the like; git-annex's first question.
    ConfigList,
    /// `p2pstdio DIR UUID`: the git-annex P2P protocol (get, copy, drop, lock, ...).
    P2pStdio,
    /// `notifychanges DIR`: tells `git annex remotedaemon` when refs change.
    NotifyChanges,
    /// `gcryptsetup DIR GCRYPTID`: sets up a gcrypt repository.
    GcryptSetup,
    /// `inannex DIR KEY...`: whether keys are present (gcrypt special remote).
    InAnnex,
    /// `recvkey DIR KEY`: receives content by rsync (gcrypt, old git-annex).
    RecvKey,
    /// `sendkey DIR KEY`: sends content by rsync (gcrypt, old git-annex).
    SendKey,
    /// `dropkey DIR KEY...`: drops content (gcrypt, old git-annex).
    DropKey,
}

impl AnnexCommand {
    /// Every command, in the order of [`allowed_annex_commands`].
    pub const ALL: [AnnexCommand; 8] = [
        AnnexCommand::ConfigList,
        AnnexCommand::P2pStdio,
        AnnexCommand::NotifyChanges,
        AnnexCommand::GcryptSetup,
        AnnexCommand::InAnnex,
        AnnexCommand::RecvKey,
        AnnexCommand::SendKey,
        AnnexCommand::DropKey,
    ];

    /// The name on git-annex-shell's command line, e.g. `configlist`.
    pub fn name(self) -> &'static str {
        match self {
            AnnexCommand::ConfigList => "configlist",
            AnnexCommand::P2pStdio => "p2pstdio",
            AnnexCommand::NotifyChanges => "notifychanges",
            AnnexCommand::GcryptSetup => "gcryptsetup",
            AnnexCommand::InAnnex => "inannex",
            AnnexCommand::RecvKey => "recvkey",
            AnnexCommand::SendKey => "sendkey",
            AnnexCommand::DropKey => "dropkey",
        }
    }

    /// The command for a name; exact match.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

impl fmt::Display for AnnexCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const ALLOWED_SERVICES: [&str; 4] = [
    "git-upload-pack",
    "git-receive-pack",
    "git-upload-archive",
    ANNEX_SHELL,
];

const ALLOWED_ANNEX_COMMANDS: [&str; 8] = [
    "configlist",
    "p2pstdio",
    "notifychanges",
    "gcryptsetup",
    "inannex",
    "recvkey",
    "sendkey",
    "dropkey",
];

/// The programs a paired key may run, for documentation and `--help`.
pub fn allowed_services() -> &'static [&'static str] {
    &ALLOWED_SERVICES
}

/// The git-annex-shell commands a paired key may run, for documentation.
pub fn allowed_annex_commands() -> &'static [&'static str] {
    &ALLOWED_ANNEX_COMMANDS
}

/// Options git-annex puts after the directory that take no value: git-annex-shell's common
/// options it may pass on (`--debug` when the client runs with `--debug`; `--quiet --force`
/// with `dropkey`). Not allowed: `-c name=value` (git configuration), `--debugfilter`,
/// `--backend`, and anything unknown.
const ANNEX_FLAGS: [&str; 9] = [
    "--debug",
    "-d",
    "--no-debug",
    "--quiet",
    "-q",
    "--verbose",
    "-v",
    "--force",
    "--fast",
];

/// The fields git-annex-shell accepts in its `-- field=value --` block.
const ANNEX_FIELDS: [&str; 5] = [
    "remoteuuid",
    "associatedfile",
    "direct",
    "autoinit",
    "unlocked",
];

/// A request that parsed: which service, on which path (as the peer wrote it, unquoted), with
/// which further arguments (git-annex-shell only; checked, in the peer's order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub service: Service,
    pub path: String,
    pub args: Vec<String>,
}

/// Why a request was refused before any file system check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// Nothing but spaces.
    Empty,
    /// `SSH_ORIGINAL_COMMAND` is not UTF-8.
    NotUtf8,
    /// Longer than [`MAX_REQUEST_LEN`].
    TooLong,
    /// A control character (newline, tab, ESC, ...) anywhere.
    ControlCharacter,
    /// An unquoted shell metacharacter, `$` or a backquote in double quotes, or a trailing
    /// backslash.
    ShellSyntax(char),
    /// A quote that is never closed.
    UnterminatedQuote,
    /// The program is not one of [`allowed_services`] (the peer's word, unescaped).
    UnknownProgram(String),
    /// A service with no repository path.
    MissingPath,
    /// More than one argument after the service.
    ExtraArguments,
    /// An empty repository path (`''`).
    EmptyPath,
    /// A path starting with `-`, which git would take for an option.
    OptionPath,
    /// `~otheruser/...`: another user's home.
    OtherUsersHome,
    /// A well-formed request for a path that is not the served repository.
    OtherRepository,
    /// `git-annex-shell -c "..."`, the login-shell form git-annex never sends.
    AnnexLoginShell,
    /// A git-annex-shell command that is not one of [`allowed_annex_commands`] (the peer's
    /// word, unescaped).
    UnknownAnnexCommand(String),
    /// An option after the directory that git-annex does not send (the peer's word).
    AnnexOption(String),
    /// A word in the `-- field=value --` block that is not a known field (the peer's word).
    AnnexField(String),
    /// Words after the closing `--` of the field block.
    AnnexAfterFields,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Empty => f.write_str("the command is empty"),
            Refusal::NotUtf8 => f.write_str("the command is not valid UTF-8"),
            Refusal::TooLong => write!(f, "the command is longer than {MAX_REQUEST_LEN} bytes"),
            Refusal::ControlCharacter => f.write_str("the command contains a control character"),
            Refusal::ShellSyntax(c) => write!(
                f,
                "the command uses shell syntax ({}) that git never sends",
                for_terminal_within(&c.to_string(), 1)
            ),
            Refusal::UnterminatedQuote => f.write_str("the command has an unterminated quote"),
            Refusal::UnknownProgram(p) => write!(
                f,
                "{} is not one of {}",
                for_terminal_within(p, MAX_PROGRAM_ECHO_CHARS),
                ALLOWED_SERVICES.join(", ")
            ),
            Refusal::MissingPath => f.write_str("no repository path was given"),
            Refusal::ExtraArguments => f.write_str("git sends exactly one argument, the path"),
            Refusal::EmptyPath => f.write_str("the repository path is empty"),
            Refusal::OptionPath => f.write_str("the repository path starts with '-'"),
            Refusal::OtherUsersHome => f.write_str("~user paths are not served"),
            Refusal::OtherRepository => f.write_str("that is a different path"),
            Refusal::AnnexLoginShell => write!(
                f,
                "{ANNEX_SHELL} -c is not accepted; git-annex sends its command without it"
            ),
            Refusal::UnknownAnnexCommand(c) => write!(
                f,
                "{ANNEX_SHELL} {} is not one of {}",
                for_terminal_within(c, MAX_PROGRAM_ECHO_CHARS),
                ALLOWED_ANNEX_COMMANDS.join(", ")
            ),
            Refusal::AnnexOption(o) => write!(
                f,
                "{} is not an option git-annex sends",
                for_terminal_within(o, MAX_PROGRAM_ECHO_CHARS)
            ),
            Refusal::AnnexField(w) => write!(
                f,
                "{} is not one of the fields {}",
                for_terminal_within(w, MAX_PROGRAM_ECHO_CHARS),
                ANNEX_FIELDS.join(", ")
            ),
            Refusal::AnnexAfterFields => {
                f.write_str("git-annex sends nothing after the closing -- of its fields")
            }
        }
    }
}

/// Errors of `git pair serve`. Every variant means "exit with status 1"; each displays as one
/// line meant to follow a `git pair serve: ` prefix on stderr.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// No `SSH_ORIGINAL_COMMAND`: someone tried to log in with the paired key.
    #[error(
        "refused: this key may only be used by git and git-annex (git pair serve): interactive logins are refused"
    )]
    Interactive,

    /// The request is not something this key may do. `repo` is filled in by [`run`] (it is
    /// `None` from the pure functions, which do not know the repository).
    #[error("{}", refused_message(.refusal, .request, .repo.as_deref()))]
    Refused {
        refusal: Refusal,
        request: String,
        repo: Option<PathBuf>,
    },

    /// The repository this key serves cannot be opened (moved or deleted since pairing).
    #[error(
        "cannot serve {}: {source}; if the repository moved, pair again with `git pair` from its new place",
        .repo.display()
    )]
    Repo {
        repo: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Neither `HOME` nor the user database says where this user's home is.
    #[error(
        "cannot find the home directory: HOME is unset and the user database has no entry for uid {uid}"
    )]
    NoHome { uid: u32 },

    /// `exec git` failed.
    #[error("could not run git ({source}): is git installed and on the PATH of this account?")]
    Exec {
        #[source]
        source: io::Error,
    },

    /// git-annex-shell was asked for but is not on this account's PATH. `host` is this
    /// machine's name, so that the message makes sense on the peer's terminal.
    #[error(
        "{ANNEX_SHELL} is not installed on {host}, so git-annex cannot use this remote; \
         install git-annex on {host} (Debian/Ubuntu: sudo apt install git-annex) and try again"
    )]
    AnnexShellMissing { host: String },

    /// `exec git-annex-shell` failed for another reason than its absence. The message leaves
    /// the cause to the error chain (`...: Permission denied`).
    #[error(
        "could not run {}; check the git-annex installation on this machine",
        .path.display()
    )]
    AnnexExec {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ServeError {
    fn refused(refusal: Refusal, request: &str) -> Self {
        ServeError::Refused {
            refusal,
            request: request.to_owned(),
            repo: None,
        }
    }

    /// The same error, naming the served repository in the message.
    fn with_repo(self, served: &Path) -> Self {
        match self {
            ServeError::Refused {
                refusal, request, ..
            } => ServeError::Refused {
                refusal,
                request,
                repo: Some(served.to_path_buf()),
            },
            other => other,
        }
    }
}

fn refused_message(refusal: &Refusal, request: &str, repo: Option<&Path>) -> String {
    let what = match repo {
        Some(repo) => format!(
            "only git fetch/push and git-annex on {} are allowed with this key",
            for_terminal_within(&repo.to_string_lossy(), usize::MAX)
        ),
        None => "only git fetch/push and git-annex are allowed with this key".to_owned(),
    };
    // For a wrong path the first half already says it all.
    let why = match refusal {
        Refusal::OtherRepository => String::new(),
        other => format!(" ({other})"),
    };
    format!(
        "refused: {what}{why}; the request was: {}",
        for_terminal_within(request, MAX_ECHO_CHARS)
    )
}

/// The longest request accepted; git's own limit on paths is PATH_MAX (4096).
pub const MAX_REQUEST_LEN: usize = 4096;
/// How much of a refused request is echoed back.
const MAX_ECHO_CHARS: usize = 200;
/// How much of an unknown program name is quoted in the reason.
const MAX_PROGRAM_ECHO_CHARS: usize = 40;

/// Unquoted characters that mean something to a shell. git never sends them unquoted.
fn is_shell_special(c: char) -> bool {
    matches!(
        c,
        ';' | '|'
            | '&'
            | '$'
            | '`'
            | '<'
            | '>'
            | '('
            | ')'
            | '{'
            | '}'
            | '*'
            | '?'
            | '['
            | ']'
            | '#'
            | '!'
            | '^'
    )
}

/// Splits a command line into words: spaces separate words, `'...'` is literal, `"..."` allows
/// the `\$ \` \" \\` escapes (and refuses expansions), `\x` outside quotes is a literal `x`
/// (git's `sq_quote` writes `'\''` and `'\!'`). Anything else a shell would interpret is
/// refused.
fn tokenize(s: &str) -> Result<Vec<String>, Refusal> {
    let mut words = Vec::new();
    let mut current: Option<String> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' => {
                if let Some(word) = current.take() {
                    words.push(word);
                }
            }
            '\'' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(Refusal::UnterminatedQuote),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            '"' => {
                let word = current.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        None => return Err(Refusal::UnterminatedQuote),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            None => return Err(Refusal::UnterminatedQuote),
                            Some(e @ ('$' | '`' | '"' | '\\')) => word.push(e),
                            Some(e) => {
                                word.push('\\');
                                word.push(e);
                            }
                        },
                        Some(e @ ('$' | '`')) => return Err(Refusal::ShellSyntax(e)),
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' => match chars.next() {
                None => return Err(Refusal::ShellSyntax('\\')),
                Some(e) => current.get_or_insert_with(String::new).push(e),
            },
            c if is_shell_special(c) => return Err(Refusal::ShellSyntax(c)),
            c => current.get_or_insert_with(String::new).push(c),
        }
    }
    if let Some(word) = current {
        words.push(word);
    }
    Ok(words)
}

/// Parses `SSH_ORIGINAL_COMMAND` into a service and a path, refusing everything that is not
/// exactly `git-<service> PATH` or `git <service> PATH` in some quoting git (or a person) would
/// use. Pure; never panics.
pub fn parse_request(original: &str) -> Result<Request, ServeError> {
    parse_words(original).map_err(|refusal| ServeError::refused(refusal, original))
}

fn parse_words(original: &str) -> Result<Request, Refusal> {
    if original.len() > MAX_REQUEST_LEN {
        return Err(Refusal::TooLong);
    }
    if original.chars().any(char::is_control) {
        return Err(Refusal::ControlCharacter);
    }
    let words = tokenize(original)?;
    if words.first().is_some_and(|w| w == ANNEX_SHELL) {
        return parse_annex(&words[1..]);
    }
    let (service, args) = match words.split_first() {
        None => return Err(Refusal::Empty),
        Some((git, rest)) if git == "git" => match rest.split_first() {
            None => return Err(Refusal::UnknownProgram(git.clone())),
            Some((sub, args)) => match Service::from_subcommand(sub) {
                Some(service) => (service, args),
                None => return Err(Refusal::UnknownProgram(format!("git {sub}"))),
            },
        },
        Some((program, args)) => match Service::from_program(program) {
            Some(service) => (service, args),
            None => return Err(Refusal::UnknownProgram(program.clone())),
        },
    };
    let path = match args {
        [] => return Err(Refusal::MissingPath),
        [path] => path,
        _ => return Err(Refusal::ExtraArguments),
    };
    check_path(path)?;
    Ok(Request {
        service,
        path: path.clone(),
        args: Vec::new(),
    })
}

/// The checks every requested path passes before it is resolved.
fn check_path(path: &str) -> Result<(), Refusal> {
    if path.is_empty() {
        return Err(Refusal::EmptyPath);
    }
    if path.starts_with('-') {
        return Err(Refusal::OptionPath);
    }
    if is_other_users_home(path) {
        return Err(Refusal::OtherUsersHome);
    }
    Ok(())
}

/// Parses the words after `git-annex-shell`: `COMMAND DIR [PARAMS...] [-- FIELD=VALUE... --]`.
fn parse_annex(words: &[String]) -> Result<Request, Refusal> {
    let (command, rest) = match words.split_first() {
        None => return Err(Refusal::UnknownProgram(ANNEX_SHELL.to_owned())),
        Some((c, _)) if c == "-c" => return Err(Refusal::AnnexLoginShell),
        Some((c, rest)) => match AnnexCommand::from_name(c) {
            Some(command) => (command, rest),
            None => return Err(Refusal::UnknownAnnexCommand(c.clone())),
        },
    };
    let (dir, params) = match rest.split_first() {
        None => return Err(Refusal::MissingPath),
        Some(split) => split,
    };
    check_path(annex_to_git_path(dir))?;
    check_annex_params(params)?;
    Ok(Request {
        service: Service::AnnexShell(command),
        path: dir.clone(),
        args: params.to_vec(),
    })
}

/// Checks what follows the directory: plain words (keys, UUIDs), `--uuid UUID` or
/// `--uuid=UUID`, the flags in [`ANNEX_FLAGS`], and one `-- field=value ... --` block with
/// names from [`ANNEX_FIELDS`] (git-annex-shell's own parser accepts the block unclosed at the
/// end, and so does this).
fn check_annex_params(params: &[String]) -> Result<(), Refusal> {
    let mut words = params.iter();
    while let Some(word) = words.next() {
        if word == "--" {
            return check_annex_fields(words.as_slice());
        }
        if word == "--uuid" {
            match words.next() {
                Some(uuid) if !uuid.is_empty() && !uuid.starts_with('-') => continue,
                _ => return Err(Refusal::AnnexOption(word.clone())),
            }
        }
        let is_option = word.starts_with('-');
        let allowed_option = ANNEX_FLAGS.contains(&word.as_str())
            || word
                .strip_prefix("--uuid=")
                .is_some_and(|uuid| !uuid.is_empty());
        if is_option && !allowed_option {
            return Err(Refusal::AnnexOption(word.clone()));
        }
    }
    Ok(())
}

fn check_annex_fields(fields: &[String]) -> Result<(), Refusal> {
    let mut words = fields.iter();
    for word in words.by_ref() {
        if word == "--" {
            break;
        }
        let known = word
            .split_once('=')
            .is_some_and(|(name, _)| ANNEX_FIELDS.contains(&name));
        if !known {
            return Err(Refusal::AnnexField(word.clone()));
        }
    }
    // git-annex-shell would read words after the block as more parameters, unchecked here.
    match words.next() {
        None => Ok(()),
        Some(_) => Err(Refusal::AnnexAfterFields),
    }
}

/// git-annex writes a remote's `~/x` as `/~/x` (and `~user/x` as `/~user/x`), and
/// git-annex-shell expands a leading `/~`. This maps that form to git's, for [`resolve`].
pub fn annex_to_git_path(dir: &str) -> &str {
    if dir.starts_with("/~") {
        &dir[1..]
    } else {
        dir
    }
}

fn is_other_users_home(path: &str) -> bool {
    path.starts_with('~') && path != "~" && !path.starts_with("~/")
}

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
fn allowed_targets(repo: &Path) -> io::Result<(PathBuf, Vec<PathBuf>)> {
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
fn matches_targets(requested_resolved: &Path, targets: &[PathBuf]) -> bool {
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

/// Environment variables removed before running git: a peer must not be able to point git at
/// another repository or inject configuration (`GIT_DIR`, `GIT_CONFIG_*`, ...) through an
/// sshd `AcceptEnv`. `GIT_PROTOCOL` (protocol v2) is the one git variable that passes.
fn is_scrubbed_env(name: &OsStr) -> bool {
    let name = name.as_bytes();
    name.starts_with(b"GIT_") && name != b"GIT_PROTOCOL"
}

/// The request git-annex sends to warm up its ssh connection cache; it gets exit status 0 and
/// nothing else.
pub const CONNECTION_PROBE: &str = "true";

/// Where `git-annex-shell` is on this process's `PATH`, or `None` when it is not there. This
/// is what [`run`] execs. Pairing can use it to tell the peer in advance whether git-annex will
/// work through the key; note that an interactive shell's `PATH` may be wider than the one
/// sshd gives the forced command (OpenSSH's default is about `/usr/local/bin:/usr/bin:/bin`),
/// so a git-annex found only in, say, `~/.local/bin` counts here but not under sshd. Use
/// [`annex_shell_in`] with sshd's `PATH` for the stricter answer.
pub fn annex_shell_path() -> Option<PathBuf> {
    // execvp's default when PATH is unset.
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    annex_shell_in(&path)
}

/// Where `git-annex-shell` is in the `PATH`-style list `path` (absolute entries only).
pub fn annex_shell_in(path: &OsStr) -> Option<PathBuf> {
    find_executable(ANNEX_SHELL, path)
}

/// Whether `git-annex-shell` is installed here; see [`annex_shell_path`].
pub fn annex_shell_available() -> bool {
    annex_shell_path().is_some()
}

/// The first `dir/name` in the `PATH`-style list `path` that is an executable file. Empty
/// entries are skipped (for exec they mean the current directory, which sshd sets to the
/// peer-writable home; never run from there).
fn find_executable(name: &str, path: &OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// This machine's name for messages the peer reads, sanitized (it ends up on their terminal).
fn host_name() -> String {
    let name = crate::local::host_name().unwrap_or_else(|| "the remote machine".to_owned());
    for_terminal_within(&name, 64)
}

/// Runs the forced command: checks `SSH_ORIGINAL_COMMAND` against `repo` and, when it is a git
/// fetch, push or archive of that repository, replaces this process with
/// `git <service> <canonical repo>`; when it is an allowed git-annex-shell command on that
/// repository, with `git-annex-shell <command> <canonical repo> <params...>` under
/// `GIT_ANNEX_SHELL_DIRECTORY=<canonical repo>` and `GIT_ANNEX_SHELL_LIMITED=1`. stdin/stdout
/// stay connected to the peer; the environment is kept except for `GIT_*` variables other than
/// `GIT_PROTOCOL`. git-annex's connection probe `true` exits 0 at once.
///
/// Only returns on refusal or failure; the caller prints `git pair serve: {error}` on stderr and
/// exits with status 1.
pub fn run(repo: &Path) -> Result<Infallible, ServeError> {
    let original = match std::env::var_os("SSH_ORIGINAL_COMMAND") {
        None => return Err(ServeError::Interactive),
        Some(original) => original,
    };
    if original == CONNECTION_PROBE {
        // Nothing to run and nothing to check: success is all git-annex wants to know.
        std::process::exit(0);
    }
    let (canonical, targets) = allowed_targets(repo).map_err(|source| ServeError::Repo {
        repo: repo.to_path_buf(),
        source,
    })?;
    let original = match original.into_string() {
        Ok(original) => original,
        Err(raw) => {
            return Err(ServeError::Refused {
                refusal: Refusal::NotUtf8,
                request: raw.to_string_lossy().into_owned(),
                repo: Some(canonical),
            })
        }
    };
    let request = parse_request(&original).map_err(|e| e.with_repo(&canonical))?;
    let home = crate::local::home_dir().map_err(|e| match e {
        crate::local::LocalError::NoHome { uid } | crate::local::LocalError::NoAccount { uid } => {
            ServeError::NoHome { uid }
        }
    })?;
    let (path, cwd) = match request.service {
        // git-annex-shell reads `/~/x` as `~/x`, and relative paths from the home directory.
        Service::AnnexShell(_) => (annex_to_git_path(&request.path), home.clone()),
        _ => (
            request.path.as_str(),
            std::env::current_dir().unwrap_or_else(|_| home.clone()),
        ),
    };
    let resolved = resolve(path, &home, &cwd).map_err(|e| e.with_repo(&canonical))?;
    if !matches_targets(&resolved, &targets) {
        return Err(ServeError::Refused {
            refusal: Refusal::OtherRepository,
            request: original,
            repo: Some(canonical),
        });
    }

    let scrub = |command: &mut Command| {
        for (name, _) in std::env::vars_os() {
            if is_scrubbed_env(&name) {
                command.env_remove(name);
            }
        }
    };
    match (request.service, request.service.subcommand()) {
        (Service::AnnexShell(command), _) => {
            let Some(program) = annex_shell_path() else {
                return Err(ServeError::AnnexShellMissing { host: host_name() });
            };
            let mut annex = Command::new(&program);
            annex
                .arg(command.name())
                .arg(&canonical)
                .args(&request.args);
            scrub(&mut annex);
            annex
                .env("GIT_ANNEX_SHELL_DIRECTORY", &canonical)
                .env("GIT_ANNEX_SHELL_LIMITED", "1");
            let source = annex.exec();
            Err(if source.kind() == io::ErrorKind::NotFound {
                ServeError::AnnexShellMissing { host: host_name() }
            } else {
                ServeError::AnnexExec {
                    path: program,
                    source,
                }
            })
        }
        (_, Some(subcommand)) => {
            let mut git = Command::new("git");
            git.arg(subcommand).arg(&canonical);
            scrub(&mut git);
            Err(ServeError::Exec { source: git.exec() })
        }
        // Every service but git-annex-shell is a git subcommand; refuse rather than panic
        // should a future variant break that.
        (service, None) => Err(ServeError::Refused {
            refusal: Refusal::UnknownProgram(service.program().to_owned()),
            request: original,
            repo: Some(canonical),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn ok(s: &str) -> Request {
        match parse_request(s) {
            Ok(r) => r,
            Err(e) => panic!("{s:?} refused: {e}"),
        }
    }

    fn refusal(s: &str) -> Refusal {
        match parse_request(s) {
            Err(ServeError::Refused { refusal, .. }) => refusal,
            other => panic!("{s:?} gave {other:?}"),
        }
    }

    fn req(service: Service, path: &str) -> Request {
        Request {
            service,
            path: path.to_owned(),
            args: Vec::new(),
        }
    }

    fn annex(command: AnnexCommand, dir: &str, args: &[&str]) -> Request {
        Request {
            service: Service::AnnexShell(command),
            path: dir.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    /// git's `sq_quote_buf`: `'...'`, with `'` and `!` written as `'\''` and `'\!'`.
    fn sq_quote(s: &str) -> String {
        let mut out = String::from("'");
        for c in s.chars() {
            if c == '\'' || c == '!' {
                out.push_str("'\\");
                out.push(c);
                out.push('\'');
            } else {
                out.push(c);
            }
        }
        out.push('\'');
        out
    }

    #[test]
    fn accepts_what_git_sends() {
        use Service::*;
        assert_eq!(
            ok("git-upload-pack '/abs/path'"),
            req(UploadPack, "/abs/path")
        );
        assert_eq!(ok("git-upload-pack '~/repo'"), req(UploadPack, "~/repo"));
        assert_eq!(ok("git-upload-pack '~'"), req(UploadPack, "~"));
        assert_eq!(
            ok("git-upload-pack 'repo.git'"),
            req(UploadPack, "repo.git")
        );
        assert_eq!(ok("git-receive-pack '/p/'"), req(ReceivePack, "/p/"));
        assert_eq!(ok("git-upload-archive '/p'"), req(UploadArchive, "/p"));
    }

    #[test]
    fn accepts_the_two_word_form() {
        use Service::*;
        assert_eq!(ok("git upload-pack '/p'"), req(UploadPack, "/p"));
        assert_eq!(ok("git receive-pack '/p'"), req(ReceivePack, "/p"));
        assert_eq!(ok("git upload-archive '/p'"), req(UploadArchive, "/p"));
    }

    #[test]
    fn accepts_unquoted_and_double_quoted_paths() {
        use Service::*;
        assert_eq!(
            ok("git-upload-pack /home/bob/notes"),
            req(UploadPack, "/home/bob/notes")
        );
        assert_eq!(ok("git-upload-pack ~/notes"), req(UploadPack, "~/notes"));
        assert_eq!(
            ok("git-upload-pack notes.git"),
            req(UploadPack, "notes.git")
        );
        assert_eq!(ok("git-upload-pack \"/a b\""), req(UploadPack, "/a b"));
        assert_eq!(
            ok(r#"git-upload-pack "/a\"b\\c\$d""#),
            req(UploadPack, "/a\"b\\c$d")
        );
        assert_eq!(ok(r#"git-upload-pack "/a\nb""#), req(UploadPack, "/a\\nb"));
        assert_eq!(ok("  git-upload-pack    '/p'  "), req(UploadPack, "/p"));
        assert_eq!(ok("git-upload-pack /a\\ b"), req(UploadPack, "/a b"));
    }

    #[test]
    fn accepts_gits_quoting_of_odd_characters() {
        use Service::*;
        assert_eq!(
            ok(r"git-upload-pack '/home/a/it'\''s'"),
            req(UploadPack, "/home/a/it's")
        );
        assert_eq!(ok(r"git-upload-pack '/a'\!'b'"), req(UploadPack, "/a!b"));
        assert_eq!(
            ok("git-upload-pack '/a;b|c$d`e(f)g{h}*?<>&#[]^ é'"),
            req(UploadPack, "/a;b|c$d`e(f)g{h}*?<>&#[]^ é")
        );
        assert_eq!(ok("git-upload-pack '/p'/x'y'"), req(UploadPack, "/p/xy"));
    }

    #[test]
    fn refuses_empty_requests() {
        assert_eq!(refusal(""), Refusal::Empty);
        assert_eq!(refusal("   "), Refusal::Empty);
    }

    #[test]
    fn refuses_other_programs() {
        for (s, program) in [
            ("cat /etc/passwd", "cat"),
            ("sh -c 'id'", "sh"),
            ("bash", "bash"),
            ("git", "git"),
            ("git status '/p'", "git status"),
            ("git --upload-pack=x '/p'", "git --upload-pack=x"),
            ("git-upload-packx '/p'", "git-upload-packx"),
            ("GIT-UPLOAD-PACK '/p'", "GIT-UPLOAD-PACK"),
            ("/usr/bin/git-upload-pack '/p'", "/usr/bin/git-upload-pack"),
            ("git-annex-shell", "git-annex-shell"),
            ("git annex-shell 'configlist' '/~/x'", "git annex-shell"),
            (
                "/usr/bin/git-annex-shell 'configlist' '/p'",
                "/usr/bin/git-annex-shell",
            ),
            ("git-annex 'configlist' '/p'", "git-annex"),
            ("true x", "true"),
            ("'true'x", "truex"),
            ("scp -t /tmp", "scp"),
            ("internal-sftp", "internal-sftp"),
            ("'' '/p'", ""),
        ] {
            assert_eq!(refusal(s), Refusal::UnknownProgram(program.into()), "{s}");
        }
    }

    #[test]
    fn refuses_wrong_argument_counts() {
        assert_eq!(refusal("git-upload-pack"), Refusal::MissingPath);
        assert_eq!(refusal("git upload-pack"), Refusal::MissingPath);
        assert_eq!(
            refusal("git-upload-pack '/p' extra"),
            Refusal::ExtraArguments
        );
        assert_eq!(refusal("git-upload-pack '/p' ''"), Refusal::ExtraArguments);
        assert_eq!(
            refusal("git upload-pack --strict '/p'"),
            Refusal::ExtraArguments
        );
    }

    #[test]
    fn refuses_options_and_empty_paths() {
        assert_eq!(refusal("git-upload-pack '--help'"), Refusal::OptionPath);
        assert_eq!(refusal("git-upload-pack --help"), Refusal::OptionPath);
        assert_eq!(refusal("git-receive-pack '-'"), Refusal::OptionPath);
        assert_eq!(refusal("git-upload-pack ''"), Refusal::EmptyPath);
        assert_eq!(refusal("git-upload-pack \"\""), Refusal::EmptyPath);
    }

    #[test]
    fn refuses_other_users_homes() {
        assert_eq!(
            refusal("git-upload-pack '~bob/repo'"),
            Refusal::OtherUsersHome
        );
        assert_eq!(refusal("git-upload-pack ~root"), Refusal::OtherUsersHome);
    }

    #[test]
    fn refuses_every_unquoted_shell_metacharacter() {
        for c in [
            ';', '|', '&', '$', '`', '<', '>', '(', ')', '{', '}', '*', '?', '[', ']', '#', '!',
            '^',
        ] {
            let s = format!("git-upload-pack /p{c}x");
            assert_eq!(refusal(&s), Refusal::ShellSyntax(c), "{s}");
        }
        assert_eq!(
            refusal("git-upload-pack /p; rm -rf ~"),
            Refusal::ShellSyntax(';')
        );
        assert_eq!(
            refusal("git-upload-pack '/p' && id"),
            Refusal::ShellSyntax('&')
        );
        assert_eq!(
            refusal("git-upload-pack \"/p$(id)\""),
            Refusal::ShellSyntax('$')
        );
        assert_eq!(
            refusal("git-upload-pack \"/p`id`\""),
            Refusal::ShellSyntax('`')
        );
        assert_eq!(refusal("git-upload-pack /p\\"), Refusal::ShellSyntax('\\'));
    }

    #[test]
    fn refuses_control_characters_anywhere() {
        for s in [
            "git-upload-pack '/p'\n",
            "git-upload-pack '/p'\nid",
            "git-upload-pack '/p\n'",
            "git-upload-pack\t'/p'",
            "git-upload-pack '/p\r'",
            "git-upload-pack '/p\u{1b}[2J'",
            "git-upload-pack '/p\u{0}'",
            "git-upload-pack '/p\u{7f}'",
            "git-upload-pack '/p\u{85}'",
        ] {
            assert_eq!(refusal(s), Refusal::ControlCharacter, "{s:?}");
        }
    }

    #[test]
    fn refuses_unterminated_quotes_and_long_requests() {
        assert_eq!(refusal("git-upload-pack '/p"), Refusal::UnterminatedQuote);
        assert_eq!(refusal("git-upload-pack \"/p"), Refusal::UnterminatedQuote);
        assert_eq!(
            refusal("git-upload-pack \"/p\\"),
            Refusal::UnterminatedQuote
        );
        let long = format!("git-upload-pack '/{}'", "a".repeat(MAX_REQUEST_LEN));
        assert_eq!(refusal(&long), Refusal::TooLong);
    }

    #[test]
    fn messages_are_one_line_and_escape_the_request() {
        let err = parse_request("cat /etc/passwd\n\u{1b}[2J\u{202e}").unwrap_err();
        let err = err.with_repo(Path::new("/home/bob/notes"));
        let msg = err.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}') && !msg.contains('\u{202e}'));
        assert!(msg.starts_with(
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with this key ("
        ));
        assert!(msg.ends_with("; the request was: cat /etc/passwd\\n\\u{1b}[2J\\u{202e}"));

        let err = parse_request("cat /etc/passwd").unwrap_err();
        assert_eq!(
            err.with_repo(Path::new("/home/bob/notes")).to_string(),
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with this \
             key (cat is not one of git-upload-pack, git-receive-pack, git-upload-archive, \
             git-annex-shell); the request was: cat /etc/passwd"
        );
        let other = ServeError::Refused {
            refusal: Refusal::OtherRepository,
            request: "git-upload-pack '/home/bob/secret'".into(),
            repo: Some("/home/bob/notes".into()),
        };
        assert_eq!(
            other.to_string(),
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with this \
             key; the request was: git-upload-pack '/home/bob/secret'"
        );
        assert_eq!(
            ServeError::Interactive.to_string(),
            "refused: this key may only be used by git and git-annex (git pair serve): interactive logins are refused"
        );
        let long = parse_request(&"x".repeat(1000)).unwrap_err().to_string();
        // 1000 characters in, well under that out: the refusal text plus 200 echoed.
        assert!(long.chars().count() < 450, "echo is cut short");
    }

    #[test]
    fn services_round_trip_and_match_the_documented_list() {
        let mut names: Vec<&str> = Service::GIT.iter().map(|s| s.program()).collect();
        names.push(Service::AnnexShell(AnnexCommand::ConfigList).program());
        assert_eq!(names, allowed_services());
        for s in Service::GIT {
            let subcommand = s.subcommand().unwrap();
            assert_eq!(Service::from_program(s.program()), Some(s));
            assert_eq!(Service::from_subcommand(subcommand), Some(s));
            assert_eq!(format!("git-{subcommand}"), s.program());
            assert_eq!(s.to_string(), s.program());
        }
        let commands: Vec<&str> = AnnexCommand::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(commands, allowed_annex_commands());
        for c in AnnexCommand::ALL {
            assert_eq!(AnnexCommand::from_name(c.name()), Some(c));
            let s = Service::AnnexShell(c);
            assert_eq!(s.subcommand(), None);
            assert_eq!(s.to_string(), format!("git-annex-shell {}", c.name()));
        }
        // git-annex-shell is reachable only by its own name, never as a git subcommand.
        assert_eq!(Service::from_program(ANNEX_SHELL), None);
        assert_eq!(Service::from_subcommand("annex-shell"), None);
    }

    // --- git-annex-shell ---

    #[test]
    fn accepts_what_git_annex_sends() {
        use AnnexCommand::*;
        // Observed from git-annex 10.20230126 (sync --content, copy, get, drop, whereis).
        assert_eq!(
            ok("git-annex-shell 'configlist' '/~/repo'"),
            annex(ConfigList, "/~/repo", &[])
        );
        assert_eq!(
            ok("git-annex-shell 'configlist' '/~/repo' '--debug' '--' 'autoinit=1' '--'"),
            annex(
                ConfigList,
                "/~/repo",
                &["--debug", "--", "autoinit=1", "--"]
            )
        );
        let uuid = "4b73dc0e-59e2-4221-a977-ca3e845fc53a";
        let server = "e98ef2c9-68b8-4c94-8139-1ffc94f6cf69";
        assert_eq!(
            ok(&format!(
                "git-annex-shell 'p2pstdio' '/~/repo' '{uuid}' --uuid {server}"
            )),
            annex(P2pStdio, "/~/repo", &[uuid, "--uuid", server])
        );
        // Older clients' and gcrypt's commands, with the options and fields they use.
        let key =
            "SHA256E-s6--5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03.txt";
        assert_eq!(
            ok(&format!(
                "git-annex-shell 'dropkey' '/home/u/repo' '--quiet' '--force' '{key}' \
                 '--uuid' '{server}'"
            )),
            annex(
                DropKey,
                "/home/u/repo",
                &["--quiet", "--force", key, "--uuid", server]
            )
        );
        let uuid_option = format!("--uuid={server}");
        let remote_field = format!("remoteuuid={uuid}");
        assert_eq!(
            ok(&format!(
                "git-annex-shell 'sendkey' '/~/repo' '{key}' {uuid_option} '--' \
                 '{remote_field}' 'associatedfile=dir/a b.txt' 'direct=1' '--'"
            )),
            annex(
                SendKey,
                "/~/repo",
                &[
                    key,
                    &uuid_option,
                    "--",
                    &remote_field,
                    "associatedfile=dir/a b.txt",
                    "direct=1",
                    "--"
                ]
            )
        );
        for (line, command) in [
            ("git-annex-shell notifychanges repo", NotifyChanges),
            ("git-annex-shell 'gcryptsetup' '/~/repo' 'id'", GcryptSetup),
            ("git-annex-shell 'inannex' '/~/repo' 'K1' 'K2'", InAnnex),
            ("git-annex-shell 'recvkey' '/~/repo' 'K1'", RecvKey),
        ] {
            assert_eq!(ok(line).service, Service::AnnexShell(command), "{line}");
        }
        // A field block may be left open at the end, as git-annex-shell allows.
        assert_eq!(
            ok("git-annex-shell configlist /p -- autoinit=1").args,
            ["--", "autoinit=1"]
        );
    }

    #[test]
    fn refuses_unknown_annex_commands_and_the_login_shell_form() {
        for (line, word) in [
            ("git-annex-shell 'lockcontent' '/~/repo'", "lockcontent"),
            ("git-annex-shell 'commit' '/~/repo'", "commit"),
            (
                "git-annex-shell 'transferinfo' '/~/repo' 'K'",
                "transferinfo",
            ),
            (
                "git-annex-shell 'git-upload-pack' '/~/repo'",
                "git-upload-pack",
            ),
            ("git-annex-shell 'CONFIGLIST' '/~/repo'", "CONFIGLIST"),
            ("git-annex-shell '--help'", "--help"),
            ("git-annex-shell '' '/p'", ""),
        ] {
            assert_eq!(
                refusal(line),
                Refusal::UnknownAnnexCommand(word.into()),
                "{line}"
            );
        }
        assert_eq!(
            refusal("git-annex-shell -c 'configlist /~/repo'"),
            Refusal::AnnexLoginShell
        );
        assert_eq!(refusal("git-annex-shell -c"), Refusal::AnnexLoginShell);
    }

    #[test]
    fn refuses_annex_options_and_fields_git_annex_does_not_send() {
        for (line, word) in [
            ("git-annex-shell configlist /p -c core.fsmonitor=x", "-c"),
            (
                "git-annex-shell configlist /p -ccore.fsmonitor=x",
                "-ccore.fsmonitor=x",
            ),
            (
                "git-annex-shell p2pstdio /p U --debugfilter=x",
                "--debugfilter=x",
            ),
            ("git-annex-shell p2pstdio /p U --backend WORM", "--backend"),
            ("git-annex-shell p2pstdio /p U --uuid", "--uuid"),
            ("git-annex-shell p2pstdio /p U --uuid ''", "--uuid"),
            ("git-annex-shell p2pstdio /p U --uuid --force", "--uuid"),
            ("git-annex-shell p2pstdio /p U --uuid=", "--uuid="),
            ("git-annex-shell p2pstdio /p U -", "-"),
        ] {
            assert_eq!(refusal(line), Refusal::AnnexOption(word.into()), "{line}");
        }
        for (line, word) in [
            ("git-annex-shell configlist /p -- autoinit", "autoinit"),
            ("git-annex-shell configlist /p -- x=1 --", "x=1"),
            ("git-annex-shell configlist /p -- -c=1 --", "-c=1"),
            ("git-annex-shell configlist /p -- '=1' --", "=1"),
        ] {
            assert_eq!(refusal(line), Refusal::AnnexField(word.into()), "{line}");
        }
        assert_eq!(
            refusal("git-annex-shell configlist /p -- autoinit=1 -- -c x"),
            Refusal::AnnexAfterFields
        );
        assert_eq!(
            refusal("git-annex-shell configlist /p -- -- K"),
            Refusal::AnnexAfterFields
        );
    }

    #[test]
    fn annex_directories_pass_the_same_checks_as_git_paths() {
        assert_eq!(refusal("git-annex-shell configlist"), Refusal::MissingPath);
        assert_eq!(refusal("git-annex-shell configlist ''"), Refusal::EmptyPath);
        assert_eq!(
            refusal("git-annex-shell configlist --uuid=x"),
            Refusal::OptionPath
        );
        for line in [
            "git-annex-shell configlist '/~root/repo'",
            "git-annex-shell configlist '~root/repo'",
            "git-annex-shell configlist '/~bob'",
        ] {
            assert_eq!(refusal(line), Refusal::OtherUsersHome, "{line}");
        }
        assert_eq!(
            refusal("git-annex-shell configlist '/~/r'; id"),
            Refusal::ShellSyntax(';')
        );
        assert_eq!(
            refusal("git-annex-shell configlist '/~/r"),
            Refusal::UnterminatedQuote
        );
        assert_eq!(
            refusal("git-annex-shell configlist \"/~/r$(id)\""),
            Refusal::ShellSyntax('$')
        );
        assert_eq!(
            refusal("git-annex-shell configlist '/~/r'\nid"),
            Refusal::ControlCharacter
        );
    }

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
    fn annex_refusals_are_one_escaped_line() {
        let err = parse_request("git-annex-shell 'lockcontent\u{1b}[2J\u{202e}' '/p'")
            .unwrap_err()
            .with_repo(Path::new("/home/bob/notes"));
        let msg = err.to_string();
        assert!(!msg.contains('\n') && !msg.contains('\u{1b}') && !msg.contains('\u{202e}'));
        assert_eq!(
            parse_request("git-annex-shell 'commit' '/p'")
                .unwrap_err()
                .with_repo(Path::new("/home/bob/notes"))
                .to_string(),
            "refused: only git fetch/push and git-annex on /home/bob/notes are allowed with \
             this key (git-annex-shell commit is not one of configlist, p2pstdio, \
             notifychanges, gcryptsetup, inannex, recvkey, sendkey, dropkey); the request \
             was: git-annex-shell 'commit' '/p'"
        );
        assert_eq!(
            ServeError::AnnexShellMissing {
                host: "laptop".into()
            }
            .to_string(),
            "git-annex-shell is not installed on laptop, so git-annex cannot use this remote; \
             install git-annex on laptop (Debian/Ubuntu: sudo apt install git-annex) and try \
             again"
        );
    }

    #[test]
    fn the_connection_probe_is_only_a_bare_true() {
        // run() answers exactly this string before parsing; parsing itself refuses `true`,
        // so nothing near it (`true x`, `'true'`) gets the same free pass.
        assert_eq!(CONNECTION_PROBE, "true");
        assert!(matches!(
            parse_request("true"),
            Err(ServeError::Refused {
                refusal: Refusal::UnknownProgram(_),
                ..
            })
        ));
    }

    #[test]
    fn find_executable_searches_absolute_path_entries_only() {
        use std::os::unix::fs::PermissionsExt;
        let t = TempDir::new();
        let bin = t.0.join("bin");
        mkdirs(&bin);
        let program = bin.join("git-annex-shell");
        std::fs::write(&program, "#!/bin/sh\n").unwrap();
        let path = |dirs: &[&Path]| std::env::join_paths(dirs).unwrap();
        // Not executable: not found.
        assert_eq!(find_executable(ANNEX_SHELL, &path(&[&bin])), None);
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            find_executable(ANNEX_SHELL, &path(&[&bin])),
            Some(program.clone())
        );
        assert_eq!(annex_shell_in(&path(&[&bin])), Some(program.clone()));
        // A directory of that name is not a program.
        mkdirs(&t.0.join("git-annex-shell"));
        assert_eq!(
            find_executable(ANNEX_SHELL, &path(&[&t.0, &bin])),
            Some(program)
        );
        // Relative entries would search the peer-writable working directory: skipped.
        assert_eq!(find_executable(ANNEX_SHELL, OsStr::new("bin:.:")), None);
        assert_eq!(find_executable(ANNEX_SHELL, OsStr::new("")), None);
    }

    #[test]
    fn only_git_protocol_survives_the_environment_scrub() {
        assert!(!is_scrubbed_env(OsStr::new("GIT_PROTOCOL")));
        assert!(!is_scrubbed_env(OsStr::new("HOME")));
        assert!(!is_scrubbed_env(OsStr::new("PATH")));
        assert!(!is_scrubbed_env(OsStr::new("LANG")));
        for name in [
            "GIT_DIR",
            "GIT_CONFIG_PARAMETERS",
            "GIT_CONFIG_COUNT",
            "GIT_EXEC_PATH",
        ] {
            assert!(is_scrubbed_env(OsStr::new(name)), "{name}");
        }
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
            fn parse_never_panics(s in any::<String>()) {
                let _ = parse_request(&s);
            }

            #[test]
            fn parse_never_panics_on_shellish_input(s in r#"(git[- ])?(upload|receive)-pack[ '"\\~/a-z.;|&$`!-]{0,30}"#) {
                if let Ok(r) = parse_request(&s) {
                    prop_assert!(!r.path.is_empty() && !r.path.starts_with('-'));
                }
            }

            #[test]
            fn gits_quoting_round_trips(path in r"[^\x00-\x1f\x7f-\x9f]{1,60}", two_words in any::<bool>(), svc in 0usize..3) {
                prop_assume!(!path.starts_with('-') && !is_other_users_home(&path));
                let service = Service::GIT[svc];
                let program = if two_words { format!("git {}", service.subcommand().unwrap()) } else { service.program().to_owned() };
                let line = format!("{program} {}", sq_quote(&path));
                let parsed = parse_request(&line);
                prop_assert!(parsed.is_ok(), "{:?} -> {:?}", line, parsed);
                let parsed = parsed.unwrap();
                prop_assert_eq!(parsed.service, service);
                prop_assert_eq!(parsed.path, path);
            }

            #[test]
            fn annex_quoting_round_trips(dir in r"/[^\x00-\x1f\x7f-\x9f]{0,60}", cmd in 0usize..8, key in "[A-Z0-9]{1,8}-s[0-9]{1,4}--[a-f0-9]{8}") {
                prop_assume!(!is_other_users_home(annex_to_git_path(&dir)));
                let command = AnnexCommand::ALL[cmd];
                let line = format!("git-annex-shell {} {} {} --uuid u1", sq_quote(command.name()), sq_quote(&dir), sq_quote(&key));
                let parsed = parse_request(&line);
                prop_assert!(parsed.is_ok(), "{:?} -> {:?}", line, parsed);
                let parsed = parsed.unwrap();
                prop_assert_eq!(parsed.service, Service::AnnexShell(command));
                prop_assert_eq!(parsed.path, dir);
                prop_assert_eq!(parsed.args, vec![key, "--uuid".to_owned(), "u1".to_owned()]);
            }

            #[test]
            fn accepted_annex_requests_carry_only_known_options(s in r#"git-annex-shell (configlist|p2pstdio|dropkey) '/~/r'( (-[a-z-]{1,6}|--uuid|--|[a-z]{1,4}=?[a-z]{0,3}|K)){0,5}"#) {
                if let Ok(r) = parse_request(&s) {
                    let mut in_fields = false;
                    let mut after_uuid = false;
                    for a in &r.args {
                        if a == "--" {
                            prop_assert!(!after_uuid);
                            in_fields = !in_fields;
                        } else if in_fields {
                            let name = a.split_once('=').map(|(n, _)| n);
                            prop_assert!(name.is_some_and(|n| ANNEX_FIELDS.contains(&n)), "{:?}", s);
                        } else if after_uuid {
                            prop_assert!(!a.starts_with('-'), "{:?}", s);
                            after_uuid = false;
                        } else if a == "--uuid" {
                            after_uuid = true;
                        } else if a.starts_with('-') {
                            prop_assert!(ANNEX_FLAGS.contains(&a.as_str()), "{:?}", s);
                        }
                    }
                }
            }

            #[test]
            fn resolve_never_escapes_home_for_tilde_paths(
    rest in "[/a-z.]{0,20}") {
                let home = Path::new("/home/bob");
                let p = resolve(&format!("~/{rest}"), home, Path::new("/")).unwrap();
                prop_assert!(p.starts_with(home));
            }
        }

    // --- is_allowed: real directories ---

    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "git-pair-serve-unit-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(std::fs::canonicalize(dir).unwrap())
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn mkdirs(p: &Path) {
        std::fs::create_dir_all(p).unwrap();
    }

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
