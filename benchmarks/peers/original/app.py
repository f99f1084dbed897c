"""The original server, re-created for the side-by-side benchmark (issue 23): chatserver's predecessor.

It does per turn what the original did (shared/seed: "Services Extraction"), with the libraries it
used, at versions that install today (requirements.txt beside this file):

* FastAPI under uvicorn (uvloop, httptools); a JWT verified with HS256 (PyJWT here, python-jose there).
* A psycopg ``AsyncConnectionPool`` sized as the original's (``min_size=2, max_size=10``, with
  ``check_connection`` on every checkout). A route dependency takes one connection and holds it for
  the whole request, through the model call, as the original's ``get_db_connection`` did.
* LangChain's ``AgentExecutor`` (``langchain-classic``) over a tool-calling agent with one tool,
  cached per (user, agent name) in a dict; a miss reads the agent from the ``agents`` table.
* History: ``langchain-postgres``'s ``PostgresChatMessageHistory`` on the held connection, wrapped in
  the original's ``AsyncConversationBufferWindowMemory`` (``k=50``: the last 100 messages), set on the
  cached executor for this request. LangChain reads every message of the chat and keeps the window.
* A chat session instance row upserted per turn (the original's web client did this through Supabase;
  here the server does it, so the turn's database work is all in the measured server), and the
  background tasks that deactivate stale instances and evict executors with no active instance.
* One INFO log line per turn with the answer, plus uvicorn's access line.

The model answers like chatserver's ``echo``: ``echo: <message>`` after ``ECHO_LATENCY_MS``.
Runs only in its own virtualenv (``python -m benchmarks.peers`` makes it); nothing here is imported
by the project.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import jwt
import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request, status
from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
from langchain_classic.memory import ConversationBufferWindowMemory
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, get_buffer_string
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_postgres import PostgresChatMessageHistory
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
logger = logging.getLogger("chatServer")

DATABASE_URL = os.environ["DATABASE_URL"]
JWT_SECRET = os.environ["SUPABASE_JWT_SECRET"]
ECHO_LATENCY_MS = int(os.environ.get("ECHO_LATENCY_MS", "0"))
HISTORY_TABLE = "chat_message_history"
SESSION_INSTANCE_TTL_SECONDS = 30 * 60
SCHEDULED_TASK_INTERVAL_SECONDS = 5 * 60

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    name text PRIMARY KEY,
    system_prompt text NOT NULL,
    tools text[] NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS chat_sessions (
    chat_id uuid PRIMARY KEY,
    user_id text NOT NULL,
    agent_name text NOT NULL,
    is_active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS chat_sessions_user_agent ON chat_sessions (user_id, agent_name, is_active);
INSERT INTO agents (name, system_prompt, tools)
VALUES ('assistant', 'You are a helpful assistant.', ARRAY['current_time'])
ON CONFLICT (name) DO NOTHING;
"""

UPSERT_SESSION = """
INSERT INTO chat_sessions (chat_id, user_id, agent_name, is_active, updated_at)
VALUES (%s, %s, %s, true, now())
ON CONFLICT (chat_id) DO UPDATE SET is_active = true, updated_at = now()
WHERE chat_sessions.user_id = EXCLUDED.user_id
"""


class ChatRequest(BaseModel):
    agent_name: str
    message: str
    session_id: str


class ChatResponse(BaseModel):
    session_id: str
    response: str
    tool_name: str | None = None
    tool_input: dict[str, Any] | None = None
    error: str | None = None


