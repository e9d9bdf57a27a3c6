//! The anomaly model: scoring definitions, the model format and its
//! validation, training, linfa traits and the JSON Lines pre-filter.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use agentriage::anomaly::{
    AnomalyError, Contamination, EventErrorKind, IsolationForest, MaxFeatures, MaxSamples,
    ModelErrorKind, average_path_length, score_jsonl,
};
use linfa::traits::{Fit, Predict};
use ndarray::{Array2, array};
use serde_json::{Value, json};

const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// One tree: root splits `b` at 0.1; left is a leaf of 3 samples, right a
/// leaf of 1. Model features `a`, `b`; the tree sees only `b`.
fn tiny() -> Value {
    json!({
        "format": "agentriage.isolation-forest",
        "version": 1,
        "features": ["a", "b"],
        "max_samples": 4,
        "offset": -0.5,
        "contamination": "auto",
        "trees": [{
            "features": [1],
            "children_left": [1, -1, -1],
            "children_right": [2, -1, -1],
            "feature": [0, -2, -2],
            "threshold": [0.1, -2.0, -2.0],
            "n_node_samples": [4, 3, 1]
        }]
    })
}

fn load(v: &Value) -> Result<IsolationForest, agentriage::anomaly::ModelError> {
    IsolationForest::from_json(&v.to_string())
}

fn c(n: f64) -> f64 {
    2.0 * ((n - 1.0).ln() + EULER_GAMMA) - 2.0 * (n - 1.0) / n
}

#[test]
fn average_path_length_matches_sklearn_edge_cases() {
    assert_eq!(average_path_length(0.0), 0.0);
    assert_eq!(average_path_length(1.0), 0.0);
    assert_eq!(average_path_length(2.0), 1.0);
    assert_eq!(average_path_length(3.0), c(3.0));
    assert!((average_path_length(256.0) - 10.244_770_920_631_8).abs() < 1e-9);
}

#[test]
fn scores_follow_sklearn_definitions_with_the_float32_cast() {
    let m = load(&tiny()).unwrap();
    // Left leaf: depth 1, 3 samples. Right leaf: depth 1, 1 sample.
    let left = 2f64.powf(-(1.0 + c(3.0)) / c(4.0));
    let right = 2f64.powf(-1.0 / c(4.0));
    assert_eq!(m.score(&[0.0, 0.05]).unwrap(), left);
    assert_eq!(m.score(&[0.0, 0.2]).unwrap(), right);
    // 0.1 as float32 is 0.100000001490116..., above the float64 threshold 0.1:
    // scikit-learn sends it right, and so do we.
    assert_eq!(m.score(&[0.0, 0.1]).unwrap(), right);
    // The largest float32 at or below 0.1 goes left.
    let below = f64::from(f32::from_bits(0.1f32.to_bits() - 1));
    assert_eq!(m.score(&[0.0, below]).unwrap(), left);
    let x = array![[0.0, 0.05], [9.0, 0.2]];
    let samples = m.score_samples(x.view()).unwrap();
    assert_eq!(samples.to_vec(), vec![-left, -right]);
    let decision = m.decision_function(x.view()).unwrap();
    assert_eq!(decision.to_vec(), vec![-left + 0.5, -right + 0.5]);
    assert_eq!(
        m.predict(x.view()).unwrap().to_vec(),
        vec![
            i8::from(-left + 0.5 >= 0.0) * 2 - 1,
            i8::from(-right + 0.5 >= 0.0) * 2 - 1
        ]
    );
    assert_eq!(m.score_threshold(), 0.5);
}

#[test]
fn a_single_sample_forest_scores_one_half() {
    let mut v = tiny();
    v["max_samples"] = json!(1);
    let m = load(&v).unwrap();
    assert_eq!(m.score(&[0.0, 0.0]).unwrap(), 0.5);
}

#[test]
fn named_features_must_match_the_model_exactly() {
    let m = load(&tiny()).unwrap();
    assert_eq!(
        m.score_named([("b", 0.2), ("a", 1.0)]).unwrap(),
        m.score(&[1.0, 0.2]).unwrap()
    );
    assert_eq!(
        m.score_named([("b", 0.2)]).unwrap_err(),
        AnomalyError::MissingFeature {
            feature: "a".into()
        }
    );
    assert!(matches!(
        m.score_named([("a", 0.2), ("b", 0.2), ("c", 1.0)]).unwrap_err(),
        AnomalyError::UnknownFeature { feature, .. } if feature == "c"
    ));
}

