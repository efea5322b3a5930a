//! Seeding: an in-process BitTorrent engine (librqbit) seeds every closed window from a local
//! copy of its segments, announces it to the torrent's trackers (HTTP and UDP), and drops
//! windows once they have left the DVR window.
//!
//! The run loop writes each segment into the local copy as it is published ([`Seeder::stash`])
//! and hands over each window's torrent when the window closes ([`Seeder::seed`]); the engine
//! checks the copy against the torrent's piece hashes and serves it. BEP 47 pad files are
//! synthetic in librqbit, so only the segments are on disk.
//!
//! Seed before publish: [`Seeder::seed`] returns a [`Gate`] that opens once the engine holds
//! the window complete (every piece checked) and a tracker has answered its announce, or after
//! [`ANNOUNCE_WAIT`] without an answer, so a dead tracker never holds up the match. The run
//! keeps the window's torrent, manifest and `live.json` back until then: a viewer that takes
//! a torrent the instant it appears finds a seeder. `edge` is the same engine following a
//! match on its origin (`swarmpack seed`).
//!
//! May call (the whole room): `hex`, `layout`, `metrics`, `package`, `profile`, `publish`, `retry`, `sync`.

pub mod edge;
pub mod tracker;

use crate::package::manifest::hex;
use crate::package::torrent;
use crate::profile::{SeedConfig, Tracker};
use librqbit::dht::Id20;
use librqbit::{
    AddTorrent, AddTorrentOptions, DhtSessionConfig, ListenerMode, ListenerOptions, Session,
    SessionOptions,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("seed.listen {listen}: cannot listen for peers: {message}")]
    Listen { listen: SocketAddr, message: String },
    #[error("seeding copy {dir}: {action}: {source}")]
    Io {
        dir: PathBuf,
        action: String,
        source: std::io::Error,
    },
    #[error(
        "tracker[{index}].whitelist_token_env: the environment variable {var} is not set (it holds the whitelist API token)"
    )]
    MissingToken { index: usize, var: String },
}

/// A tracker whitelist API (torrust-tracker's `POST /api/v1/whitelist/{infohash}`).
#[derive(Clone)]
struct Whitelist {
    api: String,
    token: Option<String>,
}

/// How long a window's documents wait for a tracker to answer the seeder's announce.
pub const ANNOUNCE_WAIT: Duration = Duration::from_secs(2);
/// How long the engine may take to check a window's local copy.
const CHECK_WAIT: Duration = Duration::from_secs(5);

/// Live counters.
#[derive(Debug, Default)]
pub struct SeedStatus {
    seeding: AtomicU64,
    seeded_total: AtomicU64,
    /// Windows published without a tracker's answer (after [`ANNOUNCE_WAIT`]).
    unannounced_total: AtomicU64,
    /// Windows the engine could not hold complete.
    failed_total: AtomicU64,
}

impl SeedStatus {
    /// Windows being seeded now.
    pub fn seeding(&self) -> u64 {
        self.seeding.load(Ordering::Relaxed)
    }
    /// Windows seeded since the start.
    pub fn seeded_total(&self) -> u64 {
        self.seeded_total.load(Ordering::Relaxed)
    }
    /// Windows whose gate opened without a tracker's answer.
    pub fn unannounced_total(&self) -> u64 {
        self.unannounced_total.load(Ordering::Relaxed)
    }
    /// Windows the engine could not hold complete.
    pub fn failed_total(&self) -> u64 {
        self.failed_total.load(Ordering::Relaxed)
    }
}

/// What the engine made of a window when its gate opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ready {
    /// The engine holds every piece, checked against the torrent.
    pub complete: bool,
    /// A tracker answered the engine's announce for it.
    pub announced: bool,
}

/// Opens when a window may be published (see the module docs).
pub struct Gate {
    pub window: u64,
    rx: oneshot::Receiver<Ready>,
    deadline: std::time::Instant,
}

impl Gate {
    /// None while the engine is still at it; never later than a bounded deadline.
    pub fn poll(&mut self) -> Option<Ready> {
        match self.rx.try_recv() {
            Ok(ready) => Some(ready),
            Err(oneshot::error::TryRecvError::Empty)
                if std::time::Instant::now() < self.deadline =>
            {
                None
            }
            Err(_) => Some(Ready {
                complete: false,
                announced: false,
            }),
        }
    }
}

/// What the engine seeds: one window, the whole-match archive, or a highlight package (the
/// `n`th the edge seeder was asked for). Only windows are retired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slot {
    Window(u64),
    Archive,
    Clip(u32),
}

