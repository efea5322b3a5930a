//! The audience's figures in the Prometheus text format: counters, histograms and one gauge
//! (viewers now), labelled by match, angle and rung. Counters and histograms from several
//! collectors behind a load balancer add up in Prometheus; so does the viewers gauge, as long
//! as each session reports to one collector.
//!
//! May call: `metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// Where a viewer is: the match, the angle and the rung playing.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Place {
    pub r#match: String,
    pub angle: String,
    pub rung: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Source {
    #[prometheus(flatten)]
    pub place: Place,
    /// `peer` (relayed included), `relay` (the part of `peer` through TURN) or `http`.
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// accepted, duplicate, malformed, oversized, flood, unknown_match, off
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Ending {
    /// expired (no report within the timeout), evicted (the session table was full), ended
    pub how: &'static str,
}

type Seconds = Counter<f64, AtomicU64>;

const STARTUP: &[f64] = &[0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0];
const BEHIND: &[f64] = &[2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0, 60.0];
const BITRATE: &[f64] = &[
    250.0, 500.0, 1000.0, 2000.0, 3000.0, 4500.0, 6000.0, 8000.0, 12000.0, 16000.0,
];
const TTFB: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0];

type HistogramFamily = Family<Place, Histogram, fn() -> Histogram>;

fn startup() -> Histogram {
    Histogram::new(STARTUP.iter().copied())
}
fn behind() -> Histogram {
    Histogram::new(BEHIND.iter().copied())
}
fn bitrate() -> Histogram {
    Histogram::new(BITRATE.iter().copied())
}
fn ttfb() -> Histogram {
    Histogram::new(TTFB.iter().copied())
}

/// Every figure of the audience.
pub struct Figures {
    registry: Registry,
    pub viewers: Family<Place, Gauge>,
    pub sessions: Family<Place, Counter>,
    pub startup: HistogramFamily,
    pub start_failures: Family<Place, Counter>,
    pub exits_before_start: Family<Place, Counter>,
    pub watch_seconds: Family<Place, Seconds>,
    pub rebuffer_seconds: Family<Place, Seconds>,
    pub rebuffer_events: Family<Place, Counter>,
    pub behind_live: HistogramFamily,
    pub bitrate: HistogramFamily,
    pub bytes: Family<Source, Counter>,
    pub rejected: Family<Place, Counter>,
    pub ttfb: HistogramFamily,
    pub reports: Family<Outcome, Counter>,
    pub endings: Family<Ending, Counter>,
}

impl Default for Figures {
    fn default() -> Self {
        Figures::new()
    }
}

impl Figures {
    pub fn new() -> Figures {
        let f = Figures {
            registry: Registry::with_prefix("swarmpack_audience"),
            viewers: Family::default(),
            sessions: Family::default(),
            startup: Family::new_with_constructor(startup),
            start_failures: Family::default(),
            exits_before_start: Family::default(),
            watch_seconds: Family::default(),
            rebuffer_seconds: Family::default(),
            rebuffer_events: Family::default(),
            behind_live: Family::new_with_constructor(behind),
            bitrate: Family::new_with_constructor(bitrate),
            bytes: Family::default(),
            rejected: Family::default(),
            ttfb: Family::new_with_constructor(ttfb),
            reports: Family::default(),
            endings: Family::default(),
        };
        f.registered()
    }

    fn registered(mut self) -> Figures {
        let r = &mut self.registry;
        r.register(
            "viewers",
            "Sessions reporting now (not ended, not timed out)",
            self.viewers.clone(),
        );
        r.register("sessions", "Sessions seen", self.sessions.clone());
        r.register(
            "startup_seconds",
            "Page open to first frame, once per session",
            self.startup.clone(),
        );
        r.register(
            "start_failures",
            "Sessions whose player failed before the first frame",
            self.start_failures.clone(),
        );
        r.register(
            "exits_before_start",
            "Sessions that left (or went silent) before the first frame",
            self.exits_before_start.clone(),
        );
        r.register(
            "watch_seconds",
            "Seconds of sessions after their first frame (the rebuffer ratio's denominator)",
            self.watch_seconds.clone(),
        );
        r.register(
            "rebuffer_seconds",
            "Seconds stalled after the first frame",
            self.rebuffer_seconds.clone(),
        );
        r.register(
            "rebuffer_events",
            "Stalls after the first frame",
            self.rebuffer_events.clone(),
        );
        r.register(
            "behind_live_seconds",
            "Seconds behind live, one observation per report",
            self.behind_live.clone(),
        );
        r.register(
            "bitrate_kbps",
            "Encoded bitrate playing (CMCD br), one observation per report",
            self.bitrate.clone(),
        );
        r.register(
            "bytes",
            "Media bytes by source: peer (relay included), relay (TURN), http",
            self.bytes.clone(),
        );
        r.register(
            "rejected_peer_segments",
            "Peer segments refused by the signature check",
            self.rejected.clone(),
        );
        r.register(
            "ttfb_seconds",
            "Time to first byte of media responses (CMCD response mode)",
            self.ttfb.clone(),
        );
        r.register("reports", "Report lines by outcome", self.reports.clone());
        r.register(
            "session_endings",
            "Sessions forgotten, by how",
            self.endings.clone(),
        );
        self
    }

    /// Counts `n` report lines with `outcome`.
    pub fn report(&self, outcome: &'static str, n: u64) {
        self.reports.get_or_create(&Outcome { outcome }).inc_by(n);
    }

    /// The OpenMetrics text of every figure.
    pub fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }
}
