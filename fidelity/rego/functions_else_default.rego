# Functions, `else` chains and `default`.
package agentriage

import rego.v1

default risk := "low"

risk := "high" if input.resource.attributes.score >= 80
else := "medium" if input.resource.attributes.score >= 50

limit_for(region) := 100 if region == "eu"
else := 50 if region == "us"
else := 10

default over := false

over if input.resource.attributes.amount > limit_for(input.context.region)

reject contains {"id": "L1.high_risk", "message": "high risk"} if risk == "high"

escalate contains {"id": "L2.medium_risk", "message": "medium risk"} if risk == "medium"

escalate contains {"id": "L3.over_limit", "message": sprintf("amount over the %v limit", [input.context.region])} if over

allow if risk == "low"

allow if {
	risk == "medium"
	input.context.reviewed == true
}
