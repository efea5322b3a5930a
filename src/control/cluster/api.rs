//! The control API on a node of the pool: the contract's `/v1/matches…` answered from the
//! pool's records, `GET /v1/nodes`, and `GET /metrics` (this node's figures).
//!
//! - Reads come from the node's last view of the pool, so they go on while NATS is away.
//! - Writes need NATS: without it they are refused with 503 and `Retry-After`.
//! - Markers, delivery changes, clips and archives need the match's run or its files: the
//!   node holding the match's primary handles them. Another node forwards the request to
//!   it, with the caller's own token.
//!
//! May call: `bus`, `record`, `api`, `records`, `request`, `profile`, `sync`.

use super::Shared;
use super::bus::Created;
use super::record::{self, ClusterMatch, Role, WorkItem};
use crate::control::api::{self, Api, error};
use crate::control::records::{MatchRecord, Remembered};
use crate::control::request::{self, Refusal};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// What the routes share: this node's own controller (for what its runs must do) and the
/// pool.
pub struct ClusterApi {
    pub local: Arc<Api>,
    pub shared: Arc<Shared>,
}

pub fn router(c: Arc<ClusterApi>) -> Router {
    let local = c.local.clone();
    Router::new()
        .route("/v1/matches", post(create).get(list))
        .route("/v1/matches/{id}", get(show).delete(stop))
        .route("/v1/matches/{id}/markers", post(to_primary))
        .route(
            "/v1/matches/{id}/delivery",
            axum::routing::patch(to_primary),
        )
        .route("/v1/matches/{id}/clips", post(to_primary))
        .route("/v1/matches/{id}/archive", post(to_primary))
        .route("/v1/nodes", get(nodes))
        .route("/metrics", get(metrics))
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .route_layer(axum::middleware::from_fn_with_state(
            local.clone(),
            api::authorize,
        ))
        .with_state(c)
}

/// 503 while NATS is away: the pool cannot be written.
fn unavailable(c: &ClusterApi) -> Option<Response> {
    (!c.shared.bus.connected()).then(|| {
        let mut r = error(
            503,
            "the pool's NATS is not reachable from this node: reads show the last state seen, writes wait until it is back",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
        r
    })
}

fn view(c: &ClusterApi, m: &ClusterMatch) -> serde_json::Value {
    // The profile as this node has it (the request named the one of the node it came in by).
    let mut record = m.record.clone();
    record.spec.profile_file = c
        .local
        .profiles
        .join(format!("{}.toml", record.spec.profile));
    let mut v = api::view(&record, m.spool_depth);
    v["node"] = json!(m.primary);
    v["standby_node"] = json!(m.standby_node);
    v["takeovers"] = json!(m.takeovers);
    v["end_at"] = json!(m.end_at);
    v["delivery"] = json!(m.delivery);
    v
}

async fn create(State(c): State<Arc<ClusterApi>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = unavailable(&c) {
        return r;
    }
    let key = match api::idempotency_key(&headers) {
        Ok(k) => k,
        Err(why) => return error(400, why),
    };
    let fingerprint = request::fingerprint(&body);
    if let Some(key) = &key
        && let Some(first) = first_answer(&c, key, &fingerprint).await
    {
        return first;
    }
    let (status, answer) = create_match(&c, &body).await;
    if let Some(key) = &key {
        let bus = &c.shared.bus;
        // A refusal of the request itself is its answer; a pool that failed is not.
        let kept = if status < 500 {
            let remembered = Remembered {
                fingerprint,
                status,
                body: answer.clone(),
            };
            bus.set_key_answer(key, &serde_json::to_vec(&remembered).expect("json"))
                .await
        } else {
            bus.release_key(key).await
        };
        if let Err(e) = kept {
            tracing::error!("Idempotency-Key: {e}");
        }
    }
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(answer)).into_response()
}

/// Claims `key` for this request; the first answer when another request (through any node)
/// had it first.
async fn first_answer(c: &ClusterApi, key: &str, fingerprint: &str) -> Option<Response> {
    let bus = &c.shared.bus;
    let placeholder = Remembered {
        fingerprint: fingerprint.to_string(),
        status: 0,
        body: serde_json::Value::Null,
    };
    match bus
        .claim_key(key, &serde_json::to_vec(&placeholder).expect("json"))
        .await
    {
        Ok(Created::Yes(_)) => return None,
        Ok(Created::AlreadyThere) => {}
        Err(e) => return Some(error(503, format!("Idempotency-Key: {e}"))),
    }
    // The first request may still be on its way (through another node): wait for its answer.
    for _ in 0..50 {
        match bus.key_answer::<Remembered>(key).await {
            Ok(Some(first)) if first.fingerprint != fingerprint => {
                return Some(error(
                    422,
                    "Idempotency-Key: this key was used with another request body; use a new key for a new request",
                ));
            }
            Ok(Some(first)) if first.status != 0 => {
                let status = StatusCode::from_u16(first.status).unwrap_or(StatusCode::OK);
                return Some((status, axum::Json(first.body)).into_response());
            }
            // Released: the first request failed; this one goes ahead.
            Ok(None) => {
                return match bus
                    .claim_key(key, &serde_json::to_vec(&placeholder).expect("json"))
                    .await
                {
                    Ok(Created::Yes(_)) => None,
                    _ => Some(error(
                        409,
                        "Idempotency-Key: another request with this key is being handled; retry",
                    )),
                };
            }
            Ok(Some(_)) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => return Some(error(503, format!("Idempotency-Key: {e}"))),
        }
    }
    Some(error(
        409,
        "Idempotency-Key: another request with this key is still being handled; retry",
    ))
}

