//! Public keys for `io.jwt.*`, read from the texts OPA accepts: a PEM
//! certificate, a PEM public key (SubjectPublicKeyInfo), a JWK or a JWK set.
//!
//! Only what verification needs is read from DER: a small reader of
//! tag-length-value items, never recursing on the native stack.

use base64::Engine as _;
use regorus::Value;

use super::jwt::b64url;

/// An elliptic curve `ring` verifies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
}

/// A public key, with the `kid` a JWK gave it.
#[derive(Debug, Clone)]
pub(super) enum PublicKey {
    Ed25519 {
        x: Vec<u8>,
        kid: Option<String>,
    },
    Ec {
        curve: Curve,
        point: Vec<u8>,
        kid: Option<String>,
    },
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        kid: Option<String>,
    },
}

impl PublicKey {
    pub(super) fn kid(&self) -> Option<&str> {
        match self {
            PublicKey::Ed25519 { kid, .. }
            | PublicKey::Ec { kid, .. }
            | PublicKey::Rsa { kid, .. } => kid.as_deref(),
        }
    }
}

/// RSA moduli shorter than this are refused (`ring` verifies none): an error
/// names the problem instead of every signature quietly failing.
const MIN_RSA_BITS: usize = 2048;

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Reads the keys of `text` (PEM or JWK / JWK set).
pub(super) fn parse_keys(text: &str) -> Result<Vec<PublicKey>, String> {
    // As Go's PEM decoder: a block starts at the beginning of a line, and
    // text before it is ignored.
    let start = if text.starts_with("-----BEGIN ") {
        Some(0)
    } else {
        text.find("\n-----BEGIN ").map(|at| at + 1)
    };
    if let Some(start) = start {
        let (label, der) = pem(text.get(start..).unwrap_or(""))?;
        let key = match label {
            "CERTIFICATE" => spki(certificate_spki(&der)?)?,
            "PUBLIC KEY" => spki(&der)?,
            other => return Err(format!("a PEM block of type `{other}` holds no public key")),
        };
        return Ok(vec![key]);
    }
    let value =
        Value::from_json_str(text).map_err(|e| format!("failed to parse a JWK key (set): {e}"))?;
    if value.as_object().is_err() {
        return Err("failed to parse a JWK key (set): not a JSON object".into());
    }
    match get(&value, "keys") {
        Some(Value::Array(items)) => items.iter().map(jwk).collect(),
        Some(_) => Err("failed to parse a JWK key set: `keys` is not an array".into()),
        None => Ok(vec![jwk(&value)?]),
    }
}

fn get<'a>(object: &'a Value, key: &str) -> Option<&'a Value> {
    object.as_object().ok()?.get(&Value::from(key))
}

fn jwk(value: &Value) -> Result<PublicKey, String> {
    let field = |name: &str| match get(value, name) {
        Some(Value::String(s)) => Ok(s.to_string()),
        Some(_) => Err(format!("JWK member `{name}` is not a string")),
        None => Err(format!("JWK has no `{name}` member")),
    };
    let bytes = |name: &str| -> Result<Vec<u8>, String> {
        b64url(&field(name)?).map_err(|e| format!("JWK member `{name}`: {e}"))
    };
    let kid = match get(value, "kid") {
        Some(Value::String(s)) => Some(s.to_string()),
        _ => None,
    };
    match field("kty")?.as_str() {
        "OKP" => {
            let crv = field("crv")?;
            if crv != "Ed25519" {
                return Err(format!("JWK curve `{crv}` is not supported"));
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err("JWK Ed25519 key is not 32 bytes".into());
            }
            Ok(PublicKey::Ed25519 { x, kid })
        }
        "EC" => {
            let crv = field("crv")?;
            let (curve, len) = match crv.as_str() {
                "P-256" => (Curve::P256, 32),
                "P-384" => (Curve::P384, 48),
                other => return Err(format!("JWK curve `{other}` is not supported")),
            };
            let (x, y) = (bytes("x")?, bytes("y")?);
            if x.len() != len || y.len() != len {
                return Err(format!("JWK {crv} coordinates are not {len} bytes"));
            }
            let mut point = Vec::with_capacity(1 + 2 * len);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            Ok(PublicKey::Ec { curve, point, kid })
        }
        "RSA" => rsa(bytes("n")?, bytes("e")?, kid),
        other => Err(format!("JWK key type `{other}` is not supported")),
    }
}

fn rsa(n: Vec<u8>, e: Vec<u8>, kid: Option<String>) -> Result<PublicKey, String> {
    let n = strip_zeros(n);
    let e = strip_zeros(e);
    let bits = n.len() * 8 - n.first().map_or(8, |b| b.leading_zeros() as usize);
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA keys shorter than {MIN_RSA_BITS} bits are not supported (this one has {bits})"
        ));
    }
    if e.is_empty() {
        return Err("RSA public exponent is zero".into());
    }
    Ok(PublicKey::Rsa { n, e, kid })
}

fn strip_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

