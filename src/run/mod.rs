//! One match, wired end to end: ingest → package → publish, and its lifecycle.

mod delivery;
mod events;
mod intake;
mod lock;
mod markers;
mod outlet;
mod remote;
mod resume;
mod stall;

use crate::ingest::{self, AngleIngest, Fragments, IngestEvent, MatchClock, SourceSpec};
use crate::keys::KeyDir;
use crate::metrics::Metrics;
use crate::observe::{Observer, Progress};
use crate::package::Packager;
use crate::package::crypt::Aes128;
use crate::profile::Profile;
use crate::publish::{Origin, PublishError, Publisher, PublisherConfig};
use crate::seed::{SeedError, Seeder};
use crate::timecode::{Seq, UtcNs};
use outlet::Outlet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Ingest(#[from] ingest::IngestError),
    #[error("angle {angle}: feed failed: {message}")]
    Feed { angle: String, message: String },
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error(transparent)]
    Resume(#[from] crate::package::resume::ResumeError),
    #[error("--metrics {addr}: cannot listen: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("stopped at once by a second signal; the segment in progress was not published")]
    Interrupted,
    #[error(
        "match {match_id} is already running with this spool (pid {pid}, lock {lock}): two runs \
         of one match on one spool would overwrite each other's objects and reuse keys and IVs"
    )]
    AlreadyRunning {
        match_id: String,
        pid: String,
        lock: PathBuf,
    },
    #[error(
        "origin {origin}: the match's earlier state cannot be read after {waited:?} ({message}); \
         starting afresh would fork its hash chain, so the run stops: start it again once the origin answers"
    )]
    OriginUnreachable {
        origin: String,
        waited: Duration,
        message: String,
    },
    #[error(
        "{path} names window {found} as the newest, but this spool already published window {recorded}: \
         an older live.json was put back (a rollback); refusing to extend it"
    )]
    Rollback {
        path: String,
        found: u64,
        recorded: u64,
    },
    #[error("--events {path}: cannot open the events file")]
    Events {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("spool {dir}: cannot create the directory or take its run lock {lock}")]
    Lock {
        dir: PathBuf,
        lock: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything one match needs.
pub struct RunConfig {
    pub match_id: String,
    pub profile: Profile,
    /// Angle name and feed, in the order given (the first is the default angle).
    pub angles: Vec<(String, SourceSpec)>,
    pub origin: Origin,
    /// Local working directory: `{spool}/{match}/queue` holds objects until the origin has
    /// them; `{spool}/{match}/seed` is the seeder's copy of the windows in the DVR window.
    pub spool: PathBuf,
    /// How long the end of the match waits for the spool to drain.
    pub drain_timeout: Duration,
    /// Whether the spool waits for stable storage.
    pub durability: crate::publish::Durability,
    /// Seed windows in-process (the profile's `[seed]`, unless turned off).
    pub seed: bool,
    /// Serve Prometheus metrics at `http://ADDR/metrics`.
    pub metrics: Option<std::net::SocketAddr>,
    /// Redraw a status line on stderr (it is a terminal).
    pub status_line: bool,
    /// The match secrets (from `keygen`); content keys are derived from them per window.
    pub keys: KeyDir,
    /// Stop after this many seconds of media (rounded up to whole segments).
    pub duration_secs: Option<f64>,
    /// Run test and file feeds as fast as the machine allows.
    pub fast: bool,
    pub fragments: Fragments,
    /// Append the match's events (feeds lost and restored, windows published, the origin down
    /// and up) to this file as JSON lines ([`crate::events`]).
    pub events: Option<PathBuf>,
    /// Follow this file for markers (JSON lines) to put in the playlists and manifests.
    pub markers: Option<PathBuf>,
    /// Follow this file for delivery policies (JSON lines) to publish in `p2p.json`.
    pub delivery: Option<PathBuf>,
    /// One of several redundant runs of this match on one origin: every segment is claimed
    /// on the origin before it is packaged ([`crate::publish::claim`]).
    pub redundant: bool,
    /// Angle groups: the angles other machines encode for this match (`--remote-angle`).
    /// Master playlists list them, and window manifests and torrents cover them.
    pub remote_angles: Vec<String>,
}

/// What a finished match produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RunReport {
    pub segments: u64,
    pub bytes: u64,
    pub first_seq: Option<Seq>,
    pub last_seq: Option<Seq>,
}