#[test]
fn unscorable_values_are_errors_naming_row_and_feature() {
    let m = load(&tiny()).unwrap();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e300] {
        let e = m.scores(array![[0.0, 0.0], [0.0, bad]].view()).unwrap_err();
        assert!(
            matches!(&e, AnomalyError::Value { row: 1, feature, .. } if feature == "b"),
            "{e}"
        );
    }
    assert_eq!(
        m.score(&[1.0]).unwrap_err(),
        AnomalyError::Shape {
            expected: 2,
            found: 1
        }
    );
}

fn invalid(v: &Value) -> (ModelErrorKind, Option<String>) {
    let e = load(v).unwrap_err();
    (e.kind(), e.path().map(str::to_owned))
}

type Tamper = Box<dyn Fn(&mut Value)>;

#[test]
fn tampered_models_are_refused_with_a_json_path() {
    let cases: Vec<(Tamper, ModelErrorKind, &str)> = vec![
        (
            Box::new(|v| v["format"] = json!("x")),
            ModelErrorKind::Format,
            "format",
        ),
        (
            Box::new(|v| v["version"] = json!(2)),
            ModelErrorKind::Format,
            "version",
        ),
        (
            Box::new(|v| v["trees"][0]["children_left"][0] = json!(7)),
            ModelErrorKind::Invalid,
            "trees[0].children_left[0]",
        ),
        // A cycle: the right child points back at the root.
        (
            Box::new(|v| v["trees"][0]["children_right"][0] = json!(0)),
            ModelErrorKind::Invalid,
            "trees[0].children_right[0]",
        ),
        // Both children the same node.
        (
            Box::new(|v| v["trees"][0]["children_right"][0] = json!(1)),
            ModelErrorKind::Invalid,
            "trees[0].children_right[0]",
        ),
        (
            Box::new(|v| v["trees"][0]["children_right"][0] = json!(-1)),
            ModelErrorKind::Invalid,
            "trees[0].children_right[0]",
        ),
        (
            Box::new(|v| v["trees"][0]["features"][0] = json!(2)),
            ModelErrorKind::Invalid,
            "trees[0].features[0]",
        ),
        (
            Box::new(|v| v["trees"][0]["feature"][0] = json!(1)),
            ModelErrorKind::Invalid,
            "trees[0].feature[0]",
        ),
        (
            Box::new(|v| v["trees"][0]["n_node_samples"][2] = json!(0)),
            ModelErrorKind::Invalid,
            "trees[0].n_node_samples[2]",
        ),
        (
            Box::new(|v| v["trees"][0]["threshold"] = json!([0.1])),
            ModelErrorKind::Invalid,
            "trees[0].threshold",
        ),
        (
            Box::new(|v| v["features"] = json!(["a", "a"])),
            ModelErrorKind::Invalid,
            "features[1]",
        ),
        (
            Box::new(|v| v["features"] = json!([])),
            ModelErrorKind::Invalid,
            "features",
        ),
        (
            Box::new(|v| v["trees"] = json!([])),
            ModelErrorKind::Invalid,
            "trees",
        ),
        (
            Box::new(|v| v["max_samples"] = json!(0)),
            ModelErrorKind::Invalid,
            "max_samples",
        ),
        (
            Box::new(|v| v["contamination"] = json!(0.7)),
            ModelErrorKind::Invalid,
            "contamination",
        ),
    ];
    for (tamper, kind, path) in cases {
        let mut v = tiny();
        tamper(&mut v);
        assert_eq!(invalid(&v), (kind, Some(path.to_owned())), "{v}");
    }
}

