//! The fans' page at `/watch?match=ID` (web/watch.html): the player from `/.player/`
//! ([`super::player`]) mounted full width, with the viewer token from the address, the tab or
//! `/dev-token`.
//!
//! Routes: `/watch`, `/.watch/{watch.js,watch.css}`.
//!
//! May call: `assets`.

use axum::Router;

const WATCH_HTML: &str = include_str!("../../web/watch.html");
const WATCH_JS: &str = include_str!("../../web/watch.js");
const WATCH_CSS: &str = include_str!("../../web/watch.css");

pub fn routes() -> Router {
    super::assets::routes(&[
        ("/watch", WATCH_HTML),
        ("/.watch/watch.js", WATCH_JS),
        ("/.watch/watch.css", WATCH_CSS),
    ])
}
