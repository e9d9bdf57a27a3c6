//! The reader and writer of bundle archives (`agentriage bundle build`'s
//! reproducible `.tar.gz`; see [`crate::delivery::archive`] for the format):
//! reading is strict, and below the bundle layer, since loading a bundle
//! reads an archive file through it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{BundleError, BundleErrorKind};
use crate::files::{
    ArchivedSignature, BundleFiles, MAX_BUNDLE_BYTES, MAX_BUNDLE_FILES, SIGNATURE_FILE, normalize,
};

/// Media type of a bundle archive (the OCI layer media type).
pub const ARCHIVE_MEDIA_TYPE: &str = "application/vnd.agentriage.bundle.v1.tar+gzip";

/// Largest bundle archive read, compressed.
pub const MAX_ARCHIVE_BYTES: u64 = MAX_BUNDLE_BYTES;

const BLOCK: usize = 512;
/// Most path components of an entry (the directory loader's nesting limit).
const MAX_DEPTH: usize = 33;

fn err(origin: &Path, message: impl Into<String>) -> BundleError {
    BundleError::new(BundleErrorKind::Archive, origin, None, message)
}

/// `sha256:` and the hex SHA-256 of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// The `sha256:` digest of an archive file's bytes (not the bundle digest).
pub fn archive_digest(archive: &[u8]) -> String {
    sha256_digest(archive)
}

/// The reproducible archive of the bundle directory `dir` (its files and a
/// `.signature.json` beside them), with the files read; `check` is given
/// the files before anything is written (the bundle must load).
pub(crate) fn build(
    dir: &Path,
    check: impl FnOnce(&BundleFiles) -> Result<(), BundleError>,
) -> Result<Vec<u8>, BundleError> {
    if std::fs::metadata(dir).is_ok_and(|m| m.is_file()) {
        return Err(err(dir, "already an archive: give the bundle directory"));
    }
    let files = BundleFiles::read(dir)?;
    check(&files)?;
    let sig_path = dir.join(SIGNATURE_FILE);
    let signature = match std::fs::symlink_metadata(&sig_path) {
        Ok(m) if m.is_file() => Some(std::fs::read(&sig_path).map_err(|e| {
            BundleError::new(
                BundleErrorKind::Io,
                &sig_path,
                None,
                format!("cannot read: {e}"),
            )
        })?),
        Ok(_) => {
            return Err(BundleError::new(
                BundleErrorKind::Signature,
                &sig_path,
                None,
                "the signature must be a regular file",
            ));
        }
        Err(_) => None,
    };
    let mut entries: BTreeMap<&str, &[u8]> = files.iter().collect();
    if let Some(sig) = &signature {
        entries.insert(SIGNATURE_FILE, sig.as_slice());
    }
    let mut tar = Vec::new();
    for (path, bytes) in entries {
        let header = header(path, bytes.len() as u64).ok_or_else(|| {
            err(
                &dir.join(path),
                format!("path `{path}` is longer than a tar header holds (255 bytes)"),
            )
        })?;
        tar.extend_from_slice(&header);
        tar.extend_from_slice(bytes);
        tar.resize(tar.len().div_ceil(BLOCK) * BLOCK, 0);
    }
    tar.resize(tar.len() + 2 * BLOCK, 0);

    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar)
        .and_then(|()| gz.finish())
        .map_err(|e| err(dir, format!("cannot compress: {e}")))
}

/// Writes `value` as `width - 1` octal digits and a NUL.
fn octal(field: &mut [u8], value: u64) {
    let width = field.len();
    let text = format!("{value:0w$o}\0", w = width - 1);
    if text.len() == width {
        field.copy_from_slice(text.as_bytes());
    }
}

