//! Publishing: getting packaged objects onto the origin in a safe order, with nothing lost.
//!
//! [`Publisher::submit`] writes each object to the on-disk [`spool`] and returns; a dispatcher
//! task on the shared tokio runtime uploads in the order [`queue`] allows, with bounded
//! retries, back-off and jitter, and holds objects in the spool while the origin is down.
//!
//! May call (the whole room): `hex`, `layout`, `package`, `retry`, `sign`, `sync`, `timecode`.

pub mod chain_walk;
pub mod claim;
pub mod follow;
pub mod match_state;
pub mod origin;
pub mod queue;
pub mod spool;

use crate::package::{Object, ObjectKind};
use bytes::Bytes;
pub use claim::Claims;
pub use origin::{Created, Origin, OriginError};
use queue::{AfterFailure, Entry, RetryPolicy, Schedule};
pub use spool::{Durability, Spool, SpoolError, SpoolStats};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(
        "origin {origin}: {objects} object(s) ({bytes} bytes) still unpublished after {waited:?}; \
         they stay in the spool {spool} and the next `swarmpack run` with the same --spool publishes them first"
    )]
    Undrained {
        origin: String,
        objects: u64,
        bytes: u64,
        waited: Duration,
        spool: PathBuf,
    },
}

/// How the publisher behaves.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    pub policy: RetryPolicy,
    /// Uploads at once (while the origin is up).
    pub max_in_flight: usize,
    /// Receives one event per object on the origin (latency measurement, metrics).
    pub events: Option<crossbeam_channel::Sender<Published>>,
    /// Receives the path of every object the origin refused and that was given up.
    pub lost: Option<crossbeam_channel::Sender<String>>,
    /// Whether the spool waits for stable storage.
    pub durability: Durability,
    /// Leftover playlists and `live.json` from an earlier run are dropped, not published:
    /// other redundant runs kept the match going, and these would take the origin back.
    pub drop_stale_replaceable: bool,
}

impl Default for PublisherConfig {
    fn default() -> Self {
        PublisherConfig {
            policy: RetryPolicy::default(),
            max_in_flight: 8,
            events: None,
            lost: None,
            durability: DEFAULT_DURABILITY,
            drop_stale_replaceable: false,
        }
    }
}

/// The spool's default durability (docs/PERFORMANCE.md has the measurement behind it).
pub const DEFAULT_DURABILITY: Durability = Durability::Fsync;

/// One object that reached the origin.
#[derive(Clone, Debug)]
pub struct Published {
    pub id: u64,
    pub path: String,
    pub kind: ObjectKind,
    pub len: u64,
    /// When it was handed to [`Publisher::submit`] (or found in the spool at start).
    pub queued: Instant,
    pub done: Instant,
}

/// Live counters, readable from any thread.
#[derive(Debug, Default)]
pub struct PublishStatus {
    queued: AtomicU64,
    queued_bytes: AtomicU64,
    published: AtomicU64,
    failed_attempts: AtomicU64,
    quarantined: AtomicU64,
    conflicts: AtomicU64,
    claims_won: AtomicU64,
    claims_adopted: AtomicU64,
    claims_lost: AtomicU64,
    claims_waiting: AtomicU64,
    origin_down: AtomicBool,
    spool: Arc<SpoolStats>,
}

