//! `rtmp-listen://ADDR:PORT/APP/STREAM`: swarmpack accepts an RTMP push itself (OBS, vMix,
//! ffmpeg). The RTMP protocol is the `rml_rtmp` crate's ([`conversation`]); the audio and
//! video messages it hands over are FLV tag bodies, framed as an FLV stream ([`flv`]) and
//! pushed into the angle's `appsrc` (named "rtmpin"), where GStreamer demuxes and decodes
//! them like any other feed.
//!
//! A venue port faces the internet, so no client can block it ([`guard`] holds the policy):
//! - connections are served concurrently, at most 16 at once and 4 from one address;
//! - a client must finish its handshake within 5 s of connecting and be publishing within
//!   10 s, and a publisher that sends nothing for 5 s is dropped;
//! - before its publish is accepted a client may send 64 KiB, after it RTMP's own 16 MiB per
//!   message;
//! - one publisher is on air: a second one with the right key is refused ("another publisher
//!   is on air") until the first leaves or falls silent, so a reconnecting encoder is back on
//!   air within 5 s of losing its old connection;
//! - an address that sends 3 wrong application names or stream keys (or malformed RTMP) is
//!   refused for 10 s, doubling with each further one up to 5 minutes; the right key clears
//!   its record.
//!
//! Keys are compared in constant time and never logged. Every refusal is counted by reason
//! (`swarmpack_rtmp_refused_total`). Tag timestamps are moved onto the pipeline's running time
//! at each publisher's first tag, so media lands on the master timecode when it arrives and a
//! reconnecting encoder continues forward in time.
//!
//! May call: `sync`.

mod conversation;
mod flv;
mod guard;

use crate::sync::lock;
use conversation::{Conversation, Refusal, Step};
use gst::prelude::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A client must finish the RTMP handshake this soon after connecting.
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);
/// A client must be publishing this soon after connecting.
pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(10);
/// A publisher that sends nothing for this long is dropped, freeing the air.
pub const IDLE_DEADLINE: Duration = Duration::from_secs(5);
/// A client that does not read what swarmpack sends for this long is dropped.
const WRITE_DEADLINE: Duration = Duration::from_secs(5);

/// The reasons a connection or publish is refused, as counted in metrics.
pub const REASONS: [&str; 8] = [
    "busy",
    "throttled",
    "deadline",
    "protocol",
    "wrong_app",
    "wrong_key",
    "second_publisher",
    "too_much_before_publish",
];
static REFUSED: [AtomicU64; REASONS.len()] = [const { AtomicU64::new(0) }; REASONS.len()];

/// Refusals so far in this process, by reason (every `rtmp-listen://` angle together).
pub fn refused() -> impl Iterator<Item = (&'static str, u64)> {
    REASONS
        .iter()
        .zip(REFUSED.iter())
        .map(|(r, n)| (*r, n.load(Ordering::Relaxed)))
}

fn count(reason: &str) {
    if let Some(i) = REASONS.iter().position(|r| *r == reason) {
        REFUSED[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// What a publisher must ask for.
pub struct Expect {
    pub angle: String,
    pub app: String,
    pub stream: String,
}

/// What the accept loop and every connection share.
struct Shared {
    expect: Expect,
    appsrc: gst_app::AppSrc,
    flv: Mutex<flv::FlvWriter>,
    guard: Mutex<guard::Guard>,
    stop: AtomicBool,
}

impl Shared {
    fn guard(&self) -> std::sync::MutexGuard<'_, guard::Guard> {
        crate::sync::lock(&self.guard)
    }
}

/// The listening side; dropping it (or `stop`) ends the accept loop and every connection.
pub struct RtmpListener {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RtmpListener {
    /// Binds `addr:port` now (so a port in use fails the start) and serves publishers into
    /// `appsrc` on threads of its own.
    pub fn start(
        addr: &str,
        port: u16,
        expect: Expect,
        appsrc: gst_app::AppSrc,
    ) -> std::io::Result<RtmpListener> {
        let listener = TcpListener::bind((addr, port))?;
        listener.set_nonblocking(true)?;
        let shared = Arc::new(Shared {
            expect,
            appsrc,
            flv: Mutex::default(),
            guard: Mutex::default(),
            stop: AtomicBool::new(false),
        });
        let for_loop = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("rtmp-{}", shared.expect.angle))
            .spawn(move || accept_loop(listener, for_loop))?;
        Ok(RtmpListener {
            shared,
            thread: Some(thread),
        })
    }

    pub fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
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

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let angle = shared.expect.angle.clone();
    let mut connections: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut last_turned_away: Option<Instant> = None;
    while !shared.stop.load(Ordering::Relaxed) {
        connections.retain(|c| !c.is_finished());
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => {
                tracing::warn!("angle {angle}: RTMP accept: {e}");
                std::thread::sleep(Duration::from_millis(200));
                continue;
            }
        };
        let admitted = shared.guard().admit(peer.ip(), Instant::now());
        let id = match admitted {
            Ok(id) => id,
            Err(turned) => {
                let (reason, why) = match turned {
                    guard::Turned::Busy => ("busy", "too many connections open".to_string()),
                    guard::Turned::Throttled(wait) => (
                        "throttled",
                        format!(
                            "too many wrong keys or malformed requests; refused for {}s more",
                            wait.as_secs()
                        ),
                    ),
                };
                count(reason);
                // One line a second at most, however hard a client knocks.
                if last_turned_away.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!("angle {angle}: RTMP client {peer} turned away: {why}");
                    last_turned_away = Some(Instant::now());
                }
                continue;
            }
        };
        let for_thread = shared.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rtmp-{angle}-{id}"))
            .spawn(move || {
                let ended = converse(stream, id, peer, &for_thread);
                for_thread.guard().closed(id, peer.ip());
                let angle = &for_thread.expect.angle;
                match ended {
                    Ok(()) => tracing::info!("angle {angle}: RTMP client {peer} left"),
                    Err(e) => tracing::warn!("angle {angle}: RTMP client {peer}: {}", causes(&e)),
                }
            });
        match spawned {
            Ok(handle) => connections.push(handle),
            Err(e) => {
                tracing::warn!("angle {angle}: RTMP: cannot start a connection thread: {e}");
                shared.guard().closed(id, peer.ip());
            }
        }
    }
    for c in connections {
        let _ = c.join();
    }
}

