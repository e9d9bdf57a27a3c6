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
use std::time::Duration;

use regorus::Value;
use regorus::languages::rego::compiler::Compiler;
use regorus::rvm::RegoVM;
use regorus::rvm::program::Program;
use regorus::rvm::vm::ExecutionMode;
use regorus::utils::limits::ExecutionTimerConfig;
use thread_local::ThreadLocal;

/// Instructions between two looks at the clock when a time limit is set.
const TIME_CHECK_INTERVAL: std::num::NonZeroU32 = std::num::NonZeroU32::MIN.saturating_add(63);

use crate::decision::{Effect, Obligation, Reason, Source};
use crate::error::{BundleError, BundleErrorKind};
use crate::facts::Facts;
use crate::request::{MAX_DEPTH, Request};

const WRAPPER_PACKAGE: &str = "__agentriage";
pub(crate) const ENTRY_POINT: &str = "data.__agentriage.decision";

/// The name of the module that defines [`ENTRY_POINT`].
const WRAPPER_MODULE: &str = "__agentriage.rego";

/// How Rego is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegoEvaluator {
    /// regorus's tree-walking interpreter: every runtime error (a failing
    /// builtin, conflicting rule values) is an error, so the decision fails
    /// closed. About five times slower than the VM on the reference pack.
    Interpreter,
    /// regorus's bytecode VM, the default: an error inside a rule body makes
    /// that body undefined (as OPA does for builtin errors by default) and
    /// conflicting values make the rule undefined, so a `reject` rule whose
    /// body errors does not fire. Limits (instructions) still fail closed.
    Vm,
}

impl RegoEvaluator {
    /// `interpreter` or `vm`.
    pub fn as_str(self) -> &'static str {
        match self {
            RegoEvaluator::Interpreter => "interpreter",
            RegoEvaluator::Vm => "vm",
        }
    }
}

/// A copy of `value` with strings and containers built anew (the same
/// variants and contents); numbers are cloned, so a big integer's
/// allocation is the one thing still shared.
fn own_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(regorus::Rc::from(&**s)),
        Value::Array(items) => Value::from(items.iter().map(own_value).collect::<Vec<_>>()),
        Value::Set(items) => Value::from(
            items
                .iter()
                .map(own_value)
                .collect::<std::collections::BTreeSet<_>>(),
        ),
        Value::Object(map) => Value::from(
            map.iter()
                .map(|(k, v)| (own_value(k), own_value(v)))
                .collect::<BTreeMap<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// Most values a bundle's data may hold for each thread to get a copy of
/// its own; larger data stays shared by the threads (a copy per thread
/// would cost its size in memory for each of them).
const MAX_COPIED_DATA_VALUES: usize = 1 << 16;

/// The data a thread's evaluator reads: a copy of its own if `data` holds
/// at most [`MAX_COPIED_DATA_VALUES`] values, else `data` itself, shared.
fn thread_data(data: &Value) -> Value {
    /// Whether `value` holds at most `*budget` values (taking them off it).
    fn fits(value: &Value, budget: &mut usize) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        match value {
            Value::Array(items) => items.iter().all(|v| fits(v, budget)),
            Value::Set(items) => items.iter().all(|v| fits(v, budget)),
            Value::Object(map) => map.iter().all(|(k, v)| fits(k, budget) && fits(v, budget)),
            _ => true,
        }
    }
    let mut budget = MAX_COPIED_DATA_VALUES;
    if fits(data, &mut budget) {
        own_value(data)
    } else {
        data.clone()
    }
}

/// A copy of `program` whose values and rule tables share no allocation
/// with it.
fn own_program(program: &Program) -> Program {
    let mut own = program.clone();
    own.literals = program.literals.iter().map(own_value).collect();
    own.rule_tree = own_value(&program.rule_tree);
    for rule in &mut own.rule_infos {
        rule.definitions = regorus::Rc::new((*rule.definitions).clone());
    }
    own
}

/// Decisions a thread makes on evaluator state it shares with other
/// threads (the program, the data, the prepared interpreter) before it
/// builds copies of its own. Evaluators clone parts of that state as they
/// run, and clones of values two threads share bump the same reference
/// counts from both cores at once; a copy of its own costs a thread up to a
/// few milliseconds (the interpreter parses the modules again), which a
/// thread that decides only a few times never pays. The Cedar half follows
/// the same rule.
pub(crate) const THREAD_COPY_AFTER: u32 = 64;

/// One thread's evaluator and how many decisions it has made.
#[derive(Default)]
struct Slot {
    evaluator: Option<Evaluator>,
    decisions: u32,
    /// Whether the evaluator is the thread's own copy (or building one
    /// failed, and the shared state goes on deciding).
    settled: bool,
}

/// Per-thread evaluation state.
enum Evaluator {
    Vm(Box<RegoVM>),
    Interpreter(Box<regorus::Engine>),
}

/// The compiled Rego half of a bundle.
pub(crate) struct RegoProgram {
    mode: RegoEvaluator,
    /// The bytecode program; `None` in interpreter mode (regorus's compiler
    /// refuses extensions, and the interpreter does not need it).
    program: Option<Arc<Program>>,
    data: Value,
    package: String,
    max_instructions: usize,
    /// Wall-clock budget of one evaluation (both evaluators).
    time_limit: Option<ExecutionTimerConfig>,
    /// Output limits of builtins (crate::rego_limits).
    output_limits: crate::rego_limits::OutputLimits,
    evaluators: ThreadLocal<RefCell<Slot>>,
    /// The prepared interpreter (with the entry point module), cloned for a
    /// thread's first decisions in interpreter mode.
    prepared: regorus::Engine,
    /// The modules as rewritten and the entry point module: what a
    /// thread's own interpreter is built from (see [`RegoProgram::own_interpreter`]).
    sources: Vec<(String, String)>,
    /// Whether a thread has taken the shared state as its own: the first
    /// thread to reach [`THREAD_COPY_AFTER`] decisions goes on deciding on
    /// it, so a host that decides on one thread makes no copy at all.
    claimed: std::sync::atomic::AtomicBool,
    /// How the VM runs: to completion when no rule can recurse and calls
    /// nest at most [`MAX_NATIVE_CALL_DEPTH`] deep, else suspendable.
    vm_mode: ExecutionMode,
}

