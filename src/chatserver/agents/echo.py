"""``echo``: the deterministic built-in model for demos, tests and benchmarks (no network).

Commands (the current user message, i.e. the last user prompt the model sees):

* anything else          -> ``echo: <message>``
* ``/recall``            -> ``recall: `` + the earlier user messages in the context, oldest first,
                            joined by `` | `` (the current message excluded)
* ``/system``            -> the system prompt (instructions) received, exactly
* ``/tool NAME {json}``  -> calls tool NAME with those arguments (default ``{}``), then answers
                            ``tool NAME returned: <result>`` (strings unquoted, other values JSON;
                            a failed or rejected call answers ``tool NAME failed: <error>``).
                            A tool the agent does not have -> ``unknown tool: NAME``, no call.
                            NAME may be one of the caller's own tools (``/v1`` ``tools``): the
                            call is handed back to the caller, whose results the answer describes.
* ``/json TEXT``         -> answers TEXT exactly: how a test makes structured output (valid or not).
* ``tool_choice``        -> ``none``: no tool is called (``/tool`` answers ``unknown tool``);
                            ``required`` or a named function: a message that is no ``/tool``
                            command calls that function (``required``: the first tool) with ``{}``.
* ``/sleep MS <text>``   -> waits MS milliseconds (cancellable), then ``echo: <text>``;
                            MS is ASCII digits, at most 600000 (else the usage)
* ``/fail``              -> raises ``EchoProviderError`` (a ``ModelHTTPError``, like a provider's)

``latency_ms`` is added before every reply. Streaming sends the same reply word by word.

Built on pydantic-ai's ``FunctionModel`` rather than a bare ``Model`` subclass: it already
implements both request paths, streaming of text and tool-call deltas, usage estimates and hands
the function the rendered instructions and the agent's function tools, so the echo logic stays a
pure function of what the model sees.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_ai.exceptions import ModelHTTPError, ModelServerError
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, DeltaToolCall, DeltaToolCalls, FunctionModel

from chatserver.untrusted import UntrustedJsonError, ascii_int, parse_json

ECHO_MODEL_NAME = "echo"
MAX_SLEEP_MS = 600_000
_COMMAND = re.compile(r"^/(?P<name>[a-z]+)(?:\s+(?P<rest>.*))?$", re.DOTALL)
_TOKEN = re.compile(r"\s*\S+\s*|\s+")


class EchoProviderError(ModelHTTPError, ModelServerError):
    """What ``/fail`` raises: shaped like a real provider's HTTP 500 (an HTTP error and a server error)."""

    def __init__(self) -> None:
        super().__init__(500, ECHO_MODEL_NAME, body={"error": "echo model failure requested with /fail"})


@dataclass(frozen=True, slots=True)
class _Call:
    """The echo model decided to call a tool."""

    tool_name: str
    args: dict[str, Any]
    tool_call_id: str


def split_tokens(text: str) -> list[str]:
    """Word-by-word tokens (each word with its surrounding whitespace) whose concatenation is ``text``."""
    return _TOKEN.findall(text)


def prompt_text(part: UserPromptPart) -> str:
    if isinstance(part.content, str):
        return part.content
    return "".join(item for item in part.content if isinstance(item, str))


class EchoModel(FunctionModel):
    """The ``echo`` model. Stateless: one instance serves every agent and every concurrent run."""

    def __init__(self, *, latency_ms: int = 0) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must be >= 0")
        self.latency_ms = latency_ms
        super().__init__(self._respond, stream_function=self._stream, model_name=ECHO_MODEL_NAME)

    @property
    def system(self) -> str:
        return ECHO_MODEL_NAME

    async def _respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        reply = await self._reply(messages, info)
        if isinstance(reply, _Call):
            return ModelResponse(parts=[ToolCallPart(reply.tool_name, reply.args, reply.tool_call_id)])
        return ModelResponse(parts=[TextPart(reply)])

    async def _stream(
        self, messages: list[ModelMessage], info: AgentInfo
    ) -> AsyncIterator[str | DeltaToolCalls]:
        reply = await self._reply(messages, info)
        if isinstance(reply, _Call):
            delta = DeltaToolCall(reply.tool_name, json.dumps(reply.args), tool_call_id=reply.tool_call_id)
            yield {0: delta}
            return
        for token in split_tokens(reply):
            yield token

    async def _reply(self, messages: Sequence[ModelMessage], info: AgentInfo) -> str | _Call:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        returns = _tool_returns(messages)
        if returns:
            return "\n".join(_describe_return(part) for part in returns)
        prompts = _user_prompts(messages)
        current = prompts[-1] if prompts else ""
        forced = _forced_tool(info)
        if forced is not None and not current.strip().startswith("/tool"):
            return _Call(forced, {}, f"echo_{uuid.uuid4().hex}")
        return await _answer(current, prompts[:-1], info)


