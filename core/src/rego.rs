//! Rego evaluation through regorus's bytecode VM.
//!
//! At load, the bundle's modules and data go into a regorus `Engine`, which
//! compiles one generated entry point (`data.__agentriage.decision`) that
//! collects the package's `reject`, `escalate`, `allow` and `obligations`
//! rules. The resulting program is shared; each thread keeps its own VM
//! (a VM is `Send` but not `Sync`), created on the thread's first decision.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use regorus::Value;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use regorus::rvm::program::Program;
use thread_local::ThreadLocal;

use crate::decision::{Effect, Obligation, Reason, Source};
use crate::error::{BundleError, BundleErrorKind};
use crate::facts::Facts;
use crate::request::{MAX_DEPTH, Request};

const WRAPPER_PACKAGE: &str = "__agentriage";
const ENTRY_POINT: &str = "data.__agentriage.decision";

/// The compiled Rego half of a bundle.
pub(crate) struct RegoProgram {
    program: Arc<Program>,
    data: Value,
    package: String,
    max_instructions: usize,
    vms: ThreadLocal<RefCell<Option<RegoVM>>>,
    /// The prepared interpreter, kept for tools (tests, coverage) that need
    /// what the VM does not offer.
    #[allow(dead_code, reason = "used by tests and by policy tooling")]
    pub(crate) interpreter: regorus::Engine,
}

/// What the Rego half of a bundle said about one request.
#[derive(Debug, Default)]
pub(crate) struct RegoVerdict {
    pub reasons: Vec<Reason>,
    pub allow: bool,
    pub obligations: Vec<Obligation>,
}

fn wrapper_module(package: &str) -> String {
    format!(
        "package {WRAPPER_PACKAGE}\n\
         import rego.v1\n\
         default allow := false\n\
         allow if data.{package}.allow == true\n\
         decision := {{\n\
           \"reject\": [x | some x in data.{package}.reject],\n\
           \"escalate\": [x | some x in data.{package}.escalate],\n\
           \"obligations\": [x | some x in data.{package}.obligations],\n\
           \"allow\": allow,\n\
         }}\n"
    )
}

/// Splits a regorus message `path:line:col: error: …` into line and message.
fn locate(root: &Path, modules: &[(PathBuf, String)], message: &str) -> (PathBuf, Option<u32>, String) {
    for (path, _) in modules {
        let name = path.to_string_lossy();
        if let Some(at) = message.find(&format!("{name}:")) {
            let rest = message.get(at + name.len() + 1..).unwrap_or("");
            let line = rest
                .split(':')
                .next()
                .and_then(|l| l.trim().parse::<u32>().ok());
            return (root.join(path), line, message.trim().to_owned());
        }
    }
    let first = modules
        .first()
        .map_or_else(|| root.to_path_buf(), |(p, _)| root.join(p));
    (first, None, message.trim().to_owned())
}

