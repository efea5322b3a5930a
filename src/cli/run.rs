//! `swarmpack run`: its arguments, and turning them into a [`RunConfig`] (bad input exits 2).
//!
//! The binary's edge: may call any room of the library (through `swarmpack::`).

use super::{Failure, LogFormat, bad_input, runtime};
use anyhow::anyhow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use swarmpack::ingest::{Fragments, SourceSpec};
use swarmpack::keys::KeyDir;
use swarmpack::profile::{Profile, is_path_safe_name, path_safe_name_rule};
use swarmpack::publish::Origin;
use swarmpack::run::{RunConfig, RunError};

/// How the spool writes objects (see `run --help`).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum SpoolDurability {
    Fsync,
    Buffered,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Match ID: the top directory on the origin (a-z, 0-9, '-', '_').
    #[arg(long = "match", value_name = "ID")]
    pub match_id: String,
    /// Profile TOML that selects the segment grid and the bitrate ladder (see profiles/).
    #[arg(long, value_name = "FILE")]
    pub profile: PathBuf,
    /// A camera angle: NAME=URI. Repeat for each angle. SWARMPACK_ANGLES (one NAME=URI per
    /// line) keeps SRT passphrases and RTMP stream keys off the command line that `ps` shows.
    #[arg(
        long = "angle",
        value_name = "NAME=URI",
        required = true,
        env = "SWARMPACK_ANGLES",
        value_delimiter = '\n',
        hide_env_values = true
    )]
    pub angles: Vec<String>,
    /// Match secrets from `swarmpack keygen`.
    #[arg(long, value_name = "DIR", default_value = "./keys")]
    pub keys: PathBuf,
    /// Where to publish: file:///abs/dir, file://relative/dir, http(s)://host/path/ (WebDAV
    /// PUT) or s3://bucket/prefix (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY from the environment). SWARMPACK_ORIGIN keeps a URL's
    /// credentials off the command line.
    #[arg(
        long,
        value_name = "URL",
        default_value = "file://./out",
        env = "SWARMPACK_ORIGIN",
        hide_env_values = true
    )]
    pub origin: String,
    /// Local working directory: objects wait in SPOOL/MATCH/queue until the origin has them
    /// (a restart publishes leftovers first); SPOOL/MATCH/seed is the seeder's copy.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "./spool",
        env = "SWARMPACK_SPOOL"
    )]
    pub spool: PathBuf,
    /// At the end, wait this long for the spool to drain to the origin: 30s, 2m.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub drain_timeout: String,
    /// fsync: every spooled object survives a power cut (flushed before it is queued).
    /// buffered: it survives a crash of swarmpack, and the OS flushes it (a power cut may lose
    /// the newest seconds). docs/PERFORMANCE.md has the cost of each. A full spool disk never
    /// stops the match: objects are held in memory (up to 512 MiB) and published from there.
    #[arg(long, value_enum, value_name = "MODE", default_value = "fsync")]
    pub spool_durability: SpoolDurability,
    /// Do not seed windows (overrides the profile's [seed] enabled).
    #[arg(long)]
    pub no_seed: bool,
    /// Serve Prometheus metrics (OpenMetrics text) at http://ADDR/metrics, e.g. 127.0.0.1:9300.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Where the seeder listens for peers, IP:PORT (overrides the profile's seed.listen;
    /// port 0 picks a free one).
    #[arg(long, value_name = "ADDR", env = "SWARMPACK_SEED_LISTEN")]
    pub seed_listen: Option<String>,
    /// Stop after SECS of media, rounded up to whole segments (a clean end with ENDLIST).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// End the match at the first segment boundary at or after this UTC instant (RFC 3339,
    /// e.g. 2026-12-04T20:30:00Z): a clean end with ENDLIST, on the same segment for every
    /// run given it, however late each started. `swarmpack control --cluster` gives it to
    /// the runs of a match with a duration, so a node taking the match over ends it where
    /// the first would have. Wins over --duration.
    #[arg(long, value_name = "UTC")]
    pub end_at: Option<String>,
    /// Run test: and file: feeds as fast as the machine allows (media time runs ahead of UTC).
    #[arg(long)]
    pub fast: bool,
    /// Directory of tuned pipeline fragments (*.gst) that replace the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub pipelines: Option<PathBuf>,
    /// Print each angle's GStreamer pipeline (gst-launch-1.0 syntax) and exit.
    #[arg(long)]
    pub print_pipeline: bool,
    /// Append the match's events to FILE, one JSON line each: feed.lost, feed.restored,
    /// window.published, origin.down, origin.up (`swarmpack control` turns them into webhooks).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Follow FILE for markers, one JSON line each ({"id","label","class"?,"start","duration"?},
    /// as `swarmpack control` writes them): each becomes an EXT-X-DATERANGE in every live
    /// playlist and goes into its window's manifest.
    #[arg(long, value_name = "FILE")]
    pub markers: Option<PathBuf>,
    /// Follow FILE for the fans' players' delivery policy, one JSON line each (the [delivery]
    /// keys, as `swarmpack control` writes them for PATCH /v1/matches/{id}/delivery): the
    /// newest line, checked against the profile's bounds, goes out as a new signed p2p.json.
    #[arg(long, value_name = "FILE")]
    pub delivery: Option<PathBuf>,
    /// Run as one of several redundant encoders of this match: the same --match, --keys,
    /// --profile and feeds on each machine, each with its own --spool, all publishing to one
    /// s3:// or file:// origin. Each segment is claimed on the origin (create-if-absent)
    /// before it is packaged; a run that finds another run's segment there packages those
    /// bytes instead of its own, so every run publishes the same playlists, manifests and
    /// torrents, and the match goes on while any one of them runs. Not with --fast, nor with
    /// a WebDAV origin (its PUT cannot refuse to replace). README: "One match on several
    /// machines".
    #[arg(long)]
    pub redundant: bool,
    /// An angle another machine encodes for this match (an angle group): its name, as that
    /// machine's --angle gives it. Repeat for each. The multivariant playlist lists every
    /// angle, by name (the first is the default); window manifests and torrents cover every
    /// rendition, whichever machine composes them (they come out byte for byte the same);
    /// and if that machine stops, its angles go on as a marked gap (EXT-X-GAP). Needs an
    /// s3:// or file:// origin, and the same --match, --keys and --profile on every machine.
    #[arg(long = "remote-angle", value_name = "NAME")]
    pub remote_angles: Vec<String>,
}

