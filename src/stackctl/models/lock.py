"""Lockfile: the resolved stack plus the inputs it came from, versioned like uv.lock."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel
from stackctl.models.resolved import ResolvedStack

LOCK_VERSION: Literal[1] = 1


class InputRef(StrictModel):
    name: str
    path: str | None = Field(description="repo-relative or as given; null when not from a file")
    sha256: str


class LockInputs(StrictModel):
    stack: InputRef
    hardware: InputRef
    catalog: InputRef
    tuning: InputRef | None = Field(None, description="the sweep's tuning file, when there is one")


class Lockfile(StrictModel):
    version: Literal[1] = LOCK_VERSION
    revision: int = 0
    generator: str
    inputs: LockInputs
    resolved: ResolvedStack
    content_hash: str = Field(description="sha256 of the canonical projection v1")


class LockStatus(StrictModel):
    """uv-style result of `lock --check`: satisfied, or the reasons it is stale."""

    fresh: bool
    reasons: list[str]
