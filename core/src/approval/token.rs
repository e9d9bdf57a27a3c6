//! Approval tokens: a compact JWS (`typ` `approval+jwt`, EdDSA or ES256)
//! by which an approver approves one action for the escalation reasons it
//! names, until it expires, once.

use std::fmt;

use serde_json::{Map, Value};

use super::config::ApprovalConfig;
use crate::intent::jws_json::{self, Member, Members};
use crate::intent::verify::parse_typed;
use crate::intent::{IntentCheck, MAX_JTI_BYTES, SignError, SigningKey};
use crate::request::Timestamp;
use crate::strict_json;

/// The header `typ` every approval carries.
pub const APPROVAL_TYP: &str = "approval+jwt";

const NANOS: i128 = 1_000_000_000;

/// The check an approval failed. The decision's reason is
/// `approval.<as_str>`, and the outcome `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApprovalCheck {
    /// The request carries an approval, but the bundle accepts none (no
    /// `[approvals]` table).
    Unconfigured,
    /// Not a well-formed approval token: size, segments, base64url, JSON,
    /// a repeated key, header (`typ` must be `approval+jwt`, `crit` is
    /// refused), algorithm.
    Token,
    /// No approver key has the header's `kid`.
    UnknownKey,
    /// The signature does not verify with that key (or the key is not one
    /// for the header's `alg`).
    Signature,
    /// A required claim is missing or has the wrong type.
    Claims,
    /// The key belongs to another approver than `iss`.
    IssuerKey,
    /// `aud` does not name the bundle's approval audience.
    Audience,
    /// `action_digest` is not the digest of this request's action: the
    /// approval is for another action (a digested field changed).
    Action,
    /// `iat` or `nbf` lies in the future, beyond the clock skew.
    NotYetValid,
    /// `exp` has passed, beyond the clock skew.
    Expired,
    /// `exp` is not after `iat`, or further after it than the bundle allows.
    Lifetime,
    /// Signed after the request for approval (`request_exp`) expired.
    RequestExpired,
    /// `iss` is not an approver the bundle knows.
    UnknownApprover,
    /// The approver holds no role that may approve one of the escalations.
    Role,
    /// The decision escalates for a reason the approval does not name.
    Reasons,
    /// The approval was used before.
    Reused,
    /// The state store could not record the use (unavailable, full).
    Store,
    /// The principal used more approvals in this window than the bundle
    /// allows (`approvals.max_per_principal`).
    Cap,
}

impl ApprovalCheck {
    /// The check's name, e.g. `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalCheck::Unconfigured => "unconfigured",
            ApprovalCheck::Token => "token",
            ApprovalCheck::UnknownKey => "unknown_key",
            ApprovalCheck::Signature => "signature",
            ApprovalCheck::Claims => "claims",
            ApprovalCheck::IssuerKey => "issuer_key",
            ApprovalCheck::Audience => "audience",
            ApprovalCheck::Action => "action_mismatch",
            ApprovalCheck::NotYetValid => "not_yet_valid",
            ApprovalCheck::Expired => "expired",
            ApprovalCheck::Lifetime => "lifetime",
            ApprovalCheck::RequestExpired => "request_expired",
            ApprovalCheck::UnknownApprover => "unknown_approver",
            ApprovalCheck::Role => "role",
            ApprovalCheck::Reasons => "reasons",
            ApprovalCheck::Reused => "reused",
            ApprovalCheck::Store => "store",
            ApprovalCheck::Cap => "cap",
        }
    }
}

impl fmt::Display for ApprovalCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an approval was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("approval refused ({check}): {message}")]
pub struct ApprovalError {
    check: ApprovalCheck,
    message: String,
}

impl ApprovalError {
    pub(crate) fn new(check: ApprovalCheck, message: impl Into<String>) -> ApprovalError {
        ApprovalError {
            check,
            message: message.into(),
        }
    }

