//! Building records: canonical members, the chain hash, the line.

use sha2::{Digest, Sha256};

use super::hex;

/// A record's top-level members, each with its value already in canonical
/// form. Member names are ASCII, so byte order is the canonical order.
#[derive(Default)]
pub(crate) struct Members(Vec<(&'static str, Vec<u8>)>);

impl Members {
    pub(crate) fn put(&mut self, name: &'static str, canonical_value: Vec<u8>) {
        self.0.push((name, canonical_value));
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| *k == name)
    }

    pub(crate) fn put_str(&mut self, name: &'static str, value: &str) {
        let mut out = Vec::with_capacity(value.len() + 2);
        super::canonical::write_value(&mut out, &serde_json::Value::String(value.to_owned()));
        self.put(name, out);
    }

    pub(crate) fn put_u64(&mut self, name: &'static str, value: u64) {
        self.put(name, value.to_string().into_bytes());
    }

    /// The canonical encoding of the record as it stands.
    pub(crate) fn encode(&mut self) -> Vec<u8> {
        self.0.sort_by(|a, b| a.0.cmp(b.0));
        let len: usize = self.0.iter().map(|(k, v)| k.len() + v.len() + 4).sum();
        let mut out = Vec::with_capacity(len + 2);
        out.push(b'{');
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v);
        }
        out.push(b'}');
        out
    }

    /// Adds the `hash` member (over the record without it) and returns the
    /// line (without its newline) and the hash.
    pub(crate) fn seal(mut self) -> (Vec<u8>, String) {
        let hash = sha256_tag(&self.encode());
        self.put_str("hash", &hash);
        (self.encode(), hash)
    }
}

/// `sha256:<64 hex digits>` of `bytes`.
pub(crate) fn sha256_tag(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}
