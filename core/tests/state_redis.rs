//! Engines sharing a real Redis (feature `redis`): a signed intent used by
//! one engine is refused by another; Redis stopped mid-run makes decisions
//! fail closed and counts in the metrics; restarted, decisions resume.
#![cfg(feature = "redis")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;
mod redis_server;

use std::sync::Arc;
use std::time::Duration;

use agentriage::intent::{Algorithm, IntentClaims, SigningKey};
use agentriage::state::{RedisStore, StateStore};
use agentriage::{Decision, Engine, Outcome, Timestamp};
use common::{reference_pack, repo};
use redis_server::RedisServer;
use serde_json::{Value, json};

const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const PAYMENTS: &str = "spiffe://acme.example/ns/finance/sa/payments";
const TIME: &str = "2026-11-21T14:05:00Z";

fn payments() -> SigningKey {
    let pem = std::fs::read_to_string(repo().join("testdata/intents/keys/payments.pem")).unwrap();
    SigningKey::from_pem(Algorithm::EdDsa, "payments-2026-11", PAYMENTS, &pem).unwrap()
}

/// A payment release (R14: needs a signed intent) carrying an intent with
/// `jti`.
fn request(jti: &str) -> Value {
    let now = Timestamp::parse(TIME).unwrap().unix_nanos() / 1_000_000_000;
    let mut claims = IntentClaims::new(
        PAYMENTS,
        AUDIENCE,
        "payment.release",
        "invoice:INV-88",
        "settle invoice INV-88 for PO-5",
        i64::try_from(now).unwrap() - 60,
        Duration::from_secs(600),
    );
    claims.jti = jti.to_owned();
    let token = payments().sign(&claims).unwrap();
    json!({
        "time": TIME,
        "principal": {
            "id": PAYMENTS,
            "credential": {"expires_at": "2026-11-21T14:10:00Z"},
            "attestation": {"status": "verified", "kind": "sev-snp", "verified_at": "2026-11-21T14:00:00Z"}
        },
        "action": {"name": "payment.release"},
        "resource": {"type": "invoice", "id": "INV-88", "attributes": {"amount_usd": 5000}},
        "context": {"workflow_id": "wf-9", "site": "hq"},
        "anomaly": {"score": 0.12},
        "intent": token
    })
}

fn engine(url: &str) -> Engine {
    let store: Arc<dyn StateStore> = Arc::new(RedisStore::from_url(url).unwrap());
    Engine::from_dir(reference_pack())
        .unwrap()
        .with_state(store)
}

fn ids(d: &Decision) -> Vec<&str> {
    d.policy_ids().collect()
}

fn assert_refused(d: &Decision, check: &str) {
    assert_eq!(d.outcome, Outcome::Reject, "{:?}", d.reasons);
    assert_eq!(ids(d), ["R14.intent_invalid"]);
    assert!(
        d.reasons[0].message.contains(&format!("`{check}`")),
        "{}",
        d.reasons[0].message
    );
}

#[test]
fn two_engines_sharing_redis_refuse_a_replayed_intent() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url("?namespace=engines:");
    let (a, b) = (engine(&url), engine(&url));
    assert_eq!(a.state_store().kind(), "redis");
    let first = request("shared-1");
    let d = a.decide_value(&first).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    assert_refused(&b.decide_value(&first).unwrap(), "replay");
    assert_refused(&a.decide_value(&first).unwrap(), "replay");
    // Another intent goes through on either engine, once.
    let second = request("shared-2");
    assert_eq!(b.decide_value(&second).unwrap().outcome, Outcome::Execute);
    assert_refused(&a.decide_value(&second).unwrap(), "replay");
    // An engine in another namespace shares nothing with them.
    let other = engine(&server.url("?namespace=elsewhere:"));
    assert_eq!(
        other.decide_value(&first).unwrap().outcome,
        Outcome::Execute
    );
    // Each of many threads on two engines: exactly one of them executes.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let contested = Arc::new(request("contested-1"));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let e = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let r = Arc::clone(&contested);
            std::thread::spawn(move || e.decide_value(&r).unwrap().outcome)
        })
        .collect();
    let outcomes: Vec<Outcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Execute).count(),
        1,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Reject).count(),
        7,
        "{outcomes:?}"
    );
}

#[test]
fn redis_stopped_mid_run_fails_closed_and_restarted_resumes() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let e = engine(&server.url("?namespace=outage:&timeout_ms=100"));
    assert_eq!(
        e.decide_value(&request("outage-1")).unwrap().outcome,
        Outcome::Execute
    );
    assert_eq!(e.metrics().state_errors("redis", "insert_once"), 0);

    server.stop();
    for jti in ["outage-2", "outage-3"] {
        let d = e.decide_value(&request(jti)).unwrap();
        assert_eq!(d.outcome, Outcome::Reject, "{:?}", d.reasons);
        // The intent check names the store's failure (the pack's quotas,
        // needing the store too, fail closed as well).
        let intent = d
            .reasons
            .iter()
            .find(|r| r.policy == "R14.intent_invalid")
            .expect("the intent check's reason");
        assert!(
            intent.message.contains("`replay_store`"),
            "{}",
            intent.message
        );
        assert!(intent.message.contains("redis"), "{}", intent.message);
    }
    assert_eq!(e.metrics().state_errors("redis", "insert_once"), 2);
    let text = e.metrics_text();
    assert!(
        text.contains("agentriage_state_errors_total{store=\"redis\",op=\"insert_once\"} 2"),
        "{text}"
    );

    server.restart();
    // The intents refused while Redis was down were never recorded: they
    // go through now, once.
    let d = e.decide_value(&request("outage-2")).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    assert_refused(&e.decide_value(&request("outage-2")).unwrap(), "replay");
    assert_eq!(e.metrics().state_errors("redis", "insert_once"), 2);
}