fn refusal(status: u16, message: impl Into<String>) -> (u16, serde_json::Value) {
    (status, json!({"error": message.into()}))
}

/// Checks the request and makes the match in the pool: its record (one per ID, whichever
/// node asks first) and its work items.
async fn create_match(c: &ClusterApi, body: &[u8]) -> (u16, serde_json::Value) {
    let spec = match request::parse(body, &c.local.profiles) {
        Ok(spec) => spec,
        Err(Refusal { status, message }) => return refusal(status, message),
    };
    if let Some(refused) = api::refuse_origin(&spec.origin, &c.local.origin_allow) {
        let message = "origin: not under an allowed prefix (control --origin-allow PREFIX)";
        return (refused.status().as_u16(), json!({"error": message}));
    }
    if !(spec.origin.starts_with("file://") || spec.origin.starts_with("s3://")) {
        return refusal(
            422,
            "origin: a pool runs every match with run --redundant, which needs an origin with conditional writes: expected file:// or s3://",
        );
    }
    let profile = match crate::profile::Profile::load(&spec.profile_file) {
        Ok(p) => p,
        Err(e) => return refusal(422, format!("profile: {e}")),
    };
    let units = record::units(&profile, spec.angles.len());
    let biggest = crate::sync::lock(&c.shared.cache)
        .nodes
        .iter()
        .filter(|n| n.alive(super::now_ms()))
        .map(|n| n.capacity)
        .max();
    if let Some(biggest) = biggest
        && units > biggest
    {
        return refusal(
            422,
            format!(
                "profile: {:?} with {} angle(s) needs {units} capacity units (one per rung per angle); the largest node of the pool has {biggest} (control --capacity)",
                spec.profile,
                spec.angles.len()
            ),
        );
    }
    let now = super::now_ms();
    let end_at = spec.duration.map(|d| {
        let end =
            chrono::DateTime::from_timestamp_millis(now + (d * 1000.0) as i64).unwrap_or_default();
        end.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    });
    let m = ClusterMatch {
        record: MatchRecord::starting(spec),
        created_ms: now,
        end_at,
        units,
        standby: profile.control.standby,
        primary: None,
        standby_node: None,
        takeovers: 0,
        spool_depth: 0,
        delivery: None,
    };
    let id = m.record.spec.match_id.clone();
    let bus = &c.shared.bus;
    let made = match bus.create_match(&m).await {
        Ok(Created::Yes(_)) => true,
        Ok(Created::AlreadyThere) => match bus.get_match(&id).await {
            // Ended or failed: it may start again, if no other request does first.
            Ok(Some(old)) if !old.value.record.state.is_running() => {
                matches!(bus.update_match(&m, old.revision).await, Ok(Some(_)))
            }
            Ok(_) => false,
            Err(e) => return refusal(503, e.to_string()),
        },
        Err(e) => return refusal(503, e.to_string()),
    };
    if !made {
        return refusal(
            409,
            format!("match: {id:?} is already running; stop it first (DELETE /v1/matches/{id})"),
        );
    }
    for role in m.roles() {
        let item = WorkItem {
            match_id: id.clone(),
            role,
            created_ms: m.created_ms,
        };
        if let Err(e) = bus
            .publish_work(&item, &super::bus::dedupe_id(&item, 0))
            .await
        {
            let why = format!("cannot queue its run: {e}");
            let _ = bus
                .change_match(&id, |r| {
                    r.record.state = crate::control::records::MatchState::Failed;
                    r.record.last_error = Some(why.clone());
                    true
                })
                .await;
            return refusal(503, why);
        }
    }
    tracing::info!(
        "match {id}: queued ({} role(s), {units} units)",
        m.roles().len()
    );
    c.shared.remember(&m);
    (
        201,
        json!({"match": id, "state": m.record.state, "playback": api::playback(&m.record)}),
    )
}

async fn list(State(c): State<Arc<ClusterApi>>) -> Response {
    let all: Vec<serde_json::Value> = crate::sync::lock(&c.shared.cache)
        .matches
        .values()
        .map(|m| view(&c, m))
        .collect();
    axum::Json(json!({"matches": all})).into_response()
}

/// The match as the pool has it now, or as this node last saw it while NATS is away.
async fn current(c: &ClusterApi, id: &str) -> Option<ClusterMatch> {
    if c.shared.bus.connected()
        && let Ok(fresh) = c.shared.bus.get_match(id).await
    {
        if let Some(v) = &fresh {
            c.shared.remember(&v.value);
        }
        return fresh.map(|v| v.value);
    }
    crate::sync::lock(&c.shared.cache).matches.get(id).cloned()
}

