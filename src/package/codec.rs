//! H.264 signalling derived from a rung: the level x264 is told to signal and the RFC 6381
//! `CODECS` string the playlists advertise. Both come from one table so that what the
//! playlist promises is what the SPS says.
//!
//! May call: `profile`.

use crate::profile::Rung;

/// An H.264 level: its `level_idc` and the dotted name x264 accepts (`level=4.1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct H264Level {
    pub idc: u8,
    pub name: &'static str,
}

/// (level_idc, name, MaxMBPS macroblocks/s, MaxFS macroblocks, MaxBR kbit/s for High)
/// from ITU-T H.264 Table A-1 (High profile MaxBR is 1.25 × the Main value).
const LEVELS: &[(u8, &str, u64, u64, u64)] = &[
    (30, "3.0", 40_500, 1_620, 12_500),
    (31, "3.1", 108_000, 3_600, 17_500),
    (32, "3.2", 216_000, 5_120, 25_000),
    (40, "4.0", 245_760, 8_192, 25_000),
    (41, "4.1", 245_760, 8_192, 62_500),
    (42, "4.2", 522_240, 8_704, 62_500),
    (50, "5.0", 589_824, 22_080, 168_750),
    (51, "5.1", 983_040, 36_864, 300_000),
    (52, "5.2", 2_073_600, 36_864, 300_000),
];

/// The lowest level (from 3.0) whose limits hold the rung's frame size, macroblock rate and
/// bitrate. Rungs beyond level 5.2 get 5.2, which x264 then enforces as well as it can.
pub fn h264_level(rung: &Rung) -> H264Level {
    let mbs = (rung.width as u64).div_ceil(16) * (rung.height as u64).div_ceil(16);
    let mbps = mbs * rung.fps.ceil() as u64;
    let kbps = rung.video_kbps as u64;
    let (idc, name, ..) = LEVELS
        .iter()
        .find(|(_, _, max_mbps, max_fs, max_br)| {
            mbps <= *max_mbps && mbs <= *max_fs && kbps <= *max_br
        })
        .copied()
        .unwrap_or(LEVELS[LEVELS.len() - 1]);
    H264Level { idc, name }
}

/// `profile_idc` and the constraint-flags byte x264 writes for each profile it supports.
fn profile_bytes(profile: &str) -> (u8, u8) {
    match profile {
        "baseline" => (0x42, 0xC0),
        "main" => (0x4D, 0x40),
        _ => (0x64, 0x00),
    }
}

/// RFC 6381 codecs string for a rung: H.264 video plus AAC-LC audio.
pub fn codecs(profile: &str, rung: &Rung) -> String {
    let (p, c) = profile_bytes(profile);
    format!("avc1.{p:02x}{c:02x}{:02x},mp4a.40.2", h264_level(rung).idc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(w: u32, h: u32, fps: u32, kbps: u32) -> Rung {
        Rung {
            name: "r".into(),
            width: w,
            height: h,
            fps: crate::profile::FrameRate::whole(fps),
            video_kbps: kbps,
            audio_kbps: 96,
        }
    }

    #[test]
    fn common_ladder_levels() {
        assert_eq!(h264_level(&rung(640, 360, 30, 800)).name, "3.0");
        assert_eq!(h264_level(&rung(854, 480, 30, 1400)).name, "3.1");
        assert_eq!(h264_level(&rung(1280, 720, 30, 3000)).name, "3.1");
        assert_eq!(h264_level(&rung(1280, 720, 60, 4500)).name, "3.2");
        assert_eq!(h264_level(&rung(1920, 1080, 30, 6000)).name, "4.0");
        assert_eq!(h264_level(&rung(1920, 1080, 60, 6000)).name, "4.2");
        assert_eq!(h264_level(&rung(3840, 2160, 60, 20000)).name, "5.2");
        assert_eq!(h264_level(&rung(7680, 4320, 120, 100000)).name, "5.2");
    }

    #[test]
    fn bitrate_can_raise_the_level() {
        assert_eq!(h264_level(&rung(1920, 1080, 30, 30000)).name, "4.1");
    }

    #[test]
    fn codecs_strings_match_x264_sps_bytes() {
        assert_eq!(
            codecs("high", &rung(1920, 1080, 60, 6000)),
            "avc1.64002a,mp4a.40.2"
        );
        assert_eq!(
            codecs("main", &rung(640, 360, 30, 800)),
            "avc1.4d401e,mp4a.40.2"
        );
        assert_eq!(
            codecs("baseline", &rung(1280, 720, 30, 2000)),
            "avc1.42c01f,mp4a.40.2"
        );
    }
}
