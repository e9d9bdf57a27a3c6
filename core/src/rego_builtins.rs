//! OPA builtins in Rego bundles: the ones regorus lacks, added as
//! interpreter extensions (`io.jwt.*`, `crypto.*`), and the load-time check
//! of every call a bundle makes.
//!
//! The check walks the parsed modules once and refuses, naming file, line
//! and builtin:
//!
//! - a call to a builtin that reaches outside the process (`http.send`,
//!   `net.lookup_ip_addr`) or reads the host's environment (`opa.runtime`):
//!   a policy decision point does not call the network, and its decisions
//!   depend on the request and the bundle only;
//! - a call that is neither a function of the bundle, a regorus builtin nor
//!   one of the extensions here (regorus would say only "unknown function",
//!   sometimes without a location, or fail while deciding);
//! - a call to an extension from a bundle evaluated by regorus's VM, which
//!   cannot call extensions.
//!
//! [`builtins_table`] renders every OPA builtin with its status for
//! `docs/policy-authoring.md`.

mod jwt;
mod keys;
mod net;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use regorus::Value;
use regorus::unstable::{Module, Ref};

use crate::error::{BundleError, BundleErrorKind};
use crate::rego::RegoEvaluator;
use crate::rego_calls::{collect_calls, imports_of, path_of, rule_exprs};

/// An extension: name, number of arguments, implementation.
type Builtin = (&'static str, u8, fn(&[Value]) -> Result<Value, String>);

/// Every extension, by name.
const EXTENSIONS: &[Builtin] = &[
    ("io.jwt.decode", 1, jwt::decode),
    ("io.jwt.decode_verify", 2, jwt::decode_verify),
    ("io.jwt.verify_eddsa", 2, |a| {
        jwt::verify_asymmetric("EdDSA", "io.jwt.verify_eddsa", a)
    }),
    ("io.jwt.verify_es256", 2, |a| {
        jwt::verify_asymmetric("ES256", "io.jwt.verify_es256", a)
    }),
    ("io.jwt.verify_es384", 2, |a| {
        jwt::verify_asymmetric("ES384", "io.jwt.verify_es384", a)
    }),
    ("io.jwt.verify_rs256", 2, |a| {
        jwt::verify_asymmetric("RS256", "io.jwt.verify_rs256", a)
    }),
    ("io.jwt.verify_rs384", 2, |a| {
        jwt::verify_asymmetric("RS384", "io.jwt.verify_rs384", a)
    }),
    ("io.jwt.verify_rs512", 2, |a| {
        jwt::verify_asymmetric("RS512", "io.jwt.verify_rs512", a)
    }),
    ("io.jwt.verify_ps256", 2, |a| {
        jwt::verify_asymmetric("PS256", "io.jwt.verify_ps256", a)
    }),
    ("io.jwt.verify_ps384", 2, |a| {
        jwt::verify_asymmetric("PS384", "io.jwt.verify_ps384", a)
    }),
    ("io.jwt.verify_ps512", 2, |a| {
        jwt::verify_asymmetric("PS512", "io.jwt.verify_ps512", a)
    }),
    ("io.jwt.verify_hs256", 2, |a| {
        jwt::verify_hs("HS256", "io.jwt.verify_hs256", a)
    }),
    ("io.jwt.verify_hs384", 2, |a| {
        jwt::verify_hs("HS384", "io.jwt.verify_hs384", a)
    }),
    ("io.jwt.verify_hs512", 2, |a| {
        jwt::verify_hs("HS512", "io.jwt.verify_hs512", a)
    }),
    ("crypto.sha256", 1, |a| {
        digest(&ring::digest::SHA256, "crypto.sha256", a)
    }),
    ("crypto.sha1", 1, |a| {
        digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, "crypto.sha1", a)
    }),
    ("crypto.hmac.sha1", 2, |a| {
        hmac(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            "crypto.hmac.sha1",
            a,
        )
    }),
    ("crypto.hmac.sha256", 2, |a| {
        hmac(ring::hmac::HMAC_SHA256, "crypto.hmac.sha256", a)
    }),
    ("crypto.hmac.sha512", 2, |a| {
        hmac(ring::hmac::HMAC_SHA512, "crypto.hmac.sha512", a)
    }),
    ("crypto.hmac.equal", 2, hmac_equal),
    ("net.cidr_intersects", 2, net::cidr_intersects),
    ("net.cidr_contains_matches", 2, net::cidr_contains_matches),
];

