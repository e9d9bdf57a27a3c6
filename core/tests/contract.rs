//! The Rust side of the request contract: the on-behalf-of subject as both
//! engines see it, builders, timestamps that refuse typos, a missing
//! resource named as a request error, and the order and marking of reasons.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use agentriage::serde_json::json;
use agentriage::{
    Effect, Engine, Outcome, Principal, Request, RequestErrorKind, Resource, Subject, SubjectKind,
    Timestamp,
};
use common::bundle;

const MANIFEST: &str = r#"
name = "t"
revision = "1"

[risk_classes]
read_only = ["doc.read"]
transactional = ["doc.write"]

[rego]
modules = ["p.rego"]

[cedar]
policies = ["p.cedar"]
"#;

/// Rego and Cedar each read the subject; each rejects a subject without
/// the `docs:write` scope, under its own id.
const REGO: &str = r#"package agentriage
import rego.v1
allow if true
reject contains {"id": "rego.subject_scope", "message": sprintf("%s %s lacks docs:write", [input.principal.on_behalf_of.type, input.principal.on_behalf_of.id])} if {
    input.action.name == "doc.write"
    not "docs:write" in input.principal.on_behalf_of.scopes
}
escalate contains {"id": "rego.on_behalf", "message": "acts for someone"} if input.principal.on_behalf_of
"#;

const CEDAR: &str = r#"
@id("cedar.permit")
permit (principal, action, resource);

@id("cedar.subject_scope")
@reason("the subject lacks docs:write")
forbid (principal, action == Action::"doc.write", resource)
when { context has on_behalf_of && !context.on_behalf_of.scopes.contains("docs:write") };

@id("cedar.admin_subject")
@reason("acting for an admin service")
@outcome("escalate")
forbid (principal, action, resource)
when { context has on_behalf_of && context.on_behalf_of.type == "service" && context.on_behalf_of.roles.contains("admin") };

@id("cedar.reads_resource")
@reason("the document is locked")
forbid (principal, action == Action::"doc.write", resource)
when { resource.locked == true };
"#;

fn engine() -> (tempfile::TempDir, Engine) {
    let dir = bundle(&[
        ("bundle.toml", MANIFEST),
        ("p.rego", REGO),
        ("p.cedar", CEDAR),
    ]);
    let engine = Engine::from_dir(dir.path()).unwrap();
    (dir, engine)
}

fn doc() -> Resource {
    Resource::new("doc").id("d1").attribute("locked", false)
}

