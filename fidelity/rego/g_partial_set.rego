# Class g: one iteration with a missing field must not drop the other
# elements of a partial set.
package agentriage

import rego.v1

reject contains {"id": "G1.privileged", "message": sprintf("container %v is privileged", [c.name])} if {
	some c in input.resource.attributes.containers
	c.privileged == true
}

escalate contains {"id": "G2.no_limits", "message": sprintf("container %v has no memory limit", [c.name])} if {
	some c in input.resource.attributes.containers
	not c.limits.memory
}

allow if true
