//! Following a bundle directory or archive file.
//!
//! A background thread polls: every [`WatchOptions::interval`] it takes a
//! cheap fingerprint of the source (the resolved path, and the size, mtime
//! and inode of every file under it). A changed fingerprint that then stays
//! the same for [`WatchOptions::debounce`] is loaded, compiled and swapped
//! in. A Kubernetes ConfigMap or Secret mount, whose files are symbolic
//! links into a `..data` link that the kubelet swaps atomically, is read
//! through `..data`: the bundle loaded is one whole revision of the mount.
//!
//! An update that does not load, or is not signed by a trusted key, is
//! refused and the live bundle stays; the same files are not tried again,
//! the next change is.

use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::signing::TrustedKeys;
use crate::{Bundle, Engine};

use super::{DeliveryError, Follower, Stop};

/// How a directory or archive file is followed.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// Time between two looks at the source (default 1 s).
    pub interval: Duration,
    /// How long a change must stay unchanged before it is loaded (default
    /// 500 ms), so a copy in progress is not loaded half-done.
    pub debounce: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(1),
            debounce: Duration::from_millis(500),
        }
    }
}

/// Name of the link a Kubernetes volume mount swaps on each update.
pub const KUBERNETES_DATA_LINK: &str = "..data";

/// Where the bundle at `path` is read from now: the resolved `..data` of a
/// Kubernetes mount, otherwise `path` itself, resolved.
fn target(path: &Path) -> std::io::Result<PathBuf> {
    let data = path.join(KUBERNETES_DATA_LINK);
    if std::fs::symlink_metadata(&data).is_ok() {
        std::fs::canonicalize(data)
    } else {
        std::fs::canonicalize(path)
    }
}

/// Most entries looked at when fingerprinting (a larger tree is refused by
/// the loader anyway).
const MAX_ENTRIES: usize = 20_000;

/// What changes when the bundle at `path` changes.
fn fingerprint(path: &Path) -> Result<(PathBuf, Vec<u64>), String> {
    let target = target(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut stack = vec![(target.clone(), 0usize)];
    while let Some((p, depth)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).map_err(|e| e.to_string())?;
        out.extend([
            meta.len(),
            meta.ino(),
            meta.mtime() as u64,
            meta.mtime_nsec() as u64,
            u64::from(meta.mode()),
        ]);
        if meta.is_dir() && depth <= 33 {
            let mut names: Vec<PathBuf> = std::fs::read_dir(&p)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            names.sort();
            for n in names {
                if out.len() / 5 + stack.len() > MAX_ENTRIES {
                    return Err("too many files to follow".into());
                }
                // Each name changes the fingerprint, not only its metadata.
                out.push(n.as_os_str().len() as u64);
                stack.push((n, depth + 1));
            }
        }
    }
    Ok((target, out))
}

fn load(target: &Path, trusted: Option<&TrustedKeys>) -> Result<Bundle, DeliveryError> {
    Ok(match trusted {
        Some(t) => Bundle::load_verified(target, t)?,
        None => Bundle::load(target)?,
    })
}

impl Engine {
    /// An engine deciding with the bundle at `path` (a directory, a
    /// Kubernetes mount, or an archive file), and the follower that swaps in
    /// each change. With `trusted`, every bundle, the first included, must
    /// be signed by one of those keys.
    pub fn from_watch(
        path: impl AsRef<Path>,
        trusted: Option<TrustedKeys>,
        options: WatchOptions,
    ) -> Result<(Arc<Engine>, Follower), DeliveryError> {
        let path = path.as_ref().to_path_buf();
        let source = path.display().to_string();
        let seen = fingerprint(&path).ok();
        let target = target(&path).map_err(|e| {
            DeliveryError::Bundle(crate::BundleError::new(
                crate::BundleErrorKind::Io,
                &path,
                None,
                format!("cannot read: {e}"),
            ))
        })?;
        let bundle = load(&target, trusted.as_ref())?;
        let engine = Arc::new(super::engine_with(bundle, trusted));
        engine
            .hooks
            .delivery
            .succeeded(&source, &engine.bundle_info().digest, || false);
        let follower = engine.follow_path(path, seen, options)?;
        Ok((engine, follower))
    }

    /// Follows the bundle at `path` from now on (this engine's current bundle
    /// stays until `path` changes). Bundles must be signed when the engine
    /// has trusted keys ([`Engine::trusted_keys`]).
    pub fn watch(
        self: &Arc<Self>,
        path: impl AsRef<Path>,
        options: WatchOptions,
    ) -> Result<Follower, DeliveryError> {
        let path = path.as_ref().to_path_buf();
        let seen = fingerprint(&path).ok();
        self.follow_path(path, seen, options)
    }

    fn follow_path(
        self: &Arc<Self>,
        path: PathBuf,
        seen: Option<(PathBuf, Vec<u64>)>,
        options: WatchOptions,
    ) -> Result<Follower, DeliveryError> {
        let source = path.display().to_string();
        let engine = Arc::downgrade(self);
        Follower::spawn(source.clone(), move |stop| {
            watch_loop(&engine, &path, &source, seen, &options, &stop);
        })
    }
}

fn watch_loop(
    engine: &Weak<Engine>,
    path: &Path,
    source: &str,
    mut applied: Option<(PathBuf, Vec<u64>)>,
    options: &WatchOptions,
    stop: &Stop,
) {
    let mut pending: Option<((PathBuf, Vec<u64>), Instant)> = None;
    let mut reported: Option<String> = None;
    let interval = options.interval.max(Duration::from_millis(10));
    loop {
        let wait = match &pending {
            Some((_, since)) => options
                .debounce
                .saturating_sub(since.elapsed())
                .clamp(Duration::from_millis(5), interval),
            None => interval,
        };
        if stop.wait(wait) {
            return;
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        let now = match fingerprint(path) {
            Ok(f) => f,
            Err(message) => {
                // A source that vanished is reported once; the live bundle stays.
                if reported.as_deref() != Some(message.as_str()) {
                    let e = DeliveryError::Source {
                        address: source.to_owned(),
                        message: message.clone(),
                    };
                    super::failed(&engine, source, &e);
                    reported = Some(message);
                }
                pending = None;
                continue;
            }
        };
        reported = None;
        if applied.as_ref() == Some(&now) {
            pending = None;
            continue;
        }
        match &pending {
            Some((p, since)) if *p == now && since.elapsed() >= options.debounce => {}
            Some((p, _)) if *p == now => continue,
            _ => {
                pending = Some((now, Instant::now()));
                continue;
            }
        }
        pending = None;
        let loaded = load(&now.0, engine.trusted_keys());
        let _ = super::apply(&engine, source, loaded);
        applied = Some(now);
    }
}