impl PublishStatus {
    /// Objects in the spool, not yet on the origin.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes.load(Ordering::Relaxed)
    }
    pub fn published(&self) -> u64 {
        self.published.load(Ordering::Relaxed)
    }
    pub fn failed_attempts(&self) -> u64 {
        self.failed_attempts.load(Ordering::Relaxed)
    }
    /// Objects the origin refused, and damaged records, that went to the spool's dead letters.
    pub fn quarantined(&self) -> u64 {
        self.quarantined.load(Ordering::Relaxed)
            + self.spool.damaged_at_open.load(Ordering::Relaxed)
    }
    /// Immutable objects the origin already held with other bytes (another run publishing
    /// the same match); the origin's were kept.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }
    /// Segments a redundant run claimed with its own bytes ([`claim`]).
    pub fn claims_won(&self) -> u64 {
        self.claims_won.load(Ordering::Relaxed)
    }
    /// Segments another redundant run had published first; this run packaged those bytes.
    pub fn claims_adopted(&self) -> u64 {
        self.claims_adopted.load(Ordering::Relaxed)
    }
    /// Seqs a redundant run lost to a claim it could not verify, other bytes in the way, or
    /// a refusal: published as signed gaps.
    pub fn claims_lost(&self) -> u64 {
        self.claims_lost.load(Ordering::Relaxed)
    }
    /// Segments waiting for their claim (the origin is slow or down).
    pub fn claims_waiting(&self) -> u64 {
        self.claims_waiting.load(Ordering::Relaxed)
    }
    /// Records the spool's disk refused.
    pub fn spool_write_failures(&self) -> u64 {
        self.spool.write_failures.load(Ordering::Relaxed)
    }
    /// Bytes the spool holds in memory because its disk refused them.
    pub fn spool_memory_bytes(&self) -> u64 {
        self.spool.memory_bytes.load(Ordering::Relaxed)
    }
    pub fn origin_down(&self) -> bool {
        self.origin_down.load(Ordering::Relaxed)
    }
    fn update(&self, schedule: &Schedule) {
        self.queued.store(schedule.len() as u64, Ordering::Relaxed);
        self.queued_bytes.store(schedule.bytes(), Ordering::Relaxed);
        self.origin_down
            .store(schedule.origin_down(), Ordering::Relaxed);
    }
}

enum Msg {
    Queued(Entry, Instant),
    Finish(oneshot::Sender<()>),
}

/// Publishes one match's objects to one origin.
pub struct Publisher {
    spool: Arc<Spool>,
    origin: String,
    tx: mpsc::UnboundedSender<Msg>,
    rt: tokio::runtime::Handle,
    status: Arc<PublishStatus>,
}

impl Publisher {
    /// Opens the spool in `spool_dir` and starts publishing, beginning with anything an
    /// earlier run left there.
    pub fn start(
        rt: &tokio::runtime::Handle,
        origin: Origin,
        spool_dir: &Path,
        config: PublisherConfig,
    ) -> Result<Publisher, PublishError> {
        let (spool, mut leftovers) = Spool::open(spool_dir, config.durability)?;
        let spool = Arc::new(spool);
        if config.drop_stale_replaceable {
            leftovers.retain(|e| {
                let stale = e.kind.is_replaceable();
                if stale {
                    tracing::info!(
                        "spool {}: dropping the leftover {} (another run has published newer)",
                        spool_dir.display(),
                        e.path
                    );
                    spool.remove(e.id);
                }
                !stale
            });
        }
        if !leftovers.is_empty() {
            let bytes: u64 = leftovers.iter().map(|e| e.len).sum();
            tracing::warn!(
                "spool {}: {} object(s) ({bytes} bytes) left unpublished by an earlier run; publishing them first",
                spool_dir.display(),
                leftovers.len()
            );
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let now = Instant::now();
        for e in leftovers {
            tx.send(Msg::Queued(e, now)).expect("receiver alive");
        }
        let status = Arc::new(PublishStatus {
            spool: spool.stats(),
            ..PublishStatus::default()
        });
        let describe = origin.describe().to_string();
        rt.spawn(dispatch(origin, spool.clone(), rx, config, status.clone()));
        Ok(Publisher {
            spool,
            origin: describe,
            tx,
            rt: rt.clone(),
            status,
        })
    }

    /// Writes `object` to the spool and queues it. When this returns, the object is safe on
    /// local disk even if the origin is down.
    pub fn submit(&self, object: &Object) -> Result<(), PublishError> {
        let entry = self.spool.put(&object.path, object.kind, &object.bytes)?;
        self.status.queued.fetch_add(1, Ordering::Relaxed);
        self.status
            .queued_bytes
            .fetch_add(entry.len, Ordering::Relaxed);
        // The dispatcher lives as long as the runtime; a closed channel means shutdown, and
        // the record stays in the spool for the next run.
        let _ = self.tx.send(Msg::Queued(entry, Instant::now()));
        Ok(())
    }

    pub fn status(&self) -> Arc<PublishStatus> {
        self.status.clone()
    }

    /// Waits until everything submitted is on the origin, for at most `timeout`, and stops.
    pub fn finish(self, timeout: Duration) -> Result<(), PublishError> {
        self.flush(timeout)
    }

    /// Waits until everything submitted so far is on the origin, for at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), PublishError> {
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Msg::Finish(tx));
        let drained = self
            .rt
            .block_on(async { tokio::time::timeout(timeout, rx).await });
        match drained {
            Ok(Ok(())) => Ok(()),
            _ => Err(PublishError::Undrained {
                origin: self.origin.clone(),
                objects: self.status.queued(),
                bytes: self.status.queued_bytes(),
                waited: started.elapsed(),
                spool: self.spool.dir().to_path_buf(),
            }),
        }
    }
}

