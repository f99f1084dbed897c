"""Requests of the OpenAI Responses API (``POST /v1/responses``), read as a turn.

The input (a string, or items: messages, ``function_call`` and ``function_call_output``) becomes
the messages the turn begins with; system and developer messages, and ``instructions``, are
appended to the agent's system prompt for this response only. Other fields of OpenAI's
(``temperature``, ``metadata``, ...) are accepted and ignored: the agent's configuration decides.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatserver.api.openai_tools import (
    TOOL_NAME_PATTERN,
    FunctionIn,
    JsonObjectFormat,
    JsonSchemaFormat,
    TextFormat,
    ToolIn,
    turn_options,
)
from chatserver.api.openai_tools import NamedToolChoice as ChatNamedChoice
from chatserver.api.text import StoredText
from chatserver.domain import NewMessage, ToolCall, TurnOptions
from chatserver.errors import InvalidInput
from chatserver.untrusted import parse_json


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class InputPart(Lenient):
    type: StoredText
    text: StoredText | None = None


class MessageItem(Lenient):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: StoredText | list[InputPart]

    def text(self, at: str) -> str:
        if isinstance(self.content, str):
            return self.content
        if any(part.type not in ("input_text", "output_text", "text") for part in self.content):
            raise InvalidInput("only text content is supported", field=f"{at}.content")
        return "".join(part.text or "" for part in self.content)


class FunctionCallItem(Lenient):
    type: Literal["function_call"]
    call_id: StoredText = Field(min_length=1, max_length=255)
    name: StoredText = Field(min_length=1, max_length=64)
    arguments: StoredText = "{}"


class FunctionCallOutputItem(Lenient):
    type: Literal["function_call_output"]
    call_id: StoredText = Field(min_length=1, max_length=255)
    output: StoredText | list[InputPart]

    def text(self) -> str:
        if isinstance(self.output, str):
            return self.output
        return "".join(part.text or "" for part in self.output)


InputItem = FunctionCallItem | FunctionCallOutputItem | MessageItem


class FunctionToolIn(Lenient):
    """The Responses API's function tool: the chat completions' one, flat."""

    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=10_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class NamedFunction(Lenient):
    type: Literal["function"]
    name: str = Field(pattern=TOOL_NAME_PATTERN)


class JsonSchemaText(Lenient):
    type: Literal["json_schema"]
    name: str = Field(default="response", pattern=TOOL_NAME_PATTERN)
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class TextConfig(Lenient):
    format: Annotated[TextFormat | JsonObjectFormat | JsonSchemaText, Field(discriminator="type")] | None = (
        None
    )


class ResponseRequest(Lenient):
    model: StoredText = Field(min_length=1, max_length=64, description="An agent's name")
    input: StoredText | list[InputItem] = Field(min_length=1)
    instructions: StoredText | None = None
    previous_response_id: StoredText | None = Field(default=None, max_length=80)
    store: bool = True
    stream: bool = False
    background: bool = False
    tools: list[FunctionToolIn] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | NamedFunction | None = None
    text: TextConfig | None = None

    def to_turn(self, called: dict[str, str]) -> ResponseTurn:
        """``called``: id -> name of the calls of the caller's tools the previous response made."""
        items: list[InputItem] = (
            [MessageItem(role="user", content=self.input)] if isinstance(self.input, str) else self.input
        )
        messages, instructions = _messages(items, called)
        if self.instructions:
            instructions.insert(0, self.instructions)
        if not any(m.role in ("user", "tool") for m in messages):
            raise InvalidInput("the input has no user message or function call output", field="input")
        joined = "\n\n".join(text for text in instructions if text) or None
        try:
            options = turn_options(
                [_chat_tool(tool) for tool in self.tools or ()],
                _chat_choice(self.tool_choice),
                _chat_format(self.text),
                continues=True,
            )
        except InvalidInput as error:
            raise InvalidInput(error.detail, field=responses_field(error.field)) from None
        return ResponseTurn(tuple(messages), joined, options, tuple(_jsonable(item) for item in items))


