//! One run per match and spool: the run lock.
//!
//! May call: `private_fs`.

use super::RunError;
use std::path::Path;

/// Holds `{spool}/{match}/run.lock` (an exclusive `flock`, released when the process ends,
/// however it ends) and writes this process's pid into it.
pub(super) fn lock_match(work_dir: &Path, match_id: &str) -> Result<std::fs::File, RunError> {
    use std::io::{Read, Seek, Write};
    let lock = work_dir.join("run.lock");
    let io = |source| RunError::Lock {
        dir: work_dir.to_path_buf(),
        lock: lock.clone(),
        source,
    };
    // The spool holds the match's encrypted segments and its state: its owner's alone.
    crate::private_fs::private_dir(work_dir).map_err(io)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(RunError::AlreadyRunning {
                match_id: match_id.to_string(),
                pid: pid.trim().chars().take(20).collect(),
                lock,
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
    }
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| write!(file, "{}", std::process::id()))
        .map_err(io)?;
    Ok(file)
}
