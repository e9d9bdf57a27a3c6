//! Signed bundles: a publisher signs the list of a bundle's files; an engine
//! loads the bundle only when a trusted key signed exactly the files it reads.
//!
//! The signature lives in the bundle directory as [`SIGNATURE_FILE`], a
//! [DSSE](https://github.com/secure-systems-lab/dsse) envelope (hidden, so
//! it is not itself part of the bundle or its digest):
//!
//! ```json
//! {"payloadType": "application/vnd.agentriage.bundle-signature+json",
//!  "payload": "<base64 of the statement>",
//!  "signatures": [{"keyid": "ed25519:…", "sig": "<base64 Ed25519 signature>"}]}
//! ```
//!
//! The statement names the bundle and lists every file with its SHA-256:
//!
//! ```json
//! {"format": "agentriage.bundle-signature", "version": 1,
//!  "name": "a2a-supply-chain", "revision": "2026.11.0",
//!  "digest": "sha256:…", "files": {"bundle.toml": "sha256:…", …}}
//! ```
//!
//! Each signature is Ed25519 over DSSE's pre-authentication encoding
//! `"DSSEv1" SP len(type) SP type SP len(payload) SP payload`. Verification
//! checks a signature by a trusted key first, then compares the signed list
//! with the files actually read — the same bytes the engine then compiles, so
//! nothing can change between the check and the load.
//!
//! Keys are Ed25519 in the PEM encodings OpenSSL uses (`PRIVATE KEY`,
//! PKCS#8, and `PUBLIC KEY`, SubjectPublicKeyInfo), so
//! `openssl genpkey -algorithm ed25519` makes a usable key too.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{BundleError, BundleErrorKind};
use crate::files::BundleFiles;

/// Name of the signature file at the root of a signed bundle.
pub use crate::files::SIGNATURE_FILE;

/// DSSE payload type of a bundle signature statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.agentriage.bundle-signature+json";

const FORMAT: &str = "agentriage.bundle-signature";
const VERSION: u32 = 1;
/// Largest signature file read (a statement lists at most 10 000 files).
const MAX_SIGNATURE_BYTES: u64 = 8 << 20;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A key that could not be made, read or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct KeyError {
    message: String,
}

impl KeyError {
    fn new(message: impl Into<String>) -> Self {
        KeyError {
            message: message.into(),
        }
    }
}

/// An Ed25519 public key that may sign bundles.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    raw: [u8; 32],
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PublicKey").field(&self.key_id()).finish()
    }
}

impl PublicKey {
    /// The key from its 32 raw bytes.
    pub fn from_bytes(raw: [u8; 32]) -> PublicKey {
        PublicKey { raw }
    }

    /// The key from PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo).
    pub fn from_pem(text: &str) -> Result<PublicKey, KeyError> {
        let der = pem_decode(text, "PUBLIC KEY")?;
        let raw = der
            .strip_prefix(&SPKI_PREFIX[..])
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or_else(|| KeyError::new("the PUBLIC KEY is not an Ed25519 key"))?;
        Ok(PublicKey { raw })
    }

    /// The key as PEM (`-----BEGIN PUBLIC KEY-----`).
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.raw);
        pem_encode(&der, "PUBLIC KEY")
    }

    /// The 32 raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.raw
    }

    /// `ed25519:` and the first 16 bytes of the key's SHA-256, in hex: the
    /// `keyid` a signature names.
    pub fn key_id(&self) -> String {
        let mut id = String::from("ed25519:");
        for b in Sha256::digest(self.raw).iter().take(16) {
            let _ = write!(id, "{b:02x}");
        }
        id
    }

    fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

/// An Ed25519 private key that signs bundles.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key, with its PEM encoding (`-----BEGIN PRIVATE KEY-----`,
    /// PKCS#8) to store: the encoding cannot be recovered from the key later.
    pub fn generate() -> Result<(SigningKey, String), KeyError> {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
            .map_err(|_| KeyError::new("the system random generator failed"))?;
        let pem = pem_encode(pkcs8.as_ref(), "PRIVATE KEY");
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| KeyError::new(format!("generated key is unusable: {e}")))?;
        Ok((SigningKey { pair }, pem))
    }

    /// The key from PEM (`-----BEGIN PRIVATE KEY-----`, PKCS#8 v1 or v2).
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        let der = pem_decode(text, "PRIVATE KEY")?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| KeyError::new(format!("the PRIVATE KEY is not an Ed25519 key: {e}")))?;
        Ok(SigningKey { pair })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        let mut raw = [0u8; 32];
        raw.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey { raw }
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

