package agentriage

import rego.v1

allow if {{{
