//! Which Rego rules and Cedar policies the tests exercise.
//!
//! Rego: every case's `input` is also evaluated by regorus's interpreter with
//! line coverage on (the Rego-native tests run on the same interpreter), and
//! a rule definition is covered when every line holding one of its
//! expressions was evaluated. A rule's head value (`reject contains {...}`)
//! is evaluated only when its body holds, so a rule that never fired is not
//! covered. Cedar: a policy is covered when it was a determining policy of
//! some case (it matched: a `forbid` that fired, a `permit` that allowed).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;

use regorus::unstable::{Rule, RuleHead};

use crate::bundle::Bundle;
use crate::error::line_of;
use crate::facts::Facts;
use crate::rego::{self, ENTRY_POINT};
use crate::request::Request;

/// Rego rule or Cedar policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum CoverageKind {
    /// A Rego rule definition.
    Rego,
    /// A Cedar policy.
    Cedar,
}

impl CoverageKind {
    /// `rego` or `cedar`.
    pub fn as_str(self) -> &'static str {
        match self {
            CoverageKind::Rego => "rego",
            CoverageKind::Cedar => "cedar",
        }
    }
}

/// One Rego rule definition or Cedar policy, and whether tests exercised it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoverageItem {
    /// Rego or Cedar.
    pub kind: CoverageKind,
    /// The rule's name (with the `id` it reports, if any), or the policy id.
    pub name: String,
    /// Its file, relative to the bundle.
    pub file: PathBuf,
    /// The 1-based line where it starts, where known.
    pub line: Option<u32>,
    /// Whether some test exercised it.
    pub covered: bool,
    /// For a Rego rule, the lines of it that no test evaluated.
    pub uncovered_lines: Vec<u32>,
}

/// Coverage of a bundle's Rego rules and Cedar policies by a test run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// Every rule definition and policy, by file and line.
    pub items: Vec<CoverageItem>,
    /// Evaluations for coverage that failed (the interpreter fails on
    /// runtime errors the bundle's VM leaves undefined): the rules they
    /// would have reached may show as not covered.
    pub errors: Vec<String>,
}

impl Coverage {
    /// Percentage of rules and policies covered (100 when there are none).
    pub fn percent(&self) -> f64 {
        if self.items.is_empty() {
            return 100.0;
        }
        let covered = self.items.iter().filter(|i| i.covered).count();
        #[allow(clippy::cast_precision_loss, reason = "counts are small")]
        let p = covered as f64 * 100.0 / self.items.len() as f64;
        p
    }

    /// The rules and policies no test exercised.
    pub fn uncovered(&self) -> impl Iterator<Item = &CoverageItem> {
        self.items.iter().filter(|i| !i.covered)
    }
}

/// Gathers coverage while tests run.
pub(crate) struct Tracker {
    interpreter: Option<regorus::Engine>,
    /// The bundle's own Rego module files (not the entry point, not tests).
    rego_files: HashSet<String>,
    cedar_covered: BTreeSet<String>,
    cedar_policies: Vec<(String, PathBuf, Option<u32>)>,
    errors: Vec<String>,
}

impl Tracker {
    pub(crate) fn new(bundle: &Bundle) -> Tracker {
        let mut interpreter = bundle.rego.as_ref().map(rego::RegoProgram::interpreter);
        let mut rego_files = HashSet::new();
        if let Some(engine) = &mut interpreter {
            engine.set_enable_coverage(true);
            for module in engine.get_modules() {
                let file = module.package.span.source.file().clone();
                if file != "__agentriage.rego" {
                    rego_files.insert(file);
                }
            }
        }
        Tracker {
            interpreter,
            rego_files,
            cedar_covered: BTreeSet::new(),
            cedar_policies: bundle
                .cedar
                .as_ref()
                .map(crate::cedar::CedarPolicies::policy_locations)
                .unwrap_or_default(),
            errors: Vec::new(),
        }
    }

    /// Evaluates `request` again for coverage (the decision itself comes
    /// from the engine).
    pub(crate) fn record(&mut self, bundle: &Bundle, request: &Request, facts: &Facts<'_>) {
        if let Some(engine) = &mut self.interpreter
            && let Ok(input) = rego::input(request, facts)
        {
            engine.set_input(input);
            if let Err(e) = engine.eval_rule(ENTRY_POINT.to_owned()) {
                self.errors.push(format!("{e:#}"));
            }
        }
        if let Some(cedar) = &bundle.cedar
            && let Ok(verdict) = cedar.evaluate(request, facts)
        {
            for r in verdict.reasons {
                self.cedar_covered.insert(r.policy);
            }
        }
    }

