//! A request's `anomaly.features` scored by the bundle's model, so that both
//! policy engines see the score exactly as they see a given `anomaly.score`.

use crate::anomaly::AnomalyError;
use crate::bundle::Bundle;
use crate::error::{RequestError, RequestErrorKind};
use crate::request::Request;
use crate::request::features::{FEATURES, feature_path};

/// The request with `anomaly.score` computed from `anomaly.features` by the
/// bundle's model; `None` when the request carries no features.
pub(crate) fn score_request(
    bundle: &Bundle,
    request: &Request,
) -> Result<Option<Request>, RequestError> {
    let Some(features) = request.anomaly.as_ref().and_then(|a| a.features.as_ref()) else {
        return Ok(None);
    };
    let Some(model) = bundle.anomaly_model() else {
        return Err(RequestError::new(
            RequestErrorKind::Value,
            FEATURES,
            format!(
                "bundle `{}` carries no anomaly model to score features; send `anomaly.score`, \
                 or name a model under `[anomaly]` in its bundle.toml",
                bundle.info().name
            ),
        ));
    };
    let score = model
        .score_named(features.iter().map(|(k, &v)| (k.as_str(), v)))
        .map_err(|e| match e {
            AnomalyError::MissingFeature { feature } => RequestError::new(
                RequestErrorKind::Missing,
                feature_path(&feature),
                format!("the bundle's anomaly model needs feature `{feature}`"),
            ),
            AnomalyError::UnknownFeature { feature, expected } => RequestError::new(
                RequestErrorKind::Unknown,
                feature_path(&feature),
                format!("unknown feature `{feature}`; the model's features are {expected}"),
            ),
            AnomalyError::Value {
                feature, message, ..
            } => RequestError::new(RequestErrorKind::Value, feature_path(&feature), message),
            other => RequestError::new(RequestErrorKind::Value, FEATURES, other.to_string()),
        })?;
    if !(score.is_finite() && (0.0..=1.0).contains(&score)) {
        return Err(RequestError::new(
            RequestErrorKind::Value,
            FEATURES,
            format!("the anomaly model scored {score}, outside [0, 1]"),
        ));
    }
    let mut scored = request.clone();
    if let Some(a) = scored.anomaly.as_mut() {
        a.score = Some(score);
        a.features = None;
    }
    Ok(Some(scored))
}
