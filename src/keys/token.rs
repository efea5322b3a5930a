//! Viewer tokens: `base64url(claims JSON) "." base64url(HMAC-SHA256(token secret, claims))`.
//!
//! A token binds a viewer session to one match, with a not-before and an expiry (Unix
//! seconds), and to the key periods it may open: those whose windows overlap its validity,
//! widened back by the DVR window so a viewer can seek back (or an explicit range, for
//! pay-per-view and archive access). Verification is pure: the caller passes the current time
//! in, and [`CLOCK_SKEW`] seconds of difference between clocks are allowed. The MAC is checked
//! by ring in constant time before the claims are even parsed.
//!
//! May call: `timecode`.

use crate::timecode::{NS_PER_SEC, Timeline, UtcNs};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};

/// What a token grants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Format version.
    pub v: u8,
    /// Match ID.
    #[serde(rename = "m")]
    pub match_id: String,
    /// Viewer session ID.
    #[serde(rename = "s")]
    pub session: String,
    /// Not before, Unix seconds.
    pub nbf: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// The first and last key period (window number) it opens, inclusive.
    #[serde(rename = "p")]
    pub periods: [u64; 2],
}

impl Claims {
    /// Whether the token opens the key of `period`.
    pub fn covers(&self, period: u64) -> bool {
        (self.periods[0]..=self.periods[1]).contains(&period)
    }
}

/// Token format version: 2 binds periods (version 1 opened every period, and is refused).
pub const VERSION: u8 = 2;
/// Seconds of clock difference allowed between the issuer and the key server.
pub const CLOCK_SKEW: u64 = 5;

/// The key periods whose windows overlap `[from, to]` (Unix seconds), inclusive.
pub fn periods_overlapping(timeline: &Timeline, from: u64, to: u64) -> [u64; 2] {
    let period = |secs: u64| {
        let ns = secs.saturating_mul(NS_PER_SEC);
        timeline.window_of(timeline.seq_at(UtcNs(ns))).get()
    };
    [period(from.min(to)), period(from.max(to))]
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature does not match")]
    Forged,
    #[error("token expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
}

/// Longest token accepted, in bytes (a guard against abuse, far above real tokens).
pub const MAX_TOKEN_LEN: usize = 1024;

/// The secret development tokens (`serve --dev-tokens`) are signed with: derived from the
/// token secret, but a different key, so a production key server (which knows only the token
/// secret) refuses every development token.
pub fn dev_secret(token_secret: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, token_secret);
    hmac::sign(&key, b"swarmpack development tokens/1")
        .as_ref()
        .to_vec()
}

/// Signs `claims` with the token secret.
pub fn issue(secret: &[u8], claims: &Claims) -> String {
    let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, body.as_bytes());
    format!("{body}.{}", B64.encode(tag.as_ref()))
}

