//! The text of one angle's pipeline: the source fragment, then per rung a scale (cascaded
//! from a larger rung where it can be), an x264 encode and an MPEG-TS mux, with one AAC encode
//! per distinct audio bitrate. Pure: profile and fragments in, gst-launch text out (what
//! `--print-pipeline` shows); `ladder` builds and runs it.
//!
//! May call: `error`, `source`, `template`, `package`, `profile`.

use super::error::IngestError;
use super::source::SourceSpec;
use super::template::Fragments;
use crate::package::codec;
use crate::profile::{Profile, Rung};

fn x264_tune(tune: Option<&str>) -> String {
    match tune {
        Some(t @ ("zerolatency" | "fastdecode" | "stillimage")) => format!("tune={t}"),
        Some(t) => format!("psy-tune={t}"),
        None => String::new(),
    }
}

/// The whole gst-launch description of one angle, as text (what `--print-pipeline` shows).
pub fn describe(
    angle: &str,
    spec: &SourceSpec,
    profile: &Profile,
    fragments: &Fragments,
    fast: bool,
) -> Result<String, IngestError> {
    let template = |source| IngestError::Template {
        angle: angle.to_string(),
        source,
    };
    let top = &profile.rungs[0];
    let mut parts = vec![
        spec.fragment(fragments, angle, top, &profile.video.deinterlace, fast)
            .map_err(template)?,
    ];
    parts.push("vsrc. ! tee name=vtee".into());
    match profile.audio.loudness {
        Some(lufs) => {
            let loudness = fragments
                .render("audio-loudness", &[("lufs", format!("{lufs:.1}"))])
                .map_err(template)?;
            parts.push(format!("asrc. ! {loudness} ! tee name=atee"));
        }
        None => parts.push("asrc. ! tee name=atee".into()),
    }
    let enc = &profile.encoder;
    for (i, rung) in profile.rungs.iter().enumerate() {
        let frames = rung.frames_per_segment(profile.segment.duration_ms);
        let render =
            |name: &str, vars: &[(&str, String)]| fragments.render(name, vars).map_err(template);
        parts.push(render("mux", &[("rung", rung.name.clone())])?);
        let scale = render(
            "rung-scale",
            &[
                ("rung", rung.name.clone()),
                ("width", rung.width.to_string()),
                ("height", rung.height.to_string()),
                ("fps", rung.fps.caps()),
                ("scale_threads", "1".into()),
            ],
        )?;
        let from = match scale_source(&profile.rungs[..i], rung) {
            Some(bigger) => format!("scaled_{}", bigger.name),
            None => "vtee".into(),
        };
        parts.push(format!("{from}. ! {scale}"));
        let video = render(
            "rung-video",
            &[
                ("rung", rung.name.clone()),
                ("video_kbps", rung.video_kbps.to_string()),
                ("preset", enc.preset.clone()),
                ("tune", x264_tune(enc.tune.as_deref())),
                ("profile", enc.profile.clone()),
                ("level", codec::h264_level(rung).name.to_string()),
                ("threads", enc.threads.to_string()),
                ("gop", (frames * 2).to_string()),
            ],
        )?;
        // audioloudnorm holds 3 s of sound before the first leaves it, so with loudness on,
        // each rung's encoded picture waits for it in a queue (the muxer interleaves by time),
        // or the demuxer would stall on full video queues before the sound could get through.
        let wait = match profile.audio.loudness {
            Some(_) => " ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=6000000000",
            None => "",
        };
        parts.push(format!("scaled_{0}. ! {video}{wait} ! mux_{0}.", rung.name));
        // One AAC encode per distinct audio bitrate, named after its first rung.
        let audio_owner = profile
            .rungs
            .iter()
            .find(|r| r.audio_kbps == rung.audio_kbps)
            .expect("the rung itself has this bitrate");
        if audio_owner.name == rung.name {
            let audio = render(
                "rung-audio",
                &[
                    ("rung", rung.name.clone()),
                    ("audio_bps", (rung.audio_kbps * 1000).to_string()),
                ],
            )?;
            parts.push(format!("atee. ! {audio}"));
        }
        parts.push(format!(
            "aac_{}. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=5000000000 ! mux_{}.",
            audio_owner.name, rung.name
        ));
    }
    Ok(parts.join("  "))
}