/// How a connection ended early.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("{0}")]
    Deadline(&'static str),
    #[error("connection failed")]
    Io(#[from] std::io::Error),
    #[error("the pipeline stopped taking media ({0:?})")]
    Pipeline(gst::FlowError),
}

/// `e` and its sources, "a: b: c".
fn causes(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// Serves one client until it leaves, is refused, misses a deadline, or swarmpack stops.
fn converse(
    mut stream: TcpStream,
    id: u64,
    peer: SocketAddr,
    shared: &Shared,
) -> Result<(), Ended> {
    let connected = Instant::now();
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(WRITE_DEADLINE))?;
    let _ = stream.set_nodelay(true);
    let expect = &shared.expect;
    let mut conversation = Conversation::new(&expect.app, &expect.stream);
    let mut buf = vec![0u8; 64 * 1024];
    let mut last_bytes = connected;
    loop {
        let (deadline, missed) = if !conversation.shook_hands() {
            (
                connected + HANDSHAKE_DEADLINE,
                "no RTMP handshake within 5 s",
            )
        } else if !conversation.on_air() {
            (connected + PUBLISH_DEADLINE, "not publishing within 10 s")
        } else {
            (last_bytes + IDLE_DEADLINE, "silent for 5 s while on air")
        };
        let n = match read_before(&mut stream, &mut buf, deadline, &shared.stop)? {
            Some(0) => return Ok(()),
            Some(n) => n,
            None if shared.stop.load(Ordering::Relaxed) => return Ok(()),
            None => {
                count("deadline");
                return Err(Ended::Deadline(missed));
            }
        };
        last_bytes = Instant::now();
        let steps = conversation.feed(&buf[..n], &mut || shared.guard().go_on_air(id, peer.ip()));
        for step in steps {
            match step {
                Step::Send(bytes) => stream.write_all(&bytes)?,
                Step::OnAir => {
                    lock(&shared.flv).new_publisher();
                    tracing::info!(
                        "angle {}: RTMP publisher accepted on /{}/… from {peer}",
                        expect.angle,
                        expect.app
                    );
                }
                Step::Media {
                    kind,
                    data,
                    timestamp,
                } => push(shared, kind, &data, timestamp)?,
                Step::Finished => return Ok(()),
                Step::Refuse(refusal) => {
                    count(refusal.reason());
                    if refusal.counts_against_address() {
                        let mut guard = shared.guard();
                        guard.failed(peer.ip(), Instant::now());
                        if let Some(wait) = guard.throttled(peer.ip(), Instant::now()) {
                            tracing::warn!(
                                "angle {}: RTMP: {} sent too many wrong keys or malformed requests; refused for {}s",
                                expect.angle,
                                peer.ip(),
                                wait.as_secs()
                            );
                        }
                    }
                    return Err(refusal.into());
                }
            }
        }
    }
}

/// Frames one message as an FLV tag and hands it to the pipeline.
fn push(shared: &Shared, kind: u8, data: &[u8], timestamp: u32) -> Result<(), Ended> {
    let appsrc = &shared.appsrc;
    let running_ms = || appsrc.current_running_time().map_or(0, |t| t.mseconds());
    let Some(tag) = lock(&shared.flv).tag(kind, data, timestamp, running_ms) else {
        return Ok(());
    };
    appsrc
        .push_buffer(gst::Buffer::from_mut_slice(tag))
        .map(|_| ())
        .map_err(Ended::Pipeline)
}

/// Reads what the peer sent: `Some(0)` at its end, `None` at the deadline or when swarmpack
/// stops.
fn read_before(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
    stop: &AtomicBool,
) -> std::io::Result<Option<usize>> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        stream.set_read_timeout(Some(left.min(Duration::from_millis(250))))?;
        match stream.read(buf) {
            Ok(n) => return Ok(Some(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