enum Cmd {
    Seed {
        slot: Slot,
        torrent: Vec<u8>,
        ready: oneshot::Sender<Ready>,
    },
    Stop(oneshot::Sender<()>),
}

/// The match's seeder.
pub struct Seeder {
    root: PathBuf,
    tx: mpsc::UnboundedSender<Cmd>,
    rt: tokio::runtime::Handle,
    port: u16,
    status: Arc<SeedStatus>,
    session: Arc<Session>,
}

impl Seeder {
    /// Starts the engine. `root` holds the local copy (`root/{match}/{angle}/{rung}/{seq}.ts`);
    /// `keep_windows` windows are seeded at most (those still in the DVR window).
    pub fn start(
        rt: &tokio::runtime::Handle,
        root: &Path,
        match_id: &str,
        config: &SeedConfig,
        trackers: &[Tracker],
        keep_windows: u64,
    ) -> Result<Seeder, SeedError> {
        let mut whitelists = Vec::new();
        for (index, t) in trackers.iter().enumerate() {
            let Some(api) = &t.whitelist_api else {
                continue;
            };
            let token = match &t.whitelist_token_env {
                Some(var) => Some(std::env::var(var).map_err(|_| SeedError::MissingToken {
                    index,
                    var: var.clone(),
                })?),
                None => None,
            };
            whitelists.push(Whitelist {
                api: api.clone(),
                token,
            });
        }
        std::fs::create_dir_all(root.join(match_id)).map_err(|source| SeedError::Io {
            dir: root.to_path_buf(),
            action: "cannot create the directory".into(),
            source,
        })?;
        let listen = with_free_port(config.listen).map_err(|e| SeedError::Listen {
            listen: config.listen,
            message: e.to_string(),
        })?;
        let options = SessionOptions {
            dht: config.dht.then(|| DhtSessionConfig {
                persistence: None,
                ..DhtSessionConfig::default()
            }),
            listen: Some(ListenerOptions {
                // uTP too: stock clients (libtorrent) try uTP first and wait seconds for it
                // to time out before they fall back to TCP.
                mode: ListenerMode::TcpAndUtp,
                listen_addr: listen,
                // Announce the real port even on loopback (librqbit omits it there).
                announce_port: Some(listen.port()),
                ipv4_only: listen.is_ipv4(),
                ..ListenerOptions::default()
            }),
            disable_local_service_discovery: true,
            fastresume: false,
            persistence: None,
            ..SessionOptions::default()
        };
        let session = rt
            .block_on(Session::new_with_opts(root.join(match_id), options))
            .map_err(|e| SeedError::Listen {
                listen,
                message: format!("{e:#}"),
            })?;
        let (tx, rx) = mpsc::unbounded_channel();
        let status = Arc::new(SeedStatus::default());
        rt.spawn(work(
            session.clone(),
            root.join(match_id),
            rx,
            whitelists,
            keep_windows.max(1),
            status.clone(),
            !trackers.is_empty(),
        ));
        tracing::info!(
            "seeding windows on {listen}, announcing to {} tracker(s)",
            trackers.len()
        );
        Ok(Seeder {
            root: root.to_path_buf(),
            tx,
            rt: rt.clone(),
            port: listen.port(),
            status,
            session,
        })
    }

    /// Bytes uploaded to peers since the start.
    pub fn uploaded_bytes(&self) -> u64 {
        self.session.stats_snapshot().counters.uploaded_bytes
    }

