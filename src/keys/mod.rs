//! Keys and entitlement: the match secrets on disk, content-key derivation, viewer tokens,
//! and the key server that hands content keys only to entitled viewers.
//!
//! May call (the whole room): `hex`, `pem`, `profile`, `sign`, `sync`, `timecode`.

pub mod derive;
pub mod ice;
pub mod key_dir;
pub mod server;
pub mod token;

pub use derive::{ContentKey, content_key, segment_iv};
pub use key_dir::{KeyDir, KeyError};
pub use token::{Claims, TokenError};

/// Whether `given` is the secret `expected`, compared in constant time (over their SHA-256, so
/// neither the length nor the first differing byte shows in the timing).
pub fn same_secret(given: &str, expected: &str) -> bool {
    use crate::hex::sha256;
    let (a, b) = (sha256(given.as_bytes()), sha256(expected.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}
