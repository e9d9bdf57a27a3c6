//! Verification of a compact JWS intent: parse, signature, claims, time,
//! replay — in that order, stopping at the first failure.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use super::jws_json::{self, Member, Members};

use super::b64;
use super::error::{IntentCheck, IntentError};
use super::keys::{Algorithm, TrustedKeys};
use super::replay::{MemoryReplayCache, ReplayCache, ReplayError};
use crate::request::{Request, Timestamp};
use crate::strict_json;

/// Largest token accepted, in bytes (8 KiB). Larger ones fail the
/// [`IntentCheck::Size`] check before anything is decoded.
pub const MAX_INTENT_BYTES: usize = 8 * 1024;

/// Longest `jti` accepted, in bytes: the replay cache stores it.
pub const MAX_JTI_BYTES: usize = 256;

/// Default tolerance for clocks that disagree (60 s).
pub const DEFAULT_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Default longest lifetime of an intent, `exp - iat` (15 minutes).
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);

const NANOS: i128 = 1_000_000_000;

/// What intent verification needs: trusted keys, the audience this engine
/// answers to, the time window, and where `jti`s are remembered.
#[derive(Debug, Clone)]
pub struct IntentConfig {
    pub(crate) keys: Arc<TrustedKeys>,
    pub(crate) audience: String,
    pub(crate) clock_skew: Duration,
    pub(crate) max_lifetime: Duration,
    pub(crate) replay: Option<Arc<dyn ReplayCache>>,
}

impl IntentConfig {
    /// Intents signed by `keys`, addressed to `audience`, with the default
    /// clock skew and maximum lifetime.
    pub fn new(keys: TrustedKeys, audience: impl Into<String>) -> IntentConfig {
        IntentConfig {
            keys: Arc::new(keys),
            audience: audience.into(),
            clock_skew: DEFAULT_CLOCK_SKEW,
            max_lifetime: DEFAULT_MAX_LIFETIME,
            replay: None,
        }
    }

    /// Sets the tolerance for disagreeing clocks.
    #[must_use]
    pub fn with_clock_skew(mut self, skew: Duration) -> IntentConfig {
        self.clock_skew = skew;
        self
    }

    /// Sets the longest lifetime (`exp - iat`) accepted.
    #[must_use]
    pub fn with_max_lifetime(mut self, lifetime: Duration) -> IntentConfig {
        self.max_lifetime = lifetime;
        self
    }

    /// Remembers `jti`s in `cache` (e.g. one shared by several processes)
    /// instead of the engine's in-memory cache.
    #[must_use]
    pub fn with_replay_cache(mut self, cache: Arc<dyn ReplayCache>) -> IntentConfig {
        self.replay = Some(cache);
        self
    }

    /// The trusted keys.
    pub fn keys(&self) -> &TrustedKeys {
        &self.keys
    }

    /// The audience intents must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The clock skew tolerated.
    pub fn clock_skew(&self) -> Duration {
        self.clock_skew
    }

    /// The longest lifetime accepted.
    pub fn max_lifetime(&self) -> Duration {
        self.max_lifetime
    }
}

/// What a verified intent must match: the request's principal, action and
/// resource.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// `iss` must equal this (the request's `principal.id`).
    pub principal: &'a str,
    /// `act` must equal this (the request's `action.name`).
    pub action: &'a str,
    /// `res` must equal `type:id` of this (the request's resource type and
    /// id); `None` when the request names no resource, which no `res`
    /// matches.
    pub resource: Option<(&'a str, &'a str)>,
}

