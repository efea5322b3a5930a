//! The packager's one way in and one way out: [`Input`] through [`Packager::push`], [`Output`]
//! through [`Packager::pull`]. Every change to what a match publishes is an input here, so
//! the run only pumps: it receives, pushes, pulls and carries out.
//!
//! May call the packager's own rooms; no I/O, no clock of its own (time is an input).

use super::marker::Marker;
use super::published::{RestoredPlaylist, Resume};
use super::window::WindowSegment;
use super::{EncodedSegment, Object, PackageError, Packager, Sealed};
use crate::profile::Delivery;
use crate::rendition::Rendition;
use crate::timecode::{Seq, UtcNs};
use std::time::Instant;

/// What can change what a match publishes.
pub enum Input {
    /// A segment from this machine's encoders: packaged at once, or (a redundant run) sealed
    /// and handed out as [`Output::Claim`] first.
    Segment(EncodedSegment),
    /// A claimed segment, as the origin holds it: packaged.
    Claimed(Sealed),
    /// A claimed segment whose seq is lost (a claim that cannot be verified, or other bytes
    /// in the way): listed as a signed gap; neither its bytes nor a signature for them leave.
    ClaimLost(Sealed),
    /// The origin refused the object at this path for good: a segment becomes a gap.
    Refused(String),
    /// A marker for the playlists and the manifest of its window.
    Marker(Marker),
    /// The fans' players' delivery policy from now on: `p2p.json` goes out again.
    Delivery(Delivery),
    /// What an earlier run published: continued from there.
    Resume(Resume),
    /// Angle groups: a remote rendition's playlist as its machine last published it.
    RemotePlaylist {
        rendition: Rendition,
        published: RestoredPlaylist,
    },
    /// Angle groups: a remote rendition's segment, checked against its signed tag.
    RemoteSegment(WindowSegment),
    /// Angle groups: what the origin holds for window `window` (the answer to
    /// [`Output::AskChain`]), or why it could not be read.
    ChainAnswer {
        window: u64,
        answer: Result<Held, String>,
    },
    /// The clock: `now` for waits, `utc` for which windows are overdue.
    Tick { now: Instant, utc: UtcNs },
    /// Angle groups: the match ended at this seq; remote renditions are waited for no more.
    RemoteEnd(Seq),
    /// The match is over: open windows close and every media playlist ends.
    Finish,
}

/// What the packager asks the run to carry out, in order.
#[derive(Debug)]
pub enum Output {
    /// Publish this object.
    Put(Object),
    /// Claim this sealed segment on the origin (a redundant run), then push it back as
    /// [`Input::Claimed`] or [`Input::ClaimLost`].
    Claim(Sealed),
    /// Read what the origin holds for window `w` and the window before, then push
    /// [`Input::ChainAnswer`].
    AskChain(u64),
}

impl From<EncodedSegment> for Input {
    fn from(segment: EncodedSegment) -> Input {
        Input::Segment(segment)
    }
}

impl Output {
    /// The object, when this output is one.
    pub fn into_put(self) -> Option<Object> {
        match self {
            Output::Put(o) => Some(o),
            _ => None,
        }
    }
}

/// What the origin holds for a window about to close: manifests (SHA-256 hex) signed with
/// the match's key.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Held {
    /// The window's own: another machine composed it first.
    pub composed: Option<String>,
    /// The window before.
    pub prev: Option<String>,
    /// When it holds neither: the newest window `live.json` names, and its manifest.
    pub newest: Option<(u64, String)>,
}

impl Packager {
    /// Takes one input. Only segments can be refused.
    pub fn push(&mut self, input: impl Into<Input>) -> Result<(), PackageError> {
        match input.into() {
            Input::Segment(segment) => {
                let sealed = self.seal(segment)?;
                if self.redundant {
                    self.out.push_back(Output::Claim(sealed));
                    return Ok(());
                }
                return self.package(sealed, true);
            }
            Input::Claimed(sealed) => return self.package(sealed, true),
            Input::ClaimLost(sealed) => return self.package(sealed, false),
            Input::Refused(path) => self.mark_lost(&path),
            Input::Marker(marker) => self.add_marker(&marker),
            Input::Delivery(delivery) => self.set_delivery(delivery),
            Input::Resume(resume) => self.resume(resume),
            Input::RemotePlaylist {
                rendition,
                published,
            } => self.remote_playlist(rendition, published),
            Input::RemoteSegment(segment) => self.add_remote_segment(segment),
            Input::ChainAnswer { window, answer } => {
                self.closer.answer(window, answer);
                self.close_ready();
            }
            Input::Tick { now, utc } => self.tick(now, utc),
            Input::RemoteEnd(last) => self.give_up_remote_at_end(last),
            Input::Finish => self.finish(),
        }
        Ok(())
    }

    /// The next thing to carry out, in order.
    pub fn pull(&mut self) -> Option<Output> {
        if self.out.is_empty() {
            self.feed_windows(1);
        }
        self.out.pop_front()
    }

    /// Queues objects to publish.
    pub(super) fn put(&mut self, objects: impl IntoIterator<Item = Object>) {
        self.out.extend(objects.into_iter().map(Output::Put));
    }
}
