//! What an approval costs a decision: the reference pack's R9 escalation
//! decided without an approval, and with a fresh signed approval each time
//! (verified, roles checked, used up in the in-memory state store).
//!
//! ```text
//! cargo run --release -p agentriage --example approval_latency
//! ```
//!
//! Run from the repository root. Tokens are signed before the timed loop.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::Instant;

use agentriage::approval::{ApprovalClaims, action_digest};
use agentriage::intent::{Algorithm, SigningKey};
use agentriage::{Engine, Outcome, Request, Timestamp};

const N: usize = 20_000;

fn percentiles(mut samples: Vec<u128>) -> (u128, u128, u128) {
    samples.sort_unstable();
    let at = |q: f64| {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i]
    };
    (at(0.5), at(0.99), at(0.999))
}

fn main() {
    let engine =
        Engine::from_dir("policies/a2a-supply-chain").expect("run from the repository root");
    let mut request = Request::from_json(
        r#"{"time": "2026-11-21T14:05:00Z",
            "principal": {"id": "spiffe://acme.example/ns/logistics/sa/router", "type": "agent", "trust_zone": "cloud",
              "credential": {"issuer": "spiffe://acme.example/spire", "expires_at": "2026-11-21T14:10:00Z"},
              "attestation": {"status": "verified", "kind": "tpm", "verified_at": "2026-11-21T14:00:00Z"}},
            "action": {"name": "shipment.reroute"},
            "resource": {"type": "shipment", "id": "SH-1002", "attributes": {"value_usd": 250000, "state": "in_transit"}},
            "context": {"workflow_id": "wf-1", "incident_mode": false, "site": "dc-1"},
            "anomaly": {"score": 0.31}}"#,
    )
    .unwrap();
    assert_eq!(engine.decide(&request).unwrap().outcome, Outcome::Escalate);

    let pem = std::fs::read_to_string("testdata/approvals/keys/lee-logistics.pem").unwrap();
    let key = SigningKey::from_pem(
        Algorithm::Es256,
        "lee-2026-11",
        "mailto:lee.brandt@acme.example",
        &pem,
    )
    .unwrap();
    let digest = action_digest(&request, &["workflow_id".to_owned()]);
    let iat = i64::try_from(
        Timestamp::parse("2026-11-21T14:05:00Z")
            .unwrap()
            .unix_nanos()
            / 1_000_000_000,
    )
    .unwrap();
    let tokens: Vec<String> = (0..N)
        .map(|i| {
            let mut c = ApprovalClaims::new(
                key.issuer(),
                "spiffe://acme.example/ns/platform/sa/agentriage",
                digest.clone(),
                vec!["R9.value_threshold".into()],
                iat,
                900,
            );
            c.jti = format!("bench-{i}");
            agentriage::approval::sign(&key, &c).unwrap()
        })
        .collect();

    // Without an approval: the escalation itself (approval request included).
    let mut without = Vec::with_capacity(N);
    for _ in 0..N {
        let t = Instant::now();
        let d = engine.decide(&request).unwrap();
        without.push(t.elapsed().as_nanos());
        assert_eq!(d.outcome, Outcome::Escalate);
    }
    // With a fresh approval each time. The approval cap (10 per agent per
    // hour in the pack) would refuse most of them: a bundle without the cap.
    let dir =
        std::env::temp_dir().join(format!("agentriage-approval-bench-{}", std::process::id()));
    copy("policies/a2a-supply-chain".as_ref(), &dir);
    let manifest = dir.join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("max_per_principal = 10\nwindow_s = 3600\n", ""),
    )
    .unwrap();
    let engine = Engine::from_dir(&dir).unwrap();
    let mut with = Vec::with_capacity(N);
    for token in tokens {
        request.approval = Some(token);
        let t = Instant::now();
        let d = engine.decide(&request).unwrap();
        with.push(t.elapsed().as_nanos());
        assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    }
    std::fs::remove_dir_all(&dir).unwrap();
    for (name, samples) in [
        ("escalate, no approval", without),
        ("execute, approval verified and used", with),
    ] {
        let (p50, p99, p999) = percentiles(samples);
        println!(
            "{name:40} p50 {:7.1} µs  p99 {:7.1} µs  p99.9 {:7.1} µs",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            p999 as f64 / 1e3
        );
    }
}

fn copy(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
