//! The native half of the `agentriage` Node module (napi-rs).
//!
//! This crate is a thin shell over the `agentriage` core: it loads a bundle,
//! takes requests as JSON text, decides (on the calling thread or on a libuv
//! worker thread) and hands decisions back as JSON text in the shape the
//! JavaScript API exposes (camelCase keys). The JavaScript wrapper
//! (`index.js`) converts values, builds the `Decision` and error classes, and
//! is the module's public API; nothing here is meant to be called directly.
//!
//! Every error crosses the boundary through one function,
//! `to_js_error`: the reason of the thrown `Error` is a JSON object with a
//! `code` (`AGENTRIAGE_INVALID_REQUEST`, `AGENTRIAGE_BUNDLE`,
//! `AGENTRIAGE_INTERNAL`) and the structured fields of the core's error,
//! which `index.js` turns into typed `Error` subclasses. A Rust panic never
//! unwinds into Node: `guard` catches it and reports `AGENTRIAGE_INTERNAL`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use agentriage::{BundleInfo, Decision, Error as CoreError, Obligation, Outcome, Reason};
use napi::bindgen_prelude::{AbortSignal, AsyncTask};
use napi::{Env, Status, Task};
use napi_derive::napi;
use serde::Serialize;

pub mod approval;
pub mod delivery;
pub mod identity;
pub mod intent;

/// The addon's Rust allocations (the engine's many small values) go to
/// mimalloc; Node's own heap is untouched.
pub mod audit;

// Counted, to give each evaluation its heap budget (`rego.max_eval_bytes`).
#[global_allocator]
static GLOBAL: agentriage::alloc::Counting<mimalloc::MiMalloc> =
    agentriage::alloc::Counting::new(mimalloc::MiMalloc);

/// Prefix of every error reason this addon produces, followed by JSON.
const ERROR_PREFIX: &str = "agentriage:";

/// A failure on the way to a decision, before it becomes a JS error.
#[derive(Debug)]
enum Failure {
    /// The core refused the request or the bundle.
    Core(CoreError),
    /// Rust panicked; the payload's message.
    Panic(String),
    /// The decision log could not be opened, written or verified.
    Log(agentriage::audit::LogError),
}

/// The error of one request in a batch, with the request's position.
#[derive(Debug)]
struct BatchFailure {
    index: Option<usize>,
    failure: Failure,
}

impl From<Failure> for BatchFailure {
    fn from(failure: Failure) -> Self {
        BatchFailure {
            index: None,
            failure,
        }
    }
}

/// Maps every error of the addon to the JS `Error` that `index.js` decodes.
fn to_js_error(failure: &BatchFailure) -> napi::Error {
    let mut fields = serde_json::Map::new();
    let (code, message) = match &failure.failure {
        Failure::Core(CoreError::Request(e)) => {
            fields.insert("kind".into(), e.kind().as_str().into());
            fields.insert("path".into(), e.path().into());
            ("AGENTRIAGE_INVALID_REQUEST", e.message().to_owned())
        }
        Failure::Core(CoreError::Bundle(e)) => {
            fields.insert("kind".into(), e.kind().as_str().into());
            fields.insert(
                "file".into(),
                e.file().to_string_lossy().into_owned().into(),
            );
            fields.insert(
                "line".into(),
                e.line().map_or(serde_json::Value::Null, Into::into),
            );
            ("AGENTRIAGE_BUNDLE", e.message().to_owned())
        }
        // `Error` is non-exhaustive: a future variant still reaches JS typed.
        Failure::Core(other) => ("AGENTRIAGE_INTERNAL", other.to_string()),
        Failure::Panic(message) => (
            "AGENTRIAGE_INTERNAL",
            format!("the engine panicked: {message}"),
        ),
        Failure::Log(e) => {
            fields.insert("kind".into(), e.kind().as_str().into());
            fields.insert(
                "file".into(),
                e.file().map_or(serde_json::Value::Null, |f| {
                    f.to_string_lossy().into_owned().into()
                }),
            );
            ("AGENTRIAGE_DECISION_LOG", e.message().to_owned())
        }
    };
    fields.insert("code".into(), code.into());
    fields.insert("message".into(), message.into());
    if let Some(index) = failure.index {
        fields.insert("index".into(), index.into());
    }
    let reason = serde_json::to_string(&fields).unwrap_or_else(|_| {
        r#"{"code":"AGENTRIAGE_INTERNAL","message":"unreportable error"}"#.into()
    });
    napi::Error::new(Status::GenericFailure, format!("{ERROR_PREFIX}{reason}"))
}

