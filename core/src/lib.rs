//! agentriage: the policy decision point that AI agents embed.
//!
//! An agent (or the framework around it) asks, in-process: *may this agent
//! take this action on this resource, now?* The [`Engine`] evaluates a policy
//! [`Bundle`] — Rego modules (through `regorus`) and Cedar policies (through
//! `cedar-policy`) — over the [`Request`] and facts it derives (risk class,
//! credential lifetime, attestation age, anomaly score), and answers with a
//! [`Decision`] whose [`Outcome`] is `execute`, `reject` or `escalate`.
//!
//! - [`Bundle::load`] reads and compiles a bundle directory once;
//! - [`Engine::decide`] (or [`Engine::decide_json`]) decides, from any thread;
//! - every [`Reason`] names the engine and policy that fired.
//!
//! Failures fail closed: a request that breaks the contract is an
//! [`Error::Request`] naming the JSON path, and an evaluation that breaks is
//! a `reject` (or the bundle's `on_error` outcome) saying what broke — never
//! an `execute`.
//!
//! ```
//! use agentriage::{Engine, Outcome, Request, Timestamp};
//!
//! let engine = Engine::from_dir("../policies/a2a-supply-chain")?;
//! let mut request = Request::new(
//!     "spiffe://acme.example/ns/logistics/sa/router",
//!     "shipment.read",
//! );
//! request.time = Some(Timestamp::parse("2026-11-21T14:05:00Z")?);
//! let decision = engine.decide(&request)?;
//! assert_eq!(decision.outcome, Outcome::Execute);
//! assert_eq!(decision.bundle.name, "a2a-supply-chain");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod alloc;
pub mod anomaly;
pub mod approval;
pub mod audit;
mod bundle;
mod cedar;
mod decision;
pub mod delivery;
mod engine;
mod error;
mod facts;
mod files;
pub mod identity;
pub mod intent;
mod load_limits;
mod metrics;
pub mod otlp;
mod rego;
mod rego_builtins;
mod rego_calls;
mod rego_limits;
mod rego_rewrite;
mod request;
pub mod signing;
pub mod state;
mod strict_json;
pub mod testing;
mod traceparent;

pub use bundle::{
    Bundle, DEFAULT_MAX_EVAL_MS, DEFAULT_MAX_INSTRUCTIONS, Defaults, MANIFEST_FILE,
    MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES,
};
pub use decision::{BundleInfo, Decision, Effect, Obligation, Outcome, Reason, Source};
pub use engine::Engine;
pub use engine::hooks::LOG_FAILURE_POLICY;
pub use engine::shadow::{ShadowDifference, ShadowSink};
pub use error::{BundleError, BundleErrorKind, Error, RequestError, RequestErrorKind};
pub use facts::UNKNOWN_RISK_CLASS;
pub use load_limits::{
    LoadLimit, MAX_CEDAR_DEPTH, MAX_CEDAR_OPERATORS, MAX_CEDAR_POLICIES, MAX_DATA_BYTES,
    MAX_DATA_DEPTH, MAX_DATA_FILE_BYTES, MAX_POLICY_BYTES, MAX_POLICY_FILE_BYTES, MAX_REGO_DEPTH,
    MAX_REGO_PARSE_WORK,
};
pub use metrics::{MAX_RULE_LABELS, Metrics};
pub use rego::RegoEvaluator;
pub use rego_limits::{DEFAULT_MAX_BUILTIN_OUTPUT_BYTES, DEFAULT_MAX_EVAL_BYTES, ELEMENT_BYTES};
pub use request::{
    Action, Anomaly, Attestation, Credential, MAX_DEPTH, MAX_REQUEST_BYTES, Principal, Request,
    RequestBuilder, Resource, Subject, SubjectKind, Timestamp, TimestampError,
};
/// The JSON crate whose values the API takes and returns
/// ([`Request::from_value`], attributes, context, obligation parameters).
pub use serde_json;
/// A JSON value, as [`Request::from_value`] and the attribute maps take it.
pub use serde_json::{Map, Value};
