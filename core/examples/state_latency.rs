//! Cost of the state store per decision: signed-intent requests (each
//! intent's `jti` recorded once) decided with the in-memory store and with
//! Redis, and the store's `insert_once` alone.
//!
//! ```text
//! redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes
//! cargo run --release -p agentriage --features redis --example state_latency -- redis://127.0.0.1:6390
//! redis-cli -p 6390 shutdown nosave
//! ```
//!
//! Without a URL (or without the `redis` feature) only the in-memory store
//! is measured. Run from the repository root.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agentriage::intent::{Algorithm, IntentClaims, SigningKey};
use agentriage::state::{MemoryStore, StateStore};
use agentriage::{Engine, Outcome, Request, Timestamp};

const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const PAYMENTS: &str = "spiffe://acme.example/ns/finance/sa/payments";
const TIME: &str = "2026-11-21T14:05:00Z";
const WARMUP: usize = 500;
const SAMPLES: usize = 5_000;

fn requests(n: usize, tag: &str) -> Vec<Request> {
    let pem = std::fs::read_to_string("testdata/intents/keys/payments.pem")
        .expect("run from the repository root");
    let key = SigningKey::from_pem(Algorithm::EdDsa, "payments-2026-11", PAYMENTS, &pem).unwrap();
    let now = i64::try_from(Timestamp::parse(TIME).unwrap().unix_nanos() / 1_000_000_000).unwrap();
    let nonce = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    (0..n)
        .map(|i| {
            let mut claims = IntentClaims::new(
                PAYMENTS,
                AUDIENCE,
                "payment.release",
                "invoice:INV-88",
                "settle invoice INV-88 for PO-5",
                now - 60,
                Duration::from_secs(600),
            );
            claims.jti = format!("{tag}-{nonce}-{i}");
            let token = key.sign(&claims).unwrap();
            let json = serde_json::json!({
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
            });
            Request::from_value(&json).unwrap()
        })
        .collect()
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "{name:<42} p50 {:>8.1} µs   p99 {:>8.1} µs   ({} samples)",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        samples.len()
    );
}

fn measure(name: &str, store: Arc<dyn StateStore>) {
    let engine = Engine::from_dir("policies/a2a-supply-chain")
        .unwrap()
        .with_state(Arc::clone(&store));
    let all = requests(WARMUP + SAMPLES, name);
    let mut samples = Vec::with_capacity(SAMPLES);
    for (i, r) in all.iter().enumerate() {
        let t = Instant::now();
        let d = engine.decide(r).unwrap();
        let elapsed = t.elapsed();
        assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    percentiles(&format!("decide, signed intent, {name}"), samples);
    // The same request again: refused as a replay, through the store.
    let d = engine.decide(&all[0]).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);

    let base = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    let mut samples = Vec::with_capacity(SAMPLES);
    for i in 0..WARMUP + SAMPLES {
        let key = format!("bench:{base}:{i}");
        let t = Instant::now();
        let fresh = store
            .insert_once(&key, base + 60_000_000_000, base)
            .unwrap();
        let elapsed = t.elapsed();
        assert!(fresh);
        if i >= WARMUP {
            samples.push(elapsed);
        }
    }
    percentiles(&format!("insert_once alone, {name}"), samples);
}

fn main() {
    let url = std::env::args().nth(1);
    measure("memory", Arc::new(MemoryStore::default()));
    match url {
        #[cfg(feature = "redis")]
        Some(url) => {
            let store = agentriage::state::RedisStore::from_url(&url).unwrap();
            store.ping().unwrap_or_else(|e| {
                eprintln!("error: {e}");
                std::process::exit(1)
            });
            measure("redis (loopback)", Arc::new(store));
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => eprintln!("built without the `redis` feature: Redis not measured"),
        None => println!("no Redis URL given: Redis not measured"),
    }
}
