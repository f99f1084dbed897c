"""Where a run goes on from its stored steps: the messages rebuilt, and the last response's calls
sorted into those to run (approved, with edited arguments), those with a result (completed,
denied) and those whose outcome is unknown (started, never finished)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, ToolCallPart, ToolReturnPart

from chatserver.agents.continuation import continuation, response_json, result_json
from chatserver.domain.steps import RunStep

AT = datetime(2026, 1, 1, tzinfo=UTC)


def model_step(seq: int, *calls: ToolCallPart, text: str | None = None) -> RunStep:
    parts = [*calls] if calls else [TextPart(text or "")]
    return RunStep(
        "r", seq, "model", "echo", "completed", AT, AT, payload=response_json(ModelResponse(parts=parts))
    )


def tool_step(seq: int, call: ToolCallPart, status: str, **extra: object) -> RunStep:
    return RunStep("r", seq, "tool", call.tool_name, status, AT, tool_call_id=call.tool_call_id, **extra)  # type: ignore[arg-type]


def call(name: str, call_id: str) -> ToolCallPart:
    return ToolCallPart(name, {"x": 1}, tool_call_id=call_id)


def test_earlier_steps_become_the_runs_messages_and_the_last_calls_are_sorted() -> None:
    first, ran, approved, denied, cut = (call(n, n) for n in ("first", "ran", "approved", "denied", "cut"))
    done = ToolReturnPart("ran", "ok", tool_call_id="ran")
    earlier = ToolReturnPart("first", "early", tool_call_id="first")
    steps = [
        model_step(0, first),
        tool_step(1, first, "completed", payload=result_json(earlier)),
        model_step(2, ran, approved, denied, cut),
        tool_step(3, ran, "completed", payload=result_json(done)),
        tool_step(4, approved, "approved", args={"x": 2}),
        tool_step(5, denied, "denied", reason="no"),
        tool_step(6, cut, "started"),
    ]

    going = continuation(steps)

    assert [type(m) for m in going.messages] == [ModelResponse, ModelRequest, ModelResponse]
    request = going.messages[1]
    assert isinstance(request, ModelRequest) and request.parts[0].content == "early"  # type: ignore[union-attr]
    assert [(c.tool_name, c.args) for c in going.run] == [("approved", {"x": 2})]
    assert going.settled["ran"].content == "ok"  # type: ignore[union-attr]
    assert going.settled["denied"].content == "denied by the user: no"  # type: ignore[union-attr]
    assert [c.tool_name for c in going.unknown] == ["cut"]
    assert going.next_seq == 7


def test_a_run_cut_off_before_its_first_step_goes_on_from_its_prompt() -> None:
    going = continuation([])
    assert going.messages == [] and going.run == [] and going.unknown == [] and going.next_seq == 0
