//! A rendition: one angle at one rung of the ladder, the unit every playlist, window entry,
//! follower and metric label is kept by.
//!
//! A leaf: calls only the profile's rung type.

use prometheus_client::encoding::EncodeLabelSet;
use std::fmt;

/// One angle at one rung (`cam1`, `360p`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, PartialOrd, Ord, EncodeLabelSet)]
pub struct Rendition {
    pub angle: String,
    pub rung: String,
}

impl Rendition {
    pub fn new(angle: impl Into<String>, rung: impl Into<String>) -> Rendition {
        Rendition {
            angle: angle.into(),
            rung: rung.into(),
        }
    }

    /// Every rung of each of `angles`, angle by angle.
    pub fn all<'a>(
        angles: &'a [String],
        rungs: &'a [crate::profile::Rung],
    ) -> impl Iterator<Item = Rendition> + 'a {
        angles
            .iter()
            .flat_map(move |a| rungs.iter().map(move |r| Rendition::new(a, &r.name)))
    }
}

/// `angle/rung`.
impl fmt::Display for Rendition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.angle, self.rung)
    }
}