/// Builtins refused at load, with the reason.
const REFUSED: &[(&str, &str)] = &[
    ("http.send", NO_NETWORK),
    ("net.lookup_ip_addr", NO_NETWORK),
    ("providers.aws.sign_req", NO_NETWORK),
    (
        "opa.runtime",
        "it exposes the host's environment and configuration, and a decision depends only on the request and the bundle",
    ),
];

const NO_NETWORK: &str = "a policy decision point does not call the network";

/// OPA builtins neither regorus nor agentriage provides, with the reason.
const MISSING_REASONS: &[(&str, &str)] = &[
    ("crypto.md5", "no MD5 implementation among the dependencies"),
    (
        "crypto.hmac.md5",
        "no MD5 implementation among the dependencies",
    ),
    (
        "io.jwt.verify_es512",
        "`ring` does not verify P-521 signatures",
    ),
    (
        "io.jwt.encode_sign",
        "a decision point verifies tokens, it does not issue them",
    ),
    (
        "io.jwt.encode_sign_raw",
        "a decision point verifies tokens, it does not issue them",
    ),
    ("crypto.x509", "no X.509 parser among the dependencies"),
    (
        "crypto.parse_private_keys",
        "a decision point holds no private keys",
    ),
    ("graphql", "no GraphQL parser among the dependencies"),
    (
        "json.match_schema",
        "regorus's `jsonschema` group is not built (build cost)",
    ),
    (
        "json.verify_schema",
        "regorus's `jsonschema` group is not built (build cost)",
    ),
    ("rego.metadata", "not implemented by regorus"),
    ("all", DEPRECATED),
    ("any", DEPRECATED),
    ("cast_array", DEPRECATED),
    ("cast_boolean", DEPRECATED),
    ("cast_null", DEPRECATED),
    ("cast_object", DEPRECATED),
    ("cast_set", DEPRECATED),
    ("cast_string", DEPRECATED),
    ("re_match", DEPRECATED),
    ("set_diff", DEPRECATED),
    (
        "net.cidr_merge",
        "not implemented by regorus (OPA widens plain addresses to classful masks)",
    ),
    (
        "net.cidr_overlap",
        "deprecated in OPA: use `net.cidr_contains`",
    ),
    ("rego.parse_module", "not implemented by regorus"),
];

const DEPRECATED: &str = "deprecated in OPA and not part of Rego v1";

/// Every OPA builtin (from OPA's capabilities, operators left out).
const OPA_BUILTINS: &str = include_str!("rego_builtins/opa_builtins.txt");

/// The names of [`OPA_BUILTINS`] (its `#` lines are comments).
fn opa_builtins() -> impl Iterator<Item = &'static str> {
    OPA_BUILTINS
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

fn is_opa_builtin(name: &str) -> bool {
    opa_builtins().any(|l| l == name)
}

/// Adds every extension to `engine` (the interpreter).
pub(crate) fn register(engine: &mut regorus::Engine) -> Result<(), String> {
    for (name, nargs, f) in EXTENSIONS {
        let f = *f;
        engine
            .add_extension(
                (*name).to_owned(),
                *nargs,
                Box::new(move |args: Vec<Value>| f(&args).map_err(anyhow::Error::msg)),
            )
            .map_err(|e| format!("cannot add builtin `{name}`: {e}"))?;
    }
    Ok(())
}

fn digest(
    algorithm: &'static ring::digest::Algorithm,
    name: &str,
    args: &[Value],
) -> Result<Value, String> {
    let text = jwt::string_arg(args.first().unwrap_or(&Value::Undefined), name, 1)?;
    let d = ring::digest::digest(algorithm, text.as_bytes());
    Ok(Value::from(jwt::hex(d.as_ref()).as_str()))
}

