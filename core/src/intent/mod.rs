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
pub(crate) mod strict_json;
pub(crate) mod verify;

use std::sync::Arc;

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

use crate::bundle::Bundle;
use crate::engine::Engine;
use crate::request::{Request, Timestamp};

/// The engine's intent state: a host configuration, if any, and the replay
/// cache that outlives bundle swaps.
#[derive(Debug)]
pub(crate) struct EngineIntents {
    pub(crate) host: Option<IntentConfig>,
    pub(crate) replay: Arc<dyn ReplayCache>,
}

impl EngineIntents {
    /// No host configuration; `jti`s recorded in `replay`.
    pub(crate) fn with_replay(replay: Arc<dyn ReplayCache>) -> EngineIntents {
        EngineIntents { host: None, replay }
    }
}

fn unconfigured() -> IntentError {
    IntentError::new(
        IntentCheck::Unconfigured,
        "the request carries an intent but no trusted keys are configured \
         (bundle `[intents]` or the host's intent configuration)",
    )
}

impl EngineIntents {
    /// Verifies the request's intent, if any, with the host's configuration
    /// or else the bundle's.
    pub(crate) fn fact(&self, bundle: &Bundle, request: &Request, now: Timestamp) -> IntentFact {
        self.fact_with(bundle, request, now, true)
    }

    /// The intent fact by the bundle's own configuration, without consulting
    /// or recording any replay cache: for a shadow bundle's evaluation.
    pub(crate) fn unrecorded(bundle: &Bundle, request: &Request, now: Timestamp) -> IntentFact {
        let Some(token) = &request.intent else {
            return IntentFact::Absent;
        };
        let Some(config) = bundle.intents.as_ref() else {
            return IntentFact::Invalid(unconfigured());
        };
        match verify::verify_with(config, &NoReplayCheck, token, &Expected::of(request), now) {
            Ok(v) => IntentFact::Verified(Box::new(v)),
            Err(e) => IntentFact::Invalid(e),
        }
    }

    /// As [`fact`](Self::fact), without consulting or recording the replay
    /// cache: for evaluating again a request already decided (coverage).
    pub(crate) fn fact_unrecorded(
        &self,
        bundle: &Bundle,
        request: &Request,
        now: Timestamp,
    ) -> IntentFact {
        self.fact_with(bundle, request, now, false)
    }

    /// As [`fact`](Self::fact), recording the `jti` in `replay` unless the
    /// host's configuration names its own cache.
    pub(crate) fn fact_replay(
        &self,
        bundle: &Bundle,
        request: &Request,
        now: Timestamp,
        replay: &dyn ReplayCache,
    ) -> IntentFact {
        let Some(token) = &request.intent else {
            return IntentFact::Absent;
        };
        let Some(config) = self.host.as_ref().or(bundle.intents.as_ref()) else {
            return IntentFact::Invalid(unconfigured());
        };
        let replay: &dyn ReplayCache = match &config.replay {
            Some(own) => own.as_ref(),
            None => replay,
        };
        match verify::verify_with(config, replay, token, &Expected::of(request), now) {
            Ok(v) => IntentFact::Verified(Box::new(v)),
            Err(e) => IntentFact::Invalid(e),
        }
    }

    fn fact_with(
        &self,
        bundle: &Bundle,
        request: &Request,
        now: Timestamp,
        replay_check: bool,
    ) -> IntentFact {
        let Some(token) = &request.intent else {
            return IntentFact::Absent;
        };
        let Some(config) = self.host.as_ref().or(bundle.intents.as_ref()) else {
            return IntentFact::Invalid(unconfigured());
        };
        let replay: &dyn ReplayCache = if replay_check {
            config.replay.as_ref().unwrap_or(&self.replay).as_ref()
        } else {
            &NoReplayCheck
        };
        match verify::verify_with(config, replay, token, &Expected::of(request), now) {
            Ok(v) => IntentFact::Verified(Box::new(v)),
            Err(e) => IntentFact::Invalid(e),
        }
    }
}

impl Engine {
    /// This engine, verifying intents with `config` (keys, audience, time
    /// window, and optionally a replay cache) instead of the bundle's
    /// `[intents]` table.
    ///
    /// ```
    /// use agentriage::intent::{IntentConfig, TrustedKeys};
    ///
    /// let keys = TrustedKeys::from_json(
    ///     &std::fs::read_to_string("../policies/a2a-supply-chain/data/intent-keys.json").unwrap(),
    /// ).unwrap();
    /// let engine = agentriage::Engine::from_dir("../policies/a2a-supply-chain")?
    ///     .with_intents(IntentConfig::new(keys, "spiffe://acme.example/ns/payments/sa/gateway"));
    /// assert!(engine.intent_config().is_some());
    /// # Ok::<(), agentriage::Error>(())
    /// ```
    #[must_use]
    pub fn with_intents(mut self, config: IntentConfig) -> Engine {
        self.intents.host = Some(config);
        self
    }

    /// This engine, remembering intents' `jti`s in `cache` (e.g. a store
    /// shared by several processes) unless the intent configuration names
    /// its own.
    #[must_use]
    pub fn with_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> Engine {
        self.intents.replay = cache;
        self
    }

    /// The intent configuration in force: the host's, else the live bundle's
    /// (a copy: a reload may replace the bundle's).
    pub fn intent_config(&self) -> Option<IntentConfig> {
        match &self.intents.host {
            Some(host) => Some(host.clone()),
            None => self.bundle().intents.clone(),
        }
    }
}
