"""The three outcomes of a decision."""

from enum import Enum


class Outcome(str, Enum):
    """What the agent may do: a ``str`` enum, so ``outcome == "reject"`` holds."""

    EXECUTE = "execute"
    """The action may run automatically."""
    ESCALATE = "escalate"
    """A human must decide."""
    REJECT = "reject"
    """The action is blocked."""

    def __str__(self) -> str:
        return self.value
