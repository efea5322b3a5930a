//! The pages' own files (HTML, CSS, JavaScript under `web/`), compiled into the binary and
//! served from one route table per page, each with its type and `no-cache` (a new build's
//! page is seen at once).
//!
//! A leaf of `serve`: calls only axum.

use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Routes serving each `(path, body)`; the type comes from the path's extension (`.js`,
/// `.css`; anything else is a page).
pub(super) fn routes<S: Clone + Send + Sync + 'static>(
    files: &[(&'static str, &'static str)],
) -> Router<S> {
    files.iter().fold(Router::new(), |router, &(path, body)| {
        router.route(
            path,
            get(move || async move { asset(content_type(path), body) }),
        )
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/html; charset=utf-8",
    }
}

/// One compiled-in file.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn types_follow_extensions() {
        assert_eq!(super::content_type("/"), "text/html; charset=utf-8");
        assert_eq!(super::content_type("/watch"), "text/html; charset=utf-8");
        assert_eq!(
            super::content_type("/.watch/watch.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            super::content_type("/.player/player.css"),
            "text/css; charset=utf-8"
        );
    }
}
