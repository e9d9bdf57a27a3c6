//! Bundles beyond the load limits through the CLI: `check` and `eval` report
//! a typed error with file and line and exit normally, never abort or hang.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;

use serde_json::Value;

#[path = "../../core/tests/common/mod.rs"]
mod common;

mod support;

use support::run as agentriage;

/// The reference pack with its Cedar policies replaced by a ~2 KB policy
/// nesting 1 000 parentheses, and a Rego literal nesting 5 000 arrays
/// appended to one module.
fn hostile_pack() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), dir.path());
    let policy = format!(
        "// attack\n\npermit (principal, action, resource) when {{ {}true{} }};\n",
        "(".repeat(1000),
        ")".repeat(1000)
    );
    std::fs::write(dir.path().join("cedar/pack.cedar"), policy).unwrap();
    let module = dir.path().join("rego/thresholds.rego");
    let mut text = std::fs::read_to_string(&module).unwrap();
    let line = text.lines().count() + 1;
    text.push_str(&format!(
        "deep := {}1{}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    ));
    std::fs::write(&module, text).unwrap();
    std::fs::write(dir.path().join("line"), line.to_string()).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_reports_the_limits_crossed_with_file_and_line() {
    let dir = hostile_pack();
    let rego_line: u64 = std::fs::read_to_string(dir.path().join("line"))
        .unwrap()
        .parse()
        .unwrap();
    let (code, out, err) = agentriage(&["check", "--bundle", s(dir.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let limits: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "limit")
        .collect();
    let find = |file: &str| {
        limits
            .iter()
            .find(|p| p["file"].as_str().unwrap().ends_with(file))
            .unwrap_or_else(|| panic!("no limit problem for {file}: {out}"))
    };
    let cedar = find("cedar/pack.cedar");
    assert_eq!(cedar["line"], 3);
    assert!(
        cedar["message"]
            .as_str()
            .unwrap()
            .contains("nest deeper than 16"),
        "{cedar}"
    );
    let rego = find("rego/thresholds.rego");
    assert_eq!(rego["line"], rego_line);
    assert!(
        rego["message"]
            .as_str()
            .unwrap()
            .contains("nest deeper than 12"),
        "{rego}"
    );
}

#[test]
fn eval_refuses_the_bundle_with_a_bundle_error() {
    let dir = hostile_pack();
    let request = std::fs::read_to_string(common::repo().join("testdata/requests.jsonl")).unwrap();
    let input = dir.path().join("request.json");
    std::fs::write(&input, request.lines().next().unwrap()).unwrap();
    let (code, out, err) = agentriage(&["eval", "--bundle", s(dir.path()), "--input", s(&input)]);
    // 3: the bundle could not be loaded; no decision is printed.
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(!out.contains("execute"), "{out}");
    assert!(err.contains("nest deeper than"), "{err}");
}

#[test]
fn test_refuses_a_rego_test_module_beyond_the_limits() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), dir.path());
    let module = format!(
        "package agentriage_test\n\ntest_deep if {{\n\tcount({}1{}) == 1\n}}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    std::fs::write(dir.path().join("tests/deep_test.rego"), module).unwrap();
    let (code, out, err) = agentriage(&["test", s(dir.path())]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report = format!("{out}{err}");
    assert!(report.contains("deep_test.rego"), "{report}");
    assert!(report.contains("nest deeper than 12"), "{report}");
}
