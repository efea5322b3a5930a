//! Reading back what an earlier run of the same match published, so a restart after a crash
//! continues it: the signed `live.json` (the hash chain's head), every media playlist, and the
//! segments of windows that were never closed. The parsing is pure (`package::published`).
//!
//! May call: `layout`, `package`, `chain_walk`, `timecode`.

use super::{Origin, OriginError};
use crate::package::published::{self, Resume, ResumeError};
use crate::rendition::Rendition;
use crate::timecode::Timeline;

#[derive(Debug, thiserror::Error)]
pub enum ResumeLoadError {
    #[error(transparent)]
    Origin(#[from] OriginError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
}

/// Loads the match's published state; an empty [`Resume`] when nothing was published.
pub async fn load(
    origin: &Origin,
    match_id: &str,
    renditions: &[Rendition],
    public_key: &[u8],
    timeline: &Timeline,
) -> Result<Resume, ResumeLoadError> {
    let mut state = Resume::default();
    let live_path = crate::layout::live(match_id);
    if let Some((live, sig)) = origin.get_signed(&live_path).await? {
        let pointer = match published::parse_pointer(&live_path, match_id, &live, &sig, public_key)
        {
            Err(ResumeError::ForeignPointer { .. }) => {
                torn_pointer(origin, match_id, &live_path, &live, public_key).await?
            }
            other => other?,
        };
        state.closed = pointer.windows.iter().rev().copied().collect();
        state.newest_manifest_sha256 = Some(pointer.newest_manifest_sha256);
    }
    let newest_closed = state.newest_closed();
    for Rendition { angle, rung } in renditions {
        let dir = crate::layout::rendition(match_id, angle, rung);
        let path = crate::layout::media_playlist(match_id, angle, rung);
        let Some(text) = origin.get(&path).await? else {
            continue;
        };
        let mut restored = published::parse_playlist(&path, &text)?;
        let latest = timeline.newest_possible(crate::timecode::UtcNs::now());
        let (verified, why) =
            published::verified_prefix(&dir, &restored.entries, public_key, latest);
        if let Some(why) = why {
            tracing::error!(
                "{why}; the restored playlist stops before it ({} of {} entries kept)",
                verified,
                restored.entries.len()
            );
            restored.entries.truncate(verified);
        }
        let mut kept = restored.entries.len();
        for (i, entry) in restored.entries.iter().enumerate() {
            // A signed gap (the seq was lost, or an angle group's machine was down) names no
            // bytes.
            if entry.gap && entry.signature.is_none()
                || newest_closed.is_some_and(|w| timeline.window_of(entry.seq).get() <= w)
            {
                continue;
            }
            let seg_path = crate::layout::segment(match_id, angle, rung, entry.seq);
            let signed_len = entry.signature.as_ref().map_or(0, |t| t.bytes);
            let Some(bytes) = origin.get_limited(&seg_path, signed_len).await? else {
                tracing::warn!(
                    "{path} names {seg_path}, which the origin does not have; its window will not list it"
                );
                continue;
            };
            match published::open_segment(angle, rung, entry, bytes) {
                Some(segment) => state.open_segments.push(segment),
                None => {
                    tracing::error!(
                        "{seg_path}: the bytes on the origin are not the ones its signed tag describes; \
                         the restored playlist stops before it"
                    );
                    kept = i;
                    break;
                }
            }
        }
        restored.entries.truncate(kept);
        state
            .playlists
            .push((angle.clone(), rung.clone(), restored));
    }
    Ok(state)
}

/// `live.json` whose signature does not match it. A crash between writing `live.json` and
/// `live.json.sig` leaves such a pair, and so does a forger. It is taken only as far as the
/// signed window manifests bear it out: its newest window must be a manifest signed with this
/// match's key whose SHA-256 is the one it names, and only the windows reached by walking the
/// chain back from there are kept. Anything else is the foreign pointer it looks like.
async fn torn_pointer(
    origin: &Origin,
    match_id: &str,
    live_path: &str,
    live: &[u8],
    public_key: &[u8],
) -> Result<crate::package::manifest::LivePointer, ResumeLoadError> {
    use crate::package::chain;
    let foreign = || {
        ResumeLoadError::Resume(ResumeError::ForeignPointer {
            path: live_path.to_string(),
        })
    };
    let Ok(mut pointer) = published::parse_pointer_unsigned(live_path, match_id, live) else {
        return Err(foreign());
    };
    let head = chain::head(&pointer).ok_or_else(foreign)?;
    let mut kept = Vec::new();
    let most = pointer.windows.len();
    super::chain_walk::walk(origin, match_id, Some(head), public_key, |found| {
        if let super::chain_walk::Found::Checked { doc, .. } = found {
            kept.push(doc.window);
        }
        kept.len() < most
    })
    .await?;
    let Some(newest) = kept.first().copied() else {
        return Err(foreign());
    };
    pointer.windows.retain(|w| kept.contains(w));
    tracing::warn!(
        "{live_path}: its signature does not match it, but the newest window it names ({newest}) \
         is this match's, signed and chained: a crash between live.json and live.json.sig; \
         continuing (the next live.json is signed afresh)"
    );
    Ok(pointer)
}