/// The public keys whose signatures a loader accepts.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// No key yet.
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Adds a key (a key added twice counts once).
    pub fn add(&mut self, key: PublicKey) -> &mut Self {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        self
    }

    /// Adds every public key in `text` (one or more PEM blocks).
    pub fn add_pem(&mut self, text: &str) -> Result<&mut Self, KeyError> {
        let blocks = pem_blocks(text, "PUBLIC KEY");
        if blocks.is_empty() {
            return Err(KeyError::new("no `-----BEGIN PUBLIC KEY-----` block found"));
        }
        for block in blocks {
            self.add(PublicKey::from_pem(block)?);
        }
        Ok(self)
    }

    /// Adds every public key of the PEM file at `path`.
    pub fn add_pem_file(&mut self, path: impl AsRef<Path>) -> Result<&mut Self, KeyError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyError::new(format!("cannot read `{}`: {e}", path.display())))?;
        self.add_pem(&text)
            .map_err(|e| KeyError::new(format!("`{}`: {e}", path.display())))
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Whether no key was added.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    fn find(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.key_id() == key_id)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(rename = "payloadType")]
    payload_type: String,
    payload: String,
    signatures: Vec<EnvelopeSignature>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeSignature {
    keyid: String,
    sig: String,
}

/// What a signature vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    format: String,
    version: u32,
    /// The bundle's name when signed.
    pub name: String,
    /// The bundle's revision when signed.
    pub revision: String,
    /// The bundle digest when signed.
    pub digest: String,
    /// Every file of the bundle (`/`-separated path) and its `sha256:` hash.
    pub files: BTreeMap<String, String>,
}

/// A bundle signature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedSignature {
    /// The trusted key that signed.
    pub key_id: String,
    /// What it signed: it matches the bundle's files exactly.
    pub statement: Statement,
}

