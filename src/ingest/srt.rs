//! SRT encryption for `srt://` feeds: `passphrase=` (or `passphrase-file=`) and `pbkeylen=` in
//! the URI, as SRT tools spell them. The passphrase never enters the pipeline description
//! (what `--print-pipeline` shows and GStreamer may log): it is set on each `srtsrc` the feed
//! creates, as it is created. It is wiped from memory when dropped, and errors show the URI
//! with it hidden.
//!
//! May call: `keys`.

use zeroize::Zeroizing;

/// An SRT passphrase (10 to 79 characters, as libsrt requires).
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(Zeroizing<String>);

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(hidden)")
    }
}

impl Passphrase {
    /// Checks the length libsrt accepts.
    pub fn new(text: &str) -> Result<Passphrase, String> {
        let n = text.chars().count();
        if !(10..=79).contains(&n) {
            return Err(format!(
                "the passphrase has {n} characters; SRT needs 10 to 79"
            ));
        }
        Ok(Passphrase(Zeroizing::new(text.to_string())))
    }

    /// Reads a passphrase file that only its owner may read (trailing newline dropped).
    pub fn from_file(path: &std::path::Path) -> Result<Passphrase, String> {
        crate::keys::key_dir::private_file(path).map_err(|e| e.to_string())?;
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?,
        );
        Passphrase::new(text.trim_end_matches(['\r', '\n']))
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

/// The encryption of one SRT feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encryption {
    pub passphrase: Passphrase,
    /// AES key length in bytes: 16, 24 or 32 (0: as the caller chooses, libsrt's default).
    pub pbkeylen: u8,
}

/// Parses one `pbkeylen=` value.
pub fn pbkeylen(v: &str) -> Result<u8, String> {
    match v {
        "16" => Ok(16),
        "24" => Ok(24),
        "32" => Ok(32),
        _ => Err(format!("pbkeylen={v} (use 16, 24 or 32)")),
    }
}

/// `uri` without its secrets, for messages and API answers: any `passphrase=` value (SRT),
/// a password in the URL, and an RTMP stream key (the last path segment of `rtmp(s)://` and
/// `rtmp-listen://`) are replaced.
pub fn redacted(uri: &str) -> String {
    let (head, query) = match uri.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (uri, None),
    };
    let mut head = head.to_string();
    if let Some((scheme, rest)) = head.split_once("://") {
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let authority = match authority.rsplit_once('@') {
            Some((user, host)) if user.contains(':') => {
                format!(
                    "{}:(hidden)@{host}",
                    user.split_once(':').map_or(user, |u| u.0)
                )
            }
            _ => authority.to_string(),
        };
        let path = match (scheme, path.rsplit_once('/')) {
            ("rtmp" | "rtmps" | "rtmp-listen", Some((app, _))) => format!("{app}/(hidden)"),
            _ => path.to_string(),
        };
        head = if path.is_empty() && !rest.contains('/') {
            format!("{scheme}://{authority}")
        } else {
            format!("{scheme}://{authority}/{path}")
        };
    }
    let Some(query) = query else {
        return head;
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some(("passphrase", _)) => "passphrase=(hidden)".to_string(),
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", parts.join("&"))
}

/// Sets the passphrase and key length on every `srtsrc` that appears in `pipeline` (the feed's
/// `fallbacksrc` makes a new one each time it restarts the source).
pub fn install(pipeline: &gst::Pipeline, encryption: &Encryption) {
    use gst::prelude::*;
    let encryption = encryption.clone();
    pipeline.connect_deep_element_added(move |_, _, element| {
        let is_srt = element.factory().is_some_and(|f| f.name() == "srtsrc");
        if is_srt {
            element.set_property("passphrase", encryption.passphrase.expose());
            element.set_property_from_str("pbkeylen", &encryption.pbkeylen.to_string());
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrases_have_the_length_srt_needs_and_never_show() {
        assert!(Passphrase::new("short").unwrap_err().contains("10 to 79"));
        assert!(Passphrase::new(&"x".repeat(80)).is_err());
        let p = Passphrase::new("venue-secret-42").unwrap();
        assert_eq!(format!("{p:?}"), "Passphrase(hidden)");
        assert_eq!(p.expose(), "venue-secret-42");
    }

    #[test]
    fn a_passphrase_file_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("srt.pass");
        std::fs::write(&path, "venue-secret-42\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(
            Passphrase::from_file(&path)
                .unwrap_err()
                .contains("chmod 600")
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            Passphrase::from_file(&path).unwrap(),
            Passphrase::new("venue-secret-42").unwrap()
        );
    }

    #[test]
    fn messages_hide_the_passphrase() {
        assert_eq!(
            redacted("srt://h:1?mode=listener&passphrase=venue-secret-42&pbkeylen=32"),
            "srt://h:1?mode=listener&passphrase=(hidden)&pbkeylen=32"
        );
        assert_eq!(redacted("srt://h:1"), "srt://h:1");
        assert_eq!(
            redacted("rtmp://venue:1935/live/sk-12345"),
            "rtmp://venue:1935/live/(hidden)"
        );
        assert_eq!(
            redacted("rtmp-listen://0.0.0.0:1935/live/sk-12345"),
            "rtmp-listen://0.0.0.0:1935/live/(hidden)"
        );
        assert_eq!(
            redacted("https://ingest:pw@cdn.example/live/"),
            "https://ingest:(hidden)@cdn.example/live/"
        );
        assert_eq!(redacted("s3://bucket/prefix"), "s3://bucket/prefix");
        assert_eq!(redacted("file:///srv/o"), "file:///srv/o");
        assert_eq!(redacted("test:"), "test:");
        assert_eq!(pbkeylen("24"), Ok(24));
        assert!(pbkeylen("20").unwrap_err().contains("16, 24 or 32"));
    }
}
