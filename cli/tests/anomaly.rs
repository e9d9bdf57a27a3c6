//! `agentriage anomaly train` and `agentriage anomaly score` end to end.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Output;

mod support;
use support::{agentriage, repo};

use agentriage::anomaly::IsolationForest;
use serde_json::Value;

fn events_csv() -> String {
    repo()
        .join("testdata/anomaly/events.csv")
        .display()
        .to_string()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn train_on_csv_then_score_jsonl_with_a_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.json");
    let m = model.display().to_string();
    let out = agentriage(
        &[
            "anomaly",
            "train",
            "--input",
            &events_csv(),
            "--out",
            &m,
            "--seed",
            "4",
            "--n-estimators",
            "40",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loaded = IsolationForest::load(&model).unwrap();
    assert_eq!(loaded.features(), ["bytes_out_kb", "calls_per_min"]);
    assert_eq!(loaded.n_estimators(), 40);

    // Same seed, same model.
    let again = dir.path().join("again.json");
    let out = agentriage(
        &[
            "anomaly",
            "train",
            "-i",
            &events_csv(),
            "-o",
            &again.display().to_string(),
            "--seed",
            "4",
            "--n-estimators",
            "40",
        ],
        "",
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(&model).unwrap(),
        std::fs::read(&again).unwrap()
    );

    let stream = concat!(
        "{\"id\":\"a\",\"bytes_out_kb\":118.0,\"calls_per_min\":10.2}\n",
        "{\"id\":\"b\",\"bytes_out_kb\":8800.0,\"calls_per_min\":390}\n",
        "{\"id\":\"c\",\"bytes_out_kb\":\"lots\",\"calls_per_min\":1}\n",
    );
    let out = agentriage(
        &["anomaly", "score", "--model", &m, "--threshold", "0.6"],
        stream,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "an unscorable line sets exit code 1"
    );
    let printed = lines(&out);
    assert_eq!(printed.len(), 2, "{printed:?}");
    assert_eq!(printed[0]["line"], 2);
    assert_eq!(printed[0]["event"]["id"], "b");
    let score = printed[0]["score"].as_f64().unwrap();
    assert_eq!(score, loaded.score(&[8800.0, 390.0]).unwrap());
    assert_eq!(printed[1]["line"], 3);
    assert_eq!(printed[1]["error"]["kind"], "type");
    assert_eq!(printed[1]["error"]["path"], "bytes_out_kb");

    // Without a threshold every event is printed with its score.
    let out = agentriage(
        &["anomaly", "score", "--model", &m],
        &stream[..stream.find("\n{\"id\":\"c\"").unwrap() + 1],
    );
    assert!(out.status.success());
    let printed = lines(&out);
    assert_eq!(printed.len(), 2);
    assert!(printed[0]["score"].as_f64().unwrap() < printed[1]["score"].as_f64().unwrap());

    // CSV input scores the same.
    let out = agentriage(
        &["anomaly", "score", "--model", &m, "--input", &events_csv()],
        "",
    );
    assert!(out.status.success());
    let printed = lines(&out);
    assert_eq!(printed.len(), 1000);
    assert_eq!(printed[0]["line"], 2);
}

#[test]
fn train_on_jsonl_picks_the_numeric_fields() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("events.jsonl");
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!(
            "{{\"host\":\"h{i}\",\"a\":{},\"b\":{}}}\n",
            i % 7,
            (i * 3) % 11
        ));
    }
    std::fs::write(&input, text).unwrap();
    let model = dir.path().join("m.json");
    let out = agentriage(
        &[
            "anomaly",
            "train",
            "--input",
            &input.display().to_string(),
            "--out",
            &model.display().to_string(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        IsolationForest::load(&model).unwrap().features(),
        ["a", "b"]
    );
}

#[test]
fn bad_input_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("m.json").display().to_string();
    let ragged = dir.path().join("ragged.csv");
    std::fs::write(&ragged, "a,b\n1,2\n3,4\n5\n6,7\n").unwrap();
    let out = agentriage(
        &[
            "anomaly",
            "train",
            "--input",
            &ragged.display().to_string(),
            "--out",
            &out_path,
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ragged.csv:4:") && err.contains("1 cells"),
        "{err}"
    );

    let text_cell = dir.path().join("text.csv");
    std::fs::write(&text_cell, "a,b\n1,2\n3,x\n").unwrap();
    let out = agentriage(
        &[
            "anomaly",
            "train",
            "--input",
            &text_cell.display().to_string(),
            "--out",
            &out_path,
        ],
        "",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("text.csv:3:") && err.contains("`b`"), "{err}");

    let unknown = dir.path().join("events.txt");
    std::fs::write(&unknown, "a\n1\n").unwrap();
    let out = agentriage(
        &[
            "anomaly",
            "train",
            "--input",
            &unknown.display().to_string(),
            "--out",
            &out_path,
        ],
        "",
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));

    let model = dir.path().join("broken.json");
    std::fs::write(
        &model,
        "{\"format\":\"agentriage.isolation-forest\",\"version\":1,\n\"features\":[",
    )
    .unwrap();
    let out = agentriage(
        &["anomaly", "score", "--model", &model.display().to_string()],
        "",
    );
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.json:2"), "{err}");
}
