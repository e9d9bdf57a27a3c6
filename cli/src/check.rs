//! `agentriage check`: every problem of a bundle, with file and line.

use std::io::{self, Write};
use std::path::Path;

use agentriage::testing::{Problem, check_bundle};
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

/// Runs the command; returns the exit code.
pub fn check(bundle: &Path, format: Format) -> u8 {
    if !bundle.is_dir() {
        eprintln!("error: `{}` is not a directory", bundle.display());
        return exit::USAGE;
    }
    let problems = check_bundle(bundle);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let written = match format {
        Format::Json => write_json(&mut out, &problems),
        Format::Human | Format::Junit => write_human(&mut out, bundle, &problems),
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

fn write_human(out: &mut dyn Write, bundle: &Path, problems: &[Problem]) -> io::Result<()> {
    for p in problems {
        writeln!(out, "{p}")?;
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

fn write_json(out: &mut dyn Write, problems: &[Problem]) -> io::Result<()> {
    let doc = json!({
        "ok": problems.is_empty(),
        "problems": problems.iter().map(|p| json!({
            "kind": p.kind,
            "file": p.file,
            "line": p.line,
            "message": p.message,
        })).collect::<Vec<_>>(),
    });
    serde_json::to_writer_pretty(&mut *out, &doc).map_err(io::Error::other)?;
    writeln!(out)
}
