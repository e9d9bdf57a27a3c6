//! `Engine`: one loaded bundle, shared by every Python thread.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyMapping, PyString};
use serde_json::Value;

use crate::convert;
use crate::decision::{BundleInfo, Decision, quote};
use crate::errors;
use crate::text;

/// A request, converted while holding the GIL and decided without it.
enum Input<'a> {
    /// JSON text: parsed by the core (which enforces the 1 MiB limit),
    /// borrowed from the Python `str` (immutable, kept alive by the caller).
    Text(Cow<'a, str>),
    /// A Python value already converted to JSON.
    Value(Value),
}

/// Converts one request; `index` is its position in a batch.
fn input<'a>(
    py: Python<'_>,
    request: &'a Bound<'_, PyAny>,
    index: Option<usize>,
) -> PyResult<Input<'a>> {
    if let Ok(s) = request.cast::<PyString>() {
        let text = text::as_utf8(s).ok_or_else(|| {
            errors::invalid_request(
                py,
                "syntax",
                "$",
                "request text is not valid Unicode (it holds a lone surrogate)",
                index,
            )
        })?;
        return Ok(Input::Text(Cow::Borrowed(text)));
    }
    let bytes = if let Ok(b) = request.cast::<PyBytes>() {
        Some(b.as_bytes().to_vec())
    } else {
        request.cast::<PyByteArray>().ok().map(|b| b.to_vec())
    };
    if let Some(bytes) = bytes {
        return String::from_utf8(bytes)
            .map(|t| Input::Text(Cow::Owned(t)))
            .map_err(|e| {
                errors::invalid_request(
                    py,
                    "syntax",
                    "$",
                    &format!("request bytes are not valid UTF-8: {e}"),
                    index,
                )
            });
    }
    convert::to_json(request)
        .map(Input::Value)
        .map_err(|e| errors::conversion(py, &e, index))
}

/// Runs `f` and turns a panic into `agentriage.InternalError`.
fn guard<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(errors::internal(py, &errors::panic_message(&*payload))),
    }
}

/// What the detached (GIL-free) part of a call produced.
type Detached<T> = Result<T, Failure>;

/// A failure of the detached part, turned into an exception once the GIL is back.
enum Failure {
    Core(agentriage::Error, Option<usize>),
    Panic(String),
}

impl Failure {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Failure::Core(e, index) => errors::core(py, &e, index),
            Failure::Panic(message) => errors::internal(py, &message),
        }
    }
}

/// Runs `f` without the GIL; a panic inside becomes a [`Failure::Panic`].
fn detached<T: Send>(py: Python<'_>, f: impl FnOnce() -> Detached<T> + Send) -> PyResult<T> {
    py.detach(|| match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => Err(Failure::Panic(errors::panic_message(&*payload))),
    })
    .map_err(|f| f.into_py(py))
}

fn decide_one(
    engine: &agentriage::Engine,
    input: &Input,
) -> Result<agentriage::Decision, agentriage::Error> {
    match input {
        Input::Text(text) => engine.decide_json(text),
        Input::Value(value) => engine.decide_value(value),
    }
}

/// Decides requests against one policy bundle.
///
/// Load once with `Engine.from_bundle(path)` and share the engine across
/// every thread: deciding releases the GIL and never blocks another thread.
#[pyclass(frozen, module = "agentriage")]
pub struct Engine {
    inner: agentriage::Engine,
}

#[pymethods]
impl Engine {
    /// Loads and compiles the policy bundle in directory `path`.
    ///
    /// Raises `agentriage.BundleError` naming the file and line at fault.
    ///
    /// `replay_check=False` turns off the replay check of signed intents:
    /// only for test suites that decide the same signed request many times.
    #[staticmethod]
    #[pyo3(signature = (path, *, replay_check = true))]
    fn from_bundle(py: Python<'_>, path: PathBuf, replay_check: bool) -> PyResult<Engine> {
        guard(py, || {
            let engine = detached(py, || {
                agentriage::Engine::from_dir(&path).map_err(|e| Failure::Core(e, None))
            })?;
            let engine = if replay_check {
                engine
            } else {
                engine.with_replay_cache(std::sync::Arc::new(agentriage::intent::NoReplayCheck))
            };
            Ok(Engine { inner: engine })
        })
    }

    /// Decides one request, given as a dict (or any mapping) or as JSON text
    /// (`str` or UTF-8 `bytes`).
    ///
    /// Raises `agentriage.InvalidRequestError` (with `.kind` and `.path`) for
    /// a request that breaks the contract or holds a value JSON cannot.
    fn decide(&self, py: Python<'_>, request: &Bound<'_, PyAny>) -> PyResult<Decision> {
        guard(py, || {
            let input = input(py, request, None)?;
            let engine = &self.inner;
            let decision = detached(py, || {
                decide_one(engine, &input).map_err(|e| Failure::Core(e, None))
            })?;
            Ok(Decision::new(decision))
        })
    }

