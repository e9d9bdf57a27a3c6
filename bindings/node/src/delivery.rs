//! `Engine.fromSource` and `engine.bundleStatus()`: bundles followed from a
//! directory, an HTTP(S) URL or an OCI registry.
//!
//! Start-up (which may wait for the first bundle) runs on a libuv worker
//! thread; the follower's own thread keeps the engine up to date after.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentriage::delivery::http::Startup;
use agentriage::delivery::{DeliveryError, Follower, SourceOptions};
use agentriage::signing::TrustedKeys;
use napi::{Env, Status, Task};
use serde::Deserialize;

use crate::{BatchFailure, ERROR_PREFIX, Failure, NativeEngine, guard, to_js_error};

/// How `Engine.fromSource` follows its source: the options of `index.js`,
/// as JSON (camelCase keys, numbers already checked to be positive).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Options {
    interval_seconds: Option<f64>,
    timeout_seconds: Option<f64>,
    max_bytes: Option<u64>,
    bearer_token: Option<String>,
    cache: Option<PathBuf>,
    start_from_cache: Option<bool>,
    startup_timeout_seconds: Option<f64>,
    ca_file: Option<PathBuf>,
}

fn seconds(name: &str, value: Option<f64>, default: f64) -> napi::Result<Duration> {
    let value = value.unwrap_or(default);
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            napi::Error::new(
                Status::InvalidArg,
                format!("options.{name} must be a positive number of seconds, not {value}"),
            )
        })
}

/// The core's options for `json`; an `InvalidArg` error naming what is wrong.
pub fn source_options(json: &str) -> napi::Result<SourceOptions> {
    let o: Options = serde_json::from_str(json)
        .map_err(|e| napi::Error::new(Status::InvalidArg, format!("options: {e}")))?;
    let interval = seconds("intervalSeconds", o.interval_seconds, 30.0)?;
    let startup = seconds("startupTimeoutSeconds", o.startup_timeout_seconds, 60.0)?;
    let mut options = SourceOptions::default();
    options.watch.interval = interval;
    options.http.interval = interval;
    options.http.timeout = seconds("timeoutSeconds", o.timeout_seconds, 30.0)?;
    if let Some(max) = o.max_bytes {
        options.http.max_bytes = max;
    }
    options.http.bearer_token = o.bearer_token;
    options.http.cache = o.cache;
    if let Some(path) = o.ca_file {
        let pem = std::fs::read(&path).map_err(|e| {
            napi::Error::new(
                Status::InvalidArg,
                format!("options.caFile `{}`: {e}", path.display()),
            )
        })?;
        options.http.tls_ca_pem = Some(pem);
    }
    options.http.startup = if o.start_from_cache.unwrap_or(false) {
        Startup::PreferLocal(startup)
    } else {
        Startup::WaitForFirst(startup)
    };
    Ok(options)
}

/// Trusted keys from PEM texts; an `InvalidArg` error naming the bad one.
pub fn trusted_keys(keys: Option<Vec<String>>) -> napi::Result<Option<TrustedKeys>> {
    let Some(keys) = keys else { return Ok(None) };
    let mut trusted = TrustedKeys::new();
    for (i, pem) in keys.iter().enumerate() {
        trusted
            .add_pem(pem)
            .map_err(|e| napi::Error::new(Status::InvalidArg, format!("trustedKeys[{i}]: {e}")))?;
    }
    Ok(Some(trusted))
}

/// The `kind` of a delivery error, as `BundleFetchError.kind` in JS.
fn kind(e: &DeliveryError) -> &'static str {
    match e {
        DeliveryError::Source { .. } => "source",
        DeliveryError::Transport { .. } => "transport",
        DeliveryError::Tls { .. } => "tls",
        DeliveryError::Status { .. } => "status",
        DeliveryError::TooLarge { .. } => "too_large",
        DeliveryError::Digest { .. } => "digest",
        DeliveryError::Protocol { .. } => "protocol",
        DeliveryError::StartupTimeout { .. } => "startup_timeout",
        DeliveryError::Cache { .. } => "cache",
        _ => "other",
    }
}

/// A start-up failure, before it becomes a JS error.
enum StartFailure {
    Delivery(DeliveryError),
    Other(Failure),
}

impl From<Failure> for StartFailure {
    fn from(f: Failure) -> Self {
        StartFailure::Other(f)
    }
}

/// `AGENTRIAGE_BUNDLE` for a bundle that arrived but did not load, an
/// `InvalidArg` error for a source not understood, otherwise
/// `AGENTRIAGE_BUNDLE_FETCH` with the error's `kind`.
fn to_error(f: StartFailure) -> napi::Error {
    let e = match f {
        StartFailure::Other(f) => return to_js_error(&BatchFailure::from(f)),
        StartFailure::Delivery(DeliveryError::Bundle(b)) => {
            return to_js_error(&BatchFailure::from(Failure::Core(
                agentriage::Error::Bundle(b),
            )));
        }
        StartFailure::Delivery(e @ DeliveryError::Source { .. }) => {
            return napi::Error::new(Status::InvalidArg, e.to_string());
        }
        StartFailure::Delivery(e) => e,
    };
    let reason = serde_json::json!({
        "code": "AGENTRIAGE_BUNDLE_FETCH",
        "kind": kind(&e),
        "message": e.to_string(),
    });
    napi::Error::new(Status::GenericFailure, format!("{ERROR_PREFIX}{reason}"))
}

/// The follower of an engine made by `fromSource`. Dropped with the engine
/// (by the garbage collector, on the JS thread): it asks the thread to stop
/// and lets another thread wait for it, so a fetch under way never blocks
/// the event loop.
#[derive(Default)]
pub struct Following(Option<Follower>);

impl Following {
    /// Asks the follower to stop at its next wait (the engine keeps its bundle).
    pub fn stop(&self) {
        if let Some(f) = &self.0 {
            f.request_stop();
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f.request_stop();
            // Should no thread start, the follower is dropped (and waited
            // for) right here instead.
            let _ = std::thread::Builder::new()
                .name("agentriage-bundle-stop".into())
                .spawn(move || drop(f));
        }
    }
}

/// Starting an engine from a source, off the JS thread.
pub struct FromSource {
    pub(crate) source: String,
    pub(crate) trusted: Option<TrustedKeys>,
    pub(crate) options: SourceOptions,
}

impl Task for FromSource {
    type Output = (Arc<agentriage::Engine>, Follower);
    type JsValue = NativeEngine;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let trusted = self.trusted.take();
        let options = std::mem::take(&mut self.options);
        guard(|| {
            agentriage::Engine::from_source(&self.source, trusted, options)
                .map_err(StartFailure::Delivery)
        })
        .map_err(to_error)
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<NativeEngine> {
        let (engine, follower) = output;
        Ok(NativeEngine {
            engine,
            following: Following(Some(follower)),
        })
    }
}

/// The live bundle and its delivery as JSON text (snake_case keys).
pub fn status_json(engine: &agentriage::Engine) -> napi::Result<String> {
    serde_json::to_string(&engine.bundle_status())
        .map_err(|e| napi::Error::new(Status::GenericFailure, e.to_string()))
}