/// Runs `f`, turning a panic into [`Failure::Panic`] so that it never
/// unwinds into Node (which would abort the process).
fn guard<T, E: From<Failure>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic payload".to_owned());
        Err(E::from(Failure::Panic(message)))
    })
}

/// A decision in the shape of the JavaScript API (camelCase keys).
///
/// The bundle is the one that decided (an engine's bundle can be swapped
/// by `reload`); `index.js` shares one frozen object per digest.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsDecision<'a> {
    bundle: &'a BundleInfo,
    outcome: Outcome,
    reasons: &'a [Reason],
    obligations: &'a [Obligation],
    trace_id: &'a str,
    decision_id: &'a str,
    duration_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_request: Option<&'a agentriage::approval::ApprovalRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    approval: Option<&'a agentriage::approval::ApprovalUse>,
}

impl<'a> From<&'a Decision> for JsDecision<'a> {
    fn from(d: &'a Decision) -> Self {
        JsDecision {
            bundle: &d.bundle,
            outcome: d.outcome,
            reasons: &d.reasons,
            obligations: &d.obligations,
            trace_id: &d.trace_id,
            decision_id: &d.decision_id,
            duration_us: d.duration_us,
            approval_request: d.approval_request.as_ref(),
            approval: d.approval.as_ref(),
        }
    }
}

fn serialize<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value)
        .map_err(|e| Failure::Panic(format!("decision not serializable: {e}")))
}

/// Decides one request given as JSON text; the decision as JSON text.
fn decide_one(engine: &agentriage::Engine, text: &str) -> Result<String, Failure> {
    guard(|| {
        let decision = engine.decide_json(text).map_err(Failure::Core)?;
        serialize(&JsDecision::from(&decision))
    })
}

/// Decides every request in order; a JSON array of decisions, or the first
/// error with the index of its request.
fn decide_many(engine: &agentriage::Engine, texts: &[String]) -> Result<String, BatchFailure> {
    guard(|| {
        let mut decisions = Vec::with_capacity(texts.len());
        for (index, text) in texts.iter().enumerate() {
            let decision = engine.decide_json(text).map_err(|e| BatchFailure {
                index: Some(index),
                failure: Failure::Core(e),
            })?;
            decisions.push(decision);
        }
        let shaped: Vec<JsDecision<'_>> = decisions.iter().map(JsDecision::from).collect();
        Ok(serialize(&shaped)?)
    })
}

/// Largest request accepted, in bytes of JSON text (the core's limit).
#[napi]
pub const MAX_REQUEST_BYTES: u32 = limit(agentriage::MAX_REQUEST_BYTES);

/// Deepest nesting of arrays and objects accepted in a request (the core's limit).
#[napi]
pub const MAX_DEPTH: u32 = limit(agentriage::MAX_DEPTH);

/// A core limit as a JS number (saturating: the limits are far below `u32::MAX`).
const fn limit(n: usize) -> u32 {
    if n > u32::MAX as usize {
        u32::MAX
    } else {
        n as u32
    }
}

/// Name, revision and digest of the bundle an engine decides with.
#[napi(object)]
pub struct NativeBundleInfo {
    /// The bundle's name from its manifest.
    pub name: String,
    /// The bundle's revision from its manifest.
    pub revision: String,
    /// `sha256:` digest over the bundle's files.
    pub digest: String,
}

