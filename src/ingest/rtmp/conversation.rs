//! One RTMP publisher's conversation, without I/O: bytes from the client in, bytes to send
//! back, media to put on air and the end of the conversation out. The RTMP protocol itself
//! (handshake, chunk stream, AMF commands) is the `rml_rtmp` crate's.
//!
//! Bounds, so no client can make swarmpack hold much for it:
//! - before a publish is accepted, a client may send [`BEFORE_PUBLISH_BUDGET`] bytes (its
//!   handshake, `connect`, `createStream` and `publish` need about 4 KiB);
//! - after it, a message is bounded by RTMP's own 24-bit length (16 MiB), which is also the
//!   largest tag FLV can frame.
//!
//! May call: `flv`, `keys`.

use super::flv;
use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeError, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult,
};

/// Bytes a client may send before its publish is accepted.
pub const BEFORE_PUBLISH_BUDGET: usize = 64 * 1024;

/// What the conversation asks of the connection.
#[derive(Debug)]
pub enum Step {
    /// Send these bytes to the client.
    Send(Vec<u8>),
    /// The client published with the right key and holds the air.
    OnAir,
    /// An audio or video message: an FLV tag body of type `kind`.
    Media {
        kind: u8,
        data: Bytes,
        timestamp: u32,
    },
    /// The client finished publishing.
    Finished,
    /// The conversation is over for this reason (after any `Send` before it).
    Refuse(Refusal),
}

/// Why a conversation ended early.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("handshake failed")]
    Handshake(#[source] HandshakeError),
    #[error("malformed RTMP")]
    Protocol(#[source] ServerSessionError),
    #[error("the RTMP library could not read this client's bytes")]
    Unreadable,
    #[error("refused: wrong application name")]
    WrongApp,
    #[error("refused a publish: wrong stream key")]
    WrongKey,
    #[error("refused a second publisher: another one is on air")]
    SecondPublisher,
    #[error("sent over {BEFORE_PUBLISH_BUDGET} bytes without publishing")]
    TooMuchBeforePublish,
}

impl Refusal {
    /// The metric label of this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Handshake(_) | Refusal::Protocol(_) | Refusal::Unreadable => "protocol",
            Refusal::WrongApp => "wrong_app",
            Refusal::WrongKey => "wrong_key",
            Refusal::SecondPublisher => "second_publisher",
            Refusal::TooMuchBeforePublish => "too_much_before_publish",
        }
    }

    /// Whether this counts against the client's address (toward throttling it): a guessed
    /// application or key, or bytes no encoder sends. Running out of budget or finding the air
    /// taken does not.
    pub fn counts_against_address(&self) -> bool {
        !matches!(
            self,
            Refusal::SecondPublisher | Refusal::TooMuchBeforePublish
        )
    }
}

enum Stage {
    Handshake(Box<Handshake>),
    Session(Box<ServerSession>),
    Over,
}

/// A server-side conversation with one client.
pub struct Conversation {
    stage: Stage,
    app: String,
    key: String,
    received: usize,
    on_air: bool,
}

impl Conversation {
    /// Expects a publish to `app` with stream key `key`.
    pub fn new(app: &str, key: &str) -> Conversation {
        Conversation {
            stage: Stage::Handshake(Box::new(Handshake::new(PeerType::Server))),
            app: app.to_string(),
            key: key.to_string(),
            received: 0,
            on_air: false,
        }
    }

    /// Whether the handshake is done.
    pub fn shook_hands(&self) -> bool {
        !matches!(self.stage, Stage::Handshake(_))
    }

    /// Whether the client is on air.
    pub fn on_air(&self) -> bool {
        self.on_air
    }

    /// Takes `bytes` from the client. `may_go_on_air` is asked when the client publishes with
    /// the right application and key; answering no refuses it as a second publisher.
    pub fn feed(&mut self, bytes: &[u8], may_go_on_air: &mut dyn FnMut() -> bool) -> Vec<Step> {
        let mut steps = Vec::new();
        if let Err(refusal) = self.take(bytes, may_go_on_air, &mut steps) {
            self.stage = Stage::Over;
            steps.push(Step::Refuse(refusal));
        }
        steps
    }

