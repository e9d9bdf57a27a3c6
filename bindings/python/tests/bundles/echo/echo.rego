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
	"text": sprintf("%v", [value]),
	"is_false": value == false,
	"is_null": value == null,
	"is_zero": value == 0,
	"is_empty": value in [{}, [], ""],
} if {
	some key, value in input.context
}

# The pattern that published regorus bindings get wrong: a flag given as
# `False` must fire neither rule. (In Rego a bare term holds unless it is
# `false` or undefined, so `null` and `0` do fire the second rule.)
reject contains {"id": "echo.flag_true", "message": "incident_mode == true"} if {
	input.context.incident_mode == true
}

escalate contains {"id": "echo.flag_set", "message": "incident_mode is present and not false"} if {
	input.context.incident_mode
}