/// The UTC instant running time 0 stands for. Real-time feeds start on the boundary just
/// past (so running time and the master timecode share frame grids); `--fast` runs start on
/// the next boundary, so the first frame is the first frame of a segment.
fn anchor(now: UtcNs, timeline: &crate::timecode::Timeline, fast: bool) -> UtcNs {
    if fast {
        timeline.boundary_at_or_after(now)
    } else {
        timeline.seq_start(timeline.seq_at(now))
    }
}

/// Runs a match until its duration is reached, `stop_requests` counts one (clean stop at
/// the next boundary), or two (stop at once).
pub fn run(mut cfg: RunConfig, stop_requests: Arc<AtomicUsize>) -> Result<RunReport, RunError> {
    ingest::ladder::init()?;
    // A restarted run publishes the policy in force from its first p2p.json.
    if let Some(d) = cfg
        .delivery
        .as_deref()
        .and_then(|f| delivery::newest(f, &cfg.profile))
    {
        cfg.profile.delivery = d;
    }
    let timeline = cfg.profile.timeline();
    let any_network = cfg.angles.iter().any(|(_, s)| s.is_network());
    if cfg.fast && any_network {
        tracing::warn!("--fast has no effect with network feeds: they arrive in real time");
    }
    let fast = cfg.fast && !any_network;
    let gst_clock = ingest::ladder::utc_clock();
    let now = ingest::ladder::clock_now(&gst_clock);
    let anchor = anchor(now, &timeline, fast);
    let duration_segments = cfg.duration_secs.map(|s| timeline.segments_for(s));
    let clock = Arc::new(MatchClock::new(anchor, timeline, duration_segments));

    let angle_names: Vec<String> = cfg.angles.iter().map(|(a, _)| a.clone()).collect();
    let protection = Aes128::new(
        cfg.keys.content_secret(),
        &cfg.match_id,
        &cfg.profile.encryption.key_uri_base,
        timeline,
    );
    let mut packager = Packager::new(
        &cfg.match_id,
        &cfg.profile,
        &angle_names,
        Box::new(protection),
    )
    .with_remote_angles(&cfg.profile, &cfg.remote_angles)
    .sign_windows(&cfg.profile, cfg.keys.signer(), &cfg.keys.public_pem());
    if cfg.redundant {
        packager = packager.redundant();
    }
    let mut report = RunReport::default();

    // Publishing and seeding run on one small async runtime beside the GStreamer threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("swarmpack-io")
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let metrics = match cfg.metrics {
        Some(addr) => {
            let listener = rt
                .block_on(tokio::net::TcpListener::bind(addr))
                .map_err(|source| RunError::Metrics { addr, source })?;
            let m = Metrics::new(&cfg.match_id, &cfg.profile.name, cfg.origin.describe());
            let shown = m.clone();
            rt.spawn(crate::metrics::serve(listener, move || shown.render()));
            tracing::info!("metrics at http://{addr}/metrics");
            Some(m)
        }
        None => None,
    };
    let work_dir = cfg.spool.join(&cfg.match_id);
    let _lock = lock::lock_match(&work_dir, &cfg.match_id)?;
    let event_log = match &cfg.events {
        Some(path) => Some(crate::events::EventLog::open(path, &cfg.match_id).map_err(
            |source| RunError::Events {
                path: path.clone(),
                source,
            },
        )?),
        None => None,
    };
    let mut run_events = events::RunEvents::new(event_log, &cfg.match_id);
    // Objects the origin refused for good: segments become gaps in their playlists.
    let (lost_tx, lost_rx) = crossbeam_channel::unbounded::<String>();
    let origin_name = cfg.origin.describe().to_string();
    let publisher = Publisher::start(
        rt.handle(),
        cfg.origin.clone(),
        &queue_dir(&cfg.spool, &cfg.match_id),
        PublisherConfig {
            events: run_events.published_channel(metrics.clone()),
            lost: Some(lost_tx),
            durability: cfg.durability,
            drop_stale_replaceable: cfg.redundant,
            ..PublisherConfig::default()
        },
    )?;
    // A redundant run reads the match's state at its first segment instead, so that it
    // continues the other runs' latest work.
    if !cfg.redundant {
        resume::resume(
            &cfg,
            &rt,
            (&publisher, None),
            &angle_names,
            &mut packager,
            &work_dir,
        )?;
    }
    let mut intake = intake::Intake::for_run(&cfg, rt.handle(), publisher.status());
    let seeder = if cfg.seed {
        let per_window = cfg.profile.segment.window as usize;
        let keep = cfg.profile.segment.dvr_segments().div_ceil(per_window) + 1;
        Some(Seeder::start(
            rt.handle(),
            &work_dir.join("seed"),
            &cfg.match_id,
            &cfg.profile.seed,
            &cfg.profile.trackers,
            keep as u64,
        )?)
    } else {
        None
    };
    let mut outlet = Outlet::new(publisher, seeder, &work_dir, cfg.redundant);
    let mut remote = follow_remote(&cfg, &rt, anchor, packager.oldest_pending_seq());

    let (tx, rx) = crossbeam_channel::unbounded();
    let mut angles = Vec::new();
    for (name, spec) in &cfg.angles {
        let angle = AngleIngest::build(
            name,
            spec,
            &cfg.profile,
            &cfg.fragments,
            fast,
            clock.clone(),
            tx.clone(),
        );
        match angle {
            Ok(a) => angles.push(a),
            Err(e) => {
                angles.into_iter().for_each(AngleIngest::shutdown);
                return Err(e.into());
            }
        }
    }
    drop(tx);
    // The pipelines are sound: the multivariant playlists go up first, once.
    if let Err(e) = outlet.forward(&mut packager, &mut report) {
        angles.into_iter().for_each(AngleIngest::shutdown);
        return Err(e);
    }
    tracing::info!(
        "match {} on {}: {} angle(s) x {} rung(s), {} s segments, timecode anchor {}",
        cfg.match_id,
        origin_name,
        angles.len(),
        cfg.profile.rungs.len(),
        timeline.segment_secs(),
        anchor.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    for a in &angles {
        if let Err(e) = a.start(&gst_clock, (!fast).then_some(anchor)) {
            angles.into_iter().for_each(AngleIngest::shutdown);
            return Err(e.into());
        }
    }

    let total_rungs = angles.len() * cfg.profile.rungs.len();
    let mut progress = Progress::new(total_rungs);
    let frames = angles
        .iter()
        .map(|a| (a.angle.to_string(), a.frames.clone()))
        .collect();
    let mut observer = Observer::new(
        metrics,
        cfg.status_line,
        outlet.publisher.status(),
        outlet.seeder.as_ref().map(Seeder::status),
        frames,
    );
    let mut ended = 0;
    let mut stop_seen = 0;
    // A clean stop must end within one segment plus a few seconds, even when a feed has
    // stalled and will never reach the stop boundary.
    let mut stop_deadline: Option<Instant> = None;
    let grace = Duration::from_nanos(timeline.segment_ns()) + Duration::from_secs(5);
    // The packager runs on this thread: its CPU time is the packaging cost (scripts/bench).
    let packager_cpu_start = crate::observe::thread_cpu_time();
    let publish_status = outlet.publisher.status();
    let mut marker_feed = cfg.markers.clone().map(markers::MarkerFeed::new);
    let mut delivery_feed = cfg.delivery.clone().map(delivery::DeliveryFeed::new);
    // File and test feeds that stop producing end the run (network feeds have their slate).
    let watched: Vec<(String, Arc<std::sync::atomic::AtomicU64>)> = angles
        .iter()
        .zip(&cfg.angles)
        .filter(|(_, (_, spec))| !spec.is_network())
        .map(|(a, _)| (a.angle.to_string(), a.frames.clone()))
        .collect();
    let rung_names: Vec<String> = cfg.profile.rungs.iter().map(|r| r.name.clone()).collect();
    let patience = stall::PATIENCE
        .max(3 * Duration::from_nanos(timeline.segment_ns()) + Duration::from_secs(10));
    let mut stalls = stall::StallWatch::new(
        &watched.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
        &rung_names,
        Instant::now(),
        patience,
    );
    let result = loop {
        observer.tick();
        if let Some(feed) = marker_feed.as_mut() {
            feed.poll(&mut packager);
        }
        if let Some(feed) = delivery_feed.as_mut() {
            feed.poll(&mut packager, &cfg.profile);
        }
        run_events.origin(publish_status.origin_down());
        let now = Instant::now();
        for (angle, frames) in &watched {
            stalls.frames(angle, frames.load(Ordering::Relaxed), now);
        }
        if let Some((angle, message)) = stalls.check(now) {
            break Err(RunError::Feed { angle, message });
        }
        for path in lost_rx.try_iter() {
            packager.mark_lost(&path);
        }
        intake.poll(&mut packager);
        if let Some(r) = remote.as_mut() {
            let now = ingest::ladder::clock_now(&gst_clock);
            r.poll(&mut packager, outlet.seeder.as_ref(), now);
        }
        if let Err(e) = outlet.forward(&mut packager, &mut report) {
            break Err(e);
        }
        let requests = stop_requests.load(Ordering::Relaxed);
        if requests >= 2 {
            break Err(RunError::Interrupted);
        }
        if requests > stop_seen {
            stop_seen = requests;
            let at = clock.stop_at_next_boundary();
            stop_deadline = Some(Instant::now() + grace);
            tracing::info!(
                "stopping cleanly at the next boundary {} (signal again to stop at once)",
                at.to_datetime().format("%H:%M:%S%.3fZ")
            );
        }
        if stop_deadline.is_some_and(|d| Instant::now() > d) {
            tracing::warn!(
                "{} of {total_rungs} renditions did not reach the stop boundary (stalled feed?); closing the match without them",
                total_rungs - ended
            );
            break Ok(());
        }
        let event = match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(ev) => ev,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break Ok(()),
        };
        match event {
            IngestEvent::Segment(segment) => {
                if !segment.is_whole_ts() {
                    tracing::warn!(
                        "{}/{} seq {}: {} bytes are not whole TS packets",
                        segment.angle,
                        segment.rung,
                        segment.seq,
                        segment.bytes.len()
                    );
                }
                if intake.join_now()
                    && let Err(e) = resume::resume(
                        &cfg,
                        &rt,
                        (&outlet.publisher, outlet.seeder.as_ref()),
                        &angle_names,
                        &mut packager,
                        &work_dir,
                    )
                {
                    break Err(e);
                }
                let seq = segment.seq;
                let (angle, rung, size) = (
                    segment.angle.clone(),
                    segment.rung.clone(),
                    segment.bytes.len(),
                );
                intake.take(&mut packager, segment);
                if let Err(e) = outlet.forward(&mut packager, &mut report) {
                    break Err(e);
                }
                report.first_seq = Some(report.first_seq.map_or(seq, |f| f.min(seq)));
                report.last_seq = Some(report.last_seq.map_or(seq, |l| l.max(seq)));
                observer.segment(&angle, &rung, seq, size);
                stalls.segment(&angle, &rung, Instant::now());
                if let Some(factor) = progress.segment(seq, &timeline) {
                    observer.realtime_factor(factor);
                }
            }
            IngestEvent::RungEnded { angle, rung } => {
                tracing::debug!("{angle}/{rung} ended");
                stalls.ended(&angle, &rung);
                ended += 1;
                if ended == total_rungs {
                    break Ok(());
                }
            }
            IngestEvent::Error { angle, message } => {
                break Err(RunError::Feed {
                    angle: angle.to_string(),
                    message,
                });
            }
            IngestEvent::Feed {
                angle,
                live,
                status,
            } => run_events.feed(&angle, live, &status),
        }
    };
    angles.into_iter().for_each(AngleIngest::shutdown);
    observer.finish();
    if let Err(e) = result {
        // What was packaged still goes out; anything the origin cannot take stays spooled.
        if let Err(undrained) = outlet.close(cfg.drain_timeout) {
            tracing::error!("{undrained}");
        }
        return Err(e);
    }
    intake.finish(&mut packager, cfg.drain_timeout);
    if let (Some(r), Some(last)) = (remote.as_mut(), report.last_seq) {
        r.finish(&mut packager, outlet.seeder.as_ref(), last);
    }
    packager.finish();
    outlet.forward(&mut packager, &mut report)?;
    outlet.close(cfg.drain_timeout)?;
    run_events.ended(report.segments);
    let packager_cpu = crate::observe::thread_cpu_time()
        .zip(packager_cpu_start)
        .map_or(0.0, |(end, start)| end.saturating_sub(start).as_secs_f64());
    tracing::info!(
        "match {} ended: {} segments, {} bytes; packager thread {packager_cpu:.3} CPU s",
        cfg.match_id,
        report.segments,
        report.bytes
    );
    Ok(report)
}

