//! Policy unit tests: suites of expected decisions, Rego-native `test_*`
//! rules, coverage, and a bundle checker.
//!
//! A bundle's tests live under its `tests/` directory (never loaded for
//! decisions, since the manifest names every module it loads):
//!
//! - YAML suites (`*.yaml`, `*.yml`): named cases, each a request (or a JSON
//!   merge patch over a named base request) and the expected outcome,
//!   optionally the policy ids among the reasons and the obligations; see
//!   [`load_suite`] and `docs/testing-policies.md`;
//! - Rego test modules (`*.rego`): every rule named `test_*` must be true,
//!   with `with` overriding `input` or `data`, as `opa test` runs them.
//!
//! [`run`] runs them all against a loaded [`Engine`] and returns a
//! [`TestRun`]: one [`TestResult`] per case, per Rego test and per file that
//! could not be used, and, on request, the [`Coverage`] of the bundle's Rego
//! rules and Cedar policies.
//!
//! ```
//! use agentriage::{Engine, testing};
//!
//! let dir = std::path::Path::new("../policies/a2a-supply-chain");
//! let engine = Engine::from_dir(dir)?;
//! let files = testing::discover(&[dir.join("tests")]).map_err(|e| e.to_string())?;
//! let run = testing::run(&engine, &files, &testing::Options { coverage: true, ..Default::default() });
//! assert_eq!(run.failed(), 0);
//! assert!(run.coverage.unwrap().percent() >= 95.0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
mod coverage;
mod evaluators;
mod suite;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use regorus::Value as RegoValue;

pub use crate::rego_builtins::builtins_table;
pub use check::{Problem, check_bundle, waiver_warnings};
pub use coverage::{Coverage, CoverageItem, CoverageKind};
pub use evaluators::{Divergence, EvaluatorReport, compare_evaluators};
pub use suite::{
    Case, Expectation, MAX_SUITE_BYTES, Match, Suite, SuiteError, SuiteFileKind, load_suite,
    merge_patch, parse_suite,
};

use crate::decision::{Decision, Outcome, Reason};
use crate::engine::Engine;
use crate::facts::Facts;
use crate::request::Request;

/// How tests are run.
#[derive(Default)]
pub struct Options<'a> {
    /// Runs only the tests whose full name (`suite::case`) it accepts.
    pub filter: Option<&'a dyn Fn(&str) -> bool>,
    /// Measures which Rego rules and Cedar policies the tests exercise.
    pub coverage: bool,
}

/// What kind of test a result is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKind {
    /// A case of a YAML suite.
    Case,
    /// A `test_*` rule of a Rego module.
    Rego,
    /// A test file that could not be used (it counts as one failed test).
    File,
}

impl TestKind {
    /// `case`, `rego` or `file`.
    pub fn as_str(self) -> &'static str {
        match self {
            TestKind::Case => "case",
            TestKind::Rego => "rego",
            TestKind::File => "file",
        }
    }
}

/// Why a test failed.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// What was wrong, in one line.
    pub message: String,
    /// The expected outcome, for a case.
    pub expected_outcome: Option<Outcome>,
    /// The expected policy ids, for a case that checks them.
    pub expected_reasons: Option<Vec<String>>,
    /// The expected obligation ids, for a case that checks them.
    pub expected_obligations: Option<Vec<String>>,
    /// The decision the engine made, for a case that was decided.
    pub actual: Option<Decision>,
}

impl Failure {
    fn message(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            expected_outcome: None,
            expected_reasons: None,
            expected_obligations: None,
            actual: None,
        }
    }
}

/// The result of one test.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// Suite name (a YAML suite's `name`, a Rego test's package, or the file
    /// that could not be used).
    pub suite: String,
    /// Case name, Rego rule name, or `<load>` for a file that could not be used.
    pub name: String,
    /// What kind of test.
    pub kind: TestKind,
    /// The file that holds it.
    pub file: PathBuf,
    /// The 1-based line where it starts, where known.
    pub line: Option<u32>,
    /// `None` when it passed.
    pub failure: Option<Failure>,
    /// Time it took, in microseconds.
    pub duration_us: u64,
}

