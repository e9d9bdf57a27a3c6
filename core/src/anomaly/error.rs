//! Errors of the anomaly module.

use std::fmt;
use std::path::{Path, PathBuf};

/// An error training or scoring an Isolation Forest: names the parameter,
/// or the row and feature of the input that was wrong.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AnomalyError {
    /// A training parameter is out of range.
    #[error("invalid parameter `{name}`: {message}")]
    Parameter {
        /// The parameter, e.g. `max_samples`.
        name: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The input has the wrong number of columns.
    #[error("input has {found} features, the model expects {expected}")]
    Shape {
        /// The model's number of features.
        expected: usize,
        /// The input's number of columns.
        found: usize,
    },
    /// The input holds no rows where some are needed.
    #[error("input has no rows")]
    Empty,
    /// A value of the input cannot be scored (NaN, infinite, beyond `f32`).
    #[error("row {row}, feature `{feature}`: {message}")]
    Value {
        /// The 0-based row.
        row: usize,
        /// The feature's name.
        feature: String,
        /// What is wrong with the value.
        message: String,
    },
    /// A feature the model needs is absent from a named-feature input.
    #[error("missing feature `{feature}`")]
    MissingFeature {
        /// The feature's name.
        feature: String,
    },
    /// A named-feature input holds a feature the model does not know.
    #[error("unknown feature `{feature}`; the model's features are {expected}")]
    UnknownFeature {
        /// The feature's name.
        feature: String,
        /// The model's features, comma-separated.
        expected: String,
    },
    /// An error reported by linfa.
    #[error("linfa: {0}")]
    Linfa(String),
}

impl From<linfa::Error> for AnomalyError {
    fn from(e: linfa::Error) -> Self {
        AnomalyError::Linfa(e.to_string())
    }
}

/// What is wrong with a model file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelErrorKind {
    /// The file could not be read or written.
    Io,
    /// The text is not JSON, or a field has the wrong JSON type.
    Syntax,
    /// The file is not an agentriage Isolation Forest, or of a version this
    /// build does not read.
    Format,
    /// The model is well-formed JSON but inconsistent: a child out of range,
    /// a cycle, a feature that does not exist, a threshold that is not finite…
    Invalid,
}

impl ModelErrorKind {
    /// A stable, machine-readable name (`io`, `syntax`, `format`, `invalid`).
    pub fn as_str(self) -> &'static str {
        match self {
            ModelErrorKind::Io => "io",
            ModelErrorKind::Syntax => "syntax",
            ModelErrorKind::Format => "format",
            ModelErrorKind::Invalid => "invalid",
        }
    }
}

/// A model that could not be loaded: names the file (when there is one), the
/// line (for syntax errors) or the JSON path (for inconsistencies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ModelError {
    kind: ModelErrorKind,
    file: Option<PathBuf>,
    line: Option<u32>,
    path: Option<String>,
    message: String,
}

impl ModelError {
    pub(crate) fn new(kind: ModelErrorKind, message: impl Into<String>) -> Self {
        ModelError {
            kind,
            file: None,
            line: None,
            path: None,
            message: message.into(),
        }
    }

    pub(crate) fn at(
        kind: ModelErrorKind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ModelError {
            path: Some(path.into()),
            ..ModelError::new(kind, message)
        }
    }

    pub(crate) fn with_line(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }

    pub(crate) fn in_file(mut self, file: impl Into<PathBuf>) -> Self {
        self.file = Some(file.into());
        self
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> ModelErrorKind {
        self.kind
    }

    /// The model file, when the model was read from one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The 1-based line of a syntax error.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The JSON path of the offending value, e.g. `trees[3].children_left[7]`.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// The problem, without file, line and path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}", file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            write!(f, ": ")?;
        } else if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if let Some(path) = &self.path {
            write!(f, "at `{path}`: ")?;
        }
        write!(f, "{}", self.message)
    }
}
