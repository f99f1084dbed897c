"""Request and response bodies of the HTTP contract (DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chatserver.api.text import StoredText
from chatserver.domain import (
    AgentConfig,
    BusyPolicy,
    Chat,
    McpServer,
    Memory,
    Message,
    OnDisconnect,
    PromptCustomization,
    Run,
    ToolCallRecord,
    TurnUsage,
)
from chatserver.services.prompt_customization import (
    CUSTOMIZATION_TYPE_PATTERN,
    INSTRUCTION_SET,
    MAX_CONTENT_BYTES,
    MAX_CONTENT_DEPTH,
    PRIORITY_MAX,
    PRIORITY_MIN,
)

CHAT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatRequest(BaseModel):
    agent_name: StoredText = Field(min_length=1, max_length=64)
    message: StoredText = ""
    edit_of: int | None = Field(None, description="A user message of the chat: resend it edited")
    regenerate: int | None = Field(None, description="An assistant message: answer again (no message)")
    session_id: str = Field(pattern=CHAT_ID_PATTERN, description="Persistent chat id (UUID recommended)")
    busy_policy: BusyPolicy | None = Field(None, description="When the chat is mid-run; default: server's")
    on_disconnect: OnDisconnect = Field(
        "continue", description="cancel: a client that goes away stops the run (streams only)"
    )


class RunRequest(BaseModel):
    agent_name: StoredText = Field(min_length=1, max_length=64)
    message: StoredText = ""
    edit_of: int | None = Field(None, description="A user message of the chat: resend it edited")
    regenerate: int | None = Field(None, description="An assistant message: answer again (no message)")
    busy_policy: BusyPolicy | None = None


class RunErrorOut(BaseModel):
    code: str
    detail: str


class RunOut(BaseModel):
    id: str
    chat_id: str | None
    agent_name: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    model: str | None
    usage: UsageOut
    error: RunErrorOut | None

    @classmethod
    def of(cls, run: Run) -> RunOut:
        error = RunErrorOut(code=run.error.code, detail=run.error.detail) if run.error else None
        return cls(
            id=run.id,
            chat_id=run.chat_id,
            agent_name=run.agent_name,
            status=run.status,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            model=run.model,
            usage=UsageOut.of(run.usage),
            error=error,
        )


class RunPage(BaseModel):
    items: list[RunOut]
    next_before: str | None


class ToolCallOut(BaseModel):
    name: str
    args: dict[str, Any]
    result: Any

    @classmethod
    def of(cls, record: ToolCallRecord) -> ToolCallOut:
        return cls(name=record.name, args=record.args, result=record.result)


class UsageOut(BaseModel):
    input_tokens: int
    output_tokens: int
    requests: int

    @classmethod
    def of(cls, usage: TurnUsage) -> UsageOut:
        return cls(
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, requests=usage.requests
        )


class ChatResponse(BaseModel):
    session_id: str
    response: str | None
    tool_name: str | None = None
    tool_input: dict[str, Any] | None = None
    error: str | None = None
    tool_calls: list[ToolCallOut] = []
    usage: UsageOut
    run_id: str | None = None
    model: str | None = None
    status: str = "completed"
    pending_approvals: list[dict[str, Any]] | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="with status requires_action: the calls that wait for the user, {id, tool_name, args}",
    )


class McpServerIn(Strict):
    """An MCP server: ``command`` (stdio argv) or ``url`` (streamable HTTP), exactly one."""

    name: str = Field(pattern=r"^[a-z][a-z0-9]{0,31}$", description="Prefix of its tools: NAME_tool")
    command: list[StoredText] | None = Field(None, min_length=1, max_length=64)
    url: str | None = Field(None, pattern=r"^https?://[^\s\x00]+$", max_length=2000)

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerIn:
        if (self.command is None) == (self.url is None):
            raise ValueError("give exactly one of command or url")
        return self

    def to_domain(self) -> McpServer:
        return McpServer(name=self.name, command=tuple(self.command or ()), url=self.url)


class McpServerOut(BaseModel):
    name: str
    command: list[str] | None
    url: str | None

    @classmethod
    def of(cls, server: McpServer) -> McpServerOut:
        return cls(name=server.name, command=list(server.command) or None, url=server.url)


class AgentIn(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: StoredText = Field("", max_length=2000)
    model: StoredText = Field(min_length=1, max_length=255)
    system_prompt: StoredText = Field(max_length=100_000)
    tools: list[StoredText] = Field(default_factory=list, max_length=64)
    history_window: int | None = Field(None, ge=0, le=10_000)
    mcp_servers: list[McpServerIn] = Field(default_factory=list, max_length=8)
    context_tokens: int | None = Field(None, ge=1, le=10_000_000, description="History budget, est. tokens")
    fallback_models: list[StoredText] = Field(
        default_factory=list, max_length=8, description="Tried in order on the model's provider errors"
    )
    tools_requiring_approval: list[StoredText] = Field(
        default_factory=list, max_length=64, description="Tools whose calls wait for the user's approval"
    )

    def to_domain(self, name: str | None = None) -> AgentConfig:
        return AgentConfig(
            name=name or self.name,
            model=self.model,
            system_prompt=self.system_prompt,
            description=self.description,
            tools=tuple(self.tools),
            history_window=self.history_window,
            mcp_servers=tuple(server.to_domain() for server in self.mcp_servers),
            context_tokens=self.context_tokens,
            fallback_models=tuple(self.fallback_models),
            tools_requiring_approval=tuple(self.tools_requiring_approval),
        )


class AgentSummary(BaseModel):
    name: str
    description: str
    model: str
    tools: list[str]

    @classmethod
    def of(cls, agent: AgentConfig) -> AgentSummary:
        return cls(name=agent.name, description=agent.description, model=agent.model, tools=list(agent.tools))


class AgentOut(AgentSummary):
    system_prompt: str
    history_window: int | None
    created_at: datetime | None
    updated_at: datetime | None
    mcp_servers: list[McpServerOut] = []
    context_tokens: int | None = None
    fallback_models: list[str] = []
    tools_requiring_approval: list[str] = []

    @classmethod
    def of(cls, agent: AgentConfig) -> AgentOut:
        return cls(
            name=agent.name,
            description=agent.description,
            model=agent.model,
            tools=list(agent.tools),
            system_prompt=agent.system_prompt,
            history_window=agent.history_window,
            created_at=agent.created_at,
            updated_at=agent.updated_at,
            mcp_servers=[McpServerOut.of(server) for server in agent.mcp_servers],
            context_tokens=agent.context_tokens,
            fallback_models=list(agent.fallback_models),
            tools_requiring_approval=list(agent.tools_requiring_approval),
        )


class ChatOut(BaseModel):
    id: str
    agent_name: str
    title: str | None
    created_at: datetime
    updated_at: datetime
    pinned: bool = False
    archived: bool = False
    snippet: str | None = Field(None, description="Search only: the text around the match")

    @classmethod
    def of(cls, chat: Chat, snippet: str | None = None) -> ChatOut:
        return cls(
            id=chat.id,
            agent_name=chat.agent_name,
            title=chat.title,
            created_at=chat.created_at,
            updated_at=chat.updated_at,
            pinned=chat.pinned,
            archived=chat.archived,
            snippet=snippet,
        )


class ChatPage(BaseModel):
    items: list[ChatOut]
    next_before: str | None


class MessageToolCall(BaseModel):
    id: str
    name: str
    args: dict[str, Any]


class BranchOut(BaseModel):
    index: int = Field(description="1-based place among the messages following the same parent")
    count: int
    siblings: list[int] = Field(description="Their ids, oldest first (for PUT /api/chats/{id}/branch)")


class MessageRunOut(BaseModel):
    """The run behind a message: an answer's (who answered, what it took), or how the run of a user
    message left without an answer ended."""

    id: str
    status: str
    model: str | None
    usage: UsageOut
    error: RunErrorOut | None

    @classmethod
    def of(cls, run: Run) -> MessageRunOut:
        error = RunErrorOut(code=run.error.code, detail=run.error.detail) if run.error else None
        return cls(id=run.id, status=run.status, model=run.model, usage=UsageOut.of(run.usage), error=error)


class MessageOut(BaseModel):
    id: int
    role: Literal["user", "assistant", "tool"]
    content: str
    tool_calls: list[MessageToolCall]
    tool_call_id: str | None = None
    tool_name: str | None = None
    created_at: datetime
    incomplete: bool = Field(False, description="A partial answer: its run was cancelled mid-answer")
    parent_id: int | None = None
    branch: BranchOut | None = None
    run: MessageRunOut | None = Field(
        None,
        description="An answer's run (model, tokens); a user message's that ended cancelled, failed or "
        "interrupted with no answer after it",
    )

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        calls = [MessageToolCall(id=c.id, name=c.name, args=c.args) for c in message.tool_calls]
        return cls(
            incomplete=message.incomplete,
            id=message.id,
            role=message.role,
            content=message.content,
            tool_calls=calls,
            tool_call_id=message.tool_call_id,
            tool_name=message.tool_name,
            created_at=message.created_at,
            parent_id=message.parent_id,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_before: str | None


class CustomizationIn(Strict):
    """Rules the schema cannot state (content size, depth, finite numbers) are checked by the service."""

    agent_name: StoredText = Field(min_length=1, max_length=64)
    customization_type: str = Field(INSTRUCTION_SET, pattern=CUSTOMIZATION_TYPE_PATTERN)
    content: dict[str, Any] = Field(
        description=f"A JSON object, at most {MAX_CONTENT_BYTES} bytes as compact JSON, "
        f"nested at most {MAX_CONTENT_DEPTH} levels"
    )
    is_active: bool = Field(True, strict=True)
    priority: int = Field(
        0, ge=PRIORITY_MIN, le=PRIORITY_MAX, strict=True, description="Lower comes first in the prompt"
    )


class CustomizationOut(BaseModel):
    id: str
    user_id: str
    agent_name: str
    customization_type: str
    content: dict[str, Any]
    is_active: bool
    priority: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: PromptCustomization) -> CustomizationOut:
        return cls(
            id=row.id,
            user_id=row.user_id,
            agent_name=row.agent_name,
            customization_type=row.customization_type,
            content=row.content,
            is_active=row.is_active,
            priority=row.priority,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class MemoryOut(BaseModel):
    id: int
    agent_name: str
    content: str
    created_at: datetime

    @classmethod
    def of(cls, memory: Memory) -> MemoryOut:
        return cls(
            id=memory.id, agent_name=memory.agent_name, content=memory.content, created_at=memory.created_at
        )


class MemoryPage(BaseModel):
    items: list[MemoryOut]
    next_before: str | None


class MemoriesDeleted(BaseModel):
    deleted: int