/// An engine deciding with one loaded bundle (wrapped by `Engine` in `index.js`).
#[napi]
pub struct NativeEngine {
    engine: Arc<agentriage::Engine>,
    /// Keeps the bundle source of `from_source` followed.
    following: delivery::Following,
}

#[napi]
impl NativeEngine {
    /// Loads and compiles the bundle in directory `dir`. `replay_check:
    /// false` turns off everything the engine remembers between decisions
    /// — intents' replay check, approvals' one-time use, quota counting
    /// (test suites only). `trusted_keys` (Ed25519 public keys, PEM) makes the engine
    /// require a bundle one of them signed, now and on every reload; a key
    /// that does not parse is an `InvalidArg` error naming its index.
    /// `state` (`memory`, `memory:CAPACITY`, `redis://…`) names where used
    /// intents and approvals and quota counters are kept; a URL that does
    /// not parse is an `InvalidArg` error.
    #[napi(factory)]
    pub fn load(
        dir: String,
        replay_check: Option<bool>,
        trusted_keys: Option<Vec<String>>,
        state: Option<String>,
    ) -> napi::Result<NativeEngine> {
        let store = state
            .as_deref()
            .map(agentriage::state::open)
            .transpose()
            .map_err(|e| napi::Error::new(Status::InvalidArg, format!("state: {e}")))?;
        let trusted = match trusted_keys {
            None => None,
            Some(keys) => {
                let mut trusted = agentriage::signing::TrustedKeys::new();
                for (i, pem) in keys.iter().enumerate() {
                    trusted.add_pem(pem).map_err(|e| {
                        napi::Error::new(Status::InvalidArg, format!("trustedKeys[{i}]: {e}"))
                    })?;
                }
                Some(trusted)
            }
        };
        guard(|| {
            match trusted {
                Some(trusted) => agentriage::Engine::from_dir_verified(&dir, trusted),
                None => agentriage::Engine::from_dir(&dir),
            }
            .map(|engine| match store {
                Some(store) => engine.with_state(store),
                None => engine,
            })
            .map(|engine| match replay_check {
                Some(false) => engine.with_state(Arc::new(agentriage::state::NoState)),
                _ => engine,
            })
            .map(|engine| NativeEngine {
                engine: Arc::new(engine),
                following: delivery::Following::default(),
            })
            .map_err(|e| BatchFailure::from(Failure::Core(e)))
        })
        .map_err(|f| to_js_error(&f))
    }

    /// Whether every bundle this engine loads must be signed by a trusted key.
    #[napi(getter)]
    pub fn requires_signature(&self) -> bool {
        self.engine.trusted_keys().is_some()
    }

    /// Name, revision and digest of the bundle.
    #[napi(getter)]
    pub fn bundle_info(&self) -> NativeBundleInfo {
        let info = self.engine.bundle_info();
        NativeBundleInfo {
            name: info.name.clone(),
            revision: info.revision.clone(),
            digest: info.digest.clone(),
        }
    }

    /// Loads the bundle in `dir` and swaps it in atomically; the replaced
    /// bundle's info. An engine with trusted keys loads only a bundle one of
    /// them signed. On error the engine keeps its bundle.
    #[napi]
    pub fn reload(&self, dir: String) -> napi::Result<NativeBundleInfo> {
        guard(|| {
            self.engine
                .reload_from_dir(&dir)
                .map(|info| NativeBundleInfo {
                    name: info.name.clone(),
                    revision: info.revision.clone(),
                    digest: info.digest.clone(),
                })
                .map_err(|e| BatchFailure::from(Failure::Core(e)))
        })
        .map_err(|f| to_js_error(&f))
    }

    /// [`NativeEngine::reload`] on a libuv worker thread: loading and
    /// compiling a bundle takes milliseconds the event loop should not wait.
    #[napi(ts_return_type = "Promise<NativeBundleInfo>")]
    pub fn reload_async(&self, dir: String) -> AsyncTask<Reload> {
        AsyncTask::new(Reload {
            engine: Arc::clone(&self.engine),
            dir,
        })
    }