    /// Decides a batch of requests in one call, releasing the GIL once for
    /// all of them; returns the decisions in order.
    ///
    /// Every request is converted before any is decided. The first invalid
    /// request raises `agentriage.InvalidRequestError` whose `.index` names
    /// it; no decisions are returned then.
    fn decide_many<'py>(
        &self,
        py: Python<'py>,
        requests: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        guard(py, || {
            let not_a_batch = |what: &str| {
                errors::invalid_request(
                    py,
                    "type",
                    "$",
                    &format!(
                        "decide_many takes an iterable of requests, not {what}; use decide for one request"
                    ),
                    None,
                )
            };
            if requests.is_instance_of::<PyString>()
                || requests.is_instance_of::<PyBytes>()
                || requests.is_instance_of::<PyByteArray>()
                || requests.is_instance_of::<PyDict>()
                || requests.cast::<PyMapping>().is_ok()
            {
                return Err(not_a_batch("a single request"));
            }
            let iter = requests
                .try_iter()
                .map_err(|_| not_a_batch("a value that is not iterable"))?;
            // Kept alive (and so the texts borrowed from them) until decided.
            let requests = iter.collect::<PyResult<Vec<_>>>()?;
            let mut inputs = Vec::with_capacity(requests.len());
            for (i, request) in requests.iter().enumerate() {
                inputs.push(input(py, request, Some(i))?);
            }
            let engine = &self.inner;
            let decisions = detached(py, || {
                inputs
                    .iter()
                    .enumerate()
                    .map(|(i, input)| {
                        decide_one(engine, input).map_err(|e| Failure::Core(e, Some(i)))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })?;
            PyList::new(py, decisions.into_iter().map(Decision::new))
        })
    }

    /// Name, revision and digest of the bundle.
    #[getter]
    fn bundle(&self) -> BundleInfo {
        BundleInfo::from(&*self.inner.bundle_info())
    }

    /// Loads the bundle in directory `path` and swaps it in atomically;
    /// returns the info of the bundle it replaced. Decisions under way
    /// finish with the old bundle. On error (`agentriage.BundleError`) the
    /// engine keeps its current bundle.
    fn reload(&self, py: Python<'_>, path: PathBuf) -> PyResult<BundleInfo> {
        guard(py, || {
            let previous = detached(py, || {
                self.inner
                    .reload_from_dir(&path)
                    .map_err(|e| Failure::Core(e, None))
            })?;
            Ok(BundleInfo::from(&*previous))
        })
    }

    /// The engine's metrics in the Prometheus text format.
    fn metrics_text(&self) -> String {
        self.inner.metrics_text()
    }

    /// Logs every decision to a tamper-evident decision log in directory
    /// `dir` (see docs/audit.md). `key` is a PKCS#8 Ed25519 key that signs
    /// checkpoints; `flush_ms=0` flushes after every record; with
    /// `mandatory=True` a decision that cannot be logged is rejected.
    #[pyo3(signature = (dir, *, key=None, mandatory=false, flush_ms=10, queue_capacity=4096, checkpoint_every=1000, max_segment_bytes=67108864, salt=None))]
    #[allow(
        clippy::too_many_arguments,
        reason = "keyword-only options of one Python call"
    )]
    fn enable_decision_log(
        &self,
        py: Python<'_>,
        dir: PathBuf,
        key: Option<Vec<u8>>,
        mandatory: bool,
        flush_ms: u64,
        queue_capacity: usize,
        checkpoint_every: u64,
        max_segment_bytes: u64,
        salt: Option<Vec<u8>>,
    ) -> PyResult<()> {
        crate::audit::enable(
            py,
            &self.inner,
            crate::audit::LogOptions {
                dir,
                key,
                mandatory,
                flush_ms,
                queue_capacity,
                checkpoint_every,
                max_segment_bytes,
                salt,
            },
        )
    }

    /// Writes the remaining records and a final signed checkpoint, and
    /// stops logging. Returns False when no log was enabled.
    fn close_decision_log(&self, py: Python<'_>) -> PyResult<bool> {
        crate::audit::close(py, &self.inner)
    }

    fn __repr__(&self) -> String {
        let b = self.inner.bundle_info();
        format!(
            "Engine(bundle={}, revision={}, digest={})",
            quote(&b.name),
            quote(&b.revision),
            quote(&b.digest)
        )
    }
}
