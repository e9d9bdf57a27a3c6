# Strings: prefixes, case, splitting, formatting, trimming, unicode.
package agentriage

import rego.v1

dept := split(input.principal.id, "/")[4]

reject contains {"id": "T1.foreign_domain", "message": sprintf("principal %v is outside acme", [input.principal.id])} if {
	not startswith(input.principal.id, "spiffe://acme.example/")
}

escalate contains {"id": "T2.finance", "message": sprintf("finance department %v", [dept])} if {
	lower(dept) == "finance"
}

reject contains {"id": "T3.blank_note", "message": "note is blank"} if {
	is_string(input.context.note)
	trim_space(input.context.note) == ""
}

escalate contains {"id": "T4.long_note", "message": sprintf("note has %d characters", [count(input.context.note)])} if {
	count(input.context.note) > 8
}

reject contains {"id": "T5.keyword", "message": "note mentions override"} if {
	contains(upper(input.context.note), "OVERRIDE")
}

allow if endswith(input.resource.id, concat("-", ["ok", "1"]))
