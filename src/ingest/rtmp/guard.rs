//! Who may talk to an `rtmp-listen://` port, decided without I/O so it can be tested with a
//! fake clock: how many connections are open (in all, and from one address), which address
//! is being throttled for guessing keys, and which connection is on air.
//!
//! A leaf: calls no other room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Connections open at once on one listener.
pub const MAX_CONNECTIONS: usize = 16;
/// Connections open at once from one address.
pub const MAX_PER_ADDRESS: usize = 4;
/// Wrong application names or stream keys an address may send before it is throttled.
pub const FREE_FAILURES: u32 = 3;
/// The first throttle; it doubles with each further failure.
pub const FIRST_PENALTY: Duration = Duration::from_secs(10);
/// The longest throttle.
pub const MAX_PENALTY: Duration = Duration::from_secs(300);
/// How long a failure is remembered once its penalty is over.
const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Why a connection is turned away at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turned {
    /// [`MAX_CONNECTIONS`] or [`MAX_PER_ADDRESS`] are already open.
    Busy,
    /// The address sent too many wrong keys; it may try again after this long.
    Throttled(Duration),
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

/// The listener's book of connections, failures and the publisher on air.
#[derive(Debug, Default)]
pub struct Guard {
    open: HashMap<IpAddr, usize>,
    failures: HashMap<IpAddr, Failures>,
    on_air: Option<u64>,
    next_id: u64,
}

impl Guard {
    /// Admits a new connection from `from`, returning its id, or says why not.
    pub fn admit(&mut self, from: IpAddr, now: Instant) -> Result<u64, Turned> {
        if let Some(wait) = self.throttled(from, now) {
            return Err(Turned::Throttled(wait));
        }
        let total: usize = self.open.values().sum();
        let mine = self.open.get(&from).copied().unwrap_or(0);
        if total >= MAX_CONNECTIONS || mine >= MAX_PER_ADDRESS {
            return Err(Turned::Busy);
        }
        *self.open.entry(from).or_insert(0) += 1;
        self.next_id += 1;
        Ok(self.next_id)
    }

    /// Connection `id` from `from` has closed.
    pub fn closed(&mut self, id: u64, from: IpAddr) {
        if let Some(n) = self.open.get_mut(&from) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&from);
            }
        }
        if self.on_air == Some(id) {
            self.on_air = None;
        }
    }

    /// A wrong application name or stream key from `from`.
    pub fn failed(&mut self, from: IpAddr, now: Instant) {
        let f = self.failures.entry(from).or_insert(Failures {
            count: 0,
            last: now,
        });
        f.count += 1;
        f.last = now;
        let stale = |f: &Failures| now.saturating_duration_since(f.last) > FORGET_AFTER;
        self.failures.retain(|_, f| !stale(f));
    }

    /// How long `from` must still wait, if it is throttled.
    pub fn throttled(&self, from: IpAddr, now: Instant) -> Option<Duration> {
        let f = self.failures.get(&from)?;
        let over = f.count.checked_sub(FREE_FAILURES)?;
        let penalty = FIRST_PENALTY
            .saturating_mul(1u32 << over.min(16))
            .min(MAX_PENALTY);
        penalty
            .checked_sub(now.saturating_duration_since(f.last))
            .filter(|d| !d.is_zero())
    }

    /// Connection `id` asks to go on air with the right key: the first publisher keeps the
    /// air until it leaves or falls silent, and a second one is refused meanwhile.
    pub fn go_on_air(&mut self, id: u64, from: IpAddr) -> bool {
        self.failures.remove(&from);
        match self.on_air {
            Some(other) if other != id => false,
            _ => {
                self.on_air = Some(id);
                true
            }
        }
    }

    /// Whether connection `id` is the one on air.
    #[cfg(test)]
    pub fn is_on_air(&self, id: u64) -> bool {
        self.on_air == Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn connections_are_capped_in_all_and_per_address() {
        let mut g = Guard::default();
        let now = Instant::now();
        let a = ip("192.0.2.1");
        let ids: Vec<u64> = (0..MAX_PER_ADDRESS)
            .map(|_| g.admit(a, now).unwrap())
            .collect();
        assert_eq!(g.admit(a, now), Err(Turned::Busy));
        g.closed(ids[0], a);
        assert!(
            g.admit(a, now).is_ok(),
            "a closed connection frees its slot"
        );
        for i in 0..(MAX_CONNECTIONS - MAX_PER_ADDRESS) {
            g.admit(ip(&format!("198.51.100.{i}")), now).unwrap();
        }
        assert_eq!(g.admit(ip("203.0.113.9"), now), Err(Turned::Busy));
    }

    #[test]
    fn key_guessing_is_throttled_with_a_doubling_penalty() {
        let mut g = Guard::default();
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..FREE_FAILURES - 1 {
            g.failed(a, t0);
        }
        assert_eq!(g.throttled(a, t0), None, "a typo or two is not an attack");
        g.failed(a, t0);
        assert_eq!(g.admit(a, t0), Err(Turned::Throttled(FIRST_PENALTY)));
        assert!(
            g.admit(ip("192.0.2.2"), t0).is_ok(),
            "other addresses are not"
        );
        let later = t0 + FIRST_PENALTY;
        assert!(g.admit(a, later).is_ok(), "the penalty ends");
        g.failed(a, later);
        assert_eq!(
            g.throttled(a, later + Duration::from_secs(1)),
            Some(FIRST_PENALTY * 2 - Duration::from_secs(1))
        );
        for _ in 0..20 {
            g.failed(a, later);
        }
        assert_eq!(g.throttled(a, later), Some(MAX_PENALTY));
    }

    #[test]
    fn the_first_publisher_keeps_the_air_until_it_leaves() {
        let mut g = Guard::default();
        let now = Instant::now();
        let a = ip("192.0.2.1");
        let first = g.admit(a, now).unwrap();
        let second = g.admit(a, now).unwrap();
        assert!(g.go_on_air(first, a));
        assert!(g.go_on_air(first, a), "asking again changes nothing");
        assert!(!g.go_on_air(second, a));
        assert!(g.is_on_air(first) && !g.is_on_air(second));
        g.closed(first, a);
        assert!(
            g.go_on_air(second, a),
            "the air is free once the first leaves"
        );
    }

    #[test]
    fn the_right_key_clears_past_failures() {
        let mut g = Guard::default();
        let now = Instant::now();
        let a = ip("192.0.2.1");
        g.failed(a, now);
        g.failed(a, now);
        let id = g.admit(a, now).unwrap();
        assert!(g.go_on_air(id, a));
        g.failed(a, now);
        g.failed(a, now);
        assert_eq!(g.throttled(a, now), None);
    }
}
