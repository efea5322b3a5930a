//! One angle's running pipeline (its text comes from `describe`): feed → decode once → per
//! rung (rate, scale, x264 | AAC) → MPEG-TS → appsink. Pad probes put the master timecode on the frames and force an IDR at every
//! segment boundary; the appsink side cuts the TS where the encoder's key-unit mark arrives.
//!
//! May call: `describe`, `downmix`, `error`, `feed`, `rtmp`, `source`, `srt`, `template`, `package`, `profile`, `sync`, `timecode`.

use super::source::SourceSpec;
use super::template::Fragments;
use super::{IngestEvent, MatchClock};
use crate::package::SegmentAssembler;
use crate::profile::{Profile, Rung};
use crate::timecode::{NS_PER_SEC, UtcNs};
use crossbeam_channel::Sender;
use gst::prelude::*;
use std::sync::{Arc, Mutex};

pub use super::IngestError;

/// Initialises GStreamer once per process.
pub fn init() -> Result<(), IngestError> {
    gst::init().map_err(|e| IngestError::Init(e.to_string()))?;
    // fallbacksrc (feed loss: slate while a network feed is down, reconnects) is compiled in.
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    REGISTERED.call_once(|| {
        result = gstfallbackswitch::plugin_register_static()
            .map_err(|e| IngestError::Init(format!("fallbackswitch plugin: {e}")))
            .and_then(|()| {
                // audioloudnorm ([audio] loudness) is compiled in too.
                gstrsaudiofx::plugin_register_static()
                    .map_err(|e| IngestError::Init(format!("audiofx plugin: {e}")))
            });
    });
    result
}

/// The realtime system clock: its time is UTC nanoseconds, so running time + base time is
/// the master timecode.
pub fn utc_clock() -> gst::Clock {
    let clock = gst::SystemClock::obtain();
    clock.set_property("clock-type", gst::ClockType::Realtime);
    clock
}

/// The clock's current time on the master timecode.
pub fn clock_now(clock: &gst::Clock) -> UtcNs {
    UtcNs(clock.time().nseconds())
}

/// A running angle.
pub struct AngleIngest {
    pub angle: Arc<str>,
    /// Decoded video frames taken from the feed so far.
    pub frames: Arc<std::sync::atomic::AtomicU64>,
    pipeline: gst::Pipeline,
    bus_thread: Option<std::thread::JoinHandle<()>>,
    bus_stop: Arc<std::sync::atomic::AtomicBool>,
    /// The RTMP server of an `rtmp-listen://` feed.
    rtmp: Option<super::rtmp::RtmpListener>,
}

/// Per-angle state shared by its probes and sinks.
struct AngleState {
    clock: Arc<MatchClock>,
    /// UTC just after the newest video frame of this angle (for a short last segment).
    video_end: std::sync::atomic::AtomicU64,
    /// Decoded video frames so far.
    frames: Arc<std::sync::atomic::AtomicU64>,
}

/// One rung's appsink (segments out) and its encoder's keyframe probe.
fn attach_rung(
    find: &dyn Fn(&str) -> Result<gst::Element, IngestError>,
    angle: Arc<str>,
    rung: &crate::profile::Rung,
    state: &Arc<AngleState>,
    events: &Sender<IngestEvent>,
) -> Result<(), IngestError> {
    let sink = find(&format!("sink_{}", rung.name))?
        .downcast::<gst_app::AppSink>()
        .map_err(|_| IngestError::Missing {
            angle: angle.to_string(),
            element: format!("sink_{} (an appsink)", rung.name),
        })?;
    let encoder_input = find(&format!("enc_{}", rung.name))?
        .static_pad("sink")
        .and_then(|p| p.peer())
        .ok_or_else(|| IngestError::Missing {
            angle: angle.to_string(),
            element: format!("enc_{} (linked encoder)", rung.name),
        })?;
    attach_sink(&sink, angle, rung, state.clone(), events.clone());
    install_keyframe_probe(&encoder_input, state.clone());
    Ok(())
}

/// The RTMP server of an `rtmp-listen://` feed, pushing into the pipeline's `rtmpin` appsrc.
fn listen_rtmp(
    angle: &str,
    rtmpin: &gst::Element,
    addr: &str,
    port: u16,
    app: &str,
    stream: &str,
) -> Result<super::rtmp::RtmpListener, IngestError> {
    let appsrc =
        rtmpin
            .clone()
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| IngestError::Missing {
                angle: angle.to_string(),
                element: "rtmpin (an appsrc)".into(),
            })?;
    let expect = super::rtmp::Expect {
        angle: angle.to_string(),
        app: app.to_string(),
        stream: stream.to_string(),
    };
    super::rtmp::RtmpListener::start(addr, port, expect, appsrc).map_err(|source| {
        IngestError::Listen {
            angle: angle.to_string(),
            addr: format!("{addr}:{port}"),
            source,
        }
    })
}

