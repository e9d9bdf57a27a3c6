# Class e: a builtin error inside a reject/escalate body. With strict
# builtin errors (agentriage's promise) the evaluation fails closed.
package agentriage

import rego.v1

reject contains {"id": "E1.quantity", "message": "quantity over 100"} if {
	to_number(input.resource.attributes.quantity) > 100
}

escalate contains {"id": "E2.ratio", "message": "ratio over 2"} if {
	input.resource.attributes.total / input.resource.attributes.parts > 2
}

reject contains {"id": "E3.pattern", "message": "id matches the deny pattern"} if {
	regex.match(input.context.pattern, input.resource.id)
}

allow if true
