//! The decision log, metrics and hot reload, for Python.

use std::path::PathBuf;
use std::time::Duration;

use agentriage::audit::{
    self, DecisionLog, DecisionLogConfig, FlushPolicy, LogError, SigningKey, VerifyOptions,
};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyType};

static LOG_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `agentriage.DecisionLogError` with kind and file.
pub fn log_error(py: Python<'_>, e: &LogError) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let ty = LOG_ERROR.import(py, "agentriage._errors", "DecisionLogError")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("kind", e.kind().as_str())?;
        kwargs.set_item("file", e.file().map(|f| f.to_string_lossy().into_owned()))?;
        Ok(PyErr::from_value(ty.call((e.message(),), Some(&kwargs))?))
    };
    build().unwrap_or_else(|err| err)
}

/// How the log of `Engine.enable_decision_log` is configured.
pub struct LogOptions {
    /// The log's directory.
    pub dir: PathBuf,
    /// PKCS#8 Ed25519 key that signs checkpoints.
    pub key: Option<Vec<u8>>,
    /// Reject decisions that cannot be logged.
    pub mandatory: bool,
    /// Flush interval in milliseconds; 0 flushes after every record.
    pub flush_ms: u64,
    /// Records that may wait for the writer before `decide` waits.
    pub queue_capacity: usize,
    /// A signed checkpoint after this many records.
    pub checkpoint_every: u64,
    /// Segment size at which a new file starts.
    pub max_segment_bytes: u64,
    /// Secret keying the hashes of redacted fields.
    pub salt: Option<Vec<u8>>,
}

/// Opens the log and attaches it; a log attached before is closed.
pub fn enable(py: Python<'_>, engine: &agentriage::Engine, o: LogOptions) -> PyResult<()> {
    let mut config = DecisionLogConfig::new(&o.dir)
        .mandatory(o.mandatory)
        .flush(if o.flush_ms == 0 {
            FlushPolicy::EveryRecord
        } else {
            FlushPolicy::Interval(Duration::from_millis(o.flush_ms))
        })
        .queue_capacity(o.queue_capacity)
        .checkpoint_every(o.checkpoint_every)
        .max_segment_bytes(o.max_segment_bytes);
    if let Some(der) = &o.key {
        config = config.signing_key(SigningKey::from_pkcs8(der).map_err(|e| log_error(py, &e))?);
    }
    if let Some(salt) = o.salt {
        config = config.salt(salt);
    }
    let log = py
        .detach(|| DecisionLog::open(config))
        .map_err(|e| log_error(py, &e))?;
    if let Some(previous) = engine.set_decision_log(Some(log)) {
        py.detach(|| previous.close())
            .map_err(|e| log_error(py, &e))?;
    }
    Ok(())
}

/// Closes the log (see `Engine::close_decision_log`: a mandatory log stays
/// attached, so later decisions are rejected); `False` when no open log
/// was attached.
pub fn close(py: Python<'_>, engine: &agentriage::Engine) -> PyResult<bool> {
    py.detach(|| engine.close_decision_log())
        .map_err(|e| log_error(py, &e))
}

/// Verifies decision log segment files (in order) and returns the report
/// as a dict: ``intact`` (True only when the chain verifies and every
/// record is covered by a checkpoint signed with ``key``: never without a
/// key), ``integrity`` (``proven``, ``proven_except_tail``, ``unproven``,
/// ``broken``), ``proven``, ``chain_verifies``, ``problem`` (``kind``,
/// ``file``, ``line``, ``seq``, ``message``) or None, ``torn`` or None,
/// ``unsigned_tail_seq`` (first, last) or None, and the counts.
///
/// Raises `agentriage.DecisionLogError` when a file cannot be read or the
/// key is not 64 hex digits.
#[pyfunction]
#[pyo3(signature = (files, key=None, *, allow_unsigned_tail=false))]
pub fn verify_log<'py>(
    py: Python<'py>,
    files: Vec<PathBuf>,
    key: Option<String>,
    allow_unsigned_tail: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let options = match key {
        Some(k) => VerifyOptions::with_key(&k)
            .map_err(|e| log_error(py, &e))?
            .allow_unsigned_tail(allow_unsigned_tail),
        // Without a key nothing is signed: the tail option changes nothing
        // and the report stays unproven.
        None => VerifyOptions::new(),
    };
    let report = py
        .detach(|| audit::verify(&files, &options))
        .map_err(|e| log_error(py, &e))?;
    let d = PyDict::new(py);
    d.set_item("intact", report.is_intact())?;
    d.set_item("integrity", report.integrity.as_str())?;
    d.set_item("proven", report.integrity.is_proven())?;
    d.set_item("chain_verifies", report.chain_verifies())?;
    let problem = match &report.problem {
        Some(p) => {
            let pd = PyDict::new(py);
            pd.set_item("kind", p.kind.as_str())?;
            pd.set_item("file", p.file.to_string_lossy().into_owned())?;
            pd.set_item("line", p.line)?;
            pd.set_item("seq", p.seq)?;
            pd.set_item("message", &p.message)?;
            Some(pd)
        }
        None => None,
    };
    d.set_item("problem", problem)?;
    let torn = match &report.torn {
        Some(t) => {
            let td = PyDict::new(py);
            td.set_item("file", t.file.to_string_lossy().into_owned())?;
            td.set_item("line", t.line)?;
            td.set_item("bytes", t.bytes)?;
            Some(td)
        }
        None => None,
    };
    d.set_item("torn", torn)?;
    d.set_item("files", report.files)?;
    d.set_item("records", report.records)?;
    d.set_item("decisions", report.decisions)?;
    d.set_item("checkpoints", report.checkpoints)?;
    d.set_item("key_checked", report.key_checked)?;
    d.set_item("unsigned_tail", report.unsigned_tail)?;
    d.set_item("unsigned_tail_seq", report.unsigned_tail_seq)?;
    d.set_item("closed", report.closed)?;
    d.set_item("last_hash", report.last_hash)?;
    Ok(d)
}

/// A new Ed25519 checkpoint signing key: ``(pkcs8_der, public_key_hex)``.
#[pyfunction]
pub fn generate_signing_key(py: Python<'_>) -> PyResult<(Bound<'_, PyBytes>, String)> {
    let der = SigningKey::generate_pkcs8().map_err(|e| log_error(py, &e))?;
    let key = SigningKey::from_pkcs8(&der).map_err(|e| log_error(py, &e))?;
    Ok((PyBytes::new(py, &der), key.public_key_hex().to_owned()))
}
