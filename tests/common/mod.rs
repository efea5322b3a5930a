//! Helpers for integration tests: the real swarmpack binary, real ffmpeg/ffprobe, loopback
//! ports chosen by the OS, and processes that are killed when the test ends.
#![allow(dead_code)]

pub mod audience;
pub mod browser;
pub mod cluster;
pub mod control;
mod feeds;
mod libtorrent;
pub mod nginx;
pub mod s3;
mod segments;
mod tags;
pub mod tracker;
mod venue;

#[allow(unused_imports)] // Used by the broadcast feed tests.
pub use feeds::*;
#[allow(unused_imports)] // Used by the swarm tests, not by every test crate.
pub use libtorrent::*;
#[allow(unused_imports)] // Used by the tests that decrypt segments.
pub use segments::*;
pub use tags::*;
pub use venue::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The swarmpack binary. Each command gets its own spool directory and a free loopback port
/// for the seeder, so tests can run in parallel (`--spool` / `--seed-listen` override them).
/// `SWARMPACK_TEST_BIN` runs the tests against another build (an older main, to show that
/// a test fails without its fix).
pub fn swarmpack() -> Command {
    let bin = std::env::var_os("SWARMPACK_TEST_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_swarmpack").into());
    let mut cmd = Command::new(bin);
    cmd.env("SWARMPACK_SPOOL", scratch_dir("spool"));
    cmd.env("SWARMPACK_SEED_LISTEN", "127.0.0.1:0");
    cmd
}

/// A fresh directory under cargo's target/tmp (removed by `cargo clean`).
pub fn scratch_dir(what: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn profile(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name)
}

/// A free TCP port on loopback (the OS picks it).
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free UDP port on loopback (SRT runs over UDP).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process that is killed when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Records that test `test` did not run its subject (`why`: a precondition this machine
/// lacks) instead of passing quietly: `scripts/test` lists every skip at its end, and with
/// `CI` set (`.ci/run`) a skip fails the test.
pub fn skipped(test: &str, why: &str) {
    use std::io::Write;
    let list = Path::new(env!("CARGO_TARGET_TMPDIR")).join("skipped-tests.txt");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&list)
    {
        let _ = writeln!(f, "{test}: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    assert!(
        std::env::var_os("CI").is_none(),
        "{test} did not run: {why}; CI is set, where a missing precondition is a failure"
    );
}

/// Every file under `dir` (paths as found, depth first).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}

/// Kills `victim` with SIGKILL once `at` has passed since `started`, then waits up to two
/// minutes for `survivor` to end by itself; its exit status.
pub fn kill_at_then_wait(
    started: Instant,
    at: Duration,
    victim: &mut Child,
    survivor: &mut Child,
) -> std::process::ExitStatus {
    std::thread::sleep(at.saturating_sub(started.elapsed()));
    kill_then_wait(victim, survivor)
}

/// Kills `victim` with SIGKILL now, then waits up to two minutes for `survivor` to end by
/// itself; its exit status.
pub fn kill_then_wait(victim: &mut Child, survivor: &mut Child) -> std::process::ExitStatus {
    victim.kill().unwrap();
    victim.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = survivor.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = survivor.kill();
            panic!("the surviving run did not end within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a command to completion with a deadline; panics with its output on timeout.
pub fn run_with_deadline(mut cmd: Command, deadline: Duration) -> Output {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} did not finish in {deadline:?}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `probe` is true or the deadline passes.
pub fn wait_for(what: &str, deadline: Duration, probe: impl FnMut() -> bool) {
    wait_or_show(what, deadline, probe, String::new);
}

/// [`wait_for`], and on timeout the panic message also shows `context()` (logs, say).
pub fn wait_or_show(
    what: &str,
    deadline: Duration,
    mut probe: impl FnMut() -> bool,
    context: impl FnOnce() -> String,
) {
    let start = Instant::now();
    while !probe() {
        if start.elapsed() >= deadline {
            panic!("timed out waiting for {what}\n{}", context());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Makes a deterministic H.264 + AAC clip with ffmpeg (`ext` picks the container).
pub fn make_clip(dir: &Path, secs: u32, ext: &str) -> PathBuf {
    let path = dir.join(format!("clip-{secs}s.{ext}"));
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size=640x360:rate=30:duration={secs}"),
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("sine=frequency=440:sample_rate=48000:duration={secs}"),
        ])
        .args(VENUE_ENCODING)
        .args(["-b:a", "96k", "-shortest"])
        .arg(&path)
        .status()
        .expect("ffmpeg is installed (scripts/setup)");
    assert!(status.success(), "ffmpeg could not make {}", path.display());
    path
}

/// One video frame as ffprobe reports it.
#[derive(Debug, Clone, Copy)]
pub struct Frame {
    pub pts: f64,
    pub key: bool,
}

/// The first video frame of a TS file, decoded by ffprobe.
pub fn first_video_frame(ts: &Path) -> Frame {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+#1",
        ])
        .args([
            "-show_entries",
            "frame=pts_time,key_frame",
            "-of",
            "csv=p=0",
        ])
        .arg(ts)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .next()
        .unwrap_or_else(|| panic!("{}: no video frame", ts.display()));
    let mut fields = line.split(',');
    let key = fields.next().unwrap() == "1";
    let pts: f64 = fields.next().unwrap().parse().unwrap();
    Frame { pts, key }
}

/// Stream durations and codecs of a TS file as ffprobe sees them: (codec_type, codec_name, duration s).
pub fn streams(ts: &Path) -> Vec<(String, String, f64)> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(ts)
        .output()
        .expect("ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(','))
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[1].to_string(),
                f[0].to_string(),
                f.get(2).and_then(|d| d.parse().ok()).unwrap_or(0.0),
            )
        })
        .collect()
}

