//! Venue feeds over the network: ffmpeg as the venue encoder pushing SRT to swarmpack's
//! listener, and RTMP pulled from a loopback nginx-rtmp that ffmpeg publishes to.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn run_args(out: &std::path::Path, angle: &str) -> Command {
    let keys = keygen(out.parent().expect("the origin has a parent"));
    let mut cmd = swarmpack();
    cmd.args(["run", "--match", "net", "--duration", "8"])
        .arg("--keys")
        .arg(keys)
        .arg("--profile")
        .arg(profile("demo.toml"))
        .args(["--angle", angle])
        .arg("--origin")
        .arg(format!("file://{}", out.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// ffmpeg as the venue encoder: sends `clip` in real time as MPEG-TS over SRT to `url`.
fn venue_encoder(clip: &std::path::Path, url: &str) -> Guard {
    Guard(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-i"])
            .arg(clip)
            .args(["-c", "copy", "-f", "mpegts", url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn finish(mut child: std::process::Child, deadline: Duration) -> (bool, String) {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn assert_both_rungs(out: &std::path::Path, angle: &str) {
    for rung in ["360p", "180p"] {
        let dir = out.join("net").join(angle).join(rung);
        let n = assert_playlist_segments_valid(&dir, &out.parent().unwrap().join("keys"), "net");
        assert!(n >= 2, "{angle}/{rung}: {n} segments");
        assert!(media_playlist(&dir.join("index.m3u8")).end_list);
    }
}

#[test]
fn srt_listener_takes_a_venue_encoder_push() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = make_clip(tmp.path(), 15, "ts");
    let port = free_udp_port();
    let out = tmp.path().join("origin");
    let swarm = run_args(&out, &format!("venue=srt://127.0.0.1:{port}?mode=listener"))
        .spawn()
        .unwrap();
    let mut swarm = Some(swarm);
    // The venue encoder calls in; it is refused until the listener is up, so retry.
    let start = Instant::now();
    let _sender = loop {
        let mut sender = venue_encoder(&clip, &format!("srt://127.0.0.1:{port}?mode=caller"));
        std::thread::sleep(Duration::from_millis(500));
        if sender.0.try_wait().unwrap().is_none() {
            break sender;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "ffmpeg could not connect over SRT"
        );
    };
    let (ok, stderr) = finish(swarm.take().unwrap(), Duration::from_secs(60));
    assert!(ok, "swarmpack failed:\n{stderr}");
    // Real media arrived (not only the slate that covers a missing feed).
    assert!(stderr.contains("feed is live"), "{stderr}");
    assert_both_rungs(&out, "venue");
}

/// Issue 14 item 12: an SRT listener with a passphrase (from a 0600 file) and 256-bit keys.
/// Callers without it or with a wrong one are rejected by SRT's handshake; the right one goes
/// on air; the passphrase appears in no log and not in `--print-pipeline`.
#[test]
fn srt_listener_with_a_passphrase_takes_only_the_right_caller() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let clip = make_clip(tmp.path(), 15, "ts");
    let pass = tmp.path().join("srt.pass");
    std::fs::write(&pass, "venue-secret-42\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let port = free_udp_port();
    let out = tmp.path().join("origin");
    let angle = format!(
        "venue=srt://127.0.0.1:{port}?mode=listener&passphrase-file={}&pbkeylen=32",
        pass.display()
    );
    let printed = run_with_deadline(
        {
            std::fs::create_dir(tmp.path().join("print")).unwrap();
            let mut c = run_args(&tmp.path().join("print").join("origin"), &angle);
            c.arg("--print-pipeline");
            c
        },
        Duration::from_secs(30),
    );
    let printed_text = String::from_utf8_lossy(&printed.stdout);
    assert!(printed.status.success() && printed_text.contains("srt://127.0.0.1"));
    assert!(!printed_text.contains("venue-secret"), "{printed_text}");

    let swarm = run_args(&out, &angle).spawn().unwrap();
    let call = |extra: &str| {
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "mpegts"])
            .arg(format!("srt://127.0.0.1:{port}?mode=caller{extra}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Each refused caller fails with SRT's own reason (retried while the listener comes up).
    for (extra, reason) in [
        ("", "Password required"),
        ("&passphrase=wrong-secret-99", "Incorrect passphrase"),
    ] {
        let start = Instant::now();
        loop {
            let out = call(extra).wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(!out.status.success(), "a caller with [{extra}] was let in");
            if err.contains(reason) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "never refused with {reason:?}: {err}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let _sender = Guard(call("&passphrase=venue-secret-42&pbkeylen=32"));
    let (ok, stderr) = finish(swarm, Duration::from_secs(60));
    assert!(ok, "swarmpack failed:\n{stderr}");
    assert!(stderr.contains("feed is live"), "{stderr}");
    assert!(
        !stderr.contains("venue-secret"),
        "the passphrase in the log: {stderr}"
    );
    assert_both_rungs(&out, "venue");
}

#[test]
fn rtmp_pull_from_nginx_rtmp() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = make_clip(tmp.path(), 6, "mp4");
    let port = free_tcp_port();
    let conf = tmp.path().join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;\n\
             daemon off;\nmaster_process off;\npid {dir}/nginx.pid;\nerror_log {dir}/error.log info;\n\
             events {{}}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}\n",
            dir = tmp.path().display()
        ),
    )
    .unwrap();
    let _nginx = Guard(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(tmp.path())
            .arg("-e")
            .arg(tmp.path().join("error.log"))
            .spawn()
            .expect("nginx is installed (scripts/setup)"),
    );
    wait_for("nginx-rtmp to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    let _publisher = Guard(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-stream_loop", "-1", "-i"])
            .arg(&clip)
            .args(["-c", "copy", "-f", "flv", &url])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let out = tmp.path().join("origin");
    let swarm = run_args(&out, &format!("cam={url}")).spawn().unwrap();
    let (ok, stderr) = finish(swarm, Duration::from_secs(60));
    assert!(ok, "swarmpack failed:\n{stderr}");
    // Real media arrived (not only the slate that covers a missing feed).
    assert!(stderr.contains("feed is live"), "{stderr}");
    assert_both_rungs(&out, "cam");
}

#[test]
fn srt_caller_dials_a_venue_encoder_that_listens() {
    let tmp = tempfile::tempdir().unwrap();
    let clip = make_clip(tmp.path(), 15, "ts");
    let port = free_udp_port();
    // ffmpeg listens like a venue encoder that waits for the packager to call in.
    let _venue = venue_encoder(&clip, &format!("srt://127.0.0.1:{port}?mode=listener"));
    let out = tmp.path().join("origin");
    let swarm = run_args(&out, &format!("venue=srt://127.0.0.1:{port}?mode=caller"))
        .spawn()
        .unwrap();
    let (ok, stderr) = finish(swarm, Duration::from_secs(60));
    assert!(ok, "swarmpack failed:\n{stderr}");
    // Real media arrived (not only the slate that covers a missing feed).
    assert!(stderr.contains("feed is live"), "{stderr}");
    assert_both_rungs(&out, "venue");
}

#[test]
fn rtmp_listen_takes_a_push_and_refuses_wrong_keys() {
    let tmp = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let out = tmp.path().join("origin");
    let swarm = run_args(
        &out,
        &format!("obs=rtmp-listen://127.0.0.1:{port}/live/s3cret"),
    )
    .spawn()
    .unwrap();
    let push = |path: &str, secs: &str| {
        Command::new("ffmpeg")
            .args(["-v", "error", "-t", secs])
            .args(VenueEncoder::live_picture())
            .args(["-f", "flv", &format!("rtmp://127.0.0.1:{port}{path}")])
            .output()
            .unwrap()
    };
    wait_for("the RTMP listener", Duration::from_secs(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    // Wrong stream key and wrong application: refused, and ffmpeg says so.
    let wrong_key = push("/live/guess", "3");
    assert!(!wrong_key.status.success());
    assert!(
        String::from_utf8_lossy(&wrong_key.stderr).contains("wrong stream key"),
        "{}",
        String::from_utf8_lossy(&wrong_key.stderr)
    );
    let wrong_app = push("/other/s3cret", "3");
    assert!(!wrong_app.status.success());
    // The right one is taken until the match ends (ffmpeg then sees the connection close).
    let _ = push("/live/s3cret", "12");
    let (ok, stderr) = finish(swarm, Duration::from_secs(60));
    assert!(ok, "swarmpack failed:\n{stderr}");
    assert!(
        stderr.contains("RTMP publisher accepted on /live/…"),
        "{stderr}"
    );
    assert!(
        stderr.contains("refused a publish: wrong stream key"),
        "{stderr}"
    );
    assert!(
        stderr.contains("refused: wrong application name"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("guess") && !stderr.contains("s3cret"),
        "keys in the log: {stderr}"
    );
    assert_both_rungs(&out, "obs");
}

/// Issue 14 item 2: an idle connection and a slow-loris one (a handshake byte every 300 ms)
/// are held open on the venue port; ffmpeg's push still goes on air before their handshake
/// deadline, both are cut off at it, and the refusals are counted.
#[test]
fn rtmp_listen_goes_on_air_past_idle_and_slow_loris_connections() {
    use std::io::{Read, Write};
    let tmp = tempfile::tempdir().unwrap();
    let port = free_tcp_port();
    let metrics_port = free_tcp_port();
    let out = tmp.path().join("origin");
    let log = tmp.path().join("run.log");
    let mut cmd = run_args(
        &out,
        &format!("obs=rtmp-listen://127.0.0.1:{port}/live/s3cret"),
    );
    cmd.args(["--metrics", &format!("127.0.0.1:{metrics_port}")])
        .stderr(std::fs::File::create(&log).unwrap());
    let swarm = cmd.spawn().unwrap();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_or_show(
        "the RTMP listener",
        Duration::from_secs(20),
        || log_text().contains("waiting for the feed"),
        log_text,
    );
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut loris = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let dripping = {
        let stop = stop.clone();
        let mut loris = loris.try_clone().unwrap();
        std::thread::spawn(move || {
            // C0 (version 3), then C1 one byte at a time.
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let byte = if sent == 0 { 3u8 } else { 0u8 };
                if loris.write_all(&[byte]).is_err() {
                    return sent;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            sent
        })
    };
    let pushed = Instant::now();
    let _ffmpeg = Guard(
        Command::new("ffmpeg")
            .args(["-v", "error", "-t", "10"])
            .args(VenueEncoder::live_picture())
            .args(["-f", "flv", &format!("rtmp://127.0.0.1:{port}/live/s3cret")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // On air while both held connections still wait for their deadline: the log shows the
    // push accepted before either deadline refusal (checked below, once the run has ended).
    // The wait itself has a wide margin; the order is what proves the point.
    wait_or_show(
        "ffmpeg's push on air",
        Duration::from_secs(20),
        || log_text().contains("RTMP publisher accepted on /live/…"),
        log_text,
    );
    let on_air = pushed.elapsed();
    // The server closes both held connections at the handshake deadline.
    for (what, conn) in [("idle", &mut idle), ("slow-loris", &mut loris)] {
        conn.set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let closed = loop {
            match conn.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(
            closed,
            "the {what} connection was never closed:\n{}",
            log_text()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let dripped = dripping.join().unwrap();
    assert!(
        dripped < 1537,
        "the slow-loris client got its whole C1 in ({dripped} bytes)"
    );
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    wait_or_show(
        "both deadlines counted",
        Duration::from_secs(10),
        || {
            ureq::get(&metrics_url)
                .call()
                .ok()
                .and_then(|r| r.into_string().ok())
                .is_some_and(|m| m.contains("swarmpack_rtmp_refused_total{reason=\"deadline\"} 2"))
        },
        log_text,
    );
    let (ok, _) = finish(swarm, Duration::from_secs(60));
    let stderr = log_text();
    assert!(ok, "swarmpack failed:\n{stderr}");
    let accepted = stderr.find("RTMP publisher accepted on /live/…");
    let refused = stderr.find("no RTMP handshake within 5 s");
    assert!(
        accepted.is_some() && refused.is_some() && accepted < refused,
        "the push went on air only after the held connections were cut off:\n{stderr}"
    );
    assert!(stderr.contains("feed is live"), "{stderr}");
    eprintln!("on air {on_air:?} after the push started");
    assert_both_rungs(&out, "obs");
}

#[test]
fn rtmp_listen_on_a_busy_port_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = tmp.path().join("origin");
    let swarm = run_args(&out, &format!("obs=rtmp-listen://127.0.0.1:{port}/live/k"))
        .spawn()
        .unwrap();
    let output = swarm.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "angle obs: cannot listen for RTMP publishers on 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
}
