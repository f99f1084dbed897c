"""Render an agent's system prompt with a user's prompt customizations.

Format (stable, documented, deterministic):

* No active customization (or only empty ones): the agent's prompt, unchanged.
* Otherwise: the agent's prompt (trailing whitespace removed), a blank line, then one section per
  customization in the order given (the caller sorts by priority), sections separated by a blank
  line. A section is a header line ``## <customization_type>`` followed by its content:

  - the key ``instructions`` holding a list renders first, as bare bullet lines ``- item``;
  - any other list renders as a ``key:`` line followed by its bullet lines;
  - a scalar renders as ``key: value`` (strings as written, other values as JSON:
    ``true``, ``false``, ``null``, ``3``);
  - a nested object renders as a ``key:`` line followed by its own ``key: value`` lines, indented
    by two spaces per level;
  - a list item that is itself an object or a list renders as compact JSON after the ``- ``;
  - continuation lines of a multi-line string are indented under their first line;
  - empty lists and empty objects render nothing; other keys keep the order of the stored content
    (on PostgreSQL that is JSONB's order: shorter keys first, so put ordered items in a list).

Example: the prompt ``You are helpful.`` with one ``instruction_set`` customization whose content
is ``{"instructions": ["Be brief", "Use metric units"], "tone": "friendly",
"style": {"emoji": false}}`` renders as::

    You are helpful.

    ## instruction_set
    - Be brief
    - Use metric units
    tone: friendly
    style:
      emoji: false
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from chatserver.domain import PromptCustomization

INDENT = "  "
BARE_LIST_KEY = "instructions"


def render_system_prompt(agent_prompt: str, customizations: Sequence[PromptCustomization]) -> str:
    """The agent's prompt followed by the active customizations, in the order given."""
    sections = [
        section
        for customization in customizations
        if customization.is_active and (section := render_customization(customization))
    ]
    if not sections:
        return agent_prompt
    body = "\n\n".join(sections)
    base = agent_prompt.rstrip()
    return f"{base}\n\n{body}" if base else body


def render_customization(customization: PromptCustomization) -> str:
    """One ``## type`` section, or ``""`` when the content renders to nothing."""
    lines = _render_mapping(customization.content, depth=0, top_level=True)
    if not lines:
        return ""
    return "\n".join([f"## {customization.customization_type}", *lines])


def _render_mapping(content: Mapping[str, Any], *, depth: int, top_level: bool = False) -> list[str]:
    items = list(content.items())
    if top_level:
        # PostgreSQL's JSONB reorders keys (shortest first): leading with the instructions keeps the
        # main part of a section in the same place on both databases.
        items.sort(key=lambda item: item[0] != BARE_LIST_KEY)
    lines: list[str] = []
    for key, value in items:
        lines.extend(_render_entry(str(key), value, depth=depth, top_level=top_level))
    return lines


def _render_entry(key: str, value: Any, *, depth: int, top_level: bool) -> list[str]:
    pad = INDENT * depth
    if isinstance(value, Mapping):
        nested = _render_mapping(value, depth=depth + 1)
        return [f"{pad}{key}:", *nested] if nested else []
    if isinstance(value, list | tuple):
        if not value:
            return []
        if top_level and key == BARE_LIST_KEY:
            return _render_bullets(value, depth=depth)
        return [f"{pad}{key}:", *_render_bullets(value, depth=depth)]
    return [_indent_continuation(f"{pad}{key}: {_scalar(value)}", depth=depth)]


def _render_bullets(items: Sequence[Any], *, depth: int) -> list[str]:
    pad = INDENT * depth
    return [_indent_continuation(f"{pad}- {_list_item(item)}", depth=depth) for item in items]


def _list_item(item: Any) -> str:
    if isinstance(item, Mapping | list | tuple):
        return json.dumps(item, ensure_ascii=False, separators=(", ", ": "), default=str)
    return _scalar(item)


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _indent_continuation(line: str, *, depth: int) -> str:
    """Keep a multi-line value inside its entry: later lines are indented one level deeper."""
    if "\n" not in line:
        return line
    first, *rest = line.split("\n")
    pad = INDENT * (depth + 1)
    return "\n".join([first, *(f"{pad}{part}" if part else part for part in rest)])
