//! Segment encryption: HLS METHOD=AES-128, i.e. AES-128-CBC with PKCS#7 padding over the
//! whole segment, with the window's content key and an explicit per-segment IV.
//!
//! May call: `keys`, `playlist`, `timecode`.

use super::playlist::SegmentKey;
use super::{EncodedSegment, Protection};
use crate::keys::{ContentKey, content_key, segment_iv};
use crate::timecode::Timeline;
use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};

type Encryptor = cbc::Encryptor<aes::Aes128>;

/// Encrypts `plain` with AES-128-CBC/PKCS#7.
pub fn encrypt(key: &ContentKey, iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    Encryptor::new(&key.0.into(), iv.into()).encrypt_padded_vec_mut::<Pkcs7>(plain)
}

/// Decrypts AES-128-CBC/PKCS#7 (for verification and tests).
pub fn decrypt(key: &ContentKey, iv: &[u8; 16], cipher: &[u8]) -> Option<Vec<u8>> {
    use aes::cipher::BlockDecryptMut;
    cbc::Decryptor::<aes::Aes128>::new(&key.0.into(), iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(cipher)
        .ok()
}

/// Encrypts every segment with the key of its window (key period = window number).
pub struct Aes128 {
    master_secret: Vec<u8>,
    match_id: String,
    key_uri_base: String,
    timeline: Timeline,
    /// The most recent period's key, so a key is derived once per window, not per segment.
    cached: Option<(u64, ContentKey)>,
}

impl Aes128 {
    pub fn new(
        master_secret: &[u8],
        match_id: &str,
        key_uri_base: &str,
        timeline: Timeline,
    ) -> Self {
        Aes128 {
            master_secret: master_secret.to_vec(),
            match_id: match_id.to_string(),
            key_uri_base: key_uri_base.trim_end_matches('/').to_string(),
            timeline,
            cached: None,
        }
    }

    fn key(&mut self, period: u64) -> ContentKey {
        match &self.cached {
            Some((p, k)) if *p == period => k.clone(),
            _ => {
                let k = content_key(&self.master_secret, &self.match_id, period);
                self.cached = Some((period, k.clone()));
                k
            }
        }
    }
}

impl Protection for Aes128 {
    fn seal(&mut self, segment: &mut EncodedSegment) -> Option<SegmentKey> {
        let period = self.timeline.window_of(segment.seq).get();
        let key = self.key(period);
        let iv = segment_iv(
            &self.match_id,
            &segment.angle,
            &segment.rung,
            segment.seq.get(),
        );
        segment.bytes = encrypt(&key, &iv, &segment.bytes);
        Some(SegmentKey {
            uri: format!("{}/{}/{period}", self.key_uri_base, self.match_id),
            iv,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::Seq;

    fn seg(seq: u64, bytes: Vec<u8>) -> EncodedSegment {
        EncodedSegment {
            angle: "main".into(),
            rung: "360p".into(),
            seq: Seq::new(seq),
            duration_ns: 1,
            bytes,
        }
    }

    #[test]
    fn seals_with_the_window_key_and_round_trips() {
        let mut p = Aes128::new(&[9; 32], "final", "http://k/keys/", Timeline::new(2000, 5));
        let plain: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let mut s = seg(12, plain.clone());
        let key = p.seal(&mut s).unwrap();
        assert_eq!(key.uri, "http://k/keys/final/2");
        assert_eq!(s.bytes.len(), 1008, "PKCS#7 pads to the next block");
        assert_ne!(s.bytes[..16], plain[..16]);
        let k = content_key(&[9; 32], "final", 2);
        assert_eq!(decrypt(&k, &key.iv, &s.bytes).unwrap(), plain);
        assert!(
            decrypt(&content_key(&[9; 32], "final", 3), &key.iv, &s.bytes)
                .is_none_or(|d| d != plain)
        );
    }

    #[test]
    fn rotates_at_window_boundaries_and_changes_iv_per_segment() {
        let mut p = Aes128::new(&[9; 32], "final", "http://k/keys", Timeline::new(2000, 5));
        let uris: Vec<_> = (8..12)
            .map(|s| p.seal(&mut seg(s, vec![0; 188])).unwrap())
            .collect();
        assert_eq!(uris[0].uri, "http://k/keys/final/1");
        assert_eq!(uris[1].uri, "http://k/keys/final/1");
        assert_eq!(uris[2].uri, "http://k/keys/final/2");
        assert_ne!(uris[0].iv, uris[1].iv);
    }

    #[test]
    fn exact_block_multiples_get_a_whole_padding_block() {
        let k = ContentKey([3; 16]);
        assert_eq!(encrypt(&k, &[0; 16], &[0; 32]).len(), 48);
        assert_eq!(encrypt(&k, &[0; 16], &[]).len(), 16);
    }
}
