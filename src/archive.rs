//! `swarmpack archive`: after the match, read its signed hash chain back from the origin,
//! check every segment against it, and publish VOD playlists, one whole-match torrent and one
//! signed whole-match manifest (`package::archive` builds them).

use crate::keys::KeyDir;
use crate::package::archive::{Archive, ArchiveError, Distribution};
use crate::package::chain;
use crate::package::manifest::{self, WindowManifest};
use crate::package::resume::{self, ResumeError};
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
    let public_key = {
        use ring::signature::KeyPair;
        keys.signing_key().public_key().as_ref().to_vec()
    };
    let live_path = format!("{match_id}/live.json");
    let Some(live) = origin.get(&live_path).await? else {
        return Err(ArchiveRunError::NoMatch {
            match_id: match_id.to_string(),
            origin: origin.describe().to_string(),
        });
    };
    let sig = origin
        .get(&format!("{live_path}.sig"))
        .await?
        .unwrap_or_default();
    let pointer = resume::parse_pointer(&live_path, match_id, &live, &sig, &public_key)?;
    let chain = walk_chain(origin, match_id, &pointer, &public_key).await?;

    let newest = &chain.last().expect("a chain has a window").0;
    let dist = Distribution::from_magnet(&newest.torrent.magnet);
    let mut plan = Archive::new(match_id, &chain, &dist)?;
    // One segment in memory at a time: checked and hashed, then dropped.
    let paths: Vec<String> = plan.segments().map(str::to_string).collect();
    for (i, path) in paths.iter().enumerate() {
        let data = origin
            .get(&format!("{match_id}/{path}"))
            .await?
            .unwrap_or_default();
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
        if let Some(live) = origin.get(&format!("{match_id}/{rel}")).await? {
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
    let mut next = chain::head(pointer);
    while let Some(link) = next.take() {
        let path = format!("{match_id}/{}", link.path());
        let broken = |problem: String| ArchiveRunError::Chain {
            path: path.clone(),
            problem,
        };
        let file = origin
            .get(&path)
            .await?
            .ok_or_else(|| broken("missing, but the chain links to it".into()))?;
        let sig = origin
            .get(&format!("{path}.sig"))
            .await?
            .unwrap_or_default();
        let (doc, prev) = chain::check(match_id, &link, &file, &sig, public_key)
            .map_err(|e| broken(e.to_string()))?;
        next = prev;
        chain.push((doc, link.sha256));
    }
    chain.reverse();
    Ok(chain)
}

async fn put_with_retries(origin: &Origin, path: &str, bytes: Vec<u8>) -> Result<(), OriginError> {
    let bytes = bytes::Bytes::from(bytes);
    let mut attempt = 1;
    loop {
        match origin.put(path, bytes.clone()).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 5 => {
                tracing::error!("{e} (attempt {attempt} of 5)");
                tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}
