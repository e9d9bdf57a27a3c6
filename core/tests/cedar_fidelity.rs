//! JSON request values as Cedar values: numbers exactly or not at all, and
//! strings read as extension values where the schema types them so. Every
//! refusal fails the decision closed with a reason naming the JSON path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use agentriage::{Decision, Engine, Outcome, Source};
use common::bundle;
use serde_json::{Value, json};

const MANIFEST: &str = r#"
name = "fidelity"
revision = "1"

[cedar]
policies = ["p.cedar"]
"#;

/// Without a schema: numbers become `Long` or `decimal` by their value.
const NUMBER_POLICIES: &str = r#"
@id("allow") permit (principal, action, resource);

@id("expensive") @reason("the price is over 1000")
forbid (principal, action, resource)
when { resource has price && resource.price.greaterThan(decimal("1000.0")) };

@id("order_limit")
forbid (principal, action, resource)
when { context has order && context.order has total &&
       context.order.total.greaterThan(decimal("50.0")) };

@id("low_score")
forbid (principal, action, resource)
when { principal has score && principal.score.lessThan(decimal("0.5")) };

@id("big_count")
forbid (principal, action, resource)
when { resource has count && resource.count > 1000 };
"#;

fn engine(files: &[(&str, &str)]) -> (tempfile::TempDir, Engine) {
    let dir = bundle(files);
    let engine = Engine::from_dir(dir.path()).unwrap();
    (dir, engine)
}

fn numbers_engine() -> (tempfile::TempDir, Engine) {
    engine(&[("bundle.toml", MANIFEST), ("p.cedar", NUMBER_POLICIES)])
}

/// A request with `patch` merged over a minimal one.
fn request(patch: Value) -> Value {
    let mut base = json!({
        "principal": {"id": "alice"},
        "action": {"name": "buy"},
        "resource": {"type": "item", "id": "i1"}
    });
    common::merge_patch(&mut base, &patch);
    base
}

fn decide(engine: &Engine, patch: Value) -> Decision {
    engine.decide_json(&request(patch).to_string()).unwrap()
}

/// Asserts the decision failed closed on the Cedar side with a reason
/// whose message contains every one of `words`.
fn assert_refused(d: &Decision, words: &[&str]) {
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
    let reason = d
        .reasons
        .iter()
        .find(|r| r.engine == Source::Cedar && r.policy == "error")
        .unwrap_or_else(|| panic!("no cedar error reason in {d:?}"));
    for word in words {
        assert!(reason.message.contains(word), "`{word}` not in {reason:?}");
    }
}

fn policies(d: &Decision) -> Vec<&str> {
    d.policy_ids().collect()
}

#[test]
fn a_fifth_fraction_digit_is_refused_not_rounded() {
    let (_dir, engine) = numbers_engine();
    // Rounded to four digits this would be 1000.0000, under the limit.
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"price": 1000.00004}}}),
    );
    assert_refused(
        &d,
        &[
            "`resource.attributes.price`",
            "1000.00004",
            "four fraction digits",
        ],
    );
    for price in [-1000.00004, 0.00001, 999.99999, 0.1 + 0.2] {
        let d = decide(
            &engine,
            json!({"resource": {"attributes": {"price": price}}}),
        );
        assert_refused(&d, &["`resource.attributes.price`", "four fraction digits"]);
    }
}

#[test]
fn four_digit_decimals_are_exact() {
    let (_dir, engine) = numbers_engine();
    // 1000.1 is not exact in binary, but it is the decimal that was written.
    for price in [1000.0001, 1000.1, 1e3 + 0.5, 99_999_999_999.5] {
        let d = decide(
            &engine,
            json!({"resource": {"attributes": {"price": price}}}),
        );
        assert_eq!(d.outcome, Outcome::Reject, "{price}: {d:?}");
        assert_eq!(policies(&d), ["expensive"], "{price}: {d:?}");
    }
    for price in [999.9999, 0.0001, -0.0001, -99_999_999_999.5] {
        let d = decide(
            &engine,
            json!({"resource": {"attributes": {"price": price}}}),
        );
        assert_eq!(d.outcome, Outcome::Execute, "{price}: {d:?}");
        assert_eq!(policies(&d), ["allow"], "{price}");
    }
}

