//! OPA builtins in bundles: `io.jwt.*` and `crypto.*` decide as OPA does on
//! tokens made by an independent library (`testdata/jwt/vectors.json`,
//! written by `testdata/jwt/make_vectors.py` with PyJWT and the real OPA),
//! every builtin group regorus provides loads and decides as OPA does, and
//! calls the engine cannot make are refused at load with file and line.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::collections::BTreeMap;

use agentriage::{Bundle, BundleErrorKind, Effect, Engine, Outcome, Source};
use common::bundle;
use serde_json::{Value, json};

fn manifest(evaluator: &str) -> String {
    format!(
        "name = \"t\"\nrevision = \"1\"\n\n[risk_classes]\nread_only = [\"doc.read\"]\n\n[rego]\nmodules = [\"p.rego\"]\nevaluator = \"{evaluator}\"\n"
    )
}

/// A bundle whose only obligation carries `expr`'s value, evaluated by the
/// interpreter.
fn engine_for(expr: &str) -> (tempfile::TempDir, Engine) {
    let policy = format!(
        "package agentriage\nimport rego.v1\nallow if true\nobligations contains {{\"id\": \"result\", \"value\": {expr}}}\n"
    );
    let dir = bundle(&[
        ("bundle.toml", &manifest("interpreter")),
        ("p.rego", &policy),
    ]);
    let engine = Engine::from_dir(dir.path()).unwrap_or_else(|e| panic!("{expr}: {e}"));
    (dir, engine)
}

/// The value of the `result` obligation, or `Err` with the failure reason
/// when the evaluation failed (which must have failed closed).
fn result(engine: &Engine, context: &Value) -> Result<Value, String> {
    let request = json!({
        "principal": {"id": "alice"},
        "action": {"name": "doc.read"},
        "context": context,
    });
    let decision = engine.decide_json(&request.to_string()).unwrap();
    if let Some(failure) = decision
        .reasons
        .iter()
        .find(|r| r.engine == Source::Rego && r.policy == "error")
    {
        assert_ne!(decision.outcome, Outcome::Execute, "{decision:?}");
        assert_eq!(failure.effect, Effect::Reject);
        return Err(failure.message.clone());
    }
    assert_eq!(decision.outcome, Outcome::Execute, "{decision:?}");
    let obligation = decision
        .obligations
        .iter()
        .find(|o| o.id == "result")
        .unwrap_or_else(|| panic!("no result: {decision:?}"));
    Ok(obligation.params["value"].clone())
}

#[test]
fn jwt_and_crypto_builtins_agree_with_opa_on_independent_vectors() {
    let vectors = common::testdata("jwt/vectors.json");
    let cases = vectors["cases"].as_array().unwrap();
    assert!(cases.len() > 250, "{}", cases.len());
    let mut engines: BTreeMap<(String, usize), (tempfile::TempDir, Engine)> = BTreeMap::new();
    let mut checked = 0;
    let mut valid_tokens = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let call = case["call"].as_str().unwrap().to_owned();
        let args = case["args"].as_array().unwrap();
        let engine = &engines
            .entry((call.clone(), args.len()))
            .or_insert_with(|| {
                let params: Vec<String> = (0..args.len())
                    .map(|i| format!("input.context.args[{i}]"))
                    .collect();
                engine_for(&format!("{call}({})", params.join(", ")))
            })
            .1;
        let expected = case.get("agentriage").unwrap_or(&case["opa"]);
        if case.get("agentriage").is_some() {
            // A knowing difference may only ever be an error (fails closed).
            assert_eq!(expected, "<error>", "{name}");
        }
        let got = result(engine, &json!({"args": args}));
        match (expected.as_str(), got) {
            (Some("<error>"), Err(_)) => {}
            (Some("<error>"), Ok(v)) => panic!("{name}: OPA fails, agentriage gives {v}"),
            (_, Err(e)) => panic!("{name}: OPA gives {expected}, agentriage fails: {e}"),
            (_, Ok(v)) => assert_eq!(&v, expected, "{name}"),
        }
        if call == "io.jwt.decode_verify" && expected[0] == true {
            valid_tokens += 1;
        }
        checked += 1;
    }
    assert_eq!(checked, cases.len());
    // The vectors hold valid tokens of every algorithm, not only refusals.
    assert!(valid_tokens >= 40, "{valid_tokens}");
}

