use super::*;
use ring::signature::{Ed25519KeyPair, KeyPair};

const PATH: &str = "m/a/hi/7.ts";

fn pair(seed: u8) -> Ed25519KeyPair {
    Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
}

fn key() -> SegmentKey {
    SegmentKey {
        uri: "http://k/keys/m/1".into(),
        iv: [3; 16],
    }
}

struct Bench {
    dir: tempfile::TempDir,
    origin: Origin,
    signer: Ed25519KeyPair,
    rt: tokio::runtime::Runtime,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let origin = Origin::local(dir.path()).unwrap();
        Bench {
            dir,
            origin,
            signer: pair(7),
            rt: tokio::runtime::Runtime::new().unwrap(),
        }
    }

    fn claim(&self, bytes: &[u8]) -> Result<Claim, ClaimError> {
        let public_key = self.signer.public_key().as_ref().to_vec();
        let cx = ClaimContext {
            origin: &self.origin,
            signer: &self.signer,
            public_key: &public_key,
        };
        self.rt.block_on(claim(&cx, PATH, bytes, Some(&key())))
    }

    fn write(&self, path: &str, bytes: &[u8]) {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    fn held(&self, path: &str) -> Option<Vec<u8>> {
        std::fs::read(self.dir.path().join(path)).ok()
    }

    fn lost(&self, bytes: &[u8]) -> String {
        match self.claim(bytes) {
            Ok(Claim::Lost(why)) => why,
            other => panic!("expected a lost seq, got {other:?}"),
        }
    }
}

#[test]
fn a_claim_adopts_only_bytes_a_verified_claim_describes() {
    let b = Bench::new();
    let ours = b"ours".as_slice();
    let digest = crate::hex::sha256(ours);
    assert_eq!(b.claim(ours).unwrap(), Claim::Ours(digest));
    // The claim went up before the bytes, and holds the segment's tag.
    let claim = parse_claim(&b.held(&claim_path(PATH)).unwrap()).unwrap();
    assert!(claim.describes(ours));
    assert_eq!(b.held(PATH).unwrap(), ours);
    // A retry of the same bytes is still ours.
    assert_eq!(b.claim(ours).unwrap(), Claim::Ours(digest));
    // Another run's claim of the same seq gets our bytes back, and the files stay.
    assert_eq!(
        b.claim(b"theirs").unwrap(),
        Claim::Theirs(ours.to_vec(), digest)
    );
    assert_eq!(b.held(PATH).unwrap(), ours);
}

/// Issue 25, item 1: before signed claims, any object at a future seq's path was adopted and
/// signed. Bytes without a claim, a claim that does not verify, a claim signed by another
/// key, and bytes that do not match their claim all cost the seq, never a signature.
#[test]
fn forged_bytes_or_claims_cost_the_seq_and_are_never_adopted() {
    // Bytes planted with no claim: our claim goes up, our bytes cannot.
    let b = Bench::new();
    b.write(PATH, b"attacker's chosen ciphertext");
    let why = b.lost(b"ours");
    assert!(why.contains("other bytes are in the way"), "{why}");
    assert_eq!(b.held(PATH).unwrap(), b"attacker's chosen ciphertext");

    // A claim that is not one, with bytes.
    let b = Bench::new();
    b.write(&claim_path(PATH), b"#EXT-X-SWARMPACK-SEGMENT:BYTES=1\n");
    b.write(PATH, b"x");
    let why = b.lost(b"ours");
    assert!(
        why.contains("does not verify with this match's key"),
        "{why}"
    );

    // A well-formed claim of the planted bytes, signed by another key.
    let b = Bench::new();
    let planted = b"planted".as_slice();
    let foreign = SegmentSignature::sign(&pair(9), PATH, planted, Some(&key()));
    b.write(&claim_path(PATH), &claim_document(&foreign));
    b.write(PATH, planted);
    let why = b.lost(b"ours");
    assert!(why.contains("does not verify"), "{why}");

    // A true claim (the match key) whose bytes were swapped afterwards.
    let b = Bench::new();
    let theirs = SegmentSignature::sign(&b.signer, PATH, b"theirs", Some(&key()));
    b.write(&claim_path(PATH), &claim_document(&theirs));
    b.write(PATH, b"swapped!");
    let why = b.lost(b"ours");
    assert!(
        why.contains("not the ones its signed claim describes"),
        "{why}"
    );
    // Larger than the claim says: not even read whole.
    b.write(PATH, &vec![0u8; 1 << 20]);
    let why = b.lost(b"ours");
    assert!(why.contains("at most 6 bytes"), "{why}");

    // The same claim, bytes still on their way: wait, then adopt once they are there.
    let b = Bench::new();
    b.write(&claim_path(PATH), &claim_document(&theirs));
    assert!(matches!(b.claim(b"ours"), Err(ClaimError::BytesNotYet)));
    b.write(PATH, b"theirs");
    assert_eq!(
        b.claim(b"ours").unwrap(),
        Claim::Theirs(b"theirs".to_vec(), crate::hex::sha256(b"theirs"))
    );
}

/// Issue 25, item 0: a directory in the way of a segment is a refusal of that one seq, not
/// an origin that is down (the claim stage retried it for ever).
#[test]
fn a_directory_in_the_way_loses_the_seq() {
    let b = Bench::new();
    std::fs::create_dir_all(b.dir.path().join(PATH)).unwrap();
    let why = b.lost(b"ours");
    assert!(
        why.contains("a directory; expected a regular file"),
        "{why}"
    );
    let b = Bench::new();
    std::fs::create_dir_all(b.dir.path().join(claim_path(PATH))).unwrap();
    let why = b.lost(b"ours");
    assert!(why.contains("a directory"), "{why}");
}

#[test]
fn claim_documents_round_trip() {
    let tag = SegmentSignature::sign(&pair(7), PATH, b"abc", Some(&key()));
    let doc = claim_document(&tag);
    assert!(doc.starts_with(b"#EXT-X-SWARMPACK-SEGMENT:BYTES=3,SHA256="));
    assert_eq!(parse_claim(&doc), Some(tag));
    assert_eq!(parse_claim(b""), None);
    assert_eq!(parse_claim(&doc[..doc.len() - 1]), None, "no newline");
}
