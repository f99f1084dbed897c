"""Built-in tools: names, validation, and what they do with the run's deps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic_ai import Tool

from chatserver.agents.tools import BUILTIN_TOOLS, ToolRegistry, current_time_tool, validate_tools
from chatserver.agents.types import TurnDeps
from chatserver.errors import InvalidInput
from tests.unit.agents.helpers import FakeClock


async def call_current_time(tool: Tool[TurnDeps]) -> str:
    result = await tool.function()  # type: ignore[call-arg]
    assert isinstance(result, str)
    return result


class TestCatalog:
    def test_the_builtin_tools_are_named_as_agents_list_them(self) -> None:
        assert set(BUILTIN_TOOLS) == {"current_time", "update_instructions", "remember", "recall_memories"}
        assert all(tool.name == name for name, tool in BUILTIN_TOOLS.items())

    def test_known_tools_validate(self) -> None:
        validate_tools(["current_time", "update_instructions"])
        validate_tools([])

    def test_unknown_tools_are_named_in_an_invalid_tools_error(self) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_tools(["current_time", "teleport", "fly"])
        assert caught.value.field == "tools"
        assert "fly, teleport" in caught.value.detail

    def test_the_registry_builds_fresh_tools_for_every_agent(self) -> None:
        tools = ToolRegistry(FakeClock())
        first, second = tools.select(["current_time"]), tools.select(["current_time"])
        assert first[0] is not second[0]

    def test_a_toolset_changing_one_agents_tool_leaves_the_next_agents_alone(self) -> None:
        tools = ToolRegistry(FakeClock())
        first = tools.select(["current_time"])[0]
        first.max_retries, first.requires_approval = 7, True
        second = tools.select(["current_time"])[0]
        assert (second.max_retries, second.requires_approval) == (None, False)
        # The costly, unchanging part is built once and shared.
        assert second.function_schema is first.function_schema

    def test_the_registry_keeps_the_requested_order_without_duplicates(self) -> None:
        selected = ToolRegistry().select(["update_instructions", "current_time", "update_instructions"])
        assert [tool.name for tool in selected] == ["update_instructions", "current_time"]

    def test_the_registry_refuses_unknown_tools(self) -> None:
        with pytest.raises(InvalidInput):
            ToolRegistry().select(["teleport"])

    def test_extra_tools_plug_in_by_name(self) -> None:
        def weather_tool(clock: object) -> Tool[TurnDeps]:
            async def weather(city: str) -> str:
                """The weather in a city."""
                return "sunny"

            return Tool(weather)

        tools = ToolRegistry(extra={"weather": weather_tool})
        assert tools.names == sorted([*BUILTIN_TOOLS, "weather"])
        assert [tool.name for tool in tools.select(["weather"])] == ["weather"]

    def test_an_extra_tool_cannot_replace_a_builtin(self) -> None:
        with pytest.raises(ValueError):
            ToolRegistry(extra={"current_time": current_time_tool})


class TestCurrentTime:
    async def test_it_is_iso_8601_utc_with_an_explicit_offset(self) -> None:
        clock = FakeClock(datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC))
        assert await call_current_time(current_time_tool(clock)) == "2026-03-04T05:06:07+00:00"

    async def test_other_time_zones_are_converted_to_utc(self) -> None:
        clock = FakeClock(datetime(2026, 3, 4, 7, 0, 0, tzinfo=timezone(timedelta(hours=2))))
        assert await call_current_time(current_time_tool(clock)) == "2026-03-04T05:00:00+00:00"

    async def test_naive_times_are_taken_as_utc(self) -> None:
        clock = FakeClock(datetime(2026, 3, 4, 5, 0, 0))
        assert await call_current_time(current_time_tool(clock)) == "2026-03-04T05:00:00+00:00"
