"""Type stubs of the native half of agentriage (written by hand, checked by mypy.stubtest)."""

import os
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any, Final, Optional, Union, final

import numpy as np
import numpy.typing as npt

from agentriage._outcome import Outcome

__all__ = [
    "BundleInfo",
    "Decision",
    "Engine",
    "IsolationForest",
    "MAX_DEPTH",
    "MAX_REQUEST_BYTES",
    "Obligation",
    "Pending",
    "Reason",
    "__version__",
    "approval_digest",
    "approval_sign",
    "generate_signing_key",
    "identity_principal",
    "identity_svid_principal",
    "intent_keygen",
    "intent_sign",
    "intent_verify",
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
    def approval_request(self) -> dict[str, Any] | None:
        """For an escalation an approval can settle: what the approver needs."""
    @property
    def approval(self) -> dict[str, Any] | None:
        """The approval the request carried, and what became of it."""
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
        path: Union[str, os.PathLike[str]],
        *,
        trusted_keys: Optional[Iterable[Union[str, bytes, os.PathLike[str]]]] = None,
        replay_check: bool = True,
        state: Optional[str] = None,
    ) -> Engine:
        """Loads and compiles the policy bundle in directory ``path``.

        Raises :class:`agentriage.BundleError` naming the file and line at fault.

        ``trusted_keys`` (Ed25519 public keys: PEM text, or a path to a PEM
        file) makes the engine require a signed bundle, now and on every
        ``reload``: an unsigned or altered bundle raises
        :class:`agentriage.BundleError` with ``kind == "signature"``; a key
        that does not parse raises ``ValueError``.

        ``replay_check=False`` turns off the replay check of signed intents:
        only for test suites that decide the same signed request many times.

        ``state`` names where used intents and approvals and quota counters
        are kept: ``"memory"`` (default, this process only),
        ``"memory:CAPACITY"``, or ``"redis://[user:password@]host:port/db"``
        (query options ``namespace``, ``timeout_ms``, ``pool``) to share them
        with every engine and process using that Redis. A URL that does not
        parse raises ``ValueError``; while the store cannot answer, decisions
        that need it fail closed.
        """
    @property
    def requires_signature(self) -> bool:
        """Whether every bundle this engine loads must be signed by a trusted key."""
    @staticmethod
    def from_source(
        source: str,
        *,
        trusted_keys: Optional[Iterable[Union[str, bytes, os.PathLike[str]]]] = None,
        interval_seconds: float = 30.0,
        timeout_seconds: float = 30.0,
        max_bytes: int = ...,
        bearer_token: Optional[str] = None,
        cache: Optional[Union[str, os.PathLike[str]]] = None,
        start_from_cache: bool = False,
        startup_timeout_seconds: float = 60.0,
        ca_file: Optional[Union[str, os.PathLike[str]]] = None,
    ) -> Engine:
        """Loads the bundle at ``source`` and keeps following it.

        ``source`` is an ``http(s)://`` URL of a bundle archive, an
        ``oci://HOST/REPOSITORY:TAG`` (or ``@sha256:...``) reference, or a
        directory or archive path (watched). Updates load in the background
        and swap in atomically; a broken or unsigned update is refused and
        the live bundle stays. Raises :class:`agentriage.BundleError` when the
        bundle arrived but does not load, ``ConnectionError`` when none
        arrived in time, ``ValueError`` for a source not understood.
        ``cache`` keeps the last good bundle and its ``ETag`` (a restart from
        it costs a ``304``); ``ca_file`` (PEM) makes ``https://`` trust only
        those certificate authorities instead of the Mozilla roots.
        """
    def bundle_status(self) -> dict[str, Any]:
        """The live bundle and its delivery: ``name``, ``revision``, ``digest``,
        ``source``, ``last_success_unix``, ``last_failure_unix``, ``last_error``,
        ``failures``, ``updates``."""
    def stop_following(self) -> None:
        """Stops following the source given to ``from_source``; the engine keeps its bundle."""
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
    def decide_async(self, request: _Request) -> Coroutine[Any, Any, Decision]:
        """``decide`` for asyncio: ``await engine.decide_async(request)``.

        The decision runs on the event loop's default executor without the
        GIL; the loop is never blocked. Cancelling the await abandons the
        decision (its result is dropped).
        """
    def decide_many_async(self, requests: Iterable[_Request]) -> Coroutine[Any, Any, list[Decision]]:
        """``decide_many`` for asyncio: the batch is decided on one executor thread."""
    def _prepare(self, request: _Request) -> Pending: ...
    def _prepare_many(self, requests: Iterable[_Request]) -> Pending: ...
    @property
    def bundle(self) -> BundleInfo:
        """Name, revision and digest of the bundle."""
    def reload(self, path: Union[str, os.PathLike[str]]) -> BundleInfo:
        """Loads the bundle in ``path`` and swaps it in atomically; returns the replaced bundle's info.

        An engine made with ``trusted_keys`` loads only a bundle one of them
        signed. Raises :class:`agentriage.BundleError`; the engine then keeps
        its bundle.
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
        """Writes a final signed checkpoint and stops logging; False when no open log was enabled.

        A mandatory log stays attached, closed: every later decision, on
        any thread, is a reject with reason ``decision-log``.
        """

@final
class Pending:
    """A request (or batch) converted by ``decide_async``, waiting to be decided on a worker thread."""

    def run(self) -> Any:
        """Decides without the GIL: a ``Decision``, or a list of them for a batch."""

@final
class IsolationForest:
    """An Isolation Forest that scores exactly as scikit-learn's (see ``agentriage.anomaly``)."""

    @staticmethod
    def from_json(text: str) -> IsolationForest:
        """Loads a model from JSON text; raises ``agentriage.anomaly.ModelError``."""
    @staticmethod
    def load(path: Union[str, os.PathLike[str]]) -> IsolationForest:
        """Loads a model file; raises ``agentriage.anomaly.ModelError``."""
    @staticmethod
    def train(
        x: npt.NDArray[np.float64],
        feature_names: Optional[list[str]] = None,
        n_estimators: int = 100,
        max_samples: Union[str, int, float, None] = None,
        contamination: Union[str, float, None] = None,
        max_features: Union[int, float, None] = None,
        seed: int = 0,
        parallel: bool = True,
    ) -> IsolationForest:
        """Trains a model on a float64 2-d array."""
    def to_json(self) -> str:
        """The model as JSON text."""
    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """Writes the model to a file."""
    @property
    def features(self) -> list[str]:
        """The feature names, in column order."""
    @property
    def n_estimators(self) -> int:
        """The number of trees."""
    @property
    def max_samples(self) -> int:
        """Samples per tree."""
    @property
    def offset(self) -> float:
        """scikit-learn's ``offset_``."""
    @property
    def score_threshold(self) -> float:
        """The anomaly score above which ``predict`` says outlier."""
    @property
    def contamination(self) -> Union[str, float, None]:
        """``'auto'``, a fraction, or None when unknown."""
    def score(self, row: Union[Sequence[float], npt.NDArray[np.float64]]) -> float:
        """The anomaly score of one event, in (0, 1]."""
    def score_named(self, features: dict[str, float]) -> float:
        """The anomaly score of one event given by feature name."""
    def scores(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Anomaly scores in (0, 1] of a batch."""
    def score_samples(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """scikit-learn's ``score_samples``."""
    def decision_function(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """scikit-learn's ``decision_function``."""
    def predict(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """scikit-learn's ``predict``."""
    def filter(
        self, x: npt.NDArray[np.float64], threshold: float
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Rows scoring at least ``threshold``: (row indices, their scores)."""
def approval_digest(request_json: str, context_fields: list[str]) -> str: ...
def approval_sign(
    key_pem: str,
    alg: str,
    kid: str,
    iss: str,
    aud: str,
    action_digest: str,
    reasons: list[str],
    iat: int,
    lifetime_s: int,
    jti: Optional[str] = None,
    decision_id: Optional[str] = None,
    request_exp: Optional[int] = None,
) -> str: ...
def identity_principal(source: str, input_json: str) -> str: ...
def identity_svid_principal(certificate: bytes) -> str: ...
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

def verify_log(
    files: Iterable[Union[str, os.PathLike[str]]],
    key: Optional[str] = None,
    *,
    allow_unsigned_tail: bool = False,
) -> dict[str, Any]:
    """Verifies decision log segment files, in order; returns the report as a dict.

    ``intact`` is True only when the chain verifies and every record is
    covered by a checkpoint signed with ``key`` (with
    ``allow_unsigned_tail``, all but the records after the last one):
    without a key it is always False and ``integrity`` is ``"unproven"``.
    """

def generate_signing_key() -> tuple[bytes, str]:
    """A new Ed25519 checkpoint signing key: ``(pkcs8_der, public_key_hex)``."""
