# Class f: numbers. Integers beyond 64 bits, binary floating point,
# to_number of non-plain numerals.
package agentriage

import rego.v1

reject contains {"id": "F1.amount_over_limit", "message": "amount over 2^63"} if {
	is_number(input.resource.attributes.amount)
	input.resource.attributes.amount > 9223372036854775807
}

reject contains {"id": "F2.exact_id", "message": "account 9007199254740993 is closed"} if {
	input.resource.attributes.account == 9007199254740993
}

escalate contains {"id": "F3.fee_sum", "message": "fees add to 0.3"} if {
	is_number(input.resource.attributes.fee)
	input.resource.attributes.fee + 0.2 == 0.3
}

escalate contains {"id": "F4.price_moved", "message": "price moved by more than 0.01"} if {
	is_number(input.resource.attributes.price)
	abs(input.resource.attributes.price - 500) > 0.01
}

reject contains {"id": "F5.parsed_quantity", "message": "quantity over 999"} if {
	is_string(input.resource.attributes.quantity)
	regex.match(`^[0-9_.e]+$`, input.resource.attributes.quantity)
	to_number(input.resource.attributes.quantity) > 999
}

# Precision of integers beyond 64 bits: 2^64 + 1 differs from 2^64.
escalate contains {"id": "F6.settled_differs", "message": "settled amount differs from the approved one"} if {
	is_number(input.resource.attributes.settled)
	input.resource.attributes.settled != 18446744073709551617
}

reject contains {"id": "F7.blocked_account", "message": "account 2^64 + 1 is blocked"} if {
	input.resource.attributes.settled == 18446744073709551617
}

allow if true
