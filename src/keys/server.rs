//! The key server: `GET /keys/{match}/{period}` returns the 16-byte content key to a viewer
//! whose token is valid now and bound to that match. Keys are derived on request, so the
//! server stores nothing per match. Tokens come as `Authorization: Bearer …` or `?token=…`.
//!
//! The decision is [`KeyService::authorize`], pure and testable; the axum handlers are a
//! thin layer over it. Logs name the match, the period and the outcome: never a token or key.
//!
//! May call: `derive`, `ice`, `token`, `profile`, `sync`.

use super::derive::{ContentKey, content_key};
use super::ice::{self, IceAnswer};
use super::token;
use crate::profile::IceServer;
use crate::profile::is_path_safe_name;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroizing;

/// A refusal: the HTTP status, a short reason for the body, and the detail for the server
/// log only (a forger learns nothing from the body about why a token failed).
#[derive(Debug, PartialEq, Eq)]
pub struct Denied {
    pub status: StatusCode,
    pub reason: &'static str,
    pub detail: &'static str,
}

fn deny(status: StatusCode, reason: &'static str) -> Denied {
    Denied {
        status,
        reason,
        detail: reason,
    }
}

/// The one body every missing or invalid token gets.
pub const UNAUTHORIZED: &str = "invalid or missing token";

fn unauthorized(detail: &'static str) -> Denied {
    Denied {
        status: StatusCode::UNAUTHORIZED,
        reason: UNAUTHORIZED,
        detail,
    }
}

/// The ICE servers of a match (from its signed `p2p.json`, or the key server's `--profile`).
pub type IceSource = Box<dyn Fn(&str) -> Option<Vec<IceServer>> + Send + Sync>;

