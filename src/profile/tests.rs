use super::*;

const MINIMAL: &str = r#"
name = "t"
[segment]
duration = 2.0
window = 5
dvr = 60
[[rung]]
name = "360p"
width = 640
height = 360
fps = 30
video_kbps = 800
audio_kbps = 96
"#;

fn parse(text: &str) -> Result<Profile, ProfileError> {
    Profile::parse(text, Path::new("profiles/x.toml"))
}

/// Replaces one line of MINIMAL (matched by its start) and returns the error text.
fn error_with(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "test bug: {from:?} not in MINIMAL");
    let text = MINIMAL.replacen(from, to, 1);
    match parse(&text) {
        Ok(_) => panic!("{to:?} was accepted"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn shipped_profiles_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    for name in ["demo.toml", "esports-1080p.toml", "mobile.toml"] {
        let p = Profile::load(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"));
        assert!(!p.rungs.is_empty(), "{name}");
    }
    let esports = Profile::load(&dir.join("esports-1080p.toml")).unwrap();
    let heights: Vec<u32> = esports.rungs.iter().map(|r| r.height).collect();
    assert_eq!(heights, vec![1080, 720, 480, 360]);
    assert_eq!(esports.rungs[0].fps, FrameRate::whole(60));
}

#[test]
fn minimal_profile_gets_contract_defaults() {
    let p = parse(MINIMAL).unwrap();
    assert_eq!(p.segment.duration_ms, 2000);
    assert_eq!(p.segment.dvr_segments(), 30);
    assert_eq!(p.encoder.codec, "x264");
    assert_eq!(p.encoder.preset, "veryfast");
    assert_eq!(p.encoder.profile, "high");
    assert_eq!(p.encryption.key_uri_base, DEFAULT_KEY_URI_BASE);
    assert_eq!(p.origin.public_url, DEFAULT_PUBLIC_URL);
    assert!(p.trackers.is_empty());
}

#[test]
fn integer_seconds_are_accepted_for_float_fields() {
    let p = parse(&MINIMAL.replace("duration = 2.0", "duration = 2")).unwrap();
    assert_eq!(p.segment.duration_ms, 2000);
}

#[test]
fn unknown_keys_are_errors_that_name_the_key() {
    let e = error_with("video_kbps = 800", "video_kpbs = 800");
    assert!(e.starts_with("profiles/x.toml:"), "{e}");
    assert!(e.contains("video_kpbs"), "{e}");
    assert!(e.contains("expected one of"), "{e}");
    let e = error_with("dvr = 60", "dvr = 60\nsegments = 3");
    assert!(e.contains("unknown field `segments`"), "{e}");
}

#[test]
fn syntax_errors_give_the_line() {
    let e = error_with("window = 5", "window = = 5");
    assert!(e.contains("line 5, column 10"), "{e}");
}

#[test]
fn missing_fields_are_named() {
    let e = error_with("dvr = 60\n", "");
    assert!(e.contains("missing field `dvr`"), "{e}");
}

#[test]
fn wrong_types_are_named() {
    let e = error_with("video_kbps = 800", "video_kbps = \"800\"");
    assert!(e.contains("video_kbps = \"800\""), "{e}");
    assert!(
        e.contains("invalid type: string \"800\", expected i64"),
        "{e}"
    );
    // A frame rate is a number or a fraction; anything else names what is accepted.
    let e = error_with("fps = 30", "fps = \"thirty\"");
    assert!(
        e.contains("`rung[0].fps`") && e.contains("29.97, 59.94"),
        "{e}"
    );
}

#[test]
fn segment_duration_range_and_precision() {
    for bad in ["0.5", "6.5", "1.0005", "-2.0", "nan"] {
        let e = error_with("duration = 2.0", &format!("duration = {bad}"));
        assert!(
            e.contains("field `segment.duration`: expected seconds from 1.0 to 6.0"),
            "{bad}: {e}"
        );
    }
    let p = parse(&MINIMAL.replace("duration = 2.0", "duration = 1.5")).unwrap();
    assert_eq!(p.segment.duration_ms, 1500);
}

#[test]
fn dvr_must_hold_three_segments() {
    let e = error_with("dvr = 60", "dvr = 5");
    assert!(e.contains("field `segment.dvr`"), "{e}");
    assert!(e.contains("from 6"), "{e}");
    assert!(e.contains("found 5"), "{e}");
}

#[test]
fn window_range() {
    let e = error_with("window = 5", "window = 0");
    assert_eq!(
        e,
        "profiles/x.toml: field `segment.window`: expected a whole number from 1 to 1000, found 0"
    );
}

#[test]
fn rung_fields_are_checked_with_their_index() {
    let e = error_with("width = 640", "width = 641");
    assert_eq!(
        e,
        "profiles/x.toml: field `rung[0].width`: expected an even number of pixels (4:2:0 video), found 641"
    );
    let e = error_with("height = 360", "height = 9000");
    assert!(
        e.contains("`rung[0].height`: expected a whole number from 16 to 4320"),
        "{e}"
    );
    let e = error_with("audio_kbps = 96", "audio_kbps = 8");
    assert!(e.contains("`rung[0].audio_kbps`"), "{e}");
    let e = error_with("name = \"360p\"", "name = \"../etc\"");
    assert!(e.contains("`rung[0].name`"), "{e}");
}

#[test]
fn fps_must_fit_whole_frames_into_a_segment() {
    let text = MINIMAL
        .replace("duration = 2.0", "duration = 1.1")
        .replace("fps = 30", "fps = 25");
    let e = parse(&text).unwrap_err().to_string();
    assert!(
        e.contains("`rung[0].fps`: expected a frame rate that fits a whole number"),
        "{e}"
    );
    // 1.1 s at 30 fps is 33 frames: fine.
    let text = MINIMAL.replace("duration = 2.0", "duration = 1.1");
    assert!(parse(&text).is_ok());
}

#[test]
fn ladder_is_highest_first_with_unique_names() {
    let second = "\n[[rung]]\nname = \"720p\"\nwidth = 1280\nheight = 720\nfps = 30\nvideo_kbps = 3000\naudio_kbps = 128\n";
    let e = parse(&format!("{MINIMAL}{second}"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`rung[1].video_kbps`: expected rungs highest first"),
        "{e}"
    );
    let dup = second.replace("720p", "360p").replace("3000", "500");
    let e = parse(&format!("{MINIMAL}{dup}")).unwrap_err().to_string();
    assert!(
        e.contains("`rung[1].name`: expected a name not used"),
        "{e}"
    );
    let e = parse(&MINIMAL[..MINIMAL.find("[[rung]]").unwrap()])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("field `rung`: expected at least one [[rung]]"),
        "{e}"
    );
}

#[test]
fn encoder_choices_are_listed() {
    let text = format!("{MINIMAL}\n[encoder]\npreset = \"warp\"\n");
    let e = parse(&text).unwrap_err().to_string();
    assert!(
        e.contains("`encoder.preset`: expected one of ultrafast, superfast"),
        "{e}"
    );
    assert!(e.contains("found \"warp\""), "{e}");
    let text = format!("{MINIMAL}\n[encoder]\ncodec = \"x265\"\n");
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .contains("`encoder.codec`")
    );
    let text = format!("{MINIMAL}\n[encoder]\ntune = \"zerolatency\"\nthreads = 2\n");
    let p = parse(&text).unwrap();
    assert_eq!(p.encoder.tune.as_deref(), Some("zerolatency"));
    assert_eq!(p.encoder.threads, 2);
}

#[test]
fn urls_are_checked_by_scheme() {
    let text = format!("{MINIMAL}\n[[tracker]]\nannounce = \"ftp://t.example/announce\"\n");
    let e = parse(&text).unwrap_err().to_string();
    assert!(
        e.contains(
            "`tracker[0].announce`: expected an absolute URL with scheme http or https or udp or ws or wss"
        ),
        "{e}"
    );
    // ws(s):// trackers are the browsers' (p2p.json), never the torrents'.
    let text = format!(
        "{MINIMAL}\n[[tracker]]\nannounce = \"wss://t.example\"\n[[tracker]]\nannounce = \"udp://t.example:6969/announce\"\n"
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.webrtc_trackers, vec!["wss://t.example".to_string()]);
    assert_eq!(p.trackers.len(), 1);
    assert_eq!(p.trackers[0].announce, "udp://t.example:6969/announce");
    let text = format!(
        "{MINIMAL}\n[[tracker]]\nannounce = \"wss://t.example\"\nwhitelist_api = \"http://t.example/api\"\n"
    );
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .contains("tracker[0].whitelist_api")
    );
    let text = format!("{MINIMAL}\n[origin]\npublic_url = \"cdn.example.com\"\n");
    assert!(
        parse(&text)
            .unwrap_err()
            .to_string()
            .contains("`origin.public_url`")
    );
    let text = format!("{MINIMAL}\n[origin]\npublic_url = \"https://cdn.example.com/live\"\n");
    assert_eq!(
        parse(&text).unwrap().origin.public_url,
        "https://cdn.example.com/live/"
    );
}

