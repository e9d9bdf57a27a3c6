"""The A2A guard with the real `a2a-sdk`: DefaultRequestHandler, InMemoryTaskStore, message/send."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import agentriage
from conftest import require
from guard_support import CONTEXT, ESCALATED_BY, REJECTED_BY, clock, router, shipment

require("a2a")

from a2a.auth.user import User  # noqa: E402
from a2a.helpers.proto_helpers import new_task_from_user_message, new_text_part  # noqa: E402
from a2a.server.agent_execution import AgentExecutor  # noqa: E402
from a2a.server.context import ServerCallContext  # noqa: E402
from a2a.server.request_handlers import DefaultRequestHandler  # noqa: E402
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater  # noqa: E402
from a2a.types.a2a_pb2 import AgentCard, Message, Role, SendMessageRequest, Task, TaskState  # noqa: E402

from agentriage.guards.a2a import GuardedAgentExecutor  # noqa: E402

AGENTS = {"router": router()}


class Caller(User):
    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.name


class Reroute(AgentExecutor):
    """The agent's own logic: reroutes and completes the task."""

    def __init__(self) -> None:
        self.performed: list[str] = []

    async def execute(self, context: Any, event_queue: Any) -> None:
        task = context.current_task or new_task_from_user_message(context.message)
        if context.current_task is None:
            await event_queue.enqueue_event(task)
        self.performed.append(context.metadata["shipment_id"])
        updater = TaskUpdater(event_queue, task.id, task.context_id)
        await updater.complete(updater.new_agent_message([new_text_part("rerouted")]))

    async def cancel(self, context: Any, event_queue: Any) -> None:
        raise NotImplementedError


def send(executor: Any, shipment_id: str, user: User) -> Task:
    async def main() -> Any:
        handler = DefaultRequestHandler(executor, InMemoryTaskStore(), AgentCard(name="logistics"))
        message = Message(role=Role.ROLE_USER, message_id=str(uuid.uuid4()), parts=[new_text_part(f"reroute {shipment_id}")])
        request = SendMessageRequest(message=message)
        request.metadata.update({"shipment_id": shipment_id})
        return await handler.on_message_send(request, ServerCallContext(user=user))

    result = asyncio.run(main())
    assert isinstance(result, Task), result
    return result


def guarded(engine: agentriage.Engine, seen: list[agentriage.Decision]) -> tuple[GuardedAgentExecutor, Reroute]:
    inner = Reroute()
    executor = GuardedAgentExecutor(
        inner,
        engine,
        action="shipment.reroute",
        resource=lambda ctx: shipment(ctx.metadata),
        principal=lambda ctx: AGENTS.get(ctx.call_context.user.user_name),
        context=CONTEXT,
        clock=clock,
        on_decision=lambda ctx, d: seen.append(d),
    )
    return executor, inner


def status_text(task: Task) -> str:
    return " ".join(p.text for p in task.status.message.parts)


def test_the_guarded_executor_is_an_agent_executor(engine: agentriage.Engine) -> None:
    executor, _ = guarded(engine, [])
    assert isinstance(executor, AgentExecutor)


def test_execute_runs_the_agent(engine: agentriage.Engine) -> None:
    seen: list[agentriage.Decision] = []
    executor, inner = guarded(engine, seen)
    task = send(executor, "SH-1001", Caller("router"))
    assert task.status.state == TaskState.TASK_STATE_COMPLETED
    assert inner.performed == ["SH-1001"]
    assert [d.outcome.value for d in seen] == ["execute"]


def test_escalate_asks_for_input_and_the_agent_does_not_run(engine: agentriage.Engine) -> None:
    seen: list[agentriage.Decision] = []
    executor, inner = guarded(engine, seen)
    task = send(executor, "SH-1002", Caller("router"))
    assert task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    assert ESCALATED_BY[0] in status_text(task)
    assert inner.performed == []


def test_reject_rejects_the_task(engine: agentriage.Engine) -> None:
    inner = Reroute()
    executor = GuardedAgentExecutor(
        inner, engine, action="payment.release",
        resource={"type": "invoice", "id": "INV-88", "attributes": {"amount_usd": 5_000}},
        principal=lambda ctx: AGENTS.get(ctx.call_context.user.user_name), context=CONTEXT, clock=clock,
    )
    task = send(executor, "SH-1001", Caller("router"))
    assert task.status.state == TaskState.TASK_STATE_REJECTED
    assert all(p in status_text(task) for p in REJECTED_BY)
    assert inner.performed == []


def test_an_unknown_or_unauthenticated_caller_does_not_run_the_agent(engine: agentriage.Engine) -> None:
    from a2a.auth.user import UnauthenticatedUser

    for user in (Caller("stranger"), UnauthenticatedUser()):
        seen: list[agentriage.Decision] = []
        executor, inner = guarded(engine, seen)
        task = send(executor, "SH-1001", user)
        assert task.status.state == TaskState.TASK_STATE_REJECTED
        assert "no principal" in status_text(task)
        assert inner.performed == [] and seen == []
