//! Fetching what a verified manifest lists, from the cache when it is there and verified,
//! else from the origin, and checking every byte before the engine sees it.
//!
//! May call: `hex`, `layout`, `package`, `publish`.

use super::{EdgeConfig, EdgeMetrics, Fault, Refusal};
use crate::hex::{encode as hex, sha256_hex};
use crate::package::chain::{self, Link};
use crate::package::manifest::{TorrentRef, WindowManifest};
use crate::package::playlist::media_uris;
use crate::package::segment_sig::{SegmentSignature, tagged_entries};
use crate::package::torrent;
use crate::package::vod::{ArchiveManifest, Distribution};
use crate::publish::OriginError;
use crate::seed::{Seeder, Slot};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A document and its detached signature: from the cache when its SHA-256 is the one the
/// chain expects, else from the origin (missing files read as empty, so checks fail).
pub(super) async fn document(
    cfg: &EdgeConfig,
    rel: &str,
    sha256: Option<&str>,
) -> Result<(Vec<u8>, Vec<u8>), OriginError> {
    let cached = cfg.cache.join(&cfg.match_id).join(rel);
    if let (Some(expected), Ok(file)) = (sha256, std::fs::read(&cached))
        && sha256_hex(&file) == expected
        && let Ok(sig) = std::fs::read(sig_path(&cached))
    {
        return Ok((file, sig));
    }
    let path = crate::layout::in_match(&cfg.match_id, rel);
    Ok(cfg.origin.get_signed(&path).await?.unwrap_or_default())
}

fn sig_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Keeps a verified document in the cache (best effort: a failure only costs a fetch).
pub(super) fn keep_document(cfg: &EdgeConfig, rel: &str, file: &[u8], sig: &[u8]) {
    let dest = cfg.cache.join(&cfg.match_id).join(rel);
    let written = dest
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&dest, file))
        .and_then(|_| std::fs::write(sig_path(&dest), sig));
    if let Err(e) = written {
        tracing::warn!("cache {}: {e}", dest.display());
    }
}

