//! Redundant runs (`run --redundant`): every sealed segment is claimed on the origin before
//! it is packaged, so several runs of one match describe the same bytes.
//!
//! A claim is proof, not presence. Before its bytes, a run creates-if-absent the segment's
//! claim, `{seq}.ts.claim` beside it: the segment's `#EXT-X-SWARMPACK-SEGMENT` tag (length,
//! SHA-256, Ed25519 over path, key URI and IV), signed with the match key. Bytes on the
//! origin are adopted only when a claim that verifies with this match's key describes them:
//! an origin writer without `keys/` can make a run lose a seq (a marked gap, logged and
//! counted), never make it sign their bytes.
//!
//! 1. A claim already there that verifies: if it describes our bytes, ours go up (a retry);
//!    else the bytes it describes are read (at their signed length) and packaged instead of
//!    ours, which never leave the machine. Until they appear (the claimer uploads them right
//!    after its claim) the claim waits, at most [`CLAIMED_BYTES_WAIT`].
//! 2. No claim: ours is created if absent (S3 `If-None-Match: *`, an exclusive create on
//!    `file://`), then our bytes the same way. Losing the claim race leads to 1.
//! 3. A claim that does not verify, other bytes in the way of ours, claimed bytes that do
//!    not match their claim or never come, or an origin that refuses the object: the seq is
//!    lost, and becomes a signed gap in its playlist.
//!
//! The two runs use the same key and IV for a seq, so only one ciphertext of it may ever be
//! published. Claims run in order, one at a time, on the I/O runtime. While the origin does
//! not answer, segments wait here in memory: no run can describe a segment before it knows
//! whose bytes the origin keeps.
//!
//! May call: `package`, `queue`, `sign`.

use super::queue::RetryPolicy;
use super::{Origin, OriginError, PublishStatus};
use crate::package::Sealed;
use crate::package::playlist::SegmentKey;
use crate::package::segment_sig::SegmentSignature;
use crate::sign::Signer;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a verified claim may wait for the bytes it describes before the seq is given up.
pub const CLAIMED_BYTES_WAIT: Duration = Duration::from_secs(10);

/// What the origin held after a claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Our bytes are on the origin (we created them, or they were there already); their
    /// SHA-256.
    Ours([u8; 32]),
    /// Another run's bytes, under a claim signed with the match key, and their SHA-256;
    /// package these.
    Theirs(Vec<u8>, [u8; 32]),
    /// The seq is lost: why (a forged or foreign claim, other bytes in the way, an object
    /// the origin refuses). It becomes a gap; nothing is signed for it.
    Lost(String),
}

/// One step of a claim that cannot finish yet.
#[derive(Debug)]
pub enum ClaimError {
    /// The origin did not answer: try again later.
    Origin(OriginError),
    /// A verified claim whose bytes are not on the origin yet.
    BytesNotYet,
}

impl From<OriginError> for ClaimError {
    fn from(e: OriginError) -> Self {
        ClaimError::Origin(e)
    }
}

/// `{path}.claim`: where the claim of the segment at `path` lives.
pub fn claim_path(path: &str) -> String {
    format!("{path}.claim")
}

/// The bytes of a claim: the segment's tag line, as a media playlist carries it.
pub fn claim_document(tag: &SegmentSignature) -> Vec<u8> {
    format!("{}\n", tag.to_tag()).into_bytes()
}

/// Reads a claim document back; None when it is not one.
pub fn parse_claim(bytes: &[u8]) -> Option<SegmentSignature> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value = text
        .strip_suffix('\n')?
        .strip_prefix(&format!("#EXT-{}:", crate::package::segment_sig::TAG))?;
    SegmentSignature::parse(value).ok()
}

/// What claiming one segment needs to know.
pub struct ClaimContext<'a> {
    pub origin: &'a Origin,
    pub signer: &'a dyn Signer,
    /// The match's Ed25519 public key (raw 32 bytes): claims are checked against it.
    pub public_key: &'a [u8],
}

