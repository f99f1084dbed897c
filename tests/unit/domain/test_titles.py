"""A chat's first title reads as words, not as the command that opened it."""

from __future__ import annotations

from chatserver.domain.titles import TITLE_CHARS, title_from


def test_a_tool_command_becomes_its_words() -> None:
    assert title_from('/tool remember {"note": "buy milk"}') == "remember note: buy milk"


def test_a_plain_question_is_kept_as_it_is() -> None:
    assert title_from("  What is a monad?  ") == "What is a monad?"


def test_a_long_message_is_cut_at_a_word_with_an_ellipsis() -> None:
    title = title_from("word " * 40)
    assert len(title) <= TITLE_CHARS and title.endswith("word…")


def test_a_message_of_symbols_only_keeps_them_rather_than_no_title() -> None:
    assert title_from("{}") == "{}"
