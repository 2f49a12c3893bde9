//! What the person gives a pairing: the code (argument, --code-file, GIT_PAIR_CODE or the prompt
//! of `git pair join`) and the `--peer` hosts.

use std::fs;
use std::io::{self, BufRead, Read};
use std::net::{SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::interrupt::Interrupts;
use crate::prompt::{self, PromptError};
use crate::protocol::Code;
use crate::transport::iface::Interface;

use super::error::PairError;

/// Where the code of a pairing comes from.
pub enum CodeSource {
    /// The CODE argument of `git pair CODE` (already checked to have the shape of a code).
    Argument(Zeroizing<String>),
    /// `--code-file FILE` (`-`: standard input).
    File(PathBuf),
    /// `git pair join`: typed at the prompt on the terminal, after the checks that need no
    /// network, so that nobody types a code for a pairing that cannot work.
    Prompt,
    /// GIT_PAIR_CODE if set and not blank; else a new code is generated.
    EnvironmentOrNew,
}

/// The code from the argument, --code-file or GIT_PAIR_CODE; None to generate one, or to ask
/// for it at the prompt ([`ask_code`]).
pub(super) fn read_code(source: &CodeSource) -> anyhow::Result<Option<Code>> {
    let text = match source {
        CodeSource::Argument(code) => Some(code.clone()),
        CodeSource::File(file) => {
            let mut text = Zeroizing::new(String::new());
            let read = if file == Path::new("-") {
                // One line: with --verify --json, the answer follows on standard input.
                io::stdin().lock().read_line(&mut text)
            } else {
                fs::File::open(file).and_then(|mut f| f.read_to_string(&mut text))
            };
            read.map_err(|e| {
                PairError::Usage(format!("cannot read the code from {}: {e}", file.display()))
            })?;
            Some(text)
        }
        CodeSource::Prompt => None,
        CodeSource::EnvironmentOrNew => std::env::var("GIT_PAIR_CODE")
            .ok()
            .filter(|c| !c.trim().is_empty())
            .map(Zeroizing::new),
    };
    text.map(|t| parse(&t)).transpose()
}

fn parse(text: &str) -> anyhow::Result<Code> {
    Code::parse(text).map_err(|e| PairError::Usage(e.to_string()).into())
}

/// `git pair join`: the code typed at the prompt on the terminal, or, without a terminal, one
/// line of standard input.
pub(super) fn ask_code(interrupts: &mut Interrupts) -> anyhow::Result<Code> {
    let text = match prompt::ask(interrupts) {
        Ok(text) => text,
        Err(PromptError::NoTerminal(_)) => {
            let mut line = Zeroizing::new(String::with_capacity(prompt::MAX_LEN + 2));
            io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| PairError::Usage(format!("cannot read the code: {e}")))?;
            if line.trim().is_empty() {
                return Err(PairError::Usage(
                    "no code was given: run `git pair join` on a terminal and type the code, or \
                     give it on standard input"
                        .into(),
                )
                .into());
            }
            line
        }
        Err(PromptError::Interrupted) => return Err(PairError::Interrupted.into()),
        Err(PromptError::Eof) => {
            return Err(PairError::Usage("no code was typed; nothing was done".into()).into())
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(PairError::Usage(
                "cannot read the code from the terminal".into(),
            )))
        }
    };
    parse(&text)
}

/// Resolves `--peer` hosts. A link-local IPv6 address may carry its
/// interface as `fe80::1%eth0`.
pub(crate) fn resolve_peers(
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
