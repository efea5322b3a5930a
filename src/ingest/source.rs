//! Source URIs (`--angle NAME=URI`) and the pipeline fragment each one becomes.
//!
//! Parsing is pure and strict: a URI that cannot work is refused before anything starts,
//! with the angle, the URI and the accepted forms in the message.
//!
//! May call: `srt`, `template`, `profile`.

use super::template::{Fragments, TemplateError};
use crate::profile::Rung;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SourceError {
    #[error("--angle {angle}={uri}: {problem}; expected {expected}")]
    BadUri {
        angle: String,
        uri: String,
        problem: String,
        expected: &'static str,
    },
}

const FORMS: &str = "test:, file:/abs/path, \
                     srt://HOST:PORT?mode=listener|caller[&latency=MS][&passphrase=P|&passphrase-file=/abs/path][&pbkeylen=16|24|32], \
                     rtmp://HOST[:PORT]/APP/STREAM or rtmp-listen://ADDR:PORT/APP/STREAM";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtMode {
    Listener,
    Caller,
}

/// A parsed venue feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SourceSpec {
    /// Built-in test picture and tone.
    Test,
    /// A media file, paced at real time unless `--fast`.
    File(PathBuf),
    /// SRT carrying MPEG-TS.
    Srt {
        host: String,
        port: u16,
        mode: SrtMode,
        /// Receiver latency in milliseconds.
        latency_ms: u32,
        /// AES encryption of the SRT link.
        encryption: Option<super::srt::Encryption>,
    },
    /// RTMP pull.
    Rtmp { url: String },
    /// RTMP push accepted by swarmpack itself.
    RtmpListen {
        addr: String,
        port: u16,
        app: String,
        stream: String,
    },
}

impl SourceSpec {
    /// Parses the URI of angle `angle`.
    pub fn parse(angle: &str, uri: &str) -> Result<SourceSpec, SourceError> {
        let bad = |problem: String| SourceError::BadUri {
            angle: angle.to_string(),
            uri: super::srt::redacted(uri),
            problem,
            expected: FORMS,
        };
        if uri.chars().any(|c| c == '"' || c == '\\' || c.is_control()) {
            return Err(bad(
                "quotes, backslashes and control characters are not allowed".into(),
            ));
        }
        if uri == "test:" {
            return Ok(SourceSpec::Test);
        }
        if let Some(rest) = uri.strip_prefix("file:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if !path.starts_with('/') {
                return Err(bad("the file path must be absolute".into()));
            }
            let path = PathBuf::from(path);
            if !path.is_file() {
                return Err(bad(format!("{} is not a readable file", path.display())));
            }
            return Ok(SourceSpec::File(path));
        }
        let parsed = url::Url::parse(uri).map_err(|e| bad(format!("not a URI ({e})")))?;
        let host = parsed.host_str().map(str::to_string);
        match parsed.scheme() {
            "srt" => {
                let host = host.ok_or_else(|| bad("missing host".into()))?;
                let port = parsed.port().ok_or_else(|| bad("missing port".into()))?;
                let mut mode = SrtMode::Caller;
                let mut latency_ms = 125;
                let mut passphrase = None;
                let mut pbkeylen = None;
                for (k, v) in parsed.query_pairs() {
                    match (k.as_ref(), v.as_ref()) {
                        ("mode", "listener") => mode = SrtMode::Listener,
                        ("mode", "caller") => mode = SrtMode::Caller,
                        ("mode", other) => {
                            return Err(bad(format!("mode={other} (use listener or caller)")));
                        }
                        ("latency", v) => {
                            latency_ms = v
                                .parse()
                                .ok()
                                .filter(|ms| (20..=10_000).contains(ms))
                                .ok_or_else(|| bad(format!("latency={v} (use 20..10000 ms)")))?;
                        }
                        ("passphrase", v) if passphrase.is_none() => {
                            passphrase = Some(super::srt::Passphrase::new(v).map_err(bad)?);
                        }
                        ("passphrase-file", v) if passphrase.is_none() => {
                            let path = std::path::Path::new(v);
                            if !path.is_absolute() {
                                return Err(bad(format!("passphrase-file={v} must be absolute")));
                            }
                            passphrase =
                                Some(super::srt::Passphrase::from_file(path).map_err(bad)?);
                        }
                        ("passphrase" | "passphrase-file", _) => {
                            return Err(bad("give the passphrase once".into()));
                        }
                        ("pbkeylen", v) => pbkeylen = Some(super::srt::pbkeylen(v).map_err(bad)?),
                        (k, _) => return Err(bad(format!("unknown parameter {k:?}"))),
                    }
                }
                let encryption = match (passphrase, pbkeylen) {
                    (Some(passphrase), pbkeylen) => Some(super::srt::Encryption {
                        passphrase,
                        pbkeylen: pbkeylen.unwrap_or(0),
                    }),
                    (None, Some(_)) => {
                        return Err(bad("pbkeylen needs a passphrase".into()));
                    }
                    (None, None) => None,
                };
                Ok(SourceSpec::Srt {
                    host,
                    port,
                    mode,
                    latency_ms,
                    encryption,
                })
            }
            "rtmp" | "rtmps" => {
                host.ok_or_else(|| bad("missing host".into()))?;
                let segments = parsed
                    .path()
                    .trim_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .count();
                if segments < 2 {
                    return Err(bad("missing /APP/STREAM".into()));
                }
                Ok(SourceSpec::Rtmp {
                    url: uri.to_string(),
                })
            }
            "rtmp-listen" => {
                let addr = host.ok_or_else(|| bad("missing listen address".into()))?;
                let port = parsed.port().ok_or_else(|| bad("missing port".into()))?;
                let parts: Vec<&str> = parsed.path().trim_matches('/').split('/').collect();
                let [app, stream] = parts.as_slice() else {
                    return Err(bad("expected /APP/STREAM".into()));
                };
                if app.is_empty() || stream.is_empty() {
                    return Err(bad("expected /APP/STREAM".into()));
                }
                Ok(SourceSpec::RtmpListen {
                    addr,
                    port,
                    app: app.to_string(),
                    stream: stream.to_string(),
                })
            }
            other => Err(bad(format!("unknown scheme {other:?}"))),
        }
    }

    /// Whether the feed paces itself (a live network feed) rather than being paced by us.
    pub fn is_network(&self) -> bool {
        !matches!(self, SourceSpec::Test | SourceSpec::File(_))
    }

    /// The gst-launch fragment for this feed. `top` is the highest rung (the size the test
    /// picture is drawn at); `fast` runs test and file feeds as fast as the machine allows.
    pub fn fragment(
        &self,
        fragments: &Fragments,
        angle: &str,
        top: &Rung,
        deinterlace: &str,
        fast: bool,
    ) -> Result<String, TemplateError> {
        match self {
            SourceSpec::Test => fragments.render(
                "source-test",
                &[
                    ("live", (!fast).to_string()),
                    ("width", top.width.to_string()),
                    ("height", top.height.to_string()),
                    ("fps", top.fps.caps()),
                    ("angle", angle.to_string()),
                ],
            ),
            SourceSpec::File(path) => fragments.render(
                "source-file",
                &[
                    ("path", path.display().to_string()),
                    ("sync", (!fast).to_string()),
                    ("fields", deinterlace_fields(top).into()),
                    ("deinterlace", deinterlace.into()),
                ],
            ),
            SourceSpec::Srt {
                host,
                port,
                mode,
                latency_ms,
                ..
            } => {
                let mode = match mode {
                    SrtMode::Listener => "listener",
                    SrtMode::Caller => "caller",
                };
                let mut vars = network_vars(angle, top, deinterlace);
                vars.push((
                    "uri",
                    format!("srt://{host}:{port}?mode={mode}&latency={latency_ms}"),
                ));
                vars.push(("latency", latency_ms.to_string()));
                fragments.render("source-srt", &vars)
            }
            SourceSpec::Rtmp { url } => {
                let mut vars = network_vars(angle, top, deinterlace);
                vars.push(("uri", url.clone()));
                fragments.render("source-rtmp", &vars)
            }
            SourceSpec::RtmpListen { .. } => {
                fragments.render("source-rtmp-listen", &network_vars(angle, top, deinterlace))
            }
        }
    }
}

