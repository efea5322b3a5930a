//! The command line: clap definitions, and the calls into the library. Errors are sorted
//! here into bad input (exit 2) and runtime failures (exit 1).
//!
//! The binary's edge: may call any room of the library (through `swarmpack::`).

mod control;
mod http;
mod run;
mod seed;
mod token;

use anyhow::anyhow;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use swarmpack::keys::{KeyDir, KeyError};
use swarmpack::publish::Origin;

/// A failure and the exit code it earns.
pub struct Failure {
    pub code: i32,
    pub error: anyhow::Error,
}

fn bad_input(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 2,
        error: error.into(),
    }
}

fn runtime(error: impl Into<anyhow::Error>) -> Failure {
    Failure {
        code: 1,
        error: error.into(),
    }
}

#[derive(Parser)]
#[command(
    name = "swarmpack",
    version,
    about = "Live multi-angle HLS for peer-to-peer tournament streaming",
    long_about = "swarmpack ingests the venue's camera feeds (SRT, RTMP, files or a built-in test \
source), encodes every angle into the profile's bitrate ladder with one shared master timecode, \
and packages keyframe-aligned MPEG-TS segments and HLS playlists onto an origin.\n\n\
Start with:  scripts/demo   (a two-angle demo match you can watch)\n\
Then:        swarmpack run --help",
    after_help = "Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad input.\n\
Logging: RUST_LOG=debug for more detail; GST_DEBUG=3 for GStreamer's own."
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The match on its origin, and the keys that sign what `archive` and `clip` publish there.
#[derive(clap::Args)]
pub(crate) struct OnOrigin {
    /// The match: its directory on the origin.
    #[arg(long = "match", value_name = "ID")]
    match_id: String,
    /// The match's origin, as given to `run` (file://, http(s)://, s3://). From the
    /// environment too, so credentials in it stay off the command line other users see.
    #[arg(
        long,
        value_name = "URL",
        env = "SWARMPACK_ORIGIN",
        hide_env_values = true
    )]
    origin: String,
    /// Match secrets from `swarmpack keygen` (the signing key signs what is published).
    #[arg(long, value_name = "DIR", default_value = "./keys")]
    keys: PathBuf,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one match: ingest every angle, encode the ladder, package and publish.
    #[command(
        long_about = "Run one match: ingest every angle, encode the profile's ladder, cut \
segments on the shared master timecode (seq = floor(UTC seconds / segment duration)), and \
publish segments and playlists to the origin.\n\n\
Feeds (--angle NAME=URI, one per camera angle; the first is the default angle):\n  \
test:                                built-in moving picture with angle name, timecode and a tone\n  \
file:/abs/path.mp4                   any file GStreamer decodes; real-time unless --fast\n  \
srt://HOST:PORT?mode=listener        wait for a venue encoder to call in (MPEG-TS over SRT)\n  \
srt://HOST:PORT?mode=caller          call a venue encoder; add &latency=MS (default 125)\n  \
SRT encryption, either mode:         &passphrase-file=/abs/path (0600) or &passphrase=P, and\n                                       \
&pbkeylen=16|24|32 (the passphrase is never printed)\n  \
rtmp://HOST[:PORT]/APP/STREAM        pull from an RTMP server (nginx-rtmp, MediaMTX)\n  \
rtmp-listen://ADDR:PORT/APP/STREAM   accept a push from OBS, vMix or ffmpeg (STREAM is the key;\n                                       \
 one publisher on air, handshake within 5 s, publish within\n                                       \
 10 s, 3 wrong keys from an address refuse it for 10 s+)\n\n\
Output on the origin: MATCH/master.m3u8 (angles as video alternatives), \
MATCH/ANGLE/master.m3u8, MATCH/ANGLE/RUNG/index.m3u8 and MATCH/ANGLE/RUNG/SEQ.ts.\n\n\
SRT and RTMP-pull feeds that stall or drop go on a slate (SIGNAL LOST, angle, timecode) at \
the same cadence, and back on air at the next segment boundary once they return. Every object goes through the spool (--spool) to the origin; each \
closed window is seeded over BitTorrent and announced to the profile's trackers.\n\n\
Stop with Ctrl-C or SIGTERM: the segment in progress is finished, the playlists get \
EXT-X-ENDLIST and the spool drains (up to --drain-timeout while the origin is down). A second \
signal stops at once. After a crash, run the same command again: the match continues.",
        after_help = "Examples:\n  \
swarmpack run --match final --profile profiles/demo.toml --angle main=test: --angle pov=test: --duration 30\n  \
swarmpack run --match final --profile profiles/esports-1080p.toml \\\n      \
--angle stage='srt://0.0.0.0:9000?mode=listener&passphrase-file=/etc/swarmpack/srt.pass' \\\n      \
--angle caster=rtmp://relay/live/caster \\\n      \
--origin file:///srv/origin"
    )]
    Run(run::RunArgs),
    /// Create the match secrets: content master secret, token secret, Ed25519 signing key.
    #[command(
        long_about = "Create the match secrets in DIR: content.secret (content keys are \
HKDF-derived from it per window), token.secret (signs viewer tokens) and signing.pk8 (Ed25519, \
signs manifests) and turn.secret (coturn's static-auth-secret: the key server mints per-viewer \
TURN credentials from it), each mode 0600, plus pubkey.pem (SPKI PEM, safe to publish). Existing \
keys are never overwritten; keys made before turn.secret existed gain one, and nothing else \
changes."
    )]
    Keygen {
        /// Directory for the keys (created if needed).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print a viewer token bound to a match, a session, a validity and the key periods it opens.
    #[command(
        long_about = "Print a viewer token: bound to one match and one viewer session, valid from \
now for --ttl (5 s of clock difference allowed), and opening only the key periods (windows) a \
viewer paid for. With --profile (the match's profile) those are the periods whose windows \
overlap the token's validity, widened back by the profile's DVR window so the viewer can seek \
back. With --periods FIRST-LAST they are given explicitly (pay-per-view, archive access). A \
key request for any other period gets 403.",
        after_help = "Examples:\n  swarmpack token --keys ./keys --match final --session viewer-42 --ttl 4h --profile profiles/esports-1080p.toml\n  \
swarmpack token --keys ./keys --match final --session vod-7 --ttl 2d --periods 179537040-179537400\n\
Players send it as `Authorization: Bearer TOKEN` or `?token=TOKEN` to the key server."
    )]
    Token {
        #[arg(long, value_name = "DIR", default_value = "./keys")]
        keys: PathBuf,
        #[arg(long = "match", value_name = "ID")]
        match_id: String,
        /// Viewer session ID the token is bound to.
        #[arg(long, value_name = "ID")]
        session: String,
        /// How long the token is valid: 90s, 30m, 4h, 2d.
        #[arg(long, value_name = "DURATION")]
        ttl: String,
        /// The match's profile: the token opens the periods of its validity and DVR window.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "periods",
            conflicts_with = "periods"
        )]
        profile: Option<PathBuf>,
        /// The key periods (window numbers) the token opens, inclusive: FIRST-LAST.
        #[arg(long, value_name = "FIRST-LAST")]
        periods: Option<String>,
    },
    /// Check a published match: signatures, hash chain, segment hashes, torrents.
    #[command(
        long_about = "Check a published match the way a careful peer would: the Ed25519 \
signature of live.json, p2p.json and every window manifest, the hash chain between windows \
(gaps, reordering, substitution), every segment's length and SHA-256 and its signed tag in the \
playlists, that every EXT-X-GAP entry is signed by the match key, and that each window \
torrent's infohashes, v1 piece hashes and v2 merkle roots match the data and its trackers are \
the signed magnet link's. PATH_OR_URL is the match directory on any origin run publishes to: local (out/final or \
file:///srv/origin/final), over HTTP (http://origin/final/) or on S3 (s3://bucket/prefix/final, \
credentials and endpoint from the AWS_* variables, as for run). Prints one line per problem; exits 0 only when everything checks."
    )]
    Verify {
        /// The match directory: a local path or an http(s):// URL.
        #[arg(value_name = "PATH_OR_URL")]
        target: String,
        /// The match's public key (pubkey.pem from keygen, or fetched from a trusted place).
        #[arg(long, value_name = "FILE")]
        pubkey: PathBuf,
        /// Check only this window (and its link to the previous one).
        #[arg(long, value_name = "N")]
        window: Option<u64>,
    },
    /// After the match: VOD playlists, one whole-match torrent and a signed whole-match manifest.
    #[command(
        long_about = "Archive a finished match on its origin: walk the signed hash chain from \
live.json back to the first window, check every segment against its window manifest, then \
publish MATCH/ANGLE/RUNG/vod.m3u8 (EXT-X-PLAYLIST-TYPE:VOD, EXT-X-ENDLIST, the same keys and \
IVs), MATCH/archive.torrent (hybrid v1+v2 of every segment, the match's web seed and trackers) \
and MATCH/archive.json with its Ed25519 signature archive.json.sig (every window's manifest \
hash, the playlists and the torrent's infohashes).",
        after_help = "Example:\n  swarmpack archive --match final --origin file:///srv/origin --keys ./keys"
    )]
    Archive {
        #[command(flatten)]
        on: OnOrigin,
    },
    /// Start, watch and stop matches over a JSON API, with signed webhooks.
    #[command(long_about = control::LONG_ABOUT, after_help = control::EXAMPLE)]
    Control(control::ControlArgs),
    /// Cut a highlight package from a match's published segments, without re-encoding.
    #[command(
        long_about = "Cut a highlight from a match on its origin, live or ended: the whole \
segments that overlap --from..--to (the master timecode, RFC 3339 UTC; the PDTs of the \
playlists), checked against the signed window manifests, and published under \
MATCH/clips/LABEL/: VOD playlists that name the match's own segments (same keys, same \
#EXT-X-SWARMPACK-SEGMENT signatures: viewers need a token as for the match), vod.m3u8 \
multivariant playlists, clip.torrent (hybrid v1+v2, the origin as web seed, so any client or \
`swarmpack seed` can seed it) and clip.json with its Ed25519 signature clip.json.sig.",
        after_help = "Example:\n  swarmpack clip --match final --from 2026-12-01T20:15:00Z --to 2026-12-01T20:15:30Z \\\n      --label ace-round-7 --origin file:///srv/origin --keys ./keys"
    )]
    Clip {
        #[command(flatten)]
        on: OnOrigin,
        /// Start of the highlight (RFC 3339, e.g. 2026-12-01T20:15:00Z).
        #[arg(long, value_name = "TIME")]
        from: String,
        /// End of the highlight (RFC 3339).
        #[arg(long, value_name = "TIME")]
        to: String,
        /// The highlight's name: its directory under MATCH/clips/ (a-z, 0-9, '-', '_').
        #[arg(long, value_name = "LABEL")]
        label: String,
    },
    /// Serve content keys to viewers with a valid token: GET /keys/{match}/{period}.
    #[command(
        long_about = "Serve content keys: GET /keys/{match}/{period} returns the 16-byte \
AES-128 key of that window to a request with a valid token for that match (Bearer header or \
?token=). Missing, forged or expired token: 401. Token for another match: 403. Malformed path: \
400/404. Keys are derived on request; nothing is stored. GET /healthz answers ok.\n\n\
GET /keys/{match}/ice answers the same tokens (any key period) with the ICE servers of \
--profile's [[ice_server]] tables, as {\"iceServers\":[...],\"ttl\":S}: STUN as written, TURN \
with credentials minted for the token's session from turn.secret (coturn's use-auth-secret: \
username {expiry}:{session}, password base64 HMAC-SHA1), valid for 6 hours at most and never \
beyond the token's expiry. Without --profile it answers 404, and players use the STUN servers \
of the match's p2p.json only.",
        after_help = "Example:\n  swarmpack keyserver --keys ./keys --listen 0.0.0.0:8081 --profile profiles/esports-1080p.toml\n\
coturn beside it: turnserver --use-auth-secret --static-auth-secret=\"$(cat keys/turn.secret)\" --realm swarm.example"
    )]
    Keyserver {
        /// Key directory from `swarmpack keygen`: content keys and tokens come from its secrets.
        #[arg(long, value_name = "DIR", default_value = "./keys")]
        keys: PathBuf,
        /// Address to listen on, e.g. 127.0.0.1:8081.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// The match profile whose [[ice_server]] tables GET /keys/{match}/ice answers with.
        #[arg(long, value_name = "FILE")]
        profile: Option<PathBuf>,
    },
    /// Collect players' CMCD v2 reports on its own: POST /cmcd/{match}, GET /metrics.
    #[command(
        long_about = "The audience collector on its own, for audiences larger than the key \
server's collector should carry (keyserver and serve have the same one). Players post CMCD v2 \
reports (CTA-5004-B event mode, application/cmcd: one Structured Field Dictionary per line) to \
POST /cmcd/{match}: 204 taken; 400 malformed (the line and key named) or a report of another \
match; 404 a match not on --origin; 413 a body over 64 KiB or 256 lines; 429 over a session's \
rate or the rate of new sessions. No address or token is kept: sessions are the players' random \
sid, forgotten 45 s after their last report, and at most 100,000 are held (the one silent \
longest goes first, counted). GET /metrics shows the figures per match, angle and rung in the \
Prometheus text format (README: \"Watching the audience\"): counters and histograms, which add \
up across several collectors behind a load balancer.",
        after_help = "Example:\n  swarmpack collect --listen 0.0.0.0:8082 --metrics 127.0.0.1:9102 --origin ./out\n\
and in the profile: [qoe] collector = \"https://collect.example/cmcd\""
    )]
    Collect {
        /// Address the players post to, e.g. 0.0.0.0:8082.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Serve GET /metrics on this address instead (an operator's network, not the fans').
        #[arg(long, value_name = "ADDR")]
        metrics: Option<String>,
        /// Take reports only for the matches of this origin directory (without it: any match
        /// name, the first 256).
        #[arg(long, value_name = "DIR")]
        origin: Option<PathBuf>,
    },
    /// Follow a match on its origin, verify every window, and seed it (an edge seeder).
    #[command(long_about = seed::LONG_ABOUT, after_help = seed::EXAMPLE)]
    Seed(seed::SeedArgs),
    /// Serve a local origin directory, the key server, the operator preview and the fans' player.
    #[command(
        long_about = "Serve a match day from one process on one address:\n\n  \
/                        the operator preview page (?match=ID, ?token=TOKEN)\n  \
/watch?match=ID          the fans' player: hls.js with p2p-media-loader, segments shared between\n                           \
browsers over WebRTC, each checked against its signed tag before it plays\n  \
/.player/player.js       that player as a module other sites mount (README: embedding); it and the\n                           \
origin's files answer any origin (CORS)\n  \
/keys/{match}/{period}   the key server (and /healthz)\n  \
/keys/{match}/ice        the ICE servers of the match's signed p2p.json for a viewer token, TURN\n                           \
with credentials minted from turn.secret (see keyserver --help)\n  \
/cmcd/{match}            players' CMCD v2 reports (POST); /metrics: the audience's figures\n  \
/dev-token?match=ID      a viewer token valid for an hour; only with --dev-tokens\n  \
anything else            the origin directory, with byte ranges (the torrents' BEP 19 web seed)\n\n\
The preview page plays every angle, has a large player whose angle switch keeps the master timecode, and shows the rung in use, the master timecode, and the newest window with its Ed25519 signatures checked in the browser, its infohash and magnet link. With --spool (the run's spool directory on the same machine) it also shows how many objects wait for the origin. With --dev-tokens the page fetches its own viewer token; anyone who reaches the server could then watch, so it is off by default. Open the page on localhost or over https: browsers verify signatures only in a secure context.\n\n\
The fans' player follows the match's delivery policy, the [delivery] table of its profile, signed into p2p.json (README: \"Latency against offload\"). By default it sits 3 segments behind live (about 7 s with 2 s segments); one viewer in each group of peers fetches a new segment over HTTP as soon as it is published and the others take it from peers; the next half segment after the playhead comes over HTTP when no peer has it. Measured in the network lab (docs/PERFORMANCE.md): about 60% of bytes from peers with 6 viewers, 7.6 s behind live.\n\n\
Players report what fans experience to POST /cmcd/{match} (CMCD v2 event mode, README: \"Watching the audience\"); GET /metrics shows the audience's figures in the Prometheus text format.\n\n\
Example, beside `swarmpack run ... --origin file://$PWD/out --spool ./spool`:\n\n  \
swarmpack serve --origin ./out --keys ./keys --listen 127.0.0.1:8080 --spool ./spool --dev-tokens\n\n\
then open http://127.0.0.1:8080/?match=ID"
    )]
    Serve {
        /// The origin directory `run` publishes to (the path of its file:// origin).
        #[arg(long, value_name = "DIR")]
        origin: PathBuf,
        /// Key directory from `swarmpack keygen`: content keys and tokens come from its secrets.
        #[arg(long, value_name = "DIR", default_value = "./keys")]
        keys: PathBuf,
        /// Address to listen on, e.g. 127.0.0.1:8080.
        #[arg(long, value_name = "ADDR")]
        listen: String,
        /// Turn on GET /dev-token (development and demos only). Its tokens are signed with a
        /// development secret: they open keys on this server only, never on `keyserver`.
        #[arg(long)]
        dev_tokens: bool,
        /// Allow --dev-tokens on an address other than loopback (anyone who reaches it can watch).
        #[arg(long, requires = "dev_tokens")]
        public_dev_tokens: bool,
        /// The spool directory of the `run` on this machine (its --spool): the preview page
        /// then shows how many objects wait for the origin.
        #[arg(long, value_name = "DIR")]
        spool: Option<PathBuf>,
    },
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli, stop_requests: Arc<AtomicUsize>) -> Result<(), Failure> {
    match cli.command {
        Command::Run(args) => run::run(args, cli.log_format, stop_requests),
        Command::Keygen { out } => {
            if out.join(swarmpack::keys::key_dir::CONTENT_SECRET).exists()
                && KeyDir::add_turn_secret(&out).map_err(bad_input)?
            {
                tracing::info!(
                    "added {} to the keys in {} (the other keys are kept); coturn's static-auth-secret is its text",
                    swarmpack::keys::key_dir::TURN_SECRET,
                    out.display()
                );
                return Ok(());
            }
            let keys = KeyDir::generate(&out).map_err(|e| match e {
                KeyError::Exists(_) => bad_input(e),
                e => runtime(e),
            })?;
            tracing::info!(
                "keys written to {}; publish only pubkey.pem",
                keys.dir.display()
            );
            Ok(())
        }
        Command::Token {
            keys,
            match_id,
            session,
            ttl,
            profile,
            periods,
        } => token::token(
            &keys,
            match_id,
            session,
            &ttl,
            profile.as_deref(),
            periods.as_deref(),
        ),
        Command::Seed(args) => seed::seed(args, stop_requests),
        Command::Control(args) => control::control(args, stop_requests),
        Command::Keyserver {
            keys,
            listen,
            profile,
        } => http::keyserver(&keys, &listen, profile.as_deref(), stop_requests),
        Command::Collect {
            listen,
            metrics,
            origin,
        } => http::collect(
            &listen,
            metrics.as_deref(),
            origin.as_deref(),
            stop_requests,
        ),
        Command::Serve {
            origin,
            keys,
            listen,
            dev_tokens,
            public_dev_tokens,
            spool,
        } => http::serve(
            &origin,
            &keys,
            &listen,
            dev_tokens,
            public_dev_tokens,
            spool.as_deref(),
            stop_requests,
        ),
        Command::Archive { on } => archive(&on, None),
        Command::Clip {
            on,
            from,
            to,
            label,
        } => archive(
            &on,
            Some(swarmpack::archive::ClipRequest { label, from, to }),
        ),
        Command::Verify {
            target,
            pubkey,
            window,
        } => {
            use swarmpack::verify;
            let key = verify::read_pubkey(&pubkey).map_err(bad_input)?;
            let source = verify::Source::parse(&target).map_err(runtime)?;
            let report = verify::verify(&source, &key, window).map_err(runtime)?;
            for p in &report.problems {
                println!("{p}");
            }
            if report.problems.is_empty() {
                let gaps = match report.gaps {
                    0 => String::new(),
                    n => format!(
                        "; {n} signed gap(s) (an angle's machine stopped, or a seq was lost) name no bytes"
                    ),
                };
                tracing::info!(
                    "{target}: {} window(s), {} segment(s), {} segment tag(s): all verified{gaps}",
                    report.windows,
                    report.segments,
                    report.tags
                );
                Ok(())
            } else {
                Err(runtime(anyhow!(
                    "{target}: {} problem(s) found",
                    report.problems.len()
                )))
            }
        }
    }
}

