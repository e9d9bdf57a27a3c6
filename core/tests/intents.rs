//! Signed intents: the shared vectors of `testdata/intents/`, every way to
//! break a token, and verification inside `decide`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use agentriage::intent::{
    Algorithm, Expected, IntentCheck, IntentClaims, IntentConfig, IntentVerifier,
    MemoryReplayCache, ReplayCache, ReplayError, SigningKey, TrustedKeys,
};
use agentriage::{Engine, Outcome, Timestamp};
use common::{reference_pack, repo};
use serde_json::{Value, json};

const AUDIENCE: &str = "spiffe://acme.example/ns/platform/sa/agentriage";
const PAYMENTS: &str = "spiffe://acme.example/ns/finance/sa/payments";
const CUSTOMS: &str = "spiffe://acme.example/ns/compliance/sa/customs";
const ROUTER: &str = "spiffe://acme.example/ns/logistics/sa/router";
const TIME: &str = "2026-11-21T14:05:00Z";

fn time() -> Timestamp {
    Timestamp::parse(TIME).unwrap()
}

fn unix(t: Timestamp) -> i64 {
    i64::try_from(t.unix_nanos() / 1_000_000_000).unwrap()
}

fn key(name: &str, alg: Algorithm, iss: &str) -> SigningKey {
    let pem =
        std::fs::read_to_string(repo().join(format!("testdata/intents/keys/{name}.pem"))).unwrap();
    SigningKey::from_pem(alg, format!("{name}-2026-11"), iss, &pem).unwrap()
}

fn payments() -> SigningKey {
    key("payments", Algorithm::EdDsa, PAYMENTS)
}

fn trusted() -> TrustedKeys {
    let text = std::fs::read_to_string(reference_pack().join("data/intent-keys.json")).unwrap();
    TrustedKeys::from_json(&text).unwrap()
}

fn verifier() -> IntentVerifier {
    IntentVerifier::new(
        IntentConfig::new(trusted(), AUDIENCE)
            .with_clock_skew(Duration::from_secs(60))
            .with_max_lifetime(Duration::from_secs(900)),
    )
}

fn payment_claims(jti: &str) -> IntentClaims {
    let mut c = IntentClaims::new(
        PAYMENTS,
        AUDIENCE,
        "payment.release",
        "invoice:INV-88",
        "settle invoice INV-88 for PO-5",
        unix(time()) - 60,
        Duration::from_secs(600),
    );
    c.jti = jti.to_owned();
    c
}

fn b64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// A token from raw header and payload text, signed by `signer`.
fn raw(header: &str, payload: &str, signer: &SigningKey) -> String {
    let input = format!("{}.{}", b64(header.as_bytes()), b64(payload.as_bytes()));
    let sig = signer.sign_bytes(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(&sig))
}

fn vectors_path() -> std::path::PathBuf {
    repo().join("testdata/intents/vectors.json")
}

