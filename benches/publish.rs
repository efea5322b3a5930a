//! Publish latency to a real nginx WebDAV origin on loopback, through the whole publishing
//! path: packager (AES-128 encryption, playlists, window manifest and torrent) → spool on
//! disk → HTTP PUT. Two angles × three rungs (720p/480p/360p bitrates), 1 s segments, windows
//! of 4, paced at `PACE_MS` per segment duration (default 250 ms: 4× real time).
//!
//! Reported, in milliseconds from the moment a segment is closed (handed to the packager):
//! - segment on the origin;
//! - segment *and* a playlist naming it on the origin (what a viewer needs);
//! - for the last segment of a window: its manifest, signature, torrent and `live.json` too.
//!
//! Run: `cargo bench --bench publish` (SEQS=120 PACE_MS=250 by default; SPOOL=buffered
//! measures the spool without fsync, the default is fsync).

#[path = "../tests/common/nginx.rs"]
mod nginx;
#[path = "support/packager.rs"]
mod packager;
#[path = "support/stats.rs"]
mod stats;

use stats::{env_or, percentile};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swarmpack::keys::KeyDir;
use swarmpack::package::{EncodedSegment, ObjectKind, Output};
use swarmpack::profile::Profile;
use swarmpack::publish::{Durability, Origin, Published, Publisher, PublisherConfig};
use swarmpack::timecode::Seq;

const PROFILE: &str = r#"
name = "bench"
[segment]
duration = 1.0
window = 4
dvr = 30
[[rung]]
name = "720p"
width = 1280
height = 720
fps = 30
video_kbps = 3000
audio_kbps = 128
[[rung]]
name = "480p"
width = 854
height = 480
fps = 30
video_kbps = 1500
audio_kbps = 96
[[rung]]
name = "360p"
width = 640
height = 360
fps = 30
video_kbps = 800
audio_kbps = 96
"#;

fn report(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "{name:<44} n={:<4} p50 {:>6.2} ms   p99 {:>6.2} ms   max {:>6.2} ms",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let seqs = env_or("SEQS", 120);
    let pace = Duration::from_millis(env_or("PACE_MS", 250));
    let tmp = tempfile::tempdir().unwrap();
    let nginx = nginx::Nginx::webdav(&tmp.path().join("nginx"));
    let keys = KeyDir::generate(&tmp.path().join("keys")).unwrap();
    let profile = Profile::parse(PROFILE, std::path::Path::new("bench.toml")).unwrap();
    let timeline = profile.timeline();
    let angles = vec!["main".to_string(), "pov".to_string()];
    let mut packager = packager::encrypted_and_signed("bench", &profile, &angles, &keys);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (tx, rx) = crossbeam_channel::unbounded::<Published>();
    let publisher = Publisher::start(
        rt.handle(),
        Origin::open(&nginx.url()).unwrap(),
        &tmp.path().join("spool"),
        PublisherConfig {
            events: Some(tx),
            durability: match std::env::var("SPOOL").as_deref() {
                Ok("buffered") => Durability::Buffered,
                _ => Durability::Fsync,
            },
            ..PublisherConfig::default()
        },
    )
    .unwrap();

    // Segment bytes per rung: one second at the rung's bitrate, in whole TS packets.
    let sizes: Vec<(Arc<str>, usize)> = profile
        .rungs
        .iter()
        .map(|r| {
            let bytes = (r.video_kbps + r.audio_kbps) as usize * 125;
            (Arc::from(r.name.as_str()), bytes / 188 * 188)
        })
        .collect();
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let first = timeline.seq_at(swarmpack::timecode::UtcNs(now_ns));
    // path → when its segment was closed; window close → when.
    let mut closed_at: HashMap<String, Instant> = HashMap::new();
    let mut window_closed: Vec<(Instant, Vec<String>)> = Vec::new();
    let mut submits = Vec::new();
    let started = Instant::now();
    for i in 0..seqs {
        let seq = Seq::new(first.get() + i);
        let due = started + pace * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        for angle in &angles {
            for (rung, size) in &sizes {
                let mut bytes = vec![0u8; *size];
                for (n, b) in bytes.iter_mut().enumerate() {
                    *b = if n % 188 == 0 {
                        0x47
                    } else {
                        (n ^ i as usize) as u8
                    };
                }
                let t0 = Instant::now();
                packager
                    .push(EncodedSegment {
                        angle: Arc::from(angle.as_str()),
                        rung: rung.clone(),
                        seq,
                        duration_ns: timeline.segment_ns(),
                        bytes,
                    })
                    .unwrap();
                let mut documents = Vec::new();
                while let Some(object) = packager.pull().and_then(Output::into_put) {
                    match object.kind {
                        ObjectKind::Segment => {
                            closed_at.insert(object.path.clone(), t0);
                        }
                        ObjectKind::Torrent | ObjectKind::Manifest | ObjectKind::Pointer => {
                            documents.push(object.path.clone())
                        }
                        _ => {}
                    }
                    let t = Instant::now();
                    publisher.submit(&object).unwrap();
                    submits.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                if !documents.is_empty() {
                    window_closed.push((t0, documents));
                }
            }
        }
    }
    packager
        .push(swarmpack::package::Input::Finish)
        .expect("the end is never refused");
    while let Some(object) = packager.pull().and_then(Output::into_put) {
        publisher.submit(&object).unwrap();
    }
    publisher.finish(Duration::from_secs(60)).unwrap();
    let events: Vec<Published> = rx.try_iter().collect();

    let done: HashMap<&str, Instant> = events.iter().map(|e| (e.path.as_str(), e.done)).collect();
    // Playlist uploads per directory, in completion order, with their queue time.
    let mut playlists: HashMap<&str, Vec<(Instant, Instant)>> = HashMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == ObjectKind::MediaPlaylist)
    {
        let dir = e.path.rsplit_once('/').unwrap().0;
        playlists.entry(dir).or_default().push((e.queued, e.done));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut seg = Vec::new();
    let mut visible = Vec::new();
    for (path, t0) in &closed_at {
        let Some(d) = done.get(path.as_str()) else {
            panic!("{path} never published");
        };
        seg.push(ms(d.duration_since(*t0)));
        let dir = path.rsplit_once('/').unwrap().0;
        // The first playlist queued after the segment and finished names it.
        let shown = playlists
            .get(dir)
            .and_then(|v| v.iter().filter(|(q, _)| q >= t0).map(|(_, d)| *d).min());
        if let Some(shown) = shown {
            visible.push(ms(shown.max(*d).duration_since(*t0)));
        }
    }
    // live.json is replaced whole (a queued older copy may be skipped): it counts as published
    // once any copy queued after the window closed is up.
    let first_done_after = |path: &str, t0: Instant| {
        events
            .iter()
            .filter(|e| e.path == path && e.queued >= t0)
            .map(|e| e.done)
            .min()
    };
    let mut windows = Vec::new();
    for (t0, docs) in &window_closed {
        let last = docs
            .iter()
            .map(|p| first_done_after(p, *t0))
            .collect::<Option<Vec<_>>>()
            .and_then(|d| d.into_iter().max());
        if let Some(last) = last {
            windows.push(ms(last.duration_since(*t0)));
        }
    }
    println!(
        "publish latency to nginx WebDAV on loopback: {} seqs x 6 renditions, 1 s segments every {} ms, {} objects",
        seqs,
        pace.as_millis(),
        events.len()
    );
    report("spool write of one object (submit)", submits);
    report("segment closed -> segment on origin", seg);
    report("segment closed -> segment + playlist on origin", visible);
    report(
        "window closed -> torrent, manifest, sig, live.json",
        windows,
    );
}
