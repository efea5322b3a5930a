//! The fans' player as a module any site can mount (`web/player/`), under `/.player/`:
//! `player.js` (the player), `player.css`, `shared.js` and `segments.js` (its helpers, which
//! the preview page uses too), `paths.js` (which network path each WebRTC connection took),
//! `policy.js` (the match's delivery policy), `telemetry.js` (CMCD reports), `cache.js` (the segments a page holds for its
//! peers), `early.js` (fetch-early), `hls.min.js` and p2p-media-loader's two ES bundles (from
//! `web/node_modules`, pinned by `web/package-lock.json` and put in `OUT_DIR` by `build.rs`),
//! `ed25519.js` (@noble/ed25519, for browsers without Ed25519 in WebCrypto), and `pubkey.pem`, the match key `serve --keys` pins, which every signature is checked
//! against.
//!
//! These routes and the origin's files answer any origin (CORS `*`, GET and HEAD): a site that
//! embeds the player loads all of it from this server. They are public already; keys still
//! need a viewer token, and `/dev-token` and the preview's status routes stay same-origin.
//!
//! May call: `assets`.

use axum::Router;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use tower_http::cors::{Any, CorsLayer};

const PLAYER_JS: &str = include_str!("../../web/player/player.js");
const PLAYER_CSS: &str = include_str!("../../web/player/player.css");
const SHARED_JS: &str = include_str!("../../web/player/shared.js");
const SEGMENTS_JS: &str = include_str!("../../web/player/segments.js");
const PATHS_JS: &str = include_str!("../../web/player/paths.js");
const CACHE_JS: &str = include_str!("../../web/player/cache.js");
const EARLY_JS: &str = include_str!("../../web/player/early.js");
const POLICY_JS: &str = include_str!("../../web/player/policy.js");
const TELEMETRY_JS: &str = include_str!("../../web/player/telemetry.js");
/// Empty when the build found no `web/node_modules/hls.js` (build.rs warns).
const HLS_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hls.min.js"));
/// Empty when the build found no `web/node_modules/p2p-media-loader-*` (build.rs warns).
const P2PML_CORE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p2pml-core.js"));
const P2PML_HLSJS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/p2pml-hlsjs.js"));
/// @noble/ed25519; empty when the build found none (build.rs warns).
const ED25519_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/ed25519.js"));

/// Whether this build carries hls.js (neither page can play without it).
pub fn has_hls() -> bool {
    !HLS_JS.is_empty()
}

/// Whether this build carries p2p-media-loader (without it the player cannot load).
pub fn has_p2p() -> bool {
    !P2PML_CORE.is_empty() && !P2PML_HLSJS.is_empty()
}

/// CORS for what a page on another site loads from this server: anyone may GET it, with a
/// `Range` (web seeds and p2p-media-loader's HTTP loader use ranges).
pub fn public_cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([header::RANGE])
        .expose_headers([header::CONTENT_RANGE, header::ACCEPT_RANGES, header::ETAG])
}

/// The public key from `serve --keys`, which the pages check every signature against: never
/// the `pubkey.pem` of the origin they check.
#[derive(Clone)]
pub struct PinnedKey(pub String);

pub fn routes(pinned: PinnedKey) -> Router {
    let pem = Arc::new(pinned.0);
    let bundles: [(&str, &'static [u8], &'static str); 4] = [
        ("/.player/hls.min.js", HLS_JS, "hls.js"),
        ("/.player/p2pml-core.js", P2PML_CORE, "p2p-media-loader"),
        ("/.player/p2pml-hlsjs.js", P2PML_HLSJS, "p2p-media-loader"),
        ("/.player/ed25519.js", ED25519_JS, "@noble/ed25519"),
    ];
    let files = super::assets::routes(&[
        ("/.player/player.js", PLAYER_JS),
        ("/.player/shared.js", SHARED_JS),
        ("/.player/segments.js", SEGMENTS_JS),
        ("/.player/paths.js", PATHS_JS),
        ("/.player/cache.js", CACHE_JS),
        ("/.player/early.js", EARLY_JS),
        ("/.player/policy.js", POLICY_JS),
        ("/.player/telemetry.js", TELEMETRY_JS),
        ("/.player/player.css", PLAYER_CSS),
    ]);
    bundles
        .into_iter()
        .fold(files, |router, (path, bytes, what)| {
            router.route(path, get(move || async move { bundle(bytes, what) }))
        })
        .route(
            "/.player/pubkey.pem",
            get(move || {
                let pem = pem.clone();
                async move {
                    (
                        [
                            (
                                header::CONTENT_TYPE,
                                HeaderValue::from_static("application/x-pem-file"),
                            ),
                            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                        ],
                        pem.as_str().to_string(),
                    )
                }
            }),
        )
        .layer(public_cors())
}

/// An npm bundle compiled in, or 503 saying how to get it when the build had none.
fn bundle(bytes: &'static [u8], what: &str) -> Response {
    if bytes.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this swarmpack was built without {what}: run scripts/setup (npm ci in web/) and rebuild\n"
            ),
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