impl TestResult {
    /// `suite::name`, the name `--run` filters match against.
    pub fn full_name(&self) -> String {
        format!("{}::{}", self.suite, self.name)
    }

    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Everything a run found.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// One result per test run, in file order.
    pub results: Vec<TestResult>,
    /// How many tests the filter left out.
    pub filtered_out: usize,
    /// Coverage, when asked for.
    pub coverage: Option<Coverage>,
}

impl TestRun {
    /// How many tests passed.
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed()).count()
    }

    /// How many tests failed.
    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }
}

/// The reference pack's directory, and each case of its suites that is a
/// valid request: (case name, request), in file order. For the tests of
/// the evaluators.
#[cfg(test)]
pub(crate) fn reference_pack_cases() -> (PathBuf, Vec<(String, Request)>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/a2a-supply-chain");
    let files = discover(&[root.join("tests")]).expect("the pack's tests");
    let mut cases = Vec::new();
    for path in files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        if let Ok(SuiteFileKind::Suite(suite)) = load_suite(path) {
            for case in suite.cases {
                if let Ok(request) = Request::from_value(&case.request) {
                    cases.push((case.name, request));
                }
            }
        }
    }
    (root, cases)
}

/// The test files in `paths`: files as given, and for each directory every
/// `*.yaml`, `*.yml` and `*.rego` file under it (hidden files skipped),
/// sorted. A path that does not exist is an error.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SuiteError> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> Result<(), SuiteError> {
        if depth > 32 {
            return Err(SuiteError::new(
                dir,
                None,
                "directories nest deeper than 32 levels",
            ));
        }
        let entries = std::fs::read_dir(dir)
            .map_err(|e| SuiteError::new(dir, None, format!("cannot read: {e}")))?;
        let mut found = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| SuiteError::new(dir, None, format!("cannot read: {e}")))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            found.push(entry.path());
        }
        found.sort();
        for path in found {
            if path.is_dir() {
                walk(&path, out, depth + 1)?;
            } else if is_test_file(&path) {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out, 0)?;
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(SuiteError::new(p, None, "no such file or directory"));
        }
    }
    Ok(out)
}

fn is_test_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "rego")
    )
}

fn is_rego(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rego")
}

fn micros(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

fn file_failure(file: &Path, e: &SuiteError) -> TestResult {
    TestResult {
        suite: file.display().to_string(),
        name: "<load>".to_owned(),
        kind: TestKind::File,
        file: e.file().to_path_buf(),
        line: e.line(),
        failure: Some(Failure::message(e.to_string())),
        duration_us: 0,
    }
}

/// Runs every test of `files` (from [`discover`]) against `engine`.
///
/// A file that cannot be used (YAML that does not parse, an unknown outcome,
/// a Rego module that does not compile) is one failed result naming file and
/// line; the other files still run. A case whose request breaks the contract
/// fails with the JSON path.
pub fn run(engine: &Engine, files: &[PathBuf], options: &Options<'_>) -> TestRun {
    let mut results = Vec::new();
    let mut filtered_out = 0;
    let accept = |full: &str| options.filter.is_none_or(|f| f(full));
    let bundle = engine.bundle();
    let mut tracker = options.coverage.then(|| coverage::Tracker::new(&bundle));

    let mut rego_modules = Vec::new();
    for file in files {
        if is_rego(file) {
            match std::fs::read_to_string(file) {
                Ok(text) => rego_modules.push((file.clone(), text)),
                Err(e) => results.push(file_failure(
                    file,
                    &SuiteError::new(file, None, format!("cannot read: {e}")),
                )),
            }
            continue;
        }
        let suite = match load_suite(file) {
            Ok(SuiteFileKind::Suite(s)) => s,
            Ok(SuiteFileKind::Library) => continue,
            Err(e) => {
                results.push(file_failure(file, &e));
                continue;
            }
        };
        for case in &suite.cases {
            let full = format!("{}::{}", suite.name, case.name);
            if !accept(&full) {
                filtered_out += 1;
                continue;
            }
            let start = Instant::now();
            let failure = run_case(engine, case, tracker.as_mut());
            results.push(TestResult {
                suite: suite.name.clone(),
                name: case.name.clone(),
                kind: TestKind::Case,
                file: suite.file.clone(),
                line: Some(case.line),
                failure,
                duration_us: micros(start),
            });
        }
    }

    if !rego_modules.is_empty() || tracker.is_some() {
        run_rego_tests(
            engine,
            &rego_modules,
            &accept,
            &mut results,
            &mut filtered_out,
            tracker.as_mut(),
        );
    }
    TestRun {
        results,
        filtered_out,
        coverage: tracker.map(coverage::Tracker::finish),
    }
}

fn ids<'a>(items: impl Iterator<Item = &'a str>) -> BTreeSet<&'a str> {
    items.collect()
}

