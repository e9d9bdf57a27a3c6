package agentriage

import rego.v1

allow := true

# One obligation per context key: the value, its Rego type, and how the
# comparisons that policies rely on come out.
obligations contains {
	"id": concat("", ["echo:", key]),
	"type": type_name(value),
	"value": value,
	"json": json.marshal(value),
	"is_false": value == false,
	"is_null": value == null,
	"is_zero": value == 0,
	"is_empty": is_empty(value),
} if {
	some key, value in input.context
}

is_empty(v) if count(v) == 0

default is_empty(_) := false

# The pattern that published regorus bindings get wrong: a flag given as
# `False` must not fire either rule.
reject contains {"id": "echo.flag_true", "message": "incident_mode == true"} if {
	input.context.incident_mode == true
}

escalate contains {"id": "echo.flag_truthy", "message": "incident_mode is truthy"} if {
	input.context.incident_mode
}
