//! The key directory written by `swarmpack keygen`: the content master secret, the token
//! secret and the Ed25519 signing key (each mode 0600), plus the public key as SPKI PEM.
//! Nothing in here is ever copied to the origin except `pubkey.pem`.
//!
//! May call: `hex`, `pem`, `sign`.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

pub const CONTENT_SECRET: &str = "content.secret";
pub const TOKEN_SECRET: &str = "token.secret";
pub const SIGNING_KEY: &str = "signing.pk8";
pub const PUBKEY: &str = "pubkey.pem";
/// The TURN REST shared secret (coturn `static-auth-secret`): 64 hex characters, text, so it
/// can be pasted into turnserver.conf. Optional: keys made before it existed have none.
pub const TURN_SECRET: &str = "turn.secret";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "{0}: already exists; keygen never overwrites keys (pick another --out or remove them deliberately)"
    )]
    Exists(PathBuf),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("{path}: expected {expected}")]
    Invalid {
        path: PathBuf,
        expected: &'static str,
    },
    #[error("{dir}: no keys here; run `swarmpack keygen --out {dir}` first")]
    Missing { dir: PathBuf },
    #[error(
        "{path}: mode {mode:o} lets other users read this secret; refusing to use it (as ssh does): \
         chmod 600 {path}"
    )]
    Exposed { path: PathBuf, mode: u32 },
    #[error(
        "--keys {keys} lies inside the origin {origin}: the secrets would be published and served; \
         keep the keys directory outside the origin (only pubkey.pem belongs there, and swarmpack puts it there)"
    )]
    InsideOrigin { keys: PathBuf, origin: PathBuf },
}

/// Loaded secrets. Debug output never shows them.
pub struct KeyDir {
    pub dir: PathBuf,
    // Wiped from memory when dropped.
    content: Zeroizing<Vec<u8>>,
    token: Zeroizing<Vec<u8>>,
    pkcs8: Zeroizing<Vec<u8>>,
    signing: Ed25519KeyPair,
    turn: Option<Zeroizing<Vec<u8>>>,
}

impl std::fmt::Debug for KeyDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyDir({})", self.dir.display())
    }
}

fn io(path: &Path, e: impl std::fmt::Display) -> KeyError {
    KeyError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyError::Exists(path.to_path_buf()),
            _ => io(path, e),
        })?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| io(path, e))
}

/// Writes a fresh `turn.secret` (64 hex digits and a line end, mode 0600).
fn write_turn_secret(dir: &Path) -> Result<(), KeyError> {
    let mut raw = Zeroizing::new([0u8; 32]);
    SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| io(dir, "no system randomness"))?;
    let mut text = Zeroizing::new(crate::hex::encode(raw.as_ref()));
    text.push('\n');
    write_new(&dir.join(TURN_SECRET), text.as_bytes(), 0o600)
}

