//! Cutting one rung's MPEG-TS byte stream into epoch-locked segments.
//!
//! The GStreamer edge hands over the muxer's output as it comes: byte chunks, plus a
//! boundary mark wherever the encoder placed a forced IDR at a segment boundary (the muxer
//! re-sends PAT/PMT right there). The assembler turns that into whole segments, each named
//! by the seq of the boundary it starts at. Bytes before the first boundary belong to no
//! whole segment and are dropped, so every segment starts with PAT, PMT and an IDR.
//!
//! May call: `timecode`.

use crate::timecode::{Seq, Timeline, UtcNs};
use std::sync::Arc;

/// MPEG-TS packet size in bytes.
pub const TS_PACKET: usize = 188;

/// One finished segment of one angle and rung, as it leaves the encoder (not yet encrypted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedSegment {
    pub angle: Arc<str>,
    pub rung: Arc<str>,
    pub seq: Seq,
    /// Media duration in nanoseconds.
    pub duration_ns: u64,
    /// MPEG-TS bytes; starts with PAT/PMT and an IDR frame.
    pub bytes: Vec<u8>,
}

impl EncodedSegment {
    /// Its angle and rung.
    pub fn rendition(&self) -> crate::rendition::Rendition {
        crate::rendition::Rendition::new(&*self.angle, &*self.rung)
    }
}

impl EncodedSegment {
    /// Whether the bytes look like whole MPEG-TS packets (sync byte on every 188th byte).
    pub fn is_whole_ts(&self) -> bool {
        !self.bytes.is_empty()
            && self.bytes.len().is_multiple_of(TS_PACKET)
            && self.bytes.iter().step_by(TS_PACKET).all(|b| *b == 0x47)
    }
}

struct Open {
    seq: Seq,
    bytes: Vec<u8>,
}

/// Assembles one (angle, rung) stream into segments. Pure: no clock, no I/O.
pub struct SegmentAssembler {
    timeline: Timeline,
    angle: Arc<str>,
    rung: Arc<str>,
    open: Option<Open>,
    /// Bytes dropped before the first boundary (reported once, for the log).
    pub dropped_lead_in: usize,
    capacity_hint: usize,
}

impl SegmentAssembler {
    pub fn new(timeline: Timeline, angle: Arc<str>, rung: Arc<str>) -> Self {
        SegmentAssembler {
            timeline,
            angle,
            rung,
            open: None,
            dropped_lead_in: 0,
            capacity_hint: 64 * 1024,
        }
    }

    /// Appends muxer output to the open segment.
    pub fn push_bytes(&mut self, chunk: &[u8]) {
        match &mut self.open {
            Some(open) => open.bytes.extend_from_slice(chunk),
            None => self.dropped_lead_in += chunk.len(),
        }
    }

    /// A forced IDR at `keyframe` (UTC of the keyframe, within a frame of a boundary) starts
    /// a new segment. Returns the segment it closes, if one was open.
    pub fn boundary(&mut self, keyframe: UtcNs) -> Option<EncodedSegment> {
        let seq = self.timeline.nearest_seq(keyframe);
        if let Some(open) = &self.open
            && seq <= open.seq
        {
            // A repeated mark for the same boundary (e.g. two headers-only events):
            // keep appending to the open segment.
            return None;
        }
        let next = Open {
            seq,
            bytes: Vec::with_capacity(self.capacity_hint),
        };
        let closed = self.open.replace(next)?;
        // Media between two boundaries is one segment duration, even across a gap: the
        // packager marks the gap as a discontinuity.
        Some(self.finish_open(closed, self.timeline.segment_ns()))
    }

    /// End of stream at `end` (UTC just after the last frame). Returns the open segment,
    /// with its real duration if it was cut short.
    pub fn finish(&mut self, end: Option<UtcNs>) -> Option<EncodedSegment> {
        let open = self.open.take()?;
        let start = self.timeline.seq_start(open.seq);
        let full = self.timeline.segment_ns();
        let duration = match end {
            Some(end) if end > start => (end.0 - start.0).min(full),
            _ => full,
        };
        if open.bytes.is_empty() {
            return None;
        }
        Some(self.finish_open(open, duration))
    }

