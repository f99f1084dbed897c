"""Bodies of the OpenAI-compatible API (``/v1``): the subset of OpenAI's chat completions we serve.

Requests accept OpenAI's other fields (``temperature``, ``max_tokens``, ...) and ignore them: the
agent's configuration decides. Only text content is read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from itertools import takewhile
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatserver.api.openai_tools import ResponseFormatIn, ToolChoiceIn, ToolIn, turn_options
from chatserver.api.text import StoredText
from chatserver.domain import AgentConfig, NewMessage, ToolCall, TurnOptions, TurnUsage
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
    tools: list[ToolIn] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoiceIn | None = None
    response_format: ResponseFormatIn | None = None

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    def to_turn(self) -> RequestTurn:
        """The newest message (a user message) is the prompt; what precedes it is the context.

        Newest messages of role ``tool`` instead answer the client tools called before: then every
        message is context and there is no prompt. System and developer messages, wherever they
        are, become instructions appended after the agent's own system prompt; the rest is the
        history, tool calls paired with their results.
        """
        *earlier, last = self.messages
        at = f"messages.{len(earlier)}"
        names = _called_tools(self.messages)
        prompt: str | None = None
        if last.role == "tool":
            earlier = self.messages
        elif last.role != "user":
            raise InvalidInput("the last message must be a user or tool message", field=f"{at}.role")
        else:
            prompt = last.text()
            # The run service refuses a blank prompt too, but would name its own field, not the request's.
            if not prompt.strip():
                raise InvalidInput("the user message must not be empty", field=f"{at}.content")
        instructions = [m.text() for m in earlier if m.role in ("system", "developer")]
        history = [_history_message(m, names) for m in earlier if m.role not in ("system", "developer")]
        options = turn_options(self.tools, self.tool_choice, self.response_format, continues=prompt is None)
        if prompt is None:
            answering = len(self.messages) - len(list(takewhile(_is_tool, reversed(self.messages))))
            results = tuple(_history_message(m, names) for m in self.messages[answering:])
            options = replace(options, opening=results)
        joined = "\n\n".join(text for text in instructions if text) or None
        return RequestTurn(prompt, history, joined, options)


@dataclass(frozen=True, slots=True)
class RequestTurn:
    prompt: str | None
    """None: the turn answers the tool results its history ends with."""
    history: list[NewMessage]
    instructions: str | None
    options: TurnOptions


def _is_tool(message: MessageIn) -> bool:
    return message.role == "tool"


def _called_tools(messages: list[MessageIn]) -> dict[str, str]:
    """Tool call id -> tool name, of the assistant messages' calls; a tool message answering no
    earlier call is refused."""
    names: dict[str, str] = {}
    for index, message in enumerate(messages):
        if message.role == "assistant":
            names.update((call.id, call.function.name) for call in message.tool_calls or ())
        elif message.role == "tool" and not names:
            raise InvalidInput(
                "a tool message must follow an assistant message with tool_calls", field=f"messages.{index}"
            )
        elif message.role == "tool" and message.tool_call_id not in names:
            raise InvalidInput(
                f"tool_call_id '{message.tool_call_id}' answers no tool call of an earlier assistant message",
                field=f"messages.{index}.tool_call_id",
            )
    return names


def _history_message(message: MessageIn, names: dict[str, str]) -> NewMessage:
    """One earlier message in storage shape; ``names`` maps tool call ids to tool names."""
    if message.role == "user":
        return NewMessage("user", message.text())
    if message.role == "tool":
        call_id = message.tool_call_id or ""
        return NewMessage("tool", message.text(), tool_call_id=call_id, tool_name=names.get(call_id, ""))
    calls = tuple(_tool_call(call) for call in message.tool_calls or ())
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


class FunctionCallOut(BaseModel):
    name: str
    arguments: str
    """JSON text, as OpenAI sends it."""


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCallOut

    @classmethod
    def of(cls, call: dict[str, Any]) -> ToolCallOut:
        arguments = json.dumps(call.get("args") or {})
        return cls(id=str(call["id"]), function=FunctionCallOut(name=str(call["name"]), arguments=arguments))


FinishReason = Literal["stop", "tool_calls"]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: None = None
    tool_calls: list[ToolCallOut] | None = None


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason = "stop"
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
    delta: dict[str, Any]
    finish_reason: FinishReason | None = None
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
