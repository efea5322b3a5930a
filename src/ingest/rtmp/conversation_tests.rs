//! The conversation against `rml_rtmp`'s own client: real RTMP bytes, then hostile ones.

use super::*;
use proptest::prelude::*;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use std::collections::VecDeque;

/// What the server side made of one client.
#[derive(Debug, Default)]
struct Outcome {
    on_air: bool,
    media: usize,
    media_before_on_air: bool,
    finished: bool,
    refusal: Option<Refusal>,
    sent_to_client: usize,
}

/// A client that connects to `app`, publishes on `key` and sends `frames` video messages, with
/// `mutate` applied to each packet it sends (numbered from 0).
fn talk(
    app: &str,
    key: &str,
    frames: usize,
    may_go_on_air: bool,
    mutate: &mut dyn FnMut(usize, &mut Vec<u8>),
) -> Outcome {
    let mut server = Conversation::new("live", "s3cret");
    let mut out = Outcome::default();
    let mut hs = Handshake::new(PeerType::Client);
    let mut client: Option<ClientSession> = None;
    let mut to_server = VecDeque::from([hs.generate_outbound_p0_and_p1().unwrap()]);
    let mut to_client: VecDeque<Vec<u8>> = VecDeque::new();
    let mut sent = 0;
    let packets = |r: Vec<ClientSessionResult>, q: &mut VecDeque<Vec<u8>>| {
        for r in r {
            if let ClientSessionResult::OutboundResponse(p) = r {
                q.push_back(p.bytes);
            }
        }
    };
    for _ in 0..10_000 {
        if let Some(mut bytes) = to_server.pop_front() {
            mutate(sent, &mut bytes);
            sent += 1;
            for step in server.feed(&bytes, &mut || may_go_on_air) {
                match step {
                    Step::Send(b) => {
                        out.sent_to_client += b.len();
                        to_client.push_back(b);
                    }
                    Step::OnAir => out.on_air = true,
                    Step::Media { .. } => {
                        out.media += 1;
                        out.media_before_on_air |= !out.on_air;
                    }
                    Step::Finished => out.finished = true,
                    Step::Refuse(r) => {
                        out.refusal = Some(r);
                        return out;
                    }
                }
            }
            continue;
        }
        let Some(bytes) = to_client.pop_front() else {
            break;
        };
        let Some(session) = client.as_mut() else {
            match hs.process_bytes(&bytes) {
                Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                    if !response_bytes.is_empty() {
                        to_server.push_back(response_bytes);
                    }
                }
                Ok(HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                }) => {
                    to_server.push_back(response_bytes);
                    let (mut session, first) =
                        ClientSession::new(ClientSessionConfig::new()).unwrap();
                    packets(first, &mut to_server);
                    packets(
                        vec![session.request_connection(app.to_string()).unwrap()],
                        &mut to_server,
                    );
                    if let Ok(r) = session.handle_input(&remaining_bytes) {
                        packets(r, &mut to_server);
                    }
                    client = Some(session);
                }
                Err(_) => break,
            }
            continue;
        };
        let Ok(results) = session.handle_input(&bytes) else {
            break;
        };
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => to_server.push_back(p.bytes),
                ClientSessionResult::RaisedEvent(ClientSessionEvent::ConnectionRequestAccepted) => {
                    let r = session
                        .request_publishing(key.to_string(), PublishRequestType::Live)
                        .unwrap();
                    packets(vec![r], &mut to_server);
                }
                ClientSessionResult::RaisedEvent(ClientSessionEvent::PublishRequestAccepted) => {
                    for i in 0..frames {
                        let frame = Bytes::from(vec![0x17, 1, 0, 0, 0, i as u8]);
                        let ts = RtmpTimestamp::new(i as u32 * 33);
                        let r = session.publish_video_data(frame, ts, false).unwrap();
                        packets(vec![r], &mut to_server);
                    }
                    packets(session.stop_publishing().unwrap(), &mut to_server);
                }
                _ => {}
            }
        }
    }
    out
}

fn honest(_: usize, _: &mut Vec<u8>) {}

#[test]
fn a_publisher_with_the_right_key_goes_on_air() {
    let out = talk("live", "s3cret", 5, true, &mut honest);
    assert!(out.refusal.is_none(), "{:?}", out.refusal);
    assert!(out.on_air);
    assert_eq!(out.media, 5);
    assert!(out.finished);
}

#[test]
fn wrong_keys_and_applications_are_refused() {
    let out = talk("live", "guess", 5, true, &mut honest);
    assert!(matches!(out.refusal, Some(Refusal::WrongKey)), "{out:?}");
    assert!(!out.on_air && out.media == 0);
    let out = talk("other", "s3cret", 5, true, &mut honest);
    assert!(matches!(out.refusal, Some(Refusal::WrongApp)), "{out:?}");
    assert!(!out.on_air && out.media == 0);
}

