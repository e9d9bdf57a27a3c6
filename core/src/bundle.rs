//! Policy bundles: a directory with a manifest, Rego modules, Cedar policies,
//! an optional Cedar schema, data and Cedar entities.
//!
//! Loading reads every file of the directory once, computes the bundle's
//! digest over them, and compiles everything a decision needs: the Rego
//! modules to a bytecode program, the Cedar policies to a validated policy
//! set with static entities. Nothing is parsed again per decision.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use crate::anomaly::IsolationForest;
use crate::anomaly::decision::ManifestAnomaly;
use crate::cedar::CedarPolicies;
use crate::decision::{BundleInfo, Outcome};
use crate::error::{BundleError, BundleErrorKind, line_of};
pub(crate) use crate::files::BundleFiles;
pub use crate::files::{MANIFEST_FILE, MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES};
use crate::intent::IntentConfig;
use crate::load_limits::{Language, Totals};
use crate::rego::{RegoEvaluator, RegoProgram};
use crate::rego_limits::{DEFAULT_MAX_BUILTIN_OUTPUT_BYTES, DEFAULT_MAX_EVAL_BYTES};
use crate::signing::TrustedKeys;

/// Default instruction budget of one Rego evaluation.
pub const DEFAULT_MAX_INSTRUCTIONS: usize = 100_000;

/// Default wall-clock budget of one Rego evaluation, in milliseconds.
///
/// A decision of the reference pack takes well under a millisecond; the
/// instruction budget is the deterministic limit, and the clock only stops
/// what it cannot count (a slow builtin, the interpreter), generously enough
/// that a busy machine does not change outcomes.
pub const DEFAULT_MAX_EVAL_MS: u64 = 1000;

/// A loaded, compiled policy bundle: immutable, shared by every thread.
pub struct Bundle {
    pub(crate) info: Arc<BundleInfo>,
    pub(crate) defaults: Defaults,
    pub(crate) risk: HashMap<String, String>,
    pub(crate) rego: Option<RegoProgram>,
    pub(crate) cedar: Option<CedarPolicies>,
    pub(crate) anomaly: Option<Arc<IsolationForest>>,
    pub(crate) intents: Option<crate::intent::IntentConfig>,
    pub(crate) redaction: Arc<crate::audit::Redaction>,
    pub(crate) controls: crate::approval::Controls,
}

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bundle")
            .field("info", &self.info)
            .field("defaults", &self.defaults)
            .field("rego", &self.rego.is_some())
            .field("cedar", &self.cedar.is_some())
            .finish_non_exhaustive()
    }
}

