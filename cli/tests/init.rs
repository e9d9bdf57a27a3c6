//! `agentriage init DIR`: the new bundle passes `test` (every rule covered)
//! and `check`, and decides its sample request; init never writes over files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use serde_json::Value;

mod support;

use support::run as agentriage;

#[test]
fn a_new_bundle_passes_its_suite_with_full_coverage_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("payments-policies");
    let d = dir.to_str().unwrap();
    let (code, out, err) = agentriage(&["init", d]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("wrote bundle `payments-policies`"), "{out}");
    let manifest = std::fs::read_to_string(dir.join("bundle.toml")).unwrap();
    assert!(
        manifest.contains("name = \"payments-policies\""),
        "{manifest}"
    );

    let (code, out, err) = agentriage(&["test", d, "--coverage", "--threshold", "100"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.starts_with("running 8 tests\n"), "{out}");
    assert!(out.contains("test result: ok. 8 passed, 0 failed"), "{out}");
    assert!(out.contains("coverage: 100.0% "), "{out}");

    let (code, out, err) = agentriage(&["check", "--bundle", d, "--evaluators"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("ok, no problems"), "{out}");

    // The sample request: a payment over the agent's limit escalates.
    let request = dir.join("request.json");
    let (code, out, err) =
        agentriage(&["eval", "--bundle", d, "--input", request.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    let decision: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(decision["outcome"], "escalate", "{decision}");
    assert_eq!(decision["reasons"][0]["policy"], "over_limit", "{decision}");
    assert_eq!(decision["bundle"]["name"], "payments-policies");
}

#[test]
fn the_suite_catches_a_rule_that_stops_firing() {
    // The scaffold's suite is a real one: break a rule and it fails.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let d = dir.to_str().unwrap();
    assert_eq!(agentriage(&["init", d, "--name", "b"]).0, Some(0));
    let rego = dir.join("rego/policy.rego");
    let text = std::fs::read_to_string(&rego).unwrap();
    let broken = text.replace("amount > agent.limit_usd", "amount > agent.limit_usd * 10");
    assert_ne!(broken, text);
    std::fs::write(&rego, broken).unwrap();
    let (code, out, _) = agentriage(&["test", d]);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("test b::a payment over the limit escalates ... FAILED"),
        "{out}"
    );
}

#[test]
fn init_refuses_a_non_empty_directory_and_a_bad_name() {
    let tmp = tempfile::tempdir().unwrap();
    let keep = tmp.path().join("notes.txt");
    std::fs::write(&keep, "mine").unwrap();
    let (code, _, err) = agentriage(&["init", tmp.path().to_str().unwrap(), "--name", "x"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert_eq!(std::fs::read_to_string(&keep).unwrap(), "mine");
    assert!(!tmp.path().join("bundle.toml").exists());

    let dir = tmp.path().join("new");
    let (code, _, err) = agentriage(&["init", dir.to_str().unwrap(), "--name", "a \"b\""]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be a bundle name"), "{err}");
    assert!(!dir.exists());

    // An empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_eq!(agentriage(&["init", empty.to_str().unwrap()]).0, Some(0));
    assert!(empty.join("tests/policy.yaml").is_file());
}
