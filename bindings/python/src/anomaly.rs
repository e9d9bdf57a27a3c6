//! `agentriage._native.IsolationForest`: the anomaly model, with numpy
//! arrays in and out. Inputs of dtype float64 are read in place (no copy);
//! results are Rust buffers handed to numpy (no copy). Batch work releases
//! the GIL. The Python-facing API is `agentriage.anomaly`.

use std::collections::HashMap;

use agentriage::anomaly::{
    AnomalyError, Contamination, IsolationForest as Model, MaxFeatures, MaxSamples, ModelError,
};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

const ANOMALY_MODULE: &str = "agentriage.anomaly";

static MODEL_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static INPUT_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

fn raise(
    py: Python<'_>,
    cls: &'static PyOnceLock<Py<PyType>>,
    name: &str,
    message: &str,
    fields: Vec<(&str, Bound<'_, PyAny>)>,
) -> PyErr {
    let build = || -> PyResult<PyErr> {
        let ty = cls.import(py, ANOMALY_MODULE, name)?;
        let kwargs = PyDict::new(py);
        for (k, v) in fields {
            kwargs.set_item(k, v)?;
        }
        Ok(PyErr::from_value(ty.call((message,), Some(&kwargs))?))
    };
    build().unwrap_or_else(|e| e)
}

/// `agentriage.anomaly.ModelError` with kind, file, line and JSON path.
fn model_error(py: Python<'_>, e: &ModelError) -> PyErr {
    let fields = || -> PyResult<Vec<(&str, Bound<'_, PyAny>)>> {
        Ok(vec![
            ("kind", e.kind().as_str().into_pyobject(py)?.into_any()),
            (
                "file",
                e.file()
                    .map(|f| f.to_string_lossy().into_owned())
                    .into_pyobject(py)?
                    .into_any(),
            ),
            ("line", e.line().into_pyobject(py)?.into_any()),
            ("path", e.path().into_pyobject(py)?.into_any()),
        ])
    };
    match fields() {
        Ok(f) => raise(py, &MODEL_ERROR, "ModelError", &e.to_string(), f),
        Err(err) => err,
    }
}

/// `agentriage.anomaly.AnomalyInputError` with kind, row and feature.
fn input_error(py: Python<'_>, e: &AnomalyError) -> PyErr {
    let (kind, row, feature): (&str, Option<usize>, Option<&str>) = match e {
        AnomalyError::Parameter { name, .. } => ("parameter", None, Some(name)),
        AnomalyError::Shape { .. } => ("shape", None, None),
        AnomalyError::Empty => ("empty", None, None),
        AnomalyError::Value { row, feature, .. } => ("value", Some(*row), Some(feature)),
        AnomalyError::MissingFeature { feature } => ("missing", None, Some(feature)),
        AnomalyError::UnknownFeature { feature, .. } => ("unknown_feature", None, Some(feature)),
        _ => ("other", None, None),
    };
    let fields = || -> PyResult<Vec<(&str, Bound<'_, PyAny>)>> {
        Ok(vec![
            ("kind", kind.into_pyobject(py)?.into_any()),
            ("row", row.into_pyobject(py)?.into_any()),
            ("feature", feature.into_pyobject(py)?.into_any()),
        ])
    };
    match fields() {
        Ok(f) => raise(py, &INPUT_ERROR, "AnomalyInputError", &e.to_string(), f),
        Err(err) => err,
    }
}

/// What `filter` returns: row indices and their scores.
type Filtered<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);

/// An Isolation Forest that scores exactly as scikit-learn's.
#[pyclass(module = "agentriage._native", frozen)]
pub struct IsolationForest {
    model: Model,
}

fn contamination_param(value: &Bound<'_, PyAny>) -> PyResult<Contamination> {
    if let Ok(s) = value.extract::<String>() {
        if s == "auto" {
            return Ok(Contamination::Auto);
        }
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "contamination must be 'auto' or a float in (0, 0.5], found {s:?}"
        )));
    }
    Ok(Contamination::Fraction(value.extract::<f64>()?))
}

fn max_samples_param(value: &Bound<'_, PyAny>) -> PyResult<MaxSamples> {
    if let Ok(s) = value.extract::<String>() {
        if s == "auto" {
            return Ok(MaxSamples::Auto);
        }
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "max_samples must be 'auto', an int or a float in (0, 1], found {s:?}"
        )));
    }
    if value.is_instance_of::<pyo3::types::PyInt>() {
        return Ok(MaxSamples::Count(value.extract::<usize>()?));
    }
    Ok(MaxSamples::Fraction(value.extract::<f64>()?))
}

fn max_features_param(value: &Bound<'_, PyAny>) -> PyResult<MaxFeatures> {
    if value.is_instance_of::<pyo3::types::PyInt>() {
        return Ok(MaxFeatures::Count(value.extract::<usize>()?));
    }
    Ok(MaxFeatures::Fraction(value.extract::<f64>()?))
}

#[pymethods]
impl IsolationForest {
    /// Loads a model from JSON text.
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<IsolationForest> {
        let model = py
            .detach(|| Model::from_json(text))
            .map_err(|e| model_error(py, &e))?;
        Ok(IsolationForest { model })
    }

