//! The anomaly model in the decision: `anomaly.features` scored by the
//! bundle's model reach both policy engines exactly as a given score, and
//! every bad feature, model or manifest is a typed error.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::{Path, PathBuf};

use agentriage::{BundleErrorKind, Engine, Outcome, RequestErrorKind};
use serde_json::{Value, json};

fn bundle_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/anomaly/bundle")
}

fn engine() -> Engine {
    Engine::from_dir(bundle_dir()).unwrap()
}

fn request(anomaly: Value) -> Value {
    json!({
        "time": "2026-11-21T14:05:00Z",
        "principal": {"id": "spiffe://acme.example/ns/logistics/sa/router"},
        "action": {"name": "shipment.read"},
        "anomaly": anomaly
    })
}

/// Ordinary events of the test model's training data, and far outliers.
const ORDINARY: [(f64, f64); 3] = [(120.0, 10.0), (95.0, 12.0), (140.0, 8.0)];
const ANOMALOUS: [(f64, f64); 2] = [(9000.0, 400.0), (0.0, 350.0)];

fn features(bytes: f64, calls: f64) -> Value {
    json!({"features": {"bytes_out_kb": bytes, "calls_per_min": calls}})
}

#[test]
fn features_are_scored_and_both_engines_see_the_score_as_given() {
    let engine = engine();
    let bundle = engine.bundle();
    let model = bundle.anomaly_model().unwrap();
    for (bytes, calls) in ORDINARY.into_iter().chain(ANOMALOUS) {
        let score = model
            .score_named([("bytes_out_kb", bytes), ("calls_per_min", calls)])
            .unwrap();
        let scored = engine
            .decide_value(&request(features(bytes, calls)))
            .unwrap();
        let given = engine
            .decide_value(&request(json!({"score": score})))
            .unwrap();
        assert_eq!(scored.outcome, given.outcome);
        assert_eq!(scored.reasons, given.reasons);
        assert_eq!(scored.obligations, given.obligations);
        // Rego saw `input.anomaly.score` as the model's score (obligation
        // parameters come back through Rego's own number conversion).
        let seen = scored.obligations[0].params["score"].as_f64().unwrap();
        assert!((seen - score).abs() < 1e-12, "{seen} {score}");
    }
}

#[test]
fn the_threshold_in_policy_data_decides() {
    let engine = engine();
    for (bytes, calls) in ORDINARY {
        let d = engine
            .decide_value(&request(features(bytes, calls)))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Execute, "{d:?}");
    }
    for (bytes, calls) in ANOMALOUS {
        let d = engine
            .decide_value(&request(features(bytes, calls)))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Escalate, "{d:?}");
        let ids: Vec<&str> = d.policy_ids().collect();
        assert!(
            ids.contains(&"anomaly.rego") && ids.contains(&"anomaly.cedar"),
            "{ids:?}"
        );
    }
}

fn request_error(engine: &Engine, anomaly: Value) -> (RequestErrorKind, String) {
    let e = engine.decide_value(&request(anomaly)).unwrap_err();
    let r = e.as_request().unwrap();
    (r.kind(), r.path().to_owned())
}

#[test]
fn bad_features_are_request_errors_naming_the_feature() {
    let engine = engine();
    let cases = [
        (
            json!({"features": {"bytes_out_kb": 1.0}}),
            RequestErrorKind::Missing,
            "anomaly.features.calls_per_min",
        ),
        (
            json!({"features": {"bytes_out_kb": 1.0, "calls_per_min": 2, "hour": 3}}),
            RequestErrorKind::Unknown,
            "anomaly.features.hour",
        ),
        (
            json!({"features": {"bytes_out_kb": "1", "calls_per_min": 2}}),
            RequestErrorKind::Type,
            "anomaly.features.bytes_out_kb",
        ),
        (
            json!({"features": {"bytes_out_kb": null, "calls_per_min": 2}}),
            RequestErrorKind::Type,
            "anomaly.features.bytes_out_kb",
        ),
        (
            json!({"features": {"bytes_out_kb": 1e300, "calls_per_min": 2}}),
            RequestErrorKind::Value,
            "anomaly.features.bytes_out_kb",
        ),
        (
            json!({"features": [1, 2]}),
            RequestErrorKind::Type,
            "anomaly.features",
        ),
        (
            json!({"score": 0.5, "features": {"bytes_out_kb": 1.0, "calls_per_min": 2}}),
            RequestErrorKind::Value,
            "anomaly",
        ),
        (
            json!({"featurez": {}}),
            RequestErrorKind::Unknown,
            "anomaly.featurez",
        ),
    ];
    for (anomaly, kind, path) in cases {
        assert_eq!(
            request_error(&engine, anomaly.clone()),
            (kind, path.to_owned()),
            "{anomaly}"
        );
    }
}

