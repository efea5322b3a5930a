//! One match, wired end to end: ingest → package → publish, and its lifecycle.
//!
//! May call (the whole room): `events`, `ingest`, `keys`, `layout`, `metrics`, `observe`, `package`, `private_fs`, `profile`, `publish`, `seed`, `timecode`.

mod delivery;
mod intake;
mod lock;
mod markers;
mod match_events;
mod outlet;
mod pump;
mod remote_angles;
mod resume;
mod stall;
mod start;

use crate::ingest::{self, Fragments, SourceSpec};
use crate::keys::KeyDir;
use crate::profile::Profile;
use crate::publish::{Origin, PublishError};
use crate::seed::SeedError;
use crate::timecode::{Seq, UtcNs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

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
    Resume(#[from] crate::package::published::ResumeError),
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
    pub match_id: crate::match_id::MatchId,
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
    /// Stop at the first boundary at or after this instant (`--end-at`; wins over the
    /// duration): every run of a match given it ends on the same segment.
    pub end_at: Option<crate::timecode::UtcNs>,
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
/// the next boundary), or two (stop at once): start, pump, close.
pub fn run(cfg: RunConfig, stop_requests: Arc<AtomicUsize>) -> Result<RunReport, RunError> {
    let mut running = start::start(cfg)?;
    running.begin()?;
    let result = running.pump(&stop_requests);
    running.close(result)
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
