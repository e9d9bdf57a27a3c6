//! What an engine does around each decision: the decision log, metrics,
//! the tracing span and shadow evaluation.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::Engine;
use super::shadow::{Shadow, ShadowSink};
use crate::audit::{DecisionLog, Entry, LogError};
use crate::bundle::Bundle;
use crate::decision::{Decision, Effect, Outcome, Reason, Source};
use crate::error::Error;
use crate::metrics::Metrics;
use crate::request::{Request, Timestamp};

/// The policy id of the reason a decision gets when a mandatory log fails.
pub const LOG_FAILURE_POLICY: &str = "decision-log";

#[derive(Default)]
pub(crate) struct Hooks {
    pub(crate) metrics: Arc<Metrics>,
    log: ArcSwapOption<DecisionLog>,
    shadow: ArcSwapOption<Shadow>,
    /// Where the bundle came from (directory watch, HTTP, OCI).
    pub(crate) delivery: super::status::DeliveryState,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("log", &self.log.load())
            .field("shadow", &self.shadow.load().is_some())
            .finish_non_exhaustive()
    }
}

/// The span of one decision; `outcome`, `trace_id` and `bundle_digest` are
/// recorded when it is known.
pub(crate) fn decision_span() -> tracing::Span {
    tracing::info_span!(
        target: "agentriage::decision",
        "agentriage.decide",
        outcome = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        decision_id = tracing::field::Empty,
        bundle_digest = tracing::field::Empty,
        bundle_revision = tracing::field::Empty,
    )
}

impl Hooks {
    pub(crate) fn finish(
        &self,
        bundle: &Bundle,
        request: &Request,
        mut decision: Decision,
        span: &tracing::Span,
    ) -> Decision {
        if let Some(shadow) = &*self.shadow.load() {
            shadow.compare(request, &decision, &self.metrics);
        }
        if let Some(log) = &*self.log.load() {
            let entry = Entry {
                decision: decision.clone(),
                request: request.clone(),
                redaction: Arc::clone(&bundle.redaction),
                time: request.time.unwrap_or_else(Timestamp::now),
            };
            if let Err(e) = log.append(entry) {
                self.metrics.log_failed();
                if log.is_mandatory() {
                    fail_closed(&mut decision, &e);
                }
            }
        }
        self.metrics.decided(&decision);
        if !span.is_disabled() {
            span.record("outcome", decision.outcome.as_str());
            span.record("trace_id", decision.trace_id.as_str());
            span.record("decision_id", decision.decision_id.as_str());
            span.record("bundle_digest", decision.bundle.digest.as_str());
            span.record("bundle_revision", decision.bundle.revision.as_str());
        }
        decision
    }
}

/// A decision that could not be logged under mandatory logging: `reject`.
fn fail_closed(decision: &mut Decision, e: &LogError) {
    if decision.outcome == Outcome::Execute {
        decision.reasons.clear();
        decision.obligations.clear();
    }
    decision.outcome = Outcome::Reject;
    decision.reasons.insert(
        0,
        Reason {
            engine: Source::Agentriage,
            policy: LOG_FAILURE_POLICY.into(),
            message: format!("the decision could not be logged and logging is mandatory: {e}"),
            effect: Effect::Reject,
        },
    );
}

impl Engine {
    /// This engine, logging every decision to `log` (see [`crate::audit`]).
    pub fn with_decision_log(self, log: DecisionLog) -> Engine {
        self.set_decision_log(Some(log));
        self
    }

    /// Starts logging every decision to `log` (or, with `None`, stops);
    /// returns the log attached before, which the caller may close.
    pub fn set_decision_log(&self, log: Option<DecisionLog>) -> Option<DecisionLog> {
        self.hooks
            .log
            .swap(log.map(Arc::new))
            .map(|previous| (*previous).clone())
    }

    /// Closes the attached decision log (final checkpoint, flush) and
    /// returns whether an open log was closed.
    ///
    /// A mandatory log stays attached, closed: every later decision, on any
    /// thread, is a `reject` with the reason [`LOG_FAILURE_POLICY`], since
    /// it cannot be logged. An optional log is detached first, so later
    /// decisions are not logged. Detaching a mandatory log with
    /// [`set_decision_log`](Self::set_decision_log)`(None)` instead stops
    /// logging without rejecting: use this method to stop a mandatory log.
    pub fn close_decision_log(&self) -> Result<bool, LogError> {
        let Some(log) = self.decision_log() else {
            return Ok(false);
        };
        if log.is_mandatory() {
            if log.is_closed() {
                return Ok(false);
            }
            log.close()?;
            return Ok(true);
        }
        match self.set_decision_log(None) {
            Some(previous) => {
                let was_open = !previous.is_closed();
                previous.close()?;
                Ok(was_open)
            }
            None => Ok(false),
        }
    }

    /// The decision log, if one is attached.
    pub fn decision_log(&self) -> Option<DecisionLog> {
        self.hooks.log.load().as_ref().map(|l| (**l).clone())
    }

    /// This engine, evaluating every request also with `candidate` and
    /// passing differences in outcome to `sink` (see [`Engine::set_shadow`]).
    pub fn with_shadow(self, candidate: Bundle, sink: ShadowSink) -> Engine {
        self.set_shadow(Some((candidate, sink)));
        self
    }

    /// Starts (or, with `None`, stops) shadow evaluation: each request is
    /// also evaluated with the candidate bundle after the live decision;
    /// when the outcomes differ, `sink` receives the difference and the
    /// `agentriage_shadow_differences_total` counter grows. The candidate
    /// never affects the live decision (it costs one more evaluation).
    pub fn set_shadow(&self, shadow: Option<(Bundle, ShadowSink)>) {
        self.hooks
            .shadow
            .store(shadow.map(|(bundle, sink)| Arc::new(Shadow { bundle, sink })));
    }

    /// Loads the bundle in `dir` and swaps it in (see [`Engine::reload`]).
    /// An engine made by [`Engine::from_dir_verified`] loads it only when one
    /// of its trusted keys signed it. On any error the engine keeps deciding
    /// with its current bundle, and `agentriage_reload_failures_total`
    /// counts the failure.
    pub fn reload_from_dir(
        &self,
        dir: impl AsRef<Path>,
    ) -> Result<Arc<crate::decision::BundleInfo>, Error> {
        let loaded = match &self.trusted {
            Some(trusted) => Bundle::load_verified(dir, trusted),
            None => Bundle::load(dir),
        };
        match loaded {
            Ok(bundle) => Ok(self.reload(bundle)),
            Err(e) => {
                self.hooks.metrics.reload_failed();
                Err(e.into())
            }
        }
    }

    /// The engine's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.hooks.metrics
    }

    /// The engine's metrics in the Prometheus text exposition format, for
    /// the host to serve on its own `/metrics`.
    pub fn metrics_text(&self) -> String {
        let (info, status) = self
            .hooks
            .delivery
            .snapshot(|| Arc::clone(&self.bundle.load().info));
        let mut text =
            self.hooks
                .metrics
                .render(&info, &status.source, self.hooks.log.load().as_deref());
        text.push_str(&crate::engine::status::DeliveryState::render(&status));
        text
    }
}
