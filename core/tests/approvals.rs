//! Human escalation that closes the loop: approvals bound to the action,
//! waivers, quotas, and the state store they share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use agentriage::approval::{ApprovalClaims, ApprovalStatus, action_digest};
use agentriage::intent::{Algorithm, SigningKey};
use agentriage::state::{Added, MemoryStore, StateError, StateStore};
use agentriage::{Decision, Engine, Outcome, Request, Timestamp};
use common::{reference_pack, repo};
use serde_json::{Value, json};

const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const DANA: &str = "mailto:dana.okafor@acme.example";
const LEE: &str = "mailto:lee.brandt@acme.example";
const SAM: &str = "mailto:sam.ito@acme.example";
const TIME: &str = "2026-11-21T14:05:00Z";

fn approver(name: &str) -> SigningKey {
    let (file, alg, kid, iss) = match name {
        "dana" => ("dana-finance", Algorithm::EdDsa, "dana-2026-11", DANA),
        "lee" => ("lee-logistics", Algorithm::Es256, "lee-2026-11", LEE),
        "sam" => ("sam-analyst", Algorithm::EdDsa, "sam-2026-11", SAM),
        other => panic!("no approver {other}"),
    };
    let pem = std::fs::read_to_string(repo().join(format!("testdata/approvals/keys/{file}.pem")))
        .unwrap();
    SigningKey::from_pem(alg, kid, iss, &pem).unwrap()
}

