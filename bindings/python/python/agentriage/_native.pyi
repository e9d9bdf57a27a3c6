"""Type stubs of the native half of agentriage (written by hand, checked by mypy.stubtest)."""

import os
from collections.abc import Iterable, Mapping
from typing import Any, Final, Optional, Union, final

from agentriage._outcome import Outcome

__all__ = [
    "BundleInfo",
    "Decision",
    "Engine",
    "MAX_DEPTH",
    "MAX_REQUEST_BYTES",
    "Obligation",
    "Reason",
    "__version__",
    "generate_signing_key",
    "verify_log",
]

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
    def from_bundle(path: Union[str, os.PathLike[str]]) -> Engine:
        """Loads and compiles the policy bundle in directory ``path``.

        Raises :class:`agentriage.BundleError` naming the file and line at fault.
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
    def reload(self, path: Union[str, os.PathLike[str]]) -> BundleInfo:
        """Loads the bundle in ``path`` and swaps it in atomically; returns the replaced bundle's info.

        Raises :class:`agentriage.BundleError`; the engine then keeps its bundle.
        """
    def metrics_text(self) -> str:
        """The engine's metrics in the Prometheus text exposition format."""
    def enable_decision_log(
        self,
        dir: Union[str, os.PathLike[str]],
        *,
        key: Optional[bytes] = None,
        mandatory: bool = False,
        flush_ms: int = 10,
        queue_capacity: int = 4096,
        checkpoint_every: int = 1000,
        max_segment_bytes: int = 67108864,
        salt: Optional[bytes] = None,
    ) -> None:
        """Logs every decision to a tamper-evident decision log in ``dir``.

        Raises :class:`agentriage.DecisionLogError`.
        """
    def close_decision_log(self) -> bool:
        """Writes a final signed checkpoint and stops logging; False when no log was enabled."""

def verify_log(files: Iterable[Union[str, os.PathLike[str]]], key: Optional[str] = None) -> dict[str, Any]:
    """Verifies decision log segment files, in order; returns the report as a dict."""

def generate_signing_key() -> tuple[bytes, str]:
    """A new Ed25519 checkpoint signing key: ``(pkcs8_der, public_key_hex)``."""
