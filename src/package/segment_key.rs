//! How a segment is encrypted and marked in a media playlist, as every writer and reader of
//! playlists names it: the EXT-X-KEY of a segment, its IV's text form, and the gap tag.
//!
//! A leaf: calls only the hex helpers.

/// How a segment is encrypted, as the playlist must say it (EXT-X-KEY).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentKey {
    /// Absolute key URI: `{key_uri_base}/{match}/{period}`.
    pub uri: String,
    /// The explicit AES-128-CBC IV.
    pub iv: [u8; 16],
}

/// m3u8-rs's name for `#EXT-X-GAP` among a segment's unknown tags.
pub const GAP_TAG: &str = "X-GAP";

/// An EXT-X-KEY IV: `0x` + 32 hex digits.
pub fn parse_iv(text: Option<&str>) -> Option<[u8; 16]> {
    let text = text?;
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    crate::hex::decode_array(hex)
}