/// `archive`, or with `clip` a highlight package.
fn archive(on: &OnOrigin, clip: Option<swarmpack::archive::ClipRequest>) -> Result<(), Failure> {
    let (match_id, origin, keys) = (on.match_id.as_str(), on.origin.as_str(), &on.keys);
    swarmpack::match_id::MatchId::parse(match_id)
        .map_err(|e| bad_input(anyhow!("--match {match_id:?}: {e}")))?;
    let origin = Origin::open(origin).map_err(|e| match e {
        swarmpack::publish::OriginError::BadUrl { .. } => bad_input(e),
        e => runtime(e),
    })?;
    let keys = KeyDir::load(keys).map_err(bad_input)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(runtime)?;
    let report = match &clip {
        None => rt.block_on(swarmpack::archive::run(&origin, match_id, &keys)),
        Some(request) => rt.block_on(swarmpack::archive::clip(&origin, match_id, &keys, request)),
    }
    .map_err(|e| match e {
        swarmpack::archive::ArchiveRunError::Clip { .. } => bad_input(e),
        e => runtime(e),
    })?;
    let what = match &clip {
        None => format!("archived match {match_id}"),
        Some(c) => format!("highlight {match_id}/clips/{}/", c.label),
    };
    tracing::info!(
        "{what} on {}: {} window(s), {} segment(s), {} object(s) published",
        origin.describe(),
        report.windows,
        report.segments,
        report.objects
    );
    Ok(())
}
