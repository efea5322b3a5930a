//! The body of `POST /v1/matches`, checked before anything starts: bad JSON is 400, and a
//! body that is JSON but wrong is 422 with a message naming the field and what was expected.
//!
//! May call: `hex`, `ingest`, `package`, `profile`, `timecode`.

use crate::ingest::SourceSpec;
use crate::profile::{is_path_safe_name, path_safe_name_rule};
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

/// A refused request: the HTTP status and the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

impl Refusal {
    pub fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
        }
    }
    fn field(field: &str, problem: impl std::fmt::Display) -> Refusal {
        Refusal::new(422, format!("{field}: {problem}"))
    }
}

/// Angles in the order given, as a JSON object `{"name": "uri"}` whose names must differ
/// (a JSON parser would silently keep the last of two equal names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Angles(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for Angles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Angles, D::Error> {
        struct Ordered;
        impl<'de> Visitor<'de> for Ordered {
            type Value = Angles;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of angle names to feed URIs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Angles, A::Error> {
                let mut out: Vec<(String, String)> = Vec::new();
                while let Some((name, uri)) = map.next_entry::<String, String>()? {
                    if out.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!(
                            "angles: duplicate angle {name:?}"
                        )));
                    }
                    out.push((name, uri));
                }
                Ok(Angles(out))
            }
        }
        d.deserialize_map(Ordered)
    }
}

/// The request as sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "match")]
    match_id: String,
    profile: String,
    angles: Angles,
    origin: String,
    #[serde(default)]
    duration: Option<f64>,
}

/// A request body as `T`: 400 when it is not JSON, 422 naming the field when it is JSON of
/// the wrong shape (`expected` says the right one).
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], expected: &str) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            Refusal::new(400, format!("body: not JSON: {e}"))
        } else {
            Refusal::new(422, format!("body: {e} (expected {expected})"))
        }
    })
}

/// A match to start, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchSpec {
    #[serde(rename = "match")]
    pub match_id: String,
    /// The profile's name, and its file under `--profiles`.
    pub profile: String,
    pub profile_file: PathBuf,
    /// Name and URI, the first being the default angle.
    pub angles: Vec<(String, String)>,
    pub origin: String,
    pub duration: Option<f64>,
    /// `origin.public_url` of the profile: where viewers find the match.
    pub public_url: String,
}

/// Checks a `POST /v1/matches` body against the profiles in `profiles`.
pub fn parse(body: &[u8], profiles: &Path) -> Result<MatchSpec, Refusal> {
    let parsed: Body = json_body(
        body,
        r#"{"match", "profile", "angles": {name: uri}, "origin", "duration"?}"#,
    )?;
    if !is_path_safe_name(&parsed.match_id) {
        return Err(Refusal::field(
            "match",
            format!("{:?}: expected {}", parsed.match_id, path_safe_name_rule()),
        ));
    }
    let (profile_file, public_url) = profile(&parsed.profile, profiles)?;
    if parsed.angles.0.is_empty() {
        return Err(Refusal::field(
            "angles",
            "no angle: expected at least one, e.g. {\"main\": \"test:\"}",
        ));
    }
    for (name, uri) in &parsed.angles.0 {
        if !is_path_safe_name(name) {
            return Err(Refusal::field(
                "angles",
                format!("angle name {name:?}: expected {}", path_safe_name_rule()),
            ));
        }
        SourceSpec::parse(name, uri).map_err(|e| Refusal::field(&format!("angles.{name}"), e))?;
    }
    check_origin(&parsed.origin)?;
    if let Some(d) = parsed.duration
        && !(d > 0.0 && d.is_finite())
    {
        return Err(Refusal::field(
            "duration",
            format!("{d}: expected a positive number of seconds"),
        ));
    }
    Ok(MatchSpec {
        match_id: parsed.match_id,
        profile: parsed.profile,
        profile_file,
        angles: parsed.angles.0,
        origin: parsed.origin,
        duration: parsed.duration,
        public_url,
    })
}

