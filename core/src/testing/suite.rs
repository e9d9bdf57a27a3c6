//! Test suites as data: the YAML format and its loader.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::decision::Outcome;

/// Largest suite file the loader reads, in bytes (4 MiB).
pub const MAX_SUITE_BYTES: u64 = 4 << 20;

/// A suite file that cannot be used: names the file and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SuiteError {
    file: PathBuf,
    line: Option<u32>,
    message: String,
}

impl SuiteError {
    pub(crate) fn new(
        file: impl Into<PathBuf>,
        line: Option<u32>,
        message: impl Into<String>,
    ) -> Self {
        SuiteError {
            file: file.into(),
            line: line.filter(|&l| l > 0),
            message: message.into(),
        }
    }

    /// The suite file at fault.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line in [`file`](Self::file), where one is known.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The problem, without file and line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for SuiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// How a list of expected policy ids (or obligation ids) is compared.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    /// Every expected id must be among the decision's; others may be too.
    #[default]
    Subset,
    /// The decision's ids must be exactly the expected ones (order and
    /// repetitions aside).
    Exact,
}

impl Match {
    /// `subset` or `exact`.
    pub fn as_str(self) -> &'static str {
        match self {
            Match::Subset => "subset",
            Match::Exact => "exact",
        }
    }
}

/// What a case expects of the decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    /// The outcome.
    pub outcome: Outcome,
    /// Policy ids among the decision's reasons, if checked.
    pub reasons: Option<Vec<String>>,
    /// Obligation ids of the decision, if checked.
    pub obligations: Option<Vec<String>>,
    /// How `reasons` and `obligations` compare.
    pub matching: Match,
}

/// One test case: a request, built from its base and patch, and what it expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The case's name, unique within its suite.
    pub name: String,
    /// The 1-based line where the case starts in its suite file.
    pub line: u32,
    /// The request to decide, as JSON (checked against the contract when run).
    pub request: Value,
    /// How many times the request is decided before the decision that is
    /// checked, in the case's own state (quotas, used approvals and
    /// intents): `prior: 3` checks the fourth decision.
    pub prior: u32,
    /// What the decision must be.
    pub expect: Expectation,
}

/// Most `prior` decisions a case may ask for.
pub const MAX_PRIOR: u32 = 1000;

/// A suite: named cases read from one YAML file.
#[derive(Debug, Clone, PartialEq)]
pub struct Suite {
    /// The suite's name.
    pub name: String,
    /// The file it was read from.
    pub file: PathBuf,
    /// Its cases, in file order.
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SuiteFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for people; read by nothing")]
    description: Option<String>,
    #[serde(default)]
    import: Vec<Spanned<String>>,
    #[serde(default)]
    bases: BTreeMap<String, Value>,
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    cases: Option<Vec<Spanned<CaseFile>>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Defaults {
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    time: Option<String>,
    #[serde(default)]
    r#match: Option<Match>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    name: String,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for people; read by nothing")]
    description: Option<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    request: Option<Value>,
    #[serde(default)]
    patch: Option<Value>,
    #[serde(default)]
    prior: Option<u32>,
    expect: ExpectFile,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    outcome: Outcome,
    #[serde(default)]
    reasons: Option<Vec<String>>,
    #[serde(default)]
    obligations: Option<Vec<String>>,
    #[serde(default)]
    r#match: Option<Match>,
}

fn read_text(path: &Path) -> Result<String, SuiteError> {
    let meta = std::fs::metadata(path)
        .map_err(|e| SuiteError::new(path, None, format!("cannot read: {e}")))?;
    if meta.len() > MAX_SUITE_BYTES {
        return Err(SuiteError::new(
            path,
            None,
            format!("suite file is larger than {MAX_SUITE_BYTES} bytes"),
        ));
    }
    std::fs::read_to_string(path)
        .map_err(|e| SuiteError::new(path, None, format!("cannot read: {e}")))
}

fn parse_file(path: &Path, text: &str) -> Result<SuiteFile, SuiteError> {
    // YAML 1.2 booleans only: `no`, `on` or `y` stay strings (a site named
    // `no` must not turn into `false`).
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.with_snippet = false;
    serde_saphyr::from_str_with_options::<SuiteFile>(text, options).map_err(|e| {
        let line = e.location().and_then(|l| u32::try_from(l.line()).ok());
        let message = e.to_string();
        // The message may repeat the location; keep its first line only.
        let message = message.lines().next().unwrap_or("invalid YAML").trim();
        SuiteError::new(path, line, format!("not a valid suite: {message}"))
    })
}

fn line_u32(span: &Spanned<impl Sized>) -> u32 {
    u32::try_from(span.referenced.line()).unwrap_or(0)
}

/// JSON merge patch (RFC 7396): `null` removes a key, objects merge, anything
/// else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(k);
                    } else {
                        merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// What a YAML file under `tests/` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum SuiteFileKind {
    /// A suite with cases.
    Suite(Suite),
    /// A library of bases (only `bases`, no `name` and no `cases`), imported by suites.
    Library,
}