#[test]
fn decode_verify_never_answers_valid_for_a_token_that_does_not_verify() {
    let vectors = common::testdata("jwt/vectors.json");
    let (_dir, engine) = engine_for("io.jwt.decode_verify(input.context.token, input.context.c)");
    let mut tampered = 0;
    let mut answered_false = 0;
    for case in vectors["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if case["call"] != "io.jwt.decode_verify" || case["opa"][0] != true {
            continue;
        }
        let token = case["args"][0].as_str().unwrap();
        let constraints = &case["args"][1];
        // Flip every character of the signature in turn, and one of each
        // other section: never valid.
        let (signing_input, signature) = token.rsplit_once('.').unwrap();
        let mut variants = Vec::new();
        for i in (0..signature.len()).step_by(7) {
            let mut s: Vec<u8> = signature.bytes().collect();
            s[i] = if s[i] == b'A' { b'B' } else { b'A' };
            variants.push(format!("{signing_input}.{}", String::from_utf8(s).unwrap()));
        }
        let mut head: Vec<u8> = signing_input.bytes().collect();
        let last = head.len() - 1;
        head[last] = if head[last] == b'A' { b'B' } else { b'A' };
        variants.push(format!("{}.{signature}", String::from_utf8(head).unwrap()));
        variants.push(format!("{signing_input}."));
        for variant in variants {
            if variant == token {
                continue;
            }
            let got = result(&engine, &json!({"token": variant, "c": constraints}));
            if let Ok(v) = &got {
                assert_eq!(v[0], false, "{name}: {variant}");
                answered_false += 1;
            }
            tampered += 1;
        }
    }
    assert!(tampered > 200, "{tampered}");
    // Most alterations still decode: they are refused by the signature
    // check, not merely by a decoding error.
    assert!(
        answered_false * 2 > tampered,
        "{answered_false} of {tampered}"
    );
}

