//! The operator preview page at `/`: plain HTML, CSS and JavaScript from `web/`, compiled into
//! the binary. It plays with the hls.js and checks signatures with the helpers and pinned key
//! under `/.player/` ([`super::player`]), so the page needs nothing beyond this server: no CDN,
//! no external fonts or scripts.
//!
//! Routes: `/` (the page), `/.preview/{app.js,app.css}`,
//! `/.preview/matches.json` (the matches under the origin, newest first) and, when `serve`
//! knows the run's spool directory, `/.preview/spool.json?match=ID` (objects not yet on the
//! origin). `.preview` cannot clash with a match: match names have no dots.
//!
//! May call: `profile`, `publish`, `run`, `assets`.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const APP_CSS: &str = include_str!("../../web/app.css");
const AUDIENCE_JS: &str = include_str!("../../web/audience.js");

/// One match found under the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchEntry {
    pub name: String,
    /// Unix seconds of the last change to its `master.m3u8` or `live.json`.
    pub updated: u64,
}

/// The matches under `origin`: directories holding a `master.m3u8`, most recently updated
/// first (ties by name). Unreadable entries are skipped.
pub fn matches(origin: &Path) -> Vec<MatchEntry> {
    let Ok(dir) = std::fs::read_dir(origin) else {
        return Vec::new();
    };
    let mut found: Vec<MatchEntry> = dir
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            if !crate::profile::is_path_safe_name(&name) {
                return None;
            }
            let master = std::fs::metadata(e.path().join("master.m3u8")).ok()?;
            let live = std::fs::metadata(e.path().join("live.json")).ok();
            let updated = [Some(master), live]
                .into_iter()
                .flatten()
                .filter_map(|m| m.modified().ok())
                .max()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            Some(MatchEntry { name, updated })
        })
        .collect();
    found.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.name.cmp(&b.name)));
    found
}

/// Where the page's status routes look.
struct Dirs {
    origin: PathBuf,
    spool: Option<PathBuf>,
}

/// The page's routes; `origin` is read for `/.preview/matches.json`, `spool` (the directory
/// given to `run --spool`) for `/.preview/spool.json`.
pub fn routes(origin: PathBuf, spool: Option<PathBuf>) -> Router {
    super::assets::routes(&[
        ("/", INDEX_HTML),
        ("/.preview/app.js", APP_JS),
        ("/.preview/audience.js", AUDIENCE_JS),
        ("/.preview/app.css", APP_CSS),
    ])
    .route("/.preview/matches.json", get(list_matches))
    .route("/.preview/spool.json", get(spool_depth))
    .with_state(Arc::new(Dirs { origin, spool }))
}

async fn list_matches(State(dirs): State<Arc<Dirs>>) -> Response {
    let found = tokio::task::spawn_blocking(move || matches(&dirs.origin))
        .await
        .unwrap_or_default();
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(found)).into_response()
}

/// The spool's depth for one match, as the page shows it.
#[derive(Debug, Serialize)]
struct SpoolStatus {
    objects: u64,
    bytes: u64,
    /// Seconds since the oldest waiting object was spooled.
    oldest_secs: Option<f64>,
}

/// `GET /.preview/spool.json?match=ID`: 404 when `serve` was not given `--spool`.
async fn spool_depth(
    State(dirs): State<Arc<Dirs>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(spool) = dirs.spool.clone() else {
        return (StatusCode::NOT_FOUND, "serve runs without --spool\n").into_response();
    };
    let Some(match_id) = q
        .get("match")
        .filter(|m| crate::profile::is_path_safe_name(m))
    else {
        return (StatusCode::BAD_REQUEST, "expected ?match=ID\n").into_response();
    };
    let queue = crate::run::queue_dir(&spool, match_id);
    let d = tokio::task::spawn_blocking(move || crate::publish::spool::depth(&queue))
        .await
        .unwrap_or_default();
    let oldest_secs = d
        .oldest
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .map(|a| a.as_secs_f64());
    let status = SpoolStatus {
        objects: d.objects,
        bytes: d.bytes,
        oldest_secs,
    };
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(status)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_lists_directories_with_a_master_playlist_newest_first() {
        let tmp = tempfile::tempdir().unwrap();
        let o = tmp.path();
        for (name, master) in [
            ("final", true),
            ("semi", true),
            ("empty", false),
            ("Bad.Name", true),
        ] {
            std::fs::create_dir(o.join(name)).unwrap();
            if master {
                std::fs::write(o.join(name).join("master.m3u8"), "#EXTM3U\n").unwrap();
            }
        }
        std::fs::write(o.join("stray.txt"), "x").unwrap();
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000);
        std::fs::File::options()
            .write(true)
            .open(o.join("semi/master.m3u8"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let names: Vec<String> = matches(o).into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["final", "semi"]);
        assert_eq!(matches(o)[1].updated, 1_000);
        assert!(matches(&o.join("missing")).is_empty());
    }

    #[test]
    fn the_page_loads_only_its_own_assets() {
        for line in INDEX_HTML.lines() {
            for attr in ["src=\"", "href=\""] {
                if let Some(at) = line.find(attr) {
                    let url = &line[at + attr.len()..];
                    let own = url.starts_with("/.preview/")
                        || url.starts_with("/.player/")
                        || url.starts_with('#');
                    assert!(own, "external asset: {line}");
                }
            }
        }
        assert!(!APP_JS.contains("http://") && !APP_JS.contains("https://"));
    }
}