/// What the key server knows: the two secrets and a clock (Unix seconds).
pub struct KeyService {
    // Secrets are wiped from memory when the service is dropped.
    content_secret: Zeroizing<Vec<u8>>,
    token_secret: Zeroizing<Vec<u8>>,
    /// Also accepted: development tokens (`serve --dev-tokens` only).
    dev_secret: Option<Zeroizing<Vec<u8>>>,
    /// TURN credentials: the shared secret, and where a match's ICE servers are found.
    turn_secret: Option<Zeroizing<Vec<u8>>>,
    ice_source: Option<IceSource>,
    now: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Matches this server gave a key for (at most [`MAX_WATCHED`]): the ones whose viewers'
    /// telemetry the collector beside it takes.
    watched: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Matches a key server remembers having viewers.
pub const MAX_WATCHED: usize = 4096;

/// Unix seconds from the system clock.
pub fn system_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl KeyService {
    pub fn new(
        content_secret: &[u8],
        token_secret: &[u8],
        now: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Self {
        KeyService {
            content_secret: Zeroizing::new(content_secret.to_vec()),
            token_secret: Zeroizing::new(token_secret.to_vec()),
            dev_secret: None,
            turn_secret: None,
            ice_source: None,
            now,
            watched: Default::default(),
        }
    }

    /// Answers `GET /keys/{match}/ice` with the ICE servers `source` finds for the match, TURN
    /// ones with credentials minted from `turn_secret`.
    pub fn with_ice(mut self, turn_secret: Option<&[u8]>, source: IceSource) -> Self {
        self.turn_secret = turn_secret.map(|s| Zeroizing::new(s.to_vec()));
        self.ice_source = Some(source);
        self
    }

    /// Also accepts development tokens (signed with [`token::dev_secret`]). Only for
    /// `serve --dev-tokens`: the production key server refuses them.
    pub fn accepting_dev_tokens(mut self) -> Self {
        self.dev_secret = Some(Zeroizing::new(token::dev_secret(&self.token_secret)));
        self
    }

    /// Decides one key request.
    pub fn authorize(
        &self,
        match_id: &str,
        period: &str,
        token: Option<&str>,
    ) -> Result<ContentKey, Denied> {
        if !is_path_safe_name(match_id) {
            return Err(deny(StatusCode::BAD_REQUEST, "malformed match"));
        }
        let period: u64 = period
            .parse()
            .ok()
            .filter(|_| period.bytes().all(|b| b.is_ascii_digit()))
            .ok_or(deny(StatusCode::BAD_REQUEST, "malformed period"))?;
        let claims = self.claims(match_id, token)?;
        if !claims.covers(period) {
            return Err(deny(
                StatusCode::FORBIDDEN,
                "token does not cover this key period",
            ));
        }
        let mut watched = crate::sync::lock(&self.watched);
        if watched.len() < MAX_WATCHED && !watched.contains(match_id) {
            watched.insert(match_id.to_owned());
        }
        drop(watched);
        Ok(content_key(&self.content_secret, match_id, period))
    }

    /// Whether this server has given a viewer a key of `match_id`.
    pub fn has_viewers(&self, match_id: &str) -> bool {
        let watched = crate::sync::lock(&self.watched);
        watched.contains(match_id)
    }

    /// Decides one ICE request: the match's ICE servers for a viewer whose token is valid now
    /// and bound to the match (any key period), TURN with credentials for its session.
    pub fn ice(&self, match_id: &str, token: Option<&str>) -> Result<IceAnswer, Denied> {
        if !is_path_safe_name(match_id) {
            return Err(deny(StatusCode::BAD_REQUEST, "malformed match"));
        }
        let claims = self.claims(match_id, token)?;
        let servers = self
            .ice_source
            .as_ref()
            .and_then(|source| source(match_id))
            .ok_or(Denied {
                status: StatusCode::NOT_FOUND,
                reason: "no ICE servers for this match here",
                detail: "no ICE servers: the match's p2p.json names none (serve), or keyserver has no --profile",
            })?;
        ice::answer(
            &servers,
            self.turn_secret.as_deref().map(Vec::as_slice),
            &claims.session,
            (self.now)(),
            claims.exp,
        )
        .map_err(|_| Denied {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: "TURN credentials are not available",
            detail: "the match names TURN servers but the keys have no turn.secret (swarmpack keygen --out KEYS adds one)",
        })
    }

    /// The claims of a token valid now and bound to `match_id`.
    fn claims(&self, match_id: &str, token: Option<&str>) -> Result<token::Claims, Denied> {
        let token = token.ok_or(unauthorized("missing token"))?;
        let now = (self.now)();
        let claims = match (
            token::verify(&self.token_secret, token, now),
            &self.dev_secret,
        ) {
            (Err(token::TokenError::Forged), Some(dev)) => token::verify(dev, token, now),
            (result, _) => result,
        };
        let claims = claims.map_err(|e| {
            unauthorized(match e {
                token::TokenError::Malformed => "malformed token",
                token::TokenError::Forged => "forged token (signature does not match)",
                token::TokenError::Expired => "expired token",
                token::TokenError::NotYetValid => "token not valid yet",
            })
        })?;
        if claims.match_id != match_id {
            return Err(deny(StatusCode::FORBIDDEN, "token is for another match"));
        }
        Ok(claims)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn get_key(
    State(service): State<Arc<KeyService>>,
    Path((match_id, period)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = bearer(&headers).or(query.get("token").map(String::as_str));
    match service.authorize(&match_id, &period, token) {
        Ok(key) => {
            tracing::debug!(%period, "key served for match {match_id}");
            (
                [
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/octet-stream"),
                    ),
                    (
                        header::CACHE_CONTROL,
                        HeaderValue::from_static("no-store, private"),
                    ),
                ],
                key.0.to_vec(),
            )
                .into_response()
        }
        Err(denied) => refused("key", denied),
    }
}

/// The answer to a refused request: the status and the one-line reason; the detail goes to
/// the log only.
fn refused(what: &str, denied: Denied) -> Response {
    match denied.status.is_server_error() {
        true => tracing::error!(
            status = denied.status.as_u16(),
            "{what} refused: {}",
            denied.detail
        ),
        false => tracing::info!(
            status = denied.status.as_u16(),
            "{what} refused: {}",
            denied.detail
        ),
    }
    let mut resp = (denied.status, format!("{}\n", denied.reason)).into_response();
    if denied.status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

/// `GET /keys/{match}/ice`: the viewer's ICE servers, TURN credentials included (never cached,
/// never logged).
async fn get_ice(
    State(service): State<Arc<KeyService>>,
    Path(match_id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let token = bearer(&headers).or(query.get("token").map(String::as_str));
    match service.ice(&match_id, token) {
        Ok(answer) => {
            tracing::debug!("ICE servers served for match {match_id}");
            (
                [(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store, private"),
                )],
                axum::Json(answer),
            )
                .into_response()
        }
        Err(denied) => refused("ICE servers", denied),
    }
}

/// The key server's routes, with CORS open so browser players can fetch keys.
pub fn router(service: Arc<KeyService>) -> Router {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION]);
    Router::new()
        .route("/keys/{match}/ice", get(get_ice))
        .route("/keys/{match}/{period}", get(get_key))
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(cors)
        .with_state(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::token::{Claims, issue};

    const CONTENT: &[u8] = &[1; 32];
    const TOKEN: &[u8] = &[2; 32];

    fn service() -> KeyService {
        KeyService::new(CONTENT, TOKEN, Box::new(|| 1500))
    }

    fn token_for(m: &str, nbf: u64, exp: u64) -> String {
        issue(
            TOKEN,
            &Claims {
                v: token::VERSION,
                match_id: m.into(),
                session: "s".into(),
                nbf,
                exp,
                periods: [40, 44],
            },
        )
    }

    mod a_valid_token {
        use super::*;

        #[test]
        fn it_should_make_its_match_one_with_viewers_and_a_refused_one_should_not() {
            let s = service();
            let t = token_for("final", 1000, 2000);
            assert!(!s.has_viewers("final"));
            assert!(s.authorize("final", "40", Some(&t)).is_ok());
            assert!(s.authorize("semi", "40", Some(&t)).is_err());
            assert!(
                s.has_viewers("final"),
                "a key served: the collector takes its reports"
            );
            assert!(!s.has_viewers("semi"), "a refused key makes no match known");
        }

        #[test]
        fn it_should_get_the_derived_key_of_the_periods_it_covers_only() {
            let t = token_for("final", 1000, 2000);
            for p in [40, 42, 44] {
                let key = service()
                    .authorize("final", &p.to_string(), Some(&t))
                    .unwrap();
                assert_eq!(key, content_key(CONTENT, "final", p));
            }
            for p in ["1", "39", "45", "86400"] {
                let denied = service().authorize("final", p, Some(&t)).unwrap_err();
                assert_eq!(denied.status, StatusCode::FORBIDDEN, "{p}");
            }
        }

        #[test]
        fn it_should_be_refused_for_another_match() {
            let t = token_for("final", 1000, 2000);
            let denied = service().authorize("semi", "42", Some(&t)).unwrap_err();
            assert_eq!(denied.status, StatusCode::FORBIDDEN);
        }
    }

    mod a_bad_request {
        use super::*;

        #[test]
        fn it_should_be_unauthorized_without_a_token_or_with_a_bad_one() {
            let s = service();
            for t in [
                None,
                Some("garbage"),
                Some(&*token_for("final", 0, 1400)),
                Some(&*token_for("final", 1600, 2000)),
            ] {
                let denied = s.authorize("final", "42", t).unwrap_err();
                assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{t:?}");
                // One body for every reason; the reason goes to the log only.
                assert_eq!(denied.reason, UNAUTHORIZED, "{t:?}");
            }
            let forged = issue(
                b"not the secret",
                &Claims {
                    v: token::VERSION,
                    match_id: "final".into(),
                    session: "s".into(),
                    nbf: 0,
                    exp: 9999,
                    periods: [0, 100],
                },
            );
            let denied = s.authorize("final", "42", Some(&forged)).unwrap_err();
            assert_eq!(denied.reason, UNAUTHORIZED);
            assert_eq!(denied.detail, "forged token (signature does not match)");
        }

        #[test]
        fn it_should_be_a_bad_request_for_malformed_paths() {
            let t = token_for("final", 1000, 2000);
            for (m, p) in [
                ("..", "1"),
                ("final", "-1"),
                ("final", "+1"),
                ("final", "1.0"),
                ("Final", "1"),
                ("final", "99999999999999999999999"),
            ] {
                assert_eq!(
                    service().authorize(m, p, Some(&t)).unwrap_err().status,
                    StatusCode::BAD_REQUEST,
                    "{m}/{p}"
                );
            }
        }
    }

    mod an_ice_request {
        use super::*;
        use crate::profile::IceServer;

        fn servers(turn: bool) -> IceSource {
            Box::new(move |m: &str| {
                (m == "final").then(|| {
                    vec![IceServer {
                        urls: vec![
                            if turn {
                                "turn:t.example"
                            } else {
                                "stun:s.example"
                            }
                            .into(),
                        ],
                        credentials: turn.then(|| "rest".to_string()),
                    }]
                })
            })
        }

        #[test]
        fn it_should_get_turn_credentials_for_its_session_until_the_token_ends() {
            let s = service().with_ice(Some(b"0123456789abcdef0123456789abcdef"), servers(true));
            let answer = s
                .ice("final", Some(&token_for("final", 1000, 2000)))
                .unwrap();
            assert_eq!(answer.ttl, 500);
            assert_eq!(answer.ice_servers[0].username.as_deref(), Some("2000:s"));
            assert!(answer.ice_servers[0].credential.is_some());
        }

        #[test]
        fn it_should_be_refused_as_a_key_request_would_be() {
            let s = service().with_ice(Some(b"0123456789abcdef0123456789abcdef"), servers(true));
            let t = token_for("final", 1000, 2000);
            assert_eq!(
                s.ice("final", None).unwrap_err().status,
                StatusCode::UNAUTHORIZED
            );
            let expired = token_for("final", 0, 1400);
            assert_eq!(
                s.ice("final", Some(&expired)).unwrap_err().status,
                StatusCode::UNAUTHORIZED
            );
            assert_eq!(
                s.ice("semi", Some(&t)).unwrap_err().status,
                StatusCode::FORBIDDEN
            );
            assert_eq!(
                s.ice("..", Some(&t)).unwrap_err().status,
                StatusCode::BAD_REQUEST
            );
            // A match this server knows no ICE servers for; a server without any source.
            let other = token_for("semi", 1000, 2000);
            assert_eq!(
                s.ice("semi", Some(&other)).unwrap_err().status,
                StatusCode::NOT_FOUND
            );
            assert_eq!(
                service().ice("final", Some(&t)).unwrap_err().status,
                StatusCode::NOT_FOUND
            );
        }

        #[test]
        fn it_should_be_unavailable_for_turn_without_a_secret_but_not_for_stun() {
            let t = token_for("final", 1000, 2000);
            let s = service().with_ice(None, servers(true));
            assert_eq!(
                s.ice("final", Some(&t)).unwrap_err().status,
                StatusCode::SERVICE_UNAVAILABLE
            );
            let s = service().with_ice(None, servers(false));
            assert_eq!(
                s.ice("final", Some(&t)).unwrap().ice_servers[0].username,
                None
            );
        }
    }

    #[test]
    fn bearer_header_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def"),
        );
        assert_eq!(bearer(&h), Some("abc.def"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&h), None);
    }
}
