"""Plain domain types: no I/O, no framework."""

from chatserver.domain.models import (
    AgentConfig,
    ApiKey,
    AuditEvent,
    Chat,
    Message,
    NewEvent,
    NewMessage,
    Principal,
    PromptCustomization,
    Role,
    SessionInstance,
    ToolCall,
    ToolCallRecord,
    TurnUsage,
    User,
)

__all__ = [
    "AgentConfig",
    "ApiKey",
    "AuditEvent",
    "Chat",
    "Message",
    "NewEvent",
    "NewMessage",
    "Principal",
    "PromptCustomization",
    "Role",
    "SessionInstance",
    "ToolCall",
    "ToolCallRecord",
    "TurnUsage",
    "User",
]