    /// The engine's metrics in the Prometheus text format.
    #[napi]
    pub fn metrics_text(&self) -> String {
        self.engine.metrics_text()
    }

    /// Loads the bundle at `source` (an `http(s)://` URL, an `oci://`
    /// reference, or a directory or archive path) on a libuv worker thread,
    /// and keeps following it. `options` is JSON (see `fromSource` in
    /// `index.js`); `trusted_keys` as for `load`.
    #[napi(ts_return_type = "Promise<NativeEngine>")]
    pub fn from_source(
        source: String,
        options: String,
        trusted_keys: Option<Vec<String>>,
    ) -> napi::Result<AsyncTask<delivery::FromSource>> {
        Ok(AsyncTask::new(delivery::FromSource {
            source,
            trusted: delivery::trusted_keys(trusted_keys)?,
            options: delivery::source_options(&options)?,
        }))
    }

    /// The live bundle and its delivery as JSON text (snake_case keys).
    #[napi]
    pub fn bundle_status_json(&self) -> napi::Result<String> {
        delivery::status_json(&self.engine)
    }

    /// Stops following the source given to `from_source` (the engine keeps
    /// its bundle); nothing for other engines.
    #[napi]
    pub fn stop_following(&self) {
        self.following.stop();
    }

    /// Logs every decision to a decision log in `dir`; `options` is JSON
    /// (see `enableDecisionLog` in `index.js`).
    #[napi]
    pub fn enable_decision_log(&self, dir: String, options: String) -> napi::Result<()> {
        guard(|| audit::enable(&self.engine, &dir, &options).map_err(BatchFailure::from))
            .map_err(|f| to_js_error(&f))
    }

    /// Closes the decision log; `false` when none was enabled.
    #[napi]
    pub fn close_decision_log(&self) -> napi::Result<bool> {
        guard(|| audit::close(&self.engine).map_err(|e| BatchFailure::from(Failure::Log(e))))
            .map_err(|f| to_js_error(&f))
    }

    /// Decides a request given as JSON text, on the calling thread.
    #[napi]
    pub fn decide_json(&self, text: String) -> napi::Result<String> {
        decide_one(&self.engine, &text).map_err(|f| to_js_error(&f.into()))
    }

    /// Decides a request given as JSON text on a libuv worker thread.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn decide_json_async(
        &self,
        text: String,
        signal: Option<AbortSignal>,
    ) -> AsyncTask<Decide> {
        AsyncTask::with_optional_signal(
            Decide {
                engine: Arc::clone(&self.engine),
                texts: vec![text],
                batch: false,
            },
            signal,
        )
    }

    /// Decides requests given as JSON texts, on the calling thread; the
    /// decisions as a JSON array.
    #[napi]
    pub fn decide_batch_json(&self, texts: Vec<String>) -> napi::Result<String> {
        decide_many(&self.engine, &texts).map_err(|f| to_js_error(&f))
    }

    /// Decides requests given as JSON texts on a libuv worker thread.
    #[napi(ts_return_type = "Promise<string>")]
    pub fn decide_batch_json_async(
        &self,
        texts: Vec<String>,
        signal: Option<AbortSignal>,
    ) -> AsyncTask<Decide> {
        AsyncTask::with_optional_signal(
            Decide {
                engine: Arc::clone(&self.engine),
                texts,
                batch: true,
            },
            signal,
        )
    }
}

/// Deciding off the main thread: one request, or a batch.
pub struct Decide {
    engine: Arc<agentriage::Engine>,
    texts: Vec<String>,
    batch: bool,
}

impl Task for Decide {
    type Output = String;
    type JsValue = String;

