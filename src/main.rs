//! swarmpack's binary edge: logging, signals, and exit codes (0 ok, 1 runtime, 2 bad input).

mod cli;

use clap::Parser;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn main() {
    let cli = cli::Cli::parse();
    init_logging(cli.log_format);
    let stop_requests = Arc::new(AtomicUsize::new(0));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let counter = stop_requests.clone();
        // SAFETY-free: signal-hook's register runs this closure in the handler; it only
        // does an atomic increment, which is async-signal-safe.
        let registered = unsafe {
            signal_hook::low_level::register(signal, move || {
                if counter.fetch_add(1, Ordering::SeqCst) >= 1 {
                    // Second signal: stop at once.
                    signal_hook::low_level::exit(130);
                }
            })
        };
        if let Err(e) = registered {
            tracing::warn!("cannot handle signal {signal}: {e}");
        }
    }
    match cli::dispatch(cli, stop_requests) {
        Ok(()) => {}
        Err(failure) => {
            tracing::error!("{:#}", failure.error);
            std::process::exit(failure.code);
        }
    }
}

/// swarmpack at info; the BitTorrent engine only for problems, plus its tracker errors
/// (which it reports at debug level).
const DEFAULT_LOG_FILTER: &str = "info,librqbit=warn,librqbit::storage=error,librqbit_core=warn,\
librqbit_dht=warn,librqbit_tracker_comms=debug";

fn init_logging(format: cli::LogFormat) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(move || LogLine { clear: tty })
        .with_target(false);
    let fmt = match format {
        cli::LogFormat::Json => fmt.json().boxed(),
        cli::LogFormat::Text => fmt.boxed(),
    };
    // The tracker counters see librqbit's tracker events whatever the log filter shows.
    let trackers = tracing_subscriber::filter::Targets::new()
        .with_target("librqbit_tracker_comms", tracing::Level::DEBUG);
    tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(swarmpack::seed::tracker::TrackerEvents.with_filter(trackers))
        .init();
}

/// One log line on stderr. On a terminal it first clears the status line that `run` redraws
/// there, so log lines and the status line do not run into each other.
struct LogLine {
    clear: bool,
}

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut err = std::io::stderr().lock();
        if std::mem::take(&mut self.clear) {
            err.write_all(b"\r\x1b[2K")?;
        }
        err.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}
