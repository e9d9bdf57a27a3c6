//! Limits on what Rego builtins may produce, and a budget per evaluation.
//!
//! regorus stops an evaluation on its clock only between steps, so one call
//! of an amplifying builtin (`numbers.range(1, 1e9)`, `sprintf` with a huge
//! width, `concat` of a doubled string, `json.marshal` of a value that
//! shares its parts) can run for seconds or exhaust memory before the clock
//! is read. Here every such builtin is wrapped:
//!
//! 1. before the call, the size of its output is projected from its
//!    arguments (an upper bound, computed without building the output) and
//!    refused when over `rego.max_builtin_output_bytes`, or when it would take
//!    the evaluation's total builtin output over `rego.max_eval_bytes`;
//! 2. regorus's own implementation computes the result, so results are
//!    exactly regorus's;
//! 3. the size of the actual result is charged to the evaluation, and, when
//!    the host counts allocations ([`crate::alloc::Counting`]), the growth of
//!    the thread's heap since the evaluation began is checked against
//!    `rego.max_eval_bytes`.
//!
//! A limit that is hit is remembered for the rest of the evaluation, and the
//! evaluation fails with it whatever the evaluator made of the error (a
//! caught error cannot turn into an `execute`).
//!
//! The interpreter reaches the wrappers as extensions (regorus resolves
//! extensions before builtins); the VM through its table of resolved
//! builtins. Sizes count string bytes, and [`ELEMENT_BYTES`] for each element
//! of an array, set or object.

use std::cell::{Cell, RefCell};
use std::sync::{Arc, OnceLock};

use regorus::Value;
use regorus::rvm::program::Program;
use regorus::unstable::{BUILTINS, Expr, Ref, Source, Span};

/// Default of `rego.max_builtin_output_bytes`: the most one builtin call may
/// produce (16 MiB).
pub const DEFAULT_MAX_BUILTIN_OUTPUT_BYTES: u64 = 16 << 20;

/// Default of `rego.max_eval_bytes`: the most the builtin calls of one
/// evaluation may produce together, and the most the evaluating thread's heap
/// may grow when the host counts allocations (64 MiB).
pub const DEFAULT_MAX_EVAL_BYTES: u64 = 64 << 20;

/// What one element of an array, set or object counts for.
pub const ELEMENT_BYTES: u64 = 32;

/// The output limits of one bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutputLimits {
    /// Most bytes one builtin call may produce.
    pub max_builtin_output_bytes: u64,
    /// Most bytes one evaluation may produce through builtins, and grow the heap by.
    pub max_eval_bytes: u64,
}

impl Default for OutputLimits {
    fn default() -> OutputLimits {
        OutputLimits {
            max_builtin_output_bytes: DEFAULT_MAX_BUILTIN_OUTPUT_BYTES,
            max_eval_bytes: DEFAULT_MAX_EVAL_BYTES,
        }
    }
}

