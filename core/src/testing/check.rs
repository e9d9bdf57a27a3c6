//! `check`: every problem of a bundle, each with file and line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::bundle::{Bundle, MANIFEST_FILE};
use crate::error::{BundleError, line_of};
use crate::load_limits::{Language, Totals};
use crate::rego::RegoEvaluator;

/// One problem [`check_bundle`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// A stable, machine-readable kind: the [`BundleErrorKind`](crate::BundleErrorKind)
    /// names (`manifest`, `rego`, `cedar`, `validation`, `data`, `io`, `limit`), plus
    /// `unknown_action`, `unused_rule` and `suite`.
    pub kind: String,
    /// The file at fault.
    pub file: PathBuf,
    /// The 1-based line, where known.
    pub line: Option<u32>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    fn from_bundle(e: &BundleError) -> Problem {
        Problem {
            kind: e.kind().as_str().to_owned(),
            file: e.file().to_path_buf(),
            line: e.line(),
            message: e.message().to_owned(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}: {}", self.kind, self.message)
    }
}

/// Checks the bundle in `dir` and returns every problem found (none: the
/// bundle is sound):
///
/// - the bundle loads: the manifest is valid, every Rego module parses and
///   compiles, every Cedar policy parses and validates against the schema,
///   the entities and data are valid (each Rego module and Cedar file is
///   also parsed on its own, so a problem in one does not hide another), and
///   every file is within the load limits (a file beyond them is reported
///   and not parsed);
/// - every action the policies name — a string compared with
///   `input.action.name` in Rego, an `Action::"…"` in Cedar — is in the
///   bundle's risk table (an action missing from it has risk class `unknown`);
/// - every top-level rule of the decision package is a decision rule
///   (`reject`, `escalate`, `allow`, `obligations`) or used by one: a rule
///   that is neither never affects a decision (a misspelled `escalte`), and
///   the problem names the nearest decision rule;
/// - every call in the Rego modules is to a function of the bundle or to a
///   supported builtin: a call to a network builtin, an unknown function, or
///   (with `evaluator = "vm"`) an agentriage extension is reported with its
///   file and line;
/// - every suite under `tests/` parses.
pub fn check_bundle(dir: impl AsRef<Path>) -> Vec<Problem> {
    let dir = dir.as_ref();
    let mut problems = Vec::new();
    let manifest = read_manifest(dir);
    let rego_files = manifest_list(manifest.as_ref(), "rego", "modules");
    let cedar_files = manifest_list(manifest.as_ref(), "cedar", "policies");

    // Each file on its own first: a broken module does not hide the next.
    // The bundle's totals are kept across them, so that many files each
    // within the limits cannot add up to a slow check.
    let mut totals = Totals::default();
    let mut bundle_modules = regorus::Engine::new();
    bundle_modules.set_rego_v0(false);
    for rel in &rego_files {
        let Ok(text) = std::fs::read_to_string(dir.join(rel)) else {
            continue;
        };
        // Text beyond the load limits never reaches the parser.
        if let Err(e) = totals.add(&dir.join(rel), &text, Language::Rego, false) {
            problems.push(Problem::from_bundle(&e));
            continue;
        }
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        if let Err(e) = engine.add_policy(rel.clone(), text.clone()) {
            let message = format!("{e:#}");
            let line = message
                .find(&format!("{rel}:"))
                .and_then(|at| message.get(at + rel.len() + 1..))
                .and_then(|rest| rest.split(':').next())
                .and_then(|l| l.trim().parse::<u32>().ok());
            problems.push(Problem {
                kind: "rego".into(),
                file: dir.join(rel),
                line,
                message: crate::rego::without_location(&message, rel)
                    .unwrap_or_else(|| message.trim().to_owned()),
            });
        } else {
            // Parsed on its own, so it parses here too.
            let _ = bundle_modules.add_policy(rel.clone(), text);
        }
    }
    // Every call that cannot be made, across the modules that parse (a call
    // into another module of the same package must resolve). Without an
    // explicit `vm`, only what no evaluator can call is reported here; the
    // load below reports an extension the default evaluator cannot call.
    let evaluator = match manifest
        .as_ref()
        .and_then(|m| m.get("rego"))
        .and_then(|r| r.get("evaluator"))
        .and_then(|e| e.as_str())
    {
        Some("vm") => RegoEvaluator::Vm,
        _ => RegoEvaluator::Interpreter,
    };
    for p in crate::rego_builtins::call_problems(bundle_modules.get_modules(), evaluator) {
        problems.push(Problem {
            kind: "rego".into(),
            file: dir.join(&p.file),
            line: Some(p.line),
            message: p.message,
        });
    }
    // Rules no decision rule uses, when every module parsed within the limits.
    if problems.is_empty() {
        problems.extend(unused_decision_rules(
            dir,
            manifest.as_ref(),
            bundle_modules.get_modules(),
        ));
    }
    for rel in &cedar_files {
        let Ok(text) = std::fs::read_to_string(dir.join(rel)) else {
            continue;
        };
        if let Err(e) = totals.add(&dir.join(rel), &text, Language::Cedar, true) {
            problems.push(Problem::from_bundle(&e));
            continue;
        }
        if let Err(e) = cedar_policy::PolicySet::from_str(&text) {
            use miette::Diagnostic;
            let line = e
                .labels()
                .and_then(|mut l| l.next())
                .map(|l| line_of(&text, l.offset()));
            problems.push(Problem {
                kind: "cedar".into(),
                file: dir.join(rel),
                line,
                message: e.to_string(),
            });
        }
    }

    if let Err(e) = Bundle::load(dir) {
        let p = Problem::from_bundle(&e);
        // The per-file pass may have found the same problem already.
        if !problems
            .iter()
            .any(|q| q.file == p.file && (q.line == p.line || q.kind == p.kind))
        {
            problems.push(p);
        }
    }
    // Actions are checked against the manifest's risk table even when the
    // bundle does not load, so one run shows every problem.
    if let Some(risk) = manifest.as_ref().map(risk_table) {
        for (files, find) in [
            (
                &rego_files,
                rego_actions as fn(&str) -> Vec<(String, usize)>,
            ),
            (&cedar_files, cedar_actions),
        ] {
            for rel in files {
                if let Ok(text) = std::fs::read_to_string(dir.join(rel)) {
                    for (action, offset) in find(&text) {
                        if !risk.contains(&action) {
                            problems.push(unknown_action(dir, rel, &text, &action, offset));
                        }
                    }
                }
            }
        }
    }

    let tests = dir.join("tests");
    if tests.is_dir() {
        match super::discover(&[tests]) {
            Ok(files) => {
                for f in files.iter().filter(|f| !super::is_rego(f)) {
                    if let Err(e) = super::load_suite(f) {
                        problems.push(Problem {
                            kind: "suite".into(),
                            file: e.file().to_path_buf(),
                            line: e.line(),
                            message: e.message().to_owned(),
                        });
                    }
                }
            }
            Err(e) => problems.push(Problem {
                kind: "io".into(),
                file: e.file().to_path_buf(),
                line: None,
                message: e.message().to_owned(),
            }),
        }
    }
    problems
}

