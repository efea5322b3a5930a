//! Frames the FLV tag bodies an RTMP publisher sends as an FLV byte stream for GStreamer's
//! `flvdemux`, moving each publisher's timestamps onto the pipeline's running time.
//!
//! A leaf: calls no other room.

/// RTMP message and FLV tag type of audio.
pub const AUDIO: u8 = 8;
/// RTMP message and FLV tag type of video.
pub const VIDEO: u8 = 9;
/// The largest tag body FLV can frame (a 24-bit size), the same bound as an RTMP message.
pub const MAX_TAG: usize = 0xFF_FFFF;

#[derive(Default)]
pub struct FlvWriter {
    header_sent: bool,
    /// (first tag timestamp of this publisher, running time in ms it maps to)
    offset: Option<(u32, u64)>,
}

impl FlvWriter {
    /// The next publisher's first tag is placed at the running time of its arrival.
    pub fn new_publisher(&mut self) {
        self.offset = None;
    }

    /// One tag (with the stream header before the first); `None` for a body over [`MAX_TAG`].
    pub fn tag(
        &mut self,
        kind: u8,
        data: &[u8],
        timestamp_ms: u32,
        running_ms: impl Fn() -> u64,
    ) -> Option<Vec<u8>> {
        if data.len() > MAX_TAG {
            return None;
        }
        let mut out = Vec::with_capacity(data.len() + 32);
        if !self.header_sent {
            // "FLV", version 1, audio + video, header size 9, then PreviousTagSize0.
            out.extend_from_slice(b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
            self.header_sent = true;
        }
        let (first, base) = *self
            .offset
            .get_or_insert_with(|| (timestamp_ms, running_ms()));
        let ts = base + u64::from(timestamp_ms.wrapping_sub(first));
        let ts = (ts & 0xFFFF_FFFF) as u32;
        let size = data.len() as u32;
        out.push(kind);
        out.extend_from_slice(&size.to_be_bytes()[1..]);
        out.extend_from_slice(&ts.to_be_bytes()[1..]);
        out.push((ts >> 24) as u8);
        out.extend_from_slice(&[0, 0, 0]);
        out.extend_from_slice(data);
        out.extend_from_slice(&(size + 11).to_be_bytes());
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn flv_tags_are_framed_and_retimed() {
        let mut w = FlvWriter::default();
        let first = w.tag(VIDEO, &[1, 2, 3], 5000, || 12_000).unwrap();
        assert_eq!(&first[..13], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        let tag = &first[13..];
        assert_eq!(tag[0], 9);
        assert_eq!(&tag[1..4], &[0, 0, 3]);
        // 12 000 ms = 0x002EE0
        assert_eq!(&tag[4..8], &[0x00, 0x2E, 0xE0, 0]);
        assert_eq!(&tag[11..14], &[1, 2, 3]);
        assert_eq!(&tag[14..18], &14u32.to_be_bytes());
        let second = w.tag(AUDIO, &[9], 5040, || 99_999).unwrap();
        assert_eq!(
            &second[4..7],
            &[0x00, 0x2F, 0x08],
            "12 040 ms: the publisher's own pace"
        );
        w.new_publisher();
        let third = w.tag(AUDIO, &[9], 7, || 50_000).unwrap();
        assert_eq!(
            &third[4..7],
            &[0x00, 0xC3, 0x50],
            "the next publisher starts now"
        );
    }

    #[test]
    fn a_body_flv_cannot_frame_is_refused() {
        let mut w = FlvWriter::default();
        assert!(w.tag(VIDEO, &vec![0; MAX_TAG + 1], 0, || 0).is_none());
        assert!(w.tag(VIDEO, &vec![0; MAX_TAG], 0, || 0).is_some());
    }

    proptest! {
        /// Whatever a publisher sends, each tag reads back as one well-formed FLV tag: its
        /// type, its body, and a trailing size that matches.
        #[test]
        fn any_body_and_timestamp_frame_one_tag(
            kind in prop_oneof![Just(AUDIO), Just(VIDEO)],
            body in proptest::collection::vec(any::<u8>(), 0..4096),
            first_ts in any::<u32>(),
            next_ts in any::<u32>(),
            running in any::<u64>(),
        ) {
            let mut w = FlvWriter::default();
            let _ = w.tag(kind, &[], first_ts, || running).unwrap();
            let tag = w.tag(kind, &body, next_ts, || 0).unwrap();
            prop_assert_eq!(tag[0], kind);
            let size = u32::from_be_bytes([0, tag[1], tag[2], tag[3]]) as usize;
            prop_assert_eq!(size, body.len());
            prop_assert_eq!(&tag[11..11 + size], &body[..]);
            let trailer = u32::from_be_bytes(tag[11 + size..].try_into().unwrap());
            prop_assert_eq!(trailer as usize, size + 11);
            prop_assert_eq!(tag.len(), size + 15);
        }
    }
}
