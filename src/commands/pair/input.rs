//! What the command line gives a pairing: the code (argument, --code-file or GIT_PAIR_CODE)
//! and the `--peer` hosts.

use std::fs;
use std::io::{self, Read};
use std::net::{SocketAddr, SocketAddrV6, ToSocketAddrs};
use std::path::Path;

use crate::cli::PairArgs;
use crate::protocol::Code;
use crate::transport::iface::Interface;

use super::error::PairError;

/// The code from the argument, --code-file or GIT_PAIR_CODE, in that
/// order; None to generate one.
pub(super) fn read_code(args: &PairArgs) -> anyhow::Result<Option<Code>> {
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