    /// The check that failed.
    pub fn check(&self) -> ApprovalCheck {
        self.check
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The claims of an approval. Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ApprovalClaims {
    /// The approver's identity (its key is bound to it).
    pub iss: String,
    /// Who acts on the approval: the bundle's approval audience.
    pub aud: Vec<String>,
    /// The one-time id.
    pub jti: String,
    /// When it was signed.
    pub iat: i64,
    /// Not valid before this time, if set.
    pub nbf: Option<i64>,
    /// Not valid from this time on.
    pub exp: i64,
    /// The digest of the approved action (`sha256:…`).
    pub action_digest: String,
    /// The escalation reasons (rule ids) approved.
    pub reasons: Vec<String>,
    /// The escalated decision's id, for the record.
    pub decision_id: Option<String>,
    /// When the request for approval expired; an approval signed later is
    /// refused.
    pub request_exp: Option<i64>,
}

impl ApprovalClaims {
    /// Claims approving the action with `action_digest` for `reasons`, by
    /// `iss`, for `aud`, signed at `iat` (Unix seconds) and valid for
    /// `lifetime_s` seconds, with a fresh `jti`.
    pub fn new(
        iss: impl Into<String>,
        aud: impl Into<String>,
        action_digest: impl Into<String>,
        reasons: Vec<String>,
        iat: i64,
        lifetime_s: u64,
    ) -> ApprovalClaims {
        ApprovalClaims {
            iss: iss.into(),
            aud: vec![aud.into()],
            jti: uuid::Uuid::now_v7().to_string(),
            iat,
            nbf: None,
            exp: iat.saturating_add(i64::try_from(lifetime_s).unwrap_or(i64::MAX)),
            action_digest: action_digest.into(),
            reasons,
            decision_id: None,
            request_exp: None,
        }
    }

    /// The claims as the JSON object that is signed.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("iss".into(), self.iss.clone().into());
        let aud = match self.aud.as_slice() {
            [one] => Value::from(one.clone()),
            many => Value::from(many.to_vec()),
        };
        o.insert("aud".into(), aud);
        o.insert("jti".into(), self.jti.clone().into());
        o.insert("iat".into(), self.iat.into());
        if let Some(nbf) = self.nbf {
            o.insert("nbf".into(), nbf.into());
        }
        o.insert("exp".into(), self.exp.into());
        o.insert("action_digest".into(), self.action_digest.clone().into());
        o.insert("reasons".into(), self.reasons.clone().into());
        if let Some(d) = &self.decision_id {
            o.insert("decision_id".into(), d.clone().into());
        }
        if let Some(r) = self.request_exp {
            o.insert("request_exp".into(), r.into());
        }
        Value::Object(o)
    }
}

/// Signs `claims` as an approval (`typ` `approval+jwt`) with `key`, whose
/// issuer must be `claims.iss`.
pub fn sign(key: &SigningKey, claims: &ApprovalClaims) -> Result<String, SignError> {
    let claim = |claim: &'static str, message: &str| SignError::Claim {
        claim,
        message: message.to_owned(),
    };
    if claims.iss != key.issuer() {
        return Err(SignError::Claim {
            claim: "iss",
            message: format!(
                "`{}` is not this key's issuer `{}`",
                claims.iss,
                key.issuer()
            ),
        });
    }
    if claims.exp <= claims.iat {
        return Err(claim("exp", "is not after `iat`"));
    }
    if claims.jti.is_empty() {
        return Err(claim("jti", "is empty"));
    }
    if claims.aud.is_empty() {
        return Err(claim("aud", "names no audience"));
    }
    if !claims.action_digest.starts_with("sha256:") {
        return Err(claim("action_digest", "is not a `sha256:` digest"));
    }
    if claims.reasons.is_empty() || claims.reasons.iter().any(String::is_empty) {
        return Err(claim(
            "reasons",
            "must name at least one rule id, none empty",
        ));
    }
    if claims.request_exp.is_some_and(|r| claims.iat > r) {
        return Err(claim(
            "iat",
            "is after `request_exp`: the request for approval has expired",
        ));
    }
    key.sign_json_typed(&claims.to_json(), APPROVAL_TYP)
}

