//! Signed intents: verify who asked for what, once, before policy runs.
//!
//! An intent is a compact JWS (RFC 7515) over JWT claims (RFC 7519): the
//! issuing agent (`iss`, its SPIFFE ID), the receiver (`aud`), a nonce
//! (`jti`), issue and expiry times (`iat`, optional `nbf`, `exp`), the action
//! (`act`), the resource (`res`, `type:id`), a `purpose` and an optional
//! `scope`. Any JOSE library can make one; [`SigningKey`] makes one too.
//!
//! Only `EdDSA` (Ed25519) and `ES256` (P-256) are accepted, through `ring`.
//! Trusted keys come from a JWKS ([`TrustedKeys`]) in which every key is
//! bound to one issuer, from the bundle's `[intents]` table or from the host
//! ([`Engine::with_intents`](crate::Engine::with_intents)).
//!
//! When a request carries `intent`, the engine verifies it before policies
//! run ([`IntentVerifier`] runs the checks of [`IntentCheck`] in order) and
//! policies see the result as `facts.intent` ([`IntentFact`]). A failed
//! check is not a request error: the decision is made, and policies decide
//! what a failed intent means (the reference pack rejects).
//!
//! See `docs/intents.md` for the threat model.

mod b64;
mod error;
mod fact;
pub(crate) mod jws_json;
mod keys;
mod manifest;
mod replay;
mod sign;
pub(crate) mod verify;

pub use error::{IntentCheck, IntentError, KeySetError, SignError};
pub use fact::IntentFact;
pub use keys::{Algorithm, MAX_KEY_SET_BYTES, TrustedKey, TrustedKeys};
pub use manifest::{MAX_CLOCK_SKEW_S, MAX_LIFETIME_S};
pub(crate) use manifest::{ManifestIntents, load as load_manifest, load_key_set};
pub use replay::{
    DEFAULT_REPLAY_CAPACITY, MemoryReplayCache, NoReplayCheck, ReplayCache, ReplayError,
};
pub use sign::SigningKey;
pub use verify::{
    DEFAULT_CLOCK_SKEW, DEFAULT_MAX_LIFETIME, Expected, IntentClaims, IntentConfig, IntentVerifier,
    MAX_INTENT_BYTES, MAX_JTI_BYTES, VerifiedIntent,
};
