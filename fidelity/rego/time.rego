# Time: parsing RFC 3339, durations, comparisons with the evaluation time.
package agentriage

import rego.v1

now := time.parse_rfc3339_ns(input.facts.time)

deadline := time.parse_rfc3339_ns(input.resource.attributes.deadline)

reject contains {"id": "W1.past_deadline", "message": "the deadline has passed"} if deadline < now

escalate contains {"id": "W2.deadline_soon", "message": "the deadline is within an hour"} if {
	deadline >= now
	deadline - now < time.parse_duration_ns("1h")
}

escalate contains {"id": "W3.weekend", "message": "deadline on a weekend"} if {
	time.weekday(deadline) in {"Saturday", "Sunday"}
}

reject contains {"id": "W4.hold_too_long", "message": "hold longer than 2 days"} if {
	time.parse_duration_ns(input.resource.attributes.hold) > 2 * 24 * time.parse_duration_ns("1h")
}

allow if deadline >= now
