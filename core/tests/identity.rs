//! Identity helpers: principals from token claims, MCP `authInfo` and
//! X.509-SVIDs, and the on-behalf-of subject they produce deciding in the
//! reference pack.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use agentriage::identity::{self, IdentityErrorKind};
use agentriage::serde_json::{Value, json};
use agentriage::{Engine, Outcome, Request, Resource, SubjectKind, Timestamp};

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/identity")
        .join(name)
}

fn pem(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).unwrap()
}

fn t(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

#[test]
fn token_without_act_makes_sub_the_agent() {
    let claims = json!({
        "iss": "https://idp.acme.example",
        "sub": "spiffe://acme.example/ns/finance/sa/payments",
        "exp": 1_795_273_200,
        "scope": "invoices:read  payments:release",
        "roles": ["payment-agent"],
    });
    let p = identity::from_token_claims(&claims).unwrap();
    assert_eq!(p.id, "spiffe://acme.example/ns/finance/sa/payments");
    assert!(p.on_behalf_of.is_none());
    assert!(p.delegation.is_empty());
    assert_eq!(p.roles, ["payment-agent"]);
    assert_eq!(
        p.attributes["scopes"],
        json!(["invoices:read", "payments:release"])
    );
    let c = p.credential.unwrap();
    assert_eq!(c.issuer.as_deref(), Some("https://idp.acme.example"));
    assert_eq!(c.expires_at, Some(t("2026-11-21T15:00:00Z")));
}

#[test]
fn act_chain_makes_the_actor_the_agent_and_sub_the_subject() {
    let claims = json!({
        "sub": "alice@acme.example",
        "exp": 1_795_273_200.5,
        "scp": ["payments:release"],
        "roles": "finance-approver",
        "act": {
            "sub": "spiffe://acme.example/ns/finance/sa/payments",
            "act": {"sub": "spiffe://acme.example/ns/ops/sa/supervisor",
                    "act": {"sub": "spiffe://acme.example/ns/planning/sa/demand-planner"}}
        }
    });
    let p = identity::from_token_claims(&claims).unwrap();
    assert_eq!(p.id, "spiffe://acme.example/ns/finance/sa/payments");
    assert_eq!(
        p.delegation,
        [
            "spiffe://acme.example/ns/ops/sa/supervisor",
            "spiffe://acme.example/ns/planning/sa/demand-planner"
        ]
    );
    let s = p.on_behalf_of.unwrap();
    assert_eq!(
        (s.id.as_str(), s.kind),
        ("alice@acme.example", SubjectKind::User)
    );
    assert_eq!(s.scopes, ["payments:release"]);
    assert_eq!(s.roles, ["finance-approver"]);
    // The subject's roles and scopes are not the agent's.
    assert!(p.roles.is_empty());
    assert!(!p.attributes.contains_key("scopes"));
    assert_eq!(
        p.credential.unwrap().expires_at,
        Some(t("2026-11-21T15:00:00.5Z"))
    );
}

#[test]
fn user_token_makes_the_client_the_agent() {
    let claims = json!({"sub": "alice@acme.example", "client_id": "spiffe://acme.example/ns/finance/sa/payments", "scope": "payments:release"});
    let p = identity::from_user_token_claims(&claims).unwrap();
    assert_eq!(p.id, "spiffe://acme.example/ns/finance/sa/payments");
    assert_eq!(p.on_behalf_of.unwrap().id, "alice@acme.example");
    let claims = json!({"sub": "alice@acme.example", "azp": "router"});
    assert_eq!(
        identity::from_user_token_claims(&claims).unwrap().id,
        "router"
    );
    let e = identity::from_user_token_claims(&json!({"sub": "alice"})).unwrap_err();
    assert_eq!(
        (e.kind(), e.field()),
        (IdentityErrorKind::Missing, "client_id")
    );
    // `act` names the actor explicitly and wins over the client.
    let claims = json!({"sub": "alice", "client_id": "c", "act": {"sub": "agent-1"}});
    assert_eq!(
        identity::from_user_token_claims(&claims).unwrap().id,
        "agent-1"
    );
}

#[test]
fn bad_claims_are_named() {
    for (claims, kind, field) in [
        (json!("not an object"), IdentityErrorKind::Type, "$"),
        (json!({"iss": "x"}), IdentityErrorKind::Missing, "sub"),
        (json!({"sub": ""}), IdentityErrorKind::Value, "sub"),
        (json!({"sub": 7}), IdentityErrorKind::Type, "sub"),
        (
            json!({"sub": "a", "exp": "tomorrow"}),
            IdentityErrorKind::Type,
            "exp",
        ),
        (
            json!({"sub": "a", "exp": 1e300}),
            IdentityErrorKind::Value,
            "exp",
        ),
        (
            json!({"sub": "a", "exp": i64::MAX}),
            IdentityErrorKind::Value,
            "exp",
        ),
        (
            json!({"sub": "a", "act": "b"}),
            IdentityErrorKind::Type,
            "act",
        ),
        (
            json!({"sub": "a", "act": {}}),
            IdentityErrorKind::Missing,
            "act.sub",
        ),
        (
            json!({"sub": "a", "act": {"sub": "b", "act": {"sub": 1}}}),
            IdentityErrorKind::Type,
            "act.act.sub",
        ),
        (
            json!({"sub": "a", "scope": "x", "scp": ["x"]}),
            IdentityErrorKind::Value,
            "scp",
        ),
        (
            json!({"sub": "a", "scope": ["x"]}),
            IdentityErrorKind::Type,
            "scope",
        ),
        (
            json!({"sub": "a", "scp": ["x", 2]}),
            IdentityErrorKind::Type,
            "scp[1]",
        ),
        (
            json!({"sub": "a", "roles": [""]}),
            IdentityErrorKind::Value,
            "roles[0]",
        ),
        (
            json!({"sub": "a", "iss": 5}),
            IdentityErrorKind::Type,
            "iss",
        ),
    ] {
        let e = identity::from_token_claims(&claims).unwrap_err();
        assert_eq!((e.kind(), e.field()), (kind, field), "{claims}: {e}");
        assert!(e.to_string().starts_with("invalid identity at `"), "{e}");
    }
}

#[test]
fn an_act_chain_deeper_than_the_limit_is_refused() {
    let mut act = json!({"sub": "last"});
    for i in 0..identity::MAX_ACT_DEPTH {
        act = json!({"sub": format!("actor-{i}"), "act": act});
    }
    let e = identity::from_token_claims(&json!({"sub": "u", "act": act})).unwrap_err();
    assert_eq!(e.kind(), IdentityErrorKind::Value, "{e}");
    let mut act = json!({"sub": "last"});
    for i in 0..identity::MAX_ACT_DEPTH - 1 {
        act = json!({"sub": format!("actor-{i}"), "act": act});
    }
    let p = identity::from_token_claims(&json!({"sub": "u", "act": act})).unwrap();
    assert_eq!(p.delegation.len(), identity::MAX_ACT_DEPTH - 1);
}

#[test]
fn mcp_auth_info_in_both_sdks_shapes() {
    let ts = json!({
        "token": "secret-bearer-token",
        "clientId": "spiffe://acme.example/ns/logistics/sa/router",
        "scopes": ["shipments:reroute"],
        "expiresAt": 1_795_273_200,
        "extra": {"sub": "bob@acme.example", "iss": "https://idp.acme.example", "roles": ["logistics-planner"]}
    });
    let p = identity::from_mcp_auth_info(&ts).unwrap();
    assert_eq!(p.id, "spiffe://acme.example/ns/logistics/sa/router");
    let s = p.on_behalf_of.clone().unwrap();
    assert_eq!(s.id, "bob@acme.example");
    assert_eq!(s.scopes, ["shipments:reroute"]);
    assert_eq!(s.roles, ["logistics-planner"]);
    let c = p.credential.clone().unwrap();
    assert_eq!(c.issuer.as_deref(), Some("https://idp.acme.example"));
    assert_eq!(c.expires_at, Some(t("2026-11-21T15:00:00Z")));
    // The bearer token is not copied anywhere into the request.
    let request = Request::builder("x", "shipment.read")
        .principal(p)
        .build()
        .unwrap();
    assert!(
        !request
            .to_json()
            .to_string()
            .contains("secret-bearer-token")
    );

    let py = json!({"token": "t", "client_id": "router", "scopes": ["a", "b"], "expires_at": null, "resource": null});
    let p = identity::from_mcp_auth_info(&py).unwrap();
    assert_eq!(p.id, "router");
    assert!(p.on_behalf_of.is_none());
    assert!(p.credential.is_none());
    assert_eq!(p.attributes["scopes"], json!(["a", "b"]));
}

#[test]
fn bad_mcp_auth_info_is_named() {
    for (auth, field) in [
        (json!([]), "$"),
        (json!({"scopes": []}), "clientId"),
        (json!({"clientId": ""}), "clientId"),
        (json!({"clientId": "c", "scopes": "a b"}), "scopes"),
        (json!({"clientId": "c", "expiresAt": "soon"}), "expiresAt"),
        (json!({"clientId": "c", "extra": []}), "extra"),
        (json!({"clientId": "c", "extra": {"sub": 3}}), "extra.sub"),
    ] {
        let e = identity::from_mcp_auth_info(&auth).unwrap_err();
        assert_eq!(e.field(), field, "{auth}: {e}");
    }
}

#[test]
fn x509_svid_gives_spiffe_id_and_expiry() {
    let p = identity::from_x509_svid_pem(&pem("svid.pem")).unwrap();
    assert_eq!(p.id, "spiffe://acme.example/ns/finance/sa/payments");
    let c = p.credential.clone().unwrap();
    assert_eq!(c.expires_at, Some(t("2026-11-21T15:00:00Z")));
    assert_eq!(c.issuer.as_deref(), Some("spiffe://acme.example"));
    let der = std::fs::read(testdata("svid.der")).unwrap();
    assert_eq!(identity::from_x509_svid_der(&der).unwrap(), p);
    // A chain: the first certificate is the leaf.
    let chain = format!("{}{}", pem("svid.pem"), pem("svid-2051.pem"));
    assert_eq!(identity::from_x509_svid_pem(&chain).unwrap(), p);
    // GeneralizedTime (years from 2050).
    let p = identity::from_x509_svid_pem(&pem("svid-2051.pem")).unwrap();
    assert_eq!(p.id, "spiffe://acme.example/ns/edge/sa/gateway-7");
    assert_eq!(
        p.credential.unwrap().expires_at,
        Some(t("2051-01-02T03:04:05Z"))
    );
}

#[test]
fn certificates_that_are_not_svids_are_refused() {
    for (name, needle) in [
        ("dns-only.pem", "no URI SAN"),
        ("no-san.pem", "no URI SAN"),
        ("two-uris.pem", "2 URI SANs"),
        ("https-uri.pem", "not a SPIFFE ID"),
    ] {
        let e = identity::from_x509_svid_pem(&pem(name)).unwrap_err();
        assert_eq!(e.kind(), IdentityErrorKind::Certificate, "{name}: {e}");
        assert!(e.message().contains(needle), "{name}: {e}");
    }
    for text in [
        "",
        "hello",
        "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
    ] {
        let e = identity::from_x509_svid_pem(text).unwrap_err();
        assert_eq!(e.kind(), IdentityErrorKind::Certificate, "{e}");
    }
    let huge = "A".repeat(identity::MAX_CERTIFICATE_BYTES + 1);
    assert!(identity::from_x509_svid_pem(&huge).is_err());
}

#[test]
fn every_truncation_or_corruption_of_a_der_svid_is_an_error_not_a_panic() {
    let der = std::fs::read(testdata("svid.der")).unwrap();
    for len in 0..der.len() {
        let e = identity::from_x509_svid_der(&der[..len]).unwrap_err();
        assert_eq!(e.kind(), IdentityErrorKind::Certificate);
    }
    let mut trailing = der.clone();
    trailing.push(0);
    assert!(identity::from_x509_svid_der(&trailing).is_err());
    // Flipping any single byte never panics; it may still parse when the
    // byte is inside a value nobody reads (the key, the signature).
    for i in 0..der.len() {
        let mut bad = der.clone();
        bad[i] ^= 0xff;
        let _ = identity::from_x509_svid_der(&bad);
    }
}

// ---- on-behalf-of deciding in the reference pack ---------------------------------

fn pack() -> Engine {
    Engine::from_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/a2a-supply-chain"
    ))
    .unwrap()
}

