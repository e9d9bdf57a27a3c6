//! `check --evaluators`: the bundle's suites, and mutated copies of their
//! requests, decided by both Rego evaluators; every difference is named.
//!
//! The interpreter is the default evaluator and the one the load-time
//! rewrites make faithful to OPA (docs/fidelity.md). A bundle that opts into
//! the VM for speed can check here, on its own requests and on the shapes an
//! agent may send instead (a field missing, a value of another type), that
//! the VM decides exactly as the interpreter does.

use std::path::Path;

use serde_json::{Map, Value};

use crate::bundle::{Bundle, BundleFiles};
use crate::engine::Engine;
use crate::error::BundleError;
use crate::rego::RegoEvaluator;

/// Mutations tried per suite case, at most.
const MAX_MUTATIONS_PER_CASE: usize = 200;

/// How deep into nested objects fields are mutated.
const MUTATION_DEPTH: usize = 3;

/// One request the two evaluators decided differently.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The suite case the request comes from (`file: case name`).
    pub case: String,
    /// What was changed in the case's request (`none` for the case itself).
    pub mutation: String,
    /// The interpreter's outcome and the policies it named, or its error.
    pub interpreter: String,
    /// The VM's, likewise.
    pub vm: String,
}

/// What [`compare_evaluators`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluatorReport {
    /// Requests decided by both evaluators (cases and their mutations).
    pub requests: usize,
    /// Every request decided differently.
    pub divergences: Vec<Divergence>,
    /// Why the VM cannot load the bundle at all, if it cannot (a builtin only
    /// the interpreter has, for one).
    pub vm_refused: Option<String>,
}

/// Decides every case of the suites under `dir/tests`, and mutated copies of
/// their requests, with the interpreter and with the VM.
///
/// The bundle must load with the interpreter (the error is returned
/// otherwise); that the VM cannot load it is reported in
/// [`EvaluatorReport::vm_refused`].
pub fn compare_evaluators(dir: impl AsRef<Path>) -> Result<EvaluatorReport, BundleError> {
    let dir = dir.as_ref();
    let interpreter = load(dir, RegoEvaluator::Interpreter)?;
    let vm = match load(dir, RegoEvaluator::Vm) {
        Ok(vm) => vm,
        Err(e) => {
            return Ok(EvaluatorReport {
                vm_refused: Some(e.to_string()),
                ..EvaluatorReport::default()
            });
        }
    };
    let mut report = EvaluatorReport::default();
    let tests = dir.join("tests");
    let files = if tests.is_dir() {
        super::discover(&[tests]).unwrap_or_default()
    } else {
        Vec::new()
    };
    for file in files
        .iter()
        .filter(|f| f.extension().is_none_or(|e| e != "rego"))
    {
        let Ok(super::SuiteFileKind::Suite(suite)) = super::load_suite(file) else {
            continue;
        };
        let short = file.strip_prefix(dir).unwrap_or(file).display().to_string();
        for case in suite.cases {
            let name = format!("{short}: {}", case.name);
            let mut requests = vec![("none".to_owned(), case.request.clone())];
            requests.extend(mutations(&case.request));
            for (mutation, request) in requests {
                let a = decide(&interpreter, &request);
                let b = decide(&vm, &request);
                report.requests += 1;
                if a != b {
                    report.divergences.push(Divergence {
                        case: name.clone(),
                        mutation,
                        interpreter: a,
                        vm: b,
                    });
                }
            }
        }
    }
    Ok(report)
}

fn load(dir: &Path, evaluator: RegoEvaluator) -> Result<Engine, BundleError> {
    let files = BundleFiles::read(dir)?;
    Ok(Engine::new(Bundle::from_files_with(
        &files,
        Some(evaluator),
    )?))
}

/// `outcome [policy, …]`, or `error: …`: what is compared.
fn decide(engine: &Engine, request: &Value) -> String {
    match engine.decide_value(request) {
        Ok(d) => {
            let mut policies: Vec<&str> = d.policy_ids().collect();
            policies.sort_unstable();
            format!("{} [{}]", d.outcome.as_str(), policies.join(", "))
        }
        Err(e) => format!("error: {e}"),
    }
}

