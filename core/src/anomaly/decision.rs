//! The `[anomaly]` table of a bundle's manifest (the request's features are
//! checked in `crate::request::features` and scored by the engine).

use serde::Deserialize;
use toml::Spanned;

/// The `[anomaly]` table of `bundle.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestAnomaly {
    /// The model file, relative to the bundle root.
    pub model: Spanned<String>,
}
