//! The test venue: ffmpeg as a venue encoder (its encoding settings, a reconnecting SRT
//! sender) and the luma of decoded frames (live picture or black slate).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How the test "venue encoder" (ffmpeg) encodes: H.264 with a 1 s GOP at 30 fps, and AAC.
pub const VENUE_ENCODING: [&str; 10] = [
    "-c:v",
    "libx264",
    "-preset",
    "ultrafast",
    "-g",
    "30",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
];

/// A venue encoder that behaves like real ones: ffmpeg sends `input_args` as MPEG-TS over
/// SRT to `url` and, whenever the connection fails or drops, calls again after 300 ms.
/// `stop` pulls the plug (the feed is lost); dropping it stops it too.
pub struct VenueEncoder {
    on: std::sync::Arc<std::sync::atomic::AtomicBool>,
    child: std::sync::Arc<std::sync::Mutex<Option<Child>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl VenueEncoder {
    pub fn start(input_args: &[String], url: &str) -> VenueEncoder {
        use std::sync::atomic::Ordering;
        let on = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let child = std::sync::Arc::new(std::sync::Mutex::new(None::<Child>));
        let (on2, child2, args, url) = (
            on.clone(),
            child.clone(),
            input_args.to_vec(),
            url.to_string(),
        );
        let thread = std::thread::spawn(move || {
            while on2.load(Ordering::Relaxed) {
                let spawned = Command::new("ffmpeg")
                    .args(["-v", "error"])
                    .args(&args)
                    .args(["-f", "mpegts", &url])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("ffmpeg");
                *child2.lock().unwrap() = Some(spawned);
                loop {
                    let done = child2
                        .lock()
                        .unwrap()
                        .as_mut()
                        .is_none_or(|c| c.try_wait().unwrap().is_some());
                    if done || !on2.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        VenueEncoder {
            on,
            child,
            thread: Some(thread),
        }
    }

    /// A live 640x360 30 fps picture with a tone, encoded like a venue encoder (1 s GOP).
    pub fn live_picture() -> Vec<String> {
        [
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=640x360:rate=30",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ]
        .iter()
        .chain(VENUE_ENCODING.iter())
        .map(|s| s.to_string())
        .collect()
    }

    pub fn stop(&mut self) {
        self.on.store(false, std::sync::atomic::Ordering::Relaxed);
        if let Some(mut c) = self.child.lock().unwrap().take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for VenueEncoder {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The average luma (0-255) of every video frame of a TS file: about 16 for black.
pub fn frame_lumas(ts: &Path) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(ts)
        .args([
            "-vf",
            "scale=1:1:flags=area,format=gray",
            "-f",
            "rawvideo",
            "-",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success() && !out.stdout.is_empty(),
        "{}: no frames",
        ts.display()
    );
    out.stdout
}
