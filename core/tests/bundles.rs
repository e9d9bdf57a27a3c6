//! Loading bundles: every failure names the file and line; evaluation
//! failures fail closed.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use agentriage::{Bundle, BundleErrorKind, Effect, Engine, Outcome, Source};
use common::bundle;

const MANIFEST: &str = r#"
name = "t"
revision = "1"

[risk_classes]
read_only = ["doc.read"]
transactional = ["doc.write"]

[rego]
modules = ["p.rego"]
"#;

const ALLOW_ALL: &str = "package agentriage\nimport rego.v1\nallow if true\n";

fn load_err(files: &[(&str, &str)]) -> agentriage::BundleError {
    let dir = bundle(files);
    Bundle::load(dir.path()).expect_err("bundle should not load")
}

fn engine(files: &[(&str, &str)]) -> (tempfile::TempDir, Engine) {
    let dir = bundle(files);
    let engine = Engine::from_dir(dir.path()).unwrap();
    (dir, engine)
}

fn decide(engine: &Engine, action: &str) -> agentriage::Decision {
    engine
        .decide_json(&format!(
            r#"{{"principal":{{"id":"alice"}},"action":{{"name":"{action}"}},"resource":{{"type":"doc","id":"d1","attributes":{{"owner":"bob"}}}}}}"#
        ))
        .unwrap()
}

#[test]
fn missing_manifest_is_an_io_error() {
    let e = load_err(&[("p.rego", ALLOW_ALL)]);
    assert_eq!(e.kind(), BundleErrorKind::Io);
    assert!(e.file().ends_with("bundle.toml"), "{e}");
}

#[test]
fn a_missing_file_names_the_manifest_line() {
    let e = load_err(&[("bundle.toml", MANIFEST)]);
    assert_eq!(e.kind(), BundleErrorKind::Io);
    assert!(e.file().ends_with("bundle.toml"));
    assert_eq!(e.line(), Some(10), "{e}");
    assert!(e.message().contains("`p.rego` does not exist"), "{e}");
}

#[test]
fn paths_leaving_the_bundle_are_refused() {
    let manifest = MANIFEST.replace("\"p.rego\"", "\"../p.rego\"");
    let e = load_err(&[("bundle.toml", &manifest), ("p.rego", ALLOW_ALL)]);
    assert_eq!(e.kind(), BundleErrorKind::Manifest);
    assert!(e.message().contains("inside the bundle"), "{e}");
}

