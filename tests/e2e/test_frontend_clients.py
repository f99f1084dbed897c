"""The AI SDK's and AG-UI's own clients against a live server: what a React app built on ``useChat``
or on an AG-UI client sees.

Each scenario runs ``tests/node/clients.mjs`` (the ``ai`` package's ``Chat`` over its
``DefaultChatTransport``, and ``@ag-ui/client``'s ``HttpAgent``), installed by ``npm ci`` from the
folder's pinned lock file the first time.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import LiveServer, mint_token

pytestmark = pytest.mark.node

NODE_DIR = Path(__file__).parents[1] / "node"
SCENARIO_SECONDS = 60
SLOW_TURN = "/sleep 3000 still here"
"""Long enough that the reload and the resume land while it runs, on a loaded machine too."""
ADAS_TURN = [("user", "ada's secret"), ("assistant", "echo: ada's secret")]


@pytest.fixture(scope="session")
def clients() -> Path:
    if not (NODE_DIR / "node_modules" / ".package-lock.json").is_file():
        install = ["npm", "ci", "--no-audit", "--no-fund"]
        subprocess.run(install, cwd=NODE_DIR, check=True, capture_output=True, timeout=300)
    return NODE_DIR / "clients.mjs"


async def drive(clients: Path, live: LiveServer, kind: str, **scenario: Any) -> dict[str, Any]:
    """One scenario of the Node clients, as user ``scenario['user']`` (default ``ada``)."""
    user = scenario.pop("user", "ada")
    token = scenario.pop("token", None) or mint_token(user)
    body = {"kind": kind, "url": live.url, "token": token, "agent": "assistant", **scenario}
    done = await asyncio.to_thread(
        subprocess.run,
        ["node", str(clients), json.dumps(body)],
        capture_output=True,
        text=True,
        timeout=SCENARIO_SECONDS,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout)
    return answer


def new_chat_id() -> str:
    return uuid.uuid4().hex


def text_of(message: dict[str, Any]) -> str:
    return "".join(part["text"] for part in message["parts"] if part["type"] == "text")


def answers(messages: list[dict[str, Any]]) -> list[str]:
    return [text_of(message) for message in messages if message["role"] == "assistant"]


async def stored(live: LiveServer, user: str, chat_id: str) -> list[tuple[str, str]]:
    async with live.client(user) as client:
        page = await client.get(f"/api/chats/{chat_id}/messages")
    assert page.status_code == 200, page.text
    return [(message["role"], message["content"]) for message in page.json()["items"]]


def turn_of(text: str) -> list[tuple[str, str]]:
    """A turn of the echo model, as (role, content) of its stored messages."""
    return [("user", text), ("assistant", f"echo: {text}")]


async def active(live: LiveServer, user: str, chat_id: str) -> list[dict[str, Any]]:
    """The chat's active branch as the server lists it."""
    async with live.client(user) as client:
        page = await client.get(f"/api/chats/{chat_id}/messages")
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


