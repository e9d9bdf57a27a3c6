//! Following a bundle archive served over HTTP(S).
//!
//! Any server that serves a file works: a static web server, an object
//! store, an OPA-style bundle server. The follower sends `If-None-Match`
//! with the last `ETag`, so an unchanged bundle costs a `304 Not Modified`.
//! Polls are spaced by [`HttpOptions::interval`] with random jitter; after a
//! failure the wait doubles, up to [`HttpOptions::max_backoff`]. Every
//! request has a time limit and every answer a size limit. TLS is rustls
//! with the Mozilla root certificates, or only the certificate authorities
//! given in [`HttpOptions::tls_ca_pem`]; a server whose certificate is not
//! trusted is refused ([`DeliveryError::Tls`]).
//!
//! With [`HttpOptions::cache`], the last bundle that loaded is kept on disk
//! (written to a temporary file, synced, then renamed), so an engine
//! restarted while the server is unreachable can start from it
//! ([`Startup::PreferLocal`]). Its `ETag` and URL are kept beside it (in
//! [`etag_path`], written the same way): an engine restarted from the copy
//! asks with `If-None-Match`, and a `304 Not Modified` keeps the copy
//! without downloading it again. A kept `ETag` counts only when the copy
//! loads and has the archive digest recorded with it, and the URL is the
//! same.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::Engine;
use crate::signing::TrustedKeys;

use super::{DeliveryError, Follower, Stop};

/// Largest bundle archive downloaded by default.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// How an engine starts when its bundle comes from the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// Fetch the first bundle, retrying (with backoff) for at most this
    /// long; fail if none arrives. The local copy is not used.
    WaitForFirst(Duration),
    /// Start from the local copy ([`HttpOptions::cache`]) when it loads
    /// (and verifies), then follow the source in the background; without a
    /// usable copy, wait for the first bundle for at most this long.
    PreferLocal(Duration),
}

/// How a bundle URL is fetched and followed.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time between two polls (default 30 s), give or take the jitter.
    pub interval: Duration,
    /// Fraction of the interval by which each wait varies at random, so a
    /// fleet does not poll in step (default 0.2: ±20%; at most 1).
    pub jitter: f64,
    /// Longest wait after repeated failures (default 5 min).
    pub max_backoff: Duration,
    /// Time limit of one request, from connecting to the last byte
    /// (default 30 s).
    pub timeout: Duration,
    /// Largest answer accepted (default [`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// Where the last bundle that loaded is kept (its `ETag` beside it, in
    /// [`etag_path`]).
    pub cache: Option<PathBuf>,
    /// PEM certificates of the certificate authorities trusted for
    /// `https://` (one or more `CERTIFICATE` blocks), instead of the Mozilla
    /// root certificates; `None` (the default) trusts those roots.
    pub tls_ca_pem: Option<Vec<u8>>,
    /// How the engine starts (default: wait up to 60 s for the first bundle).
    pub startup: Startup,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            interval: Duration::from_secs(30),
            jitter: 0.2,
            max_backoff: Duration::from_secs(300),
            timeout: Duration::from_secs(30),
            max_bytes: DEFAULT_MAX_BYTES,
            bearer_token: None,
            cache: None,
            tls_ca_pem: None,
            startup: Startup::WaitForFirst(Duration::from_secs(60)),
        }
    }
}

/// The answer to one poll.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// Nothing new since the last poll.
    NotModified,
    /// A (possibly) new archive.
    Archive(Vec<u8>),
}

/// A source the poller fetches archives from.
pub(crate) trait Fetch: Send + 'static {
    /// Fetches the archive, or learns it did not change.
    fn fetch(&mut self) -> Result<Fetched, DeliveryError>;
    /// Called once an archive fetched by the last `fetch` loaded and was
    /// swapped in (or was already live): later polls may skip it.
    fn accepted(&mut self);
    /// What identifies the accepted archive to the server (an `ETag`), to
    /// be kept with the local copy.
    fn validator(&self) -> Option<String> {
        None
    }
    /// Resumes from a local copy the server knew as `validator`.
    fn resume(&mut self, _validator: String) {}
}

