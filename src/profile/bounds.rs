//! Limits on a profile as a whole, so no profile makes a match hold gigabytes in memory or
//! re-upload a huge playlist with every segment. Each field is also checked on its own in
//! `profile.rs`; these are the products of fields.
//!
//! May call: its parent room (`profile`) only.

use super::{Checker, ProfileError, Rung, SegmentConfig};

/// Bytes of one window, per angle, kept in memory until the window closes (its segments are
/// hashed into the torrent and listed in the manifest then).
pub const MAX_WINDOW_BYTES: u64 = 256 * 1024 * 1024;
/// Segments in a live playlist: with its tags, about 350 bytes each, so about 1 MB, and the
/// playlist is uploaded again with every segment.
pub const MAX_DVR_SEGMENTS: u64 = 3000;

impl Checker<'_> {
    pub(super) fn bounds(&self, seg: &SegmentConfig, rungs: &[Rung]) -> Result<(), ProfileError> {
        let kbps: u64 = rungs
            .iter()
            .map(|r| r.video_kbps as u64 + r.audio_kbps as u64)
            .sum();
        // kbit/s × ms / 8 = bytes.
        let per_segment = kbps * seg.duration_ms / 8;
        let window_bytes = per_segment.saturating_mul(seg.window);
        if window_bytes > MAX_WINDOW_BYTES {
            let most = (MAX_WINDOW_BYTES / per_segment.max(1)).max(1);
            return Err(self.invalid(
                "segment.window",
                &format!(
                    "at most {most} segments with this ladder ({} MiB of every rung per window and angle is \
                     held in memory until the window closes; the limit is {} MiB)",
                    window_bytes / (1024 * 1024),
                    MAX_WINDOW_BYTES / (1024 * 1024)
                ),
                seg.window,
            ));
        }
        let dvr_segments = seg.dvr_segments() as u64;
        if dvr_segments > MAX_DVR_SEGMENTS {
            let most = MAX_DVR_SEGMENTS * seg.duration_ms / 1000;
            return Err(self.invalid(
                "segment.dvr",
                &format!(
                    "at most {most} s with {} s segments ({MAX_DVR_SEGMENTS} segments: a live playlist \
                     of about 1 MB, uploaded again with every segment)",
                    seg.duration_ms as f64 / 1000.0
                ),
                seg.dvr_secs,
            ));
        }
        Ok(())
    }
}
