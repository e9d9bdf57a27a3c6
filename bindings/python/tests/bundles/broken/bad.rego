package agentriage

import rego.v1

allow if { input.x == }

reject contains "never"
