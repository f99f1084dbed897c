"""JSON Schemas a caller sends (client tools' parameters, response formats): checked, and applied."""

from __future__ import annotations

from typing import Any

import jsonschema


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a JSON Schema (draft 2020-12), or None when it is one."""
    if not isinstance(schema, dict):
        return "must be a JSON Schema object"
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as error:
        return f"is not a valid JSON Schema: {error.message}"
    return None


def violation(value: Any, schema: dict[str, Any]) -> str | None:
    """Where and how ``value`` breaks ``schema`` (the most relevant error), or None when it fits."""
    errors = jsonschema.Draft202012Validator(schema).iter_errors(value)
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path) or "(the answer)"
    return f"at {where}: {error.message}"
