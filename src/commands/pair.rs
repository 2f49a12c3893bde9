//! `git pair [CODE]`: the whole pairing, from the code to the new remote.
//!
//! This is the edge: it checks everything that can be checked before the
//! network (repository, ~/.ssh, keys, interfaces, sockets), runs the
//! protocol machine through the transport, checks the verified peer's sshd,
//! and then applies the planned changes to ~/.ssh and the repository as one
//! unit that is rolled back on any failure or interruption. It talks to
//! people on stderr and to programs on stdout (`--json`).

use std::fs;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rand_core::OsRng;

use crate::cli::PairArgs;
use crate::commands::serve;
use crate::events::{Event as JsonEvent, EventWriter, PeerView, Reason};
use crate::exit::Exit;
use crate::interrupt::Interrupts;
use crate::keys::{self, LoginKey};
use crate::protocol::codec::SessionId;
use crate::protocol::machine::{self, MAX_FAILURES};
use crate::protocol::payload::{Payload, PeerInfo};
use crate::protocol::{Code, Config, Event, Machine};
use crate::repo::{self, RepoInfo};
use crate::ssh_files::{self, AuthorizedEntry, Identity, PairSetup, SshDir};
use crate::term::{self, Progress};
use crate::transport::driver::{self, Control, Outcome};
use crate::transport::iface::{self, Interface};
use crate::transport::{probe, scan, Sockets, DEFAULT_PORT, GROUP_V4, GROUP_V6};

/// How long the peer's sshd has to accept a TCP connection.
const SSHD_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a pairing failed; each maps to a documented exit status and JSON
/// reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PairError {
    #[error("{0}")]
    Usage(String),
    #[error(
        "no peer answered on {interfaces} within {seconds} s: is `git pair` running on the other \
         machine with the same code? Are both on the same network? Is UDP port {port} allowed? \
         If the network drops multicast, give one side --peer HOST"
    )]
    NoPeer {
        interfaces: String,
        seconds: u64,
        port: u16,
    },
    #[error(
        "verification failed: {failures} peer(s) answered with a different code. Check the code \
         on both machines and start again; nothing was written"
    )]
    WrongCode { failures: u32 },
    #[error(
        "verification failed {0} times: someone may be guessing your code. Start again with a \
         new code; nothing was written"
    )]
    Guessing(u32),
    #[error(
        "the peer {peer} is verified, but its sshd does not answer at {tried}: is sshd running \
         on the peer? Is TCP port {port} open? Nothing was written"
    )]
    SshdUnreachable {
        peer: String,
        tried: String,
        port: u16,
    },
    #[error("the peer refused this pairing: {0}. Nothing was written")]
    PeerRejected(String),
    #[error("the peer sent details this machine cannot use: {0}")]
    BadPeer(String),
    #[error("{0}; nothing was written")]
    KeyInUse(String),
    #[error("setting up this machine failed; nothing was left behind")]
    Setup,
    #[error("interrupted; nothing was written")]
    Interrupted,
}

/// A usage error from a typed error, keeping its whole chain in the message.
pub(crate) fn usage(e: impl std::error::Error + Send + Sync + 'static) -> PairError {
    PairError::Usage(format!("{:#}", anyhow::Error::new(e)))
}

/// The [`PairError`] an error carries, as the error itself, as context
/// (which `chain` does not expose as that type) or as a cause.
pub fn find(err: &anyhow::Error) -> Option<&PairError> {
    err.downcast_ref::<PairError>()
        .or_else(|| err.chain().find_map(|c| c.downcast_ref::<PairError>()))
}

impl PairError {
    pub fn exit(&self) -> Exit {
        match self {
            PairError::Usage(_) => Exit::Usage,
            PairError::NoPeer { .. } => Exit::NoPeer,
            PairError::WrongCode { .. } | PairError::Guessing(_) => Exit::Verification,
            PairError::SshdUnreachable { .. }
            | PairError::PeerRejected(_)
            | PairError::BadPeer(_)
            | PairError::KeyInUse(_)
            | PairError::Setup => Exit::Setup,
            PairError::Interrupted => Exit::Interrupted,
        }
    }

