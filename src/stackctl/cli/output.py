"""Printing helpers shared by the subcommands."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

from stackctl.errors import StackctlError

JSON_SCHEMA_VERSION = 1


def internal_error(exc: Exception) -> StackctlError:
    """An exception no stage turned into a StackctlError, worded for the user."""
    error = StackctlError(f"{type(exc).__name__}: {exc}")
    error.code = "internal-error"
    return error


def report_error(exc: StackctlError) -> None:
    print(f"error[{exc.code}]: {exc.message}", file=sys.stderr)
    if exc.source is not None:
        print(f"  --> {exc.source}", file=sys.stderr)
    for line in exc.details:
        print(f"  {line}", file=sys.stderr)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=sys.stderr)


def print_json(payload: BaseModel | dict[str, Any]) -> None:
    """Every --json output carries schema_version first."""
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    out = {"schema_version": JSON_SCHEMA_VERSION}
    out.update({k: v for k, v in data.items() if k != "schema_version"})
    print(json.dumps(out, indent=2))


def info(message: str) -> None:
    """Progress and notes go to stderr so stdout stays machine-readable."""
    print(message, file=sys.stderr, flush=True)


def ceiling_note(ceiling: float | None, places: int) -> str:
    """'; ceiling N' after a range: the physics bound no figure of it may pass."""
    return f"; ceiling {ceiling:.{places}f}" if ceiling else ""