/// The certificate authorities in `pem`, or why they cannot be used.
fn roots(pem: &[u8]) -> Result<ureq::tls::RootCerts, String> {
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => return Err(format!("the certificate authorities do not parse: {e}")),
        }
    }
    if certs.is_empty() {
        return Err("the certificate authorities hold no PEM `CERTIFICATE`".into());
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// The HTTP client for `source` with `options`' limits and trust.
pub(crate) fn agent(source: &str, options: &HttpOptions) -> Result<ureq::Agent, DeliveryError> {
    let roots = match &options.tls_ca_pem {
        None => ureq::tls::RootCerts::WebPki,
        Some(pem) => roots(pem).map_err(|message| DeliveryError::Tls {
            url: source.to_owned(),
            message,
        })?,
    };
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(roots)
        .build();
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(options.timeout))
        .http_status_as_error(false)
        .max_redirects(5)
        .tls_config(tls)
        .user_agent(concat!("agentriage/", env!("CARGO_PKG_VERSION")))
        .build()
        .into())
}

/// The rustls error inside `e`, if the transfer failed in TLS.
fn tls_error(e: &ureq::Error) -> Option<String> {
    match e {
        ureq::Error::Tls(m) => Some((*m).to_owned()),
        ureq::Error::Rustls(r) => Some(r.to_string()),
        ureq::Error::Pem(p) => Some(p.to_string()),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .map(ToString::to_string),
        _ => None,
    }
}

pub(crate) fn transport(url: &str, e: &ureq::Error) -> DeliveryError {
    match tls_error(e) {
        Some(message) => DeliveryError::Tls {
            url: url.to_owned(),
            message,
        },
        None => DeliveryError::Transport {
            url: url.to_owned(),
            message: e.to_string(),
        },
    }
}