impl AngleIngest {
    /// Builds the angle's pipeline; nothing runs until [`AngleIngest::start`].
    pub fn build(
        angle: &str,
        spec: &SourceSpec,
        profile: &Profile,
        fragments: &Fragments,
        fast: bool,
        clock: Arc<MatchClock>,
        events: Sender<IngestEvent>,
    ) -> Result<AngleIngest, IngestError> {
        let description = super::describe::describe(angle, spec, profile, fragments, fast)?;
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| IngestError::Parse {
                angle: angle.to_string(),
                message: e.to_string(),
                description: description.clone(),
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| IngestError::Parse {
                angle: angle.to_string(),
                message: "the description is not a pipeline".into(),
                description: description.clone(),
            })?;
        pipeline.set_property("name", format!("angle-{angle}"));
        if let SourceSpec::Srt {
            encryption: Some(encryption),
            ..
        } = spec
        {
            super::srt::install(&pipeline, encryption);
        }
        let find = |name: &str| {
            pipeline.by_name(name).ok_or_else(|| IngestError::Missing {
                angle: angle.to_string(),
                element: name.to_string(),
            })
        };
        let state = Arc::new(AngleState {
            clock,
            video_end: std::sync::atomic::AtomicU64::new(0),
            frames: Arc::default(),
        });
        let angle_arc: Arc<str> = angle.into();

        if let Some(overlay) = pipeline.by_name("timecode") {
            let pad = overlay
                .static_pad("video_sink")
                .or_else(|| overlay.static_pad("sink"));
            if let Some(pad) = pad {
                install_timecode_probe(&pad, state.clone(), profile.rungs[0].fps.ceil());
            }
        }
        if let Some(downmix) = pipeline.by_name("downmix") {
            super::downmix::install(&downmix, angle);
        }
        if let Some(feed) = pipeline.by_name("feed") {
            super::feed::watch(&feed, &pipeline, angle, state.clock.clone(), events.clone())?;
        }
        // A pushed RTMP stream carries the encoder's clock: it is moved onto ours once, at
        // its first buffer, so media lands on the master timecode when it arrives.
        let restamp = matches!(spec, SourceSpec::RtmpListen { .. })
            .then(|| Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)));
        let src_pad = |name: &str| {
            find(name)?
                .static_pad("src")
                .ok_or_else(|| IngestError::Missing {
                    angle: angle.to_string(),
                    element: format!("{name}.src"),
                })
        };
        if let Some(offset) = &restamp {
            // Before the slate's switch: the switch compares both inputs on one timeline.
            for name in ["vin", "ain"] {
                super::feed::install_restamp_probe(&src_pad(name)?, offset.clone());
            }
        }
        for (name, video) in [("vsrc", true), ("asrc", false)] {
            install_stream_end_probe(&src_pad(name)?, state.clone(), video);
        }

        for rung in &profile.rungs {
            attach_rung(&find, angle_arc.clone(), rung, &state, &events)?;
        }

        let rtmp = match spec {
            SourceSpec::RtmpListen {
                addr,
                port,
                app,
                stream,
            } => Some(listen_rtmp(
                angle,
                &find("rtmpin")?,
                addr,
                *port,
                app,
                stream,
            )?),
            _ => None,
        };
        let bus_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bus_thread = spawn_bus_watch(&pipeline, angle_arc.clone(), events, bus_stop.clone());
        Ok(AngleIngest {
            angle: angle_arc,
            frames: state.frames.clone(),
            pipeline,
            bus_thread: Some(bus_thread),
            bus_stop,
            rtmp,
        })
    }

    /// Starts the pipeline on the UTC clock. With `base_time`, running time 0 is that UTC
    /// instant (live and real-time feeds); without, the pipeline runs free (`--fast`).
    pub fn start(&self, clock: &gst::Clock, base_time: Option<UtcNs>) -> Result<(), IngestError> {
        self.pipeline.use_clock(Some(clock));
        if let Some(base) = base_time {
            self.pipeline.set_start_time(gst::ClockTime::NONE);
            self.pipeline
                .set_base_time(gst::ClockTime::from_nseconds(base.0));
        }
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| IngestError::Start {
                angle: self.angle.to_string(),
                message: "the pipeline refused to go to PLAYING (see the error above)".into(),
            })
    }

    /// Stops the pipeline and its bus watch. GStreamer gets a few seconds to stop: fallbacksrc
    /// (0.14 on GStreamer 1.22) can deadlock when it is told to stop while it restarts a
    /// failing source, and a hung stop must not keep the match from closing its last window.
    pub fn shutdown(mut self) {
        const STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(5);
        if let Some(mut rtmp) = self.rtmp.take() {
            rtmp.stop();
        }
        let pipeline = self.pipeline.clone();
        let (done, stopped) = std::sync::mpsc::channel();
        let stopper = std::thread::spawn(move || {
            let _ = pipeline.set_state(gst::State::Null);
            let _ = done.send(());
        });
        if stopped.recv_timeout(STOP_WITHIN).is_ok() {
            let _ = stopper.join();
        } else {
            tracing::warn!(
                "angle {}: GStreamer did not stop within {} s; leaving its pipeline behind",
                self.angle,
                STOP_WITHIN.as_secs()
            );
        }
        self.bus_stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.bus_thread.take() {
            let _ = t.join();
        }
    }
}