/// Refuses a secret file that its group or others may read or write (`keygen` writes 0600).
pub fn private_file(path: &Path) -> Result<(), KeyError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| io(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_path_buf(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

pub use crate::pem::ed25519_spki_pem;

impl KeyDir {
    /// Refuses a keys directory inside `origin` (a local origin directory): whatever lies under
    /// the origin is published or served, secrets included.
    pub fn ensure_outside(&self, origin: &Path) -> Result<(), KeyError> {
        let (Ok(keys), Ok(root)) = (self.dir.canonicalize(), origin.canonicalize()) else {
            return Ok(()); // A directory that does not exist holds nothing.
        };
        if keys.starts_with(&root) {
            return Err(KeyError::InsideOrigin { keys, origin: root });
        }
        Ok(())
    }

    /// Adds `turn.secret` to keys made before it existed; the other keys are kept as they are.
    /// Returns whether it wrote one (false: there is one already).
    pub fn add_turn_secret(dir: &Path) -> Result<bool, KeyError> {
        if dir.join(TURN_SECRET).exists() {
            return Ok(false);
        }
        KeyDir::load(dir)?;
        write_turn_secret(dir)?;
        Ok(true)
    }

    /// Creates fresh keys in `dir` (created if needed). Refuses to touch existing keys.
    pub fn generate(dir: &Path) -> Result<KeyDir, KeyError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        for name in [
            CONTENT_SECRET,
            TOKEN_SECRET,
            SIGNING_KEY,
            PUBKEY,
            TURN_SECRET,
        ] {
            let p = dir.join(name);
            if p.exists() {
                return Err(KeyError::Exists(p));
            }
        }
        let rng = SystemRandom::new();
        let mut content = [0u8; 32];
        let mut token = [0u8; 32];
        rng.fill(&mut content)
            .map_err(|_| io(dir, "no system randomness"))?;
        rng.fill(&mut token)
            .map_err(|_| io(dir, "no system randomness"))?;
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| io(dir, "Ed25519 key generation failed"))?;
        write_new(&dir.join(CONTENT_SECRET), &content, 0o600)?;
        write_new(&dir.join(TOKEN_SECRET), &token, 0o600)?;
        write_new(&dir.join(SIGNING_KEY), pkcs8.as_ref(), 0o600)?;
        write_turn_secret(dir)?;
        let signing = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|_| io(dir, "generated key does not load"))?;
        write_new(
            &dir.join(PUBKEY),
            ed25519_spki_pem(signing.public_key().as_ref()).as_bytes(),
            0o644,
        )?;
        KeyDir::load(dir)
    }

    /// Loads the keys in `dir`.
    pub fn load(dir: &Path) -> Result<KeyDir, KeyError> {
        if !dir.join(CONTENT_SECRET).exists() {
            return Err(KeyError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        let read = |name: &str| {
            let p = dir.join(name);
            private_file(&p)?;
            std::fs::read(&p).map(Zeroizing::new).map_err(|e| io(&p, e))
        };
        let content = read(CONTENT_SECRET)?;
        let token = read(TOKEN_SECRET)?;
        for (name, bytes) in [(CONTENT_SECRET, &content), (TOKEN_SECRET, &token)] {
            if bytes.len() != 32 {
                return Err(KeyError::Invalid {
                    path: dir.join(name),
                    expected: "32 random bytes written by `swarmpack keygen`",
                });
            }
        }
        let pkcs8 = read(SIGNING_KEY)?;
        let signing = Ed25519KeyPair::from_pkcs8(&pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&pkcs8))
            .map_err(|_| KeyError::Invalid {
                path: dir.join(SIGNING_KEY),
                expected: "an Ed25519 PKCS#8 key written by `swarmpack keygen`",
            })?;
        let turn = match dir.join(TURN_SECRET).exists() {
            true => Some(read(TURN_SECRET)?),
            false => None,
        };
        let turn = match turn {
            Some(bytes) => {
                let text = bytes.trim_ascii();
                if text.len() < 32 || !text.iter().all(u8::is_ascii_graphic) {
                    return Err(KeyError::Invalid {
                        path: dir.join(TURN_SECRET),
                        expected: "at least 32 printable characters, no spaces (keygen writes 64 hex digits)",
                    });
                }
                Some(Zeroizing::new(text.to_vec()))
            }
            None => None,
        };
        Ok(KeyDir {
            dir: dir.to_path_buf(),
            content,
            token,
            pkcs8,
            signing,
            turn,
        })
    }

    /// The TURN REST shared secret, as coturn's `static-auth-secret` holds it (the text of
    /// `turn.secret` without its line end), when the keys have one.
    pub fn turn_secret(&self) -> Option<&[u8]> {
        self.turn.as_deref().map(Vec::as_slice)
    }

    /// The content master secret (HKDF input for content keys).
    pub fn content_secret(&self) -> &[u8] {
        &self.content
    }

    /// The token secret (HMAC key for viewer tokens).
    pub fn token_secret(&self) -> &[u8] {
        &self.token
    }

    /// The Ed25519 signing key for manifests.
    pub fn signing_key(&self) -> &Ed25519KeyPair {
        &self.signing
    }

    /// An owned signer for the packager (a second handle on the same key).
    pub fn signer(&self) -> std::sync::Arc<dyn crate::sign::Signer> {
        let pair = Ed25519KeyPair::from_pkcs8(&self.pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&self.pkcs8))
            .expect("the key loaded once already");
        std::sync::Arc::new(pair)
    }

    /// The raw 32-byte Ed25519 public key, as signatures are checked against it.
    pub fn public_key(&self) -> Vec<u8> {
        self.signing.public_key().as_ref().to_vec()
    }

    /// `pubkey.pem` as published on the origin.
    pub fn public_pem(&self) -> String {
        ed25519_spki_pem(self.signing.public_key().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keygen_writes_private_files_and_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::generate(dir.path()).unwrap();
        for name in [CONTENT_SECRET, TOKEN_SECRET, SIGNING_KEY, TURN_SECRET] {
            let mode = std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        let again = KeyDir::generate(dir.path()).unwrap_err().to_string();
        assert!(again.contains("already exists"), "{again}");
        let loaded = KeyDir::load(dir.path()).unwrap();
        assert_eq!(loaded.content_secret(), keys.content_secret());
        assert_eq!(
            loaded.public_pem(),
            std::fs::read_to_string(dir.path().join(PUBKEY)).unwrap()
        );
        assert_ne!(keys.content_secret(), keys.token_secret());
        let turn = keys.turn_secret().unwrap();
        assert_eq!(turn.len(), 64);
        assert!(turn.iter().all(u8::is_ascii_hexdigit));
        assert_eq!(loaded.turn_secret(), Some(turn));
    }

    #[test]
    fn keys_made_before_turn_secrets_load_and_gain_one_without_other_changes() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::generate(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join(TURN_SECRET)).unwrap();
        let old = KeyDir::load(dir.path()).unwrap();
        assert_eq!(old.turn_secret(), None);
        assert!(KeyDir::add_turn_secret(dir.path()).unwrap());
        assert!(!KeyDir::add_turn_secret(dir.path()).unwrap());
        let new = KeyDir::load(dir.path()).unwrap();
        assert_eq!(new.content_secret(), keys.content_secret());
        assert_eq!(new.public_pem(), keys.public_pem());
        assert_ne!(new.turn_secret(), keys.turn_secret());
        // A readable or short secret is refused, naming the file.
        let path = dir.path().join(TURN_SECRET);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = KeyDir::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("turn.secret") && e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, "short\n").unwrap();
        let e = KeyDir::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("turn.secret: expected at least 32 printable"),
            "{e}"
        );
    }

    #[test]
    fn missing_or_damaged_keys_say_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let e = KeyDir::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("run `swarmpack keygen --out"), "{e}");
        KeyDir::generate(dir.path()).unwrap();
        std::fs::write(dir.path().join(TOKEN_SECRET), b"short").unwrap();
        let e = KeyDir::load(dir.path()).unwrap_err().to_string();
        assert!(e.contains("token.secret: expected 32 random bytes"), "{e}");
    }

    #[test]
    fn debug_hides_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let keys = KeyDir::generate(dir.path()).unwrap();
        assert_eq!(
            format!("{keys:?}"),
            format!("KeyDir({})", dir.path().display())
        );
    }
}
