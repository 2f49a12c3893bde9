//! `git pair [CODE]`: the whole pairing, from the code to the new remote.
//!
//! This is the edge: it checks everything that can be checked before the
//! network (repository, ~/.ssh, keys, interfaces, sockets), runs the
//! protocol machine through the transport, checks the verified peer's sshd,
//! and then applies the planned changes to ~/.ssh and the repository as one
//! unit that is rolled back on any failure or interruption. It talks to
//! people on stderr and to programs on stdout (`--json`).
//!
//! This file is the story of a pairing, in the order it happens; the parts live beside it:
//! - `input`: the code and the `--peer` hosts from the command line;
//! - `preflight`: what is checked about this machine before the network (its sshd answers);
//! - `peer`: what is checked about a peer before it is confirmed (its payload, its login key,
//!   its sshd);
//! - `finish`: the end of a pairing in two phases: ask (`--verify`), write, tell the peer, keep
//!   or undo by what the peer says;
//! - `verify`: the `--verify` question and its answer;
//! - `setup`: writing the pairing on this machine, all or nothing;
//! - `report`: progress for people, events for programs;
//! - `error`: why a pairing failed, with its exit status.

mod error;
mod finish;
mod input;
mod names;
mod peer;
mod preflight;
mod replace;
mod report;
mod setup;
mod verify;

#[cfg(test)]
mod fixtures;

pub(crate) use error::usage;
pub use error::{find, PairError};
pub use finish::LOCK_WITHIN;
pub(crate) use input::resolve_peers;
pub use input::CodeSource;
pub(crate) use report::Reporter;
pub(crate) use setup::host_name_for;
pub use verify::ANSWER_WITHIN;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand_core::OsRng;

use crate::cli::PairArgs;
use crate::events::{Event as JsonEvent, Reason};
use crate::interrupt::Interrupts;
use crate::keys::{self, LoginKey};
use crate::local;
use crate::protocol::machine;
use crate::protocol::payload::Payload;
use crate::protocol::repair;
use crate::protocol::schedule::PairSecret;
use crate::protocol::{Code, Config, Event, Machine};
use crate::repo::{self, RepoInfo};
use crate::ssh_files::SshDir;
use crate::term;
use crate::transport::driver::{self, Control, Outcome};
use crate::transport::iface::{self, Interface};
use crate::transport::{scan, Sockets, DEFAULT_PORT, GROUP_V4, GROUP_V6};

use input::{ask_code, read_code};
use peer::{annex_shell_installed, Session};

/// Runs `git pair [CODE]` and `git pair join`.
pub fn run(args: &PairArgs, code: CodeSource) -> anyhow::Result<()> {
    // Before any thread starts, so that every thread has the signals blocked.
    let mut interrupts = Interrupts::install().context("cannot watch for Ctrl-C")?;
    let mut out = Reporter::new(args.json);
    let result = pair(args, &code, &mut out, &mut interrupts);
    out.progress.finish();
    if let Err(err) = &result {
        let reason = find(err).map_or(Reason::Error, PairError::reason);
        out.event(JsonEvent::Failed {
            reason,
            message: format!("{err:#}"),
        });
    }
    result
}

/// The pair secrets of this repository's pairings, the most recent first (a pairing's block is appended when it is made), at most
/// [`repair::MAX_PROOFS`]: the peer of a re-pair can tell from a proof of one that this side is
/// the one it paired with (`replace`). A secret that cannot be read is left out.
fn repair_secrets(ssh: &SshDir, info: &RepoInfo) -> Vec<PairSecret> {
    let local = info.path.to_string_lossy();
    let blocks = ssh.pair_blocks().unwrap_or_default();
    blocks
        .iter()
        .rev()
        .filter(|b| b.repo.as_deref() == Some(&*local))
        .filter_map(|b| ssh.read_pair_secret(&b.alias).ok().flatten())
        .take(repair::MAX_PROOFS)
        .map(|r| r.secret)
        .collect()
}

/// Everything checked and prepared before the first datagram.
struct Prepared {
    repo: git2::Repository,
    info: RepoInfo,
    ssh: SshDir,
    login: LoginKey,
    interfaces: Vec<Interface>,
    code: Code,
    generated: bool,
    port: u16,
    /// Whether sshd will find git-annex-shell here (told to the peer, and warned about).
    annex_shell: bool,
    /// This machine's sshd host keys, as advertised: with the path, they tell a peer that is
    /// this very repository.
    host_keys: Vec<ssh_key::PublicKey>,
    /// `--verify`: the person confirms the check string before anything is written.
    verify: bool,
    /// Whether ~/.ssh/config may get the Include line (not --no-ssh-config), and whether it has it.
    edit_config: bool,
    include: crate::ssh_files::IncludeState,
}

