//! Origin backends, all behind `object_store`'s `ObjectStore` trait: a local directory
//! (`file://`), an HTTP/WebDAV PUT endpoint (`http(s)://`, as nginx `dav_methods PUT` and CDN
//! ingest points accept) and S3-compatible storage (`s3://bucket/prefix`, with endpoint,
//! region and credentials from the usual `AWS_*` environment variables).
//!
//! Every object is replaced whole: `file://` writes beside the target and renames; HTTP and
//! S3 PUTs replace atomically on the server. Retries are the publisher's job, so the stores
//! are built without their own.
//!
//! Objects that never change once published (segments, window manifests and torrents) go up
//! with [`Origin::create`]: create-if-absent where the origin can refuse an overwrite (S3's
//! `If-None-Match: *`, answered 412 when the key exists; a local directory's exclusive
//! create), so a second run on the same match never replaces what the first published.
//! WebDAV has no such PUT: there it is a plain PUT.
//!
//! May call: `hex`, `layout`.

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ClientConfigKey, ClientOptions, ObjectStore, PutMode, PutOptions, RetryConfig};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    #[error("--origin {url:?}: expected {expected}")]
    BadUrl { url: String, expected: String },
    #[error("object path {0:?} is not a plain relative path")]
    BadPath(String),
    #[error("origin {origin}: cannot create the directory: {source}")]
    Unwritable {
        origin: String,
        source: std::io::Error,
    },
    #[error("origin {origin}: {message}")]
    Setup { origin: String, message: String },
    #[error("origin {origin}: GET {path}: {message}")]
    Get {
        origin: String,
        path: String,
        message: String,
        /// The origin will not serve this one object (a 4xx but 401, 408 and 429; a
        /// permission refused), as opposed to being unreachable.
        withheld: bool,
    },
    #[error("origin {origin}: PUT {path}: {message}")]
    Put {
        origin: String,
        path: String,
        message: String,
        /// The origin refused this one object (a 4xx, or a permanent local error), as
        /// opposed to being unreachable or failing as a whole.
        refused: bool,
    },
    /// What the origin holds at `path` is no object swarmpack reads: not a regular file on
    /// `file://` (a directory, a FIFO, a device), or larger than any object of its kind.
    #[error("origin {origin}: {path}: {found}; expected {expected}")]
    NotAnObject {
        origin: String,
        path: String,
        found: String,
        expected: String,
    },
}

impl OriginError {
    /// Whether the origin refused this one object (see [`refuses_object`]), so retrying the
    /// origin will not help it and nothing else should wait for it.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            OriginError::Put { refused: true, .. } | OriginError::NotAnObject { .. }
        )
    }

    /// Whether the origin answered a read by refusing to serve the object (403, 410, …):
    /// for a reader that checks what is there, the object is missing.
    pub fn is_withheld(&self) -> bool {
        matches!(self, OriginError::Get { withheld: true, .. })
    }
}

/// Whether a failed upload is the origin refusing this one object rather than the origin
/// being down. Refusals: HTTP 4xx other than 401 (credentials), 408 (timeout) and 429
/// (throttling), and local errors that no retry fixes (a directory in the way, no
/// permission, a bad name). Transport errors, timeouts and 5xx are the origin being down.
pub fn refuses_object(e: &object_store::Error) -> bool {
    use object_store::Error as E;
    match e {
        E::PermissionDenied { .. }
        | E::NotFound { .. }
        | E::AlreadyExists { .. }
        | E::Precondition { .. }
        | E::InvalidPath { .. }
        | E::NotSupported { .. } => true,
        E::Unauthenticated { .. } => false,
        _ => {
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
            while let Some(s) = source {
                if let Some(io) = s.downcast_ref::<std::io::Error>() {
                    use std::io::ErrorKind as K;
                    if matches!(
                        io.kind(),
                        K::IsADirectory
                            | K::NotADirectory
                            | K::PermissionDenied
                            | K::InvalidInput
                            | K::InvalidFilename
                            | K::ReadOnlyFilesystem
                    ) {
                        return true;
                    }
                }
                if let Some(status) = http_status(&s.to_string())
                    && (400..500).contains(&status)
                    && ![401, 408, 429].contains(&status)
                {
                    return true;
                }
                source = s.source();
            }
            false
        }
    }
}