#[test]
fn numbers_out_of_range_are_refused() {
    let (_dir, engine) = numbers_engine();
    // An integer written beyond 64 bits: the request itself is refused (for
    // both engines).
    for text in ["-9223372036854775809", "99999999999999999999"] {
        let body = format!(
            r#"{{"principal":{{"id":"alice"}},"action":{{"name":"buy"}},"resource":{{"type":"item","id":"i1","attributes":{{"price":{text}}}}}}}"#
        );
        let e = engine.decide_json(&body).unwrap_err();
        assert!(e.to_string().contains("resource.attributes.price"), "{e}");
    }
    let cases = [
        ("1e300", "`Long`"),
        ("18446744073709551615", "`Long`"),
        ("922337203685478.5", "`decimal`"),
        ("-1000000000000000.5", "`decimal`"),
        ("1e-300", "four fraction digits"),
    ];
    for (text, expected) in cases {
        let body = format!(
            r#"{{"principal":{{"id":"alice"}},"action":{{"name":"buy"}},"resource":{{"type":"item","id":"i1","attributes":{{"price":{text}}}}}}}"#
        );
        let d = engine.decide_json(&body).unwrap();
        assert_refused(&d, &["`resource.attributes.price`", expected]);
    }
}

#[test]
fn whole_numbers_stay_long() {
    let (_dir, engine) = numbers_engine();
    // A float that is whole is a `Long`, compared as one.
    for (count, outcome) in [(1000.0, Outcome::Execute), (1001.0, Outcome::Reject)] {
        let d = decide(
            &engine,
            json!({"resource": {"attributes": {"count": count}}}),
        );
        assert_eq!(d.outcome, outcome, "{count}: {d:?}");
    }
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"count": i64::MAX}}}),
    );
    assert_eq!(policies(&d), ["big_count"]);
}

#[test]
fn the_path_is_named_in_context_principal_and_sets() {
    let (_dir, engine) = numbers_engine();
    let d = decide(&engine, json!({"context": {"order": {"total": 50.00001}}}));
    assert_refused(&d, &["`context.order.total`"]);
    let d = decide(&engine, json!({"context": {"order": {"total": 50.0001}}}));
    assert_eq!(policies(&d), ["order_limit"]);
    let d = decide(
        &engine,
        json!({"principal": {"attributes": {"score": 0.49999}}}),
    );
    assert_refused(&d, &["`principal.attributes.score`"]);
    let d = decide(
        &engine,
        json!({"principal": {"attributes": {"score": 0.4999}}}),
    );
    assert_eq!(policies(&d), ["low_score"]);
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"tiers": [1.5, [2.25, 3.00001]]}}}),
    );
    assert_refused(&d, &["`resource.attributes.tiers[1][1]`"]);
}

const SCHEMA: &str = r#"
type Window = { opens: datetime, grace?: duration, label?: String };
type Ctx = {
  when?: datetime, ttl?: duration, source?: ipaddr, window?: Window,
  blocked?: Set<ipaddr>, note?: String,
};
entity Agent { level?: decimal };
entity Resource { "type": String, id: String, price?: decimal, label?: String };
action "buy" appliesTo { principal: Agent, resource: Resource, context: Ctx };
action "other" appliesTo { principal: Agent, resource: Resource };
"#;

const TYPED_POLICIES: &str = r#"
@id("allow") permit (principal, action, resource);

@id("expensive")
forbid (principal, action, resource)
when { resource has price && resource.price.greaterThan(decimal("1000.0")) };

@id("late")
forbid (principal, action == Action::"buy", resource)
when { context has when && context.when > datetime("2026-12-01T00:00:00Z") };

@id("long_ttl")
forbid (principal, action == Action::"buy", resource)
when { context has ttl && context.ttl > duration("1h") };

@id("outside")
forbid (principal, action == Action::"buy", resource)
when { context has source && !context.source.isInRange(ip("10.0.0.0/8")) };

@id("window")
forbid (principal, action == Action::"buy", resource)
when { context has window && context.window.opens < datetime("2026-01-01") &&
       context.window has grace && context.window.grace > duration("0s") };