/// The deepest chain of rule calls the VM runs to completion. Run to
/// completion, the VM calls rules on the native stack (about twice as fast
/// as its suspendable loop, which keeps frames on the heap); a policy whose
/// calls might recurse, or nest deeper than this, runs suspendable.
pub(crate) const MAX_NATIVE_CALL_DEPTH: usize = 32;

/// What the Rego half of a bundle said about one request.
#[derive(Debug, Default)]
pub(crate) struct RegoVerdict {
    pub reasons: Vec<Reason>,
    pub allow: bool,
    pub obligations: Vec<Obligation>,
}

/// The entry point module. `defined` tells which of the package's rules
/// exist: a partial set rule that exists is always defined (empty when no
/// body matches), so it is read directly; one that does not exist reads as
/// the empty set. Reading the sets directly costs a fraction of copying them
/// through comprehensions.
fn wrapper_module(package: &str, defined: &dyn Fn(&str) -> bool) -> String {
    let set = |name: &str| {
        if defined(name) {
            format!("data.{package}.{name}")
        } else {
            "set()".to_owned()
        }
    };
    let allow = if defined("allow") {
        format!("allow if data.{package}.allow == true\n")
    } else {
        String::new()
    };
    format!(
        "package {WRAPPER_PACKAGE}\n\
         import rego.v1\n\
         default allow := false\n\
         {allow}\
         decision := {{\n\
           \"reject\": {},\n\
           \"escalate\": {},\n\
           \"obligations\": {},\n\
           \"allow\": allow,\n\
         }}\n",
        set("reject"),
        set("escalate"),
        set("obligations"),
    )
}

/// Splits a regorus message `path:line:col: error: …` into line and message.
fn locate(
    root: &Path,
    modules: &[(PathBuf, String)],
    message: &str,
) -> (PathBuf, Option<u32>, String) {
    for (path, _) in modules {
        let name = path.to_string_lossy();
        if let Some(at) = message.find(&format!("{name}:")) {
            let rest = message.get(at + name.len() + 1..).unwrap_or("");
            let line = rest
                .split(':')
                .next()
                .and_then(|l| l.trim().parse::<u32>().ok());
            let text =
                without_location(message, &name).unwrap_or_else(|| message.trim().to_owned());
            return (root.join(path), line, text);
        }
    }
    let first = modules
        .first()
        .map_or_else(|| root.to_path_buf(), |(p, _)| root.join(p));
    (first, None, message.trim().to_owned())
}

/// A regorus diagnostic without its `--> FILE:LINE:COL` line, which the
/// error's own file and line already give: `MESSAGE (column COL)`, then
/// the source excerpt with its caret. `None` when `message` is not in
/// regorus's diagnostic layout.
pub(crate) fn without_location(message: &str, name: &str) -> Option<String> {
    let marker = format!("--> {name}:");
    let at = message.find(&marker)?;
    let context = message.get(..at)?.trim().trim_end_matches(':').trim_end();
    let rest = message.get(at + marker.len()..)?;
    let (position, body) = rest.split_once('\n')?;
    let column = position.split(':').nth(1).map(str::trim);
    let mut excerpt = Vec::new();
    let mut headline = None;
    for line in body.lines() {
        if headline.is_none() && line.trim_start().contains('|') {
            excerpt.push(line);
        } else if headline.is_none() {
            headline = Some(line.trim());
        } else {
            excerpt.push(line);
        }
    }
    let headline = headline?;
    let headline = headline.strip_prefix("error: ").unwrap_or(headline);
    let mut text = String::new();
    if !context.is_empty() {
        text.push_str(context);
        text.push_str(": ");
    }
    text.push_str(headline);
    if let Some(c) = column.filter(|c| !c.is_empty()) {
        text.push_str(&format!(" (column {c})"));
    }
    for line in excerpt {
        text.push('\n');
        text.push_str(line);
    }
    Some(text.trim_end().to_owned())
}

/// A regorus engine set up as every evaluation of a bundle needs: Rego v1,
/// builtin errors as errors, and room for the rewritten modules' longer lines.
pub(crate) fn new_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(false);
    engine.set_strict_builtin_errors(true);
    let mut lengths = regorus::utils::limits::PolicyLengthConfig::default();
    lengths.max_col = lengths.max_col.saturating_mul(REWRITE_ROOM);
    lengths.max_file_bytes = lengths.max_file_bytes.saturating_mul(REWRITE_ROOM_BYTES);
    engine.set_policy_length_config(lengths);
    engine
}

/// How much longer a line may grow through the rewrites.
const REWRITE_ROOM: std::num::NonZeroU32 = std::num::NonZeroU32::MIN.saturating_add(7);
const REWRITE_ROOM_BYTES: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(3);

