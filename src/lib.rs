//! git-pair pairs two git repositories on one LAN, with no server: two
//! people type the same short code, the machines find each other by UDP
//! multicast, verify each other with SPAKE2 keyed by the code, exchange ssh
//! keys and pinned sshd host keys, and each adds the other as a git remote
//! that works over ssh at once, letting the peer in only to that one
//! repository.
//!
//! # Layout
//! - [`protocol`]: the pairing protocol without I/O: the code, the wire
//!   codec, the key schedule, the payload and the state machine; and the
//!   locate protocol that finds a paired peer again.
//! - [`transport`]: sockets and interfaces; drives the protocol machine.
//! - [`keys`]: ssh login and host keys; [`local`]: this user and machine
//!   (login name, host name, home, `~/.ssh`).
//! - [`ssh_files`]: authorized_keys, ssh client config and known_hosts:
//!   pure plans and atomic, lockable, reversible writes.
//! - [`repo`]: the git remote and its recorded config.
//! - [`sync`]: `git pair sync` without its edge: pure planners (fast-forward,
//!   outcomes, hook installation), the git commands, the background queue the
//!   hooks start, and the hooks themselves (built from `git-hooks/`).
//! - [`commands`]: `git pair`, `git pair list`, `git pair remove`,
//!   `git pair refresh`, `git pair watch`, `git pair sync`, `git pair hooks`
//!   and `git pair serve`, the edge.
//! - [`cli`], [`man`], [`completions`], [`events`], [`term`], [`prompt`], [`exit`], [`interrupt`]: the
//!   interfaces to people and programs; [`sanitize`]: untrusted text made
//!   inert before it reaches a terminal or a file.
//!
//! # Threat model
//! The attacker is on the same LAN. They see every datagram, can send any
//! datagram from any address, and can drop, delay, replay, reflect and
//! reorder ours. They do not know the code, and do not control either
//! machine. Against them git-pair guarantees:
//!
//! 1. **No offline attack.** A recording of every packet of a pairing gives
//!    nothing to test a guessed code against: the code only enters SPAKE2
//!    (Ed25519 group, symmetric mode), whose messages are independent of it
//!    to anyone without the matching secret exponent. git-annex's pairing
//!    sent HMAC-SHA1(phrase, message), which anyone could brute-force.
//! 2. **Few online guesses.** Each session in which git-pair sends anything
//!    derived from the SPAKE2 key gives the other end one guess; at most
//!    three such sessions may fail or be in flight per run, after which the
//!    run stops loudly. With a 30-bit generated code an attacker wins with
//!    probability at most 3 in 2^30 per run.
//! 3. **Nothing written before verification.** Both sides confirm the key
//!    with direction-bound HMAC-SHA256 over the whole transcript (both
//!    session ids, both PAKE messages, both payloads), checked in constant
//!    time. A wrong code, a reflected, spliced or replayed message never
//!    verifies, and nothing is written until it does.
//! 4. **Private payloads.** Each side's user, host, path, keys and addresses
//!    travel encrypted (ChaCha20-Poly1305) under a key only the holder of
//!    the code can derive.
//! 5. **No trust on first use.** The peer's sshd host keys come from the
//!    verified payload and are pinned under a per-pair `HostKeyAlias` with
//!    `StrictHostKeyChecking yes`.
//! 6. **A verified peer gets one repository and nothing else.** Whoever holds the code is
//!    still a stranger. It can reach its one repository through git and git-annex, and nothing
//!    else on this machine: no configuration, no hooks, no other pairing, no file of ours and
//!    no terminal.
//!    - Its key is let in with `restrict` and a forced command (`git pair serve`) that runs
//!      only git-upload-pack, git-receive-pack, git-upload-archive and git-annex-shell's
//!      content commands (under `GIT_ANNEX_SHELL_DIRECTORY` and `GIT_ANNEX_SHELL_LIMITED`) on
//!      the one paired repository, never through a shell. git-annex-shell runs only where the
//!      repository already is a git-annex repository (its own config has `annex.uuid` when the
//!      request arrives), so a peer cannot make a plain repository a git-annex one (hooks,
//!      `filter.annex.*`, settings from a branch it pushed); `gcryptsetup`, which rewrites the
//!      config, is never served. git and git-annex-shell start from an empty environment plus
//!      an allowlist, so no variable an sshd's `AcceptEnv` lets through (`XDG_CONFIG_HOME`,
//!      `LD_PRELOAD`, `GIT_*`) chooses what they read or run.
//!    - One key opens one repository: a peer key that another pairing's line, or a line git
//!      pair did not write, already lets in is refused on both sides before anything is
//!      written (sshd would use the first matching line); git pair never drops or edits a line
//!      it did not write.
//!    - Every name a pairing writes under (ssh alias, key files, pinned keys, pair secret,
//!      `authorized_keys` marker) comes from this side's randomness, never from the peer, and
//!      another pairing's `Host` block, pinned keys, key file, line or remote is never
//!      overwritten: such a collision is refused, under the lock.
//!    - An earlier pairing that claims the same `user@host:path` is replaced only when the
//!      peer proves it is that pairing's peer: it proves that pairing's pair secret (an HMAC
//!      over both session ids, in its encrypted payload), or its sshd proves, in a key exchange
//!      verified by ssh itself at its address, that it holds a host key pinned for it. Otherwise the new pairing is made beside it, under
//!      its own names, and the user is told.
//!    - Every peer string is checked before use (control characters, addresses that are this
//!      machine, an annex UUID equal to ours are refused, naming the field) and sanitized
//!      before it reaches a terminal.
//! 7. **Undo.** `git pair remove` revokes the peer's key and removes every
//!    other trace of the pairing on this machine, and nothing else. A
//!    pairing is written as one transaction, journaled before the first
//!    change: killed at any moment, it is undone by the next run of git pair
//!    (no peer key let in without its remote, no remote without its records).
//! 8. **Nothing forged counts.** The peer's session id is public, but every
//!    payload piece, MAC and end message is checked on its own under the
//!    session keys: a forgery is dropped, costs no guess and is never shown
//!    as the peer's words. Only an end message sealed under the session keys
//!    ends a session (a refusal, a failed setup); there is no unauthenticated
//!    abort.
//! 9. **No amplification.** An address that has not shown that it receives
//!    (by echoing this side's SPAKE2 message, or by sending something that
//!    opens) gets at most three times the bytes received from it, so a
//!    spoofed `hello` cannot turn git-pair against a third host.
//! 10. **A new address never changes trust.** `git pair refresh` points an
//!     alias at a new address only after ssh verified, there, the host key
//!     pinned at pairing time. Locate queries and answers are authenticated
//!     with the pair secret (HMAC-SHA256, constant-time checks), answers bind
//!     the query's fresh nonce, and queries do not name the pairing.
//!     `git pair watch` answers only authenticated queries and bounds the work
//!     and memory a flood can cost it (a global token bucket, no state per
//!     sender); a flood can delay a refresh, never misdirect one.
//!
//! Not in scope: an attacker on the LAN can always stop a pairing (drop
//! packets, win the race with a PAKE message of its own, which spends one of
//! its guesses, or make it fail three times), but never complete one, nor
//! speak for the peer: ends and acknowledgements count only under the session
//! keys, so it cannot make a side skip a resend or finish early. A
//! machine that is compromised, or a person who tells the code to the
//! attacker, is out of scope. Strings from the peer are sanitized before
//! they reach a terminal; keys are zeroized and never printed.

