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

use std::time::Duration;

use super::{RTO_INITIAL, RTO_MIN};

/// The timeout is this many shortest round trips (within the bounds).
pub const RTT_FACTOR: u32 = 3;

/// The round-trip time of one session.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Rtt {
    /// The shortest measurement, once there is one.
    min: Option<Duration>,
}

impl Rtt {
    /// Takes one measurement.
    pub(super) fn sample(&mut self, r: Duration) {
        self.min = Some(self.min.map_or(r, |m| m.min(r)));
    }

    /// Whether a round trip was measured.
    pub(super) fn measured(&self) -> bool {
        self.min.is_some()
    }

    /// The retransmission timeout before any backoff.
    pub(super) fn rto(&self) -> Duration {
        match self.min {
            None => RTO_INITIAL,
            Some(min) => (min * RTT_FACTOR).clamp(RTO_MIN, RTO_INITIAL),
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
    }

    #[test]
    fn a_lan_round_trip_gives_the_floor() {
        let mut r = Rtt::default();
        r.sample(Duration::from_micros(300));
        assert_eq!(r.rto(), RTO_MIN);
    }

    #[test]
    fn a_measurement_lengthened_by_a_lost_acknowledgement_does_not_count_once_a_shorter_one_exists()
    {
        let mut r = Rtt::default();
        r.sample(ms(12));
        r.sample(ms(100));
        assert_eq!(r.rto(), ms(36));
        let mut r = Rtt::default();
        r.sample(ms(100));
        assert_eq!(r.rto(), RTO_INITIAL);
        r.sample(ms(12));
        assert_eq!(r.rto(), ms(36));
    }

    #[test]
    fn a_slow_link_keeps_the_initial_timeout() {
        let mut r = Rtt::default();
        r.sample(ms(150));
        assert_eq!(r.rto(), RTO_INITIAL);
    }
}
