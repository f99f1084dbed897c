"""Bodies of the OpenAI-compatible API (``/v1``): the subset of OpenAI's chat completions we serve.

Requests accept OpenAI's other fields (``temperature``, ``max_tokens``, ...) and ignore them: the
agent's configuration decides. Only text content is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatserver.api.text import StoredText
from chatserver.domain import AgentConfig, NewMessage, ToolCall, TurnUsage
from chatserver.errors import InvalidInput
from chatserver.untrusted import UntrustedJsonError, parse_json


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ContentPart(Lenient):
    type: str
    text: StoredText | None = None


class FunctionCallIn(Lenient):
    name: StoredText
    arguments: StoredText = "{}"


class ToolCallIn(Lenient):
    id: StoredText
    type: str = "function"
    function: FunctionCallIn


class MessageIn(Lenient):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: StoredText | list[ContentPart] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: StoredText | None = None

    def text(self) -> str:
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        if any(part.type != "text" for part in self.content):
            raise InvalidInput("only text content is supported", field="messages")
        return "".join(part.text or "" for part in self.content)


class StreamOptions(Lenient):
    include_usage: bool = False


class ChatCompletionRequest(Lenient):
    model: StoredText = Field(min_length=1, max_length=64, description="An agent's name")
    messages: list[MessageIn] = Field(min_length=1, max_length=10_000)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Literal[1] | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def to_turn(self) -> RequestTurn:
        """The newest message (a user message) is the prompt; what precedes it is the context.

        System and developer messages, wherever they are, become instructions appended after the
        agent's own system prompt; the rest is the history, tool calls paired with their results.
        """
        *earlier, last = self.messages
        at = f"messages.{len(earlier)}"
        if last.role != "user":
            raise InvalidInput("the last message must be a user message", field=f"{at}.role")
        prompt = last.text()
        # The run service refuses a blank prompt too, but would name its own field, not the request's.
        if not prompt.strip():
            raise InvalidInput("the user message must not be empty", field=f"{at}.content")
        instructions = [m.text() for m in earlier if m.role in ("system", "developer")]
        names: dict[str, str] = {}
        history = [_history_message(m, names) for m in earlier if m.role not in ("system", "developer")]
        return RequestTurn(prompt, history, "\n\n".join(text for text in instructions if text) or None)


@dataclass(frozen=True, slots=True)
class RequestTurn:
    prompt: str
    history: list[NewMessage]
    instructions: str | None


def _history_message(message: MessageIn, names: dict[str, str]) -> NewMessage:
    """One earlier message in storage shape; ``names`` maps tool call ids to tool names as seen."""
    if message.role == "user":
        return NewMessage("user", message.text())
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        return NewMessage("tool", message.text(), tool_call_id=call_id, tool_name=names.get(call_id, ""))
    calls = tuple(_tool_call(call) for call in message.tool_calls or ())
    names.update((call.id, call.name) for call in calls)
    return NewMessage("assistant", message.text(), tool_calls=calls)


def _tool_call(call: ToolCallIn) -> ToolCall:
    try:
        args = parse_json(call.function.arguments or "{}")
    except UntrustedJsonError as error:
        raise InvalidInput(f"tool call arguments: {error.reason}", field="messages") from None
    except ValueError:
        args = None
    if not isinstance(args, dict):
        raise InvalidInput("tool call arguments must be a JSON object", field="messages")
    return ToolCall(id=call.id, name=call.function.name, args=args)


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    @classmethod
    def of(cls, usage: TurnUsage) -> UsageOut:
        total = usage.input_tokens + usage.output_tokens
        return cls(
            prompt_tokens=usage.input_tokens, completion_tokens=usage.output_tokens, total_tokens=total
        )


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: UsageOut
    system_fingerprint: None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: dict[str, str]
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: UsageOut | None = None
    system_fingerprint: None = None


class ModelOut(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "chatserver"

    @classmethod
    def of(cls, agent: AgentConfig) -> ModelOut:
        created = int(agent.created_at.timestamp()) if agent.created_at else 0
        return cls(id=agent.name, created=created)


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelOut]


def error_body(message: str, *, type_: str, code: str, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape (what ``api.errors`` answers on ``/v1`` too)."""
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}