/// Outcomes a bundle uses when policies do not settle a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Defaults {
    /// The outcome when no policy rejects or escalates and none permits.
    pub no_permit: Outcome,
    /// The outcome when an evaluation fails (never `execute`).
    pub on_error: Outcome,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: Spanned<String>,
    revision: Spanned<String>,
    #[serde(default)]
    #[allow(dead_code, reason = "documentation for people; read by nothing")]
    description: Option<String>,
    #[serde(default)]
    defaults: ManifestDefaults,
    #[serde(default)]
    risk_classes: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    rego: Option<ManifestRego>,
    #[serde(default)]
    cedar: Option<ManifestCedar>,
    #[serde(default)]
    anomaly: Option<ManifestAnomaly>,
    intents: Option<crate::intent::ManifestIntents>,
    log: Option<crate::audit::ManifestLog>,
    approvals: Option<crate::approval::ManifestApprovals>,
    waivers: Option<crate::approval::ManifestWaivers>,
    #[serde(default)]
    quotas: Vec<crate::approval::ManifestQuota>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestDefaults {
    no_permit: Option<Spanned<String>>,
    on_error: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestRego {
    #[serde(default)]
    package: Option<Spanned<String>>,
    #[serde(default)]
    modules: Vec<Spanned<String>>,
    #[serde(default)]
    data: Vec<Spanned<String>>,
    #[serde(default)]
    max_instructions: Option<Spanned<usize>>,
    #[serde(default)]
    max_eval_ms: Option<Spanned<u64>>,
    #[serde(default)]
    evaluator: Option<Spanned<String>>,
    #[serde(default)]
    max_builtin_output_bytes: Option<Spanned<u64>>,
    #[serde(default)]
    max_eval_bytes: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestCedar {
    #[serde(default)]
    policies: Vec<Spanned<String>>,
    #[serde(default)]
    schema: Option<Spanned<String>>,
    #[serde(default)]
    entities: Vec<Spanned<String>>,
    #[serde(default)]
    principal_type: Option<Spanned<String>>,
    #[serde(default)]
    resource_type: Option<Spanned<String>>,
    #[serde(default)]
    action_type: Option<Spanned<String>>,
}

impl Bundle {
    /// The bundle's intent configuration (its `[intents]` table), if any.
    pub fn intents(&self) -> Option<&IntentConfig> {
        self.intents.as_ref()
    }
}

impl Bundle {
    /// Loads and compiles the bundle in directory `dir`.
    ///
    /// ```
    /// let bundle = agentriage::Bundle::load("../policies/a2a-supply-chain").unwrap();
    /// assert_eq!(bundle.info().name, "a2a-supply-chain");
    /// assert!(bundle.info().digest.starts_with("sha256:"));
    /// ```
    pub fn load(dir: impl AsRef<Path>) -> Result<Bundle, BundleError> {
        Bundle::from_files(&BundleFiles::read(dir.as_ref())?)
    }

    /// Loads the bundle in `dir` only when one of `trusted` signed exactly its
    /// files (see [`crate::signing`]): a file added, removed or changed after
    /// signing, a signature by another key, or no signature at all is a
    /// [`BundleErrorKind::Signature`] error and nothing is loaded. The files
    /// checked are the bytes then compiled.
    pub fn load_verified(
        dir: impl AsRef<Path>,
        trusted: &TrustedKeys,
    ) -> Result<Bundle, BundleError> {
        let files = BundleFiles::read(dir.as_ref())?;
        crate::signing::verify_files(&files, trusted)?;
        Bundle::from_files(&files)
    }

    pub(crate) fn from_files(files: &BundleFiles) -> Result<Bundle, BundleError> {
        Bundle::from_files_with(files, None)
    }

    /// As [`from_files`](Self::from_files), deciding with `evaluator`
    /// whatever the manifest says when it is set (the evaluator comparison
    /// of `agentriage check --evaluators`).
    pub(crate) fn from_files_with(
        files: &BundleFiles,
        evaluator: Option<RegoEvaluator>,
    ) -> Result<Bundle, BundleError> {
        let manifest: Manifest = toml::from_str(files.manifest_text()).map_err(|e| {
            BundleError::new(
                BundleErrorKind::Manifest,
                files.manifest_path(),
                e.span().map(|s| line_of(files.manifest_text(), s.start)),
                e.message().trim_end_matches('\n').to_owned(),
            )
        })?;
        for (field, value) in [("name", &manifest.name), ("revision", &manifest.revision)] {
            if value.get_ref().trim().is_empty() {
                return Err(files.manifest_error(value.span(), format!("`{field}` is empty")));
            }
        }

        let outcome = |v: &Option<Spanned<String>>| -> Result<Outcome, BundleError> {
            match v {
                None => Ok(Outcome::Reject),
                Some(s) => match s.get_ref().parse::<Outcome>() {
                    Ok(Outcome::Execute) => Err(files.manifest_error(
                        s.span(),
                        "a default of `execute` would fail open; use `reject` or `escalate`".into(),
                    )),
                    Ok(o) => Ok(o),
                    Err(e) => Err(files.manifest_error(s.span(), e)),
                },
            }
        };
        let defaults = Defaults {
            no_permit: outcome(&manifest.defaults.no_permit)?,
            on_error: outcome(&manifest.defaults.on_error)?,
        };

        let mut risk = HashMap::new();
        for (class, actions) in &manifest.risk_classes {
            for action in actions {
                if let Some(previous) = risk.insert(action.get_ref().clone(), class.clone()) {
                    return Err(files.manifest_error(
                        action.span(),
                        format!(
                            "action `{}` is in both risk classes `{previous}` and `{class}`",
                            action.get_ref()
                        ),
                    ));
                }
            }
        }

        // Every policy and data text is checked against the load limits
        // before any of it reaches a parser.
        let mut totals = Totals::default();
        let rego = match &manifest.rego {
            Some(r) if !r.modules.is_empty() => Some(load_rego(files, r, &mut totals, evaluator)?),
            Some(r) if !r.data.is_empty() => {
                return Err(files.manifest_error(
                    r.data.first().map_or(0..0, |d| d.span()),
                    "`rego.data` without `rego.modules`".into(),
                ));
            }
            _ => None,
        };
        let cedar = match &manifest.cedar {
            Some(c) if !c.policies.is_empty() => Some(load_cedar(files, c, &mut totals)?),
            _ => None,
        };
        let intents = match &manifest.intents {
            Some(m) => Some(crate::intent::load_manifest(files, m)?),
            None => None,
        };
        if rego.is_none() && cedar.is_none() {
            return Err(BundleError::new(
                BundleErrorKind::Manifest,
                files.manifest_path(),
                None,
                "the bundle has neither Rego modules nor Cedar policies",
            ));
        }

        let anomaly = match &manifest.anomaly {
            Some(a) => Some(Arc::new(load_anomaly(files, a)?)),
            None => None,
        };
        let redaction =
            crate::audit::Redaction::from_manifest(manifest.log.as_ref(), |span, m| {
                files.manifest_error(span, m)
            })?;
        let controls = crate::approval::load(
            files,
            &crate::approval::ManifestControls {
                approvals: manifest.approvals.as_ref(),
                waivers: manifest.waivers.as_ref(),
                quotas: &manifest.quotas,
            },
        )?;

        Ok(Bundle {
            redaction: Arc::new(redaction),
            info: Arc::new(BundleInfo {
                name: manifest.name.into_inner(),
                revision: manifest.revision.into_inner(),
                digest: files.digest(),
            }),
            defaults,
            risk,
            rego,
            cedar,
            anomaly,
            intents,
            controls,
        })
    }

    /// Name, revision and digest.
    pub fn info(&self) -> &BundleInfo {
        &self.info
    }

    /// What of a request the decision log drops or hashes (the manifest's
    /// `[log]` table).
    pub fn redaction(&self) -> &crate::audit::Redaction {
        &self.redaction
    }

    /// The bundle's approvals, waivers and quotas.
    pub fn controls(&self) -> &crate::approval::Controls {
        &self.controls
    }

    /// The bundle's defaults.
    pub fn defaults(&self) -> Defaults {
        self.defaults
    }

    /// The risk class of `action`, from the bundle's risk table.
    pub fn risk_class(&self, action: &str) -> Option<&str> {
        self.risk.get(action).map(String::as_str)
    }

    /// The anomaly model the bundle carries (`[anomaly] model` in its
    /// manifest), which scores requests' `anomaly.features`.
    pub fn anomaly_model(&self) -> Option<&IsolationForest> {
        self.anomaly.as_deref()
    }

    /// Every action in the bundle's risk table, sorted.
    pub fn actions(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.risk.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }
}

/// Loads the bundle's anomaly model; errors name the model file and, for
/// syntax errors, the line.
fn load_anomaly(files: &BundleFiles, m: &ManifestAnomaly) -> Result<IsolationForest, BundleError> {
    let (rel, text) = files.text(&m.model)?;
    let path = files.root.join(rel);
    IsolationForest::from_json(&text).map_err(|e| {
        let message = match e.path() {
            Some(p) => format!("anomaly model at `{p}`: {}", e.message()),
            None => format!("anomaly model: {}", e.message()),
        };
        BundleError::new(BundleErrorKind::Model, path, e.line(), message)
    })
}

fn load_rego(
    files: &BundleFiles,
    m: &ManifestRego,
    totals: &mut Totals,
    evaluator: Option<RegoEvaluator>,
) -> Result<RegoProgram, BundleError> {
    let package = m
        .package
        .as_ref()
        .map_or_else(|| "agentriage".to_owned(), |p| p.get_ref().clone());
    if !package
        .split('.')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        let span = m.package.as_ref().map_or(0..0, |p| p.span());
        return Err(files.manifest_error(span, format!("`{package}` is not a Rego package path")));
    }
    let mut modules = Vec::new();
    let mut seen = HashSet::new();
    for name in &m.modules {
        let (path, text) = files.text(name)?;
        if !seen.insert(path.clone()) {
            return Err(
                files.manifest_error(name.span(), format!("`{}` is listed twice", name.get_ref()))
            );
        }
        totals.add(&files.root.join(&path), &text, Language::Rego, false)?;
        modules.push((path, text));
    }
    let mut data = Vec::new();
    for name in &m.data {
        let (path, text) = files.text(name)?;
        totals.add(&files.root.join(&path), &text, Language::Json, false)?;
        data.push((path, text));
    }
    let evaluator = match &m.evaluator {
        _ if evaluator.is_some() => evaluator.unwrap_or(RegoEvaluator::Interpreter),
        None => RegoEvaluator::Interpreter,
        Some(e) => match e.get_ref().as_str() {
            "interpreter" => RegoEvaluator::Interpreter,
            "vm" => RegoEvaluator::Vm,
            other => {
                return Err(files.manifest_error(
                    e.span(),
                    format!("`{other}` is not a Rego evaluator; expected `interpreter` or `vm`"),
                ));
            }
        },
    };
    for (name, limit) in [
        (
            "max_instructions",
            m.max_instructions
                .as_ref()
                .map(|v| (v.span(), *v.get_ref() as u64)),
        ),
        (
            "max_eval_ms",
            m.max_eval_ms.as_ref().map(|v| (v.span(), *v.get_ref())),
        ),
        (
            "max_builtin_output_bytes",
            m.max_builtin_output_bytes
                .as_ref()
                .map(|v| (v.span(), *v.get_ref())),
        ),
        (
            "max_eval_bytes",
            m.max_eval_bytes.as_ref().map(|v| (v.span(), *v.get_ref())),
        ),
    ] {
        if let Some((span, 0)) = limit {
            return Err(files.manifest_error(span, format!("`rego.{name}` must be at least 1")));
        }
    }
    let max_eval_ms = m
        .max_eval_ms
        .as_ref()
        .map_or(DEFAULT_MAX_EVAL_MS, |v| *v.get_ref());
    RegoProgram::compile(
        &files.root,
        &package,
        &modules,
        &data,
        m.max_instructions
            .as_ref()
            .map_or(DEFAULT_MAX_INSTRUCTIONS, |v| *v.get_ref()),
        evaluator,
    )
    .map(|p| {
        p.with_time_limit(std::time::Duration::from_millis(max_eval_ms))
            .with_output_limits(
                m.max_builtin_output_bytes
                    .as_ref()
                    .map_or(DEFAULT_MAX_BUILTIN_OUTPUT_BYTES, |v| *v.get_ref()),
                m.max_eval_bytes
                    .as_ref()
                    .map_or(DEFAULT_MAX_EVAL_BYTES, |v| *v.get_ref()),
            )
    })
}

fn load_cedar(
    files: &BundleFiles,
    m: &ManifestCedar,
    totals: &mut Totals,
) -> Result<CedarPolicies, BundleError> {
    let schema = match &m.schema {
        Some(s) => {
            let (path, text) = files.text(s)?;
            let language = if path.extension().is_some_and(|e| e == "json") {
                Language::Json
            } else {
                Language::Cedar
            };
            totals.add(&files.root.join(&path), &text, language, false)?;
            Some((path, text))
        }
        None => None,
    };
    let mut policies = Vec::new();
    for name in &m.policies {
        let (path, text) = files.text(name)?;
        totals.add(&files.root.join(&path), &text, Language::Cedar, true)?;
        policies.push((path, text));
    }
    let mut entities = Vec::new();
    for name in &m.entities {
        let (path, text) = files.text(name)?;
        totals.add(&files.root.join(&path), &text, Language::Json, false)?;
        entities.push((path, text));
    }
    let type_name =
        |v: &Option<Spanned<String>>, default: &str| -> (String, std::ops::Range<usize>) {
            v.as_ref().map_or_else(
                || (default.to_owned(), 0..0),
                |s| (s.get_ref().clone(), s.span()),
            )
        };
    let types = [
        type_name(&m.principal_type, "Agent"),
        type_name(&m.resource_type, "Resource"),
        type_name(&m.action_type, "Action"),
    ];
    CedarPolicies::compile(
        &files.root,
        schema.as_ref(),
        &policies,
        &entities,
        &types,
        |span, msg| files.manifest_error(span, msg),
    )
}