fn compare(
    what: &str,
    expected: &[String],
    actual: &BTreeSet<&str>,
    matching: Match,
) -> Option<String> {
    let wanted: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
    let missing: Vec<&str> = wanted.difference(actual).copied().collect();
    let extra: Vec<&str> = actual.difference(&wanted).copied().collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("missing {}", missing.join(", ")));
    }
    if matching == Match::Exact && !extra.is_empty() {
        problems.push(format!("unexpected {}", extra.join(", ")));
    }
    (!problems.is_empty()).then(|| format!("{what} differ: {}", problems.join("; ")))
}

fn run_case(
    engine: &Engine,
    case: &Case,
    tracker: Option<&mut coverage::Tracker>,
) -> Option<Failure> {
    let request = match Request::from_value(&case.request) {
        Ok(r) => r,
        Err(e) => {
            return Some(Failure::message(format!(
                "the case's request is invalid: {e}"
            )));
        }
    };
    // Each case decides in a state of its own: quotas, used approvals and
    // intents of one case never reach another.
    let state: std::sync::Arc<dyn crate::state::StateStore> =
        std::sync::Arc::new(crate::state::MemoryStore::default());
    for _ in 0..case.prior {
        if let Err(e) = engine.decide_in(&request, &state) {
            return Some(Failure::message(format!(
                "the case's request is invalid: {e}"
            )));
        }
    }
    let decision = match engine.decide_in(&request, &state) {
        Ok(d) => d,
        Err(e) => {
            return Some(Failure::message(format!(
                "the case's request is invalid: {e}"
            )));
        }
    };
    if let Some(t) = tracker {
        let bundle = engine.bundle();
        let mut facts = Facts::derive(&request, bundle.risk_class(&request.action.name));
        facts.intent = engine
            .intents
            .fact_unrecorded(&bundle, &request, facts.time);
        t.record(&bundle, &request, &facts);
    }
    let expect = &case.expect;
    let mut problems = Vec::new();
    if decision.outcome != expect.outcome {
        problems.push(format!(
            "expected outcome {}, got {}",
            expect.outcome, decision.outcome
        ));
    }
    if let Some(reasons) = &expect.reasons
        && let Some(p) = compare(
            "reasons",
            reasons,
            &ids(decision.reasons.iter().map(|r: &Reason| r.policy.as_str())),
            expect.matching,
        )
    {
        problems.push(p);
    }
    if let Some(obligations) = &expect.obligations
        && let Some(p) = compare(
            "obligations",
            obligations,
            &ids(decision.obligations.iter().map(|o| o.id.as_str())),
            expect.matching,
        )
    {
        problems.push(p);
    }
    (!problems.is_empty()).then(|| Failure {
        message: problems.join("; "),
        expected_outcome: Some(expect.outcome),
        expected_reasons: expect.reasons.clone(),
        expected_obligations: expect.obligations.clone(),
        actual: Some(decision),
    })
}

