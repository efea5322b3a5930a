//! The running match: receive what ingest and the origin send, push it into the packager,
//! carry out what the packager pulls out; then close. Holds no state of its own beyond
//! [`Running`] and the stop request.
//!
//! May call the run's own rooms (`intake`, `outlet`, `remote_angles`, `resume`, `stall`,
//! `markers`, `delivery`, `match_events`), the packager's inputs and outputs, and the
//! observer; it decides nothing the packager decides.

use super::start::Running;
use super::{RunError, RunReport};
use crate::ingest::{self, IngestEvent};
use crate::package::{EncodedSegment, Input, Output};
use crate::timecode::Seq;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A stop requested by signals: the first stops cleanly at the next boundary (within one
/// segment and five seconds, even when a feed has stalled); the second at once.
struct Stop {
    seen: usize,
    deadline: Option<Instant>,
    grace: Duration,
}

impl Running {
    /// Publishes the multivariant playlists (the pipelines are sound), then starts the
    /// pipelines.
    pub fn begin(&mut self) -> Result<(), RunError> {
        self.carry_out()?;
        self.angles.start(&self.gst_clock, self.base_time)?;
        // From here on this thread packages: its CPU time is the packaging cost.
        self.packager_cpu_start = crate::observe::thread_cpu_time();
        Ok(())
    }

    /// Pumps until the match ends, fails, or is stopped.
    pub fn pump(&mut self, stop_requests: &AtomicUsize) -> Result<(), RunError> {
        let mut stop = Stop {
            seen: 0,
            deadline: None,
            grace: Duration::from_nanos(self.timeline.segment_ns()) + Duration::from_secs(5),
        };
        let total = self.angles_total();
        let mut ended = 0;
        loop {
            self.housekeeping()?;
            if let Some(end) = self.stopping(&mut stop, stop_requests, total - ended) {
                return end;
            }
            match self.ingest.recv_timeout(Duration::from_millis(100)) {
                Ok(IngestEvent::RungEnded { angle, rung }) => {
                    tracing::debug!("{angle}/{rung} ended");
                    self.stalls.ended(&angle, &rung);
                    ended += 1;
                    if ended == total {
                        return Ok(());
                    }
                }
                Ok(event) => self.on_event(event)?,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    /// Renditions the match encodes here.
    fn angles_total(&self) -> usize {
        self.cfg.angles.len() * self.cfg.profile.rungs.len()
    }

    /// Everything that is not an ingest event: the status line, the marker and delivery
    /// feeds, the origin's state, stalled feeds, lost objects, claims and remote angles;
    /// then what the packager has to publish.
    fn housekeeping(&mut self) -> Result<(), RunError> {
        self.observer.tick();
        if let Some(feed) = self.marker_feed.as_mut() {
            feed.poll(&mut self.packager);
        }
        if let Some(feed) = self.delivery_feed.as_mut() {
            feed.poll(&mut self.packager, &self.cfg.profile);
        }
        self.events
            .origin(self.outlet.publisher.status().origin_down());
        let now = Instant::now();
        for (angle, frames) in &self.watched {
            self.stalls
                .frames(angle, frames.load(Ordering::Relaxed), now);
        }
        if let Some((angle, message)) = self.stalls.check(now) {
            return Err(RunError::Feed { angle, message });
        }
        for path in self.lost.try_iter() {
            let _ = self.packager.push(Input::Refused(path));
        }
        self.intake.poll(&mut self.packager);
        self.tick();
        self.carry_out()
    }

    /// The remote angles' news and the clock, into the packager (only the angle-group close
    /// policy reads the clock, so a run without remote angles sends none).
    fn tick(&mut self) {
        let Some(r) = self.remote.as_mut() else {
            return;
        };
        r.poll(&mut self.packager, self.outlet.seeder.as_ref());
        let utc = ingest::ladder::clock_now(&self.gst_clock);
        // The clock is never refused.
        let _ = self.packager.push(Input::Tick {
            now: Instant::now(),
            utc,
        });
    }

    /// Carries out what the packager asks, in its order: objects to the publisher (and the
    /// seeder), claims to the origin, questions about the chain to the origin.
    fn carry_out(&mut self) -> Result<(), RunError> {
        while let Some(output) = self.packager.pull() {
            match output {
                Output::Put(object) => self.outlet.put(object, &mut self.report)?,
                Output::Claim(sealed) => self.intake.claim(sealed),
                Output::AskChain(w) => match self.remote.as_mut() {
                    Some(r) => r.ask(w),
                    None => {
                        tracing::error!("window {w}: a question for a run without remote angles")
                    }
                },
            }
        }
        self.outlet.release()
    }

    /// Whether a stop request ends the pump now (`unfinished` renditions have not reached
    /// the stop boundary yet).
    fn stopping(
        &self,
        stop: &mut Stop,
        requests: &AtomicUsize,
        unfinished: usize,
    ) -> Option<Result<(), RunError>> {
        let requests = requests.load(Ordering::Relaxed);
        if requests >= 2 {
            return Some(Err(RunError::Interrupted));
        }
        if requests > stop.seen {
            stop.seen = requests;
            let at = self.clock.stop_at_next_boundary();
            stop.deadline = Some(Instant::now() + stop.grace);
            tracing::info!(
                "stopping cleanly at the next boundary {} (signal again to stop at once)",
                at.to_datetime().format("%H:%M:%S%.3fZ")
            );
        }
        if stop.deadline.is_some_and(|d| Instant::now() > d) {
            tracing::warn!(
                "{unfinished} of {} renditions did not reach the stop boundary (stalled feed?); closing the match without them",
                self.angles_total()
            );
            return Some(Ok(()));
        }
        None
    }

    /// One event from the angles' pipelines (a rung's end is counted by the pump).
    fn on_event(&mut self, event: IngestEvent) -> Result<(), RunError> {
        match event {
            IngestEvent::Segment(segment) => self.on_segment(segment)?,
            IngestEvent::RungEnded { .. } => {}
            IngestEvent::Error { angle, message } => {
                return Err(RunError::Feed {
                    angle: angle.to_string(),
                    message,
                });
            }
            IngestEvent::Feed {
                angle,
                live,
                status,
            } => self.events.feed(&angle, live, &status),
        }
        Ok(())
    }

    /// One encoded segment: into the packager (a redundant run first joins the match on the
    /// origin), out to the publisher, and counted.
    fn on_segment(&mut self, segment: EncodedSegment) -> Result<(), RunError> {
        if !segment.is_whole_ts() {
            tracing::warn!(
                "{}/{} seq {}: {} bytes are not whole TS packets",
                segment.angle,
                segment.rung,
                segment.seq,
                segment.bytes.len()
            );
        }
        if self.intake.join_now() {
            super::resume::resume(
                &self.cfg,
                &self.rt,
                (&self.outlet.publisher, self.outlet.seeder.as_ref()),
                &self.angle_names,
                &mut self.packager,
                &self.work_dir,
            )?;
        }
        let seq = segment.seq;
        let (angle, rung, size) = (
            segment.angle.clone(),
            segment.rung.clone(),
            segment.bytes.len(),
        );
        let redundant = self.cfg.redundant;
        super::intake::refused(self.packager.push(segment), redundant);
        self.carry_out()?;
        let report = &mut self.report;
        report.first_seq = Some(report.first_seq.map_or(seq, |f| f.min(seq)));
        report.last_seq = Some(report.last_seq.map_or(seq, |l| l.max(seq)));
        self.observer.segment(&angle, &rung, seq, size);
        self.stalls.segment(&angle, &rung, Instant::now());
        if let Some(factor) = self.progress.segment(seq, &self.timeline) {
            self.observer.realtime_factor(factor);
        }
        Ok(())
    }

    /// Angle groups, at the end of the match at `last`: waits (up to the grace) for every
    /// remote rendition to deliver it, then for the open windows to close as the other
    /// machines close them (twice the grace); the packager gives up what is still missing.
    fn finish_remote(&mut self, last: Seq) -> Result<(), RunError> {
        if self.remote.is_none() {
            return Ok(());
        }
        let grace = crate::package::window_grace(&self.timeline);
        let deadline = Instant::now() + grace;
        // No clock meanwhile: a tick could give the last window up without ending the
        // remote playlists.
        while let Some(r) = self.remote.as_mut().filter(|r| r.behind(last)) {
            if Instant::now() >= deadline {
                break;
            }
            r.poll(&mut self.packager, self.outlet.seeder.as_ref());
            self.carry_out()?;
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.packager.push(Input::RemoteEnd(last));
        let deadline = Instant::now() + grace * 2;
        while self.packager.ready_window().is_some() && Instant::now() < deadline {
            self.tick();
            self.carry_out()?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Ends the match: the pipelines stop; after a clean end, outstanding claims and remote
    /// windows are settled and the playlists end; what was packaged goes out either way
    /// (anything the origin cannot take stays spooled).
    pub fn close(mut self, result: Result<(), RunError>) -> Result<RunReport, RunError> {
        self.angles.stop();
        self.observer.finish();
        if let Err(e) = result {
            if let Err(undrained) = self.outlet.close(self.cfg.drain_timeout) {
                tracing::error!("{undrained}");
            }
            return Err(e);
        }
        self.intake
            .finish(&mut self.packager, self.cfg.drain_timeout);
        self.carry_out()?;
        if let Some(last) = self.report.last_seq {
            self.finish_remote(last)?;
        }
        let _ = self.packager.push(Input::Finish);
        self.carry_out()?;
        self.outlet.close(self.cfg.drain_timeout)?;
        self.events.ended(self.report.segments);
        let packager_cpu = crate::observe::thread_cpu_time()
            .zip(self.packager_cpu_start)
            .map_or(0.0, |(end, start)| end.saturating_sub(start).as_secs_f64());
        tracing::info!(
            "match {} ended: {} segments, {} bytes; packager thread {packager_cpu:.3} CPU s",
            self.cfg.match_id,
            self.report.segments,
            self.report.bytes
        );
        Ok(self.report)
    }
}
