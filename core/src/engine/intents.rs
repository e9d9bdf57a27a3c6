//! The engine's intent state: the host's intent configuration, if any, and
//! the replay cache that outlives bundle swaps; the intent fact of each
//! request (see [`crate::intent`]).

use std::sync::Arc;

use super::Engine;
use crate::bundle::Bundle;
use crate::intent::verify;
use crate::intent::{
    Expected, IntentCheck, IntentConfig, IntentError, IntentFact, NoReplayCheck, ReplayCache,
    ReplayError,
};
use crate::metrics::Metrics;
use crate::request::{Request, Timestamp};
use crate::state::{StateError, StateStore, jti_key};

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

/// A [`StateStore`] seen as the intents' [`ReplayCache`]; a failure of the
/// store counts in the engine's metrics.
#[derive(Debug, Clone)]
pub(crate) struct StoreReplay(pub(crate) Arc<dyn StateStore>, pub(crate) Arc<Metrics>);

impl ReplayCache for StoreReplay {
    fn check_and_record(
        &self,
        issuer: &str,
        jti: &str,
        expires_unix_nanos: i128,
        now_unix_nanos: i128,
    ) -> Result<(), ReplayError> {
        match self
            .0
            .insert_once(&jti_key(issuer, jti), expires_unix_nanos, now_unix_nanos)
        {
            Ok(true) => Ok(()),
            Ok(false) => Err(ReplayError::Seen {
                issuer: issuer.to_owned(),
                jti: jti.to_owned(),
            }),
            Err(StateError::Full { capacity }) => {
                self.1.state_error(self.0.kind(), "insert_once");
                Err(ReplayError::Full { capacity })
            }
            Err(e) => {
                self.1.state_error(self.0.kind(), "insert_once");
                Err(ReplayError::Unavailable(e.to_string()))
            }
        }
    }
}