/// Which fields an interlaced feed's deinterlacer makes frames of: every field (field rate,
/// 1080i50 into 50p) when the top rung runs above 30 fps, else the top field's frames.
pub fn deinterlace_fields(top: &Rung) -> &'static str {
    if top.fps.as_f64() > 30.5 {
        "all"
    } else {
        "top"
    }
}

/// Placeholders of the network feeds: the slate's size and text, and how long a stalled
/// feed waits before the slate takes over. 500 ms is under half of the shortest segment
/// (1 s), so an outage never leaves a segment without frames.
fn network_vars(angle: &str, top: &Rung, deinterlace: &str) -> Vec<(&'static str, String)> {
    const SLATE_AFTER_NS: u64 = 500_000_000;
    vec![
        ("angle", angle.to_string()),
        ("width", top.width.to_string()),
        ("height", top.height.to_string()),
        ("fps", top.fps.caps()),
        ("timeout", SLATE_AFTER_NS.to_string()),
        ("fields", deinterlace_fields(top).into()),
        ("deinterlace", deinterlace.into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(uri: &str) -> String {
        SourceSpec::parse("cam1", uri).unwrap_err().to_string()
    }

    #[test]
    fn test_and_file() {
        assert_eq!(SourceSpec::parse("a", "test:").unwrap(), SourceSpec::Test);
        let f = tempfile::NamedTempFile::new().unwrap();
        let p = f.path().display().to_string();
        assert_eq!(
            SourceSpec::parse("a", &format!("file:{p}")).unwrap(),
            SourceSpec::File(f.path().to_path_buf())
        );
        assert_eq!(
            SourceSpec::parse("a", &format!("file://{p}")).unwrap(),
            SourceSpec::File(f.path().to_path_buf())
        );
        assert!(err("file:relative.mp4").contains("must be absolute"));
        assert!(err("file:/no/such.mp4").contains("/no/such.mp4 is not a readable file"));
    }

    #[test]
    fn srt_modes_and_latency() {
        assert_eq!(
            SourceSpec::parse("a", "srt://127.0.0.1:9000?mode=listener").unwrap(),
            SourceSpec::Srt {
                host: "127.0.0.1".into(),
                port: 9000,
                mode: SrtMode::Listener,
                latency_ms: 125,
                encryption: None,
            }
        );
        assert_eq!(
            SourceSpec::parse("a", "srt://venue:9000?mode=caller&latency=400").unwrap(),
            SourceSpec::Srt {
                host: "venue".into(),
                port: 9000,
                mode: SrtMode::Caller,
                latency_ms: 400,
                encryption: None,
            }
        );
        assert!(err("srt://h:1?mode=rendezvous").contains("mode=rendezvous"));
        assert!(err("srt://h?mode=caller").contains("missing port"));
        assert!(err("srt://h:1?latency=5").contains("latency=5"));
        assert!(err("srt://h:1?foo=x").contains("unknown parameter \"foo\""));
    }

    #[test]
    fn srt_encryption() {
        let spec = SourceSpec::parse(
            "a",
            "srt://h:1?mode=listener&passphrase=venue-secret-42&pbkeylen=32",
        )
        .unwrap();
        let SourceSpec::Srt {
            encryption: Some(e),
            ..
        } = &spec
        else {
            panic!("{spec:?}");
        };
        assert_eq!(e.pbkeylen, 32);
        assert!(!format!("{spec:?}").contains("venue-secret"));
        let e = err("srt://h:1?passphrase=short&latency=5");
        assert!(e.contains("10 to 79") && !e.contains("short"), "{e}");
        let e = err("srt://h:1?passphrase=venue-secret-42&latency=5");
        assert!(
            e.contains("passphrase=(hidden)") && !e.contains("venue-secret"),
            "{e}"
        );
        assert!(err("srt://h:1?pbkeylen=16").contains("pbkeylen needs a passphrase"));
        assert!(err("srt://h:1?passphrase-file=rel.txt").contains("must be absolute"));
        // Encryption never reaches the pipeline description.
        let f = Fragments::builtin();
        let top = crate::profile::Rung {
            name: "360p".into(),
            width: 640,
            height: 360,
            fps: crate::profile::FrameRate::whole(30),
            video_kbps: 800,
            audio_kbps: 96,
        };
        let t = spec.fragment(&f, "a", &top, "greedyh", false).unwrap();
        assert!(
            !t.contains("passphrase") && !t.contains("venue-secret"),
            "{t}"
        );
    }

    #[test]
    fn rtmp_pull_and_listen() {
        assert_eq!(
            SourceSpec::parse("a", "rtmp://127.0.0.1:1935/live/cam1").unwrap(),
            SourceSpec::Rtmp {
                url: "rtmp://127.0.0.1:1935/live/cam1".into()
            }
        );
        assert!(err("rtmp://127.0.0.1/live").contains("missing /APP/STREAM"));
        assert_eq!(
            SourceSpec::parse("a", "rtmp-listen://0.0.0.0:1935/live/key").unwrap(),
            SourceSpec::RtmpListen {
                addr: "0.0.0.0".into(),
                port: 1935,
                app: "live".into(),
                stream: "key".into()
            }
        );
    }

    #[test]
    fn unknown_schemes_and_injection_are_refused_with_the_accepted_forms() {
        let e = err("udp://239.0.0.1:5000");
        assert!(
            e.starts_with(
                "--angle cam1=udp://239.0.0.1:5000: unknown scheme \"udp\"; expected test:"
            ),
            "{e}"
        );
        assert!(err("rtmp://h/a/b\" ! filesink location=/etc/x").contains("quotes"));
        assert!(err("nonsense").contains("not a URI"));
    }

    #[test]
    fn fragments_fill_in_the_feed() {
        let top = Rung {
            name: "720p".into(),
            width: 1280,
            height: 720,
            fps: crate::profile::FrameRate::whole(30),
            video_kbps: 3000,
            audio_kbps: 128,
        };
        let f = Fragments::builtin();
        let t = SourceSpec::Test
            .fragment(&f, "cam1", &top, "greedyh", true)
            .unwrap();
        assert!(
            t.contains("is-live=false") && t.contains("width=1280") && t.contains("text=\"cam1\""),
            "{t}"
        );
        let s = SourceSpec::parse("a", "srt://127.0.0.1:9000?mode=listener").unwrap();
        let t = s.fragment(&f, "a", &top, "greedyh", false).unwrap();
        assert!(
            t.contains(
                "fallbacksrc name=feed uri=\"srt://127.0.0.1:9000?mode=listener&latency=125\""
            ) && t.contains("timeout=500000000")
                && t.contains("text=\"SIGNAL LOST   a\"")
                && t.contains("width=1280,height=720")
                && t.contains("framerate=30/1"),
            "{t}"
        );
    }
}
