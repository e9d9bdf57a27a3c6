//! `agentriage test` and `agentriage check` end to end: the reference pack's
//! suites through the CLI (this is how CI runs them), broken cases, broken
//! files, broken bundles, and every report format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use serde_json::Value;

#[path = "../../core/tests/common/mod.rs"]
mod common;

/// The Rego-native tests of the pack's `tests/rules_test.rego`.
const REGO_TESTS: usize = 6;

fn pack() -> PathBuf {
    common::reference_pack()
}

mod support;

use support::run as agentriage;

/// The reference pack copied into a temporary directory.
fn pack_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&pack(), dir.path());
    dir
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} lacks {from:?}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_reference_pack_passes_with_coverage_above_95_percent() {
    let pack = pack();
    let (code, out, err) = agentriage(&["test", s(&pack), "--coverage", "--threshold", "95"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let cases = common::decision_cases().len();
    assert!(cases >= 125, "{cases} cases");
    // The cases and the Rego-native tests of tests/rules_test.rego.
    let rego_tests = std::fs::read_to_string(pack.join("tests/rules_test.rego"))
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("test_"))
        .count();
    let total = cases + rego_tests;
    assert!(
        out.starts_with(&format!("running {total} tests\n")),
        "{out}"
    );
    assert!(
        out.contains("test R4 credential expiry::R4 credential expiring at T is expired ... ok"),
        "{out}"
    );
    assert!(
        out.contains("test agentriage_test::test_threshold_is_policy_data ... ok"),
        "{out}"
    );
    assert!(
        out.contains(&format!("test result: ok. {total} passed, 0 failed")),
        "{out}"
    );
    assert!(out.contains("coverage: 100.0% "), "{out}");
}

#[test]
fn a_broken_expectation_and_a_broken_policy_fail_clearly() {
    let dir = pack_copy();
    // An expectation that is wrong on purpose...
    edit(
        &dir.path().join("tests/r04.yaml"),
        "  - name: R4 credential expired 1s before T\n    patch: {\"principal\": {\"credential\": {\"expires_at\": \"2026-11-21T14:04:59Z\"}}}\n    expect: {outcome: reject",
        "  - name: R4 credential expired 1s before T\n    patch: {\"principal\": {\"credential\": {\"expires_at\": \"2026-11-21T14:04:59Z\"}}}\n    expect: {outcome: execute",
    );
    // ...and a policy broken on purpose: R7 no longer quarantines the site.
    edit(
        &dir.path().join("cedar/pack.cedar"),
        "[\"edge-site-13\"]",
        "[\"edge-site-14\"]",
    );
    let (code, out, err) = agentriage(&["test", s(dir.path())]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("test R4 credential expiry::R4 credential expired 1s before T ... FAILED"),
        "{out}"
    );
    // The failure block: where, expected vs actual, and the reasons that fired.
    let block = out
        .split("---- R4 credential expiry::R4 credential expired 1s before T")
        .nth(1)
        .unwrap();
    assert!(block.contains("tests/r04.yaml:11)"), "{block}");
    assert!(
        block.contains("expected outcome execute, got reject"),
        "{block}"
    );
    assert!(block.contains("actual:   reject"), "{block}");
    assert!(block.contains("R4.credential_expired"), "{block}");
    let block = out
        .split("---- R7 quarantined sites::R7 quarantined site rejects transactional")
        .nth(1)
        .unwrap();
    assert!(
        block.contains("expected outcome reject, got execute"),
        "{block}"
    );
    assert!(block.contains("missing R7.quarantined_site"), "{block}");
    // R4, and the three cases where R7 must fire (one of them in precedence).
    let passed = common::decision_cases().len() + REGO_TESTS - 4;
    assert!(out.contains(&format!("{passed} passed, 4 failed")), "{out}");
}

#[test]
fn broken_suite_files_fail_with_file_and_line_and_the_rest_still_runs() {
    let dir = pack_copy();
    let tests = dir.path().join("tests");
    std::fs::write(
        tests.join("zz-unparsable.yaml"),
        "name: broken\ncases:\n  - name: a\n    expect: {outcome: reject\n",
    )
    .unwrap();
    std::fs::write(
        tests.join("zz-outcome.yaml"),
        "name: bad outcome\nimport: [bases.yaml]\ncases:\n  - name: allow is not an outcome\n    base: read\n    expect: {outcome: allow}\n",
    )
    .unwrap();
    std::fs::write(
        tests.join("zz-invalid-request.yaml"),
        "name: invalid request\nimport: [bases.yaml]\ndefaults: {base: read}\ncases:\n  - name: a number for time\n    patch: {time: 12}\n    expect: {outcome: reject}\n  - name: still runs\n    expect: {outcome: execute}\n",
    )
    .unwrap();
    std::fs::write(
        tests.join("zz_test.rego"),
        "package broken_test\nimport rego.v1\ntest_false if {\n\tdata.agentriage.allow with input as {}\n}\n",
    )
    .unwrap();
    let (code, out, err) = agentriage(&["test", s(dir.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let tests = report["tests"].as_array().unwrap();
    let failed: Vec<&Value> = tests.iter().filter(|t| t["passed"] == false).collect();
    let message = |f: &Value| f["failure"]["message"].as_str().unwrap().to_owned();
    assert_eq!(failed.len(), 4, "{failed:#?}");
    let unparsable = failed
        .iter()
        .find(|t| t["file"].as_str().unwrap().ends_with("zz-unparsable.yaml"))
        .unwrap();
    assert_eq!(unparsable["kind"], "file");
    assert!(unparsable["line"].as_u64().is_some(), "{unparsable}");
    let outcome = failed
        .iter()
        .find(|t| t["file"].as_str().unwrap().ends_with("zz-outcome.yaml"))
        .unwrap();
    assert_eq!(outcome["line"], 6, "{outcome}");
    assert!(message(outcome).contains("allow"), "{outcome}");
    let invalid = failed
        .iter()
        .find(|t| t["name"] == "a number for time")
        .unwrap();
    assert_eq!(invalid["line"], 5);
    assert!(message(invalid).contains("`time`"), "{invalid}");
    let rego = failed.iter().find(|t| t["name"] == "test_false").unwrap();
    assert_eq!(rego["kind"], "rego");
    assert_eq!(rego["line"], 3);
    // The other suites still ran, and the good case of the same suite passed.
    let passed = common::decision_cases().len() + REGO_TESTS + 1;
    assert_eq!(
        report["passed"].as_u64().unwrap(),
        u64::try_from(passed).unwrap()
    );
    assert!(
        tests
            .iter()
            .any(|t| t["name"] == "still runs" && t["passed"] == true)
    );
}

#[test]
fn a_recursive_rego_test_module_fails_instead_of_crashing() {
    // Run on the interpreter, this test would recurse until the stack
    // overflowed: it is refused before any Rego test runs.
    let dir = pack_copy();
    std::fs::write(
        dir.path().join("tests/zz_test.rego"),
        "package rec_test\nimport rego.v1\n\nloop(x) := loop(x)\ntest_loop if loop(1)\n",
    )
    .unwrap();
    let (code, out, err) = agentriage(&["test", s(dir.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let failed: Vec<&Value> = report["tests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert!(
        failed[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("zz_test.rego")
    );
    assert_eq!(failed[0]["line"], 4);
    let message = failed[0]["failure"]["message"].as_str().unwrap();
    assert!(
        message.contains("`rec_test.loop` calls itself"),
        "{message}"
    );
    // The YAML suites still ran and passed.
    let cases = common::decision_cases().len();
    assert_eq!(
        report["passed"].as_u64().unwrap(),
        u64::try_from(cases).unwrap()
    );
}

#[test]
fn a_bundle_that_does_not_load_has_its_own_exit_code() {
    let dir = pack_copy();
    edit(
        &dir.path().join("rego/identity.rego"),
        "allow if",
        "allow iff",
    );
    let (code, out, err) = agentriage(&["test", s(dir.path())]);
    assert_eq!(code, Some(3), "{out}\n{err}");
    assert!(err.contains("identity.rego"), "{err}");
    let (code, _, err) = agentriage(&["test", s(&pack()), "--run", "("]);
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn junit_is_valid_xml_naming_every_case_and_run_filters() {
    let dir = pack_copy();
    // A name full of markup, and a failing case, must still be valid XML.
    std::fs::write(
        dir.path().join("tests/zz-markup.yaml"),
        "name: \"<&'\\\"> suite\"\nimport: [bases.yaml]\ncases:\n  - name: \"R1 <script>&amp; \\\"quoted\\\" fails\"\n    base: read\n    expect: {outcome: reject}\n",
    )
    .unwrap();
    let (code, out, err) = agentriage(&["test", s(dir.path()), "--format", "junit"]);
    assert_eq!(code, Some(1), "{err}");
    let doc = roxmltree::Document::parse(&out).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("failures"), Some("1"));
    let cases: Vec<roxmltree::Node> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), common::decision_cases().len() + REGO_TESTS + 1);
    let names: Vec<&str> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    for case in common::decision_cases() {
        assert!(names.contains(&case.name.as_str()), "{}", case.name);
    }
    let broken = cases
        .iter()
        .find(|c| c.attribute("name") == Some("R1 <script>&amp; \"quoted\" fails"))
        .unwrap();
    assert_eq!(broken.attribute("classname"), Some("<&'\"> suite"));
    let failure = broken
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert!(
        failure
            .attribute("message")
            .unwrap()
            .contains("expected outcome reject")
    );
    assert!(failure.text().unwrap().contains("actual: execute"));

    // --run keeps only the matching tests.
    let (code, out, _) = agentriage(&["test", s(&pack()), "--run", "^R13 ", "--format", "json"]);
    assert_eq!(code, Some(0));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["passed"], 6);
    let others = common::decision_cases().len() + REGO_TESTS - 6;
    assert_eq!(report["filtered_out"], others);
}

/// The `coverage` suite of a JUnit report: its properties by name, and its
/// `threshold` case, if any.
fn junit_coverage(out: &str) -> (Vec<(String, String)>, Option<bool>, String) {
    let doc = roxmltree::Document::parse(out).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite") && n.attribute("name") == Some("coverage"))
        .expect("a coverage suite");
    let properties = suite
        .descendants()
        .filter(|n| n.has_tag_name("property"))
        .map(|n| {
            (
                n.attribute("name").unwrap().to_owned(),
                n.attribute("value").unwrap().to_owned(),
            )
        })
        .collect();
    let threshold = suite
        .children()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("threshold"))
        .map(|c| c.children().any(|n| n.has_tag_name("failure")));
    let text = suite
        .children()
        .find(|n| n.has_tag_name("system-out"))
        .and_then(|n| n.text())
        .unwrap_or_default()
        .to_owned();
    (properties, threshold, text)
}

#[test]
fn junit_keeps_the_coverage_figures_and_fails_below_the_threshold() {
    let prop = |p: &[(String, String)], name: &str| {
        p.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no property {name} in {p:?}"))
    };
    let (code, out, err) = agentriage(&["test", s(&pack()), "--format", "junit", "--coverage"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let (properties, threshold, text) = junit_coverage(&out);
    assert_eq!(prop(&properties, "coverage.percent"), "100.0");
    assert_eq!(
        prop(&properties, "coverage.covered"),
        prop(&properties, "coverage.total")
    );
    assert_ne!(prop(&properties, "coverage.total"), "0");
    assert_eq!(threshold, None);
    assert!(text.starts_with("coverage: 100.0% ("), "{text}");

    // Only the R13 cases: coverage falls below 99%, the threshold case
    // fails, and the root counts it.
    let (code, out, err) = agentriage(&[
        "test",
        s(&pack()),
        "--format",
        "junit",
        "--run",
        "^R13 ",
        "--threshold",
        "99",
    ]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let (properties, threshold, text) = junit_coverage(&out);
    let percent: f64 = prop(&properties, "coverage.percent").parse().unwrap();
    assert!(percent < 99.0, "{percent}");
    assert_eq!(prop(&properties, "coverage.threshold"), "99");
    assert_eq!(threshold, Some(true));
    assert!(text.contains("not covered:"), "{text}");
    let doc = roxmltree::Document::parse(&out).unwrap();
    assert_eq!(doc.root_element().attribute("tests"), Some("7"));
    assert_eq!(doc.root_element().attribute("failures"), Some("1"));

    // Without --coverage there is no coverage suite.
    let (_, out, _) = agentriage(&["test", s(&pack()), "--format", "junit"]);
    assert!(!out.contains(r#"name="coverage""#), "{out}");
}

#[test]
fn check_passes_the_pack_and_reports_every_problem_with_file_and_line() {
    let (code, out, err) = agentriage(&["check", "--bundle", s(&pack())]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("ok, no problems"), "{out}");

    let dir = pack_copy();
    // Two problems in two files: an action missing from the risk table in
    // Cedar and in Rego.
    edit(
        &dir.path().join("cedar/pack.cedar"),
        "Action::\"device.firmware.update\"",
        "Action::\"device.firmware.flash\"",
    );
    edit(
        &dir.path().join("rego/thresholds.rego"),
        "\tis_number(v)\n",
        "\tis_number(v)\n\tinput.action.name != \"shipment.teleport\"\n",
    );
    let (code, out, err) = agentriage(&["check", "--bundle", s(dir.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let problems = report["problems"].as_array().unwrap();
    // The Cedar one twice: the schema does not know the action either.
    assert_eq!(problems.len(), 3, "{problems:#?}");
    let validation = problems.iter().find(|p| p["kind"] == "validation").unwrap();
    assert_eq!(validation["line"], 55);
    let cedar = problems
        .iter()
        .find(|p| {
            p["file"].as_str().unwrap().ends_with("pack.cedar") && p["kind"] == "unknown_action"
        })
        .unwrap();
    assert_eq!(cedar["kind"], "unknown_action");
    assert_eq!(cedar["line"], 55);
    assert!(
        cedar["message"]
            .as_str()
            .unwrap()
            .contains("device.firmware.flash")
    );
    let rego = problems
        .iter()
        .find(|p| p["file"].as_str().unwrap().ends_with("thresholds.rego"))
        .unwrap();
    assert_eq!(rego["line"], 14);
    assert!(
        rego["message"]
            .as_str()
            .unwrap()
            .contains("shipment.teleport")
    );

    // A module that does not parse and a Cedar file that does not parse:
    // both reported, not only the first.
    edit(&dir.path().join("rego/runtime.rego"), "risk :=", "risk :=:");
    edit(
        &dir.path().join("cedar/pack.cedar"),
        "forbid (principal, action, resource)\nwhen",
        "forbid (principal, action, resource\nwhen",
    );
    let (code, out, _) = agentriage(&["check", "--bundle", s(dir.path())]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("runtime.rego:"), "{out}");
    assert!(out.contains("pack.cedar:"), "{out}");
    // The Rego problem names its place once (not again as `--> FILE:L:C`),
    // with the column and the excerpt.
    let problem = out.lines().find(|l| l.contains("runtime.rego:")).unwrap();
    assert_eq!(out.matches("runtime.rego").count(), 1, "{out}");
    assert!(!out.contains("-->"), "{out}");
    assert!(problem.contains("(column "), "{problem}");

    // The same for `test` and `eval`, which load the bundle.
    let (code, _, err) = agentriage(&["test", s(dir.path())]);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(err.matches("runtime.rego").count(), 1, "{err}");
    assert!(!err.contains("-->"), "{err}");
}

#[test]
fn check_names_a_misspelled_decision_rule_and_rules_nothing_uses() {
    let dir = pack_copy();
    // A misspelled `escalate` and a helper no decision rule reaches.
    let path = dir.path().join("rego/runtime.rego");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(
        "\nescalte contains \"typo\" if input.context.incident_mode\n\nhelper_nobody_uses if input.context.site == \"x\"\n",
    );
    std::fs::write(&path, &text).unwrap();
    let lines = text.lines().count();
    let (code, out, err) = agentriage(&["check", "--bundle", s(dir.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let unused: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "unused_rule")
        .collect();
    assert_eq!(unused.len(), 2, "{unused:#?}");
    let typo = unused[0];
    assert!(typo["file"].as_str().unwrap().ends_with("runtime.rego"));
    assert_eq!(typo["line"], lines - 2);
    let message = typo["message"].as_str().unwrap();
    assert!(message.contains("`escalte`"), "{message}");
    assert!(message.contains("did you mean `escalate`?"), "{message}");
    let helper = unused[1];
    assert_eq!(helper["line"], lines);
    assert!(
        helper["message"]
            .as_str()
            .unwrap()
            .contains("use it from a decision rule or remove it")
    );
    // The bundle itself still loads: the typo is not a load error.
    assert!(agentriage::Bundle::load(dir.path()).is_ok());
}

#[test]
fn check_names_unsupported_builtins_with_file_and_line() {
    let dir = pack_copy();
    edit(
        &dir.path().join("rego/thresholds.rego"),
        "\tis_number(v)\n",
        "\tis_number(v)\n\thttp.send({\"method\": \"get\", \"url\": \"http://127.0.0.1:1\"})\n\tcrypto.md5(\"x\") != \"\"\n",
    );
    let (code, out, err) = agentriage(&["check", "--bundle", s(dir.path()), "--format", "json"]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let problems = report["problems"].as_array().unwrap();
    let at = |needle: &str| {
        problems
            .iter()
            .find(|p| p["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in {problems:#?}"))
    };
    let network = at("`http.send`");
    assert!(
        network["file"]
            .as_str()
            .unwrap()
            .ends_with("rego/thresholds.rego")
    );
    assert_eq!(network["line"], 14);
    assert!(
        network["message"]
            .as_str()
            .unwrap()
            .contains("does not call the network")
    );
    let md5 = at("`crypto.md5`");
    assert_eq!(md5["line"], 15);
    assert_eq!(md5["kind"], "rego");
}

#[test]
fn check_evaluators_names_every_request_the_vm_decides_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let write = |rel: &str, text: &str| {
        let path = dir.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "bundle.toml",
        "name = \"t\"\nrevision = \"1\"\n[risk_classes]\ntransactional = [\"doc.write\"]\n[rego]\nmodules = [\"p.rego\"]\n",
    );
    // Class a of docs/fidelity.md: the VM binds a missing value and goes on.
    write(
        "p.rego",
        "package agentriage\nimport rego.v1\nallow if true\nok if { v := input.resource.attributes.amount; not is_string(v) }\nreject contains \"not_ok\" if not ok\n",
    );
    write(
        "tests/t.yaml",
        "name: t\ncases:\n  - name: amount given\n    request: {principal: {id: a}, action: {name: doc.write}, resource: {type: doc, attributes: {amount: 5}}, time: \"2026-11-21T14:05:00Z\"}\n    expect: {outcome: execute}\n",
    );
    let (code, out, err) = agentriage(&[
        "check",
        "--bundle",
        s(dir.path()),
        "--evaluators",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(1), "{out}\n{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert!(report["evaluator_requests"].as_u64().unwrap() > 1);
    let divergence = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["kind"] == "evaluator_divergence"
                && p["message"]
                    .as_str()
                    .unwrap()
                    .contains("drop resource.attributes.amount")
        })
        .unwrap_or_else(|| panic!("{report:#}"));
    let message = divergence["message"].as_str().unwrap();
    assert!(
        message.contains("the interpreter decides `reject [agentriage.reject]`"),
        "{message}"
    );
    assert!(message.contains("the VM `execute"), "{message}");
    // Without the flag the bundle has no problem.
    let (code, _, _) = agentriage(&["check", "--bundle", s(dir.path())]);
    assert_eq!(code, Some(0));
}
