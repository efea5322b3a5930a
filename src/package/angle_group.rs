//! Angle groups (`run --remote-angle`): one match split across machines by angle. Each
//! machine packages its own angles and takes the other machines' segments from the origin,
//! so that its window manifests and torrents cover every rendition of the match, byte for
//! byte as the other machines make them. A remote rendition that stops delivering is given
//! up once its window is overdue, and its playlist is carried on as a marked gap.
//!
//! May call: `layout`, `playlist`, `published`, `segment_sig`, `window`, `window_close`, `profile`, `timecode`.

use super::playlist::{self, LivePlaylist, PlaylistEntry};
use super::published::RestoredPlaylist;
use super::segment_sig::GapSignature;
use super::window::WindowSegment;
use super::window_close::Step;
use super::{Object, ObjectKind, Output, Packager};
use crate::profile::Profile;
use crate::rendition::Rendition;
use crate::timecode::{NS_PER_SEC, Seq};

/// Every angle of a match split across machines, in the order its multivariant playlist
/// lists them: by name, so that every machine publishes the same one (the first is the
/// default).
pub fn match_angles(local: &[String], remote: &[String]) -> Vec<String> {
    let mut all: Vec<String> = local.iter().chain(remote).cloned().collect();
    all.sort();
    all.dedup();
    all
}

impl Packager {
    /// Adds the angles other machines encode for this match: the multivariant playlist lists
    /// every angle (by name), and window manifests and torrents wait for their segments
    /// ([`Packager::add_remote_segment`]). Call before [`Packager::sign_windows`].
    pub fn with_remote_angles(mut self, profile: &Profile, remote: &[String]) -> Self {
        if remote.is_empty() {
            return self;
        }
        let local: Vec<String> = {
            let mut a: Vec<String> = self.playlists.keys().map(|r| r.angle.clone()).collect();
            a.sort();
            a.dedup();
            a
        };
        let master_path = crate::layout::master(&self.match_id);
        let all = match_angles(&local, remote);
        if let Some(Output::Put(master)) = self
            .out
            .iter_mut()
            .find(|o| matches!(o, Output::Put(o) if o.path == master_path))
        {
            master.bytes =
                playlist::render_master(&playlist::match_master(profile, &all)).into_bytes();
        }
        for angle in remote {
            for rung in &profile.rungs {
                self.remote
                    .push(Rendition::new(angle.clone(), rung.name.clone()));
            }
        }
        self
    }

    /// The oldest seq waiting for its window (after [`Packager::resume`]: the unclosed
    /// window an earlier run left), so that remote renditions are followed from there.
    pub fn oldest_pending_seq(&self) -> Option<Seq> {
        self.window_pending.iter().map(|s| s.seq).min()
    }

    /// A remote rendition's segment, read from the origin and checked against its signed tag:
    /// it goes into its window like this machine's own.
    pub(super) fn add_remote_segment(&mut self, segment: WindowSegment) {
        if self.windows.is_some() {
            self.window_pending.push_back(segment);
        }
    }

    /// A remote rendition's playlist as its machine last published it (the base for marking
    /// its gaps, should that machine stop).
    pub(super) fn remote_playlist(&mut self, rendition: Rendition, published: RestoredPlaylist) {
        self.closer.seen(&rendition);
        self.remote_playlists.insert(rendition, published);
    }

    /// The clock: remote renditions overdue at `utc` are given up, and the ready windows
    /// close as far as the origin's answers allow (or are asked about).
    pub(super) fn tick(&mut self, now: std::time::Instant, utc: crate::timecode::UtcNs) {
        let cutoffs = self.closer.tick(now, utc, &self.remote);
        if self.remote.is_empty() {
            return;
        }
        self.give_up_remote(&|rendition| cutoffs[rendition]);
        self.close_ready();
    }

    /// Closes ready windows, each chained to the origin's manifest of the window before,
    /// until one waits (or is asked about: [`Output::AskChain`]).
    pub(super) fn close_ready(&mut self) {
        while let Some(w) = self.ready_window() {
            let closed_prev = w.checked_sub(1).is_some_and(|p| self.closed_window(p));
            match self.closer.step(w, closed_prev) {
                Step::Close(adopt) => {
                    if let Some((n, sha256)) = adopt {
                        self.adopt_window(n, sha256);
                    }
                    self.close_window(w);
                }
                Step::TakeOver(sha256) => self.take_over_window(w, sha256),
                Step::Ask => {
                    self.out.push_back(Output::AskChain(w));
                    return;
                }
                Step::Wait => return,
            }
        }
    }

