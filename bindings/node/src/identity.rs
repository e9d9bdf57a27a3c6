//! Identity helpers for Node: JSON in, JSON out, through
//! `agentriage::identity::principal_json` (wrapped as `identity` in
//! `identity.js`).

use agentriage::identity::{self, Source};
use napi::Status;
use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

/// `{"principal": …}` or `{"error": …}` for `input_json` read as `source`
/// (`token`, `user_token` or `mcp`).
#[napi]
pub fn identity_principal(source: String, input_json: String) -> napi::Result<String> {
    let source = match source.as_str() {
        "token" => Source::TokenClaims,
        "user_token" => Source::UserTokenClaims,
        "mcp" => Source::McpAuthInfo,
        other => {
            return Err(napi::Error::new(
                Status::InvalidArg,
                format!("`{other}` is not an identity source; expected token, user_token or mcp"),
            ));
        }
    };
    let input: serde_json::Value = serde_json::from_str(&input_json)
        .map_err(|e| napi::Error::new(Status::InvalidArg, format!("not valid JSON: {e}")))?;
    Ok(identity::principal_json(source, &input).to_string())
}

/// `{"principal": …}` or `{"error": …}` for an X.509-SVID (PEM or DER).
#[napi]
pub fn identity_svid_principal(certificate: Buffer) -> String {
    identity::svid_principal_json(&certificate).to_string()
}
