//! `agentriage approval digest | sign` and `check`'s waiver warnings: the
//! loop from an escalated decision to an approved one, from the shell.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

mod support;

use serde_json::{Value, json};
use support::{agentriage, repo, run};

fn pack() -> String {
    repo()
        .join("policies/a2a-supply-chain")
        .display()
        .to_string()
}

fn request() -> Value {
    json!({
        "time": "2026-11-21T14:05:00Z",
        "principal": {
            "id": "spiffe://acme.example/ns/logistics/sa/router",
            "credential": {"expires_at": "2026-11-21T14:10:00Z"},
            "attestation": {"status": "verified", "kind": "tpm", "verified_at": "2026-11-21T14:00:00Z"}
        },
        "action": {"name": "shipment.reroute"},
        "resource": {"type": "shipment", "id": "SH-1001", "attributes": {"value_usd": 250000, "state": "in_transit"}},
        "context": {"workflow_id": "wf-1", "site": "dc-1"},
        "anomaly": {"score": 0.3}
    })
}

fn eval(request: &Value) -> Value {
    let out = agentriage(&["eval", "--bundle", &pack()], &request.to_string());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn an_escalated_decision_is_approved_from_the_shell() {
    let escalated = eval(&request());
    assert_eq!(escalated["outcome"], "escalate", "{escalated}");
    let ask = &escalated["approval_request"];

    // The digest command agrees with the decision.
    let out = agentriage(
        &["approval", "digest", "--bundle", &pack()],
        &request().to_string(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        ask["action_digest"]
    );

    let dir = tempfile::tempdir().unwrap();
    let decision_file = dir.path().join("decision.json");
    std::fs::write(&decision_file, escalated.to_string()).unwrap();
    let key = repo().join("testdata/approvals/keys/lee-logistics.pem");
    let (code, token, err) = run(&[
        "approval",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--alg",
        "ES256",
        "--kid",
        "lee-2026-11",
        "--iss",
        "mailto:lee.brandt@acme.example",
        "--decision",
        decision_file.to_str().unwrap(),
        "--iat",
        "2026-11-21T14:06:00Z",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let mut approved = request();
    approved["approval"] = token.trim().into();
    let d = eval(&approved);
    assert_eq!(d["outcome"], "execute", "{d}");
    assert_eq!(d["approval"]["status"], "used");
    assert_eq!(d["approval"]["settled"], json!(["R9.value_threshold"]));

    // Signing after the request for approval expired is refused.
    let (code, _, err) = run(&[
        "approval",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--alg",
        "ES256",
        "--kid",
        "lee-2026-11",
        "--iss",
        "mailto:lee.brandt@acme.example",
        "--decision",
        decision_file.to_str().unwrap(),
        "--iat",
        "2026-11-21T15:05:01Z",
    ]);
    assert_eq!(code, Some(3));
    assert!(err.contains("request for approval has expired"), "{err}");
}

#[test]
fn sign_refuses_a_decision_that_cannot_be_approved() {
    let mut small = request();
    small["resource"]["attributes"]["value_usd"] = 10.into();
    let executed = eval(&small);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("d.json");
    std::fs::write(&file, executed.to_string()).unwrap();
    let key = repo().join("testdata/approvals/keys/lee-logistics.pem");
    let (code, _, err) = run(&[
        "approval",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--alg",
        "ES256",
        "--kid",
        "lee-2026-11",
        "--iss",
        "mailto:lee.brandt@acme.example",
        "--decision",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(3));
    assert!(err.contains("no `approval_request`"), "{err}");
}

#[test]
fn check_warns_about_waivers_expiring_soon_and_lists_expired_ones() {
    let (code, out, _) = run(&[
        "check",
        "--bundle",
        &pack(),
        "--now",
        "2027-01-20T00:00:00Z",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning:") && out.contains("W-2026-031") && out.contains("within 14 days"),
        "{out}"
    );
    let (code, out, _) = run(&[
        "check",
        "--bundle",
        &pack(),
        "--now",
        "2027-02-01T00:00:00Z",
        "--format",
        "json",
    ]);
    assert_eq!(code, Some(0));
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["warnings"][0]["kind"], "waiver_expired");
    assert!(doc["warnings"][0]["line"].as_u64().is_some());
    // Far from the expiry: nothing to say; a longer horizon says it.
    let (_, out, _) = run(&[
        "check",
        "--bundle",
        &pack(),
        "--now",
        "2026-12-02T00:00:00Z",
    ]);
    assert!(!out.contains("warning:"), "{out}");
    let (_, out, _) = run(&[
        "check",
        "--bundle",
        &pack(),
        "--now",
        "2026-12-02T00:00:00Z",
        "--waiver-horizon-days",
        "90",
    ]);
    assert!(out.contains("waiver `W-2026-031` expires"), "{out}");
}