    /// Windows stop waiting for a remote rendition once they end before its cutoff
    /// (`cutoff(angle, rung)`). Each remote rendition that lacked segments in them, and whose
    /// playlist this machine has seen, gets them as EXT-X-GAP entries, and its playlist goes
    /// out again.
    pub(super) fn give_up_remote(&mut self, cutoff: &dyn Fn(&Rendition) -> Seq) {
        self.give_up(cutoff, None);
    }

    /// The match ended at seq `last`: every open window stops waiting for remote renditions,
    /// and a remote rendition that lacked segments up to `last` gets them as gaps and its
    /// playlist ends (EXT-X-ENDLIST), as this machine's own do.
    pub(super) fn give_up_remote_at_end(&mut self, last: Seq) {
        self.give_up(&|_| Seq::new(u64::MAX), Some(last));
    }

    /// The oldest window ready to close: every rendition, here and remote, is done with it.
    pub fn ready_window(&mut self) -> Option<u64> {
        self.feed_windows(usize::MAX);
        self.windows.as_ref()?.ready()
    }

    /// Closes window `w` (from [`Packager::ready_window`]) chained to what the book holds
    /// as the newest manifest, and queues its objects.
    pub(super) fn close_window(&mut self, w: u64) {
        let Some(book) = self.windows.as_mut() else {
            return;
        };
        let mut closed = Vec::new();
        book.close_window(w, &mut closed);
        self.put(closed);
    }

    /// The origin holds window `w`'s manifest with this SHA-256 (hex): the next window
    /// chains to it, whoever composed it.
    pub(super) fn adopt_window(&mut self, w: u64, sha256: String) {
        if let Some(book) = self.windows.as_mut() {
            book.adopt(w, sha256);
        }
    }

    /// Another machine composed window `w` (from [`Packager::ready_window`]) first: this
    /// machine takes the origin's manifest (this SHA-256) as it is instead of composing its own.
    pub(super) fn take_over_window(&mut self, w: u64, sha256: String) {
        if let Some(book) = self.windows.as_mut() {
            book.take_over(w, sha256);
        }
    }

    /// Whether this machine closed window `w` itself (its manifest is on its way out).
    pub(super) fn closed_window(&self, w: u64) -> bool {
        self.windows.as_ref().is_some_and(|b| b.has_closed(w))
    }

    fn give_up(&mut self, cutoff: &dyn Fn(&Rendition) -> Seq, end: Option<Seq>) {
        if self.remote.is_empty() {
            return;
        }
        self.feed_windows(usize::MAX);
        let Some(book) = self.windows.as_mut() else {
            return;
        };
        let missing = book.give_up_remote(cutoff);
        for m in missing {
            let Rendition { angle, rung } = &m.rendition;
            let Some(published) = self.remote_playlists.get_mut(&m.rendition) else {
                continue;
            };
            let mut live = LivePlaylist::new(&self.timeline, self.dvr);
            live.restore(published.entries.clone(), published.discontinuity_sequence);
            let mut added = false;
            for seq in m.seqs {
                if live.last_seq().is_some_and(|l| seq <= l) || end.is_some_and(|e| seq > e) {
                    continue;
                }
                live.push(PlaylistEntry {
                    seq,
                    duration: self.timeline.segment_ns() as f64 / NS_PER_SEC as f64,
                    pdt: self.timeline.seq_start(seq),
                    discontinuity: false,
                    key: None,
                    signature: None,
                    gap: true,
                    gap_signature: self.signer.as_ref().map(|s| {
                        GapSignature::sign(
                            s.as_ref(),
                            &crate::layout::segment(&self.match_id, angle, rung, seq),
                        )
                    }),
                });
                added = true;
            }
            if !added {
                continue;
            }
            if end.is_some() {
                live.end();
            }
            tracing::warn!(
                "{}: its machine has not delivered window {} in time; marked as a gap up to seq {}",
                m.rendition,
                self.timeline
                    .window_of(live.last_seq().expect("just pushed"))
                    .get(),
                live.last_seq().expect("just pushed")
            );
            published.entries = live.entries().cloned().collect();
            published.discontinuity_sequence = live.to_m3u8().discontinuity_sequence;
            let playlist = Object {
                path: crate::layout::media_playlist(&self.match_id, angle, rung),
                bytes: live.render().into_bytes(),
                kind: ObjectKind::MediaPlaylist,
            };
            self.put([playlist]);
        }
    }
}
