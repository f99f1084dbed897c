"""Request and response bodies of the HTTP contract (DESIGN.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatserver.domain import AgentConfig, Chat, Message, PromptCustomization, ToolCallRecord, TurnUsage

CHAT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChatRequest(BaseModel):
    agent_name: str = Field(min_length=1, max_length=64)
    message: str
    session_id: str = Field(pattern=CHAT_ID_PATTERN, description="Persistent chat id (UUID recommended)")


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
    response: str
    tool_name: str | None = None
    tool_input: dict[str, Any] | None = None
    error: str | None = None
    tool_calls: list[ToolCallOut] = []
    usage: UsageOut


class AgentIn(Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    description: str = Field("", max_length=2000)
    model: str = Field(min_length=1, max_length=255)
    system_prompt: str = Field(max_length=100_000)
    tools: list[str] = Field(default_factory=list, max_length=64)
    history_window: int | None = Field(None, ge=0, le=10_000)

    def to_domain(self, name: str | None = None) -> AgentConfig:
        return AgentConfig(
            name=name or self.name,
            model=self.model,
            system_prompt=self.system_prompt,
            description=self.description,
            tools=tuple(self.tools),
            history_window=self.history_window,
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
        )


class ChatOut(BaseModel):
    id: str
    agent_name: str
    title: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, chat: Chat) -> ChatOut:
        return cls(
            id=chat.id,
            agent_name=chat.agent_name,
            title=chat.title,
            created_at=chat.created_at,
            updated_at=chat.updated_at,
        )


class ChatPage(BaseModel):
    items: list[ChatOut]
    next_before: str | None


class MessageToolCall(BaseModel):
    id: str
    name: str
    args: dict[str, Any]


class MessageOut(BaseModel):
    id: int
    role: Literal["user", "assistant", "tool"]
    content: str
    tool_calls: list[MessageToolCall]
    tool_call_id: str | None = None
    tool_name: str | None = None
    created_at: datetime

    @classmethod
    def of(cls, message: Message) -> MessageOut:
        calls = [MessageToolCall(id=c.id, name=c.name, args=c.args) for c in message.tool_calls]
        return cls(
            id=message.id,
            role=message.role,
            content=message.content,
            tool_calls=calls,
            tool_call_id=message.tool_call_id,
            tool_name=message.tool_name,
            created_at=message.created_at,
        )


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_before: str | None


class CustomizationIn(Strict):
    agent_name: str = Field(min_length=1, max_length=64)
    customization_type: str = "instruction_set"
    content: dict[str, Any]
    is_active: bool = True
    priority: int = 0


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
