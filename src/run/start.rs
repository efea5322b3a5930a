//! Starting a match: everything a run builds before its first segment (the runtime, metrics,
//! the run lock, the packager, publisher, seeder and intake, then the angles' pipelines), held
//! together in [`Running`] for the pump ([`super::pump`]).
//!
//! May call every edge module of the data path (ingest, publish, seed, keys); nothing here
//! moves media: that is the pump's job.

use super::outlet::Outlet;
use super::{RunConfig, RunError, RunReport, delivery, intake, lock, markers, match_events, stall};
use crate::ingest::{self, AngleIngest, IngestEvent, MatchClock, PlannedEnd};
use crate::metrics::Metrics;
use crate::observe::{Observer, Progress};
use crate::package::Packager;
use crate::package::crypt::Aes128;
use crate::publish::{Publisher, PublisherConfig};
use crate::seed::Seeder;
use crate::timecode::Timeline;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// The angles' pipelines; dropping them shuts every one down (the run's one shutdown guard).
pub(super) struct Angles(Vec<AngleIngest>);

impl Angles {
    /// Starts every pipeline on `clock`.
    pub fn start(
        &self,
        clock: &gst::Clock,
        base_time: Option<crate::timecode::UtcNs>,
    ) -> Result<(), RunError> {
        for a in &self.0 {
            a.start(clock, base_time)?;
        }
        Ok(())
    }

    /// Shuts every pipeline down now (dropping does the same).
    pub fn stop(&mut self) {
        self.0.drain(..).for_each(AngleIngest::shutdown);
    }
}

