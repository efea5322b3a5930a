//! Ed25519 public keys as SPKI PEM (RFC 8410): what `keygen` writes as `pubkey.pem`, what the
//! packager publishes, and what `verify`, `seed` and the tests read back.
//!
//! A leaf: calls only base64.

use base64::Engine;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Why a PEM text is not an Ed25519 public key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("expected a PEM public key")]
    NotPem,
    #[error("expected an Ed25519 SPKI public key (as `swarmpack keygen` writes)")]
    NotEd25519,
}

/// SPKI PEM of a raw Ed25519 public key.
pub fn ed25519_spki_pem(public: &[u8]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(public);
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN PUBLIC KEY-----\n{b64}\n-----END PUBLIC KEY-----\n")
}

/// The raw 32-byte Ed25519 key of an SPKI PEM text.
pub fn parse_ed25519_spki_pem(text: &str) -> Result<Vec<u8>, PemError> {
    let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| PemError::NotPem)?;
    match der.strip_prefix(&SPKI_PREFIX[..]) {
        Some(key) if key.len() == 32 => Ok(key.to_vec()),
        _ => Err(PemError::NotEd25519),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_others_are_refused() {
        let key = [9u8; 32];
        let pem = ed25519_spki_pem(&key);
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA"));
        assert_eq!(parse_ed25519_spki_pem(&pem).unwrap(), key);
        assert_eq!(
            parse_ed25519_spki_pem("not base64 !"),
            Err(PemError::NotPem)
        );
        let short = ed25519_spki_pem(&key[..31]);
        assert_eq!(parse_ed25519_spki_pem(&short), Err(PemError::NotEd25519));
    }
}
