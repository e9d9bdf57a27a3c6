//! Hostile bundles meet the load limits before any parser: each is refused
//! with a typed error naming the file, the line and the limit, on a thread
//! with an ordinary 2 MiB stack, and a refused reload keeps the live bundle.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;

use agentriage::{
    Bundle, BundleError, BundleErrorKind, Engine, LoadLimit, MAX_CEDAR_DEPTH, MAX_CEDAR_POLICIES,
    MAX_DATA_DEPTH, MAX_DATA_FILE_BYTES, MAX_POLICY_FILE_BYTES, MAX_REGO_DEPTH, Outcome,
};

const STACK: usize = 2 << 20;

const CEDAR_MANIFEST: &str =
    "name = \"hostile\"\nrevision = \"1\"\n[cedar]\npolicies = [\"cedar/p.cedar\"]\n";
const REGO_MANIFEST: &str = "name = \"hostile\"\nrevision = \"1\"\n[rego]\nmodules = [\"rego/p.rego\"]\ndata = [\"data/d.json\"]\n";
const REGO_HEADER: &str = "package agentriage\n\nreject contains \"no\" if false\n";

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A bundle of `files` in a fresh directory.
fn bundle(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        write(dir.path(), rel, text);
    }
    dir
}

/// Loads `dir` on a thread with a 2 MiB stack.
fn load(dir: &Path) -> Result<Bundle, BundleError> {
    let dir = dir.to_path_buf();
    std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || Bundle::load(dir))
        .unwrap()
        .join()
        .expect("the load does not panic")
}

/// The error of a load that must be refused by `limit` in `file` at `line`.
fn refused(dir: &Path, file: &str, line: u32, limit: LoadLimit) -> BundleError {
    let e = load(dir).expect_err("the bundle is refused");
    assert_eq!(e.kind(), BundleErrorKind::Limit, "{e}");
    assert_eq!(e.limit(), Some(limit), "{e}");
    assert_eq!(e.file(), dir.join(file), "{e}");
    assert_eq!(e.line(), Some(line), "{e}");
    e
}

fn cedar_when(expr: &str) -> String {
    format!("// a policy\n\npermit (principal, action, resource) when {{ {expr} }};\n")
}

fn nested(depth: usize, open: &str, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn cedar_with_a_thousand_nested_parentheses_is_refused_before_parsing() {
    let policy = cedar_when(&nested(1000, "(", "true", ")"));
    assert!(policy.len() < 2100);
    let dir = bundle(&[("bundle.toml", CEDAR_MANIFEST), ("cedar/p.cedar", &policy)]);
    let e = refused(dir.path(), "cedar/p.cedar", 3, LoadLimit::Depth);
    assert!(e.message().contains(&MAX_CEDAR_DEPTH.to_string()), "{e}");
}

#[test]
fn cedar_nested_as_deep_as_the_limit_loads_on_a_small_stack() {
    // `when {` is one level; the parentheses and a record and a set fill the rest.
    let inner = format!("{{a: [{}]}}.a.contains(true)", "true");
    let expr = nested(MAX_CEDAR_DEPTH - 3, "(", &inner, ")");
    let dir = bundle(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("cedar/p.cedar", &cedar_when(&expr)),
    ]);
    load(dir.path()).unwrap();
    let expr = nested(MAX_CEDAR_DEPTH - 2, "(", &inner, ")");
    let dir = bundle(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("cedar/p.cedar", &cedar_when(&expr)),
    ]);
    refused(dir.path(), "cedar/p.cedar", 3, LoadLimit::Depth);
}

#[test]
fn cedar_schema_nesting_is_limited_too() {
    let record = nested(MAX_CEDAR_DEPTH + 1, "{ a: ", "Long", " }");
    let schema = format!(
        "entity Agent;\nentity Resource = {record};\naction \"x\" appliesTo {{ principal: [Agent], resource: [Resource] }};\n"
    );
    let manifest = format!("{CEDAR_MANIFEST}schema = \"cedar/s.cedarschema\"\n");
    let dir = bundle(&[
        ("bundle.toml", &manifest),
        ("cedar/s.cedarschema", &schema),
        ("cedar/p.cedar", &cedar_when("true")),
    ]);
    refused(dir.path(), "cedar/s.cedarschema", 2, LoadLimit::Depth);
}

#[test]
fn rego_nested_array_literal_is_refused_at_once() {
    for depth in [MAX_REGO_DEPTH + 1, 23, 5000] {
        let module = format!("{REGO_HEADER}\nx := {}\n", nested(depth, "[", "1", "]"));
        let dir = bundle(&[
            ("bundle.toml", REGO_MANIFEST),
            ("rego/p.rego", &module),
            ("data/d.json", "{}"),
        ]);
        refused(dir.path(), "rego/p.rego", 5, LoadLimit::Depth);
    }
}