/// Removes cached manifests and torrents of windows older than `oldest`.
pub(super) fn prune_documents(dir: &Path, oldest: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let number = name.split('.').next().and_then(|n| n.parse::<u64>().ok());
        if number.is_some_and(|w| w < oldest) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Fetches and checks one window: its torrent against the manifest's infohashes, every
/// segment against the manifest's length and SHA-256. Returns the torrent to seed.
pub(super) async fn window(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    doc: &WindowManifest,
    metrics: &EdgeMetrics,
) -> Result<Result<Vec<u8>, Refusal>, OriginError> {
    let rel = crate::layout::window_torrent_rel(doc.window);
    if doc.torrent.path != rel {
        return Ok(Err(Refusal(format!(
            "windows/{}.json names torrent {:?}, expected {rel}",
            doc.window, doc.torrent.path
        ))));
    }
    let torrent = match torrent_bytes(cfg, &rel, &doc.torrent).await? {
        Ok(t) => t,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = segments(
        cfg,
        seeder,
        &crate::layout::window_manifest_rel(doc.window),
        doc,
        metrics,
    )
    .await?
    {
        return Ok(Err(r));
    }
    tracing::info!(
        "window {} verified: {} segment(s) and its torrent (infohash {})",
        doc.window,
        doc.segments.len(),
        doc.torrent.infohash_v1
    );
    Ok(Ok(torrent))
}

/// A torrent whose infohashes are the signed ones (`signed`, from a verified manifest):
/// cached, else from the origin. Its trackers are the signed magnet link's: the infohash
/// covers only `info`, so `announce` and `announce-list` as the origin holds them could name
/// any address for this seeder to send requests to.
async fn torrent_bytes(
    cfg: &EdgeConfig,
    rel: &str,
    signed: &TorrentRef,
) -> Result<Result<Vec<u8>, Refusal>, OriginError> {
    let (v1, v2) = (signed.infohash_v1.as_str(), signed.infohash_v2.as_str());
    let trackers = Distribution::from_magnet(&signed.magnet).trackers;
    let matches = |bytes: &[u8]| {
        torrent::infohashes(bytes).is_ok_and(|(a, b)| hex(&a) == v1 && hex(&b) == v2)
    };
    let cached = cfg.cache.join(&cfg.match_id).join(rel);
    if let Ok(bytes) = std::fs::read(&cached)
        && matches(&bytes)
    {
        return Ok(Ok(bytes));
    }
    let Some(bytes) = cfg
        .origin
        .get(&crate::layout::in_match(&cfg.match_id, rel))
        .await?
    else {
        return Ok(Err(Refusal(format!("{rel}: missing on the origin"))));
    };
    if !matches(&bytes) {
        return Ok(Err(Refusal(format!(
            "{rel}: its infohashes are not the signed ones ({v1} / {v2})"
        ))));
    }
    let Ok(bytes) = torrent::with_trackers(&bytes, &trackers) else {
        return Ok(Err(Refusal(format!("{rel}: not a torrent"))));
    };
    if let Some(dir) = cached.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = std::fs::write(&cached, &bytes);
    }
    Ok(Ok(bytes))
}

/// Segments fetched at once from the origin.
const PARALLEL_FETCHES: usize = 4;

/// Fetches `paths` (below the origin root, each with the most bytes it may hold: its signed
/// length), [`PARALLEL_FETCHES`] at a time; results in order. An object the origin holds but
/// that cannot be what was signed (larger, or not a regular file) comes back as `None`, as a
/// missing one does, and is logged.
async fn fetch_all(
    cfg: &EdgeConfig,
    paths: Vec<(String, u64)>,
) -> Result<Vec<(String, Option<Vec<u8>>)>, OriginError> {
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(PARALLEL_FETCHES) {
        let mut set = tokio::task::JoinSet::new();
        for (i, (path, limit)) in chunk.iter().enumerate() {
            let (origin, path, limit) = (cfg.origin.clone(), path.clone(), *limit);
            set.spawn(async move { (i, path.clone(), origin.get_limited(&path, limit).await) });
        }
        let mut got: Vec<_> = set.join_all().await;
        got.sort_by_key(|(i, ..)| *i);
        for (_, path, r) in got {
            let data = match r {
                Ok(data) => data,
                Err(e) if e.is_refusal() => {
                    tracing::warn!("{e}");
                    None
                }
                Err(e) => return Err(e),
            };
            out.push((path, data));
        }
    }
    Ok(out)
}

/// Every segment a manifest lists, in the seeding copy and verified: a cached (or prefetched)
/// copy whose length and SHA-256 match is kept, anything else is fetched and checked.
async fn segments(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    listed_in: &str,
    doc: &WindowManifest,
    metrics: &EdgeMetrics,
) -> Result<Result<(), Refusal>, OriginError> {
    let m = &cfg.match_id;
    let mut missing = Vec::new();
    for s in &doc.segments {
        if let Err(expected_path) = s.check_path() {
            return Ok(Err(Refusal(format!(
                "{listed_in} lists path {:?}, expected {expected_path}",
                s.path
            ))));
        }
        let local = seeder.folder(m).join(&s.path);
        if std::fs::read(&local).is_ok_and(|d| s.check_bytes(&d).is_ok()) {
            metrics.segments_cached.inc();
        } else {
            missing.push(s);
        }
    }
    let paths = missing
        .iter()
        .map(|s| (crate::layout::in_match(m, &s.path), s.length))
        .collect();
    for (s, (path, data)) in missing.iter().zip(fetch_all(cfg, paths).await?) {
        let Some(data) = data else {
            return Ok(Err(Refusal(format!(
                "{}: missing on the origin (listed in {listed_in})",
                s.path
            ))));
        };
        if let Err(mismatch) = s.check_bytes(&data) {
            return Ok(Err(Refusal(format!(
                "{}: {mismatch} in {listed_in} (altered or swapped segment)",
                s.path
            ))));
        }
        metrics.segments_fetched.inc();
        metrics.bytes_fetched.inc_by(data.len() as u64);
        if let Err(e) = seeder.stash(&path, &data) {
            return Ok(Err(Refusal(format!("{e}"))));
        }
    }
    Ok(Ok(()))
}

/// Segments of windows that have not closed yet (seq after `after_seq`), fetched as soon as a
/// playlist names them and checked against their signed `#EXT-X-SWARMPACK-SEGMENT` tags, so
/// the seeder already holds a window when its manifest and torrent appear. `held` remembers
/// what is already in the seeding copy. A segment whose tag or bytes do not verify is not
/// kept (its window's check fetches it again and refuses the window if it still fails).
pub(super) async fn prefetch(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    after_seq: u64,
    held: &mut HashSet<String>,
    metrics: &EdgeMetrics,
) -> Result<(), OriginError> {
    let m = &cfg.match_id;
    let Some(master) = cfg.origin.get(&crate::layout::master(m)).await? else {
        return Ok(());
    };
    let mut wanted: Vec<(String, SegmentSignature)> = Vec::new();
    for rel in media_uris(&master).unwrap_or_default() {
        if !crate::layout::is_plain_relative(&rel) {
            continue;
        }
        let Some(bytes) = cfg.origin.get(&crate::layout::in_match(m, &rel)).await? else {
            continue;
        };
        let Ok(m3u8_rs::Playlist::MediaPlaylist(playlist)) = m3u8_rs::parse_playlist_res(&bytes)
        else {
            continue;
        };
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        for entry in tagged_entries(&playlist) {
            let seq = entry
                .uri
                .strip_suffix(".ts")
                .and_then(|n| n.parse::<u64>().ok());
            let path = format!("{m}/{dir}/{}", entry.uri);
            if seq.is_none_or(|s| s <= after_seq) || held.contains(&path) {
                continue;
            }
            if !crate::layout::is_plain_relative(&path) {
                continue;
            }
            if entry.signed_gap(&cfg.public_key, &path) {
                held.insert(path); // A seq the match will never have.
                continue;
            }
            match entry.verified(&cfg.public_key, &path) {
                Some(tag) => wanted.push((path, tag.clone())),
                None => {
                    tracing::warn!("{path}: its tag in {rel} does not verify; not prefetched");
                    held.insert(path);
                }
            }
        }
    }
    let paths = wanted
        .iter()
        .map(|(p, tag)| (p.clone(), tag.bytes))
        .collect();
    let tags = wanted.into_iter().map(|(_, tag)| tag);
    for ((path, data), tag) in fetch_all(cfg, paths).await?.into_iter().zip(tags) {
        let Some(data) = data else {
            continue;
        };
        if !tag.describes(&data) {
            tracing::warn!(
                "{path}: the origin's bytes are not the ones its signed tag describes; not prefetched"
            );
        } else if let Err(e) = seeder.stash(&path, &data) {
            tracing::warn!("{e}");
        } else {
            metrics.segments_fetched.inc();
            metrics.bytes_fetched.inc_by(data.len() as u64);
            tracing::debug!("{path}: prefetched and verified against its tag");
        }
        held.insert(path);
    }
    Ok(())
}

/// A package of whole segments the edge seeds once it is published: the match's archive
/// (`swarmpack archive`) or a highlight (`swarmpack clip`, `clips/{label}/`).
pub(super) enum Package<'a> {
    Archive,
    /// The label, and its number among `seed --clip`s.
    Clip(&'a str, u32),
}

impl Package<'_> {
    fn dir(&self) -> String {
        match self {
            Package::Archive => String::new(),
            Package::Clip(label, _) => format!("clips/{label}/"),
        }
    }
    fn manifest(&self) -> String {
        match self {
            Package::Archive => "archive.json".into(),
            Package::Clip(..) => format!("{}clip.json", self.dir()),
        }
    }
    fn torrent(&self) -> String {
        match self {
            Package::Archive => "archive.torrent".into(),
            Package::Clip(..) => format!("{}clip.torrent", self.dir()),
        }
    }
    fn name(&self) -> String {
        match self {
            Package::Archive => "archive".into(),
            Package::Clip(label, _) => format!("highlight {label}"),
        }
    }
    fn slot(&self) -> Slot {
        match self {
            Package::Archive => Slot::Archive,
            Package::Clip(_, n) => Slot::Clip(*n),
        }
    }
}

