//! Errors of intent verification, key sets and signing.

use std::fmt;

/// The check an intent failed: each names one step of verification, in the
/// order the steps run. Policies see [`as_str`](Self::as_str) as
/// `facts.intent.error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IntentCheck {
    /// Neither the bundle nor the host configured intent verification.
    Unconfigured,
    /// The token is larger than [`MAX_INTENT_BYTES`](super::MAX_INTENT_BYTES).
    Size,
    /// Not three base64url segments holding a JSON header and payload.
    Format,
    /// The header or the payload repeats a JSON key.
    DuplicateKey,
    /// The header lacks `kid`, has an unexpected `typ`, or marks an
    /// extension critical (`crit`).
    Header,
    /// The header's `alg` is not `EdDSA` or `ES256` (`none` and HMAC
    /// included).
    Algorithm,
    /// No trusted key has the header's `kid`.
    UnknownKey,
    /// The key named by `kid` is not a key for the header's `alg`.
    KeyAlgorithm,
    /// The signature does not verify with the key.
    Signature,
    /// A required claim is missing or has the wrong type.
    Claims,
    /// The key is bound to another issuer than the token's `iss`.
    IssuerKey,
    /// `iss` is not the request's `principal.id`.
    Principal,
    /// `aud` does not name the configured audience.
    Audience,
    /// `act` is not the request's `action.name`.
    Action,
    /// `res` is not the request's resource `type:id`.
    Resource,
    /// `nbf` or `iat` lies in the future, beyond the clock skew.
    NotYetValid,
    /// `exp` has passed, beyond the clock skew.
    Expired,
    /// `exp` is not after `iat`, or further after it than the maximum
    /// lifetime.
    Lifetime,
    /// The `jti` of this issuer was seen before, within its lifetime.
    Replay,
    /// The replay cache could not record the `jti` (full, unavailable, or
    /// unable to vouch for the token's time); fails closed.
    ReplayStore,
}

impl IntentCheck {
    /// Every check, in the order verification runs them.
    pub const ALL: [IntentCheck; 20] = [
        IntentCheck::Unconfigured,
        IntentCheck::Size,
        IntentCheck::Format,
        IntentCheck::DuplicateKey,
        IntentCheck::Header,
        IntentCheck::Algorithm,
        IntentCheck::UnknownKey,
        IntentCheck::KeyAlgorithm,
        IntentCheck::Signature,
        IntentCheck::Claims,
        IntentCheck::IssuerKey,
        IntentCheck::Principal,
        IntentCheck::Audience,
        IntentCheck::Action,
        IntentCheck::Resource,
        IntentCheck::NotYetValid,
        IntentCheck::Expired,
        IntentCheck::Lifetime,
        IntentCheck::Replay,
        IntentCheck::ReplayStore,
    ];

    /// A stable, machine-readable name (`signature`, `expired`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            IntentCheck::Unconfigured => "unconfigured",
            IntentCheck::Size => "size",
            IntentCheck::Format => "format",
            IntentCheck::DuplicateKey => "duplicate_key",
            IntentCheck::Header => "header",
            IntentCheck::Algorithm => "algorithm",
            IntentCheck::UnknownKey => "unknown_key",
            IntentCheck::KeyAlgorithm => "key_algorithm",
            IntentCheck::Signature => "signature",
            IntentCheck::Claims => "claims",
            IntentCheck::IssuerKey => "issuer_key",
            IntentCheck::Principal => "principal",
            IntentCheck::Audience => "audience",
            IntentCheck::Action => "action",
            IntentCheck::Resource => "resource",
            IntentCheck::NotYetValid => "not_yet_valid",
            IntentCheck::Expired => "expired",
            IntentCheck::Lifetime => "lifetime",
            IntentCheck::Replay => "replay",
            IntentCheck::ReplayStore => "replay_store",
        }
    }
}

impl fmt::Display for IntentCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An intent that failed verification: which check, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("intent failed check `{check}`: {message}")]
pub struct IntentError {
    check: IntentCheck,
    message: String,
}

impl IntentError {
    pub(crate) fn new(check: IntentCheck, message: impl Into<String>) -> IntentError {
        IntentError {
            check,
            message: message.into(),
        }
    }

    /// The check that failed.
    pub fn check(&self) -> IntentCheck {
        self.check
    }

    /// The problem, without the check's name.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A key set (JWKS) that could not be read: names the JSON path and, where
/// known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid key set at `{path}`: {message}")]
pub struct KeySetError {
    path: String,
    line: Option<u32>,
    message: String,
}

impl KeySetError {
    pub(crate) fn new(
        path: impl Into<String>,
        line: Option<u32>,
        message: impl Into<String>,
    ) -> KeySetError {
        KeySetError {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// The JSON path of the offending member, e.g. `keys[1].crv`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The 1-based line of the key set text, where known.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The problem, without path and line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Signing or key generation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The private key is not a PKCS#8 key of the named algorithm.
    #[error("invalid {algorithm} private key: {message}")]
    Key {
        /// The algorithm the key was meant for.
        algorithm: &'static str,
        /// What was wrong.
        message: String,
    },
    /// A claim is unusable (empty issuer, `exp` not after `iat`, …).
    #[error("invalid claim `{claim}`: {message}")]
    Claim {
        /// The claim's name.
        claim: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The system's random generator failed.
    #[error("random generator failed")]
    Random,
}