/// DSSE pre-authentication encoding of `payload`.
fn pae(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + PAYLOAD_TYPE.len() + 32);
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(PAYLOAD_TYPE.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(PAYLOAD_TYPE.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload.len().to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

fn file_hash(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(71);
    out.push_str("sha256:");
    for b in Sha256::digest(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

fn statement_of(files: &BundleFiles, name: &str, revision: &str) -> Statement {
    Statement {
        format: FORMAT.to_owned(),
        version: VERSION,
        name: name.to_owned(),
        revision: revision.to_owned(),
        digest: files.digest(),
        files: files
            .iter()
            .map(|(path, bytes)| (path.to_owned(), file_hash(bytes)))
            .collect(),
    }
}

fn sig_error(file: impl Into<PathBuf>, message: impl Into<String>) -> BundleError {
    BundleError::new(BundleErrorKind::Signature, file, None, message)
}

/// Signs the bundle in `dir` with `key`, writing (or replacing) its
/// [`SIGNATURE_FILE`]. The bundle must load: a bundle that does not compile is
/// not signed. Returns the path written.
///
/// When a signature file for exactly these files already exists, the new
/// signature is added beside the others (several publishers may co-sign);
/// otherwise the file is replaced.
pub fn sign_bundle(dir: impl AsRef<Path>, key: &SigningKey) -> Result<PathBuf, BundleError> {
    let dir = dir.as_ref();
    let files = BundleFiles::read(dir)?;
    let bundle = crate::Bundle::from_files(&files)?;
    let statement = statement_of(&files, &bundle.info().name, &bundle.info().revision);
    let payload = serde_json::to_vec(&statement)
        .map_err(|e| sig_error(dir, format!("cannot encode the statement: {e}")))?;
    let signature = EnvelopeSignature {
        keyid: key.public_key().key_id(),
        sig: B64.encode(key.sign(&pae(&payload))),
    };
    let path = dir.join(SIGNATURE_FILE);
    let mut signatures = Vec::new();
    if let Ok(Some(existing)) = read_envelope(dir) {
        let same = B64
            .decode(&existing.payload)
            .ok()
            .and_then(|p| serde_json::from_slice::<Statement>(&p).ok())
            .is_some_and(|s| s == statement);
        if same {
            signatures = existing
                .signatures
                .into_iter()
                .filter(|s| s.keyid != signature.keyid)
                .collect();
        }
    }
    signatures.push(signature);
    let envelope = Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: B64.encode(&payload),
        signatures,
    };
    let mut text = serde_json::to_string_pretty(&envelope)
        .map_err(|e| sig_error(&path, format!("cannot encode the signature: {e}")))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| sig_error(&path, format!("cannot write: {e}")))?;
    Ok(path)
}

/// The envelope in `dir`, `None` when there is no signature file.
fn read_envelope(dir: &Path) -> Result<Option<Envelope>, BundleError> {
    let path = dir.join(SIGNATURE_FILE);
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(sig_error(&path, format!("cannot read: {e}"))),
    };
    if !meta.is_file() {
        return Err(sig_error(&path, "the signature must be a regular file"));
    }
    if meta.len() > MAX_SIGNATURE_BYTES {
        return Err(sig_error(
            &path,
            format!("larger than {MAX_SIGNATURE_BYTES} bytes"),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| sig_error(&path, format!("cannot read: {e}")))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| sig_error(&path, format!("not a signature envelope: {e}")))
}

/// The signature entry of a bundle archive, checked as [`read_envelope`]
/// checks the file.
fn parse_envelope(path: &Path, bytes: Option<&[u8]>) -> Result<Option<Envelope>, BundleError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    if bytes.len() as u64 > MAX_SIGNATURE_BYTES {
        return Err(sig_error(
            path,
            format!("larger than {MAX_SIGNATURE_BYTES} bytes"),
        ));
    }
    serde_json::from_slice(bytes)
        .map(Some)
        .map_err(|e| sig_error(path, format!("not a signature envelope: {e}")))
}

/// Checks the signature of the bundle files `files` against `trusted`.
pub(crate) fn verify_files(
    files: &BundleFiles,
    trusted: &TrustedKeys,
) -> Result<VerifiedSignature, BundleError> {
    let path = files.root.join(SIGNATURE_FILE);
    if trusted.is_empty() {
        return Err(sig_error(
            &path,
            "a signature is required but no trusted key was given",
        ));
    }
    let envelope = match &files.archive {
        Some(archived) => parse_envelope(&path, archived.0.as_deref())?,
        None => read_envelope(&files.root)?,
    };
    let envelope = envelope.ok_or_else(|| {
        sig_error(
            &path,
            format!("the bundle is not signed (no `{SIGNATURE_FILE}`) and a signature is required"),
        )
    })?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(sig_error(
            &path,
            format!(
                "payload type `{}` is not `{PAYLOAD_TYPE}`",
                envelope.payload_type
            ),
        ));
    }
    let payload = B64
        .decode(&envelope.payload)
        .map_err(|e| sig_error(&path, format!("payload is not base64: {e}")))?;
    let message = pae(&payload);

    // A signature by a trusted key must verify; signatures by other keys are
    // ignored, but named when no trusted one is there.
    let mut key_id = None;
    for s in &envelope.signatures {
        let Some(key) = trusted.find(&s.keyid) else {
            continue;
        };
        let sig = B64.decode(&s.sig).map_err(|e| {
            sig_error(
                &path,
                format!("signature by `{}` is not base64: {e}", s.keyid),
            )
        })?;
        if !key.verifies(&message, &sig) {
            return Err(sig_error(
                &path,
                format!(
                    "signature by trusted key `{}` does not verify: the signature file was altered",
                    s.keyid
                ),
            ));
        }
        key_id = Some(s.keyid.clone());
        break;
    }
    let Some(key_id) = key_id else {
        let signers: Vec<&str> = envelope
            .signatures
            .iter()
            .map(|s| s.keyid.as_str())
            .collect();
        return Err(sig_error(
            &path,
            if signers.is_empty() {
                "the signature file holds no signature".to_owned()
            } else {
                format!(
                    "no signature by a trusted key (signed by `{}`)",
                    signers.join("`, `")
                )
            },
        ));
    };

    let statement: Statement = serde_json::from_slice(&payload)
        .map_err(|e| sig_error(&path, format!("the signed statement is not valid: {e}")))?;
    if statement.format != FORMAT || statement.version != VERSION {
        return Err(sig_error(
            &path,
            format!(
                "signed statement format `{}` version {} is not supported (expected `{FORMAT}` version {VERSION})",
                statement.format, statement.version
            ),
        ));
    }
    for (rel, bytes) in files.iter() {
        match statement.files.get(rel) {
            None => {
                return Err(sig_error(
                    files.root.join(rel),
                    "file was added after the bundle was signed",
                ));
            }
            Some(hash) if *hash != file_hash(bytes) => {
                return Err(sig_error(
                    files.root.join(rel),
                    "file was changed after the bundle was signed",
                ));
            }
            Some(_) => {}
        }
    }
    if let Some(rel) = statement.files.keys().find(|rel| !files.contains(rel)) {
        return Err(sig_error(
            files.root.join(rel),
            "file was removed after the bundle was signed",
        ));
    }
    if statement.digest != files.digest() {
        return Err(sig_error(
            &path,
            "the signed digest does not match the bundle's files",
        ));
    }
    Ok(VerifiedSignature { key_id, statement })
}

