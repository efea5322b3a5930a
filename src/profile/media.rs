//! `[video]` and `[audio]` tables: what is done to every angle's picture and sound once,
//! before the ladder (the deinterlacing method, loudness normalisation).
//!
//! May call: its parent room (`profile`) only.

use super::{Checker, ProfileError};
use serde::Deserialize;

/// GStreamer `deinterlace` methods offered in profiles, the default first. greedyh is motion
/// adaptive (still areas keep both fields' detail, moving areas are interpolated from one
/// field, so fast play does not comb); the others are cheaper or softer.
pub const DEINTERLACE_METHODS: &[&str] = &["greedyh", "greedyl", "tomsmocomp", "vfir", "linear"];

/// Loudness targets `[audio] loudness` accepts, in LUFS (the range of `audioloudnorm`).
pub const LOUDNESS_RANGE: (f64, f64) = (-70.0, -5.0);

/// `[video]`: processing of each angle's picture before the ladder.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoConfig {
    /// The `deinterlace` element's method for interlaced feeds (progressive ones pass
    /// through untouched).
    pub deinterlace: String,
}

impl Default for VideoConfig {
    fn default() -> Self {
        VideoConfig {
            deinterlace: DEINTERLACE_METHODS[0].to_string(),
        }
    }
}

/// `[audio]`: processing of each angle's sound before the AAC encodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudioConfig {
    /// EBU R128 / ATSC A/85 integrated loudness target in LUFS (-23 EBU, -24 ATSC), or
    /// `None` to leave the feed's loudness alone.
    pub loudness: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawVideo {
    deinterlace: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAudio {
    loudness: Option<f64>,
}

impl Checker<'_> {
    pub(super) fn video(&self, raw: &RawVideo) -> Result<VideoConfig, ProfileError> {
        let deinterlace = match &raw.deinterlace {
            Some(m) => self.one_of("video.deinterlace", m, DEINTERLACE_METHODS)?,
            None => DEINTERLACE_METHODS[0].to_string(),
        };
        Ok(VideoConfig { deinterlace })
    }

    pub(super) fn audio(&self, raw: &RawAudio) -> Result<AudioConfig, ProfileError> {
        let (lo, hi) = LOUDNESS_RANGE;
        match raw.loudness {
            Some(l) if !(lo..=hi).contains(&l) => Err(self.invalid(
                "audio.loudness",
                &format!(
                    "a loudness target in LUFS from {lo} to {hi} (EBU R128: -23, ATSC A/85: -24)"
                ),
                l,
            )),
            loudness => Ok(AudioConfig { loudness }),
        }
    }
}
