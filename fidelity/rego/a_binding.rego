# Class a: binding a missing value makes the body undefined (OPA).
package agentriage

import rego.v1

ok if {
	v := input.resource.attributes.amount
	not is_string(v)
}

reject contains {"id": "A1.amount_unusable", "message": "amount is missing or a string"} if not ok

allow if ok