impl<'a> Expected<'a> {
    /// What `request` asks for.
    pub fn of(request: &'a Request) -> Expected<'a> {
        Expected {
            principal: &request.principal.id,
            action: &request.action.name,
            resource: request
                .resource
                .as_ref()
                .and_then(|r| Some((r.kind.as_str(), r.id.as_deref()?))),
        }
    }
}

/// The claims of an intent (RFC 7519 registered claims plus `act`, `res`,
/// `purpose` and `scope`). Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IntentClaims {
    /// The issuing agent (its SPIFFE ID).
    pub iss: String,
    /// The audiences: who may act on the intent.
    pub aud: Vec<String>,
    /// A unique id: the nonce the replay cache remembers.
    pub jti: String,
    /// When it was issued.
    pub iat: i64,
    /// Not valid before this time, if set.
    pub nbf: Option<i64>,
    /// Not valid from this time on.
    pub exp: i64,
    /// The action name, e.g. `payment.release`.
    pub act: String,
    /// The resource, `type:id`.
    pub res: String,
    /// Why, in words.
    pub purpose: String,
    /// Optional scope (a space-separated string or an array in the token).
    pub scope: Vec<String>,
}

impl IntentClaims {
    /// Claims for `act` on `res`, issued by `iss` for `aud` at `iat` (Unix
    /// seconds), valid for `lifetime`, with a fresh `jti` (a UUIDv7: time-ordered, 74 random bits).
    pub fn new(
        iss: impl Into<String>,
        aud: impl Into<String>,
        act: impl Into<String>,
        res: impl Into<String>,
        purpose: impl Into<String>,
        iat: i64,
        lifetime: Duration,
    ) -> IntentClaims {
        IntentClaims {
            iss: iss.into(),
            aud: vec![aud.into()],
            jti: uuid::Uuid::now_v7().to_string(),
            iat,
            nbf: None,
            exp: iat.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX)),
            act: act.into(),
            res: res.into(),
            purpose: purpose.into(),
            scope: Vec::new(),
        }
    }

    /// The claims as a JSON object, in the form they are signed.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("iss".into(), self.iss.clone().into());
        let aud = match self.aud.as_slice() {
            [one] => Value::from(one.clone()),
            many => Value::from(many.to_vec()),
        };
        o.insert("aud".into(), aud);
        o.insert("jti".into(), self.jti.clone().into());
        o.insert("iat".into(), self.iat.into());
        if let Some(nbf) = self.nbf {
            o.insert("nbf".into(), nbf.into());
        }
        o.insert("exp".into(), self.exp.into());
        o.insert("act".into(), self.act.clone().into());
        o.insert("res".into(), self.res.clone().into());
        o.insert("purpose".into(), self.purpose.clone().into());
        if !self.scope.is_empty() {
            o.insert("scope".into(), self.scope.join(" ").into());
        }
        Value::Object(o)
    }
}

/// An intent that passed every check.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VerifiedIntent {
    /// The header's algorithm.
    pub alg: Algorithm,
    /// The header's key id.
    pub kid: String,
    /// The claims.
    pub claims: IntentClaims,
}

/// Verifies intents against one [`IntentConfig`].
///
/// `IntentVerifier` is `Send + Sync`; verifying records the `jti` in the
/// replay cache, so the same token verifies once.
///
/// ```
/// use std::time::Duration;
/// use agentriage::intent::*;
/// use agentriage::Timestamp;
///
/// let key = SigningKey::generate(Algorithm::EdDsa, "router-1", "spiffe://acme.example/router")?;
/// let mut keys = TrustedKeys::default();
/// keys.insert(key.trusted_key()).unwrap();
/// let verifier = IntentVerifier::new(IntentConfig::new(keys, "spiffe://acme.example/payments"));
///
/// let now = Timestamp::parse("2026-11-21T14:05:00Z").unwrap();
/// let claims = IntentClaims::new(
///     "spiffe://acme.example/router", "spiffe://acme.example/payments",
///     "payment.release", "payment:PAY-1", "pay invoice INV-9",
///     (now.unix_nanos() / 1_000_000_000) as i64, Duration::from_secs(300),
/// );
/// let token = key.sign(&claims)?;
/// let expected = Expected {
///     principal: "spiffe://acme.example/router",
///     action: "payment.release",
///     resource: Some(("payment", "PAY-1")),
/// };
/// assert_eq!(verifier.verify(&token, &expected, now).unwrap().claims.purpose, "pay invoice INV-9");
/// // The same token again is a replay.
/// let e = verifier.verify(&token, &expected, now).unwrap_err();
/// assert_eq!(e.check(), IntentCheck::Replay);
/// # Ok::<(), SignError>(())
/// ```
#[derive(Debug, Clone)]
pub struct IntentVerifier {
    config: IntentConfig,
    replay: Arc<dyn ReplayCache>,
}