impl RegoProgram {
    pub(crate) fn compile(
        root: &Path,
        package: &str,
        modules: &[(PathBuf, String)],
        data: &[(PathBuf, String)],
        max_instructions: usize,
    ) -> Result<RegoProgram, BundleError> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for (path, text) in modules {
            engine
                .add_policy(path.to_string_lossy().into_owned(), text.clone())
                .map_err(|e| {
                    let (file, line, message) = locate(root, modules, &format!("{e:#}"));
                    BundleError::new(BundleErrorKind::Rego, file, line, message)
                })?;
        }
        let mut merged = Value::new_object();
        for (path, text) in data {
            let value = Value::from_json_str(text).map_err(|e| {
                BundleError::new(
                    BundleErrorKind::Data,
                    root.join(path),
                    None,
                    format!("not valid JSON: {e}"),
                )
            })?;
            if value.as_object().is_err() {
                return Err(BundleError::new(
                    BundleErrorKind::Data,
                    root.join(path),
                    None,
                    "a data file must hold a JSON object",
                ));
            }
            merged = merge_data(merged, value).map_err(|key| {
                BundleError::new(
                    BundleErrorKind::Data,
                    root.join(path),
                    None,
                    format!("key `{key}` is also defined by an earlier data file"),
                )
            })?;
        }
        engine.add_data(merged.clone()).map_err(|e| {
            BundleError::new(BundleErrorKind::Data, root.to_path_buf(), None, format!("{e:#}"))
        })?;
        let interpreter = engine.clone();
        engine
            .add_policy("__agentriage.rego".into(), wrapper_module(package))
            .map_err(|e| {
                BundleError::new(BundleErrorKind::Rego, root.to_path_buf(), None, format!("{e:#}"))
            })?;
        let entry: Arc<str> = Arc::from(ENTRY_POINT);
        let compiled = engine.compile_with_entrypoint(&entry).map_err(|e| {
            let (file, line, message) = locate(root, modules, &format!("{e:#}"));
            BundleError::new(BundleErrorKind::Rego, file, line, message)
        })?;
        let program = Compiler::compile_from_policy(&compiled, &[ENTRY_POINT]).map_err(|e| {
            let (file, line, message) = locate(root, modules, &format!("{e:#}"));
            BundleError::new(
                BundleErrorKind::Rego,
                file,
                line,
                format!("cannot compile to bytecode: {message}"),
            )
        })?;
        // Data must not collide with rules; find out now rather than per decision.
        let mut probe = RegoVM::new();
        probe.load_program(program.clone());
        probe.set_data(merged.clone()).map_err(|e| {
            BundleError::new(BundleErrorKind::Data, root.to_path_buf(), None, format!("{e}"))
        })?;
        Ok(RegoProgram {
            program,
            data: merged,
            package: package.to_owned(),
            max_instructions,
            vms: ThreadLocal::new(),
            interpreter,
        })
    }

    fn new_vm(&self) -> Result<RegoVM, String> {
        let mut vm = RegoVM::new();
        vm.load_program(self.program.clone());
        vm.set_data(self.data.clone()).map_err(|e| e.to_string())?;
        vm.set_max_instructions(self.max_instructions);
        Ok(vm)
    }

    /// Evaluates the bundle's Rego rules; an `Err` says what broke.
    pub(crate) fn evaluate(&self, input: Value) -> Result<RegoVerdict, String> {
        let cell = self.vms.get_or(|| RefCell::new(None));
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "rego VM of this thread is busy".to_owned())?;
        if slot.is_none() {
            *slot = Some(self.new_vm()?);
        }
        let Some(vm) = slot.as_mut() else {
            return Err("rego VM unavailable".into());
        };
        vm.set_input(input);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vm.execute()));
        let value = match outcome {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => {
                // A VM that panicked may hold broken state: build a new one next time.
                *slot = None;
                return Err("rego evaluation panicked".into());
            }
        };
        // Release the input now rather than at the next decision.
        vm.set_input(Value::Undefined);
        self.verdict(&value)
    }

    fn verdict(&self, value: &Value) -> Result<RegoVerdict, String> {
        let Ok(obj) = value.as_object() else {
            return Err(format!("rego decision is not an object: {value}"));
        };
        let field = |k: &str| obj.get(&Value::from(k));
        let mut verdict = RegoVerdict {
            allow: matches!(field("allow"), Some(Value::Bool(true))),
            ..RegoVerdict::default()
        };
        if verdict.allow {
            verdict.reasons.push(Reason {
                engine: Source::Rego,
                policy: format!("{}.allow", self.package),
                message: format!("permitted by rule `data.{}.allow`", self.package),
                effect: Effect::Permit,
            });
        }
        for (key, effect) in [("reject", Effect::Reject), ("escalate", Effect::Escalate)] {
            if let Some(Value::Array(items)) = field(key) {
                for item in items.iter() {
                    verdict.reasons.push(self.reason(item, key, effect));
                }
            }
        }
        if let Some(Value::Array(items)) = field("obligations") {
            for item in items.iter() {
                verdict.obligations.push(self.obligation(item));
            }
        }
        Ok(verdict)
    }

    fn reason(&self, item: &Value, rule: &str, effect: Effect) -> Reason {
        let default_policy = format!("{}.{rule}", self.package);
        let (policy, message) = match item {
            Value::String(s) => (default_policy, s.to_string()),
            Value::Object(o) => {
                let get = |k: &str| match o.get(&Value::from(k)) {
                    Some(Value::String(s)) => Some(s.to_string()),
                    _ => None,
                };
                (
                    get("id").unwrap_or(default_policy),
                    get("message")
                        .or_else(|| get("msg"))
                        .unwrap_or_else(|| item.to_string()),
                )
            }
            other => (default_policy, other.to_string()),
        };
        Reason {
            engine: Source::Rego,
            policy,
            message,
            effect,
        }
    }

    fn obligation(&self, item: &Value) -> Obligation {
        let policy = format!("{}.obligations", self.package);
        match item {
            Value::Object(o) => {
                let mut params = serde_json::Map::new();
                let mut id = None;
                for (k, v) in o.iter() {
                    let key = match k {
                        Value::String(s) => s.to_string(),
                        other => other.to_string(),
                    };
                    let json = serde_json::from_str(&v.to_string()).unwrap_or(serde_json::Value::Null);
                    if key == "id" {
                        id = Some(json.as_str().map_or_else(|| v.to_string(), str::to_owned));
                    } else {
                        params.insert(key, json);
                    }
                }
                Obligation {
                    id: id.unwrap_or_else(|| item.to_string()),
                    engine: Source::Rego,
                    policy,
                    params,
                }
            }
            Value::String(s) => Obligation {
                id: s.to_string(),
                engine: Source::Rego,
                policy,
                params: serde_json::Map::new(),
            },
            other => Obligation {
                id: other.to_string(),
                engine: Source::Rego,
                policy,
                params: serde_json::Map::new(),
            },
        }
    }
}

/// Merges two data documents; `Err(key)` names a key both define.
fn merge_data(base: Value, next: Value) -> Result<Value, String> {
    let (Ok(a), Ok(b)) = (base.as_object(), next.as_object()) else {
        return Ok(next);
    };
    let mut out: BTreeMap<Value, Value> = a.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    for (k, v) in b.iter() {
        if out.insert(k.clone(), v.clone()).is_some() {
            return Err(k.to_string());
        }
    }
    Ok(Value::from(out))
}

