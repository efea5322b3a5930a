//! `run --delivery FILE`: the fans' players' delivery policy changed during the match (JSON
//! lines, each a whole [`Delivery`], as `swarmpack control` writes them for
//! `PATCH /v1/matches/{id}/delivery`). A run starts with the newest (so a restarted run
//! publishes the policy in force from its first `p2p.json`) and then follows the file once a
//! second; the newest line appended that checks against the profile goes out as a new signed
//! `p2p.json`.
//!
//! May call: `package`, `profile`, `markers`.

use super::markers::appended;
use crate::package::{Input, Packager};
use crate::profile::{Delivery, Profile, delivery};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(super) struct DeliveryFeed {
    path: PathBuf,
    offset: usize,
    next_look: Instant,
}

/// The newest policy in `path` that checks against `profile`, if any.
pub(super) fn newest(path: &Path, profile: &Profile) -> Option<Delivery> {
    newest_after(path, 0, profile)?.1
}

/// Past the whole lines appended after `offset`: the new offset, and the newest policy among
/// them that checks. `None` when nothing whole was appended.
fn newest_after(
    path: &Path,
    offset: usize,
    profile: &Profile,
) -> Option<(usize, Option<Delivery>)> {
    let fresh = appended(path, offset)?;
    // Whole lines only: a line still being written is read next time.
    let end = fresh.iter().rposition(|b| *b == b'\n')?;
    let newest = fresh[..end]
        .rsplit(|b| *b == b'\n')
        .find_map(|line| checked(path, line, profile));
    Some((offset + end + 1, newest))
}

fn checked(path: &Path, line: &[u8], profile: &Profile) -> Option<Delivery> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let value: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!("{}: a line that is not JSON ({e}): skipped", path.display());
            return None;
        }
    };
    match delivery::patched(&profile.delivery, &value, &profile.segment, path) {
        Ok(d) => Some(d),
        Err(e) => {
            tracing::warn!("{e}: skipped");
            None
        }
    }
}

impl DeliveryFeed {
    pub fn new(path: PathBuf) -> DeliveryFeed {
        DeliveryFeed {
            path,
            offset: 0,
            next_look: Instant::now(),
        }
    }

    /// The newest policy appended since the last look, if any, to the packager.
    pub fn poll(&mut self, packager: &mut Packager, profile: &Profile) {
        if Instant::now() < self.next_look {
            return;
        }
        self.next_look = Instant::now() + Duration::from_secs(1);
        let Some((offset, newest)) = newest_after(&self.path, self.offset, profile) else {
            return;
        };
        let first = self.offset == 0;
        self.offset = offset;
        // The newest at start is in the profile the packager began with already.
        if let Some(d) = newest.filter(|d| !first || *d != profile.delivery) {
            tracing::info!(
                behind_live = d.behind_live,
                urgent = d.urgent,
                early_fetchers = d.early_fetchers,
                "delivery policy changed: p2p.json goes out again"
            );
            // Policies are never refused.
            let _ = packager.push(Input::Delivery(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_whole_line_that_checks_is_the_policy() {
        let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml");
        let profile = Profile::load(&demo).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("delivery.jsonl");
        let mut eight = profile.delivery.clone();
        eight.behind_live = 8.0;
        let mut nine = eight.clone();
        nine.behind_live = 9.0;
        let text = format!(
            "{}\n{{\"behind_live\": 0.1}}\nnot json\n{}",
            serde_json::to_string(&eight).unwrap(),
            serde_json::to_string(&nine).unwrap()
        );
        std::fs::write(&file, &text).unwrap();
        // The last line is not whole yet; the one out of bounds and the garbage are skipped.
        assert_eq!(newest(&file, &profile), Some(eight.clone()));
        std::fs::write(&file, format!("{text}\n")).unwrap();
        assert_eq!(newest(&file, &profile), Some(nine));
        assert_eq!(newest(&dir.path().join("none"), &profile), None);
    }
}