use super::error::running_time;

/// Burns the master timecode into the test picture: attaches a SMPTE timecode (UTC time
/// of day, counted at the nominal whole rate: 30 for 29.97) that `timeoverlay
/// time-mode=time-code` renders.
fn install_timecode_probe(pad: &gst::Pad, state: Arc<AngleState>, fps: u32) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(rt) = info.buffer().and_then(|b| running_time(pad, b)) else {
            return gst::PadProbeReturn::Ok;
        };
        let utc = state.clock.anchor.0 + rt;
        let day = (utc / NS_PER_SEC) % 86_400;
        let frame = ((utc % NS_PER_SEC) * fps as u64 / NS_PER_SEC) as u32;
        let tc = gst_video::VideoTimeCode::new(
            gst::Fraction::new(fps as i32, 1),
            None,
            gst_video::VideoTimeCodeFlags::empty(),
            (day / 3600) as u32,
            (day / 60 % 60) as u32,
            (day % 60) as u32,
            frame.min(fps - 1),
            0,
        );
        if let (Ok(tc), Some(buffer)) = (tc.try_into(), info.buffer_mut()) {
            let tc: gst_video::ValidVideoTimeCode = tc;
            gst_video::VideoTimeCodeMeta::add(buffer.make_mut(), &tc);
        }
        gst::PadProbeReturn::Ok
    });
}

/// On an angle's decoded video or audio, before the rungs split off: ends the stream at the
/// match's stop point (a boundary), and for video tracks the head of the match.
fn install_stream_end_probe(pad: &gst::Pad, state: Arc<AngleState>, video: bool) {
    let ended = std::sync::atomic::AtomicBool::new(false);
    // Audio that starts before the previous buffer ended (a feed switching to or from the
    // slate) is dropped: the AAC encoder would otherwise emit timestamps that go backwards.
    let audio_end = std::sync::atomic::AtomicU64::new(0);
    const OVERLAP_NS: u64 = 100_000;
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        if ended.load(std::sync::atomic::Ordering::Relaxed) {
            return gst::PadProbeReturn::Drop;
        }
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(rt) = running_time(pad, buffer) else {
            return gst::PadProbeReturn::Ok;
        };
        if !video {
            let end = rt + buffer.duration().map_or(0, |d| d.nseconds());
            let prev = audio_end.load(std::sync::atomic::Ordering::Relaxed);
            if rt + OVERLAP_NS < prev {
                tracing::debug!("dropping {} ns of overlapping audio", prev - rt);
                return gst::PadProbeReturn::Drop;
            }
            audio_end.store(end, std::sync::atomic::Ordering::Relaxed);
        }
        let clock = &state.clock;
        let utc = UtcNs(clock.anchor.0 + rt);
        if video {
            clock.saw_frame(utc);
        }
        if clock.stop_at().is_some_and(|stop| utc >= stop) {
            ended.store(true, std::sync::atomic::Ordering::Relaxed);
            pad.push_event(gst::event::Eos::new());
            return gst::PadProbeReturn::Drop;
        }
        if video {
            state
                .frames
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let frame_ns = buffer.duration().map_or(0, |d| d.nseconds());
            state
                .video_end
                .store(utc.0 + frame_ns, std::sync::atomic::Ordering::Relaxed);
        }
        gst::PadProbeReturn::Ok
    });
}

