//! Angle groups (`run --remote-angle`): the other machines' segments, followed on the origin,
//! enter this run's windows, and each window closes chained to what the origin holds.
//!
//! - A remote rendition whose playlist has been seen on the origin is waited for until a
//!   window is [`GRACE`] overdue; then that window closes without it and its playlist goes on
//!   as a marked gap. One never seen (its machine has not started) is waited for only
//!   briefly, long enough for a machine that started in the window to show up.
//! - Before a window closes, the origin is asked for the previous window's manifest (signed
//!   with the match's key): whoever composed it, the new window chains to it. If the origin
//!   does not hold it yet, the window waits: for this machine's own (on its way out), or for
//!   a while for another machine's.

use crate::package::{Packager, chain, segment_path};
use crate::publish::follow::{FollowConfig, Followed, Follower};
use crate::publish::{Origin, OriginError};
use crate::seed::Seeder;
use crate::timecode::{Seq, Timeline, UtcNs};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// What the origin holds, for a window about to close: manifests (SHA-256 hex) signed with
/// the match's key.
#[derive(Default)]
struct Held {
    /// The window's own: another machine composed it first.
    composed: Option<String>,
    /// The window before.
    prev: Option<String>,
    /// When it holds neither: the newest window `live.json` names, and its manifest.
    newest: Option<(u64, String)>,
}

type Answer = Result<Held, OriginError>;

struct Query {
    window: u64,
    since: Instant,
    next_try: Instant,
    answer: Option<crossbeam_channel::Receiver<Answer>>,
}

pub(super) struct Remote {
    follower: Follower,
    origin: Origin,
    rt: tokio::runtime::Handle,
    match_id: String,
    public_key: Vec<u8>,
    timeline: Timeline,
    /// The newest seq each remote rendition delivered.
    delivered: HashMap<(String, String), Seq>,
    /// Remote renditions whose playlist is on the origin.
    seen: HashSet<(String, String)>,
    renditions: usize,
    query: Option<Query>,
}

/// How long a window waits past its end for a remote rendition that is live: three segments
/// and 2 s, ample for a live machine to publish and for the follower to read it.
pub fn grace(timeline: &Timeline) -> Duration {
    3 * Duration::from_nanos(timeline.segment_ns()) + Duration::from_secs(2)
}

/// How long it waits for one never seen: a segment and 1.5 s, so that a machine that started
/// in the window has listed its first segment.
fn unseen_grace(timeline: &Timeline) -> Duration {
    Duration::from_nanos(timeline.segment_ns()) + Duration::from_millis(1500)
}

impl Remote {
    pub fn start(
        rt: &tokio::runtime::Handle,
        origin: Origin,
        config: FollowConfig,
        timeline: Timeline,
    ) -> Remote {
        Remote {
            renditions: config.renditions.len(),
            match_id: config.match_id.clone(),
            public_key: config.public_key.clone(),
            follower: Follower::start(rt, origin.clone(), config),
            origin,
            rt: rt.clone(),
            timeline,
            delivered: HashMap::new(),
            seen: HashSet::new(),
            query: None,
        }
    }

    /// Takes what the follower brought into the packager (and the seeder's copy), gives up
    /// remote renditions on overdue windows, and closes the windows that are ready.
    pub fn poll(&mut self, packager: &mut Packager, seeder: Option<&Seeder>, now: UtcNs) {
        self.take(packager, seeder);
        let cutoff = |grace: Duration| {
            self.timeline
                .seq_at(UtcNs(now.0.saturating_sub(grace.as_nanos() as u64)))
        };
        let (seen_cutoff, unseen_cutoff) = (
            cutoff(grace(&self.timeline)),
            cutoff(unseen_grace(&self.timeline)),
        );
        let seen = &self.seen;
        packager.give_up_remote(&|angle, rung| {
            if seen.contains(&(angle.to_string(), rung.to_string())) {
                seen_cutoff
            } else {
                unseen_cutoff
            }
        });
        self.close_ready(packager);
    }

    fn take(&mut self, packager: &mut Packager, seeder: Option<&Seeder>) {
        for followed in self.follower.ready() {
            match followed {
                Followed::Playlist {
                    angle,
                    rung,
                    published,
                } => {
                    self.seen.insert((angle.clone(), rung.clone()));
                    packager.remote_playlist(&angle, &rung, published);
                }
                Followed::Segment(segment) => {
                    let key = (segment.angle.clone(), segment.rung.clone());
                    let newest = self.delivered.entry(key).or_insert(segment.seq);
                    *newest = (*newest).max(segment.seq);
                    if let Some(seeder) = seeder {
                        let path = segment_path(
                            packager.match_id(),
                            &segment.angle,
                            &segment.rung,
                            segment.seq,
                        );
                        if let Err(e) = seeder.stash(&path, &segment.bytes) {
                            tracing::error!("{e}; its window will not be seeded completely");
                        }
                    }
                    packager.add_remote_segment(segment);
                }
            }
        }
    }

