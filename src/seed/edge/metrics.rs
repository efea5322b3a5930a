//! The edge seeder's Prometheus counters.
//!
//! May call: `metrics`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// The edge seeder's counters, at `--metrics ADDR`.
pub struct EdgeMetrics {
    registry: Registry,
    pub windows_seeded: Counter,
    pub windows_refused: Counter,
    pub segments_fetched: Counter,
    pub segments_cached: Counter,
    pub bytes_fetched: Counter,
    pub origin_errors: Counter,
    pub seeding: Gauge,
    pub tracker_announces: Counter,
    pub uploaded_bytes: Counter,
}

impl EdgeMetrics {
    pub fn new() -> Arc<EdgeMetrics> {
        let mut registry = Registry::with_prefix("swarmpack_edge");
        let m = EdgeMetrics {
            registry: Registry::default(),
            windows_seeded: Counter::default(),
            windows_refused: Counter::default(),
            segments_fetched: Counter::default(),
            segments_cached: Counter::default(),
            bytes_fetched: Counter::default(),
            origin_errors: Counter::default(),
            seeding: Gauge::default(),
            tracker_announces: Counter::default(),
            uploaded_bytes: Counter::default(),
        };
        for (name, help, c) in [
            (
                "windows_seeded",
                "Windows verified and handed to the engine",
                &m.windows_seeded,
            ),
            (
                "windows_refused",
                "Windows refused because a check failed (see the log for why)",
                &m.windows_refused,
            ),
            (
                "segments_fetched",
                "Segments fetched from the origin and verified",
                &m.segments_fetched,
            ),
            (
                "segments_cached",
                "Segments found verified in the cache (not fetched)",
                &m.segments_cached,
            ),
            (
                "bytes_fetched",
                "Segment bytes fetched from the origin",
                &m.bytes_fetched,
            ),
            (
                "origin_errors",
                "Rounds that could not read the origin",
                &m.origin_errors,
            ),
            (
                "tracker_announces",
                "Announces a tracker answered",
                &m.tracker_announces,
            ),
            (
                "uploaded_bytes",
                "Bytes uploaded to peers",
                &m.uploaded_bytes,
            ),
        ] {
            registry.register(name, help, c.clone());
        }
        registry.register("seeding", "Torrents being seeded now", m.seeding.clone());
        Arc::new(EdgeMetrics { registry, ..m })
    }

    pub fn render(&self) -> String {
        crate::metrics::render(&self.registry)
    }
}
