# Runtime trust: credential lifetime, attestation, time of day.
package agentriage

import rego.v1

risk := input.facts.risk_class

# R4: an expired credential (expires_at <= evaluation time) is refused.
reject contains {
	"id": "R4.credential_expired",
	"message": sprintf("credential expired %v s ago", [0 - input.facts.credential_ttl_s]),
} if input.facts.credential_ttl_s <= 0

# R5: attestation. A status other than `verified` (e.g. `failed`) ...
attestation_status := input.principal.attestation.status

attestation_bad if {
	attestation_status
	attestation_status != "verified"
}

reject contains {
	"id": "R5.attestation_not_verified",
	"message": sprintf("attestation status is %s; %s actions are refused", [attestation_status, risk]),
} if {
	attestation_bad
	risk in {"transactional", "regulated"}
}

escalate contains {
	"id": "R5.attestation_not_verified",
	"message": sprintf("attestation status is %s", [attestation_status]),
} if {
	attestation_bad
	risk in {"read_only", "advisory"}
}

# ... an attestation that is absent (or has no status) ...
attestation_absent := "no attestation" if not input.principal.attestation

attestation_absent := "attestation has no status" if {
	input.principal.attestation
	not attestation_status
}

reject contains {
	"id": "R5.attestation_missing",
	"message": sprintf("%s; regulated actions are refused", [attestation_absent]),
} if {
	attestation_absent
	risk == "regulated"
}

escalate contains {
	"id": "R5.attestation_missing",
	"message": sprintf("%s; transactional actions need a human", [attestation_absent]),
} if {
	attestation_absent
	risk == "transactional"
}

# ... and a verified attestation that is undated or stale.
attestation_weak := "verified attestation has no verified_at" if {
	attestation_status == "verified"
	not input.facts.attestation_age_s
}

attestation_weak := sprintf("attestation is %v s old, more than %v s", [
	input.facts.attestation_age_s,
	data.pack.attestation_max_age_s,
]) if {
	attestation_status == "verified"
	input.facts.attestation_age_s > data.pack.attestation_max_age_s
}

reject contains {
	"id": "R5.attestation_stale",
	"message": sprintf("%s; regulated actions are refused", [attestation_weak]),
} if {
	attestation_weak
	risk == "regulated"
}

escalate contains {
	"id": "R5.attestation_stale",
	"message": sprintf("%s; transactional actions need a human", [attestation_weak]),
} if {
	attestation_weak
	risk == "transactional"
}

# R13: regulated actions outside business hours (UTC) need a human.
escalate contains {
	"id": "R13.outside_business_hours",
	"message": sprintf("regulated action at %s, outside %02d:00-%02d:00 UTC", [
		input.facts.time,
		data.pack.regulated_hours_utc.from,
		data.pack.regulated_hours_utc.until,
	]),
} if {
	risk == "regulated"
	not business_hours
}

business_hours if {
	input.facts.hour_utc >= data.pack.regulated_hours_utc.from
	input.facts.hour_utc < data.pack.regulated_hours_utc.until
}
