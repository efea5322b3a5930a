//! The origin's layout: where every object of a match lives, relative to the origin root
//! (`{match}/…`) or to the match's directory (`windows/…`). Every path the packager writes
//! and every reader looks for is built here, so the two cannot drift apart.
//!
//! A leaf: calls only the timecode.

use crate::timecode::Seq;

/// `{match}/master.m3u8`: the multivariant playlist of every angle.
pub fn master(match_id: &str) -> String {
    format!("{match_id}/master.m3u8")
}

/// `{match}/{angle}/master.m3u8`: one angle's multivariant playlist.
pub fn angle_master(match_id: &str, angle: &str) -> String {
    format!("{match_id}/{angle}/master.m3u8")
}

/// `{match}/p2p.json`: the players' signed delivery document.
pub fn p2p(match_id: &str) -> String {
    format!("{match_id}/p2p.json")
}

/// `{match}/pubkey.pem`: the match key's public half.
pub fn pubkey(match_id: &str) -> String {
    format!("{match_id}/pubkey.pem")
}

/// `{match}/live.json`: the pointer to the newest windows.
pub fn live(match_id: &str) -> String {
    format!("{match_id}/live.json")
}

/// `{match}/{angle}/{rung}`: one rendition's directory.
pub fn rendition(match_id: &str, angle: &str, rung: &str) -> String {
    format!("{match_id}/{angle}/{rung}")
}

/// `{match}/{angle}/{rung}/index.m3u8`: one rendition's media playlist.
pub fn media_playlist(match_id: &str, angle: &str, rung: &str) -> String {
    format!("{}/index.m3u8", rendition(match_id, angle, rung))
}

/// `{match}/{angle}/{rung}/{seq}.ts`.
pub fn segment(match_id: &str, angle: &str, rung: &str, seq: Seq) -> String {
    in_match(match_id, &segment_rel(angle, rung, seq))
}

/// `{angle}/{rung}/{seq}.ts`, relative to the match (as manifests and torrents name it).
pub fn segment_rel(angle: &str, rung: &str, seq: impl std::fmt::Display) -> String {
    format!("{angle}/{rung}/{seq}.ts")
}

/// Whether `path` is a plain relative path: not empty, no `//`, no `.`/`..`, not absolute.
/// What a document names is read only if it is (an origin must not be led outside the match).
pub fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains("//")
        && std::path::Path::new(path)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
}

/// `{match}/{rel}`: a path relative to the match, from the origin root.
pub fn in_match(match_id: &str, rel: &str) -> String {
    format!("{match_id}/{rel}")
}

/// `{match}/.pad/{size}`: a zero-filled BEP 47 pad file of `size` bytes.
pub fn pad(match_id: &str, size: u64) -> String {
    format!("{match_id}/.pad/{size}")
}

/// The rendition and seq of a segment path of `match_id` (the inverse of [`segment`]).
pub fn parse_segment<'a>(match_id: &str, path: &'a str) -> Option<(&'a str, &'a str, Seq)> {
    let rest = path.strip_prefix(match_id)?.strip_prefix('/')?;
    let mut parts = rest.splitn(3, '/');
    let (angle, rung, file) = (parts.next()?, parts.next()?, parts.next()?);
    let seq = file.strip_suffix(".ts")?.parse().ok()?;
    Some((angle, rung, Seq::new(seq)))
}

/// `windows/{w}.json`, relative to the match: window `w`'s manifest.
pub fn window_manifest_rel(w: u64) -> String {
    format!("windows/{w}.json")
}

/// `windows/{w}.torrent`, relative to the match: window `w`'s torrent.
pub fn window_torrent_rel(w: u64) -> String {
    format!("windows/{w}.torrent")
}

/// `{match}/windows/{w}.json`.
pub fn window_manifest(match_id: &str, w: u64) -> String {
    in_match(match_id, &window_manifest_rel(w))
}

/// `{path}.sig`: a document's detached signature.
pub fn sig(path: &str) -> String {
    format!("{path}.sig")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_round_trip() {
        let p = segment("final", "cam1", "360p", Seq::new(42));
        assert_eq!(p, "final/cam1/360p/42.ts");
        assert_eq!(
            parse_segment("final", &p),
            Some(("cam1", "360p", Seq::new(42)))
        );
        assert_eq!(parse_segment("fin", &p), None, "another match");
        assert_eq!(parse_segment("final", "final/cam1/360p/index.m3u8"), None);
        assert_eq!(parse_segment("final", "final/windows/2.json"), None);
    }

    #[test]
    fn only_plain_relative_paths_are_read() {
        assert!(is_plain_relative("cam1/360p/7.ts"));
        for bad in ["", "/etc/passwd", "../x.ts", "a/../b", "a//b", "./a"] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }
}
