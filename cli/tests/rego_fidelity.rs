//! The fail-open classes of docs/fidelity.md through `agentriage eval`: the
//! default evaluator decides each as OPA does (core/tests/rego_fidelity.rs
//! has them on every evaluator).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use serde_json::Value;

/// `(class, rules, resource attributes, context, OPA's outcome)`.
const CASES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "a",
        "allow if true\nok if { v := input.resource.attributes.amount; not is_string(v) }\nreject contains \"a\" if not ok\n",
        "{}",
        "{}",
        "reject",
    ),
    (
        "b",
        "allow if true\nnames := [n | some item in input.context.items; n := item.name]\nall_named if count(names) == count(input.context.items)\nescalate contains \"b\" if not all_named\n",
        "{}",
        r#"{"items": [{"name": "a"}, {"x": 1}]}"#,
        "escalate",
    ),
    (
        "c",
        "allow if true\nok if not is_string(input.resource.attributes.x)\nreject contains \"c\" if not ok\n",
        "{}",
        "{}",
        "reject",
    ),
    (
        "d",
        "allow if true\ntier := \"gold\" if input.resource.attributes.n > 1\ntier := \"silver\" if input.resource.attributes.n > 2\nreject contains \"d\" if tier == \"bronze\"\n",
        r#"{"n": 5}"#,
        "{}",
        "reject",
    ),
    (
        "e",
        "allow if true\nreject contains \"e\" if to_number(input.resource.attributes.s) > 1\n",
        r#"{"s": "abc"}"#,
        "{}",
        "reject",
    ),
    (
        "f",
        "allow if to_number(input.resource.attributes.s) < 10\n",
        r#"{"s": " 7"}"#,
        "{}",
        "reject",
    ),
    (
        "g",
        "allow if true\nreject contains {\"id\": \"g\", \"message\": sprintf(\"%v\", [c.name])} if {\n\tsome c in input.resource.attributes.containers\n\tc.privileged == true\n}\n",
        r#"{"containers": [{"name": "a", "privileged": true}, {"privileged": true}]}"#,
        "{}",
        "reject",
    ),
    (
        "h",
        "price(li) := li.unit_price if is_number(li.unit_price)\ntotal := sum([price(li) | some li in input.resource.attributes.items])\nover_limit if total > 100\nallow if not over_limit\n",
        r#"{"items": [{"unit_price": 5000}, {"unit_price": "n/a"}]}"#,
        "{}",
        "reject",
    ),
];

#[test]
fn every_class_decides_as_opa_through_the_cli() {
    for (class, rules, attributes, context, opa) in CASES {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("bundle.toml"),
            "name = \"f\"\nrevision = \"1\"\n[risk_classes]\ntransactional = [\"doc.write\"]\n[rego]\nmodules = [\"p.rego\"]\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p.rego"),
            format!("package agentriage\nimport rego.v1\n{rules}"),
        )
        .unwrap();
        let request = format!(
            r#"{{"principal":{{"id":"a"}},"action":{{"name":"doc.write"}},"resource":{{"type":"doc","id":"d","attributes":{attributes}}},"context":{context},"time":"2026-11-21T14:05:00Z"}}"#
        );
        let out = support::agentriage(
            &[
                "eval",
                "--bundle",
                dir.path().to_str().unwrap(),
                "--input",
                "-",
            ],
            &request,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let decision: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "class {class}: {e}: {stdout} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(decision["outcome"], *opa, "class {class}: {decision}");
    }
}
