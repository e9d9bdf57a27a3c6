//! `agentriage eval` end to end: the binary, its output and exit codes.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Output;

mod support;
use support::{agentriage, repo};

use serde_json::Value;

#[path = "../../core/tests/common/mod.rs"]
mod common;

fn pack() -> String {
    repo()
        .join("policies/a2a-supply-chain")
        .display()
        .to_string()
}

fn lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn sample_requests_with_a_broken_one() -> String {
    let mut text = std::fs::read_to_string(repo().join("testdata/requests.jsonl")).unwrap();
    text.push_str(r#"{"principal":{"id":"spiffe://acme.example/ns/analytics/sa/reporter"},"action":{"name":"shipment.read"},"anomaly":{"score":"high"}}"#);
    text.push('\n');
    text
}

#[test]
fn sample_requests_are_decided_line_by_line() {
    let input = repo().join("testdata/requests.jsonl").display().to_string();
    let out = agentriage(&["eval", "--bundle", &pack(), "--input", &input], "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out).len(), 7);
    let out = agentriage(
        &["eval", "--bundle", &pack()],
        &sample_requests_with_a_broken_one(),
    );
    let decisions = lines(&out);
    let outcomes: Vec<&str> = decisions
        .iter()
        .map(|d| d["outcome"].as_str().unwrap_or("error"))
        .collect();
    assert_eq!(
        outcomes,
        [
            "execute", "escalate", "reject", "reject", "execute", "reject", "reject", "error"
        ]
    );
    // The malformed last line names itself and the field; the exit code says so.
    assert_eq!(decisions[7]["line"], 8);
    assert_eq!(decisions[7]["error"]["path"], "anomaly.score");
    assert_eq!(decisions[7]["error"]["kind"], "type");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn every_expected_decision_holds_through_the_cli() {
    // One `eval` process keeps one state across its input lines (used
    // approvals, quota counters). The cases that depend on state — `prior`
    // decisions, an approval, an action a quota counts — each get a process
    // of their own, their request given `prior + 1` times; the others share
    // one stream.
    let cases = common::decision_cases();
    let stateful = |c: &common::Case| {
        c.prior > 0
            || c.request.get("approval").is_some()
            || c.request["action"]["name"] == "purchase_order.create"
    };
    let check = |d: &Value, case: &common::Case| {
        assert_eq!(d["outcome"], case.outcome.as_str(), "{}", case.name);
        if let Some(want) = &case.reasons {
            let mut got: Vec<&str> = d["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["policy"].as_str().unwrap())
                .collect();
            got.sort_unstable();
            got.dedup();
            assert_eq!(got, *want, "{}", case.name);
        }
    };
    let run = |input: &str| {
        let out = agentriage(&["eval", "--bundle", &pack()], input);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines(&out)
    };
    let shared: Vec<&common::Case> = cases.iter().filter(|c| !stateful(c)).collect();
    let mut input = String::new();
    for case in &shared {
        input.push_str(&serde_json::to_string(&case.request).unwrap());
        input.push('\n');
    }
    let decisions = run(&input);
    assert_eq!(decisions.len(), shared.len());
    for (d, case) in decisions.iter().zip(&shared) {
        check(d, case);
    }
    let own: Vec<&common::Case> = cases.iter().filter(|c| stateful(c)).collect();
    assert!(own.len() >= 20, "{} cases with state", own.len());
    for case in own {
        let line = serde_json::to_string(&case.request).unwrap() + "\n";
        let decisions = run(&line.repeat(case.prior as usize + 1));
        check(decisions.last().unwrap(), case);
    }
}

#[test]
fn one_request_may_span_lines() {
    let request = r#"{
  "time": "2026-11-21T14:05:00Z",
  "principal": {"id": "spiffe://acme.example/ns/analytics/sa/reporter"},
  "action": {"name": "inventory.read"}
}
{
  "principal": {"id": "spiffe://evil.example/x"},
  "action": {"name": "inventory.read"}
}
"#;
    let out = agentriage(&["eval", "--bundle", &pack(), "--input", "-"], request);
    let decisions = lines(&out);
    assert_eq!(decisions.len(), 2);
    assert_eq!(decisions[0]["outcome"], "execute");
    assert_eq!(decisions[1]["outcome"], "reject");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_broken_line_does_not_stop_the_stream() {
    let good = r#"{"principal":{"id":"spiffe://acme.example/ns/analytics/sa/reporter"},"action":{"name":"inventory.read"},"time":"2026-11-21T14:05:00Z"}"#;
    let input = format!(
        "{good}\n{{\"principal\": {{\"id\": \n\n{good}\nnot json at all\n{{\"action\":{{\"name\":\"x\"}}}}\n{good}\n"
    );
    let out = agentriage(&["eval", "--bundle", &pack()], &input);
    let decisions = lines(&out);
    assert_eq!(decisions.len(), 6);
    assert_eq!(decisions[0]["outcome"], "execute");
    assert_eq!(decisions[1]["line"], 2);
    assert_eq!(decisions[1]["error"]["kind"], "syntax");
    assert_eq!(decisions[2]["outcome"], "execute");
    assert_eq!(decisions[3]["line"], 5);
    assert_eq!(decisions[4]["error"]["path"], "principal");
    assert_eq!(decisions[5]["outcome"], "execute");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn no_input_is_no_output() {
    let out = agentriage(&["eval", "--bundle", &pack()], "\n\n");
    assert!(out.stdout.is_empty());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn pretty_output_is_for_people() {
    let out = agentriage(
        &["eval", "--bundle", &pack(), "--pretty"],
        &sample_requests_with_a_broken_one(),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ESCALATE"), "{text}");
    assert!(text.contains("R9.value_threshold"), "{text}");
    assert!(
        text.contains("line 8: error: invalid request at `anomaly.score`"),
        "{text}"
    );
}

#[test]
fn a_bundle_that_fails_to_load_exits_3_naming_the_file() {
    let dir = std::env::temp_dir().join(format!("agentriage-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("bundle.toml"),
        "name = \"x\"\nrevision = \"1\"\n[rego]\nmodules = [\"missing.rego\"]\n",
    )
    .unwrap();
    let out = agentriage(&["eval", "--bundle", dir.to_str().unwrap()], "");
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("bundle.toml:4"), "{err}");
    assert!(err.contains("missing.rego"), "{err}");
}

#[test]
fn unreadable_input_exits_4() {
    let out = agentriage(
        &[
            "eval",
            "--bundle",
            &pack(),
            "--input",
            "/nonexistent/requests.jsonl",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    let out = agentriage(&["eval"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = agentriage(&["eval", "--help"], "");
    let help = String::from_utf8(out.stdout).unwrap();
    for code in [
        "0  every request",
        "1  at least one",
        "3  the bundle",
        "4  the input",
    ] {
        assert!(help.contains(code), "{help}");
    }
    // The top-level help does not show `eval`'s codes as if they were every
    // command's: it points to each command's own.
    let out = agentriage(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(!help.contains("1  at least one request"), "{help}");
    assert!(!help.contains("3  the bundle"), "{help}");
    assert!(help.contains("agentriage COMMAND --help"), "{help}");
}
