package agentriage

import rego.v1

allow := true

# The threshold is policy data: change it without retraining the model.
escalate contains {"id": "anomaly.rego", "message": sprintf("anomaly score %v >= %v", [s, t])} if {
	s := input.facts.anomaly_score
	t := data.anomaly.escalate_at
	s >= t
}

# What Rego sees of the request's own anomaly field.
obligations contains {"id": "anomaly.seen", "score": input.anomaly.score} if input.anomaly.score