pub fn parse_angles(specs: &[String]) -> Result<Vec<(String, SourceSpec)>, Failure> {
    let mut angles: Vec<(String, SourceSpec)> = Vec::new();
    for spec in specs {
        let (name, uri) = spec.split_once('=').ok_or_else(|| {
            bad_input(anyhow!(
                "--angle {spec}: expected NAME=URI, e.g. main=test:"
            ))
        })?;
        if !is_path_safe_name(name) {
            return Err(bad_input(anyhow!(
                "--angle {spec}: angle name {name:?}: expected {}",
                path_safe_name_rule()
            )));
        }
        if angles.iter().any(|(n, _)| n == name) {
            return Err(bad_input(anyhow!(
                "--angle {spec}: angle {name:?} is given twice"
            )));
        }
        let source = SourceSpec::parse(name, uri).map_err(bad_input)?;
        angles.push((name.to_string(), source));
    }
    Ok(angles)
}

/// `--remote-angle`: path-safe names, each once, none of this run's own.
fn check_remote_angles(args: &RunArgs, angles: &[(String, SourceSpec)]) -> Result<(), Failure> {
    for (i, name) in args.remote_angles.iter().enumerate() {
        if !is_path_safe_name(name) {
            return Err(bad_input(anyhow!(
                "--remote-angle {name:?}: expected {}",
                path_safe_name_rule()
            )));
        }
        if angles.iter().any(|(n, _)| n == name) {
            return Err(bad_input(anyhow!(
                "--remote-angle {name}: this run encodes {name} itself (--angle {name}=...); \
                 expected an angle another machine encodes"
            )));
        }
        if args.remote_angles[..i].contains(name) {
            return Err(bad_input(anyhow!("--remote-angle {name}: given twice")));
        }
    }
    Ok(())
}

/// `--redundant` and `--remote-angle` coordinate machines through the origin: they need the
/// wall clock (each machine makes the same seq at the same time) and an origin whose creates
/// can lose to an object already there.
fn check_coordination(args: &RunArgs, origin: &Origin) -> Result<(), Failure> {
    let flags = [
        ("--redundant", args.redundant),
        ("--remote-angle", !args.remote_angles.is_empty()),
    ];
    for (flag, _) in flags.iter().filter(|(_, on)| *on) {
        if args.fast {
            return Err(bad_input(anyhow!(
                "{flag} with --fast: the machines must follow the wall clock, so that each \
                 makes the same seq at the same time; drop --fast"
            )));
        }
        if !origin.creates_exclusively() {
            return Err(bad_input(anyhow!(
                "{flag} with --origin {}: WebDAV has no create-if-absent, so the machines \
                 would replace each other's segments and windows; expected an s3:// or \
                 file:// origin",
                origin.describe()
            )));
        }
    }
    Ok(())
}

pub fn run(
    args: RunArgs,
    log_format: LogFormat,
    stop_requests: Arc<AtomicUsize>,
) -> Result<(), Failure> {
    let Some(config) = config(&args, log_format)? else {
        return Ok(());
    };
    let report = swarmpack::run::run(config, stop_requests).map_err(failure)?;
    if report.segments == 0 {
        return Err(runtime(anyhow!(
            "match {} produced no segments: check the feeds, no frame reached a segment boundary",
            args.match_id
        )));
    }
    Ok(())
}

