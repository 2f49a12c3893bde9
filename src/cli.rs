//! The command line, declared with clap. Its doc comments are the `--help`
//! text, and the man page (man/git-pair.1) is generated from this
//! definition by [`crate::man`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

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
Run `git pair` in a repository on one machine: it shows a code. Run `git pair CODE` in a \
repository on the other machine. The two find each other by UDP multicast, verify each other \
with a PAKE keyed by the code, exchange ssh keys and pinned sshd host keys, and each adds the \
other as a git remote that works over ssh at once. The peer is let in only to this one \
repository, through a forced command in ~/.ssh/authorized_keys. No server, no internet, no \
prompt from ssh."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub pair: PairArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the pairings of this repository.
    ///
    /// For each: the remote, the peer as user@host:path, the address of its
    /// sshd, the fingerprints of its login key and pinned host keys, when it
    /// was paired, and whether its sshd answers now (a TCP connection, at
    /// most 1.5 s). A pairing whose remote was deleted by hand is listed as
    /// orphaned.
    List {
        /// Print a JSON array, one object per pairing (see LIST JSON in the
        /// man page).
        #[arg(long)]
        json: bool,
    },
    /// Undo a pairing on this machine.
    ///
    /// Removes the peer's line from ~/.ssh/authorized_keys (so its key no
    /// longer gets in), the ssh alias and its pinned host keys, the key
    /// generated for the pairing unless another pairing uses it, and the
    /// remote with its records. Nothing else is touched. Removing a pairing
    /// that is half gone, or gone, is not an error. Run it on both machines
    /// to undo both sides.
    Remove {
        /// The remote's name, as `git pair list` shows it (or the ssh alias
        /// of an orphaned pairing).
        #[arg(value_name = "NAME")]
        name: String,
    },
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
    /// <hook>.git-pair-user and runs first; its exit status stays the hook's exit status.
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

/// `git pair hooks ACTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum HooksAction {
    /// Install the hooks; installing again changes nothing.
    ///
    /// A hook you already have is renamed to <hook>.git-pair-user (bytes, mode and symlinks
    /// kept), and git pair's hook runs it first. Refuses, changing nothing, when that name is
    /// taken or git pair's own hook was edited.
    Install,
    /// Uninstall the hooks and put back, byte for byte, the hooks that were there before.
    ///
    /// A git pair hook that was edited since it was installed is left alone, with a message.
    Uninstall,
}

/// Options of `git pair [CODE]`.
#[derive(Debug, Args)]
pub struct PairArgs {
    /// The code shown on the other machine. Without it, a code is generated
    /// and shown, for the other side to type.
    ///
    /// Any phrase both sides type is accepted; case and runs of spaces or
    /// dashes do not matter. The code can also come from --code-file or the
    /// environment variable GIT_PAIR_CODE, which keep it out of the process
    /// list.
    #[arg(value_name = "CODE")]
    pub code: Option<String>,

    /// Use only this network interface (repeatable). By default every
    /// interface that is up, multicast-capable and not loopback is used;
    /// lo is used only when named.
    #[arg(long = "interface", value_name = "IFACE")]
    pub interfaces: Vec<String>,

    /// UDP port of the exchange; both sides must use the same one.
    /// [default: 28620, or git config pair.port]
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// Give up after this many seconds without a verified peer.
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub timeout: u64,

    /// Name of the new remote. By default it derives from the peer's host
    /// name, with a suffix if that name is taken.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Port on which this machine's sshd listens, told to the peer.
    #[arg(long, value_name = "PORT", default_value_t = 22,
          value_parser = clap::value_parser!(u16).range(1..))]
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

    /// Read the code from FILE ('-' for standard input).
    #[arg(long, value_name = "FILE", conflicts_with = "code")]
    pub code_file: Option<PathBuf>,

    /// Print machine-readable events on standard output, one JSON object per
    /// line (see JSON EVENTS in the man page). Nothing else goes to stdout.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_a_code_and_options() {
        let cli = Cli::try_parse_from([
            "git-pair",
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
        assert_eq!(cli.pair.code.as_deref(), Some("7-guitar-orbit-velvet"));
        assert_eq!(cli.pair.interfaces, ["va", "lo"]);
        assert_eq!(cli.pair.timeout, 5);
        assert!(cli.pair.json);
    }

    #[test]
    fn serve_is_a_subcommand() {
        let cli = Cli::try_parse_from(["git-pair", "serve", "--repo", "/r"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Serve { .. })));
    }

    #[test]
    fn list_and_remove_are_subcommands() {
        let cli = Cli::try_parse_from(["git-pair", "list", "--json"]).unwrap();
        assert!(matches!(cli.command, Some(Command::List { json: true })));
        let cli = Cli::try_parse_from(["git-pair", "remove", "desk"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Remove { name }) if name == "desk"));
    }

    #[test]
    fn sync_and_hooks_are_subcommands() {
        let cli = Cli::try_parse_from(["git-pair", "sync"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Sync {
                name: None,
                json: false,
                hook: false
            })
        ));
        let cli = Cli::try_parse_from(["git-pair", "sync", "desk", "--json"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Sync { name: Some(n), json: true, .. }) if n == "desk")
        );
        let cli = Cli::try_parse_from(["git-pair", "hooks", "install"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Hooks {
                action: HooksAction::Install
            })
        ));
        for args in [
            &["git-pair", "hooks"][..],
            &["git-pair", "hooks", "frob"],
            &["git-pair", "sync", "--json", "--hook"],
            &["git-pair", "sync", "a", "b"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn bad_usage_is_refused() {
        for args in [
            &["git-pair", "--timeout", "0"][..],
            &["git-pair", "--port", "70000"],
            &["git-pair", "code", "--code-file", "f"],
            &["git-pair", "--frobnicate"],
            &["git-pair", "serve"],
            &["git-pair", "remove"],
            &["git-pair", "list", "x"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
