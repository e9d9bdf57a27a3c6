//! The host's Ed25519 key that signs checkpoints.

use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use sha2::{Digest, Sha256};

use super::error::{LogError, LogErrorKind};
use super::hex;

/// An Ed25519 key pair that signs the log's checkpoints.
#[derive(Clone)]
pub struct SigningKey {
    pair: Arc<Ed25519KeyPair>,
    public_hex: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_hex)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A key from a PKCS#8 v1 or v2 document (DER), as `openssl genpkey
    /// -algorithm ed25519 -outform DER` writes.
    pub fn from_pkcs8(der: &[u8]) -> Result<SigningKey, LogError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| {
            LogError::new(
                LogErrorKind::Key,
                None,
                format!("not an Ed25519 PKCS#8 key: {e}"),
            )
        })?;
        Ok(SigningKey::wrap(pair))
    }

    /// A key from its 32-byte seed (the private key proper).
    pub fn from_seed(seed: &[u8]) -> Result<SigningKey, LogError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|e| {
            LogError::new(
                LogErrorKind::Key,
                None,
                format!("an Ed25519 seed is 32 bytes, found {}: {e}", seed.len()),
            )
        })?;
        Ok(SigningKey::wrap(pair))
    }

    /// A new random key.
    pub fn generate() -> Result<SigningKey, LogError> {
        SigningKey::from_pkcs8(&SigningKey::generate_pkcs8()?)
    }

    /// A new random key as a PKCS#8 document, to store.
    pub fn generate_pkcs8() -> Result<Vec<u8>, LogError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|e| {
            LogError::new(
                LogErrorKind::Key,
                None,
                format!("cannot generate a key: {e}"),
            )
        })?;
        Ok(doc.as_ref().to_vec())
    }

    fn wrap(pair: Ed25519KeyPair) -> SigningKey {
        let public_hex = hex(pair.public_key().as_ref());
        SigningKey {
            pair: Arc::new(pair),
            public_hex,
        }
    }

    /// The public key: 64 lowercase hex digits (32 bytes), what
    /// `agentriage log verify --key` takes.
    pub fn public_key_hex(&self) -> &str {
        &self.public_hex
    }

    pub(crate) fn sign(&self, message: &[u8]) -> String {
        hex(self.pair.sign(message).as_ref())
    }
}

/// The key id checkpoints carry: the first 16 hex digits of the sha256 of
/// the raw public key.
pub(crate) fn key_id(public: &[u8]) -> String {
    let mut id = hex(&Sha256::digest(public));
    id.truncate(16);
    id
}

/// Whether `signature` is `public`'s signature of `message`.
pub(crate) fn verify_signature(public: &[u8], message: &[u8], signature: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public)
        .verify(message, signature)
        .is_ok()
}