impl IntentVerifier {
    /// A verifier for `config`, with its replay cache or else a new
    /// [`MemoryReplayCache`].
    pub fn new(config: IntentConfig) -> IntentVerifier {
        let replay = config
            .replay
            .clone()
            .unwrap_or_else(|| Arc::new(MemoryReplayCache::default()));
        IntentVerifier { config, replay }
    }

    /// The configuration.
    pub fn config(&self) -> &IntentConfig {
        &self.config
    }

    /// Verifies `token` for a request matching `expected`, evaluated at
    /// `now`, and records its `jti`.
    pub fn verify(
        &self,
        token: &str,
        expected: &Expected<'_>,
        now: Timestamp,
    ) -> Result<VerifiedIntent, IntentError> {
        verify_with(&self.config, self.replay.as_ref(), token, expected, now)
    }

    /// Every check but the replay check: nothing is recorded. For tools that
    /// inspect a token; a receiver acting on intents uses
    /// [`verify`](Self::verify).
    pub fn verify_unrecorded(
        &self,
        token: &str,
        expected: &Expected<'_>,
        now: Timestamp,
    ) -> Result<VerifiedIntent, IntentError> {
        verify_unrecorded(&self.config, token, expected, now)
    }
}

/// Every check, then records the `jti` in `replay`.
pub(crate) fn verify_with(
    config: &IntentConfig,
    replay: &dyn ReplayCache,
    token: &str,
    expected: &Expected<'_>,
    now: Timestamp,
) -> Result<VerifiedIntent, IntentError> {
    let verified = verify_unrecorded(config, token, expected, now)?;
    let exp_nanos = i128::from(verified.claims.exp) * NANOS;
    replay
        .check_and_record(
            &verified.claims.iss,
            &verified.claims.jti,
            exp_nanos.saturating_add(skew_nanos(config.clock_skew)),
            now.unix_nanos(),
        )
        .map_err(|e| match e {
            ReplayError::Seen { .. } => IntentError::new(IntentCheck::Replay, e.to_string()),
            other => IntentError::new(IntentCheck::ReplayStore, other.to_string()),
        })?;
    Ok(verified)
}

fn verify_unrecorded(
    config: &IntentConfig,
    token: &str,
    expected: &Expected<'_>,
    now: Timestamp,
) -> Result<VerifiedIntent, IntentError> {
    let parsed = parse(token)?;
    let payload = json_object("payload", &parsed.payload, &CLAIMS)?;
    let key = config.keys.get(&parsed.kid).ok_or_else(|| {
        IntentError::new(
            IntentCheck::UnknownKey,
            format!("no trusted key has kid `{}`", parsed.kid),
        )
    })?;
    if key.algorithm() != parsed.alg {
        return Err(IntentError::new(
            IntentCheck::KeyAlgorithm,
            format!(
                "key `{}` is an {} key, the header says `{}`",
                parsed.kid,
                key.algorithm(),
                parsed.alg
            ),
        ));
    }
    if !key.verify(parsed.signing_input, &parsed.signature) {
        return Err(IntentError::new(
            IntentCheck::Signature,
            format!("the signature does not verify with key `{}`", parsed.kid),
        ));
    }
    let claims = claims(&payload)?;
    if key.issuer() != claims.iss {
        return Err(IntentError::new(
            IntentCheck::IssuerKey,
            format!(
                "key `{}` belongs to `{}`, not to the issuer `{}`",
                parsed.kid,
                key.issuer(),
                claims.iss
            ),
        ));
    }
    check_claims(config, &claims, expected, now)?;
    Ok(VerifiedIntent {
        alg: parsed.alg,
        kid: parsed.kid,
        claims,
    })
}