async fn show(State(c): State<Arc<ClusterApi>>, Path(id): Path<String>) -> Response {
    if let Some(r) = api::refuse_id(&id) {
        return r;
    }
    match current(&c, &id).await {
        Some(m) => axum::Json(view(&c, &m)).into_response(),
        None => error(404, format!("match: no match {id:?} here")),
    }
}

async fn stop(State(c): State<Arc<ClusterApi>>, Path(id): Path<String>) -> Response {
    if let Some(r) = api::refuse_id(&id) {
        return r;
    }
    if let Some(r) = unavailable(&c) {
        return r;
    }
    let changed = c
        .shared
        .bus
        .change_match(&id, |m| {
            if !m.record.state.is_running() || m.record.stop_requested {
                return false;
            }
            m.record.stop_requested = true;
            m.record.state = crate::control::records::MatchState::Stopping;
            true
        })
        .await;
    match changed {
        Ok(Some(m)) => {
            c.shared.remember(&m);
            tracing::info!("match {id}: stop asked for");
            (StatusCode::ACCEPTED, axum::Json(view(&c, &m))).into_response()
        }
        Ok(None) => error(404, format!("match: no match {id:?} here")),
        Err(e) => error(503, e.to_string()),
    }
}

async fn nodes(State(c): State<Arc<ClusterApi>>) -> Response {
    let now = super::now_ms();
    let all: Vec<serde_json::Value> = crate::sync::lock(&c.shared.cache)
        .nodes
        .iter()
        .map(|n| {
            let matches: Vec<serde_json::Value> = n
                .matches
                .iter()
                .map(|(m, role)| json!({"match": m, "role": role}))
                .collect();
            json!({
                "node": n.node,
                "capacity": n.capacity,
                "load": n.load,
                "matches": matches,
                "alive": n.alive(now),
                "api": n.api,
                "seen_ms_ago": now - n.seen_ms,
            })
        })
        .collect();
    axum::Json(json!({"nodes": all, "this_node": c.shared.cfg.node})).into_response()
}

async fn metrics(State(c): State<Arc<ClusterApi>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        c.shared.metrics.render(),
    )
        .into_response()
}

/// Markers, delivery, clips and archives: handled by the node holding the match's primary
/// (its run, its files); another node forwards the request there.
async fn to_primary(
    State(c): State<Arc<ClusterApi>>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    if let Some(r) = api::refuse_id(&id) {
        return r;
    }
    let Some(m) = current(&c, &id).await else {
        return error(404, format!("match: no match {id:?} here"));
    };
    let Some(primary) = m.holder(Role::Primary).map(str::to_string) else {
        return error(
            409,
            format!("match: {id:?} is not running on any node yet; retry in a few seconds"),
        );
    };
    if primary == c.shared.cfg.node {
        use tower::ServiceExt;
        // As it came in: the outer route's path parameters are not the inner one's.
        let (mut parts, body) = req.into_parts();
        parts.extensions = Default::default();
        return api::router(c.local.clone())
            .oneshot(Request::from_parts(parts, body))
            .await
            .unwrap_or_else(|never| match never {});
    }
    let node = crate::sync::lock(&c.shared.cache)
        .nodes
        .iter()
        .find(|n| n.node == primary)
        .cloned();
    let Some(node) = node else {
        return error(
            503,
            format!(
                "match: its node {primary:?} is not in the pool now; retry once another node has taken it"
            ),
        );
    };
    forward(&node.api, req).await
}

/// Sends `req` on to the node at `addr` as it came, and its answer back.
async fn forward(addr: &str, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, api::MAX_BODY).await else {
        return error(
            413,
            format!("body: expected at most {} bytes", api::MAX_BODY),
        );
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let url = format!("http://{addr}{path}");
    let headers = parts.headers;
    let method = parts.method.to_string();
    let sent = tokio::task::spawn_blocking(move || {
        let mut r = ureq::request(&method, &url).timeout(Duration::from_secs(10));
        for name in [header::AUTHORIZATION, header::CONTENT_TYPE] {
            if let Some(v) = headers.get(&name).and_then(|v| v.to_str().ok()) {
                r = r.set(name.as_str(), v);
            }
        }
        match r.send_bytes(&body) {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => {
                let status = resp.status();
                let mut bytes = Vec::new();
                use std::io::Read;
                let _ = resp
                    .into_reader()
                    .take(api::MAX_BODY as u64)
                    .read_to_end(&mut bytes);
                Ok((status, bytes))
            }
            Err(e) => Err(format!("{url}: {e}")),
        }
    })
    .await;
    match sent {
        Ok(Ok((status, bytes))) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "application/json")],
            bytes,
        )
            .into_response(),
        Ok(Err(e)) => error(502, format!("the match's node did not answer: {e}")),
        Err(e) => error(500, format!("internal error: {e}")),
    }
}
