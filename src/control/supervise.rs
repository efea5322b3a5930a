//! The runs themselves: starting `swarmpack run` for a match as a process of its own (its own
//! process group, so neither a crash nor a Ctrl-C of the controller reaches it), telling
//! whether it is alive, and stopping it.
//!
//! Whether a run is alive is read from its spool's run lock (`{spool}/{match}/run.lock`, an
//! exclusive `flock` that `run` holds for its whole life and the kernel drops when it dies),
//! so a restarted controller tells a live run from a dead one without trusting an old pid.
//!
//! May call: `request`, `private_fs`, `profile`.

use super::request::MatchSpec;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// What the controller needs to start runs.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The swarmpack binary.
    pub exe: PathBuf,
    pub keys: PathBuf,
    /// The runs' `--spool`.
    pub spool: PathBuf,
}

/// What a child of the controller gets from its environment: the match's origin (its URL may
/// hold credentials, which must not be on a command line every local user can read in `ps`;
/// a process's environment is its owner's alone), and none of the controller's own secrets.
fn private_env(cmd: &mut Command, spec: &MatchSpec) {
    for secret in [
        "SWARMPACK_API_TOKEN",
        "SWARMPACK_WEBHOOK_SECRET",
        "SWARMPACK_WEBHOOK_URL",
        "SWARMPACK_ANGLES",
    ] {
        cmd.env_remove(secret);
    }
    cmd.env("SWARMPACK_ORIGIN", &spec.origin);
}

impl Launcher {
    /// The `run` command for `spec`, its events going to `events` and its stderr to `log`.
    pub fn command(&self, spec: &MatchSpec, events: &Path) -> Command {
        let mut cmd = Command::new(&self.exe);
        private_env(&mut cmd, spec);
        // The angles too (SRT passphrases, RTMP stream keys): SWARMPACK_ANGLES, one per line.
        let angles: Vec<String> = spec
            .angles
            .iter()
            .map(|(name, uri)| format!("{name}={uri}"))
            .collect();
        cmd.env("SWARMPACK_ANGLES", angles.join("\n"));
        cmd.arg("run")
            .args(["--match", &spec.match_id])
            .arg("--profile")
            .arg(&spec.profile_file)
            .arg("--keys")
            .arg(&self.keys)
            .arg("--spool")
            .arg(&self.spool)
            .arg("--events")
            .arg(events)
            .arg("--markers")
            .arg(events.with_file_name("markers.jsonl"))
            .arg("--delivery")
            .arg(events.with_file_name("delivery.jsonl"))
            .args(["--log-format", "json"]);
        // Several matches on one machine: each seeder takes a free port.
        if let Ok(profile) = crate::profile::Profile::load(&spec.profile_file) {
            cmd.args([
                "--seed-listen",
                &std::net::SocketAddr::new(profile.seed.listen.ip(), 0).to_string(),
            ]);
        }
        if let Some(d) = spec.duration {
            cmd.args(["--duration", &d.to_string()]);
        }
        cmd
    }