async def _answer(message: str, earlier: list[str], info: AgentInfo) -> str | _Call:
    match = _COMMAND.match(message.strip())
    if match is None:
        return f"echo: {message}"
    name, rest = match["name"], (match["rest"] or "").strip()
    if name == "recall":
        return "recall: " + " | ".join(earlier)
    if name == "system":
        return info.instructions or "(no system prompt)"
    if name == "tool":
        return _tool_command(rest, info)
    if name == "sleep":
        return await _sleep_command(rest)
    if name == "json":
        return rest
    if name == "fail":
        raise EchoProviderError()
    return f"echo: {message}"


def _tool_command(rest: str, info: AgentInfo) -> str | _Call:
    tool_name, raw_args = _split_first_word(rest)
    if not tool_name:
        return "usage: /tool NAME {json args}"
    if tool_name not in _callable(info):
        return f"unknown tool: {tool_name}"
    try:
        args = parse_json(raw_args) if raw_args.strip() else {}
    except UntrustedJsonError as exc:
        return f"invalid arguments for tool {tool_name}: {exc.reason}"
    except json.JSONDecodeError as exc:
        return f"invalid JSON arguments for tool {tool_name}: {exc.msg} at position {exc.pos}"
    if not isinstance(args, dict):
        return f"invalid arguments for tool {tool_name}: expected a JSON object, got {type(args).__name__}"
    return _Call(tool_name, args, f"echo_{uuid.uuid4().hex}")


async def _sleep_command(rest: str) -> str:
    raw_ms, text = _split_first_word(rest)
    ms = ascii_int(raw_ms, max_digits=len(str(MAX_SLEEP_MS)))
    if ms is None or ms > MAX_SLEEP_MS:
        return "usage: /sleep MS <text>"
    await asyncio.sleep(ms / 1000)
    return f"echo: {text}"


def _callable(info: AgentInfo) -> list[str]:
    """The tools this request lets the model call (``tool_choice`` as the framework states it)."""
    choice = (info.model_settings or {}).get("tool_choice")
    # The caller's own tools first: what ``required`` calls when it names none.
    tools = sorted(info.function_tools, key=lambda tool: tool.kind != "external")
    names = [tool.name for tool in tools]
    if choice == "none":
        return []
    if isinstance(choice, list):
        return [name for name in names if name in choice]
    return names


def _forced_tool(info: AgentInfo) -> str | None:
    """The tool a ``required`` or named ``tool_choice`` makes the model call, if any."""
    choice = (info.model_settings or {}).get("tool_choice")
    if choice != "required" and not isinstance(choice, list):
        return None
    names = _callable(info)
    return names[0] if names else None


def _split_first_word(text: str) -> tuple[str, str]:
    pieces = text.split(None, 1)
    if not pieces:
        return "", ""
    return pieces[0], pieces[1] if len(pieces) > 1 else ""


def _tool_returns(messages: Sequence[ModelMessage]) -> list[ToolReturnPart]:
    """The tool results this request answers (the last request, if it carries any)."""
    if not messages or not isinstance(messages[-1], ModelRequest):
        return []
    return [part for part in messages[-1].parts if isinstance(part, ToolReturnPart)]


def _describe_return(part: ToolReturnPart) -> str:
    verb = "returned" if part.outcome == "success" else "failed"
    return f"tool {part.tool_name} {verb}: {part.model_response_str()}"


def _user_prompts(messages: Sequence[ModelMessage]) -> list[str]:
    return [
        prompt_text(part)
        for message in messages
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, UserPromptPart)
    ]