#[test]
fn rego_nesting_at_the_limit_loads_and_many_such_literals_are_refused() {
    let one = format!("x := {}\n", nested(MAX_REGO_DEPTH, "[", "1", "]"));
    let module = format!("{REGO_HEADER}{one}");
    let dir = bundle(&[
        ("bundle.toml", REGO_MANIFEST),
        ("rego/p.rego", &module),
        ("data/d.json", "{}"),
    ]);
    load(dir.path()).unwrap();

    // The same literal in a few thousand rules: small text, exponential parse.
    let mut module = REGO_HEADER.to_owned();
    for i in 0..4000 {
        module.push_str(&format!(
            "x{i} := {}\n",
            nested(MAX_REGO_DEPTH, "[", "1", "]")
        ));
    }
    assert!(module.len() < MAX_POLICY_FILE_BYTES / 4);
    let dir = bundle(&[
        ("bundle.toml", REGO_MANIFEST),
        ("rego/p.rego", &module),
        ("data/d.json", "{}"),
    ]);
    let e = load(dir.path()).unwrap_err();
    assert_eq!(e.kind(), BundleErrorKind::Limit, "{e}");
    assert_eq!(e.limit(), Some(LoadLimit::RegoParseWork), "{e}");
    assert_eq!(e.file(), dir.path().join("rego/p.rego"));
    let line = e.line().unwrap();
    assert!(line > 4 && line < 4004, "{e}");
}

#[test]
fn too_many_cedar_policies_are_refused_at_the_first_one_too_many() {
    let policy = "forbid (principal, action, resource);\n";
    let text = policy.repeat(MAX_CEDAR_POLICIES + 1);
    let dir = bundle(&[("bundle.toml", CEDAR_MANIFEST), ("cedar/p.cedar", &text)]);
    let line = u32::try_from(MAX_CEDAR_POLICIES + 1).unwrap();
    refused(dir.path(), "cedar/p.cedar", line, LoadLimit::CedarPolicies);
}

#[test]
fn oversized_policy_and_data_files_are_refused_unparsed() {
    let mut module = format!("{REGO_HEADER}# padding\n");
    module.push_str(&"#\n".repeat(MAX_POLICY_FILE_BYTES / 2));
    let dir = bundle(&[
        ("bundle.toml", REGO_MANIFEST),
        ("rego/p.rego", &module),
        ("data/d.json", "{}"),
    ]);
    let e = load(dir.path()).unwrap_err();
    assert_eq!(e.limit(), Some(LoadLimit::PolicyFileBytes), "{e}");
    assert_eq!(e.file(), dir.path().join("rego/p.rego"));
    assert!(
        e.line().unwrap() > MAX_POLICY_FILE_BYTES as u32 / 2 - 40,
        "{e}"
    );

    let data = format!("{{\"a\": \"{}\"}}", "x".repeat(MAX_DATA_FILE_BYTES));
    let dir = bundle(&[
        ("bundle.toml", REGO_MANIFEST),
        ("rego/p.rego", REGO_HEADER),
        ("data/d.json", &data),
    ]);
    refused(dir.path(), "data/d.json", 1, LoadLimit::DataFileBytes);
}

#[test]
fn deep_data_entities_and_json_schemas_are_refused() {
    let deep = format!("{{\"a\":\n{}}}", nested(MAX_DATA_DEPTH, "[", "", "]"));
    let dir = bundle(&[
        ("bundle.toml", REGO_MANIFEST),
        ("rego/p.rego", REGO_HEADER),
        ("data/d.json", &deep),
    ]);
    refused(dir.path(), "data/d.json", 2, LoadLimit::Depth);

    let entities = format!(
        "[{{\"uid\": {{\"type\": \"Resource\", \"id\": \"r\"}}, \"parents\": [],\n \"attrs\": {{\"a\": {}}}}}]",
        nested(MAX_DATA_DEPTH, "[", "", "]")
    );
    let manifest = format!("{CEDAR_MANIFEST}entities = [\"cedar/e.json\"]\n");
    let dir = bundle(&[
        ("bundle.toml", &manifest),
        ("cedar/p.cedar", &cedar_when("true")),
        ("cedar/e.json", &entities),
    ]);
    refused(dir.path(), "cedar/e.json", 2, LoadLimit::Depth);

    let schema = format!(
        "{{\"\": {{\"entityTypes\": {{}},\n \"actions\": {}}}}}",
        nested(MAX_DATA_DEPTH, "{\"a\":", "1", "}")
    );
    let manifest = format!("{CEDAR_MANIFEST}schema = \"cedar/s.json\"\n");
    let dir = bundle(&[
        ("bundle.toml", &manifest),
        ("cedar/p.cedar", &cedar_when("true")),
        ("cedar/s.json", &schema),
    ]);
    refused(dir.path(), "cedar/s.json", 2, LoadLimit::Depth);
}

