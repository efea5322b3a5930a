//! The fans' page at `/watch?match=ID` (web/watch.html): the player from `/.player/`
//! ([`super::player`]) mounted full width, with the viewer token from the address, the tab or
//! `/dev-token`.
//!
//! Routes: `/watch`, `/.watch/{watch.js,watch.css}`.

use super::preview::asset;
use axum::Router;
use axum::routing::get;

const WATCH_HTML: &str = include_str!("../../web/watch.html");
const WATCH_JS: &str = include_str!("../../web/watch.js");
const WATCH_CSS: &str = include_str!("../../web/watch.css");

pub fn routes() -> Router {
    Router::new()
        .route(
            "/watch",
            get(|| async { asset("text/html; charset=utf-8", WATCH_HTML) }),
        )
        .route(
            "/.watch/watch.js",
            get(|| async { asset("text/javascript; charset=utf-8", WATCH_JS) }),
        )
        .route(
            "/.watch/watch.css",
            get(|| async { asset("text/css; charset=utf-8", WATCH_CSS) }),
        )
}