/// Writes `testdata/intents/vectors.json`. Run with
/// `cargo test -p agentriage --test intents -- --ignored regenerate`.
#[test]
#[ignore = "regenerates the shared vectors"]
fn regenerate_vectors() {
    let pay = payments();
    let customs = key("customs", Algorithm::Es256, CUSTOMS);
    let router = key("router", Algorithm::EdDsa, ROUTER);
    let now = unix(time());
    let pay_header = r#"{"alg":"EdDSA","kid":"payments-2026-11","typ":"JWT"}"#;
    let pay_payload = |jti: &str| payment_claims(jti).to_json().to_string();
    let with = |jti: &str, f: &dyn Fn(&mut Value)| {
        let mut v = payment_claims(jti).to_json();
        f(&mut v);
        pay.sign_json(&v).unwrap()
    };
    let payment = |name: &str, token: String, check: Option<&str>| {
        let mut v = json!({
            "name": name,
            "token": token,
            "principal": PAYMENTS,
            "action": "payment.release",
            "resource": "invoice:INV-88",
        });
        if let Some(c) = check {
            v["check"] = c.into();
        }
        v
    };

    let mut valid = vec![payment(
        "EdDSA intent for the payment base",
        pay.sign(&payment_claims("vector-eddsa")).unwrap(),
        None,
    )];
    let mut declare = IntentClaims::new(
        CUSTOMS,
        AUDIENCE,
        "customs.declare",
        "declaration:CD-7",
        "file the export declaration for SH-1001",
        now - 30,
        Duration::from_secs(300),
    );
    declare.jti = "vector-es256".into();
    declare.scope = vec!["customs:export".into(), "eu".into()];
    valid.push(json!({
        "name": "ES256 intent with scope",
        "token": customs.sign(&declare).unwrap(),
        "principal": CUSTOMS, "action": "customs.declare", "resource": "declaration:CD-7",
    }));
    valid.push(payment(
        "audience array, nbf, scope array",
        with("vector-aud-array", &|v| {
            v["aud"] = json!(["spiffe://acme.example/ns/other", AUDIENCE]);
            v["nbf"] = json!(now - 60);
            v["scope"] = json!(["payments:release"]);
        }),
        None,
    ));

    let good = pay.sign(&payment_claims("vector-tampered")).unwrap();
    let parts: Vec<&str> = good.split('.').collect();
    let mut sig = agentriage_b64_decode(parts[2]);
    sig[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], b64(&sig));
    let altered_payload = b64(pay_payload("vector-tampered")
        .replace("\"invoice:INV-88\"", "\"invoice:INV-99\"")
        .as_bytes());
    let altered = format!("{}.{altered_payload}.{}", parts[0], parts[2]);

    let hs256 = {
        let header = b64(br#"{"alg":"HS256","kid":"payments-2026-11","typ":"JWT"}"#);
        let input = format!("{header}.{}", b64(pay_payload("vector-hs256").as_bytes()));
        // The classic confusion: the public key used as an HMAC secret.
        let secret = trusted().get("payments-2026-11").unwrap().to_jwk()["x"]
            .as_str()
            .unwrap()
            .to_owned();
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
        let tag = ring::hmac::sign(&k, input.as_bytes());
        format!("{input}.{}", b64(tag.as_ref()))
    };
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","kid":"payments-2026-11"}"#),
        b64(pay_payload("vector-none").as_bytes())
    );
    let unknown_kid = SigningKey::from_pkcs8(
        Algorithm::EdDsa,
        "payments-2025-01",
        PAYMENTS,
        pay.pkcs8_der(),
    )
    .unwrap()
    .sign(&payment_claims("vector-unknown-kid"))
    .unwrap();
    // The router's key, claiming to be the payments agent.
    let other_issuer = raw(
        r#"{"alg":"EdDSA","kid":"router-2026-11","typ":"JWT"}"#,
        &pay_payload("vector-other-issuer"),
        &router,
    );
    let mut router_claims = payment_claims("vector-router");
    router_claims.iss = ROUTER.into();
    let wrong_principal = router.sign(&router_claims).unwrap();

    let invalid = vec![
        payment("flipped signature byte", flipped, Some("signature")),
        payment("altered claim", altered, Some("signature")),
        payment("unknown kid", unknown_kid, Some("unknown_key")),
        payment("key of another issuer", other_issuer, Some("issuer_key")),
        payment(
            "signed by another agent than the principal",
            wrong_principal,
            Some("principal"),
        ),
        payment("alg none", none, Some("algorithm")),
        payment(
            "alg HS256 keyed with the public key",
            hs256,
            Some("algorithm"),
        ),
        payment(
            "header alg does not match the key",
            raw(
                r#"{"alg":"ES256","kid":"payments-2026-11"}"#,
                &pay_payload("vector-alg-mismatch"),
                &pay,
            ),
            Some("key_algorithm"),
        ),
        payment(
            "expired",
            with("vector-expired", &|v| {
                v["iat"] = json!(now - 700);
                v["exp"] = json!(now - 61);
            }),
            Some("expired"),
        ),
        payment(
            "expired at the edge of the clock skew (exp + skew = time)",
            with("vector-expired-at-skew", &|v| {
                v["iat"] = json!(now - 600);
                v["exp"] = json!(now - 60);
            }),
            Some("expired"),
        ),
        payment(
            "not yet valid (nbf)",
            with("vector-nbf", &|v| v["nbf"] = json!(now + 61)),
            Some("not_yet_valid"),
        ),
        payment(
            "issued in the future",
            with("vector-iat-future", &|v| {
                v["iat"] = json!(now + 120);
                v["exp"] = json!(now + 600);
            }),
            Some("not_yet_valid"),
        ),
        payment(
            "too long-lived",
            with("vector-long", &|v| v["exp"] = json!(now - 60 + 901)),
            Some("lifetime"),
        ),
        payment(
            "exp before iat",
            with("vector-exp-before-iat", &|v| {
                v["iat"] = json!(now);
                v["exp"] = json!(now - 1);
            }),
            Some("lifetime"),
        ),
        payment(
            "wrong audience",
            with("vector-aud", &|v| {
                v["aud"] = json!("spiffe://acme.example/ns/other")
            }),
            Some("audience"),
        ),
        payment(
            "wrong action",
            with("vector-act", &|v| v["act"] = json!("invoice.read")),
            Some("action"),
        ),
        payment(
            "wrong resource",
            with("vector-res", &|v| v["res"] = json!("invoice:INV-89")),
            Some("resource"),
        ),
        payment(
            "missing jti",
            with("vector-no-jti", &|v| {
                v.as_object_mut().unwrap().remove("jti");
            }),
            Some("claims"),
        ),
        payment(
            "iat is a string",
            with("vector-iat-string", &|v| v["iat"] = json!("yesterday")),
            Some("claims"),
        ),
        payment(
            "duplicate key in the payload",
            raw(
                pay_header,
                &pay_payload("vector-dup").replacen(
                    "\"act\":\"payment.release\"",
                    "\"act\":\"invoice.read\",\"act\":\"payment.release\"",
                    1,
                ),
                &pay,
            ),
            Some("duplicate_key"),
        ),
        payment(
            "duplicate key in the header",
            raw(
                r#"{"alg":"EdDSA","kid":"router-2026-11","kid":"payments-2026-11"}"#,
                &pay_payload("vector-dup-header"),
                &pay,
            ),
            Some("duplicate_key"),
        ),
        payment(
            "critical header extension",
            raw(
                r#"{"alg":"EdDSA","kid":"payments-2026-11","crit":["b64"],"b64":false}"#,
                &pay_payload("vector-crit"),
                &pay,
            ),
            Some("header"),
        ),
        payment(
            "no kid",
            raw(r#"{"alg":"EdDSA"}"#, &pay_payload("vector-no-kid"), &pay),
            Some("header"),
        ),
        payment(
            "oversized token",
            with("vector-big", &|v| v["purpose"] = json!("x".repeat(9000))),
            Some("size"),
        ),
        payment(
            "malformed base64 (standard alphabet)",
            format!("{}.{}+.{}", parts[0], parts[1], parts[2]),
            Some("format"),
        ),
        payment(
            "malformed base64 (padding)",
            format!("{}.{}.{}==", parts[0], parts[1], parts[2]),
            Some("format"),
        ),
        payment(
            "two parts",
            format!("{}.{}", parts[0], parts[1]),
            Some("format"),
        ),
        payment(
            "payload is not an object",
            raw(pay_header, "[1,2]", &pay),
            Some("format"),
        ),
    ];
    let doc = json!({
        "description": "Signed-intent test vectors shared by the Rust, Python and Node tests. \
            Verify each at `time` with the key set `keys`, audience `audience`, clock skew \
            `clock_skew_s` and maximum lifetime `max_lifetime_s`, for a request by `principal` \
            for `action` on `resource` (type:id). Valid ones verify; each invalid one fails \
            the named check. Regenerate with \
            `cargo test -p agentriage --test intents -- --ignored regenerate`.",
        "keys": "policies/a2a-supply-chain/data/intent-keys.json",
        "private_keys": "testdata/intents/keys (test-only keys)",
        "audience": AUDIENCE,
        "time": TIME,
        "clock_skew_s": 60,
        "max_lifetime_s": 900,
        "valid": valid,
        "invalid": invalid,
    });
    std::fs::write(
        vectors_path(),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
}

fn agentriage_b64_decode(text: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => panic!("not base64url"),
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

fn vectors() -> Value {
    serde_json::from_str(&std::fs::read_to_string(vectors_path()).unwrap()).unwrap()
}

fn expected(v: &Value) -> (String, String, Option<(String, String)>) {
    let res = v["resource"].as_str().unwrap();
    let (t, i) = res.split_once(':').unwrap();
    (
        v["principal"].as_str().unwrap().to_owned(),
        v["action"].as_str().unwrap().to_owned(),
        Some((t.to_owned(), i.to_owned())),
    )
}

fn verify_vector(verifier: &IntentVerifier, v: &Value) -> Result<(), IntentCheck> {
    let (p, a, r) = expected(v);
    let e = Expected {
        principal: &p,
        action: &a,
        resource: r.as_ref().map(|(t, i)| (t.as_str(), i.as_str())),
    };
    verifier
        .verify(v["token"].as_str().unwrap(), &e, time())
        .map(|_| ())
        .map_err(|e| e.check())
}

#[test]
fn valid_vectors_verify() {
    let verifier = verifier();
    let doc = vectors();
    for v in doc["valid"].as_array().unwrap() {
        assert_eq!(verify_vector(&verifier, v), Ok(()), "{}", v["name"]);
    }
}

#[test]
fn every_broken_vector_fails_its_check() {
    let verifier = verifier();
    let doc = vectors();
    let invalid = doc["invalid"].as_array().unwrap();
    assert!(invalid.len() >= 20);
    for v in invalid {
        assert_eq!(
            verify_vector(&verifier, v).err().map(IntentCheck::as_str),
            Some(v["check"].as_str().unwrap()),
            "{}",
            v["name"]
        );
    }
}

#[test]
fn a_replayed_jti_fails_the_replay_check() {
    let verifier = verifier();
    let token = payments().sign(&payment_claims("replay-1")).unwrap();
    let e = Expected {
        principal: PAYMENTS,
        action: "payment.release",
        resource: Some(("invoice", "INV-88")),
    };
    assert!(verifier.verify(&token, &e, time()).is_ok());
    let err = verifier.verify(&token, &e, time()).unwrap_err();
    assert_eq!(err.check(), IntentCheck::Replay);
    assert!(err.to_string().contains("replay-1"), "{err}");
    // A new jti with the same content is a new intent.
    let again = payments().sign(&payment_claims("replay-2")).unwrap();
    assert!(verifier.verify(&again, &e, time()).is_ok());
}

#[test]
fn verification_that_fails_does_not_burn_the_jti() {
    let verifier = verifier();
    let token = payments().sign(&payment_claims("burn-1")).unwrap();
    let wrong = Expected {
        principal: PAYMENTS,
        action: "invoice.read",
        resource: Some(("invoice", "INV-88")),
    };
    let right = Expected {
        action: "payment.release",
        ..wrong
    };
    assert_eq!(
        verifier.verify(&token, &wrong, time()).unwrap_err().check(),
        IntentCheck::Action
    );
    assert!(verifier.verify(&token, &right, time()).is_ok());
}

#[test]
fn of_many_threads_verifying_one_token_exactly_one_succeeds() {
    let verifier = Arc::new(verifier());
    let token = Arc::new(payments().sign(&payment_claims("race-1")).unwrap());
    let ok: usize = (0..8)
        .map(|_| {
            let (v, t) = (Arc::clone(&verifier), Arc::clone(&token));
            std::thread::spawn(move || {
                let e = Expected {
                    principal: PAYMENTS,
                    action: "payment.release",
                    resource: Some(("invoice", "INV-88")),
                };
                (0..20).filter(|_| v.verify(&t, &e, time()).is_ok()).count()
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .sum();
    assert_eq!(ok, 1);
}

#[test]
fn a_full_replay_cache_fails_closed() {
    let cache = Arc::new(MemoryReplayCache::new(1));
    let verifier = IntentVerifier::new(
        IntentConfig::new(trusted(), AUDIENCE).with_replay_cache(cache.clone()),
    );
    let e = Expected {
        principal: PAYMENTS,
        action: "payment.release",
        resource: Some(("invoice", "INV-88")),
    };
    let a = payments().sign(&payment_claims("full-1")).unwrap();
    let b = payments().sign(&payment_claims("full-2")).unwrap();
    verifier.verify(&a, &e, time()).unwrap();
    let err = verifier.verify(&b, &e, time()).unwrap_err();
    assert_eq!(err.check(), IntentCheck::ReplayStore);
    assert_eq!(cache.len(), 1);
}

#[test]
fn signed_here_round_trips_for_both_algorithms_and_fresh_keys() {
    for alg in [Algorithm::EdDsa, Algorithm::Es256] {
        let k = SigningKey::generate(alg, "fresh", PAYMENTS).unwrap();
        let mut keys = TrustedKeys::default();
        keys.insert(k.trusted_key()).unwrap();
        let v = IntentVerifier::new(IntentConfig::new(keys, AUDIENCE));
        let token = k.sign(&payment_claims("fresh")).unwrap();
        let got = v
            .verify(
                &token,
                &Expected {
                    principal: PAYMENTS,
                    action: "payment.release",
                    resource: Some(("invoice", "INV-88")),
                },
                time(),
            )
            .unwrap();
        assert_eq!(got.alg, alg);
        assert_eq!(got.claims.purpose, "settle invoice INV-88 for PO-5");
        // A JWKS made of the public JWK reads back to the same key.
        let set = TrustedKeys::from_json(&json!({"keys": [k.public_jwk()]}).to_string()).unwrap();
        assert_eq!(set.get("fresh").unwrap().issuer(), PAYMENTS);
    }
}

#[test]
fn signing_refuses_claims_for_another_issuer_and_empty_lifetimes() {
    let k = payments();
    let mut c = payment_claims("x");
    c.iss = ROUTER.into();
    assert!(k.sign(&c).unwrap_err().to_string().contains("`iss`"));
    let mut c = payment_claims("x");
    c.exp = c.iat;
    assert!(k.sign(&c).is_err());
}

// ---- inside decide ----------------------------------------------------------

fn payment_request(intent: Option<&str>) -> Value {
    let mut r = json!({
        "time": TIME,
        "principal": {
            "id": PAYMENTS,
            "credential": {"expires_at": "2026-11-21T14:10:00Z"},
            "attestation": {"status": "verified", "kind": "sev-snp", "verified_at": "2026-11-21T14:00:00Z"}
        },
        "action": {"name": "payment.release"},
        "resource": {"type": "invoice", "id": "INV-88", "attributes": {"amount_usd": 5000}},
        "context": {"workflow_id": "wf-9", "site": "hq"},
        "anomaly": {"score": 0.12}
    });
    if let Some(i) = intent {
        r["intent"] = i.into();
    }
    r
}

fn ids(d: &agentriage::Decision) -> Vec<&str> {
    d.policy_ids().collect()
}

#[test]
fn decide_executes_a_regulated_action_with_a_verified_intent_once() {
    let engine = Engine::from_dir(reference_pack()).unwrap();
    let token = payments().sign(&payment_claims("decide-1")).unwrap();
    let request = payment_request(Some(&token));
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    // The same intent again is a replay: rejected, naming the check.
    let d = engine.decide_value(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(ids(&d), ["R14.intent_invalid"]);
    assert!(
        d.reasons[0].message.contains("`replay`"),
        "{}",
        d.reasons[0].message
    );
}

#[test]
fn decide_escalates_a_regulated_action_without_intent() {
    let engine = Engine::from_dir(reference_pack()).unwrap();
    let d = engine.decide_value(&payment_request(None)).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(ids(&d), ["R14.intent_missing"]);
}

#[test]
fn decide_rejects_every_broken_vector_naming_its_check() {
    let engine = Engine::from_dir(reference_pack()).unwrap();
    let doc = vectors();
    for v in doc["invalid"].as_array().unwrap() {
        if v["action"] != "payment.release" {
            continue;
        }
        let d = engine
            .decide_value(&payment_request(v["token"].as_str()))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Reject, "{}", v["name"]);
        assert_eq!(ids(&d), ["R14.intent_invalid"], "{}", v["name"]);
        let check = format!("`{}`", v["check"].as_str().unwrap());
        assert!(
            d.reasons[0].message.contains(&check),
            "{}: {}",
            v["name"],
            d.reasons[0].message
        );
    }
}

#[test]
fn an_invalid_intent_rejects_even_a_read() {
    let engine = Engine::from_dir(reference_pack()).unwrap();
    let token = payments().sign(&payment_claims("read-1")).unwrap();
    let d = engine
        .decide_value(&json!({
            "time": TIME,
            "principal": {"id": "spiffe://acme.example/ns/analytics/sa/reporter"},
            "action": {"name": "shipment.read"},
            "resource": {"type": "shipment", "id": "SH-1001", "attributes": {"state": "delivered"}},
            "intent": token,
        }))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(ids(&d), ["R14.intent_invalid"]);
    assert!(
        d.reasons[0].message.contains("`principal`"),
        "{}",
        d.reasons[0].message
    );
}

#[test]
fn policies_see_the_intent_fact_in_rego_and_cedar() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::copy(
        reference_pack().join("data/intent-keys.json"),
        dir.path().join("data/keys.json"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bundle.toml"),
        format!(
            "name = \"t\"\nrevision = \"1\"\n[defaults]\nno_permit = \"reject\"\n\
             [rego]\nmodules = [\"p.rego\"]\n[cedar]\npolicies = [\"p.cedar\"]\n\
             [intents]\nkeys = \"data/keys.json\"\naudience = \"{AUDIENCE}\"\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.rego"),
        "package agentriage\nimport rego.v1\n\
         allow if input.facts.intent.purpose == \"settle invoice INV-88 for PO-5\"\n\
         escalate contains {\"id\": concat(\":\", [\"rego\", input.facts.intent.status, object.get(input.facts.intent, \"error\", \"-\")])} if true\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("p.cedar"),
        "@id(\"cedar-verified\")\npermit(principal, action, resource) when { context.facts.intent.status == \"verified\" && context.facts.intent.iss == principal_id_placeholder };\n"
            .replace("principal_id_placeholder", &format!("\"{PAYMENTS}\"")),
    )
    .unwrap();
    let engine = Engine::from_dir(dir.path()).unwrap();
    let token = payments().sign(&payment_claims("fact-1")).unwrap();
    let d = engine.decide_value(&payment_request(Some(&token))).unwrap();
    assert_eq!(ids(&d), ["rego:verified:-"]);
    let d = engine.decide_value(&payment_request(Some(&token))).unwrap();
    assert_eq!(ids(&d), ["rego:invalid:replay"]);
    let d = engine.decide_value(&payment_request(None)).unwrap();
    assert_eq!(ids(&d), ["rego:absent:-"]);
    // Cedar sees the same fact: with the Rego escalation gone, it permits.
    std::fs::write(dir.path().join("p.rego"), "package agentriage\n").unwrap();
    let engine = Engine::from_dir(dir.path()).unwrap();
    let token = payments().sign(&payment_claims("fact-2")).unwrap();
    let d = engine.decide_value(&payment_request(Some(&token))).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
    assert_eq!(ids(&d), ["cedar-verified"]);
    let d = engine.decide_value(&payment_request(Some(&token))).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
}

#[test]
fn without_keys_an_intent_is_invalid_not_trusted() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&reference_pack(), dir.path());
    let manifest = dir.path().join("bundle.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let cut = text.find("[intents]").unwrap();
    std::fs::write(&manifest, &text[..cut]).unwrap();
    let engine = Engine::from_dir(dir.path()).unwrap();
    assert!(engine.intent_config().is_none());
    let token = payments().sign(&payment_claims("nokeys-1")).unwrap();
    let d = engine.decide_value(&payment_request(Some(&token))).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert!(
        d.reasons[0].message.contains("`unconfigured`"),
        "{}",
        d.reasons[0].message
    );

    // The host supplies the keys instead.
    let engine = Engine::from_dir(dir.path())
        .unwrap()
        .with_intents(IntentConfig::new(trusted(), AUDIENCE));
    let d = engine.decide_value(&payment_request(Some(&token))).unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{:?}", d.reasons);
}

#[derive(Debug, Default)]
struct Recording(std::sync::Mutex<Vec<String>>);

impl ReplayCache for Recording {
    fn check_and_record(
        &self,
        issuer: &str,
        jti: &str,
        _: i128,
        _: i128,
    ) -> Result<(), ReplayError> {
        let mut seen = self.0.lock().unwrap();
        let key = format!("{issuer} {jti}");
        if seen.contains(&key) {
            return Err(ReplayError::Seen {
                issuer: issuer.into(),
                jti: jti.into(),
            });
        }
        seen.push(key);
        Ok(())
    }
}

#[test]
fn a_host_replay_cache_is_shared_by_engines() {
    let shared: Arc<Recording> = Arc::default();
    let a = Engine::from_dir(reference_pack())
        .unwrap()
        .with_replay_cache(shared.clone());
    let b = Engine::from_dir(reference_pack())
        .unwrap()
        .with_replay_cache(shared.clone());
    let token = payments().sign(&payment_claims("shared-1")).unwrap();
    let request = payment_request(Some(&token));
    assert_eq!(a.decide_value(&request).unwrap().outcome, Outcome::Execute);
    assert_eq!(b.decide_value(&request).unwrap().outcome, Outcome::Reject);
    assert_eq!(shared.0.lock().unwrap().len(), 1);
}

#[test]
fn bundle_intent_errors_name_file_and_line() {
    let cases: [(&str, &str, &str, Option<u32>, &str); 5] = [
        (
            "audience = \"spiffe://acme.example/ns/platform/sa/agentriage\"",
            "audience = \"\"",
            "bundle.toml",
            Some(41),
            "`intents.audience` is empty",
        ),
        (
            "max_lifetime_s = 900",
            "max_lifetime_s = 0",
            "bundle.toml",
            Some(43),
            "max_lifetime_s",
        ),
        (
            "clock_skew_s = 60",
            "clock_skew_s = 6000",
            "bundle.toml",
            Some(42),
            "clock_skew_s",
        ),
        (
            "keys = \"data/intent-keys.json\"",
            "keys = \"data/missing.json\"",
            "bundle.toml",
            Some(40),
            "does not exist",
        ),
        (
            "max_lifetime_s = 900",
            "max_lifetime_s = 900\nrefresh = 1",
            "bundle.toml",
            Some(44),
            "unknown field",
        ),
    ];
    for (from, to, file, line, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        common::copy_dir(&reference_pack(), dir.path());
        let manifest = dir.path().join("bundle.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(text.contains(from));
        std::fs::write(&manifest, text.replace(from, to)).unwrap();
        let e = Engine::from_dir(dir.path()).unwrap_err();
        let e = e.as_bundle().unwrap();
        assert!(e.file().ends_with(file), "{e}");
        assert_eq!(e.line(), line, "{e}");
        assert!(e.message().contains(message), "{e}");
    }
    // A key set error names the key file, the line and the member.
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&reference_pack(), dir.path());
    let keys = dir.path().join("data/intent-keys.json");
    let text = std::fs::read_to_string(&keys).unwrap();
    std::fs::write(
        &keys,
        text.replacen("\"crv\": \"P-256\"", "\"crv\": \"P-384\"", 1),
    )
    .unwrap();
    let e = Engine::from_dir(dir.path()).unwrap_err();
    let e = e.as_bundle().unwrap();
    assert!(e.file().ends_with("data/intent-keys.json"), "{e}");
    assert_eq!(e.line(), Some(4), "{e}");
    assert!(e.message().contains("keys[1].crv"), "{e}");
}
