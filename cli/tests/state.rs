//! `agentriage eval --state`: two processes sharing one real Redis refuse
//! a replayed intent; bad state URLs are refused before anything is
//! decided.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod support;

#[path = "../../core/tests/redis_server/mod.rs"]
mod redis_server;

use serde_json::{Value, json};
use support::{agentriage, repo, run};

const AUD: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const ISS: &str = "spiffe://acme.example/ns/finance/sa/payments";

/// A payment release with a fresh signed intent (R14 needs one).
fn request(jti: &str) -> String {
    let key = repo().join("testdata/intents/keys/payments.pem");
    let (code, token, err) = run(&[
        "intent",
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--alg",
        "EdDSA",
        "--kid",
        "payments-2026-11",
        "--iss",
        ISS,
        "--aud",
        AUD,
        "--act",
        "payment.release",
        "--res",
        "invoice:INV-88",
        "--purpose",
        "settle invoice INV-88 for PO-5",
        "--iat",
        "2026-11-21T14:04:00Z",
        "--lifetime-s",
        "600",
        "--jti",
        jti,
    ]);
    assert_eq!(code, Some(0), "{err}");
    json!({
        "time": "2026-11-21T14:05:00Z",
        "principal": {
            "id": ISS,
            "credential": {"expires_at": "2026-11-21T14:10:00Z"},
            "attestation": {"status": "verified", "kind": "sev-snp", "verified_at": "2026-11-21T14:00:00Z"}
        },
        "action": {"name": "payment.release"},
        "resource": {"type": "invoice", "id": "INV-88", "attributes": {"amount_usd": 5000}},
        "context": {"workflow_id": "wf-9", "site": "hq"},
        "anomaly": {"score": 0.12},
        "intent": token.trim()
    })
    .to_string()
}

/// Decides `input` (JSON Lines) in a new process with `--state state`.
fn eval(state: &str, input: &str) -> Vec<Value> {
    let pack = repo().join("policies/a2a-supply-chain");
    let out = agentriage(
        &["eval", "--bundle", pack.to_str().unwrap(), "--state", state],
        input,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn outcome(d: &Value) -> &str {
    d["outcome"].as_str().unwrap()
}

fn reason(d: &Value) -> String {
    d["reasons"][0]["message"].as_str().unwrap_or("").to_owned()
}

#[test]
fn two_processes_sharing_redis_refuse_a_replayed_intent() {
    let Some(mut server) = redis_server::RedisServer::start() else {
        return;
    };
    let url = server.url("/0?namespace=cli-test:");
    let first = request("cli-1");
    let d = eval(&url, &first);
    assert_eq!(outcome(&d[0]), "execute", "{}", d[0]);
    // Another process, the same intent: refused as a replay.
    let d = eval(&url, &format!("{first}\n{}\n", request("cli-2")));
    assert_eq!(outcome(&d[0]), "reject", "{}", d[0]);
    assert!(reason(&d[0]).contains("`replay`"), "{}", d[0]);
    assert_eq!(outcome(&d[1]), "execute", "{}", d[1]);
    // Without the shared store, each process only knows its own intents.
    let d = eval("memory", &first);
    assert_eq!(outcome(&d[0]), "execute", "{}", d[0]);

    // Redis down: the process still starts, and the decision fails closed.
    server.stop();
    let d = eval(&format!("{url}&timeout_ms=100"), &request("cli-3"));
    assert_eq!(outcome(&d[0]), "reject", "{}", d[0]);
    assert!(reason(&d[0]).contains("`replay_store`"), "{}", d[0]);
    server.restart();
    let d = eval(&url, &request("cli-3"));
    assert_eq!(outcome(&d[0]), "execute", "{}", d[0]);
}

#[test]
fn bad_state_urls_are_refused_before_deciding() {
    let pack = repo().join("policies/a2a-supply-chain");
    for (url, want) in [
        ("memory:0", "`0`"),
        ("redis://h:1?color=red", "`color`"),
        ("rediss://u:pw@h:1", "TLS"),
        ("etcd://h:1", "no known store"),
    ] {
        let out = agentriage(
            &["eval", "--bundle", pack.to_str().unwrap(), "--state", url],
            "{}",
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {err}");
        assert!(
            err.contains("--state") && err.contains(want),
            "{url}: {err}"
        );
        assert!(!err.contains("pw@"), "{err}");
        assert!(out.stdout.is_empty());
    }
}
