//! Hot reload, shadow mode, metrics and the decision span.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use agentriage::{Bundle, Engine, Outcome, ShadowDifference};

/// A request for an action outside the risk table: R2 rejects it.
const UNPERMITTED: &str = r#"{"time":"2026-11-21T14:05:00Z","principal":{"id":"spiffe://acme.example/ns/analytics/sa/reporter"},"action":{"name":"warehouse.unknown"}}"#;

/// The first request of `testdata/requests.jsonl`: a reroute the reference pack executes.
fn reroute() -> String {
    std::fs::read_to_string(common::repo().join("testdata/requests.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

/// The reference pack with another revision whose risk table lacks
/// `shipment.reroute`, so that R2 rejects reroutes.
fn candidate_pack(dir: &Path) -> Bundle {
    common::copy_dir(&common::reference_pack(), dir);
    let manifest = dir.join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let changed = text
        .replace(
            "revision = \"2026.11.0\"",
            "revision = \"2026.11.1-candidate\"",
        )
        .replace("    \"shipment.reroute\",\n", "");
    assert_ne!(text.len(), changed.len() + 1);
    std::fs::write(&manifest, changed).unwrap();
    Bundle::load(dir).unwrap()
}

#[test]
fn decisions_during_repeated_swaps_each_match_exactly_one_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let a = Bundle::load(common::reference_pack()).unwrap();
    let b = candidate_pack(dir.path());
    let (a_digest, b_digest) = (a.info().digest.clone(), b.info().digest.clone());
    assert_ne!(a_digest, b_digest);
    let expected: HashMap<String, (Outcome, String)> = HashMap::from([
        (a_digest.clone(), (Outcome::Execute, "2026.11.0".to_owned())),
        (
            b_digest.clone(),
            (Outcome::Reject, "2026.11.1-candidate".to_owned()),
        ),
    ]);
    let engine = Engine::new(a);
    let request = reroute();
    let stop = AtomicBool::new(false);
    let seen = Mutex::new(HashMap::<String, usize>::new());
    let mut total = 0;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let mut mine = HashMap::<String, usize>::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) || n < 50 {
                        let d = engine.decide_json(&request).expect("no decision fails");
                        let (outcome, revision) = &expected[&d.bundle.digest];
                        assert_eq!(d.outcome, *outcome, "decided by {}", d.bundle.digest);
                        assert_eq!(&d.bundle.revision, revision);
                        let r2 = d.policy_ids().any(|p| p == "R2.unknown_action");
                        assert_eq!(r2, *outcome == Outcome::Reject);
                        *mine.entry(d.bundle.digest.clone()).or_default() += 1;
                        n += 1;
                    }
                    let mut seen = seen.lock().unwrap();
                    for (k, v) in mine {
                        *seen.entry(k).or_default() += v;
                    }
                    n
                })
            })
            .collect();
        let loaded = [
            Arc::new(Bundle::load(dir.path()).unwrap()),
            Arc::new(Bundle::load(common::reference_pack()).unwrap()),
        ];
        for i in 0..200 {
            // Alternate between two loaded bundles: each thread keeps a Rego
            // VM per bundle, and must always use the one of the bundle it decides with.
            let previous = engine.reload_shared(Arc::clone(&loaded[i % 2]));
            assert!(previous.digest == a_digest || previous.digest == b_digest);
            std::thread::sleep(std::time::Duration::from_micros(300));
        }
        stop.store(true, Ordering::Relaxed);
        total = workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .sum::<usize>();
    });
    let seen = seen.into_inner().unwrap();
    assert_eq!(seen.values().sum::<usize>(), total, "no decision lost");
    assert!(seen[&a_digest] > 0 && seen[&b_digest] > 0, "{seen:?}");
    assert_eq!(engine.metrics().reloads(), 200);
    assert_eq!(
        engine.metrics().decisions(Outcome::Reject) + engine.metrics().decisions(Outcome::Execute),
        total as u64
    );
    assert_eq!(engine.bundle_info().digest, a_digest);
}

#[test]
fn a_failed_reload_keeps_the_current_bundle() {
    let engine = Engine::from_dir(common::reference_pack()).unwrap();
    let before = engine.bundle_info();
    let dir = tempfile::tempdir().unwrap();
    assert!(engine.reload_from_dir(dir.path()).is_err());
    assert_eq!(engine.bundle_info(), before);
    assert_eq!(
        engine.decide_json(UNPERMITTED).unwrap().outcome,
        Outcome::Reject
    );
}

#[test]
fn shadow_differences_are_recorded_and_never_change_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let candidate = candidate_pack(dir.path());
    let found = Arc::new(Mutex::new(Vec::<ShadowDifference>::new()));
    let sink_found = Arc::clone(&found);
    let engine = Engine::from_dir(common::reference_pack())
        .unwrap()
        .with_shadow(
            candidate,
            Arc::new(move |d: &ShadowDifference| sink_found.lock().unwrap().push(d.clone())),
        );
    let live = engine.decide_json(&reroute()).unwrap();
    assert_eq!(
        live.outcome,
        Outcome::Execute,
        "the candidate does not change the outcome"
    );
    assert_eq!(
        engine.decide_json(UNPERMITTED).unwrap().outcome,
        Outcome::Reject
    );
    let found = found.lock().unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].decision_id, live.decision_id);
    assert_eq!(
        (found[0].live, found[0].candidate),
        (Outcome::Execute, Outcome::Reject)
    );
    assert_eq!(found[0].candidate_bundle.revision, "2026.11.1-candidate");
    assert!(
        found[0]
            .candidate_policies
            .iter()
            .any(|p| p == "R2.unknown_action")
    );
    assert_eq!(engine.metrics().shadow_differences(), 1);
    assert!(
        engine
            .metrics_text()
            .contains("agentriage_shadow_evaluations_total 2\n")
    );
    drop(found);
    engine.set_shadow(None);
    engine.decide_json(&reroute()).unwrap();
    assert_eq!(engine.metrics().shadow_differences(), 1);
}