/// An invoice read (read-only: no intent, no attestation needed) by the
/// payments agent, acting for the subject in `claims`.
fn invoice_read(claims: &Value) -> Request {
    let principal = identity::from_token_claims(claims).unwrap();
    Request::builder("ignored", "invoice.read")
        .principal(principal)
        .time(t("2026-11-21T14:05:00Z"))
        .resource(Resource::new("invoice").id("INV-88"))
        .build()
        .unwrap()
}

#[test]
fn the_subject_must_be_permitted_too() {
    let engine = pack();
    let agent = json!({"sub": "spiffe://acme.example/ns/finance/sa/payments"});
    let decision = engine.decide(&invoice_read(&agent)).unwrap();
    assert_eq!(decision.outcome, Outcome::Execute, "{decision:?}");

    let with_scope = json!({"sub": "alice@acme.example", "scope": "invoices:read",
        "act": {"sub": "spiffe://acme.example/ns/finance/sa/payments"}});
    let decision = engine.decide(&invoice_read(&with_scope)).unwrap();
    assert_eq!(decision.outcome, Outcome::Execute, "{decision:?}");

    let with_role = json!({"sub": "alice@acme.example", "roles": ["viewer"],
        "act": {"sub": "spiffe://acme.example/ns/finance/sa/payments"}});
    let decision = engine.decide(&invoice_read(&with_role)).unwrap();
    assert_eq!(decision.outcome, Outcome::Execute, "{decision:?}");

    let without = json!({"sub": "mallory@acme.example", "scope": "shipments:read",
        "roles": ["buyer"], "act": {"sub": "spiffe://acme.example/ns/finance/sa/payments"}});
    let decision = engine.decide(&invoice_read(&without)).unwrap();
    assert_eq!(decision.outcome, Outcome::Reject, "{decision:?}");
    assert_eq!(
        decision.policy_ids().collect::<Vec<_>>(),
        ["R15.subject_not_permitted"]
    );
    assert!(decision.reasons[0].message.contains("mallory@acme.example"));
}

/// The cases the Python and Node tests read too: the same answer in every
/// language.
#[test]
fn shared_cases() {
    let cases: Value =
        serde_json_from_file(&testdata("cases.json")).expect("testdata/identity/cases.json");
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 10);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let answer = match case["source"].as_str().unwrap() {
            "token" => identity::principal_json(identity::Source::TokenClaims, &case["input"]),
            "user_token" => {
                identity::principal_json(identity::Source::UserTokenClaims, &case["input"])
            }
            "mcp" => identity::principal_json(identity::Source::McpAuthInfo, &case["input"]),
            "svid" => identity::svid_principal_json(
                &std::fs::read(testdata(case["input"].as_str().unwrap())).unwrap(),
            ),
            other => panic!("{name}: unknown source {other}"),
        };
        if let Some(expected) = case.get("principal") {
            assert_eq!(&answer["principal"], expected, "{name}: {answer}");
        } else {
            let error = &answer["error"];
            assert_eq!(error["kind"], case["error"]["kind"], "{name}: {answer}");
            assert_eq!(error["field"], case["error"]["field"], "{name}: {answer}");
            assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        }
    }
}

fn serde_json_from_file(path: &std::path::Path) -> Option<Value> {
    agentriage::serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}
