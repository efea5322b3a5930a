//! Webhooks as the Standard Webhooks spec (standardwebhooks.com) has them: headers
//! `webhook-id` (the event's stable id), `webhook-timestamp` (Unix seconds of this attempt)
//! and `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`, with the
//! secret given as `whsec_<base64 key>`.
//!
//! Delivery is at least once, from an outbox on disk: every event is a file there until the
//! receiver answers 2xx, so a controller restart loses none. A failed attempt is retried
//! after a backoff that doubles from 1 s up to 5 minutes, with jitter, for up to a day; an
//! event that never got through moves to `outbox/dead/` and is logged.
//!
//! May call: `events`, `hex`, `private_fs`, `retry`.

use crate::events::Event;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "SWARMPACK_WEBHOOK_SECRET: expected whsec_ followed by a base64 key of 24 to 64 bytes \
         (as the Standard Webhooks spec has it; e.g. whsec_$(openssl rand -base64 32))"
    )]
    BadSecret,
    #[error("webhook outbox {path}")]
    Outbox {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The signing secret.
pub struct Secret(hmac::Key);

impl Secret {
    /// `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Secret, WebhookError> {
        let key = text
            .trim()
            .strip_prefix("whsec_")
            .and_then(|b| B64.decode(b).ok())
            .filter(|k| (24..=64).contains(&k.len()))
            .ok_or(WebhookError::BadSecret)?;
        Ok(Secret(hmac::Key::new(hmac::HMAC_SHA256, &key)))
    }

    /// The `webhook-signature` header for one attempt.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut msg = format!("{id}.{timestamp}.").into_bytes();
        msg.extend_from_slice(body);
        format!("v1,{}", B64.encode(hmac::sign(&self.0, &msg).as_ref()))
    }
}

/// The three headers of one attempt at delivering `event` at `now` (Unix seconds).
pub fn headers(secret: &Secret, event: &Event, now: i64) -> [(&'static str, String); 3] {
    [
        ("webhook-id", event.id.clone()),
        ("webhook-timestamp", now.to_string()),
        (
            "webhook-signature",
            secret.sign(&event.id, now, &event.body()),
        ),
    ]
}

/// How long to wait after `attempts` failed attempts, before jitter: 1 s doubling to 5 min.
pub fn backoff(attempts: u32) -> Duration {
    retry_policy().step(attempts + 1)
}

/// The outbox's retries: 1 s doubling to 5 min, with equal jitter.
fn retry_policy() -> crate::retry::RetryPolicy {
    crate::retry::RetryPolicy::backoff(Duration::from_secs(1), Duration::from_secs(300))
}

/// Give up on an event after this many attempts (about a day at the longest backoff).
pub const MAX_ATTEMPTS: u32 = 300;

/// One event waiting in the outbox.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    pub event: Event,
    pub attempts: u32,
    /// Unix milliseconds of the next attempt.
    pub due_ms: i64,
    /// Order of arrival, so events go out in the order they happened.
    pub order: u64,
}

/// The outbox: `{dir}/{event id}.json` per pending event, `{dir}/dead/` for the given up.
pub struct Outbox {
    dir: PathBuf,
    next_order: u64,
}

impl Outbox {
    pub fn open(dir: &Path) -> Result<Outbox, WebhookError> {
        let err = |source| WebhookError::Outbox {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir.join("dead")).map_err(err)?;
        let next_order = Outbox::read_all(dir)
            .iter()
            .map(|(_, p)| p.order + 1)
            .max()
            .unwrap_or(0);
        Ok(Outbox {
            dir: dir.to_path_buf(),
            next_order,
        })
    }

    fn path_of(&self, id: &str) -> PathBuf {
        // Ids are made here or by `run` (letters, digits, '_', '-'); anything else is hashed.
        let safe = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let name = if safe {
            id.to_string()
        } else {
            crate::hex::encode(&crate::hex::sha256(id.as_bytes()))
        };
        self.dir.join(format!("{name}.json"))
    }