fn unix(t: &str) -> i64 {
    i64::try_from(Timestamp::parse(t).unwrap().unix_nanos() / 1_000_000_000).unwrap()
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

fn digest_of(engine: &Engine, request: &Value) -> String {
    let bundle = engine.bundle();
    let config = bundle.controls().approvals().unwrap();
    action_digest(
        &Request::from_value(request).unwrap(),
        config.context_fields(),
    )
}

fn approval(
    key: &SigningKey,
    digest: &str,
    reasons: &[&str],
    iat: &str,
    lifetime_s: u64,
) -> String {
    let claims = ApprovalClaims::new(
        key.issuer(),
        AUDIENCE,
        digest,
        reasons.iter().map(|r| (*r).to_owned()).collect(),
        unix(iat),
        lifetime_s,
    );
    agentriage::approval::sign(key, &claims).unwrap()
}

fn with_approval(mut request: Value, token: &str) -> Value {
    request["approval"] = token.into();
    request
}

fn ids(d: &Decision) -> Vec<&str> {
    d.policy_ids().collect()
}

fn pack() -> Engine {
    Engine::from_dir(reference_pack()).unwrap()
}

#[test]
fn an_escalation_carries_what_an_approver_needs() {
    let engine = pack();
    let request = reroute(250_000);
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(ids(&d), ["R9.value_threshold"]);
    let ask = d.approval_request.as_ref().expect("an approval request");
    assert_eq!(ask.action_digest, digest_of(&engine, &request));
    assert_eq!(ask.audience, AUDIENCE);
    assert_eq!(ask.expires_at, "2026-11-21T15:05:00Z");
    assert_eq!(ask.reasons.len(), 1);
    assert_eq!(ask.reasons[0].policy, "R9.value_threshold");
    assert_eq!(
        ask.reasons[0].roles,
        ["finance-approver", "logistics-supervisor"]
    );
    // The contract's JSON shows it.
    let json: Value = serde_json::from_str(&d.to_json()).unwrap();
    assert_eq!(
        json["approval_request"]["action_digest"],
        ask.action_digest.as_str()
    );
    // A decision that executes or rejects carries none.
    assert!(
        engine
            .decide_value(&reroute(10))
            .unwrap()
            .approval_request
            .is_none()
    );
}

#[test]
fn an_approval_settles_its_escalation_exactly_once() {
    let engine = pack();
    let request = reroute(250_000);
    let token = approval(
        &approver("lee"),
        &digest_of(&engine, &request),
        &["R9.value_threshold"],
        "2026-11-21T14:06:00Z",
        900,
    );
    let request = with_approval(request, &token);
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    let used = d.approval.as_ref().unwrap();
    assert_eq!(used.status, ApprovalStatus::Used);
    assert_eq!(used.approver.as_deref(), Some(LEE));
    assert_eq!(used.settled, ["R9.value_threshold"]);
    assert!(ids(&d).contains(&"approval"), "{:?}", ids(&d));

    // The same approval again: refused, the decision rejects.
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(ids(&d), ["approval.reused"]);
    assert_eq!(d.approval.as_ref().unwrap().status, ApprovalStatus::Refused);
    assert_eq!(
        d.approval.as_ref().unwrap().refused.as_deref(),
        Some("reused")
    );
}

#[test]
fn an_approval_for_anything_else_rejects_naming_the_check() {
    let engine = pack();
    let request = reroute(250_000);
    let digest = digest_of(&engine, &request);
    let lee = approver("lee");
    let check = |token: &str, req: &Value, want: &str| {
        let d = engine
            .decide_value(&with_approval(req.clone(), token))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Reject, "{want}: {:?}", d.reasons);
        assert!(ids(&d).contains(&want), "{want}: {:?}", ids(&d));
        assert!(
            !d.reasons
                .iter()
                .any(|r| r.effect == agentriage::Effect::Permit),
            "{want}"
        );
    };
    let ok = approval(
        &lee,
        &digest,
        &["R9.value_threshold"],
        "2026-11-21T14:06:00Z",
        900,
    );
    // Another amount, another resource, another workflow: another action.
    check(&ok, &reroute(250_001), "approval.action_mismatch");
    let mut other = request.clone();
    other["resource"]["id"] = "SH-1002".into();
    check(&ok, &other, "approval.action_mismatch");
    let mut other = request.clone();
    other["context"]["workflow_id"] = "wf-2".into();
    check(&ok, &other, "approval.action_mismatch");
    // Expired (beyond the minute of clock skew).
    check(
        &approval(
            &lee,
            &digest,
            &["R9.value_threshold"],
            "2026-11-21T13:40:00Z",
            1200,
        ),
        &request,
        "approval.expired",
    );
    // Signed in the future.
    check(
        &approval(
            &lee,
            &digest,
            &["R9.value_threshold"],
            "2026-11-21T14:10:00Z",
            900,
        ),
        &request,
        "approval.not_yet_valid",
    );
    // Living longer than the bundle allows.
    check(
        &approval(
            &lee,
            &digest,
            &["R9.value_threshold"],
            "2026-11-21T14:00:00Z",
            7200,
        ),
        &request,
        "approval.lifetime",
    );
    // An approver without a role for R9.
    check(
        &approval(
            &approver("sam"),
            &digest,
            &["R9.value_threshold"],
            "2026-11-21T14:06:00Z",
            900,
        ),
        &request,
        "approval.role",
    );
    // Not naming the reason the decision escalates for.
    check(
        &approval(
            &lee,
            &digest,
            &["R13.outside_business_hours"],
            "2026-11-21T14:06:00Z",
            900,
        ),
        &request,
        "approval.reasons",
    );
    // Another audience.
    let mut claims = ApprovalClaims::new(
        LEE,
        "spiffe://elsewhere",
        digest.clone(),
        vec!["R9.value_threshold".into()],
        unix(TIME),
        900,
    );
    claims.jti = "aud".into();
    check(
        &agentriage::approval::sign(&lee, &claims).unwrap(),
        &request,
        "approval.audience",
    );
    // Signed after the request for approval expired.
    let mut claims = ApprovalClaims::new(
        LEE,
        AUDIENCE,
        digest.clone(),
        vec!["R9.value_threshold".into()],
        unix(TIME),
        900,
    );
    claims.request_exp = Some(unix(TIME) - 1);
    let late = lee.sign_json(&claims.to_json()).unwrap();
    // sign_json writes `typ: JWT`: not an approval token at all.
    check(&late, &request, "approval.token");
    // A key the bundle does not trust for approvals: an intent key.
    let intent_pem =
        std::fs::read_to_string(repo().join("testdata/intents/keys/router.pem")).unwrap();
    let stranger =
        SigningKey::from_pem(Algorithm::EdDsa, "router-2026-11", LEE, &intent_pem).unwrap();
    check(
        &approval(
            &stranger,
            &digest,
            &["R9.value_threshold"],
            "2026-11-21T14:06:00Z",
            900,
        ),
        &request,
        "approval.unknown_key",
    );
    // ...and one posing as dana's key.
    let forged = SigningKey::from_pem(Algorithm::EdDsa, "dana-2026-11", DANA, &intent_pem).unwrap();
    check(
        &approval(
            &forged,
            &digest,
            &["R9.value_threshold"],
            "2026-11-21T14:06:00Z",
            900,
        ),
        &request,
        "approval.signature",
    );
    check("not.a.token", &request, "approval.token");
}

