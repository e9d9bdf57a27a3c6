//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The reference pack's directory.
pub fn reference_pack() -> PathBuf {
    repo().join("policies/a2a-supply-chain")
}

/// Reads a JSON file of `testdata/`.
pub fn testdata(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("testdata").join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// JSON merge patch (RFC 7396).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    agentriage::testing::merge_patch(target, patch);
}

/// One expected decision of the reference pack's suites.
pub struct Case {
    pub name: String,
    pub request: Value,
    /// Decisions of the same request the case's decision follows, in the
    /// case's own state (quotas, used approvals).
    pub prior: u32,
    pub outcome: String,
    pub reasons: Option<Vec<String>>,
}

/// Every case of the reference pack's YAML suites
/// (`policies/a2a-supply-chain/tests/*.yaml`), with its request built.
pub fn decision_cases() -> Vec<Case> {
    let files = agentriage::testing::discover(&[reference_pack().join("tests")]).unwrap();
    let mut cases = Vec::new();
    for file in files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e != "rego"))
    {
        let agentriage::testing::SuiteFileKind::Suite(suite) =
            agentriage::testing::load_suite(file).unwrap()
        else {
            continue;
        };
        for c in suite.cases {
            assert_eq!(
                c.expect.matching,
                agentriage::testing::Match::Exact,
                "{}: the pack's suites list every reason",
                c.name
            );
            cases.push(Case {
                name: c.name,
                request: c.request,
                prior: c.prior,
                outcome: c.expect.outcome.as_str().to_owned(),
                reasons: c.expect.reasons.map(|mut r| {
                    r.sort();
                    r
                }),
            });
        }
    }
    cases
}

/// The typical request: the `reroute` base of the pack's suites (both
/// engines run in full and it executes), as JSON text.
pub fn typical_request() -> String {
    let case = decision_cases()
        .into_iter()
        .find(|c| c.name == "baseline reroute executes")
        .unwrap();
    serde_json::to_string(&case.request).unwrap()
}

/// Writes a bundle into a new temporary directory: `files` are (path, text).
pub fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    dir
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
