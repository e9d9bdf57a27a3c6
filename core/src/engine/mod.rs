//! The engine: one loaded bundle, deciding for every thread of the host.

pub(crate) mod hooks;
mod intents;
mod scoring;
pub(crate) mod shadow;
pub(crate) mod status;

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::bundle::Bundle;
use crate::decision::{BundleInfo, Decision, Effect, Obligation, Outcome, Reason, Source};
use crate::error::{Error, RequestError, RequestErrorKind};
use crate::facts::Facts;
use crate::intent::IntentFact;
use crate::rego;
use crate::request::{Request, Timestamp};
use crate::signing::TrustedKeys;
use crate::state::{MemoryStore, StateStore};
use intents::StoreReplay;

/// Decides requests against one policy bundle.
///
/// `Engine` is `Send + Sync`: share one (in an `Arc`, or by reference) across
/// every thread of the host. Deciding takes `&self` and never blocks another
/// thread. [`Engine::reload`] swaps the bundle atomically: each decision
/// runs entirely against the bundle it started with.
///
/// ```
/// use agentriage::{Engine, Outcome};
///
/// let engine = Engine::from_dir("../policies/a2a-supply-chain")?;
/// let decision = engine.decide_json(r#"{
///     "time": "2026-11-21T14:05:00Z",
///     "principal": {"id": "spiffe://acme.example/ns/analytics/sa/reporter"},
///     "action": {"name": "inventory.read"},
///     "resource": {"type": "inventory", "id": "INV-7"}
/// }"#)?;
/// assert_eq!(decision.outcome, Outcome::Execute);
///
/// let decision = engine.decide_json(r#"{
///     "principal": {"id": "spiffe://unknown.example/sa/x"},
///     "action": {"name": "payment.release"}
/// }"#)?;
/// assert_eq!(decision.outcome, Outcome::Reject);
/// assert!(decision.policy_ids().any(|id| id.starts_with("R1")));
/// # Ok::<(), agentriage::Error>(())
/// ```
#[derive(Debug)]
pub struct Engine {
    pub(crate) bundle: ArcSwap<Bundle>,
    pub(crate) hooks: hooks::Hooks,
    pub(crate) intents: intents::EngineIntents,
    /// Set by [`Engine::from_dir_verified`]: every bundle this engine loads
    /// from a directory must be signed by one of these keys.
    pub(crate) trusted: Option<Arc<TrustedKeys>>,
    /// Where one-time uses (intents, approvals) and quota counters are kept.
    pub(crate) state: Arc<dyn StateStore>,
}

impl Engine {
    /// An engine deciding with `bundle`.
    pub fn new(bundle: Bundle) -> Engine {
        let state: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
        let hooks = hooks::Hooks::default();
        Engine {
            bundle: ArcSwap::from_pointee(bundle),
            intents: intents::EngineIntents::with_replay(Arc::new(StoreReplay(
                Arc::clone(&state),
                Arc::clone(&hooks.metrics),
            ))),
            hooks,
            trusted: None,
            state,
        }
    }

    /// This engine, keeping its decision state — intents' `jti`s, used
    /// approvals, quota counters — in `store` instead of its own in-memory
    /// store. Engines (in one process or, with a shared store such as
    /// Redis, in many) that share a store share one view: an intent or
    /// approval used by one is refused by every other, and a quota counts
    /// the decisions of all of them.
    ///
    /// [`Engine::with_replay_cache`] called afterwards still takes the
    /// intents' `jti`s elsewhere.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use agentriage::state::{MemoryStore, StateStore};
    ///
    /// let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new(10_000));
    /// let a = agentriage::Engine::from_dir("../policies/a2a-supply-chain")?
    ///     .with_state(Arc::clone(&store));
    /// let b = agentriage::Engine::from_dir("../policies/a2a-supply-chain")?.with_state(store);
    /// assert_eq!(a.state_store().kind(), b.state_store().kind());
    /// # Ok::<(), agentriage::Error>(())
    /// ```
    #[must_use]
    pub fn with_state(mut self, store: Arc<dyn StateStore>) -> Engine {
        self.intents = intents::EngineIntents {
            replay: Arc::new(StoreReplay(
                Arc::clone(&store),
                Arc::clone(&self.hooks.metrics),
            )),
            ..self.intents
        };
        self.state = store;
        self
    }

    /// The store this engine keeps its decision state in.
    pub fn state_store(&self) -> &Arc<dyn StateStore> {
        &self.state
    }