fn check_claims(
    config: &IntentConfig,
    c: &IntentClaims,
    expected: &Expected<'_>,
    now: Timestamp,
) -> Result<(), IntentError> {
    if c.iss != expected.principal {
        return Err(IntentError::new(
            IntentCheck::Principal,
            format!(
                "issued by `{}`, but the request's principal is `{}`",
                c.iss, expected.principal
            ),
        ));
    }
    if !c.aud.contains(&config.audience) {
        return Err(IntentError::new(
            IntentCheck::Audience,
            format!(
                "addressed to {}, not to `{}`",
                list(&c.aud),
                config.audience
            ),
        ));
    }
    if c.act != expected.action {
        return Err(IntentError::new(
            IntentCheck::Action,
            format!(
                "signed for action `{}`, the request is for `{}`",
                c.act, expected.action
            ),
        ));
    }
    let res_matches = expected.resource.is_some_and(|(kind, id)| {
        c.res
            .strip_prefix(kind)
            .and_then(|rest| rest.strip_prefix(':'))
            == Some(id)
    });
    if !res_matches {
        let wanted = expected.resource.map_or_else(
            || "no resource with an id".to_owned(),
            |(k, i)| format!("`{k}:{i}`"),
        );
        return Err(IntentError::new(
            IntentCheck::Resource,
            format!(
                "signed for resource `{}`, the request names {wanted}",
                c.res
            ),
        ));
    }

    let t = now.unix_nanos();
    let skew = skew_nanos(config.clock_skew);
    let iat = i128::from(c.iat) * NANOS;
    let exp = i128::from(c.exp) * NANOS;
    if iat > t + skew {
        return Err(IntentError::new(
            IntentCheck::NotYetValid,
            format!(
                "issued in the future (iat {}, evaluated at {})",
                c.iat,
                now.rfc3339()
            ),
        ));
    }
    if let Some(nbf) = c.nbf
        && i128::from(nbf) * NANOS > t + skew
    {
        return Err(IntentError::new(
            IntentCheck::NotYetValid,
            format!("not valid before {nbf} (evaluated at {})", now.rfc3339()),
        ));
    }
    if exp + skew <= t {
        return Err(IntentError::new(
            IntentCheck::Expired,
            format!("expired at {} (evaluated at {})", c.exp, now.rfc3339()),
        ));
    }
    let max = i128::try_from(config.max_lifetime.as_nanos()).unwrap_or(i128::MAX);
    if exp <= iat {
        return Err(IntentError::new(
            IntentCheck::Lifetime,
            format!("exp {} is not after iat {}", c.exp, c.iat),
        ));
    }
    if exp - iat > max {
        return Err(IntentError::new(
            IntentCheck::Lifetime,
            format!(
                "lives {} s, longer than the maximum of {} s",
                c.exp.saturating_sub(c.iat),
                config.max_lifetime.as_secs()
            ),
        ));
    }
    Ok(())
}

fn skew_nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX / 4)
}