fn pair(
    args: &PairArgs,
    source: &CodeSource,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<()> {
    let mut typed = read_code(source)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (repo, info) = repo::open(&cwd).map_err(usage)?;
    if let Some(name) = &args.name {
        let paired = repo::paired_remotes(&repo).map_err(usage)?;
        repo::check_requested_name(&info.remotes, &paired, name).map_err(usage)?;
    }
    let ssh = local::ssh_dir().map_err(usage)?;
    ssh.check_writable().context(PairError::Setup)?;
    let edit_config = !args.no_ssh_config && info.ssh_config.unwrap_or(true);
    let include = ssh.include_state(edit_config).context(PairError::Setup)?;
    let me = local::whoami().map_err(usage)?;
    let login = match &args.key {
        Some(path) => LoginKey::load(path).map_err(usage)?,
        None => LoginKey::generate(&format!("git-pair {}@{}", me.user, me.host))
            .context(PairError::Setup)?,
    };
    let host_keys = keys::host_keys(&args.host_keys).context(PairError::Setup)?;
    let port = args.port.or(info.port).unwrap_or(DEFAULT_PORT);
    let all = iface::list()?;
    let interfaces = iface::select(&all, &args.interfaces).map_err(usage)?;
    let peers = resolve_peers(&args.peers, port, &all)?;
    preflight::check_local_sshd(args.ssh_port, &interfaces)?;
    if let CodeSource::Prompt = source {
        // Everything that can fail without the network has been checked: now the person types.
        out.progress.finish();
        typed = Some(ask_code(interrupts)?);
    }
    let sockets = Sockets::open(
        interfaces.clone(),
        port,
        peers.iter().map(SocketAddr::ip).collect(),
    )?;
    let scan_targets = if !args.no_scan && info.scan.unwrap_or(true) {
        scan::targets(&interfaces, port)
    } else {
        Vec::new()
    };
    let (code, generated) = match typed {
        Some(code) => (code, false),
        None => (Code::generate(&mut OsRng), true),
    };
    if code.estimated_bits() < 20 {
        out.line("warning: this code is short; git pair allows only 3 wrong tries per run, but a longer code is safer");
    }
    // Only a git-annex repository needs git-annex-shell here.
    let annex_shell = info.annex_uuid.is_some() && annex_shell_installed();
    let payload = Payload {
        user: me.user.clone(),
        host: me.host.clone(),
        path: info.path.to_string_lossy().into_owned(),
        user_key: keys::openssh_line(&login.public()),
        host_keys: host_keys.iter().map(keys::openssh_line).collect(),
        ssh_port: args.ssh_port,
        addresses: interfaces
            .iter()
            .flat_map(|i| {
                i.v4.iter()
                    .map(|n| n.addr.to_string())
                    .chain(i.v6.iter().map(|n| n.addr.to_string()))
            })
            .collect(),
        annex_uuid: info.annex_uuid.clone(),
        annex_shell,
    };
    let machine = Machine::new(
        Config {
            code: code.clone(),
            payload: payload.to_bytes(),
            peers,
            scan: scan_targets,
            proof_secrets: repair_secrets(&ssh, &info),
            generated,
        },
        Instant::now(),
        OsRng,
    )?;
    let prepared = Prepared {
        repo,
        info,
        ssh,
        login,
        interfaces,
        code,
        generated,
        port,
        annex_shell,
        host_keys,
        verify: args.verify,
        edit_config,
        include,
    };
    exchange(args, prepared, sockets, machine, out, interrupts)
}

fn exchange(
    args: &PairArgs,
    p: Prepared,
    mut sockets: Sockets,
    mut machine: Machine<OsRng>,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<()> {
    let names = p
        .interfaces
        .iter()
        .map(|i| i.name.clone())
        .collect::<Vec<_>>();
    if p.generated {
        let shown = p.code.reveal();
        out.event(JsonEvent::Code {
            code: shown.to_string(),
        });
        if out.json.is_none() {
            out.progress
                .print_trusted(&term::code_banner(&shown, out.progress.is_tty()));
        }
    }
    out.event(JsonEvent::Listening {
        interfaces: names.clone(),
        port: p.port,
        groups: vec![GROUP_V4.to_string(), GROUP_V6.to_string()],
    });
    out.idle(&mut sockets);
    out.status(&format!(
        "waiting for the other machine on {} (UDP port {})…",
        names.join(", "),
        p.port
    ));

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut state = Session::default();
    let mut handler = Exchange {
        session: &mut state,
        prepared: &p,
        out,
    };
    let outcome = driver::drive(
        &mut machine,
        &mut sockets,
        interrupts,
        deadline,
        &mut handler,
    )?;
    if let Some(err) = state.error.take() {
        // A refusal is delivered, sealed, before the run ends.
        if machine.is_ending() {
            linger(&mut machine, &mut sockets, interrupts, out);
        }
        return Err(err);
    }
    if let Some(verified) = state.verified.take() {
        // The peer is verified: ask (--verify), write, tell the peer how that went, and keep or
        // undo by what it says.
        return finish::finish(
            args,
            &p,
            &verified,
            &mut machine,
            &mut sockets,
            interrupts,
            out,
        );
    }
    match outcome {
        Outcome::Interrupted => Err(PairError::Interrupted.into()),
        Outcome::Deadline if machine.failures() > 0 => Err(PairError::WrongCode {
            failures: machine.failures(),
        }
        .into()),
        Outcome::Deadline => {
            // A peer answered, but with a payload too large to carry: say so, not "no peer".
            if let Some((from, pieces)) = machine.oversized_payload() {
                return Err(PairError::BadPeer(format!(
                    "the machine at {} sent its details in {pieces} pieces, more than the {} \
                     ({} bytes) git pair accepts, so it could not be verified: fewer or smaller \
                     host keys (--host-key) or a smaller --key on that machine; nothing was \
                     written",
                    from.ip(),
                    crate::protocol::codec::MAX_PIECES,
                    crate::protocol::payload::MAX_PAYLOAD
                ))
                .into());
            }
            // Likewise a side on this channel that runs another version of git pair.
            if let Some((from, version)) = machine.other_version() {
                return Err(PairError::BadPeer(format!(
                    "the machine at {} runs a version of git pair that speaks pairing protocol \
                     version {version}, and this one speaks version {}: the two cannot pair; \
                     install the same version of git-pair on both machines; nothing was written",
                    from.ip(),
                    crate::protocol::codec::VERSION
                ))
                .into());
            }
            out.event(JsonEvent::Timeout {
                seconds: args.timeout,
            });
            Err(PairError::NoPeer {
                interfaces: names.join(", "),
                seconds: args.timeout,
                port: p.port,
            }
            .into())
        }
        Outcome::Stopped => Err(anyhow::anyhow!("the exchange stopped without a result")),
    }
}

/// Drives the exchange until a peer is verified or the run fails.
struct Exchange<'a> {
    session: &'a mut Session,
    prepared: &'a Prepared,
    out: &'a mut Reporter,
}

impl driver::Handler<OsRng> for Exchange<'_> {
    fn event(&mut self, machine: &mut Machine<OsRng>, event: Event) -> Control {
        self.session
            .on_event(self.prepared, machine, event, self.out)
    }

    fn idle(&mut self, _: &mut Machine<OsRng>, sockets: &mut Sockets) -> Control {
        self.out.idle(sockets);
        Control::Continue
    }
}

/// Drives the machine until it has delivered this side's refusal (the peer
/// acknowledged it, or went quiet, at most [`machine::LINGER_MAX`]). A
/// network error now only means that the peer may not hear our last word: it
/// is a warning.
fn linger(
    machine: &mut Machine<OsRng>,
    sockets: &mut Sockets,
    interrupts: &mut Interrupts,
    out: &mut Reporter,
) {
    out.status("telling the other machine why…");
    let until = Instant::now() + machine::LINGER_MAX;
    if let Err(e) = driver::drive(machine, sockets, interrupts, until, &mut Linger { out }) {
        out.line(&format!("warning: {:#}", anyhow::Error::new(e)));
    }
}

/// While delivering a refusal: stop when the machine is done.
struct Linger<'a> {
    out: &'a mut Reporter,
}

impl driver::Handler<OsRng> for Linger<'_> {
    fn event(&mut self, _: &mut Machine<OsRng>, event: Event) -> Control {
        match event {
            Event::Finished => Control::Stop,
            _ => Control::Continue,
        }
    }

    fn idle(&mut self, _: &mut Machine<OsRng>, sockets: &mut Sockets) -> Control {
        self.out.idle(sockets);
        Control::Continue
    }
}