/// Angle groups: follows the remote angles' renditions on the origin, from the first seq of
/// the window this run starts in (or of the oldest window it continues).
fn follow_remote(
    cfg: &RunConfig,
    rt: &tokio::runtime::Runtime,
    anchor: UtcNs,
    continued: Option<Seq>,
) -> Option<remote::Remote> {
    if cfg.remote_angles.is_empty() {
        return None;
    }
    let timeline = cfg.profile.timeline();
    let config = crate::publish::follow::FollowConfig {
        match_id: cfg.match_id.clone(),
        renditions: cfg
            .remote_angles
            .iter()
            .flat_map(|a| {
                cfg.profile
                    .rungs
                    .iter()
                    .map(|r| (a.clone(), r.name.clone()))
            })
            .collect(),
        from: timeline
            .window_seqs(timeline.window_of(
                continued.map_or(timeline.seq_at(anchor), |c| c.min(timeline.seq_at(anchor))),
            ))
            .0,
        public_key: cfg.keys.public_key(),
        every: (Duration::from_nanos(timeline.segment_ns()) / 4).max(Duration::from_millis(250)),
        timeline,
    };
    tracing::info!(
        "angle group: following {} on the origin for this match's windows",
        cfg.remote_angles.join(", ")
    );
    Some(remote::Remote::start(
        rt.handle(),
        cfg.origin.clone(),
        config,
        timeline,
    ))
}

/// `{spool}/{match}/queue`: the publisher's spool records for one match (`serve --spool`
/// reads its depth from here).
pub fn queue_dir(spool: &Path, match_id: &str) -> PathBuf {
    spool.join(match_id).join("queue")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::{NS_PER_SEC, Timeline};

    #[test]
    fn anchors_sit_on_boundaries() {
        let tl = Timeline::new(2000, 5);
        let now = UtcNs(101 * NS_PER_SEC + 5);
        assert_eq!(anchor(now, &tl, false), UtcNs(100 * NS_PER_SEC));
        assert_eq!(anchor(now, &tl, true), UtcNs(102 * NS_PER_SEC));
        let on = UtcNs(100 * NS_PER_SEC);
        assert_eq!(anchor(on, &tl, false), on);
        assert_eq!(anchor(on, &tl, true), on);
    }
}
