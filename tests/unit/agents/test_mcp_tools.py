"""MCP servers as agent tools: validation, namespacing, identity, failures as tool errors, one connection.

The server is the small MCP server in ``mcp_demo_server.py``, run over stdio by the code under test.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from chatserver.agents.factory import AgentFactory
from chatserver.agents.mcp import McpConnections, validate_mcp_servers
from chatserver.agents.registry import ModelRegistry
from chatserver.agents.tools import BUILTIN_TOOLS, ToolRegistry
from chatserver.agents.types import TurnDeps
from chatserver.config import Settings
from chatserver.domain import McpServer
from chatserver.errors import InvalidInput, ModelError
from tests.unit.agents.helpers import Conversation, FakeClock, agent_config

DEMO_SCRIPT = Path(__file__).with_name("mcp_demo_server.py")
DEMO = McpServer("demo", command=(sys.executable, str(DEMO_SCRIPT)))
UNREACHABLE = McpServer("down", url="http://127.0.0.1:9/mcp")


@pytest.fixture
async def mcp() -> AsyncIterator[McpConnections]:
    connections = McpConnections(timeout_seconds=20, allow_stdio=True)
    yield connections
    await connections.aclose()


@pytest.fixture
def mcp_factory(settings: Settings, clock: FakeClock, mcp: McpConnections) -> AgentFactory:
    return AgentFactory(ModelRegistry(settings), ToolRegistry(clock), mcp)


def talk(
    factory: AgentFactory, *servers: McpServer, user: str = "alice", agent: str = "helper"
) -> Conversation:
    built = factory.build(replace(agent_config(agent), mcp_servers=servers))
    return Conversation(built, TurnDeps(user, agent, "chat-1"))


class TestValidation:
    @pytest.mark.parametrize(
        ("server", "complaint"),
        [
            (McpServer("Bad-Name", url="http://x"), "must match"),
            (McpServer("both", command=("x",), url="http://x"), "exactly one"),
            (McpServer("neither"), "exactly one"),
            (McpServer("web", url="ftp://x"), "http:// or https://"),
            (McpServer("local", command=("python", "server.py")), "stdio commands are disabled"),
            (McpServer("current", url="http://x"), "clash with tool 'current_time'"),
        ],
    )
    def test_a_server_that_could_not_be_served_is_refused(self, server: McpServer, complaint: str) -> None:
        with pytest.raises(InvalidInput) as caught:
            validate_mcp_servers([server], allow_stdio=False, reserved_tools=BUILTIN_TOOLS)
        assert caught.value.field == "mcp_servers" and complaint in caught.value.detail

    def test_names_are_unique_and_servers_bounded(self) -> None:
        with pytest.raises(InvalidInput, match="unique"):
            validate_mcp_servers([UNREACHABLE, UNREACHABLE], allow_stdio=False)
        many = [McpServer(f"s{n}", url="http://x") for n in range(9)]
        with pytest.raises(InvalidInput, match="at most 8"):
            validate_mcp_servers(many, allow_stdio=False)

    def test_stdio_servers_are_allowed_when_enabled(self) -> None:
        validate_mcp_servers([DEMO, UNREACHABLE], allow_stdio=True, reserved_tools=BUILTIN_TOOLS)

    def test_an_agent_whose_server_is_not_allowed_here_cannot_run(self, settings: Settings) -> None:
        factory = AgentFactory(ModelRegistry(settings), ToolRegistry(), McpConnections(allow_stdio=False))
        with pytest.raises(ModelError, match="stdio commands are disabled"):
            factory.build(replace(agent_config(), mcp_servers=(DEMO,)))
        without_mcp = AgentFactory(ModelRegistry(settings), ToolRegistry())
        with pytest.raises(ModelError, match="MCP servers are not available"):
            without_mcp.build(replace(agent_config(), mcp_servers=(UNREACHABLE,)))


class TestCalls:
    async def test_a_servers_tools_are_namespaced_by_its_name(self, mcp_factory: AgentFactory) -> None:
        result = await talk(mcp_factory, DEMO).say('/tool demo_add {"a": 2, "b": 3}')
        assert result.output == "tool demo_add returned: 5"
        assert [(c.name, c.args, c.result) for c in result.tool_calls] == [("demo_add", {"a": 2, "b": 3}, 5)]
        unprefixed = await talk(mcp_factory, DEMO).say('/tool add {"a": 2, "b": 3}')
        assert unprefixed.output == "unknown tool: add"

    async def test_the_user_reaches_the_server_from_the_run_not_from_the_arguments(
        self, mcp_factory: AgentFactory
    ) -> None:
        alice = await talk(mcp_factory, DEMO, user="alice").say('/tool demo_whoami {"user_id": "mallory"}')
        bob = await talk(mcp_factory, DEMO, user="bob", agent="other").say("/tool demo_whoami {}")
        assert alice.output == "tool demo_whoami returned: alice via helper"
        assert bob.output == "tool demo_whoami returned: bob via other"

    async def test_a_tool_error_is_reported_to_the_model_and_the_turn_succeeds(
        self, mcp_factory: AgentFactory
    ) -> None:
        result = await talk(mcp_factory, DEMO).say("/tool demo_broken {}")
        assert result.output.startswith("tool demo_broken failed: ") and "broken" in result.output
        [call] = result.tool_calls
        assert call.name == "demo_broken" and "error" in call.result

    async def test_a_crashed_server_is_a_tool_error_then_reconnected_on_the_next_call(
        self, mcp_factory: AgentFactory
    ) -> None:
        conversation = talk(mcp_factory, DEMO)
        before = await conversation.say("/tool demo_pid {}")
        crashed = await conversation.say("/tool demo_crash {}")
        after = await conversation.say("/tool demo_pid {}")
        assert crashed.output.startswith("tool demo_crash failed: ")
        assert "MCP server 'demo' failed" in crashed.output
        assert after.output.startswith("tool demo_pid returned: ") and after.output != before.output

    async def test_an_unreachable_server_fails_no_turn(self, mcp_factory: AgentFactory) -> None:
        conversation = talk(mcp_factory, UNREACHABLE, DEMO)
        result = await conversation.say("/tool down_add {}")
        still = await conversation.say('/tool demo_add {"a": 1, "b": 1}')
        assert result.output == "unknown tool: down_add"
        assert still.output == "tool demo_add returned: 2"


class TestOneConnection:
    async def test_turns_agents_and_users_share_one_connection_per_server(
        self, mcp_factory: AgentFactory, mcp: McpConnections
    ) -> None:
        pids = {
            (await talk(mcp_factory, DEMO, user=user, agent=agent).say("/tool demo_pid {}")).output
            for user in ("alice", "bob")
            for agent in ("helper", "other")
        }
        assert len(pids) == 1
        await mcp.aclose()
        reopened = await talk(mcp_factory, DEMO).say("/tool demo_pid {}")
        assert reopened.output not in pids
