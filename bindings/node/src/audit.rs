//! The decision log, metrics and hot reload, for Node.

use std::time::Duration;

use agentriage::audit::{
    self, DecisionLog, DecisionLogConfig, FlushPolicy, LogError, SigningKey, VerifyOptions,
};
use napi_derive::napi;
use serde::Deserialize;
use serde_json::json;

use crate::Failure;

/// Options of `Engine.enableDecisionLog` (camelCase JSON from `index.js`).
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct LogOptions {
    /// PKCS#8 Ed25519 key (hex) that signs checkpoints.
    key_pkcs8_hex: Option<String>,
    #[serde(default)]
    mandatory: bool,
    flush_ms: Option<u64>,
    queue_capacity: Option<usize>,
    checkpoint_every: Option<u64>,
    max_segment_bytes: Option<u64>,
    salt: Option<String>,
}

/// Opens the log in `dir` with `options` (JSON) and attaches it to `engine`,
/// closing the log attached before.
/// Options that `index.js` checked but that do not parse here are a bug:
/// an internal error.
pub(crate) fn enable(engine: &agentriage::Engine, dir: &str, options: &str) -> Result<(), Failure> {
    let o: LogOptions = serde_json::from_str(options)
        .map_err(|e| Failure::Panic(format!("invalid decision log options: {e}")))?;
    let mut config = DecisionLogConfig::new(dir).mandatory(o.mandatory);
    config = config.flush(match o.flush_ms {
        Some(0) => FlushPolicy::EveryRecord,
        Some(ms) => FlushPolicy::Interval(Duration::from_millis(ms)),
        None => FlushPolicy::Interval(Duration::from_millis(10)),
    });
    if let Some(n) = o.queue_capacity {
        config = config.queue_capacity(n);
    }
    if let Some(n) = o.checkpoint_every {
        config = config.checkpoint_every(n);
    }
    if let Some(n) = o.max_segment_bytes {
        config = config.max_segment_bytes(n);
    }
    if let Some(salt) = o.salt {
        config = config.salt(salt.into_bytes());
    }
    if let Some(hex) = o.key_pkcs8_hex {
        let der =
            decode_hex(&hex).ok_or_else(|| Failure::Panic("`keyPkcs8Hex` is not hex".into()))?;
        config = config.signing_key(SigningKey::from_pkcs8(&der).map_err(Failure::Log)?);
    }
    let log = DecisionLog::open(config).map_err(Failure::Log)?;
    if let Some(previous) = engine.set_decision_log(Some(log)) {
        previous.close().map_err(Failure::Log)?;
    }
    Ok(())
}

/// Closes the engine's log (see `Engine::close_decision_log`: a mandatory
/// log stays attached, so later decisions are rejected); `false` when no
/// open log was attached.
pub(crate) fn close(engine: &agentriage::Engine) -> Result<bool, LogError> {
    engine.close_decision_log()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}

/// Verifies decision log segment files (in order); the report as JSON text.
/// Without a key the tail option changes nothing: the report is unproven.
pub(crate) fn verify(
    files: &[String],
    key: Option<&str>,
    allow_unsigned_tail: bool,
) -> Result<String, LogError> {
    let options = match key {
        Some(k) => VerifyOptions::with_key(k)?.allow_unsigned_tail(allow_unsigned_tail),
        None => VerifyOptions::new(),
    };
    let report = audit::verify(files, &options)?;
    Ok(json!({
        "intact": report.is_intact(),
        "integrity": report.integrity.as_str(),
        "proven": report.integrity.is_proven(),
        "chainVerifies": report.chain_verifies(),
        "problem": report.problem.as_ref().map(|p| json!({
            "kind": p.kind.as_str(),
            "file": p.file.to_string_lossy(),
            "line": p.line,
            "seq": p.seq,
            "message": p.message,
        })),
        "torn": report.torn.as_ref().map(|t| json!({
            "file": t.file.to_string_lossy(),
            "line": t.line,
            "bytes": t.bytes,
        })),
        "files": report.files,
        "records": report.records,
        "decisions": report.decisions,
        "checkpoints": report.checkpoints,
        "keyChecked": report.key_checked,
        "unsignedTail": report.unsigned_tail,
        "unsignedTailSeq": report.unsigned_tail_seq.map(|(first, last)| json!({
            "first": first,
            "last": last,
        })),
        "closed": report.closed,
        "lastHash": report.last_hash,
    })
    .to_string())
}

/// A new checkpoint signing key: `{ pkcs8Hex, publicKey }` as JSON text.
pub(crate) fn generate_key() -> Result<String, LogError> {
    let der = SigningKey::generate_pkcs8()?;
    let key = SigningKey::from_pkcs8(&der)?;
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    Ok(json!({"pkcs8Hex": hex, "publicKey": key.public_key_hex()}).to_string())
}

/// Verifies decision log segment files; the report as JSON text.
#[napi(js_name = "verifyLogJson")]
pub fn verify_log_json(
    files: Vec<String>,
    key: Option<String>,
    allow_unsigned_tail: Option<bool>,
) -> napi::Result<String> {
    crate::guard(|| {
        verify(&files, key.as_deref(), allow_unsigned_tail.unwrap_or(false)).map_err(Failure::Log)
    })
    .map_err(|f| crate::to_js_error(&f.into()))
}

/// A new checkpoint signing key as JSON text.
#[napi(js_name = "generateSigningKeyJson")]
pub fn generate_signing_key_json() -> napi::Result<String> {
    crate::guard(|| generate_key().map_err(Failure::Log)).map_err(|f| crate::to_js_error(&f.into()))
}
