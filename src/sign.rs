//! What signs a match's documents: its Ed25519 key, behind a trait so the packager needs no
//! key material of its own (the key store hands one in).
//!
//! A leaf: calls only ring.

/// Signs bytes with the match's Ed25519 key.
pub trait Signer: Send + Sync {
    fn sign(&self, message: &[u8]) -> [u8; 64];
}

impl Signer for ring::signature::Ed25519KeyPair {
    fn sign(&self, message: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(ring::signature::Ed25519KeyPair::sign(self, message).as_ref());
        out
    }
}