impl RegoProgram {
    pub(crate) fn compile(
        root: &Path,
        package: &str,
        modules: &[(PathBuf, String)],
        data: &[(PathBuf, String)],
        max_instructions: usize,
        mode: RegoEvaluator,
    ) -> Result<RegoProgram, BundleError> {
        let mut engine = new_engine();
        // Each module is parsed as written first, so the author's syntax
        // errors and line lengths are checked against regorus's own limits;
        // then the rewritten text (same lines, longer ones) is what runs.
        for (path, text) in modules {
            let mut as_written = regorus::Engine::new();
            as_written.set_rego_v0(false);
            as_written
                .add_policy(path.to_string_lossy().into_owned(), text.clone())
                .map_err(|e| {
                    let (file, line, message) = locate(root, modules, &format!("{e:#}"));
                    BundleError::new(BundleErrorKind::Rego, file, line, message)
                })?;
        }
        let named: Vec<(String, String)> = modules
            .iter()
            .map(|(p, t)| (p.to_string_lossy().into_owned(), t.clone()))
            .collect();
        let globals = crate::rego_rewrite::global_names(&named);
        let mut sources = Vec::with_capacity(named.len() + 1);
        for (path, text) in &named {
            let rewritten = crate::rego_rewrite::rewrite(path, text, &globals).map_err(|e| {
                BundleError::new(BundleErrorKind::Rego, root.join(path), e.line, e.message)
            })?;
            sources.push((path.clone(), rewritten.clone()));
            engine.add_policy(path.clone(), rewritten).map_err(|e| {
                let (file, line, message) = locate(root, modules, &format!("{e:#}"));
                BundleError::new(
                    BundleErrorKind::Rego,
                    file,
                    line,
                    format!("{message} (in the module as rewritten for OPA's semantics: docs/fidelity.md)"),
                )
            })?;
        }
        crate::rego_calls::check_no_recursive_functions(root, engine.get_modules())?;
        crate::rego_builtins::check_calls(root, engine.get_modules(), mode)?;
        // The bytecode compiler refuses extensions; without them, the
        // interpreter's bundle is compiled too, for its load-time checks.
        let uses_extensions = crate::rego_builtins::uses_extensions(engine.get_modules());
        crate::rego_builtins::register(&mut engine)
            .map_err(|e| BundleError::new(BundleErrorKind::Rego, root.to_path_buf(), None, e))?;
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
            BundleError::new(
                BundleErrorKind::Data,
                root.to_path_buf(),
                None,
                format!("{e:#}"),
            )
        })?;
        let interpreter = engine.clone();
        let wrapper = wrapper_module(package, &|name| {
            let rule: Arc<str> = Arc::from(format!("data.{package}.{name}"));
            interpreter.clone().compile_with_entrypoint(&rule).is_ok()
        });
        sources.push((WRAPPER_MODULE.to_owned(), wrapper.clone()));
        engine
            .add_policy(WRAPPER_MODULE.into(), wrapper)
            .map_err(|e| {
                BundleError::new(
                    BundleErrorKind::Rego,
                    root.to_path_buf(),
                    None,
                    format!("{e:#}"),
                )
            })?;
        let entry: Arc<str> = Arc::from(ENTRY_POINT);
        let compiled = engine.compile_with_entrypoint(&entry).map_err(|e| {
            let (file, line, message) = locate(root, modules, &format!("{e:#}"));
            BundleError::new(BundleErrorKind::Rego, file, line, message)
        })?;
        let program = if mode == RegoEvaluator::Vm || !uses_extensions {
            let program =
                Compiler::compile_from_policy(&compiled, &[ENTRY_POINT]).map_err(|e| {
                    let (file, line, message) = locate(root, modules, &format!("{e:#}"));
                    BundleError::new(
                        BundleErrorKind::Rego,
                        file,
                        line,
                        format!("cannot compile to bytecode: {message}"),
                    )
                })?;
            // Amplifying builtins go through their output limits (crate::rego_limits).
            let program = crate::rego_limits::guard_program(program);
            // Data must not collide with rules; find out now rather than per decision.
            let mut probe = RegoVM::new();
            probe.load_program(program.clone());
            probe.set_data(merged.clone()).map_err(|e| {
                BundleError::new(
                    BundleErrorKind::Data,
                    root.to_path_buf(),
                    None,
                    format!("{e}"),
                )
            })?;
            Some(program)
        } else {
            None
        };
        // Run to completion only where no call can recurse: regorus's
        // compiler refuses static recursion, but a lookup of a virtual
        // document with a dynamic key (`data.p[x]`) is resolved at run time
        // and flagged; the call graph is checked here too (over-approximated,
        // so a false cycle only costs speed).
        let vm_mode = match (
            &program,
            crate::rego_calls::rule_call_depth(engine.get_modules()),
        ) {
            (Some(p), Some(depth))
                if !p.needs_runtime_recursion_check && depth <= MAX_NATIVE_CALL_DEPTH =>
            {
                ExecutionMode::RunToCompletion
            }
            _ => ExecutionMode::Suspendable,
        };
        crate::rego_limits::install(&mut engine)
            .map_err(|e| BundleError::new(BundleErrorKind::Rego, root.to_path_buf(), None, e))?;
        // `compile_with_entrypoint` above prepared the interpreter's view
        // (analysis, scheduling), so per-thread clones start ready. Nothing is
        // evaluated at load: a policy that runs away must meet its limits in a
        // decision, not hang the loader.
        let prepared = engine.clone();
        Ok(RegoProgram {
            mode,
            program,
            data: merged,
            package: package.to_owned(),
            max_instructions,
            time_limit: None,
            output_limits: crate::rego_limits::OutputLimits::default(),
            evaluators: ThreadLocal::new(),
            prepared,
            sources,
            claimed: std::sync::atomic::AtomicBool::new(false),
            vm_mode,
        })
    }

    /// Limits every evaluation to `limit` of wall-clock time (checked every
    /// few instructions); exceeding it fails the decision closed.
    pub(crate) fn with_time_limit(mut self, limit: Duration) -> RegoProgram {
        let config = ExecutionTimerConfig {
            limit,
            check_interval: TIME_CHECK_INTERVAL,
        };
        self.time_limit = Some(config);
        self.prepared.set_execution_timer_config(config);
        self
    }

    /// Limits what builtins may produce per call and per evaluation
    /// (crate::rego_limits); exceeding either fails the decision closed.
    pub(crate) fn with_output_limits(mut self, per_call: u64, per_evaluation: u64) -> RegoProgram {
        self.output_limits = crate::rego_limits::OutputLimits {
            max_builtin_output_bytes: per_call,
            max_eval_bytes: per_evaluation,
        };
        self
    }

    /// How the VM runs this program (see [`MAX_NATIVE_CALL_DEPTH`]).
    #[cfg(test)]
    pub(crate) fn vm_mode(&self) -> ExecutionMode {
        self.vm_mode
    }

    /// A copy of the prepared interpreter (modules, data and the entry
    /// point), for the policy test runner: Rego-native tests and coverage.
    pub(crate) fn interpreter(&self) -> regorus::Engine {
        self.prepared.clone()
    }

    /// An evaluator for this thread: on the shared program, data or
    /// prepared interpreter, or (`own`) on copies of its own (see
    /// [`THREAD_COPY_AFTER`]).
    fn new_evaluator(&self, own: bool) -> Result<Evaluator, String> {
        Ok(match self.mode {
            RegoEvaluator::Vm => {
                let program = self
                    .program
                    .clone()
                    .ok_or("rego bytecode program missing")?;
                let mut vm = RegoVM::new();
                // The VM clones literals, rule tables and the data values
                // rules read as it runs: a thread's own copies of the
                // program and (unless it is large, see `thread_data`) the
                // data.
                if own {
                    vm.load_program(Arc::new(own_program(&program)));
                    vm.set_data(thread_data(&self.data))
                } else {
                    vm.load_program(program);
                    vm.set_data(self.data.clone())
                }
                .map_err(|e| e.to_string())?;
                vm.set_max_instructions(self.max_instructions);
                vm.set_execution_timer_config(self.time_limit);
                // Suspendable, the stackless loop keeps rule and function
                // frames on the heap: a policy that might recurse meets the
                // instruction budget instead of overflowing the host
                // thread's stack. Run to completion where it cannot.
                vm.set_execution_mode(self.vm_mode);
                Evaluator::Vm(Box::new(vm))
            }
            RegoEvaluator::Interpreter if own => {
                Evaluator::Interpreter(Box::new(self.own_interpreter()?))
            }
            RegoEvaluator::Interpreter => Evaluator::Interpreter(Box::new(self.prepared.clone())),
        })
    }

    /// An interpreter of this thread's own, built as [`RegoProgram::compile`]
    /// built the prepared one, from the same modules (as rewritten), the
    /// entry point module and (see [`thread_data`]) a copy of the data: the
    /// prepared one's clones share its modules, so every rule the
    /// interpreter enters bumps reference counts other threads bump too.
    fn own_interpreter(&self) -> Result<regorus::Engine, String> {
        let mut engine = new_engine();
        let Some(((wrapper_path, wrapper), modules)) = self.sources.split_last() else {
            return Err("rego modules missing".to_owned());
        };
        for (path, text) in modules {
            engine
                .add_policy(path.clone(), text.clone())
                .map_err(|e| format!("{e:#}"))?;
        }
        crate::rego_builtins::register(&mut engine)?;
        engine
            .add_data(thread_data(&self.data))
            .map_err(|e| format!("{e:#}"))?;
        engine
            .add_policy(wrapper_path.clone(), wrapper.clone())
            .map_err(|e| format!("{e:#}"))?;
        let entry: Arc<str> = Arc::from(ENTRY_POINT);
        engine
            .compile_with_entrypoint(&entry)
            .map_err(|e| format!("{e:#}"))?;
        crate::rego_limits::install(&mut engine)?;
        if let Some(config) = self.time_limit {
            engine.set_execution_timer_config(config);
        }
        Ok(engine)
    }

    /// Evaluates the bundle's Rego rules; an `Err` says what broke.
    pub(crate) fn evaluate(&self, input: Value) -> Result<RegoVerdict, String> {
        let cell = self.evaluators.get_or_default();
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "rego evaluator of this thread is busy".to_owned())?;
        slot.decisions = slot.decisions.saturating_add(1);
        let own = slot.decisions > THREAD_COPY_AFTER;
        if own
            && !slot.settled
            && slot.evaluator.is_some()
            && !self
                .claimed
                .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            // This thread keeps the shared state as its own.
            slot.settled = true;
        }
        if slot.evaluator.is_none() || (own && !slot.settled) {
            match self.new_evaluator(own) {
                Ok(evaluator) => slot.evaluator = Some(evaluator),
                Err(e) if slot.evaluator.is_none() => return Err(e),
                // The shared state goes on deciding.
                Err(_) => {}
            }
            slot.settled = own;
        }
        let Some(evaluator) = slot.evaluator.as_mut() else {
            return Err("rego evaluator unavailable".into());
        };
        let budget = crate::rego_limits::Budget::start(self.output_limits);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match evaluator {
            Evaluator::Vm(vm) => {
                vm.set_input(input);
                let result = vm.execute().map_err(|e| e.to_string());
                // Release the input now rather than at the next decision.
                vm.set_input(Value::Undefined);
                result
            }
            Evaluator::Interpreter(engine) => {
                engine.set_input(input);
                let result = engine
                    .eval_rule(ENTRY_POINT.to_owned())
                    .map_err(|e| format!("{e:#}"));
                engine.set_input(Value::new_object());
                result
            }
        }));
        if let Some(e) = budget.finish() {
            if outcome.is_err() {
                slot.evaluator = None;
            }
            return Err(e.to_string());
        }
        let value = match outcome {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // An evaluator that panicked may hold broken state: make a new one next time.
                slot.evaluator = None;
                return Err("rego evaluation panicked".into());
            }
        };
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
            for item in elements(field(key)) {
                verdict.reasons.push(self.reason(item, key, effect));
            }
        }
        for item in elements(field("obligations")) {
            verdict.obligations.push(self.obligation(item));
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
                    let json =
                        serde_json::from_str(&v.to_string()).unwrap_or(serde_json::Value::Null);
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

/// The elements of a set or an array (rules may define either).
fn elements(value: Option<&Value>) -> Box<dyn Iterator<Item = &Value> + '_> {
    match value {
        Some(Value::Set(items)) => Box::new(items.iter()),
        Some(Value::Array(items)) => Box::new(items.iter()),
        _ => Box::new(std::iter::empty()),
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

/// Names of the keys of `input`.
const KEY_NAMES: [&str; 32] = [
    "trace_id",
    "time",
    "principal",
    "action",
    "resource",
    "context",
    "anomaly",
    "intent",
    "facts",
    "id",
    "type",
    "trust_zone",
    "roles",
    "delegation",
    "credential",
    "attestation",
    "attributes",
    "issuer",
    "expires_at",
    "status",
    "kind",
    "verified_at",
    "name",
    "score",
    "time_unix",
    "hour_utc",
    "risk_class",
    "credential_ttl_s",
    "attestation_age_s",
    "anomaly_score",
    "on_behalf_of",
    "scopes",
];

/// The key named `KEY_NAMES[k]`, allocated once: building `input` is on the
/// path of every decision, and these would otherwise be allocated and freed
/// each time.
fn key(k: usize) -> Value {
    // One set of key strings per thread: a clone bumps the string's
    // reference count, and a count shared by threads deciding at once
    // bounces its cache line between their cores.
    thread_local! {
        static KEYS: Vec<Value> = KEY_NAMES.iter().map(|n| Value::from(*n)).collect();
    }
    KEYS.with(|keys| keys.get(k).cloned().unwrap_or(Value::Undefined))
}

/// Indices into [`KEY_NAMES`].
mod k {
    pub const TRACE_ID: usize = 0;
    pub const TIME: usize = 1;
    pub const PRINCIPAL: usize = 2;
    pub const ACTION: usize = 3;
    pub const RESOURCE: usize = 4;
    pub const CONTEXT: usize = 5;
    pub const ANOMALY: usize = 6;
    pub const INTENT: usize = 7;
    pub const FACTS: usize = 8;
    pub const ID: usize = 9;
    pub const TYPE: usize = 10;
    pub const TRUST_ZONE: usize = 11;
    pub const ROLES: usize = 12;
    pub const DELEGATION: usize = 13;
    pub const CREDENTIAL: usize = 14;
    pub const ATTESTATION: usize = 15;
    pub const ATTRIBUTES: usize = 16;
    pub const ISSUER: usize = 17;
    pub const EXPIRES_AT: usize = 18;
    pub const STATUS: usize = 19;
    pub const KIND: usize = 20;
    pub const VERIFIED_AT: usize = 21;
    pub const NAME: usize = 22;
    pub const SCORE: usize = 23;
    pub const TIME_UNIX: usize = 24;
    pub const HOUR_UTC: usize = 25;
    pub const RISK_CLASS: usize = 26;
    pub const CREDENTIAL_TTL_S: usize = 27;
    pub const ATTESTATION_AGE_S: usize = 28;
    pub const ANOMALY_SCORE: usize = 29;
    pub const ON_BEHALF_OF: usize = 30;
    pub const SCOPES: usize = 31;
}

fn object<const N: usize>(pairs: [(usize, Value); N]) -> BTreeMap<Value, Value> {
    // Inserting one by one beats `collect`, which sorts a temporary vector.
    let mut map = BTreeMap::new();
    for (k, v) in pairs {
        if v != Value::Undefined {
            map.insert(key(k), v);
        }
    }
    map
}

fn opt_str(s: Option<&String>) -> Value {
    s.map_or(Value::Undefined, |s| Value::from(s.as_str()))
}

fn strings(items: &[String]) -> Value {
    Value::from(
        items
            .iter()
            .map(|s| Value::from(s.as_str()))
            .collect::<Vec<_>>(),
    )
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

fn map_to_rego(
    map: &serde_json::Map<String, serde_json::Value>,
    depth: usize,
) -> Result<Value, String> {
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
        #[allow(
            clippy::cast_precision_loss,
            reason = "sub-microsecond precision is not needed"
        )]
        Value::from(nanos as f64 / 1e9)
    }
}

