# Class d: conflicting values of a complete rule or a function are an
# evaluation error in OPA (eval_conflict_error).
package agentriage

import rego.v1

tier := "gold" if input.resource.attributes.amount > 1000

tier := "silver" if input.resource.attributes.amount > 100

reject contains {"id": "D1.gold", "message": "gold tier needs a human"} if tier == "gold"

escalate contains {"id": "D2.silver", "message": "silver tier"} if tier == "silver"

limit(kind) := 10 if kind == "card"

limit(kind) := 20 if startswith(kind, "c")

reject contains {"id": "D3.over_limit", "message": "over the limit"} if {
	input.resource.attributes.count > limit(input.resource.attributes.kind)
}

allow if true
