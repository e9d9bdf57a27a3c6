//! `Engine.from_source` and `Engine.bundle_status`: bundles followed from a
//! directory, an HTTP URL or an OCI registry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentriage::delivery::http::Startup;
use agentriage::delivery::{DeliveryError, Follower, SourceOptions};
use pyo3::prelude::*;

/// How `Engine.from_source` follows its source (Python keyword arguments).
pub struct Options {
    /// Time between two looks at the source.
    pub interval_seconds: f64,
    /// Time limit of one HTTP request.
    pub timeout_seconds: f64,
    /// Largest bundle archive downloaded.
    pub max_bytes: u64,
    /// Sent as `Authorization: Bearer ...`.
    pub bearer_token: Option<String>,
    /// Where the last good bundle is kept.
    pub cache: Option<PathBuf>,
    /// Start from `cache` when it loads.
    pub start_from_cache: bool,
    /// How long to wait for the first bundle.
    pub startup_timeout_seconds: f64,
    /// PEM file of the certificate authorities trusted for `https://`.
    pub ca_file: Option<PathBuf>,
}

fn seconds(name: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "`{name}` must be a positive number of seconds, not `{value}`"
            ))
        })
}

/// The core's options for `o`.
pub fn source_options(o: &Options) -> PyResult<SourceOptions> {
    let interval = seconds("interval_seconds", o.interval_seconds)?;
    let startup = seconds("startup_timeout_seconds", o.startup_timeout_seconds)?;
    let mut options = SourceOptions::default();
    options.watch.interval = interval;
    options.http.interval = interval;
    options.http.timeout = seconds("timeout_seconds", o.timeout_seconds)?;
    options.http.max_bytes = o.max_bytes;
    options.http.bearer_token = o.bearer_token.clone();
    options.http.cache = o.cache.clone();
    if let Some(path) = &o.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            pyo3::exceptions::PyOSError::new_err(format!("ca_file `{}`: {e}", path.display()))
        })?;
        options.http.tls_ca_pem = Some(pem);
    }
    options.http.startup = if o.start_from_cache {
        Startup::PreferLocal(startup)
    } else {
        Startup::WaitForFirst(startup)
    };
    Ok(options)
}

/// Starts the engine and its follower (without the GIL).
pub fn start(
    py: Python<'_>,
    source: &str,
    trusted: Option<agentriage::signing::TrustedKeys>,
    options: SourceOptions,
) -> PyResult<(Arc<agentriage::Engine>, Follower)> {
    py.detach(|| agentriage::Engine::from_source(source, trusted, options))
        .map_err(|e| error(py, e))
}

/// `BundleError` for a bundle that arrived but did not load, `OSError`
/// (`ConnectionError` for transport and TLS failures) otherwise.
pub fn error(py: Python<'_>, e: DeliveryError) -> PyErr {
    match e {
        DeliveryError::Bundle(b) => crate::errors::core(py, &agentriage::Error::Bundle(b), None),
        DeliveryError::Transport { .. }
        | DeliveryError::Tls { .. }
        | DeliveryError::StartupTimeout { .. } => {
            pyo3::exceptions::PyConnectionError::new_err(e.to_string())
        }
        DeliveryError::Source { .. } => pyo3::exceptions::PyValueError::new_err(e.to_string()),
        other => pyo3::exceptions::PyOSError::new_err(other.to_string()),
    }
}

/// The status as a `dict`.
pub fn status<'py>(py: Python<'py>, engine: &agentriage::Engine) -> PyResult<Bound<'py, PyAny>> {
    let value = serde_json::to_value(engine.bundle_status())
        .map_err(|e| crate::errors::internal(py, &e.to_string()))?;
    crate::convert::to_python(py, &value)
}