#[test]
fn rust_built_requests_with_non_finite_features_are_refused() {
    let engine = engine();
    let mut r = agentriage::Request::from_value(&request(features(1.0, 2.0))).unwrap();
    r.anomaly
        .as_mut()
        .unwrap()
        .features
        .as_mut()
        .unwrap()
        .insert("calls_per_min".into(), f64::NAN);
    let e = engine.decide(&r).unwrap_err();
    assert_eq!(
        e.as_request().unwrap().path(),
        "anomaly.features.calls_per_min"
    );
}

#[test]
fn features_without_a_model_are_a_clear_error() {
    let pack = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/a2a-supply-chain");
    let engine = Engine::from_dir(pack).unwrap();
    let e = engine
        .decide_value(&request(features(1.0, 2.0)))
        .unwrap_err();
    let r = e.as_request().unwrap();
    assert_eq!(
        (r.kind(), r.path()),
        (RequestErrorKind::Value, "anomaly.features")
    );
    assert!(r.message().contains("no anomaly model"), "{r}");
}

#[test]
fn request_json_round_trips_features() {
    let r = agentriage::Request::from_value(&request(features(1.5, 2.0))).unwrap();
    assert_eq!(r.to_json()["anomaly"], features(1.5, 2.0));
}

fn copy_bundle() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&bundle_dir(), dir.path());
    dir
}

#[test]
fn bad_models_fail_the_bundle_load_naming_the_file() {
    // A tampered tree: a child out of range.
    let dir = copy_bundle();
    let model_path = dir.path().join("anomaly/model.json");
    let mut model: Value =
        serde_json::from_str(&std::fs::read_to_string(&model_path).unwrap()).unwrap();
    model["trees"][3]["children_left"][0] = json!(100_000);
    std::fs::write(&model_path, serde_json::to_string_pretty(&model).unwrap()).unwrap();
    let e = Engine::from_dir(dir.path()).unwrap_err();
    let b = e.as_bundle().unwrap();
    assert_eq!(b.kind(), BundleErrorKind::Model);
    assert!(b.file().ends_with("anomaly/model.json"), "{b}");
    assert!(b.message().contains("trees[3].children_left[0]"), "{b}");

    // A truncated file: a syntax error with its line.
    let text = serde_json::to_string_pretty(&model).unwrap();
    std::fs::write(&model_path, &text[..text.len() / 3]).unwrap();
    let b = Engine::from_dir(dir.path()).unwrap_err();
    let b = b.as_bundle().unwrap();
    assert_eq!(b.kind(), BundleErrorKind::Model);
    assert!(b.line().unwrap() > 1, "{b}");

    // A model the manifest names that is not there: the manifest line.
    std::fs::remove_file(&model_path).unwrap();
    let b = Engine::from_dir(dir.path()).unwrap_err();
    let b = b.as_bundle().unwrap();
    assert_eq!(b.kind(), BundleErrorKind::Io);
    assert!(b.file().ends_with("bundle.toml"));
    assert_eq!(b.line(), Some(19));

    // An unknown key in the [anomaly] table.
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("model = ", "threshold = 0.5\nmodel = "),
    )
    .unwrap();
    let b = Engine::from_dir(dir.path()).unwrap_err();
    assert_eq!(b.as_bundle().unwrap().kind(), BundleErrorKind::Manifest);
}
