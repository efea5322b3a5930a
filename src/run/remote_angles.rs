//! Angle groups (`run --remote-angle`), the I/O half: the other machines' playlists and
//! segments, followed on the origin, go into the packager (and the seeder's copy), and the
//! packager's questions about what a window chains to ([`Output::AskChain`]) are read from
//! the origin. When to give a rendition up and when a window closes is the packager's
//! ([`crate::package`]'s `window_close`).
//!
//! May call: `layout`, `package`, `publish`, `seed`, `timecode`.

use crate::package::{Held, Input, Packager, chain};
use crate::publish::follow::{FollowConfig, Followed, Follower};
use crate::publish::{Origin, OriginError};
use crate::rendition::Rendition;
use crate::seed::Seeder;
use crate::timecode::{Seq, UtcNs};
use std::collections::HashMap;
use std::time::Duration;

type Answer = Result<Held, OriginError>;

pub(super) struct Remote {
    follower: Follower,
    origin: Origin,
    rt: tokio::runtime::Handle,
    match_id: String,
    public_key: Vec<u8>,
    /// The newest seq each remote rendition delivered.
    delivered: HashMap<Rendition, Seq>,
    renditions: usize,
    /// Questions on their way to the origin, by window.
    asked: Vec<(u64, crossbeam_channel::Receiver<Answer>)>,
}

impl Remote {
    pub fn start(rt: &tokio::runtime::Handle, origin: Origin, config: FollowConfig) -> Remote {
        Remote {
            renditions: config.renditions.len(),
            match_id: config.match_id.clone(),
            public_key: config.public_key.clone(),
            follower: Follower::start(rt, origin.clone(), config),
            origin,
            rt: rt.clone(),
            delivered: HashMap::new(),
            asked: Vec::new(),
        }
    }

    /// Pushes what the follower brought (into the seeder's copy too) and the origin's
    /// answers into the packager.
    pub fn poll(&mut self, packager: &mut Packager, seeder: Option<&Seeder>) {
        for followed in self.follower.ready() {
            let input = match followed {
                Followed::Playlist {
                    rendition,
                    published,
                } => Input::RemotePlaylist {
                    rendition,
                    published,
                },
                Followed::Segment(segment) => {
                    let key = Rendition::new(segment.angle.clone(), segment.rung.clone());
                    let newest = self.delivered.entry(key).or_insert(segment.seq);
                    *newest = (*newest).max(segment.seq);
                    if let Some(seeder) = seeder {
                        let path = crate::layout::segment(
                            packager.match_id(),
                            &segment.angle,
                            &segment.rung,
                            segment.seq,
                        );
                        if let Err(e) = seeder.stash(&path, &segment.bytes) {
                            tracing::error!("{e}; its window will not be seeded completely");
                        }
                    }
                    Input::RemoteSegment(segment)
                }
            };
            // Remote inputs are never refused.
            let _ = packager.push(input);
        }
        let mut i = 0;
        while i < self.asked.len() {
            let answer = match self.asked[i].1.try_recv() {
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    i += 1;
                    continue;
                }
                Ok(answer) => answer.map_err(|e| e.to_string()),
                // The question was lost (the runtime is stopping): asked again later.
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    Err("the question to the origin was dropped".to_string())
                }
            };
            let (window, _) = self.asked.swap_remove(i);
            let _ = packager.push(Input::ChainAnswer { window, answer });
        }
    }

    /// Whether a remote rendition has not delivered seq `last` yet.
    pub fn behind(&self, last: Seq) -> bool {
        self.delivered.len() < self.renditions || self.delivered.values().any(|s| *s < last)
    }

    /// Reads the manifests of window `w` and of the window before from the origin (on the
    /// I/O runtime); the answer goes in at a later [`Remote::poll`].
    pub fn ask(&mut self, w: u64) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let (origin, match_id, public_key) = (
            self.origin.clone(),
            self.match_id.clone(),
            self.public_key.clone(),
        );
        self.rt.spawn(async move {
            let answer = async {
                let mut held = Held {
                    composed: held_manifest(&origin, &match_id, w, &public_key).await?,
                    ..Held::default()
                };
                if held.composed.is_none() {
                    held.prev = held_manifest(&origin, &match_id, w - 1, &public_key).await?;
                }
                if held.composed.is_none() && held.prev.is_none() {
                    held.newest = newest_window(&origin, &match_id, &public_key).await?;
                }
                Ok(held)
            };
            let _ = tx.send(answer.await);
        });
        self.asked.push((w, rx));
    }
}

/// The newest window the origin's `live.json` names (signed with the match's key), and the
/// SHA-256 of its manifest.
async fn newest_window(
    origin: &Origin,
    match_id: &str,
    public_key: &[u8],
) -> Result<Option<(u64, String)>, OriginError> {
    let path = crate::layout::live(match_id);
    let Some((live, sig)) = origin.get_signed(&path).await? else {
        return Ok(None);
    };
    Ok(
        crate::package::published::parse_pointer(&path, match_id, &live, &sig, public_key)
            .ok()
            .and_then(|p| Some((*p.windows.first()?, p.newest_manifest_sha256))),
    )
}

/// Window `w`'s manifest on the origin, if its signature verifies with the match's key:
/// its SHA-256 (hex).
async fn held_manifest(
    origin: &Origin,
    match_id: &str,
    w: u64,
    public_key: &[u8],
) -> Result<Option<String>, OriginError> {
    let path = crate::layout::window_manifest(match_id, w);
    let Some((file, sig)) = origin.get_signed(&path).await? else {
        return Ok(None);
    };
    let link = chain::Link {
        window: w,
        sha256: crate::package::manifest::sha256_hex(&file),
    };
    match chain::check(match_id, &link, &file, &sig, public_key) {
        Ok(_) => Ok(Some(link.sha256)),
        Err(e) => {
            // Its signature may not be there yet (the manifest goes up first); asked again.
            tracing::debug!("{path}: {e}");
            Ok(None)
        }
    }
}

/// Angle groups: follows the remote angles' renditions on the origin, from the first seq of
/// the window this run starts in (or of the oldest window it continues).
pub(super) fn follow(
    cfg: &super::RunConfig,
    rt: &tokio::runtime::Runtime,
    anchor: UtcNs,
    continued: Option<Seq>,
) -> Option<Remote> {
    if cfg.remote_angles.is_empty() {
        return None;
    }
    let timeline = cfg.profile.timeline();
    let config = crate::publish::follow::FollowConfig {
        match_id: cfg.match_id.to_string(),
        renditions: Rendition::all(&cfg.remote_angles, &cfg.profile.rungs).collect(),
        from: timeline
            .window_seqs(timeline.window_of(
                continued.map_or(timeline.seq_at(anchor), |c| c.min(timeline.seq_at(anchor))),
            ))
            .0,
        public_key: cfg.keys.public_key(),
        every: (Duration::from_nanos(timeline.segment_ns()) / 4).max(Duration::from_millis(250)),
        timeline,
    };
    tracing::info!(
        "angle group: following {} on the origin for this match's windows",
        cfg.remote_angles.join(", ")
    );
    Some(Remote::start(rt.handle(), cfg.origin.clone(), config))
}
