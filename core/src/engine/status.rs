//! What an engine knows of where its bundle came from: the live revision
//! and digest, the source, the last successful and failed update.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::decision::BundleInfo;

/// Source reported for a bundle given to the engine by the host (by
/// [`crate::Engine::new`], [`crate::Engine::from_dir`] or
/// [`crate::Engine::reload`]) rather than by a delivery source.
pub const HOST_SOURCE: &str = "host";

/// The state of an engine's bundle delivery (see
/// [`crate::Engine::bundle_status`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BundleStatus {
    /// Name of the live bundle.
    pub name: String,
    /// Revision of the live bundle.
    pub revision: String,
    /// Digest of the live bundle (the digest every decision carries).
    pub digest: String,
    /// Where the live bundle came from: a directory path, an `http(s)://`
    /// URL, an `oci://` reference, or [`HOST_SOURCE`].
    pub source: String,
    /// When a fetch or load last succeeded (Unix seconds); a `304 Not
    /// Modified` answer counts as a success.
    pub last_success_unix: Option<u64>,
    /// When a fetch or load last failed (Unix seconds).
    pub last_failure_unix: Option<u64>,
    /// Why it failed then.
    pub last_error: Option<String>,
    /// Failed fetches and loads so far.
    pub failures: u64,
    /// Bundles swapped in by delivery sources so far.
    pub updates: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Digest and source of the bundle a delivery source last swapped in.
    delivered: Option<(String, String)>,
    last_success: Option<u64>,
    last_failure: Option<u64>,
    last_error: Option<String>,
    failures: u64,
    updates: u64,
}

/// The delivery state an engine keeps (in its hooks).
///
/// One lock holds all of it, and a delivery source swaps its bundle in
/// while holding it: a status is one consistent snapshot (a failure is
/// counted with its error, an update with the bundle it swapped in).
#[derive(Debug, Default)]
pub(crate) struct DeliveryState {
    state: Mutex<State>,
}

pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl DeliveryState {
    /// Records a successful fetch or load of the bundle `digest` from
    /// `source`; `swap` swaps it in (returning whether it did) while the
    /// state is locked, so no status shows the new bundle without its
    /// update, or the reverse.
    pub(crate) fn succeeded(&self, source: &str, digest: &str, swap: impl FnOnce() -> bool) {
        // A poisoned lock only means a panic elsewhere while it was held:
        // the state is plain data, still usable.
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if swap() {
            s.updates += 1;
        }
        s.delivered = Some((digest.to_owned(), source.to_owned()));
        s.last_success = Some(now_unix());
    }

    /// Records a failed fetch or load, with its error.
    pub(crate) fn failed(&self, error: &str) {
        let mut s = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.failures += 1;
        s.last_failure = Some(now_unix());
        s.last_error = Some(error.to_owned());
    }

    /// The status, with `live()` read under the same lock as the rest.
    pub(crate) fn status(&self, live: impl FnOnce() -> Arc<BundleInfo>) -> BundleStatus {
        self.snapshot(live).1
    }

    /// The live bundle, read by `live()` under the lock, and the status.
    pub(crate) fn snapshot(
        &self,
        live: impl FnOnce() -> Arc<BundleInfo>,
    ) -> (Arc<BundleInfo>, BundleStatus) {
        let guard = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let live = live();
        let source = guard
            .delivered
            .as_ref()
            .filter(|(digest, _)| *digest == live.digest)
            .map_or_else(|| HOST_SOURCE.to_owned(), |(_, source)| source.clone());
        let status = BundleStatus {
            name: live.name.clone(),
            revision: live.revision.clone(),
            digest: live.digest.clone(),
            source,
            last_success_unix: guard.last_success,
            last_failure_unix: guard.last_failure,
            last_error: guard.last_error.clone(),
            failures: guard.failures,
            updates: guard.updates,
        };
        (live, status)
    }

    /// The delivery metrics of `st` in the Prometheus text format.
    pub(crate) fn render(st: &BundleStatus) -> String {
        let mut text = String::with_capacity(1024);
        let mut gauge = |name: &str, help: &str, value: Option<u64>| {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} gauge");
            if let Some(v) = value {
                let _ = writeln!(text, "{name} {v}");
            }
        };
        gauge(
            "agentriage_bundle_last_success_timestamp_seconds",
            "When a bundle fetch or load last succeeded (Unix time).",
            st.last_success_unix,
        );
        gauge(
            "agentriage_bundle_last_failure_timestamp_seconds",
            "When a bundle fetch or load last failed (Unix time).",
            st.last_failure_unix,
        );
        let _ = writeln!(
            text,
            "# HELP agentriage_bundle_fetch_failures_total Bundle fetches and loads that failed; the live bundle stayed.\n\
             # TYPE agentriage_bundle_fetch_failures_total counter\nagentriage_bundle_fetch_failures_total {}",
            st.failures
        );
        let _ = writeln!(
            text,
            "# HELP agentriage_bundle_updates_total Bundles swapped in by a delivery source.\n\
             # TYPE agentriage_bundle_updates_total counter\nagentriage_bundle_updates_total {}",
            st.updates
        );
        text
    }
}
