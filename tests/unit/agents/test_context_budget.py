"""History that fits the model: oldest turns dropped first, never the system prompt or the message."""

from __future__ import annotations

from dataclasses import replace

from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, TextPart, UserPromptPart

from chatserver.agents.context import estimate_tokens, estimate_tokens_of, fit_history, split_turns
from chatserver.agents.factory import AgentFactory
from chatserver.agents.history import to_model_messages
from chatserver.domain import NewMessage, ToolCall
from tests.unit.agents.helpers import Conversation, agent_config, build, stored


def turn(user: str, answer: str) -> list[ModelMessage]:
    return [ModelRequest(parts=[UserPromptPart(user)]), ModelResponse(parts=[TextPart(answer)])]


def users(history: list[ModelMessage]) -> list[str]:
    return [
        str(part.content)
        for message in history
        if isinstance(message, ModelRequest)
        for part in message.parts
        if isinstance(part, UserPromptPart)
    ]


class TestEstimate:
    def test_a_token_is_four_characters_rounded_up(self) -> None:
        assert [estimate_tokens(text) for text in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]

    def test_a_turn_counts_its_prompt_answer_tool_calls_and_results(self) -> None:
        call = ToolCall("c1", "add", {"a": 1})
        messages = to_model_messages(
            stored(
                [
                    NewMessage("user", "u" * 8),
                    NewMessage("assistant", "", tool_calls=(call,)),
                    NewMessage("tool", "2", tool_call_id="c1", tool_name="add"),
                    NewMessage("assistant", "a" * 8),
                ]
            )
        )
        # 8 + (3 + len('{"a":1}')=7) + (3 + 1) + 8 = 30 characters
        assert estimate_tokens_of(messages) == 8


class TestFitting:
    def test_without_a_budget_the_whole_window_is_kept(self) -> None:
        history = turn("one", "1") + turn("two", "2")
        assert fit_history(history, budget=None, fixed=["x" * 10_000]) == history

    def test_the_oldest_turns_are_dropped_until_it_fits(self) -> None:
        history = turn("a" * 40, "b" * 40) + turn("c" * 40, "d" * 40) + turn("e" * 40, "f" * 40)
        # each turn is 20 tokens; system prompt 10 + message 10
        kept = fit_history(history, budget=60, fixed=["s" * 40, "m" * 40])
        assert users(kept) == ["c" * 40, "e" * 40]
        assert fit_history(history, budget=80, fixed=["s" * 40, "m" * 40]) == history

    def test_a_message_over_budget_runs_with_no_history_but_itself(self) -> None:
        history = turn("old", "answer")
        assert fit_history(history, budget=5, fixed=["system prompt", "m" * 400]) == []

    def test_a_window_that_starts_mid_turn_loses_that_part_first(self) -> None:
        partial: list[ModelMessage] = [ModelResponse(parts=[TextPart("x" * 400)])]
        kept = turn("kept", "ok")
        history = partial + kept
        assert split_turns(history)[0] == partial
        assert fit_history(history, budget=20, fixed=[]) == kept


class TestInATurn:
    async def test_the_model_sees_only_the_newest_turns_that_fit_the_agents_budget(
        self, factory: AgentFactory
    ) -> None:
        config = replace(agent_config(prompt="p" * 40), context_tokens=55)
        talk = Conversation(build(factory, config))
        for word in ("first-" + "x" * 30, "second-" + "y" * 30, "third-" + "z" * 30):
            await talk.say(word)
        recalled = await talk.say("/recall")
        # prompt 10 + "/recall" 2 + three turns of 20 tokens = 72: only the oldest goes to fit 55
        assert recalled.output == "recall: " + " | ".join(["second-" + "y" * 30, "third-" + "z" * 30])

    async def test_the_system_prompt_is_never_dropped(self, factory: AgentFactory) -> None:
        config = replace(agent_config(prompt="Keep me."), context_tokens=1)
        talk = Conversation(build(factory, config))
        await talk.say("hello")
        assert (await talk.say("/system")).output == "Keep me."
        assert (await talk.say("/recall")).output == "recall: "

    def test_an_agent_without_a_budget_on_a_remote_model_gets_none(self, factory: AgentFactory) -> None:
        assert build(factory, agent_config()).context_tokens is None
        assert build(factory, replace(agent_config(), context_tokens=99)).context_tokens == 99
