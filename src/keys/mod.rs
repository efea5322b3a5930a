//! Keys and entitlement: the match secrets on disk, content-key derivation, viewer tokens,
//! and the key server that hands content keys only to entitled viewers.

pub mod derive;
pub mod server;
pub mod store;
pub mod token;

pub use derive::{ContentKey, content_key, segment_iv};
pub use store::{KeyDir, KeyError};
pub use token::{Claims, TokenError};
