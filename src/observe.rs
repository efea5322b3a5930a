//! Watching a running match: feeds the Prometheus metrics and, when stderr is a terminal,
//! redraws a one-line status per angle (input fps, output bitrate, newest seq) plus the
//! spool, once a second.
//!
//! May call: `ingest`, `metrics`, `publish`, `seed`, `timecode`.

use crate::metrics::{self, Metrics};
use crate::publish::PublishStatus;
use crate::seed::SeedStatus;
use crate::timecode::Seq;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One angle's figures for the status line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AngleFigures {
    /// Decoded input frames per second over the last interval.
    pub fps: f64,
    /// Output (all rungs, encrypted) in kbit/s over the last interval.
    pub kbps: f64,
    pub last_seq: Option<Seq>,
}

/// The status line: `main 30.0 fps 2410 kb/s seq 897600123 | pov … | spool 0`.
pub fn status_line(
    angles: &BTreeMap<String, AngleFigures>,
    spool_objects: u64,
    origin_down: bool,
) -> String {
    let mut parts: Vec<String> = angles
        .iter()
        .map(|(name, f)| {
            let seq = f.last_seq.map_or("-".to_string(), |s| s.to_string());
            format!("{name} {:.1} fps {:.0} kb/s seq {seq}", f.fps, f.kbps)
        })
        .collect();
    let mut spool = format!("spool {spool_objects}");
    if origin_down {
        spool.push_str(" (origin down)");
    }
    parts.push(spool);
    parts.join(" | ")
}

/// Counts renditions per seq so progress is reported once a seq is complete everywhere.
/// The speed is measured from the first complete seq, so start-up does not skew it.
pub struct Progress {
    renditions: usize,
    pending: BTreeMap<Seq, usize>,
    first: Option<(Seq, Instant)>,
}

impl Progress {
    pub fn new(renditions: usize) -> Self {
        Progress {
            renditions,
            pending: BTreeMap::new(),
            first: None,
        }
    }

    /// A rendition delivered `seq`. Once every rendition has, logs it and returns the
    /// real-time factor so far.
    pub fn segment(&mut self, seq: Seq, timeline: &crate::timecode::Timeline) -> Option<f64> {
        let n = self.pending.entry(seq).or_default();
        *n += 1;
        if *n < self.renditions {
            return None;
        }
        self.pending.remove(&seq);
        let (first, since) = *self.first.get_or_insert((seq, Instant::now()));
        let media = (seq.get() - first.get()) as f64 * timeline.segment_secs();
        let wall = since.elapsed().as_secs_f64();
        let factor = (wall > 0.0 && media > 0.0).then(|| media / wall);
        let speed = match factor {
            Some(f) => format!("{f:.2}x real time"),
            None => "first segment".to_string(),
        };
        tracing::info!(
            "seq {seq} complete ({} renditions) pdt {} | {:.0} s of media, {speed}",
            self.renditions,
            timeline
                .seq_start(seq)
                .to_datetime()
                .format("%H:%M:%S%.3fZ"),
            media + timeline.segment_secs(),
        );
        factor
    }
}

const EVERY: Duration = Duration::from_secs(1);

/// Collects what the run loop sees.
pub struct Observer {
    metrics: Option<Arc<Metrics>>,
    tty: bool,
    publish: Arc<PublishStatus>,
    seed: Option<Arc<SeedStatus>>,
    frames: Vec<(String, Arc<AtomicU64>, u64)>,
    bytes_since: BTreeMap<String, u64>,
    figures: BTreeMap<String, AngleFigures>,
    last_tick: Instant,
    drawn: bool,
}

impl Observer {
    pub fn new(
        metrics: Option<Arc<Metrics>>,
        tty: bool,
        publish: Arc<PublishStatus>,
        seed: Option<Arc<SeedStatus>>,
        frames: Vec<(String, Arc<AtomicU64>)>,
    ) -> Self {
        let figures = frames
            .iter()
            .map(|(a, _)| (a.clone(), AngleFigures::default()))
            .collect();
        Observer {
            metrics,
            tty,
            publish,
            seed,
            frames: frames.into_iter().map(|(a, f)| (a, f, 0)).collect(),
            bytes_since: BTreeMap::new(),
            figures,
            last_tick: Instant::now(),
            drawn: false,
        }
    }

    /// A segment was packaged.
    pub fn segment(&mut self, angle: &str, rung: &str, seq: Seq, bytes: usize) {
        *self.bytes_since.entry(angle.to_string()).or_default() += bytes as u64;
        if let Some(f) = self.figures.get_mut(angle) {
            f.last_seq = Some(f.last_seq.map_or(seq, |s| s.max(seq)));
        }
        if let Some(m) = &self.metrics {
            let r = metrics::Rendition {
                angle: angle.to_string(),
                rung: rung.to_string(),
            };
            m.segments.get_or_create(&r).inc();
            m.segment_bytes.get_or_create(&r).inc_by(bytes as u64);
            m.last_seq.get_or_create(&r).set(seq.get() as i64);
        }
    }