/// A limit an evaluation hit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitExceeded {
    /// One call would produce too much.
    #[error(
        "builtin `{builtin}` would produce about {bytes} bytes, over the limit `rego.max_builtin_output_bytes` = {limit}"
    )]
    BuiltinOutput {
        /// The builtin.
        builtin: &'static str,
        /// Its projected or actual output.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The calls of one evaluation would produce too much together.
    #[error(
        "builtin `{builtin}` would take the output of this evaluation's builtins to about {bytes} bytes, over the limit `rego.max_eval_bytes` = {limit}"
    )]
    EvalOutput {
        /// The builtin whose call crossed the budget.
        builtin: &'static str,
        /// The evaluation's total with this call.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The evaluating thread's heap grew too much.
    #[error(
        "the evaluation grew the heap by {bytes} bytes (seen at builtin `{builtin}`), over the limit `rego.max_eval_bytes` = {limit}"
    )]
    EvalHeap {
        /// Where the growth was seen (`end` after the evaluation).
        builtin: &'static str,
        /// The growth.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

impl LimitExceeded {
    fn as_limit_error(&self) -> regorus::LimitError {
        let (usage, limit) = match self {
            LimitExceeded::BuiltinOutput { bytes, limit, .. }
            | LimitExceeded::EvalOutput { bytes, limit, .. }
            | LimitExceeded::EvalHeap { bytes, limit, .. } => (*bytes, *limit),
        };
        regorus::LimitError::MemoryLimitExceeded { usage, limit }
    }
}

// ---- per-thread evaluation state ---------------------------------------------

struct State {
    active: Cell<bool>,
    limits: Cell<OutputLimits>,
    used: Cell<u64>,
    heap_base: Cell<(u64, u64)>,
    tripped: RefCell<Option<LimitExceeded>>,
}

thread_local! {
    static STATE: State = const {
        State {
            active: Cell::new(false),
            limits: Cell::new(OutputLimits {
                max_builtin_output_bytes: DEFAULT_MAX_BUILTIN_OUTPUT_BYTES,
                max_eval_bytes: DEFAULT_MAX_EVAL_BYTES,
            }),
            used: Cell::new(0),
            heap_base: Cell::new((0, 0)),
            tripped: RefCell::new(None),
        }
    };
}

/// How much the thread's heap grew since `base` (zero without counting).
fn heap_growth(base: (u64, u64)) -> u64 {
    let (allocated, freed) = crate::alloc::thread_heap_bytes();
    let (base_allocated, base_freed) = base;
    let grown = allocated.wrapping_sub(base_allocated);
    let shrunk = freed.wrapping_sub(base_freed);
    grown.saturating_sub(shrunk)
}

/// One evaluation's budget, from [`Budget::start`] to [`Budget::finish`]
/// (or drop) on the evaluating thread.
pub(crate) struct Budget {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Budget {
    /// Starts an evaluation under `limits` on this thread.
    pub(crate) fn start(limits: OutputLimits) -> Budget {
        let _ = STATE.try_with(|s| {
            s.active.set(true);
            s.limits.set(limits);
            s.used.set(0);
            s.heap_base.set(crate::alloc::thread_heap_bytes());
            if let Ok(mut t) = s.tripped.try_borrow_mut() {
                *t = None;
            }
        });
        Budget {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Ends the evaluation: the first limit it hit, if any (the heap is
    /// checked once more here).
    pub(crate) fn finish(self) -> Option<LimitExceeded> {
        let _ = check_heap("end");
        STATE
            .try_with(|s| s.tripped.try_borrow_mut().ok().and_then(|mut t| t.take()))
            .ok()
            .flatten()
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        let _ = STATE.try_with(|s| {
            s.active.set(false);
            s.used.set(0);
        });
    }
}

/// Runs `f` as one evaluation under `limits`; the second value is the first
/// limit the evaluation hit, if any.
#[cfg(test)]
pub(crate) fn within<T>(limits: OutputLimits, f: impl FnOnce() -> T) -> (T, Option<LimitExceeded>) {
    let budget = Budget::start(limits);
    let out = f();
    (out, budget.finish())
}

/// Records `e` (the first one of an evaluation wins) and makes the error
/// the builtin returns: a regorus `LimitError`, which regorus propagates
/// even where it turns other builtin errors into undefined.
fn trip(e: LimitExceeded) -> anyhow::Error {
    let limit_error = e.as_limit_error();
    let message = e.to_string();
    let _ = STATE.try_with(|s| {
        if s.active.get()
            && let Ok(mut t) = s.tripped.try_borrow_mut()
            && t.is_none()
        {
            *t = Some(e);
        }
    });
    anyhow::Error::new(limit_error).context(message)
}

fn check_heap(at: &'static str) -> Result<(), anyhow::Error> {
    let over = STATE
        .try_with(|s| {
            if !s.active.get() {
                return None;
            }
            let limit = s.limits.get().max_eval_bytes;
            let grown = heap_growth(s.heap_base.get());
            (grown > limit).then_some(LimitExceeded::EvalHeap {
                builtin: at,
                bytes: grown,
                limit,
            })
        })
        .ok()
        .flatten();
    match over {
        Some(e) => Err(trip(e)),
        None => Ok(()),
    }
}

/// Refuses a call whose projected output is over a limit.
fn before(builtin: &'static str, projected: u64) -> Result<(), anyhow::Error> {
    let (limits, active, used) = STATE
        .try_with(|s| (s.limits.get(), s.active.get(), s.used.get()))
        .unwrap_or((OutputLimits::default(), false, 0));
    let limits = if active {
        limits
    } else {
        OutputLimits::default()
    };
    if projected > limits.max_builtin_output_bytes {
        return Err(trip(LimitExceeded::BuiltinOutput {
            builtin,
            bytes: projected,
            limit: limits.max_builtin_output_bytes,
        }));
    }
    let total = used.saturating_add(projected);
    if active && total > limits.max_eval_bytes {
        return Err(trip(LimitExceeded::EvalOutput {
            builtin,
            bytes: total,
            limit: limits.max_eval_bytes,
        }));
    }
    check_heap(builtin)
}

/// Charges the actual output of a call to the evaluation.
fn after(builtin: &'static str, out: &Value) -> Result<(), anyhow::Error> {
    let size = shallow_size(out);
    let (limits, active, used) = STATE
        .try_with(|s| (s.limits.get(), s.active.get(), s.used.get()))
        .unwrap_or((OutputLimits::default(), false, 0));
    if !active {
        return Ok(());
    }
    if size > limits.max_builtin_output_bytes {
        return Err(trip(LimitExceeded::BuiltinOutput {
            builtin,
            bytes: size,
            limit: limits.max_builtin_output_bytes,
        }));
    }
    let total = used.saturating_add(size);
    let _ = STATE.try_with(|s| s.used.set(total));
    if total > limits.max_eval_bytes {
        return Err(trip(LimitExceeded::EvalOutput {
            builtin,
            bytes: total,
            limit: limits.max_eval_bytes,
        }));
    }
    check_heap(builtin)
}

/// The size a value counts for, its elements not followed: the result of
/// a call is new at its top level, its elements mostly shared with the
/// arguments.
fn shallow_size(v: &Value) -> u64 {
    match v {
        Value::String(s) => len(s.len()),
        Value::Array(a) => len(a.len()).saturating_mul(ELEMENT_BYTES),
        Value::Set(s) => len(s.len()).saturating_mul(ELEMENT_BYTES),
        Value::Object(o) => len(o.len()).saturating_mul(ELEMENT_BYTES),
        _ => ELEMENT_BYTES,
    }
}

fn len(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

// ---- the wrappers ----------------------------------------------------------

type BuiltinFn = fn(&Span, &[Ref<Expr>], &[Value], bool) -> anyhow::Result<Value>;
type Projection = fn(&[Value], u64) -> u64;

fn call(
    name: &'static str,
    projection: Projection,
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    let Some(original) = BUILTINS.get(name) else {
        anyhow::bail!("builtin `{name}` is not available");
    };
    let limit = STATE
        .try_with(|s| s.limits.get().max_builtin_output_bytes)
        .unwrap_or(DEFAULT_MAX_BUILTIN_OUTPUT_BYTES);
    before(name, projection(args, limit))?;
    let out = (original.0)(span, params, args, strict)?;
    after(name, &out)?;
    Ok(out)
}

macro_rules! guarded {
    ($($wrapper:ident => $name:literal, $projection:path;)*) => {
        $(
            fn $wrapper(
                span: &Span,
                params: &[Ref<Expr>],
                args: &[Value],
                strict: bool,
            ) -> anyhow::Result<Value> {
                call($name, $projection, span, params, args, strict)
            }
        )*
        /// The guarded builtins and their wrappers.
        const GUARDED: &[(&str, BuiltinFn)] = &[$(($name, $wrapper),)*];
    };
}

guarded! {
    g_range => "numbers.range", project::range;
    g_range_step => "numbers.range_step", project::range_step;
    g_concat => "concat", project::concat;
    g_sprintf => "sprintf", project::sprintf;
    g_json_marshal => "json.marshal", project::json_marshal;
    g_json_marshal_with_options => "json.marshal_with_options", project::json_marshal_with_options;
    g_yaml_marshal => "yaml.marshal", project::yaml_marshal;
    g_array_concat => "array.concat", project::array_concat;
    g_array_slice => "array.slice", project::array_slice;
    g_replace_n => "strings.replace_n", project::replace_n;
    g_replace => "replace", project::replace;
    g_regex_replace => "regex.replace", project::regex_replace;
    g_split => "split", project::split;
    g_regex_split => "regex.split", project::regex_split;
    g_regex_find_n => "regex.find_n", project::regex_find_n;
    g_format_int => "format_int", project::format_int;
    g_union => "union", project::union;
    g_object_union => "object.union", project::object_union;
    g_object_union_n => "object.union_n", project::object_union_n;
    g_base64_encode => "base64.encode", project::base64;
    g_base64url_encode => "base64url.encode", project::base64;
    g_base64url_encode_no_pad => "base64url.encode_no_pad", project::base64;
    g_hex_encode => "hex.encode", project::hex;
    g_urlquery_encode => "urlquery.encode", project::urlquery;
    g_urlquery_encode_object => "urlquery.encode_object", project::urlquery_object;
    g_glob_quote_meta => "glob.quote_meta", project::quote_meta;
    g_upper => "upper", project::case;
    g_lower => "lower", project::case;
    g_cidr_expand => "net.cidr_expand", project::cidr_expand;
    g_bits_lsh => "bits.lsh", project::lsh;
}

/// Builtins whose arguments regorus reads more loosely than OPA: checked
/// first, then regorus's own implementation runs (docs/fidelity.md).
const CHECKED: &[(&str, BuiltinFn)] = &[
    ("to_number", g_to_number),
    ("time.parse_rfc3339_ns", g_parse_rfc3339_ns),
    ("net.cidr_contains", g_cidr_contains),
];

/// `net.cidr_contains`: OPA (Go's `net` package) reads an IPv4-mapped IPv6
/// address or network (`::ffff:10.1.2.3`, `::ffff:10.0.0.0/104`) as the IPv4
/// one it maps; regorus compares them as IPv6, so `10.0.0.0/8` would not
/// contain `::ffff:10.1.2.3` and a `reject if net.cidr_contains(…)` would not
/// fire. The arguments are mapped to IPv4 first, then regorus decides.
fn g_cidr_contains(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    let args: Vec<Value> = args.iter().map(ipv4_mapped_as_ipv4).collect();
    let Some(original) = BUILTINS.get("net.cidr_contains") else {
        anyhow::bail!("builtin `net.cidr_contains` is not available");
    };
    (original.0)(span, params, &args, strict)
}

/// `::ffff:a.b.c.d` → `a.b.c.d`, `::ffff:a.b.c.d/p` → `a.b.c.d/(p - 96)`;
/// anything else unchanged.
fn ipv4_mapped_as_ipv4(value: &Value) -> Value {
    let Value::String(text) = value else {
        return value.clone();
    };
    let (address, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text.as_ref(), None),
    };
    let Some(v4) = address
        .parse::<std::net::Ipv6Addr>()
        .ok()
        .and_then(|a| a.to_ipv4_mapped())
    else {
        return value.clone();
    };
    match prefix {
        None => Value::from(v4.to_string()),
        Some(p) => match p.parse::<u8>() {
            Ok(bits) if (96..=128).contains(&bits) => Value::from(format!("{v4}/{}", bits - 96)),
            _ => value.clone(),
        },
    }
}

/// `time.parse_rfc3339_ns`: OPA (Go's `time.RFC3339` layout) requires an
/// upper-case `T` between date and time and an upper-case `Z`; regorus also
/// accepts `2026-11-21 14:05:00Z`, which could let a malformed deadline
/// parse where OPA fails the rule.
fn g_parse_rfc3339_ns(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    if let Some(Value::String(text)) = args.first()
        && (text.as_bytes().get(10) != Some(&b'T') || text.ends_with('z'))
    {
        anyhow::bail!(
            "time.parse_rfc3339_ns: `{text}` is not RFC 3339 as OPA reads it (`T` between date and time, `Z` in upper case)"
        );
    }
    let Some(original) = BUILTINS.get("time.parse_rfc3339_ns") else {
        anyhow::bail!("builtin `time.parse_rfc3339_ns` is not available");
    };
    (original.0)(span, params, args, strict)
}

/// `to_number` of a string: OPA reads JSON number syntax only (`" 7"`,
/// `"+7"`, `".5"`, `"0x10"`, `"1_000"` are errors there); regorus accepts
/// some of them, which could let `allow if to_number(x) < 10` permit what OPA
/// refuses.
fn g_to_number(
    span: &Span,
    params: &[Ref<Expr>],
    args: &[Value],
    strict: bool,
) -> anyhow::Result<Value> {
    if let Some(Value::String(text)) = args.first()
        && !is_json_number(text)
    {
        anyhow::bail!("to_number: `{text}` is not a number in JSON syntax, as OPA requires");
    }
    let Some(original) = BUILTINS.get("to_number") else {
        anyhow::bail!("builtin `to_number` is not available");
    };
    (original.0)(span, params, args, strict)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// The names of the builtins whose output is limited.
#[cfg(test)]
pub(crate) fn guarded_builtins() -> impl Iterator<Item = &'static str> {
    GUARDED.iter().map(|(name, _)| *name)
}

fn wrapper(name: &str) -> Option<BuiltinFn> {
    GUARDED
        .iter()
        .chain(CHECKED)
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}

/// The span and argument expressions the interpreter's extensions hand to
/// the wrapped builtins (which use them only to locate their errors).
fn placeholders() -> Option<&'static (Span, Vec<Ref<Expr>>)> {
    static PLACEHOLDERS: OnceLock<Option<(Span, Vec<Ref<Expr>>)>> = OnceLock::new();
    PLACEHOLDERS
        .get_or_init(|| {
            let source = Source::from_contents("<builtin>".into(), String::new()).ok()?;
            let span = Span {
                source,
                line: 1,
                col: 1,
                start: 0,
                end: 0,
            };
            let exprs = (0..8)
                .map(|_| {
                    Ref::new(Expr::Null {
                        span: span.clone(),
                        value: Value::Null,
                        eidx: 0,
                    })
                })
                .collect();
            Some((span, exprs))
        })
        .as_ref()
}

/// Registers the wrappers with an interpreter, under the builtins' names.
pub(crate) fn install(engine: &mut regorus::Engine) -> Result<(), String> {
    for &(name, f) in GUARDED.iter().chain(CHECKED) {
        let Some(&(_, nargs)) = BUILTINS.get(name) else {
            continue;
        };
        let extension = move |args: Vec<Value>| -> anyhow::Result<Value> {
            let Some((span, exprs)) = placeholders() else {
                anyhow::bail!("builtin `{name}` cannot be called");
            };
            let params = exprs.get(..args.len()).unwrap_or(&[]);
            f(span, params, &args, true)
        };
        engine
            .add_extension(name.to_owned(), nargs, Box::new(extension))
            .map_err(|e| format!("cannot guard builtin `{name}`: {e}"))?;
    }
    Ok(())
}

/// A copy of `program` whose guarded builtins go through the wrappers.
pub(crate) fn guard_program(program: Arc<Program>) -> Arc<Program> {
    let mut program = Arc::unwrap_or_clone(program);
    let Program {
        builtin_info_table,
        resolved_builtins,
        ..
    } = &mut program;
    for (info, resolved) in builtin_info_table.iter().zip(resolved_builtins.iter_mut()) {
        if let Some(f) = wrapper(&info.name) {
            resolved.0 = f;
        }
    }
    Arc::new(program)
}

/// Output projections: upper bounds (in bytes, saturating) of what a call
/// produces, computed from its arguments without building the output. An
/// argument of the wrong type projects nothing: regorus then reports the
/// type error. `cap` is the per-call limit: walks stop once past it.
mod project {
    use super::{ELEMENT_BYTES, len};
    use regorus::Value;

    fn arg(args: &[Value], i: usize) -> Option<&Value> {
        args.get(i)
    }

    fn string(args: &[Value], i: usize) -> Option<&str> {
        match arg(args, i) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    fn number(args: &[Value], i: usize) -> Option<f64> {
        arg(args, i)?.as_number().ok()?.as_f64()
    }

    fn elements(n: f64) -> u64 {
        if n.is_nan() {
            return 0;
        }
        if n >= 1e18 {
            return u64::MAX;
        }
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "n is finite, non-negative and below 1e18 here"
        )]
        let n = n.max(0.0) as u64;
        n.saturating_mul(ELEMENT_BYTES)
    }

    pub(super) fn range(args: &[Value], _cap: u64) -> u64 {
        match (number(args, 0), number(args, 1)) {
            (Some(a), Some(b)) => elements((b - a).abs() + 1.0),
            _ => 0,
        }
    }

    pub(super) fn range_step(args: &[Value], _cap: u64) -> u64 {
        match (number(args, 0), number(args, 1), number(args, 2)) {
            (Some(a), Some(b), Some(step)) if step >= 1.0 => {
                elements(((b - a).abs() / step).floor() + 1.0)
            }
            _ => 0,
        }
    }

    fn collection(v: Option<&Value>) -> Box<dyn Iterator<Item = &Value> + '_> {
        match v {
            Some(Value::Array(a)) => Box::new(a.iter()),
            Some(Value::Set(s)) => Box::new(s.iter()),
            _ => Box::new(std::iter::empty()),
        }
    }

    pub(super) fn concat(args: &[Value], _cap: u64) -> u64 {
        let delimiter = len(string(args, 0).map_or(0, str::len));
        let mut total = 0u64;
        for item in collection(arg(args, 1)) {
            let item_len = match item {
                Value::String(s) => len(s.len()),
                _ => 0,
            };
            total = total.saturating_add(item_len).saturating_add(delimiter);
        }
        total
    }

    /// Bytes of `v` written as JSON, with `per_node` bytes of layout per
    /// value nested `depth` deep (newline, prefix, indentation), stopping
    /// once past `cap`.
    fn json_size(v: &Value, layout: &dyn Fn(u64) -> u64, depth: u64, cap: u64) -> u64 {
        let own = layout(depth);
        let body = match v {
            Value::Null | Value::Undefined => 4,
            Value::Bool(_) => 5,
            v @ Value::Number(_) => number_size(v),
            Value::String(s) => string_size(s),
            Value::Array(a) => items(a.iter(), layout, depth, cap),
            Value::Set(s) => items(s.iter(), layout, depth, cap),
            Value::Object(o) => {
                let mut total = 2u64;
                for (k, item) in o.iter() {
                    total = total
                        .saturating_add(json_size(k, layout, depth + 1, cap))
                        .saturating_add(json_size(item, layout, depth + 1, cap))
                        .saturating_add(4);
                    if total > cap {
                        break;
                    }
                }
                total
            }
        };
        own.saturating_add(body)
    }

    fn items<'a>(
        items: impl Iterator<Item = &'a Value>,
        layout: &dyn Fn(u64) -> u64,
        depth: u64,
        cap: u64,
    ) -> u64 {
        let mut total = 2u64;
        for item in items {
            total = total
                .saturating_add(json_size(item, layout, depth + 1, cap))
                .saturating_add(2);
            if total > cap {
                break;
            }
        }
        total
    }

    /// Bytes of a number written out: 20 for a 64-bit integer, 24 for a
    /// float (the shortest round-trip form), the digits of a big integer.
    fn number_size(v: &Value) -> u64 {
        let Ok(n) = v.as_number() else {
            return 0;
        };
        if n.as_i64().is_some() || n.as_u64().is_some() {
            20
        } else if n.is_integer() {
            len(n.format_decimal().len())
        } else {
            24
        }
    }

    /// A JSON string's bytes: quotes, escapes (`\u00XX` for control and
    /// HTML characters), non-ASCII counted twice (U+2028 and U+2029 may be
    /// escaped).
    fn string_size(s: &str) -> u64 {
        let mut total = 2u64;
        for b in s.bytes() {
            total = total.saturating_add(match b {
                0..0x20 | b'<' | b'>' | b'&' => 6,
                b'"' | b'\\' => 2,
                0x80.. => 2,
                _ => 1,
            });
        }
        total
    }

    pub(super) fn json_marshal(args: &[Value], cap: u64) -> u64 {
        arg(args, 0).map_or(0, |v| json_size(v, &|_| 0, 0, cap))
    }

    pub(super) fn json_marshal_with_options(args: &[Value], cap: u64) -> u64 {
        let option = |key: &str| -> u64 {
            match arg(args, 1).and_then(|o| o.as_object().ok()) {
                Some(o) => match o.get(&Value::from(key)) {
                    Some(Value::String(s)) => len(s.len()),
                    _ => 0,
                },
                None => 0,
            }
        };
        let (prefix, indent) = (option("prefix"), option("indent").max(4));
        let layout = move |depth: u64| {
            2u64.saturating_add(prefix)
                .saturating_add(indent.saturating_mul(depth))
        };
        arg(args, 0).map_or(0, |v| json_size(v, &layout, 0, cap))
    }

    pub(super) fn yaml_marshal(args: &[Value], cap: u64) -> u64 {
        // Block style: a line per value, two spaces of indentation per level,
        // multi-line strings indented line by line.
        let Some(v) = arg(args, 0) else {
            return 0;
        };
        let newlines = newlines_weighted(v, 0, cap);
        json_size(
            v,
            &|depth| 4u64.saturating_add(depth.saturating_mul(2)),
            0,
            cap,
        )
        .saturating_add(newlines)
    }

    fn newlines_weighted(v: &Value, depth: u64, cap: u64) -> u64 {
        match v {
            Value::String(s) => len(s.bytes().filter(|b| *b == b'\n').count())
                .saturating_mul(depth.saturating_add(2).saturating_mul(2)),
            Value::Array(a) => sum(a.iter(), depth, cap),
            Value::Set(s) => sum(s.iter(), depth, cap),
            Value::Object(o) => sum(o.iter().flat_map(|(k, v)| [k, v]), depth, cap),
            _ => 0,
        }
    }

    fn sum<'a>(items: impl Iterator<Item = &'a Value>, depth: u64, cap: u64) -> u64 {
        let mut total = 0u64;
        for item in items {
            // One byte per value besides: the walk stops past `cap` even
            // over a value without strings (a value may share its parts).
            total = total
                .saturating_add(newlines_weighted(item, depth + 1, cap))
                .saturating_add(1);
            if total > cap {
                break;
            }
        }
        total
    }

    /// `sprintf`: the format's text, its widths and precisions, and for each
    /// verb the largest argument rendered (twice its JSON size: `%x` of a
    /// string is hex; numbers four times the decimal digits: `%b`).
    pub(super) fn sprintf(args: &[Value], cap: u64) -> u64 {
        let Some(format) = string(args, 0) else {
            return 0;
        };
        let mut widest = 0u64;
        for item in collection(arg(args, 1)) {
            let rendered = match item {
                v @ Value::Number(_) => number_size(v).saturating_mul(4),
                other => json_size(other, &|_| 0, 0, cap).saturating_mul(2),
            };
            widest = widest.max(rendered);
        }
        let mut total = len(format.len());
        let mut verbs = 0u64;
        let mut width = 0u64;
        let mut after_percent = false;
        for c in format.chars() {
            if let Some(d) = c.to_digit(10).filter(|_| after_percent) {
                width = width.saturating_mul(10).saturating_add(u64::from(d));
                continue;
            }
            total = total.saturating_add(width);
            width = 0;
            match c {
                '%' if !after_percent => after_percent = true,
                '.' if after_percent => {}
                _ if after_percent => {
                    after_percent = false;
                    verbs += 1;
                }
                _ => {}
            }
        }
        total
            .saturating_add(width)
            .saturating_add(verbs.saturating_mul(widest))
    }

    pub(super) fn array_concat(args: &[Value], _cap: u64) -> u64 {
        let count = |i| match arg(args, i) {
            Some(Value::Array(a)) => len(a.len()),
            _ => 0,
        };
        count(0)
            .saturating_add(count(1))
            .saturating_mul(ELEMENT_BYTES)
    }

    pub(super) fn array_slice(args: &[Value], _cap: u64) -> u64 {
        match arg(args, 0) {
            Some(Value::Array(a)) => len(a.len()).saturating_mul(ELEMENT_BYTES),
            _ => 0,
        }
    }

    /// Length after replacing every `old` in a string of `length` bytes
    /// (`chars` characters) by `new`, at most: an empty `old` matches before
    /// every character and at the end.
    fn replaced(length: u64, chars: u64, old: u64, new: u64) -> u64 {
        match length.checked_div(old) {
            None => length.saturating_add(chars.saturating_add(1).saturating_mul(new)),
            Some(matches) => length.saturating_add(matches.saturating_mul(new.saturating_sub(old))),
        }
    }

    pub(super) fn replace(args: &[Value], _cap: u64) -> u64 {
        match (string(args, 0), string(args, 1), string(args, 2)) {
            (Some(s), Some(old), Some(new)) => {
                let matches = if old.is_empty() {
                    len(s.chars().count()).saturating_add(1)
                } else {
                    len(s.matches(old).count())
                };
                let grown = len(new.len()).saturating_sub(len(old.len()));
                len(s.len()).saturating_add(matches.saturating_mul(grown))
            }
            _ => 0,
        }
    }

    /// regorus applies the patterns one after the other (in key order), so
    /// each may grow what the previous ones produced.
    pub(super) fn replace_n(args: &[Value], _cap: u64) -> u64 {
        let (Some(patterns), Some(s)) = (arg(args, 0), string(args, 1)) else {
            return 0;
        };
        let Ok(patterns) = patterns.as_object() else {
            return 0;
        };
        let mut length = len(s.len());
        for (old, new) in patterns.iter() {
            if let (Value::String(old), Value::String(new)) = (old, new) {
                // Every byte may be a character once earlier patterns ran.
                length = replaced(length, length, len(old.len()), len(new.len()));
            }
        }
        length
    }

    /// Matches are at most one per character and one at the end; each
    /// expansion of `$n` in the replacement is a part of the input.
    pub(super) fn regex_replace(args: &[Value], _cap: u64) -> u64 {
        match (string(args, 0), string(args, 2)) {
            (Some(s), Some(value)) => {
                let length = len(s.len());
                let refs = len(value.bytes().filter(|b| *b == b'$').count());
                replaced(length, len(s.chars().count()), 0, len(value.len()))
                    .saturating_add(refs.saturating_mul(length))
            }
            _ => 0,
        }
    }

    fn pieces(s: &str, count: u64) -> u64 {
        len(s.len()).saturating_add(count.saturating_mul(ELEMENT_BYTES))
    }

    pub(super) fn split(args: &[Value], _cap: u64) -> u64 {
        match (string(args, 0), string(args, 1)) {
            (Some(s), Some(delimiter)) => {
                let count = if delimiter.is_empty() {
                    len(s.chars().count())
                } else {
                    len(s.matches(delimiter).count()).saturating_add(1)
                };
                pieces(s, count)
            }
            _ => 0,
        }
    }

    pub(super) fn regex_split(args: &[Value], _cap: u64) -> u64 {
        match string(args, 1) {
            Some(s) => pieces(s, len(s.chars().count()).saturating_add(2)),
            None => 0,
        }
    }

    pub(super) fn regex_find_n(args: &[Value], _cap: u64) -> u64 {
        match string(args, 1) {
            Some(s) => {
                let mut count = len(s.chars().count()).saturating_add(1);
                if let Some(n) = number(args, 2).filter(|n| *n >= 0.0) {
                    count = count.min(elements(n) / ELEMENT_BYTES);
                }
                pieces(s, count)
            }
            None => 0,
        }
    }

    pub(super) fn format_int(args: &[Value], _cap: u64) -> u64 {
        match arg(args, 0) {
            // Base 2 takes about 3.3 digits per decimal digit.
            Some(v @ Value::Number(_)) => number_size(v).saturating_mul(4),
            _ => 0,
        }
    }

    fn size_of_collection(v: Option<&Value>) -> u64 {
        match v {
            Some(Value::Array(a)) => len(a.len()),
            Some(Value::Set(s)) => len(s.len()),
            Some(Value::Object(o)) => len(o.len()),
            _ => 0,
        }
    }

    pub(super) fn union(args: &[Value], _cap: u64) -> u64 {
        collection(arg(args, 0))
            .fold(0u64, |n, s| n.saturating_add(size_of_collection(Some(s))))
            .saturating_mul(ELEMENT_BYTES)
    }

    pub(super) fn object_union(args: &[Value], _cap: u64) -> u64 {
        size_of_collection(arg(args, 0))
            .saturating_add(size_of_collection(arg(args, 1)))
            .saturating_mul(ELEMENT_BYTES)
    }

    pub(super) fn object_union_n(args: &[Value], cap: u64) -> u64 {
        union(args, cap)
    }

    fn string_len(args: &[Value]) -> u64 {
        len(string(args, 0).map_or(0, str::len))
    }

    pub(super) fn base64(args: &[Value], _cap: u64) -> u64 {
        string_len(args).div_ceil(3).saturating_mul(4)
    }

    pub(super) fn hex(args: &[Value], _cap: u64) -> u64 {
        string_len(args).saturating_mul(2)
    }

    pub(super) fn urlquery(args: &[Value], _cap: u64) -> u64 {
        string_len(args).saturating_mul(3)
    }

    pub(super) fn urlquery_object(args: &[Value], cap: u64) -> u64 {
        arg(args, 0).map_or(0, |v| json_size(v, &|_| 0, 0, cap).saturating_mul(3))
    }

    pub(super) fn quote_meta(args: &[Value], _cap: u64) -> u64 {
        string_len(args).saturating_mul(2)
    }

    /// Case mapping can turn one byte into three (`ß` → `SS` is 2 → 2, but
    /// `ǰ` → `J̌` is 2 → 3, and ASCII-adjacent cases grow likewise).
    pub(super) fn case(args: &[Value], _cap: u64) -> u64 {
        string_len(args).saturating_mul(3)
    }

    /// `2^(bits − prefix)` addresses of up to 39 bytes each.
    pub(super) fn cidr_expand(args: &[Value], _cap: u64) -> u64 {
        let Some(cidr) = string(args, 0) else {
            return 0;
        };
        let bits: u32 = if cidr.contains(':') { 128 } else { 32 };
        let prefix = match cidr.rsplit_once('/') {
            Some((_, p)) => p.trim().parse::<u32>().unwrap_or(bits),
            None => bits,
        };
        let host_bits = bits.saturating_sub(prefix);
        let hosts = 1u64.checked_shl(host_bits).unwrap_or(u64::MAX);
        hosts.saturating_mul(ELEMENT_BYTES.saturating_add(40))
    }

    /// The shifted number takes about `digits / 2 + shift / 8` bytes.
    pub(super) fn lsh(args: &[Value], _cap: u64) -> u64 {
        let digits = match arg(args, 0) {
            Some(v @ Value::Number(_)) => number_size(v),
            _ => return 0,
        };
        match number(args, 1) {
            Some(shift) if shift > 0.0 => {
                elements(shift / 8.0 / ELEMENT_BYTES as f64).saturating_add(digits / 2)
            }
            _ => digits,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn v(json: &str) -> Value {
        Value::from_json_str(json).unwrap()
    }

    /// Ordinary calls of every guarded builtin, as JSON argument lists.
    const SAMPLES: &[(&str, &str)] = &[
        ("numbers.range", "[1, 50]"),
        ("numbers.range", "[10, -3]"),
        ("numbers.range_step", "[0, 100, 7]"),
        ("concat", r#"["--", ["a", "bc", "def"]]"#),
        ("concat", r#"["", []]"#),
        (
            "sprintf",
            r#"["%s:%05d:%v:%x:%b:%.3f", ["ab", 42, {"k": [1, 2]}, "hi", 1023, 3.14159]]"#,
        ),
        ("sprintf", r#"["%10s|%4d|%%", ["x", 7]]"#),
        (
            "json.marshal",
            r#"[{"a": [1, "x<y>&\"", null, true], "b": {"c": 1.5e300}}]"#,
        ),
        (
            "json.marshal_with_options",
            r#"[{"a": [1, {"b": "c"}]}, {"pretty": true, "indent": "\t", "prefix": ">>"}]"#,
        ),
        (
            "json.marshal_with_options",
            r#"[[1, [2, [3]]], {"pretty": true}]"#,
        ),
        (
            "yaml.marshal",
            r#"[{"a": [1, {"b": "line\nline\nline"}], "c": "x: y"}]"#,
        ),
        ("array.concat", "[[1, 2], [3]]"),
        ("array.slice", "[[1, 2, 3, 4], 1, 3]"),
        (
            "strings.replace_n",
            r#"[{"a": "xyz", "b": "", "": "-"}, "abcab"]"#,
        ),
        ("replace", r#"["aaaa", "a", "bcd"]"#),
        ("replace", r#"["héllo", "", "--"]"#),
        ("regex.replace", r#"["a1b22c333", "[0-9]+", "<$0$0>"]"#),
        ("split", r#"["a,b,,c", ","]"#),
        ("split", r#"["héllo", ""]"#),
        ("regex.split", r#"["[,;]", "a,b;c"]"#),
        ("regex.find_n", r#"["[0-9]", "a1b2c3", -1]"#),
        ("format_int", "[255, 2]"),
        ("format_int", "[-9007199254740993, 2]"),
        ("union", "[[[1, 2], [2, 3]]]"),
        (
            "object.union",
            r#"[{"a": {"b": 1}}, {"a": {"c": 2}, "d": 3}]"#,
        ),
        ("object.union_n", r#"[[{"a": 1}, {"b": 2}, {"a": 3}]]"#),
        ("base64.encode", r#"["hello world"]"#),
        ("base64url.encode", r#"["\u00ff\u00fe"]"#),
        ("base64url.encode_no_pad", r#"["ab"]"#),
        ("hex.encode", r#"["héllo"]"#),
        ("urlquery.encode", r#"["a b&c=d/é"]"#),
        (
            "urlquery.encode_object",
            r#"[{"a": "b c", "d": ["e", "f&"]}]"#,
        ),
        ("glob.quote_meta", r#"["*.[a-z]?{x}"]"#),
        ("upper", r#"["straße ǰ"]"#),
        ("lower", r#"["İSTANBUL"]"#),
        ("net.cidr_expand", r#"["192.168.1.0/29"]"#),
        ("net.cidr_expand", r#"["fe80::/125"]"#),
        ("bits.lsh", "[3, 100]"),
    ];

    fn args_of(json: &str) -> Vec<Value> {
        v(json).as_array().unwrap().iter().cloned().collect()
    }

    /// `union` takes a set of sets, which JSON cannot write.
    fn fix(name: &str, mut args: Vec<Value>) -> Vec<Value> {
        if name == "union" {
            let sets: Vec<Value> = args[0]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    Value::from(
                        a.as_array()
                            .unwrap()
                            .iter()
                            .cloned()
                            .collect::<std::collections::BTreeSet<_>>(),
                    )
                })
                .collect();
            args[0] = Value::from(sets.into_iter().collect::<std::collections::BTreeSet<_>>());
        }
        args
    }

    /// The full size of a value (elements followed), to compare with the
    /// projections: a projection bounds the string, or counts elements.
    fn deep_size(v: &Value) -> u64 {
        match v {
            Value::String(s) => len(s.len()),
            Value::Array(a) => a.iter().map(|i| ELEMENT_BYTES.max(deep_size(i))).sum(),
            Value::Set(s) => s.iter().map(|i| ELEMENT_BYTES.max(deep_size(i))).sum(),
            Value::Object(o) => len(o.len()) * ELEMENT_BYTES,
            _ => 0,
        }
    }

    fn projection(name: &str) -> Projection {
        match name {
            "numbers.range" => project::range,
            "numbers.range_step" => project::range_step,
            "concat" => project::concat,
            "sprintf" => project::sprintf,
            "json.marshal" => project::json_marshal,
            "json.marshal_with_options" => project::json_marshal_with_options,
            "yaml.marshal" => project::yaml_marshal,
            "array.concat" => project::array_concat,
            "array.slice" => project::array_slice,
            "strings.replace_n" => project::replace_n,
            "replace" => project::replace,
            "regex.replace" => project::regex_replace,
            "split" => project::split,
            "regex.split" => project::regex_split,
            "regex.find_n" => project::regex_find_n,
            "format_int" => project::format_int,
            "union" => project::union,
            "object.union" => project::object_union,
            "object.union_n" => project::object_union_n,
            "base64.encode" | "base64url.encode" | "base64url.encode_no_pad" => project::base64,
            "hex.encode" => project::hex,
            "urlquery.encode" => project::urlquery,
            "urlquery.encode_object" => project::urlquery_object,
            "glob.quote_meta" => project::quote_meta,
            "upper" | "lower" => project::case,
            "net.cidr_expand" => project::cidr_expand,
            "bits.lsh" => project::lsh,
            other => panic!("no projection for {other}"),
        }
    }

    #[test]
    fn every_guarded_builtin_is_a_regorus_builtin_and_sampled() {
        for name in guarded_builtins() {
            assert!(BUILTINS.contains_key(name), "{name}");
            assert!(
                SAMPLES.iter().any(|(n, _)| *n == name),
                "{name} has no sample"
            );
        }
    }

    #[test]
    fn ipv4_mapped_addresses_are_read_as_ipv4() {
        for (from, to) in [
            ("::ffff:10.1.2.3", "10.1.2.3"),
            ("::ffff:a01:203", "10.1.2.3"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("::10.1.2.3", "::10.1.2.3"),
            ("fe80::1", "fe80::1"),
            ("::ffff:10.0.0.0/64", "::ffff:10.0.0.0/64"),
        ] {
            assert_eq!(
                super::ipv4_mapped_as_ipv4(&Value::from(from)),
                Value::from(to),
                "{from}"
            );
        }
    }

    #[test]
    fn to_number_reads_json_number_syntax_only() {
        for ok in ["0", "-0", "7", "1e3", "1E+2", "-12.5e-3", "10"] {
            assert!(super::is_json_number(ok), "{ok}");
        }
        for bad in [
            " 7", "7 ", "+7", ".5", "5.", "0x10", "1_000", "Inf", "NaN", "007", "-", "", "1e", "１",
        ] {
            assert!(!super::is_json_number(bad), "{bad}");
        }
    }

    #[test]
    fn wrappers_return_regorus_results_and_projections_bound_them() {
        let (span, exprs) = placeholders().unwrap();
        for (name, json) in SAMPLES {
            let args = fix(name, args_of(json));
            let params = &exprs[..args.len()];
            let original = BUILTINS.get(name).unwrap().0(span, params, &args, true).unwrap();
            let (guarded, tripped) = within(OutputLimits::default(), || {
                wrapper(name).unwrap()(span, params, &args, true).unwrap()
            });
            assert_eq!(tripped, None, "{name}");
            assert_eq!(guarded, original, "{name} {json}");
            let projected = projection(name)(&args, u64::MAX);
            let actual = match &original {
                Value::Number(_) => len(original.to_string().len()) / 2,
                other => deep_size(other),
            };
            assert!(
                actual <= projected,
                "{name} {json}: {actual} > {projected} ({original})"
            );
            // Every sample is small: a projection far above the result
            // would refuse ordinary policies.
            assert!(
                projected <= 64 * actual.max(64),
                "{name} {json}: {projected}"
            );
        }
    }

    #[test]
    fn a_call_over_the_limit_is_refused_before_regorus_runs_it() {
        let (span, exprs) = placeholders().unwrap();
        let args = vec![Value::from(1u64), Value::from(1_000_000_000_000u64)];
        let limits = OutputLimits {
            max_builtin_output_bytes: 1000,
            max_eval_bytes: 1_000_000,
        };
        let (result, tripped) = within(limits, || {
            wrapper("numbers.range").unwrap()(span, &exprs[..2], &args, true)
        });
        let e = result.unwrap_err();
        assert!(e.downcast_ref::<regorus::LimitError>().is_some(), "{e:#}");
        let tripped = tripped.unwrap();
        assert!(
            matches!(
                tripped,
                LimitExceeded::BuiltinOutput {
                    builtin: "numbers.range",
                    limit: 1000,
                    ..
                }
            ),
            "{tripped}"
        );
        assert!(
            tripped
                .to_string()
                .contains("`rego.max_builtin_output_bytes`"),
            "{tripped}"
        );
        // The next evaluation starts afresh.
        let small = vec![Value::from(1u64), Value::from(3u64)];
        let (ok, tripped) = within(limits, || {
            wrapper("numbers.range").unwrap()(span, &exprs[..2], &small, true)
        });
        assert_eq!(tripped, None);
        assert_eq!(ok.unwrap(), v("[1, 2, 3]"));
    }
}
