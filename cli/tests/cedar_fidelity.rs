//! `agentriage eval` on Cedar bundles: numbers Cedar cannot hold exactly and
//! invalid schema-typed extension values fail closed, naming the JSON path;
//! valid ones decide as Cedar does.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;
use support::agentriage;

use serde_json::Value;

const MANIFEST: &str = r#"
name = "fidelity"
revision = "1"

[cedar]
policies = ["p.cedar"]
schema = "s.cedarschema"
"#;

const SCHEMA: &str = r#"
type Ctx = { when?: datetime, ttl?: duration, source?: ipaddr };
entity Agent;
entity Resource { "type": String, id: String, price?: decimal, weight?: decimal };
action "buy" appliesTo { principal: Agent, resource: Resource, context: Ctx };
"#;

const POLICIES: &str = r#"
@id("allow") permit (principal, action, resource);

@id("expensive")
forbid (principal, action, resource)
when { resource has price && resource.price.greaterThan(decimal("1000.0")) };

@id("late")
forbid (principal, action, resource)
when { context has when && context.when > datetime("2026-12-01T00:00:00Z") };

@id("long_ttl")
forbid (principal, action, resource)
when { context has ttl && context.ttl > duration("1h") };

@id("outside")
forbid (principal, action, resource)
when { context has source && !context.source.isInRange(ip("10.0.0.0/8")) };
"#;

fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn request(resource: &str, context: &str) -> String {
    format!(
        r#"{{"principal":{{"id":"alice"}},"action":{{"name":"buy"}},"resource":{{"type":"item","id":"i1","attributes":{resource}}},"context":{context}}}"#
    )
}

/// Runs `eval` over `requests` (one per line) and returns the decisions.
fn eval(dir: &tempfile::TempDir, requests: &[String]) -> Vec<Value> {
    let bundle = dir.path().display().to_string();
    let out = agentriage(&["eval", "--bundle", &bundle], &requests.join("\n"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), requests.len());
    decisions
}

fn policies(d: &Value) -> Vec<&str> {
    d["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect()
}

fn assert_refused(d: &Value, words: &[&str]) {
    assert_eq!(d["outcome"], "reject", "{d}");
    assert_eq!(policies(d), ["error"], "{d}");
    assert_eq!(d["reasons"][0]["engine"], "cedar", "{d}");
    let message = d["reasons"][0]["message"].as_str().unwrap();
    for word in words {
        assert!(message.contains(word), "`{word}` not in {message}");
    }
}

#[test]
fn inexact_numbers_are_refused_through_the_cli() {
    // No schema: numbers become Long or decimal by their value.
    let dir = bundle(&[
        (
            "bundle.toml",
            &MANIFEST.replace("schema = \"s.cedarschema\"\n", ""),
        ),
        ("p.cedar", POLICIES),
    ]);
    let decisions = eval(
        &dir,
        &[
            request(r#"{"price": 1000.00004}"#, "{}"),
            request(r#"{"price": 1000.0001}"#, "{}"),
            request(r#"{"price": 999.9999}"#, "{}"),
            request(r#"{"price": 1e300}"#, "{}"),
            request(r#"{"price": 18446744073709551615}"#, "{}"),
            request(r#"{"weight": [1.5, 0.00001]}"#, "{}"),
        ],
    );
    assert_refused(
        &decisions[0],
        &["`resource.attributes.price`", "four fraction digits"],
    );
    assert_eq!(policies(&decisions[1]), ["expensive"]);
    assert_eq!(decisions[2]["outcome"], "execute");
    assert_refused(&decisions[3], &["`resource.attributes.price`", "`Long`"]);
    assert_refused(&decisions[4], &["`resource.attributes.price`", "`Long`"]);
    assert_refused(&decisions[5], &["`resource.attributes.weight[1]`"]);
}

#[test]
fn schema_typed_strings_are_parsed_through_the_cli() {
    let dir = bundle(&[
        ("bundle.toml", MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("p.cedar", POLICIES),
    ]);
    let decisions = eval(
        &dir,
        &[
            request(r#"{"price": "1000.0001"}"#, "{}"),
            request(r#"{"price": "999.9999"}"#, "{}"),
            request(r#"{"price": 1000.5}"#, "{}"),
            request("{}", r#"{"when": "2026-12-01T00:00:01Z"}"#),
            request("{}", r#"{"ttl": "2h"}"#),
            request("{}", r#"{"source": "192.168.0.1"}"#),
            request(
                "{}",
                r#"{"when": "2026-11-01", "ttl": "30m", "source": "10.0.0.1"}"#,
            ),
            request(r#"{"price": "1000.00004"}"#, "{}"),
            request("{}", r#"{"when": "tomorrow"}"#),
            request("{}", r#"{"ttl": 3600}"#),
            request("{}", r#"{"source": "10.0.0.256"}"#),
            request(r#"{"price": 999}"#, "{}"),
        ],
    );
    assert_eq!(policies(&decisions[0]), ["expensive"]);
    assert_eq!(decisions[1]["outcome"], "execute");
    assert_eq!(policies(&decisions[2]), ["expensive"]);
    assert_eq!(policies(&decisions[3]), ["late"]);
    assert_eq!(policies(&decisions[4]), ["long_ttl"]);
    assert_eq!(policies(&decisions[5]), ["outside"]);
    assert_eq!(decisions[6]["outcome"], "execute", "{}", decisions[6]);
    assert_refused(&decisions[7], &["`resource.attributes.price`", "`decimal`"]);
    assert_refused(&decisions[8], &["`context.when`", "`datetime`"]);
    assert_refused(&decisions[9], &["`context.ttl`", "a number", "`duration`"]);
    assert_refused(&decisions[10], &["`context.source`", "`ipaddr`"]);
    assert_refused(
        &decisions[11],
        &["`resource.attributes.price`", "whole number", "`decimal`"],
    );
}
