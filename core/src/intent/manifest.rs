//! The `[intents]` table of `bundle.toml`.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::keys::TrustedKeys;
use super::verify::IntentConfig;
use crate::error::{BundleError, BundleErrorKind};
use crate::files::BundleFiles;

/// Largest `clock_skew_s` a bundle may set (10 minutes).
pub const MAX_CLOCK_SKEW_S: u64 = 600;

/// Largest `max_lifetime_s` a bundle may set (one day).
pub const MAX_LIFETIME_S: u64 = 86_400;

/// `[intents]`: where the trusted keys are and what to check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestIntents {
    /// The JWKS file, relative to the bundle.
    keys: Spanned<String>,
    /// The audience intents must name (this receiver's identity).
    audience: Spanned<String>,
    #[serde(default)]
    clock_skew_s: Option<Spanned<u64>>,
    #[serde(default)]
    max_lifetime_s: Option<Spanned<u64>>,
}

/// The JWKS file the manifest names at `keys`, parsed and not empty; an
/// error names the file, the line and the member (`what` names the set).
pub(crate) fn load_key_set(
    files: &BundleFiles,
    keys: &Spanned<String>,
    what: &str,
) -> Result<TrustedKeys, BundleError> {
    let (path, text) = files.text(keys)?;
    let set = TrustedKeys::from_json(&text).map_err(|e| {
        BundleError::new(
            BundleErrorKind::Data,
            files.root.join(&path),
            e.line(),
            format!("`{}`: {}", e.path(), e.message()),
        )
    })?;
    if set.is_empty() {
        return Err(BundleError::new(
            BundleErrorKind::Data,
            files.root.join(&path),
            None,
            format!("{what} holds no key"),
        ));
    }
    Ok(set)
}

pub(crate) fn load(files: &BundleFiles, m: &ManifestIntents) -> Result<IntentConfig, BundleError> {
    let audience = m.audience.get_ref().trim();
    if audience.is_empty() {
        return Err(files.manifest_error(m.audience.span(), "`intents.audience` is empty".into()));
    }
    let keys = load_key_set(files, &m.keys, "the key set")?;
    let mut config = IntentConfig::new(keys, audience);
    if let Some(s) = &m.clock_skew_s {
        if *s.get_ref() > MAX_CLOCK_SKEW_S {
            return Err(files.manifest_error(
                s.span(),
                format!(
                    "`intents.clock_skew_s` is {}, more than the {MAX_CLOCK_SKEW_S} allowed",
                    s.get_ref()
                ),
            ));
        }
        config = config.with_clock_skew(Duration::from_secs(*s.get_ref()));
    }
    if let Some(l) = &m.max_lifetime_s {
        let v = *l.get_ref();
        if v == 0 || v > MAX_LIFETIME_S {
            return Err(files.manifest_error(
                l.span(),
                format!(
                    "`intents.max_lifetime_s` is {v}; it must be between 1 and {MAX_LIFETIME_S}"
                ),
            ));
        }
        config = config.with_max_lifetime(Duration::from_secs(v));
    }
    Ok(config)
}