    /// The interpreter holding the coverage gathered so far (or a fresh one
    /// when the bundle has no Rego).
    pub(crate) fn interpreter(&self) -> regorus::Engine {
        self.interpreter.clone().unwrap_or_default()
    }

    /// Takes over an interpreter that started as [`interpreter`](Self::interpreter)
    /// and ran more (the Rego-native tests).
    pub(crate) fn absorb_interpreter(&mut self, engine: regorus::Engine) {
        if self.interpreter.is_some() {
            self.interpreter = Some(engine);
        }
    }

    pub(crate) fn finish(mut self) -> Coverage {
        let mut items = Vec::new();
        if let Some(engine) = &mut self.interpreter {
            let report = engine.get_coverage_report().ok();
            let mut uncovered: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
            let mut seen: HashSet<String> = HashSet::new();
            if let Some(report) = &report {
                for f in &report.files {
                    seen.insert(f.path.clone());
                    uncovered.insert(f.path.clone(), f.not_covered.clone());
                }
            }
            for module in engine.get_modules() {
                let file = module.package.span.source.file().clone();
                if !self.rego_files.contains(&file) {
                    continue;
                }
                let text = module.package.span.source.contents().clone();
                let missing = uncovered.get(&file);
                for rule in &module.policy {
                    let span = rule.span();
                    let name = rule_name(rule);
                    if name.starts_with("test_") {
                        continue;
                    }
                    let start = span.line;
                    let end = line_of(&text, usize::try_from(span.end).unwrap_or(usize::MAX));
                    let lines: Vec<u32> = if seen.contains(&file) {
                        missing
                            .map(|m| m.range(start..=end).copied().collect())
                            .unwrap_or_default()
                    } else {
                        // Never evaluated at all: every line is uncovered.
                        (start..=end).collect()
                    };
                    let label = match reported_id(span.text()) {
                        Some(id) => format!("{name} ({id})"),
                        None => name,
                    };
                    items.push(CoverageItem {
                        kind: CoverageKind::Rego,
                        name: label,
                        file: PathBuf::from(&file),
                        line: Some(start),
                        covered: lines.is_empty(),
                        uncovered_lines: lines,
                    });
                }
            }
        }
        for (id, file, line) in self.cedar_policies {
            items.push(CoverageItem {
                kind: CoverageKind::Cedar,
                covered: self.cedar_covered.contains(&id),
                name: id,
                file,
                line,
                uncovered_lines: Vec::new(),
            });
        }
        items.sort_by(|a, b| (a.kind, &a.file, a.line).cmp(&(b.kind, &b.file, b.line)));
        self.errors.dedup();
        Coverage {
            items,
            errors: self.errors,
        }
    }
}

/// The name of a rule: `reject`, `allow`, `permits`, `test_x`.
fn rule_name(rule: &Rule) -> String {
    let refr = match rule {
        Rule::Spec { head, .. } => match head {
            RuleHead::Compr { refr, .. }
            | RuleHead::Set { refr, .. }
            | RuleHead::Func { refr, .. } => refr,
        },
        Rule::Default { refr, .. } => refr,
    };
    refr.span().text().to_owned()
}

/// The `"id": "…"` a rule reports, if its text names one.
fn reported_id(text: &str) -> Option<String> {
    let at = text.find("\"id\"")?;
    let rest = text
        .get(at + 4..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    rest.get(..end).map(str::to_owned)
}

/// The `test_*` rules of the modules in `files`: (file, package, rule, line),
/// once per rule name.
pub(crate) fn test_rules(
    engine: &mut regorus::Engine,
    files: &[String],
) -> Vec<(String, String, String, u32)> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for module in engine.get_modules() {
        let file = module.package.span.source.file().clone();
        if !files.contains(&file) {
            continue;
        }
        let package = module
            .package
            .refr
            .span()
            .text()
            .trim_start_matches("data.")
            .to_owned();
        for rule in &module.policy {
            let name = rule_name(rule);
            if let Rule::Spec {
                head: RuleHead::Compr { .. },
                ..
            } = rule.as_ref()
                && name.starts_with("test_")
                && seen.insert((package.clone(), name.clone()))
            {
                out.push((file.clone(), package.clone(), name, rule.span().line));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_id_reads_the_id_key() {
        assert_eq!(
            reported_id("reject contains {\n\t\"id\": \"R1.x\",\n\"message\": m} if true")
                .as_deref(),
            Some("R1.x")
        );
        assert_eq!(reported_id("allow if true"), None);
    }
}
