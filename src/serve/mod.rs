//! `swarmpack serve`: one HTTP server for a match day on one machine: the origin tree (with
//! range requests, ETag and Last-Modified from `tower-http`'s `ServeDir`, so it also works as
//! a BEP 19 web seed), the key server's routes, and, with `--dev-tokens`, a development-only
//! `GET /dev-token?match=ID` that hands out short viewer tokens.
//!
//! The preview page at `/` is [`preview`]. The routes are [`router`]; binding, logging and
//! stopping are the CLI's.

pub mod preview;

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

/// What `/dev-token` needs: the token secret and a clock (Unix seconds).
pub struct DevTokens {
    pub token_secret: Vec<u8>,
    pub now: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl DevTokens {
    /// A token for `match_id` and `session`, valid from now for [`DEV_TOKEN_TTL`].
    pub fn issue(&self, match_id: &str, session: &str) -> String {
        let now = (self.now)();
        token::issue(
            &self.token_secret,
            &Claims {
                v: 1,
                match_id: match_id.to_string(),
                session: session.to_string(),
                nbf: now,
                exp: now + DEV_TOKEN_TTL,
            },
        )
    }
}

/// The routes: `/keys/{match}/{period}` and `/healthz` (the key server), the preview page
/// (`/` and `/.preview/…`; `spool` is the run's `--spool` directory, for its depth),
/// `/dev-token` when `dev_tokens` is given, and every other path from the `origin` directory.
pub fn router(
    origin: &Path,
    spool: Option<&Path>,
    keys: Arc<KeyService>,
    dev_tokens: Option<DevTokens>,
) -> Router {
    let files = tower_http::services::ServeDir::new(origin).append_index_html_on_directories(false);
    let page = preview::routes(origin.to_path_buf(), spool.map(Path::to_path_buf));
    let mut app = server::router(keys).merge(page);
    if let Some(dev) = dev_tokens {
        app = app.merge(
            Router::new()
                .route("/dev-token", get(dev_token))
                .with_state(Arc::new(dev)),
        );
    }
    app.fallback_service(files)
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
    tracing::info!("dev token issued for match {match_id}, session {session}");
    (
        [
            (header::CONTENT_TYPE, "text/plain"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        dev.issue(match_id, session),
    )
        .into_response()
}