    fn take(
        &mut self,
        bytes: &[u8],
        may_go_on_air: &mut dyn FnMut() -> bool,
        steps: &mut Vec<Step>,
    ) -> Result<(), Refusal> {
        if !self.on_air {
            self.received += bytes.len();
            if self.received > BEFORE_PUBLISH_BUDGET {
                return Err(Refusal::TooMuchBeforePublish);
            }
        }
        let results = match &mut self.stage {
            Stage::Over => return Ok(()),
            Stage::Handshake(handshake) => {
                let done =
                    guarded(|| handshake.process_bytes(bytes))?.map_err(Refusal::Handshake)?;
                match done {
                    HandshakeProcessResult::InProgress { response_bytes } => {
                        steps.push(Step::Send(response_bytes));
                        return Ok(());
                    }
                    HandshakeProcessResult::Completed {
                        response_bytes,
                        remaining_bytes,
                    } => {
                        steps.push(Step::Send(response_bytes));
                        let (session, mut first) =
                            guarded(|| ServerSession::new(ServerSessionConfig::new()))?
                                .map_err(Refusal::Protocol)?;
                        let mut session = Box::new(session);
                        first.extend(
                            guarded(|| session.handle_input(&remaining_bytes))?
                                .map_err(Refusal::Protocol)?,
                        );
                        self.stage = Stage::Session(session);
                        first
                    }
                }
            }
            Stage::Session(session) => {
                guarded(|| session.handle_input(bytes))?.map_err(Refusal::Protocol)?
            }
        };
        self.results(results, may_go_on_air, steps)
    }

    fn results(
        &mut self,
        results: Vec<ServerSessionResult>,
        may_go_on_air: &mut dyn FnMut() -> bool,
        steps: &mut Vec<Step>,
    ) -> Result<(), Refusal> {
        let mut pending = std::collections::VecDeque::from(results);
        while let Some(result) = pending.pop_front() {
            let event = match result {
                ServerSessionResult::OutboundResponse(p) => {
                    steps.push(Step::Send(p.bytes));
                    continue;
                }
                ServerSessionResult::RaisedEvent(event) => event,
                ServerSessionResult::UnhandleableMessageReceived(_) => continue,
            };
            let Stage::Session(session) = &mut self.stage else {
                return Ok(());
            };
            let more = match event {
                ServerSessionEvent::ConnectionRequested {
                    request_id,
                    app_name,
                } if app_name == self.app => session.accept_request(request_id),
                ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                    let out = session.reject_request(
                        request_id,
                        "NetConnection.Connect.Rejected",
                        "unknown application",
                    );
                    send_all(out, steps);
                    return Err(Refusal::WrongApp);
                }
                ServerSessionEvent::PublishStreamRequested {
                    request_id,
                    stream_key,
                    ..
                } => {
                    let (code, why, refusal) = if !crate::keys::same_secret(&stream_key, &self.key)
                    {
                        (
                            "NetStream.Publish.BadName",
                            "wrong stream key",
                            Refusal::WrongKey,
                        )
                    } else if !self.on_air && !may_go_on_air() {
                        (
                            "NetStream.Publish.BadName",
                            "another publisher is on air",
                            Refusal::SecondPublisher,
                        )
                    } else {
                        self.on_air = true;
                        steps.push(Step::OnAir);
                        pending.extend(
                            session
                                .accept_request(request_id)
                                .map_err(Refusal::Protocol)?,
                        );
                        continue;
                    };
                    send_all(session.reject_request(request_id, code, why), steps);
                    return Err(refusal);
                }
                ServerSessionEvent::VideoDataReceived {
                    data, timestamp, ..
                } if self.on_air => {
                    steps.push(Step::Media {
                        kind: flv::VIDEO,
                        data,
                        timestamp: timestamp.value,
                    });
                    continue;
                }
                ServerSessionEvent::AudioDataReceived {
                    data, timestamp, ..
                } if self.on_air => {
                    steps.push(Step::Media {
                        kind: flv::AUDIO,
                        data,
                        timestamp: timestamp.value,
                    });
                    continue;
                }
                ServerSessionEvent::PublishStreamFinished { .. } => {
                    steps.push(Step::Finished);
                    self.stage = Stage::Over;
                    return Ok(());
                }
                _ => continue,
            };
            pending.extend(more.map_err(Refusal::Protocol)?);
        }
        Ok(())
    }
}

fn send_all(out: Result<Vec<ServerSessionResult>, ServerSessionError>, steps: &mut Vec<Step>) {
    for r in out.into_iter().flatten() {
        if let ServerSessionResult::OutboundResponse(p) = r {
            steps.push(Step::Send(p.bytes));
        }
    }
}

/// Runs one call into `rml_rtmp`; a panic on hostile bytes ends this conversation only.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, Refusal> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|_| Refusal::Unreadable)
}

/// Whether a stream key matches, in time that does not depend on where they differ or on
/// their lengths (the SHA-256 digests are compared in full).
#[cfg(test)]
#[path = "conversation_tests.rs"]
mod tests;
