"""A chat's active branch as a Markdown document or as JSON."""

from __future__ import annotations

from typing import Any

from chatserver.domain import Chat, Message

_HEADINGS = {"user": "User", "assistant": "Assistant", "tool": "Tool"}


def as_markdown(chat: Chat, messages: list[Message]) -> str:
    lines = [f"# {chat.title or chat.id}", "", f"Agent: {chat.agent_name}", ""]
    for message in messages:
        if message.role == "assistant" and not message.content and message.tool_calls:
            calls = ", ".join(call.name for call in message.tool_calls)
            lines += [f"## Assistant (calls {calls})", ""]
            continue
        heading = _HEADINGS.get(message.role, message.role)
        if message.role == "tool" and message.tool_name:
            heading = f"Tool {message.tool_name}"
        stamp = message.created_at.isoformat(timespec="seconds")
        lines += [f"## {heading} · {stamp}", "", message.content, ""]
    return "\n".join(lines)


def as_json(chat: Chat, messages: list[Message]) -> dict[str, Any]:
    return {
        "id": chat.id,
        "title": chat.title,
        "agent_name": chat.agent_name,
        "created_at": chat.created_at.isoformat(),
        "messages": [
            {
                "id": m.id,
                "parent_id": m.parent_id,
                "role": m.role,
                "content": m.content,
                "tool_calls": [{"id": c.id, "name": c.name, "args": c.args} for c in m.tool_calls],
                "tool_call_id": m.tool_call_id,
                "tool_name": m.tool_name,
                "incomplete": m.incomplete,
                "created_at": m.created_at.isoformat(),
            }
            for m in messages
        ],
    }