#[test]
fn orphan_nodes_and_endless_depth_are_refused() {
    let mut v = tiny();
    v["trees"][0]["children_left"] = json!([1, -1, -1, -1]);
    v["trees"][0]["children_right"] = json!([2, -1, -1, -1]);
    v["trees"][0]["feature"] = json!([0, -2, -2, -2]);
    v["trees"][0]["threshold"] = json!([0.1, -2.0, -2.0, -2.0]);
    v["trees"][0]["n_node_samples"] = json!([4, 3, 1, 1]);
    let e = load(&v).unwrap_err();
    assert!(e.message().contains("node 3 is not reachable"), "{e}");

    // A chain 2000 levels deep: refused, not walked forever.
    let n = 4001usize;
    let mut left = vec![-1i64; n];
    let mut right = vec![-1i64; n];
    let mut feature = vec![-2i64; n];
    for i in 0..2000 {
        left[2 * i] = (2 * i + 1) as i64;
        right[2 * i] = (2 * i + 2) as i64;
        feature[2 * i] = 0;
    }
    v["trees"][0] = json!({
        "features": [0], "children_left": left, "children_right": right,
        "feature": feature, "threshold": vec![0.0; n], "n_node_samples": vec![1; n]
    });
    let e = load(&v).unwrap_err();
    assert!(e.message().contains("deeper than"), "{e}");
}

#[test]
fn syntax_errors_name_the_line() {
    let text = serde_json::to_string_pretty(&tiny()).unwrap();
    let cut = &text[..text.len() / 2];
    let e = IsolationForest::from_json(cut).unwrap_err();
    assert_eq!(e.kind(), ModelErrorKind::Syntax);
    assert!(e.line().unwrap() > 1);
    let e =
        IsolationForest::from_json(&text.replace("\"max_samples\": 4", "\"max_samples\": \"4\""))
            .unwrap_err();
    assert_eq!(e.kind(), ModelErrorKind::Syntax);
    let e = IsolationForest::from_json(&text.replace("\"offset\"", "\"offest\"")).unwrap_err();
    assert!(e.message().contains("offest"), "{e}");
}

#[test]
fn load_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    std::fs::write(&path, "{\"format\": ").unwrap();
    let e = IsolationForest::load(&path).unwrap_err();
    assert_eq!(e.file(), Some(path.as_path()));
    assert!(e.to_string().starts_with(&path.display().to_string()));
    let e = IsolationForest::load(dir.path().join("absent.json")).unwrap_err();
    assert_eq!(e.kind(), ModelErrorKind::Io);
}

/// 500 inliers around the origin and 10 far outliers, 4 features.
fn data() -> (Array2<f64>, Vec<bool>) {
    let mut rng = fastrand::Rng::with_seed(9);
    let mut x = Array2::zeros((510, 4));
    let mut outlier = vec![false; 510];
    for i in 0..510 {
        for j in 0..4 {
            x[[i, j]] = if i < 500 {
                rng.f64() + rng.f64() + rng.f64() - 1.5
            } else {
                (rng.f64() - 0.5) * 20.0
            };
        }
        outlier[i] = i >= 500;
    }
    (x, outlier)
}

fn auc(scores: &[f64], positive: &[bool]) -> f64 {
    let (mut wins, mut pairs) = (0.0, 0.0);
    for (i, &si) in scores.iter().enumerate() {
        for (j, &sj) in scores.iter().enumerate() {
            if positive[i] && !positive[j] {
                pairs += 1.0;
                wins += if si > sj {
                    1.0
                } else if si == sj {
                    0.5
                } else {
                    0.0
                };
            }
        }
    }
    wins / pairs
}

#[test]
fn training_is_reproducible_and_separates_outliers() {
    let (x, outlier) = data();
    let params = IsolationForest::params()
        .seed(3)
        .max_features(MaxFeatures::Fraction(0.5));
    let a = params.clone().fit(x.view()).unwrap();
    let b = params.clone().parallel(false).fit(x.view()).unwrap();
    assert_eq!(a.to_json(), b.to_json());
    let other = params.seed(4).fit(x.view()).unwrap();
    assert_ne!(a.to_json(), other.to_json());
    assert_eq!(a.n_estimators(), 100);
    assert_eq!(a.max_samples(), 256);
    assert_eq!(a.features(), ["x0", "x1", "x2", "x3"]);
    let scores = a.scores(x.view()).unwrap();
    assert!(auc(scores.as_slice().unwrap(), &outlier) > 0.95);
    // Round trip through the model format keeps every score.
    let back = IsolationForest::from_json(&a.to_json()).unwrap();
    assert_eq!(back.scores(x.view()).unwrap(), scores);
}