/// Why one upload attempt failed.
struct UploadFailure {
    /// The origin refused this object (or its record is damaged); see [`OriginError::is_refusal`].
    refused: bool,
    message: String,
}

/// After a failed attempt: retry the object, hold everything while the origin is down, or,
/// once the origin has refused it [`queue::REFUSED_ATTEMPTS`] times, give it up to the
/// spool's dead letters and report it lost, so nothing waits for it any more.
fn failed(
    schedule: &mut Schedule,
    spool: &Spool,
    status: &PublishStatus,
    config: &PublisherConfig,
    entry: Entry,
    failure: UploadFailure,
) {
    status.failed_attempts.fetch_add(1, Ordering::Relaxed);
    let message = failure.message;
    let next = if failure.refused {
        schedule.refused(entry.id, Instant::now(), rand::random())
    } else {
        schedule.failed(entry.id, Instant::now(), rand::random())
    };
    match next {
        AfterFailure::Retry { attempt, of, after } => tracing::error!(
            "{message} (attempt {attempt} of {of}; next in {} ms)",
            after.as_millis()
        ),
        AfterFailure::Held { probe_after } => tracing::error!(
            "{message}; origin treated as down: {} object(s) held in spool {}, next try in {} ms",
            schedule.len(),
            spool.dir().display(),
            probe_after.as_millis()
        ),
        AfterFailure::GivenUp(entry) => {
            status.quarantined.fetch_add(1, Ordering::Relaxed);
            match spool.quarantine(&entry, &message) {
                Ok(kept) => tracing::error!(
                    "{message}; refused {} times, {} is given up and kept in {} (the match goes on without it)",
                    queue::REFUSED_ATTEMPTS,
                    entry.path,
                    kept.display()
                ),
                Err(e) => {
                    tracing::error!(
                        "{message}; {} is given up, and cannot be kept either: {e}",
                        entry.path
                    );
                    spool.remove(entry.id);
                }
            }
            if let Some(lost) = &config.lost {
                let _ = lost.send(entry.path);
            }
        }
    }
}

/// How often the spool depth is logged while objects wait.
const DEPTH_LOG_EVERY: Duration = Duration::from_secs(5);
/// A backlog this deep is logged even while the origin is up.
const DEPTH_LOG_MIN: usize = 64;

/// Reads an object from the spool and puts it on the origin: created once if immutable,
/// replaced otherwise.
async fn upload(origin: &Origin, spool: &Spool, entry: &Entry) -> Result<Created, UploadFailure> {
    match spool.read(entry) {
        Ok(bytes) => {
            let bytes = Bytes::from(bytes);
            let put = if entry.kind.is_immutable() {
                origin.create(&entry.path, bytes).await
            } else {
                origin.put(&entry.path, bytes).await.map(|()| Created::New)
            };
            put.map_err(|e| UploadFailure {
                refused: e.is_refusal(),
                message: e.to_string(),
            })
        }
        // A damaged record can never be published: like a refusal, it goes.
        Err(e) => Err(UploadFailure {
            refused: true,
            message: e.to_string(),
        }),
    }
}

