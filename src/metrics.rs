//! Prometheus metrics (OpenMetrics text) for one match, served at `http://ADDR/metrics` when
//! `run --metrics ADDR` is given. The run loop feeds them; nothing here blocks.
//!
//! May call: `http`, `publish`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

pub use crate::rendition::Rendition;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Kind {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Reason {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Angle {
    pub angle: String,
}

/// Every metric of a run.
pub struct Metrics {
    registry: Registry,
    pub segments: Family<Rendition, Counter>,
    pub segment_bytes: Family<Rendition, Counter>,
    pub last_seq: Family<Rendition, Gauge>,
    pub input_frames: Family<Angle, Counter>,
    pub realtime_factor: Gauge<f64, AtomicU64>,
    pub publish_latency: Family<Kind, Histogram>,
    pub spool_objects: Gauge,
    pub spool_bytes: Gauge,
    pub origin_errors: Counter,
    pub objects_quarantined: Counter,
    pub origin_conflicts: Counter,
    pub claims_won: Counter,
    pub claims_adopted: Counter,
    pub claims_lost: Counter,
    pub claims_waiting: Gauge,
    pub origin_down: Gauge,
    pub seeded_windows: Gauge,
    pub seeded_windows_total: Counter,
    pub windows_unannounced: Counter,
    pub windows_unseeded: Counter,
    pub tracker_announces: Counter,
    pub tracker_errors: Counter,
    pub rtmp_refused: Family<Reason, Counter>,
    pub spool_write_failures: Counter,
    pub spool_memory_bytes: Gauge,
}

impl Metrics {
    pub fn new(match_id: &str, profile: &str, origin: &str) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("swarmpack");
        // `match` is a Rust keyword, so these labels are a list rather than a struct.
        let info = Family::<Vec<(String, String)>, Gauge>::default();
        info.get_or_create(&vec![
            ("match".to_string(), match_id.to_string()),
            ("profile".to_string(), profile.to_string()),
            ("origin".to_string(), origin.to_string()),
        ])
        .set(1);
        registry.register("match", "The match being produced (always 1)", info);
        let m = Metrics {
            segments: Family::default(),
            segment_bytes: Family::default(),
            last_seq: Family::default(),
            input_frames: Family::default(),
            realtime_factor: Gauge::default(),
            publish_latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            spool_objects: Gauge::default(),
            spool_bytes: Gauge::default(),
            origin_errors: Counter::default(),
            objects_quarantined: Counter::default(),
            origin_conflicts: Counter::default(),
            claims_won: Counter::default(),
            claims_adopted: Counter::default(),
            claims_lost: Counter::default(),
            claims_waiting: Gauge::default(),
            origin_down: Gauge::default(),
            seeded_windows: Gauge::default(),
            seeded_windows_total: Counter::default(),
            windows_unannounced: Counter::default(),
            windows_unseeded: Counter::default(),
            tracker_announces: Counter::default(),
            tracker_errors: Counter::default(),
            rtmp_refused: Family::default(),
            spool_write_failures: Counter::default(),
            spool_memory_bytes: Gauge::default(),
            registry: Registry::default(),
        };
        m.register_media(&mut registry);
        m.register_publishing(&mut registry);
        m.register_seeding(&mut registry);
        Arc::new(Metrics { registry, ..m })
    }

    /// Registers the media figures: segments, bytes, frames, speed, publish latency.
    fn register_media(&self, registry: &mut Registry) {
        registry.register(
            "segments",
            "Segments packaged, per angle and rung",
            self.segments.clone(),
        );
        registry.register(
            "segment_bytes",
            "Bytes of segments packaged (encrypted), per angle and rung",
            self.segment_bytes.clone(),
        );
        registry.register(
            "last_seq",
            "Newest segment number, per angle and rung",
            self.last_seq.clone(),
        );
        registry.register(
            "input_frames",
            "Decoded video frames taken from each angle's feed",
            self.input_frames.clone(),
        );
        registry.register(
            "encoder_realtime_factor",
            "Media seconds encoded per wall-clock second, over the match so far",
            self.realtime_factor.clone(),
        );
        registry.register(
            "publish_latency_seconds",
            "From an object being queued to it being on the origin, per object kind",
            self.publish_latency.clone(),
        );
    }

    /// Registers the spool, the origin and the claims.
    fn register_publishing(&self, registry: &mut Registry) {
        registry.register(
            "spool_objects",
            "Objects in the spool, not yet on the origin",
            self.spool_objects.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes in the spool, not yet on the origin",
            self.spool_bytes.clone(),
        );
        registry.register(
            "origin_errors",
            "Failed upload attempts",
            self.origin_errors.clone(),
        );
        registry.register(
            "objects_quarantined",
            "Objects the origin refused (4xx, or a permanent local error) and that went to the spool's dead letters",
            self.objects_quarantined.clone(),
        );
        registry.register(
            "origin_conflicts",
            "Immutable objects the origin already held with other bytes (another run publishing this match); kept, never overwritten",
            self.origin_conflicts.clone(),
        );
        registry.register(
            "claims_won",
            "run --redundant: segments this run claimed on the origin with its own bytes",
            self.claims_won.clone(),
        );
        registry.register(
            "claims_adopted",
            "run --redundant: segments another run had published first; this run packaged the origin's bytes",
            self.claims_adopted.clone(),
        );
        registry.register(
            "claims_lost",
            "run --redundant: seqs lost to a claim that does not verify with the match key, other bytes in the way, or a refusal; published as signed gaps",
            self.claims_lost.clone(),
        );
        registry.register(
            "claims_waiting",
            "run --redundant: segments waiting for their claim on the origin",
            self.claims_waiting.clone(),
        );
    }

    /// Registers seeding, trackers, RTMP refusals and the spool held in memory.
    fn register_seeding(&self, registry: &mut Registry) {
        registry.register(
            "origin_down",
            "1 while the origin is treated as down (objects held in the spool)",
            self.origin_down.clone(),
        );
        registry.register(
            "seeded_windows",
            "Windows being seeded now",
            self.seeded_windows.clone(),
        );
        registry.register(
            "seeded_windows_added",
            "Windows handed to the seeder since the start",
            self.seeded_windows_total.clone(),
        );
        registry.register(
            "windows_published_unannounced",
            "Windows published after the 2 s wait without a tracker answering the seeder's announce",
            self.windows_unannounced.clone(),
        );
        registry.register(
            "windows_published_unseeded",
            "Windows published although the seeder could not hold them complete",
            self.windows_unseeded.clone(),
        );
        registry.register(
            "tracker_announces",
            "Announces a tracker answered (HTTP and UDP), for every seeded window",
            self.tracker_announces.clone(),
        );
        registry.register(
            "tracker_errors",
            "Announces that failed or were refused",
            self.tracker_errors.clone(),
        );
        registry.register(
            "rtmp_refused",
            "rtmp-listen:// connections and publishes refused, by reason",
            self.rtmp_refused.clone(),
        );
        registry.register(
            "spool_write_failures",
            "Objects the spool's disk refused (full, read-only, failing); held in memory instead",
            self.spool_write_failures.clone(),
        );
        registry.register(
            "spool_memory_bytes",
            "Bytes the spool holds in memory because its disk refused them",
            self.spool_memory_bytes.clone(),
        );
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        render(&self.registry)
    }

    /// Raises a counter to `total` (for counts kept elsewhere as running totals).
    pub fn catch_up(counter: &Counter, total: u64) {
        let now = counter.get();
        if total > now {
            counter.inc_by(total - now);
        }
    }
}

/// A channel for the publisher's events that records each object's publish latency; the
/// recording thread ends with the publisher.
pub fn latency_recorder(
    metrics: Arc<Metrics>,
) -> crossbeam_channel::Sender<crate::publish::Published> {
    let (tx, rx) = crossbeam_channel::unbounded::<crate::publish::Published>();
    std::thread::Builder::new()
        .name("swarmpack-metrics".into())
        .spawn(move || {
            for e in rx {
                metrics
                    .publish_latency
                    .get_or_create(&Kind {
                        kind: e.kind.name().to_string(),
                    })
                    .observe(e.done.duration_since(e.queued).as_secs_f64());
            }
        })
        .expect("spawn the metrics thread");
    tx
}

/// The OpenMetrics text exposition of `registry`.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)
        .expect("writing to a String cannot fail");
    out
}