/// The status in object_store's HTTP error text ("… non-2xx status code: 413 Payload Too
/// Large …"); its error type is not public, so the text is all there is to read.
fn http_status(text: &str) -> Option<u16> {
    let rest = text.split("status code: ").nth(1)?;
    rest.get(..3)?.parse().ok()
}

const EXPECTED: &str = "file:///absolute/dir, file://relative/dir, http(s)://host[:port]/path/ \
                        (WebDAV PUT) or s3://bucket[/prefix]";
/// How long one PUT may take before it counts as failed.
const PUT_TIMEOUT: &str = "15s";
const CONNECT_TIMEOUT: &str = "3s";
/// The most a document read from the origin may hold (playlists, manifests, torrents,
/// `live.json`): a window manifest of 10 angles × 8 rungs × 10 segments is about 400 KiB.
/// Segments are read at their signed length instead ([`Origin::get_limited`]).
pub const MAX_DOCUMENT: u64 = 8 << 20;

/// Where the match is published.
#[derive(Clone, Debug)]
pub struct Origin {
    store: Arc<dyn ObjectStore>,
    /// The URL without credentials, for logs.
    describe: String,
    /// A password from the URL, scrubbed from every message.
    secret: Option<String>,
    /// The directory of a `file://` origin.
    root: Option<std::path::PathBuf>,
    /// Whether [`Origin::create`] is exclusive (S3 `If-None-Match: *`, `file://`); WebDAV
    /// has no create-if-absent.
    exclusive: bool,
}

