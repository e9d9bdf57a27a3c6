//! Shadow mode: a candidate bundle evaluated beside the live one.
//!
//! Every decision is also evaluated with the candidate; when the outcomes
//! differ, the difference goes to the host's sink and a counter. The
//! candidate never changes the outcome: its errors and panics are counted
//! and otherwise ignored.

use std::sync::Arc;
use std::time::Instant;

use super::Engine;
use crate::bundle::Bundle;
use crate::decision::{BundleInfo, Decision, Outcome};
use crate::metrics::Metrics;
use crate::request::{Request, Timestamp};

/// A live decision whose outcome the candidate bundle would have changed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ShadowDifference {
    /// The live decision's id.
    pub decision_id: String,
    /// The live decision's trace id.
    pub trace_id: String,
    /// The request's action.
    pub action: String,
    /// The live outcome (what the host acts on).
    pub live: Outcome,
    /// What the candidate decided.
    pub candidate: Outcome,
    /// The live decision's policy ids.
    pub live_policies: Vec<String>,
    /// The candidate's policy ids.
    pub candidate_policies: Vec<String>,
    /// The live bundle.
    pub live_bundle: Arc<BundleInfo>,
    /// The candidate bundle.
    pub candidate_bundle: Arc<BundleInfo>,
}

/// Receives shadow differences; called on the deciding thread, so it should
/// be quick (hand the difference to a channel, a log, a counter).
pub type ShadowSink = Arc<dyn Fn(&ShadowDifference) + Send + Sync>;

/// A candidate bundle and where its differences go.
pub(crate) struct Shadow {
    pub bundle: Bundle,
    pub sink: ShadowSink,
}

impl Shadow {
    pub(crate) fn compare(&self, request: &Request, live: &Decision, metrics: &Metrics) {
        let evaluated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            // The candidate checks the intent with its own keys and never
            // records the `jti`: the live decision already did.
            let verify = |r: &Request, now: Timestamp| {
                super::intents::EngineIntents::unrecorded(&self.bundle, r, now)
            };
            Engine::evaluate(
                &self.bundle,
                request,
                &verify,
                &crate::state::MemoryStore::new(1024),
                Instant::now(),
            )
        }));
        let Ok(Ok(candidate)) = evaluated else {
            metrics.shadowed(false, true);
            return;
        };
        let differs = candidate.outcome != live.outcome;
        metrics.shadowed(differs, false);
        if differs {
            let difference = ShadowDifference {
                decision_id: live.decision_id.clone(),
                trace_id: live.trace_id.clone(),
                action: request.action.name.clone(),
                live: live.outcome,
                candidate: candidate.outcome,
                live_policies: live.policy_ids().map(str::to_owned).collect(),
                candidate_policies: candidate.policy_ids().map(str::to_owned).collect(),
                live_bundle: Arc::clone(&live.bundle),
                candidate_bundle: Arc::clone(&candidate.bundle),
            };
            let sink = &self.sink;
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(&difference)));
        }
    }
}