/// The label and DER bytes of the one PEM block `text` holds.
fn pem(text: &str) -> Result<(&str, Vec<u8>), String> {
    let rest = text.strip_prefix("-----BEGIN ").unwrap_or(text);
    let (label, rest) = rest
        .split_once("-----")
        .ok_or("failed to parse a PEM block: no end of the BEGIN line")?;
    let end = format!("-----END {label}-----");
    let (body, after) = rest
        .split_once(&end)
        .ok_or_else(|| format!("failed to parse a PEM block: no `{end}` line"))?;
    // OPA refuses anything after the block but its line end.
    if !matches!(after, "" | "\n" | "\r\n") {
        return Err("extra data after a PEM certificate block".into());
    }
    let body: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("failed to parse a PEM block: {e}"))?;
    Ok((label, der))
}

/// One DER item: its tag and content.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads the item at the start of `input`; returns it and what follows.
fn tlv(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), String> {
    let bad = || "failed to parse a PEM public key: malformed DER".to_owned();
    let (&tag, rest) = input.split_first().ok_or_else(bad)?;
    let (&first, mut rest) = rest.split_first().ok_or_else(bad)?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return Err(bad());
        }
        let (bytes, after) = rest.split_at_checked(count).ok_or_else(bad)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (content, after) = rest.split_at_checked(len).ok_or_else(bad)?;
    Ok((Tlv { tag, content }, after))
}

/// The items of a SEQUENCE's content.
fn items(mut content: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (item, rest) = tlv(content)?;
        out.push(item);
        content = rest;
    }
    Ok(out)
}

const SEQUENCE: u8 = 0x30;
const BIT_STRING: u8 = 0x03;
const OID: u8 = 0x06;
const INTEGER: u8 = 0x02;

fn sequence(input: &[u8]) -> Result<Vec<Tlv<'_>>, String> {
    let (item, rest) = tlv(input)?;
    if item.tag != SEQUENCE || !rest.is_empty() {
        return Err("failed to parse a PEM public key: expected one DER sequence".into());
    }
    items(item.content)
}

/// The SubjectPublicKeyInfo of an X.509 certificate (its validity is not
/// checked, as OPA does not check it).
fn certificate_spki(der: &[u8]) -> Result<&[u8], String> {
    let bad = || "failed to parse a certificate".to_owned();
    let cert = sequence(der)?;
    let tbs = cert.first().filter(|t| t.tag == SEQUENCE).ok_or_else(bad)?;
    let fields = items(tbs.content)?;
    // [0] version is optional; then serial, signature, issuer, validity,
    // subject, subjectPublicKeyInfo.
    let skip = usize::from(fields.first().is_some_and(|f| f.tag == 0xa0));
    let mut at = tbs.content;
    for _ in 0..skip + 5 {
        at = tlv(at)?.1;
    }
    let (spki, _) = tlv(at)?;
    if spki.tag != SEQUENCE {
        return Err(bad());
    }
    let len = at.len() - tlv(at)?.1.len();
    at.get(..len).ok_or_else(bad)
}

/// A key from its SubjectPublicKeyInfo.
fn spki(der: &[u8]) -> Result<PublicKey, String> {
    let bad = |what: &str| format!("failed to parse a PEM public key: {what}");
    let fields = sequence(der)?;
    let (Some(algorithm), Some(key)) = (fields.first(), fields.get(1)) else {
        return Err(bad("expected algorithm and key"));
    };
    if algorithm.tag != SEQUENCE || key.tag != BIT_STRING {
        return Err(bad("expected algorithm and key"));
    }
    let id = items(algorithm.content)?;
    let oid = id
        .first()
        .filter(|i| i.tag == OID)
        .ok_or_else(|| bad("no algorithm"))?;
    let bits = match key.content.split_first() {
        Some((0, bits)) => bits,
        _ => return Err(bad("malformed key bits")),
    };
    match oid.content {
        OID_ED25519 => {
            if bits.len() != 32 {
                return Err(bad("Ed25519 key is not 32 bytes"));
            }
            Ok(PublicKey::Ed25519 {
                x: bits.to_vec(),
                kid: None,
            })
        }
        OID_EC => {
            let curve = match id.get(1).map(|p| (p.tag, p.content)) {
                Some((OID, OID_P256)) => Curve::P256,
                Some((OID, OID_P384)) => Curve::P384,
                _ => return Err(bad("elliptic curve not supported (P-256 and P-384 are)")),
            };
            Ok(PublicKey::Ec {
                curve,
                point: bits.to_vec(),
                kid: None,
            })
        }
        OID_RSA => {
            let parts = sequence(bits)?;
            match (parts.first(), parts.get(1)) {
                (Some(n), Some(e)) if n.tag == INTEGER && e.tag == INTEGER => {
                    rsa(n.content.to_vec(), e.content.to_vec(), None)
                }
                _ => Err(bad("malformed RSA key")),
            }
        }
        _ => Err(bad(
            "key algorithm not supported (Ed25519, ECDSA and RSA are)",
        )),
    }
}
