# Class c: a negated call or membership on an undefined argument. OPA
# evaluates the reference outside the negation: the expression is undefined.
package agentriage

import rego.v1

ok if not is_string(input.context.x)

reject contains {"id": "C1.x_string_or_missing", "message": "x is a string or missing"} if not ok

blocked := {"mallory", "eve"}

known if not input.context.user in blocked

reject contains {"id": "C2.user_blocked_or_missing", "message": "user is blocked or missing"} if not known

is_admin(u) if u == "admin"

escalate contains {"id": "C3.not_admin", "message": "not an admin"} if not is_admin(input.context.user)

allow if true
