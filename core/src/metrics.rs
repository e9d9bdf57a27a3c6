//! Counters of an engine, exposed in the Prometheus text format.
//!
//! Counting is a handful of relaxed atomic additions per decision; the
//! per-rule counters sit in a map read under a shared lock (written once
//! per new rule id, at most [`MAX_RULE_LABELS`] of them).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::audit::DecisionLog;
use crate::decision::{BundleInfo, Decision, Effect, Outcome};
use crate::error::{Error, RequestError};

/// Most distinct rule labels kept; further rules count under `_other`.
pub const MAX_RULE_LABELS: usize = 1024;

/// Upper bounds of the latency histogram's buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
];

const OTHER_RULE: &str = "_other";

/// An engine's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    outcomes: [AtomicU64; 3],
    rules: RwLock<HashMap<(String, Effect), Arc<AtomicU64>>>,
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    duration_sum_us: AtomicU64,
    request_errors: RwLock<HashMap<&'static str, Arc<AtomicU64>>>,
    log_failures: AtomicU64,
    reloads: AtomicU64,
    reload_failures: AtomicU64,
    shadow_evaluations: AtomicU64,
    shadow_differences: AtomicU64,
    shadow_failures: AtomicU64,
    state_errors: RwLock<HashMap<(&'static str, &'static str), Arc<AtomicU64>>>,
}

fn outcome_index(o: Outcome) -> usize {
    match o {
        Outcome::Execute => 0,
        Outcome::Escalate => 1,
        Outcome::Reject => 2,
    }
}