// ---- approvals and quotas across engines sharing Redis -------------------------

const LEE: &str = "mailto:lee.brandt@acme.example";

fn lee() -> SigningKey {
    let pem =
        std::fs::read_to_string(repo().join("testdata/approvals/keys/lee-logistics.pem")).unwrap();
    SigningKey::from_pem(Algorithm::Es256, "lee-2026-11", LEE, &pem).unwrap()
}

/// A reroute worth more than R9's limit: escalates for `R9.value_threshold`.
fn reroute(value: u64) -> Value {
    json!({
        "time": TIME,
        "principal": {
            "id": "spiffe://acme.example/ns/logistics/sa/router",
            "type": "agent", "trust_zone": "cloud",
            "credential": {"issuer": "spiffe://acme.example/spire", "expires_at": "2026-11-21T14:10:00Z"},
            "attestation": {"status": "verified", "kind": "tpm", "verified_at": "2026-11-21T14:00:00Z"}
        },
        "action": {"name": "shipment.reroute"},
        "resource": {"type": "shipment", "id": "SH-1001",
                     "attributes": {"value_usd": value, "state": "in_transit"}},
        "context": {"workflow_id": "wf-1", "incident_mode": false, "site": "dc-1"},
        "anomaly": {"score": 0.31}
    })
}

/// `request` with an approval by Lee (logistics-supervisor) of its digest.
fn approved(engine: &Engine, mut request: Value) -> Value {
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate, "{:?}", d.reasons);
    let ask = d.approval_request.expect("an approval request");
    let iat = i64::try_from(Timestamp::parse(TIME).unwrap().unix_nanos() / 1_000_000_000).unwrap();
    let claims = agentriage::approval::ApprovalClaims::new(
        LEE,
        AUDIENCE,
        &ask.action_digest,
        vec!["R9.value_threshold".to_owned()],
        iat,
        900,
    );
    request["approval"] = agentriage::approval::sign(&lee(), &claims).unwrap().into();
    request
}

fn purchase(amount: f64) -> Value {
    json!({
        "time": TIME,
        "principal": {
            "id": "spiffe://acme.example/ns/procurement/sa/buyer",
            "credential": {"expires_at": "2026-11-21T16:10:00Z"},
            "attestation": {"status": "verified", "verified_at": TIME}
        },
        "action": {"name": "purchase_order.create"},
        "resource": {"type": "purchase_order", "id": "PO-5", "attributes": {"amount_usd": amount}},
        "context": {"site": "dc-1"}
    })
}

#[test]
fn two_engines_sharing_redis_use_an_approval_once() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let url = server.url("?namespace=approvals:");
    let (a, b) = (engine(&url), engine(&url));
    let request = approved(&a, reroute(250_000));
    let d = a.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    let d = b.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{:?}", d.reasons);
    assert_eq!(ids(&d), ["approval.reused"]);
    // Raced by 8 threads on both engines, a fresh approval is used once.
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut contested = reroute(260_000);
    contested = approved(&a, contested);
    let contested = Arc::new(contested);
    let outcomes: Vec<Outcome> = (0..8)
        .map(|i| {
            let e = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let r = Arc::clone(&contested);
            std::thread::spawn(move || e.decide_value(&r).unwrap().outcome)
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Execute).count(),
        1,
        "{outcomes:?}"
    );
}

#[test]
fn one_quota_spans_engines_sharing_redis_and_fails_closed_without_it() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let url = server.url("?namespace=quotas:&timeout_ms=100");
    let (a, b) = (engine(&url), engine(&url));
    // Q1: 150 000 USD of purchase orders per agent per hour, across both.
    assert_eq!(
        a.decide_value(&purchase(50_000.0)).unwrap().outcome,
        Outcome::Execute
    );
    assert_eq!(
        b.decide_value(&purchase(50_000.0)).unwrap().outcome,
        Outcome::Execute
    );
    assert_eq!(
        a.decide_value(&purchase(50_000.0)).unwrap().outcome,
        Outcome::Execute
    );
    for e in [&a, &b] {
        let d = e.decide_value(&purchase(0.01)).unwrap();
        assert_eq!(d.outcome, Outcome::Escalate, "{:?}", d.reasons);
        assert_eq!(ids(&d), ["Q1.purchase_usd_per_agent_hour"]);
    }
    // An engine with its own store counts alone.
    let alone = Engine::from_dir(reference_pack()).unwrap();
    assert_eq!(
        alone.decide_value(&purchase(0.01)).unwrap().outcome,
        Outcome::Execute
    );

    // Redis down: the quota cannot be counted, the decision fails closed.
    server.stop();
    let d = b.decide_value(&purchase(0.01)).unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{:?}", d.reasons);
    assert!(ids(&d).contains(&"state.unavailable"), "{:?}", ids(&d));
    // Restarted empty: counting resumes (from zero: nothing persisted).
    server.restart();
    assert_eq!(
        a.decide_value(&purchase(50_000.0)).unwrap().outcome,
        Outcome::Execute
    );
}
