//! Core errors to Python exceptions.
//!
//! The exception classes are plain Python classes in `agentriage/_errors.py`
//! (so they carry typed fields, pickle, and read like any other Python
//! exception); this module looks them up once and raises them.

use std::any::Any;

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

use crate::convert::ConversionError;

const ERRORS_MODULE: &str = "agentriage._errors";

static INVALID_REQUEST: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static BUNDLE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INTERNAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Raises `cls(message, **fields)`.
fn raise(
    py: Python<'_>,
    cls: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: &str,
    fields: &[(&str, Bound<'_, PyAny>)],
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let ty = cls.import(py, ERRORS_MODULE, name)?;
        let kwargs = PyDict::new(py);
        for (k, v) in fields {
            kwargs.set_item(*k, v)?;
        }
        Ok(PyErr::from_value(ty.call((message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|e| e)
}

/// `agentriage.InvalidRequestError` with kind, JSON path and, for a batch,
/// the index of the request at fault.
pub fn invalid_request(
    py: Python<'_>,
    kind: &str,
    path: &str,
    message: &str,
    index: Option<usize>,
) -> PyErr {
    let fields = || -> PyResult<Vec<(&str, Bound<'_, PyAny>)>> {
        Ok(vec![
            ("kind", kind.into_pyobject(py)?.into_any()),
            ("path", path.into_pyobject(py)?.into_any()),
            ("index", index.into_pyobject(py)?.into_any()),
        ])
    };
    match fields() {
        Ok(f) => raise(py, &INVALID_REQUEST, "InvalidRequestError", message, &f),
        Err(e) => e,
    }
}

/// A Python value that could not become JSON.
pub fn conversion(py: Python<'_>, e: &ConversionError, index: Option<usize>) -> PyErr {
    invalid_request(py, e.kind, &e.path, &e.message, index)
}

/// Any core error.
pub fn core(py: Python<'_>, e: &agentriage::Error, index: Option<usize>) -> PyErr {
    if let Some(r) = e.as_request() {
        return invalid_request(py, r.kind().as_str(), r.path(), r.message(), index);
    }
    if let Some(b) = e.as_bundle() {
        let fields = || -> PyResult<Vec<(&str, Bound<'_, PyAny>)>> {
            Ok(vec![
                ("kind", b.kind().as_str().into_pyobject(py)?.into_any()),
                (
                    "file",
                    b.file()
                        .to_string_lossy()
                        .into_owned()
                        .into_pyobject(py)?
                        .into_any(),
                ),
                ("line", b.line().into_pyobject(py)?.into_any()),
            ])
        };
        return match fields() {
            Ok(f) => raise(py, &BUNDLE, "BundleError", b.message(), &f),
            Err(err) => err,
        };
    }
    internal(py, &format!("unexpected error: {e}"))
}

/// `agentriage.InternalError`: a bug in agentriage, reported instead of
/// crashing the interpreter.
pub fn internal(py: Python<'_>, message: &str) -> PyErr {
    raise(py, &INTERNAL, "InternalError", message, &[])
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned());
    format!("agentriage panicked (a bug; please report it): {detail}")
}