    /// Media seconds per wall second, over the match so far.
    pub fn realtime_factor(&self, factor: f64) {
        if let Some(m) = &self.metrics {
            m.realtime_factor.set(factor);
        }
    }

    /// Called often; refreshes the figures and the status line once a second.
    pub fn tick(&mut self) {
        let elapsed = self.last_tick.elapsed();
        if elapsed < EVERY {
            return;
        }
        self.last_tick = Instant::now();
        let secs = elapsed.as_secs_f64();
        for (angle, counter, seen) in &mut self.frames {
            let total = counter.load(Ordering::Relaxed);
            let fresh = total - *seen;
            *seen = total;
            let bytes = self.bytes_since.remove(angle.as_str()).unwrap_or(0);
            if let Some(f) = self.figures.get_mut(angle.as_str()) {
                f.fps = fresh as f64 / secs;
                f.kbps = bytes as f64 * 8.0 / 1000.0 / secs;
            }
            if let Some(m) = &self.metrics {
                Metrics::catch_up(
                    &m.input_frames.get_or_create(&metrics::Angle {
                        angle: angle.clone(),
                    }),
                    total,
                );
            }
        }
        if let Some(m) = &self.metrics {
            m.spool_objects.set(self.publish.queued() as i64);
            m.spool_bytes.set(self.publish.queued_bytes() as i64);
            m.origin_down.set(i64::from(self.publish.origin_down()));
            Metrics::catch_up(&m.origin_errors, self.publish.failed_attempts());
            Metrics::catch_up(&m.objects_quarantined, self.publish.quarantined());
            Metrics::catch_up(&m.origin_conflicts, self.publish.conflicts());
            Metrics::catch_up(&m.claims_won, self.publish.claims_won());
            Metrics::catch_up(&m.claims_adopted, self.publish.claims_adopted());
            Metrics::catch_up(&m.claims_lost, self.publish.claims_lost());
            m.claims_waiting.set(self.publish.claims_waiting() as i64);
            Metrics::catch_up(&m.spool_write_failures, self.publish.spool_write_failures());
            m.spool_memory_bytes
                .set(self.publish.spool_memory_bytes() as i64);
            Metrics::catch_up(
                &m.tracker_announces,
                crate::seed::tracker::ANNOUNCES.load(Ordering::Relaxed),
            );
            Metrics::catch_up(
                &m.tracker_errors,
                crate::seed::tracker::ERRORS.load(Ordering::Relaxed),
            );
            for (reason, n) in crate::ingest::rtmp::refused() {
                if n > 0 {
                    let reason = reason.to_string();
                    Metrics::catch_up(
                        &m.rtmp_refused.get_or_create(&metrics::Reason { reason }),
                        n,
                    );
                }
            }
            if let Some(seed) = &self.seed {
                m.seeded_windows.set(seed.seeding() as i64);
                Metrics::catch_up(&m.seeded_windows_total, seed.seeded_total());
                Metrics::catch_up(&m.windows_unannounced, seed.unannounced_total());
                Metrics::catch_up(&m.windows_unseeded, seed.failed_total());
            }
        }
        if self.tty {
            let line = status_line(
                &self.figures,
                self.publish.queued(),
                self.publish.origin_down(),
            );
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            self.drawn = true;
        }
    }

    /// Clears the status line (before the final log lines).
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            self.drawn = false;
        }
    }
}

/// CPU time the calling thread has used so far (Linux `/proc/thread-self/schedstat`, in
/// nanoseconds); `None` where that file does not exist.
pub fn thread_cpu_time() -> Option<std::time::Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(ns))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_work_on_this_thread() {
        let before = thread_cpu_time().expect("Linux has /proc/thread-self/schedstat");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        let after = thread_cpu_time().unwrap();
        assert!(after > before, "{before:?} -> {after:?} ({x})");
    }

    #[test]
    fn status_line_lists_every_angle_and_the_spool() {
        let mut angles = BTreeMap::new();
        angles.insert(
            "main".to_string(),
            AngleFigures {
                fps: 29.97,
                kbps: 2410.4,
                last_seq: Some(Seq::new(897_600_123)),
            },
        );
        angles.insert("pov".to_string(), AngleFigures::default());
        assert_eq!(
            status_line(&angles, 3, false),
            "main 30.0 fps 2410 kb/s seq 897600123 | pov 0.0 fps 0 kb/s seq - | spool 3"
        );
        assert!(status_line(&angles, 40, true).ends_with("spool 40 (origin down)"));
    }
}
