//! `agentriage init DIR`: a new bundle to start from — manifest, a Rego
//! module, a Cedar policy, an agent registry, a risk table and a suite that
//! covers every rule — which `agentriage test` and `agentriage check` pass.

use std::path::Path;

/// Exit codes of `agentriage init`.
pub mod exit {
    /// The bundle was written.
    pub const OK: u8 = 0;
    /// Bad command-line usage: a name that cannot be a bundle name, or a
    /// directory that exists and is not empty.
    pub const USAGE: u8 = 2;
    /// A file could not be written.
    pub const IO: u8 = 4;
}

/// Exit codes, as `--help` shows them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  the bundle was written
  2  bad command-line usage (a bad --name, or DIR exists and is not empty)
  4  a file could not be written";

const MANIFEST: &str = r#"# {name}: made by `agentriage init`. Edit the rules, the registry and
# the risk table; `agentriage test DIR` and `agentriage check --bundle DIR`
# (DIR: this directory) tell whether it still holds together.
name = "{name}"
revision = "0.1.0"
description = "Policies for {name}"

[defaults]
# Nothing permits the action: reject. A policy fails to evaluate: reject.
no_permit = "reject"
on_error = "reject"

# The risk class of an action comes from here, never from the request.
[risk_classes]
read_only = ["report.read"]
transactional = ["ticket.update"]
regulated = ["payment.release"]

# Identity from the bundle's own registry, credentials, value thresholds.
[rego]
package = "agentriage"
modules = ["rego/policy.rego"]
data = ["data/agents.json"]

# Resource state.
[cedar]
policies = ["cedar/policy.cedar"]
"#;

const REGO: &str = r#"package agentriage

import rego.v1

# Which agent may do what comes from the bundle's registry
# (data/agents.json), never from roles the request claims.
agent := data.agents[input.principal.id]

# An action executes only when the registry grants it.
allow if input.action.name in agent.actions

reject contains {"id": "unknown_agent", "message": "the agent is not in the registry"} if {
	not data.agents[input.principal.id]
}

reject contains {"id": "not_granted", "message": sprintf("the registry does not grant `%v` to this agent", [input.action.name])} if {
	agent
	not input.action.name in agent.actions
}

# An expired credential rejects anything but reads.
reject contains {"id": "credential_expired", "message": "the agent's credential has expired"} if {
	input.facts.credential_ttl_s <= 0
	input.facts.risk_class != "read_only"
}

# Regulated actions above the agent's limit go to a person.
escalate contains {"id": "over_limit", "message": sprintf("%v is over the agent's limit of %v", [amount, agent.limit_usd])} if {
	input.facts.risk_class == "regulated"
	amount := input.resource.attributes.amount_usd
	amount > agent.limit_usd
}
"#;

const CEDAR: &str = r#"// Cedar sees the same request: principal Agent::"<principal.id>",
// action Action::"<action.name>", resource Resource::"<resource.id>" with
// attributes `type`, `id` and `resource.attributes`.

@id("locked_resource")
@reason("the resource is locked")
forbid (principal, action, resource)
when { resource has locked && resource.locked == true };
"#;

const AGENTS: &str = r#"{
  "agents": {
    "spiffe://example.org/ns/support/sa/helpdesk": {
      "actions": ["report.read", "ticket.update"],
      "limit_usd": 0
    },
    "spiffe://example.org/ns/finance/sa/payments": {
      "actions": ["report.read", "payment.release"],
      "limit_usd": 10000
    }
  }
}
"#;

const SUITE: &str = r#"# Every rule on both sides of its boundary. Run: agentriage test DIR
name: {name}
defaults:
  base: ticket
  match: exact
bases:
  ticket:
    time: "2026-01-15T10:00:00Z"
    principal:
      id: spiffe://example.org/ns/support/sa/helpdesk
      credential: {expires_at: "2026-01-15T11:00:00Z"}
    action: {name: ticket.update}
    resource: {type: ticket, id: T-1, attributes: {locked: false}}
  payment:
    time: "2026-01-15T10:00:00Z"
    principal:
      id: spiffe://example.org/ns/finance/sa/payments
      credential: {expires_at: "2026-01-15T11:00:00Z"}
    action: {name: payment.release}
    resource: {type: invoice, id: INV-1, attributes: {amount_usd: 10000}}
