# Class b: a comprehension keeps no element for an item without the value.
package agentriage

import rego.v1

names := [n | some item in input.context.items; n := item.name]

all_named if count(names) == count(input.context.items)

escalate contains {"id": "B1.unnamed_item", "message": "an item has no name"} if not all_named

tags := {t | some item in input.context.items; t := item.tag}

reject contains {"id": "B2.blocked_tag", "message": sprintf("tag %v is blocked", [t])} if {
	some t in tags
	t == "blocked"
}

allow if count(names) > 0
