//! Continuing what an earlier run of this match published (after a crash or a stop), and
//! the spool's record of the newest window it published, which a restart checks the origin
//! against.
//!
//! May call: `layout`, `package`, `private_fs`, `publish`, `seed`.

use super::{RunConfig, RunError};
use crate::package::Packager;
use crate::publish::Publisher;
use crate::publish::match_state::ResumeLoadError;
use crate::rendition::Rendition;
use crate::seed::Seeder;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `{spool}/{match}/newest-window`: the newest window a `live.json` from this spool named.
fn record_path(work_dir: &Path) -> PathBuf {
    work_dir.join("newest-window")
}

/// Records that a `live.json` naming `window` as the newest went to the spool.
pub(super) fn record_newest(work_dir: &Path, window: u64) {
    let path = record_path(work_dir);
    if let Err(e) = crate::private_fs::write_atomic(&path, window.to_string().as_bytes()) {
        tracing::warn!(
            "{}: {e}; a restart cannot check the origin for a rollback",
            path.display()
        );
    }
}

fn recorded_newest(work_dir: &Path) -> Option<u64> {
    std::fs::read_to_string(record_path(work_dir))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Continues what an earlier run of this match published (after a crash or a stop): its
/// playlists, its hash chain, the segments of its unclosed window. Leftovers in the spool go
/// up first, so the origin is complete before it is read. A redundant run joining another
/// (`seeder` given) also copies the unclosed window's segments for its seeder.
pub(super) fn resume(
    cfg: &RunConfig,
    rt: &tokio::runtime::Runtime,
    (publisher, seeder): (&Publisher, Option<&Seeder>),
    angles: &[String],
    packager: &mut Packager,
    work_dir: &Path,
) -> Result<(), RunError> {
    if let Err(e) = publisher.flush(cfg.drain_timeout) {
        tracing::error!("{e}");
    }
    let renditions: Vec<Rendition> = Rendition::all(angles, &cfg.profile.rungs).collect();
    let timeline = cfg.profile.timeline();
    let public_key = cfg.keys.public_key();
    // Once this spool has published a window, an unreachable origin is waited for (up to
    // --drain-timeout), never taken as "nothing published": starting afresh would fork the
    // match's hash chain.
    let started = Instant::now();
    let state = loop {
        let loaded = rt.block_on(crate::publish::match_state::load(
            &cfg.origin,
            &cfg.match_id,
            &renditions,
            &public_key,
            &timeline,
        ));
        match loaded {
            Ok(state) => break state,
            Err(ResumeLoadError::Resume(e)) => return Err(e.into()),
            // No chain from this spool yet: nothing can fork; go on air and spool.
            Err(ResumeLoadError::Origin(e)) if recorded_newest(work_dir).is_none() => {
                tracing::warn!(
                    "{e}; this spool has not published a window of match {} yet, so the match starts \
                     and its objects wait in the spool",
                    cfg.match_id
                );
                return Ok(());
            }
            Err(ResumeLoadError::Origin(e)) if started.elapsed() < cfg.drain_timeout => {
                tracing::warn!("{e}; the match's earlier state is needed first: retrying in 2 s");
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(ResumeLoadError::Origin(e)) => {
                return Err(RunError::OriginUnreachable {
                    origin: cfg.origin.describe().to_string(),
                    waited: started.elapsed(),
                    message: e.to_string(),
                });
            }
        }
    };
    // The origin must not be behind what this spool published (after the flush above, it
    // holds everything the spool did): an older live.json there is a rollback.
    if let (Some(found), Some(recorded)) = (state.newest_closed(), recorded_newest(work_dir))
        && found < recorded
    {
        return Err(RunError::Rollback {
            path: crate::layout::live(&cfg.match_id),
            found,
            recorded,
        });
    }
    if state.is_empty() {
        return Ok(());
    }
    let last_seq = state
        .playlists
        .iter()
        .filter_map(|(_, _, p)| p.entries.last().map(|e| e.seq))
        .max();
    tracing::warn!(
        "{} match {}: {} playlist(s) up to seq {}, {} published window(s) up to {}, {} segment(s) of an unclosed window; \
         the next segments follow {}",
        if cfg.redundant {
            "joining"
        } else {
            "continuing"
        },
        cfg.match_id,
        state.playlists.len(),
        last_seq.map_or("-".to_string(), |s| s.to_string()),
        state.closed.len(),
        state
            .newest_closed()
            .map_or("-".to_string(), |w| w.to_string()),
        state.open_segments.len(),
        if cfg.redundant {
            "on from the newest listed one (a discontinuity only where seqs are missing)"
        } else {
            "a discontinuity"
        },
    );
    if let Some(seeder) = seeder {
        for s in &state.open_segments {
            let path = crate::layout::segment(&cfg.match_id, &s.angle, &s.rung, s.seq);
            if let Err(e) = seeder.stash(&path, &s.bytes) {
                tracing::error!("{e}; its window will not be seeded completely");
            }
        }
    }
    // Never refused.
    let _ = packager.push(crate::package::Input::Resume(state));
    Ok(())
}