    fn compute(&mut self) -> napi::Result<String> {
        if self.batch {
            decide_many(&self.engine, &self.texts).map_err(|f| to_js_error(&f))
        } else {
            let text = self.texts.first().map_or("", String::as_str);
            decide_one(&self.engine, text).map_err(|f| to_js_error(&f.into()))
        }
    }

    fn resolve(&mut self, _env: Env, output: String) -> napi::Result<String> {
        Ok(output)
    }
}

/// Reloading off the main thread.
pub struct Reload {
    engine: Arc<agentriage::Engine>,
    dir: String,
}

impl Task for Reload {
    type Output = NativeBundleInfo;
    type JsValue = NativeBundleInfo;

    fn compute(&mut self) -> napi::Result<NativeBundleInfo> {
        guard(|| {
            self.engine
                .reload_from_dir(&self.dir)
                .map(|info| NativeBundleInfo {
                    name: info.name.clone(),
                    revision: info.revision.clone(),
                    digest: info.digest.clone(),
                })
                .map_err(|e| BatchFailure::from(Failure::Core(e)))
        })
        .map_err(|f| to_js_error(&f))
    }

    fn resolve(&mut self, _env: Env, output: NativeBundleInfo) -> napi::Result<NativeBundleInfo> {
        Ok(output)
    }
}

/// Test hooks: compiled only with the `test-hooks` feature, never shipped.
#[cfg(feature = "test-hooks")]
pub mod test_hooks {
    use super::{AsyncTask, BatchFailure, Env, Task, guard, to_js_error};
    use napi_derive::napi;

    fn explode(message: &str) -> Result<String, BatchFailure> {
        guard(|| -> Result<String, BatchFailure> {
            #[expect(clippy::panic, reason = "the hook exists to panic")]
            {
                panic!("{message}")
            }
        })
    }

    /// Panics inside the addon on the calling thread; must throw `AGENTRIAGE_INTERNAL`.
    #[napi(js_name = "__panicForTest")]
    pub fn panic_for_test(message: String) -> napi::Result<String> {
        explode(&message).map_err(|f| to_js_error(&f))
    }

    /// Panics inside the addon on a worker thread; must reject with `AGENTRIAGE_INTERNAL`.
    #[napi(js_name = "__panicForTestAsync", ts_return_type = "Promise<string>")]
    pub fn panic_for_test_async(message: String) -> AsyncTask<Explode> {
        AsyncTask::new(Explode { message })
    }

    /// A task whose computation panics.
    pub struct Explode {
        message: String,
    }

    impl Task for Explode {
        type Output = String;
        type JsValue = String;

        fn compute(&mut self) -> napi::Result<String> {
            explode(&self.message).map_err(|f| to_js_error(&f))
        }

        fn resolve(&mut self, _env: Env, output: String) -> napi::Result<String> {
            Ok(output)
        }
    }

    /// Bench only: a request converted by napi's serde support (instead of
    /// JSON text), the decision as JSON text.
    #[napi(js_name = "__decideValue")]
    pub fn decide_value(
        engine: &super::NativeEngine,
        request: serde_json::Value,
    ) -> napi::Result<String> {
        guard(|| {
            let decision = engine
                .engine
                .decide_value(&request)
                .map_err(super::Failure::Core)?;
            super::serialize(&super::JsDecision::from(&decision))
        })
        .map_err(|f| to_js_error(&f.into()))
    }

    /// Bench only: a request as JSON text, the decision built as a JS object
    /// by napi's serde support (instead of JSON text).
    #[napi(js_name = "__decideToObject")]
    pub fn decide_to_object(
        engine: &super::NativeEngine,
        text: String,
    ) -> napi::Result<serde_json::Value> {
        guard(|| {
            let decision = engine
                .engine
                .decide_json(&text)
                .map_err(super::Failure::Core)?;
            serde_json::to_value(super::JsDecision::from(&decision))
                .map_err(|e| super::Failure::Panic(e.to_string()))
        })
        .map_err(|f| to_js_error(&f.into()))
    }
}
