//! Bundle archives: one reproducible `.tar.gz` file holding a bundle and its
//! signature.
//!
//! [`build_archive`] writes, for every file of the bundle directory in path
//! order (the files [`crate::Bundle::load`] reads, plus `.signature.json`
//! when there is one), a POSIX ustar entry: a regular file, mode `0644`,
//! uid and gid `0`, no user or group name, mtime `0`, no directory entries
//! and no extended headers; the tar is compressed by gzip with no file name
//! and mtime `0`. The same files give byte-identical archives.
//!
//! The bundle loaded from an archive has the same digest as the bundle loaded
//! from the directory it was built from: the bundle digest is computed over
//! the files (see `docs/bundle.md`), not over the archive bytes. The archive
//! file has its own `sha256:` digest ([`archive_digest`]), the one OCI
//! registries address it by.
//!
//! Reading is strict: an entry that is a symbolic or hard link, a device, a
//! FIFO or an extended (pax or GNU) header, a path that is absolute or
//! contains `..`, a duplicate path, a bad header checksum, more than
//! [`MAX_BUNDLE_FILES`](crate::MAX_BUNDLE_FILES) entries or more than
//! [`MAX_BUNDLE_BYTES`](crate::MAX_BUNDLE_BYTES) bytes unpacked are each
//! refused with a [`BundleErrorKind::Archive`](crate::BundleErrorKind::Archive)
//! error. (The reader is `crate::files::archive`, below the bundle layer:
//! loading a bundle reads archives through it.)

use std::path::Path;

use crate::Bundle;
use crate::error::BundleError;
use crate::files::archive::read_bytes;
use crate::signing::TrustedKeys;

pub use crate::files::archive::{
    ARCHIVE_MEDIA_TYPE, MAX_ARCHIVE_BYTES, archive_digest, sha256_digest,
};

/// Builds the reproducible archive of the bundle directory `dir`: the
/// bundle must load (a bundle that does not compile is not archived), and a
/// `.signature.json` beside it travels inside.
pub fn build_archive(dir: impl AsRef<Path>) -> Result<Vec<u8>, BundleError> {
    crate::files::archive::build(dir.as_ref(), |files| Bundle::from_files(files).map(drop))
}

/// Loads the bundle in archive bytes `archive`; with `trusted`, only when
/// one of those keys signed it. `origin` names the archive in errors.
pub fn load_archive(
    archive: &[u8],
    origin: &str,
    trusted: Option<&TrustedKeys>,
) -> Result<Bundle, BundleError> {
    let files = read_bytes(archive, Path::new(origin))?;
    if let Some(trusted) = trusted {
        crate::signing::verify_files(&files, trusted)?;
    }
    Bundle::from_files(&files)
}
