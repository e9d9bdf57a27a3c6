//! The anomaly model in the decision: a request's `anomaly.features` scored
//! by the bundle's model, so that both policy engines see the score exactly
//! as they see a given `anomaly.score`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::error::AnomalyError;
use crate::bundle::Bundle;
use crate::error::{RequestError, RequestErrorKind};
use crate::request::Request;

/// The `[anomaly]` table of `bundle.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestAnomaly {
    /// The model file, relative to the bundle root.
    pub model: Spanned<String>,
}

const FEATURES: &str = "anomaly.features";

fn feature_path(name: &str) -> String {
    format!("{FEATURES}.{name}")
}

/// Parses `anomaly.features`: an object of feature name → finite number.
pub(crate) fn parse_features(v: &Value) -> Result<BTreeMap<String, f64>, RequestError> {
    let Value::Object(map) = v else {
        return Err(RequestError::new(
            RequestErrorKind::Type,
            FEATURES,
            format!(
                "expected an object of feature name to number, found {}",
                kind_of(v)
            ),
        ));
    };
    let mut out = BTreeMap::new();
    for (name, value) in map {
        let x = match value {
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            other => {
                return Err(RequestError::new(
                    RequestErrorKind::Type,
                    feature_path(name),
                    format!("expected a number, found {}", kind_of(other)),
                ));
            }
        };
        check_feature(name, x)?;
        out.insert(name.clone(), x);
    }
    Ok(out)
}

/// What [`Request::validate`](crate::Request::validate) checks of the anomaly
/// fields beyond the score: finite features, and not both score and features.
pub(crate) fn check(
    score: Option<f64>,
    features: Option<&BTreeMap<String, f64>>,
) -> Result<(), RequestError> {
    let Some(features) = features else {
        return Ok(());
    };
    if score.is_some() {
        return Err(RequestError::new(
            RequestErrorKind::Value,
            "anomaly",
            "give `anomaly.score` or `anomaly.features`, not both",
        ));
    }
    for (name, &x) in features {
        check_feature(name, x)?;
    }
    Ok(())
}

fn check_feature(name: &str, x: f64) -> Result<(), RequestError> {
    if !x.is_finite() {
        return Err(RequestError::new(
            RequestErrorKind::Value,
            feature_path(name),
            format!("feature `{name}` must be a finite number, found {x}"),
        ));
    }
    Ok(())
}

/// `anomaly.features` as JSON.
pub(crate) fn features_json(features: &BTreeMap<String, f64>) -> Value {
    Value::Object(
        features
            .iter()
            .map(|(k, &v)| {
                (
                    k.clone(),
                    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
                )
            })
            .collect(),
    )
}

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

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