/// An object is on the origin (or the origin held other bytes, kept): out of the schedule
/// and the spool, counted, and told to the run.
#[allow(clippy::too_many_arguments)]
fn succeeded(
    schedule: &mut Schedule,
    spool: &Spool,
    status: &PublishStatus,
    config: &PublisherConfig,
    origin: &Origin,
    entry: Entry,
    created: Created,
    queued: Instant,
) {
    if let Created::Other { len, sha256 } = created {
        status.conflicts.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            "origin {} already holds other bytes at {} ({len} bytes, SHA-256 {}): \
                 kept, never overwritten; is another run publishing this match?",
            origin.describe(),
            entry.path,
            crate::hex::encode(&sha256)
        );
    }
    if schedule.origin_down() {
        tracing::info!(
            "origin {} is back; {} object(s) to catch up",
            origin.describe(),
            schedule.len().saturating_sub(1)
        );
    }
    schedule.succeeded(entry.id);
    spool.remove(entry.id);
    status.published.fetch_add(1, Ordering::Relaxed);
    if let Some(events) = &config.events {
        let _ = events.send(Published {
            id: entry.id,
            path: entry.path,
            kind: entry.kind,
            len: entry.len,
            queued,
            done: Instant::now(),
        });
    }
}

async fn dispatch(
    origin: Origin,
    spool: Arc<Spool>,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    config: PublisherConfig,
    status: Arc<PublishStatus>,
) {
    let mut schedule = Schedule::new(config.policy);
    let mut queued_at: HashMap<u64, Instant> = HashMap::new();
    let mut uploads = tokio::task::JoinSet::new();
    let mut finish: Option<oneshot::Sender<()>> = None;
    let mut open = true;
    let mut last_depth_log = Instant::now();
    loop {
        let now = Instant::now();
        while let Some(entry) = schedule.next_ready(now, config.max_in_flight) {
            let (origin, spool) = (origin.clone(), spool.clone());
            uploads.spawn(async move {
                let result = upload(&origin, &spool, &entry).await;
                (entry, result)
            });
        }
        status.update(&schedule);
        if schedule.is_empty() {
            if let Some(done) = finish.take() {
                let _ = done.send(());
            }
            if !open {
                return;
            }
        }
        let backlog = schedule.len();
        if backlog > 0
            && (schedule.origin_down() || backlog >= DEPTH_LOG_MIN)
            && last_depth_log.elapsed() >= DEPTH_LOG_EVERY
        {
            last_depth_log = Instant::now();
            tracing::warn!(
                "spool depth {backlog} object(s), {} bytes, waiting for origin {}",
                schedule.bytes(),
                origin.describe()
            );
        }
        let wake = schedule
            .next_wakeup()
            .unwrap_or(now + DEPTH_LOG_EVERY)
            .min(now + DEPTH_LOG_EVERY);
        tokio::select! {
            msg = rx.recv(), if open => match msg {
                Some(Msg::Queued(entry, at)) => {
                    queued_at.insert(entry.id, at);
                    for obsolete in schedule.push(entry) {
                        queued_at.remove(&obsolete);
                        spool.remove(obsolete);
                    }
                }
                Some(Msg::Finish(done)) => finish = Some(done),
                None => open = false,
            },
            Some(joined) = uploads.join_next(), if !uploads.is_empty() => {
                let Ok((entry, result)) = joined else {
                    tracing::error!("an upload task panicked; its object stays in the spool");
                    continue;
                };
                match result {
                    Ok(created) => {
                        let queued = queued_at.remove(&entry.id).unwrap_or(now);
                        succeeded(&mut schedule, &spool, &status, &config, &origin, entry, created, queued);
                    }
                    Err(failure) => failed(&mut schedule, &spool, &status, &config, entry, failure),
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
}
