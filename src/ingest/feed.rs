//! Live feeds on match day: following a network feed's `fallbacksrc` (loss, slate, return)
//! and moving a pushed feed's clock onto the master timecode.
//!
//! When a lost feed returns, the picture stays on the slate until the next segment boundary of
//! the master timecode: frames before it are blackened (under the slate's text and timecode)
//! and their audio muted, so a segment is either slate or feed, never half of each.
//!
//! May call: `error`, `timecode`.

use super::error::{IngestError, running_time};
use super::{IngestEvent, MatchClock};
use crate::timecode::UtcNs;
use gst::prelude::*;
use gst_video::prelude::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// The slate's state, shared by the status watcher and the media probes.
struct Slate {
    angle: String,
    /// Overlays drawn while the slate is on air ("slate" text, "timecode").
    overlays: Vec<gst::Element>,
    clock: Arc<MatchClock>,
    /// While non-zero the slate is on air: until this UTC boundary once the feed is back,
    /// `u64::MAX` while there is no feed (its picture is black anyway; holding it from the
    /// start means no frame of a returning feed slips out before the watcher hears of it).
    hold_until: AtomicU64,
}

impl Slate {
    fn show(&self, on: bool) {
        for o in &self.overlays {
            o.set_property("silent", !on);
        }
    }

