//! Fetching what a verified manifest lists, from the cache when it is there and verified,
//! else from the origin, and checking every byte before the engine sees it.

use super::{EdgeConfig, EdgeMetrics, Fault, Refusal};
use crate::package::archive::ArchiveManifest;
use crate::package::chain::{self, Link};
use crate::package::hex::{encode as hex, sha256_hex};
use crate::package::manifest::WindowManifest;
use crate::package::torrent;
use crate::publish::OriginError;
use crate::seed::{Seeder, Slot};
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
    let path = format!("{}/{rel}", cfg.match_id);
    let file = cfg.origin.get(&path).await?.unwrap_or_default();
    let sig = cfg
        .origin
        .get(&format!("{path}.sig"))
        .await?
        .unwrap_or_default();
    Ok((file, sig))
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
    let rel = format!("windows/{}.torrent", doc.window);
    if doc.torrent.path != rel {
        return Ok(Err(Refusal(format!(
            "windows/{}.json names torrent {:?}, expected {rel}",
            doc.window, doc.torrent.path
        ))));
    }
    let torrent = match torrent_bytes(
        cfg,
        &rel,
        &doc.torrent.infohash_v1,
        &doc.torrent.infohash_v2,
    )
    .await?
    {
        Ok(t) => t,
        Err(r) => return Ok(Err(r)),
    };
    if let Err(r) = segments(
        cfg,
        seeder,
        &format!("windows/{}.json", doc.window),
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

/// A torrent whose infohashes are the signed ones: cached, else from the origin.
async fn torrent_bytes(
    cfg: &EdgeConfig,
    rel: &str,
    v1: &str,
    v2: &str,
) -> Result<Result<Vec<u8>, Refusal>, OriginError> {
    let matches = |bytes: &[u8]| {
        torrent::infohashes(bytes).is_ok_and(|(a, b)| hex(&a) == v1 && hex(&b) == v2)
    };
    let cached = cfg.cache.join(&cfg.match_id).join(rel);
    if let Ok(bytes) = std::fs::read(&cached)
        && matches(&bytes)
    {
        return Ok(Ok(bytes));
    }
    let Some(bytes) = cfg.origin.get(&format!("{}/{rel}", cfg.match_id)).await? else {
        return Ok(Err(Refusal(format!("{rel}: missing on the origin"))));
    };
    if !matches(&bytes) {
        return Ok(Err(Refusal(format!(
            "{rel}: its infohashes are not the signed ones ({v1} / {v2})"
        ))));
    }
    if let Some(dir) = cached.parent()
        && std::fs::create_dir_all(dir).is_ok()
    {
        let _ = std::fs::write(&cached, &bytes);
    }
    Ok(Ok(bytes))
}

/// Every segment a manifest lists, in the seeding copy and verified: a cached copy whose
/// length and SHA-256 match is kept, anything else is fetched and checked.
async fn segments(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    listed_in: &str,
    doc: &WindowManifest,
    metrics: &EdgeMetrics,
) -> Result<Result<(), Refusal>, OriginError> {
    let m = &cfg.match_id;
    for s in &doc.segments {
        let expected_path = format!("{}/{}/{}.ts", s.angle, s.rung, s.seq);
        if s.path != expected_path || crate::publish::origin::checked_relative(&s.path).is_err() {
            return Ok(Err(Refusal(format!(
                "{listed_in} lists path {:?}, expected {expected_path}",
                s.path
            ))));
        }
        let describes = |data: &[u8]| data.len() as u64 == s.length && sha256_hex(data) == s.sha256;
        let local = seeder.folder(m).join(&s.path);
        if std::fs::read(&local).is_ok_and(|d| describes(&d)) {
            metrics.segments_cached.inc();
            continue;
        }
        let Some(data) = cfg.origin.get(&format!("{m}/{}", s.path)).await? else {
            return Ok(Err(Refusal(format!(
                "{}: missing on the origin (listed in {listed_in})",
                s.path
            ))));
        };
        if !describes(&data) {
            return Ok(Err(Refusal(format!(
                "{}: {} bytes with SHA-256 {} on the origin, but {listed_in} says {} bytes with {} (altered or swapped segment)",
                s.path,
                data.len(),
                sha256_hex(&data),
                s.length,
                s.sha256
            ))));
        }
        metrics.segments_fetched.inc();
        metrics.bytes_fetched.inc_by(data.len() as u64);
        if let Err(e) = seeder.stash(&format!("{m}/{}", s.path), &data) {
            return Ok(Err(Refusal(format!("{e}"))));
        }
    }
    Ok(Ok(()))
}

/// Seeds the whole-match archive once `archive` has published it. Returns whether it did.
pub(super) async fn archive(
    cfg: &EdgeConfig,
    seeder: &Seeder,
    metrics: &EdgeMetrics,
) -> Result<bool, Fault> {
    let (file, sig) = document(cfg, "archive.json", None).await?;
    if file.is_empty() {
        return Ok(false);
    }
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &cfg.public_key);
    let refuse = |why: String| {
        tracing::error!("archive refused, not seeded: {why}");
        metrics.windows_refused.inc();
        Ok(true)
    };
    if key.verify(&file, &sig).is_err() {
        return refuse("archive.json: signature does not verify with this match's key".into());
    }
    let doc: ArchiveManifest = match serde_json::from_slice(&file) {
        Ok(d) => d,
        Err(e) => return refuse(format!("archive.json: {e}")),
    };
    if doc.match_id != cfg.match_id {
        return refuse(format!("archive.json names match {:?}", doc.match_id));
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
    let torrent = match torrent_bytes(
        cfg,
        "archive.torrent",
        &doc.torrent.infohash_v1,
        &doc.torrent.infohash_v2,
    )
    .await?
    {
        Ok(t) => t,
        Err(Refusal(why)) => return refuse(why),
    };
    drop(seeder.seed_slot(Slot::Archive, &torrent));
    tracing::info!(
        "archive verified: {} window(s), {} segment(s); seeding it (infohash {})",
        doc.windows.len(),
        doc.segments,
        doc.torrent.infohash_v1
    );
    Ok(true)
}
