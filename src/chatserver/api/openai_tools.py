"""The caller's tools, ``tool_choice`` and ``response_format`` of OpenAI's chat completions, read as
a turn's ``TurnOptions`` (``domain.turn_options``); ``InvalidInput`` names the offending field."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from chatserver.domain import NO_OPTIONS, ClientTool, OutputFormat, ToolChoice, TurnOptions
from chatserver.errors import InvalidInput
from chatserver.json_schemas import schema_problem

TOOL_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionIn(_Lenient):
    name: str = Field(pattern=TOOL_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=10_000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ToolIn(_Lenient):
    type: Literal["function"]
    function: FunctionIn


class ChosenFunction(_Lenient):
    name: str = Field(pattern=TOOL_NAME_PATTERN)


class NamedToolChoice(_Lenient):
    type: Literal["function"]
    function: ChosenFunction


ToolChoiceIn = Literal["none", "auto", "required"] | NamedToolChoice


class TextFormat(_Lenient):
    type: Literal["text"]


class JsonObjectFormat(_Lenient):
    type: Literal["json_object"]


class JsonSchemaIn(_Lenient):
    name: str = Field(default="response", pattern=TOOL_NAME_PATTERN)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class JsonSchemaFormat(_Lenient):
    type: Literal["json_schema"]
    json_schema: JsonSchemaIn


ResponseFormatIn = Annotated[TextFormat | JsonObjectFormat | JsonSchemaFormat, Field(discriminator="type")]


def turn_options(
    tools: list[ToolIn] | None,
    tool_choice: ToolChoiceIn | None,
    response_format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None,
    *,
    continues: bool,
) -> TurnOptions:
    client_tools = tuple(_client_tool(index, tool) for index, tool in enumerate(tools or ()))
    names = [tool.name for tool in client_tools]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise InvalidInput(f"two tools are named '{duplicate}'", field="tools")
    choice = _choice(tool_choice, set(names))
    options = TurnOptions(client_tools, choice, _output(response_format), continues)
    return NO_OPTIONS if options.empty else options


def _client_tool(index: int, tool: ToolIn) -> ClientTool:
    function = tool.function
    parameters = function.parameters if function.parameters is not None else EMPTY_PARAMETERS
    problem = schema_problem(parameters)
    if problem is not None:
        raise InvalidInput(f"the tool's parameters {problem}", field=f"tools.{index}.function.parameters")
    return ClientTool(function.name, parameters, function.description, function.strict)


def _choice(choice: ToolChoiceIn | None, names: set[str]) -> ToolChoice:
    if choice is None or choice == "auto":
        return "auto"
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in names:
            raise InvalidInput(
                f"tool_choice names '{choice.function.name}', which is not among the request's tools",
                field="tool_choice.function.name",
            )
        return ("function", choice.function.name)
    if choice == "required" and not names:
        raise InvalidInput("tool_choice 'required' needs tools", field="tool_choice")
    return choice


def _output(response_format: TextFormat | JsonObjectFormat | JsonSchemaFormat | None) -> OutputFormat | None:
    if response_format is None or isinstance(response_format, TextFormat):
        return None
    if isinstance(response_format, JsonObjectFormat):
        return OutputFormat("json_object")
    spec = response_format.json_schema
    if spec.schema_ is None:
        raise InvalidInput(
            "a json_schema response format needs a schema", field="response_format.json_schema"
        )
    problem = schema_problem(spec.schema_)
    if problem is not None:
        raise InvalidInput(f"the schema {problem}", field="response_format.json_schema.schema")
    return OutputFormat("json_schema", spec.schema_, spec.name, spec.strict)
