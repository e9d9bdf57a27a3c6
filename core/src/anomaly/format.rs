//! The JSON model format (`docs/anomaly.md`): versioned, named features,
//! trees in the layout of scikit-learn's `tree_` arrays.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{ModelError, ModelErrorKind};
use super::forest::{IsolationForest, TreeSpec};
use super::train::Contamination;

/// The `format` every model file declares.
pub const MODEL_FORMAT: &str = "agentriage.isolation-forest";

/// The model format version this build reads and writes.
pub const MODEL_VERSION: u32 = 1;

/// Largest model file read (256 MiB): far above any forest of useful size.
const MAX_MODEL_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    format: String,
    version: u32,
    features: Vec<String>,
    max_samples: u64,
    offset: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    contamination: Option<ContaminationFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    source: Option<String>,
    trees: Vec<TreeFile>,
}

#[derive(Serialize, Deserialize, Clone, Copy)]
#[serde(untagged)]
enum ContaminationFile {
    Fraction(f64),
    Auto(AutoWord),
}

#[derive(Serialize, Deserialize, Clone, Copy)]
enum AutoWord {
    #[serde(rename = "auto")]
    Auto,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeFile {
    features: Vec<u64>,
    children_left: Vec<i64>,
    children_right: Vec<i64>,
    feature: Vec<i64>,
    threshold: Vec<f64>,
    n_node_samples: Vec<u64>,
}

fn syntax(e: &serde_json::Error) -> ModelError {
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_owned(),
        None => text.clone(),
    };
    let mut err = ModelError::new(ModelErrorKind::Syntax, message);
    if e.line() > 0 {
        err = err.with_line(u32::try_from(e.line()).unwrap_or(u32::MAX));
    }
    err
}

impl IsolationForest {
    /// Loads a model from its JSON text, checking the format, the version and
    /// every tree: children in range, each node reached once from the root,
    /// features that exist, finite thresholds, positive sample counts.
    pub fn from_json(text: &str) -> Result<IsolationForest, ModelError> {
        let header: Header = serde_json::from_str(text).map_err(|e| syntax(&e))?;
        match header.format {
            Some(serde_json::Value::String(f)) if f == MODEL_FORMAT => {}
            Some(other) => {
                return Err(ModelError::at(
                    ModelErrorKind::Format,
                    "format",
                    format!("expected `{MODEL_FORMAT}`, found {other}"),
                ));
            }
            None => {
                return Err(ModelError::at(
                    ModelErrorKind::Format,
                    "format",
                    format!("missing; a model declares `\"format\": \"{MODEL_FORMAT}\"`"),
                ));
            }
        }
        match header.version {
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(MODEL_VERSION)) => {}
            Some(other) => {
                return Err(ModelError::at(
                    ModelErrorKind::Format,
                    "version",
                    format!("this build reads version {MODEL_VERSION}, found {other}"),
                ));
            }
            None => {
                return Err(ModelError::at(ModelErrorKind::Format, "version", "missing"));
            }
        }
        let file: ModelFile = serde_json::from_str(text).map_err(|e| syntax(&e))?;
        let contamination = match file.contamination {
            None => None,
            Some(ContaminationFile::Auto(_)) => Some(Contamination::Auto),
            Some(ContaminationFile::Fraction(f)) => {
                if !(f > 0.0 && f <= 0.5) {
                    return Err(ModelError::at(
                        ModelErrorKind::Invalid,
                        "contamination",
                        format!("must be `auto` or a fraction in (0, 0.5], found {f}"),
                    ));
                }
                Some(Contamination::Fraction(f))
            }
        };
        let mut trees = Vec::with_capacity(file.trees.len());
        for (t, tree) in file.trees.into_iter().enumerate() {
            let mut features = Vec::with_capacity(tree.features.len());
            for (i, f) in tree.features.into_iter().enumerate() {
                features.push(usize::try_from(f).map_err(|_| {
                    ModelError::at(
                        ModelErrorKind::Invalid,
                        format!("trees[{t}].features[{i}]"),
                        format!("feature index {f} does not exist"),
                    )
                })?);
            }
            trees.push(TreeSpec {
                features,
                children_left: tree.children_left,
                children_right: tree.children_right,
                feature: tree.feature,
                threshold: tree.threshold,
                n_node_samples: tree.n_node_samples,
            });
        }
        IsolationForest::build(
            file.features,
            trees,
            file.max_samples,
            file.offset,
            contamination,
        )
    }

    /// Reads a model file ([`from_json`](Self::from_json)); errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<IsolationForest, ModelError> {
        let path = path.as_ref();
        let io = |e: std::io::Error| {
            ModelError::new(ModelErrorKind::Io, format!("cannot read the model: {e}")).in_file(path)
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_MODEL_BYTES {
            return Err(ModelError::new(
                ModelErrorKind::Io,
                format!("the model is {len} bytes, more than the limit of {MAX_MODEL_BYTES}"),
            )
            .in_file(path));
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        IsolationForest::from_json(&text).map_err(|e| e.in_file(path))
    }

    /// The model as JSON text in the documented format (compact).
    pub fn to_json(&self) -> String {
        let file = ModelFile {
            format: MODEL_FORMAT.to_owned(),
            version: MODEL_VERSION,
            features: self.features().to_vec(),
            max_samples: self.max_samples(),
            offset: self.offset(),
            contamination: self.contamination().map(|c| match c {
                Contamination::Auto => ContaminationFile::Auto(AutoWord::Auto),
                Contamination::Fraction(f) => ContaminationFile::Fraction(f),
            }),
            source: None,
            trees: self
                .trees()
                .iter()
                .map(|t| TreeFile {
                    features: t.features.iter().map(|&f| f as u64).collect(),
                    children_left: t.children_left.clone(),
                    children_right: t.children_right.clone(),
                    feature: t.feature.clone(),
                    threshold: t.threshold.clone(),
                    n_node_samples: t.n_node_samples.clone(),
                })
                .collect(),
        };
        // Every number is finite (checked at build), so this cannot fail.
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Writes the model to `path` as JSON.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ModelError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_json()).map_err(|e| {
            ModelError::new(ModelErrorKind::Io, format!("cannot write the model: {e}"))
                .in_file(path)
        })
    }
}
