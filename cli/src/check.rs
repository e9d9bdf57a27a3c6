//! `agentriage check`: every problem of a bundle, with file and line.

use std::io::{self, Write};
use std::path::Path;

use agentriage::testing::{
    EvaluatorReport, Problem, check_bundle, compare_evaluators, waiver_warnings,
};
use serde_json::json;

use crate::test_cmd::Format;

/// Exit codes of `agentriage check`, documented in its `--help`.
pub mod exit {
    /// The bundle has no problem.
    pub const OK: u8 = 0;
    /// The bundle has at least one problem (including: it does not load).
    pub const PROBLEMS: u8 = 1;
    /// Bad command-line usage.
    pub const USAGE: u8 = 2;
    /// The report could not be written.
    pub const IO: u8 = 4;
}

/// Exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  the bundle has no problem
  1  the bundle has at least one problem (each printed with file and line)
  2  bad command-line usage
  4  the report could not be written";

/// Runs the command; returns the exit code. With `evaluators`, the suites
/// and mutated copies of their requests are also decided by both Rego
/// evaluators, and every difference is a problem.
///
/// Waivers expiring within the horizon, or expired at `now`, are warnings:
/// printed, without changing the exit code.
pub fn check(
    bundle: &Path,
    format: Format,
    evaluators: bool,
    now: Option<&str>,
    waiver_horizon_days: Option<u64>,
) -> u8 {
    if !bundle.is_dir() {
        eprintln!("error: `{}` is not a directory", bundle.display());
        return exit::USAGE;
    }
    let now = match now {
        None => agentriage::Timestamp::now(),
        Some(t) => match agentriage::Timestamp::parse(t) {
            Ok(t) => t,
            Err(_) => {
                eprintln!("error: --now `{t}` is not an RFC 3339 time");
                return exit::USAGE;
            }
        },
    };
    let warnings = waiver_warnings(bundle, now, waiver_horizon_days);
    let mut problems = check_bundle(bundle);
    let mut compared = None;
    if evaluators && problems.is_empty() {
        match compare_evaluators(bundle) {
            Ok(report) => {
                problems.extend(divergences(bundle, &report));
                compared = Some(report.requests);
            }
            Err(e) => problems.push(Problem {
                kind: e.kind().as_str().to_owned(),
                file: e.file().to_path_buf(),
                line: e.line(),
                message: e.message().to_owned(),
            }),
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match format {
        Format::Json => write_json(&mut out, &problems, &warnings, compared),
        Format::Human | Format::Junit => {
            write_human(&mut out, bundle, &problems, &warnings, compared)
        }
    }
    .and_then(|()| out.flush());
    if let Err(e) = written {
        eprintln!("error: cannot write the report: {e}");
        return exit::IO;
    }
    if problems.is_empty() {
        exit::OK
    } else {
        exit::PROBLEMS
    }
}

/// Each request the evaluators decided differently, as a problem.
fn divergences(bundle: &Path, report: &EvaluatorReport) -> Vec<Problem> {
    let mut out = Vec::new();
    if let Some(why) = &report.vm_refused {
        out.push(Problem {
            kind: "evaluator".into(),
            file: bundle.to_path_buf(),
            line: None,
            message: format!("the VM cannot load this bundle, only the interpreter can: {why}"),
        });
    }
    out.extend(report.divergences.iter().map(|d| Problem {
        kind: "evaluator_divergence".into(),
        file: bundle.join(d.case.split(": ").next().unwrap_or_default()),
        line: None,
        message: format!(
            "case `{}`, mutation `{}`: the interpreter decides `{}`, the VM `{}`",
            d.case, d.mutation, d.interpreter, d.vm
        ),
    }));
    out
}

fn write_human(
    out: &mut dyn Write,
    bundle: &Path,
    problems: &[Problem],
    warnings: &[Problem],
    compared: Option<usize>,
) -> io::Result<()> {
    for p in problems {
        writeln!(out, "{p}")?;
    }
    for w in warnings {
        writeln!(out, "warning: {w}")?;
    }
    if let Some(n) = compared {
        writeln!(
            out,
            "{} decided by both Rego evaluators",
            crate::count(n as u64, "request")
        )?;
    }
    match problems.len() {
        0 => writeln!(out, "{}: ok, no problems", bundle.display()),
        n => writeln!(
            out,
            "{}: {n} problem{}",
            bundle.display(),
            if n == 1 { "" } else { "s" }
        ),
    }
}

fn write_json(
    out: &mut dyn Write,
    problems: &[Problem],
    warnings: &[Problem],
    compared: Option<usize>,
) -> io::Result<()> {
    let list = |items: &[Problem]| {
        items
            .iter()
            .map(|p| {
                json!({
                    "kind": p.kind,
                    "file": p.file,
                    "line": p.line,
                    "message": p.message,
                })
            })
            .collect::<Vec<_>>()
    };
    let doc = json!({
        "ok": problems.is_empty(),
        "evaluator_requests": compared,
        "problems": list(problems),
        "warnings": list(warnings),
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}
