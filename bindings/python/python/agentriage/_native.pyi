"""Type stubs of the native half of agentriage (written by hand, checked by mypy.stubtest)."""

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final, Optional, Union, final

from agentriage._outcome import Outcome

__all__ = ["BundleInfo", "Decision", "Engine", "MAX_DEPTH", "MAX_REQUEST_BYTES", "Obligation", "Reason", "__version__", "intent_keygen", "intent_sign", "intent_verify"]

__version__: Final[str]
MAX_DEPTH: Final[int]
MAX_REQUEST_BYTES: Final[int]

_Request = Union[Mapping[str, Any], str, bytes, bytearray]
"""A request: a dict (or any mapping) in the shape of the JSON contract, or JSON text."""

@final
class Reason:
    """Why: one policy (or engine rule) that fired."""

    @property
    def engine(self) -> str:
        """``rego``, ``cedar`` or ``agentriage``."""
    @property
    def policy(self) -> str:
        """The policy or rule id, e.g. ``R9.value_threshold``."""
    @property
    def message(self) -> str:
        """A message for the operator."""
    @property
    def effect(self) -> str:
        """``reject``, ``escalate`` or ``permit``."""
    def to_dict(self) -> dict[str, str]:
        """The reason as a plain dict."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Obligation:
    """Something the host must do along with the outcome."""

    @property
    def id(self) -> str:
        """What to do, e.g. ``notify-security``."""
    @property
    def engine(self) -> str:
        """Which engine produced it."""
    @property
    def policy(self) -> str:
        """The policy or rule that produced it."""
    @property
    def params(self) -> dict[str, Any]:
        """Further parameters given by the policy (a new dict on each access)."""
    def to_dict(self) -> dict[str, Any]:
        """The obligation as a plain dict."""
    def __eq__(self, value: object, /) -> bool: ...

@final
class BundleInfo:
    """Which bundle decided: name, revision and digest."""

    @property
    def name(self) -> str:
        """The bundle's name from its manifest."""
    @property
    def revision(self) -> str:
        """The bundle's revision from its manifest."""
    @property
    def digest(self) -> str:
        """``sha256:`` digest over the bundle's files."""
    def to_dict(self) -> dict[str, str]:
        """The bundle info as a plain dict."""
    def __eq__(self, value: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Decision:
    """The answer to a request."""

    @property
    def outcome(self) -> Outcome:
        """``Outcome.EXECUTE``, ``Outcome.REJECT`` or ``Outcome.ESCALATE`` (a ``str`` enum)."""
    @property
    def reasons(self) -> list[Reason]:
        """Every reason that fired: rejects, then escalations; for ``execute``, the permits."""
    @property
    def obligations(self) -> list[Obligation]:
        """What the host must do along with the outcome."""
    @property
    def trace_id(self) -> str:
        """The request's trace id, or a new one."""
    @property
    def decision_id(self) -> str:
        """A new, time-ordered id for this decision (UUID v7)."""
    @property
    def bundle(self) -> BundleInfo:
        """Which bundle decided."""
    @property
    def duration_us(self) -> int:
        """Time spent deciding, in microseconds."""
    @property
    def policy_ids(self) -> list[str]:
        """The policy ids of all reasons, in order."""
    def to_dict(self) -> dict[str, Any]:
        """The decision as a dict in the shape of the public JSON contract."""
    def to_json(self) -> str:
        """The decision as one line of JSON, for decision logs."""

@final
class Engine:
    """Decides requests against one policy bundle; share one across all threads."""

    @staticmethod
    def from_bundle(
        path: Union[str, os.PathLike[str]], *, replay_check: bool = True
    ) -> Engine:
        """Loads and compiles the policy bundle in directory ``path``.

        Raises :class:`agentriage.BundleError` naming the file and line at fault.
        ``replay_check=False`` turns off the replay check of signed intents:
        only for test suites that decide the same signed request many times.
        """
    def decide(self, request: _Request) -> Decision:
        """Decides one request (the GIL is released while policies run).

        Raises :class:`agentriage.InvalidRequestError` (with ``.kind`` and
        ``.path``) for a request that breaks the contract.
        """
    def decide_many(self, requests: Iterable[_Request]) -> list[Decision]:
        """Decides a batch of requests in one call; the decisions come back in order.

        The first invalid request raises :class:`agentriage.InvalidRequestError`
        whose ``.index`` names it.
        """
    @property
    def bundle(self) -> BundleInfo:
        """Name, revision and digest of the bundle."""

def intent_keygen(alg: str, kid: str, iss: str) -> tuple[str, str]: ...
def intent_sign(
    key_pem: str,
    alg: str,
    kid: str,
    iss: str,
    aud: list[str],
    act: str,
    res: str,
    purpose: str,
    iat: int,
    lifetime_s: int,
    jti: Optional[str] = None,
    nbf: Optional[int] = None,
    scope: list[str] = ...,
) -> str: ...
def intent_verify(
    token: str,
    keys_json: str,
    audience: str,
    principal: str,
    action: str,
    resource: Optional[str],
    time_unix_nanos: Optional[int],
    clock_skew_s: int,
    max_lifetime_s: int,
) -> str: ...