    /// Starts a run of `spec` in `dir` (the match's state directory), with `extra` arguments.
    pub fn start(&self, spec: &MatchSpec, dir: &Path, extra: &[String]) -> std::io::Result<Child> {
        crate::private_fs::private_dir(dir)?;
        let log = crate::private_fs::private_append(&dir.join("run.log"))?;
        // The run writes these; made private before it starts, whatever they were.
        for f in ["events.jsonl", "markers.jsonl"] {
            crate::private_fs::private_append(&dir.join(f))?;
        }
        self.command(spec, &dir.join("events.jsonl"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
    }

    /// Starts `swarmpack clip` (with `clip`: label, from, to) or `swarmpack archive` for
    /// `spec`'s match, as the job `name`. Its log goes to `jobs.log` in `dir`, and its exit
    /// code, once it ends, to `jobs/{name}.exit` there: a controller that restarted meanwhile
    /// still learns how it went.
    pub fn start_job(
        &self,
        spec: &MatchSpec,
        dir: &Path,
        name: &str,
        clip: Option<(&str, &str, &str)>,
    ) -> std::io::Result<Child> {
        let log = crate::private_fs::private_append(&dir.join("jobs.log"))?;
        let exit = job_exit_file(dir, name);
        crate::private_fs::private_dir(exit.parent().unwrap_or(dir))?;
        let _ = std::fs::remove_file(&exit);
        // sh runs swarmpack ($0 and its arguments, never parsed by the shell) and records
        // its exit code.
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(r#""$0" "$@"; echo $? > "$SWARMPACK_JOB_EXIT""#)
            .arg(&self.exe)
            .env("SWARMPACK_JOB_EXIT", &exit);
        match clip {
            Some((label, from, to)) => cmd
                .arg("clip")
                .args(["--label", label, "--from", from, "--to", to]),
            None => cmd.arg("archive"),
        };
        private_env(&mut cmd, spec);
        cmd.args(["--match", &spec.match_id])
            .arg("--keys")
            .arg(&self.keys)
            .args(["--log-format", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .process_group(0)
            .spawn()
    }

    /// Whether a run of `match_id` holds its spool's run lock, and its pid.
    pub fn running(&self, match_id: &str) -> Option<u32> {
        let lock = self.spool.join(match_id).join("run.lock");
        let file = std::fs::File::open(&lock).ok()?;
        match file.try_lock() {
            Ok(()) => None,
            Err(std::fs::TryLockError::WouldBlock) => std::fs::read_to_string(&lock)
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .or(Some(0)),
            Err(std::fs::TryLockError::Error(e)) => {
                tracing::warn!("{}: {e}", lock.display());
                None
            }
        }
    }
}

/// Where job `name`'s exit code is written, in the match's state directory `dir`.
pub fn job_exit_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("jobs").join(format!("{name}.exit"))
}

/// Job `name`'s exit code, once it has ended.
pub fn job_exit(dir: &Path, name: &str) -> Option<i32> {
    std::fs::read_to_string(job_exit_file(dir, name))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Asks process `pid` to stop cleanly (SIGTERM: `run` ends at the next boundary).
pub fn terminate(pid: u32) {
    if pid > 1 {
        // SAFETY: kill only sends a signal.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGTERM);
        }
    }
}

/// Makes run `pid` leave the match without ending it: a second SIGTERM stops `run` at once,
/// without ENDLIST or a last window, what it packaged still going out. For a redundant run
/// whose match another node now runs.
pub fn leave(pid: u32) {
    terminate(pid);
    // Two signals that arrive together count as one.
    std::thread::sleep(std::time::Duration::from_millis(200));
    terminate(pid);
}

/// The last error a run logged (its stderr is JSON lines), for `GET` and `match.failed`.
pub fn last_error(log: &Path) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let tail = &text[text.len().saturating_sub(64 * 1024)..];
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["level"] == "ERROR").then(|| v["fields"]["message"].as_str().map(str::to_string))?
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 25, item 9: secrets reach the run by its environment (its owner's alone), not
    /// its command line (every local user's, in `ps`); the controller's own secrets not at all.
    #[test]
    fn the_run_command_carries_the_request_and_no_secret_on_its_command_line() {
        let spec = MatchSpec {
            match_id: "final".into(),
            profile: "demo".into(),
            profile_file: Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/demo.toml"),
            angles: vec![
                (
                    "main".into(),
                    "srt://venue:9000?mode=caller&passphrase=hunter2hunter2".into(),
                ),
                ("pov".into(), "rtmp://venue/live/streamkey-secret".into()),
            ],
            origin: "https://ingest:origin-password@cdn.example/live/".into(),
            duration: Some(30.0),
            public_url: "http://127.0.0.1:8080/".into(),
        };
        let l = Launcher {
            exe: "/bin/swarmpack".into(),
            keys: "/k".into(),
            spool: "/s".into(),
        };
        let env = |cmd: &Command| -> Vec<(String, Option<String>)> {
            cmd.get_envs()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.map(|v| v.to_string_lossy().into_owned()),
                    )
                })
                .collect()
        };
        let cmd = l.command(&spec, Path::new("/e.jsonl"));
        let joined = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        for part in [
            "run --match final --profile",
            "--keys /k --spool /s --events /e.jsonl --markers /markers.jsonl --delivery /delivery.jsonl",
            "--seed-listen 0.0.0.0:0",
            "--duration 30",
        ] {
            assert!(joined.contains(part), "{joined}");
        }
        for secret in [
            "origin-password",
            "hunter2",
            "streamkey",
            "--origin",
            "--angle",
        ] {
            assert!(
                !joined.contains(secret),
                "{secret} on the command line: {joined}"
            );
        }
        let vars = env(&cmd);
        let get = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("SWARMPACK_ORIGIN"), Some(Some(spec.origin.clone())));
        assert_eq!(
            get("SWARMPACK_ANGLES"),
            Some(Some(format!(
                "main={}\npov={}",
                spec.angles[0].1, spec.angles[1].1
            )))
        );
        for removed in [
            "SWARMPACK_API_TOKEN",
            "SWARMPACK_WEBHOOK_SECRET",
            "SWARMPACK_WEBHOOK_URL",
        ] {
            assert_eq!(get(removed), Some(None), "{removed} is inherited");
        }
    }

    #[test]
    fn a_held_run_lock_means_running() {
        let dir = tempfile::tempdir().unwrap();
        let l = Launcher {
            exe: "/bin/true".into(),
            keys: "/k".into(),
            spool: dir.path().into(),
        };
        assert_eq!(l.running("final"), None);
        std::fs::create_dir_all(dir.path().join("final")).unwrap();
        let lock = dir.path().join("final/run.lock");
        std::fs::write(&lock, "4242").unwrap();
        assert_eq!(l.running("final"), None, "a lock file nobody holds");
        let held = std::fs::File::open(&lock).unwrap();
        held.lock().unwrap();
        assert_eq!(l.running("final"), Some(4242));
        drop(held);
        assert_eq!(l.running("final"), None);
    }

    #[test]
    fn the_last_error_comes_from_the_json_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.log");
        std::fs::write(
            &log,
            concat!(
                r#"{"level":"ERROR","fields":{"message":"old"}}"#,
                "\n",
                r#"{"level":"ERROR","fields":{"message":"angle main: feed failed"}}"#,
                "\n",
                r#"{"level":"INFO","fields":{"message":"bye"}}"#,
                "\nnot json\n"
            ),
        )
        .unwrap();
        assert_eq!(last_error(&log).as_deref(), Some("angle main: feed failed"));
    }
}
