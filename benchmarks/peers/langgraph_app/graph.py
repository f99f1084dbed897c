"""The LangGraph graph the benchmark serves: runs inside LangGraph's own virtualenv.

A prebuilt ReAct agent with one tool and a fake chat model that answers like chatserver's
``echo`` model, the model's input trimmed to the last 100 messages (50 exchanges) in a
pre-model hook (plus the newest). ``LANGGRAPH_BENCH_LATENCY_MS`` is slept before every reply.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage, trim_messages
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.prebuilt import create_react_agent

HISTORY_MESSAGES = 100


@tool
def word_count(text: str) -> int:
    """How many words the text has."""
    return len(text.split())


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(item for item in content if isinstance(item, str))


def reply(messages: Sequence[BaseMessage]) -> AIMessage:
    """chatserver's ``echo`` rules: ``echo: <newest human message>``; ``/recall`` lists the earlier
    human messages the model sees; ``/tool NAME {json}`` calls a tool, then describes its result."""
    if messages and isinstance(messages[-1], ToolMessage):
        last = messages[-1]
        return AIMessage(content=f"tool {last.name} returned: {_text(last)}")
    prompts = [_text(m) for m in messages if isinstance(m, HumanMessage)]
    current = prompts[-1] if prompts else ""
    if current == "/recall":
        return AIMessage(content="recall: " + " | ".join(prompts[:-1]))
    if current.startswith("/tool "):
        name, _, raw = current[len("/tool ") :].partition(" ")
        call = {"name": name, "args": json.loads(raw or "{}"), "id": f"echo_{uuid.uuid4().hex}"}
        return AIMessage(content="", tool_calls=[call])
    return AIMessage(content=f"echo: {current}")


class EchoChatModel(BaseChatModel):
    """A fake chat model (no provider, no network) that can be bound to tools."""

    latency_ms: int = 0

    @property
    def _llm_type(self) -> str:
        return "echo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        # The tools are LangGraph's to run; the model only needs to accept them.
        return self.bind(tools=[getattr(t, "name", str(t)) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=reply(messages))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return ChatResult(generations=[ChatGeneration(message=reply(messages))])


def window(state: dict[str, Any]) -> dict[str, Any]:
    """The model sees the newest message and the 100 before it (50 exchanges), starting on a human
    message; the thread's state keeps them all."""
    trimmed = trim_messages(
        state["messages"],
        strategy="last",
        token_counter=len,
        max_tokens=HISTORY_MESSAGES + 1,
        start_on="human",
        include_system=True,
    )
    return {"llm_input_messages": trimmed}


graph = create_react_agent(
    EchoChatModel(latency_ms=int(os.environ.get("LANGGRAPH_BENCH_LATENCY_MS", "0"))),
    tools=[word_count],
    pre_model_hook=window,
)