// ---- building `input` -------------------------------------------------------

fn key(k: &str) -> Value {
    Value::from(k)
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> BTreeMap<Value, Value> {
    pairs
        .into_iter()
        .filter(|(_, v)| *v != Value::Undefined)
        .map(|(k, v)| (key(k), v))
        .collect()
}

fn opt_str(s: Option<&String>) -> Value {
    s.map_or(Value::Undefined, |s| Value::from(s.as_str()))
}

fn strings(items: &[String]) -> Value {
    Value::from(items.iter().map(|s| Value::from(s.as_str())).collect::<Vec<_>>())
}

/// Converts JSON to a Rego value; `Err` names the path nesting too deep.
pub(crate) fn json_to_rego(v: &serde_json::Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("value nests deeper than {MAX_DEPTH} levels"));
    }
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::from(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Value::from(s.as_str()),
        serde_json::Value::Array(items) => Value::from(
            items
                .iter()
                .map(|i| json_to_rego(i, depth + 1))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        serde_json::Value::Object(map) => map_to_rego(map, depth + 1)?,
    })
}

fn map_to_rego(map: &serde_json::Map<String, serde_json::Value>, depth: usize) -> Result<Value, String> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        out.insert(Value::from(k.as_str()), json_to_rego(v, depth)?);
    }
    Ok(Value::from(out))
}

/// Seconds as a number: an integer when whole, else a float.
fn seconds(nanos: i128) -> Value {
    if nanos % 1_000_000_000 == 0 {
        i64::try_from(nanos / 1_000_000_000).map_or(Value::Undefined, Value::from)
    } else {
        #[allow(clippy::cast_precision_loss, reason = "sub-microsecond precision is not needed")]
        Value::from(nanos as f64 / 1e9)
    }
}

/// The `input` document: the request, normalized, plus `facts`.
pub(crate) fn input(request: &Request, facts: &Facts) -> Result<Value, String> {
    let p = &request.principal;
    let credential = p.credential.as_ref().map_or(Value::Undefined, |c| {
        Value::from(object([
            ("issuer", opt_str(c.issuer.as_ref())),
            (
                "expires_at",
                c.expires_at.map_or(Value::Undefined, |t| Value::from(t.to_string())),
            ),
        ]))
    });
    let attestation = p.attestation.as_ref().map_or(Value::Undefined, |a| {
        Value::from(object([
            ("status", opt_str(a.status.as_ref())),
            ("kind", opt_str(a.kind.as_ref())),
            (
                "verified_at",
                a.verified_at.map_or(Value::Undefined, |t| Value::from(t.to_string())),
            ),
        ]))
    });
    let principal = object([
        ("id", Value::from(p.id.as_str())),
        ("type", opt_str(p.kind.as_ref())),
        ("trust_zone", opt_str(p.trust_zone.as_ref())),
        ("roles", strings(&p.roles)),
        ("delegation", strings(&p.delegation)),
        ("credential", credential),
        ("attestation", attestation),
        ("attributes", map_to_rego(&p.attributes, 3)?),
    ]);
    let action = object([
        ("name", Value::from(request.action.name.as_str())),
        ("attributes", map_to_rego(&request.action.attributes, 3)?),
    ]);
    let resource = match &request.resource {
        None => Value::Undefined,
        Some(r) => Value::from(object([
            ("type", Value::from(r.kind.as_str())),
            ("id", opt_str(r.id.as_ref())),
            ("attributes", map_to_rego(&r.attributes, 3)?),
        ])),
    };
    let anomaly = request.anomaly.as_ref().map_or(Value::Undefined, |a| {
        Value::from(object([(
            "score",
            a.score.map_or(Value::Undefined, Value::from),
        )]))
    });
    let facts_value = object([
        ("time", Value::from(facts.time.to_string())),
        ("time_unix", seconds(facts.time.unix_nanos())),
        ("hour_utc", Value::from(u64::from(facts.time.hour_utc()))),
        ("risk_class", Value::from(facts.risk_class)),
        (
            "credential_ttl_s",
            facts.credential_ttl_nanos.map_or(Value::Undefined, seconds),
        ),
        (
            "attestation_age_s",
            facts.attestation_age_nanos.map_or(Value::Undefined, seconds),
        ),
        (
            "anomaly_score",
            facts.anomaly_score.map_or(Value::Undefined, Value::from),
        ),
    ]);
    Ok(Value::from(object([
        ("trace_id", opt_str(request.trace_id.as_ref())),
        (
            "time",
            request.time.map_or(Value::Undefined, |t| Value::from(t.to_string())),
        ),
        ("principal", Value::from(principal)),
        ("action", Value::from(action)),
        ("resource", resource),
        ("context", map_to_rego(&request.context, 2)?),
        ("anomaly", anomaly),
        ("intent", opt_str(request.intent.as_ref())),
        ("facts", Value::from(facts_value)),
    ])))
}