@id("blocked")
forbid (principal, action == Action::"buy", resource)
when { context has blocked && context.blocked.contains(ip("192.168.0.1")) };

@id("low_level")
forbid (principal, action, resource)
when { principal has level && principal.level.lessThan(decimal("0.5")) };

@id("label")
forbid (principal, action, resource)
when { resource has label && resource.label == "1000.5" };
"#;

const TYPED_MANIFEST: &str = r#"
name = "typed"
revision = "1"

[cedar]
policies = ["p.cedar"]
schema = "s.cedarschema"
"#;

fn typed_engine() -> (tempfile::TempDir, Engine) {
    engine(&[
        ("bundle.toml", TYPED_MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("p.cedar", TYPED_POLICIES),
    ])
}

/// `(patch, policies that fire)`: each string is parsed by the schema's type.
fn typed_cases() -> Vec<(Value, Vec<&'static str>)> {
    vec![
        (
            json!({"resource": {"attributes": {"price": "1000.0001"}}}),
            vec!["expensive"],
        ),
        (
            json!({"resource": {"attributes": {"price": "999.9999"}}}),
            vec!["allow"],
        ),
        // A number with a fraction is that decimal.
        (
            json!({"resource": {"attributes": {"price": 1000.5}}}),
            vec!["expensive"],
        ),
        (
            json!({"resource": {"attributes": {"price": 999.5}}}),
            vec!["allow"],
        ),
        (
            json!({"context": {"when": "2026-12-01T00:00:01Z"}}),
            vec!["late"],
        ),
        (json!({"context": {"when": "2026-11-30"}}), vec!["allow"]),
        (json!({"context": {"ttl": "1h1s"}}), vec!["long_ttl"]),
        (json!({"context": {"ttl": "59m"}}), vec!["allow"]),
        (
            json!({"context": {"source": "192.168.1.1"}}),
            vec!["outside"],
        ),
        (json!({"context": {"source": "10.1.2.3"}}), vec!["allow"]),
        (
            json!({"context": {"window": {"opens": "2025-06-01", "grace": "1m", "label": "x"}}}),
            vec!["window"],
        ),
        (
            json!({"context": {"window": {"opens": "2026-06-01", "grace": "1m"}}}),
            vec!["allow"],
        ),
        (
            json!({"context": {"blocked": ["10.0.0.1", "192.168.0.1"]}}),
            vec!["blocked"],
        ),
        (
            json!({"principal": {"attributes": {"level": "0.25"}}}),
            vec!["low_level"],
        ),
        (
            json!({"principal": {"attributes": {"level": "0.75"}}}),
            vec!["allow"],
        ),
        // Attributes the schema types as strings stay strings.
        (
            json!({"resource": {"attributes": {"label": "1000.5"}}}),
            vec!["label"],
        ),
        // `null` is absent, as everywhere.
        (
            json!({"resource": {"attributes": {"price": null}}, "context": {"when": null}}),
            vec!["allow"],
        ),
    ]
}

#[test]
fn schema_typed_strings_become_extension_values() {
    let (_dir, engine) = typed_engine();
    for (patch, expected) in typed_cases() {
        let d = decide(&engine, patch.clone());
        let outcome = if expected == ["allow"] {
            Outcome::Execute
        } else {
            Outcome::Reject
        };
        assert_eq!(d.outcome, outcome, "{patch}: {d:?}");
        assert_eq!(policies(&d), expected, "{patch}");
    }
}

#[test]
fn invalid_extension_text_is_refused_naming_path_and_type() {
    let (_dir, engine) = typed_engine();
    let cases = [
        (
            json!({"resource": {"attributes": {"price": "1000.00004"}}}),
            ["`resource.attributes.price`", "`decimal`"],
        ),
        (
            json!({"resource": {"attributes": {"price": "cheap"}}}),
            ["`resource.attributes.price`", "`decimal`"],
        ),
        (
            json!({"resource": {"attributes": {"price": 1000.00004}}}),
            ["`resource.attributes.price`", "four fraction digits"],
        ),
        (
            json!({"context": {"when": "yesterday"}}),
            ["`context.when`", "`datetime`"],
        ),
        (
            json!({"context": {"ttl": "2 hours"}}),
            ["`context.ttl`", "`duration`"],
        ),
        (
            json!({"context": {"source": "999.1.1.1"}}),
            ["`context.source`", "`ipaddr`"],
        ),
        (
            json!({"context": {"window": {"opens": "soon"}}}),
            ["`context.window.opens`", "`datetime`"],
        ),
        (
            json!({"context": {"blocked": ["10.0.0.1", "nope"]}}),
            ["`context.blocked[1]`", "`ipaddr`"],
        ),
        (
            json!({"principal": {"attributes": {"level": "high"}}}),
            ["`principal.attributes.level`", "`decimal`"],
        ),
    ];
    for (patch, words) in cases {
        let d = decide(&engine, patch.clone());
        assert_refused(&d, &words);
        assert!(
            d.reasons[0].message.contains("not a valid Cedar")
                || d.reasons[0].message.contains("four fraction digits"),
            "{patch}: {d:?}"
        );
    }
}

#[test]
fn other_json_kinds_for_extension_attributes_are_refused() {
    let (_dir, engine) = typed_engine();
    let cases = [
        // Whole, it is a `Long` to Cedar, which refuses it for a `decimal`.
        (
            json!({"resource": {"attributes": {"price": 999}}}),
            ["`resource.attributes.price`", "whole number", "`decimal`"],
        ),
        (
            json!({"resource": {"attributes": {"price": 1000.0}}}),
            ["`resource.attributes.price`", "whole number", "`decimal`"],
        ),
        (
            json!({"context": {"when": 1_764_547_200}}),
            ["`context.when`", "a number", "`datetime`"],
        ),
        (
            json!({"resource": {"attributes": {"price": true}}}),
            ["`resource.attributes.price`", "a boolean", "`decimal`"],
        ),
        (
            json!({"context": {"source": ["10.0.0.1"]}}),
            ["`context.source`", "an array", "`ipaddr`"],
        ),
        (
            json!({"context": {"ttl": {"hours": 1}}}),
            ["`context.ttl`", "an object", "`duration`"],
        ),
    ];
    for (patch, words) in cases {
        let d = decide(&engine, patch);
        assert_refused(&d, &words);
    }
}

#[test]
fn untyped_places_keep_strings() {
    // Where the schema types a field as a string, a string stays a string.
    // The "other" action declares no context at all: its `note` is left out
    // of what Cedar sees, as every attribute the schema does not declare.
    let (_dir, engine) = engine(&[
        ("bundle.toml", TYPED_MANIFEST),
        ("s.cedarschema", SCHEMA),
        (
            "p.cedar",
            r#"
@id("allow") permit (principal, action, resource);
@id("is_text") forbid (principal, action, resource)
when { context has note && context.note == "2026-12-01" };
"#,
        ),
    ]);
    let d = decide(
        &engine,
        json!({"action": {"name": "other"}, "context": {"note": "2026-12-01"}}),
    );
    assert_eq!(policies(&d), ["allow"]);
    let d = decide(&engine, json!({"context": {"note": "2026-12-01"}}));
    assert_eq!(policies(&d), ["is_text"]);
}

#[test]
fn without_a_schema_strings_stay_strings() {
    // The same typed policies, no schema: `"1000.0001"` is a string, and
    // calling `greaterThan` on it fails the policy, which fails closed.
    let (_dir, engine) = engine(&[("bundle.toml", MANIFEST), ("p.cedar", TYPED_POLICIES)]);
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"price": "1000.0001"}}}),
    );
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
    assert_eq!(policies(&d), ["expensive"]);
    assert!(
        d.reasons[0].message.starts_with("cedar evaluation failed"),
        "{d:?}"
    );
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"label": "1000.5"}}}),
    );
    assert_eq!(policies(&d), ["label"]);
}

