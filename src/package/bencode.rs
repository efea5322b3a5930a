//! Bencode, through librqbit's own codec (`librqbit-bencode`, the one the seeder already
//! links): values, canonical encoding (dictionary keys sorted), and strict decoding (a
//! document must be canonical, so a hash over re-encoded bytes is a hash over the bytes).
//!
//! A leaf.

use librqbit_bencode::{BencodeDeserializer, ByteBufOwned};
use serde::Deserialize;

/// A bencoded value.
pub type Value = librqbit_bencode::BencodeValueOwned;

/// Nesting depth of a window's metainfo (file tree: name/angle/rung/file/""/fields) with room.
const DEPTH: usize = 12;

/// A byte string.
pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
    Value::Bytes(ByteBufOwned::from(b.into()))
}

/// A dictionary of `pairs` (encoded in key order whatever their order here).
pub fn dict<K: AsRef<[u8]>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Dict(
        pairs
            .into_iter()
            .map(|(k, v)| (ByteBufOwned::from(k.as_ref()), v))
            .collect(),
    )
}

/// The value at `key` of a dictionary.
pub fn get<'v>(v: &'v Value, key: &str) -> Option<&'v Value> {
    match v {
        Value::Dict(d) => d.get(&ByteBufOwned::from(key.as_bytes())),
        _ => None,
    }
}

/// Canonical bencode of `v`.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    librqbit_bencode::bencode_serialize_to_writer(v, &mut out)
        .expect("in-memory bencoding of a value");
    out
}

/// Decodes one canonical bencoded value that fills `data` (nested at most 12 deep).
pub fn decode(data: &[u8]) -> Result<Value, String> {
    let mut de = BencodeDeserializer::new_from_buf(data).with_max_depth(DEPTH);
    let value = Value::deserialize(&mut de).map_err(|e| e.to_string())?;
    let rest = de.into_remaining();
    if !rest.is_empty() {
        return Err(format!("{} bytes after the value", rest.len()));
    }
    if encode(&value) != data {
        return Err(
            "not canonical (dictionary keys unsorted or repeated, or a non-minimal number)".into(),
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_canonical_form_only() {
        let v = dict([
            ("b", Value::Integer(-3)),
            ("a", Value::List(vec![bytes("x"), bytes(vec![0u8, 255])])),
        ]);
        let encoded = encode(&v);
        assert_eq!(encoded, b"d1:al1:x2:\x00\xffe1:bi-3ee");
        assert_eq!(decode(&encoded), Ok(v));
        for bad in [&b"d1:bi1e1:ai2ee"[..], b"i01e", b"i1ei2e", b"l", b""] {
            assert!(decode(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{}{}", "l".repeat(13), "e".repeat(13));
        assert!(decode(deep.as_bytes()).is_err(), "too deep");
    }
}