#[test]
fn unreadable_file_names_the_file() {
    let e = Profile::load(Path::new("/nonexistent/p.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("/nonexistent/p.toml: cannot read the profile"),
        "{e}"
    );
}

#[test]
fn path_safe_names() {
    for ok in ["a", "cam1", "main-stage", "p_1", "0"] {
        assert!(is_path_safe_name(ok), "{ok}");
    }
    for bad in ["", "-a", "A", "a/b", "..", "a.b", "a b", &"x".repeat(33)] {
        assert!(!is_path_safe_name(bad), "{bad}");
    }
}

#[test]
fn windows_that_would_hold_gigabytes_are_refused_naming_the_largest_allowed() {
    // 200 Mb/s, 6 s segments, windows of 1000: 150 GB per window in memory.
    let text = MINIMAL
        .replace("duration = 2.0", "duration = 6.0")
        .replace("window = 5", "window = 1000")
        .replace("video_kbps = 800", "video_kbps = 200000");
    let e = parse(&text).unwrap_err().to_string();
    assert!(
        e.contains("segment.window") && e.contains("at most 1 segments"),
        "{e}"
    );
    // The same ladder with a window of one segment fits; 900 kbit/s fits 1000 segments.
    assert!(parse(&text.replace("window = 1000", "window = 1")).is_ok());
    assert!(parse(&MINIMAL.replace("window = 5", "window = 1000")).is_ok());
}

#[test]
fn a_dvr_window_that_makes_huge_playlists_is_refused() {
    let text = MINIMAL
        .replace("duration = 2.0", "duration = 1.0")
        .replace("dvr = 60", "dvr = 86400");
    let e = parse(&text).unwrap_err().to_string();
    assert!(
        e.contains("segment.dvr") && e.contains("at most 3000 s with 1 s segments"),
        "{e}"
    );
    assert!(parse(&MINIMAL.replace("dvr = 60", "dvr = 6000")).is_ok());
}

#[test]
fn urls_that_would_inject_playlist_attributes_are_refused() {
    for (table, field) in [("encryption", "key_uri_base"), ("origin", "public_url")] {
        for bad in [
            "http://k/keys\\\",METHOD=NONE,X=\\\"",
            "http://k/keys\\n#EXT-X-ENDLIST",
            "http://k/ke ys",
        ] {
            let text = format!("{MINIMAL}[{table}]\n{field} = \"{bad}\"\n");
            let e = parse(&text).unwrap_err().to_string();
            assert!(
                e.contains(&format!("{table}.{field}")) && e.contains("without quotes"),
                "{bad}: {e}"
            );
        }
    }
}

#[test]
fn ntsc_rates_need_segments_of_whole_frames() {
    let e = error_with("fps = 30", "fps = 29.97");
    assert!(
        e.contains("`rung[0].fps`") && e.contains("segments of 1.001, 2.002, 3.003 s do"),
        "{e}"
    );
    let p = parse(
        &MINIMAL
            .replace("fps = 30", "fps = \"30000/1001\"")
            .replace("duration = 2.0", "duration = 2.002"),
    )
    .unwrap();
    assert_eq!(p.rungs[0].fps.to_string(), "29.97");
    assert_eq!(p.rungs[0].frames_per_segment(p.segment.duration_ms), 60);
    assert_eq!(p.segment.duration_ms, 2002);
}

#[test]
fn video_and_audio_tables_default_and_are_checked() {
    let p = parse(MINIMAL).unwrap();
    assert_eq!(p.video.deinterlace, "greedyh");
    assert_eq!(p.audio.loudness, None);
    let p = parse(&format!(
        "{MINIMAL}[video]\ndeinterlace = \"vfir\"\n[audio]\nloudness = -24\n"
    ))
    .unwrap();
    assert_eq!(p.video.deinterlace, "vfir");
    assert_eq!(p.audio.loudness, Some(-24.0));

    let e = parse(&format!("{MINIMAL}[video]\ndeinterlace = \"yadif\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`video.deinterlace`") && e.contains("greedyh, greedyl") && e.contains("yadif"),
        "{e}"
    );
    let e = parse(&format!("{MINIMAL}[audio]\nloudness = 3\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`audio.loudness`") && e.contains("-70") && e.contains("-23"),
        "{e}"
    );
    let e = parse(&format!("{MINIMAL}[audio]\nlufs = -23\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("lufs"), "{e}");
}

#[test]
fn ice_servers_take_stun_as_written_and_turn_only_with_minted_credentials() {
    let text = format!(
        "{MINIMAL}\n[[ice_server]]\nurls = [\"stun:stun.example:3478\", \"stun:198.18.0.10\"]\n\
         [[ice_server]]\nurls = [\"turn:turn.example:3478?transport=udp\", \"turns:turn.example:5349\"]\n\
         credentials = \"rest\"\n"
    );
    let p = parse(&text).unwrap();
    assert_eq!(p.ice_servers.len(), 2);
    assert!(!p.ice_servers[0].is_turn());
    assert!(p.ice_servers[1].is_turn());
    assert_eq!(p.ice_servers[1].urls[1], "turns:turn.example:5349");
    assert!(parse(MINIMAL).unwrap().ice_servers.is_empty());
    for (table, field, says) in [
        (
            "urls = []",
            "ice_server[0].urls",
            "at least one STUN or TURN URI",
        ),
        (
            "urls = [\"stun://s.example\"]",
            "ice_server[0].urls[0]",
            "stun:HOST[:PORT]",
        ),
        (
            "urls = [\"turn:t.example\"]",
            "ice_server[0].urls[0]",
            "credentials = \"rest\"",
        ),
        (
            "urls = [\"stun:s.example\"]\ncredentials = \"rest\"",
            "ice_server[0].urls[0]",
            "only turn: or turns: URIs",
        ),
        (
            "urls = [\"turn:t.example\"]\ncredentials = \"hunter2\"",
            "ice_server[0].credentials",
            "no password belongs in a profile",
        ),
        (
            "urls = [\"stun:s.example\"]\nusername = \"u\"",
            "username",
            "unknown field",
        ),
    ] {
        let e = parse(&format!("{MINIMAL}\n[[ice_server]]\n{table}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && e.contains(says), "{table}: {e}");
    }
}

#[test]
fn delivery_defaults_follow_the_segment_and_each_key_is_checked() {
    let d = parse(MINIMAL).unwrap().delivery;
    assert_eq!(d, Delivery::defaults(2.0));
    assert_eq!((d.behind_live, d.urgent, d.early_fetchers), (6.0, 1.0, 1));
    let one = parse(&MINIMAL.replace("duration = 2.0", "duration = 1.0")).unwrap();
    assert_eq!((one.delivery.behind_live, one.delivery.urgent), (3.0, 0.5));
    let set = parse(&format!(
        "{MINIMAL}\n[delivery]\nbehind_live = 5.5\nurgent = 1.0\nearly_fetchers = 0\n\
         relay = \"keep\"\nalone_after = 10\nstartup_wait = 0.5\n"
    ))
    .unwrap()
    .delivery;
    assert_eq!(
        set,
        Delivery {
            segment: 2.0,
            behind_live: 5.5,
            urgent: 1.0,
            early_fetchers: 0,
            relay: "keep".into(),
            alone_after: 10.0,
            startup_wait: 0.5,
        }
    );
    for (table, field, says) in [
        (
            "behind_live = 3.0",
            "delivery.behind_live",
            "seconds from 4 to 58",
        ),
        (
            "behind_live = 59.0",
            "delivery.behind_live",
            "seconds from 4 to 58",
        ),
        ("behind_live = nan", "delivery.behind_live", "seconds from"),
        ("urgent = 7.0", "delivery.urgent", "seconds from 1 to 6"),
        (
            "behind_live = 5.0\nurgent = 5.5",
            "delivery.urgent",
            "seconds from 1 to 5 (half a segment to behind_live)",
        ),
        (
            "early_fetchers = 9",
            "delivery.early_fetchers",
            "from 0 to 8",
        ),
        (
            "relay = \"off\"",
            "delivery.relay",
            "one of last-resort, keep",
        ),
        (
            "alone_after = 1.0",
            "delivery.alone_after",
            "seconds from 2 to 600",
        ),
        (
            "startup_wait = -1",
            "delivery.startup_wait",
            "seconds from 0 to 6",
        ),
        ("live_sync = 3", "live_sync", "unknown field"),
    ] {
        let e = parse(&format!("{MINIMAL}\n[delivery]\n{table}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(field) && e.contains(says), "{table}: {e}");
    }
}

#[test]
fn telemetry_goes_beside_the_key_server_unless_the_profile_says_otherwise() {
    use super::qoe::collector_beside;
    let q = parse(MINIMAL).unwrap();
    assert_eq!(
        q.qoe.collector.as_deref(),
        Some(collector_beside(&q.encryption.key_uri_base).as_str())
    );
    assert_eq!(
        collector_beside("https://k.example/keys"),
        "https://k.example/cmcd"
    );
    assert_eq!(
        collector_beside("https://k.example/live/keys/"),
        "https://k.example/live/cmcd"
    );
    assert_eq!(
        collector_beside("https://k.example"),
        "https://k.example/cmcd"
    );
    let own = parse(&format!(
        "{MINIMAL}\n[qoe]\ncollector = \"https://c.example/cmcd/\"\n"
    ))
    .unwrap();
    assert_eq!(own.qoe.collector.as_deref(), Some("https://c.example/cmcd"));
    let off = parse(&format!("{MINIMAL}\n[qoe]\ntelemetry = false\n")).unwrap();
    assert_eq!(off.qoe.collector, None);
    let bad = parse(&format!(
        "{MINIMAL}\n[qoe]\ncollector = \"ftp://c.example\"\n"
    ))
    .unwrap_err();
    assert!(bad.to_string().contains("qoe.collector"), "{bad}");
    let unknown = parse(&format!("{MINIMAL}\n[qoe]\ntelemetri = false\n")).unwrap_err();
    assert!(unknown.to_string().contains("telemetri"), "{unknown}");
}

#[test]
fn qoe_thresholds_and_the_degraded_policy_are_checked() {
    let p = parse(&format!(
        "{MINIMAL}\n[qoe]\nrebuffer_ratio = 0.02\npeer_share = 0.4\nmin_viewers = 10\n\
         [qoe.on_degraded]\nbehind_live = 10\n"
    ))
    .unwrap();
    let t = &p.qoe.thresholds;
    assert_eq!(
        (t.rebuffer_ratio, t.peer_share, t.min_viewers, t.over),
        (Some(0.02), Some(0.4), 10, 60)
    );
    let d = p.qoe.on_degraded.unwrap();
    assert_eq!((d.behind_live, d.urgent), (10.0, p.delivery.urgent));
    assert!(!parse(MINIMAL).unwrap().qoe.thresholds.watched());
    for (table, says) in [
        ("rebuffer_ratio = 2", "qoe.rebuffer_ratio"),
        ("peer_share = -0.1", "qoe.peer_share"),
        ("over = 5", "qoe.over"),
        ("min_viewers = -1", "qoe.min_viewers"),
        ("telemetry = false\npeer_share = 0.4", "qoe.telemetry"),
        ("[qoe.on_degraded]\nbehind_live = 1", "delivery.behind_live"),
        ("[qoe.on_degraded]\nfaster = true", "faster"),
    ] {
        let e = parse(&format!("{MINIMAL}\n[qoe]\n{table}\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{table}: {e}");
    }
}
