//! The files of a bundle, read once from a directory or an archive, before
//! anything is parsed: the layer every part of a bundle (policies, key
//! sets, manifest tables, signature) is read from.

pub(crate) mod archive;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::error::{BundleError, BundleErrorKind, line_of};

/// Name of the manifest file at the root of a bundle.
pub const MANIFEST_FILE: &str = "bundle.toml";
/// Most files a bundle directory may hold.
pub const MAX_BUNDLE_FILES: usize = 10_000;
/// Largest total size of a bundle's files, in bytes (256 MiB).
pub const MAX_BUNDLE_BYTES: u64 = 256 << 20;

/// Name of the bundle's signature file, beside the manifest (see
/// [`crate::signing`]).
pub const SIGNATURE_FILE: &str = ".signature.json";

/// The files of a bundle directory, read once, keyed by `/`-separated path.
pub(crate) struct BundleFiles {
    pub(crate) root: PathBuf,
    files: BTreeMap<String, Vec<u8>>,
    manifest_text: String,
    /// For a bundle read from an archive, its signature entry (the archive
    /// has no directory to read `.signature.json` from).
    pub(crate) archive: Option<ArchivedSignature>,
}

/// The signature entry of a bundle archive (`None` when it has none).
pub(crate) struct ArchivedSignature(pub(crate) Option<Vec<u8>>);

impl BundleFiles {
    pub(crate) fn read(root: &Path) -> Result<BundleFiles, BundleError> {
        // A regular file is a bundle archive (`agentriage bundle build`).
        if std::fs::metadata(root).is_ok_and(|m| m.is_file()) {
            return archive::read_file(root);
        }
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        walk(root, root, &mut files, &mut total, 0)?;
        BundleFiles::from_map(root, files, None)
    }

    /// The bundle files `files` found at `root`; `archive` is set for an
    /// archive's files.
    pub(crate) fn from_map(
        root: &Path,
        files: BTreeMap<String, Vec<u8>>,
        archive: Option<ArchivedSignature>,
    ) -> Result<BundleFiles, BundleError> {
        let manifest_path = root.join(MANIFEST_FILE);
        let manifest_text = match files.get(MANIFEST_FILE) {
            Some(bytes) => String::from_utf8(bytes.clone()).map_err(|_| {
                BundleError::new(
                    BundleErrorKind::Manifest,
                    &manifest_path,
                    None,
                    "not valid UTF-8",
                )
            })?,
            None => {
                return Err(BundleError::new(
                    BundleErrorKind::Io,
                    &manifest_path,
                    None,
                    format!("no `{MANIFEST_FILE}` in the bundle directory"),
                ));
            }
        };
        Ok(BundleFiles {
            root: root.to_path_buf(),
            files,
            manifest_text,
            archive,
        })
    }

    /// `sha256:` over every file in path order: for each, its relative path,
    /// a NUL byte, its length as 8 big-endian bytes, and its bytes.
    pub(crate) fn digest(&self) -> String {
        let mut h = Sha256::new();
        for (path, bytes) in &self.files {
            h.update(path.as_bytes());
            h.update([0u8]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(bytes);
        }
        let mut out = String::with_capacity(71);
        out.push_str("sha256:");
        for b in h.finalize() {
            let _ = write!(out, "{b:02x}");
        }
        out
    }

    /// Every file, in path order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.files.iter().map(|(p, b)| (p.as_str(), b.as_slice()))
    }

    /// Whether the bundle holds a file at `rel`.
    pub(crate) fn contains(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }

    pub(crate) fn manifest_path(&self) -> PathBuf {
        self.root.join(MANIFEST_FILE)
    }

    /// The manifest's text.
    pub(crate) fn manifest_text(&self) -> &str {
        &self.manifest_text
    }

    /// The text of a file the manifest names; the error points at the
    /// manifest line that names it.
    pub(crate) fn text(&self, name: &Spanned<String>) -> Result<(PathBuf, String), BundleError> {
        let rel = name.get_ref();
        let line = Some(line_of(&self.manifest_text, name.span().start));
        let normal = normalize(rel).ok_or_else(|| {
            BundleError::new(
                BundleErrorKind::Manifest,
                self.manifest_path(),
                line,
                format!("`{rel}` must be a relative path inside the bundle"),
            )
        })?;
        let bytes = self.files.get(&normal).ok_or_else(|| {
            BundleError::new(
                BundleErrorKind::Io,
                self.manifest_path(),
                line,
                format!("`{rel}` does not exist in the bundle"),
            )
        })?;
        let path = self.root.join(&normal);
        let text = String::from_utf8(bytes.clone())
            .map_err(|_| BundleError::new(BundleErrorKind::Io, &path, None, "not valid UTF-8"))?;
        Ok((PathBuf::from(normal), text))
    }

    pub(crate) fn manifest_error(
        &self,
        span: std::ops::Range<usize>,
        message: String,
    ) -> BundleError {
        BundleError::new(
            BundleErrorKind::Manifest,
            self.manifest_path(),
            Some(line_of(&self.manifest_text, span.start)),
            message,
        )
    }
}

/// `a/./b` → `a/b`; `None` for absolute paths or paths leaving the bundle.
pub(crate) fn normalize(rel: &str) -> Option<String> {
    let mut parts = Vec::new();
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_owned()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

fn walk(
    root: &Path,
    dir: &Path,
    files: &mut BTreeMap<String, Vec<u8>>,
    total: &mut u64,
    depth: usize,
) -> Result<(), BundleError> {
    let io = |path: &Path, e: std::io::Error| {
        BundleError::new(BundleErrorKind::Io, path, None, format!("cannot read: {e}"))
    };
    if depth > 32 {
        return Err(BundleError::new(
            BundleErrorKind::Io,
            dir,
            None,
            "directories nest deeper than 32 levels",
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(BundleError::new(
                BundleErrorKind::Io,
                entry.path(),
                None,
                "file name is not valid UTF-8",
            ));
        };
        // Hidden files (editor state, signatures) are not part of the bundle.
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            walk(root, &path, files, total, depth + 1)?;
        } else if kind.is_file() {
            if files.len() >= MAX_BUNDLE_FILES {
                return Err(BundleError::new(
                    BundleErrorKind::Io,
                    root,
                    None,
                    format!("bundle holds more than {MAX_BUNDLE_FILES} files"),
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            *total += bytes.len() as u64;
            if *total > MAX_BUNDLE_BYTES {
                return Err(BundleError::new(
                    BundleErrorKind::Io,
                    root,
                    None,
                    format!("bundle is larger than {MAX_BUNDLE_BYTES} bytes"),
                ));
            }
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(|p| p.to_str())
                .and_then(normalize)
                .ok_or_else(|| {
                    BundleError::new(BundleErrorKind::Io, &path, None, "unexpected path")
                })?;
            files.insert(rel, bytes);
        } else {
            // Symbolic links and special files would make the digest depend on
            // what lies outside the bundle.
            return Err(BundleError::new(
                BundleErrorKind::Io,
                &path,
                None,
                "symbolic links and special files are not allowed in a bundle",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_paths_inside() {
        assert_eq!(normalize("a/./b.rego").as_deref(), Some("a/b.rego"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("/etc/passwd"), None);
        assert_eq!(normalize("a/../b"), None);
        assert_eq!(normalize(""), None);
    }
}
