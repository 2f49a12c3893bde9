//! Why a pairing failed: one typed error, each variant with its documented exit status and
//! JSON reason.

use crate::events::Reason;
use crate::exit::Exit;
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
        "verification failed: the codes differ ({failures} machine(s) answered with another code, \
         or someone guessed). Start again on both machines with a new code; nothing was written"
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
    #[error(
        "this machine's sshd does not accept connections on TCP port {port} ({tried}), so the \
         peer could not log in here: install it (Debian, Ubuntu: sudo apt install \
         openssh-server), start it (sudo systemctl enable --now ssh), or give --ssh-port with \
         the port it listens on. Nothing was sent"
    )]
    NoLocalSshd { port: u16, tried: String },
    #[error(
        "the other side is this same repository ({path}) on this same machine: git pair and git \
         pair join were run in one repository. Run git pair join in the repository to pair with \
         (on the other machine, or another repository here). Nothing was written"
    )]
    SameRepository { path: String },
    #[error("the peer refused this pairing: {0}. Nothing was written")]
    PeerRejected(String),
    #[error(
        "the person at the other machine did not confirm that the check codes match, so the \
         pairing was called off; nothing was written. If the check codes differed, someone may be \
         in the middle: start again with a new code"
    )]
    PeerDeclined,
    #[error(
        "setting up the other machine failed ({0}), so the pairing is off on both machines; \
         nothing was left behind here"
    )]
    PeerFailed(String),
    #[error(
        "the check codes were not confirmed here ({0}), so nothing was written. If they differed \
         on the two machines, someone may be in the middle: start again with a new code"
    )]
    Declined(String),
    #[error(
        "the other machine went quiet after verification, before this side was set up, so \
         nothing was written here. It may have set itself up: check there with `git pair list`, \
         and undo it with `git pair remove`"
    )]
    PeerGone,
    #[error(
        "another git pair of this user held {lock} for {seconds} s while it finished its own \
         pairing, so this one was called off on both machines; nothing was written. Pair again \
         once it is done"
    )]
    Busy { lock: String, seconds: u64 },
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
            PairError::Usage(_) | PairError::SameRepository { .. } => Exit::Usage,
            PairError::NoPeer { .. } => Exit::NoPeer,
            PairError::WrongCode { .. }
            | PairError::Guessing(_)
            | PairError::PeerDeclined
            | PairError::Declined(_) => Exit::Verification,
            PairError::SshdUnreachable { .. }
            | PairError::NoLocalSshd { .. }
            | PairError::PeerRejected(_)
            | PairError::PeerFailed(_)
            | PairError::PeerGone
            | PairError::Busy { .. }
            | PairError::BadPeer(_)
            | PairError::KeyInUse(_)
            | PairError::Setup => Exit::Setup,
            PairError::Interrupted => Exit::Interrupted,
        }
    }

    pub(crate) fn reason(&self) -> Reason {
        match self {
            PairError::Usage(_) => Reason::Usage,
            PairError::SameRepository { .. } => Reason::SameRepository,
            PairError::NoPeer { .. } => Reason::NoPeer,
            PairError::WrongCode { .. } => Reason::WrongCode,
            PairError::Guessing(_) => Reason::Guessing,
            PairError::SshdUnreachable { .. } => Reason::SshdUnreachable,
            PairError::NoLocalSshd { .. } => Reason::NoSshd,
            PairError::PeerRejected(_) => Reason::PeerRejected,
            PairError::PeerDeclined => Reason::PeerDeclined,
            PairError::PeerFailed(_) => Reason::PeerFailed,
            PairError::Declined(_) => Reason::Declined,
            PairError::PeerGone => Reason::PeerGone,
            PairError::Busy { .. } => Reason::Setup,
            PairError::BadPeer(_) | PairError::KeyInUse(_) | PairError::Setup => Reason::Setup,
            PairError::Interrupted => Reason::Interrupted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            PairError::NoLocalSshd {
                port: 22,
                tried: "t".into(),
            },
            PairError::SameRepository { path: "/r".into() },
            PairError::PeerRejected("x".into()),
            PairError::PeerDeclined,
            PairError::PeerFailed("x".into()),
            PairError::Declined("x".into()),
            PairError::PeerGone,
            PairError::Busy {
                lock: "l".into(),
                seconds: 1,
            },
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
