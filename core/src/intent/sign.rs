//! Key generation and signing, for agents without a JOSE library.

use std::fmt;

use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
};
use serde_json::{Map, Value};

use super::b64;
use super::error::SignError;
use super::keys::{Algorithm, TrustedKey, trusted_key};
use super::verify::IntentClaims;

enum Pair {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

/// A private key that signs intents for one issuer under one `kid`.
pub struct SigningKey {
    kid: String,
    issuer: String,
    pair: Pair,
    pkcs8: Vec<u8>,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("algorithm", &self.algorithm())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a new key of `algorithm` for `issuer`, named `kid`.
    pub fn generate(
        algorithm: Algorithm,
        kid: impl Into<String>,
        issuer: impl Into<String>,
    ) -> Result<SigningKey, SignError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            Algorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| SignError::Random)
                .and_then(|v2| ed25519_v1(v2.as_ref()))?,
            Algorithm::Es256 => {
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| SignError::Random)?
                    .as_ref()
                    .to_vec()
            }
        };
        SigningKey::from_pkcs8(algorithm, kid, issuer, &pkcs8)
    }

    /// A key from PKCS#8 DER (`-----BEGIN PRIVATE KEY-----` once PEM-decoded;
    /// see [`from_pem`](Self::from_pem)).
    pub fn from_pkcs8(
        algorithm: Algorithm,
        kid: impl Into<String>,
        issuer: impl Into<String>,
        der: &[u8],
    ) -> Result<SigningKey, SignError> {
        let rng = SystemRandom::new();
        let key_error = |e: ring::error::KeyRejected| SignError::Key {
            algorithm: algorithm.as_str(),
            message: e.to_string(),
        };
        let pair = match algorithm {
            // PKCS#8 v1 (what OpenSSL, `cryptography` and Node write) holds
            // no public key; ring derives it.
            Algorithm::EdDsa => {
                Pair::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(key_error)?)
            }
            Algorithm::Es256 => Pair::P256(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der, &rng)
                    .map_err(key_error)?,
            ),
        };
        let kid = kid.into();
        let issuer = issuer.into();
        for (claim, v) in [("kid", &kid), ("iss", &issuer)] {
            if v.is_empty() {
                return Err(SignError::Claim {
                    claim,
                    message: "is empty".into(),
                });
            }
        }
        Ok(SigningKey {
            kid,
            issuer,
            pair,
            pkcs8: der.to_vec(),
            rng,
        })
    }

    /// A key from a PEM `PRIVATE KEY` (PKCS#8) block.
    pub fn from_pem(
        algorithm: Algorithm,
        kid: impl Into<String>,
        issuer: impl Into<String>,
        pem: &str,
    ) -> Result<SigningKey, SignError> {
        let der = pem_decode(pem).map_err(|message| SignError::Key {
            algorithm: algorithm.as_str(),
            message,
        })?;
        SigningKey::from_pkcs8(algorithm, kid, issuer, &der)
    }

    /// The algorithm.
    pub fn algorithm(&self) -> Algorithm {
        match self.pair {
            Pair::Ed25519(_) => Algorithm::EdDsa,
            Pair::P256(_) => Algorithm::Es256,
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The issuer this key signs for.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The private key as PKCS#8 DER. Keep it secret.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The private key as a PEM `PRIVATE KEY` block. Keep it secret.
    pub fn pkcs8_pem(&self) -> String {
        pem_encode(&self.pkcs8)
    }

    /// The public half, as a trusted key bound to this key's issuer.
    pub fn trusted_key(&self) -> TrustedKey {
        let public = match &self.pair {
            Pair::Ed25519(p) => p.public_key().as_ref().to_vec(),
            Pair::P256(p) => p.public_key().as_ref().to_vec(),
        };
        trusted_key(
            self.kid.clone(),
            self.issuer.clone(),
            self.algorithm(),
            public,
        )
    }

    /// The public half as a JWK (`kid`, `alg`, `use`, `iss` included), ready
    /// for a trusted key set.
    pub fn public_jwk(&self) -> Value {
        self.trusted_key().to_jwk()
    }

    /// Signs `claims` as a compact JWS with header
    /// `{"alg": …, "kid": …, "typ": "JWT"}`.
    ///
    /// `claims.iss` must be this key's issuer: a key signs only for the
    /// issuer it is bound to.
    pub fn sign(&self, claims: &IntentClaims) -> Result<String, SignError> {
        if claims.iss != self.issuer {
            return Err(SignError::Claim {
                claim: "iss",
                message: format!(
                    "`{}` is not this key's issuer `{}`",
                    claims.iss, self.issuer
                ),
            });
        }
        if claims.exp <= claims.iat {
            return Err(SignError::Claim {
                claim: "exp",
                message: "is not after `iat`".into(),
            });
        }
        for (claim, v) in [
            ("jti", &claims.jti),
            ("act", &claims.act),
            ("res", &claims.res),
            ("purpose", &claims.purpose),
        ] {
            if v.is_empty() {
                return Err(SignError::Claim {
                    claim,
                    message: "is empty".into(),
                });
            }
        }
        if claims.aud.is_empty() {
            return Err(SignError::Claim {
                claim: "aud",
                message: "names no audience".into(),
            });
        }
        self.sign_json(&claims.to_json())
    }

    /// Signs an arbitrary JSON claims object, unchecked. For tests and
    /// tools that need tokens the verifier must refuse.
    pub fn sign_json(&self, claims: &Value) -> Result<String, SignError> {
        self.sign_json_typed(claims, "JWT")
    }

    /// [`sign_json`](Self::sign_json) with another header `typ`.
    pub(crate) fn sign_json_typed(&self, claims: &Value, typ: &str) -> Result<String, SignError> {
        let mut header = Map::new();
        header.insert("alg".into(), self.algorithm().as_str().into());
        header.insert("kid".into(), self.kid.clone().into());
        header.insert("typ".into(), typ.into());
        let mut input = b64::encode(Value::Object(header).to_string().as_bytes());
        input.push('.');
        input.push_str(&b64::encode(claims.to_string().as_bytes()));
        let signature = self.sign_bytes(input.as_bytes())?;
        input.push('.');
        input.push_str(&b64::encode(&signature));
        Ok(input)
    }

    /// The raw signature of `message`: 64 bytes for both algorithms (ES256
    /// as `r || s`, as JOSE requires).
    pub fn sign_bytes(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match &self.pair {
            Pair::Ed25519(p) => Ok(p.sign(message).as_ref().to_vec()),
            Pair::P256(p) => p
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| SignError::Random),
        }
    }
}

