//! The CMCD collector's HTTP edge: `POST /cmcd/{match}` takes players' CMCD v2 reports
//! (`application/cmcd`, one per line; [`crate::audience::cmcd`]) into the [`Audience`], and
//! `GET /metrics` shows the figures. On `keyserver`, `serve` and `collect`.
//!
//! Answers: 204 taken; 400 a malformed body (the line and key named), a bad match name or a
//! report of another match; 404 a match this collector does not know; 413 a body over
//! [`MAX_BODY`] bytes or [`MAX_LINES`] lines; 429 over a rate (with `Retry-After`). Nothing
//! is stored about the client but its reports' numbers: no address, no token (CMCD targets
//! cannot send one, and the reports change nothing but the figures).
//!
//! May call: `audience`, `profile`, `sync`.

use crate::audience::history::{Point, STEP};
use crate::audience::{Audience, Limits, Refused, cmcd};
use crate::profile::is_path_safe_name;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The largest report body taken (a player batches a few reports of a few hundred bytes).
pub const MAX_BODY: usize = 64 * 1024;
/// The most report lines in one body.
pub const MAX_LINES: usize = 256;

/// Whether a match exists for this collector (its origin has it, or its key server served it).
pub type Known = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// One collector: the audience, which matches it takes reports for, and its clock.
pub struct Collector {
    audience: Mutex<Audience>,
    known: Known,
    started: Instant,
}

impl Collector {
    pub fn new(limits: Limits, known: Known) -> Collector {
        Collector {
            audience: Mutex::new(Audience::new(limits)),
            known,
            started: Instant::now(),
        }
    }

    fn audience(&self) -> std::sync::MutexGuard<'_, Audience> {
        crate::sync::lock(&self.audience)
    }

    /// The figures as OpenMetrics text (sessions silent past the timeout forgotten first).
    pub fn render(&self) -> String {
        let mut audience = self.audience();
        audience.expire(self.now());
        audience.figures().render()
    }

    /// The last 10 minutes of `match_id`'s audience, oldest step first.
    pub fn history(&self, match_id: &str) -> Vec<Point> {
        let now = self.now();
        self.audience().history(match_id, now)
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// The answer to a body over [`MAX_BODY`], counted.
    pub fn oversized(&self) -> (StatusCode, String) {
        self.audience().figures().report("oversized", 1);
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {MAX_BODY} bytes"),
        )
    }

    /// One request's body for `match_id`: the status and a one-line reason.
    pub fn take(&self, match_id: &str, body: &[u8]) -> (StatusCode, String) {
        let refuse = |outcome, status, why: String| {
            self.audience().figures().report(outcome, 1);
            (status, why)
        };
        if !is_path_safe_name(match_id) {
            return refuse(
                "malformed",
                StatusCode::BAD_REQUEST,
                format!(
                    "match {match_id:?}: expected {}",
                    crate::profile::path_safe_name_rule()
                ),
            );
        }
        if !(self.known)(match_id) {
            return refuse(
                "unknown_match",
                StatusCode::NOT_FOUND,
                format!("no match {match_id} here"),
            );
        }
        if body.len() > MAX_BODY {
            return self.oversized();
        }
        let Ok(text) = std::str::from_utf8(body) else {
            return refuse(
                "malformed",
                StatusCode::BAD_REQUEST,
                "the body is not UTF-8 text (expected application/cmcd: one report per line)"
                    .into(),
            );
        };
        if text.lines().count() > MAX_LINES {
            return refuse(
                "oversized",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("more than {MAX_LINES} report lines"),
            );
        }
        let reports = match cmcd::parse_body(text) {
            Ok(r) => r,
            Err(e) => return refuse("malformed", StatusCode::BAD_REQUEST, e.to_string()),
        };
        let now = self.now();
        let taken = self.audience().accept(match_id, &reports, now);
        match taken {
            Ok(_) => (StatusCode::NO_CONTENT, String::new()),
            Err(e @ Refused::OtherMatch { .. }) => {
                refuse("malformed", StatusCode::BAD_REQUEST, e.to_string())
            }
            Err(e @ Refused::Flood { .. }) => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
        }
    }
}

async fn post_reports(
    State(c): State<Arc<Collector>>,
    Path(match_id): Path<String>,
    body: Body,
) -> Response {
    // At most the limit is read; a larger body (or one cut off) is refused whole.
    let (status, why) = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => c.take(&match_id, &body),
        Err(_) => c.oversized(),
    };
    if status.is_success() {
        return status.into_response();
    }
    tracing::debug!(
        status = status.as_u16(),
        "CMCD report for {match_id:?} refused: {why}"
    );
    let mut r = (status, format!("{why}\n")).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

/// `GET /cmcd/{match}/figures`: `{"step": 10, "points": [...]}`, the last 10 minutes
/// ([`Point`]), for the operator's charts.
async fn get_figures(State(c): State<Arc<Collector>>, Path(match_id): Path<String>) -> Response {
    if !is_path_safe_name(&match_id) {
        return (StatusCode::BAD_REQUEST, "malformed match\n").into_response();
    }
    let body = serde_json::json!({ "step": STEP, "points": c.history(&match_id) });
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        axum::Json(body),
    )
        .into_response()
}

/// `POST /cmcd/{match}` (any origin may post: players run on fans' sites),
/// `GET /cmcd/{match}/figures` and, with
/// `metrics`, `GET /metrics`.
pub fn routes(collector: Arc<Collector>, metrics: bool) -> Router {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE]);
    let figures = collector.clone();
    let app = Router::new()
        .route("/cmcd/{match}", post(post_reports))
        .route("/cmcd/{match}/figures", get(get_figures))
        // The handler reads the body itself, so that it answers 413 and counts it.
        .layer(DefaultBodyLimit::disable())
        .layer(cors);
    let app = match metrics {
        false => app,
        true => app.route(
            "/metrics",
            get(move || {
                let text = figures.render();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        text,
                    )
                }
            }),
        ),
    };
    app.with_state(collector)
}

/// How many matches a collector without an origin takes reports for.
pub const ANY_MATCHES: usize = 256;

/// Any well-formed match name, the first [`ANY_MATCHES`] of them.
pub fn any_match() -> Known {
    let seen = Mutex::new(std::collections::HashSet::<String>::new());
    Box::new(move |m: &str| {
        let mut seen = crate::sync::lock(&seen);
        if seen.contains(m) {
            return true;
        }
        seen.len() < ANY_MATCHES && seen.insert(m.to_owned())
    })
}