    /// Queues `event` for delivery now. An event already queued (the same id, read again
    /// after a restart) is not queued twice.
    pub fn enqueue(&mut self, event: Event) -> Result<(), WebhookError> {
        let path = self.path_of(&event.id);
        if path.exists() {
            return Ok(());
        }
        let pending = Pending {
            event,
            attempts: 0,
            due_ms: 0,
            order: self.next_order,
        };
        self.next_order += 1;
        self.write(&path, &pending)
    }

    fn write(&self, path: &Path, pending: &Pending) -> Result<(), WebhookError> {
        crate::private_fs::write_atomic(path, &serde_json::to_vec(pending).expect("json")).map_err(
            |source| WebhookError::Outbox {
                path: path.to_path_buf(),
                source,
            },
        )
    }

    fn read_all(dir: &Path) -> Vec<(PathBuf, Pending)> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let mut out: Vec<(PathBuf, Pending)> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| {
                let pending = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
                Some((p, pending))
            })
            .collect();
        out.sort_by_key(|(_, p)| p.order);
        out
    }

    /// The events due at `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64) -> Vec<(PathBuf, Pending)> {
        Outbox::read_all(&self.dir)
            .into_iter()
            .filter(|(_, p)| p.due_ms <= now_ms)
            .collect()
    }

    /// Events not yet delivered.
    pub fn len(&self) -> usize {
        Outbox::read_all(&self.dir).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivered: the event leaves the outbox.
    pub fn delivered(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
    }

    /// Not delivered: schedules the next attempt (`jitter` in 0..1 scales half the backoff)
    /// or, after [`MAX_ATTEMPTS`], moves the event to `dead/`. Returns the wait.
    pub fn failed(
        &self,
        path: &Path,
        mut pending: Pending,
        now_ms: i64,
        jitter: f64,
    ) -> Option<Duration> {
        pending.attempts += 1;
        if pending.attempts >= MAX_ATTEMPTS {
            let dead = self.dir.join("dead").join(path.file_name()?);
            let _ = std::fs::rename(path, dead);
            return None;
        }
        let wait = retry_policy().delay(pending.attempts, jitter);
        pending.due_ms = now_ms + wait.as_millis() as i64;
        if let Err(e) = self.write(path, &pending) {
            tracing::warn!("{e}");
        }
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    /// The test vector of the Standard Webhooks reference libraries.
    #[test]
    fn signs_like_the_reference_libraries() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_must_be_whsec_base64() {
        for bad in [
            "",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_AAAA",
        ] {
            assert!(Secret::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let secs: Vec<u64> = (0..11).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }

    fn event(id: &str) -> Event {
        Event::new(id.into(), EventType::MatchStarted, serde_json::json!({}))
    }

    #[test]
    fn the_outbox_keeps_order_dedups_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut outbox = Outbox::open(dir.path()).unwrap();
        for id in ["evt_b", "evt_a", "evt_b", "evt_c"] {
            outbox.enqueue(event(id)).unwrap();
        }
        let ids = |o: &Outbox, now| -> Vec<String> {
            o.due(now).into_iter().map(|(_, p)| p.event.id).collect()
        };
        assert_eq!(ids(&outbox, 0), ["evt_b", "evt_a", "evt_c"]);
        let (path, first) = outbox.due(0).into_iter().next().unwrap();
        let wait = outbox.failed(&path, first, 1_000, 1.0).unwrap();
        assert_eq!(wait, Duration::from_secs(1));
        assert_eq!(ids(&outbox, 1_999), ["evt_a", "evt_c"]);
        assert_eq!(ids(&outbox, 2_000), ["evt_b", "evt_a", "evt_c"]);
        let (path, a) = outbox.due(0).into_iter().next().unwrap();
        assert_eq!(a.event.id, "evt_a");
        outbox.delivered(&path);
        let mut reopened = Outbox::open(dir.path()).unwrap();
        reopened.enqueue(event("evt_d")).unwrap();
        assert_eq!(ids(&reopened, 10_000), ["evt_b", "evt_c", "evt_d"]);
    }
}
