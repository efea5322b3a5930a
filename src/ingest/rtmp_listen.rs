//! `rtmp-listen://ADDR:PORT/APP/STREAM`: swarmpack accepts an RTMP push itself (OBS, vMix,
//! ffmpeg). The RTMP session (handshake, connect, publish) is the `rml_rtmp` crate's; the
//! audio and video messages it hands over are FLV tag bodies, which are framed as an FLV
//! stream and pushed into the angle's `appsrc` (named "rtmpin"), where GStreamer demuxes and
//! decodes them like any other feed.
//!
//! One publisher at a time; a wrong application name or stream key is refused (and the key a
//! client tried is never logged). Tag timestamps are moved onto the pipeline's running time at
//! each publisher's first tag, so media lands on the master timecode when it arrives and a
//! reconnecting encoder continues forward in time.

use gst::prelude::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a publisher must ask for.
pub struct Expect {
    pub angle: String,
    pub app: String,
    pub stream: String,
}

/// The listening side; dropping it (or `stop`) ends the accept loop.
pub struct RtmpListener {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RtmpListener {
    /// Binds `addr:port` now (so a port in use fails the start) and serves publishers into
    /// `appsrc` on a thread of its own.
    pub fn start(
        addr: &str,
        port: u16,
        expect: Expect,
        appsrc: gst_app::AppSrc,
    ) -> std::io::Result<RtmpListener> {
        let listener = TcpListener::bind((addr, port))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("rtmp-{}", expect.angle))
            .spawn(move || accept_loop(listener, expect, appsrc, stop2))?;
        Ok(RtmpListener {
            stop,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RtmpListener {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: TcpListener,
    expect: Expect,
    appsrc: gst_app::AppSrc,
    stop: Arc<AtomicBool>,
) {
    let mut flv = FlvWriter::default();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => match serve(stream, &expect, &appsrc, &mut flv, &stop) {
                Ok(()) => tracing::info!("angle {}: RTMP publisher {peer} left", expect.angle),
                Err(e) => tracing::warn!("angle {}: RTMP client {peer}: {e}", expect.angle),
            },
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                tracing::warn!("angle {}: RTMP accept: {e}", expect.angle);
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Frames FLV tag bodies as an FLV byte stream, moving each publisher's timestamps onto the
/// pipeline's running time.
#[derive(Default)]
struct FlvWriter {
    header_sent: bool,
    /// (first tag timestamp of this publisher, running time in ms it maps to)
    offset: Option<(u32, u64)>,
}

impl FlvWriter {
    fn tag(
        &mut self,
        kind: u8,
        data: &[u8],
        timestamp_ms: u32,
        running_ms: impl Fn() -> u64,
    ) -> Vec<u8> {
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
        out
    }
}

fn serve(
    mut stream: TcpStream,
    expect: &Expect,
    appsrc: &gst_app::AppSrc,
    flv: &mut FlvWriter,
    stop: &AtomicBool,
) -> Result<(), String> {
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    // Handshake.
    let mut handshake = Handshake::new(PeerType::Server);
    let remaining = loop {
        let Some(n) = read_some(&mut stream, &mut buf, stop)? else {
            return Ok(());
        };
        match handshake
            .process_bytes(&buf[..n])
            .map_err(|e| format!("handshake: {e:?}"))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                stream
                    .write_all(&response_bytes)
                    .map_err(|e| e.to_string())?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                stream
                    .write_all(&response_bytes)
                    .map_err(|e| e.to_string())?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, initial) =
        ServerSession::new(ServerSessionConfig::new()).map_err(|e| format!("{e:?}"))?;
    flv.offset = None;
    let mut pending = initial;
    pending.extend(
        session
            .handle_input(&remaining)
            .map_err(|e| format!("{e:?}"))?,
    );
    let running_ms = || {
        let now = appsrc.current_running_time();
        now.map_or(0, |t| t.mseconds())
    };
    loop {
        for result in std::mem::take(&mut pending) {
            match result {
                ServerSessionResult::OutboundResponse(p) => {
                    stream.write_all(&p.bytes).map_err(|e| e.to_string())?;
                }
                ServerSessionResult::RaisedEvent(event) => {
                    let more = match event {
                        ServerSessionEvent::ConnectionRequested {
                            request_id,
                            app_name,
                        } if app_name == expect.app => session.accept_request(request_id),
                        ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                            let out = session.reject_request(
                                request_id,
                                "NetConnection.Connect.Rejected",
                                "unknown application",
                            );
                            flush(&mut stream, out)?;
                            return Err("refused: wrong application name".into());
                        }
                        ServerSessionEvent::PublishStreamRequested {
                            request_id,
                            stream_key,
                            ..
                        } if same_secret(&stream_key, &expect.stream) => {
                            tracing::info!(
                                "angle {}: RTMP publisher accepted on /{}/…",
                                expect.angle,
                                expect.app
                            );
                            session.accept_request(request_id)
                        }
                        ServerSessionEvent::PublishStreamRequested { request_id, .. } => {
                            let out = session.reject_request(
                                request_id,
                                "NetStream.Publish.BadName",
                                "wrong stream key",
                            );
                            flush(&mut stream, out)?;
                            return Err("refused a publish: wrong stream key".into());
                        }
                        ServerSessionEvent::VideoDataReceived {
                            data, timestamp, ..
                        } => {
                            push(appsrc, flv.tag(9, &data, timestamp.value, running_ms))?;
                            Ok(Vec::new())
                        }
                        ServerSessionEvent::AudioDataReceived {
                            data, timestamp, ..
                        } => {
                            push(appsrc, flv.tag(8, &data, timestamp.value, running_ms))?;
                            Ok(Vec::new())
                        }
                        ServerSessionEvent::PublishStreamFinished { .. } => return Ok(()),
                        _ => Ok(Vec::new()),
                    };
                    pending.extend(more.map_err(|e| format!("{e:?}"))?);
                }
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        if !pending.is_empty() {
            continue;
        }
        let Some(n) = read_some(&mut stream, &mut buf, stop)? else {
            return Ok(());
        };
        pending = session
            .handle_input(&buf[..n])
            .map_err(|e| format!("{e:?}"))?;
    }
}

/// Reads what the peer sent; `None` at its end or when swarmpack stops.
fn read_some(
    stream: &mut TcpStream,
    buf: &mut [u8],
    stop: &AtomicBool,
) -> Result<Option<usize>, String> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match stream.read(buf) {
            Ok(0) => return Ok(None),
            Ok(n) => return Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

fn flush(
    stream: &mut TcpStream,
    out: Result<Vec<ServerSessionResult>, rml_rtmp::sessions::ServerSessionError>,
) -> Result<(), String> {
    for r in out.map_err(|e| format!("{e:?}"))? {
        if let ServerSessionResult::OutboundResponse(p) = r {
            stream.write_all(&p.bytes).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

fn push(appsrc: &gst_app::AppSrc, bytes: Vec<u8>) -> Result<(), String> {
    appsrc
        .push_buffer(gst::Buffer::from_mut_slice(bytes))
        .map(|_| ())
        .map_err(|e| format!("the pipeline stopped taking media: {e:?}"))
}

/// Whether a stream key matches, in time that does not depend on where they differ or on
/// their lengths (the SHA-256 digests are compared in full).
fn same_secret(given: &str, expected: &str) -> bool {
    use crate::package::hex::sha256;
    let (a, b) = (sha256(given.as_bytes()), sha256(expected.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_keys_match_exactly() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3creT"));
        assert!(!same_secret("s3cre", "s3cret"));
        assert!(!same_secret("", "s3cret"));
    }

    #[test]
    fn flv_tags_are_framed_and_retimed() {
        let mut w = FlvWriter::default();
        let first = w.tag(9, &[1, 2, 3], 5000, || 12_000);
        assert_eq!(&first[..13], b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00");
        let tag = &first[13..];
        assert_eq!(tag[0], 9);
        assert_eq!(&tag[1..4], &[0, 0, 3]);
        // 12 000 ms = 0x002EE0
        assert_eq!(&tag[4..8], &[0x00, 0x2E, 0xE0, 0]);
        assert_eq!(&tag[11..14], &[1, 2, 3]);
        assert_eq!(&tag[14..18], &14u32.to_be_bytes());
        let second = w.tag(8, &[9], 5040, || 99_999);
        assert_eq!(
            &second[4..7],
            &[0x00, 0x2F, 0x08],
            "12 040 ms: the publisher's own pace"
        );
    }
}
