//! Angle groups (`run --remote-angle`): following, on the origin, the renditions other
//! machines encode for this match. Their media playlists are polled; every newly listed
//! segment is read and checked against its signed tag (the match's key), then handed to the
//! packager for its window. Nothing here trusts a segment its tag does not describe.
//!
//! May call: `layout`, `package`, `timecode`.

use super::Origin;
use crate::package::published::{self, RestoredPlaylist};
use crate::package::window::WindowSegment;
use crate::rendition::Rendition;
use crate::timecode::Seq;
use std::collections::HashMap;
use std::time::Duration;

/// What following a remote rendition brings.
pub enum Followed {
    /// Its playlist changed on the origin (the verified part, as published).
    Playlist {
        rendition: Rendition,
        published: RestoredPlaylist,
    },
    /// One of its segments, as the origin holds it, matching its signed tag.
    Segment(WindowSegment),
}

/// Follows remote renditions until dropped.
pub struct Follower {
    rx: crossbeam_channel::Receiver<Followed>,
    task: tokio::task::JoinHandle<()>,
}

/// What to follow.
pub struct FollowConfig {
    pub match_id: String,
    /// Every remote rendition.
    pub renditions: Vec<Rendition>,
    /// Segments before this seq are not wanted (their windows closed before this run).
    pub from: Seq,
    /// The match's Ed25519 public key (raw), which every segment tag must verify with.
    pub public_key: Vec<u8>,
    /// How often the playlists are read.
    pub every: Duration,
    /// The match's timeline: no entry ahead of the wall clock is followed.
    pub timeline: crate::timecode::Timeline,
}

impl Follower {
    pub fn start(rt: &tokio::runtime::Handle, origin: Origin, config: FollowConfig) -> Follower {
        let (tx, rx) = crossbeam_channel::unbounded();
        let task = rt.spawn(follow(origin, config, tx));
        Follower { rx, task }
    }

    /// What arrived since the last call.
    pub fn ready(&self) -> Vec<Followed> {
        self.rx.try_iter().collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn follow(origin: Origin, cfg: FollowConfig, tx: crossbeam_channel::Sender<Followed>) {
    let mut next: HashMap<Rendition, Seq> = cfg
        .renditions
        .iter()
        .map(|r| (r.clone(), cfg.from))
        .collect();
    let mut seen: HashMap<Rendition, Vec<u8>> = HashMap::new();
    let mut failures = 0u64;
    loop {
        for key in &cfg.renditions {
            let (angle, rung) = (&key.angle, &key.rung);
            let dir = crate::layout::rendition(&cfg.match_id, angle, rung);
            let path = crate::layout::media_playlist(&cfg.match_id, angle, rung);
            let text = match origin.get(&path).await {
                Ok(Some(text)) => text,
                Ok(None) => continue,
                Err(e) => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::warn!("{e}; following the remote angles ({failures} failures)");
                    }
                    continue;
                }
            };
            if seen.get(key) == Some(&text) {
                continue;
            }
            let latest = cfg.timeline.newest_possible(crate::timecode::UtcNs::now());
            let mut published = match published::parse_playlist(&path, &text) {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("{e}; skipped until it changes");
                    seen.insert(key.clone(), text);
                    continue;
                }
            };
            let (verified, why) =
                published::verified_prefix(&dir, &published.entries, &cfg.public_key, latest);
            if let Some(why) = why {
                tracing::error!("{why}; following {path} only up to it");
                published.entries.truncate(verified);
            }
            let want = next.get_mut(key).expect("every rendition has a next seq");
            let mut complete = true;
            for entry in &published.entries {
                if entry.seq < *want {
                    continue;
                }
                if entry.gap {
                    *want = entry.seq.next();
                    continue;
                }
                let seg_path = crate::layout::segment(&cfg.match_id, angle, rung, entry.seq);
                let signed_len = entry.signature.as_ref().map_or(0, |t| t.bytes);
                let bytes = match origin.get_limited(&seg_path, signed_len).await {
                    Ok(Some(bytes)) => bytes,
                    Ok(None) | Err(_) => {
                        complete = false;
                        break;
                    }
                };
                *want = entry.seq.next();
                let Some(segment) = published::open_segment(angle, rung, entry, bytes) else {
                    tracing::error!(
                        "{seg_path}: the bytes on the origin are not the ones its signed tag describes; \
                         not taken into this machine's windows"
                    );
                    continue;
                };
                if tx.send(Followed::Segment(segment)).is_err() {
                    return;
                }
            }
            if complete {
                seen.insert(key.clone(), text);
            }
            let update = Followed::Playlist {
                rendition: key.clone(),
                published,
            };
            if tx.send(update).is_err() {
                return;
            }
        }
        tokio::time::sleep(cfg.every).await;
    }
}
