//! Where packaged objects go: the publisher (spool, then origin) and the seeder's copy.
//!
//! Seed before publish: a window's torrent, its manifest and signature, and the `live.json`
//! that names it wait here until the seeder's [`Gate`] opens (the window is held complete and
//! a tracker answered, or a bounded wait ran out). Segments and media playlists never wait.
//!
//! May call: `package`, `publish`, `resume`, `seed`.

use super::{RunError, RunReport};
use crate::package::manifest::LivePointer;
use crate::package::{Object, ObjectKind};
use crate::publish::Publisher;
use crate::seed::{Gate, Seeder};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

enum Held {
    Gate(Gate),
    Object(Object),
}

pub(super) struct Outlet {
    pub publisher: Publisher,
    pub seeder: Option<Seeder>,
    /// Window documents waiting for their window's gate, in the packager's order.
    held: VecDeque<Held>,
    /// `{spool}/{match}`: where the newest window a `live.json` named is recorded.
    work_dir: PathBuf,
    /// Segments are on the origin already: a redundant run claimed each one before
    /// packaging it. They only go to the seeder.
    segments_claimed: bool,
}

/// Objects that describe a window and so wait for it to be seeded.
fn waits_for_seeder(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Torrent | ObjectKind::Manifest | ObjectKind::Pointer
    )
}

impl Outlet {
    pub fn new(
        publisher: Publisher,
        seeder: Option<Seeder>,
        work_dir: &Path,
        segments_claimed: bool,
    ) -> Outlet {
        Outlet {
            publisher,
            seeder,
            held: VecDeque::new(),
            work_dir: work_dir.to_path_buf(),
            segments_claimed,
        }
    }

    /// Hands one object to the publisher; a `live.json` also records its newest window.
    fn submit(&self, object: &Object) -> Result<(), RunError> {
        self.publisher.submit(object)?;
        if object.kind == ObjectKind::Pointer
            && object.path.ends_with("/live.json")
            && let Ok(live) = serde_json::from_slice::<LivePointer>(&object.bytes)
            && let Some(&newest) = live.windows.first()
        {
            super::resume::record_newest(&self.work_dir, newest);
        }
        Ok(())
    }

    /// Hands one object to the publisher, in the packager's order. A segment also goes
    /// into the seeding copy, and a window's torrent starts its seeding; the window's
    /// documents wait for the seeder.
    pub fn put(&mut self, object: Object, report: &mut RunReport) -> Result<(), RunError> {
        if object.kind == ObjectKind::Segment {
            report.segments += 1;
            report.bytes += object.bytes.len() as u64;
        }
        let claimed = object.kind == ObjectKind::Segment && self.segments_claimed;
        let Some(seeder) = &self.seeder else {
            if !claimed {
                self.submit(&object)?;
            }
            return Ok(());
        };
        match object.kind {
            ObjectKind::Segment => {
                if let Err(e) = seeder.stash(&object.path, &object.bytes) {
                    tracing::error!("{e}; its window will not be seeded completely");
                }
            }
            ObjectKind::Torrent => {
                if let Some(gate) = seeder.seed(&object.path, &object.bytes) {
                    self.held.push_back(Held::Gate(gate));
                }
            }
            _ => {}
        }
        if claimed {
            return Ok(());
        }
        if waits_for_seeder(object.kind) && !self.held.is_empty() {
            self.held.push_back(Held::Object(object));
            Ok(())
        } else {
            self.submit(&object)
        }
    }

    /// Publishes the held documents whose gates have opened.
    pub fn release(&mut self) -> Result<(), RunError> {
        while let Some(front) = self.held.front_mut() {
            if let Held::Gate(gate) = front {
                let Some(ready) = gate.poll() else {
                    return Ok(());
                };
                tracing::debug!(
                    "window {}: seeder ready (complete {}, tracker answered {}); publishing its torrent and manifest",
                    gate.window,
                    ready.complete,
                    ready.announced
                );
            }
            if let Some(Held::Object(object)) = self.held.pop_front() {
                self.submit(&object)?;
            }
        }
        Ok(())
    }

    /// The end of the match: publishes what waits for the seeder (each gate is bounded),
    /// waits for the spool to drain, then stops seeding.
    pub fn close(mut self, drain_timeout: Duration) -> Result<(), RunError> {
        let started = Instant::now();
        while !self.held.is_empty() {
            self.release()?;
            if started.elapsed() > Duration::from_secs(30) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let drained = self.publisher.finish(drain_timeout);
        if let Some(seeder) = self.seeder {
            seeder.stop(Duration::from_secs(5));
        }
        Ok(drained?)
    }
}
