//! JSON text read straight into a [`Request`].
//!
//! The general path parses the text into JSON values and then reads those
//! into a [`Request`] ([`super::parse_request`]): every object of the
//! contract (`principal`, `credential`, `action`, …) becomes a hash map only
//! to be taken apart. This path deserializes the contract's objects into
//! typed structs and builds JSON values only for the free-form maps
//! (`context`, `attributes`).
//!
//! It is a shortcut, never a second set of rules: it takes only requests in
//! the contract's plain shape. Any error at all — a wrong type, an unknown
//! or repeated field, an empty required string, a time that does not parse —
//! returns `None`, and the caller reads the text the general way, which
//! accepts or refuses it with its own error. What it builds is then checked
//! by [`Request::validate`], and the checks `validate` does not repeat (list
//! entries not empty, the subject's type) are made here. Tests compare both
//! paths on every request of the test data and on mutations of them.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

use super::{
    Action, Anomaly, Attestation, Credential, Principal, Request, Resource, Subject, SubjectKind,
    Timestamp,
};

/// A struct read from a JSON object only. A derived `Deserialize` also
/// takes a struct from an array, member by member in declaration order
/// (`"principal": ["a", "agent"]`), which the contract refuses; this reads
/// it from a map or not at all.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members<T>(std::marker::PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Members<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(Members(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    trace_id: Option<String>,
    traceparent: Option<String>,
    time: Option<String>,
    principal: Option<Object<RawPrincipal>>,
    action: Option<Object<RawAction>>,
    resource: Option<Object<RawResource>>,
    context: Option<Map<String, Value>>,
    anomaly: Option<Object<RawAnomaly>>,
    intent: Option<String>,
    approval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrincipal {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    trust_zone: Option<String>,
    roles: Option<Vec<String>>,
    delegation: Option<Vec<String>>,
    credential: Option<Object<RawCredential>>,
    attestation: Option<Object<RawAttestation>>,
    on_behalf_of: Option<Object<RawSubject>>,
    attributes: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    issuer: Option<String>,
    expires_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttestation {
    status: Option<String>,
    kind: Option<String>,
    verified_at: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubject {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    roles: Option<Vec<String>>,
    scopes: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAction {
    name: Option<String>,
    attributes: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResource {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    attributes: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomaly {
    score: Option<f64>,
    features: Option<BTreeMap<String, f64>>,
}

/// A required string: present and not empty.
fn required(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// A list of strings, none of them empty; absent is empty.
fn list(items: Option<Vec<String>>) -> Option<Vec<String>> {
    let items = items.unwrap_or_default();
    items.iter().all(|s| !s.is_empty()).then_some(items)
}

fn time(text: Option<String>) -> Option<Option<Timestamp>> {
    match text {
        None => Some(None),
        Some(t) => Timestamp::parse(&t).ok().map(Some),
    }
}

/// The request in `text`, when this path can read it; `None` sends the
/// caller to the general path. `text` has passed the size and depth checks
/// of [`Request::from_json`] and holds no integer beyond 64 bits.
pub(super) fn from_json(text: &str) -> Option<Request> {
    let Object(raw) = serde_json::from_str::<Object<RawRequest>>(text).ok()?;
    let Object(p) = raw.principal?;
    let Object(action) = raw.action?;
    let mut request = Request::new(required(p.id)?, required(action.name)?);
    request.trace_id = raw.trace_id;
    request.traceparent = raw.traceparent;
    request.time = time(raw.time)?;
    request.principal = Principal {
        id: std::mem::take(&mut request.principal.id),
        kind: p.kind,
        trust_zone: p.trust_zone,
        roles: list(p.roles)?,
        delegation: list(p.delegation)?,
        credential: match p.credential {
            None => None,
            Some(Object(c)) => Some(Credential {
                issuer: c.issuer,
                expires_at: time(c.expires_at)?,
            }),
        },
        attestation: match p.attestation {
            None => None,
            Some(Object(a)) => Some(Attestation {
                status: a.status,
                kind: a.kind,
                verified_at: time(a.verified_at)?,
            }),
        },
        on_behalf_of: match p.on_behalf_of {
            None => None,
            Some(Object(s)) => Some(Subject {
                id: required(s.id)?,
                kind: match required(s.kind)?.as_str() {
                    "user" => SubjectKind::User,
                    "service" => SubjectKind::Service,
                    _ => return None,
                },
                roles: list(s.roles)?,
                scopes: list(s.scopes)?,
            }),
        },
        attributes: p.attributes.unwrap_or_default(),
    };
    request.action = Action {
        name: std::mem::take(&mut request.action.name),
        attributes: action.attributes.unwrap_or_default(),
    };
    request.resource = match raw.resource {
        None => None,
        Some(Object(r)) => Some(Resource {
            kind: required(r.kind)?,
            id: r.id,
            attributes: r.attributes.unwrap_or_default(),
        }),
    };
    request.context = raw.context.unwrap_or_default();
    request.anomaly = raw.anomaly.map(|Object(a)| Anomaly {
        score: a.score,
        features: a.features,
    });
    request.intent = raw.intent;
    request.approval = raw.approval;
    request.validate().ok()?;
    Some(request)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn testdata(name: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata")
            .join(name);
        std::fs::read_to_string(path).unwrap()
    }

    /// Compares the shortcut with the general path on `text`; true when the
    /// shortcut took it.
    fn agree(text: &str) -> bool {
        // As `Request::from_json` does: only text within the limits and
        // without integers beyond 64 bits takes the shortcut.
        if super::super::check_text_depth(text) != Ok(false) {
            return false;
        }
        let Some(typed) = from_json(text) else {
            return false;
        };
        match Request::from_json_values(text, false) {
            Ok(general) => assert_eq!(typed, general, "the paths differ on {text}"),
            Err(e) => panic!("the shortcut accepted what the general path refuses ({e}): {text}"),
        }
        true
    }

    fn full_request() -> Value {
        serde_json::json!({
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "time": "2026-11-21T14:05:00.250Z",
            "principal": {
                "id": "spiffe://acme.example/ns/finance/sa/payments",
                "type": "agent",
                "trust_zone": "cloud",
                "roles": ["payments"],
                "delegation": ["spiffe://acme.example/ns/ops/sa/planner"],
                "credential": {"issuer": "spiffe://acme.example/spire", "expires_at": "2026-11-21T14:10:00Z"},
                "attestation": {"status": "verified", "kind": "tpm", "verified_at": "2026-11-21T14:00:00Z"},
                "on_behalf_of": {"id": "alice@acme.example", "type": "user", "roles": ["buyer"], "scopes": ["payments:release"]},
                "attributes": {"team": "ap", "level": 3}
            },
            "action": {"name": "payment.release", "attributes": {"channel": "sepa"}},
            "resource": {"type": "invoice", "id": "INV-1", "attributes": {"amount_usd": 1200.5, "tags": ["a", {"b": null}]}},
            "context": {"workflow_id": "wf-1", "incident_mode": false, "n": null},
            "anomaly": {"score": 0.25},
            "intent": "a.b.c",
            "approval": "d.e.f"
        })
    }

    fn corpus() -> Vec<Value> {
        let mut out = vec![full_request()];
        let mut features = full_request();
        features["anomaly"] = serde_json::json!({"features": {"amount": 12, "hour": 3.5}});
        out.push(features);
        for line in testdata("requests.jsonl").lines() {
            if let Ok(v) = serde_json::from_str(line) {
                out.push(v);
            }
        }
        out
    }

    /// The JSON path of every value in `value`, containers included.
    fn paths(value: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(at.clone());
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    at.push(k.clone());
                    paths(v, at, out);
                    at.pop();
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    at.push(i.to_string());
                    paths(v, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }

    fn at<'v>(value: &'v mut Value, path: &[String]) -> &'v mut Value {
        path.iter().fold(value, |v, step| match v {
            Value::Array(items) => &mut items[step.parse::<usize>().unwrap()],
            other => &mut other[step.as_str()],
        })
    }

    /// Member names of the contract's objects below the top level (the top
    /// level's are `TOP_LEVEL_FIELDS`), and two that are none.
    const INNER_NAMES: &[&str] = &[
        "id",
        "type",
        "trust_zone",
        "roles",
        "delegation",
        "credential",
        "attestation",
        "on_behalf_of",
        "attributes",
        "issuer",
        "expires_at",
        "status",
        "kind",
        "verified_at",
        "name",
        "score",
        "features",
        "scopes",
        "unknown",
        "facts",
    ];

    fn names() -> impl Iterator<Item = &'static str> {
        super::super::TOP_LEVEL_FIELDS
            .iter()
            .chain(INNER_NAMES)
            .copied()
    }

    fn replacements() -> Vec<Value> {
        serde_json::json!([
            null, "", "x", "2026-11-21T14:05:00Z", "2026-11-21T14:05:00",
            "4bf92f3577b34da6a3ce929d0e0e4736", "user", "service", "facts", 0, 1, -1, 0.5,
            1.5, 18446744073709551615u64, -9223372036854775808i64, 1e300, true, false, [],
            ["a"], [""], ["a", 1], [null], {}, {"a": 1}, {"facts": 1}, {"id": "x"},
            ["spiffe://a", "agent"], [[]], {"type": "user", "id": "x"}
        ])
        .as_array()
        .unwrap()
        .clone()
    }

    #[test]
    fn the_shortcut_takes_plain_requests() {
        for request in corpus() {
            let text = request.to_string();
            if Request::from_json_values(&text, false).is_ok() {
                assert!(agree(&text), "went the general way: {text}");
            }
        }
    }

    #[test]
    fn both_paths_agree_on_the_invalid_requests() {
        let invalid: Value = serde_json::from_str(&testdata("invalid-requests.json")).unwrap();
        for case in invalid["cases"].as_array().unwrap() {
            let text = match (&case["text"], &case["request"]) {
                (Value::String(t), _) => t.clone(),
                (_, request) => request.to_string(),
            };
            assert!(!agree(&text), "the shortcut took {}", case["name"]);
        }
    }

    #[test]
    fn both_paths_agree_on_every_field_set_removed_or_added() {
        let values = replacements();
        let mut seen = 0;
        for request in corpus() {
            let mut all = Vec::new();
            paths(&request, &mut Vec::new(), &mut all);
            for path in &all {
                for value in &values {
                    let mut changed = request.clone();
                    *at(&mut changed, path) = value.clone();
                    agree(&changed.to_string());
                    seen += 1;
                }
                if let Some((last, parent)) = path.split_last() {
                    let mut changed = request.clone();
                    match at(&mut changed, parent) {
                        Value::Object(map) => {
                            map.shift_remove(last);
                        }
                        Value::Array(items) => {
                            items.remove(last.parse::<usize>().unwrap());
                        }
                        _ => {}
                    }
                    agree(&changed.to_string());
                }
                let target = at(&mut request.clone(), path).clone();
                if let Value::Object(map) = target {
                    // The object as an array of its values, in order: a
                    // derived struct would read it member by member.
                    let mut changed = request.clone();
                    *at(&mut changed, path) = Value::Array(map.values().cloned().collect());
                    agree(&changed.to_string());
                    for name in names() {
                        for value in &values {
                            let mut changed = request.clone();
                            if let Value::Object(m) = at(&mut changed, path) {
                                m.insert(name.to_owned(), value.clone());
                            }
                            agree(&changed.to_string());
                            seen += 1;
                        }
                    }
                }
            }
        }
        assert!(seen > 10_000, "{seen}");
    }

    #[test]
    fn repeated_members_and_odd_text_agree() {
        let base = full_request().to_string();
        // Each member of the contract's objects repeated (the general path
        // keeps the last; a derived struct refuses a repeat).
        for name in names() {
            let needle = format!("\"{name}\":");
            let mut from = 0;
            while let Some(i) = base[from..].find(&needle) {
                let start = from + i;
                let text = format!("{}\"{name}\":\"dup\",{}", &base[..start], &base[start..]);
                agree(&text);
                let text = format!("{}\"{name}\":null,{}", &base[..start], &base[start..]);
                agree(&text);
                from = start + needle.len();
            }
        }
        for text in [
            "[]",
            "null",
            "{}",
            r#"{"principal":{"id":"a"},"action":{"name":"x"}}"#,
            r#"{"principal":{"id":"a"},"action":{"name":"x"},"context":{"a":1,"a":2}}"#,
            r#"{"principal":{"id":"a"},"action":{"name":"x"},"anomaly":{"features":{"f":1,"f":2}}}"#,
            r#"{"principal":{"id":"a\u0000"},"action":{"name":"x\ud83d\ude00"}}"#,
            r#"{"principal":{"id":"a"},"action":{"name":"x"},"anomaly":{"score":1e400}}"#,
            r#"{"principal":{"id":"a"},"action":{"name":"x"},"context":{"big":123456789012345678901234567890}}"#,
            r#" {"principal":{"id":"a"},"action":{"name":"x"}} "#,
            r#"{"principal":{"id":"a"},"action":{"name":"x"}} {}"#,
        ] {
            agree(text);
        }
        assert!(agree(
            r#"{"principal":{"id":"a"},"action":{"name":"x"},"context":{"a":1,"a":2}}"#
        ));
    }
}