#[test]
fn a_json_schema_types_attributes_alike() {
    let schema = json!({"": {
        "entityTypes": {
            "Agent": {},
            "Resource": {"shape": {"type": "Record", "attributes": {
                "type": {"type": "String"},
                "id": {"type": "String"},
                "price": {"type": "Extension", "name": "decimal", "required": false}
            }}}
        },
        "actions": {"buy": {"appliesTo": {
            "principalTypes": ["Agent"],
            "resourceTypes": ["Resource"],
            "context": {"type": "Record", "attributes": {
                "when": {"type": "Extension", "name": "datetime", "required": false}
            }}
        }}}
    }})
    .to_string();
    let (_dir, engine) = engine(&[
        (
            "bundle.toml",
            &TYPED_MANIFEST.replace("s.cedarschema", "s.json"),
        ),
        ("s.json", &schema),
        (
            "p.cedar",
            r#"
@id("allow") permit (principal, action, resource);
@id("expensive") forbid (principal, action, resource)
when { resource has price && resource.price.greaterThan(decimal("1000.0")) };
@id("late") forbid (principal, action, resource)
when { context has when && context.when > datetime("2026-12-01T00:00:00Z") };
"#,
        ),
    ]);
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"price": "1000.5"}}, "context": {"when": "2026-12-02"}}),
    );
    assert_eq!(policies(&d), ["expensive", "late"]);
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"price": "999.5"}}, "context": {"when": "2026-11-02"}}),
    );
    assert_eq!(d.outcome, Outcome::Execute, "{d:?}");
    let d = decide(&engine, json!({"context": {"when": "2026-13-02"}}));
    assert_refused(&d, &["`context.when`", "`datetime`"]);
}

