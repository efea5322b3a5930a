//! The fans' player at `/watch?match=ID` (web/watch.html): hls.js with p2p-media-loader, both
//! from `web/node_modules` (pinned by `web/package-lock.json`) and compiled into the binary by
//! `build.rs`, so the page loads nothing from a CDN. It shares `/.preview/hls.min.js`,
//! `/.preview/shared.js` and the pinned `/.preview/pubkey.pem` with the preview page.
//!
//! Routes: `/watch`, `/.watch/{watch.js,watch.css,segments.js,p2pml-core.js,p2pml-hlsjs.js}`.

use super::preview::asset;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

const WATCH_HTML: &str = include_str!("../../web/watch.html");
const WATCH_JS: &str = include_str!("../../web/watch.js");
const WATCH_CSS: &str = include_str!("../../web/watch.css");
const SEGMENTS_JS: &str = include_str!("../../web/segments.js");
/// Empty when the build found no `web/node_modules/p2p-media-loader-*` (build.rs warns).
const P2PML_CORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p2pml-core.js"));
const P2PML_HLSJS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p2pml-hlsjs.js"));

/// Whether this build carries p2p-media-loader (without it `/watch` cannot load).
pub fn has_p2p() -> bool {
    !P2PML_CORE.is_empty() && !P2PML_HLSJS.is_empty()
}

pub fn routes() -> Router {
    let js =
        |body: &'static str| move || async move { asset("text/javascript; charset=utf-8", body) };
    Router::new()
        .route(
            "/watch",
            get(|| async { asset("text/html; charset=utf-8", WATCH_HTML) }),
        )
        .route("/.watch/watch.js", get(js(WATCH_JS)))
        .route("/.watch/segments.js", get(js(SEGMENTS_JS)))
        .route(
            "/.watch/watch.css",
            get(|| async { asset("text/css; charset=utf-8", WATCH_CSS) }),
        )
        .route(
            "/.watch/p2pml-core.js",
            get(|| async { bundle(P2PML_CORE) }),
        )
        .route(
            "/.watch/p2pml-hlsjs.js",
            get(|| async { bundle(P2PML_HLSJS) }),
        )
}

fn bundle(bytes: &'static [u8]) -> Response {
    if bytes.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this swarmpack was built without p2p-media-loader: run scripts/setup (npm ci in web/) and rebuild\n",
        )
            .into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        bytes,
    )
        .into_response()
}
