//! The round-trip time of one session, measured during the exchange, and the
//! retransmission timeout that follows it.
//!
//! Each measurement runs from the latest transmission of something (our
//! PAKE message, a payload piece, our MAC, our end) on the retransmission
//! timer until the peer acknowledges it, with an acknowledgement whose tag
//! verifies and that newly covers it: an outsider can neither forge a fast
//! one nor restart a measurement by replaying a duplicate. A measurement is longer than the round trip when an
//! acknowledgement was lost (the next one comes later), and may be shorter
//! when the acknowledgement answers an earlier copy; the shortest one is
//! taken, and [`RTO_MIN`] bounds what a too short one can do: a copy sent
//! again a little early.
//!
//! The timeout is [`RTT_FACTOR`] times the shortest round trip, never below
//! [`RTO_MIN`], which holds on a slow Wi-Fi link (power saving, retries in
//! the radio add tens of milliseconds now and then), and never above
//! [`RTO_INITIAL`], the timeout before any measurement: a measurement only
//! ever shortens the wait on a fast LAN, whose round trip is well under a
//! millisecond. A slow link keeps the backoff from [`RTO_INITIAL`], as
//! before.
//!
//! Whether the link is a LAN's ([`Rtt::lan`]) is decided by unambiguous
//! measurements alone: those of something sent once, whose acknowledgement
//! can only answer that copy (Karn's rule). On a slow link a copy sent again
//! shortly before the acknowledgement of the first one arrives makes a
//! measurement far shorter than the round trip; such a measurement may
//! shorten the timeout (down to [`RTO_MIN`]), but it never makes a slow link
//! look like a LAN, which would keep the timeout from backing off (see
//! [`FLAT_RETRANSMITS`](super::FLAT_RETRANSMITS)).

use std::time::Duration;

use super::{RTO_INITIAL, RTO_MIN};

/// The timeout is this many shortest round trips (within the bounds).
pub const RTT_FACTOR: u32 = 3;

/// The round-trip time of one session.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rtt {
    /// The shortest measurement, once there is one.
    min: Option<Duration>,
    /// The shortest unambiguous measurement (of something sent once).
    min_unambiguous: Option<Duration>,
}

impl Rtt {
    /// Takes one measurement; `unambiguous` when what was measured was sent
    /// only once.
    pub(super) fn sample(&mut self, r: Duration, unambiguous: bool) {
        self.min = Some(self.min.map_or(r, |m| m.min(r)));
        if unambiguous {
            self.min_unambiguous = Some(self.min_unambiguous.map_or(r, |m| m.min(r)));
        }
    }

    /// Whether a round trip was measured.
    pub(super) fn measured(&self) -> bool {
        self.min.is_some()
    }

    /// Whether an unambiguous measurement showed a LAN's round trip: one
    /// whose timeout is [`RTO_MIN`].
    pub(super) fn lan(&self) -> bool {
        self.min_unambiguous
            .is_some_and(|m| m.saturating_mul(RTT_FACTOR) <= RTO_MIN)
    }

    /// The retransmission timeout before any backoff.
    pub(super) fn rto(&self) -> Duration {
        match self.min {
            None => RTO_INITIAL,
            Some(min) => (min.saturating_mul(RTT_FACTOR)).clamp(RTO_MIN, RTO_INITIAL),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn before_a_measurement_the_initial_timeout_applies() {
        assert_eq!(Rtt::default().rto(), RTO_INITIAL);
        assert!(!Rtt::default().lan());
    }

    #[test]
    fn a_lan_round_trip_gives_the_floor() {
        let mut r = Rtt::default();
        r.sample(Duration::from_micros(300), true);
        assert_eq!(r.rto(), RTO_MIN);
        assert!(r.lan());
    }

    #[test]
    fn a_measurement_lengthened_by_a_lost_acknowledgement_does_not_count_once_a_shorter_one_exists()
    {
        let mut r = Rtt::default();
        r.sample(ms(12), true);
        r.sample(ms(45), true);
        assert_eq!(r.rto(), ms(36));
        let mut r = Rtt::default();
        r.sample(ms(45), true);
        assert_eq!(r.rto(), RTO_INITIAL);
        r.sample(ms(12), true);
        assert_eq!(r.rto(), ms(36));
        assert!(!r.lan(), "36 ms is no LAN's timeout");
    }

    #[test]
    fn a_slow_link_keeps_the_initial_timeout() {
        let mut r = Rtt::default();
        r.sample(ms(150), true);
        assert_eq!(r.rto(), RTO_INITIAL);
        assert!(!r.lan());
    }

    /// On a 400 ms round trip a copy sent again 1 ms before the first one's
    /// acknowledgement arrives measures 1 ms: the timeout may drop, but the
    /// link does not pass for a LAN.
    #[test]
    fn an_ambiguous_measurement_never_makes_a_lan() {
        let mut r = Rtt::default();
        r.sample(ms(1), false);
        assert_eq!(r.rto(), RTO_MIN);
        assert!(!r.lan());
        r.sample(ms(400), true);
        assert!(!r.lan());
        r.sample(Duration::from_micros(200), true);
        assert!(r.lan());
    }
}
