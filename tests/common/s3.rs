//! A real S3-compatible server on loopback (moto's server, installed by scripts/setup), with
//! one bucket, `matches`: readable anonymously (as behind a public bucket policy or CDN), and
//! versioned, so that every write of a key shows.

use super::{Guard, free_tcp_port, setup_tool, wait_for};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The access key the tests publish with (never a real one).
pub const SECRET_KEY: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

pub struct Moto {
    pub endpoint: String,
    _server: Guard,
}

impl Moto {
    /// Starts moto_server and makes the bucket `matches`.
    pub fn start() -> Moto {
        let port = free_tcp_port();
        let server = Guard(
            Command::new(setup_tool("MOTO_VERSION", "moto", "moto_server"))
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for("moto_server", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let moto = Moto {
            endpoint,
            _server: server,
        };
        // moto accepts an unsigned CreateBucket.
        moto.curl_put("", None, None, "cannot create the bucket");
        let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::matches/*"}]}"#;
        moto.curl_put(
            "?policy",
            Some("application/json"),
            Some(policy),
            "cannot set the bucket policy",
        );
        moto.curl_put(
            "?versioning",
            Some("application/xml"),
            Some(
                r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#,
            ),
            "cannot turn on versioning",
        );
        moto
    }

    /// Replaces the bucket policy: anonymous reads as `start` set them, and every PutObject
    /// of `keys` denied (moto enforces a Deny: 403), as a bucket policy or an object lock
    /// refuses one object.
    pub fn deny_put(&self, keys: &[String]) {
        let denied: Vec<String> = keys
            .iter()
            .map(|k| format!("\"arn:aws:s3:::matches/{k}\""))
            .collect();
        let policy = format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::matches/*"}},{{"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":[{}]}}]}}"#,
            denied.join(",")
        );
        self.curl_put(
            "?policy",
            Some("application/json"),
            Some(&policy),
            "cannot set the bucket policy",
        );
    }

    fn curl_put(&self, query: &str, content_type: Option<&str>, body: Option<&str>, what: &str) {
        let mut cmd = Command::new("curl");
        cmd.args([
            "-sf",
            "-X",
            "PUT",
            &format!("{}/matches{query}", self.endpoint),
        ]);
        if let Some(t) = content_type {
            cmd.args(["-H", &format!("Content-Type: {t}")]);
        }
        if let Some(b) = body {
            cmd.args(["--data-binary", b]);
        }
        let ok = cmd.stdout(Stdio::null()).status().unwrap().success();
        assert!(ok, "{what}");
    }

    /// The environment `run` reads its S3 endpoint and credentials from.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    }

    /// Every key under `prefix` in the bucket, with how many versions it has.
    pub fn key_versions(&self, prefix: &str) -> Vec<(String, usize)> {
        let out = Command::new("curl")
            .args([
                "-sf",
                &format!(
                    "{}/matches?versions&prefix={prefix}&max-keys=10000",
                    self.endpoint
                ),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "cannot list versions");
        let xml = String::from_utf8_lossy(&out.stdout);
        let mut counts: Vec<(String, usize)> = Vec::new();
        for version in xml.split("<Version>").skip(1) {
            let key = version
                .split("<Key>")
                .nth(1)
                .and_then(|r| r.split("</Key>").next())
                .unwrap_or_default()
                .to_string();
            match counts.iter_mut().find(|(k, _)| *k == key) {
                Some((_, n)) => *n += 1,
                None => counts.push((key, 1)),
            }
        }
        counts
    }

    /// The object at `key`, read anonymously over plain HTTP as a viewer or peer would.
    pub fn object(&self, key: &str) -> Vec<u8> {
        let got = Command::new("curl")
            .args(["-sf", &format!("{}/matches/{key}", self.endpoint)])
            .output()
            .unwrap();
        assert!(got.status.success(), "{key} is not in the bucket");
        got.stdout
    }

    /// Copies every key under `prefix` into `dir` (keeping the path below `prefix`).
    pub fn mirror(&self, prefix: &str, dir: &Path) {
        for (key, _) in self.key_versions(prefix) {
            let rel = key.strip_prefix(prefix).unwrap();
            let to = dir.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::write(&to, self.object(&key)).unwrap();
        }
    }
}
