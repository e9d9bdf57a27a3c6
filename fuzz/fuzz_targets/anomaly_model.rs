//! The anomaly model loader on arbitrary bytes.
//!
//! Every input must yield a typed error or a model that scores: a panic, a
//! hang (a cyclic or endlessly deep tree) or a non-finite score is a finding.
#![no_main]

use agentriage::anomaly::IsolationForest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = IsolationForest::from_json(text) else {
        return;
    };
    let n = model.features().len();
    for value in [0.0, -1.0e30, 1.0e30, 0.5] {
        let row = vec![value; n];
        let score = model.score(&row).expect("a loaded model scores finite input");
        assert!(score > 0.0 && score <= 1.0, "score {score} outside (0, 1]");
    }
    // What a model writes, it reads back, and the scores agree.
    let again = IsolationForest::from_json(&model.to_json()).expect("round trip");
    let row = vec![0.25; n];
    assert_eq!(model.score(&row).ok(), again.score(&row).ok());
});
