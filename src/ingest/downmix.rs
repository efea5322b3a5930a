//! Any channel layout into the profile's stereo, as broadcasters downmix (ITU-R BS.775): the
//! front left and right go to their side, the centre and every surround at -3 dB (0.707), the
//! centre into both sides, the LFE left out, and each side scaled down when its coefficients
//! add up to more than 1 so nothing clips (as ffmpeg's resampler normalises). GStreamer's own
//! default puts the LFE into both sides as loud as the fronts and the centre 3 dB lower than
//! this, hence a matrix of ours.
//!
//! [`stereo_matrix`] is pure: the channel positions of the caps' `channel-mask` (GStreamer's
//! channel order is by position) in, audioconvert's `mix-matrix` (2 rows, one per output
//! side) out. [`install`] sets it on the source fragment's `audioconvert name=downmix` from
//! each caps the feed announces.
//!
//! A leaf: calls no other room.

use gst::prelude::*;

/// The positions of a `channel-mask`, in channel order (GStreamer orders channels by position).
fn positions(mask: u64) -> Vec<u32> {
    (0..64).filter(|bit| mask & (1 << bit) != 0).collect()
}

/// What one input channel at GStreamer position `pos` adds to (left, right).
fn gains(pos: u32) -> (f32, f32) {
    const M3DB: f32 = std::f32::consts::FRAC_1_SQRT_2;
    match pos {
        0 => (1.0, 0.0),                                         // front left
        1 => (0.0, 1.0),                                         // front right
        2 => (M3DB, M3DB),                                       // front centre
        3 | 9 => (0.0, 0.0),                                     // LFE
        4 | 6 | 10 | 12 | 16 | 18 | 22 | 24 | 26 => (M3DB, 0.0), // the other lefts
        5 | 7 | 11 | 13 | 17 | 19 | 23 | 25 | 27 => (0.0, M3DB), // the other rights
        _ => (0.5, 0.5),                                         // rear, top and bottom centres
    }
}

/// The 2 × `channels` mix matrix for a feed with `channels` channels and `mask` (0 when the
/// caps carry none). None where GStreamer's own handling is right or nothing better is known:
/// stereo without a mask, or more than two unpositioned channels.
pub fn stereo_matrix(channels: usize, mask: u64) -> Option<Vec<[f32; 2]>> {
    let columns: Vec<(f32, f32)> = match (channels, mask) {
        (1, _) => vec![(1.0, 1.0)],
        (2, 0) => return None,
        (_, 0) => return None,
        (n, m) => {
            let pos = positions(m);
            if pos.len() != n {
                return None;
            }
            pos.into_iter().map(gains).collect()
        }
    };
    let (sum_l, sum_r) = columns
        .iter()
        .fold((0.0, 0.0), |(l, r), (a, b)| (l + a, r + b));
    let (kl, kr) = (1.0 / sum_l.max(1.0), 1.0 / sum_r.max(1.0));
    Some(columns.into_iter().map(|(l, r)| [l * kl, r * kr]).collect())
}

/// Sets `downmix`'s mix matrix from each caps event that reaches it, before it configures
/// itself for them.
pub fn install(downmix: &gst::Element, angle: &str) {
    let Some(pad) = downmix.static_pad("sink") else {
        return;
    };
    let element = downmix.downgrade();
    let angle = angle.to_string();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(ev)) = &info.data else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::EventView::Caps(caps) = ev.view() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(s) = caps.caps().structure(0) else {
            return gst::PadProbeReturn::Ok;
        };
        let channels = s.get::<i32>("channels").unwrap_or(2).max(1) as usize;
        let mask = s
            .get::<gst::Bitmask>("channel-mask")
            .map(|m| m.0)
            .unwrap_or(0);
        let Some(el) = element.upgrade() else {
            return gst::PadProbeReturn::Ok;
        };
        match stereo_matrix(channels, mask) {
            Some(columns) => {
                let rows = [0, 1].map(|side| {
                    gst::Array::new(columns.iter().map(|c| c[side]).collect::<Vec<f32>>())
                });
                el.set_property("mix-matrix", gst::Array::new(rows));
                tracing::info!(
                    "angle {angle}: audio of {channels} channel(s) (mask {mask:#x}) downmixed to stereo"
                );
            }
            None => {
                // GStreamer's own conversion (stereo stays stereo).
                el.set_property("mix-matrix", gst::Array::new(Vec::<gst::Array>::new()));
            }
        }
        gst::PadProbeReturn::Ok
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIVE_ONE: u64 = 0b11_1111; // FL FR FC LFE RL RR

    #[test]
    fn five_one_puts_the_centre_in_both_sides_and_leaves_the_lfe_out() {
        let m = stereo_matrix(6, FIVE_ONE).unwrap();
        let sum = 1.0 + 2.0 * std::f32::consts::FRAC_1_SQRT_2;
        let close = |a: f32, b: f32| (a - b).abs() < 1e-6;
        assert!(
            close(m[0][0], 1.0 / sum) && m[0][1] == 0.0,
            "front left: {m:?}"
        );
        assert!(
            close(m[2][0], m[2][1]) && m[2][0] > 0.25,
            "centre in both: {m:?}"
        );
        assert_eq!(m[3], [0.0, 0.0], "no LFE");
        assert!(
            m[4][1] == 0.0 && m[5][0] == 0.0,
            "surrounds keep their side: {m:?}"
        );
        for side in 0..2 {
            let total: f32 = m.iter().map(|c| c[side]).sum();
            assert!(close(total, 1.0), "side {side} sums to {total}");
        }
    }

    #[test]
    fn mono_goes_to_both_sides_and_stereo_is_left_alone() {
        assert_eq!(stereo_matrix(1, 0), Some(vec![[1.0, 1.0]]));
        assert_eq!(stereo_matrix(2, 0), None);
        assert_eq!(stereo_matrix(2, 0b11), Some(vec![[1.0, 0.0], [0.0, 1.0]]));
        assert_eq!(stereo_matrix(8, 0), None, "unpositioned: GStreamer's way");
        assert_eq!(stereo_matrix(3, 0b11), None, "a mask that does not fit");
    }

    #[test]
    fn seven_one_keeps_sides_apart() {
        // FL FR FC LFE RL RR SL SR
        let mask = 0b1100_0011_1111;
        let m = stereo_matrix(8, mask).unwrap();
        assert_eq!(m.len(), 8);
        assert!(m[6][0] > 0.0 && m[6][1] == 0.0 && m[7][1] > 0.0 && m[7][0] == 0.0);
    }
}
