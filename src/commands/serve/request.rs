//! Parsing `SSH_ORIGINAL_COMMAND`: which service, on which path, with which arguments.

use std::fmt;

use crate::sanitize::for_terminal_within;

use super::ServeError;

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
    /// `inannex DIR KEY...`: whether keys are present (older git-annex).
    InAnnex,
    /// `recvkey DIR KEY`: receives content by rsync (older git-annex).
    RecvKey,
    /// `sendkey DIR KEY`: sends content by rsync (older git-annex).
    SendKey,
    /// `dropkey DIR KEY...`: drops content (older git-annex).
    DropKey,
}

impl AnnexCommand {
    /// Every command, in the order of [`allowed_annex_commands`].
    pub const ALL: [AnnexCommand; 7] = [
        AnnexCommand::ConfigList,
        AnnexCommand::P2pStdio,
        AnnexCommand::NotifyChanges,
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

const ALLOWED_ANNEX_COMMANDS: [&str; 7] = [
    "configlist",
    "p2pstdio",
    "notifychanges",
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
    /// git-annex-shell on a repository that has no `annex.uuid`: its owner has not made it a
    /// git-annex repository, and git-annex-shell would do that itself on request.
    NotAnnexRepository,
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
            Refusal::NotAnnexRepository => write!(
                f,
                "{ANNEX_SHELL} runs only in a git-annex repository, and this one has no \
                 annex.uuid; its owner can make it one with `git annex init`"
            ),
        }
    }
}

/// The longest request accepted; git's own limit on paths is PATH_MAX (4096).
pub const MAX_REQUEST_LEN: usize = 4096;
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
/// git-annex-shell expands a leading `/~`. This maps that form to git's, for [`resolve`](super::resolve).
pub fn annex_to_git_path(dir: &str) -> &str {
    if dir.starts_with("/~") {
        &dir[1..]
    } else {
        dir
    }
}

pub(super) fn is_other_users_home(path: &str) -> bool {
    path.starts_with('~') && path != "~" && !path.starts_with("~/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        // Older clients' commands, with the options and fields they use.
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
            // git pair never sets up gcrypt, and gcryptsetup changes the repository's config.
            (
                "git-annex-shell 'gcryptsetup' '/~/repo' 'id'",
                "gcryptsetup",
            ),
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
        fn annex_quoting_round_trips(dir in r"/[^\x00-\x1f\x7f-\x9f]{0,60}", cmd in 0usize..7, key in "[A-Z0-9]{1,8}-s[0-9]{1,4}--[a-f0-9]{8}") {
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

    }
}