impl Origin {
    /// Opens the origin named by `--origin`.
    pub fn open(url: &str) -> Result<Origin, OriginError> {
        let bad = || OriginError::BadUrl {
            url: redact_url(url),
            expected: EXPECTED.to_string(),
        };
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        match scheme {
            "file" if !rest.is_empty() => Origin::local(Path::new(rest)),
            "http" | "https" => {
                let parsed = url::Url::parse(url).map_err(|_| bad())?;
                if parsed.host_str().is_none_or(str::is_empty) {
                    return Err(bad());
                }
                let describe = redact_url(url);
                let secret = parsed.password().map(str::to_string);
                let options = ClientOptions::new()
                    .with_allow_http(true)
                    .with_config(ClientConfigKey::Timeout, PUT_TIMEOUT)
                    .with_config(ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT);
                // object_store appends "/{path}" itself.
                let store = HttpBuilder::new()
                    .with_url(url.trim_end_matches('/'))
                    .with_client_options(options)
                    .with_retry(no_retries())
                    .build()
                    .map_err(|e| OriginError::Setup {
                        origin: describe.clone(),
                        message: scrub(&e.to_string(), secret.as_deref()),
                    })?;
                Ok(Origin {
                    store: Arc::new(store),
                    describe,
                    secret,
                    root: None,
                    exclusive: false,
                })
            }
            "s3" => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(bad());
                }
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_retry(no_retries())
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
                        PUT_TIMEOUT,
                    )
                    .with_config(
                        AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
                        CONNECT_TIMEOUT,
                    );
                // A plain-HTTP endpoint given on purpose (MinIO, a test server) is allowed.
                let endpoint = std::env::var("AWS_ENDPOINT_URL")
                    .or_else(|_| std::env::var("AWS_ENDPOINT"))
                    .unwrap_or_default();
                if endpoint.starts_with("http://") && std::env::var("AWS_ALLOW_HTTP").is_err() {
                    builder = builder.with_allow_http(true);
                }
                let describe = url.to_string();
                let s3 = builder.build().map_err(|e| OriginError::Setup {
                    origin: describe.clone(),
                    message: e.to_string(),
                })?;
                let prefix = prefix.trim_matches('/');
                let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix))
                };
                Ok(Origin {
                    store,
                    describe,
                    secret: None,
                    root: None,
                    exclusive: true,
                })
            }
            _ => Err(bad()),
        }
    }

    /// A local directory origin (created if missing).
    pub fn local(root: &Path) -> Result<Origin, OriginError> {
        let describe = format!("file://{}", root.display());
        std::fs::create_dir_all(root).map_err(|source| OriginError::Unwritable {
            origin: describe.clone(),
            source,
        })?;
        let store = LocalFileSystem::new_with_prefix(root).map_err(|e| OriginError::Setup {
            origin: describe.clone(),
            message: e.to_string(),
        })?;
        Ok(Origin {
            store: Arc::new(store),
            describe,
            secret: None,
            root: Some(root.to_path_buf()),
            exclusive: true,
        })
    }

    /// The directory of a `file://` origin; None for remote origins.
    pub fn local_root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    /// Whether a create can lose to an object already there (S3, `file://`): what redundant
    /// runs coordinate through. WebDAV cannot: its PUT always replaces.
    pub fn creates_exclusively(&self) -> bool {
        self.exclusive
    }

    /// Stores `bytes` at `path` (relative to the origin root), replacing any older object.
    pub async fn put(&self, path: &str, bytes: Bytes) -> Result<(), OriginError> {
        checked_relative(path)?;
        let location = object_store::path::Path::parse(path)
            .map_err(|_| OriginError::BadPath(path.to_string()))?;
        self.store
            .put(&location, bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| OriginError::Put {
                origin: self.describe.clone(),
                path: path.to_string(),
                message: self.scrub(&error_chain(&e)),
                refused: refuses_object(&e),
            })
    }

    /// Stores `bytes` at `path` only if the origin holds nothing there yet. When it already
    /// holds something, that stays: [`Created::Same`] if it is these very bytes (a retry
    /// whose first answer was lost, or another run that made the same), else
    /// [`Created::Other`] with what it holds. An origin that cannot create exclusively
    /// (WebDAV) gets a plain PUT.
    pub async fn create(&self, path: &str, bytes: Bytes) -> Result<Created, OriginError> {
        Ok(match self.create_or_read(path, bytes.clone()).await? {
            None => Created::New,
            Some(held) if held == bytes => Created::Same,
            Some(held) => Created::Other {
                len: held.len() as u64,
                sha256: crate::hex::sha256(&held),
            },
        })
    }

    /// [`Origin::create`], but what the origin already holds comes back whole: `None` when
    /// `bytes` were stored, else the held object (which stays).
    pub async fn create_or_read(
        &self,
        path: &str,
        bytes: Bytes,
    ) -> Result<Option<Vec<u8>>, OriginError> {
        checked_relative(path)?;
        let location = object_store::path::Path::parse(path)
            .map_err(|_| OriginError::BadPath(path.to_string()))?;
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&location, bytes.clone().into(), options)
            .await
        {
            Ok(_) => Ok(None),
            Err(object_store::Error::AlreadyExists { .. }) => {
                let limit = MAX_DOCUMENT.max(bytes.len() as u64);
                match self.get_limited(path, limit).await? {
                    Some(held) => Ok(Some(held)),
                    // The create was refused as held, yet no object can be read there (on
                    // `file://`, a directory in the way makes the hard-link create fail so):
                    // this one object is refused, and the origin is not down.
                    None => Err(OriginError::NotAnObject {
                        origin: self.describe.clone(),
                        path: path.to_string(),
                        found: "a create refused as held, then nothing readable there".into(),
                        expected: "either room for the object or an object".into(),
                    }),
                }
            }
            Err(object_store::Error::NotImplemented) => self.put(path, bytes).await.map(|()| None),
            Err(e) => Err(OriginError::Put {
                origin: self.describe.clone(),
                path: path.to_string(),
                message: self.scrub(&error_chain(&e)),
                refused: refuses_object(&e),
            }),
        }
    }

    /// Reads the document at `path` (at most [`MAX_DOCUMENT`] bytes); `None` when the origin
    /// does not have it.
    pub async fn get(&self, path: &str) -> Result<Option<Vec<u8>>, OriginError> {
        self.get_limited(path, MAX_DOCUMENT).await
    }

    /// Reads the object at `path` if it holds at most `limit` bytes (a segment's signed
    /// length); `None` when the origin does not have it. A larger object, or on `file://`
    /// anything but a regular file, is [`OriginError::NotAnObject`]: a hostile origin can
    /// neither fill this process's memory nor hang it on a FIFO.
    pub async fn get_limited(
        &self,
        path: &str,
        limit: u64,
    ) -> Result<Option<Vec<u8>>, OriginError> {
        checked_relative(path)?;
        let location = object_store::path::Path::parse(path)
            .map_err(|_| OriginError::BadPath(path.to_string()))?;
        let failed = |e: object_store::Error| OriginError::Get {
            origin: self.describe.clone(),
            path: path.to_string(),
            message: self.scrub(&error_chain(&e)),
            withheld: refuses_object(&e),
        };
        let not_an_object = |found: String, expected: String| OriginError::NotAnObject {
            origin: self.describe.clone(),
            path: path.to_string(),
            found,
            expected,
        };
        if let Some(root) = &self.root {
            match std::fs::symlink_metadata(root.join(path)) {
                Ok(meta) if !meta.is_file() => {
                    return Err(not_an_object(
                        format!("a {}", file_type_name(&meta.file_type())),
                        "a regular file".to_string(),
                    ));
                }
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                    ) =>
                {
                    return Ok(None);
                }
                Err(_) => {}
            }
        }
        let too_large = |size: u64| {
            not_an_object(
                format!("{size} bytes or more"),
                format!("at most {limit} bytes"),
            )
        };
        let found = match self.store.get(&location).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(failed(e)),
        };
        if found.meta.size > limit {
            return Err(too_large(found.meta.size));
        }
        let mut body = Vec::with_capacity(found.meta.size as usize);
        let mut stream = found.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(failed)?;
            if (body.len() + chunk.len()) as u64 > limit {
                return Err(too_large((body.len() + chunk.len()) as u64));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(body))
    }

    /// The document at `path` and its detached signature (`{path}.sig`, empty when the
    /// origin has none); `None` when it does not have the document.
    pub async fn get_signed(&self, path: &str) -> Result<Option<(Vec<u8>, Vec<u8>)>, OriginError> {
        let Some(doc) = self.get(path).await? else {
            return Ok(None);
        };
        let sig = self.get(&format!("{path}.sig")).await?.unwrap_or_default();
        Ok(Some((doc, sig)))
    }

    /// Where the origin is, for humans (no credentials).
    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn scrub(&self, text: &str) -> String {
        scrub(text, self.secret.as_deref())
    }
}

/// What [`Origin::create`] found at the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The object is new: these bytes are on the origin now.
    New,
    /// The origin already held these very bytes.
    Same,
    /// The origin already held other bytes, and keeps them.
    Other { len: u64, sha256: [u8; 32] },
}

fn no_retries() -> RetryConfig {
    RetryConfig {
        max_retries: 0,
        retry_timeout: Duration::from_secs(15),
        ..RetryConfig::default()
    }
}

fn file_type_name(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "directory"
    } else if t.is_symlink() {
        "symbolic link"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// The error and its causes on one line (object_store's Display hides the root cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn scrub(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if !s.is_empty() => text.replace(s, "***"),
        _ => text.to_string(),
    }
}

/// The URL with any password replaced by `***`.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Accepts `a/b/c.ts`; refuses absolute paths, `..`, `.` and empty components.
pub fn checked_relative(path: &str) -> Result<&Path, OriginError> {
    if crate::layout::is_plain_relative(path) {
        Ok(Path::new(path))
    } else {
        Err(OriginError::BadPath(path.to_string()))
    }
}

#[cfg(test)]
#[path = "origin_tests.rs"]
mod tests;
