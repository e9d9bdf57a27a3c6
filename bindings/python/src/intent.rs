//! Signed intents from Python: key generation, signing and verification
//! (`agentriage.intent`, assembled in `python/agentriage/intent.py`).

use std::time::Duration;

use agentriage::Timestamp;
use agentriage::intent::{
    Algorithm, Expected, IntentClaims, IntentConfig, IntentFact, IntentVerifier, SigningKey,
    TrustedKeys,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

fn algorithm(alg: &str) -> PyResult<Algorithm> {
    alg.parse::<Algorithm>().map_err(PyValueError::new_err)
}

/// `(private_key_pem, public_jwk_json)` of a new key.
#[pyfunction]
pub fn intent_keygen(alg: &str, kid: &str, iss: &str) -> PyResult<(String, String)> {
    let key = SigningKey::generate(algorithm(alg)?, kid, iss)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((key.pkcs8_pem(), key.public_jwk().to_string()))
}

/// The compact JWS of `claims` (a JSON object), signed with the PEM key.
/// Claims are checked as `SigningKey::sign` checks them.
#[pyfunction]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the keyword-only Python API"
)]
#[pyo3(signature = (key_pem, alg, kid, iss, aud, act, res, purpose, iat, lifetime_s, jti=None, nbf=None, scope=Vec::new()))]
pub fn intent_sign(
    py: Python<'_>,
    key_pem: &str,
    alg: &str,
    kid: &str,
    iss: &str,
    aud: Vec<String>,
    act: &str,
    res: &str,
    purpose: &str,
    iat: i64,
    lifetime_s: u64,
    jti: Option<String>,
    nbf: Option<i64>,
    scope: Vec<String>,
) -> PyResult<String> {
    let alg = algorithm(alg)?;
    py.detach(|| {
        let key = SigningKey::from_pem(alg, kid, iss, key_pem)?;
        let mut claims = IntentClaims::new(
            iss,
            "",
            act,
            res,
            purpose,
            iat,
            Duration::from_secs(lifetime_s),
        );
        claims.aud = aud;
        claims.nbf = nbf;
        claims.scope = scope;
        if let Some(jti) = jti {
            claims.jti = jti;
        }
        key.sign(&claims)
    })
    .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The intent fact (JSON) of `token` for the given request, without
/// recording its `jti`.
#[pyfunction]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the keyword-only Python API"
)]
#[pyo3(signature = (token, keys_json, audience, principal, action, resource, time_unix_nanos, clock_skew_s, max_lifetime_s))]
pub fn intent_verify(
    py: Python<'_>,
    token: &str,
    keys_json: &str,
    audience: &str,
    principal: &str,
    action: &str,
    resource: Option<&str>,
    time_unix_nanos: Option<i128>,
    clock_skew_s: u64,
    max_lifetime_s: u64,
) -> PyResult<String> {
    let keys = TrustedKeys::from_json(keys_json).map_err(|e| {
        let line = e.line().map_or(String::new(), |l| format!(" (line {l})"));
        PyValueError::new_err(format!("{e}{line}"))
    })?;
    let now = match time_unix_nanos {
        None => Timestamp::now(),
        Some(n) => Timestamp::from_unix_nanos(n)
            .ok_or_else(|| PyValueError::new_err("time is out of range"))?,
    };
    Ok(py.detach(|| {
        let verifier = IntentVerifier::new(
            IntentConfig::new(keys, audience)
                .with_clock_skew(Duration::from_secs(clock_skew_s))
                .with_max_lifetime(Duration::from_secs(max_lifetime_s)),
        );
        let expected = Expected {
            principal,
            action,
            resource: resource.and_then(|r| r.split_once(':')),
        };
        match verifier.verify_unrecorded(token, &expected, now) {
            Ok(v) => IntentFact::Verified(Box::new(v)),
            Err(e) => IntentFact::Invalid(e),
        }
        .to_json()
        .to_string()
    }))
}