/// An approval whose token verified: signature, claims, time, action.
/// Whether it settles a decision (roles, reasons, one-time use) is decided
/// with the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedApproval {
    /// The header's key id.
    pub kid: String,
    /// The claims.
    pub claims: ApprovalClaims,
}

const CLAIMS: [&str; 10] = [
    "iss",
    "aud",
    "jti",
    "iat",
    "nbf",
    "exp",
    "action_digest",
    "reasons",
    "decision_id",
    "request_exp",
];

fn claims_error(m: impl Into<String>) -> ApprovalError {
    ApprovalError::new(ApprovalCheck::Claims, m)
}

fn string(o: &Members<'_, 10>, i: usize, required: bool) -> Result<Option<String>, ApprovalError> {
    let name = CLAIMS.get(i).copied().unwrap_or_default();
    match o.get(i) {
        Some(Member::Str(s)) if !s.is_empty() => Ok(Some(s.to_string())),
        Some(Member::Str(_)) => Err(claims_error(format!("claim `{name}` is empty"))),
        Some(_) => Err(claims_error(format!("claim `{name}` must be a string"))),
        None if required => Err(claims_error(format!("claim `{name}` is required"))),
        None => Ok(None),
    }
}

fn strings(o: &Members<'_, 10>, i: usize) -> Result<Vec<String>, ApprovalError> {
    let name = CLAIMS.get(i).copied().unwrap_or_default();
    match o.get(i) {
        Some(Member::Str(s)) if !s.is_empty() => Ok(vec![s.to_string()]),
        Some(Member::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|m| match m {
                Member::Str(s) if !s.is_empty() => Ok(s.to_string()),
                _ => Err(claims_error(format!(
                    "claim `{name}` must hold only non-empty strings"
                ))),
            })
            .collect(),
        None => Err(claims_error(format!("claim `{name}` is required"))),
        _ => Err(claims_error(format!(
            "claim `{name}` must be a string or a non-empty array of strings"
        ))),
    }
}

/// Whole seconds only: an approval's times are not rounded.
fn seconds(o: &Members<'_, 10>, i: usize, required: bool) -> Result<Option<i64>, ApprovalError> {
    let name = CLAIMS.get(i).copied().unwrap_or_default();
    match o.get(i) {
        Some(Member::Num(n)) => n
            .as_i64()
            .filter(|v| v.unsigned_abs() < 1 << 40)
            .map(Some)
            .ok_or_else(|| {
                claims_error(format!(
                    "claim `{name}` must be whole seconds since the epoch"
                ))
            }),
        Some(_) => Err(claims_error(format!(
            "claim `{name}` must be a number of seconds"
        ))),
        None if required => Err(claims_error(format!("claim `{name}` is required"))),
        None => Ok(None),
    }
}

fn token_error(e: &crate::intent::IntentError) -> ApprovalError {
    let check = match e.check() {
        IntentCheck::UnknownKey => ApprovalCheck::UnknownKey,
        IntentCheck::Signature | IntentCheck::KeyAlgorithm => ApprovalCheck::Signature,
        _ => ApprovalCheck::Token,
    };
    ApprovalError::new(check, e.message())
}

