//! `swarmpack serve`: one HTTP server for a match day on one machine: the origin tree (with
//! range requests, ETag and Last-Modified from `tower-http`'s `ServeDir`, so it also works as
//! a BEP 19 web seed), the key server's routes, and, with `--dev-tokens`, a development-only
//! `GET /dev-token?match=ID` that hands out short viewer tokens.
//!
//! The preview page at `/` is [`preview`], the fans' page at `/watch` is [`watch`], and the
//! player it mounts, which other sites can embed, is [`player`]. The routes are [`router`];
//! binding, logging and stopping are the CLI's.
//!
//! May call (the whole room): `keys`, `layout`, `package`, `profile`, `publish`, `run`, `timecode`.

mod assets;
pub mod player;
pub mod preview;
pub mod watch;

use crate::keys::server::{self, KeyService};
use crate::keys::token::{self, Claims};
use crate::profile::is_path_safe_name;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// How long a development token is valid, in seconds.
pub const DEV_TOKEN_TTL: u64 = 3600;

/// How far back a development token opens keys, in seconds (a generous DVR window).
pub const DEV_TOKEN_LOOKBACK: u64 = 3600;

/// What `/dev-token` needs: the development token secret ([`token::dev_secret`]: production
/// key servers refuse its tokens), the origin directory (the match's timing comes
/// from its newest window manifest) and a clock (Unix seconds).
pub struct DevTokens {
    pub token_secret: Vec<u8>,
    pub origin: std::path::PathBuf,
    pub now: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl DevTokens {
    /// A token for `match_id` and `session`, valid from now for [`DEV_TOKEN_TTL`], opening the
    /// key periods of the last [`DEV_TOKEN_LOOKBACK`] seconds and of its validity. Fails when
    /// the match has no window on the origin yet (its timing is not known).
    pub fn issue(&self, match_id: &str, session: &str) -> Result<String, String> {
        let timeline = match_timeline(&self.origin.join(match_id))?;
        let now = (self.now)();
        let exp = now + DEV_TOKEN_TTL;
        Ok(token::issue(
            &self.token_secret,
            &Claims {
                v: token::VERSION,
                match_id: match_id.to_string(),
                session: session.to_string(),
                nbf: now,
                exp,
                periods: token::periods_overlapping(
                    &timeline,
                    now.saturating_sub(DEV_TOKEN_LOOKBACK),
                    exp,
                ),
            },
        ))
    }
}

/// A match's segment grid, from its newest window manifest: the segment duration it states,
/// and the segments per window (a window's seqs are `window * len ..`, so `seq / window` is
/// the length for any of them).
fn match_timeline(match_dir: &Path) -> Result<crate::timecode::Timeline, String> {
    use crate::package::manifest::{LivePointer, WindowManifest};
    let not_yet = || {
        format!(
            "{}: no window published yet; try again shortly",
            match_dir.display()
        )
    };
    let live: LivePointer = std::fs::read(match_dir.join("live.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(not_yet)?;
    let w = *live.windows.first().ok_or_else(not_yet)?;
    let doc: WindowManifest = std::fs::read(match_dir.join(crate::layout::window_manifest_rel(w)))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(not_yet)?;
    let seq = doc.segments.first().map(|s| s.seq).ok_or_else(not_yet)?;
    let len = seq.checked_div(w).unwrap_or(1);
    let ms = (doc.segment_duration * 1000.0).round() as u64;
    if len == 0 || ms == 0 {
        return Err(not_yet());
    }
    Ok(crate::timecode::Timeline::new(ms, len))
}

/// The routes: `/keys/{match}/{period}` and `/healthz` (the key server), the preview page
/// (`/` and `/.preview/…`; `spool` is the run's `--spool` directory, for its depth),
/// `/dev-token` when `dev_tokens` is given, the fans' page (`/watch`) and player
/// (`/.player/…`), and every other path from the `origin` directory. `pinned` is the match
/// public key from `--keys`, which the pages verify with. The player and the origin's files
/// answer any origin (CORS), so other sites can embed the player.
pub fn router(
    origin: &Path,
    spool: Option<&Path>,
    keys: Arc<KeyService>,
    dev_tokens: Option<DevTokens>,
    pinned: player::PinnedKey,
) -> Router {
    let files = tower_http::services::ServeDir::new(origin).append_index_html_on_directories(false);
    let page = preview::routes(origin.to_path_buf(), spool.map(Path::to_path_buf));
    let mut app = server::router(keys)
        .merge(page)
        .merge(watch::routes())
        .merge(player::routes(pinned));
    if let Some(dev) = dev_tokens {
        app = app.merge(
            Router::new()
                .route("/dev-token", get(dev_token))
                .with_state(Arc::new(dev)),
        );
    }
    app.merge(
        Router::new()
            .fallback_service(files)
            .layer(player::public_cors()),
    )
}

/// `GET /dev-token?match=ID[&session=S]`: a viewer token as plain text. Development only:
/// anyone who can reach the server gets one.
async fn dev_token(
    State(dev): State<Arc<DevTokens>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(match_id) = q.get("match").filter(|m| is_path_safe_name(m)) else {
        return (
            StatusCode::BAD_REQUEST,
            "expected ?match=ID (a-z, 0-9, '-', '_')\n",
        )
            .into_response();
    };
    let session = q
        .get("session")
        .filter(|s| !s.is_empty() && s.len() <= 64)
        .map_or("preview", String::as_str);
    match dev.issue(match_id, session) {
        Ok(token) => {
            tracing::info!("dev token issued for match {match_id}");
            (
                [
                    (header::CONTENT_TYPE, "text/plain"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                token,
            )
                .into_response()
        }
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

/// The ICE servers of a match on a local origin: those its `p2p.json` names, taken only when
/// `p2p.json.sig` verifies with the match key (an origin cannot point viewers' TURN
/// credentials at a server of its choosing). `None` when the match has no signed `p2p.json`.
pub fn ice_from_origin(origin: std::path::PathBuf, public_key: Vec<u8>) -> server::IceSource {
    Box::new(move |match_id: &str| {
        let dir = origin.join(match_id);
        let doc = std::fs::read(dir.join("p2p.json")).ok()?;
        let sig = std::fs::read(dir.join("p2p.json.sig")).ok()?;
        match crate::package::p2p::P2pDoc::verified(&doc, &sig, &public_key) {
            Some(doc) => Some(doc.ice_servers),
            None => {
                tracing::warn!(
                    "{match_id}/p2p.json does not verify with the match key: no ICE servers from it"
                );
                None
            }
        }
    })
}