impl Drop for Angles {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A started match: what the pump reads from and carries out to. Fields drop in order:
/// the pipelines first, the runtime last.
pub(super) struct Running {
    pub angles: Angles,
    pub cfg: RunConfig,
    pub timeline: Timeline,
    pub clock: Arc<MatchClock>,
    pub gst_clock: gst::Clock,
    pub angle_names: Vec<String>,
    pub packager: Packager,
    pub report: RunReport,
    pub events: match_events::RunEvents,
    /// Objects the origin refused for good: segments become gaps in their playlists.
    pub lost: crossbeam_channel::Receiver<String>,
    pub intake: intake::Intake,
    pub outlet: Outlet,
    pub remote: Option<super::remote_angles::Remote>,
    pub ingest: crossbeam_channel::Receiver<IngestEvent>,
    pub observer: Observer,
    pub progress: Progress,
    pub stalls: stall::StallWatch,
    /// File and test feeds that stop producing end the run (network feeds have their slate).
    pub watched: Vec<(String, Arc<AtomicU64>)>,
    pub marker_feed: Option<markers::MarkerFeed>,
    pub delivery_feed: Option<delivery::DeliveryFeed>,
    pub work_dir: std::path::PathBuf,
    /// The pump thread's CPU time when packaging began ([`Running::begin`]).
    pub packager_cpu_start: Option<Duration>,
    /// The UTC instant the pipelines' running time 0 stands for (None: `--fast`).
    pub base_time: Option<crate::timecode::UtcNs>,
    _lock: std::fs::File,
    pub rt: tokio::runtime::Runtime,
}

/// Builds everything a match needs, in the order a failure can be undone; the pipelines
/// are built, not started ([`Running::begin`] starts them).
pub(super) fn start(mut cfg: RunConfig) -> Result<Running, RunError> {
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
    let fast = fast_feeds(&cfg);
    let gst_clock = ingest::ladder::utc_clock();
    let anchor = super::anchor(ingest::ladder::clock_now(&gst_clock), &timeline, fast);
    let planned_end = match cfg.end_at {
        Some(at) => Some(PlannedEnd::At(at)),
        None => cfg
            .duration_secs
            .map(|s| PlannedEnd::Segments(timeline.segments_for(s))),
    };
    let clock = Arc::new(MatchClock::new(anchor, timeline, planned_end));
    let angle_names: Vec<String> = cfg.angles.iter().map(|(a, _)| a.clone()).collect();
    let mut packager = packager_for(&cfg, &angle_names);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("swarmpack-io")
        .enable_all()
        .build()
        .map_err(RunError::Runtime)?;
    let metrics = serve_metrics(&cfg, &rt)?;
    let work_dir = cfg.spool.join(&cfg.match_id);
    let lock = lock::lock_match(&work_dir, &cfg.match_id)?;
    let events = open_events(&cfg)?;
    let (lost_tx, lost) = crossbeam_channel::unbounded::<String>();
    let publisher = Publisher::start(
        rt.handle(),
        cfg.origin.clone(),
        &super::queue_dir(&cfg.spool, &cfg.match_id),
        PublisherConfig {
            events: events.published_channel(metrics.clone()),
            lost: Some(lost_tx),
            durability: cfg.durability,
            drop_stale_replaceable: cfg.redundant,
            ..PublisherConfig::default()
        },
    )?;
    // A redundant run reads the match's state at its first segment instead, so that it
    // continues the other runs' latest work.
    if !cfg.redundant {
        super::resume::resume(
            &cfg,
            &rt,
            (&publisher, None),
            &angle_names,
            &mut packager,
            &work_dir,
        )?;
    }
    let intake = intake::Intake::for_run(&cfg, rt.handle(), publisher.status());
    let seeder = start_seeder(&cfg, &rt, &work_dir)?;
    let outlet = Outlet::new(publisher, seeder, &work_dir, cfg.redundant);
    let remote = super::remote_angles::follow(&cfg, &rt, anchor, packager.oldest_pending_seq());
    let (tx, ingest) = crossbeam_channel::unbounded();
    let angles = build_angles(&cfg, fast, &clock, tx)?;
    tracing::info!(
        "match {} on {}: {} angle(s) x {} rung(s), {} s segments, timecode anchor {}",
        cfg.match_id,
        cfg.origin.describe(),
        angles.0.len(),
        cfg.profile.rungs.len(),
        timeline.segment_secs(),
        anchor.to_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    let observer = Observer::new(
        metrics,
        cfg.status_line,
        outlet.publisher.status(),
        outlet.seeder.as_ref().map(Seeder::status),
        angles
            .0
            .iter()
            .map(|a| (a.angle.to_string(), a.frames.clone()))
            .collect(),
    );
    let watched = watched_feeds(&cfg, &angles);
    let stalls = stall_watch(&cfg, &timeline, &watched);
    let running = Running {
        progress: Progress::new(angles.0.len() * cfg.profile.rungs.len()),
        angles,
        timeline,
        clock,
        gst_clock,
        angle_names,
        packager,
        report: RunReport::default(),
        events,
        lost,
        intake,
        outlet,
        remote,
        ingest,
        observer,
        stalls,
        watched,
        marker_feed: cfg.markers.clone().map(markers::MarkerFeed::new),
        delivery_feed: cfg.delivery.clone().map(delivery::DeliveryFeed::new),
        work_dir,
        packager_cpu_start: None,
        _lock: lock,
        rt,
        cfg,
        base_time: (!fast).then_some(anchor),
    };
    Ok(running)
}

/// `--events FILE`: the match's events, appended as JSON lines.
fn open_events(cfg: &RunConfig) -> Result<match_events::RunEvents, RunError> {
    let log = match &cfg.events {
        Some(path) => Some(crate::events::EventLog::open(path, &cfg.match_id).map_err(
            |source| RunError::Events {
                path: path.clone(),
                source,
            },
        )?),
        None => None,
    };
    Ok(match_events::RunEvents::new(log, &cfg.match_id))
}

/// Every angle's pipeline, built (not started), sending to `tx`.
fn build_angles(
    cfg: &RunConfig,
    fast: bool,
    clock: &Arc<MatchClock>,
    tx: crossbeam_channel::Sender<IngestEvent>,
) -> Result<Angles, RunError> {
    let mut angles = Angles(Vec::new());
    for (name, spec) in &cfg.angles {
        let angle = AngleIngest::build(
            name,
            spec,
            &cfg.profile,
            &cfg.fragments,
            fast,
            clock.clone(),
            tx.clone(),
        )?;
        angles.0.push(angle);
    }
    Ok(angles)
}

/// Whether the feeds run as fast as the machine allows: `--fast`, unless a feed is a network
/// feed (it arrives in real time).
fn fast_feeds(cfg: &RunConfig) -> bool {
    let any_network = cfg.angles.iter().any(|(_, s)| s.is_network());
    if cfg.fast && any_network {
        tracing::warn!("--fast has no effect with network feeds: they arrive in real time");
    }
    cfg.fast && !any_network
}

/// The match's packager: encrypted with keys derived per window, windows signed with the
/// match key, remote angles and redundancy as configured.
fn packager_for(cfg: &RunConfig, angle_names: &[String]) -> Packager {
    let protection = Aes128::new(
        cfg.keys.content_secret(),
        &cfg.match_id,
        &cfg.profile.encryption.key_uri_base,
        cfg.profile.timeline(),
    );
    let packager = Packager::new(
        &cfg.match_id,
        &cfg.profile,
        angle_names,
        Box::new(protection),
    )
    .with_remote_angles(&cfg.profile, &cfg.remote_angles)
    .sign_windows(&cfg.profile, cfg.keys.signer(), &cfg.keys.public_pem());
    if cfg.redundant {
        packager.redundant()
    } else {
        packager
    }
}

/// `--metrics ADDR`: the run's Prometheus figures, served on `rt`.
fn serve_metrics(
    cfg: &RunConfig,
    rt: &tokio::runtime::Runtime,
) -> Result<Option<Arc<Metrics>>, RunError> {
    let Some(addr) = cfg.metrics else {
        return Ok(None);
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .map_err(|source| RunError::Metrics { addr, source })?;
    let m = Metrics::new(&cfg.match_id, &cfg.profile.name, cfg.origin.describe());
    let shown = m.clone();
    rt.spawn(crate::metrics::serve(listener, move || shown.render()));
    tracing::info!("metrics at http://{addr}/metrics");
    Ok(Some(m))
}

/// The in-process seeder (`[seed]`), keeping the windows of the DVR window and one more.
fn start_seeder(
    cfg: &RunConfig,
    rt: &tokio::runtime::Runtime,
    work_dir: &std::path::Path,
) -> Result<Option<Seeder>, RunError> {
    if !cfg.seed {
        return Ok(None);
    }
    let per_window = cfg.profile.segment.window as usize;
    let keep = cfg.profile.segment.dvr_segments().div_ceil(per_window) + 1;
    Ok(Some(Seeder::start(
        rt.handle(),
        &work_dir.join("seed"),
        &cfg.match_id,
        &cfg.profile.seed,
        &cfg.profile.trackers,
        keep as u64,
    )?))
}

/// The frame counters of the file and test feeds.
fn watched_feeds(cfg: &RunConfig, angles: &Angles) -> Vec<(String, Arc<AtomicU64>)> {
    angles
        .0
        .iter()
        .zip(&cfg.angles)
        .filter(|(_, (_, spec))| !spec.is_network())
        .map(|(a, _)| (a.angle.to_string(), a.frames.clone()))
        .collect()
}

/// The stall watch over `watched`, patient for three segments and ten seconds at least.
fn stall_watch(
    cfg: &RunConfig,
    timeline: &Timeline,
    watched: &[(String, Arc<AtomicU64>)],
) -> stall::StallWatch {
    let rung_names: Vec<String> = cfg.profile.rungs.iter().map(|r| r.name.clone()).collect();
    let patience = stall::PATIENCE
        .max(3 * Duration::from_nanos(timeline.segment_ns()) + Duration::from_secs(10));
    stall::StallWatch::new(
        &watched.iter().map(|(a, _)| a.clone()).collect::<Vec<_>>(),
        &rung_names,
        Instant::now(),
        patience,
    )
}