fn run_rego_tests(
    engine: &Engine,
    modules: &[(PathBuf, String)],
    accept: &dyn Fn(&str) -> bool,
    results: &mut Vec<TestResult>,
    filtered_out: &mut usize,
    tracker: Option<&mut coverage::Tracker>,
) {
    let Some(program) = &engine.bundle().rego else {
        for (file, _) in modules {
            results.push(file_failure(
                file,
                &SuiteError::new(file, None, "the bundle has no Rego modules to test"),
            ));
        }
        return;
    };
    let mut interpreter = match &tracker {
        Some(t) => t.interpreter(),
        None => program.interpreter(),
    };
    // Tests start from no input (the cases may have left theirs): a test
    // gives one with `with input as …`.
    interpreter.set_input(RegoValue::new_object());
    let mut added = Vec::new();
    for (file, text) in modules {
        let name = file.to_string_lossy().into_owned();
        // Test modules meet the bundle's load limits before the parser.
        if let Err(e) = crate::load_limits::scan(file, text, crate::load_limits::Language::Rego) {
            results.push(file_failure(
                file,
                &SuiteError::new(file, e.line(), format!("Rego test module: {}", e.message())),
            ));
            continue;
        }
        // Test modules get the same rewrites to OPA's semantics as the
        // bundle's own (docs/fidelity.md); a module that does not parse is
        // left as written, so its syntax error is the author's.
        let globals = crate::rego_rewrite::global_names(&[(name.clone(), text.clone())]);
        let text = match crate::rego_rewrite::rewrite(&name, text, &globals) {
            Ok(rewritten) => rewritten,
            Err(e) => {
                results.push(file_failure(
                    file,
                    &SuiteError::new(file, e.line, format!("Rego test module: {}", e.message)),
                ));
                continue;
            }
        };
        match interpreter.add_policy(name.clone(), text) {
            Ok(_) => added.push(name),
            Err(e) => {
                let message = format!("{e:#}");
                let line = message
                    .find(&format!("{name}:"))
                    .and_then(|at| message.get(at + name.len() + 1..))
                    .and_then(|rest| rest.split(':').next())
                    .and_then(|l| l.trim().parse::<u32>().ok());
                results.push(file_failure(
                    file,
                    &SuiteError::new(
                        file,
                        line,
                        format!(
                            "Rego test module does not compile: {}",
                            crate::rego::without_location(&message, &name)
                                .unwrap_or_else(|| message.trim().to_owned())
                        ),
                    ),
                ));
            }
        }
    }
    // A recursive function would overflow the interpreter's stack: refuse
    // to run any Rego test then (the bundle's own modules passed at load).
    if let Err(e) = crate::rego_calls::check_no_recursive_functions(
        std::path::Path::new(""),
        interpreter.get_modules(),
    ) {
        let file = e.file().to_path_buf();
        results.push(file_failure(
            &file,
            &SuiteError::new(&file, e.line(), e.message().to_owned()),
        ));
        return;
    }
    let tests = coverage::test_rules(&mut interpreter, &added);
    for (file, package, rule, line) in tests {
        let full = format!("{package}::{rule}");
        if !accept(&full) {
            *filtered_out += 1;
            continue;
        }
        let start = Instant::now();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            interpreter.eval_rule(format!("data.{package}.{rule}"))
        }));
        let failure = match result {
            Ok(Ok(RegoValue::Bool(true))) => None,
            Ok(Ok(RegoValue::Undefined)) => Some(Failure::message(
                "undefined: some expression of its body was false",
            )),
            Ok(Ok(other)) => Some(Failure::message(format!("evaluated to {other}, not true"))),
            Ok(Err(e)) => Some(Failure::message(format!("evaluation failed: {e:#}"))),
            Err(_) => Some(Failure::message("evaluation panicked")),
        };
        results.push(TestResult {
            suite: package,
            name: rule,
            kind: TestKind::Rego,
            file: PathBuf::from(file),
            line: Some(line),
            failure,
            duration_us: micros(start),
        });
    }
    if let Some(t) = tracker {
        t.absorb_interpreter(interpreter);
    }
}