    fn reason(&self) -> Reason {
        match self {
            PairError::Usage(_) => Reason::Usage,
            PairError::NoPeer { .. } => Reason::NoPeer,
            PairError::WrongCode { .. } => Reason::WrongCode,
            PairError::Guessing(_) => Reason::Guessing,
            PairError::SshdUnreachable { .. } => Reason::SshdUnreachable,
            PairError::PeerRejected(_) => Reason::PeerRejected,
            PairError::BadPeer(_) | PairError::KeyInUse(_) | PairError::Setup => Reason::Setup,
            PairError::Interrupted => Reason::Interrupted,
        }
    }
}

/// Human progress on stderr, JSON events on stdout.
struct Reporter {
    progress: Progress,
    json: Option<EventWriter<io::Stdout>>,
}

impl Reporter {
    fn new(json: bool) -> Self {
        Reporter {
            // Programs reading --json get plain lines on stderr, no spinner.
            progress: if json {
                Progress::with_writer(Box::new(io::stderr()), false)
            } else {
                Progress::stderr()
            },
            json: json.then(|| EventWriter::new(io::stdout())),
        }
    }

    fn event(&mut self, event: JsonEvent) {
        if let Some(w) = &mut self.json {
            w.emit(&event);
        }
    }

    fn status(&mut self, text: &str) {
        self.progress.set_status(text);
    }

    fn line(&mut self, text: &str) {
        self.progress.line(text);
    }

    /// Turns the spinner and reports what the sockets found wrong.
    fn idle(&mut self, sockets: &mut Sockets) {
        for w in sockets.take_warnings() {
            self.line(&format!("warning: {w}"));
        }
        self.progress.tick();
    }
}

/// Runs `git pair [CODE]`.
pub fn run(args: &PairArgs) -> anyhow::Result<()> {
    // Before any thread starts, so that every thread has the signals blocked.
    let mut interrupts = Interrupts::install().context("cannot watch for Ctrl-C")?;
    let mut out = Reporter::new(args.json);
    let result = pair(args, &mut out, &mut interrupts);
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
}

fn pair(args: &PairArgs, out: &mut Reporter, interrupts: &mut Interrupts) -> anyhow::Result<()> {
    let typed = read_code(args)?;
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let (repo, info) = repo::open(&cwd).map_err(usage)?;
    if let Some(name) = &args.name {
        let paired = repo::paired_remotes(&repo).map_err(usage)?;
        repo::check_requested_name(&info.remotes, &paired, name).map_err(usage)?;
    }
    let ssh = ssh_dir()?;
    ssh.check_writable().context(PairError::Setup)?;
    let me = whoami()?;
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
        return Err(err);
    }
    if let Some(verified) = state.verified.take() {
        // The peer is verified: set up now, then linger so that the peer
        // finishes too.
        let done = setup(args, &p, &verified, out, interrupts)?;
        let linger_until = Instant::now() + machine::LINGER_MAX;
        if !machine.is_done() {
            out.status("waiting for the other machine to finish…");
            // This side is set up; a network error now only means the peer
            // may have to finish without our last acknowledgement.
            let lingered = driver::drive(
                &mut machine,
                &mut sockets,
                interrupts,
                linger_until,
                &mut Linger { out },
            );
            if let Err(e) = lingered {
                out.line(&format!("warning: {:#}", anyhow::Error::new(e)));
            }
        }
        out.progress.finish();
        out.event(JsonEvent::Paired {
            remote: done.remote.clone(),
            alias: done.alias.clone(),
            peer: verified.view.clone(),
            address: verified.address.to_string(),
        });
        out.line(&format!("Paired. Try: git fetch {}", done.remote));
        return Ok(());
    }
    match outcome {
        Outcome::Interrupted => Err(PairError::Interrupted.into()),
        Outcome::Deadline if machine.failures() > 0 => Err(PairError::WrongCode {
            failures: machine.failures(),
        }
        .into()),
        Outcome::Deadline => {
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

    fn idle(&mut self, sockets: &mut Sockets) {
        self.out.idle(sockets);
    }
}

/// After setup: keep answering the peer until it has finished too.
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

    fn idle(&mut self, sockets: &mut Sockets) {
        self.out.idle(sockets);
    }
}

