//! Load time of hostile or large bundles, on a thread with a chosen stack.
//!
//! ```text
//! cargo run --release -p agentriage --example load_budget -- SHAPE N [STACK_KIB] [DEPTH]
//! ```
//!
//! SHAPE is one of:
//! - `cedar-parens`: one Cedar policy whose `when` nests `N` parentheses;
//! - `cedar-and`, `cedar-attr`, `cedar-not`, `cedar-plus`: one Cedar policy
//!   whose `when` is a chain of `N` `&&`, attribute accesses, `!` or `+`;
//! - `cedar-policies`: `N` small Cedar policies in one file;
//! - `cedar-schema-policies`: the same, validated against a schema;
//! - `rego-array`: a Rego rule `x := [[…1…]]` nesting `N` arrays;
//! - `rego-parens`: a Rego rule `x := ((…1…))` nesting `N` parentheses;
//! - `rego-set`: a Rego rule `x := {{…1…}}` nesting `N` sets;
//! - `rego-wide`: `N` rules `xI := [[…1…]]`, each nesting `DEPTH` arrays (default 12);
//! - `rego-plus`, `rego-dot`: a Rego rule `x := 1 + 1 + …` or
//!   `x := input.a.a.…` chaining `N` operators or accesses;
//! - `rego-rules`: `N` distinct small Rego rules in one module;
//! - `data-deep`: a Rego data file nesting `N` JSON arrays;
//! - `data-wide`: a Rego data file of `N` small objects.
//!
//! The bundle is written to a temporary directory, then loaded (once) on a
//! thread with a `STACK_KIB` stack (default 2048). Prints the outcome and
//! the load's wall-clock time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

const MANIFEST_CEDAR: &str = "name = \"x\"\nrevision = \"1\"\n[cedar]\npolicies = [\"p.cedar\"]\n";
const MANIFEST_REGO: &str =
    "name = \"x\"\nrevision = \"1\"\n[rego]\nmodules = [\"p.rego\"]\ndata = [\"d.json\"]\n";
const SCHEMA: &str = "entity Agent;\nentity Resource;\naction \"x\" appliesTo { principal: [Agent], resource: [Resource] };\n";

