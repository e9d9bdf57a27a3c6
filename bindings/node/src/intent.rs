//! Signed intents for Node: key generation, signing and verification, JSON
//! in and out (wrapped as `intent` in `index.js`).

use std::time::Duration;

use agentriage::Timestamp;
use agentriage::intent::{
    Algorithm, Expected, IntentClaims, IntentConfig, IntentFact, IntentVerifier, SigningKey,
    TrustedKeys,
};
use napi::Status;
use napi_derive::napi;
use serde::Deserialize;

fn invalid(message: impl std::fmt::Display) -> napi::Error {
    napi::Error::new(Status::InvalidArg, message.to_string())
}

fn algorithm(alg: &str) -> napi::Result<Algorithm> {
    alg.parse::<Algorithm>().map_err(invalid)
}

/// A new key.
#[napi(object)]
pub struct NativeIntentKey {
    /// PKCS#8 PEM private key.
    pub private_key_pem: String,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
}

/// Generates a key of `alg` (`EdDSA` or `ES256`) for issuer `iss`.
#[napi]
pub fn intent_keygen(alg: String, kid: String, iss: String) -> napi::Result<NativeIntentKey> {
    let key = SigningKey::generate(algorithm(&alg)?, kid, iss).map_err(invalid)?;
    Ok(NativeIntentKey {
        private_key_pem: key.pkcs8_pem(),
        public_jwk: key.public_jwk().to_string(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SignOptions {
    private_key_pem: String,
    alg: String,
    kid: String,
    iss: String,
    aud: Vec<String>,
    act: String,
    res: String,
    purpose: String,
    iat: i64,
    lifetime_s: u64,
    jti: Option<String>,
    nbf: Option<i64>,
    #[serde(default)]
    scope: Vec<String>,
}

/// Signs an intent described by `options` (JSON); returns the compact JWS.
#[napi]
pub fn intent_sign(options: String) -> napi::Result<String> {
    let o: SignOptions = serde_json::from_str(&options).map_err(invalid)?;
    let key = SigningKey::from_pem(algorithm(&o.alg)?, o.kid, o.iss.clone(), &o.private_key_pem)
        .map_err(invalid)?;
    let mut claims = IntentClaims::new(
        o.iss,
        "",
        o.act,
        o.res,
        o.purpose,
        o.iat,
        Duration::from_secs(o.lifetime_s),
    );
    claims.aud = o.aud;
    claims.nbf = o.nbf;
    claims.scope = o.scope;
    if let Some(jti) = o.jti {
        claims.jti = jti;
    }
    key.sign(&claims).map_err(invalid)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VerifyOptions {
    keys: String,
    audience: String,
    principal: String,
    action: String,
    resource: Option<String>,
    /// Milliseconds since the epoch; now when absent.
    time_ms: Option<i64>,
    clock_skew_s: u64,
    max_lifetime_s: u64,
}

/// Verifies `token` (without recording its `jti`); returns the intent fact
/// as JSON.
#[napi]
pub fn intent_verify(token: String, options: String) -> napi::Result<String> {
    let o: VerifyOptions = serde_json::from_str(&options).map_err(invalid)?;
    let keys = TrustedKeys::from_json(&o.keys).map_err(|e| {
        let line = e.line().map_or(String::new(), |l| format!(" (line {l})"));
        invalid(format!("{e}{line}"))
    })?;
    let now = match o.time_ms {
        None => Timestamp::now(),
        Some(ms) => Timestamp::from_unix_nanos(i128::from(ms) * 1_000_000)
            .ok_or_else(|| invalid("time is out of range"))?,
    };
    let verifier = IntentVerifier::new(
        IntentConfig::new(keys, o.audience)
            .with_clock_skew(Duration::from_secs(o.clock_skew_s))
            .with_max_lifetime(Duration::from_secs(o.max_lifetime_s)),
    );
    let expected = Expected {
        principal: &o.principal,
        action: &o.action,
        resource: o.resource.as_deref().and_then(|r| r.split_once(':')),
    };
    let fact = match verifier.verify_unrecorded(&token, &expected, now) {
        Ok(v) => IntentFact::Verified(Box::new(v)),
        Err(e) => IntentFact::Invalid(e),
    };
    Ok(fact.to_json().to_string())
}
