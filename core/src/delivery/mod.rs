//! Bundle delivery: archives, and engines that follow a directory, an HTTP
//! URL or an OCI registry.
//!
//! Every source loads and compiles the new bundle on a background thread,
//! checks its signature when the engine has trusted keys, and swaps it in
//! atomically: a decision runs entirely against one bundle and carries its
//! digest. An update that does not load, or is not signed by a trusted key,
//! is refused: the live bundle stays, `agentriage_bundle_fetch_failures_total`
//! and `agentriage_reload_failures_total` count it, a `tracing` warning
//! (target `agentriage::delivery`) says why, and [`Engine::bundle_status`]
//! shows it.
//!
//! - [`archive`]: `agentriage bundle build`'s reproducible `.tar.gz`;
//! - [`watch`]: a directory or archive file, e.g. a Kubernetes ConfigMap mount;
//! - [`http`]: a URL polled with `ETag` / `If-None-Match`;
//! - [`oci`]: an OCI artifact in a registry, by tag or digest.

pub mod archive;
pub mod http;
pub mod oci;
pub mod watch;

use std::sync::Arc;
use std::sync::{Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::decision::BundleInfo;
use crate::error::BundleError;
use crate::signing::TrustedKeys;
use crate::{Bundle, Engine};

/// What an engine reports of its bundle and where it came from.
pub mod status {
    pub use crate::engine::status::{BundleStatus, HOST_SOURCE};
}
pub use status::BundleStatus;

/// A bundle that could not be fetched or loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The source address is not one this crate reads.
    #[error("invalid bundle source `{address}`: {message}")]
    Source {
        /// The address given.
        address: String,
        /// What is wrong with it.
        message: String,
    },
    /// The server could not be reached, or the transfer broke or timed out.
    #[error("cannot fetch `{url}`: {message}")]
    Transport {
        /// What was fetched.
        url: String,
        /// Why it failed.
        message: String,
    },
    /// The TLS connection was refused: the server's certificate is not
    /// trusted (unknown authority, wrong host name, expired), the handshake
    /// failed, or the certificate authorities given
    /// ([`http::HttpOptions::tls_ca_pem`]) do not parse.
    #[error("TLS with `{url}`: {message}")]
    Tls {
        /// What was fetched.
        url: String,
        /// Why the connection was refused.
        message: String,
    },
    /// The server answered with an unexpected status.
    #[error("`{url}` answered HTTP {status}")]
    Status {
        /// What was fetched.
        url: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The answer is larger than allowed.
    #[error("`{url}` sent more than {limit} bytes")]
    TooLarge {
        /// What was fetched.
        url: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// Content does not have the digest it is addressed by.
    #[error("`{url}` has digest `{actual}`, not the expected `{expected}`")]
    Digest {
        /// What was fetched.
        url: String,
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// A registry answer is not what the OCI distribution spec describes.
    #[error("`{url}`: {message}")]
    Protocol {
        /// What was fetched.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// No bundle arrived within the start-up time.
    #[error("no bundle from `{address}` within {seconds} s: {last_error}")]
    StartupTimeout {
        /// The source.
        address: String,
        /// The start-up time allowed.
        seconds: u64,
        /// The last failure.
        last_error: String,
    },
    /// The local copy could not be read or written.
    #[error("local copy `{path}`: {message}")]
    Cache {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// The bundle arrived but does not load, or is not signed by a trusted key.
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

impl DeliveryError {
    /// The bundle error, if the bundle arrived but did not load.
    pub fn as_bundle(&self) -> Option<&BundleError> {
        match self {
            DeliveryError::Bundle(e) => Some(e),
            _ => None,
        }
    }
}

/// Loads archive bytes the way `engine` requires: signed by one of its
/// trusted keys when it has some.
pub(crate) fn load_for(
    trusted: Option<&TrustedKeys>,
    bytes: &[u8],
    origin: &str,
) -> Result<Bundle, DeliveryError> {
    Ok(archive::load_archive(bytes, origin, trusted)?)
}

/// Swaps in `loaded` (or records why it failed); the live bundle stays on
/// any error. Returns the info of the live bundle after the update.
pub(crate) fn apply(
    engine: &Engine,
    source: &str,
    loaded: Result<Bundle, DeliveryError>,
) -> Result<Arc<BundleInfo>, DeliveryError> {
    match loaded {
        Ok(bundle) => {
            let info = Arc::clone(&bundle.info);
            // Swapped in under the delivery state's lock: a status shows the
            // new bundle together with its update.
            engine.hooks.delivery.succeeded(source, &info.digest, || {
                let live = engine.bundle_info();
                let swapped = live.digest != info.digest;
                if swapped {
                    engine.reload(bundle);
                    tracing::info!(
                        target: "agentriage::delivery",
                        source,
                        revision = %info.revision,
                        digest = %info.digest,
                        previous = %live.digest,
                        "bundle updated"
                    );
                }
                swapped
            });
            Ok(info)
        }
        Err(e) => {
            failed(engine, source, &e);
            Err(e)
        }
    }
}

/// Records a failed fetch or load: counters, status, a warning.
pub(crate) fn failed(engine: &Engine, source: &str, e: &DeliveryError) {
    if e.as_bundle().is_some() {
        engine.hooks.metrics.reload_failed();
    }
    engine.hooks.delivery.failed(&e.to_string());
    tracing::warn!(
        target: "agentriage::delivery",
        source,
        error = %e,
        live = %engine.bundle_info().digest,
        "bundle update refused; the live bundle stays"
    );
}

/// Records a fetch that found nothing new (e.g. `304 Not Modified`).
pub(crate) fn unchanged(engine: &Engine, source: &str) {
    let live = engine.bundle_info();
    engine
        .hooks
        .delivery
        .succeeded(source, &live.digest, || false);
}

/// An engine with `bundle` that requires `trusted` signatures on every
/// later load (as [`Engine::from_dir_verified`]).
pub(crate) fn engine_with(bundle: Bundle, trusted: Option<TrustedKeys>) -> Engine {
    Engine {
        trusted: trusted.map(Arc::new),
        ..Engine::new(bundle)
    }
}

impl Engine {
    /// The live bundle and the state of its delivery: source, last
    /// successful and failed fetch, failures and updates so far.
    pub fn bundle_status(&self) -> BundleStatus {
        self.hooks.delivery.status(|| self.bundle_info())
    }
}

/// A stop signal a background thread waits on.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Waits up to `d`; `true` once stop was asked.
    pub(crate) fn wait(&self, d: Duration) -> bool {
        let Ok(guard) = self.stopped.lock() else {
            return true;
        };
        if *guard {
            return true;
        }
        match self.wake.wait_timeout_while(guard, d, |s| !*s) {
            Ok((g, _)) => *g,
            Err(_) => true,
        }
    }

    pub(crate) fn is_stopped(&self) -> bool {
        self.stopped.lock().map(|g| *g).unwrap_or(true)
    }

    fn stop(&self) {
        if let Ok(mut g) = self.stopped.lock() {
            *g = true;
        }
        self.wake.notify_all();
    }
}

/// A background thread following a bundle source. Dropping it (or calling
/// [`Follower::stop`]) stops the thread and waits for it; the engine keeps
/// the bundle it has.
#[derive(Debug)]
pub struct Follower {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
    source: String,
}

impl Follower {
    pub(crate) fn spawn(
        source: String,
        body: impl FnOnce(Arc<Stop>) + Send + 'static,
    ) -> Result<Follower, DeliveryError> {
        let stop = Arc::new(Stop::default());
        let s = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("agentriage-bundle".into())
            .spawn(move || body(s))
            .map_err(|e| DeliveryError::Source {
                address: source.clone(),
                message: format!("cannot start the follower thread: {e}"),
            })?;
        Ok(Follower {
            stop,
            thread: Some(thread),
            source,
        })
    }

    /// The source followed.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Asks the thread to stop without waiting for it: it ends at its next
    /// wait (a fetch under way finishes first, and may still swap its
    /// bundle in). Dropping the follower waits for it.
    pub fn request_stop(&self) {
        self.stop.stop();
    }

    /// Stops following and waits for the thread to end.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.halt();
    }
}

/// How [`Engine::from_source`] follows a source.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// For a directory or archive file.
    pub watch: watch::WatchOptions,
    /// For `http://` and `https://` URLs, and for OCI registries (whose
    /// requests use the same client, limits and schedule).
    pub http: http::HttpOptions,
    /// For `oci://` references.
    pub oci: oci::OciOptions,
}

/// Fetches and loads the bundle at `source` once (no follower): an
/// `http(s)://` URL, an `oci://` reference, or a directory or archive
/// path. With `trusted`, it must be signed by one of those keys.
pub fn fetch_bundle(
    source: &str,
    trusted: Option<&TrustedKeys>,
    options: &SourceOptions,
) -> Result<Bundle, DeliveryError> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let bytes = http::get(source, &options.http)?;
        load_for(trusted, &bytes, source)
    } else if source.starts_with("oci://") {
        let bytes = oci::pull(source, options.http.clone(), options.oci.clone())?;
        load_for(trusted, &bytes, source)
    } else if source.contains("://") {
        Err(DeliveryError::Source {
            address: source.to_owned(),
            message: "use `http://`, `https://`, `oci://` or a path".into(),
        })
    } else {
        Ok(match trusted {
            Some(t) => Bundle::load_verified(source, t)?,
            None => Bundle::load(source)?,
        })
    }
}

impl Engine {
    /// An engine deciding with the bundle at `source`, and the follower that
    /// keeps it up to date: `http://` or `https://` (see
    /// [`Engine::from_http`]), `oci://host/repository:tag` or `@sha256:…`
    /// (see [`Engine::from_oci`]), otherwise a directory or archive path
    /// (see [`Engine::from_watch`]). With `trusted`, every bundle, the first
    /// included, must be signed by one of those keys.
    pub fn from_source(
        source: &str,
        trusted: Option<TrustedKeys>,
        options: SourceOptions,
    ) -> Result<(Arc<Engine>, Follower), DeliveryError> {
        if source.starts_with("http://") || source.starts_with("https://") {
            Engine::from_http(source, trusted, options.http)
        } else if source.starts_with("oci://") {
            Engine::from_oci(source, trusted, options.http, options.oci)
        } else if source.contains("://") {
            Err(DeliveryError::Source {
                address: source.to_owned(),
                message: "use `http://`, `https://`, `oci://` or a path".into(),
            })
        } else {
            Engine::from_watch(source, trusted, options.watch)
        }
    }
}