/// Verifies `token` for the action whose digest is `digest`, at `now`:
/// format, signature by a key bound to `iss`, audience, digest, times.
/// Nothing is recorded.
pub(crate) fn verify(
    config: &ApprovalConfig,
    token: &str,
    digest: &str,
    now: Timestamp,
) -> Result<VerifiedApproval, ApprovalError> {
    let parsed = parse_typed(token, Some(APPROVAL_TYP)).map_err(|e| token_error(&e))?;
    let payload = jws_json::object(&parsed.payload, &CLAIMS).map_err(|e| {
        let m = e.to_string();
        if m.starts_with(strict_json::DUPLICATE_KEY) {
            ApprovalError::new(
                ApprovalCheck::Token,
                format!("the payload repeats a key: {e}"),
            )
        } else {
            ApprovalError::new(
                ApprovalCheck::Token,
                format!("the payload is not a JSON object: {e}"),
            )
        }
    })?;
    let key = config.keys.get(&parsed.kid).ok_or_else(|| {
        ApprovalError::new(
            ApprovalCheck::UnknownKey,
            format!("no approver key has kid `{}`", parsed.kid),
        )
    })?;
    if key.algorithm() != parsed.alg || !key.verify(parsed.signing_input, &parsed.signature) {
        return Err(ApprovalError::new(
            ApprovalCheck::Signature,
            format!("the signature does not verify with key `{}`", parsed.kid),
        ));
    }
    let claims = ApprovalClaims {
        iss: string(&payload, 0, true)?.unwrap_or_default(),
        aud: strings(&payload, 1)?,
        jti: string(&payload, 2, true)?.unwrap_or_default(),
        iat: seconds(&payload, 3, true)?.unwrap_or_default(),
        nbf: seconds(&payload, 4, false)?,
        exp: seconds(&payload, 5, true)?.unwrap_or_default(),
        action_digest: string(&payload, 6, true)?.unwrap_or_default(),
        reasons: strings(&payload, 7)?,
        decision_id: string(&payload, 8, false)?,
        request_exp: seconds(&payload, 9, false)?,
    };
    if claims.jti.len() > MAX_JTI_BYTES {
        return Err(claims_error(format!(
            "claim `jti` is longer than {MAX_JTI_BYTES} bytes"
        )));
    }
    if key.issuer() != claims.iss {
        return Err(ApprovalError::new(
            ApprovalCheck::IssuerKey,
            format!(
                "key `{}` belongs to `{}`, not to the approver `{}`",
                parsed.kid,
                key.issuer(),
                claims.iss
            ),
        ));
    }
    if !claims.aud.contains(&config.audience) {
        return Err(ApprovalError::new(
            ApprovalCheck::Audience,
            format!("not addressed to `{}`", config.audience),
        ));
    }
    if claims.action_digest != digest {
        return Err(ApprovalError::new(
            ApprovalCheck::Action,
            format!(
                "approves the action with digest `{}`; this request's action has digest `{digest}`",
                claims.action_digest
            ),
        ));
    }
    let t = now.unix_nanos();
    let skew = i128::from(config.clock_skew_s) * NANOS;
    let (iat, exp) = (
        i128::from(claims.iat) * NANOS,
        i128::from(claims.exp) * NANOS,
    );
    if iat > t + skew || claims.nbf.is_some_and(|n| i128::from(n) * NANOS > t + skew) {
        return Err(ApprovalError::new(
            ApprovalCheck::NotYetValid,
            format!("not valid yet at {}", now.rfc3339()),
        ));
    }
    if exp + skew <= t {
        return Err(ApprovalError::new(
            ApprovalCheck::Expired,
            format!("expired at {} (evaluated at {})", claims.exp, now.rfc3339()),
        ));
    }
    if exp <= iat || exp - iat > i128::from(config.max_lifetime_s) * NANOS {
        return Err(ApprovalError::new(
            ApprovalCheck::Lifetime,
            format!(
                "lives {} s; it must live more than 0 and at most {} s",
                claims.exp.saturating_sub(claims.iat),
                config.max_lifetime_s
            ),
        ));
    }
    if let Some(r) = claims.request_exp
        && claims.iat > r
    {
        return Err(ApprovalError::new(
            ApprovalCheck::RequestExpired,
            format!(
                "signed at {} after the request for approval expired at {r}",
                claims.iat
            ),
        ));
    }
    Ok(VerifiedApproval {
        kid: parsed.kid,
        claims,
    })
}
