rego/intents.rego
# Signed intents. The engine verifies the request's intent before policies
# run and reports the result as input.facts.intent (status `absent`,
# `verified` or `invalid`, with the failed check in `error`).
package agentriage

import rego.v1

intent := input.facts.intent

# R14: an intent that fails any check is refused, whatever the action: a
# tampered, forged, replayed or misdirected instruction is never acted on.
reject contains {
	"id": "R14.intent_invalid",
	"message": sprintf("intent failed check `%s`: %s", [intent.error, intent.message]),
} if intent.status == "invalid"

# R14: regulated actions need a verified intent; without one a human decides.
escalate contains {
	"id": "R14.intent_missing",
	"message": sprintf("regulated action `%s` carries no signed intent", [input.action.name]),
} if {
	intent.status == "absent"
	risk == "regulated"
}