    /// The frame's instant as the IDR forcing sees it (see [`UtcNs::for_boundaries`]).
    fn utc(&self, pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<UtcNs> {
        running_time(pad, buffer).map(|rt| UtcNs(self.clock.anchor.0 + rt).for_boundaries())
    }
}

/// Whether the match has reached its stop point on `feed`'s clock (within 200 ms).
fn match_over(feed: &gst::Element, clock: &MatchClock) -> bool {
    let Some(stop) = clock.stop_at() else {
        return false;
    };
    let now = clock.anchor.0 + feed.current_running_time().map_or(0, |t| t.nseconds());
    now + 200_000_000 >= stop.0
}

/// Follows a network feed's `fallbacksrc` or a pushed feed's `fallbackswitch` (named "feed"):
/// the slate overlays are shown while the feed is not running, a returning feed goes on air at
/// the next boundary (element "hold" blackens video until then, "asrc" mutes audio), and
/// every loss and return is logged and sent to `events` ([`IngestEvent::Feed`]).
pub(super) fn watch(
    feed: &gst::Element,
    pipeline: &gst::Pipeline,
    angle: &str,
    clock: Arc<MatchClock>,
    events: crossbeam_channel::Sender<IngestEvent>,
) -> Result<(), IngestError> {
    let slate = Arc::new(Slate {
        angle: angle.to_string(),
        overlays: ["slate", "timecode"]
            .iter()
            .filter_map(|n| pipeline.by_name(n))
            .collect(),
        clock,
        hold_until: AtomicU64::new(u64::MAX),
    });
    let pad_of = |name: &str| {
        pipeline
            .by_name(name)
            .and_then(|e| e.static_pad("src"))
            .ok_or_else(|| IngestError::Missing {
                angle: angle.to_string(),
                element: format!("{name} (src pad)"),
            })
    };
    install_video_hold(&pad_of("hold")?, slate.clone());
    install_audio_hold(&pad_of("asrc")?, slate.clone());

    let was_running = AtomicBool::new(false);
    let ever_live = AtomicBool::new(false);
    let told_waiting = AtomicBool::new(false);
    let told_retrying = AtomicBool::new(false);
    let angle_arc: Arc<str> = angle.into();
    let apply = Arc::new(move |feed: &gst::Element| {
        let (running, status) = feed_status(feed);
        let angle = &slate.angle;
        let tell = |live: bool| {
            let _ = events.send(IngestEvent::Feed {
                angle: angle_arc.clone(),
                live,
                status: status.to_string(),
            });
        };
        match (was_running.swap(running, Relaxed), running) {
            (false, true) => {
                if ever_live.swap(true, Relaxed) {
                    tell(true);
                }
                let now = feed.current_running_time().map_or(0, |t| t.nseconds());
                let clock = &slate.clock;
                let on_air = clock
                    .timeline
                    .boundary_at_or_after(UtcNs(clock.anchor.0 + now + 1));
                slate.hold_until.store(on_air.0, Relaxed);
                tracing::info!(
                    "angle {angle}: feed is live; on air at the boundary {}",
                    on_air.to_datetime().format("%H:%M:%S%.3fZ")
                );
            }
            // At the end of the match the feed is ended on purpose (fallbacksrc then reports
            // "retrying" for the EOS, and "stopped" as the pipeline shuts down): not a loss.
            (true, false) if status == "stopped" || match_over(feed, &slate.clock) => {
                tracing::debug!("angle {angle}: feed {status} with the end of the match");
            }
            (true, false) => {
                slate.hold_until.store(u64::MAX, Relaxed);
                slate.show(true);
                let then = if is_switch(feed) {
                    "waiting for the encoder to publish again"
                } else {
                    "reconnecting"
                };
                tracing::warn!("angle {angle}: signal lost ({status}); slate on air, {then}");
                tell(false);
            }
            (false, false) if !ever_live.load(Relaxed) => {
                slate.show(true);
                if !told_waiting.swap(true, Relaxed) {
                    tracing::info!(
                        "angle {angle}: waiting for the feed; the slate is on air until it arrives"
                    );
                }
                if status == "retrying" && !told_retrying.swap(true, Relaxed) {
                    tracing::warn!(
                        "angle {angle}: no signal from the feed yet; slate on air, retrying"
                    );
                }
            }
            _ => tracing::debug!("angle {angle}: feed {status}"),
        }
    });
    apply(feed);
    if is_switch(feed) {
        // A publisher that comes back makes the feed's input active at its first buffer and
        // healthy a moment later, which the switch tells on the pad, not the element.
        for pad in feed
            .sink_pads()
            .into_iter()
            .filter(|p| p.name() == "sink_0")
        {
            let apply = apply.clone();
            pad.connect_notify(Some("is-healthy"), move |pad, _| {
                if let Some(feed) = pad.parent_element() {
                    apply(&feed);
                }
            });
        }
        feed.connect_notify(Some("active-pad"), move |feed, _| apply(feed));
    } else {
        feed.connect_notify(Some("status"), move |feed, _| apply(feed));
    }
    Ok(())
}

/// A `fallbackswitch` (the feed is its first input, the slate its second) rather than a
/// `fallbacksrc` (which reports a status of its own).
fn is_switch(feed: &gst::Element) -> bool {
    feed.find_property("status").is_none()
}

/// Whether the feed is on air, and how the element puts it.
fn feed_status(feed: &gst::Element) -> (bool, String) {
    if is_switch(feed) {
        let active = feed.property::<Option<gst::Pad>>("active-pad");
        // The first input is active from the start, before it ever had data: only a
        // healthy one (fresh data within the timeout) is on air.
        let running =
            active.is_some_and(|p| p.name() == "sink_0" && p.property::<bool>("is-healthy"));
        let status = if running { "running" } else { "no publisher" };
        return (running, status.to_string());
    }
    let value = feed.property_value("status");
    let status = gst::glib::EnumValue::from_value(&value)
        .map(|(_, v)| v.nick().to_string())
        .unwrap_or_default();
    (status == "running", status)
}

/// Raw I420 video before the slate's overlays: black until the hold boundary, then the feed
/// (and the overlays go away).
fn install_video_hold(pad: &gst::Pad, slate: Arc<Slate>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let until = slate.hold_until.load(Relaxed);
        if until == 0 {
            return gst::PadProbeReturn::Ok;
        }
        let Some(utc) = info.buffer().and_then(|b| slate.utc(pad, b)) else {
            return gst::PadProbeReturn::Ok;
        };
        if utc.0 >= until {
            if slate
                .hold_until
                .compare_exchange(until, 0, Relaxed, Relaxed)
                .is_ok()
            {
                slate.show(false);
                tracing::info!("angle {}: feed on air", slate.angle);
            }
            return gst::PadProbeReturn::Ok;
        }
        let caps = pad.current_caps();
        let video = caps.and_then(|c| gst_video::VideoInfo::from_caps(&c).ok());
        if let (Some(video), Some(buffer)) = (video, info.buffer_mut()) {
            blacken(buffer.make_mut(), &video);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Decoded audio: silence while the video is held on the slate.
fn install_audio_hold(pad: &gst::Pad, slate: Arc<Slate>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let until = slate.hold_until.load(Relaxed);
        if until == 0 {
            return gst::PadProbeReturn::Ok;
        }
        let held = info
            .buffer()
            .and_then(|b| slate.utc(pad, b))
            .is_some_and(|utc| utc.0 < until);
        if held
            && let Some(buffer) = info.buffer_mut()
            && let Ok(mut map) = buffer.make_mut().map_writable()
        {
            map.as_mut_slice().fill(0);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Paints a planar YUV frame black (Y 16, chroma 128).
fn blacken(buffer: &mut gst::BufferRef, info: &gst_video::VideoInfo) {
    let Ok(mut frame) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, info) else {
        return;
    };
    for plane in 0..frame.n_planes() {
        if let Ok(data) = frame.plane_data_mut(plane) {
            data.fill(if plane == 0 { 16 } else { 128 });
        }
    }
}

/// Shifts every buffer by one offset (shared by the angle's audio and video): the difference
/// between the pipeline's running time and the first buffer's, when the first one passes.
pub(super) fn install_restamp_probe(pad: &gst::Pad, offset: Arc<AtomicI64>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(rt) = info.buffer().and_then(|b| running_time(pad, b)) else {
            return gst::PadProbeReturn::Ok;
        };
        if offset.load(Relaxed) == i64::MIN {
            let now = pad
                .parent_element()
                .and_then(|e| e.current_running_time())
                .map_or(rt, |t| t.nseconds());
            let _ = offset.compare_exchange(i64::MIN, now as i64 - rt as i64, Relaxed, Relaxed);
        }
        let shift = offset.load(Relaxed);
        if let Some(buffer) = info.buffer_mut() {
            let buffer = buffer.make_mut();
            let moved = |t: gst::ClockTime| {
                gst::ClockTime::from_nseconds((t.nseconds() as i64 + shift).max(0) as u64)
            };
            if let Some(pts) = buffer.pts() {
                buffer.set_pts(moved(pts));
            }
            if let Some(dts) = buffer.dts() {
                buffer.set_dts(moved(dts));
            }
        }
        gst::PadProbeReturn::Ok
    });
}
