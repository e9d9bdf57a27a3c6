//! Errors returned by the engine.
//!
//! Every error names what was wrong: a request error carries the JSON path of
//! the offending field, a bundle error carries the file and, where there is
//! one, the line. Messages are lowercase without a trailing period; user input
//! appears in backticks.

use std::fmt;
use std::path::{Path, PathBuf};

/// Any error of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request could not be decided because it is malformed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The policy bundle could not be loaded.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl Error {
    /// The request error, if this is one.
    pub fn as_request(&self) -> Option<&RequestError> {
        match self {
            Error::Request(e) => Some(e),
            Error::Bundle(_) => None,
        }
    }

    /// The bundle error, if this is one.
    pub fn as_bundle(&self) -> Option<&BundleError> {
        match self {
            Error::Bundle(e) => Some(e),
            Error::Request(_) => None,
        }
    }
}

/// What is wrong with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestErrorKind {
    /// The text is not JSON.
    Syntax,
    /// The request is larger than the engine accepts.
    TooLarge,
    /// The request nests deeper than the engine accepts.
    TooDeep,
    /// A required field is absent.
    Missing,
    /// A field has the wrong type.
    Type,
    /// A field has the right type but a value the contract does not allow.
    Value,
    /// A field the contract does not define.
    Unknown,
}

impl RequestErrorKind {
    /// A stable, machine-readable name (`syntax`, `too_large`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestErrorKind::Syntax => "syntax",
            RequestErrorKind::TooLarge => "too_large",
            RequestErrorKind::TooDeep => "too_deep",
            RequestErrorKind::Missing => "missing",
            RequestErrorKind::Type => "type",
            RequestErrorKind::Value => "value",
            RequestErrorKind::Unknown => "unknown_field",
        }
    }
}

/// A malformed request: names the JSON path of the field that was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid request at `{path}`: {message}")]
pub struct RequestError {
    kind: RequestErrorKind,
    path: String,
    message: String,
}

impl RequestError {
    pub(crate) fn new(
        kind: RequestErrorKind,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let path = path.into();
        RequestError {
            kind,
            path: if path.is_empty() {
                "$".to_owned()
            } else {
                path
            },
            message: message.into(),
        }
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> RequestErrorKind {
        self.kind
    }

    /// The JSON path of the offending field, e.g. `principal.credential.expires_at`
    /// (`$` for the request as a whole).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The problem, without the path.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What is wrong with a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleErrorKind {
    /// A file could not be read, or a file the manifest names does not exist.
    Io,
    /// The manifest is not valid.
    Manifest,
    /// A Rego module does not parse or compile.
    Rego,
    /// A Cedar policy or schema does not parse.
    Cedar,
    /// A Cedar policy or entity does not validate against the schema.
    Validation,
    /// A data or entities file is not valid.
    Data,
    /// The bundle's signature is missing, untrusted or does not match its files.
    Signature,
    /// The anomaly model file is not valid.
    Model,
    /// A file is larger or nests deeper than the loader accepts, or the
    /// bundle holds more than it accepts; [`BundleError::limit`] says which
    /// limit.
    Limit,
    /// A bundle archive is not a gzip-compressed tar the loader accepts: an
    /// entry that is a link or a device, a path leaving the bundle, a
    /// duplicate path, a bad header, or more entries or bytes than allowed.
    Archive,
}

impl BundleErrorKind {
    /// A stable, machine-readable name (`io`, `manifest`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            BundleErrorKind::Io => "io",
            BundleErrorKind::Manifest => "manifest",
            BundleErrorKind::Rego => "rego",
            BundleErrorKind::Cedar => "cedar",
            BundleErrorKind::Validation => "validation",
            BundleErrorKind::Data => "data",
            BundleErrorKind::Signature => "signature",
            BundleErrorKind::Model => "model",
            BundleErrorKind::Limit => "limit",
            BundleErrorKind::Archive => "archive",
        }
    }
}

/// A bundle that could not be loaded: names the file and, where known, the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BundleError {
    kind: BundleErrorKind,
    file: PathBuf,
    line: Option<u32>,
    message: String,
    limit: Option<LoadLimit>,
}

