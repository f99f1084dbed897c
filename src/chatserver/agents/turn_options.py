"""A turn's options on the framework's terms: client tools, tool choice and structured output.

* Client tools are pydantic-ai external tools (``ExternalToolset``: ``ToolDefinition(kind="external")``)
  next to the agent's own: the model sees both, the loop runs only the agent's and hands calls of
  the others back to the caller.
* ``tool_choice`` is the framework's model setting of that name, which its providers map onto
  theirs (``ModelSettings.tool_choice``).
* Structured output is the framework's native output mode (the provider's JSON-schema response
  format) where the model supports it, else its prompted mode (the schema in the instructions);
  either way the answer is checked here against the schema, and a model's answer that does not
  fit is a model error, never passed on.
"""

from __future__ import annotations

from typing import Any

from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.output import OutputObjectDefinition
from pydantic_ai.settings import ModelSettings
from pydantic_ai.settings import ToolChoice as FrameworkToolChoice
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.toolsets import AbstractToolset, CombinedToolset
from pydantic_ai.toolsets.external import ExternalToolset

from chatserver.agents.types import TurnDeps
from chatserver.domain import OutputFormat, TurnOptions
from chatserver.errors import ModelError
from chatserver.json_schemas import violation
from chatserver.untrusted import parse_json

ANY_OBJECT: dict[str, Any] = {"type": "object"}


def toolset(own: AbstractToolset[TurnDeps], options: TurnOptions) -> AbstractToolset[TurnDeps]:
    """The agent's toolset plus the caller's tools; a name both have is refused by the framework."""
    if not options.client_tools:
        return own
    defs = [
        ToolDefinition(
            name=tool.name,
            parameters_json_schema=tool.parameters,
            description=tool.description,
            strict=tool.strict,
            kind="external",
        )
        for tool in options.client_tools
    ]
    return CombinedToolset([own, ExternalToolset[TurnDeps](defs, id="client")])


def model_settings(options: TurnOptions) -> ModelSettings | None:
    choice = options.tool_choice
    if choice == "auto":
        return None
    chosen: FrameworkToolChoice = [choice[1]] if isinstance(choice, tuple) else choice
    return ModelSettings(tool_choice=chosen)


def with_output(
    params: ModelRequestParameters, model: Model, output: OutputFormat | None
) -> ModelRequestParameters:
    """``params`` asking for JSON output: native where the model supports a schema, else prompted."""
    if output is None:
        return params
    schema = output.schema if output.schema is not None else ANY_OBJECT
    native = bool(model.profile.get("supports_json_schema_output", False))
    definition = OutputObjectDefinition(json_schema=schema, name=output.name, strict=output.strict)
    return ModelRequestParameters(
        function_tools=params.function_tools,
        output_mode="native" if native else "prompted",
        output_object=definition,
        allow_text_output=True,
        instruction_parts=params.instruction_parts,
    )


def checked_output(text: str, output: OutputFormat | None) -> str:
    """``text`` if it is what ``output`` asks for; else a ``ModelError`` saying what is wrong."""
    if output is None:
        return text
    try:
        value = parse_json(text)
    except ValueError:  # UntrustedJsonError is one too
        raise ModelError("the model's answer is not valid JSON, as the response format requires") from None
    problem = violation(value, output.schema if output.schema is not None else ANY_OBJECT)
    if problem is not None:
        raise ModelError(f"the model's answer does not match the response format's schema {problem}")
    return text


def external_calls(tool_defs: list[ToolDefinition], names: list[str]) -> set[str]:
    """Which of ``names`` are the caller's tools."""
    external = {tool.name for tool in tool_defs if tool.kind == "external"}
    return {name for name in names if name in external}
