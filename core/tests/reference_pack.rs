//! The reference pack against the shared expected decisions in `testdata/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;

use agentriage::{Engine, Outcome, Request};
use common::{decision_cases, reference_pack, testdata};

/// The reference pack. The cases are decided many times (per entry point,
/// per thread), and intents and approvals verify once: the engine's state
/// store is one that remembers nothing. Replays are tested in
/// `tests/intents.rs`, approvals and quotas in `tests/approvals.rs`, and
/// the cases with `prior` decisions on an engine of their own.
fn engine() -> Engine {
    Engine::from_dir(reference_pack())
        .unwrap()
        .with_state(Arc::new(agentriage::state::NoState))
}

#[test]
fn every_expected_decision_holds() {
    let engine = engine();
    let cases = decision_cases();
    assert!(cases.len() >= 80, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let d = if case.prior > 0 {
            let own = Engine::from_dir(reference_pack()).unwrap();
            for _ in 0..case.prior {
                own.decide_value(&case.request).unwrap();
            }
            own.decide_value(&case.request).unwrap()
        } else {
            engine.decide_value(&case.request).unwrap()
        };
        let mut ids: Vec<String> = d.reasons.iter().map(|r| r.policy.clone()).collect();
        ids.sort();
        ids.dedup();
        let outcome_ok = d.outcome.as_str() == case.outcome;
        let reasons_ok = case.reasons.as_ref().is_none_or(|want| *want == ids);
        if !(outcome_ok && reasons_ok) {
            failures.push(format!(
                "{}: expected {} {:?}, got {} {:?}",
                case.name, case.outcome, case.reasons, d.outcome, ids
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_rule_is_exercised_by_a_non_execute_case() {
    let cases = decision_cases();
    for rule in 1..=13 {
        let prefix = format!("R{rule}.");
        assert!(
            cases.iter().any(|c| c
                .reasons
                .as_ref()
                .is_some_and(|r| r.iter().any(|id| id.starts_with(&prefix)))),
            "no case makes R{rule} fire"
        );
    }
}

#[test]
fn typed_and_json_paths_agree() {
    let engine = engine();
    for case in decision_cases() {
        let text = serde_json::to_string(&case.request).unwrap();
        let from_text = engine.decide_json(&text).unwrap();
        let typed = Request::from_value(&case.request).unwrap();
        let from_typed = engine.decide(&typed).unwrap();
        assert_eq!(from_text.outcome, from_typed.outcome, "{}", case.name);
        assert_eq!(from_text.reasons, from_typed.reasons, "{}", case.name);
    }
}

#[test]
fn decisions_carry_trace_bundle_and_ids() {
    let engine = engine();
    let cases = decision_cases();
    let base = &cases[0];
    let d = engine.decide_value(&base.request).unwrap();
    assert_eq!(d.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(d.bundle.name, "a2a-supply-chain");
    assert_eq!(d.bundle.revision, "2026.11.0");
    assert!(d.bundle.digest.starts_with("sha256:"));
    assert_eq!(d.bundle.digest.len(), 7 + 64);
    let again = engine.decide_value(&base.request).unwrap();
    assert_ne!(d.decision_id, again.decision_id);
    assert_eq!(uuid_version(&d.decision_id), '7');

    let mut no_trace = base.request.clone();
    no_trace.as_object_mut().unwrap().remove("trace_id");
    let a = engine.decide_value(&no_trace).unwrap();
    let b = engine.decide_value(&no_trace).unwrap();
    assert_eq!(a.trace_id.len(), 32);
    assert_ne!(a.trace_id, b.trace_id);

    let json: serde_json::Value = serde_json::from_str(&d.to_json()).unwrap();
    for key in [
        "outcome",
        "reasons",
        "obligations",
        "trace_id",
        "decision_id",
        "bundle",
        "duration_us",
    ] {
        assert!(json.get(key).is_some(), "decision JSON lacks `{key}`");
    }
    assert_eq!(json["outcome"], "execute");
}

fn uuid_version(id: &str) -> char {
    id.chars().nth(14).unwrap()
}

#[test]
fn non_execute_decisions_name_every_rule_that_fired() {
    let engine = engine();
    for case in decision_cases() {
        let d = engine.decide_value(&case.request).unwrap();
        if d.outcome != Outcome::Execute {
            assert!(!d.reasons.is_empty(), "{}", case.name);
            for r in &d.reasons {
                assert!(!r.message.is_empty(), "{}: empty message", case.name);
                // An action outside the risk table is outside the Cedar
                // schema too: Cedar refuses the request (an `error` reason).
                let unknown_action = d.reasons.iter().any(|x| x.policy == "R2.unknown_action");
                assert!(
                    r.policy.starts_with('R') || (r.policy == "error" && unknown_action),
                    "{}: {}",
                    case.name,
                    r.policy
                );
            }
        }
    }
}

#[test]
fn invalid_requests_fail_with_the_named_path_and_never_decide() {
    let engine = engine();
    let data = testdata("invalid-requests.json");
    for case in data["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let result = match case.get("text") {
            Some(text) => engine.decide_json(text.as_str().unwrap()),
            None => engine.decide_value(&case["request"]),
        };
        let err = result.expect_err(name);
        let req = err.as_request().unwrap_or_else(|| panic!("{name}: {err}"));
        assert_eq!(req.kind().as_str(), case["kind"], "{name}: {err}");
        assert_eq!(req.path(), case["path"], "{name}: {err}");
        // Through JSON text too, for the cases given as values.
        if case.get("request").is_some() {
            let text = serde_json::to_string(&case["request"]).unwrap();
            let err = engine.decide_json(&text).expect_err(name);
            assert_eq!(err.as_request().unwrap().path(), case["path"], "{name}");
        }
    }
}

#[test]
fn oversized_and_deep_requests_are_refused() {
    let engine = engine();
    let big = format!(
        r#"{{"principal":{{"id":"a"}},"action":{{"name":"shipment.read"}},"context":{{"x":"{}"}}}}"#,
        "y".repeat(agentriage::MAX_REQUEST_BYTES)
    );
    let e = engine.decide_json(&big).unwrap_err();
    assert_eq!(e.as_request().unwrap().kind().as_str(), "too_large");

    let deep = format!(
        r#"{{"principal":{{"id":"a"}},"action":{{"name":"shipment.read"}},"context":{{"x":{}{}}}}}"#,
        "{\"a\":".repeat(100),
        "}".repeat(100)
    );
    let e = engine.decide_json(&deep).unwrap_err();
    assert_eq!(e.as_request().unwrap().kind().as_str(), "too_deep");

    // Deep values built in Rust are refused too, not recursed into.
    let mut request = Request::new(
        "spiffe://acme.example/ns/analytics/sa/reporter",
        "shipment.read",
    );
    let mut v = serde_json::json!(1);
    for _ in 0..200 {
        v = serde_json::json!([v]);
    }
    request.context.insert("x".into(), v);
    let e = engine.decide(&request).unwrap_err();
    assert_eq!(e.as_request().unwrap().kind().as_str(), "too_deep");
}

#[test]
fn one_engine_serves_many_threads_with_sequential_results() {
    let engine = Arc::new(engine());
    let cases = decision_cases();
    let expected: Vec<(Outcome, Vec<String>)> = cases
        .iter()
        .map(|c| {
            let d = engine.decide_value(&c.request).unwrap();
            (d.outcome, d.policy_ids().map(str::to_owned).collect())
        })
        .collect();
    let requests: Arc<Vec<serde_json::Value>> =
        Arc::new(cases.iter().map(|c| c.request.clone()).collect());
    let expected = Arc::new(expected);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let engine = Arc::clone(&engine);
            let requests = Arc::clone(&requests);
            let expected = Arc::clone(&expected);
            std::thread::spawn(move || {
                for round in 0..5 {
                    for i in 0..requests.len() {
                        let j = (i + t * 7 + round) % requests.len();
                        let d = engine.decide_value(&requests[j]).unwrap();
                        let ids: Vec<String> = d.policy_ids().map(str::to_owned).collect();
                        assert_eq!((d.outcome, ids), expected[j].clone());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn the_interpreter_and_the_vm_agree_on_the_reference_pack() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&reference_pack(), dir.path());
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("[rego]\n", "[rego]\nevaluator = \"interpreter\"\n"),
    )
    .unwrap();
    let strict = Engine::from_dir(dir.path()).unwrap();
    let fast = engine();
    for case in decision_cases() {
        let a = strict.decide_value(&case.request).unwrap();
        let b = fast.decide_value(&case.request).unwrap();
        assert_eq!(a.outcome, b.outcome, "{}", case.name);
        assert_eq!(a.reasons, b.reasons, "{}", case.name);
    }
}