fn list(items: &[String]) -> String {
    items
        .iter()
        .map(|a| format!("`{a}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A token split and decoded, its header checked; signature not yet checked.
pub(crate) struct Parsed<'t> {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
    pub(crate) signing_input: &'t [u8],
    pub(crate) signature: Vec<u8>,
    /// The decoded payload (JSON text, not yet parsed).
    pub(crate) payload: Vec<u8>,
}

/// Header members the verifier reads.
const HEADER: [&str; 4] = ["alg", "kid", "typ", "crit"];
const ALG: usize = 0;
const KID: usize = 1;
const TYP: usize = 2;
const CRIT: usize = 3;

/// Claims the verifier reads, in the order of the indices below.
const CLAIMS: [&str; 10] = [
    "iss", "aud", "jti", "iat", "nbf", "exp", "act", "res", "purpose", "scope",
];
const ISS: usize = 0;
const AUD: usize = 1;
const JTI: usize = 2;
const IAT: usize = 3;
const NBF: usize = 4;
const EXP: usize = 5;
const ACT: usize = 6;
const RES: usize = 7;
const PURPOSE: usize = 8;
const SCOPE: usize = 9;

fn format_error(message: impl Into<String>) -> IntentError {
    IntentError::new(IntentCheck::Format, message)
}

fn json_object<'a, const N: usize>(
    part: &str,
    bytes: &'a [u8],
    names: &'static [&'static str; N],
) -> Result<Members<'a, N>, IntentError> {
    jws_json::object(bytes, names).map_err(|e| {
        let message = e.to_string();
        if message.starts_with(strict_json::DUPLICATE_KEY) {
            IntentError::new(
                IntentCheck::DuplicateKey,
                format!("the {part} repeats a key: {e}"),
            )
        } else if message.starts_with(jws_json::NOT_AN_OBJECT) {
            format_error(format!("the {part} is not a JSON object"))
        } else {
            format_error(format!("the {part} is not JSON: {e}"))
        }
    })
}

/// Splits and decodes a compact JWS and checks its header (an intent's:
/// `typ` absent, `JWT` or `intent+jwt`).
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, IntentError> {
    parse_typed(token, None)
}

/// [`parse`], with `typ` required to be `required` when given (an
/// approval's `approval+jwt`, so that no other token can pass for one).
pub(crate) fn parse_typed<'t>(
    token: &'t str,
    required: Option<&str>,
) -> Result<Parsed<'t>, IntentError> {
    if token.len() > MAX_INTENT_BYTES {
        return Err(IntentError::new(
            IntentCheck::Size,
            format!(
                "the token is {} bytes, more than the {MAX_INTENT_BYTES} accepted",
                token.len()
            ),
        ));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format_error(
            "a compact JWS has three `.`-separated parts (header.payload.signature)",
        ));
    };
    let decode = |part: &str, text: &str| {
        b64::decode(text.as_bytes()).map_err(|e| format_error(format!("the {part}: {e}")))
    };
    let header_bytes = decode("header", h)?;
    let header = json_object("header", &header_bytes, &HEADER)?;
    let alg = match header.get(ALG) {
        Some(Member::Str(a)) => Algorithm::from_name(a).ok_or_else(|| {
            IntentError::new(
                IntentCheck::Algorithm,
                format!("algorithm `{a}` is not accepted; only `EdDSA` and `ES256` are"),
            )
        })?,
        Some(_) => {
            return Err(IntentError::new(
                IntentCheck::Algorithm,
                "the header's `alg` is not a string",
            ));
        }
        None => {
            return Err(IntentError::new(
                IntentCheck::Algorithm,
                "the header has no `alg`",
            ));
        }
    };
    let kid = match header.get(KID) {
        Some(Member::Str(k)) if !k.is_empty() => k.to_string(),
        _ => {
            return Err(IntentError::new(
                IntentCheck::Header,
                "the header has no `kid` string naming the signing key",
            ));
        }
    };
    if let Some(required) = required {
        let ok = header.get(TYP).and_then(Member::as_str).is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.strip_prefix("application/").unwrap_or(&t) == required
        });
        if !ok {
            return Err(IntentError::new(
                IntentCheck::Header,
                format!(
                    "`typ` is {}, not `{required}`",
                    header
                        .get(TYP)
                        .map_or_else(|| "absent".to_owned(), Member::describe)
                ),
            ));
        }
    } else if let Some(typ) = header.get(TYP) {
        let ok = typ.as_str().is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            let t = t.strip_prefix("application/").unwrap_or(&t);
            t == "jwt" || t == "intent+jwt"
        });
        if !ok {
            return Err(IntentError::new(
                IntentCheck::Header,
                format!("`typ` {} is not `JWT` or `intent+jwt`", typ.describe()),
            ));
        }
    }
    if header.get(CRIT).is_some() {
        return Err(IntentError::new(
            IntentCheck::Header,
            "the header marks extensions critical (`crit`); none is supported",
        ));
    }
    let payload = decode("payload", p)?;
    let signature = decode("signature", s)?;
    let signing_input = token
        .as_bytes()
        .get(..h.len() + 1 + p.len())
        .unwrap_or_default();
    Ok(Parsed {
        alg,
        kid,
        signing_input,
        signature,
        payload,
    })
}

