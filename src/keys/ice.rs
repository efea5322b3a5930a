//! TURN credentials per viewer, as coturn checks them with `use-auth-secret` and
//! `static-auth-secret` (the "TURN REST API" of draft-uberti-behave-turn-rest): the username is
//! `{expiry}:{session}` (Unix seconds) and the password is base64 HMAC-SHA1 of the username
//! under the shared secret. coturn needs no call to the key server: it recomputes the password
//! and refuses it after the expiry. Pure: the key server's handler is a thin layer over
//! [`answer`].
//!
//! May call: `profile`.

use crate::profile::IceServer;
use base64::Engine;
use serde::Serialize;

/// How long minted TURN credentials last at most (a match, with margin). Never beyond the
/// viewer token's own expiry.
pub const ICE_TTL_SECS: u64 = 6 * 3600;

/// One entry of `RTCConfiguration.iceServers`, as the browser takes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RtcIceServer {
    pub urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// The body of `GET {key_uri_base}/{match}/ice`: `{"iceServers":[…],"ttl":S}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IceAnswer {
    #[serde(rename = "iceServers")]
    pub ice_servers: Vec<RtcIceServer>,
    /// Seconds the TURN credentials stay valid.
    pub ttl: u64,
}

/// The TURN username for a viewer session: `{expiry}:{session}`, the session reduced to
/// characters every TURN server and log takes (`A-Z a-z 0-9 . _ -`, others become `_`; at
/// most 64).
pub fn turn_username(expiry: u64, session: &str) -> String {
    let session: String = session
        .chars()
        .take(64)
        .map(|c| match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' | '.' | '_' | '-' => c,
            _ => '_',
        })
        .collect();
    format!("{expiry}:{session}")
}

/// The TURN password for `username`: base64 (standard, padded) HMAC-SHA1 under `secret`.
pub fn turn_password(secret: &[u8], username: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = ring::hmac::sign(&key, username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// The profile names TURN servers but this key server has no `turn.secret` to mint for them.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the match names TURN servers but the keys have no turn.secret (run `swarmpack keygen --out KEYS` to add one)"
)]
pub struct NoTurnSecret;

/// The ICE servers for one viewer: STUN entries as they are, TURN entries with credentials
/// valid until the earlier of `now + ICE_TTL_SECS` and the token's expiry.
pub fn answer(
    servers: &[IceServer],
    secret: Option<&[u8]>,
    session: &str,
    now: u64,
    token_expiry: u64,
) -> Result<IceAnswer, NoTurnSecret> {
    let expiry = token_expiry.min(now.saturating_add(ICE_TTL_SECS));
    let mut out = Vec::with_capacity(servers.len());
    for server in servers {
        let (username, credential) = match server.is_turn() {
            true => {
                let secret = secret.ok_or(NoTurnSecret)?;
                let username = turn_username(expiry, session);
                let password = turn_password(secret, &username);
                (Some(username), Some(password))
            }
            false => (None, None),
        };
        out.push(RtcIceServer {
            urls: server.urls.clone(),
            username,
            credential,
        });
    }
    Ok(IceAnswer {
        ice_servers: out,
        ttl: expiry.saturating_sub(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"6e6f742d612d7265616c2d7365637265742d6a7573742d612d676f6c64656e21";

    fn servers() -> Vec<IceServer> {
        vec![
            IceServer {
                urls: vec!["stun:198.18.3.1:3478".into()],
                credentials: None,
            },
            IceServer {
                urls: vec!["turn:198.18.3.1:3478?transport=udp".into()],
                credentials: Some("rest".into()),
            },
        ]
    }

    #[test]
    fn the_password_is_coturns_hmac_sha1_of_the_username() {
        // Golden value from Python's hmac module (an implementation other than ring):
        // base64(hmac.new(SECRET, b"1800000000:viewer-42", hashlib.sha1).digest())
        assert_eq!(
            turn_password(SECRET, "1800000000:viewer-42"),
            "+74+WV+FRjMT05pZwOTaHZ7pRv8="
        );
        assert_eq!(
            turn_username(1_800_000_000, "viewer-42"),
            "1800000000:viewer-42"
        );
        assert_eq!(turn_username(5, "a:b c/é"), "5:a_b_c__");
    }

    #[test]
    fn stun_goes_as_written_and_turn_gets_credentials_until_the_earlier_expiry() {
        let a = answer(&servers(), Some(SECRET), "viewer-42", 1_000, 1_000_000).unwrap();
        assert_eq!(a.ttl, ICE_TTL_SECS);
        assert_eq!(a.ice_servers[0].username, None);
        let user = format!("{}:viewer-42", 1_000 + ICE_TTL_SECS);
        assert_eq!(a.ice_servers[1].username.as_deref(), Some(user.as_str()));
        assert_eq!(
            a.ice_servers[1].credential.as_deref(),
            Some(turn_password(SECRET, &user).as_str())
        );
        // A token that ends sooner ends the TURN credentials with it.
        let short = answer(&servers(), Some(SECRET), "v", 1_000, 1_600).unwrap();
        assert_eq!(short.ttl, 600);
        assert_eq!(short.ice_servers[1].username.as_deref(), Some("1600:v"));
        let json = serde_json::to_value(&short).unwrap();
        assert_eq!(
            json["iceServers"][0],
            serde_json::json!({"urls": ["stun:198.18.3.1:3478"]})
        );
        assert_eq!(json["ttl"], 600);
        // TURN without a secret is a configuration error; STUN alone needs none.
        assert_eq!(answer(&servers(), None, "v", 0, 10), Err(NoTurnSecret));
        assert!(answer(&servers()[..1], None, "v", 0, 10).is_ok());
    }
}
