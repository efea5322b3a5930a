//! Publishing: getting packaged objects onto the origin, in the order the packager emits them.

pub mod origin;

pub use origin::{LocalDir, Origin, OriginError};
