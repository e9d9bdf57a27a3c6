//! The tamper-evident decision log: every decision, written as one line of
//! JSON, chained by hashes and signed at checkpoints.
//!
//! - [`DecisionLog::open`] starts a writer thread over a directory of
//!   segment files (`<prefix>-000001.jsonl`, `…-000002.jsonl`, …), resuming
//!   the chain after a restart; [`Engine::with_decision_log`](crate::Engine::with_decision_log)
//!   makes an engine log every decision through it;
//! - each record carries the hash of the previous one and its own
//!   (`sha256` over the canonical encoding of the record without its `hash`
//!   member; see `docs/audit.md`); checkpoints sign the chain with the
//!   host's Ed25519 key every N records, at rotation and on close;
//! - [`verify`] reads a series of segment files and reports the first
//!   record that was modified, deleted, inserted or reordered, a checkpoint
//!   whose signature fails, records not covered by a checkpoint signed with
//!   the given key, a repeated member, a torn last line, and malformed
//!   input. Without a key the chain is checked but integrity is
//!   [unproven](Integrity::Unproven), and the report is not intact.
//!
//! ```
//! use agentriage::audit::{self, DecisionLog, DecisionLogConfig, SigningKey, VerifyOptions};
//! use agentriage::Engine;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let key = SigningKey::generate()?;
//! let public = key.public_key_hex().to_owned();
//! let log = DecisionLog::open(DecisionLogConfig::new(dir.path()).signing_key(key))?;
//! let engine = Engine::from_dir("../policies/a2a-supply-chain")
//!     .unwrap()
//!     .with_decision_log(log.clone());
//! engine
//!     .decide_json(r#"{"principal":{"id":"spiffe://x/y"},"action":{"name":"inventory.read"}}"#)
//!     .unwrap();
//! log.close()?;
//!
//! let report = audit::verify(&log.segments()?, &VerifyOptions::with_key(&public)?)?;
//! assert!(report.is_intact(), "{report}");
//! assert_eq!(report.decisions, 1);
//! # Ok::<(), agentriage::audit::LogError>(())
//! ```

mod canonical;
mod error;
mod key;
mod record;
mod redact;
mod scan;
mod verify;
mod writer;

pub use error::{LogError, LogErrorKind};
pub use key::SigningKey;
pub use redact::Redaction;
pub use verify::{
    Integrity, Problem, ProblemKind, TornLine, VerifyOptions, VerifyReport, verify, verify_contents,
};
pub use writer::{DecisionLog, DecisionLogConfig, FlushPolicy, LogStats};

pub(crate) use redact::ManifestLog;
pub(crate) use writer::Entry;

/// Format version of the records this library writes.
pub const FORMAT_VERSION: u64 = 1;

/// The `prev` of the first record of a log: `sha256:` and 64 zeros.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// `value` in the log's canonical JSON (RFC 8785, integers kept exact).
pub(crate) fn canonical_bytes(value: &serde_json::Value) -> Vec<u8> {
    canonical::to_vec(value)
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 15] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// Bytes of lowercase or uppercase hex; `None` if `text` is not hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok());
    text.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [a, b] => Some(digit(*a)? << 4 | digit(*b)?),
            _ => None,
        })
        .collect()
}