/// The `input` document: the request, normalized, plus `facts`.
pub(crate) fn input(request: &Request, facts: &Facts) -> Result<Value, String> {
    let p = &request.principal;
    let credential = p.credential.as_ref().map_or(Value::Undefined, |c| {
        Value::from(object([
            (k::ISSUER, opt_str(c.issuer.as_ref())),
            (
                k::EXPIRES_AT,
                c.expires_at
                    .map_or(Value::Undefined, |t| Value::from(t.rfc3339())),
            ),
        ]))
    });
    let attestation = p.attestation.as_ref().map_or(Value::Undefined, |a| {
        Value::from(object([
            (k::STATUS, opt_str(a.status.as_ref())),
            (k::KIND, opt_str(a.kind.as_ref())),
            (
                k::VERIFIED_AT,
                a.verified_at
                    .map_or(Value::Undefined, |t| Value::from(t.rfc3339())),
            ),
        ]))
    });
    let on_behalf_of = p.on_behalf_of.as_ref().map_or(Value::Undefined, |s| {
        Value::from(object([
            (k::ID, Value::from(s.id.as_str())),
            (k::TYPE, Value::from(s.kind.as_str())),
            (k::ROLES, strings(&s.roles)),
            (k::SCOPES, strings(&s.scopes)),
        ]))
    });
    let principal = object([
        (k::ID, Value::from(p.id.as_str())),
        (k::TYPE, opt_str(p.kind.as_ref())),
        (k::TRUST_ZONE, opt_str(p.trust_zone.as_ref())),
        (k::ROLES, strings(&p.roles)),
        (k::DELEGATION, strings(&p.delegation)),
        (k::CREDENTIAL, credential),
        (k::ATTESTATION, attestation),
        (k::ON_BEHALF_OF, on_behalf_of),
        (k::ATTRIBUTES, map_to_rego(&p.attributes, 3)?),
    ]);
    let action = object([
        (k::NAME, Value::from(request.action.name.as_str())),
        (k::ATTRIBUTES, map_to_rego(&request.action.attributes, 3)?),
    ]);
    let resource = match &request.resource {
        None => Value::Undefined,
        Some(r) => Value::from(object([
            (k::TYPE, Value::from(r.kind.as_str())),
            (k::ID, opt_str(r.id.as_ref())),
            (k::ATTRIBUTES, map_to_rego(&r.attributes, 3)?),
        ])),
    };
    let anomaly = request.anomaly.as_ref().map_or(Value::Undefined, |a| {
        Value::from(object([(
            k::SCORE,
            a.score.map_or(Value::Undefined, Value::from),
        )]))
    });
    let mut facts_value = object([
        (k::TIME, Value::from(facts.time.rfc3339())),
        (k::TIME_UNIX, seconds(facts.time.unix_nanos())),
        (k::HOUR_UTC, Value::from(u64::from(facts.time.hour_utc()))),
        (k::RISK_CLASS, Value::from(facts.risk_class)),
        (
            k::CREDENTIAL_TTL_S,
            facts.credential_ttl_nanos.map_or(Value::Undefined, seconds),
        ),
        (
            k::ATTESTATION_AGE_S,
            facts
                .attestation_age_nanos
                .map_or(Value::Undefined, seconds),
        ),
        (
            k::ANOMALY_SCORE,
            facts.anomaly_score.map_or(Value::Undefined, Value::from),
        ),
    ]);
    facts_value.insert(Value::from("intent"), facts.intent.to_rego());
    Ok(Value::from(object([
        (k::TRACE_ID, opt_str(request.trace_id.as_ref())),
        (
            k::TIME,
            request
                .time
                .map_or(Value::Undefined, |t| Value::from(t.rfc3339())),
        ),
        (k::PRINCIPAL, Value::from(principal)),
        (k::ACTION, Value::from(action)),
        (k::RESOURCE, resource),
        (k::CONTEXT, map_to_rego(&request.context, 2)?),
        (k::ANOMALY, anomaly),
        (k::INTENT, opt_str(request.intent.as_ref())),
        (k::FACTS, Value::from(facts_value)),
    ])))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;

    fn program(module: &str, mode: RegoEvaluator) -> RegoProgram {
        RegoProgram::compile(
            Path::new("."),
            "agentriage",
            &[(PathBuf::from("p.rego"), module.to_owned())],
            &[],
            100_000,
            mode,
        )
        .unwrap()
    }

    fn run(module: &str, input: &str, mode: RegoEvaluator) -> Result<RegoVerdict, String> {
        program(module, mode).evaluate(Value::from_json_str(input).unwrap())
    }

    /// The documented difference between the evaluators (docs/bundle.md):
    /// the interpreter fails on a runtime error, the VM leaves the body
    /// undefined. A regorus upgrade that changes either shows here.
    #[test]
    fn runtime_errors_fail_in_the_interpreter_and_are_undefined_in_the_vm() {
        let cases = [
            (
                "reject contains \"d\" if 1 / input.zero > 0",
                r#"{"zero": 0}"#,
            ),
            ("reject contains \"d\" if count(input.n) > 0", r#"{"n": 5}"#),
            (
                "x := 1 if input.n == 5\nx := 2 if input.n == 5\nreject contains \"d\" if x == 3",
                r#"{"n": 5}"#,
            ),
        ];
        for (rules, input) in cases {
            let module = format!("package agentriage\nimport rego.v1\nallow if true\n{rules}\n");
            assert!(
                run(&module, input, RegoEvaluator::Interpreter).is_err(),
                "{rules}"
            );
            let vm = run(&module, input, RegoEvaluator::Vm).unwrap();
            assert!(vm.allow, "{rules}");
            assert!(
                vm.reasons.iter().all(|r| r.effect == Effect::Permit),
                "{rules}"
            );
        }
    }

    #[test]
    fn rego_v1_modules_load_without_the_import() {
        let module =
            "package agentriage\nallow if true\nreject contains \"x\" if not is_string(input.x)\n";
        for mode in [RegoEvaluator::Interpreter, RegoEvaluator::Vm] {
            let v = run(module, r#"{"x": 1}"#, mode).unwrap();
            assert!(v.reasons.iter().any(|r| r.effect == Effect::Reject));
            // `x` missing: undefined, as OPA evaluates the argument first.
            let v = run(module, "{}", mode).unwrap();
            assert!(v.reasons.iter().all(|r| r.effect == Effect::Permit));
        }
    }

    #[test]
    fn both_evaluators_agree_when_nothing_errors() {
        let module = r#"package agentriage
import rego.v1
allow if input.user in data_users
data_users := {"a", "b"}
reject contains {"id": "R1", "message": sprintf("bad %s", [input.user])} if input.user == "b"
escalate contains "big" if input.amount > 10
obligations contains {"id": "log", "n": input.amount}
"#;
        for input in [
            r#"{"user": "a", "amount": 1}"#,
            r#"{"user": "b", "amount": 11}"#,
            r#"{"user": "c"}"#,
        ] {
            let i = run(module, input, RegoEvaluator::Interpreter).unwrap();
            let v = run(module, input, RegoEvaluator::Vm).unwrap();
            assert_eq!(i.allow, v.allow, "{input}");
            assert_eq!(i.reasons, v.reasons, "{input}");
            assert_eq!(i.obligations, v.obligations, "{input}");
        }
    }

    #[test]
    fn the_instruction_limit_fails_closed_in_the_vm() {
        let module = "package agentriage\nimport rego.v1\nallow if true\nreject contains n if { some n in numbers.range(1, 100000); n < 0 }\n";
        let p = RegoProgram::compile(
            Path::new("."),
            "agentriage",
            &[(PathBuf::from("p.rego"), module.to_owned())],
            &[],
            1_000,
            RegoEvaluator::Vm,
        )
        .unwrap();
        let e = p.evaluate(Value::new_object()).unwrap_err();
        assert!(e.contains("instruction limit"), "{e}");
    }

    fn vm_mode_of(module: &str) -> ExecutionMode {
        program(module, RegoEvaluator::Vm).vm_mode()
    }

    fn chain(n: usize) -> String {
        let mut m = String::from("package agentriage\nimport rego.v1\nallow if r0\n");
        for i in 0..n {
            m.push_str(&format!("r{i} if r{}\n", i + 1));
        }
        m.push_str(&format!("r{n} if input.x == 1\n"));
        m
    }

    #[test]
    fn the_vm_runs_to_completion_only_where_no_call_can_recurse_or_nest_deep() {
        let plain = "package agentriage\nimport rego.v1\nallow if input.x == 1\n\
            reject contains {\"id\": \"r\", \"message\": \"m\"} if { not allow; count(t) > 0 }\n\
            t contains x if { some x in data.list }\n";
        assert_eq!(vm_mode_of(plain), ExecutionMode::RunToCompletion);
        // A chain of rule calls: entry point → allow → r0 → … → rN.
        assert_eq!(vm_mode_of(&chain(8)), ExecutionMode::RunToCompletion);
        assert_eq!(
            vm_mode_of(&chain(MAX_NATIVE_CALL_DEPTH)),
            ExecutionMode::Suspendable
        );
        // A function that reaches itself through a rule (regorus's compiler
        // lets it through; the call graph sees the cycle).
        let cycle =
            "package agentriage\nimport rego.v1\nr := f(1)\nf(x) := y if { y := r }\nallow if r\n";
        assert_eq!(vm_mode_of(cycle), ExecutionMode::Suspendable);
        // A dynamic reference into the package may reach any of its rules,
        // the rule making it too.
        let dynamic =
            "package agentriage\nimport rego.v1\nallow if data.agentriage[input.k] == 1\n";
        let mut engine = regorus::Engine::new();
        engine.add_policy("p.rego".into(), dynamic.into()).unwrap();
        assert_eq!(
            crate::rego_calls::rule_call_depth(engine.get_modules()),
            None
        );
        let mut engine = regorus::Engine::new();
        engine.add_policy("p.rego".into(), chain(3)).unwrap();
        // allow → r0 → r1 → r2 → r3
        assert_eq!(
            crate::rego_calls::rule_call_depth(engine.get_modules()),
            Some(5)
        );
    }

    #[test]
    fn both_vm_modes_decide_alike() {
        for (module, input) in [
            (chain(8), r#"{"x": 1}"#),
            (chain(8), r#"{"x": 2}"#),
            (chain(MAX_NATIVE_CALL_DEPTH), r#"{"x": 1}"#),
        ] {
            let mut p = program(&module, RegoEvaluator::Vm);
            let first = p.evaluate(Value::from_json_str(input).unwrap()).unwrap();
            p.vm_mode = match p.vm_mode {
                ExecutionMode::RunToCompletion => ExecutionMode::Suspendable,
                ExecutionMode::Suspendable => ExecutionMode::RunToCompletion,
            };
            p.evaluators = ThreadLocal::new();
            let second = p.evaluate(Value::from_json_str(input).unwrap()).unwrap();
            assert_eq!(first.allow, second.allow, "{input}");
            assert_eq!(first.reasons, second.reasons, "{input}");
            assert_eq!(first.allow, input.contains('1'), "{input}");
        }
    }

    #[test]
    fn the_reference_pack_runs_to_completion_on_the_vm() {
        let root = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/a2a-supply-chain"
        ));
        let modules: Vec<(PathBuf, String)> = ["identity", "runtime", "thresholds", "intents"]
            .iter()
            .map(|m| {
                let rel = PathBuf::from(format!("rego/{m}.rego"));
                let text = std::fs::read_to_string(root.join(&rel)).unwrap();
                (rel, text)
            })
            .collect();
        let data = vec![(
            PathBuf::from("data/pack.json"),
            std::fs::read_to_string(root.join("data/pack.json")).unwrap(),
        )];
        let p = RegoProgram::compile(
            root,
            "agentriage",
            &modules,
            &data,
            100_000,
            RegoEvaluator::Vm,
        )
        .unwrap();
        assert_eq!(p.vm_mode(), ExecutionMode::RunToCompletion);
        // Each thread's copy of the program holds the same literals, rule
        // tree and rule tables, in allocations of its own.
        let program = p.program.as_ref().unwrap();
        let own = own_program(program);
        assert!(!program.literals.is_empty());
        assert_eq!(own.literals, program.literals);
        assert_eq!(own.rule_tree, program.rule_tree);
        assert_eq!(own.instructions.len(), program.instructions.len());
        for (a, b) in own.rule_infos.iter().zip(&program.rule_infos) {
            assert_eq!(a.definitions, b.definitions);
            assert!(!regorus::Rc::ptr_eq(&a.definitions, &b.definitions));
        }
    }

    /// A thread's own copies (after [`THREAD_COPY_AFTER`] decisions) decide
    /// as the shared state does, on both evaluators: every case of the
    /// reference pack's suites, each with every action of its risk table.
    #[test]
    fn a_thread_s_own_evaluator_decides_as_the_shared_one_on_the_pack() {
        let (root, cases) = crate::testing::reference_pack_cases();
        let bundle = crate::Bundle::load(&root).expect("the reference pack loads");
        let mut requests = Vec::new();
        for (_, request) in cases {
            for action in ["shipment.reroute", "payment.release", "inventory.read"] {
                let mut r = request.clone();
                r.action.name = action.to_owned();
                requests.push(r);
            }
            requests.push(request);
        }
        let inputs: Vec<Value> = requests
            .iter()
            .map(|r| {
                let facts = crate::facts::Facts::derive(r, bundle.risk_class(&r.action.name));
                input(r, &facts).unwrap()
            })
            .collect();
        assert!(inputs.len() > 200, "{}", inputs.len());
        let mut decided = 0;
        for mode in [RegoEvaluator::Interpreter, RegoEvaluator::Vm] {
            let rego = bundle.rego.as_ref().unwrap();
            let p = RegoProgram {
                mode,
                program: rego.program.clone(),
                data: rego.data.clone(),
                package: rego.package.clone(),
                max_instructions: rego.max_instructions,
                time_limit: rego.time_limit,
                output_limits: rego.output_limits,
                evaluators: ThreadLocal::new(),
                prepared: rego.prepared.clone(),
                sources: rego.sources.clone(),
                claimed: std::sync::atomic::AtomicBool::new(false),
                vm_mode: rego.vm_mode,
            };
            let on = |own: bool, input: &Value| {
                *p.evaluators.get_or_default().borrow_mut() = Slot {
                    evaluator: Some(p.new_evaluator(own).unwrap()),
                    decisions: if own { u32::MAX } else { 0 },
                    settled: own,
                };
                p.evaluate(input.clone())
            };
            for input in &inputs {
                let (shared, own) = (on(false, input), on(true, input));
                match (&shared, &own) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.allow, b.allow, "{mode:?}: {input}");
                        assert_eq!(a.reasons, b.reasons, "{mode:?}: {input}");
                        assert_eq!(a.obligations, b.obligations, "{mode:?}: {input}");
                        decided += usize::from(!a.reasons.is_empty());
                    }
                    (Err(a), Err(b)) => assert_eq!(a, b, "{mode:?}: {input}"),
                    _ => panic!("{mode:?}: {input}: {shared:?} vs {own:?}"),
                }
            }
            // A thread switches to its own evaluator after its first
            // decisions, once.
            *p.evaluators.get_or_default().borrow_mut() = Slot::default();
            for n in 1..=THREAD_COPY_AFTER + 2 {
                p.evaluate(inputs[0].clone()).unwrap();
                let slot = p.evaluators.get_or_default().borrow();
                assert_eq!(
                    slot.settled,
                    n > THREAD_COPY_AFTER,
                    "{mode:?}: decision {n}"
                );
            }
        }
        assert!(decided > 200, "{decided}");
    }

    #[test]
    fn an_owned_value_is_equal_and_shares_nothing() {
        let value = Value::from_json_str(
            r#"{"s": "text", "n": [1, -2, 3.5, 18446744073709551615], "o": {"k": [null, true, {}]}, "e": []}"#,
        )
        .unwrap();
        let mut set = std::collections::BTreeSet::new();
        set.insert(Value::from("member"));
        set.insert(value.clone());
        let value = Value::from(vec![value, Value::from(set), Value::Undefined]);
        let own = own_value(&value);
        assert_eq!(own, value);
        assert_eq!(own.to_json_str().unwrap(), value.to_json_str().unwrap());
        fn shares(a: &Value, b: &Value) -> bool {
            match (a, b) {
                (Value::String(x), Value::String(y)) => regorus::Rc::ptr_eq(x, y),
                (Value::Array(x), Value::Array(y)) => {
                    regorus::Rc::ptr_eq(x, y) || x.iter().zip(y.iter()).any(|(a, b)| shares(a, b))
                }
                (Value::Set(x), Value::Set(y)) => {
                    regorus::Rc::ptr_eq(x, y) || x.iter().zip(y.iter()).any(|(a, b)| shares(a, b))
                }
                (Value::Object(x), Value::Object(y)) => {
                    regorus::Rc::ptr_eq(x, y)
                        || x.iter()
                            .zip(y.iter())
                            .any(|((ka, va), (kb, vb))| shares(ka, kb) || shares(va, vb))
                }
                _ => false,
            }
        }
        assert!(!shares(&own, &value));
        assert!(shares(&value.clone(), &value));

        // Data up to the limit is copied for each thread, larger data shared.
        let small = Value::from_json_str(r#"{"agents": {"a": {"roles": ["x"]}}}"#).unwrap();
        let copied = thread_data(&small);
        assert_eq!(copied, small);
        assert!(!shares(&copied, &small));
        let large = Value::from(
            (0..MAX_COPIED_DATA_VALUES)
                .map(|i| Value::from(i.to_string()))
                .collect::<Vec<_>>(),
        );
        assert!(shares(&thread_data(&large), &large));
        let limit = Value::from(
            (1..MAX_COPIED_DATA_VALUES)
                .map(|i| Value::from(i.to_string()))
                .collect::<Vec<_>>(),
        );
        assert!(!shares(&thread_data(&limit), &limit));
    }
}