    /// Closes ready windows, each chained to the origin's manifest of the window before.
    fn close_ready(&mut self, packager: &mut Packager) {
        while let Some(w) = packager.ready_window() {
            let Some(prev) = w.checked_sub(1) else {
                packager.close_window(w);
                continue;
            };
            // Asked afresh for each window: whether another machine composed it, else what
            // the window before is on the origin.
            let now = Instant::now();
            let query = match &mut self.query {
                Some(q) if q.window == w => q,
                _ => self.query.insert(Query {
                    window: w,
                    since: now,
                    next_try: now,
                    answer: None,
                }),
            };
            let answer = match &query.answer {
                Some(rx) => match rx.try_recv() {
                    Ok(answer) => {
                        query.answer = None;
                        answer
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => return,
                    // The question was lost (the runtime is stopping): asked again later.
                    Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        query.answer = None;
                        query.next_try = now + Duration::from_secs(1);
                        return;
                    }
                },
                None if now >= query.next_try => {
                    query.answer = Some(ask(
                        &self.rt,
                        &self.origin,
                        &self.match_id,
                        &self.public_key,
                        w,
                    ));
                    return;
                }
                None => return,
            };
            match answer {
                Ok(Held {
                    composed: Some(composed),
                    ..
                }) => {
                    tracing::debug!(
                        "window {w}: another machine composed it first; taken as it is"
                    );
                    self.query = None;
                    packager.take_over_window(w, composed);
                    continue;
                }
                Ok(Held {
                    prev: Some(sha256), ..
                }) => packager.adopt_window(prev, sha256),
                Ok(_) if packager.closed_window(prev) => {
                    // This machine's own, still on its way to the origin.
                    query.next_try = now + Duration::from_millis(250);
                    return;
                }
                Ok(_) if now - query.since < grace(&self.timeline) * 2 => {
                    query.next_try = now + Duration::from_millis(250);
                    return;
                }
                Ok(Held { newest, .. }) => {
                    tracing::info!(
                        "window {w}: no machine composed window {prev}; chaining to the origin's newest ({})",
                        newest
                            .as_ref()
                            .map_or("none: a new chain".to_string(), |(n, _)| format!(
                                "window {n}"
                            ))
                    );
                    if let Some((n, sha256)) = newest.filter(|(n, _)| *n < w) {
                        packager.adopt_window(n, sha256);
                    }
                }
                Err(e) => {
                    tracing::warn!("{e}; window {w} waits to learn what it chains to");
                    query.next_try = now + Duration::from_secs(1);
                    return;
                }
            }
            self.query = None;
            packager.close_window(w);
        }
    }

    /// The end of the match at `last`: waits (up to the grace) for every remote rendition to
    /// deliver it and for the open windows to close as the other machines close them; what is
    /// still missing then is given up.
    pub fn finish(&mut self, packager: &mut Packager, seeder: Option<&Seeder>, last: Seq) {
        let deadline = Instant::now() + grace(&self.timeline);
        while Instant::now() < deadline {
            self.take(packager, seeder);
            let behind = self.delivered.len() < self.renditions
                || self.delivered.values().any(|s| *s < last);
            if !behind {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        packager.give_up_remote_at_end(last);
        let deadline = Instant::now() + grace(&self.timeline) * 2;
        while packager.ready_window().is_some() && Instant::now() < deadline {
            self.close_ready(packager);
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Reads the manifests of window `w` and of the window before from the origin (on the I/O
/// runtime).
fn ask(
    rt: &tokio::runtime::Handle,
    origin: &Origin,
    match_id: &str,
    public_key: &[u8],
    w: u64,
) -> crossbeam_channel::Receiver<Answer> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (origin, match_id, public_key) =
        (origin.clone(), match_id.to_string(), public_key.to_vec());
    rt.spawn(async move {
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
    rx
}

/// The newest window the origin's `live.json` names (signed with the match's key), and the
/// SHA-256 of its manifest.
async fn newest_window(
    origin: &Origin,
    match_id: &str,
    public_key: &[u8],
) -> Result<Option<(u64, String)>, OriginError> {
    let path = format!("{match_id}/live.json");
    let Some((live, sig)) = origin.get_signed(&path).await? else {
        return Ok(None);
    };
    Ok(
        crate::package::resume::parse_pointer(&path, match_id, &live, &sig, public_key)
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
    let path = format!("{match_id}/windows/{w}.json");
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
        match_id: cfg.match_id.clone(),
        renditions: cfg
            .remote_angles
            .iter()
            .flat_map(|a| {
                cfg.profile
                    .rungs
                    .iter()
                    .map(|r| (a.clone(), r.name.clone()))
            })
            .collect(),
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
    Some(Remote::start(
        rt.handle(),
        cfg.origin.clone(),
        config,
        timeline,
    ))
}