/// Seeds `package` once it is on the origin, after checking its signed manifest, every window
/// manifest it cites and every segment. Returns whether it is done with it (seeded, or
/// refused); false while it is not published yet.
pub(super) async fn package(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    metrics: &EdgeMetrics,
    package: Package<'_>,
) -> Result<bool, Fault> {
    let (what, manifest_rel) = (package.name(), package.manifest());
    let (file, sig) = document(cfg, &manifest_rel, None).await?;
    if file.is_empty() {
        return Ok(false);
    }
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &cfg.public_key);
    let refuse = |why: String| {
        tracing::error!("{what} refused, not seeded: {why}");
        metrics.windows_refused.inc();
        Ok(true)
    };
    if key.verify(&file, &sig).is_err() {
        return refuse(format!(
            "{manifest_rel}: signature does not verify with this match's key"
        ));
    }
    let doc: ArchiveManifest = match serde_json::from_slice(&file) {
        Ok(d) => d,
        Err(e) => return refuse(format!("{manifest_rel}: {e}")),
    };
    if doc.match_id != cfg.match_id {
        return refuse(format!("{manifest_rel} names match {:?}", doc.match_id));
    }
    if doc.torrent.path != package.torrent() {
        return refuse(format!(
            "{manifest_rel} names torrent {:?}, not {}",
            doc.torrent.path,
            package.torrent()
        ));
    }
    for w in &doc.windows {
        let link = Link {
            window: w.window,
            sha256: w.manifest_sha256.clone(),
        };
        let (file, sig) = document(cfg, &link.path(), Some(&link.sha256)).await?;
        let manifest = match chain::check(&cfg.match_id, &link, &file, &sig, &cfg.public_key) {
            Ok((m, _)) => m,
            Err(e) => return refuse(format!("{}: {e}", link.path())),
        };
        if let Err(Refusal(why)) = segments(cfg, seeder, &link.path(), &manifest, metrics).await? {
            return refuse(why);
        }
    }
    let torrent = match torrent_bytes(cfg, &package.torrent(), &doc.torrent).await? {
        Ok(t) => t,
        Err(Refusal(why)) => return refuse(why),
    };
    drop(seeder.seed_slot(package.slot(), &torrent));
    tracing::info!(
        "{what} verified: {} window(s), {} segment(s); seeding it (infohash {})",
        doc.windows.len(),
        doc.segments,
        doc.torrent.infohash_v1
    );
    Ok(true)
}