#[test]
fn approvals_for_money_leaving_need_finance() {
    // A payment over R9's limit: regulated, so only finance may approve.
    // (Each decision on a new engine: the case's intent is used once.)
    let cases = common::decision_cases();
    let case = cases
        .iter()
        .find(|c| c.name == "R9 payment above the limit escalates")
        .unwrap();
    let d = pack().decide_value(&case.request).unwrap();
    let ask = d.approval_request.unwrap();
    assert_eq!(ask.reasons[0].roles, ["finance-approver"]);
    assert_eq!(ask.action_digest, digest_of(&pack(), &case.request));

    let lee = approval(
        &approver("lee"),
        &ask.action_digest,
        &["R9.value_threshold"],
        TIME,
        900,
    );
    let mut request = with_approval(case.request.clone(), &lee);
    let d = pack().decide_value(&request).unwrap();
    assert_eq!(
        ids(&d),
        ["approval.role", "R9.value_threshold"],
        "{:?}",
        d.reasons
    );
    assert!(
        d.reasons[0].message.contains("finance-approver"),
        "{}",
        d.reasons[0].message
    );
    request["approval"] = approval(
        &approver("dana"),
        &ask.action_digest,
        &["R9.value_threshold"],
        TIME,
        900,
    )
    .into();
    let d = pack().decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
}

#[test]
fn an_approval_is_not_used_up_by_a_decision_that_does_not_execute() {
    let engine = pack();
    let request = reroute(250_000);
    let token = approval(
        &approver("dana"),
        &digest_of(&engine, &request),
        &["R9.value_threshold"],
        TIME,
        900,
    );
    // An expired credential (R4) rejects whatever the approval says; the
    // credential is not part of the action, so the approval verifies, and
    // stays unused.
    let mut blocked = with_approval(request.clone(), &token);
    blocked["principal"]["credential"]["expires_at"] = "2026-11-21T14:00:00Z".into();
    let d = engine.decide_value(&blocked).unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{:?}", d.reasons);
    assert!(ids(&d).contains(&"R4.credential_expired"), "{:?}", ids(&d));
    assert_eq!(d.approval.as_ref().unwrap().status, ApprovalStatus::Unused);
    let d = engine
        .decide_value(&with_approval(request, &token))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    assert_eq!(d.approval.as_ref().unwrap().status, ApprovalStatus::Used);
}

#[test]
fn engines_sharing_a_store_share_one_use() {
    let store: Arc<dyn StateStore> = Arc::new(MemoryStore::default());
    let a = pack().with_state(Arc::clone(&store));
    let b = pack().with_state(store);
    let request = reroute(250_000);
    let token = approval(
        &approver("lee"),
        &digest_of(&a, &request),
        &["R9.value_threshold"],
        TIME,
        900,
    );
    let request = with_approval(request, &token);
    assert_eq!(a.decide_value(&request).unwrap().outcome, Outcome::Execute);
    let d = b.decide_value(&request).unwrap();
    assert_eq!(ids(&d), ["approval.reused"]);
    // An engine with its own store does not know: the store is the boundary.
    assert_eq!(
        pack().decide_value(&request).unwrap().outcome,
        Outcome::Execute
    );
}

fn temp_bundle(extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&reference_pack(), dir.path());
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}\n{extra}")).unwrap();
    dir
}

fn replace_in_manifest(dir: &std::path::Path, from: &str, to: &str) {
    let manifest = dir.join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(&manifest, text.replace(from, to)).unwrap();
}

#[test]
fn the_approval_cap_guards_against_fatigue() {
    let dir = temp_bundle("");
    replace_in_manifest(
        dir.path(),
        "max_per_principal = 10",
        "max_per_principal = 2",
    );
    let engine = Engine::from_dir(dir.path()).unwrap();
    let lee = approver("lee");
    let mut outcomes = Vec::new();
    for value in [250_000, 250_001, 250_002] {
        let request = reroute(value);
        let token = approval(
            &lee,
            &digest_of(&engine, &request),
            &["R9.value_threshold"],
            TIME,
            900,
        );
        let d = engine
            .decide_value(&with_approval(request, &token))
            .unwrap();
        outcomes.push((d.outcome, ids(&d).join(",")));
    }
    assert_eq!(outcomes[0].0, Outcome::Execute);
    assert_eq!(outcomes[1].0, Outcome::Execute);
    assert_eq!(outcomes[2], (Outcome::Reject, "approval.cap".to_owned()));
}

