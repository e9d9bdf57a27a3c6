# Rego-native unit tests of the pack's rules, run by `agentriage test` like
# `opa test` runs them: every rule named `test_*` must evaluate to true.
# `with` replaces input or data for one expression. Files under tests/ are
# never loaded for decisions.
package agentriage_test

import rego.v1

reroute := {
	"principal": {"id": "spiffe://acme.example/ns/logistics/sa/router", "delegation": []},
	"action": {"name": "shipment.reroute"},
	"resource": {"type": "shipment", "attributes": {"value_usd": 12000}},
	"facts": {"risk_class": "transactional", "credential_ttl_s": 300, "hour_utc": 14},
}

ids(set_of_reasons) := {r.id | some r in set_of_reasons}

test_registered_router_is_allowed if {
	data.agentriage.allow with input as reroute
}

test_unregistered_principal_is_rejected if {
	"R1.unregistered_principal" in ids(data.agentriage.reject) with input as object.union(
		reroute,
		{"principal": {"id": "spiffe://evil.example/sa/x", "delegation": []}},
	)
}

test_threshold_is_policy_data if {
	# The same request escalates once reviewers lower the reroute limit.
	not "R9.value_threshold" in ids(data.agentriage.escalate) with input as reroute
	"R9.value_threshold" in ids(data.agentriage.escalate) with input as reroute
		with data.pack.value_thresholds["shipment.reroute"].max as 10000
}

test_delegation_chain_limit_is_policy_data if {
	chain := object.union(reroute, {"principal": {
		"id": "spiffe://acme.example/ns/logistics/sa/router",
		"delegation": ["spiffe://acme.example/ns/ops/sa/supervisor"],
	}})
	not "R12.long_delegation_chain" in ids(data.agentriage.escalate) with input as chain
	"R12.long_delegation_chain" in ids(data.agentriage.escalate) with input as chain
		with data.pack.max_delegators as 0
}

test_expired_credential_is_rejected if {
	expired := object.union(reroute, {"facts": {"credential_ttl_s": 0}})
	"R4.credential_expired" in ids(data.agentriage.reject) with input as expired
}

test_business_hours_are_utc if {
	data.agentriage.business_hours with input as {"facts": {"hour_utc": 6}}
	not data.agentriage.business_hours with input as {"facts": {"hour_utc": 20}}
}
