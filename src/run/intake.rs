//! How an encoded segment enters the packager: straight in, or (`run --redundant`) sealed,
//! claimed on the origin, and packaged as the origin holds it.

use crate::package::{EncodedSegment, PackageError, Packager};
use crate::publish::Claims;
use crate::publish::claim::Claimed;
use std::time::Duration;

pub(super) enum Intake {
    Direct,
    Redundant {
        claims: Claims,
        /// Whether this run has read the match's state from the origin yet (it does so at its
        /// first segment, as late as it can, so it continues the other runs' latest work).
        joined: bool,
    },
}

impl Intake {
    /// How `cfg`'s run takes its segments: claimed on the origin for a redundant run (on
    /// `rt`, counted in `status`), straight in otherwise.
    pub fn for_run(
        cfg: &super::RunConfig,
        rt: &tokio::runtime::Handle,
        status: std::sync::Arc<crate::publish::PublishStatus>,
    ) -> Intake {
        if !cfg.redundant {
            return Intake::Direct;
        }
        let keys = crate::publish::claim::ClaimKeys {
            signer: cfg.keys.signer(),
            public_key: cfg.keys.public_key(),
        };
        Intake::Redundant {
            claims: Claims::start(rt, cfg.origin.clone(), &cfg.match_id, keys, status),
            joined: false,
        }
    }

    /// True once, before the first segment of a redundant run: the caller reads the match's
    /// state from the origin now.
    pub fn join_now(&mut self) -> bool {
        match self {
            Intake::Redundant { joined, .. } if !*joined => {
                *joined = true;
                true
            }
            _ => false,
        }
    }

    /// Packages `segment`, or seals it and queues its claim.
    pub fn take(&mut self, packager: &mut Packager, segment: EncodedSegment) {
        match self {
            Intake::Direct => refused(packager.push(segment), false),
            Intake::Redundant { claims, .. } => match packager.seal(segment) {
                Ok(sealed) => claims.submit(sealed),
                Err(e) => refused(Err(e), true),
            },
        }
    }

    /// Packages the segments whose claims came back.
    pub fn poll(&mut self, packager: &mut Packager) {
        if let Intake::Redundant { claims, .. } = self {
            for claimed in claims.ready() {
                take_claimed(packager, claimed);
            }
        }
    }

    /// The match is over: packages the outstanding claims the origin answers within
    /// `timeout`.
    pub fn finish(&mut self, packager: &mut Packager, timeout: Duration) {
        if let Intake::Redundant { claims, .. } = self {
            for claimed in claims.finish(timeout) {
                take_claimed(packager, claimed);
            }
        }
    }
}

/// Packages a claimed segment, or (its seq lost) a signed gap in its place.
fn take_claimed(packager: &mut Packager, claimed: Claimed) {
    let result = match claimed.lost {
        None => packager.push_sealed(claimed.sealed),
        Some(_) => packager.push_lost(claimed.sealed),
    };
    refused(result, true);
}

/// Logs a segment the packager refused. For a redundant run, a segment another run already
/// listed is expected (it joined behind that run), so it is only a debug line.
fn refused(result: Result<(), PackageError>, redundant: bool) {
    match result {
        Ok(()) => {}
        Err(e @ PackageError::OutOfOrder { .. }) if redundant => {
            tracing::debug!("{e} (another run listed it already)")
        }
        Err(e @ PackageError::OutOfOrder { .. }) => tracing::warn!("{e}"),
        Err(e) => tracing::error!("{e}"),
    }
}