#[test]
fn contamination_sets_the_offset_to_the_training_percentile() {
    let (x, _) = data();
    let m = IsolationForest::params()
        .contamination(Contamination::Fraction(0.1))
        .seed(1)
        .fit(x.view())
        .unwrap();
    let predicted = m.predict(x.view()).unwrap();
    let outliers = predicted.iter().filter(|&&p| p == -1).count();
    assert!((50..=52).contains(&outliers), "{outliers}");
    let mut samples = m.score_samples(x.view()).unwrap().to_vec();
    samples.sort_by(f64::total_cmp);
    // numpy.percentile(samples, 10): index 50.9 between 50 and 51.
    let expected = samples[51] - (samples[51] - samples[50]) * (1.0 - 0.9000000000000057);
    assert!(
        (m.offset() - expected).abs() < 1e-15,
        "{} {expected}",
        m.offset()
    );
    assert_eq!(m.contamination(), Some(Contamination::Fraction(0.1)));
}

#[test]
fn parameters_out_of_range_are_named() {
    let (x, _) = data();
    let name = |p: agentriage::anomaly::IsolationForestParams| match p.fit(x.view()).unwrap_err() {
        AnomalyError::Parameter { name, .. } => name,
        other => panic!("{other}"),
    };
    assert_eq!(
        name(IsolationForest::params().n_estimators(0)),
        "n_estimators"
    );
    assert_eq!(
        name(IsolationForest::params().max_samples(MaxSamples::Fraction(1.5))),
        "max_samples"
    );
    assert_eq!(
        name(IsolationForest::params().max_samples(MaxSamples::Count(0))),
        "max_samples"
    );
    assert_eq!(
        name(IsolationForest::params().max_features(MaxFeatures::Count(5))),
        "max_features"
    );
    assert_eq!(
        name(IsolationForest::params().contamination(Contamination::Fraction(0.0))),
        "contamination"
    );
    assert_eq!(
        name(IsolationForest::params().feature_names(vec!["a".into()])),
        "feature_names"
    );
    assert_eq!(
        IsolationForest::params()
            .fit(Array2::<f64>::zeros((0, 3)).view())
            .unwrap_err(),
        AnomalyError::Empty
    );
    let mut bad = x.clone();
    bad[[7, 2]] = f64::NAN;
    assert!(matches!(
        IsolationForest::params().fit(bad.view()).unwrap_err(),
        AnomalyError::Value { row: 7, feature, .. } if feature == "x2"
    ));
}

#[test]
fn small_and_degenerate_inputs_train() {
    // One row, two identical rows, a constant column: no panic, finite scores.
    for x in [
        array![[1.0, 2.0]],
        array![[1.0, 2.0], [1.0, 2.0]],
        array![[1.0, 5.0], [1.0, 6.0], [1.0, 7.0]],
    ] {
        let m = IsolationForest::params()
            .n_estimators(5)
            .fit(x.view())
            .unwrap();
        for s in m.scores(x.view()).unwrap() {
            assert!(s > 0.0 && s <= 1.0, "{s}");
        }
    }
    let m = IsolationForest::params()
        .max_samples(MaxSamples::Count(1_000))
        .n_estimators(3)
        .fit(array![[1.0], [2.0], [3.0]].view())
        .unwrap();
    assert_eq!(m.max_samples(), 3);
}

#[test]
fn linfa_fit_and_predict_compose_with_datasets() {
    let (x, outlier) = data();
    let dataset = linfa::Dataset::new(x.clone(), ndarray::Array1::<usize>::zeros(x.nrows()));
    let params = IsolationForest::params().contamination(Contamination::Fraction(0.02));
    // The inherent `fit`/`predict` take views and return `Result`; linfa's
    // traits are reached by path.
    let model: IsolationForest = Fit::fit(&params, &dataset).unwrap();
    let labels: ndarray::Array1<i8> = Predict::predict(&model, &x);
    assert_eq!(labels, model.predict(x.view()).unwrap());
    let flagged = labels
        .iter()
        .zip(&outlier)
        .filter(|(l, o)| **l == -1 && **o)
        .count();
    assert!(flagged >= 9, "{flagged}");
    // Unscorable rows are labelled outliers by the infallible linfa path.
    let nan = array![[f64::NAN, 0.0, 0.0, 0.0]];
    let labels: ndarray::Array1<i8> = Predict::predict(&model, &nan);
    assert_eq!(labels.to_vec(), vec![-1]);
}

