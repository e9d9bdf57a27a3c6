# Regular expressions and globs.
package agentriage

import rego.v1

reject contains {"id": "X1.bad_sku", "message": sprintf("sku %v is malformed", [input.resource.attributes.sku])} if {
	not regex.match(`^[A-Z]{3}-[0-9]{4}$`, input.resource.attributes.sku)
}

escalate contains {"id": "X2.partner_host", "message": "partner host"} if {
	glob.match("*.partner.example", ["."], input.context.host)
}

reject contains {"id": "X3.any_internal", "message": "internal host path"} if {
	glob.match("internal.**", ["."], input.context.host)
}

escalate contains {"id": "X4.order_ref", "message": "order reference found"} if {
	regex.find_n(`ORD[0-9]+`, input.context.memo, -1) != []
}

allow if true
