//! Approvals from Python: the action digest and signing
//! (`agentriage.approval`, assembled in `python/agentriage/approval.py`).

use agentriage::approval::{ApprovalClaims, action_digest};
use agentriage::intent::{Algorithm, SigningKey};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The digest of the action of `request_json` with `context_fields`
/// digested.
#[pyfunction]
pub fn approval_digest(request_json: &str, context_fields: Vec<String>) -> PyResult<String> {
    let request = agentriage::Request::from_json(request_json)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok(action_digest(&request, &context_fields))
}

/// The compact JWS (`typ` `approval+jwt`) of the approval, signed with the
/// PEM key.
#[pyfunction]
#[allow(
    clippy::too_many_arguments,
    reason = "mirrors the keyword-only Python API"
)]
#[pyo3(signature = (key_pem, alg, kid, iss, aud, action_digest, reasons, iat, lifetime_s, jti=None, decision_id=None, request_exp=None))]
pub fn approval_sign(
    py: Python<'_>,
    key_pem: &str,
    alg: &str,
    kid: &str,
    iss: &str,
    aud: &str,
    action_digest: &str,
    reasons: Vec<String>,
    iat: i64,
    lifetime_s: u64,
    jti: Option<String>,
    decision_id: Option<String>,
    request_exp: Option<i64>,
) -> PyResult<String> {
    let alg = alg.parse::<Algorithm>().map_err(PyValueError::new_err)?;
    py.detach(|| {
        let key = SigningKey::from_pem(alg, kid, iss, key_pem)?;
        let mut claims = ApprovalClaims::new(iss, aud, action_digest, reasons, iat, lifetime_s);
        if let Some(jti) = jti {
            claims.jti = jti;
        }
        claims.decision_id = decision_id;
        claims.request_exp = request_exp;
        agentriage::approval::sign(&key, &claims)
    })
    .map_err(|e| PyValueError::new_err(e.to_string()))
}
