"""What a caller may ask of one turn beyond its message: its own tools, and the shape of the answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from chatserver.domain.models import NewMessage

ToolChoice = Literal["none", "auto", "required"] | tuple[Literal["function"], str]
"""``("function", NAME)``: the model must call that tool."""


@dataclass(frozen=True, slots=True)
class ClientTool:
    """A tool the caller runs: the model may call it, and the run hands the call back."""

    name: str
    parameters: dict[str, Any]
    """A JSON Schema (checked when the request is read)."""
    description: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """The answer must be JSON: any object (``json_object``) or valid against ``schema``."""

    kind: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str = "response"
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class TurnOptions:
    client_tools: tuple[ClientTool, ...] = ()
    tool_choice: ToolChoice = "auto"
    output: OutputFormat | None = None
    continues: bool = False
    """The turn has no new user message: it answers the client tools' results at the end of its
    context."""
    opening: tuple[NewMessage, ...] = ()
    """Of a chat's turn that continues: the messages it begins with, stored before the model runs
    (tool results answering the previous turn's calls, or a Responses API request's input)."""
    instructions: str | None = None
    """Of a chat's turn: appended to the agent's system prompt for this turn only."""
    input_items: tuple[dict[str, Any], ...] = ()
    """The request's input as the caller sent it, kept with the run's answer (Responses API)."""

    @property
    def empty(self) -> bool:
        return self == NO_OPTIONS


NO_OPTIONS = TurnOptions()
