//! Which torrents a tracker has answered for. librqbit announces on its own and keeps no
//! per-torrent record of the answers, but it logs "sleeping for … after calling tracker" inside
//! a span that names the infohash after every answered announce. [`TrackerEvents`] (a
//! `tracing` layer the binary installs) reads those events; the seeder asks [`answered`]
//! before it lets a window's torrent reach the origin.
//!
//! May call: `sync`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Tracker announce outcomes since the start, for `/metrics`.
pub static ANNOUNCES: AtomicU64 = AtomicU64::new(0);
pub static ERRORS: AtomicU64 = AtomicU64::new(0);

/// Infohash (hex, as librqbit formats it) → when a tracker last answered for it.
static ANSWERED: Mutex<Option<HashMap<String, Instant>>> = Mutex::new(None);
/// Entries kept before the oldest half is dropped (windows come and go).
const KEEP: usize = 4096;

/// Records that a tracker answered an announce for `info_hash` (hex).
pub fn record_answer(info_hash: &str) {
    let mut map = crate::sync::lock(&ANSWERED);
    let map = map.get_or_insert_with(HashMap::new);
    if map.len() >= KEEP {
        let mut times: Vec<Instant> = map.values().copied().collect();
        times.sort();
        let cut = times[times.len() / 2];
        map.retain(|_, t| *t > cut);
    }
    map.insert(info_hash.to_ascii_lowercase(), Instant::now());
}

/// Whether some tracker has answered for `info_hash` (hex) since `since`.
pub fn answered(info_hash: &str, since: Instant) -> bool {
    let map = crate::sync::lock(&ANSWERED);
    map.as_ref()
        .and_then(|m| m.get(&info_hash.to_ascii_lowercase()))
        .is_some_and(|t| *t >= since)
}

/// The infohash a tracker span names, kept in the span's extensions.
struct SpanInfoHash(String);

#[derive(Default)]
struct Fields {
    message: String,
    info_hash: Option<String>,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "info_hash" => self.info_hash = Some(format!("{value:?}")),
            _ => {}
        }
    }
}

/// A `tracing` layer that counts librqbit's tracker outcomes and records, per infohash, that
/// a tracker answered. Install it with a filter that lets `librqbit_tracker_comms` debug
/// events and spans through.
pub struct TrackerEvents;

impl<S> tracing_subscriber::Layer<S> for TrackerEvents
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let (Some(hash), Some(span)) = (f.info_hash, ctx.span(id)) {
            span.extensions_mut().insert(SpanInfoHash(hash));
        }
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if !event
            .metadata()
            .target()
            .starts_with("librqbit_tracker_comms")
        {
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        if f.message.starts_with("sleeping for") {
            ANNOUNCES.fetch_add(1, Ordering::Relaxed);
            let hash = ctx.event_scope(event).and_then(|scope| {
                scope
                    .filter_map(|span| span.extensions().get::<SpanInfoHash>().map(|h| h.0.clone()))
                    .next()
            });
            if let Some(hash) = hash {
                record_answer(&hash);
            }
        } else if f.message.starts_with("error") {
            ERRORS.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_recorded_per_infohash_from_librqbit_events() {
        use tracing_subscriber::layer::SubscriberExt;
        let (ok, err) = (
            ANNOUNCES.load(Ordering::Relaxed),
            ERRORS.load(Ordering::Relaxed),
        );
        let before = Instant::now();
        let hash = "00112233445566778899aabbccddeeff00112233";
        let subscriber = tracing_subscriber::registry().with(TrackerEvents);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::debug_span!(target: "librqbit_tracker_comms::tracker_comms", "http_tracker", tracker = "http://t/announce", info_hash = ?format_args!("{hash}"));
            let _in = span.enter();
            tracing::debug!(target: "librqbit_tracker_comms::tracker_comms", "sleeping for {:?} after calling tracker", std::time::Duration::from_secs(900));
            tracing::debug!(target: "librqbit_tracker_comms::tracker_comms", "error calling tracker: refused");
            tracing::debug!(target: "swarmpack", "sleeping for 1s after calling tracker");
        });
        assert!(ANNOUNCES.load(Ordering::Relaxed) > ok);
        assert!(ERRORS.load(Ordering::Relaxed) > err);
        assert!(answered(hash, before));
        assert!(answered(&hash.to_uppercase(), before));
        assert!(!answered(
            "ff112233445566778899aabbccddeeff00112233",
            before
        ));
        assert!(!answered(
            hash,
            Instant::now() + std::time::Duration::from_secs(1)
        ));
    }
}