#[test]
fn a_second_publisher_is_refused_while_the_first_is_on_air() {
    let out = talk("live", "s3cret", 5, false, &mut honest);
    assert!(
        matches!(out.refusal, Some(Refusal::SecondPublisher)),
        "{out:?}"
    );
    assert!(!out.on_air && out.media == 0);
}

#[test]
fn a_client_that_says_too_much_before_publishing_is_cut_off() {
    let mut c = Conversation::new("live", "s3cret");
    let steps = c.feed(&vec![3u8; BEFORE_PUBLISH_BUDGET + 1], &mut || true);
    assert!(
        matches!(
            steps.last(),
            Some(Step::Refuse(Refusal::TooMuchBeforePublish))
        ),
        "{steps:?}"
    );
    // In small pieces too: the budget counts every byte, whatever the parser made of them.
    let mut c = Conversation::new("live", "s3cret");
    let mut fed = 0;
    let refused = loop {
        let steps = c.feed(&[3u8; 1000], &mut || true);
        fed += 1000;
        if let Some(Step::Refuse(r)) = steps.into_iter().last() {
            break r;
        }
        assert!(fed <= BEFORE_PUBLISH_BUDGET + 1000, "never cut off");
    };
    assert!(!c.on_air(), "{refused:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Random bytes in random pieces: never on air, never a panic, never more than the
    /// budget taken in.
    #[test]
    fn random_bytes_never_go_on_air(
        pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 0..40)
    ) {
        let mut c = Conversation::new("live", "s3cret");
        let mut taken = 0;
        for p in pieces {
            taken += p.len();
            let steps = c.feed(&p, &mut || true);
            prop_assert!(!c.on_air());
            let went_on_air = steps.iter().any(|s| matches!(s, Step::Media { .. } | Step::OnAir));
            prop_assert!(!went_on_air);
            if steps.iter().any(|s| matches!(s, Step::Refuse(_))) {
                break;
            }
            prop_assert!(taken <= BEFORE_PUBLISH_BUDGET);
        }
    }

    /// A real publisher's packets with one of them damaged (bytes flipped, cut, or extended):
    /// the conversation ends cleanly, media only ever follows an accepted publish, and the
    /// answers stay small.
    #[test]
    fn damaged_packets_end_cleanly(
        which in 0usize..12,
        at in any::<prop::sample::Index>(),
        how in 0u8..4,
        junk in proptest::collection::vec(any::<u8>(), 1..64),
    ) {
        let mut damage = |i: usize, bytes: &mut Vec<u8>| {
            if i != which || bytes.is_empty() {
                return;
            }
            let k = at.index(bytes.len());
            match how {
                0 => bytes[k] ^= junk[0] | 1,
                1 => bytes.truncate(k),
                2 => { bytes.splice(k..k, junk.iter().copied()); }
                _ => for (j, b) in junk.iter().enumerate() {
                    if let Some(x) = bytes.get_mut(k + j) { *x = *b; }
                },
            }
        };
        let out = talk("live", "s3cret", 5, true, &mut damage);
        prop_assert!(!out.media_before_on_air);
        // Damaged bytes can be whole chunks of their own: 0xC4 is a type-3 chunk header that
        // starts another message on the media stream (proptest found it inserted; the case is
        // kept in proptest-regressions/). At most one more message per byte of junk.
        prop_assert!(out.media <= 5 + junk.len(), "{} media messages", out.media);
        prop_assert!(out.sent_to_client < 64 * 1024, "answered {} bytes", out.sent_to_client);
    }

    /// Damage to the key in flight never puts the publisher on air.
    #[test]
    fn a_damaged_key_is_never_accepted(key in "[a-z0-9]{1,12}") {
        prop_assume!(key != "s3cret");
        let out = talk("live", &key, 3, true, &mut honest);
        prop_assert!(!out.on_air);
        prop_assert!(matches!(out.refusal, Some(Refusal::WrongKey)));
    }
}

/// `rml_rtmp` 0.8.0 panics on an AMF0 command whose length byte lies
/// (`messages/types/amf0_command.rs:35`). Before the guard, that panic ended the listener's
/// only thread, and with it the venue port, for the rest of the match.
#[test]
fn a_command_the_library_panics_on_ends_only_that_conversation() {
    // Packet 4 is the `connect` command; flipping its byte 9 damages the AMF0 inside.
    let mut damage = |i: usize, bytes: &mut Vec<u8>| {
        if i == 4 {
            bytes[9] ^= 0xff;
        }
    };
    let out = talk("live", "s3cret", 5, true, &mut damage);
    assert!(matches!(out.refusal, Some(Refusal::Unreadable)), "{out:?}");
    assert!(!out.on_air);
    // The next client is served as before.
    let out = talk("live", "s3cret", 5, true, &mut honest);
    assert!(out.on_air && out.media == 5);
}
