"""What every guard shares: building the request, the refusals, the decorator."""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Optional, TypeVar, Union, cast

from agentriage._native import Decision, Engine
from agentriage._outcome import Outcome

F = TypeVar("F", bound=Callable[..., Any])

#: The caller's principal: a mapping, or a function returning one per call
#: (from a context variable, the framework's auth context, ...).
PrincipalSource = Union[Mapping[str, Any], Callable[[], Optional[Mapping[str, Any]]]]

#: The human who answers an escalation: ``approve(decision, arguments)``
#: returns ``True`` (run the tool) or anything else (refuse); it may be async.
Approver = Callable[[Decision, Mapping[str, Any]], Union[bool, Awaitable[bool]]]


def utc_now() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.timezone.utc)


def reasons_text(decision: Decision) -> str:
    """The reasons of a decision as one line: ``policy: message; ...``."""
    return "; ".join(f"{r.policy}: {r.message}" for r in decision.reasons) or "no reason given"


class PolicyRefusal(Exception):
    """The guarded call did not run; ``decision`` says why."""

    def __init__(self, decision: Decision, message: str) -> None:
        super().__init__(message)
        self.decision = decision


class PolicyRejected(PolicyRefusal):
    """The policies rejected the call."""


class ApprovalRequired(PolicyRefusal):
    """The policies escalated the call and no approver was given to ask."""


class ApprovalDenied(PolicyRefusal):
    """The policies escalated the call and the approver did not approve it."""


def refusal_for(decision: Decision, approved: Optional[bool] = None) -> PolicyRefusal:
    """The exception for a decision that does not run the call.

    ``approved`` is the approver's answer to an escalation (``None``: none
    was asked).
    """
    why = reasons_text(decision)
    if decision.outcome is Outcome.ESCALATE:
        if approved is None:
            return ApprovalRequired(decision, f"needs a human's approval: {why}")
        return ApprovalDenied(decision, f"a human did not approve: {why}")
    return PolicyRejected(decision, f"refused by policy: {why}")


class Guard:
    """Builds requests for one caller and decides them.

    ``principal`` is the caller (a mapping, or a function called for every
    request); ``context`` is merged under every request's own context;
    ``clock`` gives the request time (an aware ``datetime``).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        principal: Optional[PrincipalSource] = None,
        context: Optional[Mapping[str, Any]] = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.engine = engine
        self.principal = principal
        self.context = dict(context or {})
        self.clock = clock

    def request(
        self,
        action: str,
        *,
        resource: Optional[Mapping[str, Any]] = None,
        principal: Optional[Mapping[str, Any]] = None,
        context: Optional[Mapping[str, Any]] = None,
    ) -> dict[str, Any]:
        """The request for ``action``; a missing principal is left out, and
        the engine refuses the request (the call does not run)."""
        if principal is None:
            source = self.principal
            principal = source() if callable(source) else source
        request: dict[str, Any] = {"time": self.clock(), "action": {"name": action}}
        if principal is not None:
            request["principal"] = principal
        if resource is not None:
            request["resource"] = resource
        merged = {**self.context, **(context or {})}
        if merged:
            request["context"] = merged
        return request

    def decide(self, action: str, **parts: Any) -> Decision:
        """Decides ``action`` on the calling thread (see :meth:`request`)."""
        return self.engine.decide(self.request(action, **parts))

    async def decide_async(self, action: str, **parts: Any) -> Decision:
        """Decides ``action`` off the event loop (see :meth:`request`)."""
        return await self.engine.decide_async(self.request(action, **parts))


ResourceSource = Union[Mapping[str, Any], Callable[[Mapping[str, Any]], Optional[Mapping[str, Any]]]]


def _resource(source: Optional[ResourceSource], arguments: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    if callable(source):
        return source(arguments)
    return source


def _arguments(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def guard(
    engine: Engine,
    *,
    action: str,
    principal: PrincipalSource,
    resource: Optional[ResourceSource] = None,
    context: Optional[Mapping[str, Any]] = None,
    approve: Optional[Approver] = None,
    clock: Callable[[], dt.datetime] = utc_now,
) -> Callable[[F], F]:
    """Decorates a function (sync or async) so it runs only when allowed.

    Each call builds a request for ``action``: ``principal`` as for
    :class:`Guard`; ``resource`` a mapping or a function of the call's
    arguments (by name, defaults applied). ``execute`` runs the function;
    ``reject`` raises :class:`PolicyRejected`; ``escalate`` asks
    ``approve(decision, arguments)`` (sync or async) and runs the function
    only if it returns ``True``, else raises :class:`ApprovalDenied`
    (:class:`ApprovalRequired` when no approver is given). An async function
    is decided with ``Engine.decide_async``, off the event loop. The request
    errors of the engine propagate: the function does not run.
    """
    g = Guard(engine, principal=principal, context=context, clock=clock)

    def decorate(fn: F) -> F:
        signature = inspect.signature(fn)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                arguments = _arguments(signature, args, kwargs)
                decision = await g.decide_async(action, resource=_resource(resource, arguments))
                if decision.outcome is Outcome.EXECUTE:
                    return await fn(*args, **kwargs)
                if decision.outcome is Outcome.ESCALATE and approve is not None:
                    answer = approve(decision, arguments)
                    if inspect.isawaitable(answer):
                        answer = await answer
                    if answer is True:
                        return await fn(*args, **kwargs)
                    raise refusal_for(decision, approved=False)
                raise refusal_for(decision)

            return cast(F, guarded_async)

        @functools.wraps(fn)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            arguments = _arguments(signature, args, kwargs)
            decision = g.decide(action, resource=_resource(resource, arguments))
            if decision.outcome is Outcome.EXECUTE:
                return fn(*args, **kwargs)
            if decision.outcome is Outcome.ESCALATE and approve is not None:
                answer = approve(decision, arguments)
                if inspect.isawaitable(answer):
                    # A sync function cannot wait for an async approver: refuse.
                    close = getattr(answer, "close", None)
                    if callable(close):
                        close()
                    raise refusal_for(decision, approved=False)
                if answer is True:
                    return fn(*args, **kwargs)
                raise refusal_for(decision, approved=False)
            raise refusal_for(decision)

        return cast(F, guarded)

    return decorate