/// A ustar header for a regular file; `None` when the path does not fit.
fn header(path: &str, size: u64) -> Option<[u8; BLOCK]> {
    let mut h = [0u8; BLOCK];
    let (prefix, name) = if path.len() <= 100 {
        ("", path)
    } else {
        // Split at a `/` so that the prefix fits 155 bytes and the name 100.
        let split = path
            .char_indices()
            .filter(|&(i, c)| c == '/' && i <= 155 && path.len() - i - 1 <= 100)
            .map(|(i, _)| i)
            .next()?;
        (path.get(..split)?, path.get(split + 1..)?)
    };
    h.get_mut(..name.len())?.copy_from_slice(name.as_bytes());
    octal(h.get_mut(100..108)?, 0o644);
    octal(h.get_mut(108..116)?, 0);
    octal(h.get_mut(116..124)?, 0);
    octal(h.get_mut(124..136)?, size);
    octal(h.get_mut(136..148)?, 0);
    h.get_mut(156).map(|b| *b = b'0')?;
    h.get_mut(257..263)?.copy_from_slice(b"ustar\0");
    h.get_mut(263..265)?.copy_from_slice(b"00");
    h.get_mut(345..345 + prefix.len())?
        .copy_from_slice(prefix.as_bytes());
    h.get_mut(148..156)?.fill(b' ');
    let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h.get_mut(148..156)?.copy_from_slice(text.as_bytes());
    Some(h)
}