/// Each builtin group: a bundle using it loads and decides as OPA does (the
/// expected values were computed by OPA on the same expressions).
#[test]
fn every_builtin_group_decides_as_opa_does() {
    let cases: &[(&str, Value)] = &[
        ("regex.match(`^a+b$`, \"aaab\")", json!(true)),
        (
            "regex.find_all_string_submatch_n(`a(x*)b`, \"-ab-axxb-\", -1)",
            json!([["ab", ""], ["axxb", "xx"]]),
        ),
        ("regex.replace(\"a-b-c\", \"-\", \"+\")", json!("a+b+c")),
        ("regex.split(\",\", \"a,b\")", json!(["a", "b"])),
        ("regex.is_valid(\"(\")", json!(false)),
        (
            "glob.match(\"*.example.com\", [\".\"], \"api.example.com\")",
            json!(true),
        ),
        (
            "glob.match(\"*.example.com\", [\".\"], \"a.b.example.com\")",
            json!(false),
        ),
        ("glob.quote_meta(\"*.x\")", json!("\\*.x")),
        (
            "time.parse_rfc3339_ns(\"2026-11-21T14:05:00Z\")",
            json!(1_795_269_900_000_000_000_i64),
        ),
        (
            "time.parse_rfc3339_ns(\"2026-11-21T14:05:00.5+02:00\")",
            json!(1_795_262_700_500_000_000_i64),
        ),
        ("time.weekday(1795269900000000000)", json!("Saturday")),
        ("time.clock(1795269900000000000)", json!([14, 5, 0])),
        (
            "time.clock([1795269900000000000, \"Europe/Paris\"])",
            json!([15, 5, 0]),
        ),
        ("time.date(1795269900000000000)", json!([2026, 11, 21])),
        (
            "time.add_date(0, 0, 1, 1)",
            json!(2_764_800_000_000_000_i64),
        ),
        (
            "time.parse_duration_ns(\"1h30m\")",
            json!(5_400_000_000_000_i64),
        ),
        (
            "time.diff(1795269900000000000, 1700000000000000000)",
            json!([3, 0, 6, 15, 51, 40]),
        ),
        (
            "net.cidr_contains(\"10.0.0.0/8\", \"10.1.2.3\")",
            json!(true),
        ),
        (
            "net.cidr_contains(\"10.0.0.0/8\", \"11.1.2.3\")",
            json!(false),
        ),
        (
            "net.cidr_intersects(\"10.0.0.0/8\", \"10.1.0.0/16\")",
            json!(true),
        ),
        ("net.cidr_is_valid(\"10.0.0.0/33\")", json!(false)),
        (
            "net.cidr_expand(\"192.168.0.0/31\")",
            json!(["192.168.0.0", "192.168.0.1"]),
        ),
        (
            "net.cidr_contains_matches([\"10.0.0.0/8\"], [\"10.1.1.1\", \"1.1.1.1\"])",
            json!([[0, 0]]),
        ),
        (
            "net.cidr_contains_matches({\"a\": \"10.0.0.0/8\", \"b\": [\"192.168.0.0/16\", 1]}, {\"x\": \"10.0.0.0/16\", \"y\": \"192.168.1.1\"})",
            json!([["a", "x"], ["b", "y"]]),
        ),
        (
            "net.cidr_contains_matches({\"10.0.0.0/8\"}, [\"10.1.1.1\", [\"10.2.0.0/16\", \"z\"]])",
            json!([["10.0.0.0/8", 0], ["10.0.0.0/8", 1]]),
        ),
        (
            "net.cidr_contains_matches(\"::/0\", \"10.0.0.1\")",
            json!([]),
        ),
        (
            "net.cidr_contains_matches(\"10.0.0.0/8\", \"10.1.1.1\")",
            json!([["10.0.0.0/8", "10.1.1.1"]]),
        ),
        (
            "net.cidr_intersects(\"10.0.0.0/8\", \"fd00::/8\")",
            json!(false),
        ),
        (
            "net.cidr_intersects(\"10.1.2.3/8\", \"10.200.0.0/16\")",
            json!(true),
        ),
        (
            "net.cidr_intersects(\"10.200.0.0/16\", \"10.1.2.3/8\")",
            json!(true),
        ),
        (
            "net.cidr_intersects(\"10.1.0.0/16\", \"10.2.0.0/16\")",
            json!(false),
        ),
        (
            "net.cidr_intersects(\"::ffff:10.0.0.0/104\", \"10.0.0.0/8\")",
            json!(true),
        ),
        (
            "net.cidr_intersects(\"fd00::/8\", \"fdff:1::/32\")",
            json!(true),
        ),
        ("base64.encode(\"agent\")", json!("YWdlbnQ=")),
        ("base64.decode(\"YWdlbnQ=\")", json!("agent")),
        ("base64.is_valid(\"YWdlbnQ\")", json!(false)),
        (
            "base64url.encode_no_pad(\"\\u00ff\\u00fe\")",
            json!("w7_Dvg"),
        ),
        ("hex.encode(\"ab\")", json!("6162")),
        ("hex.decode(\"6162\")", json!("ab")),
        ("semver.compare(\"1.2.3\", \"1.10.0\")", json!(-1)),
        ("semver.is_valid(\"1.2\")", json!(false)),
        (
            "uuid.parse(\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\").version",
            json!(1),
        ),
        ("yaml.unmarshal(\"a: [1, x]\")", json!({"a": [1, "x"]})),
        ("yaml.is_valid(\"a: [\")", json!(false)),
        ("urlquery.encode(\"a b&c\")", json!("a+b%26c")),
        (
            "urlquery.decode_object(\"a=1&a=2&b=x\")",
            json!({"a": ["1", "2"], "b": ["x"]}),
        ),
        ("urlquery.encode_object({\"a\": \"1 2\"})", json!("a=1+2")),
        ("units.parse(\"10K\")", json!(10000)),
        ("units.parse_bytes(\"1KiB\")", json!(1024)),
        ("units.parse(\"100m\")", json!(0.1)),
        (
            "json.patch({\"a\": 1}, [{\"op\": \"add\", \"path\": \"/b\", \"value\": 2}])",
            json!({"a": 1, "b": 2}),
        ),
        (
            "graph.reachable({\"a\": [\"b\"], \"b\": [\"c\"], \"c\": [], \"d\": []}, [\"a\"])",
            json!(["a", "b", "c"]),
        ),
    ];
    for evaluator in ["interpreter", "vm"] {
        let mut policy = String::from("package agentriage\nimport rego.v1\nallow if true\n");
        for (i, (expr, _)) in cases.iter().enumerate() {
            if evaluator == "vm" && is_extension(expr) {
                continue;
            }
            policy.push_str(&format!(
                "obligations contains {{\"id\": \"r{i}\", \"value\": {expr}}}\n"
            ));
        }
        let dir = bundle(&[("bundle.toml", &manifest(evaluator)), ("p.rego", &policy)]);
        let engine = Engine::from_dir(dir.path()).unwrap_or_else(|e| panic!("{evaluator}: {e}"));
        let decision = engine
            .decide_json(r#"{"principal":{"id":"alice"},"action":{"name":"doc.read"}}"#)
            .unwrap();
        assert_eq!(
            decision.outcome,
            Outcome::Execute,
            "{evaluator}: {decision:?}"
        );
        for (i, (expr, want)) in cases.iter().enumerate() {
            if evaluator == "vm" && is_extension(expr) {
                continue;
            }
            let got = decision
                .obligations
                .iter()
                .find(|o| o.id == format!("r{i}"))
                .unwrap_or_else(|| panic!("{evaluator}: {expr} gave no value"));
            assert_eq!(&got.params["value"], want, "{evaluator}: {expr}");
        }
    }
}

/// Builtins of these groups that agentriage adds (interpreter only).
fn is_extension(expr: &str) -> bool {
    expr.starts_with("net.cidr_intersects") || expr.starts_with("net.cidr_contains_matches")
}

fn load_error(evaluator: &str, policy: &str) -> agentriage::BundleError {
    let dir = bundle(&[("bundle.toml", &manifest(evaluator)), ("p.rego", policy)]);
    Bundle::load(dir.path()).expect_err("bundle should not load")
}

#[test]
fn network_builtins_are_refused_at_load_with_file_and_line() {
    for call in [
        "http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1:1\"})",
        "net.lookup_ip_addr(\"example.com\")",
    ] {
        for evaluator in ["interpreter", "vm"] {
            let policy = format!(
                "package agentriage\nimport rego.v1\n\nallow if {{\n  r := {call}\n  r\n}}\n"
            );
            let e = load_error(evaluator, &policy);
            assert_eq!(e.kind(), BundleErrorKind::Rego);
            assert!(e.file().ends_with("p.rego"), "{e}");
            assert_eq!(e.line(), Some(5), "{e}");
            assert!(
                e.message()
                    .contains("a policy decision point does not call the network"),
                "{e}"
            );
        }
    }
    let e = load_error(
        "interpreter",
        "package agentriage\nimport rego.v1\nallow if opa.runtime().env.X == \"1\"\n",
    );
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.message().contains("`opa.runtime` is refused"), "{e}");
}

