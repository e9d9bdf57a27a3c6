//! Errors of the decision log.

use std::fmt;
use std::path::{Path, PathBuf};

/// What went wrong with a decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogErrorKind {
    /// A file or directory could not be read or written.
    Io,
    /// The log's storage is full: the configured quota or the disk.
    Full,
    /// The configuration is not valid.
    Config,
    /// A signing or verification key is not valid.
    Key,
    /// The existing log cannot be resumed (its last record does not verify).
    Corrupt,
    /// The log was closed, or its writer stopped after a failure.
    Closed,
}

impl LogErrorKind {
    /// A stable, machine-readable name (`io`, `full`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            LogErrorKind::Io => "io",
            LogErrorKind::Full => "full",
            LogErrorKind::Config => "config",
            LogErrorKind::Key => "key",
            LogErrorKind::Corrupt => "corrupt",
            LogErrorKind::Closed => "closed",
        }
    }
}

/// An error of the decision log: what kind, which file (where there is
/// one), and what happened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct LogError {
    kind: LogErrorKind,
    file: Option<PathBuf>,
    message: String,
}

impl LogError {
    pub(crate) fn new(kind: LogErrorKind, file: Option<&Path>, message: impl Into<String>) -> Self {
        LogError {
            kind,
            file: file.map(Path::to_path_buf),
            message: message.into(),
        }
    }

    pub(crate) fn io(file: &Path, what: &str, e: &std::io::Error) -> Self {
        let kind = if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
            LogErrorKind::Full
        } else {
            LogErrorKind::Io
        };
        LogError::new(kind, Some(file), format!("cannot {what}: {e}"))
    }

    /// What kind of problem this is.
    pub fn kind(&self) -> LogErrorKind {
        self.kind
    }

    /// The file at fault, where there is one.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The problem, without the file.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{}: ", file.display())?;
        }
        write!(f, "decision log {}: {}", self.kind.as_str(), self.message)
    }
}
