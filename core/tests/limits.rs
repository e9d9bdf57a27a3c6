//! Pathological policies: whatever a policy does, a decision ends quickly and
//! fails closed with a reason naming the limit it hit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use agentriage::{Bundle, BundleErrorKind, Decision, Engine, Outcome, Source};

/// The VM, with the instruction budget as the only limit a test can meet (a
/// busy machine must not turn an instruction-limit test into a time-limit
/// one). The instruction budget is the VM's; the interpreter, the default,
/// has the clock.
const NO_CLOCK: &str = "evaluator = \"vm\"\nmax_eval_ms = 600000";

/// A one-module bundle with `limits` added to its `[rego]` table.
fn engine_with(limits: &str, module: &str) -> (tempfile::TempDir, Engine) {
    let manifest =
        format!("name = \"t\"\nrevision = \"1\"\n[rego]\nmodules = [\"p.rego\"]\n{limits}\n");
    let dir = common::bundle(&[("bundle.toml", &manifest), ("p.rego", module)]);
    let engine = Engine::from_dir(dir.path()).unwrap();
    (dir, engine)
}

fn decide(engine: &Engine) -> Decision {
    engine
        .decide_json(r#"{"principal":{"id":"a"},"action":{"name":"x.y"}}"#)
        .unwrap()
}

fn assert_failed_closed(d: &Decision, limit: &str) {
    assert_eq!(d.outcome, Outcome::Reject, "{d:?}");
    let reason = d
        .reasons
        .iter()
        .find(|r| r.engine == Source::Rego && r.policy == "error")
        .unwrap_or_else(|| panic!("no failure reason: {d:?}"));
    assert!(reason.message.contains(limit), "{reason:?}");
}

const LONG_LOOP: &str = "package agentriage\nimport rego.v1\nallow if true\n\
    reject contains \"never\" if { some n in numbers.range(1, 200000); n < 0 }\n";

const HUGE_VALUE: &str = "package agentriage\nimport rego.v1\nallow if true\n\
    big := concat(\"\", [s | some i in numbers.range(1, 100000); s := sprintf(\"%d-xxxxxxxxxxxxxxxx\", [i])])\n\
    reject contains \"long\" if count(big) > 10\n";

const NESTED_LOOPS: &str = "package agentriage\nimport rego.v1\nallow if true\n\
    reject contains \"pairs\" if {\n\
      some a in numbers.range(1, 3000)\n\
      some b in numbers.range(1, 3000)\n\
      a * b < 0\n\
    }\n";

#[test]
fn a_long_loop_hits_the_default_instruction_budget() {
    let (_d, engine) = engine_with(NO_CLOCK, LONG_LOOP);
    assert_failed_closed(&decide(&engine), "instruction limit");
}

#[test]
fn building_a_huge_value_hits_the_instruction_budget() {
    let (_d, engine) = engine_with(NO_CLOCK, HUGE_VALUE);
    assert_failed_closed(&decide(&engine), "instruction limit");
}

#[test]
fn nested_loops_hit_the_instruction_budget() {
    let (_d, engine) = engine_with(NO_CLOCK, NESTED_LOOPS);
    assert_failed_closed(&decide(&engine), "instruction limit");
}

#[test]
fn the_time_budget_stops_a_vm_evaluation_with_a_huge_instruction_budget() {
    let (_d, engine) = engine_with(
        "evaluator = \"vm\"\nmax_instructions = 1000000000\nmax_eval_ms = 5",
        NESTED_LOOPS,
    );
    assert_failed_closed(&decide(&engine), "time limit");
}

#[test]
fn the_time_budget_stops_the_interpreter() {
    // The interpreter has no instruction counter: the clock stops it.
    let (_d, engine) = engine_with("evaluator = \"interpreter\"\nmax_eval_ms = 5", NESTED_LOOPS);
    assert_failed_closed(&decide(&engine), "time limit");
}

#[test]
fn the_engine_stays_usable_after_a_limit() {
    let (_d, engine) = engine_with(
        "evaluator = \"vm\"\nmax_instructions = 20000\nmax_eval_ms = 600000",
        LONG_LOOP,
    );
    for _ in 0..3 {
        assert_failed_closed(&decide(&engine), "instruction limit");
    }
    let (_d, engine) = engine_with("max_eval_ms = 20", LONG_LOOP);
    for _ in 0..3 {
        assert_failed_closed(&decide(&engine), "time limit");
    }
}

#[test]
fn limits_of_zero_are_refused_with_the_line() {
    for limits in ["max_instructions = 0", "max_eval_ms = 0"] {
        let manifest =
            format!("name = \"t\"\nrevision = \"1\"\n[rego]\nmodules = [\"p.rego\"]\n{limits}\n");
        let dir = common::bundle(&[
            ("bundle.toml", &manifest),
            ("p.rego", "package agentriage\nallow := true\n"),
        ]);
        let e = Bundle::load(dir.path()).unwrap_err();
        assert_eq!(
            (e.kind(), e.line()),
            (BundleErrorKind::Manifest, Some(5)),
            "{e}"
        );
        assert!(
            e.message().contains(limits.split(' ').next().unwrap()),
            "{e}"
        );
    }
}

#[test]
fn recursion_through_a_rule_fails_closed_with_both_evaluators() {
    // A function that reaches itself through a rule passes the load-time
    // check (which follows function calls only); each evaluator stops it at
    // run time instead: the VM's instruction budget (its recursion lives on
    // the heap), the interpreter's own detection of recursive rules.
    let module =
        "package agentriage\nimport rego.v1\nr := f(1)\nf(x) := y if { y := r }\nallow if r\n";
    let (_d, engine) = engine_with("evaluator = \"vm\"", module);
    assert_failed_closed(&decide(&engine), "instruction limit");
    for evaluator in ["", "evaluator = \"interpreter\""] {
        let (_d, engine) = engine_with(evaluator, module);
        assert_failed_closed(&decide(&engine), "recursion detected");
    }
}

fn load_error(files: &[(&str, &str)]) -> agentriage::BundleError {
    let dir = common::bundle(files);
    agentriage::Bundle::load(dir.path()).unwrap_err()
}

const MANIFEST: &str =
    "name = \"t\"\nrevision = \"1\"\n[rego]\nmodules = [\"p.rego\", \"lib.rego\"]\n";
const LIB: &str = "package lib\nimport rego.v1\ninc(x) := x + 1\n";

#[test]
fn a_recursive_function_is_refused_at_load_with_both_evaluators() {
    // Rego forbids recursion (OPA refuses it when compiling). Unchecked, the
    // interpreter would recurse until the host's stack overflows.
    let module =
        "package agentriage\nimport rego.v1\nallow if f(1)\n\nf(x) := y if { y := f(x) }\n";
    for evaluator in ["vm", "interpreter"] {
        let manifest = format!("{MANIFEST}evaluator = \"{evaluator}\"\n");
        let e = load_error(&[
            ("bundle.toml", &manifest),
            ("p.rego", module),
            ("lib.rego", LIB),
        ]);
        assert_eq!(e.kind(), agentriage::BundleErrorKind::Rego, "{e}");
        assert!(e.file().ends_with("p.rego"), "{e}");
        assert_eq!(e.line(), Some(5), "{e}");
        assert!(e.message().contains("`agentriage.f` calls itself"), "{e}");
    }
}

#[test]
fn recursion_through_other_functions_and_packages_is_refused() {
    // agentriage.f -> lib.g (through an import) -> agentriage.h -> agentriage.f
    let module = "package agentriage\nimport rego.v1\nimport data.lib\nallow if f(1) > 0\n\
        f(x) := lib.g(x)\nh(x) := y if { some y in [f(x)] }\n";
    let lib = "package lib\nimport rego.v1\ng(x) := data.agentriage.h(x) + 1\n";
    let e = load_error(&[
        ("bundle.toml", MANIFEST),
        ("p.rego", module),
        ("lib.rego", lib),
    ]);
    assert!(
        e.message()
            .contains("agentriage.f → lib.g → agentriage.h → agentriage.f"),
        "{e}"
    );
    // Bounded recursion is recursion too.
    let bounded = "package agentriage\nimport rego.v1\nallow if f(3) == 0\n\
        f(0) := 0\nf(x) := y if { x > 0; y := f(x - 1) }\n";
    let e = load_error(&[
        ("bundle.toml", MANIFEST),
        ("p.rego", bounded),
        ("lib.rego", LIB),
    ]);
    assert!(e.message().contains("calls itself"), "{e}");
}

#[test]
fn functions_that_only_look_alike_are_not_recursion() {
    // Same name in two packages, an alias, a built-in with a dotted name and
    // a local variable named like the function: no cycle.
    let module = "package agentriage\nimport rego.v1\nimport data.lib as l\n\
        allow if inc(1) == 3\ninc(x) := y if { inc := 1; y := l.inc(x) + inc }\n\
        day(ns) := time.weekday(ns)\n";
    let dir = common::bundle(&[
        ("bundle.toml", MANIFEST),
        ("p.rego", module),
        ("lib.rego", LIB),
    ]);
    let engine = Engine::from_dir(dir.path()).unwrap();
    assert_eq!(decide(&engine).outcome, Outcome::Execute);
}
