//! `run --markers FILE`: markers (JSON lines, [`crate::package::marker::Marker`]) that
//! `swarmpack control` appends while the match runs. The file is read again from the start
//! when a run starts (a restarted run puts every marker back) and then followed once a second.

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
        let Ok(bytes) = std::fs::read(&self.path) else {
            return;
        };
        let Some(fresh) = bytes.get(self.offset..) else {
            return;
        };
        let (markers, used) = marker::read_lines(fresh);
        self.offset += used;
        for m in markers {
            if packager.add_marker(&m) {
                tracing::info!(
                    "marker {} ({}) at {}",
                    m.label,
                    m.class.as_deref().unwrap_or("no class"),
                    m.start
                );
            }
        }
    }
}
