//! `agentriage approval digest | sign`: approvals of escalated actions, for
//! approvers' tools without a JOSE library of their own.

use std::path::{Path, PathBuf};

use agentriage::approval::{ApprovalClaims, action_digest};
use agentriage::intent::{Algorithm, SigningKey};
use agentriage::{Bundle, Request, Timestamp};
use clap::Subcommand;
use serde_json::Value;

/// Exit codes of `agentriage approval`.
mod exit {
    pub const OK: u8 = 0;
    /// A request, decision, bundle or claim could not be used.
    pub const INPUT: u8 = 3;
    /// A file could not be read.
    pub const IO: u8 = 4;
}

pub const EXIT_CODES: &str = "\
Exit codes:
  0  done
  2  bad command-line usage
  3  a bundle, request, decision, key or claim could not be used
  4  a file could not be read";

#[derive(Subcommand)]
pub enum ApprovalCommand {
    /// Print the digest of a request's action, as the bundle's approvals
    /// bind to it (principal, action, resource, named context fields).
    #[command(after_help = EXIT_CODES)]
    Digest {
        /// Bundle directory (its `[approvals] context_fields` are digested).
        #[arg(long, short)]
        bundle: PathBuf,
        /// The request (JSON file, or `-` for standard input).
        #[arg(default_value = "-")]
        request: String,
    },
    /// Sign an approval; prints the compact JWS to put in the request's
    /// `approval` field. Approver keys are made with `agentriage intent
    /// keygen` (the key's issuer is the approver's identity).
    ///
    /// Either --decision (an `escalate` decision as JSON: its
    /// `approval_request` gives digest, reasons, audience and expiry), or
    /// --digest, --aud and --reason.
    #[command(after_help = EXIT_CODES)]
    Sign {
        /// The approver's private key (PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// `EdDSA` or `ES256`: the private key's algorithm.
        #[arg(long, default_value = "EdDSA")]
        alg: Algorithm,
        /// Key id (as in the bundle's approver key set).
        #[arg(long)]
        kid: String,
        /// The approver's identity (the key's issuer).
        #[arg(long)]
        iss: String,
        /// The escalated decision (JSON file, or `-`).
        #[arg(long, conflicts_with_all = ["digest", "aud", "reason"])]
        decision: Option<String>,
        /// The action digest (`sha256:…`).
        #[arg(long, requires_all = ["aud", "reason"])]
        digest: Option<String>,
        /// The bundle's approval audience.
        #[arg(long)]
        aud: Option<String>,
        /// An escalation reason approved (repeat for several).
        #[arg(long)]
        reason: Vec<String>,
        /// Signing time (RFC 3339); now when absent.
        #[arg(long)]
        iat: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 900)]
        lifetime_s: u64,
        /// The one-time id; a fresh UUID when absent.
        #[arg(long)]
        jti: Option<String>,
    },
}

fn fail(code: u8, message: impl std::fmt::Display) -> u8 {
    eprintln!("agentriage approval: {message}");
    code
}