/// Checks a token's MAC and validity window at `now` (Unix seconds) and returns its claims.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (body, tag) = token.split_once('.').ok_or(TokenError::Malformed)?;
    let tag = B64.decode(tag).map_err(|_| TokenError::Malformed)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::verify(&key, body.as_bytes(), &tag).map_err(|_| TokenError::Forged)?;
    let json = B64.decode(body).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.v != VERSION || claims.periods[0] > claims.periods[1] {
        return Err(TokenError::Malformed);
    }
    if now.saturating_add(CLOCK_SKEW) < claims.nbf {
        return Err(TokenError::NotYetValid);
    }
    if now >= claims.exp.saturating_add(CLOCK_SKEW) {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn claims() -> Claims {
        Claims {
            v: VERSION,
            match_id: "final".into(),
            session: "viewer-42".into(),
            nbf: 1000,
            exp: 2000,
            periods: [10, 20],
        }
    }

    #[test]
    fn round_trip_inside_the_validity_window_with_clock_skew() {
        let t = issue(SECRET, &claims());
        assert_eq!(verify(SECRET, &t, 1000), Ok(claims()));
        assert_eq!(verify(SECRET, &t, 1999), Ok(claims()));
        assert_eq!(verify(SECRET, &t, 995), Ok(claims()));
        assert_eq!(verify(SECRET, &t, 2004), Ok(claims()));
        assert_eq!(verify(SECRET, &t, 2005), Err(TokenError::Expired));
        assert_eq!(verify(SECRET, &t, 994), Err(TokenError::NotYetValid));
    }

    #[test]
    fn version_1_tokens_without_periods_and_reversed_ranges_are_refused() {
        let body = |json: &str| {
            let body = B64.encode(json);
            let key = hmac::Key::new(hmac::HMAC_SHA256, SECRET);
            format!(
                "{body}.{}",
                B64.encode(hmac::sign(&key, body.as_bytes()).as_ref())
            )
        };
        let v1 = body(r#"{"v":1,"m":"final","s":"x","nbf":0,"exp":9999}"#);
        assert_eq!(verify(SECRET, &v1, 1500), Err(TokenError::Malformed));
        let mut reversed = claims();
        reversed.periods = [20, 10];
        assert_eq!(
            verify(SECRET, &issue(SECRET, &reversed), 1500),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn periods_cover_the_windows_overlapping_a_time_range() {
        // 2 s segments, windows of 5: a period is 10 s.
        let tl = Timeline::new(2000, 5);
        assert_eq!(periods_overlapping(&tl, 100, 100), [10, 10]);
        assert_eq!(periods_overlapping(&tl, 95, 130), [9, 13]);
        assert_eq!(periods_overlapping(&tl, 130, 95), [9, 13]);
        let c = claims();
        assert!(c.covers(10) && c.covers(20) && c.covers(15));
        assert!(!c.covers(9) && !c.covers(21) && !c.covers(u64::MAX));
    }

    #[test]
    fn another_secret_or_any_flipped_character_is_refused() {
        let t = issue(SECRET, &claims());
        assert_eq!(verify(b"another secret", &t, 1500), Err(TokenError::Forged));
        for i in 0..t.len() {
            let mut bytes = t.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(forged) = String::from_utf8(bytes) else {
                continue;
            };
            if forged == t {
                continue;
            }
            assert!(
                verify(SECRET, &forged, 1500).is_err(),
                "flip at {i} accepted"
            );
        }
    }

    #[test]
    fn development_tokens_do_not_verify_with_the_production_secret() {
        let dev = dev_secret(SECRET);
        assert_ne!(dev.as_slice(), SECRET);
        let t = issue(&dev, &claims());
        assert_eq!(verify(SECRET, &t, 1500), Err(TokenError::Forged));
        assert_eq!(verify(&dev, &t, 1500), Ok(claims()));
    }

    #[test]
    fn claims_cannot_be_swapped_between_tokens() {
        let mut other = claims();
        other.match_id = "semi".into();
        let a = issue(SECRET, &claims());
        let b = issue(SECRET, &other);
        let spliced = format!(
            "{}.{}",
            b.split('.').next().unwrap(),
            a.split('.').nth(1).unwrap()
        );
        assert_eq!(verify(SECRET, &spliced, 1500), Err(TokenError::Forged));
    }

    #[test]
    fn garbage_is_malformed() {
        for g in ["", ".", "abc", "a.b", "!!.!!", "a.b.c"] {
            assert!(
                matches!(
                    verify(SECRET, g, 1500),
                    Err(TokenError::Malformed | TokenError::Forged)
                ),
                "{g}"
            );
        }
        assert_eq!(
            verify(SECRET, &"a".repeat(5000), 1),
            Err(TokenError::Malformed)
        );
    }

    proptest! {
        #[test]
        fn parser_never_panics_on_arbitrary_input(s in "\\PC{0,300}") {
            let _ = verify(SECRET, &s, 1500);
        }

        #[test]
        fn parser_never_panics_on_token_shaped_input(a in "[A-Za-z0-9_-]{0,200}", b in "[A-Za-z0-9_-]{0,60}") {
            let _ = verify(SECRET, &format!("{a}.{b}"), 1500);
        }

        #[test]
        fn every_issued_token_verifies(m in "[a-z0-9]{1,32}", s in "\\PC{0,64}", nbf in 0u64..1_000_000, ttl in 1u64..1_000_000, p in 0u64..1_000_000) {
            let c = Claims { v: VERSION, match_id: m, session: s, nbf, exp: nbf + ttl, periods: [p, p + ttl] };
            prop_assert_eq!(verify(SECRET, &issue(SECRET, &c), nbf), Ok(c));
        }
    }
}
