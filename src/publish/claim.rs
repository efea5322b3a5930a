//! Redundant runs (`run --redundant`): every sealed segment is claimed on the origin before
//! it is packaged, so several runs of one match describe the same bytes.
//!
//! A claim looks first: when the origin already holds the segment (another run got there
//! first), those bytes come back and this run packages them instead of its own, which never
//! leave the machine. Otherwise it creates the segment if absent (S3 `If-None-Match: *`, an
//! exclusive create on `file://`); losing that race also brings the winner's bytes back, and
//! the origin keeps the winner's without storing ours. The two runs use the same key and IV
//! for a seq, so only one ciphertext of it may ever be published.
//!
//! Claims run in order, one at a time, on the I/O runtime. While the origin does not answer,
//! segments wait here in memory: no run can describe a segment before it knows whose bytes
//! the origin keeps.

use super::queue::RetryPolicy;
use super::{Origin, OriginError, PublishStatus};
use crate::package::Sealed;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the origin held after a claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Our bytes are on the origin (we created them, or they were there already).
    Ours,
    /// Another run's bytes are on the origin; package these.
    Theirs(Vec<u8>),
}

/// Claims `bytes` at `path`: reads first, so bytes another run already published are never
/// sent; creates if absent otherwise.
pub async fn claim(origin: &Origin, path: &str, bytes: &[u8]) -> Result<Claim, OriginError> {
    let held = match origin.get(path).await? {
        Some(held) => Some(held),
        None => {
            origin
                .create_or_read(path, bytes::Bytes::copy_from_slice(bytes))
                .await?
        }
    };
    Ok(match held {
        Some(held) if held != bytes => Claim::Theirs(held),
        _ => Claim::Ours,
    })
}

/// The claim stage of one run: sealed segments in, claimed segments out, in order.
pub struct Claims {
    tx: Option<mpsc::UnboundedSender<Sealed>>,
    done: crossbeam_channel::Receiver<Sealed>,
    /// Submitted and not yet taken back.
    pending: usize,
    status: Arc<PublishStatus>,
}

impl Claims {
    /// Starts claiming on `rt` the segments of `match_id`.
    pub fn start(
        rt: &tokio::runtime::Handle,
        origin: Origin,
        match_id: &str,
        status: Arc<PublishStatus>,
    ) -> Claims {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done) = crossbeam_channel::unbounded();
        rt.spawn(claim_all(
            origin,
            match_id.to_string(),
            rx,
            done_tx,
            status.clone(),
        ));
        Claims {
            tx: Some(tx),
            done,
            pending: 0,
            status,
        }
    }

    /// Queues a sealed segment for its claim.
    pub fn submit(&mut self, sealed: Sealed) {
        if let Some(tx) = &self.tx
            && tx.send(sealed).is_ok()
        {
            self.pending += 1;
            self.status.claims_waiting.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The segments claimed so far, in the order they were submitted.
    pub fn ready(&mut self) -> Vec<Sealed> {
        let ready: Vec<Sealed> = self.done.try_iter().collect();
        self.pending -= ready.len();
        ready
    }

    /// No more segments: waits up to `timeout` for the outstanding claims and returns them.
    /// What the origin did not answer in time is left out (the run logs how many).
    pub fn finish(&mut self, timeout: Duration) -> Vec<Sealed> {
        self.tx = None;
        let deadline = Instant::now() + timeout;
        let mut ready = Vec::new();
        while self.pending > 0 {
            match self.done.recv_deadline(deadline) {
                Ok(sealed) => {
                    self.pending -= 1;
                    ready.push(sealed);
                }
                Err(_) => break,
            }
        }
        if self.pending > 0 {
            tracing::error!(
                "{} segment(s) could not be claimed on the origin within {timeout:?}; they are not published",
                self.pending
            );
        }
        ready
    }
}

async fn claim_all(
    origin: Origin,
    match_id: String,
    mut rx: mpsc::UnboundedReceiver<Sealed>,
    done: crossbeam_channel::Sender<Sealed>,
    status: Arc<PublishStatus>,
) {
    let policy = RetryPolicy::default();
    while let Some(mut sealed) = rx.recv().await {
        let path = sealed.path(&match_id);
        let mut failures = 0u32;
        let claimed = loop {
            match claim(&origin, &path, &sealed.segment.bytes).await {
                Ok(claimed) => break claimed,
                Err(e) => {
                    failures += 1;
                    status.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(
                            "{e}; claiming {path} (attempt {failures}): it waits, with the segments after it, until the origin answers"
                        );
                    }
                    tokio::time::sleep(policy.delay(failures, rand::random())).await;
                }
            }
        };
        status.claims_waiting.fetch_sub(1, Ordering::Relaxed);
        match claimed {
            Claim::Ours => {
                status.claims_won.fetch_add(1, Ordering::Relaxed);
            }
            Claim::Theirs(held) => {
                status.claims_adopted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "{path}: another run published it first ({} bytes); packaging the origin's bytes",
                    held.len()
                );
                sealed.segment.bytes = held;
            }
        }
        if done.send(sealed).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_takes_what_the_origin_holds_and_never_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let origin = Origin::local(dir.path()).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let path = "m/a/hi/7.ts";
        let ours = b"ours".as_slice();
        assert_eq!(
            rt.block_on(claim(&origin, path, ours)).unwrap(),
            Claim::Ours
        );
        // A retry of the same bytes is still ours.
        assert_eq!(
            rt.block_on(claim(&origin, path, ours)).unwrap(),
            Claim::Ours
        );
        // Another run's claim of the same seq gets our bytes back, and the file stays.
        assert_eq!(
            rt.block_on(claim(&origin, path, b"theirs")).unwrap(),
            Claim::Theirs(ours.to_vec())
        );
        assert_eq!(std::fs::read(dir.path().join(path)).unwrap(), ours);
    }
}
