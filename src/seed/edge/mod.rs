//! `swarmpack seed`: an edge seeder that runs anywhere. It follows a match on its origin
//! (`http(s)://`, `s3://`, `file://`), verifies `live.json`, the hash chain and every window
//! manifest with the match's public key, fetches each window's segments, checks every one
//! against its manifest, and seeds the window with the same engine `run` uses. Windows that
//! leave `live.json` are retired; after the match it seeds the archive torrent.
//!
//! Nothing unverified is seeded: a manifest, torrent or segment that fails a check makes it
//! refuse that window, log why and count it. Verified files stay in the cache directory, so
//! a restart seeds them again without fetching them from the origin.
//!
//! May call: `layout`, `metrics`, `package`, `profile`, `publish`, `retry`.

mod fetch;
mod metrics;

use super::{Seeder, Slot};
use crate::package::chain::{self, Link};
use crate::package::manifest::{LivePointer, WindowManifest};
use crate::profile::SeedConfig;
use crate::publish::{Origin, OriginError};
use fetch::{Package, document, keep_document, package, prune_documents, window};
pub use metrics::EdgeMetrics;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// Everything `swarmpack seed` needs.
pub struct EdgeConfig {
    pub origin: Origin,
    pub match_id: String,
    /// Raw Ed25519 public key of the match.
    pub public_key: Vec<u8>,
    /// Where the key came from (for messages).
    pub pubkey_path: PathBuf,
    pub listen: SocketAddr,
    /// Verified segments and documents, kept across restarts.
    pub cache: PathBuf,
    pub metrics: Option<SocketAddr>,
    /// How often `live.json` is read.
    pub poll: Duration,
    /// Windows seeded at once (older ones are retired).
    pub keep_windows: u64,
    /// How long to wait for the match to appear on the origin before giving up (exit 2).
    pub wait_for_match: Duration,
    /// Highlight packages (`clips/{label}/`) to seed once they are published.
    pub clips: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error(
        "origin {origin}: no match {match_id:?} there after {waited:?} ({match_id}/master.m3u8 and {match_id}/live.json are both missing); check --origin and --match, or start earlier with --wait-for-match"
    )]
    NoMatch {
        origin: String,
        match_id: String,
        waited: Duration,
    },
    #[error(
        "{path} does not verify with --pubkey {pubkey}: the wrong public key for this match, or a forged pointer"
    )]
    WrongKey { path: String, pubkey: PathBuf },
    #[error("{path}: names match {found:?}, expected --match {expected:?}")]
    ForeignPointer {
        path: String,
        found: String,
        expected: String,
    },
    #[error(transparent)]
    Seed(#[from] super::SeedError),
    #[error("--metrics {addr}: cannot listen: {source}")]
    Metrics {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl EdgeError {
    /// Bad input (exit 2) rather than a runtime failure.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            EdgeError::NoMatch { .. }
                | EdgeError::WrongKey { .. }
                | EdgeError::ForeignPointer { .. }
        )
    }
}

/// Why one round of following did not finish.
enum Fault {
    /// The origin could not be read: retried next round.
    Origin(OriginError),
    /// The match, key or pointer is wrong: fatal before anything was seeded.
    Input(EdgeError),
}

impl From<OriginError> for Fault {
    fn from(e: OriginError) -> Self {
        Fault::Origin(e)
    }
}

/// Why a window is not seeded (logged and counted, never fatal).
#[derive(Debug)]
struct Refusal(String);

/// What has been decided about each window so far.
#[derive(Default)]
struct Book {
    /// Window → SHA-256 of its verified manifest (seeded).
    seeded: BTreeMap<u64, String>,
    /// Window → (its manifest's SHA-256, the link to its predecessor), refused.
    refused: BTreeMap<u64, (String, Option<Link>)>,
    /// The match has been seen on the origin.
    reached: bool,
    /// The newest seq of any window decided so far: later segments are prefetched.
    newest_seq: u64,
    /// Segments already prefetched (or refused) by path.
    prefetched: std::collections::HashSet<String>,
    archive_seeded: bool,
    /// Highlights seeded (or refused), by label.
    clips_done: std::collections::HashSet<String>,
}

