//! Closing windows: collects every sealed segment of a window across all renditions and,
//! once each rendition has moved past it, turns it into a torrent, a signed manifest that
//! chains to the previous one, and a signed `live.json`.
//!
//! May call: `layout`, `manifest`, `marker`, `segment_key`, `torrent`, `profile`, `timecode`.

use super::manifest::{
    self, FORMAT, LivePointer, ManifestSegment, Signer, TorrentRef, WindowManifest,
};
use super::segment_key::SegmentKey;
use super::torrent::{self, TorrentFile, TorrentMeta};
use super::{Object, ObjectKind};
use crate::profile::Profile;
use crate::rendition::Rendition;
use crate::timecode::{NS_PER_SEC, Seq, Timeline};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Windows listed in `live.json`, newest first.
const LIVE_WINDOWS: usize = 10;

/// One sealed segment, kept until its window closes.
pub struct WindowSegment {
    pub angle: String,
    pub rung: String,
    pub seq: Seq,
    pub duration_ns: u64,
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`, computed once when the segment was sealed.
    pub sha256: [u8; 32],
    pub key: Option<SegmentKey>,
}

#[derive(Default)]
struct OpenWindow {
    segments: Vec<WindowSegment>,
    /// Renditions that have delivered their last segment of this window (or moved past it).
    done: HashSet<Rendition>,
}

/// The window side of the packager.
pub struct WindowBook {
    match_id: String,
    timeline: Timeline,
    trackers: Vec<String>,
    web_seed: String,
    renditions: usize,
    signer: Arc<dyn Signer>,
    open: BTreeMap<u64, OpenWindow>,
    prev_manifest: Option<String>,
    closed: Vec<u64>,
    /// Pad file lengths already published under `{match}/.pad/`.
    pads_published: HashSet<u64>,
    /// Markers for windows not yet closed.
    markers: Vec<super::marker::Marker>,
    /// Renditions another machine encodes (`run --remote-angle`): their segments come from
    /// the origin, and a window stops waiting for them once it is overdue.
    remote: HashSet<Rendition>,
}

/// A remote rendition that had not delivered every segment of a window when the window was
/// closed without it: its machine stopped, so these seqs become gaps in its playlist.
#[derive(Debug, PartialEq, Eq)]
pub struct Missing {
    pub rendition: Rendition,
    /// The window's seqs it lacks, in order.
    pub seqs: Vec<Seq>,
}

fn pdt(timeline: &Timeline, seq: Seq) -> String {
    timeline
        .seq_start(seq)
        .to_datetime()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl WindowBook {
    pub fn new(
        match_id: &str,
        profile: &Profile,
        renditions: usize,
        signer: Arc<dyn Signer>,
    ) -> Self {
        WindowBook {
            match_id: match_id.to_string(),
            timeline: profile.timeline(),
            trackers: profile
                .trackers
                .iter()
                .map(|t| t.announce.clone())
                .collect(),
            web_seed: profile.origin.public_url.clone(),
            renditions,
            signer,
            open: BTreeMap::new(),
            prev_manifest: None,
            closed: Vec::new(),
            pads_published: HashSet::new(),
            markers: Vec::new(),
            remote: HashSet::new(),
        }
    }

    /// Counts `remote` renditions (encoded on other machines) in every window.
    pub fn add_remote(&mut self, remote: impl IntoIterator<Item = Rendition>) {
        for r in remote {
            if self.remote.insert(r) {
                self.renditions += 1;
            }
        }
    }

    /// Windows stop waiting for a remote rendition once their last seq is before its cutoff
    /// (`cutoff(angle, rung)`); returns what each remote rendition lacked in them.
    pub fn give_up_remote(&mut self, cutoff: &dyn Fn(&Rendition) -> Seq) -> Vec<Missing> {
        let mut missing: Vec<Missing> = Vec::new();
        let windows: Vec<u64> = self.open.keys().copied().collect();
        for w in windows {
            let (first, last) = self
                .timeline
                .window_seqs(crate::timecode::WindowIndex::new(w));
            let win = self.open.get_mut(&w).expect("listed above");
            for key in &self.remote {
                if win.done.contains(key) || last >= cutoff(key) {
                    continue;
                }
                let have: HashSet<Seq> = win
                    .segments
                    .iter()
                    .filter(|s| s.angle == key.angle && s.rung == key.rung)
                    .map(|s| s.seq)
                    .collect();
                let seqs: Vec<Seq> = (first.get()..=last.get())
                    .map(Seq::new)
                    .filter(|s| !have.contains(s))
                    .collect();
                win.done.insert(key.clone());
                match missing.iter_mut().find(|m| m.rendition == *key) {
                    Some(m) => m.seqs.extend(seqs),
                    None => missing.push(Missing {
                        rendition: key.clone(),
                        seqs,
                    }),
                }
            }
        }
        missing.sort_by(|a, b| a.rendition.cmp(&b.rendition));
        missing
    }

    /// With remote renditions, windows close one at a time when the caller says so
    /// ([`WindowBook::close_window`]), once it knows what the origin chains them to. This is
    /// the oldest window every rendition is done with.
    pub fn ready(&self) -> Option<u64> {
        let (&w, win) = self.open.first_key_value()?;
        (win.done.len() >= self.renditions).then_some(w)
    }

    /// Closes window `w` (the one [`WindowBook::ready`] named) and emits its objects and a
    /// `live.json`.
    pub fn close_window(&mut self, w: u64, out: &mut Vec<Object>) {
        if let Some(win) = self.open.remove(&w)
            && self.close(w, win, out)
        {
            self.live(false, out);
        }
    }

    /// Window `w`'s manifest as the origin holds it (SHA-256 hex), composed by this machine
    /// or another: the next window chains to it.
    pub fn adopt(&mut self, w: u64, sha256: String) {
        if !self.closed.contains(&w) {
            self.closed.push(w);
            self.closed.sort_unstable();
        }
        if self.closed.last() == Some(&w) {
            self.prev_manifest = Some(sha256);
        }
    }

    /// Another machine composed window `w` first (the origin holds its manifest, with this
    /// SHA-256): this book drops its own copy and chains the next window to that one.
    pub fn take_over(&mut self, w: u64, sha256: String) {
        self.open.remove(&w);
        self.adopt(w, sha256);
    }

    /// Whether this book closed window `w` itself (or took it over from the origin).
    pub fn has_closed(&self, w: u64) -> bool {
        self.closed.contains(&w)
    }

    /// A marker for the manifest of the window it falls in (once per ID).
    pub fn add_marker(&mut self, marker: &super::marker::Marker) {
        if !self.markers.iter().any(|m| m.id == marker.id) {
            self.markers.push(marker.clone());
        }
    }

    /// The markers that fall in window `w`, in time order; they leave the book.
    fn take_markers(&mut self, w: u64) -> Vec<super::marker::Marker> {
        let (first, last) = self
            .timeline
            .window_seqs(crate::timecode::WindowIndex::new(w));
        let (from, to) = (
            self.timeline.seq_start(first),
            self.timeline.seq_start(last.next()),
        );
        let mut taken: Vec<_> = Vec::new();
        self.markers.retain(|m| match m.start_ns() {
            Some(t) if t < to => {
                if t >= from {
                    taken.push(m.clone());
                }
                false
            }
            Some(_) => true,
            None => false,
        });
        taken.sort_by_key(|m| m.start_ns());
        taken
    }

    /// Continues the chain an earlier run published: `closed` are its newest windows, oldest
    /// first, and `newest_manifest` the SHA-256 of the newest one's manifest.
    pub fn resume(&mut self, closed: Vec<u64>, newest_manifest: Option<String>) {
        self.closed = closed;
        self.prev_manifest = newest_manifest;
    }

    /// Records a sealed segment; returns the objects of every window that is now complete.
    pub fn add(&mut self, segment: WindowSegment, out: &mut Vec<Object>) {
        let rendition = Rendition::new(segment.angle.clone(), segment.rung.clone());
        let w = self.timeline.window_of(segment.seq).get();
        // A rendition that reached window w is done with every earlier window.
        for (_, win) in self.open.range_mut(..w) {
            win.done.insert(rendition.clone());
        }
        let closes = self.timeline.closes_window(segment.seq);
        let win = self.open.entry(w).or_default();
        win.segments.push(segment);
        if closes {
            win.done.insert(rendition);
        }
        self.close_ready(out);
    }

    /// Closes the oldest windows every rendition is done with, in order (with remote
    /// renditions, the caller does, window by window).
    fn close_ready(&mut self, out: &mut Vec<Object>) {
        if !self.remote.is_empty() {
            return;
        }
        let mut closed_any = false;
        while let Some(entry) = self.open.first_entry() {
            if entry.get().done.len() < self.renditions {
                break;
            }
            let (w, win) = entry.remove_entry();
            closed_any |= self.close(w, win, out);
        }
        if closed_any {
            self.live(false, out);
        }
    }

    /// The match is over: closes every open window, in order.
    pub fn finish(&mut self, out: &mut Vec<Object>) {
        for (w, win) in std::mem::take(&mut self.open) {
            self.close(w, win, out);
        }
        self.live(true, out);
    }

    /// Emits the window's torrent, manifest and signature. Returns whether it emitted any.
    fn close(&mut self, w: u64, mut win: OpenWindow, out: &mut Vec<Object>) -> bool {
        if win.segments.is_empty() {
            return false;
        }
        win.segments
            .sort_by(|a, b| (&a.angle, &a.rung, a.seq).cmp(&(&b.angle, &b.rung, b.seq)));
        let names: Vec<String> = win
            .segments
            .iter()
            .map(|s| format!("{}.ts", s.seq))
            .collect();
        let files: Vec<TorrentFile> = win
            .segments
            .iter()
            .zip(&names)
            .map(|(s, n)| TorrentFile {
                path: [&s.angle, &s.rung, n],
                bytes: &s.bytes,
            })
            .collect();
        let first_seq = win.segments.iter().map(|s| s.seq).min().expect("non-empty");
        let start_secs = (self.timeline.seq_start(first_seq).0 / NS_PER_SEC) as i64;
        let meta = TorrentMeta {
            name: self.match_id.clone(),
            trackers: self.trackers.clone(),
            web_seed: self.web_seed.clone(),
            creation_date: start_secs,
            comment: format!("swarmpack window {w} of match {}", self.match_id),
        };
        let t = torrent::build(&files, &meta).expect("a window with segments has files");
        let torrent_path = crate::layout::window_torrent_rel(w);
        let markers = self.take_markers(w);
        let doc = WindowManifest {
            markers,
            format: FORMAT,
            match_id: self.match_id.clone(),
            window: w,
            segment_duration: self.timeline.segment_secs(),
            start_pdt: pdt(&self.timeline, first_seq),
            segments: win
                .segments
                .iter()
                .map(|s| ManifestSegment {
                    path: crate::layout::segment_rel(&s.angle, &s.rung, s.seq),
                    angle: s.angle.clone(),
                    rung: s.rung.clone(),
                    seq: s.seq.get(),
                    duration: s.duration_ns as f64 / NS_PER_SEC as f64,
                    pdt: pdt(&self.timeline, s.seq),
                    length: s.bytes.len() as u64,
                    sha256: manifest::hex(&s.sha256),
                    key_period: self.timeline.window_of(s.seq).get(),
                    key_uri: s.key.as_ref().map(|k| k.uri.clone()).unwrap_or_default(),
                    iv: s
                        .key
                        .as_ref()
                        .map(|k| manifest::hex(&k.iv))
                        .unwrap_or_default(),
                })
                .collect(),
            torrent: TorrentRef {
                path: torrent_path.clone(),
                infohash_v1: manifest::hex(&t.v1),
                infohash_v2: manifest::hex(&t.v2),
                magnet: manifest::magnet(
                    &t.v1,
                    &t.v2,
                    &self.match_id,
                    &self.trackers,
                    &self.web_seed,
                ),
            },
            prev_manifest_sha256: self.prev_manifest.clone(),
            prev_window: self
                .closed
                .last()
                .copied()
                .filter(|p| self.prev_manifest.is_some() && Some(*p) != w.checked_sub(1)),
        };
        let json = manifest::to_file_bytes(&doc);
        let digest = manifest::sha256_hex(&json);
        let base = crate::layout::in_match(&self.match_id, &format!("windows/{w}"));
        for pad in &t.pads {
            if self.pads_published.insert(*pad) {
                out.push(Object {
                    path: crate::layout::pad(&self.match_id, *pad),
                    bytes: vec![0; *pad as usize],
                    kind: ObjectKind::Pad,
                });
            }
        }
        out.push(Object {
            path: format!("{}/{torrent_path}", self.match_id),
            bytes: t.bytes,
            kind: ObjectKind::Torrent,
        });
        out.extend(Object::signed(
            format!("{base}.json"),
            json,
            ObjectKind::Manifest,
            self.signer.as_ref(),
        ));
        self.prev_manifest = Some(digest);
        self.closed.push(w);
        true
    }

    /// Emits the signed `live.json` pointing at the newest windows (nothing before the first).
    fn live(&mut self, ended: bool, out: &mut Vec<Object>) {
        let Some(newest) = self.prev_manifest.clone() else {
            return;
        };
        let live = LivePointer {
            format: FORMAT,
            match_id: self.match_id.clone(),
            windows: self
                .closed
                .iter()
                .rev()
                .take(LIVE_WINDOWS)
                .copied()
                .collect(),
            newest_manifest_sha256: newest,
            ended,
        };
        out.extend(Object::signed(
            crate::layout::live(&self.match_id),
            manifest::to_file_bytes(&live),
            ObjectKind::Pointer,
            self.signer.as_ref(),
        ));
    }
}