#[test]
fn manifest_syntax_and_unknown_keys_name_the_line() {
    let e = load_err(&[
        ("bundle.toml", "name = \"t\"\nrevision = \n"),
        ("p.rego", ALLOW_ALL),
    ]);
    assert_eq!(
        (e.kind(), e.line()),
        (BundleErrorKind::Manifest, Some(2)),
        "{e}"
    );
    let e = load_err(&[
        (
            "bundle.toml",
            &format!("{MANIFEST}\n[cedar]\npolicy = []\n"),
        ),
        ("p.rego", ALLOW_ALL),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Manifest);
    assert!(e.message().contains("policy"), "{e}");
    assert!(e.line().is_some(), "{e}");
}

#[test]
fn a_default_of_execute_is_refused() {
    let manifest = MANIFEST.replace(
        "revision = \"1\"",
        "revision = \"1\"\n[defaults]\nno_permit = \"execute\"",
    );
    let e = load_err(&[("bundle.toml", &manifest), ("p.rego", ALLOW_ALL)]);
    assert_eq!(e.kind(), BundleErrorKind::Manifest);
    assert_eq!(e.line(), Some(5), "{e}");
    assert!(e.message().contains("fail open"), "{e}");
}

#[test]
fn an_action_in_two_risk_classes_is_refused() {
    let manifest = MANIFEST.replace("[\"doc.write\"]", "[\"doc.write\", \"doc.read\"]");
    let e = load_err(&[("bundle.toml", &manifest), ("p.rego", ALLOW_ALL)]);
    assert!(e.message().contains("`doc.read`"), "{e}");
    assert_eq!(e.line(), Some(7), "{e}");
}

#[test]
fn rego_parse_errors_name_file_and_line() {
    let e = load_err(&[
        ("bundle.toml", MANIFEST),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\n\nallow if {\n  input.x ==\n}\n",
        ),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Rego);
    assert!(e.file().ends_with("p.rego"), "{e}");
    assert!(matches!(e.line(), Some(5 | 6)), "{e}");
    // The location is printed once, by the error itself: not again by
    // regorus's `--> p.rego:LINE:COL` line inside the message.
    let text = e.to_string();
    assert_eq!(text.matches("p.rego").count(), 1, "{text}");
    assert!(!e.message().contains("-->"), "{text}");
    assert!(!e.message().starts_with("error:"), "{text}");
    assert!(e.message().contains("(column "), "{text}");
    // The source excerpt and its caret stay.
    assert!(e.message().contains('^'), "{text}");
}

#[test]
fn invalid_data_is_refused() {
    let manifest = MANIFEST.replace(
        "modules = [\"p.rego\"]",
        "modules = [\"p.rego\"]\ndata = [\"d.json\"]",
    );
    let e = load_err(&[
        ("bundle.toml", &manifest),
        ("p.rego", ALLOW_ALL),
        ("d.json", "[1, 2]"),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Data);
    assert!(e.file().ends_with("d.json"), "{e}");
    let e = load_err(&[
        ("bundle.toml", &manifest),
        ("p.rego", ALLOW_ALL),
        ("d.json", "{nope"),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Data);
}

const CEDAR_MANIFEST: &str = r#"
name = "c"
revision = "2"

[risk_classes]
read_only = ["doc.read"]
transactional = ["doc.write"]

[cedar]
policies = ["p.cedar"]
schema = "s.cedarschema"
entities = ["e.json"]
"#;

const SCHEMA: &str = r#"
type Facts = { risk_class: String, time: datetime, time_unix: Long, hour_utc: Long,
               credential_ttl_s?: Long, attestation_age_s?: Long, anomaly_score?: decimal };
type Ctx = { facts: Facts, delegation: Set<String> };
entity Role;
entity Agent in [Role] { team?: String };
entity Resource { "type": String, id: String, owner?: String };
action "doc.read", "doc.write" appliesTo { principal: Agent, resource: Resource, context: Ctx };
"#;

const ENTITIES: &str = r#"[
  {"uid": {"type": "Role", "id": "writer"}, "attrs": {}, "parents": []},
  {"uid": {"type": "Agent", "id": "alice"}, "attrs": {"team": "a"}, "parents": [{"type": "Role", "id": "writer"}]}
]"#;

#[test]
fn cedar_parse_errors_name_file_and_line() {
    let e = load_err(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("e.json", ENTITIES),
        (
            "p.cedar",
            "permit (principal, action, resource);\n\nforbid (principal, action resource);\n",
        ),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Cedar);
    assert!(e.file().ends_with("p.cedar"), "{e}");
    assert_eq!(e.line(), Some(3), "{e}");
}

#[test]
fn schema_validation_errors_name_file_and_line() {
    let e = load_err(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("e.json", ENTITIES),
        (
            "p.cedar",
            "@id(\"ok\")\npermit (principal, action, resource);\n\n@id(\"bad\")\nforbid (principal, action, resource)\nwhen { resource.colour == \"red\" };\n",
        ),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Validation);
    assert!(e.file().ends_with("p.cedar"), "{e}");
    assert_eq!(e.line(), Some(6), "{e}");
    assert!(e.message().contains("`bad`"), "{e}");
}

#[test]
fn invalid_schema_and_entities_are_refused() {
    let e = load_err(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", "entity Agent {\n  team: Strin\n};\n"),
        ("e.json", "[]"),
        ("p.cedar", "permit (principal, action, resource);"),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Cedar);
    assert!(e.file().ends_with("s.cedarschema"), "{e}");
    let e = load_err(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", SCHEMA),
        (
            "e.json",
            r#"[{"uid": {"type": "Agent", "id": "x"}, "attrs": {"team": 3}, "parents": []}]"#,
        ),
        ("p.cedar", "permit (principal, action, resource);"),
    ]);
    assert_eq!(e.kind(), BundleErrorKind::Data);
    assert!(e.file().ends_with("e.json"), "{e}");
}

#[test]
fn annotations_are_checked() {
    let base = [
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("e.json", ENTITIES),
    ];
    let mut files = base.to_vec();
    files.push((
        "p.cedar",
        "@outcome(\"escalate\")\npermit (principal, action, resource);",
    ));
    assert!(
        load_err(&files)
            .message()
            .contains("`forbid` policies only")
    );
    let mut files = base.to_vec();
    files.push((
        "p.cedar",
        "@outcome(\"maybe\")\nforbid (principal, action, resource);",
    ));
    assert!(load_err(&files).message().contains("maybe"));
    let mut files = base.to_vec();
    files.push((
        "p.cedar",
        "@id(\"x\")\npermit (principal, action, resource);\n@id(\"x\")\nforbid (principal, action, resource);",
    ));
    let e = load_err(&files);
    assert!(e.message().contains("more than one policy"), "{e}");
}

#[test]
fn cedar_roles_from_entities_escalation_and_obligations() {
    let (_dir, engine) = engine(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("e.json", ENTITIES),
        (
            "p.cedar",
            r#"
@id("read") permit (principal, action == Action::"doc.read", resource);
@id("write") @obligation("audit-write")
permit (principal in Role::"writer", action == Action::"doc.write", resource);
@id("foreign") @outcome("escalate") @reason("writing someone else's document")
forbid (principal, action == Action::"doc.write", resource)
when { resource has owner && resource.owner != "alice" };
"#,
        ),
    ]);
    let d = decide(&engine, "doc.read");
    assert_eq!(d.outcome, Outcome::Execute);
    assert_eq!(d.policy_ids().collect::<Vec<_>>(), ["read"]);
    let d = decide(&engine, "doc.write");
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(d.reasons[0].message, "writing someone else's document");
    assert_eq!(d.reasons[0].engine, Source::Cedar);
    // Bob is not a writer in the bundle's entities: default reject.
    let d = engine
        .decide_json(r#"{"principal":{"id":"bob","roles":["writer"]},"action":{"name":"doc.write"},"resource":{"type":"doc","id":"d2","attributes":{"owner":"alice"}}}"#)
        .unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(d.policy_ids().collect::<Vec<_>>(), ["default"]);
    // Alice writing her own document: permitted, with the obligation.
    let d = engine
        .decide_json(r#"{"principal":{"id":"alice","attributes":{"team":"evil"}},"action":{"name":"doc.write"},"resource":{"type":"doc","id":"d2","attributes":{"owner":"alice"}}}"#)
        .unwrap();
    assert_eq!(d.outcome, Outcome::Execute);
    assert_eq!(d.obligations.len(), 1);
    assert_eq!(d.obligations[0].id, "audit-write");
}

#[test]
fn entities_in_the_bundle_are_not_overridden_by_the_request() {
    let (_dir, engine) = engine(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("s.cedarschema", SCHEMA),
        ("e.json", ENTITIES),
        (
            "p.cedar",
            "@id(\"team-a\") permit (principal, action, resource) when { principal has team && principal.team == \"a\" };",
        ),
    ]);
    let req = |id: &str| {
        format!(
            r#"{{"principal":{{"id":"{id}","attributes":{{"team":"a"}}}},"action":{{"name":"doc.read"}}}}"#
        )
    };
    // `carol` is not in the bundle: her request attributes are used.
    assert_eq!(
        engine.decide_json(&req("carol")).unwrap().outcome,
        Outcome::Execute
    );
    // `alice` is: the bundle's attributes win (team "a" there too).
    assert_eq!(
        engine.decide_json(&req("alice")).unwrap().outcome,
        Outcome::Execute
    );
    let evil =
        r#"{"principal":{"id":"alice","attributes":{"team":"b"}},"action":{"name":"doc.read"}}"#;
    assert_eq!(engine.decide_json(evil).unwrap().outcome, Outcome::Execute);
}

const STRICT_MANIFEST: &str = r#"
name = "t"
revision = "1"

[risk_classes]
read_only = ["doc.read"]
transactional = ["doc.write"]

[rego]
modules = ["p.rego"]
evaluator = "interpreter"
"#;

#[test]
fn rego_runtime_errors_fail_closed_with_the_interpreter() {
    let (_dir, engine) = engine(&[
        ("bundle.toml", STRICT_MANIFEST),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\nallow if true\nx := 1 if input.action.name == \"doc.write\"\nx := 2 if input.action.name == \"doc.write\"\nreject contains \"x\" if x == 3\n",
        ),
    ]);
    assert_eq!(decide(&engine, "doc.read").outcome, Outcome::Execute);
    let d = decide(&engine, "doc.write");
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(d.reasons[0].engine, Source::Rego);
    assert_eq!(d.reasons[0].policy, "error");
    assert!(
        d.reasons[0].message.contains("rego evaluation failed"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn an_unknown_evaluator_is_refused() {
    let manifest = MANIFEST.replace(
        "modules = [\"p.rego\"]",
        "modules = [\"p.rego\"]\nevaluator = \"jit\"",
    );
    let e = load_err(&[("bundle.toml", &manifest), ("p.rego", ALLOW_ALL)]);
    assert_eq!(
        (e.kind(), e.line()),
        (BundleErrorKind::Manifest, Some(11)),
        "{e}"
    );
    assert!(e.message().contains("`jit`"), "{e}");
}

#[test]
fn runaway_rego_hits_the_instruction_limit_and_fails_closed() {
    // The instruction budget is the VM's; the interpreter (the default) has
    // the wall-clock budget, which both evaluators honour.
    for (limit, evaluator, expected) in [
        ("max_instructions = 5000", "vm", "instruction limit"),
        ("max_eval_ms = 50", "interpreter", "time limit"),
    ] {
        let manifest = MANIFEST.replace(
            "modules = [\"p.rego\"]",
            &format!("modules = [\"p.rego\"]\n{limit}\nevaluator = \"{evaluator}\""),
        );
        let (_dir, engine) = engine(&[
            ("bundle.toml", &manifest),
            (
                "p.rego",
                "package agentriage\nimport rego.v1\nallow if true\nreject contains n if { some n in numbers.range(1, 100000); n < 0 }\n",
            ),
        ]);
        let d = decide(&engine, "doc.read");
        assert_eq!(d.outcome, Outcome::Reject);
        assert!(
            d.reasons[0].message.contains(expected),
            "{evaluator}: {:?}",
            d.reasons
        );
    }
}

#[test]
fn on_error_escalate_is_honoured_but_never_executes() {
    let manifest = STRICT_MANIFEST.replace(
        "revision = \"1\"",
        "revision = \"1\"\n[defaults]\non_error = \"escalate\"\nno_permit = \"escalate\"",
    );
    let (_dir, engine) = engine(&[
        ("bundle.toml", &manifest),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\nallow if 1 / count(input.principal.roles) > 0\n",
        ),
    ]);
    let d = decide(&engine, "doc.read");
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(d.reasons[0].effect, Effect::Escalate);
    let (_dir2, engine) = engine_with_nothing_permitting(&manifest);
    let d = decide(&engine, "doc.read");
    assert_eq!(d.outcome, Outcome::Escalate);
    assert_eq!(d.reasons[0].policy, "default");
}

fn engine_with_nothing_permitting(manifest: &str) -> (tempfile::TempDir, Engine) {
    engine(&[
        ("bundle.toml", manifest),
        (
            "p.rego",
            "package agentriage\nimport rego.v1\nallow if false\n",
        ),
    ])
}

#[test]
fn cedar_evaluation_errors_fail_closed() {
    let manifest = CEDAR_MANIFEST.replace("schema = \"s.cedarschema\"\n", "");
    let (_dir, engine) = engine(&[
        ("bundle.toml", &manifest),
        ("e.json", "[]"),
        (
            "p.cedar",
            "@id(\"all\") permit (principal, action, resource);\n@id(\"needs-level\") forbid (principal, action, resource) when { resource.level > 3 };\n",
        ),
    ]);
    let d = decide(&engine, "doc.read");
    assert_eq!(d.outcome, Outcome::Reject);
    assert_eq!(d.reasons[0].policy, "needs-level");
    assert!(
        d.reasons[0].message.contains("cedar evaluation failed"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn values_cedar_cannot_hold_fail_closed() {
    let manifest = CEDAR_MANIFEST.replace("schema = \"s.cedarschema\"\n", "");
    let (_dir, engine) = engine(&[
        ("bundle.toml", &manifest),
        ("e.json", "[]"),
        ("p.cedar", "permit (principal, action, resource);"),
    ]);
    // An integer written beyond 64 bits is refused with the request, for
    // both engines (it would reach them rounded).
    let e = engine
        .decide_json(
            r#"{"principal":{"id":"a"},"action":{"name":"doc.read"},"context":{"huge":18446744073709551617}}"#,
        )
        .unwrap_err();
    assert!(e.to_string().contains("context.huge"), "{e}");
    // A float Cedar cannot hold fails the decision closed.
    for (key, value) in [("huge", "1e300"), ("fine", "1000.00004")] {
        let d = engine
            .decide_json(&format!(
                r#"{{"principal":{{"id":"a"}},"action":{{"name":"doc.read"}},"context":{{"{key}":{value}}}}}"#
            ))
            .unwrap();
        assert_eq!(d.outcome, Outcome::Reject);
        assert!(
            d.reasons[0].message.contains(&format!("context.{key}")),
            "{:?}",
            d.reasons
        );
    }
    let d = engine
        .decide_json(
            r#"{"principal":{"id":"a"},"action":{"name":"doc.read"},"context":{"fine":1000.00004}}"#,
        )
        .unwrap();
    assert_eq!(d.outcome, Outcome::Reject);
    assert!(
        d.reasons[0].message.contains("context.fine"),
        "{:?}",
        d.reasons
    );
}

#[test]
fn rego_reasons_and_obligations_accept_strings_and_objects() {
    let (_dir, engine) = engine(&[
        ("bundle.toml", MANIFEST),
        (
            "p.rego",
            r##"package agentriage
import rego.v1
allow if true
escalate contains "plain message" if input.action.name == "doc.write"
escalate contains {"id": "W1", "msg": "short key"} if input.action.name == "doc.write"
obligations contains {"id": "notify", "channel": "#soc", "level": 2}
obligations contains "log"
"##,
        ),
    ]);
    let d = decide(&engine, "doc.write");
    assert_eq!(d.outcome, Outcome::Escalate);
    let ids: Vec<_> = d.policy_ids().collect();
    assert_eq!(ids, ["W1", "agentriage.escalate"]);
    assert_eq!(d.reasons[0].message, "short key");
    let mut obs: Vec<_> = d.obligations.iter().map(|o| o.id.as_str()).collect();
    obs.sort_unstable();
    assert_eq!(obs, ["log", "notify"]);
    let notify = d.obligations.iter().find(|o| o.id == "notify").unwrap();
    assert_eq!(notify.params["channel"], "#soc");
    assert_eq!(notify.params["level"], 2);
}

#[test]
fn digest_is_stable_and_covers_every_file() {
    let files = [
        ("bundle.toml", MANIFEST),
        ("p.rego", ALLOW_ALL),
        ("notes/readme.md", "x"),
    ];
    let a = bundle(&files);
    let b = bundle(&files);
    let da = Bundle::load(a.path()).unwrap().info().digest.clone();
    let db = Bundle::load(b.path()).unwrap().info().digest.clone();
    assert_eq!(da, db);
    std::fs::write(a.path().join("notes/readme.md"), "y").unwrap();
    let changed = Bundle::load(a.path()).unwrap().info().digest.clone();
    assert_ne!(da, changed);
    // Hidden files are not part of the bundle.
    std::fs::write(b.path().join(".editor-state"), "z").unwrap();
    assert_eq!(Bundle::load(b.path()).unwrap().info().digest, db);
}

#[test]
fn the_digest_follows_the_documented_algorithm() {
    // docs/bundle.md: files (hidden ones excluded) sorted by their `/`-separated
    // relative path; for each: path, NUL, length as 8 big-endian bytes, bytes.
    use sha2::{Digest, Sha256};
    fn collect(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                collect(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<_> = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().unwrap())
                    .collect();
                out.push((rel.join("/"), std::fs::read(&path).unwrap()));
            }
        }
    }
    let root = common::reference_pack();
    let mut files = Vec::new();
    collect(&root, &root, &mut files);
    files.sort();
    let mut h = Sha256::new();
    for (path, bytes) in &files {
        h.update(path.as_bytes());
        h.update([0u8]);
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    let want: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let info = Bundle::load(&root).unwrap().info().clone();
    assert_eq!(info.digest, format!("sha256:{want}"));
}