fn build(dir: &Path, shape: &str, n: usize, wide_depth: usize) {
    let mut text = String::new();
    match shape {
        "cedar-parens" => {
            write(dir, "bundle.toml", MANIFEST_CEDAR);
            text.push_str("permit (principal, action, resource) when { ");
            text.push_str(&"(".repeat(n));
            text.push_str("true");
            text.push_str(&")".repeat(n));
            text.push_str(" };\n");
            write(dir, "p.cedar", &text);
        }
        "cedar-and" | "cedar-attr" | "cedar-not" | "cedar-plus" => {
            write(dir, "bundle.toml", MANIFEST_CEDAR);
            text.push_str("permit (principal, action, resource) when { ");
            match shape {
                "cedar-and" => text.push_str(&vec!["true"; n.max(1)].join(" && ")),
                "cedar-attr" => {
                    text.push_str("context");
                    text.push_str(&".a".repeat(n));
                }
                "cedar-not" => {
                    text.push_str(&"!".repeat(n));
                    text.push_str("true");
                }
                _ => {
                    text.push_str(&vec!["1"; n.max(1)].join(" + "));
                    text.push_str(" == 0");
                }
            }
            text.push_str(" };\n");
            write(dir, "p.cedar", &text);
        }
        "cedar-policies" | "cedar-schema-policies" => {
            let mut manifest = MANIFEST_CEDAR.to_owned();
            if shape == "cedar-schema-policies" {
                manifest.push_str("schema = \"s.cedarschema\"\n");
                write(dir, "s.cedarschema", SCHEMA);
            }
            write(dir, "bundle.toml", &manifest);
            for i in 0..n {
                let _ = writeln!(
                    text,
                    "@id(\"p{i}\")\nforbid (principal, action == Action::\"x\", resource) when {{ context has a{i} }};"
                );
            }
            write(dir, "p.cedar", &text);
        }
        "rego-array" | "rego-parens" | "rego-set" | "rego-wide" | "rego-plus" | "rego-dot"
        | "rego-rules" => {
            write(dir, "bundle.toml", MANIFEST_REGO);
            write(dir, "d.json", "{}");
            text.push_str("package agentriage\n\n");
            match shape {
                "rego-array" => {
                    text.push_str("x := ");
                    text.push_str(&"[".repeat(n));
                    text.push('1');
                    text.push_str(&"]".repeat(n));
                    text.push('\n');
                }
                "rego-set" => {
                    text.push_str("x := ");
                    text.push_str(&"{".repeat(n));
                    text.push('1');
                    text.push_str(&"}".repeat(n));
                    text.push('\n');
                }
                "rego-wide" => {
                    let depth = wide_depth;
                    for i in 0..n {
                        let _ = write!(text, "x{i} := ");
                        text.push_str(&"[".repeat(depth));
                        text.push('1');
                        text.push_str(&"]".repeat(depth));
                        text.push('\n');
                    }
                }
                "rego-plus" => {
                    text.push_str("x := ");
                    text.push_str(&vec!["1"; n.max(1)].join(" + "));
                    text.push('\n');
                }
                "rego-dot" => {
                    text.push_str("x := input");
                    text.push_str(&".a".repeat(n));
                    text.push('\n');
                }
                "rego-parens" => {
                    text.push_str("x := ");
                    text.push_str(&"(".repeat(n));
                    text.push('1');
                    text.push_str(&")".repeat(n));
                    text.push('\n');
                }
                _ => {
                    for i in 0..n {
                        let _ = writeln!(text, "r{i} if input.action.name == \"a{i}\"");
                    }
                }
            }
            text.push_str("reject contains \"no\" if false\n");
            write(dir, "p.rego", &text);
        }
        "data-deep" | "data-wide" => {
            write(dir, "bundle.toml", MANIFEST_REGO);
            write(
                dir,
                "p.rego",
                "package agentriage\n\nreject contains \"no\" if false\n",
            );
            if shape == "data-deep" {
                text.push_str("{\"a\": ");
                text.push_str(&"[".repeat(n));
                text.push_str(&"]".repeat(n));
                text.push('}');
            } else {
                text.push_str("{\"a\": [");
                for i in 0..n {
                    if i > 0 {
                        text.push(',');
                    }
                    let _ = write!(text, "{{\"k\":{i},\"v\":\"value {i}\"}}");
                }
                text.push_str("]}");
            }
            write(dir, "d.json", &text);
        }
        other => panic!("unknown shape `{other}`"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let shape = args.first().expect("SHAPE N [STACK_KIB]").clone();
    let n: usize = args.get(1).expect("N").parse().expect("N is a number");
    let stack_kib: usize = args.get(2).map_or(2048, |s| s.parse().expect("a number"));
    let wide_depth: usize = args.get(3).map_or(12, |s| s.parse().expect("a number"));
    let dir = tempfile::tempdir().unwrap();
    build(dir.path(), &shape, n, wide_depth);
    let bytes: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let path = dir.path().to_path_buf();
    let started = Instant::now();
    let outcome = std::thread::Builder::new()
        .stack_size(stack_kib << 10)
        .spawn(move || match agentriage::Bundle::load(&path) {
            Ok(_) => "loaded".to_owned(),
            Err(e) => format!("refused: {}: {}", e.kind().as_str(), e.message()),
        })
        .unwrap()
        .join()
        .unwrap();
    let elapsed = started.elapsed();
    let mut outcome = outcome;
    outcome.truncate(160);
    println!(
        "{shape} n={n} bytes={bytes} stack={stack_kib}KiB: {outcome} in {:.3} s",
        elapsed.as_secs_f64()
    );
}