    /// Loads a model file.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<IsolationForest> {
        let model = py
            .detach(|| Model::load(&path))
            .map_err(|e| model_error(py, &e))?;
        Ok(IsolationForest { model })
    }

    /// Trains a model on a float64 2-d array.
    #[staticmethod]
    #[pyo3(signature = (x, feature_names=None, n_estimators=100, max_samples=None, contamination=None, max_features=None, seed=0, parallel=true))]
    #[expect(
        clippy::too_many_arguments,
        reason = "mirrors scikit-learn's constructor"
    )]
    fn train(
        py: Python<'_>,
        x: PyReadonlyArray2<'_, f64>,
        feature_names: Option<Vec<String>>,
        n_estimators: usize,
        max_samples: Option<Bound<'_, PyAny>>,
        contamination: Option<Bound<'_, PyAny>>,
        max_features: Option<Bound<'_, PyAny>>,
        seed: u64,
        parallel: bool,
    ) -> PyResult<IsolationForest> {
        let mut params = Model::params()
            .n_estimators(n_estimators)
            .seed(seed)
            .parallel(parallel);
        if let Some(m) = max_samples {
            params = params.max_samples(max_samples_param(&m)?);
        }
        if let Some(c) = contamination {
            params = params.contamination(contamination_param(&c)?);
        }
        if let Some(m) = max_features {
            params = params.max_features(max_features_param(&m)?);
        }
        if let Some(names) = feature_names {
            params = params.feature_names(names);
        }
        let view = x.as_array();
        let model = py
            .detach(|| params.fit(view))
            .map_err(|e| input_error(py, &e))?;
        Ok(IsolationForest { model })
    }

    /// The model as JSON text.
    fn to_json(&self) -> String {
        self.model.to_json()
    }

    /// Writes the model to a file.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        py.detach(|| self.model.save(&path))
            .map_err(|e| model_error(py, &e))
    }

    /// The feature names, in column order.
    #[getter]
    fn features(&self) -> Vec<String> {
        self.model.features().to_vec()
    }

    /// The number of trees.
    #[getter]
    fn n_estimators(&self) -> usize {
        self.model.n_estimators()
    }

    /// Samples per tree.
    #[getter]
    fn max_samples(&self) -> u64 {
        self.model.max_samples()
    }

    /// scikit-learn's `offset_`.
    #[getter]
    fn offset(&self) -> f64 {
        self.model.offset()
    }

    /// The anomaly score above which `predict` says outlier (`-offset`).
    #[getter]
    fn score_threshold(&self) -> f64 {
        self.model.score_threshold()
    }

    /// `'auto'`, a fraction, or None when unknown.
    #[getter]
    fn contamination(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(match self.model.contamination() {
            None => py.None(),
            Some(Contamination::Auto) => "auto".into_pyobject(py)?.into_any().unbind(),
            Some(Contamination::Fraction(f)) => f.into_pyobject(py)?.into_any().unbind(),
        })
    }

    /// The anomaly score of one event (a 1-d float64 array or a sequence of
    /// floats, in column order), in (0, 1].
    fn score(&self, py: Python<'_>, row: &Bound<'_, PyAny>) -> PyResult<f64> {
        let result = if let Ok(a) = row.extract::<PyReadonlyArray1<'_, f64>>() {
            match a.as_slice() {
                Ok(s) => self.model.score(s),
                Err(_) => self.model.score(&a.as_array().to_vec()),
            }
        } else {
            let v: Vec<f64> = row.extract()?;
            self.model.score(&v)
        };
        result.map_err(|e| input_error(py, &e))
    }

    /// The anomaly score of one event given as a mapping of feature name to number.
    fn score_named(&self, py: Python<'_>, features: HashMap<String, f64>) -> PyResult<f64> {
        self.model
            .score_named(features.iter().map(|(k, v)| (k.as_str(), *v)))
            .map_err(|e| input_error(py, &e))
    }

    /// Anomaly scores in (0, 1] of a float64 2-d array.
    fn scores<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let view = x.as_array();
        let out = py
            .detach(|| self.model.scores(view))
            .map_err(|e| input_error(py, &e))?;
        Ok(out.into_pyarray(py))
    }

    /// scikit-learn's `score_samples`.
    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let view = x.as_array();
        let out = py
            .detach(|| self.model.score_samples(view))
            .map_err(|e| input_error(py, &e))?;
        Ok(out.into_pyarray(py))
    }

    /// scikit-learn's `decision_function`.
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let view = x.as_array();
        let out = py
            .detach(|| self.model.decision_function(view))
            .map_err(|e| input_error(py, &e))?;
        Ok(out.into_pyarray(py))
    }

    /// scikit-learn's `predict`: -1 for outliers, 1 for inliers (int64).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let view = x.as_array();
        let out = py
            .detach(|| self.model.predict(view))
            .map_err(|e| input_error(py, &e))?;
        Ok(out.mapv(i64::from).into_pyarray(py))
    }

    /// Rows whose anomaly score is at least `threshold`: (row indices as
    /// int64, their scores).
    fn filter<'py>(
        &self,
        py: Python<'py>,
        x: PyReadonlyArray2<'py, f64>,
        threshold: f64,
    ) -> PyResult<Filtered<'py>> {
        let view = x.as_array();
        let (rows, scores) = py
            .detach(|| self.model.filter(view, threshold))
            .map_err(|e| input_error(py, &e))?;
        let rows: Vec<i64> = rows
            .into_iter()
            .map(|r| i64::try_from(r).unwrap_or(i64::MAX))
            .collect();
        Ok((rows.into_pyarray(py), scores.into_pyarray(py)))
    }
}