fn read(source: &str) -> Result<String, u8> {
    if source == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|e| fail(exit::IO, format!("cannot read standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(source)
        .map_err(|e| fail(exit::IO, format!("cannot read `{source}`: {e}")))
}

pub fn run(command: ApprovalCommand) -> u8 {
    match command {
        ApprovalCommand::Digest { bundle, request } => digest(&bundle, &request),
        ApprovalCommand::Sign {
            key,
            alg,
            kid,
            iss,
            decision,
            digest,
            aud,
            reason,
            iat,
            lifetime_s,
            jti,
        } => {
            let what = match decision {
                Some(d) => from_decision(&d),
                None => match (digest, aud) {
                    (Some(digest), Some(aud)) if !reason.is_empty() => Ok(Target {
                        digest,
                        aud,
                        reasons: reason,
                        decision_id: None,
                        request_exp: None,
                    }),
                    _ => Err(fail(2, "give --decision, or --digest, --aud and --reason")),
                },
            };
            match what {
                Ok(t) => sign(&key, alg, kid, iss, t, iat.as_deref(), lifetime_s, jti),
                Err(code) => code,
            }
        }
    }
}

fn digest(bundle: &Path, request: &str) -> u8 {
    let bundle = match Bundle::load(bundle) {
        Ok(b) => b,
        Err(e) => return fail(exit::INPUT, e),
    };
    let Some(config) = bundle.controls().approvals() else {
        return fail(
            exit::INPUT,
            "the bundle accepts no approvals (no `[approvals]` table)",
        );
    };
    let text = match read(request) {
        Ok(t) => t,
        Err(code) => return code,
    };
    match Request::from_json(&text) {
        Ok(r) => {
            println!("{}", action_digest(&r, config.context_fields()));
            exit::OK
        }
        Err(e) => fail(exit::INPUT, e),
    }
}

struct Target {
    digest: String,
    aud: String,
    reasons: Vec<String>,
    decision_id: Option<String>,
    request_exp: Option<i64>,
}

fn from_decision(source: &str) -> Result<Target, u8> {
    let text = read(source)?;
    let decision: Value = serde_json::from_str(&text)
        .map_err(|e| fail(exit::INPUT, format!("the decision is not JSON: {e}")))?;
    let request = decision.get("approval_request").ok_or_else(|| {
        fail(
            exit::INPUT,
            "the decision carries no `approval_request` (only an escalation an approval can settle does)",
        )
    })?;
    let field = |name: &str| {
        request
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| fail(exit::INPUT, format!("`approval_request.{name}` is missing")))
    };
    let expires = field("expires_at")?;
    let request_exp = Timestamp::parse(&expires)
        .map(|t| i64::try_from(t.unix_nanos() / 1_000_000_000).unwrap_or(i64::MAX))
        .ok_or_else(|| {
            fail(
                exit::INPUT,
                format!("`approval_request.expires_at` `{expires}` is not RFC 3339"),
            )
        })?;
    let reasons = request
        .get("reasons")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter_map(|r| r.get("policy").and_then(Value::as_str).map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .filter(|rs| !rs.is_empty())
        .ok_or_else(|| fail(exit::INPUT, "`approval_request.reasons` names no reason"))?;
    Ok(Target {
        digest: field("action_digest")?,
        aud: field("audience")?,
        reasons,
        decision_id: decision
            .get("decision_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        request_exp: Some(request_exp),
    })
}

#[allow(clippy::too_many_arguments, reason = "one per command-line option")]
fn sign(
    key: &Path,
    alg: Algorithm,
    kid: String,
    iss: String,
    target: Target,
    iat: Option<&str>,
    lifetime_s: u64,
    jti: Option<String>,
) -> u8 {
    let pem = match read(&key.to_string_lossy()) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let signing = match SigningKey::from_pem(alg, kid, iss.clone(), &pem) {
        Ok(k) => k,
        Err(e) => return fail(exit::INPUT, e),
    };
    let now = match iat {
        None => Timestamp::now(),
        Some(t) => match Timestamp::parse(t) {
            Some(t) => t,
            None => return fail(exit::INPUT, format!("--iat `{t}` is not an RFC 3339 time")),
        },
    };
    let iat = i64::try_from(now.unix_nanos() / 1_000_000_000).unwrap_or(i64::MAX);
    let mut claims = ApprovalClaims::new(
        iss,
        target.aud,
        target.digest,
        target.reasons,
        iat,
        lifetime_s,
    );
    claims.decision_id = target.decision_id;
    claims.request_exp = target.request_exp;
    if let Some(j) = jti {
        claims.jti = j;
    }
    match agentriage::approval::sign(&signing, &claims) {
        Ok(token) => {
            println!("{token}");
            exit::OK
        }
        Err(e) => fail(exit::INPUT, e),
    }
}