#[test]
fn jsonl_stream_scores_events_and_requests_and_reports_bad_lines() {
    let m = load(&tiny()).unwrap();
    let input = concat!(
        "{\"id\":1,\"a\":0,\"b\":0.05}\n",
        "\n",
        "{\"principal\":{\"id\":\"x\"},\"anomaly\":{\"features\":{\"a\":1,\"b\":0.5}}}\n",
        "{\"id\":3,\"a\":0}\n",
        "{\"id\":4,\"a\":0,\"b\":\"high\"}\n",
        "not json\n",
        "{\"anomaly\":{\"features\":{\"a\":1,\"b\":0.5,\"z\":1}}}\n",
        "{\"a\":0,\"b\":1e300}\n",
    );
    let out: Vec<_> = score_jsonl(&m, input.as_bytes()).collect();
    assert_eq!(out.len(), 7);
    let first = out[0].as_ref().unwrap();
    assert_eq!(
        (first.line, first.score),
        (1, m.score(&[0.0, 0.05]).unwrap())
    );
    assert_eq!(first.event["id"], 1);
    let second = out[1].as_ref().unwrap();
    assert_eq!(
        (second.line, second.score),
        (3, m.score(&[1.0, 0.5]).unwrap())
    );
    let errors: Vec<_> = out[2..]
        .iter()
        .map(|r| {
            let e = r.as_ref().unwrap_err();
            (e.line, e.kind, e.path.clone())
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (4, EventErrorKind::Missing, Some("b".to_owned())),
            (5, EventErrorKind::Type, Some("b".to_owned())),
            (6, EventErrorKind::Syntax, None),
            (
                7,
                EventErrorKind::Unknown,
                Some("anomaly.features.z".to_owned())
            ),
            (8, EventErrorKind::Value, Some("b".to_owned())),
        ]
    );
}

#[test]
fn filter_keeps_rows_at_or_above_the_threshold() {
    let (x, _) = data();
    let m = IsolationForest::params().seed(5).fit(x.view()).unwrap();
    let scores = m.scores(x.view()).unwrap();
    let threshold = scores[505];
    let (rows, kept) = m.filter(x.view(), threshold).unwrap();
    assert!(rows.contains(&505));
    for (i, s) in scores.iter().enumerate() {
        assert_eq!(rows.contains(&i), *s >= threshold);
    }
    assert_eq!(kept, rows.iter().map(|&r| scores[r]).collect::<Vec<_>>());
}

/// Random structural tampering of a valid model (children, features,
/// counts, thresholds replaced by hostile values): every result is a typed
/// error or a model that scores within (0, 1]. A cheap, always-run
/// complement to the `anomaly_model` fuzz target.
#[test]
fn random_tampering_never_panics_or_hangs() {
    let (x, _) = data();
    let base: Value = serde_json::from_str(
        &IsolationForest::params()
            .n_estimators(3)
            .max_samples(MaxSamples::Count(16))
            .fit(x.view())
            .unwrap()
            .to_json(),
    )
    .unwrap();
    let hostile = [
        json!(-1),
        json!(0),
        json!(1),
        json!(2),
        json!(3),
        json!(-2),
        json!(4_294_967_295u64),
        json!(1e308),
        json!(-0.0),
        json!(0.5),
    ];
    let fields = [
        "children_left",
        "children_right",
        "feature",
        "threshold",
        "n_node_samples",
        "features",
    ];
    let mut rng = fastrand::Rng::with_seed(17);
    let (mut loaded, mut refused) = (0, 0);
    for _ in 0..3000 {
        let mut v = base.clone();
        for _ in 0..rng.usize(1..4) {
            let t = rng.usize(0..3);
            let field = fields[rng.usize(0..fields.len())];
            let arr = v["trees"][t][field].as_array_mut().unwrap();
            if arr.is_empty() {
                continue;
            }
            let i = rng.usize(0..arr.len());
            arr[i] = hostile[rng.usize(0..hostile.len())].clone();
        }
        match IsolationForest::from_json(&v.to_string()) {
            Ok(m) => {
                loaded += 1;
                let s = m.score(&[0.0, 0.5, -1.0, 3.0]).unwrap();
                assert!(s > 0.0 && s <= 1.0, "{s}");
            }
            Err(e) => {
                refused += 1;
                assert!(
                    e.path().is_some() || e.kind() == ModelErrorKind::Syntax,
                    "{e}"
                );
            }
        }
    }
    assert!(loaded > 0 && refused > 0, "{loaded} {refused}");
}
