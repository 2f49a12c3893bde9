//! Checks of this machine that need no network, made before the code is shown or typed: a
//! pairing that cannot work must fail before two people spend time on it.
//!
//! Here: this machine's sshd listens on the port the peer will be told (`--ssh-port`), on
//! loopback, on an address of a chosen interface or on every address: seen in the kernel's
//! socket diagnostics when they answer ([`crate::transport::listening`]), else by a TCP
//! connection that it answers (half-open: [`crate::transport::probe::half_open`]). Host keys are
//! checked by [`crate::keys::host_keys`], ~/.ssh by [`crate::ssh_files::SshDir::check_writable`].

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::transport::iface::Interface;
use crate::transport::{listening, probe};

use super::error::PairError;

/// How long this machine's own sshd has to answer a connection. A local connection is
/// answered or refused at once; the time only matters behind a dropping firewall.
pub(super) const LOCAL_SSHD_TIMEOUT: Duration = Duration::from_millis(1500);

/// How long loopback alone is given before every address is tried (it only waits this long
/// behind a firewall that drops on loopback; a closed port is refused at once).
const LOOPBACK_FIRST: Duration = Duration::from_millis(200);

/// Where this machine's sshd should answer, best first: loopback, then the addresses of the
/// chosen interfaces, which the peer will use (an sshd may listen on those only). Every one of
/// them is an address of this machine, so nothing leaves it.
pub(super) fn local_sshd_candidates(port: u16, interfaces: &[Interface]) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = vec![
        (Ipv4Addr::LOCALHOST, port).into(),
        (Ipv6Addr::LOCALHOST, port).into(),
    ];
    for i in interfaces {
        out.extend(i.v4.iter().map(|n| SocketAddr::from((n.addr, port))));
        out.extend(i.v6.iter().map(|n| {
            let scope = if n.is_link_local() { i.index } else { 0 };
            SocketAddr::V6(SocketAddrV6::new(n.addr, port, 0, scope))
        }));
    }
    let mut seen = Vec::new();
    out.retain(|a| {
        let new = !seen.contains(a);
        seen.push(*a);
        new
    });
    out
}

/// This machine's sshd accepts connections on `port`, or the pairing stops here, before
/// anything is sent, saying how to install or start sshd.
pub(super) fn check_local_sshd(port: u16, interfaces: &[Interface]) -> Result<(), PairError> {
    let candidates = local_sshd_candidates(port, interfaces);
    // A listening socket needs no connection. Anything else (no answer from the kernel, no
    // such socket) is settled by half-open connections (`probe::half_open`, which the sshd
    // never gets to accept: no process, no line in its log), for the error's detail.
    if listening::listening(port).is_ok_and(|addrs| {
        addrs
            .iter()
            .any(|a| a.is_unspecified() || candidates.iter().any(|c| c.ip() == *a))
    }) {
        return Ok(());
    }
    // Loopback alone first: an sshd that listens on loopback answers there at once. The other
    // addresses are tried only if it does not.
    if probe::half_open(candidates[0], LOOPBACK_FIRST).is_ok() {
        return Ok(());
    }
    match probe::first_reachable(&candidates, LOCAL_SSHD_TIMEOUT) {
        Ok(_) => Ok(()),
        Err(failures) => Err(PairError::NoLocalSshd {
            port,
            tried: failures
                .iter()
                .take(3)
                .map(|(a, e)| format!("{}: {e}", a.ip()))
                .collect::<Vec<_>>()
                .join("; "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::pair::fixtures::eth0;
    use std::net::TcpListener;

    #[test]
    fn loopback_first_then_every_address_of_the_chosen_interfaces() {
        let got = local_sshd_candidates(2222, &[eth0()]);
        assert_eq!(got[0], "127.0.0.1:2222".parse().unwrap());
        assert_eq!(got[1], "[::1]:2222".parse().unwrap());
        for a in &got[2..] {
            assert!(
                eth0().v4.iter().any(|n| a.ip() == n.addr)
                    || eth0().v6.iter().any(|n| a.ip() == n.addr),
                "{a}"
            );
            if let SocketAddr::V6(v6) = a {
                let link_local = v6.ip().segments()[0] & 0xffc0 == 0xfe80;
                assert_eq!(v6.scope_id() != 0, link_local, "{a}");
            }
        }
        assert_eq!(got.len(), 2 + eth0().v4.len() + eth0().v6.len());
    }

    #[test]
    fn a_listening_sshd_passes_and_a_closed_port_says_how_to_fix_it() {
        let open = TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(check_local_sshd(open.local_addr().unwrap().port(), &[]).is_ok());
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = check_local_sshd(closed, &[]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&format!("TCP port {closed}")), "{text}");
        assert!(text.contains("apt install openssh-server"), "{text}");
        assert!(text.contains("--ssh-port"), "{text}");
        assert!(text.contains("127.0.0.1"), "{text}");
    }
}