#[test]
fn unknown_and_missing_builtins_are_named_with_file_and_line() {
    let e = load_error(
        "interpreter",
        "package agentriage\nimport rego.v1\nallow if true\nreject contains \"x\" if frobnicate.now(1) > 0\n",
    );
    assert_eq!(
        (e.kind(), e.line()),
        (BundleErrorKind::Rego, Some(4)),
        "{e}"
    );
    assert!(e.file().ends_with("p.rego"), "{e}");
    assert!(
        e.message().contains("unknown function `frobnicate.now`"),
        "{e}"
    );

    // The output-argument form of a call is not available to extensions.
    let e = load_error(
        "interpreter",
        "package agentriage\nimport rego.v1\nallow if {\n  crypto.sha256(\"x\", h)\n  h != \"\"\n}\n",
    );
    assert_eq!(e.line(), Some(4), "{e}");
    assert!(e.message().contains("takes 1 argument, not 2"), "{e}");

    let e = load_error(
        "interpreter",
        "package agentriage\nimport rego.v1\nallow if crypto.md5(\"x\") == \"y\"\n",
    );
    assert_eq!(e.line(), Some(3), "{e}");
    assert!(e.message().contains("`crypto.md5` is not supported"), "{e}");

    // Inside a comprehension, a default value and a function body.
    for rules in [
        "x := [y | some y in input.a; strings.frob(y)]",
        "default x := nope.nope(1)",
        "f(a) := b if { b := nope.nope(a) }",
    ] {
        let e = load_error(
            "interpreter",
            &format!("package agentriage\nimport rego.v1\nallow if true\n{rules}\n"),
        );
        assert_eq!(e.line(), Some(4), "{rules}: {e}");
        assert!(e.message().contains("unknown function"), "{rules}: {e}");
    }
}