/// Parses Prometheus text: `(name, labels, value)` per sample, checking
/// that every sample's family was declared by `# TYPE` before it.
fn parse_metrics(text: &str) -> Vec<(String, HashMap<String, String>, f64)> {
    let mut types = HashMap::new();
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "declared twice: {name}"
            );
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(
            !line.is_empty() && !line.starts_with('#'),
            "unexpected line `{line}`"
        );
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in `{line}`"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), HashMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').unwrap();
                let mut labels = HashMap::new();
                for pair in body.split("\",") {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    labels.insert(k.to_owned(), v.trim_end_matches('"').to_owned());
                }
                (name.to_owned(), labels)
            }
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| {
                name.strip_suffix(s)
                    .filter(|f| types.get(*f).is_some_and(|t| t == "histogram"))
            })
            .unwrap_or(&name)
            .to_owned();
        assert!(
            types.contains_key(&family),
            "sample before its TYPE: {line}"
        );
        samples.push((name, labels, value));
    }
    samples
}

#[test]
fn metrics_text_is_prometheus_and_counts_what_happened() {
    let engine = Engine::from_dir(common::reference_pack()).unwrap();
    let text = std::fs::read_to_string(common::repo().join("testdata/requests.jsonl")).unwrap();
    let mut by_outcome = HashMap::<&str, f64>::new();
    for line in text.lines() {
        *by_outcome
            .entry(engine.decide_json(line).unwrap().outcome.as_str())
            .or_default() += 1.0;
    }
    engine.decide_json(UNPERMITTED).unwrap();
    *by_outcome.entry("reject").or_default() += 1.0;
    assert!(engine.decide_json("{").is_err());
    assert!(engine.decide_json(r#"{"principal":{"id":"a"}}"#).is_err());

    let samples = parse_metrics(&engine.metrics_text());
    let get = |name: &str, label: Option<(&str, &str)>| -> f64 {
        samples
            .iter()
            .filter(|(n, l, _)| {
                n == name && label.is_none_or(|(k, v)| l.get(k).map(String::as_str) == Some(v))
            })
            .map(|s| s.2)
            .sum()
    };
    for outcome in ["execute", "escalate", "reject"] {
        assert_eq!(
            get("agentriage_decisions_total", Some(("outcome", outcome))),
            by_outcome.get(outcome).copied().unwrap_or(0.0),
            "{outcome}"
        );
    }
    let total: f64 = by_outcome.values().sum();
    assert_eq!(
        get("agentriage_decision_duration_seconds_count", None),
        total
    );
    let buckets: Vec<f64> = samples
        .iter()
        .filter(|s| s.0 == "agentriage_decision_duration_seconds_bucket")
        .map(|s| s.2)
        .collect();
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(*buckets.last().unwrap(), total);
    assert_eq!(
        get("agentriage_request_errors_total", Some(("kind", "syntax"))),
        1.0
    );
    assert_eq!(
        get("agentriage_request_errors_total", Some(("kind", "missing"))),
        1.0
    );
    assert_eq!(
        get(
            "agentriage_decision_reasons_total",
            Some(("rule", "R2.unknown_action"))
        ),
        1.0
    );
    assert!(get("agentriage_decision_reasons_total", None) >= total);
    assert_eq!(
        get("agentriage_bundle_info", Some(("revision", "2026.11.0"))),
        1.0
    );
}

mod spans {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    /// Collects the fields recorded on spans named `agentriage.decide`.
    #[derive(Default)]
    pub struct Capture {
        next: AtomicU64,
        pub spans: Mutex<Vec<Vec<(String, String)>>>,
        decide: Mutex<Vec<u64>>,
    }

    struct Fields<'a>(&'a mut Vec<(String, String)>);

    impl Visit for Fields<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.push((field.name().to_owned(), format!("{value:?}")));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.push((field.name().to_owned(), value.to_owned()));
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            if span.metadata().name() == "agentriage.decide" {
                self.decide.lock().unwrap().push(id);
                self.spans.lock().unwrap().push(Vec::new());
            }
            Id::from_u64(id)
        }
        fn record(&self, span: &Id, values: &Record<'_>) {
            let decide = self.decide.lock().unwrap();
            if let Some(i) = decide.iter().position(|&d| d == span.into_u64()) {
                values.record(&mut Fields(&mut self.spans.lock().unwrap()[i]));
            }
        }
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }
}

#[test]
fn each_decision_emits_a_span_with_outcome_trace_and_bundle() {
    let engine = Engine::from_dir(common::reference_pack()).unwrap();
    let capture = Arc::new(spans::Capture::default());
    let request = r#"{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01","principal":{"id":"spiffe://x/y"},"action":{"name":"nothing.here"}}"#;
    let decision = tracing::subscriber::with_default(Arc::clone(&capture), || {
        engine.decide_json(request).unwrap()
    });
    assert_eq!(decision.trace_id, "0af7651916cd43dd8448eb211c80319c");
    let spans = capture.spans.lock().unwrap();
    assert_eq!(spans.len(), 1);
    let field = |name: &str| {
        spans[0]
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no `{name}` in {:?}", spans[0]))
    };
    assert_eq!(field("outcome"), "reject");
    assert_eq!(field("trace_id"), decision.trace_id);
    assert_eq!(field("decision_id"), decision.decision_id);
    assert_eq!(field("bundle_digest"), engine.bundle_info().digest);
}
