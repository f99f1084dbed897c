"""JSON text every client parses: ``json.dumps`` writes NaN and Infinity bare, which is not JSON."""

from __future__ import annotations

import json
import math
from typing import Any


def json_text(value: Any) -> str:
    """``value`` as JSON; a non-finite number (a model's tool arguments may hold one) becomes null."""
    try:
        return json.dumps(value, default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(value), default=str, allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(child) for child in value]
    return value