/// The rung a new rung's picture is scaled from: among the earlier rungs at least as large in
/// both dimensions, with a frame rate it divides evenly (so `videorate` only drops frames),
/// one exactly twice as large if there is one (GStreamer's scaler has a fast path for 2:1),
/// else the smallest. `None`: from the decoded source.
fn scale_source<'a>(earlier: &'a [Rung], rung: &Rung) -> Option<&'a Rung> {
    let bigger = || {
        earlier
            .iter()
            .filter(|b| b.width >= rung.width && b.height >= rung.height)
            .filter(|b| b.fps.is_multiple_of(rung.fps))
    };
    bigger()
        .find(|b| b.width == rung.width * 2 && b.height == rung.height * 2)
        .or_else(|| bigger().min_by_key(|b| b.width * b.height))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(name: &str, width: u32, height: u32, fps: u32) -> Rung {
        Rung {
            name: name.into(),
            width,
            height,
            fps: crate::profile::FrameRate::whole(fps),
            video_kbps: 1000,
            audio_kbps: 96,
        }
    }

    #[test]
    fn rungs_cascade_from_larger_rungs_preferring_two_to_one() {
        let ladder = [
            rung("1080p60", 1920, 1080, 60),
            rung("720p", 1280, 720, 30),
            rung("480p", 854, 480, 30),
            rung("360p", 640, 360, 30),
        ];
        let from = |i: usize| scale_source(&ladder[..i], &ladder[i]).map(|r| r.name.as_str());
        assert_eq!(from(0), None, "the top rung scales the source");
        assert_eq!(from(1), Some("1080p60"), "60 fps thins to 30");
        assert_eq!(from(2), Some("720p"), "the smallest larger rung");
        assert_eq!(from(3), Some("720p"), "exactly 2:1 beats the smaller 480p");
        // A higher frame rate, or a frame rate that does not divide, comes from the source.
        let odd = [rung("720p30", 1280, 720, 30), rung("360p60", 640, 360, 60)];
        assert_eq!(scale_source(&odd[..1], &odd[1]), None);
        let odd = [rung("720p50", 1280, 720, 50), rung("360p30", 640, 360, 30)];
        assert_eq!(scale_source(&odd[..1], &odd[1]), None);
        // A larger later rung cannot come from a smaller one.
        let up = [rung("360p", 640, 360, 30), rung("720p", 1280, 720, 30)];
        assert_eq!(scale_source(&up[..1], &up[1]), None);
    }

    #[test]
    fn the_profiles_deinterlacer_and_loudness_reach_the_pipeline() {
        let profile = Profile::parse(
            "name = \"t\"\n[segment]\nduration = 2.0\nwindow = 5\ndvr = 60\n\
             [[rung]]\nname = \"r\"\nwidth = 640\nheight = 360\nfps = 30\nvideo_kbps = 800\naudio_kbps = 96\n\
             [video]\ndeinterlace = \"vfir\"\n[audio]\nloudness = -24\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let file = SourceSpec::File("/tmp/x.ts".into());
        let text = describe("main", &file, &profile, &Fragments::builtin(), true).unwrap();
        assert!(text.contains("method=vfir fields=top"), "{text}");
        assert!(
            text.contains("audioloudnorm loudness-target=-24.0")
                && text.contains("! tee name=atee"),
            "{text}"
        );
        assert!(
            text.contains("max-size-time=6000000000 ! mux_r."),
            "the encoded picture waits for the normaliser: {text}"
        );
        crate::ingest::ladder::init().unwrap();
        gst::parse::launch(&text).expect("the description parses");
    }

    #[test]
    fn rungs_with_one_audio_bitrate_share_one_aac_encode() {
        let profile = Profile::parse(
            "name = \"t\"\n[segment]\nduration = 2.0\nwindow = 5\ndvr = 60\n\
             [[rung]]\nname = \"720p\"\nwidth = 1280\nheight = 720\nfps = 30\nvideo_kbps = 3000\naudio_kbps = 128\n\
             [[rung]]\nname = \"480p\"\nwidth = 854\nheight = 480\nfps = 30\nvideo_kbps = 1400\naudio_kbps = 96\n\
             [[rung]]\nname = \"360p\"\nwidth = 640\nheight = 360\nfps = 30\nvideo_kbps = 800\naudio_kbps = 96\n\
             [encoder]\npreset = \"ultrafast\"\n[origin]\npublic_url = \"http://o/\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let text = describe(
            "main",
            &SourceSpec::Test,
            &profile,
            &Fragments::builtin(),
            true,
        )
        .unwrap();
        assert_eq!(text.matches("avenc_aac").count(), 2, "{text}");
        assert!(text.contains("aac_480p. ! queue"), "{text}");
        assert!(text.contains("aac_480p. ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=5000000000 ! mux_360p."), "{text}");
        assert!(text.contains("scaled_720p. ! queue name=vq_360p"), "{text}");
        assert!(text.contains("vtee. ! queue name=vq_720p"), "{text}");
        gst::init().unwrap();
        gst::parse::launch(&text).expect("the description parses");
    }
}
