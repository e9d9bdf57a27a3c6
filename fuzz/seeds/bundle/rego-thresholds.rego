rego/thresholds.rego
# Value thresholds: large transactions need a human.
package agentriage

import rego.v1

# R9: amount above the action's threshold.
escalate contains {
	"id": "R9.value_threshold",
	"message": sprintf("%s %v exceeds the limit of %v for %s", [t.attribute, v, t.max, input.action.name]),
} if {
	t := data.pack.value_thresholds[input.action.name]
	v := input.resource.attributes[t.attribute]
	is_number(v)
	v > t.max
}

# R9: an amount that is not a number cannot be checked; a human decides.
escalate contains {
	"id": "R9.value_threshold",
	"message": sprintf("%s is not a number (%v); the limit cannot be checked", [t.attribute, v]),
} if {
	t := data.pack.value_thresholds[input.action.name]
	v := input.resource.attributes[t.attribute]
	not is_number(v)
}
