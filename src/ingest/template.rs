//! Pipeline fragments: gst-launch text with `{placeholder}`s, kept in `pipelines/` so that an
//! operator can read and tune them. Lines starting with `#` are comments.
//!
//! A leaf: calls no other room.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TemplateError {
    #[error("pipeline fragment {fragment}: unknown placeholder {{{name}}} (known: {known})")]
    Unknown {
        fragment: String,
        name: String,
        known: String,
    },
    #[error("pipeline fragment {fragment}: unclosed '{{'")]
    Unclosed { fragment: String },
    #[error("pipeline fragment {path}: cannot read: {message}")]
    Read { path: PathBuf, message: String },
}

/// The fragments shipped with swarmpack, compiled in.
const BUILTIN: &[(&str, &str)] = &[
    (
        "source-test",
        include_str!("../../pipelines/source-test.gst"),
    ),
    (
        "source-file",
        include_str!("../../pipelines/source-file.gst"),
    ),
    ("source-srt", include_str!("../../pipelines/source-srt.gst")),
    (
        "audio-loudness",
        include_str!("../../pipelines/audio-loudness.gst"),
    ),
    (
        "source-rtmp",
        include_str!("../../pipelines/source-rtmp.gst"),
    ),
    (
        "source-rtmp-listen",
        include_str!("../../pipelines/source-rtmp-listen.gst"),
    ),
    ("rung-scale", include_str!("../../pipelines/rung-scale.gst")),
    ("rung-video", include_str!("../../pipelines/rung-video.gst")),
    ("rung-audio", include_str!("../../pipelines/rung-audio.gst")),
    ("mux", include_str!("../../pipelines/mux.gst")),
];

/// Where fragments come from: the built-in copies, or an operator's directory of tuned ones.
#[derive(Clone, Debug, Default)]
pub struct Fragments {
    dir: Option<PathBuf>,
}

impl Fragments {
    pub fn builtin() -> Self {
        Fragments { dir: None }
    }

    /// Fragments from `dir/{name}.gst`, falling back to the built-in copy for missing files.
    pub fn from_dir(dir: &Path) -> Self {
        Fragments {
            dir: Some(dir.to_path_buf()),
        }
    }

    /// The text of fragment `name`.
    pub fn text(&self, name: &str) -> Result<String, TemplateError> {
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{name}.gst"));
            if path.exists() {
                return std::fs::read_to_string(&path).map_err(|e| TemplateError::Read {
                    path,
                    message: e.to_string(),
                });
            }
        }
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| TemplateError::Read {
                path: PathBuf::from(format!("{name}.gst")),
                message: "no such built-in fragment".into(),
            })
    }

    /// Fragment `name` with its placeholders filled in.
    pub fn render(&self, name: &str, vars: &[(&str, String)]) -> Result<String, TemplateError> {
        render(name, &self.text(name)?, vars)
    }
}

/// Drops comment lines, joins the rest into one line and substitutes `{name}` from `vars`.
pub fn render(
    fragment: &str,
    text: &str,
    vars: &[(&str, String)],
) -> Result<String, TemplateError> {
    let body: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let body = body.join(" ");
    let mut out = String::with_capacity(body.len() + 64);
    let mut rest = body.as_str();
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}').ok_or_else(|| TemplateError::Unclosed {
            fragment: fragment.to_string(),
        })?;
        let name = &after[..close];
        let value = vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| TemplateError::Unknown {
                fragment: fragment.to_string(),
                name: name.to_string(),
                known: vars.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", "),
            })?;
        out.push_str(value);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_and_strips_comments() {
        let text = "# comment {ignored}\nvideotestsrc is-live={live}\n  ! fakesink name=s_{rung}\n";
        let out = render(
            "t",
            text,
            &[("live", "true".into()), ("rung", "360p".into())],
        )
        .unwrap();
        assert_eq!(out, "videotestsrc is-live=true ! fakesink name=s_360p");
    }

    #[test]
    fn unknown_placeholders_are_named() {
        let e = render("t", "a={x}", &[("y", "1".into())]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "pipeline fragment t: unknown placeholder {x} (known: y)"
        );
        assert!(matches!(
            render("t", "a={x", &[]),
            Err(TemplateError::Unclosed { .. })
        ));
    }

    #[test]
    fn every_builtin_fragment_has_only_known_placeholders() {
        let all = [
            "live",
            "width",
            "height",
            "fps",
            "angle",
            "path",
            "sync",
            "uri",
            "latency",
            "timeout",
            "rung",
            "video_kbps",
            "preset",
            "tune",
            "profile",
            "level",
            "threads",
            "gop",
            "scale_threads",
            "audio_bps",
            "fields",
            "deinterlace",
            "lufs",
        ];
        let vars: Vec<(&str, String)> = all.iter().map(|k| (*k, "1".to_string())).collect();
        for (name, _) in BUILTIN {
            let out = Fragments::builtin().render(name, &vars).unwrap();
            assert!(!out.contains('{') && !out.contains('#'), "{name}: {out}");
        }
    }

    #[test]
    fn operator_directory_overrides_builtin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("mux.gst"),
            "mpegtsmux name=m_{rung} ! fakesink",
        )
        .unwrap();
        let f = Fragments::from_dir(dir.path());
        assert_eq!(
            f.render("mux", &[("rung", "a".into())]).unwrap(),
            "mpegtsmux name=m_a ! fakesink"
        );
        assert!(f.text("rung-audio").unwrap().contains("avenc_aac"));
    }
}