/// The first request of `testdata/requests.jsonl`: the reference pack executes it.
fn reroute() -> String {
    std::fs::read_to_string(common::repo().join("testdata/requests.jsonl"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn a_refused_reload_keeps_the_live_bundle() {
    let engine = Engine::from_dir(common::reference_pack()).unwrap();
    let live = engine.decide_json(&reroute()).unwrap();
    assert_eq!(live.outcome, Outcome::Execute);

    // The reference pack with its Cedar policies replaced by the attack.
    let dir = tempfile::tempdir().unwrap();
    common::copy_dir(&common::reference_pack(), dir.path());
    let hostile = cedar_when(&nested(1000, "(", "true", ")"));
    write(dir.path(), "cedar/pack.cedar", &hostile);
    let path = dir.path().to_path_buf();
    let e = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(STACK)
            .spawn_scoped(s, || engine.reload_from_dir(&path))
            .unwrap()
            .join()
            .unwrap()
    })
    .unwrap_err();
    let e = e.as_bundle().unwrap();
    assert_eq!(e.kind(), BundleErrorKind::Limit);
    assert_eq!(e.limit(), Some(LoadLimit::Depth));
    assert_eq!(e.file(), dir.path().join("cedar/pack.cedar"));
    assert_eq!(e.line(), Some(3));

    let after = engine.decide_json(&reroute()).unwrap();
    assert_eq!(after.outcome, Outcome::Execute);
    assert_eq!(after.bundle.digest, live.bundle.digest);
    assert_eq!(engine.metrics().reload_failures(), 1);
}

#[test]
fn check_reports_each_limit_with_file_and_line_and_returns() {
    let mut module = REGO_HEADER.to_owned();
    module.push_str(&format!("x := {}\n", nested(5000, "[", "1", "]")));
    let manifest = format!("{REGO_MANIFEST}[cedar]\npolicies = [\"cedar/p.cedar\"]\n");
    let dir = bundle(&[
        ("bundle.toml", &manifest),
        ("rego/p.rego", &module),
        ("data/d.json", "{}"),
        (
            "cedar/p.cedar",
            &cedar_when(&nested(1000, "(", "true", ")")),
        ),
    ]);
    let path = dir.path().to_path_buf();
    let problems = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || agentriage::testing::check_bundle(path))
        .unwrap()
        .join()
        .unwrap();
    let limits: Vec<_> = problems.iter().filter(|p| p.kind == "limit").collect();
    assert_eq!(limits.len(), 2, "{problems:#?}");
    assert!(
        limits
            .iter()
            .any(|p| p.file == dir.path().join("rego/p.rego") && p.line == Some(4))
    );
    assert!(
        limits
            .iter()
            .any(|p| p.file == dir.path().join("cedar/p.cedar") && p.line == Some(3))
    );
    assert!(
        problems
            .iter()
            .all(|p| p.kind != "rego" && p.kind != "cedar"),
        "{problems:#?}"
    );
}

#[test]
fn cedar_operator_chains_are_refused_before_parsing() {
    for expr in [
        format!("context{}", ".a".repeat(50_000)),
        format!("{} == 0", vec!["1"; 50_000].join(" + ")),
    ] {
        let dir = bundle(&[
            ("bundle.toml", CEDAR_MANIFEST),
            ("cedar/p.cedar", &cedar_when(&expr)),
        ]);
        refused(dir.path(), "cedar/p.cedar", 3, LoadLimit::CedarOperators);
    }
    // A chain as long as the limit allows loads on a 2 MiB stack.
    let expr = format!(
        "context{} == 1",
        ".a".repeat(agentriage::MAX_CEDAR_OPERATORS - 2)
    );
    let dir = bundle(&[
        ("bundle.toml", CEDAR_MANIFEST),
        ("cedar/p.cedar", &cedar_when(&expr)),
    ]);
    load(dir.path()).unwrap();
}

#[test]
fn check_keeps_the_totals_across_files() {
    // Many modules, each within the parse-work limit, together beyond it.
    let one = format!("x := {}\n", nested(MAX_REGO_DEPTH, "[", "1", "]"));
    let module = format!("{REGO_HEADER}{}", one.repeat(150));
    let mut files = vec![("data/d.json".to_owned(), "{}".to_owned())];
    let mut names = Vec::new();
    for i in 0..40 {
        files.push((
            format!("rego/m{i}.rego"),
            module.replace("package agentriage", &format!("package m{i}")),
        ));
        names.push(format!("\"rego/m{i}.rego\""));
    }
    let manifest = format!(
        "name = \"hostile\"\nrevision = \"1\"\n[rego]\nmodules = [{}]\ndata = [\"data/d.json\"]\n",
        names.join(", ")
    );
    files.push(("bundle.toml".to_owned(), manifest));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = bundle(&refs);
    let path = dir.path().to_path_buf();
    let problems = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || agentriage::testing::check_bundle(path))
        .unwrap()
        .join()
        .unwrap();
    let work: Vec<_> = problems
        .iter()
        .filter(|p| p.kind == "limit" && p.message.contains("Rego parser"))
        .collect();
    // The first modules fit; every later one is reported, unparsed.
    assert!(!work.is_empty() && work.len() < 40, "{problems:#?}");
    assert!(
        work.iter()
            .all(|p| p.file != dir.path().join("rego/m0.rego"))
    );
}