/// Reads the archive file at `path`.
pub(crate) fn read_file(path: &Path) -> Result<BundleFiles, BundleError> {
    let io = |e: std::io::Error| {
        BundleError::new(BundleErrorKind::Io, path, None, format!("cannot read: {e}"))
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    file.take(MAX_ARCHIVE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_ARCHIVE_BYTES {
        return Err(err(
            path,
            format!("archive is larger than {MAX_ARCHIVE_BYTES} bytes"),
        ));
    }
    read_bytes(&bytes, path)
}

/// Reads archive bytes; `origin` names the archive in errors.
pub(crate) fn read_bytes(archive: &[u8], origin: &Path) -> Result<BundleFiles, BundleError> {
    if archive.len() as u64 > MAX_ARCHIVE_BYTES {
        return Err(err(
            origin,
            format!("archive is larger than {MAX_ARCHIVE_BYTES} bytes"),
        ));
    }
    if archive.get(..2) != Some(&[0x1f, 0x8b]) {
        return Err(err(origin, "not a gzip-compressed bundle archive"));
    }
    // Unpacked, the archive holds at most the bundle bytes plus one header
    // and one block of padding per entry, and the end blocks.
    let max_tar =
        MAX_BUNDLE_BYTES + (2 * BLOCK as u64) * (MAX_BUNDLE_FILES as u64 + 2) + 20 * BLOCK as u64;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(archive)
        .take(max_tar + 1)
        .read_to_end(&mut tar)
        .map_err(|e| err(origin, format!("not a valid gzip stream: {e}")))?;
    if tar.len() as u64 > max_tar {
        return Err(err(
            origin,
            format!("archive unpacks to more than {MAX_BUNDLE_BYTES} bytes of files"),
        ));
    }
    let (files, signature) = parse_tar(&tar, origin)?;
    BundleFiles::from_map(origin, files, Some(ArchivedSignature(signature)))
}

/// Parses an octal header field (digits, optionally padded by spaces or NULs).
fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let text = text.trim_matches(|c| c == ' ' || c == '\0');
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

fn field_str(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(field.get(..end)?).ok()
}

type Parsed = (BTreeMap<String, Vec<u8>>, Option<Vec<u8>>);

fn parse_tar(tar: &[u8], origin: &Path) -> Result<Parsed, BundleError> {
    let mut files = BTreeMap::new();
    let mut signature = None;
    let mut seen = std::collections::HashSet::new();
    let mut total = 0u64;
    let mut entries = 0usize;
    let mut at = 0usize;
    loop {
        let Some(h) = tar.get(at..at + BLOCK) else {
            return Err(err(
                origin,
                "archive ends without its end-of-archive blocks",
            ));
        };
        if h.iter().all(|&b| b == 0) {
            // End of archive: only zero blocks may follow.
            if tar
                .get(at..)
                .is_some_and(|rest| rest.iter().any(|&b| b != 0))
            {
                return Err(err(origin, "data after the end-of-archive block"));
            }
            break;
        }
        let stored = h.get(148..156).and_then(parse_octal);
        let sum: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u64::from(b)
                }
            })
            .sum();
        if stored != Some(sum) {
            return Err(err(
                origin,
                format!("entry {} has a bad header checksum", entries + 1),
            ));
        }
        if h.get(257..262) != Some(b"ustar") {
            return Err(err(
                origin,
                format!("entry {} is not a ustar header", entries + 1),
            ));
        }
        let name = h.get(..100).and_then(field_str);
        let prefix = h.get(345..500).and_then(field_str);
        let (Some(name), Some(prefix)) = (name, prefix) else {
            return Err(err(
                origin,
                format!("entry {} has a path that is not valid UTF-8", entries + 1),
            ));
        };
        let raw = if prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{prefix}/{name}")
        };
        entries += 1;
        if entries > MAX_BUNDLE_FILES {
            return Err(err(
                origin,
                format!("archive holds more than {MAX_BUNDLE_FILES} entries"),
            ));
        }
        let Some(size) = h.get(124..136).and_then(parse_octal) else {
            return Err(err(origin, format!("entry `{raw}` has an invalid size")));
        };
        let kind = h.get(156).copied().unwrap_or(0);
        let body_start = at + BLOCK;
        let body_len = usize::try_from(size).unwrap_or(usize::MAX);
        let Some(body) = body_start
            .checked_add(body_len)
            .and_then(|end| tar.get(body_start..end))
        else {
            return Err(err(origin, format!("entry `{raw}` is cut short")));
        };
        at = body_start + body_len.div_ceil(BLOCK) * BLOCK;

        if raw.starts_with('/') || raw.split('/').any(|c| c == "..") {
            return Err(err(
                origin,
                format!("entry `{raw}` has a path that leaves the bundle"),
            ));
        }
        let trimmed = raw.trim_end_matches('/');
        let path = if trimmed == "." || trimmed.is_empty() {
            None
        } else {
            Some(normalize(trimmed).ok_or_else(|| {
                err(
                    origin,
                    format!("entry `{raw}` has a path that leaves the bundle"),
                )
            })?)
        };
        if path
            .as_deref()
            .is_some_and(|p| p.split('/').count() > MAX_DEPTH)
        {
            return Err(err(
                origin,
                format!("entry `{raw}` nests deeper than 32 directories"),
            ));
        }
        match kind {
            b'0' | 0 => {}
            b'5' => {
                if size != 0 {
                    return Err(err(origin, format!("directory entry `{raw}` has content")));
                }
                continue;
            }
            b'1' | b'2' => {
                return Err(err(
                    origin,
                    format!("entry `{raw}` is a link; links are not allowed in a bundle"),
                ));
            }
            b'3' | b'4' | b'6' => {
                return Err(err(
                    origin,
                    format!("entry `{raw}` is a device or FIFO; only regular files are allowed"),
                ));
            }
            b'x' | b'g' | b'L' | b'K' => {
                return Err(err(
                    origin,
                    format!(
                        "entry {entries} is an extended header; build the archive with `agentriage bundle build`"
                    ),
                ));
            }
            other => {
                return Err(err(
                    origin,
                    format!("entry `{raw}` has unsupported type `{}`", char::from(other)),
                ));
            }
        }
        let Some(path) = path else {
            return Err(err(origin, format!("entry `{raw}` has no file name")));
        };
        if !seen.insert(path.clone()) {
            return Err(err(origin, format!("entry `{path}` appears twice")));
        }
        total += size;
        if total > MAX_BUNDLE_BYTES {
            return Err(err(
                origin,
                format!("archive holds more than {MAX_BUNDLE_BYTES} bytes of files"),
            ));
        }
        if path == SIGNATURE_FILE {
            signature = Some(body.to_vec());
            continue;
        }
        // As in a directory, hidden files are not part of the bundle.
        if path.split('/').any(|c| c.starts_with('.')) {
            continue;
        }
        files.insert(path, body.to_vec());
    }
    Ok((files, signature))
}
