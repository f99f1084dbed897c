"""Rendering the system prompt from the agent's prompt and a user's customizations."""

from __future__ import annotations

from chatserver.agents.prompt import render_system_prompt
from tests.unit.agents.helpers import customization


class TestWithoutCustomizations:
    def test_the_agent_prompt_is_returned_unchanged(self) -> None:
        assert render_system_prompt("You are helpful.\n", []) == "You are helpful.\n"

    def test_inactive_customizations_are_ignored(self) -> None:
        inactive = customization({"instructions": ["Shout"]}, active=False)
        assert render_system_prompt("Base.", [inactive]) == "Base."

    def test_empty_customizations_render_nothing(self) -> None:
        assert render_system_prompt("Base.", [customization({}), customization({"tags": []})]) == "Base."


class TestFormat:
    def test_the_documented_example(self) -> None:
        content = {
            "instructions": ["Be brief", "Use metric units"],
            "tone": "friendly",
            "style": {"emoji": False},
        }
        assert render_system_prompt("You are helpful.", [customization(content)]) == (
            "You are helpful.\n"
            "\n"
            "## instruction_set\n"
            "- Be brief\n"
            "- Use metric units\n"
            "tone: friendly\n"
            "style:\n"
            "  emoji: false"
        )

    def test_other_lists_render_under_their_key(self) -> None:
        rendered = render_system_prompt("P", [customization({"topics": ["cats", "dogs"]}, type_="interests")])
        assert rendered == "P\n\n## interests\ntopics:\n- cats\n- dogs"

    def test_scalars_render_as_key_value_with_json_for_non_strings(self) -> None:
        content = {"name": "Ada", "age": 36, "verified": True, "nickname": None, "ratio": 0.5}
        rendered = render_system_prompt("P", [customization(content, type_="profile")])
        assert rendered.splitlines()[2:] == [
            "## profile",
            "name: Ada",
            "age: 36",
            "verified: true",
            "nickname: null",
            "ratio: 0.5",
        ]

    def test_nested_objects_are_indented_per_level(self) -> None:
        content = {
            "style": {"voice": "calm", "format": {"bullets": True, "max_words": 50}, "avoid": ["jargon"]}
        }
        rendered = render_system_prompt("P", [customization(content, type_="style")])
        assert rendered.splitlines()[2:] == [
            "## style",
            "style:",
            "  voice: calm",
            "  format:",
            "    bullets: true",
            "    max_words: 50",
            "  avoid:",
            "  - jargon",
        ]

    def test_structured_list_items_render_as_compact_json(self) -> None:
        rendered = render_system_prompt("P", [customization({"examples": [{"q": "hi", "a": "hello"}]})])
        assert rendered.endswith('examples:\n- {"q": "hi", "a": "hello"}')

    def test_multi_line_values_stay_inside_their_entry(self) -> None:
        rendered = render_system_prompt("P", [customization({"instructions": ["one\ntwo"], "note": "a\nb"})])
        assert rendered.endswith("- one\n  two\nnote: a\n  b")

    def test_sections_follow_the_given_order_separated_by_blank_lines(self) -> None:
        first = customization({"instructions": ["first"]}, type_="a", priority=0)
        second = customization({"instructions": ["second"]}, type_="b", priority=1)
        assert (
            render_system_prompt("Base.\n\n", [second, first]) == "Base.\n\n## b\n- second\n\n## a\n- first"
        )

    def test_an_empty_agent_prompt_yields_only_the_sections(self) -> None:
        assert render_system_prompt("", [customization({"instructions": ["x"]})]) == "## instruction_set\n- x"

    def test_rendering_is_deterministic(self) -> None:
        items = [customization({"instructions": ["a", "b"], "k": {"x": 1}})]
        assert render_system_prompt("P", items) == render_system_prompt("P", list(items))