    /// The TCP port peers connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn status(&self) -> Arc<SeedStatus> {
        self.status.clone()
    }

    /// Keeps a local copy of a published segment (`path` as on the origin).
    pub fn stash(&self, path: &str, bytes: &[u8]) -> Result<(), SeedError> {
        let rel = crate::publish::origin::checked_relative(path).map_err(|e| SeedError::Io {
            dir: self.root.clone(),
            action: e.to_string(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        let dest = self.root.join(rel);
        let io = |action: String, source| SeedError::Io {
            dir: self.root.clone(),
            action,
            source,
        };
        let dir = dest.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)
            .map_err(|e| io(format!("cannot create {}", dir.display()), e))?;
        std::fs::write(&dest, bytes).map_err(|e| io(format!("cannot write {path}"), e))
    }

    /// Seeds a closed window (its `.torrent` as published at `torrent_path`). The gate opens
    /// when the window may reach the origin.
    pub fn seed(&self, torrent_path: &str, torrent: &[u8]) -> Option<Gate> {
        let Some(window) = window_of_torrent(torrent_path) else {
            tracing::error!("{torrent_path}: not a window torrent path; not seeded");
            return None;
        };
        Some(self.seed_slot(Slot::Window(window), torrent))
    }

    /// Seeds `torrent` in `slot`; the gate opens once it is held and announced (bounded).
    pub fn seed_slot(&self, slot: Slot, torrent: &[u8]) -> Gate {
        let (ready, rx) = oneshot::channel();
        let _ = self.tx.send(Cmd::Seed {
            slot,
            torrent: torrent.to_vec(),
            ready,
        });
        Gate {
            window: match slot {
                Slot::Window(w) => w,
                Slot::Archive | Slot::Clip(_) => u64::MAX,
            },
            rx,
            deadline: std::time::Instant::now()
                + CHECK_WAIT
                + ANNOUNCE_WAIT
                + Duration::from_secs(3),
        }
    }

    /// The directory the engine seeds from (`{root}/{match}`).
    pub fn folder(&self, match_id: &str) -> PathBuf {
        self.root.join(match_id)
    }

    /// Stops seeding (after the windows queued so far have been added).
    pub fn stop(self, timeout: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Stop(tx)).is_ok() {
            let _ = self
                .rt
                .block_on(async { tokio::time::timeout(timeout, rx).await });
        }
    }
}

/// `{match}/windows/{w}.torrent` → `w`.
fn window_of_torrent(path: &str) -> Option<u64> {
    let name = path.strip_suffix(".torrent")?;
    let (dir, w) = name.rsplit_once('/')?;
    dir.ends_with("windows").then_some(())?;
    w.parse().ok()
}

/// `addr`, with port 0 replaced by a port that is free right now (so it can be announced).
fn with_free_port(addr: SocketAddr) -> std::io::Result<SocketAddr> {
    if addr.port() != 0 {
        return Ok(addr);
    }
    let probe = std::net::TcpListener::bind(addr)?;
    probe.local_addr()
}

async fn work(
    session: Arc<Session>,
    folder: PathBuf,
    mut rx: mpsc::UnboundedReceiver<Cmd>,
    whitelists: Vec<Whitelist>,
    keep: u64,
    status: Arc<SeedStatus>,
    announces: bool,
) {
    let mut seeded: BTreeMap<Slot, Id20> = BTreeMap::new();
    while let Some(cmd) = rx.recv().await {
        let (slot, torrent, ready) = match cmd {
            Cmd::Seed {
                slot,
                torrent,
                ready,
            } => (slot, torrent, ready),
            Cmd::Stop(done) => {
                session.stop().await;
                let _ = done.send(());
                return;
            }
        };
        let failed = Ready {
            complete: false,
            announced: false,
        };
        let v1 = match torrent::infohashes(&torrent) {
            Ok((v1, _)) => v1,
            Err(e) => {
                tracing::error!("{slot:?}: torrent unreadable, not seeded: {e}");
                status.failed_total.fetch_add(1, Ordering::Relaxed);
                let _ = ready.send(failed);
                continue;
            }
        };
        let infohash = hex(&v1);
        for wl in &whitelists {
            register(wl, &infohash).await;
        }
        let options = AddTorrentOptions {
            overwrite: true,
            output_folder: Some(folder.to_string_lossy().into_owned()),
            ..AddTorrentOptions::default()
        };
        let added_at = std::time::Instant::now();
        match session
            .add_torrent(AddTorrent::from_bytes(torrent), Some(options))
            .await
        {
            Ok(added) => {
                if let Some(handle) = added.into_handle() {
                    tokio::spawn(open_gate(
                        slot,
                        handle,
                        (infohash.clone(), announces),
                        added_at,
                        ready,
                        status.clone(),
                    ));
                } else {
                    let _ = ready.send(failed);
                }
                seeded.insert(slot, Id20::new(v1));
                status.seeded_total.fetch_add(1, Ordering::Relaxed);
                tracing::info!("seeding {} (infohash {infohash})", describe(slot));
            }
            Err(e) => {
                tracing::error!("{}: cannot seed: {e:#}", describe(slot));
                status.failed_total.fetch_add(1, Ordering::Relaxed);
                let _ = ready.send(failed);
            }
        }
        // Windows that have left the DVR window are no longer seeded, and their copy goes.
        if let Slot::Window(window) = slot {
            let oldest_kept = Slot::Window(window.saturating_sub(keep - 1));
            let retired: Vec<Slot> = seeded.range(..oldest_kept).map(|(s, _)| *s).collect();
            for s in retired {
                let id = seeded.remove(&s).expect("key from the map");
                match session.delete(id.into(), true).await {
                    Ok(()) => {
                        tracing::debug!("{} left the DVR window; no longer seeded", describe(s))
                    }
                    Err(e) => tracing::warn!("{}: cannot stop seeding: {e:#}", describe(s)),
                }
            }
        }
        status.seeding.store(seeded.len() as u64, Ordering::Relaxed);
    }
}

