# `every` and `some … in` over arrays and objects.
package agentriage

import rego.v1

allow if {
	count(input.context.approvals) >= 2
	every a in input.context.approvals {
		a.status == "approved"
	}
}

reject contains {"id": "S1.revoked", "message": sprintf("approval by %v was revoked", [a.by])} if {
	some a in input.context.approvals
	a.status == "revoked"
}

escalate contains {"id": "S2.self_approved", "message": "an approver approved their own request"} if {
	some i, a in input.context.approvals
	a.by == input.principal.id
	i >= 0
}

escalate contains {"id": "S3.flagged_label", "message": sprintf("label %v is flagged", [k])} if {
	some k, v in input.resource.attributes.labels
	v == "flagged"
}