@dataclass(frozen=True, slots=True)
class ResponseTurn:
    messages: tuple[NewMessage, ...]
    instructions: str | None
    options: TurnOptions
    input_items: tuple[dict[str, Any], ...]

    @property
    def last_user_text(self) -> str:
        return next((m.content for m in reversed(self.messages) if m.role == "user"), "")


def _messages(items: list[InputItem], called: dict[str, str]) -> tuple[list[NewMessage], list[str]]:
    """The items as stored messages (consecutive calls on one assistant message), and the
    instructions among them; an output answering no call is refused."""
    messages: list[NewMessage] = []
    instructions: list[str] = []
    names = dict(called)
    for index, item in enumerate(items):
        at = f"input.{index}"
        if isinstance(item, MessageItem) and item.role in ("system", "developer"):
            instructions.append(item.text(at))
        elif isinstance(item, MessageItem):
            messages.append(NewMessage("user" if item.role == "user" else "assistant", item.text(at)))
        elif isinstance(item, FunctionCallItem):
            names[item.call_id] = item.name
            _add_call(messages, ToolCall(item.call_id, item.name, _arguments(item, at)))
        elif item.call_id not in names:
            raise InvalidInput(f"call_id '{item.call_id}' answers no function call", field=f"{at}.call_id")
        else:
            messages.append(
                NewMessage("tool", item.text(), tool_call_id=item.call_id, tool_name=names[item.call_id])
            )
    return messages, instructions


def _add_call(messages: list[NewMessage], call: ToolCall) -> None:
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        messages[-1] = NewMessage("assistant", last.content, tool_calls=(*last.tool_calls, call))
    else:
        messages.append(NewMessage("assistant", "", tool_calls=(call,)))


def _arguments(item: FunctionCallItem, at: str) -> dict[str, Any]:
    try:
        args = parse_json(item.arguments or "{}")
    except ValueError:
        raise InvalidInput("arguments must be JSON", field=f"{at}.arguments") from None
    if not isinstance(args, dict):
        raise InvalidInput("arguments must be a JSON object", field=f"{at}.arguments")
    return args


_FIELDS = (
    (re.compile(r"^tools\.(\d+)\.function\."), r"tools.\1."),
    (re.compile(r"^tool_choice\.function\."), "tool_choice."),
    (re.compile(r"^response_format\.json_schema"), "text.format"),
)


def responses_field(field: str | None) -> str | None:
    """A field of the chat completions' request named as the Responses API's request has it."""
    for pattern, replacement in _FIELDS:
        if field is not None:
            field = pattern.sub(replacement, field)
    return field


def _chat_tool(tool: FunctionToolIn) -> ToolIn:
    function = FunctionIn(
        name=tool.name, description=tool.description, parameters=tool.parameters, strict=tool.strict
    )
    return ToolIn(type="function", function=function)


def _chat_choice(
    choice: Literal["none", "auto", "required"] | NamedFunction | None,
) -> Literal["none", "auto", "required"] | ChatNamedChoice | None:
    if isinstance(choice, NamedFunction):
        return ChatNamedChoice.model_validate({"type": "function", "function": {"name": choice.name}})
    return choice


def _chat_format(text: TextConfig | None) -> Any:
    format_ = text.format if text else None
    if isinstance(format_, JsonSchemaText):
        schema = {"name": format_.name, "schema": format_.schema_, "strict": format_.strict}
        return JsonSchemaFormat.model_validate({"type": "json_schema", "json_schema": schema})
    return format_


def _jsonable(item: InputItem) -> dict[str, Any]:
    """The item as OpenAI lists input items: a message's text as content parts."""
    value: dict[str, Any] = json.loads(item.model_dump_json())
    if isinstance(item, MessageItem) and isinstance(item.content, str):
        kind = "output_text" if item.role == "assistant" else "input_text"
        value["content"] = [{"type": kind, "text": item.content}]
    return value