fn unknown_action(dir: &Path, rel: &str, text: &str, action: &str, offset: usize) -> Problem {
    Problem {
        kind: "unknown_action".into(),
        file: dir.join(rel),
        line: Some(line_of(text, offset)),
        message: format!(
            "action `{action}` is not in the risk table of `{MANIFEST_FILE}`: its risk class would be `unknown`"
        ),
    }
}

/// Every action of the manifest's `[risk_classes]`.
fn risk_table(manifest: &toml::Table) -> HashSet<String> {
    manifest
        .get("risk_classes")
        .and_then(|v| v.as_table())
        .map(|classes| {
            classes
                .values()
                .filter_map(|v| v.as_array())
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Rules of the decision package that no decision rule uses (a misspelled
/// `escalte` never fires and would otherwise pass unnoticed).
fn unused_decision_rules(
    dir: &Path,
    manifest: Option<&toml::Table>,
    modules: &[regorus::unstable::Ref<regorus::unstable::Module>],
) -> Vec<Problem> {
    let package = manifest
        .and_then(|m| m.get("rego"))
        .and_then(|r| r.get("package"))
        .and_then(|p| p.as_str())
        .unwrap_or("agentriage");
    crate::rego_calls::unused_decision_rules(modules, package)
        .into_iter()
        .map(|rule| Problem {
            kind: "unused_rule".into(),
            file: dir.join(&rule.file),
            line: Some(rule.line),
            message: format!(
                "rule `{}` of the decision package `{package}` is not a decision rule ({}) and no decision rule uses it, so it never affects a decision; {}",
                rule.name,
                crate::rego_calls::DECISION_RULES
                    .iter()
                    .map(|r| format!("`{r}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
                rule.nearest.map_or_else(
                    || "use it from a decision rule or remove it".to_owned(),
                    |n| format!("did you mean `{n}`?")
                )
            ),
        })
        .collect()
}

fn read_manifest(dir: &Path) -> Option<toml::Table> {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).ok()?;
    toml::from_str(&text).ok()
}

fn manifest_list(manifest: Option<&toml::Table>, section: &str, key: &str) -> Vec<String> {
    manifest
        .and_then(|m| m.get(section))
        .and_then(|s| s.get(key))
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads the string literal starting at `text[at..]` (after optional
/// whitespace): its content and the offset of its opening quote.
fn string_at(text: &str, at: usize) -> Option<(String, usize)> {
    let rest = text.get(at..)?;
    let skipped = rest.len() - rest.trim_start().len();
    let start = at + skipped;
    let body = text.get(start..)?.strip_prefix('"')?;
    let end = body.find('"')?;
    Some((body.get(..end)?.to_owned(), start))
}

/// Actions Rego compares with `input.action.name`: `== "x"`, `!= "x"`,
/// `"x" == …`, and `in {"x", "y"}` / `in ["x", "y"]`.
fn rego_actions(text: &str) -> Vec<(String, usize)> {
    const NAME: &str = "input.action.name";
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(found) = text.get(from..).and_then(|t| t.find(NAME)) {
        let at = from + found;
        let after = at + NAME.len();
        let rest = text.get(after..).unwrap_or("");
        let trimmed = rest.trim_start();
        let pad = rest.len() - trimmed.len();
        if let Some(op) = ["==", "!="].iter().find(|op| trimmed.starts_with(**op)) {
            if let Some(s) = string_at(text, after + pad + op.len()) {
                out.push(s);
            }
        } else if trimmed.starts_with("in ") {
            let open = after + pad + 3;
            let list = text.get(open..).unwrap_or("").trim_start();
            if list.starts_with('{') || list.starts_with('[') {
                let base = text.len() - list.len();
                let close = list.find(['}', ']']).unwrap_or(0);
                let mut i = 0;
                while i < close {
                    if let Some(q) = list.get(i..close).and_then(|s| s.find('"')) {
                        if let Some(s) = string_at(text, base + i + q) {
                            i += q + s.0.len() + 2;
                            out.push(s);
                        } else {
                            break;
                        }
                    } else {
                        break;
                    }
                }
            }
        }
        // `"x" == input.action.name`
        let before = text.get(..at).unwrap_or("").trim_end();
        if let Some(b) = before
            .strip_suffix("==")
            .or_else(|| before.strip_suffix("!="))
        {
            let b = b.trim_end();
            if let Some(lit) = b.strip_suffix('"')
                && let Some(q) = lit.rfind('"')
            {
                out.push((lit.get(q + 1..).unwrap_or("").to_owned(), q));
            }
        }
        from = after;
    }
    out
}

/// Actions Cedar names as `Action::"x"` (outside comments).
fn cedar_actions(text: &str) -> Vec<(String, usize)> {
    const ACTION: &str = "Action::";
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let code = line.split("//").next().unwrap_or("");
        let mut from = 0;
        while let Some(found) = code.get(from..).and_then(|t| t.find(ACTION)) {
            let at = offset + from + found + ACTION.len();
            if let Some(s) = string_at(text, at) {
                out.push(s);
            }
            from += found + ACTION.len();
        }
        offset += line.len();
    }
    out
}

/// The bundle's waivers that expire within `horizon_days` of `now` (kind
/// `waiver_expiring`; the bundle's `waivers.expiry_warning_days` when
/// `None`) and those already expired at `now` (kind `waiver_expired`, inert
/// and due for removal), each at its manifest line. Empty for a bundle
/// that does not load (`check_bundle` reports why).
pub fn waiver_warnings(
    dir: impl AsRef<Path>,
    now: crate::Timestamp,
    horizon_days: Option<u64>,
) -> Vec<Problem> {
    let dir = dir.as_ref();
    let Ok(bundle) = Bundle::load(dir) else {
        return Vec::new();
    };
    let config = bundle.controls().waivers();
    let days = horizon_days.unwrap_or_else(|| config.warning_days());
    let horizon = now
        .unix_nanos()
        .saturating_add(i128::from(days) * 86_400 * 1_000_000_000);
    let mut out = Vec::new();
    for w in config.waivers() {
        let (kind, message) = if w.expired_at(now.unix_nanos()) {
            (
                "waiver_expired",
                format!(
                    "waiver `{}` expired at {}: it no longer applies; remove it or renew it (owner {})",
                    w.id, w.expires, w.owner
                ),
            )
        } else if w.expires_unix_nanos() <= horizon {
            (
                "waiver_expiring",
                format!(
                    "waiver `{}` expires at {}, within {days} days (owner {}, {})",
                    w.id, w.expires, w.owner, w.risk_acceptance
                ),
            )
        } else {
            continue;
        };
        out.push(Problem {
            kind: kind.into(),
            file: dir.join(crate::MANIFEST_FILE),
            line: w.line,
            message,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_actions_in_rego() {
        let text = "a if input.action.name == \"x.y\"\nb if \"p.q\" == input.action.name\nc if input.action.name in {\"m\", \"n\"}\nd := input.action.name\n";
        let found: Vec<String> = rego_actions(text).into_iter().map(|(a, _)| a).collect();
        assert_eq!(found, ["x.y", "p.q", "m", "n"]);
        let (_, off) = rego_actions(text)[1].clone();
        assert_eq!(line_of(text, off), 2);
    }

    #[test]
    fn finds_actions_in_cedar() {
        let text = "// Action::\"ignored\"\npermit (principal, action in [Action::\"a.b\", Action::\"c\"], resource);\n";
        let found: Vec<(String, u32)> = cedar_actions(text)
            .into_iter()
            .map(|(a, o)| (a, line_of(text, o)))
            .collect();
        assert_eq!(found, [("a.b".to_owned(), 2), ("c".to_owned(), 2)]);
    }
}
