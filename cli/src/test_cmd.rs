//! `agentriage test`: runs a bundle's policy tests and reports them for
//! people (`human`), programs (`json`) or CI systems (`junit`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use agentriage::testing::{self, Coverage, TestResult, TestRun};
use agentriage::{Engine, MANIFEST_FILE};
use clap::ValueEnum;
use serde_json::{Value, json};

/// Exit codes of `agentriage test`, documented in its `--help`.
pub mod exit {
    /// Every test passed (and coverage met the threshold).
    pub const OK: u8 = 0;
    /// A test failed, a test file could not be used, no test was found, or
    /// coverage is below the threshold.
    pub const FAILED: u8 = 1;
    /// Bad command-line usage (also an invalid `--run` pattern).
    pub const USAGE: u8 = 2;
    /// The bundle could not be loaded.
    pub const BUNDLE: u8 = 3;
    /// The report could not be written.
    pub const IO: u8 = 4;
}

/// Exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  every test passed (and coverage met --threshold)
  1  a test failed, a test file could not be used, no test was found,
     or coverage is below --threshold
  2  bad command-line usage (including an invalid --run pattern)
  3  the bundle could not be loaded
  4  the report could not be written";

/// Report formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// For people: one line per test, failure blocks, a summary.
    Human,
    /// One JSON document.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

/// What `agentriage test` was asked.
pub struct TestArgs {
    /// Bundle directory, when given with `--bundle`.
    pub bundle: Option<PathBuf>,
    /// Bundle directory and/or test files and directories.
    pub paths: Vec<PathBuf>,
    /// Only tests whose `suite::name` matches.
    pub run: Option<String>,
    /// Report format.
    pub format: Format,
    /// Report coverage.
    pub coverage: bool,
    /// Fail below this coverage percentage.
    pub threshold: Option<f64>,
}

fn is_bundle(p: &Path) -> bool {
    p.join(MANIFEST_FILE).is_file()
}

/// Runs the command; returns the exit code.
pub fn test(args: TestArgs) -> u8 {
    let filter = match args.run.as_deref().map(regex::Regex::new) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            eprintln!("error: invalid --run pattern: {e}");
            return exit::USAGE;
        }
    };
    if let Some(t) = args.threshold
        && !(0.0..=100.0).contains(&t)
    {
        eprintln!("error: --threshold must be between 0 and 100, not {t}");
        return exit::USAGE;
    }

    // Which directory is the bundle, and which paths hold tests.
    let mut bundle = args.bundle.clone();
    let mut tests = Vec::new();
    for p in &args.paths {
        if bundle.is_none() && is_bundle(p) {
            bundle = Some(p.clone());
            let t = p.join("tests");
            if t.is_dir() {
                tests.push(t);
            }
        } else if args.bundle.as_deref() != Some(p.as_path()) {
            tests.push(p.clone());
        }
    }
    let Some(bundle) = bundle.or_else(|| is_bundle(Path::new(".")).then(|| PathBuf::from(".")))
    else {
        eprintln!(
            "error: no bundle: give a bundle directory (holding {MANIFEST_FILE}) as a path or with --bundle"
        );
        return exit::USAGE;
    };
    if tests.is_empty() && args.paths.iter().all(|p| is_bundle(p)) {
        let t = bundle.join("tests");
        if t.is_dir() {
            tests.push(t);
        }
    }

    let start = Instant::now();
    let engine = match Engine::from_dir(&bundle) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot load bundle: {e}");
            return exit::BUNDLE;
        }
    };
    let files = match testing::discover(&tests) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let accept = |name: &str| filter.as_ref().is_none_or(|r| r.is_match(name));
    let options = testing::Options {
        filter: Some(&accept),
        coverage: args.coverage || args.threshold.is_some(),
    };
    let run = testing::run(&engine, &files, &options);
    let elapsed = start.elapsed();

    let below = match (&run.coverage, args.threshold) {
        (Some(c), Some(t)) => c.percent() < t,
        _ => false,
    };
    let none = run.results.is_empty() && run.filtered_out == 0;

    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match args.format {
        Format::Human => write_human(
            &mut out,
            &run,
            elapsed.as_secs_f64(),
            args.coverage,
            args.threshold,
        ),
        Format::Json => write_json(&mut out, &run, elapsed.as_secs_f64(), args.threshold),
        Format::Junit => write_junit(&mut out, &run, elapsed.as_secs_f64(), args.threshold),
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        eprintln!("error: cannot write the report: {e}");
        return exit::IO;
    }
    if none {
        eprintln!(
            "error: no tests found (suites are *.yaml or *.yml, Rego tests *.rego under the bundle's tests/)"
        );
        return exit::FAILED;
    }
    if below {
        if let (Some(c), Some(t)) = (&run.coverage, args.threshold) {
            eprintln!(
                "error: coverage {:.1}% is below the threshold of {t}%",
                c.percent()
            );
        }
        return exit::FAILED;
    }
    if run.failed() > 0 {
        exit::FAILED
    } else {
        exit::OK
    }
}