#[test]
fn requests_are_validated_against_the_schema() {
    let (_dir, engine) = typed_engine();
    // A value of the wrong type for a declared field: Cedar refuses the
    // request, so the decision fails closed instead of skipping the policy.
    for (patch, words) in [
        (
            json!({"context": {"note": 7}}),
            &["does not match the schema"][..],
        ),
        (
            json!({"resource": {"attributes": {"label": 5}}}),
            &["do not match the schema"][..],
        ),
        (
            json!({"principal": {"attributes": {"level": true}}}),
            &["principal.attributes.level"][..],
        ),
        (
            json!({"action": {"name": "sell"}}),
            &["`sell` is not declared in the Cedar schema"][..],
        ),
    ] {
        let d = decide(&engine, patch.clone());
        assert_refused(&d, words);
    }
    // Attributes the schema does not declare are not Cedar's to see
    // (strictly validated policies cannot refer to them): left out, and the
    // rest decides as usual.
    for patch in [
        json!({"context": {"undeclared": true, "note": "x"}}),
        json!({"resource": {"attributes": {"value_usd": 5000}}}),
        json!({"principal": {"attributes": {"team": "a"}}}),
    ] {
        let d = decide(&engine, patch.clone());
        assert_eq!(d.outcome, Outcome::Execute, "{patch}: {d:?}");
        assert_eq!(policies(&d), ["allow"], "{patch}");
    }
    // A declared field still decides.
    let d = decide(
        &engine,
        json!({"resource": {"attributes": {"label": "1000.5"}}}),
    );
    assert_eq!(policies(&d), ["label"]);
}

/// The engine's own context fields (`delegation` from the principal's
/// delegation chain) cannot be supplied or replaced by the request's
/// context: a request that tries fails closed, one that does not sees the
/// engine's values.
#[test]
fn the_request_context_cannot_set_the_engines_fields() {
    const POLICIES: &str = r#"
@id("allow") permit (principal, action, resource);

@id("delegated") @reason("delegated more than once")
forbid (principal, action, resource)
when { context.delegation.contains("spiffe://acme.example/ns/a/sa/second") };
"#;
    let (_dir, engine) = engine(&[("bundle.toml", MANIFEST), ("p.cedar", POLICIES)]);
    let chain = json!({"principal": {"delegation": [
        "spiffe://acme.example/ns/a/sa/first",
        "spiffe://acme.example/ns/a/sa/second"
    ]}});
    assert_eq!(policies(&decide(&engine, chain)), vec!["delegated"]);
    assert_eq!(decide(&engine, json!({})).outcome, Outcome::Execute);
    // An empty delegation of the request's own does not hide the chain.
    let posing = json!({
        "principal": {"delegation": ["spiffe://acme.example/ns/a/sa/second"]},
        "context": {"delegation": []}
    });
    assert_refused(&decide(&engine, posing), &["context.delegation"]);
}