fn claim_error(message: impl Into<String>) -> IntentError {
    IntentError::new(IntentCheck::Claims, message)
}

fn required_string(o: &Members<'_, 10>, i: usize) -> Result<String, IntentError> {
    let name = CLAIMS.get(i).copied().unwrap_or_default();
    match o.get(i) {
        Some(Member::Str(s)) if !s.is_empty() => Ok(s.to_string()),
        Some(Member::Str(_)) => Err(claim_error(format!("claim `{name}` is empty"))),
        Some(_) => Err(claim_error(format!("claim `{name}` must be a string"))),
        None => Err(claim_error(format!("claim `{name}` is required"))),
    }
}

/// A NumericDate (RFC 7519 §2): seconds, possibly fractional. Fractions are
/// rounded toward the strict side: `iat`/`nbf` up, `exp` down.
fn numeric_date(o: &Members<'_, 10>, i: usize, up: bool) -> Result<Option<i64>, IntentError> {
    let name = CLAIMS.get(i).copied().unwrap_or_default();
    let Some(v) = o.get(i) else {
        return Ok(None);
    };
    let Member::Num(n) = v else {
        return Err(claim_error(format!(
            "claim `{name}` must be a number of seconds (NumericDate)"
        )));
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    let f = n
        .as_f64()
        .filter(|f| f.is_finite() && f.abs() < 1e15)
        .ok_or_else(|| claim_error(format!("claim `{name}` is out of range")))?;
    let f = if up { f.ceil() } else { f.floor() };
    #[allow(clippy::cast_possible_truncation, reason = "range checked above")]
    Ok(Some(f as i64))
}

fn strings(v: &Member<'_>, name: &str) -> Result<Vec<String>, IntentError> {
    match v {
        Member::Str(s) => Ok(vec![s.to_string()]),
        Member::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| claim_error(format!("claim `{name}` must hold only strings")))
            })
            .collect(),
        _ => Err(claim_error(format!(
            "claim `{name}` must be a string or a non-empty array of strings"
        ))),
    }
}

pub(crate) fn claims(o: &Members<'_, 10>) -> Result<IntentClaims, IntentError> {
    let iss = required_string(o, ISS)?;
    let aud = strings(
        o.get(AUD)
            .ok_or_else(|| claim_error("claim `aud` is required"))?,
        "aud",
    )?;
    let jti = required_string(o, JTI)?;
    if jti.len() > MAX_JTI_BYTES {
        return Err(claim_error(format!(
            "claim `jti` is longer than {MAX_JTI_BYTES} bytes"
        )));
    }
    let iat = numeric_date(o, IAT, true)?.ok_or_else(|| claim_error("claim `iat` is required"))?;
    let nbf = numeric_date(o, NBF, true)?;
    let exp = numeric_date(o, EXP, false)?.ok_or_else(|| claim_error("claim `exp` is required"))?;
    let act = required_string(o, ACT)?;
    let res = required_string(o, RES)?;
    if !res.contains(':') {
        return Err(claim_error(format!("claim `res` `{res}` is not `type:id`")));
    }
    let purpose = required_string(o, PURPOSE)?;
    let scope = match o.get(SCOPE) {
        None => Vec::new(),
        Some(Member::Str(s)) => s.split_ascii_whitespace().map(str::to_owned).collect(),
        Some(v) => strings(v, "scope")?,
    };
    Ok(IntentClaims {
        iss,
        aud,
        jti,
        iat,
        nbf,
        exp,
        act,
        res,
        purpose,
        scope,
    })
}