/// Serves `GET /metrics` on `listener` until the runtime stops; `render` gives the text.
pub async fn serve<F>(listener: tokio::net::TcpListener, render: F)
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    use axum::http::header::CONTENT_TYPE;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = render();
            async move {
                (
                    [(
                        CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }
        }),
    );
    crate::http::serve(
        listener,
        app,
        std::future::pending(),
        crate::http::Limits::standard(),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_metric_with_labels() {
        let m = Metrics::new("final", "demo", "file:///srv/o");
        let r = Rendition {
            angle: "main".into(),
            rung: "360p".into(),
        };
        m.segments.get_or_create(&r).inc();
        m.publish_latency
            .get_or_create(&Kind {
                kind: "segment".into(),
            })
            .observe(0.004);
        Metrics::catch_up(&m.origin_errors, 3);
        Metrics::catch_up(&m.origin_errors, 2);
        let text = m.render();
        assert!(
            text.contains("swarmpack_segments_total{angle=\"main\",rung=\"360p\"} 1"),
            "{text}"
        );
        assert!(text.contains("swarmpack_origin_errors_total 3"), "{text}");
        assert!(
            text.contains("swarmpack_match_info") || text.contains("swarmpack_match{"),
            "{text}"
        );
        assert!(
            text.contains(
                "swarmpack_publish_latency_seconds_bucket{le=\"0.004\",kind=\"segment\"} 1"
            ) || text.contains("swarmpack_publish_latency_seconds_count{kind=\"segment\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