class TestAISDKChat:
    async def test_a_text_turn_streams_into_one_assistant_message_with_the_run_in_its_metadata(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        chat = await drive(clients, live, "ui-chat", chatId=chat_id, texts=["hello there"])
        assert chat["status"] == "ready" and chat["error"] is None
        assistant = chat["messages"][-1]
        assert assistant["role"] == "assistant" and text_of(assistant) == "echo: hello there"
        metadata = assistant["metadata"]
        assert metadata["chat_id"] == chat_id and metadata["model"] == "echo"
        assert assistant["id"] == metadata["run_id"]
        async with live.client("ada") as client:
            run = await client.get(f"/api/runs/{metadata['run_id']}")
        assert run.json()["status"] == "completed"

    async def test_a_second_turn_sends_the_whole_chat_and_the_server_reads_only_its_newest_message(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        chat = await drive(clients, live, "ui-chat", chatId=chat_id, texts=["first", "second", "/recall"])
        assert chat["sent"] == [1, 3, 5]
        assert answers(chat["messages"]) == ["echo: first", "echo: second", "recall: first | second"]
        assert [role for role, _ in await stored(live, "ada", chat_id)] == ["user", "assistant"] * 3

    async def test_a_transport_that_sends_only_the_newest_message_keeps_the_same_conversation(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        texts = ["first", "/recall"]
        chat = await drive(clients, live, "ui-chat", chatId=chat_id, texts=texts, newestOnly=True)
        assert chat["sent"] == [1, 1]
        assert answers(chat["messages"]) == ["echo: first", "recall: first"]

    async def test_a_tool_turn_shows_the_call_with_its_input_and_output_then_the_answer(
        self, clients: Path, live: LiveServer
    ) -> None:
        command = '/tool remember {"note": "likes tea"}'
        chat = await drive(clients, live, "ui-chat", chatId=new_chat_id(), texts=[command, "after the tool"])
        assert chat["status"] == "ready", chat["error"]
        first = chat["messages"][1]
        tools = [part for part in first["parts"] if part["type"].startswith("tool-")]
        assert [(part["type"], part["state"], part["input"]) for part in tools] == [
            ("tool-remember", "output-available", {"note": "likes tea"})
        ]
        assert text_of(first) == f"tool remember returned: {tools[0]['output']}"
        assert answers(chat["messages"])[1] == "echo: after the tool"

    async def test_a_model_failure_puts_the_chat_in_its_error_state_and_keeps_the_message(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        chat = await drive(clients, live, "ui-chat", chatId=chat_id, texts=["/fail"])
        assert chat["status"] == "error"
        assert "model provider error" in chat["error"]
        assert await stored(live, "ada", chat_id) == [("user", "/fail")]

    async def test_a_bad_token_is_refused_with_401_before_anything_is_stored(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat = await drive(clients, live, "ui-chat", chatId=new_chat_id(), texts=["hi"], token="not-a-token")
        assert chat["status"] == "error"
        assert json.loads(chat["error"])["code"] == "unauthorized"


class TestAISDKRegenerateAndEdit:
    """``Chat.regenerate`` and ``Chat.sendMessage({messageId})`` branch the server's chat as the
    page's Regenerate and Edit do: the active branch follows what the client now shows."""

    async def test_regenerate_answers_the_last_message_again_as_a_second_version(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        steps = [{"send": "red"}, {"send": "green"}, {"regenerate": None}]
        chat = await drive(clients, live, "ui-tree", chatId=chat_id, steps=steps, user="bea")
        assert chat["status"] == "ready", chat["error"]
        assert chat["requests"][-1] == {"trigger": "regenerate-message", "messageId": None, "count": 3}
        assert answers(chat["messages"]) == ["echo: red", "echo: green"]
        listed = await active(live, "bea", chat_id)
        assert [(m["role"], m["content"]) for m in listed] == turn_of("red") + turn_of("green")
        assert (listed[3]["branch"]["index"], listed[3]["branch"]["count"]) == (2, 2)
        assert listed[3]["run"]["id"] == chat["messages"][-1]["id"]

    async def test_regenerating_an_earlier_answer_by_its_id_drops_the_later_turns_from_the_branch(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        steps = [{"send": "one"}, {"send": "two"}, {"regenerate": 1}, {"send": "/recall"}]
        chat = await drive(clients, live, "ui-tree", chatId=chat_id, steps=steps, user="bea")
        assert chat["status"] == "ready", chat["error"]
        regenerate = chat["requests"][2]
        assert regenerate["trigger"] == "regenerate-message" and regenerate["count"] == 1
        assert answers(chat["messages"]) == ["echo: one", "recall: one"]
        listed = await active(live, "bea", chat_id)
        assert [m["content"] for m in listed] == ["one", "echo: one", "/recall", "recall: one"]
        assert listed[1]["branch"]["count"] == 2

    async def test_editing_a_message_resends_it_as_a_new_version_the_model_then_remembers(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        steps = [{"send": "red"}, {"send": "green"}, {"edit": 2, "text": "blue"}, {"send": "/recall"}]
        chat = await drive(clients, live, "ui-tree", chatId=chat_id, steps=steps, user="bea")
        assert chat["status"] == "ready", chat["error"]
        edit = chat["requests"][2]
        assert edit["trigger"] == "submit-message" and edit["messageId"] is not None and edit["count"] == 3
        assert answers(chat["messages"]) == ["echo: red", "echo: blue", "recall: red | blue"]
        listed = await active(live, "bea", chat_id)
        assert [m["content"] for m in listed][:4] == ["red", "echo: red", "blue", "echo: blue"]
        assert (listed[2]["branch"]["index"], listed[2]["branch"]["count"]) == (2, 2)


class TestAISDKResume:
    async def test_a_reloaded_page_resumes_the_running_turn_and_gets_its_whole_answer(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        reload = await drive(clients, live, "ui-reload", chatId=chat_id, text=SLOW_TURN)
        assert reload["answerStartedBeforeReload"]
        resumed = reload["resumed"]
        assert resumed["status"] == "ready", resumed["error"]
        assert answers(resumed["messages"]) == ["echo: still here"]
        assert resumed["messages"][-1]["metadata"]["model"] == "echo"
        again = reload["again"]
        assert again["status"] == "ready" and again["messages"] == resumed["messages"]
        stored_turn = [("user", SLOW_TURN), ("assistant", "echo: still here")]
        assert await stored(live, "ada", chat_id) == stored_turn

    async def test_an_idle_chat_has_nothing_to_resume(self, clients: Path, live: LiveServer) -> None:
        chat_id = new_chat_id()
        await drive(clients, live, "ui-chat", chatId=chat_id, texts=["done already"])
        resumed = await drive(clients, live, "ui-resume", chatId=chat_id)
        assert resumed == {"status": "ready", "error": None, "messages": []}


class TestAISDKIsolation:
    async def test_another_users_chat_id_gives_the_caller_a_chat_of_their_own(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        await drive(clients, live, "ui-chat", chatId=chat_id, texts=["ada's secret"], user="ada")
        mallory = await drive(clients, live, "ui-chat", chatId=chat_id, texts=["/recall"], user="mallory")
        assert answers(mallory["messages"]) == ["recall: "]
        assert await stored(live, "ada", chat_id) == ADAS_TURN

    async def test_resuming_another_users_chat_is_404_and_reveals_nothing(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        await drive(clients, live, "ui-chat", chatId=chat_id, texts=["ada's secret"], user="ada")
        resumed = await drive(clients, live, "ui-resume", chatId=chat_id, user="mallory")
        assert resumed["status"] == "error" and resumed["messages"] == []
        assert json.loads(resumed["error"]) == {"detail": f"chat '{chat_id}' not found", "code": "not_found"}


def event_types(run: dict[str, Any]) -> list[str]:
    return [event["type"] for event in run["events"]]


class TestAGUI:
    async def test_a_text_run_streams_the_agui_lifecycle_into_an_assistant_message(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        agent = await drive(clients, live, "agui", chatId=chat_id, texts=["hello agui"])
        [run] = agent["runs"]
        assert run["error"] is None
        types = event_types(run)
        assert types[:3] == ["RUN_STARTED", "CUSTOM", "TEXT_MESSAGE_START"]
        assert types[-2:] == ["TEXT_MESSAGE_END", "RUN_FINISHED"]
        assert set(types[3:-2]) == {"TEXT_MESSAGE_CONTENT"}
        assert run["events"][0]["threadId"] == chat_id
        assert agent["messages"][-1]["role"] == "assistant"
        assert agent["messages"][-1]["content"] == "echo: hello agui"
        assert run["result"]["model"] == "echo" and run["result"]["chat_id"] == chat_id

    async def test_a_tool_run_streams_the_call_its_arguments_and_its_result(
        self, clients: Path, live: LiveServer
    ) -> None:
        agent = await drive(
            clients, live, "agui", chatId=new_chat_id(), texts=['/tool remember {"note": "likes tea"}']
        )
        [run] = agent["runs"]
        types = event_types(run)
        calls = [kind for kind in types if kind.startswith("TOOL_CALL")]
        assert calls == ["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT"]
        args = next(event for event in run["events"] if event["type"] == "TOOL_CALL_ARGS")
        assert json.loads(args["delta"]) == {"note": "likes tea"}
        call = next(message for message in agent["messages"] if message.get("toolCalls"))
        assert call["toolCalls"][0]["function"]["name"] == "remember"
        result = next(message for message in agent["messages"] if message["role"] == "tool")
        assert result["toolCallId"] == call["toolCalls"][0]["id"]
        assert agent["messages"][-1]["content"] == f"tool remember returned: {result['content']}"

    async def test_a_second_run_in_the_thread_is_answered_from_the_server_kept_chat(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        agent = await drive(clients, live, "agui", chatId=chat_id, texts=["one", "/recall"])
        assert [run["error"] for run in agent["runs"]] == [None, None]
        assert agent["messages"][-1]["content"] == "recall: one"
        assert len(await stored(live, "ada", chat_id)) == 4

    async def test_a_model_failure_ends_the_run_with_run_error(self, clients: Path, live: LiveServer) -> None:
        chat_id = new_chat_id()
        agent = await drive(clients, live, "agui", chatId=chat_id, texts=["/fail"])
        [run] = agent["runs"]
        assert event_types(run)[-1] == "RUN_ERROR"
        assert "model provider error" in run["events"][-1]["message"]
        assert await stored(live, "ada", chat_id) == [("user", "/fail")]

    async def test_a_bad_token_is_refused_with_401(self, clients: Path, live: LiveServer) -> None:
        agent = await drive(clients, live, "agui", chatId=new_chat_id(), texts=["hi"], token="not-a-token")
        [run] = agent["runs"]
        assert run["events"] == [] and "401" in run["error"]

    async def test_another_users_thread_id_gives_the_caller_a_chat_of_their_own(
        self, clients: Path, live: LiveServer
    ) -> None:
        chat_id = new_chat_id()
        await drive(clients, live, "agui", chatId=chat_id, texts=["ada's secret"], user="ada")
        mallory = await drive(clients, live, "agui", chatId=chat_id, texts=["/recall"], user="mallory")
        assert mallory["messages"][-1]["content"] == "recall: "
        assert await stored(live, "ada", chat_id) == ADAS_TURN