fn bump(map: &RwLock<HashMap<(String, Effect), Arc<AtomicU64>>>, rule: &str, effect: Effect) {
    if let Ok(m) = map.read()
        && let Some(c) = m.get(&(rule.to_owned(), effect))
    {
        c.fetch_add(1, Ordering::Relaxed);
        return;
    }
    if let Ok(mut m) = map.write() {
        let key = if m.len() < MAX_RULE_LABELS {
            rule.to_owned()
        } else {
            OTHER_RULE.to_owned()
        };
        m.entry((key, effect))
            .or_default()
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts one decision.
    pub(crate) fn decided(&self, d: &Decision) {
        if let Some(c) = self.outcomes.get(outcome_index(d.outcome)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        for r in &d.reasons {
            bump(&self.rules, &r.policy, r.effect);
        }
        let bucket = BUCKETS_US
            .iter()
            .position(|&b| d.duration_us <= b)
            .unwrap_or(BUCKETS_US.len());
        if let Some(c) = self.buckets.get(bucket) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.duration_sum_us
            .fetch_add(d.duration_us, Ordering::Relaxed);
    }

    /// Counts a request refused as malformed.
    pub(crate) fn error(&self, e: &RequestError) {
        let kind = e.kind().as_str();
        if let Ok(m) = self.request_errors.read()
            && let Some(c) = m.get(kind)
        {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut m) = self.request_errors.write() {
            m.entry(kind).or_default().fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts any error returned by `decide`.
    pub(crate) fn error_any(&self, e: &Error) {
        if let Some(r) = e.as_request() {
            self.error(r);
        }
    }

    pub(crate) fn log_failed(&self) {
        self.log_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reloaded(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reload_failed(&self) {
        self.reload_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn shadowed(&self, differed: bool, failed: bool) {
        self.shadow_evaluations.fetch_add(1, Ordering::Relaxed);
        if differed {
            self.shadow_differences.fetch_add(1, Ordering::Relaxed);
        }
        if failed {
            self.shadow_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one failed state store operation: `store` is the store's
    /// [`kind`](crate::state::StateStore::kind) (`memory`, `redis`), `op`
    /// the operation (`insert_once`, `add_within`, `subtract`, `counter`).
    /// Exposed as `agentriage_state_errors_total{store,op}`; the decision
    /// that needed the store fails closed.
    pub fn state_error(&self, store: &'static str, op: &'static str) {
        if let Ok(m) = self.state_errors.read()
            && let Some(c) = m.get(&(store, op))
        {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok(mut m) = self.state_errors.write() {
            m.entry((store, op))
                .or_default()
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Failed state store operations so far, for `store` and `op` (see
    /// [`Metrics::state_error`]).
    pub fn state_errors(&self, store: &str, op: &str) -> u64 {
        self.state_errors.read().map_or(0, |m| {
            m.iter()
                .filter(|((s, o), _)| *s == store && *o == op)
                .map(|(_, c)| c.load(Ordering::Relaxed))
                .sum()
        })
    }

    /// Decisions with `outcome` so far.
    pub fn decisions(&self, outcome: Outcome) -> u64 {
        self.outcomes
            .get(outcome_index(outcome))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Shadow evaluations whose outcome differed from the live one.
    pub fn shadow_differences(&self) -> u64 {
        self.shadow_differences.load(Ordering::Relaxed)
    }

    /// Bundle swaps so far.
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Reloads refused (the bundle did not load or was not signed by a
    /// trusted key); the engine kept its bundle each time.
    pub fn reload_failures(&self) -> u64 {
        self.reload_failures.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text exposition format (version
    /// 0.0.4), for the host to serve on its `/metrics`.
    pub(crate) fn render(
        &self,
        bundle: &BundleInfo,
        source: &str,
        log: Option<&DecisionLog>,
    ) -> String {
        let mut text = String::with_capacity(4096);
        let put_family = |text: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        put_family(
            &mut text,
            "agentriage_decisions_total",
            "counter",
            "Decisions by outcome.",
        );
        for o in [Outcome::Execute, Outcome::Escalate, Outcome::Reject] {
            let _ = writeln!(
                text,
                "agentriage_decisions_total{{outcome=\"{o}\"}} {}",
                self.decisions(o)
            );
        }
        put_family(
            &mut text,
            "agentriage_decision_reasons_total",
            "counter",
            "Reasons given in decisions, by rule (policy id) and effect.",
        );
        if let Ok(rules) = self.rules.read() {
            let mut rows: Vec<_> = rules.iter().collect();
            rows.sort_by(|a, b| a.0.cmp(b.0));
            for ((rule, effect), c) in rows {
                let _ = writeln!(
                    text,
                    "agentriage_decision_reasons_total{{rule=\"{}\",effect=\"{}\"}} {}",
                    escape(rule),
                    effect.as_str(),
                    c.load(Ordering::Relaxed)
                );
            }
        }
        put_family(
            &mut text,
            "agentriage_decision_duration_seconds",
            "histogram",
            "Time spent deciding.",
        );
        let mut cumulative = 0;
        for (i, c) in self.buckets.iter().enumerate() {
            cumulative += c.load(Ordering::Relaxed);
            let le = BUCKETS_US
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |&us| seconds(us));
            let _ = writeln!(
                text,
                "agentriage_decision_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            text,
            "agentriage_decision_duration_seconds_sum {}\nagentriage_decision_duration_seconds_count {cumulative}",
            self.duration_sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        put_family(
            &mut text,
            "agentriage_request_errors_total",
            "counter",
            "Requests refused as malformed, by kind.",
        );
        if let Ok(errors) = self.request_errors.read() {
            let mut rows: Vec<_> = errors.iter().collect();
            rows.sort_by_key(|r| *r.0);
            for (kind, c) in rows {
                let _ = writeln!(
                    text,
                    "agentriage_request_errors_total{{kind=\"{kind}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
        }
        put_family(
            &mut text,
            "agentriage_state_errors_total",
            "counter",
            "State store operations that failed (the decision failed closed), by store and operation.",
        );
        if let Ok(errors) = self.state_errors.read() {
            let mut rows: Vec<_> = errors.iter().collect();
            rows.sort_by_key(|r| *r.0);
            for ((store, op), c) in rows {
                let _ = writeln!(
                    text,
                    "agentriage_state_errors_total{{store=\"{store}\",op=\"{op}\"}} {}",
                    c.load(Ordering::Relaxed)
                );
            }
        }
        let mut single = |name: &str, kind: &str, help: &str, value: u64| {
            put_family(&mut text, name, kind, help);
            let _ = writeln!(text, "{name} {value}");
        };
        single(
            "agentriage_reloads_total",
            "counter",
            "Bundle swaps.",
            self.reloads(),
        );
        single(
            "agentriage_reload_failures_total",
            "counter",
            "Reloads refused; the engine kept its bundle.",
            self.reload_failures(),
        );
        single(
            "agentriage_shadow_evaluations_total",
            "counter",
            "Requests also evaluated by the shadow bundle.",
            self.shadow_evaluations.load(Ordering::Relaxed),
        );
        single(
            "agentriage_shadow_differences_total",
            "counter",
            "Shadow evaluations whose outcome differed from the live decision.",
            self.shadow_differences(),
        );
        single(
            "agentriage_shadow_failures_total",
            "counter",
            "Shadow evaluations that failed (the live decision is unaffected).",
            self.shadow_failures.load(Ordering::Relaxed),
        );
        if let Some(log) = log {
            let s = log.stats();
            single(
                "agentriage_log_queue_depth",
                "gauge",
                "Decision records waiting for the log writer.",
                s.queue_depth,
            );
            single(
                "agentriage_log_waits_total",
                "counter",
                "Times a decision waited because the log queue was full.",
                s.waits,
            );
            single(
                "agentriage_log_records_total",
                "counter",
                "Decision records written.",
                s.written,
            );
            single(
                "agentriage_log_failures_total",
                "counter",
                "Decision records that could not be written.",
                s.failures.max(self.log_failures.load(Ordering::Relaxed)),
            );
            single(
                "agentriage_log_bytes_total",
                "counter",
                "Bytes written to the decision log.",
                s.bytes,
            );
            single(
                "agentriage_log_checkpoints_total",
                "counter",
                "Signed checkpoints written.",
                s.checkpoints,
            );
        }
        put_family(
            &mut text,
            "agentriage_bundle_info",
            "gauge",
            "The bundle deciding now.",
        );
        let _ = writeln!(
            text,
            "agentriage_bundle_info{{name=\"{}\",revision=\"{}\",digest=\"{}\",source=\"{}\"}} 1",
            escape(&bundle.name),
            escape(&bundle.revision),
            escape(&bundle.digest),
            escape(source)
        );
        text
    }
}

fn seconds(us: u64) -> String {
    let s = us as f64 / 1e6;
    format!("{s}")
}

/// Escapes a label value: backslash, double quote and newline.
pub(crate) fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
