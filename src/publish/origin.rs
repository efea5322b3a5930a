//! Origin backends. Every object is replaced whole: a player reading a playlist while it is
//! being written sees the old one or the new one, never half of either.

use std::io::Write;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("origin URL {url:?}: expected {expected}")]
    BadUrl { url: String, expected: &'static str },
    #[error("object path {0:?} is not a plain relative path")]
    BadPath(String),
    #[error("origin {root}: cannot write {path}: {source}")]
    Write {
        root: PathBuf,
        path: String,
        source: std::io::Error,
    },
}

/// Somewhere objects can be stored by relative path.
pub trait Origin: Send {
    /// Stores `bytes` at `path` (relative to the origin root), replacing any older object.
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), OriginError>;
    /// Where the origin is, for humans.
    fn describe(&self) -> String;
}

/// Opens the origin named by `--origin`. Only `file://` exists today.
pub fn open(url: &str) -> Result<Box<dyn Origin>, OriginError> {
    const EXPECTED: &str = "file:///absolute/dir or file://relative/dir";
    let Some(rest) = url.strip_prefix("file://") else {
        return Err(OriginError::BadUrl {
            url: url.to_string(),
            expected: EXPECTED,
        });
    };
    if rest.is_empty() {
        return Err(OriginError::BadUrl {
            url: url.to_string(),
            expected: EXPECTED,
        });
    }
    Ok(Box::new(LocalDir::new(PathBuf::from(rest))))
}

/// A local directory (the default origin, and what `serve` or nginx can expose).
pub struct LocalDir {
    root: PathBuf,
}

impl LocalDir {
    pub fn new(root: PathBuf) -> Self {
        LocalDir { root }
    }

    fn write_err(&self, path: &str, source: std::io::Error) -> OriginError {
        OriginError::Write {
            root: self.root.clone(),
            path: path.to_string(),
            source,
        }
    }
}

/// Accepts `a/b/c.ts`; refuses absolute paths, `..`, `.` and empty components.
pub fn checked_relative(path: &str) -> Result<&Path, OriginError> {
    let p = Path::new(path);
    let plain = !path.is_empty()
        && !path.contains("//")
        && p.components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(p)
    } else {
        Err(OriginError::BadPath(path.to_string()))
    }
}

impl Origin for LocalDir {
    fn put(&self, path: &str, bytes: &[u8]) -> Result<(), OriginError> {
        let rel = checked_relative(path)?;
        let dest = self.root.join(rel);
        let dir = dest.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(|e| self.write_err(path, e))?;
        // Write beside the target, then rename over it: atomic on POSIX file systems.
        let mut tmp = tempfile_in(dir).map_err(|e| self.write_err(path, e))?;
        tmp.1
            .write_all(bytes)
            .map_err(|e| self.write_err(path, e))?;
        tmp.1.sync_data().map_err(|e| self.write_err(path, e))?;
        std::fs::rename(&tmp.0, &dest).map_err(|e| {
            let _ = std::fs::remove_file(&tmp.0);
            self.write_err(path, e)
        })
    }

    fn describe(&self) -> String {
        format!("file://{}", self.root.display())
    }
}

/// A uniquely named hidden file in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = dir.join(format!(".swarmpack-{}-{n}.tmp", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&name)
        {
            Ok(f) => return Ok((name, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_creates_directories_and_replaces_whole() {
        let dir = tempfile::tempdir().unwrap();
        let o = LocalDir::new(dir.path().to_path_buf());
        o.put("m/cam1/360p/index.m3u8", b"one").unwrap();
        o.put("m/cam1/360p/index.m3u8", b"two").unwrap();
        let got = std::fs::read(dir.path().join("m/cam1/360p/index.m3u8")).unwrap();
        assert_eq!(got, b"two");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("m/cam1/360p"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn paths_cannot_escape_the_root() {
        for bad in ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a"] {
            assert!(checked_relative(bad).is_err(), "{bad}");
        }
        assert!(checked_relative("m/w/1.json").is_ok());
    }

    #[test]
    fn unwritable_root_names_root_and_path() {
        let o = LocalDir::new(PathBuf::from("/proc/swarmpack-cannot-write"));
        let e = o.put("m/x.ts", b"x").unwrap_err().to_string();
        assert!(
            e.starts_with("origin /proc/swarmpack-cannot-write: cannot write m/x.ts"),
            "{e}"
        );
    }

    #[test]
    fn open_accepts_only_file_urls_for_now() {
        assert!(open("file:///tmp/o").is_ok());
        assert!(open("file://./out").is_ok());
        let e = open("ftp://x").err().unwrap().to_string();
        assert!(e.contains("expected file:///absolute/dir"), "{e}");
    }
}
