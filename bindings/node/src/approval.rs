//! Approvals for Node: the action digest and signing, JSON in and out
//! (wrapped as `approval` in `index.js`).

use agentriage::approval::{ApprovalClaims, action_digest};
use agentriage::intent::{Algorithm, SigningKey};
use napi_derive::napi;
use serde::Deserialize;

fn invalid(e: impl std::fmt::Display) -> napi::Error {
    napi::Error::new(napi::Status::InvalidArg, e.to_string())
}

/// The digest of the action of `request` (JSON text), with
/// `context_fields` digested.
#[napi]
pub fn approval_digest(request: String, context_fields: Vec<String>) -> napi::Result<String> {
    let request = agentriage::Request::from_json(&request).map_err(invalid)?;
    Ok(action_digest(&request, &context_fields))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignOptions {
    private_key_pem: String,
    alg: String,
    kid: String,
    iss: String,
    aud: String,
    action_digest: String,
    reasons: Vec<String>,
    iat: i64,
    lifetime_s: u64,
    jti: Option<String>,
    decision_id: Option<String>,
    request_exp: Option<i64>,
}

/// Signs an approval described by `options` (JSON); returns the compact
/// JWS (`typ` `approval+jwt`).
#[napi]
pub fn approval_sign(options: String) -> napi::Result<String> {
    let o: SignOptions = serde_json::from_str(&options).map_err(invalid)?;
    let alg = o.alg.parse::<Algorithm>().map_err(invalid)?;
    let key =
        SigningKey::from_pem(alg, o.kid, o.iss.clone(), &o.private_key_pem).map_err(invalid)?;
    let mut claims = ApprovalClaims::new(
        o.iss,
        o.aud,
        o.action_digest,
        o.reasons,
        o.iat,
        o.lifetime_s,
    );
    if let Some(jti) = o.jti {
        claims.jti = jti;
    }
    claims.decision_id = o.decision_id;
    claims.request_exp = o.request_exp;
    agentriage::approval::sign(&key, &claims).map_err(invalid)
}