/// PKCS#8 v1 (RFC 8410) of an Ed25519 key, from ring's v2 document.
///
/// ring writes v2 (with the public key); OpenSSL, Python's `cryptography`
/// and Node read v1 everywhere, and some refuse v2, so keys are written as
/// v1: the fixed prefix and the 32-byte seed.
fn ed25519_v1(v2: &[u8]) -> Result<Vec<u8>, SignError> {
    const V2_PREFIX: [u8; 16] = [
        0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    const V1_PREFIX: [u8; 16] = [
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    let seed = v2
        .strip_prefix(&V2_PREFIX)
        .and_then(|rest| rest.get(..32))
        .ok_or_else(|| SignError::Key {
            algorithm: "EdDSA",
            message: "unexpected PKCS#8 layout from the key generator".into(),
        })?;
    let mut v1 = V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    Ok(v1)
}

const PEM_BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
const PEM_END: &str = "-----END PRIVATE KEY-----";

fn pem_encode(der: &[u8]) -> String {
    // Standard alphabet with padding, from the URL-safe encoding.
    let mut body: String = b64::encode(der)
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while !body.len().is_multiple_of(4) {
        body.push('=');
    }
    let mut out = String::from(PEM_BEGIN);
    out.push('\n');
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(PEM_END);
    out.push('\n');
    out
}

fn pem_decode(pem: &str) -> Result<Vec<u8>, String> {
    let start = pem
        .find(PEM_BEGIN)
        .ok_or_else(|| format!("no `{PEM_BEGIN}` line (only unencrypted PKCS#8 is read)"))?;
    let rest = pem.get(start + PEM_BEGIN.len()..).unwrap_or_default();
    let end = rest
        .find(PEM_END)
        .ok_or_else(|| format!("no `{PEM_END}` line"))?;
    let body: Vec<u8> = rest
        .get(..end)
        .unwrap_or_default()
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let trimmed: Vec<u8> = body
        .iter()
        .copied()
        .take_while(|&b| b != b'=')
        .map(|b| match b {
            b'+' => b'-',
            b'/' => b'_',
            b'-' | b'_' => b'!',
            b => b,
        })
        .collect();
    if !body.len().is_multiple_of(4) || body.len() - trimmed.len() > 2 {
        return Err("the PEM body is not base64".into());
    }
    b64::decode(&trimmed).map_err(|e| format!("the PEM body is not base64: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let k = SigningKey::generate(alg, "k", "i").unwrap();
            let pem = k.pkcs8_pem();
            assert!(pem.starts_with(PEM_BEGIN));
            let back = SigningKey::from_pem(alg, "k", "i", &pem).unwrap();
            assert_eq!(back.public_jwk(), k.public_jwk());
        }
        assert!(SigningKey::from_pem(Algorithm::EdDsa, "k", "i", "junk").is_err());
    }

    #[test]
    fn ed25519_keys_are_written_as_pkcs8_v1() {
        let k = SigningKey::generate(Algorithm::EdDsa, "k", "i").unwrap();
        assert_eq!(k.pkcs8_der().len(), 48);
        assert_eq!(k.pkcs8_der()[..5], [0x30, 0x2e, 0x02, 0x01, 0x00]);
    }

    #[test]
    fn signatures_are_64_bytes() {
        for alg in [Algorithm::EdDsa, Algorithm::Es256] {
            let k = SigningKey::generate(alg, "k", "i").unwrap();
            assert_eq!(k.sign_bytes(b"m").unwrap().len(), 64);
        }
    }

    #[test]
    fn a_key_of_the_wrong_algorithm_is_refused() {
        let k = SigningKey::generate(Algorithm::EdDsa, "k", "i").unwrap();
        let e = SigningKey::from_pkcs8(Algorithm::Es256, "k", "i", k.pkcs8_der()).unwrap_err();
        assert!(
            matches!(
                e,
                SignError::Key {
                    algorithm: "ES256",
                    ..
                }
            ),
            "{e}"
        );
    }
}