/// Reads and parses the suite file at `path`, resolving its imports.
pub fn load_suite(path: impl AsRef<Path>) -> Result<SuiteFileKind, SuiteError> {
    let path = path.as_ref();
    let text = read_text(path)?;
    parse_suite(path, &text)
}

/// Parses `text`, the suite file at `path` (imports are read relative to it).
pub fn parse_suite(path: &Path, text: &str) -> Result<SuiteFileKind, SuiteError> {
    let file = parse_file(path, text)?;
    let (name, cases) = match (file.name, file.cases) {
        (None, None) => {
            if !file.import.is_empty() {
                return Err(SuiteError::new(
                    path,
                    file.import.first().map(line_u32),
                    "a library of bases (no `name`, no `cases`) cannot import",
                ));
            }
            return Ok(SuiteFileKind::Library);
        }
        (None, Some(_)) => {
            return Err(SuiteError::new(path, Some(1), "the suite has no `name`"));
        }
        (Some(_), None) => {
            return Err(SuiteError::new(path, Some(1), "the suite has no `cases`"));
        }
        (Some(name), Some(cases)) => (name, cases),
    };
    if name.trim().is_empty() {
        return Err(SuiteError::new(
            path,
            Some(1),
            "the suite's `name` is empty",
        ));
    }

    let mut bases: BTreeMap<String, (Value, PathBuf)> = BTreeMap::new();
    let dir = path.parent().unwrap_or(Path::new("."));
    for import in &file.import {
        let target = dir.join(&import.value);
        let text = read_text(&target).map_err(|e| {
            SuiteError::new(
                path,
                Some(line_u32(import)),
                format!("cannot import `{}`: {}", import.value, e.message()),
            )
        })?;
        let imported = parse_file(&target, &text)?;
        if imported.name.is_some() || imported.cases.is_some() || !imported.import.is_empty() {
            return Err(SuiteError::new(
                path,
                Some(line_u32(import)),
                format!(
                    "`{}` is not a library of bases: it may hold only `bases` (and `description`)",
                    import.value
                ),
            ));
        }
        for (k, v) in imported.bases {
            if let Some((_, from)) = bases.insert(k.clone(), (v, target.clone())) {
                return Err(SuiteError::new(
                    path,
                    Some(line_u32(import)),
                    format!(
                        "base `{k}` is defined by both `{}` and `{}`",
                        from.display(),
                        target.display()
                    ),
                ));
            }
        }
    }
    for (k, v) in file.bases {
        if let Some((_, from)) = bases.insert(k.clone(), (v, path.to_path_buf())) {
            return Err(SuiteError::new(
                path,
                None,
                format!("base `{k}` is also defined by `{}`", from.display()),
            ));
        }
    }
    for (k, (v, from)) in &bases {
        if !v.is_object() {
            return Err(SuiteError::new(
                from,
                None,
                format!("base `{k}` is not a mapping (a request)"),
            ));
        }
    }

    let defaults = file.defaults;
    if let Some(base) = &defaults.base
        && !bases.contains_key(base)
    {
        return Err(SuiteError::new(
            path,
            None,
            format!("`defaults.base` names `{base}`, which no base defines"),
        ));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(cases.len());
    for spanned in cases {
        let line = line_u32(&spanned);
        let case = spanned.value;
        let err = |message: String| SuiteError::new(path, Some(line), message);
        if !seen.insert(case.name.clone()) {
            return Err(err(format!("case name `{}` is used twice", case.name)));
        }
        let mut request = match (&case.request, case.base.as_ref().or(defaults.base.as_ref())) {
            (Some(_), Some(_)) if case.base.is_some() => {
                return Err(err(format!(
                    "case `{}` has both `request` and `base`; use one",
                    case.name
                )));
            }
            (Some(r), _) => r.clone(),
            (None, Some(base)) => match bases.get(base) {
                Some((v, _)) => v.clone(),
                None => {
                    return Err(err(format!(
                        "case `{}` names base `{base}`, which no base defines",
                        case.name
                    )));
                }
            },
            (None, None) => {
                return Err(err(format!(
                    "case `{}` has no `request`, no `base` and the suite no `defaults.base`",
                    case.name
                )));
            }
        };
        if let Some(patch) = &case.patch {
            if !patch.is_object() {
                return Err(err(format!(
                    "case `{}`: `patch` must be a mapping (a JSON merge patch)",
                    case.name
                )));
            }
            merge_patch(&mut request, patch);
        }
        if let (Some(time), Value::Object(map)) = (&defaults.time, &mut request)
            && !map.contains_key("time")
        {
            map.insert("time".to_owned(), Value::String(time.clone()));
        }
        let prior = case.prior.unwrap_or(0);
        if prior > MAX_PRIOR {
            return Err(SuiteError::new(
                path,
                Some(line),
                format!(
                    "case `{}`: `prior` is {prior}, more than the {MAX_PRIOR} allowed",
                    case.name
                ),
            ));
        }
        out.push(Case {
            name: case.name,
            line,
            request,
            prior,
            expect: Expectation {
                outcome: case.expect.outcome,
                reasons: case.expect.reasons,
                obligations: case.expect.obligations,
                matching: case.expect.r#match.or(defaults.r#match).unwrap_or_default(),
            },
        });
    }
    Ok(SuiteFileKind::Suite(Suite {
        name,
        file: path.to_path_buf(),
        cases: out,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn parse(text: &str) -> Result<SuiteFileKind, SuiteError> {
        parse_suite(Path::new("t.yaml"), text)
    }

    fn suite(text: &str) -> Suite {
        match parse(text).unwrap() {
            SuiteFileKind::Suite(s) => s,
            SuiteFileKind::Library => panic!("library"),
        }
    }

    #[test]
    fn cases_patch_their_base_and_take_defaults() {
        let s = suite(
            "name: s\nbases:\n  b: {principal: {id: a}, action: {name: x}}\ndefaults:\n  base: b\n  time: '2026-01-01T00:00:00Z'\n  match: exact\ncases:\n  - name: one\n    patch: {action: {name: y}, principal: null}\n    expect: {outcome: reject, reasons: [R1]}\n  - name: two\n    request: {principal: {id: p}, action: {name: z}, time: '2020-01-01T00:00:00Z'}\n    expect: {outcome: execute, match: subset}\n",
        );
        assert_eq!(s.cases.len(), 2);
        let one = &s.cases[0];
        assert_eq!(one.line, 9);
        assert_eq!(
            one.request,
            serde_json::json!({"action": {"name": "y"}, "time": "2026-01-01T00:00:00Z"})
        );
        assert_eq!(one.expect.outcome, Outcome::Reject);
        assert_eq!(one.expect.matching, Match::Exact);
        assert_eq!(one.expect.reasons.as_deref(), Some(&["R1".to_owned()][..]));
        let two = &s.cases[1];
        assert_eq!(two.request["time"], "2020-01-01T00:00:00Z");
        assert_eq!(two.expect.matching, Match::Subset);
    }

    #[test]
    fn yaml_1_1_booleans_stay_strings() {
        let s = suite(
            "name: s\ncases:\n  - name: a\n    request: {context: {site: no, flag: on, ok: true}}\n    expect: {outcome: reject}\n",
        );
        assert_eq!(
            s.cases[0].request,
            serde_json::json!({"context": {"site": "no", "flag": "on", "ok": true}})
        );
    }

    #[test]
    fn an_unknown_outcome_names_the_line() {
        let e =
            parse("name: s\ncases:\n  - name: a\n    request: {}\n    expect: {outcome: allow}\n")
                .unwrap_err();
        assert_eq!(e.line(), Some(5), "{e}");
        assert!(e.message().contains("allow"), "{e}");
    }

    #[test]
    fn broken_yaml_and_unknown_keys_name_the_line() {
        let e = parse("name: s\ncases:\n  - name: a\n    expect: {outcome: reject\n").unwrap_err();
        assert!(e.line().is_some(), "{e}");
        let e =
            parse("name: s\ncases:\n  - name: a\n    request: {}\n    expcet: {}\n").unwrap_err();
        assert_eq!(e.line(), Some(5), "{e}");
        assert!(e.message().contains("expcet"), "{e}");
    }

    #[test]
    fn unknown_bases_and_duplicate_names_are_errors() {
        let e =
            parse("name: s\ncases:\n  - name: a\n    base: nope\n    expect: {outcome: reject}\n")
                .unwrap_err();
        assert_eq!(e.line(), Some(3));
        assert!(e.message().contains("`nope`"), "{e}");
        let e = parse("name: s\ncases:\n  - name: a\n    request: {}\n    expect: {outcome: reject}\n  - name: a\n    request: {}\n    expect: {outcome: reject}\n")
            .unwrap_err();
        assert_eq!(e.line(), Some(6));
        let e = parse("name: s\ncases:\n  - name: a\n    expect: {outcome: reject}\n").unwrap_err();
        assert!(e.message().contains("no `request`"), "{e}");
    }

    #[test]
    fn a_file_with_only_bases_is_a_library() {
        assert_eq!(
            parse("bases:\n  b: {action: {name: x}}\n").unwrap(),
            SuiteFileKind::Library
        );
        assert!(
            parse("cases: []\n")
                .unwrap_err()
                .message()
                .contains("`name`")
        );
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut v = serde_json::json!({"a": {"b": 1, "c": 2}, "d": [1]});
        merge_patch(
            &mut v,
            &serde_json::json!({"a": {"b": null, "e": 3}, "d": {"x": 1}}),
        );
        assert_eq!(v, serde_json::json!({"a": {"c": 2, "e": 3}, "d": {"x": 1}}));
    }
}