    /// Loads the bundle in `dir` and returns an engine deciding with it.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Engine, Error> {
        Ok(Engine::new(Bundle::load(dir)?))
    }

    /// Loads the bundle in `dir` only when one of `trusted` signed exactly
    /// its files (see [`Bundle::load_verified`]), and returns an engine that
    /// keeps requiring it: [`Engine::reload_from_dir`] refuses any bundle
    /// these keys did not sign, and the current bundle stays live.
    ///
    /// ```
    /// use agentriage::signing::{SigningKey, TrustedKeys, sign_bundle};
    /// # let tmp = std::env::temp_dir().join(format!("agentriage-doc-{}", std::process::id()));
    /// # std::fs::create_dir_all(&tmp).unwrap();
    /// # std::fs::write(tmp.join("bundle.toml"), "name = \"doc\"\nrevision = \"1\"\n[cedar]\npolicies = [\"p.cedar\"]\n").unwrap();
    /// # std::fs::write(tmp.join("p.cedar"), "forbid(principal, action, resource);").unwrap();
    /// let (key, _pem) = SigningKey::generate()?;
    /// sign_bundle(&tmp, &key)?;
    /// let mut trusted = TrustedKeys::new();
    /// trusted.add(key.public_key());
    /// let engine = agentriage::Engine::from_dir_verified(&tmp, trusted)?;
    /// assert!(engine.trusted_keys().is_some());
    /// # std::fs::remove_dir_all(&tmp).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir_verified(dir: impl AsRef<Path>, trusted: TrustedKeys) -> Result<Engine, Error> {
        let bundle = Bundle::load_verified(dir, &trusted)?;
        Ok(Engine {
            trusted: Some(Arc::new(trusted)),
            ..Engine::new(bundle)
        })
    }

    /// The keys every bundle loaded from a directory must be signed with,
    /// when the engine was made by [`Engine::from_dir_verified`].
    pub fn trusted_keys(&self) -> Option<&TrustedKeys> {
        self.trusted.as_deref()
    }

    /// The bundle this engine decides with now.
    pub fn bundle(&self) -> Arc<Bundle> {
        self.bundle.load_full()
    }

    /// Name, revision and digest of the bundle this engine decides with now.
    pub fn bundle_info(&self) -> Arc<BundleInfo> {
        Arc::clone(&self.bundle.load().info)
    }

    /// Swaps in `bundle` atomically and returns the info of the bundle it
    /// replaces. Decisions under way finish with the bundle they started
    /// with; every later decision uses `bundle`.
    ///
    /// The bundle is taken as given, whatever [`Engine::trusted_keys`] says:
    /// load it with [`Bundle::load_verified`], or use
    /// [`Engine::reload_from_dir`], which checks the signature.
    pub fn reload(&self, bundle: Bundle) -> Arc<BundleInfo> {
        self.reload_shared(Arc::new(bundle))
    }

    /// [`Engine::reload`] with a bundle that may be shared with other
    /// engines (or swapped in again later without reloading it).
    pub fn reload_shared(&self, bundle: Arc<Bundle>) -> Arc<BundleInfo> {
        let previous = self.bundle.swap(bundle);
        self.hooks.metrics.reloaded();
        Arc::clone(&previous.info)
    }

    /// Decides a request given as JSON text (parsing included in the
    /// reported duration).
    pub fn decide_json(&self, text: &str) -> Result<Decision, Error> {
        let start = Instant::now();
        let request = Request::from_json(text).inspect_err(|e| self.hooks.metrics.error(e))?;
        self.decide_at(&request, start)
    }

    /// Decides a request given as a JSON value.
    pub fn decide_value(&self, value: &serde_json::Value) -> Result<Decision, Error> {
        let start = Instant::now();
        let request = Request::from_value(value).inspect_err(|e| self.hooks.metrics.error(e))?;
        self.decide_at(&request, start)
    }

    /// Decides a request.
    ///
    /// `Err` only for a request that breaks the contract (see
    /// [`Request::validate`]). Anything that goes wrong while policies run is
    /// a [`Decision`] that fails closed (the bundle's `on_error` outcome,
    /// never `execute`) with a reason saying what broke.
    pub fn decide(&self, request: &Request) -> Result<Decision, Error> {
        let start = Instant::now();
        request
            .validate()
            .inspect_err(|e| self.hooks.metrics.error(e))?;
        self.decide_at(request, start)
    }

    /// Decides `request` keeping the decision state (intents' `jti`s,
    /// approvals, quotas) in `state` instead of the engine's store: each
    /// policy-test case decides in a store of its own.
    pub(crate) fn decide_in(
        &self,
        request: &Request,
        state: &Arc<dyn StateStore>,
    ) -> Result<Decision, Error> {
        let start = Instant::now();
        request.validate()?;
        let bundle = self.bundle.load_full();
        let span = hooks::decision_span();
        let _entered = span.enter();
        let replay = StoreReplay(Arc::clone(state), Arc::clone(&self.hooks.metrics));
        let verify =
            |r: &Request, now: Timestamp| self.intents.fact_replay(&bundle, r, now, &replay);
        let decision = Engine::evaluate(&bundle, request, &verify, state.as_ref(), start)?;
        Ok(self.hooks.finish(&bundle, request, decision, &span))
    }

    fn decide_at(&self, request: &Request, start: Instant) -> Result<Decision, Error> {
        let bundle = self.bundle.load_full();
        let span = hooks::decision_span();
        let _entered = span.enter();
        let verify = |r: &Request, now: Timestamp| self.intents.fact(&bundle, r, now);
        let decision = Engine::evaluate(&bundle, request, &verify, self.state.as_ref(), start)
            .inspect_err(|e| self.hooks.metrics.error_any(e))?;
        self.count_state_failure(&decision);
        Ok(self.hooks.finish(&bundle, request, decision, &span))
    }

    /// A decision the state store could not settle (approvals, quotas)
    /// counts in `agentriage_state_errors_total{op="settle"}`.
    fn count_state_failure(&self, decision: &Decision) {
        let failed = decision.reasons.iter().any(|r| {
            r.engine == Source::Agentriage
                && (r.policy == crate::approval::STATE_FAILURE_POLICY
                    || r.policy == "approval.store")
        });
        if failed {
            self.hooks.metrics.state_error(self.state.kind(), "settle");
        }
    }

    /// Decides `request` with `bundle`: the engine's work, without logging
    /// or metrics. `intent` verifies the request's signed intent at the
    /// evaluation time (the live engine records its `jti`; a shadow
    /// evaluation does not); `state` keeps approvals' one-time use and
    /// quota counters.
    pub(crate) fn evaluate(
        bundle: &Bundle,
        request: &Request,
        intent: &dyn Fn(&Request, Timestamp) -> IntentFact,
        state: &dyn StateStore,
        start: Instant,
    ) -> Result<Decision, Error> {
        // `anomaly.features` become `anomaly.score` before policies see the request.
        let scored = scoring::score_request(bundle, request)?;
        let request = scored.as_ref().unwrap_or(request);
        let mut facts = Facts::derive(request, bundle.risk_class(&request.action.name));
        facts.intent = intent(request, facts.time);
        let on_error = bundle.defaults.on_error;
        let error_effect = if on_error == Outcome::Escalate {
            Effect::Escalate
        } else {
            Effect::Reject
        };
        let failure = |engine: Source, policy: String, message: String| Reason {
            engine,
            policy,
            message,
            effect: error_effect,
        };

        let mut found = Findings::default();

        if let Some(program) = &bundle.rego {
            let input = rego::input(request, &facts).map_err(|m| {
                Error::Request(RequestError::new(RequestErrorKind::TooDeep, "$", m))
            })?;
            match program.evaluate(input) {
                Ok(verdict) => found.absorb(verdict.allow, verdict.reasons, verdict.obligations),
                Err(e) => found.failures.push(failure(
                    Source::Rego,
                    "error".into(),
                    format!("rego evaluation failed: {e}"),
                )),
            }
        }

        if let Some(cedar) = &bundle.cedar {
            let evaluated = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                cedar.evaluate(request, &facts)
            }));
            match evaluated {
                Ok(Ok(verdict)) => {
                    if let Some(policy) = verdict.missing_resource {
                        return Err(Error::Request(missing_resource(request, &policy)));
                    }
                    for (policy, e) in verdict.errors {
                        found.failures.push(failure(
                            Source::Cedar,
                            policy,
                            format!("cedar evaluation failed: {e}"),
                        ));
                    }
                    found.absorb(verdict.permitted, verdict.reasons, verdict.obligations);
                }
                Ok(Err(e)) => found.failures.push(failure(
                    Source::Cedar,
                    "error".into(),
                    format!("cedar evaluation failed: {e}"),
                )),
                Err(_) => found.failures.push(failure(
                    Source::Cedar,
                    "error".into(),
                    "cedar evaluation panicked".into(),
                )),
            }
        }

        let Findings {
            reasons,
            failures,
            permits,
            obligations,
            permitted,
        } = found;
        let (mut reasons, permits, permitted, settled) = crate::approval::settle::settle(
            &bundle.controls,
            state,
            crate::approval::settle::Findings {
                reasons,
                failures,
                permits,
                permitted,
                request,
            },
            &facts,
            error_effect,
        );
        let outcome = if reasons.iter().any(|r| r.effect == Effect::Reject) {
            Outcome::Reject
        } else if !reasons.is_empty() {
            Outcome::Escalate
        } else if permitted {
            Outcome::Execute
        } else {
            let outcome = bundle.defaults.no_permit;
            reasons.push(Reason {
                engine: Source::Agentriage,
                policy: "default".into(),
                message: format!(
                    "no policy permits `{}`; the bundle's default is `{outcome}`",
                    request.action.name
                ),
                effect: if outcome == Outcome::Escalate {
                    Effect::Escalate
                } else {
                    Effect::Reject
                },
            });
            outcome
        };
        if outcome == Outcome::Execute {
            reasons = permits;
        }
        reasons.extend(settled.notes);
        reasons.sort_by(|a, b| {
            a.effect
                .cmp(&b.effect)
                .then_with(|| natural_cmp(&a.policy, &b.policy))
                .then_with(|| (a.engine, &a.message).cmp(&(b.engine, &b.message)))
        });
        reasons.dedup();

        let trace_id = request
            .effective_trace_id()
            .map_or_else(new_trace_id, str::to_owned);
        let duration_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        tracing::debug!(
            target: "agentriage::decision",
            outcome = outcome.as_str(),
            trace_id = trace_id.as_str(),
            bundle = bundle.info.digest.as_str(),
            duration_us,
            "decision"
        );
        Ok(Decision {
            outcome,
            reasons,
            obligations,
            trace_id,
            decision_id: uuid::Uuid::now_v7().to_string(),
            bundle: Arc::clone(&bundle.info),
            duration_us,
            approval_request: settled.approval_request,
            approval: settled.approval,
        })
    }
}