fn hmac(algorithm: ring::hmac::Algorithm, name: &str, args: &[Value]) -> Result<Value, String> {
    let text = jwt::string_arg(args.first().unwrap_or(&Value::Undefined), name, 1)?;
    let key = jwt::string_arg(args.get(1).unwrap_or(&Value::Undefined), name, 2)?;
    let key = ring::hmac::Key::new(algorithm, key.as_bytes());
    let tag = ring::hmac::sign(&key, text.as_bytes());
    Ok(Value::from(jwt::hex(tag.as_ref()).as_str()))
}

/// `crypto.hmac.equal(a, b)`: compares in time independent of where the
/// strings differ.
fn hmac_equal(args: &[Value]) -> Result<Value, String> {
    const NAME: &str = "crypto.hmac.equal";
    let a = jwt::string_arg(args.first().unwrap_or(&Value::Undefined), NAME, 1)?;
    let b = jwt::string_arg(args.get(1).unwrap_or(&Value::Undefined), NAME, 2)?;
    if a.len() != b.len() {
        return Ok(Value::from(false));
    }
    let diff = a
        .bytes()
        .zip(b.bytes())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    Ok(Value::from(diff == 0))
}

/// How a builtin is provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    /// By regorus.
    Regorus,
    /// By an extension of this module (interpreter only).
    Extension,
    /// Refused at load.
    Refused(&'static str),
    /// Not available.
    Missing(&'static str),
}

fn is_extension(name: &str) -> bool {
    EXTENSIONS.iter().any(|(n, _, _)| *n == name)
}

/// The status of the builtin `name`, or `None` when OPA has no such builtin
/// and regorus none either.
pub(crate) fn status(name: &str) -> Option<Status> {
    if let Some((_, reason)) = REFUSED.iter().find(|(n, _)| *n == name) {
        return Some(Status::Refused(reason));
    }
    if is_extension(name) {
        return Some(Status::Extension);
    }
    if name == "print" || regorus::unstable::BUILTINS.contains_key(name) {
        return Some(Status::Regorus);
    }
    if is_opa_builtin(name) {
        let reason = MISSING_REASONS
            .iter()
            .find(|(prefix, _)| name == *prefix || name.starts_with(&format!("{prefix}.")))
            .map_or("not implemented by regorus", |(_, r)| *r);
        return Some(Status::Missing(reason));
    }
    None
}

/// One call that makes a bundle unloadable.
pub(crate) struct CallProblem {
    pub file: String,
    pub line: u32,
    pub message: String,
    /// The call is to an extension, and the evaluator is the VM.
    pub extension_under_vm: bool,
}

/// Every call of `modules` that cannot be evaluated by `mode`.
pub(crate) fn call_problems(modules: &[Ref<Module>], mode: RegoEvaluator) -> Vec<CallProblem> {
    // Every rule and function of the bundle, by its full name.
    let mut defined: BTreeSet<String> = BTreeSet::new();
    let mut packages: Vec<Option<Vec<String>>> = Vec::new();
    for module in modules {
        let package = path_of(&module.package.refr).map(|p| {
            let mut full = vec!["data".to_owned()];
            full.extend(p);
            full
        });
        if let Some(package) = &package {
            for rule in &module.policy {
                let refr = crate::rego_calls::head_ref(rule);
                if let Some(name) = path_of(refr) {
                    defined.insert(
                        package
                            .iter()
                            .chain(name.iter())
                            .cloned()
                            .collect::<Vec<_>>()
                            .join("."),
                    );
                }
            }
        }
        packages.push(package);
    }
    let mut problems = Vec::new();
    for (module, package) in modules.iter().zip(packages) {
        let Some(package) = package else { continue };
        let imports = imports_of(module);
        for rule in &module.policy {
            let (exprs, queries) = rule_exprs(rule);
            collect_calls(exprs, queries, &mut |callee, nargs| {
                let Some(path) = path_of(callee) else { return };
                let Some(head) = path.first() else { return };
                // Calls into `data` or through an import are the bundle's own.
                if head == "data" || imports.contains_key(head) {
                    return;
                }
                let local = package
                    .iter()
                    .chain(path.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(".");
                if defined.contains(&local) {
                    return;
                }
                let name = path.join(".");
                let span = callee.span();
                let expected = EXTENSIONS
                    .iter()
                    .find(|(n, _, _)| *n == name)
                    .map(|(_, n, _)| usize::from(*n));
                let message = match status(&name) {
                    Some(Status::Regorus) => return,
                    Some(Status::Extension) if expected.is_some_and(|e| e != nargs) => {
                        let takes = match expected.unwrap_or_default() {
                            1 => "1 argument".to_owned(),
                            n => format!("{n} arguments"),
                        };
                        format!(
                            "builtin `{name}` takes {takes}, not {nargs} (agentriage's extensions return their value: write `x := {name}(…)`)"
                        )
                    }
                    Some(Status::Extension) if mode == RegoEvaluator::Interpreter => return,
                    Some(Status::Extension) => format!(
                        "builtin `{name}` is provided by agentriage to the interpreter only: set `evaluator = \"interpreter\"` in the `[rego]` section of the manifest"
                    ),
                    Some(Status::Refused(reason)) => {
                        format!("builtin `{name}` is refused: {reason}")
                    }
                    Some(Status::Missing(reason)) => {
                        format!("builtin `{name}` is not supported: {reason}")
                    }
                    None => format!(
                        "unknown function `{name}`: neither a function of the bundle nor a supported builtin"
                    ),
                };
                problems.push(CallProblem {
                    file: span.source.get_path().clone(),
                    line: span.line,
                    message,
                    extension_under_vm: status(&name) == Some(Status::Extension),
                });
            });
        }
    }
    problems.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    problems
}

/// Whether `modules` call an extension (which only the interpreter can).
pub(crate) fn uses_extensions(modules: &[Ref<Module>]) -> bool {
    call_problems(modules, RegoEvaluator::Vm)
        .iter()
        .any(|p| p.extension_under_vm)
}

/// Refuses `modules` at the first call `mode` cannot evaluate.
pub(crate) fn check_calls(
    root: &Path,
    modules: &[Ref<Module>],
    mode: RegoEvaluator,
) -> Result<(), BundleError> {
    match call_problems(modules, mode).into_iter().next() {
        None => Ok(()),
        Some(p) => Err(BundleError::new(
            BundleErrorKind::Rego,
            root.join(p.file),
            Some(p.line),
            p.message,
        )),
    }
}

/// The Markdown table of every OPA builtin and how agentriage provides it,
/// followed by the builtins regorus adds beyond OPA's.
pub fn builtins_table() -> String {
    let mut names: BTreeMap<String, Status> = BTreeMap::new();
    for name in opa_builtins() {
        if let Some(s) = status(name) {
            names.insert(name.to_owned(), s);
        }
    }
    for (name, _, _) in EXTENSIONS {
        names.insert((*name).to_owned(), Status::Extension);
    }
    let mut out = String::from("| builtin | status |\n|---|---|\n");
    for (name, s) in &names {
        let text = match s {
            Status::Regorus => "supported (regorus)".to_owned(),
            Status::Extension => "supported (agentriage extension; interpreter only)".to_owned(),
            Status::Refused(reason) => format!("refused at load: {reason}"),
            Status::Missing(reason) => format!("missing: {reason}"),
        };
        out.push_str(&format!("| `{name}` | {text} |\n"));
    }
    let mut extra: Vec<&str> = regorus::unstable::BUILTINS
        .keys()
        .copied()
        .filter(|n| !n.starts_with("__") && !names.contains_key(*n) && !is_opa_builtin(n))
        .collect();
    extra.sort_unstable();
    if !extra.is_empty() {
        out.push_str("\nBuiltins regorus provides beyond OPA's: ");
        let list: Vec<String> = extra.iter().map(|n| format!("`{n}`")).collect();
        out.push_str(&list.join(", "));
        out.push_str(".\n");
    }
    out
}

#[cfg(test)]
mod tests;