impl BundleError {
    pub(crate) fn new(
        kind: BundleErrorKind,
        file: impl Into<PathBuf>,
        line: Option<u32>,
        message: impl Into<String>,
    ) -> Self {
        BundleError {
            kind,
            file: file.into(),
            line,
            message: message.into(),
            limit: None,
        }
    }

    pub(crate) fn with_limit(mut self, limit: LoadLimit) -> Self {
        self.limit = Some(limit);
        self
    }

    /// The load limit crossed, for a [`BundleErrorKind::Limit`] error.
    pub fn limit(&self) -> Option<LoadLimit> {
        self.limit
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> BundleErrorKind {
        self.kind
    }

    /// The file at fault.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line in [`file`](Self::file), where one is known.
    pub fn line(&self) -> Option<u32> {
        self.line
    }

    /// The problem, without file and line.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The 1-based line holding byte `offset` of `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    let newlines = text
        .as_bytes()
        .get(..end)
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count());
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Which of the load limits a file crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadLimit {
    /// A policy file is larger than [`MAX_POLICY_FILE_BYTES`](crate::MAX_POLICY_FILE_BYTES).
    PolicyFileBytes,
    /// The policy files together are larger than [`MAX_POLICY_BYTES`](crate::MAX_POLICY_BYTES).
    PolicyBytes,
    /// A data or entities file is larger than [`MAX_DATA_FILE_BYTES`](crate::MAX_DATA_FILE_BYTES).
    DataFileBytes,
    /// The data and entities files together are larger than [`MAX_DATA_BYTES`](crate::MAX_DATA_BYTES).
    DataBytes,
    /// Brackets nest deeper than [`MAX_REGO_DEPTH`](crate::MAX_REGO_DEPTH), [`MAX_CEDAR_DEPTH`](crate::MAX_CEDAR_DEPTH) or
    /// [`MAX_DATA_DEPTH`](crate::MAX_DATA_DEPTH).
    Depth,
    /// The Cedar files hold more than [`MAX_CEDAR_POLICIES`](crate::MAX_CEDAR_POLICIES) policies.
    CedarPolicies,
    /// A Cedar policy holds more than [`MAX_CEDAR_OPERATORS`](crate::MAX_CEDAR_OPERATORS) operators.
    CedarOperators,
    /// Nested literals in the Rego modules would take the parser more than
    /// [`MAX_REGO_PARSE_WORK`](crate::MAX_REGO_PARSE_WORK).
    RegoParseWork,
}

impl LoadLimit {
    /// A stable, machine-readable name (`policy_file_bytes`, `depth`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            LoadLimit::PolicyFileBytes => "policy_file_bytes",
            LoadLimit::PolicyBytes => "policy_bytes",
            LoadLimit::DataFileBytes => "data_file_bytes",
            LoadLimit::DataBytes => "data_bytes",
            LoadLimit::Depth => "depth",
            LoadLimit::CedarPolicies => "cedar_policies",
            LoadLimit::RegoParseWork => "rego_parse_work",
            LoadLimit::CedarOperators => "cedar_operators",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_of_counts_newlines_before_offset() {
        let text = "a\nbb\nccc";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 2), 2);
        assert_eq!(line_of(text, 5), 3);
        assert_eq!(line_of(text, 500), 3);
    }

    #[test]
    fn bundle_error_display_names_file_and_line() {
        let e = BundleError::new(BundleErrorKind::Rego, "rego/a.rego", Some(7), "bad");
        assert_eq!(e.to_string(), "rego/a.rego:7: bad");
        let e = BundleError::new(BundleErrorKind::Io, "x.json", None, "missing");
        assert_eq!(e.to_string(), "x.json: missing");
    }

    #[test]
    fn request_error_display_names_path() {
        let e = RequestError::new(RequestErrorKind::Missing, "", "empty");
        assert_eq!(e.path(), "$");
        assert_eq!(e.to_string(), "invalid request at `$`: empty");
    }
}
