//! Match profiles: the TOML file that picks the segment grid and the bitrate ladder.
//!
//! Parsing is strict: an unknown key is an error (a typo such as `video_kpbs` must not
//! silently fall back to a default on match day), and every value is range-checked. Each
//! error names the file, the field and what was expected, so the operator can fix it
//! without reading the source.
//!
//! May call: `timecode`.

use crate::timecode::Timeline;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Why a profile was refused. All variants are "bad input" (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{file}: cannot read the profile: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{file}: field `{field}`: expected {expected}, found {found}")]
    Invalid {
        file: PathBuf,
        field: String,
        expected: String,
        found: String,
    },
}

/// x264 speed presets, fastest first.
pub const X264_PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];
/// x264 tunings that make sense for live sport.
pub const X264_TUNES: &[&str] = &[
    "film",
    "animation",
    "grain",
    "stillimage",
    "fastdecode",
    "zerolatency",
];
/// H.264 profiles swarmpack can ask x264 for.
pub const H264_PROFILES: &[&str] = &["baseline", "main", "high"];

/// A validated profile.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    pub name: String,
    pub segment: SegmentConfig,
    /// The ladder, highest first.
    pub rungs: Vec<Rung>,
    pub encoder: EncoderConfig,
    pub encryption: EncryptionConfig,
    pub origin: OriginConfig,
    /// BitTorrent trackers (`http(s)://`, `udp://`): in every torrent and magnet, announced by
    /// the seeder.
    pub trackers: Vec<Tracker>,
    /// WebTorrent trackers (`ws(s)://`): signalling for the fans' browsers only
    /// (published in `{match}/p2p.json`; never in a torrent, which libtorrent could not use).
    pub webrtc_trackers: Vec<String>,
    /// STUN and TURN servers for the fans' browsers (published in the signed `p2p.json`).
    pub ice_servers: Vec<IceServer>,
    /// The fans' player's policy (published in the signed `p2p.json`).
    pub delivery: Delivery,
    /// `[qoe]`: where players report what fans experience.
    pub qoe: Qoe,
    /// `[control]`: placement on a pool of machines (`control --cluster`).
    pub control: Control,
    pub seed: SeedConfig,
    pub video: VideoConfig,
    pub audio: AudioConfig,
}

/// The segment grid.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SegmentConfig {
    /// Segment duration in milliseconds (1000..=6000).
    pub duration_ms: u64,
    /// Segments per window (one manifest, one torrent, one content key).
    pub window: u64,
    /// Seconds of media kept in the live playlists.
    pub dvr_secs: f64,
}

impl SegmentConfig {
    pub fn timeline(&self) -> Timeline {
        Timeline::new(self.duration_ms, self.window)
    }

    /// Segment duration in seconds.
    pub fn duration_secs(&self) -> f64 {
        self.duration_ms as f64 / 1000.0
    }

    /// How many segments the live playlists keep.
    pub fn dvr_segments(&self) -> usize {
        ((self.dvr_secs * 1000.0) / self.duration_ms as f64).ceil() as usize
    }
}

/// One rung of the ladder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Frames per second: whole, or an NTSC rate (29.97 = 30000/1001).
    pub fps: FrameRate,
    pub video_kbps: u32,
    pub audio_kbps: u32,
}

impl Rung {
    /// Peak bandwidth for the HLS BANDWIDTH attribute, in bits per second: the nominal
    /// bitrates plus 10% for MPEG-TS overhead and VBV headroom.
    pub fn bandwidth_bps(&self) -> u64 {
        (self.video_kbps as u64 + self.audio_kbps as u64) * 1100
    }

    /// Frames per segment at this rung's frame rate (whole: the profile checks it).
    pub fn frames_per_segment(&self, segment_ms: u64) -> u64 {
        self.fps
            .frames_in(segment_ms)
            .unwrap_or(segment_ms * self.fps.num as u64 / (1000 * self.fps.den as u64))
    }
}