#[test]
fn the_bundles_own_functions_and_imports_are_not_builtins() {
    let dir = bundle(&[
        (
            "bundle.toml",
            &manifest("vm").replace("[\"p.rego\"]", "[\"p.rego\", \"lib.rego\"]"),
        ),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\nimport data.lib\nimport data.lib.strings as s\nallow if { lib.twice(2) == 4; s.up(\"a\") == \"A\"; data.lib.twice(1) == 2; local(1) }\nlocal(x) if x == 1\n",
        ),
        (
            "lib.rego",
            "package lib\nimport rego.v1\ntwice(x) := x * 2\nstrings.up(x) := upper(x)\n",
        ),
    ]);
    let engine = Engine::from_dir(dir.path()).unwrap();
    let d = engine
        .decide_json(r#"{"principal":{"id":"alice"},"action":{"name":"doc.read"}}"#)
        .unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{d:?}");
}

#[test]
fn extensions_under_the_vm_are_refused_naming_the_interpreter() {
    let e = load_error(
        "vm",
        "package agentriage\nimport rego.v1\n\nallow if {\n  [ok, _, _] := io.jwt.decode_verify(input.intent, {\"secret\": \"s\"})\n  ok\n}\n",
    );
    assert_eq!(e.kind(), BundleErrorKind::Rego);
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.message().contains("`io.jwt.decode_verify`"), "{e}");
    assert!(
        e.message().contains("evaluator = \\\"interpreter\\\"")
            || e.message().contains("evaluator = \"interpreter\""),
        "{e}"
    );
    // The same bundle loads on the interpreter.
    let dir = bundle(&[
        ("bundle.toml", &manifest("interpreter")),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\nallow if crypto.sha256(\"abc\") == \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"\n",
        ),
    ]);
    let engine = Engine::from_dir(dir.path()).unwrap();
    let d = engine
        .decide_json(r#"{"principal":{"id":"alice"},"action":{"name":"doc.read"}}"#)
        .unwrap();
    assert_eq!(d.outcome, Outcome::Execute, "{d:?}");
}

#[test]
fn a_failing_extension_fails_the_decision_closed() {
    let (_dir, engine) = engine_for("io.jwt.decode(input.context.token)");
    for token in [json!("not a token"), json!(5), json!("a.b.c")] {
        let e = result(&engine, &json!({"token": token})).unwrap_err();
        assert!(e.contains("io.jwt.decode"), "{e}");
    }
    // A rule that denies when a token does not verify is not bypassed by a
    // malformed token: the evaluation fails, and the decision is reject.
    let dir = bundle(&[
        ("bundle.toml", &manifest("interpreter")),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\nallow if true\nreject contains \"bad token\" if {\n  [ok, _, _] := io.jwt.decode_verify(input.context.token, {\"secret\": \"k\", \"time\": 0})\n  not ok\n}\n",
        ),
    ]);
    let engine = Engine::from_dir(dir.path()).unwrap();
    for token in ["x", "a.b", "%.%.%"] {
        let d = engine
            .decide_json(
                &json!({"principal": {"id": "a"}, "action": {"name": "doc.read"}, "context": {"token": token}})
                    .to_string(),
            )
            .unwrap();
        assert_eq!(d.outcome, Outcome::Reject, "{token}: {d:?}");
    }
}
