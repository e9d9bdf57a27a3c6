//! `Engine`: one loaded bundle, shared by every Python thread.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
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
    /// A request `dict` read straight into a request and checked
    /// ([`convert::to_request`]).
    Request(Box<agentriage::Request>),
}

impl Input<'_> {
    /// The same input, owning its text: it can outlive the Python call that
    /// made it (and so be decided later, on a worker thread).
    fn into_owned(self) -> Input<'static> {
        match self {
            Input::Text(text) => Input::Text(Cow::Owned(text.into_owned())),
            Input::Value(value) => Input::Value(value),
            Input::Request(request) => Input::Request(request),
        }
    }
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
    // JSON text as bytes: refused by length before it is copied, as the
    // core would refuse it after.
    let size = if let Ok(b) = request.cast::<PyBytes>() {
        Some(b.as_bytes().len())
    } else {
        request.cast::<PyByteArray>().ok().map(|b| b.len())
    };
    if let Some(size) = size.filter(|&n| n > agentriage::MAX_REQUEST_BYTES) {
        return Err(errors::invalid_request(
            py,
            "too_large",
            "$",
            &format!(
                "request is {size} bytes, more than the limit of {}",
                agentriage::MAX_REQUEST_BYTES
            ),
            index,
        ));
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
    if let Some(typed) = convert::to_request(request) {
        return Ok(Input::Request(Box::new(typed)));
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
        Input::Request(request) => engine.decide(request),
    }
}

/// The trusted bundle-signing keys given to `Engine.from_bundle`: an
/// iterable of PEM texts (`str`, `bytes`) and paths (`os.PathLike`) to PEM
/// files.
fn trusted_keys_from(keys: &Bound<'_, PyAny>) -> PyResult<agentriage::signing::TrustedKeys> {
    use pyo3::exceptions::{PyTypeError, PyValueError};
    let not_a_list = || {
        PyTypeError::new_err(
            "trusted_keys takes a list of public keys (PEM text, or pathlib.Path to a PEM file)",
        )
    };
    if keys.is_instance_of::<PyString>() || keys.is_instance_of::<PyBytes>() {
        return Err(not_a_list());
    }
    let mut trusted = agentriage::signing::TrustedKeys::new();
    for (i, key) in keys.try_iter().map_err(|_| not_a_list())?.enumerate() {
        let key = key?;
        let added = if let Ok(text) = key.cast::<PyString>() {
            trusted
                .add_pem(&text.to_cow()?)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else if let Ok(bytes) = key.cast::<PyBytes>() {
            match std::str::from_utf8(bytes.as_bytes()) {
                Ok(text) => trusted.add_pem(text).map(|_| ()).map_err(|e| e.to_string()),
                Err(_) => Err("not PEM text (not UTF-8)".to_owned()),
            }
        } else if let Ok(path) = key.extract::<PathBuf>() {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                pyo3::exceptions::PyOSError::new_err(format!(
                    "trusted_keys[{i}]: cannot read {}: {e}",
                    path.display()
                ))
            })?;
            trusted
                .add_pem(&text)
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", path.display()))
        } else {
            return Err(PyTypeError::new_err(format!(
                "trusted_keys[{i}]: a public key is PEM text (str, bytes) or a pathlib.Path, not {}",
                key.get_type().name()?
            )));
        };
        added.map_err(|e| PyValueError::new_err(format!("trusted_keys[{i}]: {e}")))?;
    }
    if trusted.is_empty() {
        return Err(PyValueError::new_err(
            "trusted_keys is empty: no bundle could ever load (omit it to load unsigned bundles)",
        ));
    }
    Ok(trusted)
}

/// The most requests one `decide_many` call takes: every request of a batch
/// is converted before any is decided, so a batch is bounded like a request.
const MAX_BATCH: usize = 100_000;

/// The items of a batch given to `decide_many`: an iterable of requests,
/// read up to [`MAX_BATCH`] + 1 items (an endless iterable stops there).
fn batch<'py>(py: Python<'py>, requests: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
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
    // One more than the limit is read, to know it was crossed; an
    // endless iterable stops there.
    let requests = iter.take(MAX_BATCH + 1).collect::<PyResult<Vec<_>>>()?;
    if requests.len() > MAX_BATCH {
        return Err(errors::invalid_request(
            py,
            "too_large",
            "$",
            &format!("a batch holds at most {MAX_BATCH} requests; split it into several calls"),
            Some(MAX_BATCH),
        ));
    }
    Ok(requests)
}

/// Converts every request of a batch, in order; the first invalid one
/// raises with its index.
fn batch_inputs<'a>(py: Python<'_>, requests: &'a [Bound<'_, PyAny>]) -> PyResult<Vec<Input<'a>>> {
    let mut inputs = Vec::with_capacity(requests.len());
    for (i, request) in requests.iter().enumerate() {
        inputs.push(input(py, request, Some(i))?);
    }
    Ok(inputs)
}