    fn finish_open(&mut self, open: Open, duration_ns: u64) -> EncodedSegment {
        // Size the next buffer like this one, so steady state allocates once per segment.
        self.capacity_hint = open.bytes.len().max(self.capacity_hint) + TS_PACKET * 64;
        EncodedSegment {
            angle: self.angle.clone(),
            rung: self.rung.clone(),
            seq: open.seq,
            duration_ns,
            bytes: open.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::NS_PER_SEC;

    fn asm() -> SegmentAssembler {
        SegmentAssembler::new(Timeline::new(2000, 5), "cam1".into(), "360p".into())
    }

    fn packet(tag: u8) -> Vec<u8> {
        let mut p = vec![tag; TS_PACKET];
        p[0] = 0x47;
        p
    }

    #[test]
    fn lead_in_before_the_first_boundary_is_dropped() {
        let mut a = asm();
        a.push_bytes(&packet(1));
        assert!(a.boundary(UtcNs(10 * NS_PER_SEC)).is_none());
        assert_eq!(a.dropped_lead_in, TS_PACKET);
        a.push_bytes(&packet(2));
        let s = a.boundary(UtcNs(12 * NS_PER_SEC)).expect("closes seq 5");
        assert_eq!(s.seq, Seq::new(5));
        assert_eq!(s.bytes, packet(2));
        assert_eq!(s.duration_ns, 2 * NS_PER_SEC);
        assert!(s.is_whole_ts());
    }

    #[test]
    fn keyframes_a_fraction_of_a_frame_off_the_boundary_name_the_boundary() {
        let mut a = asm();
        a.boundary(UtcNs(10 * NS_PER_SEC - 5_000_000));
        a.push_bytes(&packet(1));
        let s = a.boundary(UtcNs(12 * NS_PER_SEC + 33_000_000)).unwrap();
        assert_eq!(s.seq, Seq::new(5));
        a.push_bytes(&packet(2));
        assert_eq!(a.finish(None).unwrap().seq, Seq::new(6));
    }

    #[test]
    fn repeated_marks_for_one_boundary_do_not_split() {
        let mut a = asm();
        a.boundary(UtcNs(10 * NS_PER_SEC));
        a.push_bytes(&packet(1));
        assert!(a.boundary(UtcNs(10 * NS_PER_SEC)).is_none());
        a.push_bytes(&packet(2));
        let s = a.boundary(UtcNs(12 * NS_PER_SEC)).unwrap();
        assert_eq!(s.bytes.len(), 2 * TS_PACKET);
    }

    #[test]
    fn gaps_keep_epoch_numbering() {
        let mut a = asm();
        a.boundary(UtcNs(10 * NS_PER_SEC));
        a.push_bytes(&packet(1));
        let s = a.boundary(UtcNs(20 * NS_PER_SEC)).unwrap();
        assert_eq!(s.seq, Seq::new(5));
        a.push_bytes(&packet(1));
        assert_eq!(a.finish(None).unwrap().seq, Seq::new(10));
    }

    #[test]
    fn a_short_last_segment_reports_its_real_duration() {
        let mut a = asm();
        a.boundary(UtcNs(10 * NS_PER_SEC));
        a.push_bytes(&packet(1));
        let s = a
            .finish(Some(UtcNs(11 * NS_PER_SEC + 500_000_000)))
            .unwrap();
        assert_eq!(s.duration_ns, 1_500_000_000);
        // Nothing open: nothing to finish.
        assert!(a.finish(None).is_none());
    }

    #[test]
    fn an_empty_open_segment_is_not_emitted() {
        let mut a = asm();
        a.boundary(UtcNs(10 * NS_PER_SEC));
        assert!(a.finish(Some(UtcNs(10 * NS_PER_SEC))).is_none());
    }

    #[test]
    fn whole_ts_check_rejects_torn_packets() {
        let mut s = EncodedSegment {
            angle: "a".into(),
            rung: "r".into(),
            seq: Seq::new(1),
            duration_ns: 1,
            bytes: packet(1),
        };
        assert!(s.is_whole_ts());
        s.bytes.push(0);
        assert!(!s.is_whole_ts());
        s.bytes = vec![0u8; TS_PACKET];
        assert!(!s.is_whole_ts());
    }
}
