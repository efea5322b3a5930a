//! How a redundant run's segments reach the packager: the packager seals each one and asks
//! for its claim ([`Output::Claim`](crate::package::Output::Claim)); the claim goes to the
//! origin here, and what comes back (the segment as the origin holds it, or its seq lost) is
//! pushed in again. A run of its own (not `--redundant`) has no claims.
//!
//! May call: `package`, `publish`.

use crate::package::{Input, PackageError, Packager, Sealed};
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

    /// Sends a sealed segment's claim to the origin.
    pub fn claim(&mut self, sealed: Sealed) {
        match self {
            Intake::Redundant { claims, .. } => claims.submit(sealed),
            Intake::Direct => tracing::error!(
                "{}: a claim asked of a run that is not redundant; dropped",
                sealed.segment.seq
            ),
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
    let input = match claimed.lost {
        None => Input::Claimed(claimed.sealed),
        Some(_) => Input::ClaimLost(claimed.sealed),
    };
    refused(packager.push(input), true);
}

/// Logs a segment the packager refused. For a redundant run, a segment another run already
/// listed is expected (it joined behind that run), so it is only a debug line.
pub(super) fn refused(result: Result<(), PackageError>, redundant: bool) {
    match result {
        Ok(()) => {}
        Err(e @ PackageError::OutOfOrder { .. }) if redundant => {
            tracing::debug!("{e} (another run listed it already)")
        }
        Err(e @ PackageError::OutOfOrder { .. }) => tracing::warn!("{e}"),
        Err(e) => tracing::error!("{e}"),
    }
}