fn location(r: &TestResult) -> String {
    match r.line {
        Some(l) => format!("{}:{l}", r.file.display()),
        None => r.file.display().to_string(),
    }
}

fn write_human(
    out: &mut dyn Write,
    run: &TestRun,
    seconds: f64,
    coverage: bool,
    threshold: Option<f64>,
) -> io::Result<()> {
    let n = run.results.len();
    writeln!(out, "running {n} test{}", if n == 1 { "" } else { "s" })?;
    for r in &run.results {
        writeln!(
            out,
            "test {} ... {}",
            r.full_name(),
            if r.passed() { "ok" } else { "FAILED" }
        )?;
    }
    let failed: Vec<&TestResult> = run.results.iter().filter(|r| !r.passed()).collect();
    if !failed.is_empty() {
        writeln!(out, "\nfailures:")?;
        for r in &failed {
            writeln!(out, "\n---- {} ({}) ----", r.full_name(), location(r))?;
            let Some(f) = &r.failure else { continue };
            writeln!(out, "  {}", f.message)?;
            if let Some(o) = f.expected_outcome {
                write!(out, "  expected: {o}")?;
                if let Some(reasons) = &f.expected_reasons {
                    write!(out, "  reasons [{}]", reasons.join(", "))?;
                }
                if let Some(obligations) = &f.expected_obligations {
                    write!(out, "  obligations [{}]", obligations.join(", "))?;
                }
                writeln!(out)?;
            }
            if let Some(d) = &f.actual {
                writeln!(out, "  actual:   {}", d.outcome)?;
                for reason in &d.reasons {
                    writeln!(
                        out,
                        "    {:<8} {:<10} {:<30} {}",
                        reason.effect.as_str(),
                        reason.engine.as_str(),
                        reason.policy,
                        reason.message
                    )?;
                }
                for o in &d.obligations {
                    writeln!(out, "    obligation {} ({} {})", o.id, o.engine, o.policy)?;
                }
            }
        }
        writeln!(out, "\nfailures:")?;
        for r in &failed {
            writeln!(out, "    {}", r.full_name())?;
        }
    }
    writeln!(
        out,
        "\ntest result: {}. {} passed, {} failed, {} filtered out; finished in {:.2}s",
        if failed.is_empty() { "ok" } else { "FAILED" },
        run.passed(),
        run.failed(),
        run.filtered_out,
        seconds
    )?;
    if let Some(c) = &run.coverage
        && (coverage || threshold.is_some())
    {
        write_coverage(out, c, threshold)?;
    }
    Ok(())
}

