//! `swarmpack archive`: after the match, read its signed hash chain back from the origin,
//! check every segment against it, and publish VOD playlists, one whole-match torrent and one
//! signed whole-match manifest (`package::vod` builds them).
//!
//! May call: `keys`, `layout`, `package`, `profile`, `publish`, `retry`, `timecode`.

use crate::keys::KeyDir;
use crate::package::chain;
use crate::package::manifest::{self, WindowManifest};
use crate::package::published::{self, ResumeError};
use crate::package::vod::{Archive, ArchiveError, ClipRange, Distribution, Layout};
use crate::publish::chain_walk::Found;
use crate::publish::{Origin, OriginError};
use std::collections::BTreeSet;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveRunError {
    #[error(transparent)]
    Origin(#[from] OriginError),
    #[error(transparent)]
    Pointer(#[from] ResumeError),
    #[error(transparent)]
    Build(#[from] ArchiveError),
    #[error("{match_id}/live.json is missing: nothing was published for this match on {origin}")]
    NoMatch { match_id: String, origin: String },
    #[error("{path}: {problem}")]
    Chain { path: String, problem: String },
    #[error("clip {label}: {problem}")]
    Clip { label: String, problem: String },
}

/// A highlight to cut: whole segments overlapping `from`..`to` (RFC 3339, the master
/// timecode), published under `{match}/clips/{label}/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClipRequest {
    pub label: String,
    pub from: String,
    pub to: String,
}

/// What the archive holds.
#[derive(Debug, Default)]
pub struct ArchiveReport {
    pub windows: usize,
    pub segments: usize,
    pub objects: usize,
}

/// Archives `match_id` on `origin`.
pub async fn run(
    origin: &Origin,
    match_id: &str,
    keys: &KeyDir,
) -> Result<ArchiveReport, ArchiveRunError> {
    package(origin, match_id, keys, None).await
}

/// Cuts a highlight package of `match_id` on `origin` (a live match or an ended one): VOD
/// playlists naming the match's own segments (same keys, same segment signatures), a hybrid
/// torrent with the origin as web seed, and a signed `clip.json`, under `clips/{label}/`.
pub async fn clip(
    origin: &Origin,
    match_id: &str,
    keys: &KeyDir,
    request: &ClipRequest,
) -> Result<ArchiveReport, ArchiveRunError> {
    package(origin, match_id, keys, Some(request)).await
}

/// The segments `first..=last` a clip of `request` takes, on the grid of the match.
fn clip_range(
    request: &ClipRequest,
    segment_duration: f64,
) -> Result<(ClipRange, u64, u64), ArchiveRunError> {
    let bad = |problem: String| ArchiveRunError::Clip {
        label: request.label.clone(),
        problem,
    };
    if !crate::profile::is_path_safe_name(&request.label) {
        return Err(bad(format!(
            "the label must be {}",
            crate::profile::path_safe_name_rule()
        )));
    }
    let parse = |what: &str, text: &str| {
        crate::timecode::UtcNs::parse_rfc3339(text).ok_or_else(|| {
            bad(format!(
                "{what} {text:?}: expected an RFC 3339 UTC time, e.g. 2026-12-01T20:15:00Z"
            ))
        })
    };
    let (from, to) = (parse("from", &request.from)?, parse("to", &request.to)?);
    if to <= from {
        return Err(bad(format!(
            "to {} is not after from {}",
            request.to, request.from
        )));
    }
    let timeline = crate::timecode::Timeline::new((segment_duration * 1000.0).round() as u64, 1);
    let first = timeline.seq_at(from).get();
    let last = timeline.seq_at(crate::timecode::UtcNs(to.0 - 1)).get();
    let range = ClipRange {
        label: request.label.clone(),
        from: request.from.clone(),
        to: request.to.clone(),
        first_seq: first,
        last_seq: last,
    };
    Ok((range, first, last))
}

async fn package(
    origin: &Origin,
    match_id: &str,
    keys: &KeyDir,
    clip: Option<&ClipRequest>,
) -> Result<ArchiveReport, ArchiveRunError> {
    let public_key = keys.public_key();
    let live_path = crate::layout::live(match_id);
    let Some((live, sig)) = origin.get_signed(&live_path).await? else {
        return Err(ArchiveRunError::NoMatch {
            match_id: match_id.to_string(),
            origin: origin.describe().to_string(),
        });
    };
    let pointer = published::parse_pointer(&live_path, match_id, &live, &sig, &public_key)?;
    let chain = walk_chain(origin, match_id, &pointer, &public_key).await?;

    let newest = &chain.last().expect("a chain has a window").0;
    let dist = Distribution::from_magnet(&newest.torrent.magnet);
    let (chain, layout) = match clip {
        None => (chain, Layout::archive()),
        Some(request) => {
            let (range, first, last) = clip_range(request, newest.segment_duration)?;
            let published = chain
                .iter()
                .flat_map(|(d, _)| d.segments.iter().map(|s| s.seq))
                .max()
                .unwrap_or(0);
            if last > published && !pointer.ended {
                // A live match: the end of the range is not in a published window yet. Cut
                // short it would be a different highlight than asked for.
                return Err(ArchiveRunError::Clip {
                    label: request.label.clone(),
                    problem: format!(
                        "the range ends at {} (seq {last}), after the newest published window \
                         (it ends at seq {published}); try again once that window is published \
                         (within a window's time)",
                        request.to
                    ),
                });
            }
            let cut = crate::package::vod::cut(&chain, first, last);
            if cut.is_empty() {
                let seqs = chain
                    .iter()
                    .flat_map(|(d, _)| d.segments.iter().map(|s| s.seq));
                let (lo, hi) = (seqs.clone().min(), seqs.max());
                return Err(ArchiveRunError::Clip {
                    label: request.label.clone(),
                    problem: format!(
                        "no published segment between {} and {} (seq {first}..={last}; the origin holds seq {}..={})",
                        request.from,
                        request.to,
                        lo.unwrap_or(0),
                        hi.unwrap_or(0)
                    ),
                });
            }
            (cut, Layout::clip(range))
        }
    };
    let mut plan = Archive::new(match_id, &chain, &dist, layout)?;
    // One segment in memory at a time: checked and hashed, then dropped.
    let paths: Vec<(String, u64)> = plan
        .segments()
        .map(str::to_string)
        .zip(plan.segment_lengths())
        .collect();
    for (i, (path, length)) in paths.iter().enumerate() {
        // Read at most the signed length: a longer object is refused without being read
        // whole, and then fails its check below.
        let data = match origin
            .get_limited(&crate::layout::in_match(match_id, path), *length)
            .await
        {
            Ok(data) => data.unwrap_or_default(),
            Err(e) if e.is_refusal() => {
                tracing::error!("{e}");
                Vec::new()
            }
            Err(e) => return Err(e.into()),
        };
        plan.add(&data)?;
        if (i + 1) % 500 == 0 {
            tracing::info!("archive: {} of {} segments checked", i + 1, paths.len());
        }
    }
    // The live multivariant playlists, for their VOD twins.
    let mut masters = Vec::new();
    let angles: BTreeSet<&str> = chain
        .iter()
        .flat_map(|(d, _)| d.segments.iter().map(|s| s.angle.as_str()))
        .collect();
    let candidates = std::iter::once("master.m3u8".to_string())
        .chain(angles.iter().map(|a| format!("{a}/master.m3u8")));
    for rel in candidates {
        if let Some(live) = origin.get(&crate::layout::in_match(match_id, &rel)).await? {
            masters.push((rel, live));
        }
    }
    let signer = keys.signer();
    let report = ArchiveReport {
        windows: chain.len(),
        segments: paths.len(),
        objects: 0,
    };
    let objects = plan.finish(&masters, signer.as_ref())?;
    let report = ArchiveReport {
        objects: objects.len(),
        ..report
    };
    for object in objects {
        put_with_retries(origin, &object.path, object.bytes).await?;
    }
    Ok(report)
}

/// Window manifests from the newest (named by `live.json`) back to the first, each checked
/// against its signature and the link of the one after it; returned oldest first with the
/// SHA-256 of each file.
async fn walk_chain(
    origin: &Origin,
    match_id: &str,
    pointer: &manifest::LivePointer,
    public_key: &[u8],
) -> Result<Vec<(WindowManifest, String)>, ArchiveRunError> {
    let mut chain = Vec::new();
    let mut broken = None;
    let head = chain::head(pointer);
    crate::publish::chain_walk::walk(origin, match_id, head, public_key, |found| {
        match found {
            Found::Checked { link, doc } => chain.push((doc, link.sha256)),
            Found::Missing { path, .. } => {
                broken = Some((path, "missing, but the chain links to it".to_string()))
            }
            Found::Broken { path, error, .. } => broken = Some((path, error.to_string())),
        }
        true
    })
    .await?;
    if let Some((path, problem)) = broken {
        return Err(ArchiveRunError::Chain { path, problem });
    }
    chain.reverse();
    Ok(chain)
}

async fn put_with_retries(origin: &Origin, path: &str, bytes: Vec<u8>) -> Result<(), OriginError> {
    let bytes = bytes::Bytes::from(bytes);
    let policy = crate::retry::RetryPolicy::default();
    let mut attempt = 1;
    loop {
        match origin.put(path, bytes.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < policy.attempts => {
                tracing::error!("{e} (attempt {attempt} of {})", policy.attempts);
                tokio::time::sleep(policy.delay(attempt, rand::random())).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
