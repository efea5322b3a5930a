//! `run --markers FILE`: markers (JSON lines, [`crate::package::marker::Marker`]) that
//! `swarmpack control` appends while the match runs. The file is read again from the start
//! when a run starts (a restarted run puts every marker back) and then followed once a second,
//! reading only what was appended. A marker more than ten minutes ahead of the wall clock is
//! dropped (logged): it names no segment a live playlist will hold soon.
//!
//! May call: `package`, `timecode`.

use crate::package::Input;
use crate::package::Packager;
use crate::package::marker;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub(super) struct MarkerFeed {
    path: PathBuf,
    offset: usize,
    next_look: Instant,
}

impl MarkerFeed {
    pub fn new(path: PathBuf) -> MarkerFeed {
        MarkerFeed {
            path,
            offset: 0,
            next_look: Instant::now(),
        }
    }

    /// New markers go to the packager (from the playlists' next update).
    pub fn poll(&mut self, packager: &mut Packager) {
        if Instant::now() < self.next_look {
            return;
        }
        self.next_look = Instant::now() + Duration::from_secs(1);
        let Some(fresh) = appended(&self.path, self.offset) else {
            return;
        };
        let (markers, used) = marker::read_lines(&fresh);
        self.offset += used;
        let now = crate::timecode::UtcNs::now();
        for m in markers {
            if m.too_far_ahead(now) {
                tracing::warn!(
                    "marker {} starts at {}, more than 10 minutes from now: dropped",
                    m.label,
                    m.start
                );
                continue;
            }
            // Markers are never refused.
            let _ = packager.push(Input::Marker(m));
        }
    }
}

/// What `path` holds after `offset` bytes (None when it cannot be read, or is shorter).
pub(super) fn appended(path: &std::path::Path, offset: usize) -> Option<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).ok()?;
    if f.metadata().ok()?.len() < offset as u64 {
        return None;
    }
    f.seek(SeekFrom::Start(offset as u64)).ok()?;
    let mut rest = Vec::new();
    f.take(1 << 20).read_to_end(&mut rest).ok()?;
    Some(rest)
}