#[test]
fn a_bundle_without_approvals_refuses_every_approval() {
    let dir = temp_bundle("");
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let start = text.find("[approvals]").unwrap();
    let end = text.find("# Waivers").unwrap();
    std::fs::write(&manifest, format!("{}{}", &text[..start], &text[end..])).unwrap();
    let engine = Engine::from_dir(dir.path()).unwrap();
    let request = reroute(250_000);
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert!(d.approval_request.is_none());
    let d = engine
        .decide_value(&with_approval(request, "a.b.c"))
        .unwrap();
    assert_eq!(ids(&d), ["approval.unconfigured", "R9.value_threshold"]);
    assert_eq!(d.outcome, Outcome::Reject);
}

// ---- quotas ------------------------------------------------------------------

fn purchase(amount: f64, time: &str) -> Value {
    json!({
        "time": time,
        "principal": {
            "id": "spiffe://acme.example/ns/procurement/sa/buyer",
            "credential": {"expires_at": "2026-11-21T16:10:00Z"},
            "attestation": {"status": "verified", "verified_at": time}
        },
        "action": {"name": "purchase_order.create"},
        "resource": {"type": "purchase_order", "id": "PO-5", "attributes": {"amount_usd": amount}},
        "context": {"site": "dc-1"}
    })
}

#[test]
fn a_sum_quota_counts_executed_amounts_per_window() {
    let engine = pack();
    let at = "2026-11-21T14:05:00Z";
    for _ in 0..2 {
        assert_eq!(
            engine
                .decide_value(&purchase(50_000.0, at))
                .unwrap()
                .outcome,
            Outcome::Execute
        );
    }
    // 100 000 so far: 50 000 more reaches the limit exactly.
    assert_eq!(
        engine
            .decide_value(&purchase(50_000.0, at))
            .unwrap()
            .outcome,
        Outcome::Execute
    );
    // A cent more does not fit.
    let d = engine.decide_value(&purchase(0.01, at)).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(ids(&d), ["Q1.purchase_usd_per_agent_hour"]);
    assert!(
        d.reasons[0].message.contains("150000"),
        "{}",
        d.reasons[0].message
    );
    // An escalated action is not counted, and the next window starts anew.
    let d = engine
        .decide_value(&purchase(50_000.0, "2026-11-21T15:00:00Z"))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    // Another agent has its own counter.
    let mut other = purchase(50_000.0, at);
    other["principal"]["id"] = "spiffe://acme.example/ns/planning/sa/planner".into();
    let d = engine.decide_value(&other).unwrap();
    assert!(
        !ids(&d).contains(&"Q1.purchase_usd_per_agent_hour"),
        "{:?}",
        ids(&d)
    );
}

#[test]
fn an_amount_that_cannot_be_counted_is_not_executed() {
    let engine = pack();
    let mut r = purchase(10.0, TIME);
    r["resource"]["attributes"]["amount_usd"] = (-5).into();
    let d = engine.decide_value(&r).unwrap();
    assert_ne!(d.outcome, Outcome::Execute);
    assert!(
        ids(&d).contains(&"Q1.purchase_usd_per_agent_hour"),
        "{:?}",
        ids(&d)
    );
}

