//! linfa's `Fit` and `PredictInplace` on the parameter and model types.

use linfa::DatasetBase;
use linfa::traits::{Fit, PredictInplace};
use ndarray::{Array1, ArrayBase, Data, Ix2};

use super::error::AnomalyError;
use super::forest::IsolationForest;
use super::train::IsolationForestParams;

/// Unsupervised: the dataset's targets, if any, are ignored.
impl<D: Data<Elem = f64>, T> Fit<ArrayBase<D, Ix2>, T, AnomalyError> for IsolationForestParams {
    type Object = IsolationForest;

    fn fit(
        &self,
        dataset: &DatasetBase<ArrayBase<D, Ix2>, T>,
    ) -> Result<IsolationForest, AnomalyError> {
        IsolationForestParams::fit(self, dataset.records.view())
    }
}

/// Labels as scikit-learn's `predict`: `-1` for outliers, `1` for inliers.
/// linfa's prediction cannot fail, so a row that cannot be scored (wrong
/// width, NaN, infinite) is labelled `-1`: the strict side. Use
/// [`IsolationForest::predict`] to get an error instead.
impl<D: Data<Elem = f64>> PredictInplace<ArrayBase<D, Ix2>, Array1<i8>> for IsolationForest {
    fn predict_inplace(&self, x: &ArrayBase<D, Ix2>, y: &mut Array1<i8>) {
        let offset = self.offset();
        for (i, (row, label)) in x.outer_iter().zip(y.iter_mut()).enumerate() {
            let row: Vec<f64> = row.to_vec();
            *label = match self.check_row(&row, i) {
                Ok(()) if -self.score_unchecked(&row) - offset >= 0.0 => 1,
                _ => -1,
            };
        }
    }

    fn default_target(&self, x: &ArrayBase<D, Ix2>) -> Array1<i8> {
        Array1::from_elem(x.nrows(), -1)
    }
}
