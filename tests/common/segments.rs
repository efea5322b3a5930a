//! Segments as a player sees them: the key a playlist names, decryption with the key the
//! match's secrets derive, and checks that what decrypts is sound TS.

use super::*;

/// The (period, IV) a playlist gives for a segment: EXT-X-KEY URI ends in /{period}.
pub fn key_tag(seg: &m3u8_rs::MediaSegment) -> (String, u64, [u8; 16]) {
    let key = seg
        .key
        .as_ref()
        .unwrap_or_else(|| panic!("{}: no EXT-X-KEY", seg.uri));
    assert_eq!(key.method, m3u8_rs::KeyMethod::AES128);
    let uri = key.uri.clone().expect("key URI");
    let period = uri.rsplit('/').next().unwrap().parse().expect("period");
    let hex = key
        .iv
        .as_deref()
        .expect("explicit IV")
        .trim_start_matches("0x");
    let mut iv = [0u8; 16];
    for (i, b) in iv.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    (uri, period, iv)
}

/// Decrypts one segment with the key derived from the key directory (the key server's
/// answer is checked separately, over HTTP, in the encryption tests).
pub fn decrypt_segment(
    keys: &Path,
    match_id: &str,
    seg: &m3u8_rs::MediaSegment,
    bytes: &[u8],
) -> Vec<u8> {
    let (_, period, iv) = key_tag(seg);
    let secrets = swarmpack::keys::KeyDir::load(keys).unwrap();
    let key = swarmpack::keys::content_key(secrets.content_secret(), match_id, period);
    swarmpack::package::crypt::decrypt(&key, &iv, bytes).expect("segment decrypts")
}

/// Writes the decrypted segment `seg` of playlist directory `dir` into `out` and returns its path.
pub fn decrypted_copy(
    dir: &Path,
    keys: &Path,
    match_id: &str,
    seg: &m3u8_rs::MediaSegment,
    out: &Path,
) -> PathBuf {
    let stored = std::fs::read(dir.join(&seg.uri)).unwrap();
    let plain = out.join(format!(
        "{}-{}",
        dir.file_name().unwrap().to_string_lossy(),
        seg.uri
    ));
    std::fs::write(&plain, decrypt_segment(keys, match_id, seg, &stored)).unwrap();
    plain
}

/// Checks every segment a playlist names: it exists, is encrypted (not TS as stored),
/// decrypts to whole TS packets that start with PAT, decodes cleanly and begins with a
/// keyframe. Returns the number of segments.
pub fn assert_playlist_segments_valid(dir: &Path, keys: &Path, match_id: &str) -> usize {
    let playlist = media_playlist(&dir.join("index.m3u8"));
    assert!(
        !playlist.segments.is_empty(),
        "{}: no segments",
        dir.display()
    );
    let scratch = tempfile::tempdir().unwrap();
    for seg in &playlist.segments {
        let path = dir.join(&seg.uri);
        let stored = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            stored.len() % 16,
            0,
            "{}: not whole AES blocks",
            path.display()
        );
        let bytes = decrypt_segment(keys, match_id, seg, &stored);
        assert_eq!(
            bytes.len() % 188,
            0,
            "{}: not whole TS packets",
            path.display()
        );
        assert_eq!(
            &bytes[..3],
            &[0x47, 0x40, 0x00],
            "{}: does not start with PAT",
            path.display()
        );
        let plain = scratch.path().join(&seg.uri);
        std::fs::write(&plain, &bytes).unwrap();
        let errors = decode_errors(&plain);
        assert!(errors.is_empty(), "{}: {errors}", path.display());
        assert!(
            first_video_frame(&plain).key,
            "{}: first frame is not a keyframe",
            path.display()
        );
    }
    playlist.segments.len()
}