/// How a run's failure exits: 2 for what the command line or profile got wrong, 130 for a
/// second signal, 1 otherwise.
fn failure(e: RunError) -> Failure {
    match e {
        RunError::Ingest(swarmpack::ingest::IngestError::Template { .. })
        | RunError::Ingest(swarmpack::ingest::IngestError::Parse { .. })
        | RunError::Ingest(swarmpack::ingest::IngestError::Missing { .. })
        | RunError::Seed(swarmpack::seed::SeedError::MissingToken { .. })
        | RunError::AlreadyRunning { .. }
        | RunError::Events { .. } => bad_input(e),
        RunError::Interrupted => Failure {
            code: 130,
            error: e.into(),
        },
        e => runtime(e),
    }
}

/// The run's configuration from the command line, every flag checked; None when there is
/// nothing to run (`--print-pipeline` printed the pipelines).
fn config(args: &RunArgs, log_format: LogFormat) -> Result<Option<RunConfig>, Failure> {
    let match_id = swarmpack::match_id::MatchId::parse(&args.match_id)
        .map_err(|e| bad_input(anyhow!("--match {:?}: {e}", args.match_id)))?;
    let profile = Profile::load(&args.profile).map_err(bad_input)?;
    let angles = parse_angles(&args.angles)?;
    if let Some(d) = args.duration
        && !(d > 0.0 && d.is_finite())
    {
        return Err(bad_input(anyhow!(
            "--duration {d}: expected a positive number of seconds"
        )));
    }
    let end_at = match &args.end_at {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt())
                .and_then(|ns| u64::try_from(ns).ok())
                .map(swarmpack::timecode::UtcNs)
                .ok_or_else(|| {
                    bad_input(anyhow!(
                        "--end-at {text:?}: expected an RFC 3339 UTC instant, e.g. 2026-12-04T20:30:00Z"
                    ))
                })?,
        ),
    };
    let fragments = match &args.pipelines {
        Some(dir) if !dir.is_dir() => {
            return Err(bad_input(anyhow!(
                "--pipelines {}: not a directory",
                dir.display()
            )));
        }
        Some(dir) => Fragments::from_dir(dir),
        None => Fragments::builtin(),
    };
    if args.print_pipeline {
        for (name, spec) in &angles {
            let text =
                swarmpack::ingest::describe::describe(name, spec, &profile, &fragments, args.fast)
                    .map_err(bad_input)?;
            println!("# angle {name}\ngst-launch-1.0 -e {text}\n");
        }
        return Ok(None);
    }
    let mut profile = profile;
    if let Some(listen) = &args.seed_listen {
        profile.seed.listen = listen.parse().map_err(|_| {
            bad_input(anyhow!(
                "--seed-listen {listen:?}: expected IP:PORT, e.g. 0.0.0.0:6881"
            ))
        })?;
    }
    let metrics = match &args.metrics {
        Some(addr) => Some(addr.parse().map_err(|_| {
            bad_input(anyhow!(
                "--metrics {addr:?}: expected IP:PORT, e.g. 127.0.0.1:9300"
            ))
        })?),
        None => None,
    };
    let drain_timeout = humantime::parse_duration(&args.drain_timeout).map_err(|e| {
        bad_input(anyhow!(
            "--drain-timeout {:?}: expected a duration like 30s or 2m ({e})",
            args.drain_timeout
        ))
    })?;
    let origin = Origin::open(&args.origin).map_err(|e| match e {
        swarmpack::publish::OriginError::BadUrl { .. } => bad_input(e),
        e => runtime(e),
    })?;
    check_remote_angles(args, &angles)?;
    check_coordination(args, &origin)?;
    let keys = KeyDir::load(&args.keys).map_err(bad_input)?;
    if let Some(root) = origin.local_root() {
        keys.ensure_outside(root).map_err(bad_input)?;
    }
    if profile.ice_servers.iter().any(|s| s.is_turn()) && keys.turn_secret().is_none() {
        tracing::warn!(
            "the profile names TURN servers (credentials = \"rest\"), but {} has no {}: a key server \
             with these keys cannot mint TURN credentials (viewers behind symmetric NATs then \
             play from the origin only); `swarmpack keygen --out {}` adds one",
            keys.dir.display(),
            swarmpack::keys::key_dir::TURN_SECRET,
            keys.dir.display()
        );
    }
    let seed = profile.seed.enabled && !args.no_seed;
    let status_line =
        log_format == LogFormat::Text && std::io::IsTerminal::is_terminal(&std::io::stderr());
    Ok(Some(RunConfig {
        match_id,
        profile,
        angles,
        origin,
        spool: args.spool.clone(),
        drain_timeout,
        durability: match args.spool_durability {
            SpoolDurability::Fsync => swarmpack::publish::Durability::Fsync,
            SpoolDurability::Buffered => swarmpack::publish::Durability::Buffered,
        },
        seed,
        metrics,
        status_line,
        keys,
        duration_secs: args.duration,
        end_at,
        fast: args.fast,
        fragments,
        events: args.events.clone(),
        markers: args.markers.clone(),
        delivery: args.delivery.clone(),
        redundant: args.redundant,
        remote_angles: args.remote_angles.clone(),
    }))
}
