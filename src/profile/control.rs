//! `[control]`: how `swarmpack control --cluster` places the match on its pool of machines.
//! `standby = true` runs it on two nodes at once from the start (a hot standby, byte for byte
//! the same by the redundant mode), so losing either node costs the fans nothing.
//!
//! May call: nothing of the crate.

use serde::Deserialize;

/// The match's placement on a pool of machines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Control {
    /// A second node runs the match redundantly from the start.
    pub standby: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawControl {
    standby: Option<bool>,
}

impl RawControl {
    pub(super) fn build(raw: Option<&RawControl>) -> Control {
        Control {
            standby: raw.and_then(|r| r.standby).unwrap_or(false),
        }
    }
}
