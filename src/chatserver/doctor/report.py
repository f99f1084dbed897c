"""What ``chatserver doctor`` found: one line per check, and how to fix what is not OK."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Status = Literal["OK", "WARN", "FAIL"]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, "OK", detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "WARN", detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "FAIL", detail, fix)


def failed(checks: Sequence[Check]) -> bool:
    return any(check.status == "FAIL" for check in checks)


def render(checks: Sequence[Check]) -> str:
    """A table of the checks; each one not OK is followed by its fix."""
    width = max([len("CHECK"), *(len(check.name) for check in checks)])
    lines = [f"{'CHECK':<{width}}  STATUS  DETAIL"]
    for check in checks:
        lines.append(f"{check.name:<{width}}  {check.status:<6}  {check.detail}")
        if check.fix:
            lines.append(f"{'':<{width}}  {'':<6}  fix: {check.fix}")
    counts = {status: sum(check.status == status for check in checks) for status in ("OK", "WARN", "FAIL")}
    lines.append(f"\n{counts['OK']} ok, {counts['WARN']} warnings, {counts['FAIL']} failed")
    return "\n".join(lines)