class EchoChatModel(BaseChatModel):
    """A chat model answering as chatserver's ``echo``: ``echo: <last user message>``."""

    latency_ms: int = 0

    @property
    def _llm_type(self) -> str:
        return "echo"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _result(self, messages: list[BaseMessage]) -> ChatResult:
        last = next((m for m in reversed(messages) if isinstance(m, HumanMessage)), None)
        text = last.content if last is not None else ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=f"echo: {text}"))])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        time.sleep(self.latency_ms / 1000)
        return self._result(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_ms:
            await asyncio.sleep(self.latency_ms / 1000)
        return self._result(messages)


@tool
def current_time() -> str:
    """The current date and time in UTC (ISO 8601)."""
    return datetime.now(UTC).isoformat()


TOOLS: dict[str, BaseTool] = {"current_time": current_time}


class AsyncConversationBufferWindowMemory(ConversationBufferWindowMemory):
    """The original's fix: load the window with ``aget_messages`` instead of a thread running the
    synchronous ``messages`` property."""

    async def aload_memory_variables(self, inputs: dict[str, Any]) -> dict[str, Any]:
        messages = await self.chat_memory.aget_messages()
        if self.k > 0:
            messages = messages[-self.k * 2 :]
        return {self.memory_key: messages if self.return_messages else self.messages_to_string(messages)}

    def messages_to_string(self, messages: list[BaseMessage]) -> str:
        return get_buffer_string(messages, human_prefix=self.human_prefix, ai_prefix=self.ai_prefix)


async def load_agent_executor(conn: psycopg.AsyncConnection[Any], agent_name: str) -> AgentExecutor:
    """The agent loader: the agent's configuration from the database, built into an executor."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT system_prompt, tools FROM agents WHERE name = %s", (agent_name,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"Agent not found: {agent_name}")
    system_prompt, tool_names = row
    tools = [TOOLS[name] for name in tool_names]
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", system_prompt),
            MessagesPlaceholder("chat_history", optional=True),
            ("human", "{input}"),
            MessagesPlaceholder("agent_scratchpad"),
        ]
    )
    agent = create_tool_calling_agent(EchoChatModel(latency_ms=ECHO_LATENCY_MS), tools, prompt)
    return AgentExecutor(agent=agent, tools=tools, verbose=False)


class ChatService:
    def __init__(self, cache: dict[tuple[str, str], AgentExecutor]) -> None:
        self.agent_executor_cache = cache

    def create_chat_memory(
        self, session_id: str, conn: psycopg.AsyncConnection[Any]
    ) -> AsyncConversationBufferWindowMemory:
        history = PostgresChatMessageHistory(HISTORY_TABLE, session_id, async_connection=conn)
        return AsyncConversationBufferWindowMemory(
            chat_memory=history, k=50, return_messages=True, memory_key="chat_history", input_key="input"
        )

    async def get_or_load_agent_executor(
        self, user_id: str, agent_name: str, conn: psycopg.AsyncConnection[Any]
    ) -> AgentExecutor:
        key = (user_id, agent_name)
        executor = self.agent_executor_cache.get(key)
        if executor is None:
            logger.debug("Cache MISS for agent executor: key=%s", key)
            executor = await load_agent_executor(conn, agent_name)
            self.agent_executor_cache[key] = executor
        return executor

    @staticmethod
    def extract_tool_info(response_data: dict[str, Any]) -> tuple[str | None, dict[str, Any] | None]:
        steps = response_data.get("intermediate_steps") or []
        if not steps:
            return None, None
        action = steps[-1][0]
        raw = action.tool_input
        tool_input = raw if isinstance(raw, dict) else {"input": raw}
        return action.tool, tool_input

    async def process_chat(
        self, chat: ChatRequest, user_id: str, conn: psycopg.AsyncConnection[Any]
    ) -> ChatResponse:
        try:
            uuid.UUID(chat.session_id)
        except ValueError:
            raise HTTPException(status_code=400, detail="session_id must be a UUID") from None
        async with conn.cursor() as cur:
            await cur.execute(UPSERT_SESSION, (chat.session_id, user_id, chat.agent_name))
        await conn.commit()
        memory = self.create_chat_memory(chat.session_id, conn)
        executor = await self.get_or_load_agent_executor(user_id, chat.agent_name, conn)
        executor.memory = memory
        try:
            response_data = await executor.ainvoke({"input": chat.message})
        except Exception as exc:
            logger.error("Error during agent execution for session %s: %s", chat.session_id, exc)
            return ChatResponse(
                session_id=chat.session_id,
                response="An error occurred processing your request.",
                error=str(exc),
            )
        tool_name, tool_input = self.extract_tool_info(response_data)
        payload = ChatResponse(
            session_id=chat.session_id,
            response=response_data.get("output", "No output from agent."),
            tool_name=tool_name,
            tool_input=tool_input,
        )
        logger.info("Successfully processed chat. Returning to client: %s", payload.model_dump_json())
        return payload


class BackgroundTaskService:
    def __init__(self, pool: AsyncConnectionPool[Any], cache: dict[tuple[str, str], AgentExecutor]) -> None:
        self.pool = pool
        self.cache = cache
        self.tasks: list[asyncio.Task[None]] = []

    async def deactivate_stale_chat_session_instances(self) -> None:
        while True:
            await asyncio.sleep(SCHEDULED_TASK_INTERVAL_SECONDS)
            threshold = datetime.now(UTC) - timedelta(seconds=SESSION_INSTANCE_TTL_SECONDS)
            async with self.pool.connection() as conn:
                await conn.execute(
                    "UPDATE chat_sessions SET is_active = false, updated_at = now() "
                    "WHERE is_active AND updated_at < %s",
                    (threshold,),
                )

    async def evict_inactive_executors(self) -> None:
        while True:
            await asyncio.sleep(SCHEDULED_TASK_INTERVAL_SECONDS + 30)
            for user_id, agent_name in list(self.cache):
                async with self.pool.connection() as conn:
                    cur = await conn.execute(
                        "SELECT 1 FROM chat_sessions "
                        "WHERE user_id = %s AND agent_name = %s AND is_active LIMIT 1",
                        (user_id, agent_name),
                    )
                    if await cur.fetchone() is None:
                        self.cache.pop((user_id, agent_name), None)

    def start_background_tasks(self) -> None:
        self.tasks = [
            asyncio.create_task(self.deactivate_stale_chat_session_instances()),
            asyncio.create_task(self.evict_inactive_executors()),
        ]

    async def stop_background_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


AGENT_EXECUTOR_CACHE: dict[tuple[str, str], AgentExecutor] = {}
chat_service = ChatService(AGENT_EXECUTOR_CACHE)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo=DATABASE_URL, open=False, min_size=2, max_size=10, check=AsyncConnectionPool.check_connection
    )
    await pool.open(wait=True, timeout=30)
    async with pool.connection() as conn:
        await conn.execute(SCHEMA)
        await PostgresChatMessageHistory.acreate_tables(conn, HISTORY_TABLE)
    app.state.pool = pool
    background = BackgroundTaskService(pool, AGENT_EXECUTOR_CACHE)
    background.start_background_tasks()
    yield
    await background.stop_background_tasks()
    await pool.close()


app = FastAPI(lifespan=lifespan)


def get_current_user(request: Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Missing bearer token")
    try:
        payload = jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="authenticated")
    except jwt.PyJWTError:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Invalid token") from None
    user_id = payload.get("sub")
    if not user_id:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="User ID not found in token")
    return str(user_id)


async def get_db_connection(request: Request) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """One pooled connection for the whole request, returned when the response is done."""
    async with request.app.state.pool.connection() as conn:
        yield conn


@app.post("/api/chat", response_model=ChatResponse)
async def chat_endpoint(
    chat_input: ChatRequest,
    user_id: Annotated[str, Depends(get_current_user)],
    pg_connection: Annotated[psycopg.AsyncConnection[Any], Depends(get_db_connection)],
) -> ChatResponse:
    try:
        return await chat_service.process_chat(chat_input, user_id, pg_connection)
    except HTTPException:
        raise
    except psycopg.Error as exc:
        logger.error("Database error during chat for session %s: %s", chat_input.session_id, exc)
        raise HTTPException(status_code=503, detail=f"Database error during chat setup: {exc}") from exc


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