/// A peer verified by the protocol, with its sshd checked.
struct VerifiedPeer {
    info: PeerInfo,
    view: PeerView,
    address: SocketAddr,
    peer: SessionId,
}

#[derive(Default)]
struct Session {
    /// Peers whose payload was accepted (their sshd answered). Usually one;
    /// two only if two machines on the LAN hold the same code.
    accepted: Vec<(SessionId, PeerInfo, SocketAddr)>,
    verified: Option<VerifiedPeer>,
    error: Option<anyhow::Error>,
}

impl Session {
    fn on_event(
        &mut self,
        p: &Prepared,
        m: &mut Machine<OsRng>,
        event: Event,
        out: &mut Reporter,
    ) -> Control {
        match event {
            Event::PeerSeen { from, .. } => {
                out.event(JsonEvent::Peer {
                    address: from.ip().to_string(),
                });
                out.status(&format!(
                    "found a machine at {}; verifying the code…",
                    from.ip()
                ));
                Control::Continue
            }
            Event::PeerPayload {
                peer,
                payload,
                sources,
            } => self.check_peer(p, m, peer, &payload, &sources, out),
            Event::VerifyFailed { from, failures, .. } => {
                out.event(JsonEvent::VerifyFailed {
                    address: from.ip().to_string(),
                    failures,
                    limit: MAX_FAILURES,
                });
                out.line(&format!(
                    "warning: the machine at {} has a different code (or is guessing); {} of {} tries used. \
                     Still waiting; if the code was mistyped, start again on that machine",
                    from.ip(),
                    failures,
                    MAX_FAILURES
                ));
                Control::Continue
            }
            Event::PeerRejected { detail, .. } => {
                let mut detail = detail
                    .as_deref()
                    .map(term::sanitize)
                    .unwrap_or_default()
                    .into_owned();
                if detail.contains("sshd") {
                    detail.push_str(" (is sshd running here, on the port given with --ssh-port?)");
                }
                self.error = Some(PairError::PeerRejected(detail).into());
                Control::Stop
            }
            Event::TooManyFailures { failures } => {
                self.error = Some(PairError::Guessing(failures).into());
                Control::Stop
            }
            Event::Verified(v) => {
                let Some(i) = self.accepted.iter().position(|(id, ..)| *id == v.peer) else {
                    self.error = Some(anyhow::anyhow!("verified a peer that was never checked"));
                    return Control::Stop;
                };
                let (peer, info, address) = self.accepted.swap_remove(i);
                let view = view_of(&info);
                out.event(JsonEvent::Verified {
                    peer: view.clone(),
                    address: address.to_string(),
                });
                out.event(JsonEvent::Sas {
                    sas: v.sas.to_string(),
                });
                out.line(&format!(
                    "Verified {}@{}:{} at {} (check code on both machines: {})",
                    view.user,
                    view.host,
                    view.path,
                    address.ip(),
                    v.sas
                ));
                self.verified = Some(VerifiedPeer {
                    info,
                    view,
                    address,
                    peer,
                });
                Control::Stop
            }
            Event::Finished => Control::Stop,
        }
    }

