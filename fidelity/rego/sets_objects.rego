# Sets and objects: membership, set operations, object.get, keys, union.
package agentriage

import rego.v1

allowed_scopes := {"read", "write", "ship"}

requested := {s | some s in input.context.scopes}

extra := requested - allowed_scopes

reject contains {"id": "O1.unknown_scope", "message": sprintf("unknown scopes %v", [extra])} if count(extra) > 0

needs_review := requested & {"write", "ship"}

escalate contains {"id": "O2.writes", "message": "write scopes need review"} if count(needs_review) > 1

owner := object.get(input.resource.attributes, ["meta", "owner"], "nobody")

escalate contains {"id": "O3.unowned", "message": "resource has no owner"} if owner == "nobody"

merged := object.union({"tier": "basic", "region": "eu"}, object.get(input.resource.attributes, "overrides", {}))

reject contains {"id": "O4.bad_region", "message": "region override not allowed"} if merged.region == "cn"

allow if {
	count(requested) > 0
	count(object.keys(input.resource.attributes)) < 4
}