/// Encoder settings shared by every rung.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncoderConfig {
    pub codec: String,
    pub preset: String,
    pub tune: Option<String>,
    /// H.264 profile: baseline, main or high.
    pub profile: String,
    /// x264 threads per encoder; 0 lets x264 decide.
    pub threads: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionConfig {
    /// Playlists point at `{key_uri_base}/{match}/{period}`.
    pub key_uri_base: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginConfig {
    /// Where viewers read the origin (BEP 19 web seed, absolute links). Ends with `/`.
    pub public_url: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracker {
    pub announce: String,
    /// torrust-tracker style whitelist API: each window's infohash is registered with
    /// `POST {whitelist_api}/{infohash}` before it is announced.
    pub whitelist_api: Option<String>,
    /// The environment variable holding that API's token (secrets stay out of profiles).
    pub whitelist_token_env: Option<String>,
}

/// The in-process seeder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedConfig {
    pub enabled: bool,
    /// Where peers connect (TCP). Port 0 picks a free port.
    pub listen: std::net::SocketAddr,
    /// Also announce on the mainline DHT.
    pub dht: bool,
}

impl Default for SeedConfig {
    fn default() -> Self {
        SeedConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], 6881)),
            dht: false,
        }
    }
}

// ---- the file as written (serde) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    segment: RawSegment,
    #[serde(default)]
    rung: Vec<RawRung>,
    #[serde(default)]
    encoder: RawEncoder,
    encryption: Option<RawEncryption>,
    origin: Option<RawOrigin>,
    #[serde(default)]
    tracker: Vec<RawTracker>,
    #[serde(default)]
    ice_server: Vec<ice::RawIceServer>,
    delivery: Option<delivery::RawDelivery>,
    qoe: Option<qoe::RawQoe>,
    control: Option<control::RawControl>,
    seed: Option<RawSeed>,
    #[serde(default)]
    video: media::RawVideo,
    #[serde(default)]
    audio: media::RawAudio,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSegment {
    duration: f64,
    window: i64,
    dvr: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRung {
    name: String,
    width: i64,
    height: i64,
    fps: toml::Value,
    video_kbps: i64,
    audio_kbps: i64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEncoder {
    codec: Option<String>,
    preset: Option<String>,
    tune: Option<String>,
    profile: Option<String>,
    threads: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEncryption {
    key_uri_base: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrigin {
    public_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTracker {
    announce: String,
    whitelist_api: Option<String>,
    whitelist_token_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeed {
    enabled: Option<bool>,
    listen: Option<String>,
    dht: Option<bool>,
}

/// Default key URI base (the contract's example key server on loopback).
pub const DEFAULT_KEY_URI_BASE: &str = "http://127.0.0.1:8081/keys";
/// Default public origin URL (the contract's example origin on loopback).
pub const DEFAULT_PUBLIC_URL: &str = "http://127.0.0.1:8080/";

impl Profile {
    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&text, path)
    }

    /// Parses and validates profile text; `file` is only used in error messages.
    pub fn parse(text: &str, file: &Path) -> Result<Profile, ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            file: file.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Checker { file }.profile(raw)
    }

    pub fn timeline(&self) -> Timeline {
        self.segment.timeline()
    }
}

/// Checks every field and builds the error that names it.
struct Checker<'a> {
    file: &'a Path,
}

impl Checker<'_> {
    fn invalid(
        &self,
        field: impl Into<String>,
        expected: &str,
        found: impl ToString,
    ) -> ProfileError {
        ProfileError::Invalid {
            file: self.file.to_path_buf(),
            field: field.into(),
            expected: expected.to_string(),
            found: found.to_string(),
        }
    }

    fn int_in(&self, field: &str, v: i64, lo: i64, hi: i64) -> Result<u32, ProfileError> {
        if (lo..=hi).contains(&v) {
            Ok(v as u32)
        } else {
            Err(self.invalid(field, &format!("a whole number from {lo} to {hi}"), v))
        }
    }

    fn one_of(&self, field: &str, v: &str, allowed: &[&str]) -> Result<String, ProfileError> {
        if allowed.contains(&v) {
            Ok(v.to_string())
        } else {
            Err(self.invalid(
                field,
                &format!("one of {}", allowed.join(", ")),
                format!("{v:?}"),
            ))
        }
    }

    fn url(&self, field: &str, v: &str, schemes: &[&str]) -> Result<url::Url, ProfileError> {
        let expected = format!("an absolute URL with scheme {}", schemes.join(" or "));
        // Pasted into playlists as written: a quote, a control character or white space
        // would end the attribute or the line and inject tags.
        if let Some(c) = v
            .chars()
            .find(|c| *c == '"' || c.is_control() || c.is_whitespace())
        {
            return Err(self.invalid(
                field,
                &format!("{expected}, without quotes, white space or control characters"),
                format!("{v:?} (it has {c:?})"),
            ));
        }
        match url::Url::parse(v) {
            Ok(u) if schemes.contains(&u.scheme()) && u.host_str().is_some() => Ok(u),
            _ => Err(self.invalid(field, &expected, format!("{v:?}"))),
        }
    }

    fn profile(&self, raw: RawProfile) -> Result<Profile, ProfileError> {
        if !is_path_safe_name(&raw.name) {
            return Err(self.invalid("name", NAME_RULE, format!("{:?}", raw.name)));
        }
        let segment = self.segment(&raw.segment)?;
        if raw.rung.is_empty() {
            return Err(self.invalid("rung", "at least one [[rung]] table", "none"));
        }
        let mut rungs = Vec::with_capacity(raw.rung.len());
        let mut names = HashSet::new();
        for (i, r) in raw.rung.iter().enumerate() {
            let rung = self.rung(i, r, &segment)?;
            if !names.insert(rung.name.clone()) {
                return Err(self.invalid(
                    format!("rung[{i}].name"),
                    "a name not used by another rung",
                    format!("{:?}", rung.name),
                ));
            }
            if let Some(prev) = rungs.last() {
                let prev: &Rung = prev;
                if rung.video_kbps > prev.video_kbps {
                    return Err(self.invalid(
                        format!("rung[{i}].video_kbps"),
                        &format!(
                            "rungs highest first: at most {} (rung {:?} above it)",
                            prev.video_kbps, prev.name
                        ),
                        rung.video_kbps,
                    ));
                }
            }
            rungs.push(rung);
        }
        self.bounds(&segment, &rungs)?;
        let encoder = self.encoder(&raw.encoder)?;
        let key_uri_base = match &raw.encryption {
            Some(e) => {
                self.url(
                    "encryption.key_uri_base",
                    &e.key_uri_base,
                    &["http", "https"],
                )?;
                e.key_uri_base.trim_end_matches('/').to_string()
            }
            None => DEFAULT_KEY_URI_BASE.to_string(),
        };
        let public_url = match &raw.origin {
            Some(o) => {
                self.url("origin.public_url", &o.public_url, &["http", "https"])?;
                format!("{}/", o.public_url.trim_end_matches('/'))
            }
            None => DEFAULT_PUBLIC_URL.to_string(),
        };
        let (trackers, webrtc_trackers) = self.trackers(&raw.tracker)?;
        let ice_servers = self.ice_servers(&raw.ice_server)?;
        let delivery = self.delivery(raw.delivery.as_ref(), &segment)?;
        let qoe = self.qoe(raw.qoe.as_ref(), &key_uri_base, &delivery, &segment)?;
        let seed = self.seed(raw.seed.as_ref())?;
        let video = self.video(&raw.video)?;
        let audio = self.audio(&raw.audio)?;
        Ok(Profile {
            name: raw.name,
            segment,
            rungs,
            encoder,
            encryption: EncryptionConfig { key_uri_base },
            origin: OriginConfig { public_url },
            trackers,
            webrtc_trackers,
            ice_servers,
            delivery,
            qoe,
            control: control::RawControl::build(raw.control.as_ref()),
            seed,
            video,
            audio,
        })
    }

    fn segment(&self, s: &RawSegment) -> Result<SegmentConfig, ProfileError> {
        let ms = (s.duration * 1000.0).round();
        if !(1.0..=6.0).contains(&s.duration) || (s.duration * 1000.0 - ms).abs() > 1e-6 {
            return Err(self.invalid(
                "segment.duration",
                "seconds from 1.0 to 6.0, in whole milliseconds",
                s.duration,
            ));
        }
        let duration_ms = ms as u64;
        let window = self.int_in("segment.window", s.window, 1, 1000)? as u64;
        let min_dvr = 3.0 * s.duration;
        if !(s.dvr >= min_dvr && s.dvr <= 86_400.0) {
            return Err(self.invalid(
                "segment.dvr",
                &format!("seconds from {min_dvr} (three segments, RFC 8216 §6.2.2) to 86400"),
                s.dvr,
            ));
        }
        Ok(SegmentConfig {
            duration_ms,
            window,
            dvr_secs: s.dvr,
        })
    }

    fn rung(&self, i: usize, r: &RawRung, seg: &SegmentConfig) -> Result<Rung, ProfileError> {
        let f = |name: &str| format!("rung[{i}].{name}");
        if !is_path_safe_name(&r.name) {
            return Err(self.invalid(f("name"), NAME_RULE, format!("{:?}", r.name)));
        }
        let width = self.int_in(&f("width"), r.width, 16, 7680)?;
        let height = self.int_in(&f("height"), r.height, 16, 4320)?;
        for (field, v) in [("width", width), ("height", height)] {
            if v % 2 != 0 {
                return Err(self.invalid(f(field), "an even number of pixels (4:2:0 video)", v));
            }
        }
        let fps = FrameRate::parse(&r.fps)
            .map_err(|expected| self.invalid(f("fps"), &expected, &r.fps))?;
        if fps.frames_in(seg.duration_ms).is_none() {
            return Err(self.invalid(
                f("fps"),
                &format!(
                    "a frame rate that fits a whole number of frames into segment.duration = {} s \
                     (at {fps} fps, segments of {} s do)",
                    seg.duration_secs(),
                    fps.nearest_durations(seg.duration_ms).join(", ")
                ),
                fps,
            ));
        }
        Ok(Rung {
            name: r.name.clone(),
            width,
            height,
            fps,
            video_kbps: self.int_in(&f("video_kbps"), r.video_kbps, 50, 200_000)?,
            audio_kbps: self.int_in(&f("audio_kbps"), r.audio_kbps, 16, 320)?,
        })
    }

    fn seed(&self, raw: Option<&RawSeed>) -> Result<SeedConfig, ProfileError> {
        let mut seed = SeedConfig::default();
        let Some(raw) = raw else {
            return Ok(seed);
        };
        seed.enabled = raw.enabled.unwrap_or(seed.enabled);
        seed.dht = raw.dht.unwrap_or(seed.dht);
        if let Some(listen) = &raw.listen {
            seed.listen = listen.parse().map_err(|_| {
                self.invalid(
                    "seed.listen",
                    "IP:PORT, e.g. \"0.0.0.0:6881\" (port 0 picks a free port)",
                    format!("{listen:?}"),
                )
            })?;
        }
        Ok(seed)
    }

    fn encoder(&self, e: &RawEncoder) -> Result<EncoderConfig, ProfileError> {
        let codec = self.one_of(
            "encoder.codec",
            e.codec.as_deref().unwrap_or("x264"),
            &["x264"],
        )?;
        let preset = self.one_of(
            "encoder.preset",
            e.preset.as_deref().unwrap_or("veryfast"),
            X264_PRESETS,
        )?;
        let tune = match &e.tune {
            Some(t) => Some(self.one_of("encoder.tune", t, X264_TUNES)?),
            None => None,
        };
        let profile = self.one_of(
            "encoder.profile",
            e.profile.as_deref().unwrap_or("high"),
            H264_PROFILES,
        )?;
        let threads = self.int_in("encoder.threads", e.threads.unwrap_or(0), 0, 64)?;
        Ok(EncoderConfig {
            codec,
            preset,
            tune,
            profile,
            threads,
        })
    }
}

const NAME_RULE: &str =
    "1 to 32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit";

/// Names that become path components on the origin (match, angle, rung): short, lower-case,
/// no dots or slashes, so that no name can climb out of its directory.
pub fn is_path_safe_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

/// The rule `is_path_safe_name` enforces, for error messages elsewhere.
pub fn path_safe_name_rule() -> &'static str {
    NAME_RULE
}

mod bounds;
pub mod control;
pub mod delivery;
pub mod frame_rate;
pub mod ice;
pub mod media;
pub mod qoe;
mod trackers;

pub use control::Control;
pub use delivery::Delivery;
pub use frame_rate::FrameRate;
pub use ice::IceServer;
pub use media::{AudioConfig, VideoConfig};
pub use qoe::Qoe;

#[cfg(test)]
mod tests;