/// Decides a batch without the GIL; the first failure names its index.
fn decide_batch(
    py: Python<'_>,
    engine: &agentriage::Engine,
    inputs: &[Input<'_>],
) -> PyResult<Vec<agentriage::Decision>> {
    detached(py, || {
        inputs
            .iter()
            .enumerate()
            .map(|(i, input)| decide_one(engine, input).map_err(|e| Failure::Core(e, Some(i))))
            .collect::<Result<Vec<_>, _>>()
    })
}

static ASYNC_DECIDE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static ASYNC_DECIDE_MANY: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A request (or batch) already converted, waiting to be decided: what
/// `decide_async` hands to an executor thread. It owns its data, so the
/// caller may change or drop the request meanwhile.
#[pyclass(frozen, module = "agentriage._native")]
pub struct Pending {
    engine: Py<Engine>,
    inputs: Vec<Input<'static>>,
    batch: bool,
}

#[pymethods]
impl Pending {
    /// Decides, releasing the GIL while the policies run: a `Decision`, or
    /// for a batch a list of them. Raises as `decide` / `decide_many` do.
    fn run<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        guard(py, || {
            let engine = &self.engine.get().inner;
            if self.batch {
                let decisions = decide_batch(py, engine, &self.inputs)?;
                return PyList::new(py, decisions.into_iter().map(Decision::new))
                    .map(Bound::into_any);
            }
            let Some(input) = self.inputs.first() else {
                return Err(errors::internal(py, "a pending decision holds no request"));
            };
            let decision = detached(py, || {
                decide_one(engine, input).map_err(|e| Failure::Core(e, None))
            })?;
            Bound::new(py, Decision::new(decision)).map(Bound::into_any)
        })
    }
}

/// Decides requests against one policy bundle.
///
/// Load once with `Engine.from_bundle(path)` and share the engine across
/// every thread: deciding releases the GIL and never blocks another thread.
#[pyclass(frozen, module = "agentriage")]
pub struct Engine {
    inner: std::sync::Arc<agentriage::Engine>,
    /// Keeps the engine's bundle source followed (`from_source`).
    follower: Option<agentriage::delivery::Follower>,
}

