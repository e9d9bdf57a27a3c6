//! Signed intents: ring's signature check alone, our verification (parse,
//! claims, replay cache, signature), and `decide` with an intent — so that
//! our own cost is the difference.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use agentriage::intent::{
    Algorithm, Expected, IntentClaims, IntentConfig, IntentVerifier, MemoryReplayCache, SigningKey,
    TrustedKeys,
};
use agentriage::{Engine, Request, Timestamp};
use criterion::{BatchSize, Criterion};

const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const PAYMENTS: &str = "spiffe://acme.example/ns/finance/sa/payments";
const CUSTOMS: &str = "spiffe://acme.example/ns/compliance/sa/customs";

fn key(root: &std::path::Path, name: &str, alg: Algorithm, iss: &str) -> SigningKey {
    let pem =
        std::fs::read_to_string(root.join(format!("testdata/intents/keys/{name}.pem"))).unwrap();
    SigningKey::from_pem(alg, format!("{name}-2026-11"), iss, &pem).unwrap()
}

/// Claims issued at `t` (Unix seconds) with a fresh `jti`.
fn claims(iss: &str, t: i64, n: i64) -> IntentClaims {
    let mut c = IntentClaims::new(
        iss,
        AUDIENCE,
        "payment.release",
        "invoice:INV-88",
        "settle invoice INV-88 for PO-5",
        t - 1,
        Duration::from_secs(60),
    );
    c.jti = format!("bench-{n}");
    c
}

fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, sig) = token.rsplit_once('.').unwrap();
    (input.as_bytes().to_vec(), decode(sig))
}

fn decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            _ => 63,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

pub fn intents(c: &mut Criterion, root: &std::path::Path, payment_request: &str) {
    let keys_text =
        std::fs::read_to_string(root.join("policies/a2a-supply-chain/data/intent-keys.json"))
            .unwrap();
    let trusted = TrustedKeys::from_json(&keys_text).unwrap();
    let start = 1_795_269_900i64;
    let counter = Arc::new(AtomicI64::new(0));
    let mut group = c.benchmark_group("intent");
    for (name, alg, iss) in [
        ("payments", Algorithm::EdDsa, PAYMENTS),
        ("customs", Algorithm::Es256, CUSTOMS),
    ] {
        let signer = key(root, name, alg, iss);
        let token = signer.sign(&claims(iss, start, 0)).unwrap();
        let (input, sig) = split(&token);
        let jwk = trusted.get(signer.kid()).unwrap().to_jwk();
        let public: Vec<u8> = match alg {
            Algorithm::EdDsa => decode(jwk["x"].as_str().unwrap()),
            Algorithm::Es256 => {
                let mut p = vec![4u8];
                p.extend(decode(jwk["x"].as_str().unwrap()));
                p.extend(decode(jwk["y"].as_str().unwrap()));
                p
            }
        };
        let ring_alg: &'static dyn ring::signature::VerificationAlgorithm = match alg {
            Algorithm::EdDsa => &ring::signature::ED25519,
            Algorithm::Es256 => &ring::signature::ECDSA_P256_SHA256_FIXED,
        };
        group.bench_function(format!("ring_verify/{alg}"), |b| {
            b.iter(|| {
                ring::signature::UnparsedPublicKey::new(ring_alg, black_box(&public))
                    .verify(black_box(&input), black_box(&sig))
                    .unwrap()
            })
        });

        // Each iteration verifies a new token (fresh jti) one second later
        // than the last, so the replay cache records one entry per
        // iteration and drops expired ones as it fills, as in service.
        let verifier = IntentVerifier::new(
            IntentConfig::new(trusted.clone(), AUDIENCE)
                .with_replay_cache(Arc::new(MemoryReplayCache::new(10_000))),
        );
        let expected = Expected {
            principal: iss,
            action: "payment.release",
            resource: Some(("invoice", "INV-88")),
        };
        let n = Arc::clone(&counter);
        group.bench_function(format!("verify/{alg}"), |b| {
            b.iter_batched(
                || {
                    let i = n.fetch_add(1, Ordering::Relaxed) + 1;
                    let t = start + i;
                    let token = signer.sign(&claims(iss, t, i)).unwrap();
                    (
                        token,
                        Timestamp::from_unix_nanos(i128::from(t) * 1_000_000_000).unwrap(),
                    )
                },
                |(token, now)| verifier.verify(black_box(&token), &expected, now).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function(format!("verify_unrecorded/{alg}"), |b| {
            let now = Timestamp::from_unix_nanos(i128::from(start) * 1_000_000_000).unwrap();
            b.iter(|| {
                verifier
                    .verify_unrecorded(black_box(&token), &expected, now)
                    .unwrap()
            })
        });
    }
    group.finish();

    // decide: the payment base with an intent (fresh jti per iteration, at
    // the request's fixed time, so the policies take the same path each
    // time; the replay cache is unbounded so that it never fills) against
    // the same request without one (R14 escalates it; both engines run in
    // full either way).
    let engine = Engine::from_dir(root.join("policies/a2a-supply-chain"))
        .unwrap()
        .with_replay_cache(Arc::new(MemoryReplayCache::new(usize::MAX)));
    let signer = key(root, "payments", Algorithm::EdDsa, PAYMENTS);
    let base = Request::from_json(payment_request).unwrap();
    let mut probe = base.clone();
    probe.intent = Some(signer.sign(&claims(PAYMENTS, start, 0)).unwrap());
    assert!(engine.decide(&probe).unwrap().is_execute());
    let mut group = c.benchmark_group("decide");
    group.bench_function("payment/without_intent", |b| {
        b.iter(|| engine.decide(black_box(&base)).unwrap())
    });
    let n = Arc::clone(&counter);
    group.bench_function("payment/with_intent", |b| {
        b.iter_batched(
            || {
                let i = n.fetch_add(1, Ordering::Relaxed) + 1;
                let mut r = base.clone();
                r.intent = Some(signer.sign(&claims(PAYMENTS, start, i)).unwrap());
                r
            },
            |r| engine.decide(black_box(&r)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}
