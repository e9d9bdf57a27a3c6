"""agentriage: the policy decision point that AI agents embed.

Load a policy bundle once, then ask, from any thread, whether an agent may
take an action::

    import agentriage

    engine = agentriage.Engine.from_bundle("policies/a2a-supply-chain")
    decision = engine.decide({
        "principal": {"id": "spiffe://acme.example/ns/analytics/sa/reporter"},
        "action": {"name": "shipment.read"},
    })
    if decision.outcome == agentriage.Outcome.ESCALATE:
        ...  # pause for a human

Deciding releases the GIL; one :class:`Engine` serves every thread.
"""

from agentriage._errors import (
    BundleError,
    DecisionLogError,
    Error,
    InternalError,
    InvalidRequestError,
)
from agentriage._native import (
    MAX_DEPTH,
    MAX_REQUEST_BYTES,
    BundleInfo,
    Decision,
    Engine,
    Obligation,
    Reason,
    __version__,
    generate_signing_key,
    verify_log,
)
from agentriage._outcome import Outcome
from agentriage import approval, intent

__all__ = [
    "MAX_DEPTH",
    "MAX_REQUEST_BYTES",
    "BundleError",
    "BundleInfo",
    "Decision",
    "DecisionLogError",
    "Engine",
    "Error",
    "InternalError",
    "InvalidRequestError",
    "Obligation",
    "Outcome",
    "Reason",
    "__version__",
    "approval",
    "intent",
    "generate_signing_key",
    "verify_log",
]
