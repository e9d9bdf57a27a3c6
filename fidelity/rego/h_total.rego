# Class h: an undefined element of a comprehension must not hide a total.
package agentriage

import rego.v1

price(li) := li.unit_price if is_number(li.unit_price)

total := sum([price(li) | some li in input.resource.attributes.items])

over_limit if total > 100

allow if not over_limit