#[pymethods]
impl Engine {
    /// Loads and compiles the policy bundle in directory `path`.
    ///
    /// Raises `agentriage.BundleError` naming the file and line at fault.
    ///
    /// `trusted_keys` (Ed25519 public keys: PEM text as `str` or `bytes`, or
    /// a `pathlib.Path` to a PEM file) makes the engine require a signed
    /// bundle: it loads only when one of the keys signed exactly its files
    /// (`agentriage bundle sign`), and every later `reload` must be signed
    /// too. An unsigned or altered bundle raises `agentriage.BundleError`
    /// with `kind == "signature"`; a key that does not parse raises
    /// `ValueError`.
    ///
    /// `replay_check=False` turns off everything the engine remembers
    /// between decisions — the replay check of signed intents, the one-time
    /// use of approvals, quota counting: only for test suites that decide
    /// the same request many times.
    ///
    /// `state` names where used intents and approvals and quota counters
    /// are kept: `"memory"` (the default, this process only),
    /// `"memory:CAPACITY"`, or `"redis://[user:password@]host:port/db"`
    /// (options in the query: `namespace`, `timeout_ms`, `pool`) to share
    /// them with every engine and process using that Redis. A URL that does
    /// not parse raises `ValueError`; opening does not connect, and while
    /// the store cannot answer, decisions that need it fail closed.
    #[staticmethod]
    #[pyo3(signature = (path, *, trusted_keys = None, replay_check = true, state = None))]
    fn from_bundle(
        py: Python<'_>,
        path: PathBuf,
        trusted_keys: Option<&Bound<'_, PyAny>>,
        replay_check: bool,
        state: Option<&str>,
    ) -> PyResult<Engine> {
        guard(py, || {
            let store = state
                .map(agentriage::state::open)
                .transpose()
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("state: {e}")))?;
            let trusted = trusted_keys.map(trusted_keys_from).transpose()?;
            let engine = detached(py, || {
                match trusted {
                    Some(trusted) => agentriage::Engine::from_dir_verified(&path, trusted),
                    None => agentriage::Engine::from_dir(&path),
                }
                .map_err(|e| Failure::Core(e, None))
            })?;
            let engine = match store {
                Some(store) => engine.with_state(store),
                None => engine,
            };
            let engine = if replay_check {
                engine
            } else {
                engine.with_state(std::sync::Arc::new(agentriage::state::NoState))
            };
            Ok(Engine {
                inner: std::sync::Arc::new(engine),
                follower: None,
            })
        })
    }

    /// Loads the bundle at `source` and keeps following it: an `http://` or
    /// `https://` URL of a bundle archive, an `oci://HOST/REPOSITORY:TAG`
    /// (or `@sha256:...`) reference, or a directory or archive path (watched).
    /// Updates load in the background and swap in atomically; a broken or
    /// unsigned update is refused and the live bundle stays.
    ///
    /// `trusted_keys` as for `from_bundle`: every bundle, the first and the
    /// local copy included, must be signed. `cache` keeps the last good
    /// bundle on disk (and its `ETag` beside it, so a restart from it costs
    /// a `304 Not Modified`); `start_from_cache=True` starts from it when it
    /// loads. `ca_file` (a PEM file) makes `https://` trust only those
    /// certificate authorities instead of the Mozilla roots; a server
    /// whose certificate is not trusted is refused (`ConnectionError`).
    /// Raises `agentriage.BundleError` when the bundle arrived but does not
    /// load, `ConnectionError` when none arrived within
    /// `startup_timeout_seconds`, `ValueError` for a source not understood.
    #[staticmethod]
    #[pyo3(signature = (source, *, trusted_keys = None, interval_seconds = 30.0, timeout_seconds = 30.0, max_bytes = 64 << 20, bearer_token = None, cache = None, start_from_cache = false, startup_timeout_seconds = 60.0, ca_file = None))]
    #[allow(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn from_source(
        py: Python<'_>,
        source: &str,
        trusted_keys: Option<&Bound<'_, PyAny>>,
        interval_seconds: f64,
        timeout_seconds: f64,
        max_bytes: u64,
        bearer_token: Option<String>,
        cache: Option<PathBuf>,
        start_from_cache: bool,
        startup_timeout_seconds: f64,
        ca_file: Option<PathBuf>,
    ) -> PyResult<Engine> {
        guard(py, || {
            let trusted = trusted_keys.map(trusted_keys_from).transpose()?;
            let options = crate::delivery::source_options(&crate::delivery::Options {
                interval_seconds,
                timeout_seconds,
                max_bytes,
                bearer_token,
                cache,
                start_from_cache,
                startup_timeout_seconds,
                ca_file,
            })?;
            let (engine, follower) = crate::delivery::start(py, source, trusted, options)?;
            Ok(Engine {
                inner: engine,
                follower: Some(follower),
            })
        })
    }

    /// The live bundle and its delivery: a dict with `name`, `revision`,
    /// `digest`, `source`, `last_success_unix`, `last_failure_unix`,
    /// `last_error`, `failures` and `updates`.
    fn bundle_status<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        crate::delivery::status(py, &self.inner)
    }

    /// Stops following the source given to `from_source` (the engine keeps
    /// its bundle). Does nothing for other engines.
    fn stop_following(&self) {
        if let Some(f) = &self.follower {
            f.request_stop();
        }
    }

    /// Whether the engine requires every bundle it loads to be signed by a
    /// trusted key (`trusted_keys` given to `from_bundle`).
    #[getter]
    fn requires_signature(&self) -> bool {
        self.inner.trusted_keys().is_some()
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
            let requests = batch(py, requests)?;
            let inputs = batch_inputs(py, &requests)?;
            let decisions = decide_batch(py, &self.inner, &inputs)?;
            PyList::new(py, decisions.into_iter().map(Decision::new))
        })
    }

    /// `decide` for asyncio: `await engine.decide_async(request)`.
    ///
    /// The request is converted on the calling thread when the coroutine
    /// starts; the decision runs on the event loop's default executor,
    /// without the GIL, so the loop keeps serving other tasks. Cancelling
    /// the await abandons the decision: one not yet started never runs, one
    /// under way finishes on its thread and its result is dropped.
    fn decide_async<'py>(
        slf: &Bound<'py, Self>,
        request: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        ASYNC_DECIDE
            .import(py, "agentriage._aio", "decide")?
            .call1((slf, request))
    }

    /// `decide_many` for asyncio: `await engine.decide_many_async(requests)`;
    /// the batch is decided on one executor thread, without the GIL, and
    /// cancels as `decide_async` does.
    fn decide_many_async<'py>(
        slf: &Bound<'py, Self>,
        requests: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        ASYNC_DECIDE_MANY
            .import(py, "agentriage._aio", "decide_many")?
            .call1((slf, requests))
    }

    /// Converts `request` now, to be decided later by `Pending.run` (on any
    /// thread). Used by `decide_async`.
    fn _prepare(slf: &Bound<'_, Self>, request: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let py = slf.py();
        guard(py, || {
            let input = input(py, request, None)?.into_owned();
            Ok(Pending {
                engine: slf.clone().unbind(),
                inputs: vec![input],
                batch: false,
            })
        })
    }

    /// Converts every request of a batch now, to be decided later by
    /// `Pending.run`. Used by `decide_many_async`.
    fn _prepare_many(slf: &Bound<'_, Self>, requests: &Bound<'_, PyAny>) -> PyResult<Pending> {
        let py = slf.py();
        guard(py, || {
            let requests = batch(py, requests)?;
            let inputs = batch_inputs(py, &requests)?
                .into_iter()
                .map(Input::into_owned)
                .collect();
            Ok(Pending {
                engine: slf.clone().unbind(),
                inputs,
                batch: true,
            })
        })
    }

    /// Name, revision and digest of the bundle.
    #[getter]
    fn bundle(&self) -> BundleInfo {
        BundleInfo::from(&*self.inner.bundle_info())
    }

    /// Loads the bundle in directory `path` and swaps it in atomically;
    /// returns the info of the bundle it replaced. Decisions under way
    /// finish with the old bundle. An engine made with `trusted_keys`
    /// loads only a bundle one of them signed. On error
    /// (`agentriage.BundleError`) the engine keeps its current bundle.
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