#![forbid(unsafe_code)]

pub mod cli;
pub mod commands;
pub mod completions;
pub mod events;
pub mod exit;
pub mod interrupt;
pub mod keys;
pub mod local;
pub mod man;
pub mod prompt;
pub mod protocol;
pub mod repo;
pub mod sanitize;
pub mod ssh_files;
pub mod sync;
pub mod term;
pub mod transport;

use cli::{Cli, Command};

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    use commands::pair::CodeSource;
    // Before anything else, finish or undo what a killed run left (the forced command changes
    // nothing, so it leaves that to the user's own runs).
    if !matches!(cli.command, Some(Command::Serve { .. })) {
        commands::recover::before_command();
    }
    match cli.command {
        Some(Command::Serve { repo }) => match commands::serve::run(&repo)? {},
        Some(Command::List { json, check, name }) => {
            commands::list::run(json, check, name.as_deref())
        }
        Some(Command::Remove { name }) => commands::remove::run(&name),
        Some(Command::Sync { name, json, hook }) => {
            commands::sync::run(name.as_deref(), json, hook)
        }
        Some(Command::Hooks { action }) => commands::hooks::run(action),
        Some(Command::Refresh(args)) => commands::refresh::run(&args),
        Some(Command::Watch(args)) => commands::watch::run(&args),
        Some(Command::Join { pair }) => commands::pair::run(&pair, CodeSource::Prompt),
        None => {
            let source = match (cli.code, cli.code_file) {
                (Some(code), _) => CodeSource::Argument(zeroize::Zeroizing::new(code)),
                (None, Some(file)) => CodeSource::File(file),
                (None, None) => CodeSource::EnvironmentOrNew,
            };
            commands::pair::run(&cli.pair, source)
        }
    }
}

/// What error messages start with, so that sshd logs and users can tell
/// the forced command from an interactive run.
pub fn error_prefix(cli: &Cli) -> &'static str {
    match cli.command {
        Some(Command::Serve { .. }) => "git pair serve",
        _ => "git pair: error",
    }
}
