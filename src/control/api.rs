//! The control API's routes (CONTRACT.md, "The control API"). Every request needs
//! `Authorization: Bearer $SWARMPACK_API_TOKEN` (compared in constant time); errors are JSON
//! `{"error": "..."}` naming the field.
//!
//! May call: `audience`, `records`, `request`, `ingest`, `keys`, `profile`, `run`, `sync`.

use super::Controller;
use super::records::{MatchRecord, Remembered};
use super::request::{self, Refusal};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::{Arc, Mutex};

/// What the routes share.
pub struct Api {
    pub controller: Arc<Mutex<Controller>>,
    pub token: String,
    pub profiles: std::path::PathBuf,
    /// `--origin-allow`: the origin URL prefixes a request may name; nothing else is taken.
    pub origin_allow: Vec<String>,
}

/// Clip and archive jobs running at once, over every match; more get 429.
pub const MAX_JOBS: usize = 2;

/// A match ID from the path, checked before anything touches the disk with it: a
/// percent-decoded `..%2F..` must never name a file (404, as for a match not here).
pub(crate) fn refuse_id(id: &str) -> Option<Response> {
    (!crate::profile::is_path_safe_name(id))
        .then(|| error(404, format!("match: no match {id:?} here")))
}

/// Whether `origin` is under one of the `--origin-allow` prefixes: equal to one, or going on
/// past it at a `/` (so `file:///srv/origin` does not admit `file:///srv/origin-evil`).
pub fn origin_allowed(origin: &str, allow: &[String]) -> bool {
    allow.iter().any(|p| {
        origin == p
            || origin
                .strip_prefix(p.as_str())
                .is_some_and(|rest| p.ends_with('/') || rest.starts_with('/'))
    })
}

/// The largest request body taken.
pub(crate) const MAX_BODY: usize = 64 * 1024;

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/v1/matches", post(create).get(list))
        .route("/v1/matches/{id}", get(show).delete(stop))
        .route("/v1/matches/{id}/markers", post(marker))
        .route("/v1/matches/{id}/delivery", axum::routing::patch(delivery))
        .route("/v1/matches/{id}/clips", post(clip))
        .route("/v1/matches/{id}/archive", post(archive))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .route_layer(middleware::from_fn_with_state(api.clone(), authorize))
        .with_state(api)
}

pub(crate) fn error(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

pub(crate) async fn authorize(State(api): State<Arc<Api>>, req: Request, next: Next) -> Response {
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.is_empty() || !crate::keys::same_secret(given, &api.token) {
        let mut resp = error(
            401,
            "expected Authorization: Bearer <the controller's SWARMPACK_API_TOKEN>",
        );
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return resp;
    }
    next.run(req).await
}

/// Spool records of match `id` not yet on the origin.
pub(crate) fn spool_depth(spool: &std::path::Path, id: &str) -> usize {
    std::fs::read_dir(crate::run::queue_dir(spool, id))
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "meta"))
                .count()
        })
        .unwrap_or(0)
}

/// What `GET` shows of a match.
pub(crate) fn view(r: &MatchRecord, spool_depth: usize) -> serde_json::Value {
    let id = &r.spec.match_id;
    let angles: serde_json::Map<String, serde_json::Value> = r
        .spec
        .angles
        .iter()
        .map(|(name, uri)| {
            let feed = r.feeds.get(name).map_or("live", String::as_str);
            let feed = if r.state.is_running() { feed } else { "off" };
            (
                name.clone(),
                json!({"uri": crate::ingest::srt::redacted(uri), "feed": feed}),
            )
        })
        .collect();
    let window_len = crate::profile::Profile::load(&r.spec.profile_file)
        .map(|p| p.segment.window)
        .unwrap_or(0);
    let newest_seq = r
        .newest_window
        .filter(|_| window_len > 0)
        .map(|w| (w + 1) * window_len - 1);
    json!({
        "match": id,
        "state": r.state,
        "profile": r.spec.profile,
        "origin": crate::ingest::srt::redacted(&r.spec.origin),
        "angles": angles,
        "newest_window": r.newest_window,
        "newest_seq": newest_seq,
        "spool_depth": spool_depth,
        "runs": r.runs,
        "pid": r.pid,
        "last_error": r.last_error,
        "created": r.created,
        "playback": playback(r),
    })
}

pub(crate) fn playback(r: &MatchRecord) -> serde_json::Value {
    let base = r.spec.public_url.trim_end_matches('/');
    let id = &r.spec.match_id;
    json!({
        "master": format!("{base}/{id}/master.m3u8"),
        "watch": format!("{base}/watch?match={id}"),
        "preview": format!("{base}/?match={id}"),
    })
}

