//! What every stage of ingest (describing, building and running an angle's pipeline, the
//! feed watch) reports, and the running time of a buffer they all read.
//!
//! A leaf of `ingest`: calls only the templates' error and GStreamer.

use super::template::TemplateError;
use gst::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("angle {angle}: {source}")]
    Template {
        angle: String,
        source: TemplateError,
    },
    #[error(
        "angle {angle}: the pipeline description does not parse: {message}\n  pipeline: {description}"
    )]
    Parse {
        angle: String,
        message: String,
        description: String,
    },
    #[error(
        "angle {angle}: the pipeline has no element named {element:?} (the fragments in pipelines/ must keep it)"
    )]
    Missing { angle: String, element: String },
    #[error("GStreamer could not start: {0}")]
    Init(String),
    #[error("angle {angle}: cannot start the pipeline: {message}")]
    Start { angle: String, message: String },
    #[error("angle {angle}: cannot listen for RTMP publishers on {addr}: {source}")]
    Listen {
        angle: String,
        addr: String,
        source: std::io::Error,
    },
}

/// Running time of `buffer` on `pad`, if it has a PTS and a time segment.
pub(super) fn running_time(pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<u64> {
    let pts = buffer.pts()?;
    let ev = pad.sticky_event::<gst::event::Segment>(0)?;
    let segment = ev.segment().downcast_ref::<gst::ClockTime>()?;
    segment.to_running_time(pts).map(|t| t.nseconds())
}