/// Follows the match until `stop_requests` counts a signal.
pub fn follow(cfg: EdgeConfig, stop_requests: Arc<AtomicUsize>) -> Result<(), EdgeError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("swarmpack-edge")
        .enable_all()
        .build()
        .map_err(EdgeError::Runtime)?;
    let metrics = EdgeMetrics::new();
    if let Some(addr) = cfg.metrics {
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| EdgeError::Metrics { addr, source })?;
        let shown = metrics.clone();
        rt.spawn(crate::metrics::serve(listener, move || shown.render()));
        tracing::info!("metrics at http://{addr}/metrics");
    }
    let engine = SeedConfig {
        enabled: true,
        listen: cfg.listen,
        dht: false,
    };
    let seeder = Seeder::start(
        rt.handle(),
        &cfg.cache,
        &cfg.match_id,
        &engine,
        &[],
        cfg.keep_windows,
    )?;
    tracing::info!(
        "following match {} on {} (cache {})",
        cfg.match_id,
        cfg.origin.describe(),
        cfg.cache.display()
    );
    let mut book = Book::default();
    let mut failures = 0u32;
    let started = std::time::Instant::now();
    let result = loop {
        if stop_requests.load(Ordering::Relaxed) > 0 {
            break Ok(());
        }
        match rt.block_on(round(&cfg, &seeder, &mut book, &metrics)) {
            Ok(()) => failures = 0,
            Err(Fault::Input(EdgeError::NoMatch { .. }))
                if started.elapsed() < cfg.wait_for_match =>
            {
                if failures == 0 {
                    tracing::info!(
                        "match {} is not on {} yet; waiting up to {:?} (--wait-for-match)",
                        cfg.match_id,
                        cfg.origin.describe(),
                        cfg.wait_for_match
                    );
                }
                failures = 1;
            }
            Err(Fault::Input(EdgeError::NoMatch {
                origin, match_id, ..
            })) => {
                break Err(EdgeError::NoMatch {
                    origin,
                    match_id,
                    waited: started.elapsed(),
                });
            }
            Err(Fault::Input(e)) if !book.reached || book.seeded.is_empty() => break Err(e),
            Err(Fault::Input(e)) => {
                metrics.windows_refused.inc();
                tracing::error!("{e}; keeping what is already verified");
            }
            Err(Fault::Origin(e)) => {
                failures += 1;
                metrics.origin_errors.inc();
                tracing::warn!(
                    "{e}; retrying (attempt {failures}); seeding what is verified meanwhile"
                );
            }
        }
        let status = seeder.status();
        metrics.seeding.set(status.seeding() as i64);
        crate::metrics::Metrics::catch_up(
            &metrics.tracker_announces,
            super::tracker::ANNOUNCES.load(Ordering::Relaxed),
        );
        crate::metrics::Metrics::catch_up(&metrics.uploaded_bytes, seeder.uploaded_bytes());
        // Back off while the origin is unreachable (up to 8 polls), checking for a stop.
        let wait = crate::retry::RetryPolicy::backoff(cfg.poll, cfg.poll * 8).step(failures + 1);
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until && stop_requests.load(Ordering::Relaxed) == 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let uploaded = seeder.uploaded_bytes();
    seeder.stop(Duration::from_secs(5));
    tracing::info!(
        "edge seeder for {} stopped: {} window(s) seeded, {} refused, {uploaded} bytes uploaded to peers",
        cfg.match_id,
        metrics.windows_seeded.get(),
        metrics.windows_refused.get()
    );
    result
}

