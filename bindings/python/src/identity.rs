//! Identity helpers from Python (`agentriage.identity`, assembled in
//! `python/agentriage/identity.py`): JSON in, JSON out, through
//! `agentriage::identity::principal_json`.

use agentriage::identity::{self, Source};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `{"principal": …}` or `{"error": …}` for `input_json` read as `source`
/// (`token`, `user_token` or `mcp`).
#[pyfunction]
pub fn identity_principal(py: Python<'_>, source: &str, input_json: &str) -> PyResult<String> {
    let source = match source {
        "token" => Source::TokenClaims,
        "user_token" => Source::UserTokenClaims,
        "mcp" => Source::McpAuthInfo,
        other => {
            return Err(PyValueError::new_err(format!(
                "`{other}` is not an identity source; expected token, user_token or mcp"
            )));
        }
    };
    py.detach(|| {
        let input: serde_json::Value = serde_json::from_str(input_json)
            .map_err(|e| PyValueError::new_err(format!("not valid JSON: {e}")))?;
        Ok(identity::principal_json(source, &input).to_string())
    })
}

/// `{"principal": …}` or `{"error": …}` for an X.509-SVID (PEM or DER).
#[pyfunction]
pub fn identity_svid_principal(py: Python<'_>, certificate: &[u8]) -> String {
    py.detach(|| identity::svid_principal_json(certificate).to_string())
}