/// Reads a body of at most `limit` bytes.
pub(crate) fn read_body(
    url: &str,
    response: &mut ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<Vec<u8>, DeliveryError> {
    if response.body().content_length().is_some_and(|l| l > limit) {
        return Err(DeliveryError::TooLarge {
            url: url.to_owned(),
            limit,
        });
    }
    match response.body_mut().with_config().limit(limit).read_to_vec() {
        Ok(b) => Ok(b),
        Err(ureq::Error::BodyExceedsLimit(_)) => Err(DeliveryError::TooLarge {
            url: url.to_owned(),
            limit,
        }),
        Err(e) => Err(transport(url, &e)),
    }
}

/// Fetches `url` once with `options`' time and size limits, trust and
/// bearer token; only a `200` answer is a success.
pub fn get(url: &str, options: &HttpOptions) -> Result<Vec<u8>, DeliveryError> {
    let mut fetch = HttpFetch {
        url: url.to_owned(),
        agent: agent(url, options)?,
        bearer: options.bearer_token.clone(),
        max_bytes: options.max_bytes,
        etag: None,
        pending_etag: None,
    };
    match fetch.fetch()? {
        Fetched::Archive(bytes) => Ok(bytes),
        Fetched::NotModified => Err(DeliveryError::Status {
            url: url.to_owned(),
            status: 304,
        }),
    }
}

struct HttpFetch {
    url: String,
    agent: ureq::Agent,
    bearer: Option<String>,
    max_bytes: u64,
    etag: Option<String>,
    pending_etag: Option<String>,
}

impl Fetch for HttpFetch {
    fn fetch(&mut self) -> Result<Fetched, DeliveryError> {
        let mut req = self.agent.get(&self.url);
        if let Some(tag) = &self.etag {
            req = req.header("If-None-Match", tag);
        }
        if let Some(token) = &self.bearer {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        let mut resp = req.call().map_err(|e| transport(&self.url, &e))?;
        let status = resp.status().as_u16();
        if status == 304 && self.etag.is_some() {
            return Ok(Fetched::NotModified);
        }
        if status != 200 {
            return Err(DeliveryError::Status {
                url: self.url.clone(),
                status,
            });
        }
        self.pending_etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = read_body(&self.url, &mut resp, self.max_bytes)?;
        Ok(Fetched::Archive(body))
    }

    fn accepted(&mut self) {
        self.etag = self.pending_etag.take();
    }

    fn validator(&self) -> Option<String> {
        self.etag.clone()
    }

    fn resume(&mut self, validator: String) {
        self.etag = Some(validator);
    }
}

/// Where the `ETag` of the local copy `cache` is kept: beside it, with
/// `.etag.json` appended to its name. The file holds the URL, the `ETag`
/// and the digest of the archive ([`super::archive::archive_digest`]).
pub fn etag_path(cache: &Path) -> PathBuf {
    let mut name = cache.as_os_str().to_owned();
    name.push(".etag.json");
    PathBuf::from(name)
}

/// What is kept beside the local copy.
#[derive(serde::Serialize, serde::Deserialize)]
struct KeptEtag {
    url: String,
    etag: String,
    archive_digest: String,
}

/// Keeps `etag` for the copy `bytes` of `url` just written to `cache`
/// (removes a stale one when there is no `ETag`).
fn persist_etag(
    cache: &Path,
    url: &str,
    etag: Option<String>,
    bytes: &[u8],
) -> Result<(), DeliveryError> {
    let path = etag_path(cache);
    let Some(etag) = etag else {
        return match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(DeliveryError::Cache {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            _ => Ok(()),
        };
    };
    let kept = KeptEtag {
        url: url.to_owned(),
        etag,
        archive_digest: super::archive::archive_digest(bytes),
    };
    let text = serde_json::to_vec(&kept).map_err(|e| DeliveryError::Cache {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    persist(&path, &text)
}

/// The `ETag` kept for the local copy `bytes` (read from `cache`) of
/// `url`, when it is that copy's and that URL's.
fn kept_etag(cache: &Path, url: &str, bytes: &[u8]) -> Option<String> {
    let path = etag_path(cache);
    let text = std::fs::read(&path).ok()?;
    let kept: KeptEtag = match serde_json::from_slice(&text) {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(target: "agentriage::delivery", path = %path.display(), error = %e, "kept ETag ignored");
            return None;
        }
    };
    if kept.url != url || kept.archive_digest != super::archive::archive_digest(bytes) {
        tracing::info!(target: "agentriage::delivery", path = %path.display(), "kept ETag is not the local copy's; ignored");
        return None;
    }
    Some(kept.etag)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// directory, synced, renamed over `path`, then the directory synced.
pub(crate) fn persist(path: &Path, bytes: &[u8]) -> Result<(), DeliveryError> {
    use std::io::Write as _;
    let err = |e: std::io::Error| DeliveryError::Cache {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    // The rename itself is durable once the directory is synced.
    if let Ok(d) = std::fs::File::open(dir.unwrap_or(Path::new("."))) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Keeps the accepted archive `bytes` of `source`, and its `ETag`, in
/// `cache`; a failure is recorded, the engine goes on.
fn keep(engine: &Engine, fetch: &dyn Fetch, source: &str, cache: &Path, bytes: &[u8]) {
    let kept =
        persist(cache, bytes).and_then(|()| persist_etag(cache, source, fetch.validator(), bytes));
    if let Err(e) = kept {
        super::failed(engine, source, &e);
    }
}

/// The wait before the next poll: the interval with jitter, doubled for
/// each failure in a row up to `max_backoff`.
fn next_wait(options: &HttpOptions, failures: u32) -> Duration {
    let base = if failures == 0 {
        options.interval
    } else {
        let factor = 1u32 << failures.min(16);
        options
            .interval
            .saturating_mul(factor)
            .min(options.max_backoff.max(options.interval))
    };
    let jitter = options.jitter.clamp(0.0, 1.0);
    let scale = 1.0 + jitter * (2.0 * fastrand::f64() - 1.0);
    Duration::try_from_secs_f64(base.as_secs_f64() * scale.max(0.0)).unwrap_or(base)
}

/// Fetches and loads until a bundle loads, for at most `limit`.
fn first_bundle(
    fetch: &mut dyn Fetch,
    source: &str,
    trusted: Option<&TrustedKeys>,
    options: &HttpOptions,
    limit: Duration,
) -> Result<(crate::Bundle, Vec<u8>), DeliveryError> {
    let start = Instant::now();
    let mut failures = 0u32;
    loop {
        let last = match fetch.fetch() {
            Ok(Fetched::Archive(bytes)) => match super::load_for(trusted, &bytes, source) {
                Ok(b) => {
                    fetch.accepted();
                    return Ok((b, bytes));
                }
                Err(e) => e,
            },
            Ok(Fetched::NotModified) => DeliveryError::Protocol {
                url: source.to_owned(),
                message: "answered `304 Not Modified` to a first request".into(),
            },
            Err(e) => e,
        };
        failures += 1;
        let wait = next_wait(options, failures).min(Duration::from_secs(5));
        if start.elapsed() + wait > limit {
            return Err(DeliveryError::StartupTimeout {
                address: source.to_owned(),
                seconds: limit.as_secs(),
                last_error: last.to_string(),
            });
        }
        tracing::warn!(target: "agentriage::delivery", source, error = %last, "waiting for the first bundle");
        std::thread::sleep(wait);
    }
}

/// Starts an engine from `fetch`, as `options.startup` says, and the
/// follower polling it.
pub(crate) fn start(
    mut fetch: Box<dyn Fetch>,
    source: String,
    trusted: Option<TrustedKeys>,
    options: HttpOptions,
) -> Result<(Arc<Engine>, Follower), DeliveryError> {
    let local = match (options.startup, &options.cache) {
        (Startup::PreferLocal(_), Some(path)) => match std::fs::read(path) {
            Ok(bytes) => {
                match super::load_for(trusted.as_ref(), &bytes, &path.display().to_string()) {
                    Ok(b) => {
                        if let Some(tag) = kept_etag(path, &source, &bytes) {
                            fetch.resume(tag);
                        }
                        Some(b)
                    }
                    Err(e) => {
                        tracing::warn!(target: "agentriage::delivery", error = %e, "local copy refused");
                        None
                    }
                }
            }
            Err(_) => None,
        },
        _ => None,
    };
    let from_local = local.is_some();
    let (bundle, fetched) = match local {
        Some(b) => (b, None),
        None => {
            let limit = match options.startup {
                Startup::WaitForFirst(d) | Startup::PreferLocal(d) => d,
            };
            let (b, bytes) = first_bundle(&mut *fetch, &source, trusted.as_ref(), &options, limit)?;
            (b, Some(bytes))
        }
    };
    let engine = Arc::new(super::engine_with(bundle, trusted));
    let label = if from_local {
        options
            .cache
            .as_ref()
            .map_or_else(|| source.clone(), |p| p.display().to_string())
    } else {
        source.clone()
    };
    engine
        .hooks
        .delivery
        .succeeded(&label, &engine.bundle_info().digest, || false);
    if let (Some(bytes), Some(path)) = (&fetched, &options.cache) {
        keep(&engine, &*fetch, &source, path, bytes);
    }
    let weak = Arc::downgrade(&engine);
    let follower = Follower::spawn(source.clone(), move |stop| {
        poll_loop(&weak, fetch, &source, &options, &stop, from_local);
    })?;
    Ok((engine, follower))
}

fn poll_loop(
    engine: &Weak<Engine>,
    mut fetch: Box<dyn Fetch>,
    source: &str,
    options: &HttpOptions,
    stop: &Stop,
    poll_now: bool,
) {
    let mut failures = 0u32;
    let mut first = poll_now;
    loop {
        let wait = if first {
            Duration::ZERO
        } else {
            next_wait(options, failures)
        };
        first = false;
        if stop.wait(wait) {
            return;
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let result = match fetch.fetch() {
            Ok(Fetched::NotModified) => {
                super::unchanged(&engine, source);
                Ok(())
            }
            Ok(Fetched::Archive(bytes)) => {
                let loaded = super::load_for(engine.trusted_keys(), &bytes, source);
                match super::apply(&engine, source, loaded) {
                    Ok(_) => {
                        fetch.accepted();
                        if let Some(path) = &options.cache {
                            keep(&engine, &*fetch, source, path, &bytes);
                        }
                        Ok(())
                    }
                    Err(_) => Err(()),
                }
            }
            Err(e) => {
                super::failed(&engine, source, &e);
                Err(())
            }
        };
        failures = match result {
            Ok(()) => 0,
            Err(()) => failures.saturating_add(1),
        };
        if stop.is_stopped() {
            return;
        }
    }
}

impl Engine {
    /// An engine deciding with the bundle archive at `url` (`http://` or
    /// `https://`), and the follower that polls it. With `trusted`, every
    /// bundle, the first and the local copy included, must be signed by one
    /// of those keys.
    pub fn from_http(
        url: &str,
        trusted: Option<TrustedKeys>,
        options: HttpOptions,
    ) -> Result<(Arc<Engine>, Follower), DeliveryError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(DeliveryError::Source {
                address: url.to_owned(),
                message: "not an `http://` or `https://` URL".into(),
            });
        }
        let fetch = HttpFetch {
            url: url.to_owned(),
            agent: agent(url, &options)?,
            bearer: options.bearer_token.clone(),
            max_bytes: options.max_bytes,
            etag: None,
            pending_etag: None,
        };
        start(Box::new(fetch), url.to_owned(), trusted, options)
    }
}