/// The profile `{profiles}/{name}.toml`, loaded to be sure it is sound; its file and public URL.
fn profile(name: &str, profiles: &Path) -> Result<(PathBuf, String), Refusal> {
    let known = || {
        let mut names: Vec<String> = std::fs::read_dir(profiles)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_str()?.strip_suffix(".toml")?.to_string();
                Some(n)
            })
            .collect();
        names.sort();
        names.join(", ")
    };
    let file = profiles.join(format!("{name}.toml"));
    if !is_path_safe_name(name) || !file.is_file() {
        return Err(Refusal::field(
            "profile",
            format!(
                "unknown profile {name:?}: expected one of {} (the .toml files in {})",
                known(),
                profiles.display()
            ),
        ));
    }
    let loaded = crate::profile::Profile::load(&file).map_err(|e| Refusal::field("profile", e))?;
    Ok((file, loaded.origin.public_url.clone()))
}

/// The origin URL as `run --origin` takes it, with an absolute path for `file://` (the
/// controller's working directory means nothing to the caller).
fn check_origin(url: &str) -> Result<(), Refusal> {
    let expected =
        "expected file:///absolute/dir, http(s)://host/path/ (WebDAV) or s3://bucket/prefix";
    let ok = match url.split_once("://") {
        Some(("file", path)) => path.starts_with('/') && !path.split('/').any(|p| p == ".."),
        Some(("http" | "https", _)) => url::Url::parse(url).is_ok_and(|u| u.host_str().is_some()),
        Some(("s3", rest)) => rest.split('/').next().is_some_and(|b| !b.is_empty()),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Refusal::field("origin", format!("{url:?}: {expected}")))
    }
}

/// A marker (`POST /v1/matches/{id}/markers`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MarkerBody {
    label: String,
    #[serde(default)]
    class: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    duration: Option<f64>,
}

/// Checks a `POST …/markers` body; without `start` the marker is at `now` (RFC 3339).
pub fn parse_marker(body: &[u8], now: &str) -> Result<crate::package::marker::Marker, Refusal> {
    let m: MarkerBody = json_body(body, r#"{"label", "class"?, "start"?, "duration"?}"#)?;
    let marker = crate::package::marker::Marker::new(
        &m.label,
        m.class.as_deref(),
        m.start.as_deref().unwrap_or(now),
        m.duration,
    )
    .map_err(|e| Refusal::field(e.field, e.problem))?;
    if let Some(now) = crate::timecode::UtcNs::parse_rfc3339(now)
        && marker.too_far_ahead(now)
    {
        return Err(Refusal::field(
            "start",
            format!(
                "{:?}: expected at most {} minutes from now ({now_text})",
                marker.start,
                crate::package::marker::Marker::MAX_AHEAD_NS / 60_000_000_000,
                now_text = now.to_datetime().to_rfc3339()
            ),
        ));
    }
    Ok(marker)
}

/// A highlight to cut (`POST /v1/matches/{id}/clips`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipBody {
    pub label: String,
    pub start: String,
    pub end: String,
}