/// What the engines said, gathered before the outcome is chosen.
#[derive(Default)]
struct Findings {
    /// Reject and escalate reasons of policies.
    reasons: Vec<Reason>,
    /// Evaluation failures (never waived or approved).
    failures: Vec<Reason>,
    /// Permit reasons, reported only when the outcome is `execute`.
    permits: Vec<Reason>,
    obligations: Vec<Obligation>,
    permitted: bool,
}

impl Findings {
    fn absorb(&mut self, permitted: bool, reasons: Vec<Reason>, obligations: Vec<Obligation>) {
        self.permitted |= permitted;
        for r in reasons {
            if r.effect == Effect::Permit {
                self.permits.push(r);
            } else {
                self.reasons.push(r);
            }
        }
        self.obligations.extend(obligations);
    }
}

/// The request error for an action whose Cedar policy `policy` reads the
/// resource of a request that names none: without it the policy cannot be
/// evaluated, so the request cannot be decided.
fn missing_resource(request: &Request, policy: &str) -> RequestError {
    RequestError::new(
        RequestErrorKind::Missing,
        "resource",
        format!(
            "action `{}` needs a resource: Cedar policy `{policy}` reads it; give the request's `resource` with its `type` and `id`",
            request.action.name
        ),
    )
}

/// Orders `R9.x` before `R10.x`: runs of digits compare as numbers.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn chunks(s: &str) -> impl Iterator<Item = (bool, &str)> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digit = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (chunk, tail) = rest.split_at(end);
            rest = tail;
            Some((digit, chunk))
        })
    }
    let mut x = chunks(a);
    let mut y = chunks(b);
    loop {
        match (x.next(), y.next()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some((true, p)), Some((true, q))) => {
                let p = p.trim_start_matches('0');
                let q = q.trim_start_matches('0');
                let o = p.len().cmp(&q.len()).then_with(|| p.cmp(q));
                if o.is_ne() {
                    return o;
                }
            }
            (Some((_, p)), Some((_, q))) => {
                let o = p.cmp(q);
                if o.is_ne() {
                    return o;
                }
            }
        }
    }
}

/// A new W3C trace id: 32 lowercase hex digits, not all zero.
fn new_trace_id() -> String {
    let id = fastrand::u128(1..);
    format!("{id:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Engine>();
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("R9.a", "R10.a"), Less);
        assert_eq!(natural_cmp("R10.a", "R10.b"), Less);
        assert_eq!(natural_cmp("R2", "R2"), Equal);
        assert_eq!(natural_cmp("R02", "R1"), Greater);
        assert_eq!(natural_cmp("a", "ab"), Less);
    }

    #[test]
    fn trace_ids_are_w3c() {
        for _ in 0..100 {
            let id = new_trace_id();
            assert_eq!(id.len(), 32);
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
            assert_ne!(id, "0".repeat(32));
        }
    }
}
