rego/identity.rego
# Identity: who the agent is, what its roles permit, on whose behalf it acts.
# The agent registry in data.pack is the only source of roles; roles claimed
# in the request are not trusted.
package agentriage

import rego.v1

agent := data.pack.agents[input.principal.id]

permits(id, action) if {
	some role in data.pack.agents[id].roles
	action in data.pack.roles[role]
}

# Execute is possible only when a role of the principal permits the action.
allow if permits(input.principal.id, input.action.name)

# R1: the principal must be a registered agent.
reject contains {
	"id": "R1.unregistered_principal",
	"message": sprintf("principal %s is not in the agent registry", [input.principal.id]),
} if not agent

# R2: the action must be in the bundle's risk table.
reject contains {
	"id": "R2.unknown_action",
	"message": sprintf("action %s is not in the risk table", [input.action.name]),
} if input.facts.risk_class == "unknown"

# R3: some role of the principal must permit the action.
reject contains {
	"id": "R3.role_not_permitted",
	"message": sprintf("no role of %s (%s) permits %s", [
		input.principal.id,
		concat(", ", agent.roles),
		input.action.name,
	]),
} if {
	agent
	not permits(input.principal.id, input.action.name)
}

# R12: every agent it acts for must be registered and permitted the action.
reject contains {
	"id": "R12.unregistered_delegator",
	"message": sprintf("delegator %s is not in the agent registry", [d]),
} if {
	some d in input.principal.delegation
	not data.pack.agents[d]
}

reject contains {
	"id": "R12.delegator_not_permitted",
	"message": sprintf("delegator %s has no role permitting %s", [d, input.action.name]),
} if {
	some d in input.principal.delegation
	data.pack.agents[d]
	not permits(d, input.action.name)
}

# R12: long delegation chains need a human.
escalate contains {
	"id": "R12.long_delegation_chain",
	"message": sprintf("%d delegators, more than %d", [
		count(input.principal.delegation),
		data.pack.max_delegators,
	]),
} if count(input.principal.delegation) > data.pack.max_delegators

# R15: an agent acting on behalf of a person or an upstream service may do
# only what that subject may do itself. The subject's roles and scopes come
# from the token the host verified (principal.on_behalf_of); a subject
# holds an action through a scope (data.pack.action_scopes), a subject role
# (data.pack.subject_roles) or, for a service, a role in the agent registry.
subject := input.principal.on_behalf_of

subject_may(action) if data.pack.action_scopes[action] in subject.scopes

subject_may(action) if {
	some role in subject.roles
	action in data.pack.subject_roles[role]
}

subject_may(action) if {
	subject.type == "service"
	permits(subject.id, action)
}

reject contains {
	"id": "R15.subject_not_permitted",
	"message": sprintf("%s %s, on whose behalf %s acts, holds neither scope %s nor a role permitting %s", [
		subject.type,
		subject.id,
		input.principal.id,
		object.get(data.pack.action_scopes, input.action.name, "(none defined)"),
		input.action.name,
	]),
} if {
	subject
	not subject_may(input.action.name)
}