fn describe(slot: Slot) -> String {
    match slot {
        Slot::Window(w) => format!("window {w}"),
        Slot::Archive => "the archive".to_string(),
        Slot::Clip(n) => format!("highlight #{n}"),
    }
}

/// Waits until the engine holds `slot` complete and a tracker answered for it (each wait
/// bounded; no tracker is waited for when the profile names none), then opens its gate.
async fn open_gate(
    slot: Slot,
    handle: Arc<librqbit::ManagedTorrent>,
    (infohash, announces): (String, bool),
    added_at: std::time::Instant,
    ready: oneshot::Sender<Ready>,
    status: Arc<SeedStatus>,
) {
    let complete = matches!(
        tokio::time::timeout(CHECK_WAIT, handle.wait_until_completed()).await,
        Ok(Ok(()))
    );
    if !complete {
        status.failed_total.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            "{}: the seeding copy does not check complete against its torrent; it is published without this seeder",
            describe(slot)
        );
        let _ = ready.send(Ready {
            complete,
            announced: false,
        });
        return;
    }
    if !announces {
        let _ = ready.send(Ready {
            complete,
            announced: false,
        });
        return;
    }
    let announce_deadline = tokio::time::Instant::now() + ANNOUNCE_WAIT;
    let announced = loop {
        if tracker::answered(&infohash, added_at) {
            break true;
        }
        if tokio::time::Instant::now() >= announce_deadline {
            break false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    if !announced {
        status.unannounced_total.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            "{}: no tracker answered within {} s; publishing it anyway (peers find this seeder at their next announce)",
            describe(slot),
            ANNOUNCE_WAIT.as_secs()
        );
    }
    let _ = ready.send(Ready {
        complete,
        announced,
    });
}

/// Registers `infohash` with a whitelist API. Failures are logged (the tracker may then
/// refuse the announce), never fatal; the token never reaches a log.
/// The whitelist call for `infohash`. The API token goes in an `Authorization: Bearer` header
/// (torrust-tracker accepts it since PR #1367), never in the URL, where HTTP clients, proxies
/// and debug logs print it.
fn whitelist_request(wl: &Whitelist, infohash: &str) -> ureq::Request {
    let req = ureq::post(&format!("{}/{infohash}", wl.api)).timeout(Duration::from_secs(5));
    match &wl.token {
        Some(t) => req.set("Authorization", &format!("Bearer {t}")),
        None => req,
    }
}

async fn register(wl: &Whitelist, infohash: &str) {
    let req = whitelist_request(wl, infohash);
    let call = tokio::task::spawn_blocking(move || match req.call() {
        Ok(resp) => Ok(resp.status()),
        Err(ureq::Error::Status(code, _)) => Err(format!("HTTP status {code}")),
        Err(ureq::Error::Transport(t)) => Err(format!("{}", t.kind())),
    })
    .await;
    match call {
        Ok(Ok(status)) => tracing::info!("whitelisted {infohash} at {} (HTTP {status})", wl.api),
        Ok(Err(e)) => tracing::error!("whitelist {}: cannot register {infohash}: {e}", wl.api),
        Err(e) => tracing::error!("whitelist {}: {e}", wl.api),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whitelist_token_never_goes_in_the_url() {
        let wl = Whitelist {
            api: "http://tracker:1212/api/v1/whitelist".into(),
            token: Some("MyAccessToken".into()),
        };
        let req = whitelist_request(&wl, "ab12");
        assert_eq!(req.url(), "http://tracker:1212/api/v1/whitelist/ab12");
        assert_eq!(req.header("Authorization"), Some("Bearer MyAccessToken"));
    }

    #[test]
    fn window_numbers_come_from_torrent_paths() {
        assert_eq!(window_of_torrent("final/windows/123.torrent"), Some(123));
        assert_eq!(window_of_torrent("final/windows/x.torrent"), None);
        assert_eq!(window_of_torrent("final/cam/123.torrent"), None);
        assert_eq!(window_of_torrent("final/windows/1.json"), None);
    }

    #[test]
    fn port_zero_is_replaced_by_a_free_port() {
        let a = with_free_port("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(a.port(), 0);
        let fixed: SocketAddr = "127.0.0.1:6881".parse().unwrap();
        assert_eq!(with_free_port(fixed).unwrap(), fixed);
    }
}