#[test]
fn both_engines_see_the_subject() {
    let (_dir, engine) = engine();
    let request = Request::builder("agent-1", "doc.write")
        .resource(doc())
        .on_behalf_of(Subject::new("alice", SubjectKind::User).scope("docs:read"))
        .build()
        .unwrap();
    let d = engine.decide(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    let ids: Vec<_> = d.policy_ids().collect();
    assert_eq!(
        ids,
        [
            "cedar.subject_scope",
            "rego.subject_scope",
            "rego.on_behalf"
        ]
    );
    assert!(d.reasons[1].message.contains("user alice"), "{d:?}");

    let request = Request::builder("agent-1", "doc.write")
        .resource(doc())
        .on_behalf_of(
            Subject::new("svc", SubjectKind::Service)
                .scope("docs:write")
                .role("admin"),
        )
        .build()
        .unwrap();
    let d = engine.decide(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(
        d.policy_ids().collect::<Vec<_>>(),
        ["cedar.admin_subject", "rego.on_behalf"]
    );

    // Without a subject neither rule fires.
    let request = Request::builder("agent-1", "doc.write")
        .resource(doc())
        .build()
        .unwrap();
    assert_eq!(engine.decide(&request).unwrap().outcome, Outcome::Execute);
}

#[test]
fn a_context_entry_cannot_pose_as_the_subject_in_cedar() {
    let (_dir, engine) = engine();
    let d = engine
        .decide_value(&json!({
            "principal": {"id": "agent-1"},
            "action": {"name": "doc.write"},
            "resource": {"type": "doc", "id": "d1", "attributes": {"locked": false}},
            "context": {"on_behalf_of": {"id": "x", "type": "user", "roles": [], "scopes": ["docs:write"]}}
        }))
        .unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
    assert!(
        d.reasons
            .iter()
            .any(|r| r.message.contains("`context.on_behalf_of`")),
        "{d:?}"
    );
}

#[test]
fn the_subject_is_validated_and_named() {
    for (principal, kind, path) in [
        (
            json!({"id": "a", "on_behalf_of": {"type": "user"}}),
            RequestErrorKind::Missing,
            "principal.on_behalf_of.id",
        ),
        (
            json!({"id": "a", "on_behalf_of": {"id": "u"}}),
            RequestErrorKind::Missing,
            "principal.on_behalf_of.type",
        ),
        (
            json!({"id": "a", "on_behalf_of": {"id": "u", "type": "robot"}}),
            RequestErrorKind::Value,
            "principal.on_behalf_of.type",
        ),
        (
            json!({"id": "a", "on_behalf_of": {"id": "u", "type": "user", "scopes": "a b"}}),
            RequestErrorKind::Type,
            "principal.on_behalf_of.scopes",
        ),
        (
            json!({"id": "a", "on_behalf_of": {"id": "u", "type": "user", "roles": [""]}}),
            RequestErrorKind::Missing,
            "principal.on_behalf_of.roles[0]",
        ),
        (
            json!({"id": "a", "on_behalf_of": {"id": "u", "type": "user", "email": "x"}}),
            RequestErrorKind::Unknown,
            "principal.on_behalf_of.email",
        ),
        (
            json!({"id": "a", "on_behalf_of": "alice"}),
            RequestErrorKind::Type,
            "principal.on_behalf_of",
        ),
    ] {
        let e = Request::from_value(&json!({"principal": principal, "action": {"name": "x"}}))
            .unwrap_err();
        assert_eq!((e.kind(), e.path()), (kind, path), "{principal}: {e}");
    }
    // A Rust-built subject is checked the same way.
    let e = Request::builder("a", "x")
        .on_behalf_of(Subject::new("", SubjectKind::User))
        .build()
        .unwrap_err();
    assert_eq!(e.path(), "principal.on_behalf_of.id");
    let e = Request::builder("a", "x")
        .on_behalf_of(Subject::new("u", SubjectKind::User).scope(""))
        .build()
        .unwrap_err();
    assert_eq!(e.path(), "principal.on_behalf_of.scopes[0]");
}

#[test]
fn the_subject_round_trips_through_json() {
    let request = Request::builder("a", "x")
        .on_behalf_of(Subject::new("u", SubjectKind::Service).role("r").scope("s"))
        .build()
        .unwrap();
    let json = request.to_json();
    assert_eq!(
        json["principal"]["on_behalf_of"],
        json!({"id": "u", "type": "service", "roles": ["r"], "scopes": ["s"]})
    );
    assert_eq!(Request::from_value(&json).unwrap(), request);
}

#[test]
fn builders_make_what_json_makes() {
    let built = Request::builder("agent-1", "doc.write")
        .principal(
            Principal::new("agent-1")
                .kind("agent")
                .trust_zone("cloud")
                .role("writer")
                .delegator("agent-0")
                .credential_issuer("spire")
                .credential_expires_at(Timestamp::parse("2026-11-21T14:10:00Z").unwrap())
                .attestation(
                    "verified",
                    Some(Timestamp::parse("2026-11-21T14:00:00Z").unwrap()),
                )
                .attestation_kind("tpm")
                .attribute("team", "docs"),
        )
        .time(Timestamp::parse("2026-11-21T14:05:00Z").unwrap())
        .resource(Resource::new("doc").id("d1").attribute("pages", 3))
        .action_attribute("mode", "append")
        .context("site", "dc-1")
        .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
        .anomaly_score(0.25)
        .intent("a.b.c")
        .build()
        .unwrap();
    let parsed = Request::from_value(&json!({
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "time": "2026-11-21T14:05:00Z",
        "principal": {"id": "agent-1", "type": "agent", "trust_zone": "cloud", "roles": ["writer"],
            "delegation": ["agent-0"], "credential": {"issuer": "spire", "expires_at": "2026-11-21T14:10:00Z"},
            "attestation": {"status": "verified", "kind": "tpm", "verified_at": "2026-11-21T14:00:00Z"},
            "attributes": {"team": "docs"}},
        "action": {"name": "doc.write", "attributes": {"mode": "append"}},
        "resource": {"type": "doc", "id": "d1", "attributes": {"pages": 3}},
        "context": {"site": "dc-1"},
        "anomaly": {"score": 0.25},
        "intent": "a.b.c"
    }))
    .unwrap();
    assert_eq!(built, parsed);
    // `build` validates like `from_value`.
    let e = Request::builder("a", "x")
        .context("facts", 1)
        .build()
        .unwrap_err();
    assert_eq!(e.path(), "context.facts");
    let e = Request::builder("a", "x")
        .anomaly_score(2.0)
        .build()
        .unwrap_err();
    assert_eq!(e.path(), "anomaly.score");
    let e = Request::builder("a", "x")
        .resource(Resource::new(""))
        .build()
        .unwrap_err();
    assert_eq!(e.path(), "resource.type");
}

#[test]
fn a_timestamp_typo_is_an_error_not_now() {
    let e = Timestamp::parse("2026-11-21 14:05").unwrap_err();
    assert_eq!(e.text(), "2026-11-21 14:05");
    assert!(
        e.to_string().contains("is not an RFC 3339 timestamp"),
        "{e}"
    );
    let e = Timestamp::parse("1764611100").unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected an RFC 3339 string (e.g. 2026-11-21T14:05:00Z); got `1764611100` — seconds since epoch?"
    );
    // A number where the contract says time gets the same hint.
    let e = Request::from_value(
        &json!({"time": 1_764_611_100, "principal": {"id": "a"}, "action": {"name": "x"}}),
    )
    .unwrap_err();
    assert_eq!((e.kind(), e.path()), (RequestErrorKind::Type, "time"));
    assert!(
        e.message()
            .contains("got 1764611100 — seconds since epoch?"),
        "{e}"
    );
    assert_eq!(
        Timestamp::from_unix_seconds(1_764_611_100).unwrap(),
        Timestamp::parse("2025-12-01T17:45:00Z").unwrap()
    );
}

#[test]
fn a_policy_reading_a_missing_resource_is_a_request_error_naming_resource() {
    let (_dir, engine) = engine();
    let e = engine
        .decide(&Request::new("agent-1", "doc.write"))
        .unwrap_err();
    let e = e.as_request().expect("a request error");
    assert_eq!(
        (e.kind(), e.path()),
        (RequestErrorKind::Missing, "resource")
    );
    assert!(e.message().contains("`doc.write`"), "{e}");
    assert!(e.message().contains("`cedar.reads_resource`"), "{e}");
    assert!(!e.message().contains("does not exist"), "{e}");
    // An action whose policies do not read the resource decides without one.
    let d = engine.decide(&Request::new("agent-1", "doc.read")).unwrap();
    assert_eq!(d.outcome, Outcome::Execute);
    // A resource that is given but lacks the attribute is not this error: it
    // fails closed as a reject.
    let request = Request::builder("agent-1", "doc.write")
        .resource(Resource::new("doc").id("d1"))
        .build()
        .unwrap();
    let d = engine.decide(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
}

#[test]
fn a_rejected_decision_lists_rejects_first_and_marks_the_rest() {
    let (_dir, engine) = engine();
    let request = Request::builder("agent-1", "doc.write")
        .resource(doc())
        .on_behalf_of(
            Subject::new("svc", SubjectKind::Service)
                .role("admin")
                .scope("docs:read"),
        )
        .build()
        .unwrap();
    let d = engine.decide(&request).unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    let effects: Vec<_> = d.reasons.iter().map(|r| r.effect).collect();
    assert_eq!(
        effects,
        [
            Effect::Reject,
            Effect::Reject,
            Effect::Escalate,
            Effect::Escalate
        ],
        "{d:?}"
    );
    let value: agentriage::Value = agentriage::serde_json::from_str(&d.to_json()).unwrap();
    let effects: Vec<_> = value["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["effect"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(effects, ["reject", "reject", "escalate", "escalate"]);
}