fn pem_encode(der: &[u8], label: &str) -> String {
    let b64 = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    let _ = writeln!(out, "-----END {label}-----");
    out
}

/// The text of every `label` PEM block of `text`, markers included.
fn pem_blocks<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let Some(after) = rest.get(start..) else {
            break;
        };
        let Some(stop) = after.find(&end) else {
            break;
        };
        let block_end = stop + end.len();
        if let Some(block) = after.get(..block_end) {
            out.push(block);
        }
        rest = after.get(block_end..).unwrap_or("");
    }
    out
}

fn pem_decode(text: &str, label: &str) -> Result<Vec<u8>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let body = text
        .split_once(&begin)
        .and_then(|(_, rest)| rest.split_once(&end))
        .map(|(body, _)| body)
        .ok_or_else(|| KeyError::new(format!("no `{begin}` … `{end}` block found")))?;
    let b64: String = body.split_whitespace().collect();
    B64.decode(b64)
        .map_err(|e| KeyError::new(format!("the {label} block is not base64: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_both_keys() {
        let (key, pem) = SigningKey::generate().unwrap();
        let again = SigningKey::from_pem(&pem).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let public = key.public_key();
        assert_eq!(PublicKey::from_pem(&public.to_pem()).unwrap(), public);
        assert!(public.key_id().starts_with("ed25519:"));
        assert_eq!(public.key_id().len(), "ed25519:".len() + 32);
    }

    #[test]
    fn reads_openssl_keys() {
        // `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`.
        let private = "-----BEGIN PRIVATE KEY-----\n\
            MC4CAQAwBQYDK2VwBCIEIIcJ5E3AFm3H7Sau5C2D28aJEqgFO+YAE4yahKRmoab0\n\
            -----END PRIVATE KEY-----\n";
        let public = "-----BEGIN PUBLIC KEY-----\n\
            MCowBQYDK2VwAyEA8PI9EBI1AVnDuOYkUnWuQ/EVtT3iKJcCsPh73AdQfPk=\n\
            -----END PUBLIC KEY-----\n";
        let key = SigningKey::from_pem(private).unwrap();
        assert_eq!(key.public_key(), PublicKey::from_pem(public).unwrap());
    }

    #[test]
    fn signatures_verify_only_for_their_message_and_key() {
        let (key, _) = SigningKey::generate().unwrap();
        let (other, _) = SigningKey::generate().unwrap();
        let sig = key.sign(b"statement");
        assert!(key.public_key().verifies(b"statement", &sig));
        assert!(!key.public_key().verifies(b"statemenT", &sig));
        assert!(!other.public_key().verifies(b"statement", &sig));
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        for text in [
            "",
            "-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n",
        ] {
            assert!(PublicKey::from_pem(text).is_err(), "{text:?}");
            assert!(SigningKey::from_pem(text).is_err(), "{text:?}");
        }
        let mut trusted = TrustedKeys::new();
        assert!(trusted.add_pem("no key here").is_err());
    }

    #[test]
    fn pae_matches_the_dsse_example() {
        // The DSSE specification's worked example uses type
        // "http://example.com/HelloWorld"; the encoding scheme is the same.
        let encoded = pae(b"hello world");
        let text = String::from_utf8(encoded).unwrap();
        assert_eq!(
            text,
            format!(
                "DSSEv1 {} {PAYLOAD_TYPE} 11 hello world",
                PAYLOAD_TYPE.len()
            )
        );
    }
}