/// One look at the origin: new windows are verified and seeded, the archive once it exists.
async fn round(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    book: &mut Book,
    metrics: &EdgeMetrics,
) -> Result<(), Fault> {
    let m = &cfg.match_id;
    let live_path = crate::layout::live(m);
    let Some((live, sig)) = cfg.origin.get_signed(&live_path).await? else {
        if !book.reached && cfg.origin.get(&crate::layout::master(m)).await?.is_none() {
            return Err(Fault::Input(EdgeError::NoMatch {
                origin: cfg.origin.describe().to_string(),
                match_id: m.clone(),
                waited: Duration::ZERO,
            }));
        }
        book.reached = true;
        tracing::debug!("{live_path}: not yet published; prefetching the first window");
        let after = book.newest_seq;
        return Ok(fetch::prefetch(cfg, seeder, after, &mut book.prefetched, metrics).await?);
    };
    book.reached = true;
    use crate::package::published::{ResumeError, parse_pointer};
    let pointer = parse_pointer(&live_path, m, &live, &sig, &cfg.public_key).map_err(|e| {
        Fault::Input(match e {
            ResumeError::ForeignMatch { found, .. } => EdgeError::ForeignPointer {
                path: live_path.clone(),
                found,
                expected: m.clone(),
            },
            _ => EdgeError::WrongKey {
                path: live_path.clone(),
                pubkey: cfg.pubkey_path.clone(),
            },
        })
    })?;
    for (link, doc) in new_windows(cfg, book, &pointer).await? {
        let w = link.window;
        let newest = doc.segments.iter().map(|s| s.seq).max().unwrap_or(0);
        book.newest_seq = book.newest_seq.max(newest);
        match window(cfg, seeder, &doc, metrics).await? {
            Ok(torrent) => {
                drop(seeder.seed_slot(Slot::Window(w), &torrent));
                book.seeded.insert(w, link.sha256);
                metrics.windows_seeded.inc();
            }
            Err(Refusal(why)) => {
                tracing::error!("window {w} refused, not seeded: {why}");
                metrics.windows_refused.inc();
                book.refused
                    .insert(w, (link.sha256, chain::previous(&doc).ok().flatten()));
            }
        }
    }
    // Windows that left live.json are forgotten (the engine retires their files).
    if let Some(&oldest) = pointer.windows.last() {
        book.seeded.retain(|w, _| *w >= oldest);
        book.refused.retain(|w, _| *w >= oldest);
        prune_documents(&cfg.cache.join(m).join("windows"), oldest);
    }
    if !pointer.ended {
        let after = book.newest_seq;
        fetch::prefetch(cfg, seeder, after, &mut book.prefetched, metrics).await?;
        book.prefetched.retain(|p| {
            p.rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".ts")?.parse::<u64>().ok())
                .is_some_and(|s| s > after)
        });
    }
    if pointer.ended && !book.archive_seeded {
        book.archive_seeded = package(cfg, seeder, metrics, Package::Archive).await?;
    }
    for (n, label) in cfg.clips.iter().enumerate() {
        if !book.clips_done.contains(label)
            && package(cfg, seeder, metrics, Package::Clip(label, n as u32)).await?
        {
            book.clips_done.insert(label.clone());
        }
    }
    Ok(())
}

/// The windows `live.json` lists that are not decided yet, oldest first, each with its
/// verified manifest. Walks the chain back from the head; a manifest that fails its check is
/// refused, and the walk cannot go past it.
async fn new_windows(
    cfg: &EdgeConfig,
    book: &mut Book,
    pointer: &LivePointer,
) -> Result<Vec<(Link, WindowManifest)>, OriginError> {
    let oldest = pointer.windows.last().copied().unwrap_or(0);
    let mut found = Vec::new();
    let mut next = chain::head(pointer);
    while let Some(link) = next.take() {
        if link.window < oldest || book.seeded.get(&link.window) == Some(&link.sha256) {
            break;
        }
        if let Some((sha, prev)) = book.refused.get(&link.window)
            && *sha == link.sha256
        {
            next = prev.clone();
            continue;
        }
        let (file, sig) = document(cfg, &link.path(), Some(&link.sha256)).await?;
        match chain::check(&cfg.match_id, &link, &file, &sig, &cfg.public_key) {
            Ok((doc, prev)) => {
                keep_document(cfg, &link.path(), &file, &sig);
                next = prev;
                found.push((link, doc));
            }
            Err(e) => {
                tracing::error!(
                    "window {} refused, not seeded: {}/{}: {e}; older windows cannot be reached through it",
                    link.window,
                    cfg.match_id,
                    link.path()
                );
                book.refused.insert(link.window, (link.sha256, None));
            }
        }
    }
    found.reverse();
    Ok(found)
}