/// Right in front of one rung's encoder (after its frame-rate conversion, so these are the
/// frames it will encode): asks for an IDR on the first frame at or after each segment
/// boundary. The request goes just ahead of that frame, so the encoder forces exactly it.
fn install_keyframe_probe(pad: &gst::Pad, state: Arc<AngleState>) {
    let next_boundary = Mutex::new(None::<UtcNs>);
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(rt) = info.buffer().and_then(|b| running_time(pad, b)) else {
            return gst::PadProbeReturn::Ok;
        };
        let timeline = &state.clock.timeline;
        let stamped = UtcNs(state.clock.anchor.0 + rt);
        // Decisions use the nudged instant (see `UtcNs::for_boundaries`); the first boundary
        // is the one at or after the frame as stamped.
        let utc = stamped.for_boundaries();
        if state.clock.stop_at().is_some_and(|stop| utc >= stop) {
            // Frame-rate conversion can repeat the last frame past the stop at EOS.
            return gst::PadProbeReturn::Drop;
        }
        let mut next = crate::sync::lock(&next_boundary);
        let boundary = *next.get_or_insert_with(|| timeline.boundary_at_or_after(stamped));
        if utc < boundary {
            return gst::PadProbeReturn::Ok;
        }
        let seq = timeline.seq_at(utc);
        *next = Some(timeline.seq_start(seq.next()));
        drop(next);
        // running_time NONE = "this very frame": the event is serialized right before it.
        let event = gst_video::DownstreamForceKeyUnitEvent::builder()
            .running_time(gst::ClockTime::NONE)
            .all_headers(true)
            .count(seq.get() as u32)
            .build();
        pad.push_event(event);
        gst::PadProbeReturn::Ok
    });
}

/// Cuts one rung's TS into segments: bytes go to the open segment; the encoder's key-unit
/// mark (passed on by the muxer just before the IDR's PAT/PMT) starts the next.
fn attach_sink(
    sink: &gst_app::AppSink,
    angle: Arc<str>,
    rung: &Rung,
    state: Arc<AngleState>,
    events: Sender<IngestEvent>,
) {
    let rung_name: Arc<str> = rung.name.as_str().into();
    let assembler = Arc::new(Mutex::new(SegmentAssembler::new(
        state.clock.timeline,
        angle.clone(),
        rung_name.clone(),
    )));
    let drain = {
        let assembler = assembler.clone();
        let state = state.clone();
        let events = events.clone();
        move |sink: &gst_app::AppSink| {
            let mut asm = crate::sync::lock(&assembler);
            while let Some(obj) = sink.try_pull_object(gst::ClockTime::ZERO) {
                if let Some(sample) = obj.downcast_ref::<gst::Sample>() {
                    if let Some(map) = sample.buffer().and_then(|b| b.map_readable().ok()) {
                        asm.push_bytes(&map);
                    }
                } else if let Some(event) = obj.downcast_ref::<gst::Event>() {
                    let Ok(fku) = gst_video::DownstreamForceKeyUnitEvent::parse(event) else {
                        continue;
                    };
                    let Some(rt) = fku.running_time else { continue };
                    let utc = UtcNs(state.clock.anchor.0 + rt.nseconds());
                    if let Some(segment) = asm.boundary(utc) {
                        let _ = events.send(IngestEvent::Segment(segment));
                    }
                }
            }
        }
    };
    let on_sample = drain.clone();
    let on_event = drain.clone();
    let on_eos = drain;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |s| {
                on_sample(s);
                Ok(gst::FlowSuccess::Ok)
            })
            .new_event(move |s| {
                on_event(s);
                true
            })
            .eos(move |s| {
                on_eos(s);
                let video_end = state.video_end.load(std::sync::atomic::Ordering::Relaxed);
                let end = match state.clock.stop_at() {
                    Some(stop) if stop.0 <= video_end || video_end == 0 => stop,
                    _ => UtcNs(video_end),
                };
                let mut asm = crate::sync::lock(&assembler);
                if let Some(segment) = asm.finish(Some(end)) {
                    let _ = events.send(IngestEvent::Segment(segment));
                }
                let _ = events.send(IngestEvent::RungEnded {
                    angle: angle.clone(),
                    rung: rung_name.clone(),
                });
            })
            .build(),
    );
}

/// Reports the pipeline's errors (with the element's path) to the match, until `stop`.
fn spawn_bus_watch(
    pipeline: &gst::Pipeline,
    angle: Arc<str>,
    events: Sender<IngestEvent>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let bus = pipeline.bus().expect("a pipeline always has a bus");
    std::thread::Builder::new()
        .name(format!("bus-{angle}"))
        .spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                    continue;
                };
                let from = msg
                    .src()
                    .map(|s| s.path_string().to_string())
                    .unwrap_or_default();
                match msg.view() {
                    gst::MessageView::Error(e) => {
                        let debug = e.debug().map(|d| format!(" ({d})")).unwrap_or_default();
                        let _ = events.send(IngestEvent::Error {
                            angle: angle.clone(),
                            message: format!("{from}: {}{debug}", e.error()),
                        });
                    }
                    gst::MessageView::Warning(w) => {
                        tracing::warn!(angle = %angle, element = %from, "{}", w.error());
                    }
                    _ => {}
                }
            }
        })
        .expect("spawning a thread")
}
