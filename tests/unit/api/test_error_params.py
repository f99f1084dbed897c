"""OpenAI's error.param and message from FastAPI's field errors."""

from __future__ import annotations

from chatserver.api.error_params import first_problem


def error(*loc: str | int, msg: str = "bad") -> dict[str, object]:
    return {"loc": list(loc), "msg": msg, "type": "value_error"}


def test_param_is_the_dotted_path_without_the_source() -> None:
    sent = {"messages": [{"role": "user", "content": ""}]}
    detail = [error("body", "messages", 0, "content", msg="too short")]
    assert first_problem(detail, sent) == ("messages.0.content: too short", "messages.0.content")


def test_a_union_member_in_the_loc_is_not_named() -> None:
    sent = {"messages": [{"role": "user", "content": 5}]}
    detail = [error("body", "messages", 0, "content", "str"), error("body", "messages", 0, "content", "list")]
    assert first_problem(detail, sent) == ("messages.0.content: bad (and 1 more)", "messages.0.content")


def test_a_missing_field_is_named() -> None:
    assert first_problem([error("body", "model", msg="Field required")], {"messages": []})[1] == "model"


def test_a_header_is_named_by_its_name() -> None:
    assert first_problem([error("header", "X-Chat-Id")])[1] == "X-Chat-Id"


def test_an_error_of_the_whole_body_has_no_param() -> None:
    assert first_problem([error("body", msg="not JSON")], "{") == ("not JSON", None)
    assert first_problem("plain words") == ("invalid request", None)
