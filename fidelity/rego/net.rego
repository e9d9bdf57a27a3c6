# Net: CIDR membership of addresses and of ranges. (regorus 0.14.1 has no
# `net.cidr_intersects`: a module calling it is refused at load.)
package agentriage

import rego.v1

internal := ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]

inside if {
	some cidr in internal
	net.cidr_contains(cidr, input.context.source_ip)
}

reject contains {"id": "N1.external_source", "message": sprintf("source %v is external", [input.context.source_ip])} if not inside

escalate contains {"id": "N2.wide_range", "message": "requested range lies in the core network"} if {
	net.cidr_contains("10.1.0.0/16", input.resource.attributes.range)
}

allow if inside