    /// The peer holds the code; before confirming, make sure its payload is
    /// usable and its sshd answers, so that a pairing that cannot work is
    /// refused on both sides before anything is written.
    fn check_peer(
        &mut self,
        p: &Prepared,
        m: &mut Machine<OsRng>,
        peer: SessionId,
        payload: &[u8],
        sources: &[SocketAddr],
        out: &mut Reporter,
    ) -> Control {
        let info = match PeerInfo::parse(payload) {
            Ok(info) => info,
            Err(e) => {
                m.reject(peer, "your payload is invalid");
                self.error =
                    Some(PairError::BadPeer(term::sanitize(&e.to_string()).into_owned()).into());
                return Control::Stop;
            }
        };
        if let Some(conflict) = key_conflict(p, &info) {
            m.reject(peer, &conflict.for_peer);
            self.error = Some(PairError::KeyInUse(conflict.here).into());
            return Control::Stop;
        }
        let candidates = sshd_candidates(sources, &info, &p.interfaces);
        out.status(&format!(
            "checking the peer's sshd (TCP port {})…",
            info.ssh_port
        ));
        match probe::first_reachable(&candidates, SSHD_PROBE_TIMEOUT) {
            Ok(address) => {
                self.accepted.push((peer, info, address));
                m.accept(Instant::now(), peer);
                Control::Continue
            }
            Err(failures) => {
                m.reject(
                    peer,
                    &format!("your sshd on TCP port {} does not answer", info.ssh_port),
                );
                let view = view_of(&info);
                self.error = Some(
                    PairError::SshdUnreachable {
                        peer: format!("{}@{}", view.user, view.host),
                        tried: failures
                            .iter()
                            .map(|(a, e)| format!("{a} ({e})"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        port: info.ssh_port,
                    }
                    .into(),
                );
                Control::Stop
            }
        }
    }
}

/// Why a peer's login key cannot be let in, told to each side.
struct KeyConflict {
    here: String,
    for_peer: String,
}

/// sshd uses the first `authorized_keys` line that matches a key, so one key can open only one
/// repository. A peer that logs in with a key already paired with another repository here
/// (`--key` on its side) would silently take that pairing's access away, or be sent to the
/// wrong repository: refuse it before anything is written. A re-pair of the same two
/// repositories has the same marker and simply replaces its line.
fn key_conflict(p: &Prepared, info: &PeerInfo) -> Option<KeyConflict> {
    let existing = fs::read(p.ssh.authorized_keys()).ok()?;
    let ours = repo::pair_marker(&p.info.path, &peer_id(info));
    let other = ssh_files::authorized_keys::git_pair_lines(&existing)
        .into_iter()
        .find(|l| l.key.key_data() == info.user_key.key_data() && l.marker != ours)?;
    let label = term::sanitize(&other.label).into_owned();
    Some(KeyConflict {
        here: format!(
            "the peer logs in with a key that line {} of {} already lets in for another pairing \
             ({label}); one key can open only one repository. Pair again without --key on the \
             other machine, so that this pairing gets its own key, or run `git pair remove` for \
             the old pairing",
            other.line,
            p.ssh.authorized_keys().display()
        ),
        for_peer: "pair without --key: it opens another repo here".to_string(),
    })
}

fn peer_id(info: &PeerInfo) -> String {
    format!("{}@{}:{}", info.user, info.host, info.path)
}

/// Between two git-annex repositories, git annex needs git-annex-shell on both machines: the
/// top complaint about git-annex's own pairing was a remote that silently did not work.
fn annex_warnings(plan: &repo::RemotePlan, peer: &PeerInfo, local_shell: bool) -> Vec<String> {
    if !plan
        .entries
        .iter()
        .any(|(k, _)| *k == repo::keys::ANNEX_UUID)
    {
        return Vec::new();
    }
    let host = term::sanitize(&peer.host);
    let mut out = Vec::new();
    if !peer.annex_shell {
        out.push(format!(
            "git-annex-shell is not installed on {host}, so git annex cannot use remote {} yet: \
             install git-annex on {host} (Debian, Ubuntu: sudo apt install git-annex)",
            plan.name
        ));
    }
    if !local_shell {
        out.push(format!(
            "git-annex-shell is not installed here, so git annex on {host} cannot use this \
             repository yet: install git-annex here (Debian, Ubuntu: sudo apt install git-annex)"
        ));
    }
    out
}

/// The `PATH` OpenSSH's sshd gives a forced command on Debian and most builds: `git pair serve`
/// finds git-annex-shell there, not in the PATH of the shell that runs `git pair`.
const SSHD_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/games";

/// Whether `git pair serve`, run by sshd, will find git-annex-shell, so that a git-annex peer
/// can use this repository.
fn annex_shell_installed() -> bool {
    serve::annex_shell_in(std::ffi::OsStr::new(SSHD_PATH)).is_some()
}

fn view_of(info: &PeerInfo) -> PeerView {
    PeerView {
        user: term::sanitize(&info.user).into_owned(),
        host: term::sanitize(&info.host).into_owned(),
        path: term::sanitize(&info.path).into_owned(),
    }
}

/// Where to look for the peer's sshd, best first: the addresses its
/// datagrams came from (proven to route), then the addresses it advertised,
/// IPv4 before IPv6. Advertised link-local IPv6 addresses carry no scope, so
/// they get the scope of the interface the peer was heard on.
fn sshd_candidates(
    sources: &[SocketAddr],
    info: &PeerInfo,
    interfaces: &[Interface],
) -> Vec<SocketAddr> {
    let port = info.ssh_port;
    let link_scope = sources.iter().find_map(|s| match s {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => Some(v6.scope_id()),
        _ => None,
    });
    let mut out: Vec<SocketAddr> = Vec::new();
    let mut push = |addr: SocketAddr| {
        if !out.iter().any(|a| a.ip() == addr.ip()) {
            out.push(addr);
        }
    };
    for s in sources {
        let mut a = *s;
        a.set_port(port);
        push(a);
    }
    let mut advertised: Vec<IpAddr> = info.addresses.clone();
    advertised.sort_by_key(|ip| match ip {
        IpAddr::V4(_) => 0,
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 != 0xfe80 => 1,
        IpAddr::V6(_) => 2,
    });
    for ip in advertised {
        match ip {
            IpAddr::V4(v4) if !v4.is_loopback() || interfaces.iter().any(|i| i.loopback) => {
                push(SocketAddr::new(ip, port))
            }
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                if let Some(scope) = link_scope {
                    push(SocketAddr::V6(SocketAddrV6::new(v6, port, 0, scope)));
                }
            }
            IpAddr::V6(v6) if !v6.is_loopback() => push(SocketAddr::new(ip, port)),
            _ => {}
        }
    }
    out
}

/// What setup made.
struct Done {
    remote: String,
    alias: String,
}

/// Applies the pairing on this machine: ~/.ssh, then the remote, as one
/// unit. Any failure or interruption undoes all of it.
fn setup(
    args: &PairArgs,
    p: &Prepared,
    v: &VerifiedPeer,
    out: &mut Reporter,
    interrupts: &mut Interrupts,
) -> anyhow::Result<Done> {
    let info = &v.info;
    let alias = format!(
        "git-pair-{}-{}",
        repo::name_from_host(&info.host),
        v.peer.short()
    );
    let (identity, identity_path) = match &p.login {
        LoginKey::Generated(key) => (Identity::Generated((**key).clone()), p.ssh.identity(&alias)),
        LoginKey::Existing { path, .. } => (Identity::Existing(path.clone()), path.clone()),
    };
    let host_name = host_name_for(v.address, &p.interfaces);
    let peer_id = peer_id(info);
    let marker = repo::pair_marker(&p.info.path, &peer_id);
    let earlier = earlier_pairings(p, &peer_id, &marker)?;
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .context("cannot find the git-pair executable for the forced command")?;
    let command = ssh_files::forced_command(&exe, &p.info.path).context(PairError::Setup)?;
    let record = repo::PairRecord {
        alias: alias.clone(),
        peer: peer_id.clone(),
        peer_path: info.path.clone(),
        peer_key: keys::fingerprint(&info.user_key),
        host_keys: info.host_keys.iter().map(keys::fingerprint).collect(),
        address: v.address.to_string(),
        identity: identity_path.to_string_lossy().into_owned(),
        time: repo::rfc3339(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        annex_uuid: info.annex_uuid.clone(),
        local_annex: p.info.annex_uuid.is_some(),
    };
    let plan = repo::plan_remote(
        &p.info.remotes,
        args.name.as_deref(),
        &info.host,
        &record,
        earlier.remote.as_deref(),
    )
    .map_err(usage)?;
    let ssh_setup = PairSetup {
        alias: alias.clone(),
        host_name,
        port: v.address.port(),
        user: info.user.clone(),
        identity,
        host_keys: info.host_keys.clone(),
        authorized: AuthorizedEntry {
            key: info.user_key.clone(),
            command,
            marker: marker.clone(),
            label: peer_id.clone(),
        },
        record: Some(ssh_files::BlockRecord {
            repo: p.info.path.to_string_lossy().into_owned(),
            remote: plan.name.clone(),
            marker,
        }),
        replaces: earlier.aliases.clone(),
    };

    let applied = ssh_files::apply(&p.ssh, &ssh_setup, &mut || interrupts.check().is_some())
        .map_err(|e| {
            let interrupted = matches!(e, ssh_files::Error::Interrupted);
            anyhow::Error::new(e).context(if interrupted {
                PairError::Interrupted
            } else {
                PairError::Setup
            })
        })?;
    let remote_undo = match repo::apply_remote(&p.repo, &plan) {
        Ok(undo) => undo,
        Err(e) => {
            let undo = applied.rollback();
            let err = anyhow::Error::new(e).context(PairError::Setup);
            return Err(match undo {
                Ok(()) => err,
                Err(u) => err.context(format!("undoing the ssh changes also failed: {u}")),
            });
        }
    };
    if interrupts.check().is_some() {
        let _ = repo::undo_remote(&p.repo, &plan.name, remote_undo);
        applied
            .rollback()
            .context("undoing the ssh changes after Ctrl-C failed")?;
        return Err(PairError::Interrupted.into());
    }
    drop(remote_undo);
    let written = applied.written();
    applied.commit();

    out.event(JsonEvent::Remote {
        name: plan.name.clone(),
        url: term::sanitize(&plan.url).into_owned(),
        alias: alias.clone(),
    });
    out.line(&format!(
        "Set up: remote {} -> {}",
        plan.name,
        term::sanitize(&plan.url)
    ));
    out.line(&format!(
        "        ssh alias {alias} in {} (host key pinned)",
        p.ssh.pair_config().display()
    ));
    out.line(&format!(
        "        the peer may fetch and push {} only ({})",
        p.info.path.display(),
        p.ssh.authorized_keys().display()
    ));
    if written.is_empty() {
        out.line("        (the ssh files already held this pairing)");
    }
    if plan.replaces.is_some() || !earlier.aliases.is_empty() {
        out.line("        (this replaces the earlier pairing of these two repositories)");
    }
    for extra in &earlier.extra_remotes {
        if let Err(e) = repo::remove_remote(&p.repo, extra) {
            out.line(&format!(
                "warning: remote {extra} of the earlier pairing is left: {:#}",
                anyhow::Error::new(e)
            ));
        }
    }
    for warning in annex_warnings(&plan, info, p.annex_shell) {
        out.line(&format!("warning: {warning}"));
    }
    Ok(Done {
        remote: plan.name,
        alias,
    })
}

/// What an earlier pairing of the same two repositories left, for a re-pair to replace.
#[derive(Debug, Default)]
struct Earlier {
    /// The remote to update in place.
    remote: Option<String>,
    /// Further remotes of the same peer repository (only from hand edits), removed after.
    extra_remotes: Vec<String>,
    /// Their ssh aliases, and those of `Host` blocks whose remote is gone.
    aliases: Vec<String>,
}

/// Finds the remotes recorded for `peer_id`, and the `Host` blocks recorded for this repository
/// with this pairing's marker.
fn earlier_pairings(p: &Prepared, peer_id: &str, marker: &str) -> anyhow::Result<Earlier> {
    let mut earlier = Earlier::default();
    for r in repo::paired_remotes(&p.repo).context(PairError::Setup)? {
        if r.peer.as_deref() != Some(peer_id) {
            continue;
        }
        if earlier.remote.is_none() {
            earlier.remote = Some(r.name);
        } else {
            earlier.extra_remotes.push(r.name);
        }
        if ssh_files::validate_alias(&r.alias).is_ok() && !earlier.aliases.contains(&r.alias) {
            earlier.aliases.push(r.alias);
        }
    }
    let local = p.info.path.to_string_lossy();
    for b in p.ssh.pair_blocks().context(PairError::Setup)? {
        if b.repo.as_deref() == Some(&*local)
            && b.marker.as_deref() == Some(marker)
            && !earlier.aliases.contains(&b.alias)
        {
            earlier.aliases.push(b.alias);
        }
    }
    Ok(earlier)
}

/// `HostName` for the alias: a link-local IPv6 address needs the name of
/// the local interface it is reached through.
fn host_name_for(address: SocketAddr, interfaces: &[Interface]) -> String {
    match address {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => {
            match interfaces.iter().find(|i| i.index == v6.scope_id()) {
                Some(i) => format!("{}%{}", v6.ip(), i.name),
                None => v6.ip().to_string(),
            }
        }
        a => a.ip().to_string(),
    }
}

/// The code from the argument, --code-file or GIT_PAIR_CODE, in that
/// order; None to generate one.
fn read_code(args: &PairArgs) -> anyhow::Result<Option<Code>> {
    let text = if let Some(code) = &args.code {
        Some(zeroize::Zeroizing::new(code.clone()))
    } else if let Some(file) = &args.code_file {
        let mut text = zeroize::Zeroizing::new(String::new());
        let read = if file == Path::new("-") {
            io::stdin().read_to_string(&mut text)
        } else {
            fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
        };
        read.map_err(|e| {
            PairError::Usage(format!("cannot read the code from {}: {e}", file.display()))
        })?;
        Some(text)
    } else {
        std::env::var("GIT_PAIR_CODE")
            .ok()
            .filter(|c| !c.trim().is_empty())
            .map(zeroize::Zeroizing::new)
    };
    match text {
        None => Ok(None),
        Some(text) => Code::parse(&text)
            .map(Some)
            .map_err(|e| PairError::Usage(e.to_string()).into()),
    }
}

/// The user's `~/.ssh`, as git-pair and ssh both see it.
pub(crate) fn ssh_dir() -> anyhow::Result<SshDir> {
    let home = home_dir()?;
    Ok(match passwd_home() {
        Some(pw) if !same_dir(&pw, &home) => SshDir::with_tilde(&home, &pw),
        _ => SshDir::new(&home),
    })
}

fn home_dir() -> anyhow::Result<PathBuf> {
    // $HOME, as git uses it; ssh itself reads the passwd entry, which is
    // the same directory unless HOME was changed on purpose.
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return Ok(PathBuf::from(home));
    }
    passwd_home().ok_or_else(|| {
        PairError::Usage("HOME is not set and this user has no passwd entry: set HOME".into())
            .into()
    })
}

/// The home directory in the passwd database: what ssh expands `~` to.
fn passwd_home() -> Option<PathBuf> {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.dir)
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

struct Me {
    user: String,
    host: String,
}

fn whoami() -> anyhow::Result<Me> {
    // The login name ssh will use: the account's, not $USER.
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .ok_or_else(|| {
            PairError::Usage("this user has no passwd entry, so the peer could not log in".into())
        })?;
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    Ok(Me { user, host })
}

/// Resolves `--peer` hosts. A link-local IPv6 address may carry its
/// interface as `fe80::1%eth0`.
fn resolve_peers(
    hosts: &[String],
    port: u16,
    interfaces: &[Interface],
) -> anyhow::Result<Vec<SocketAddr>> {
    let mut out = Vec::new();
    for host in hosts {
        let bad = |why: String| PairError::Usage(format!("--peer {host}: {why}"));
        if let Some((ip, scope)) = host.split_once('%') {
            let ip: std::net::Ipv6Addr =
                ip.parse().map_err(|_| bad("not an IPv6 address".into()))?;
            let index = interfaces
                .iter()
                .find(|i| i.name == scope)
                .map(|i| i.index)
                .or_else(|| scope.parse().ok())
                .ok_or_else(|| bad(format!("no interface named {scope}")))?;
            out.push(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, index)));
            continue;
        }
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| bad(format!("cannot resolve it ({e})")))?
            .collect();
        if addrs.is_empty() {
            return Err(bad("it has no address".into()).into());
        }
        out.extend(addrs);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::iface::V4Net;

    fn info(addresses: &[&str]) -> PeerInfo {
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOvz9/dlwEDfuqj1WBVMQbjFs+6w+Vvr8nI1VbWq+uGP";
        let p = Payload {
            user: "bob".into(),
            host: "laptop".into(),
            path: "/home/bob/r".into(),
            user_key: key.into(),
            host_keys: vec![key.into()],
            ssh_port: 2222,
            addresses: addresses.iter().map(|s| s.to_string()).collect(),
            annex_uuid: None,
            annex_shell: false,
        };
        PeerInfo::parse(&p.to_bytes()).unwrap()
    }

    fn eth0() -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            up: true,
            multicast: true,
            loopback: false,
            v4: vec![V4Net {
                addr: "10.0.0.1".parse().unwrap(),
                prefix: 24,
            }],
            v6: vec![],
        }
    }

    #[test]
    fn sshd_candidates_prefer_the_sources_then_ipv4_then_scoped_link_local() {
        let sources = vec!["[fe80::2%2]:40000"
            .parse::<SocketAddr>()
            .unwrap_or_else(|_| {
                SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 40000, 0, 2))
            })];
        let got = sshd_candidates(
            &sources,
            &info(&["fe80::2", "10.0.0.2", "2001:db8::2", "127.0.0.1"]),
            &[eth0()],
        );
        let want: Vec<SocketAddr> = vec![
            SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 2222, 0, 2)),
            "10.0.0.2:2222".parse().unwrap(),
            "[2001:db8::2]:2222".parse().unwrap(),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn link_local_host_names_name_the_interface() {
        let a = SocketAddr::V6(SocketAddrV6::new("fe80::2".parse().unwrap(), 22, 0, 2));
        assert_eq!(host_name_for(a, &[eth0()]), "fe80::2%eth0");
        assert_eq!(
            host_name_for("10.0.0.2:22".parse().unwrap(), &[eth0()]),
            "10.0.0.2"
        );
    }

    #[test]
    fn missing_git_annex_shell_is_named_with_its_fix_on_the_right_side() {
        let mut peer = info(&[]);
        let record = repo::PairRecord {
            alias: "git-pair-laptop-1".into(),
            peer: "bob@laptop:/home/bob/r".into(),
            peer_path: "/home/bob/r".into(),
            peer_key: "SHA256:k".into(),
            host_keys: vec![],
            address: "10.0.0.2:22".into(),
            identity: "/k".into(),
            time: "t".into(),
            annex_uuid: Some("0b1c2d3e-0000-4000-8000-000000000001".into()),
            local_annex: true,
        };
        let plan = repo::plan_remote(&[], None, "laptop", &record, None).unwrap();
        let warnings = annex_warnings(&plan, &peer, true);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not installed on laptop"));
        assert!(warnings[0].contains("apt install git-annex"));
        peer.annex_shell = true;
        assert!(annex_warnings(&plan, &peer, true).is_empty());
        let warnings = annex_warnings(&plan, &peer, false);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("not installed here"));
        // Plain repositories: nothing to say.
        let plain = repo::PairRecord {
            local_annex: false,
            ..record
        };
        let plan = repo::plan_remote(&[], None, "laptop", &plain, None).unwrap();
        peer.annex_shell = false;
        assert!(annex_warnings(&plan, &peer, false).is_empty());
    }

    #[test]
    fn every_error_has_an_exit_status_and_a_reason() {
        let errors = [
            PairError::Usage("x".into()),
            PairError::NoPeer {
                interfaces: "va".into(),
                seconds: 1,
                port: 1,
            },
            PairError::WrongCode { failures: 1 },
            PairError::Guessing(3),
            PairError::SshdUnreachable {
                peer: "p".into(),
                tried: "t".into(),
                port: 22,
            },
            PairError::PeerRejected("x".into()),
            PairError::Setup,
            PairError::Interrupted,
        ];
        for e in errors {
            assert_ne!(e.exit(), Exit::Success);
            assert_ne!(e.reason(), Reason::Error);
            assert!(!e.to_string().is_empty());
        }
    }
}
