//! Anomaly scoring with an Isolation Forest that scores exactly as
//! scikit-learn's `sklearn.ensemble.IsolationForest`.
//!
//! Security teams filter events with a cheap anomaly model before anything
//! reaches a human or an LLM reviewer. This module trains such a model
//! ([`IsolationForestParams::fit`]), loads one trained here or exported from
//! scikit-learn ([`IsolationForest::from_json`], format in `docs/anomaly.md`),
//! and scores events in-process, one at a time or in batches.
//!
//! Scores follow scikit-learn's definitions:
//!
//! - [`IsolationForest::score`]: the anomaly score `2^(-E(h(x)) / c(max_samples))`
//!   in (0, 1], higher is more anomalous — the number the engine gives policies
//!   as `anomaly_score`;
//! - [`IsolationForest::score_samples`]: its opposite, as scikit-learn returns it;
//! - [`IsolationForest::decision_function`]: `score_samples - offset`;
//! - [`IsolationForest::predict`]: `-1` for outliers, `1` for inliers.
//!
//! Inputs are cast to `f32` before they are compared with the (`f64`) split
//! thresholds, as scikit-learn's trees do, so an imported model gives the same
//! scores as in Python.
//!
//! The parameter and model types implement linfa's [`Fit`](linfa::traits::Fit)
//! and [`PredictInplace`](linfa::traits::PredictInplace) traits, so they
//! compose with linfa's datasets and preprocessing.
//!
//! ```
//! use agentriage::anomaly::{Contamination, IsolationForest};
//! use ndarray::array;
//!
//! let x = array![[0.0, 1.0], [0.1, 0.9], [0.2, 1.1], [-0.1, 1.0], [9.0, -7.0]];
//! let model = IsolationForest::params()
//!     .n_estimators(50)
//!     .contamination(Contamination::Fraction(0.2))
//!     .seed(7)
//!     .fit(x.view())?;
//! let scores = model.scores(x.view())?;
//! assert!(scores[4] > scores[0]);
//! assert_eq!(model.predict(x.view())?[4], -1);
//! # Ok::<(), agentriage::anomaly::AnomalyError>(())
//! ```

pub(crate) mod decision;
mod error;
mod forest;
mod format;
mod linfa_impl;
mod stream;
mod train;

pub use error::{AnomalyError, ModelError, ModelErrorKind};
pub use forest::{IsolationForest, average_path_length};
pub use format::{MODEL_FORMAT, MODEL_VERSION};
pub use stream::{EventError, EventErrorKind, ScoredEvent, score_jsonl};
pub use train::{Contamination, IsolationForestParams, MaxFeatures, MaxSamples};