/// Decodes a whole file with ffmpeg and returns its error lines (empty = clean).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Parses a media playlist with m3u8-rs.
pub fn media_playlist(path: &Path) -> m3u8_rs::MediaPlaylist {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match m3u8_rs::parse_playlist_res(&bytes) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => p,
        other => panic!("{}: not a media playlist: {other:?}", path.display()),
    }
}

/// Creates match secrets with `swarmpack keygen` in `dir/keys`.
pub fn keygen(dir: &Path) -> PathBuf {
    let keys = dir.join("keys");
    let out = swarmpack()
        .arg("keygen")
        .arg("--out")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    keys
}

/// A static HTTP server (Python's http.server) over `dir` on a loopback port, waited for.
/// It stands in for an origin or web seed; it is killed when the guard drops.
pub fn http_server(dir: &Path, port: u16) -> Guard {
    let guard = Guard(
        Command::new("/usr/bin/python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3"),
    );
    wait_for("the HTTP server", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    guard
}

/// `swarmpack run --fast` of two `test:` angles (main, pov) for `secs` seconds into `origin`;
/// panics with swarmpack's log if it fails. Returns the output (stderr holds the log).
pub fn run_two_test_angles(
    match_id: &str,
    profile: &Path,
    keys: &Path,
    origin: &Path,
    secs: u32,
) -> Output {
    let mut cmd = swarmpack();
    // Debug logs: more to read when a test fails, and more for the leak scans to search.
    cmd.env("RUST_LOG", "info,swarmpack=debug");
    cmd.args([
        "run",
        "--match",
        match_id,
        "--fast",
        "--duration",
        &secs.to_string(),
    ])
    .arg("--profile")
    .arg(profile)
    .arg("--keys")
    .arg(keys)
    .args(["--angle", "main=test:", "--angle", "pov=test:"])
    .arg("--origin")
    .arg(format!("file://{}", origin.display()));
    let out = run_with_deadline(cmd, Duration::from_secs(240));
    assert!(
        out.status.success(),
        "swarmpack run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A copy of a shipped profile in `dir` with one text replacement (e.g. a loopback port).
pub fn profile_with(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(profile(name)).unwrap();
    assert!(text.contains(from), "{name} has no {from:?}");
    let path = dir.join(format!("edited-{name}"));
    std::fs::write(&path, text.replace(from, to)).unwrap();
    path
}

/// `swarmpack serve --origin ORIGIN --keys KEYS --listen 127.0.0.1:PORT`, not started.
pub fn serve_command(origin: &Path, keys: &Path, port: u16) -> Command {
    let mut cmd = swarmpack();
    cmd.arg("serve")
        .arg("--origin")
        .arg(origin)
        .arg("--keys")
        .arg(keys)
        .args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd
}

/// `swarmpack serve` on a loopback port, waited for: `extra` adds flags (`--dev-tokens`,
/// `--spool DIR`).
pub fn serve(origin: &Path, keys: &Path, port: u16, extra: &[&std::ffi::OsStr]) -> Guard {
    let mut cmd = serve_command(origin, keys, port);
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::null());
    let guard = Guard(cmd.spawn().unwrap());
    wait_for("serve to listen", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    guard
}

/// A small live profile for publishing tests: 1 s segments, windows of `window` segments, one
/// 320x180 rung, `public_url` as the web seed, then `extra` TOML (trackers, seeding).
pub fn small_profile(dir: &Path, window: u32, public_url: &str, extra: &str) -> PathBuf {
    let text = format!(
        "name = \"small\"\n[segment]\nduration = 1.0\nwindow = {window}\ndvr = 60\n\
         [[rung]]\nname = \"180p\"\nwidth = 320\nheight = 180\nfps = 30\nvideo_kbps = 300\naudio_kbps = 64\n\
         [encoder]\npreset = \"ultrafast\"\n[origin]\npublic_url = \"{public_url}\"\n{extra}"
    );
    let path = dir.join("small.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Every `*.m3u8` media playlist under `match_dir` (one per angle and rung).
pub fn media_playlists(match_dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for angle in std::fs::read_dir(match_dir).unwrap().flatten() {
        if !angle.path().is_dir() {
            continue;
        }
        for rung in std::fs::read_dir(angle.path()).unwrap().flatten() {
            let p = rung.path().join("index.m3u8");
            if p.is_file() {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

/// True once `match_dir` holds a signed `live.json` and exactly `playlists` media playlists
/// of at least `segments` segments each (a probe for [`wait_for`]).
pub fn live_with_segments(match_dir: &Path, playlists: usize, segments: usize) -> bool {
    if !match_dir.join("live.json.sig").is_file() {
        return false;
    }
    let found = media_playlists(match_dir);
    found.len() == playlists
        && found
            .iter()
            .all(|p| media_playlist(p).segments.len() >= segments)
}

/// `swarmpack run --match ID --profile P --keys K --origin URL`; callers add angles and flags.
pub fn run_match(match_id: &str, profile: &Path, keys: &Path, origin: &str) -> Command {
    let mut cmd = swarmpack();
    cmd.args(["run", "--match", match_id])
        .arg("--profile")
        .arg(profile)
        .arg("--keys")
        .arg(keys)
        .args(["--origin", origin]);
    cmd
}

/// `swarmpack verify TARGET --pubkey KEYS/pubkey.pem` must pass; returns its log (stderr).
pub fn assert_verifies(target: &str, keys: &Path) -> String {
    let v = swarmpack()
        .args(["verify", target])
        .arg("--pubkey")
        .arg(keys.join("pubkey.pem"))
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&v.stderr).into_owned();
    assert!(
        v.status.success(),
        "verify {target} failed:\n{}{log}",
        String::from_utf8_lossy(&v.stdout)
    );
    log
}

/// `GET /metrics` from `run --metrics 127.0.0.1:PORT`: the OpenMetrics text, if it answers.
pub fn scrape(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.contains("application/openmetrics-text")
        .then(|| body.to_string())
}

/// openssl checks `file`'s Ed25519 signature (`file` with `.json.sig` for `.json`) against
/// `pubkey` (PEM): the outside check of every signed JSON document.
pub fn openssl_verifies(pubkey: &Path, file: &Path) -> bool {
    openssl_verifies_sig(pubkey, file, &file.with_extension("json.sig"))
}

/// A program from a venv that scripts/setup made under `$SWARMPACK_TOOLS` (default
/// `~/.cache/swarmpack`): `{name}-{version}/bin/{program}`, the version read from the
/// `{pin}=` line of scripts/setup.
pub fn setup_tool(pin: &str, name: &str, program: &str) -> PathBuf {
    let setup =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup"))
            .unwrap();
    let version = setup
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{pin}=")))
        .unwrap_or_else(|| panic!("scripts/setup pins {pin}"));
    let tools = std::env::var("SWARMPACK_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/swarmpack"));
    let bin = tools.join(format!("{name}-{version}/bin/{program}"));
    assert!(
        bin.is_file(),
        "{} missing: run scripts/setup",
        bin.display()
    );
    bin
}
