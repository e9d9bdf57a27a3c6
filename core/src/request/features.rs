//! The request's `anomaly.features`: parsed and checked with the request
//! (finite numbers, not beside a score); the bundle's model scores them in
//! the engine.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{RequestError, RequestErrorKind};

pub(crate) const FEATURES: &str = "anomaly.features";

pub(crate) fn feature_path(name: &str) -> String {
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
                super::type_name(v)
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
                    format!("expected a number, found {}", super::type_name(other)),
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