/// Copies of `request` with one field dropped or given a value of another
/// type, in the maps an agent fills: resource, principal and action
/// attributes, and the context.
fn mutations(request: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in [
        &["resource", "attributes"][..],
        &["principal", "attributes"],
        &["action", "attributes"],
        &["context"],
    ] {
        let Some(Value::Object(map)) = lookup(request, path) else {
            continue;
        };
        let mut fields = Vec::new();
        collect_fields(
            map,
            &mut path.iter().map(|p| (*p).to_owned()).collect(),
            0,
            &mut fields,
        );
        for field in fields {
            let Some(value) = lookup_owned(request, &field) else {
                continue;
            };
            let shown = field.join(".");
            let mut dropped = request.clone();
            remove(&mut dropped, &field);
            out.push((format!("drop {shown}"), dropped));
            for other in other_types(&value) {
                let mut changed = request.clone();
                let described = format!("{shown}: {} → {}", kind(&value), kind(&other));
                set(&mut changed, &field, other);
                out.push((described, changed));
            }
            if out.len() >= MAX_MUTATIONS_PER_CASE {
                out.truncate(MAX_MUTATIONS_PER_CASE);
                return out;
            }
        }
    }
    out
}

fn collect_fields(
    map: &Map<String, Value>,
    prefix: &mut Vec<String>,
    depth: usize,
    out: &mut Vec<Vec<String>>,
) {
    for (key, value) in map {
        prefix.push(key.clone());
        out.push(prefix.clone());
        if let Value::Object(inner) = value
            && depth + 1 < MUTATION_DEPTH
        {
            collect_fields(inner, prefix, depth + 1, out);
        }
        prefix.pop();
    }
}

fn other_types(value: &Value) -> Vec<Value> {
    match value {
        Value::Null => vec![Value::from(0), Value::from("")],
        Value::Bool(b) => vec![Value::from(b.to_string()), Value::Null],
        Value::Number(n) => vec![Value::from(n.to_string()), Value::Null],
        Value::String(s) => vec![
            s.parse::<i64>().map_or(Value::from(0), Value::from),
            Value::Null,
            Value::Array(vec![Value::from(s.clone())]),
        ],
        Value::Array(_) => vec![Value::Object(Map::new()), Value::from("")],
        Value::Object(_) => vec![Value::Array(Vec::new()), Value::from("")],
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn lookup<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn lookup_owned(value: &Value, path: &[String]) -> Option<Value> {
    path.iter().try_fold(value, |v, key| v.get(key)).cloned()
}

fn parent_mut<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Map<String, Value>> {
    let (_, parents) = path.split_last()?;
    let mut at = value;
    for key in parents {
        at = at.get_mut(key)?;
    }
    at.as_object_mut()
}

fn remove(value: &mut Value, path: &[String]) {
    if let (Some(map), Some(last)) = (parent_mut(value, path), path.last()) {
        map.remove(last);
    }
}

fn set(value: &mut Value, path: &[String], new: Value) {
    if let (Some(map), Some(last)) = (parent_mut(value, path), path.last()) {
        map.insert(last.clone(), new);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;

    #[test]
    fn mutations_drop_and_retype_each_field() {
        let request = serde_json::json!({
            "principal": {"id": "a"},
            "action": {"name": "x"},
            "resource": {"type": "t", "attributes": {"n": 5, "o": {"s": "a"}}},
        });
        let names: Vec<String> = mutations(&request).into_iter().map(|(m, _)| m).collect();
        for expected in [
            "drop resource.attributes.n",
            "resource.attributes.n: number → string",
            "drop resource.attributes.o.s",
            "resource.attributes.o: object → array",
            "resource.attributes.o.s: string → number",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} not in {names:?}"
            );
        }
        let dropped = mutations(&request)
            .into_iter()
            .find(|(m, _)| m == "drop resource.attributes.n")
            .unwrap()
            .1;
        assert!(dropped["resource"]["attributes"].get("n").is_none());
        assert_eq!(dropped["resource"]["attributes"]["o"]["s"], "a");
    }
}