#[test]
fn concurrent_deciders_never_pass_a_count_quota() {
    let dir = temp_bundle(
        "[[quotas]]\nid = \"Q9.reads\"\nactions = [\"inventory.read\"]\nper = \"global\"\nwindow_s = 3600\ncount = 50\neffect = \"reject\"\n",
    );
    let engine = Arc::new(Engine::from_dir(dir.path()).unwrap());
    let request = json!({
        "time": TIME,
        "principal": {"id": "spiffe://acme.example/ns/analytics/sa/reporter"},
        "action": {"name": "inventory.read"},
        "resource": {"type": "inventory", "id": "INV-7"}
    });
    let executed: usize = (0..8)
        .map(|_| {
            let engine = Arc::clone(&engine);
            let request = request.clone();
            std::thread::spawn(move || {
                (0..20)
                    .filter(|_| engine.decide_value(&request).unwrap().outcome == Outcome::Execute)
                    .count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(executed, 50);
    let d = engine.decide_value(&request).unwrap();
    assert_eq!((d.outcome, ids(&d)), (Outcome::Reject, vec!["Q9.reads"]));
}

#[test]
fn an_approval_may_settle_a_quota_escalation_and_the_action_counts() {
    let dir = temp_bundle("");
    replace_in_manifest(
        dir.path(),
        "\"R9.*\" = [",
        "\"Q1.*\" = [\"logistics-supervisor\"]\n\"R9.*\" = [",
    );
    let engine = Engine::from_dir(dir.path()).unwrap();
    for _ in 0..3 {
        assert_eq!(
            engine
                .decide_value(&purchase(50_000.0, TIME))
                .unwrap()
                .outcome,
            Outcome::Execute
        );
    }
    let request = purchase(1_000.0, TIME);
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(ids(&d), ["Q1.purchase_usd_per_agent_hour"]);
    let ask = d.approval_request.unwrap();
    let token = approval(
        &approver("lee"),
        &ask.action_digest,
        &["Q1.purchase_usd_per_agent_hour"],
        TIME,
        900,
    );
    let d = engine
        .decide_value(&with_approval(request, &token))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
}

// ---- waivers -----------------------------------------------------------------

#[test]
fn a_waiver_applies_to_what_it_names_until_it_expires() {
    let bundle = agentriage::Bundle::load(reference_pack()).unwrap();
    let waivers = bundle.controls().waivers().waivers();
    assert_eq!(waivers.len(), 1);
    let w = &waivers[0];
    assert_eq!(w.id, "W-2026-031");
    assert!(
        !w.expired_at(
            Timestamp::parse("2027-01-30T23:59:59Z")
                .unwrap()
                .unix_nanos()
        )
    );
    assert!(
        w.expired_at(
            Timestamp::parse("2027-01-31T00:00:00Z")
                .unwrap()
                .unix_nanos()
        )
    );
}

fn manifest_error(extra: &str, from: Option<(&str, &str)>) -> String {
    let dir = temp_bundle(extra);
    if let Some((a, b)) = from {
        replace_in_manifest(dir.path(), a, b);
    }
    Engine::from_dir(dir.path()).unwrap_err().to_string()
}

#[test]
fn bundles_with_unsound_controls_do_not_load() {
    let waiver = |rules: &str, granted: &str, expires: &str| {
        format!(
            "[[waivers.waiver]]\nid = \"W-x\"\nrules = [{rules}]\nactions = [\"payment.release\"]\nowner = \"o\"\nrisk_acceptance = \"RA-1\"\ngranted = \"{granted}\"\nexpires = \"{expires}\"\n"
        )
    };
    // A rule the bundle does not declare waivable.
    let e = manifest_error(
        &waiver(
            "\"R1.unknown_agent\"",
            "2026-11-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        ),
        None,
    );
    assert!(e.contains("not waivable"), "{e}");
    // Longer than the maximum lifetime.
    let e = manifest_error(
        &waiver(
            "\"R13.outside_business_hours\"",
            "2026-01-01T00:00:00Z",
            "2026-12-01T00:00:00Z",
        ),
        None,
    );
    assert!(
        e.contains("longer than the bundle's maximum of 120 days"),
        "{e}"
    );
    // No expiry.
    let e = manifest_error(
        "[[waivers.waiver]]\nid = \"W-y\"\nrules = [\"R13.outside_business_hours\"]\nactions = [\"a\"]\nowner = \"o\"\nrisk_acceptance = \"r\"\ngranted = \"2026-11-01T00:00:00Z\"\n",
        None,
    );
    assert!(e.contains("expires"), "{e}");
    // A quota without a limit, or with an unknown effect.
    let e = manifest_error(
        "[[quotas]]\nid = \"Q\"\nactions = [\"a\"]\nwindow_s = 60\neffect = \"escalate\"\n",
        None,
    );
    assert!(e.contains("give either `count`"), "{e}");
    let e = manifest_error(
        "[[quotas]]\nid = \"Q\"\nactions = [\"a\"]\nwindow_s = 60\ncount = 1\neffect = \"execute\"\n",
        None,
    );
    assert!(e.contains("expected `reject` or `escalate`"), "{e}");
    // An approver key nobody in the approvers table holds.
    let e = manifest_error(
        "",
        Some(("\"mailto:sam.ito@acme.example\" = [\"analyst\"]\n", "")),
    );
    assert!(e.contains("not in `approvals.approvers`"), "{e}");
}

// ---- a store that fails ------------------------------------------------------

#[derive(Debug, Default)]
struct Flaky {
    inner: MemoryStore,
    down: AtomicBool,
}

impl Flaky {
    fn check(&self) -> Result<(), StateError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StateError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

impl StateStore for Flaky {
    fn insert_once(&self, key: &str, e: i128, n: i128) -> Result<bool, StateError> {
        self.check()?;
        self.inner.insert_once(key, e, n)
    }
    fn add_within(&self, key: &str, a: i64, l: i64, e: i128, n: i128) -> Result<Added, StateError> {
        self.check()?;
        self.inner.add_within(key, a, l, e, n)
    }
    fn subtract(&self, key: &str, a: i64, n: i128) -> Result<(), StateError> {
        self.check()?;
        self.inner.subtract(key, a, n)
    }
    fn counter(&self, key: &str, n: i128) -> Result<i64, StateError> {
        self.check()?;
        self.inner.counter(key, n)
    }
    fn kind(&self) -> &'static str {
        "flaky"
    }
}

#[test]
fn an_unreachable_store_fails_closed_and_decisions_resume_after() {
    let store = Arc::new(Flaky::default());
    let engine = pack().with_state(store.clone());
    assert_eq!(
        engine.decide_value(&purchase(10.0, TIME)).unwrap().outcome,
        Outcome::Execute
    );
    store.down.store(true, Ordering::SeqCst);
    let d = engine.decide_value(&purchase(10.0, TIME)).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert!(ids(&d).contains(&"state.unavailable"), "{:?}", ids(&d));
    // An approval cannot be used while the store is down.
    let request = reroute(250_000);
    let token = approval(
        &approver("lee"),
        &digest_of(&engine, &request),
        &["R9.value_threshold"],
        TIME,
        900,
    );
    let request = with_approval(request, &token);
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{:?}", d.reasons);
    // Both failures are counted.
    assert_eq!(engine.metrics().state_errors("flaky", "settle"), 2);
    store.down.store(false, Ordering::SeqCst);
    assert_eq!(
        engine.decide_value(&purchase(10.0, TIME)).unwrap().outcome,
        Outcome::Execute
    );
    assert_eq!(
        engine.decide_value(&request).unwrap().outcome,
        Outcome::Execute
    );

    // `on_error = "escalate"` makes the failure an escalation instead.
    let dir = temp_bundle("");
    replace_in_manifest(
        dir.path(),
        "on_error = \"reject\"",
        "on_error = \"escalate\"",
    );
    let store = Arc::new(Flaky::default());
    store.down.store(true, Ordering::SeqCst);
    let engine = Engine::from_dir(dir.path()).unwrap().with_state(store);
    let d = engine.decide_value(&purchase(10.0, TIME)).unwrap();
    assert_eq!(
        (d.outcome, ids(&d)),
        (Outcome::Escalate, vec!["state.unavailable"])
    );
}

#[test]
fn the_decision_log_records_the_approval_request_and_its_use() {
    use agentriage::audit::{DecisionLog, DecisionLogConfig};
    let dir = tempfile::tempdir().unwrap();
    let log = DecisionLog::open(DecisionLogConfig::new(dir.path())).unwrap();
    let engine = pack().with_decision_log(log.clone());
    let request = reroute(250_000);
    let asked = engine.decide_value(&request).unwrap();
    let token = approval(
        &approver("lee"),
        &asked.approval_request.unwrap().action_digest,
        &["R9.value_threshold"],
        TIME,
        900,
    );
    let used = engine
        .decide_value(&with_approval(request, &token))
        .unwrap();
    log.close().unwrap();
    let mut records = Vec::new();
    for file in log.segments().unwrap() {
        for line in std::fs::read_to_string(file).unwrap().lines() {
            records.push(serde_json::from_str::<Value>(line).unwrap());
        }
    }
    let find = |id: &str| {
        records
            .iter()
            .find(|r| r["decision"]["decision_id"] == id)
            .unwrap_or_else(|| panic!("no record of {id}"))
            .clone()
    };
    let first = find(&asked.decision_id);
    assert_eq!(
        first["decision"]["approval_request"]["reasons"][0]["policy"],
        "R9.value_threshold"
    );
    let second = find(&used.decision_id);
    assert_eq!(second["decision"]["approval"]["status"], "used");
    assert_eq!(second["decision"]["approval"]["approver"], LEE);
    // The token itself is part of the logged request.
    assert_eq!(second["request"]["approval"], token.as_str());
}