cases:
  - name: a granted action executes
    expect: {outcome: execute, reasons: [agentriage.allow]}

  - name: an agent outside the registry is rejected
    patch: {principal: {id: spiffe://example.org/ns/other/sa/unknown}}
    expect: {outcome: reject, reasons: [unknown_agent]}

  - name: an action the registry does not grant is rejected
    base: payment
    patch: {action: {name: ticket.update}}
    expect: {outcome: reject, reasons: [not_granted]}

  - name: an expired credential is rejected
    patch: {principal: {credential: {expires_at: "2026-01-15T10:00:00Z"}}}
    expect: {outcome: reject, reasons: [credential_expired]}

  - name: a read with an expired credential executes
    patch:
      principal: {credential: {expires_at: "2026-01-15T10:00:00Z"}}
      action: {name: report.read}
    expect: {outcome: execute, reasons: [agentriage.allow]}

  - name: a payment at the limit executes
    base: payment
    expect: {outcome: execute, reasons: [agentriage.allow]}

  - name: a payment over the limit escalates
    base: payment
    patch: {resource: {attributes: {amount_usd: 10000.01}}}
    expect: {outcome: escalate, reasons: [over_limit]}

  - name: a locked resource is rejected
    patch: {resource: {attributes: {locked: true}}}
    expect: {outcome: reject, reasons: [locked_resource]}
"#;

const REQUEST: &str = r#"{"time": "2026-01-15T10:00:00Z", "principal": {"id": "spiffe://example.org/ns/finance/sa/payments", "credential": {"expires_at": "2026-01-15T11:00:00Z"}}, "action": {"name": "payment.release"}, "resource": {"type": "invoice", "id": "INV-2", "attributes": {"amount_usd": 25000}}}
"#;

/// Whether `name` can be a bundle name: letters, digits, `.`, `_`, `-`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// The files of a new bundle named `name`, by path relative to its directory.
fn files(name: &str) -> [(&'static str, String); 6] {
    let fill = |t: &str| t.replace("{name}", name);
    [
        ("bundle.toml", fill(MANIFEST)),
        ("rego/policy.rego", REGO.to_owned()),
        ("cedar/policy.cedar", CEDAR.to_owned()),
        ("data/agents.json", AGENTS.to_owned()),
        ("tests/policy.yaml", fill(SUITE)),
        ("request.json", REQUEST.to_owned()),
    ]
}

/// Runs the command; returns the exit code.
pub fn init(dir: &Path, name: Option<&str>) -> u8 {
    let name = match name {
        Some(n) => n.to_owned(),
        None => dir
            .canonicalize()
            .ok()
            .or_else(|| std::path::absolute(dir).ok())
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default(),
    };
    if !valid_name(&name) {
        eprintln!(
            "error: `{name}` cannot be a bundle name (letters, digits, `.`, `_` and `-`); give --name"
        );
        return exit::USAGE;
    }
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                eprintln!(
                    "error: `{}` exists and is not empty: init writes only into a new or empty directory",
                    dir.display()
                );
                return exit::USAGE;
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            eprintln!("error: cannot read `{}`: {e}", dir.display());
            return exit::IO;
        }
    }
    let shown = dir.display().to_string();
    for (path, text) in files(&name) {
        let target = dir.join(path);
        let written = match target.parent() {
            Some(parent) => std::fs::create_dir_all(parent),
            None => Ok(()),
        }
        .and_then(|()| std::fs::write(&target, text));
        if let Err(e) = written {
            eprintln!("error: cannot write `{}`: {e}", target.display());
            return exit::IO;
        }
    }
    println!("wrote bundle `{name}` in {shown}");
    println!("  agentriage test {shown}              # run its suite");
    println!("  agentriage check --bundle {shown}    # check it");
    println!("  agentriage eval --bundle {shown} --input {shown}/request.json --pretty");
    exit::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_restricted_to_what_a_manifest_string_holds_as_is() {
        assert!(valid_name("payments-agent_2.0"));
        for bad in ["", "a b", "a\"b", "a\\b", "ünï"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