fn write_coverage(out: &mut dyn Write, c: &Coverage, threshold: Option<f64>) -> io::Result<()> {
    let covered = c.items.iter().filter(|i| i.covered).count();
    write!(
        out,
        "\ncoverage: {:.1}% ({covered} of {} Rego rules and Cedar policies)",
        c.percent(),
        c.items.len()
    )?;
    if let Some(t) = threshold {
        write!(out, "; threshold {t}%")?;
    }
    writeln!(out)?;
    for e in &c.errors {
        writeln!(out, "note: an evaluation for coverage failed: {e}")?;
    }
    let uncovered: Vec<_> = c.uncovered().collect();
    if !uncovered.is_empty() {
        writeln!(out, "not covered:")?;
        for i in uncovered {
            let at = match i.line {
                Some(l) => format!("{}:{l}", i.file.display()),
                None => i.file.display().to_string(),
            };
            write!(out, "  {:<5} {:<28} {}", i.kind.as_str(), at, i.name)?;
            if !i.uncovered_lines.is_empty() {
                let lines: Vec<String> = i.uncovered_lines.iter().map(u32::to_string).collect();
                write!(out, "  (lines not evaluated: {})", lines.join(", "))?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

fn coverage_json(c: &Coverage, threshold: Option<f64>) -> Value {
    json!({
        "percent": c.percent(),
        "threshold": threshold,
        "covered": c.items.iter().filter(|i| i.covered).count(),
        "total": c.items.len(),
        "errors": c.errors,
        "items": c.items.iter().map(|i| json!({
            "kind": i.kind.as_str(),
            "name": i.name,
            "file": i.file,
            "line": i.line,
            "covered": i.covered,
            "uncovered_lines": i.uncovered_lines,
        })).collect::<Vec<_>>(),
    })
}

fn write_json(
    out: &mut dyn Write,
    run: &TestRun,
    seconds: f64,
    threshold: Option<f64>,
) -> io::Result<()> {
    let tests: Vec<Value> = run
        .results
        .iter()
        .map(|r| {
            let mut v = json!({
                "suite": r.suite,
                "name": r.name,
                "kind": r.kind.as_str(),
                "file": r.file,
                "line": r.line,
                "passed": r.passed(),
                "duration_us": r.duration_us,
            });
            if let (Some(f), Value::Object(map)) = (&r.failure, &mut v) {
                map.insert(
                    "failure".into(),
                    json!({
                        "message": f.message,
                        "expected": f.expected_outcome.map(|o| json!({
                            "outcome": o,
                            "reasons": f.expected_reasons,
                            "obligations": f.expected_obligations,
                        })),
                        "actual": f.actual,
                    }),
                );
            }
            v
        })
        .collect();
    let doc = json!({
        "passed": run.passed(),
        "failed": run.failed(),
        "filtered_out": run.filtered_out,
        "duration_s": seconds,
        "tests": tests,
        "coverage": run.coverage.as_ref().map(|c| coverage_json(c, threshold)),
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}

/// Text made safe for XML 1.0 content and attribute values: markup escaped,
/// characters XML cannot hold replaced.
pub fn xml_escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            '\'' => s.push_str("&apos;"),
            '\t' => s.push_str("&#9;"),
            '\n' => s.push_str("&#10;"),
            '\r' => s.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => s.push('\u{FFFD}'),
            c => s.push(c),
        }
    }
    s
}

fn failure_text(r: &TestResult) -> String {
    let Some(f) = &r.failure else {
        return String::new();
    };
    let mut t = format!("{}\n{}", location(r), f.message);
    if let Some(o) = f.expected_outcome {
        t.push_str(&format!("\nexpected: {o}"));
        if let Some(reasons) = &f.expected_reasons {
            t.push_str(&format!(" reasons [{}]", reasons.join(", ")));
        }
    }
    if let Some(d) = &f.actual {
        t.push_str(&format!("\nactual: {}", d.outcome));
        for reason in &d.reasons {
            t.push_str(&format!(
                "\n  {} {} {} {}",
                reason.effect.as_str(),
                reason.engine.as_str(),
                reason.policy,
                reason.message
            ));
        }
    }
    t
}

fn write_junit(
    out: &mut dyn Write,
    run: &TestRun,
    seconds: f64,
    threshold: Option<f64>,
) -> io::Result<()> {
    // Suites in order of first appearance.
    let mut suites: Vec<(&str, Vec<&TestResult>)> = Vec::new();
    for r in &run.results {
        match suites.iter_mut().find(|(name, _)| *name == r.suite) {
            Some((_, v)) => v.push(r),
            None => suites.push((&r.suite, vec![r])),
        }
    }
    writeln!(out, r#"<?xml version="1.0" encoding="UTF-8"?>"#)?;
    // The coverage suite's `threshold` case counts as a test.
    let threshold_case = run.coverage.as_ref().zip(threshold);
    let threshold_failed = threshold_case.is_some_and(|(c, t)| c.percent() < t);
    writeln!(
        out,
        r#"<testsuites name="agentriage" tests="{}" failures="{}" errors="0" time="{seconds:.6}">"#,
        run.results.len() + usize::from(threshold_case.is_some()),
        run.failed() + usize::from(threshold_failed)
    )?;
    for (name, results) in suites {
        let failures = results.iter().filter(|r| !r.passed()).count();
        #[allow(clippy::cast_precision_loss, reason = "durations are small")]
        let time: f64 = results.iter().map(|r| r.duration_us as f64 / 1e6).sum();
        let file = results
            .first()
            .map(|r| r.file.display().to_string())
            .unwrap_or_default();
        writeln!(
            out,
            r#"  <testsuite name="{}" tests="{}" failures="{failures}" errors="0" skipped="0" time="{time:.6}" file="{}">"#,
            xml_escape(name),
            results.len(),
            xml_escape(&file)
        )?;
        for r in results {
            #[allow(clippy::cast_precision_loss, reason = "durations are small")]
            let t = r.duration_us as f64 / 1e6;
            write!(
                out,
                r#"    <testcase name="{}" classname="{}" file="{}""#,
                xml_escape(&r.name),
                xml_escape(&r.suite),
                xml_escape(&r.file.display().to_string())
            )?;
            if let Some(l) = r.line {
                write!(out, r#" line="{l}""#)?;
            }
            write!(out, r#" time="{t:.6}""#)?;
            match &r.failure {
                None => writeln!(out, "/>")?,
                Some(f) => {
                    writeln!(out, ">")?;
                    writeln!(
                        out,
                        r#"      <failure message="{}" type="{}">{}</failure>"#,
                        xml_escape(&f.message),
                        r.kind.as_str(),
                        xml_escape(&failure_text(r))
                    )?;
                    writeln!(out, "    </testcase>")?;
                }
            }
        }
        writeln!(out, "  </testsuite>")?;
    }
    if let Some(c) = &run.coverage {
        write_junit_coverage(out, c, threshold)?;
    }
    writeln!(out, "</testsuites>")
}

/// Coverage as a JUnit suite of its own, `coverage`: the figures as
/// properties, the human report as its output and, with a threshold, one
/// test case `threshold` that fails when coverage is below it (so CI
/// systems show the failure where they show tests).
fn write_junit_coverage(
    out: &mut dyn Write,
    c: &Coverage,
    threshold: Option<f64>,
) -> io::Result<()> {
    let covered = c.items.iter().filter(|i| i.covered).count();
    let below = threshold.is_some_and(|t| c.percent() < t);
    writeln!(
        out,
        r#"  <testsuite name="coverage" tests="{}" failures="{}" errors="0" skipped="0" time="0">"#,
        usize::from(threshold.is_some()),
        usize::from(below)
    )?;
    writeln!(out, "    <properties>")?;
    let mut properties = vec![
        ("coverage.percent", format!("{:.1}", c.percent())),
        ("coverage.covered", covered.to_string()),
        ("coverage.total", c.items.len().to_string()),
        ("coverage.errors", c.errors.len().to_string()),
    ];
    if let Some(t) = threshold {
        properties.push(("coverage.threshold", t.to_string()));
    }
    for (name, value) in properties {
        writeln!(
            out,
            r#"      <property name="{name}" value="{}"/>"#,
            xml_escape(&value)
        )?;
    }
    writeln!(out, "    </properties>")?;
    if let Some(t) = threshold {
        write!(
            out,
            r#"    <testcase name="threshold" classname="coverage" time="0""#
        )?;
        if below {
            let message = format!(
                "coverage {:.1}% is below the threshold of {t}%",
                c.percent()
            );
            writeln!(out, ">")?;
            writeln!(
                out,
                r#"      <failure message="{}" type="coverage">{}</failure>"#,
                xml_escape(&message),
                xml_escape(&message)
            )?;
            writeln!(out, "    </testcase>")?;
        } else {
            writeln!(out, "/>")?;
        }
    }
    let mut report = Vec::new();
    write_coverage(&mut report, c, threshold)?;
    writeln!(
        out,
        "    <system-out>{}</system-out>",
        xml_escape(String::from_utf8_lossy(&report).trim())
    )?;
    writeln!(out, "  </testsuite>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escape_covers_markup_and_control_characters() {
        assert_eq!(
            xml_escape("a<b>&\"c\"'\u{1}\n"),
            "a&lt;b&gt;&amp;&quot;c&quot;&apos;\u{FFFD}&#10;"
        );
    }
}