/// Claims `bytes` (sealed with `key`) at `path`. Reads the claim first, so bytes another run
/// already claimed are never sent; see the module's steps.
pub async fn claim(
    cx: &ClaimContext<'_>,
    path: &str,
    bytes: &[u8],
    key: Option<&SegmentKey>,
) -> Result<Claim, ClaimError> {
    let ours = SegmentSignature::sign(cx.signer, path, bytes, key);
    let sidecar = claim_path(path);
    let refused = |e: &OriginError| Claim::Lost(e.to_string());
    let held = match cx.origin.get(&sidecar).await {
        Ok(Some(held)) => held,
        Ok(None) => match cx
            .origin
            .create_or_read(&sidecar, claim_document(&ours).into())
            .await
        {
            Ok(None) => claim_document(&ours),
            Ok(Some(held)) => held,
            Err(e) if e.is_refusal() => return Ok(refused(&e)),
            Err(e) => return Err(e.into()),
        },
        Err(e) if e.is_refusal() => return Ok(refused(&e)),
        Err(e) => return Err(e.into()),
    };
    let Some(claimed) = parse_claim(&held).filter(|c| c.verifies(cx.public_key, path, key)) else {
        return Ok(Claim::Lost(format!(
            "{sidecar}: a claim that does not verify with this match's key (forged, or another match's)"
        )));
    };
    if claimed == ours {
        return match cx
            .origin
            .create_or_read(path, bytes::Bytes::copy_from_slice(bytes))
            .await
        {
            Ok(None) => Ok(Claim::Ours(ours.sha256)),
            Ok(Some(held)) if held == bytes => Ok(Claim::Ours(ours.sha256)),
            Ok(Some(_)) => Ok(Claim::Lost(format!(
                "{path}: other bytes are in the way of the ones this run claimed"
            ))),
            Err(e) if e.is_refusal() => Ok(refused(&e)),
            Err(e) => Err(e.into()),
        };
    }
    match cx.origin.get_limited(path, claimed.bytes).await {
        Ok(Some(theirs)) if claimed.describes(&theirs) => Ok(Claim::Theirs(theirs, claimed.sha256)),
        Ok(Some(_)) => Ok(Claim::Lost(format!(
            "{path}: the bytes on the origin are not the ones its signed claim describes"
        ))),
        Ok(None) => Err(ClaimError::BytesNotYet),
        Err(e) if e.is_refusal() => Ok(Claim::Lost(format!(
            "{path}: the bytes on the origin are not the ones its signed claim describes ({e})"
        ))),
        Err(e) => Err(e.into()),
    }
}

/// A segment whose claim came back.
#[derive(Debug)]
pub struct Claimed {
    /// The segment, with the bytes the origin holds for it (ours, or another run's).
    pub sealed: Sealed,
    /// Set when the seq is lost (see [`Claim::Lost`]): package it as a gap.
    pub lost: Option<String>,
}

/// What the claim stage signs and checks with.
#[derive(Clone)]
pub struct ClaimKeys {
    pub signer: Arc<dyn Signer>,
    pub public_key: Vec<u8>,
}

/// The claim stage of one run: sealed segments in, claimed segments out, in order.
pub struct Claims {
    tx: Option<mpsc::UnboundedSender<Sealed>>,
    done: crossbeam_channel::Receiver<Claimed>,
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
        keys: ClaimKeys,
        status: Arc<PublishStatus>,
    ) -> Claims {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done) = crossbeam_channel::unbounded();
        rt.spawn(claim_all(
            origin,
            keys,
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
    pub fn ready(&mut self) -> Vec<Claimed> {
        let ready: Vec<Claimed> = self.done.try_iter().collect();
        self.pending -= ready.len();
        ready
    }

    /// No more segments: waits up to `timeout` for the outstanding claims and returns them.
    /// What the origin did not answer in time is left out (the run logs how many).
    pub fn finish(&mut self, timeout: Duration) -> Vec<Claimed> {
        self.tx = None;
        let deadline = Instant::now() + timeout;
        let mut ready = Vec::new();
        while self.pending > 0 {
            match self.done.recv_deadline(deadline) {
                Ok(claimed) => {
                    self.pending -= 1;
                    ready.push(claimed);
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
    keys: ClaimKeys,
    match_id: String,
    mut rx: mpsc::UnboundedReceiver<Sealed>,
    done: crossbeam_channel::Sender<Claimed>,
    status: Arc<PublishStatus>,
) {
    let policy = RetryPolicy::default();
    let cx = ClaimContext {
        origin: &origin,
        signer: keys.signer.as_ref(),
        public_key: &keys.public_key,
    };
    while let Some(mut sealed) = rx.recv().await {
        let path = sealed.path(&match_id);
        let mut failures = 0u32;
        let mut awaited: Option<Instant> = None;
        let claimed = loop {
            match claim(&cx, &path, &sealed.segment.bytes, sealed.key.as_ref()).await {
                Ok(claimed) => break claimed,
                Err(ClaimError::BytesNotYet) => {
                    let since = *awaited.get_or_insert_with(Instant::now);
                    if since.elapsed() >= CLAIMED_BYTES_WAIT {
                        break Claim::Lost(format!(
                            "{path}: claimed by another run, whose bytes did not reach the origin within {CLAIMED_BYTES_WAIT:?}"
                        ));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(ClaimError::Origin(e)) => {
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
        let lost = match claimed {
            Claim::Ours(sha256) => {
                status.claims_won.fetch_add(1, Ordering::Relaxed);
                sealed.sha256 = Some(sha256);
                None
            }
            Claim::Theirs(held, sha256) => {
                status.claims_adopted.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    "{path}: another run published it first, under a claim signed with the match key ({} bytes); packaging the origin's bytes",
                    held.len()
                );
                sealed.segment.bytes = held;
                sealed.sha256 = Some(sha256);
                None
            }
            Claim::Lost(why) => {
                status.claims_lost.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    "{why}; seq {} of {}/{} is lost: it is published as a signed gap, and nothing on the origin is signed for it",
                    sealed.segment.seq,
                    sealed.segment.angle,
                    sealed.segment.rung
                );
                Some(why)
            }
        };
        if done.send(Claimed { sealed, lost }).is_err() {
            return;
        }
    }
}

#[cfg(test)]
#[path = "claim_tests.rs"]
mod tests;
