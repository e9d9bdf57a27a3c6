//! The Python module of agentriage: `import agentriage`.
//!
//! A thin shell over the core crate: it converts Python values to JSON
//! faithfully (see [`convert`]), releases the GIL around every decision, and
//! maps core errors and panics to Python exceptions (see [`errors`]). The
//! Python-facing API (`Engine`, `Decision`, the exceptions and the `Outcome`
//! enum) is assembled in `python/agentriage/__init__.py`.

pub mod anomaly;
pub mod approval;
pub mod audit;
pub mod convert;
pub mod decision;
pub mod delivery;
pub mod engine;
pub mod errors;
pub mod identity;
pub mod intent;
pub mod text;

use pyo3::prelude::*;

// Decisions allocate many small values in both policy engines; the module's
// Rust allocations go to mimalloc (Python's own objects are unaffected),
// counted to give each evaluation its heap budget (`rego.max_eval_bytes`).
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

/// Panics on purpose, so tests can prove a panic surfaces as
/// `agentriage.InternalError` and never aborts the interpreter.
/// `where_` is `"attached"` (panic while holding the GIL) or `"detached"`.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _debug_panic(py: Python<'_>, where_: &str) -> PyResult<()> {
    #[expect(clippy::panic, reason = "this test hook exists to panic")]
    fn boom(where_: &str) {
        panic!("deliberate panic ({where_}) from agentriage._native._debug_panic");
    }
    let result = std::panic::catch_unwind(|| {
        if where_ == "detached" {
            py.detach(|| std::panic::catch_unwind(|| boom("detached")))
        } else {
            boom("attached");
            Ok(())
        }
    });
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(payload)) | Err(payload) => {
            Err(errors::internal(py, &errors::panic_message(&*payload)))
        }
    }
}

/// Both ways a request value is read: the typed shortcut
/// (`convert::to_request`: the request as JSON text, or `None` when it
/// leaves the request to the general path) and the general path (JSON values
/// read by the core: the request as JSON text, or its error), and whether
/// both built the same request. The tests compare them.
#[cfg(feature = "test-hooks")]
#[pyfunction]
fn _request_paths(request: &Bound<'_, PyAny>) -> (Option<String>, String, Option<bool>) {
    let typed = convert::to_request(request);
    let general = convert::to_json(request)
        .map_err(|e| format!("conversion error ({}) at {}: {}", e.kind, e.path, e.message))
        .and_then(|value| {
            agentriage::Request::from_value(&value).map_err(|e| format!("request error: {e}"))
        });
    let same = match (&typed, &general) {
        (Some(t), Ok(g)) => Some(t == g),
        _ => None,
    };
    let shown = match general {
        Ok(g) => g.to_json().to_string(),
        Err(e) => e,
    };
    (typed.map(|t| t.to_json().to_string()), shown, same)
}

/// The native half of the `agentriage` package.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::Pending>()?;
    m.add_class::<decision::Decision>()?;
    m.add_class::<decision::Reason>()?;
    m.add_class::<decision::Obligation>()?;
    m.add_class::<decision::BundleInfo>()?;
    m.add_class::<anomaly::IsolationForest>()?;
    m.add_function(wrap_pyfunction!(approval::approval_digest, m)?)?;
    m.add_function(wrap_pyfunction!(approval::approval_sign, m)?)?;
    m.add_function(wrap_pyfunction!(identity::identity_principal, m)?)?;
    m.add_function(wrap_pyfunction!(identity::identity_svid_principal, m)?)?;
    m.add_function(wrap_pyfunction!(intent::intent_keygen, m)?)?;
    m.add_function(wrap_pyfunction!(intent::intent_sign, m)?)?;
    m.add_function(wrap_pyfunction!(intent::intent_verify, m)?)?;
    m.add_function(wrap_pyfunction!(audit::verify_log, m)?)?;
    m.add_function(wrap_pyfunction!(audit::generate_signing_key, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MAX_DEPTH", agentriage::MAX_DEPTH)?;
    m.add("MAX_REQUEST_BYTES", agentriage::MAX_REQUEST_BYTES)?;
    // Set as a plain attribute, so it stays out of `__all__`.
    #[cfg(feature = "test-hooks")]
    m.setattr("_debug_panic", wrap_pyfunction!(_debug_panic, m)?)?;
    #[cfg(feature = "test-hooks")]
    m.setattr("_request_paths", wrap_pyfunction!(_request_paths, m)?)?;
    Ok(())
}