/// Checks a `POST …/clips` body: a label that can be a directory name, and RFC 3339 times
/// with `end` after `start`.
pub fn parse_clip(body: &[u8]) -> Result<ClipBody, Refusal> {
    let clip: ClipBody = json_body(body, r#"{"label", "start", "end"}, times in RFC 3339"#)?;
    if !is_path_safe_name(&clip.label) {
        return Err(Refusal::field(
            "label",
            format!("{:?}: expected {}", clip.label, path_safe_name_rule()),
        ));
    }
    let time = |field: &str, text: &str| {
        crate::timecode::UtcNs::parse_rfc3339(text).ok_or_else(|| {
            Refusal::field(
                field,
                format!("{text:?}: expected an RFC 3339 UTC time, e.g. 2026-12-01T20:15:00Z"),
            )
        })
    };
    if time("end", &clip.end)? <= time("start", &clip.start)? {
        return Err(Refusal::field("end", "expected a time after start"));
    }
    Ok(clip)
}

/// The request's identity for `Idempotency-Key`: the SHA-256 of its JSON with keys sorted and
/// no spacing, so the same request sent with other formatting is the same request.
pub fn fingerprint(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.to_string().into_bytes())
        .unwrap_or_else(|_| body.to_vec());
    crate::hex::encode(&crate::hex::sha256(&canonical))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles")
    }

    fn refused(body: &str) -> Refusal {
        parse(body.as_bytes(), &profiles()).unwrap_err()
    }

    const GOOD: &str = r#"{"match":"final","profile":"demo","angles":{"main":"test:","pov":"test:"},"origin":"file:///srv/origin","duration":30}"#;

    #[test]
    fn a_good_request_keeps_its_angle_order() {
        let spec = parse(GOOD.as_bytes(), &profiles()).unwrap();
        assert_eq!(spec.match_id, "final");
        assert_eq!(spec.angles[0].0, "main");
        assert_eq!(spec.angles[1].0, "pov");
        assert!(spec.profile_file.ends_with("profiles/demo.toml"));
        assert_eq!(spec.duration, Some(30.0));
    }

    #[test]
    fn each_problem_names_its_field() {
        let cases = [
            ("{\"match\":", 400, "body: not JSON"),
            (
                r#"{"match":"Final!","profile":"demo","angles":{"main":"test:"},"origin":"file:///o"}"#,
                422,
                "match: \"Final!\"",
            ),
            (
                r#"{"match":"f","profile":"nope","angles":{"main":"test:"},"origin":"file:///o"}"#,
                422,
                "profile: unknown profile \"nope\": expected one of ",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{"main":"test:","main":"test:"},"origin":"file:///o"}"#,
                422,
                "duplicate angle \"main\"",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{"main":"gopher://x"},"origin":"file:///o"}"#,
                422,
                "angles.main: ",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{},"origin":"file:///o"}"#,
                422,
                "angles: no angle",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{"main":"test:"},"origin":"file://./out"}"#,
                422,
                "origin: \"file://./out\": expected file:///absolute/dir",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{"main":"test:"},"origin":"file:///o","duration":-1}"#,
                422,
                "duration: -1",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{"main":"test:"}}"#,
                422,
                "missing field `origin`",
            ),
            (
                r#"{"match":"f","profile":"demo","angles":{"main":"test:"},"origin":"file:///o","colour":1}"#,
                422,
                "unknown field `colour`",
            ),
        ];
        for (body, status, text) in cases {
            let r = refused(body);
            assert_eq!(r.status, status, "{body}: {r}");
            assert!(r.message.contains(text), "{body}: {r}");
        }
        assert!(
            refused(
                r#"{"match":"f","profile":"nope","angles":{"main":"test:"},"origin":"file:///o"}"#
            )
            .message
            .contains("demo")
        );
    }

    #[test]
    fn clip_bodies_name_their_problem() {
        let ok = parse_clip(
            br#"{"label":"ace","start":"2026-12-01T20:15:00Z","end":"2026-12-01T20:15:30Z"}"#,
        )
        .unwrap();
        assert_eq!(ok.label, "ace");
        for (body, says) in [
            (
                r#"{"label":"Ace!","start":"2026-12-01T20:15:00Z","end":"2026-12-01T20:15:30Z"}"#,
                "label: ",
            ),
            (
                r#"{"label":"ace","start":"now","end":"2026-12-01T20:15:30Z"}"#,
                "start: \"now\"",
            ),
            (
                r#"{"label":"ace","start":"2026-12-01T20:15:30Z","end":"2026-12-01T20:15:00Z"}"#,
                "end: expected a time after start",
            ),
            (r#"{"label":"ace"}"#, "missing field `start`"),
        ] {
            let r = parse_clip(body.as_bytes()).unwrap_err();
            assert_eq!(r.status, 422, "{body}");
            assert!(r.message.contains(says), "{body}: {r}");
        }
    }

    #[test]
    fn fingerprints_ignore_formatting_but_not_content() {
        let a = fingerprint(br#"{"match":"f","duration":30}"#);
        let b = fingerprint(b"{ \"duration\": 30,\n \"match\": \"f\" }");
        let c = fingerprint(br#"{"match":"f","duration":31}"#);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
