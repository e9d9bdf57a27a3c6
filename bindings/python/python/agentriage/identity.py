"""Build a request's ``principal`` from what agents carry.

Each function reads an identity the host has **already verified** and
returns a ``principal`` dict in the shape of the request contract::

    from agentriage import identity

    # claims of an access token your OAuth library verified (RFC 8693 `act`:
    # the payments agent acts for alice)
    principal = identity.from_token_claims(claims)
    decision = engine.decide({"principal": principal,
                              "action": {"name": "payment.release"}, ...})

Nothing here checks a signature, an audience or a certificate chain: that
stays with the host (its OAuth / SPIFFE library, its TLS stack, its MCP
server's token verifier). The id returned must be the id the bundle knows
the agent by; map it before deciding when they differ (docs/identity.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Optional, Union

from agentriage import _native
from agentriage._errors import Error

__all__ = [
    "IdentityError",
    "from_mcp_auth_info",
    "from_token_claims",
    "from_user_token_claims",
    "from_x509_svid",
]


class IdentityError(Error, ValueError):
    """An identity a helper cannot turn into a principal.

    Attributes:
        kind: ``missing``, ``type``, ``value`` or ``certificate``.
        field: the claim or field that was wrong, e.g. ``act.sub``.
        message: what is wrong, without the field.
    """

    kind: str
    field: str
    message: str

    def __init__(self, message: str, *, kind: str, field: str) -> None:
        self.kind = kind
        self.field = field
        self.message = message
        super().__init__(f"invalid identity at `{field}`: {message}")


def _answer(text: str) -> dict[str, Any]:
    answer = json.loads(text)
    error: Optional[dict[str, str]] = answer.get("error")
    if error is not None:
        raise IdentityError(error["message"], kind=error["kind"], field=error["field"])
    principal: dict[str, Any] = answer["principal"]
    return principal


def _json(value: Any, what: str) -> str:
    if hasattr(value, "model_dump") and callable(value.model_dump):
        value = value.model_dump(mode="json")
    if not isinstance(value, Mapping):
        raise IdentityError(f"expected a mapping, got {type(value).__name__}", kind="type", field="$")
    try:
        return json.dumps(dict(value), allow_nan=False, default=str)
    except (TypeError, ValueError) as e:
        raise IdentityError(f"{what} is not JSON: {e}", kind="type", field="$") from e


def from_token_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A principal from verified JWT / OAuth access-token claims.

    Without ``act``, ``sub`` is the agent. With an RFC 8693 ``act`` claim,
    ``act.sub`` is the agent acting for ``sub`` (``on_behalf_of``, a user),
    and nested actors become ``delegation``, nearest first. ``iss`` and
    ``exp`` become the credential; ``scope``/``scp`` and ``roles`` belong to
    the subject when there is one, else to the agent.
    """
    return _answer(_native.identity_principal("token", _json(claims, "claims")))


def from_user_token_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """A principal from a verified user-delegated token: the OAuth client
    (``client_id``, else ``azp``) is the agent acting for the user ``sub``."""
    return _answer(_native.identity_principal("user_token", _json(claims, "claims")))


def from_mcp_auth_info(auth_info: Any) -> dict[str, Any]:
    """A principal from MCP ``authInfo`` (a dict with ``clientId``/``client_id``,
    ``scopes``, ``expiresAt``/``expires_at``, ``extra``; or the Python SDK's
    ``AccessToken``). ``extra.sub``, when set, is the user the client acts
    for. The bearer token is never copied."""
    return _answer(_native.identity_principal("mcp", _json(auth_info, "authInfo")))


def from_x509_svid(certificate: Union[str, bytes]) -> dict[str, Any]:
    """A principal from a verified X.509-SVID, PEM text or DER bytes: the
    SPIFFE ID of its one URI SAN and its ``notAfter`` as credential expiry."""
    data = certificate.encode() if isinstance(certificate, str) else bytes(certificate)
    return _answer(_native.identity_svid_principal(data))