/// The request's `Idempotency-Key`, if any; why it is refused (400) when it is empty, too
/// long or not visible ASCII.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, &'static str> {
    match headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string))
    {
        None => Ok(None),
        Some(Ok(k)) if !k.is_empty() && k.len() <= 255 => Ok(Some(k)),
        Some(_) => Err("Idempotency-Key: expected 1 to 255 visible ASCII characters"),
    }
}

/// 422 for an origin not under `--origin-allow`.
pub(crate) fn refuse_origin(origin: &str, allow: &[String]) -> Option<Response> {
    (!origin_allowed(origin, allow)).then(|| {
        error(
            422,
            format!(
                "origin: {:?} is not under an allowed prefix: expected one of [{}] (control --origin-allow PREFIX)",
                crate::ingest::srt::redacted(origin),
                allow
                    .iter()
                    .map(|p| crate::ingest::srt::redacted(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    })
}

async fn create(State(api): State<Arc<Api>>, headers: HeaderMap, body: Bytes) -> Response {
    let key = match idempotency_key(&headers) {
        Ok(k) => k,
        Err(why) => return error(400, why),
    };
    let api2 = api.clone();
    tokio::task::spawn_blocking(move || create_blocking(&api2, key, &body))
        .await
        .unwrap_or_else(|e| error(500, format!("internal error: {e}")))
}

fn create_blocking(api: &Api, key: Option<String>, body: &[u8]) -> Response {
    let mut c = crate::sync::lock(&api.controller);
    let fingerprint = request::fingerprint(body);
    if let Some(key) = &key
        && let Some(first) = c.store().remembered(key)
    {
        if first.fingerprint != fingerprint {
            return error(
                422,
                "Idempotency-Key: this key was used with another request body; use a new key for a new request",
            );
        }
        let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
        return (status, axum::Json(first.body)).into_response();
    }
    let spec = match request::parse(body, &api.profiles) {
        Ok(spec) => spec,
        Err(Refusal { status, message }) => return error(status, message),
    };
    if let Some(refused) = refuse_origin(&spec.origin, &api.origin_allow) {
        return refused;
    }
    if c.is_running(&spec.match_id) {
        return error(
            409,
            format!(
                "match: {:?} is already running; stop it first (DELETE /v1/matches/{})",
                spec.match_id, spec.match_id
            ),
        );
    }
    let record = match c.create(spec) {
        Ok(r) => r.clone(),
        Err(e) => return error(500, format!("{e}: {}", e.source)),
    };
    let answer = json!({
        "match": record.spec.match_id,
        "state": record.state,
        "playback": playback(&record),
    });
    if let Some(key) = &key {
        let remembered = Remembered {
            fingerprint,
            status: 201,
            body: answer.clone(),
        };
        if let Err(e) = c.store().remember(key, &remembered) {
            tracing::error!("{e}: {}", e.source);
        }
    }
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

async fn list(State(api): State<Arc<Api>>) -> Response {
    let c = crate::sync::lock(&api.controller);
    let spool = c.store().spool_dir();
    let all: Vec<serde_json::Value> = c
        .all()
        .map(|r| view(r, spool_depth(&spool, &r.spec.match_id)))
        .collect();
    axum::Json(json!({"matches": all})).into_response()
}

async fn show(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    if let Some(r) = refuse_id(&id) {
        return r;
    }
    let (record, spool) = {
        let c = crate::sync::lock(&api.controller);
        (c.get(&id).cloned(), c.store().spool_dir())
    };
    let Some(r) = record else {
        return error(404, format!("match: no match {id:?} here"));
    };
    let mut v = view(&r, spool_depth(&spool, &id));
    // What its fans experience now, from the collector its players report to (not under the
    // controller's lock: the collector may be slow).
    let collector = crate::profile::Profile::load(&r.spec.profile_file)
        .ok()
        .and_then(|p| p.qoe.collector)
        .filter(|_| r.state.is_running());
    let audience = match collector {
        Some(c) => tokio::task::spawn_blocking(move || super::audience::now(&c, &id))
            .await
            .ok()
            .flatten(),
        None => None,
    };
    v["audience"] = audience.unwrap_or(serde_json::Value::Null);
    axum::Json(v).into_response()
}

async fn stop(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    if let Some(r) = refuse_id(&id) {
        return r;
    }
    let mut c = crate::sync::lock(&api.controller);
    let spool = c.store().spool_dir();
    match c.stop(&id) {
        Some(r) => (
            StatusCode::ACCEPTED,
            axum::Json(view(r, spool_depth(&spool, &id))),
        )
            .into_response(),
        None => error(404, format!("match: no match {id:?} here")),
    }
}

/// `POST …/clips`: 202, then `clip.ready` once the highlight is on the origin.
async fn clip(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(r) = refuse_id(&id) {
        return r;
    }
    let clip = match request::parse_clip(&body) {
        Ok(c) => c,
        Err(Refusal { status, message }) => return error(status, message),
    };
    let mut c = crate::sync::lock(&api.controller);
    if c.get(&id).is_none() {
        return error(404, format!("match: no match {id:?} here"));
    }
    if let Some(r) = jobs_full(&c) {
        return r;
    }
    match c.start_job(&id, Some((&clip.label, &clip.start, &clip.end))) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({
                "match": id,
                "label": clip.label,
                "state": "cutting",
                "manifest": format!("{id}/clips/{}/clip.json", clip.label),
            })),
        )
            .into_response(),
        Err(e) => error(500, format!("cannot start swarmpack clip: {e}")),
    }
}

/// 429 when [`MAX_JOBS`] clip and archive jobs are running already.
pub(crate) fn jobs_full(c: &Controller) -> Option<Response> {
    let running = c.jobs_running();
    if running < MAX_JOBS {
        return None;
    }
    let mut r = error(
        429,
        format!(
            "{running} clip/archive job(s) are running (at most {MAX_JOBS}); try again when one has finished"
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("10"));
    Some(r)
}

/// `POST …/archive`: for an ended match, 202, then `archive.ready`.
async fn archive(State(api): State<Arc<Api>>, Path(id): Path<String>) -> Response {
    if let Some(r) = refuse_id(&id) {
        return r;
    }
    let mut c = crate::sync::lock(&api.controller);
    let Some(r) = c.get(&id) else {
        return error(404, format!("match: no match {id:?} here"));
    };
    if r.state.is_running() {
        return error(
            409,
            format!("match: {id:?} is still running; archive it once it has ended"),
        );
    }
    if let Some(r) = jobs_full(&c) {
        return r;
    }
    match c.start_job(&id, None) {
        Ok(()) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({"match": id, "state": "archiving", "manifest": format!("{id}/archive.json")})),
        )
            .into_response(),
        Err(e) => error(500, format!("cannot start swarmpack archive: {e}")),
    }
}

/// `PATCH …/delivery`: some `[delivery]` keys (JSON); 200 with the whole policy now in force,
/// which the run publishes in a new signed `p2p.json` (players read it within 30 s).
async fn delivery(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(r) = refuse_id(&id) {
        return r;
    }
    let changes: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v @ serde_json::Value::Object(_)) => v,
        _ => {
            return error(
                400,
                "body: expected a JSON object of [delivery] keys, e.g. {\"behind_live\": 8}",
            );
        }
    };
    let mut c = crate::sync::lock(&api.controller);
    if let Some(refused) = not_running(&c, &id, "the policy goes to its run") {
        return refused;
    }
    match c.change_delivery(&id, &changes) {
        Ok(d) => axum::Json(json!({"match": id, "delivery": d})).into_response(),
        Err(e @ super::DeliveryRefused::Invalid(_)) => error(422, e.to_string()),
        Err(super::DeliveryRefused::NoMatch) => error(404, format!("match: no match {id:?} here")),
        Err(e) => error(500, e.to_string()),
    }
}

/// 404 for a match the controller does not know, 409 for one not running (`why` says what
/// needs it running); `None` for a running match.
fn not_running(c: &super::Controller, id: &str, why: &str) -> Option<Response> {
    match c.get(id) {
        None => Some(error(404, format!("match: no match {id:?} here"))),
        Some(r) if !r.state.is_running() => {
            Some(error(409, format!("match: {id:?} is not running; {why}")))
        }
        Some(_) => None,
    }
}

/// `POST …/markers`: 201 with the marker, which is in the live playlists from their next
/// update.
async fn marker(State(api): State<Arc<Api>>, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(r) = refuse_id(&id) {
        return r;
    }
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let marker = match request::parse_marker(&body, &now) {
        Ok(m) => m,
        Err(Refusal { status, message }) => return error(status, message),
    };
    let mut c = crate::sync::lock(&api.controller);
    if let Some(refused) = not_running(&c, &id, "markers go into live playlists") {
        return refused;
    }
    match c.add_marker(&id, &marker) {
        Ok(()) => (StatusCode::CREATED, axum::Json(json!(marker))).into_response(),
        Err(e) => error(500, format!("cannot hand the marker to the run: {e}")),
    }
}
