"""StackSpec: the user's intent for one deployment (stacks/<name>.yaml)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from stackctl.models.base import StrictModel

Workload = Literal["agentic", "chat", "code", "extract"]

SAFE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ModelPin(StrictModel):
    model: str = Field(description="catalog model id, e.g. gemma-3-270m")
    quant: str | None = Field(
        None, description="GGUF quant, e.g. Q4_K_M; the resolver picks if unset"
    )


class ServeSpec(StrictModel):
    host: str = Field("127.0.0.1", description="address the server listens on")
    port: int = Field(8080, ge=1, le=65535)

    @field_validator("host")
    @classmethod
    def _host_is_an_address(cls, value: str) -> str:
        if value == "localhost":
            return value
        ipaddress.ip_address(value)  # raises ValueError: pydantic reports it with the line
        return value


class StackSpec(StrictModel):
    """The stage contract `load_stack` produces and `resolve` consumes."""

    name: str = Field(pattern=SAFE_NAME, description="stack name; names lockfiles and services")
    description: str = ""
    workload: Workload = Field("chat", description="what the stack is for")
    context: int = Field(4096, ge=256, description="minimum context length in tokens")
    users: int = Field(1, ge=1, le=256, description="concurrent users (parallel slots)")
    min_tg_tps: float = Field(
        20.0, gt=0, description="decode tok/s below which a stack is unusable"
    )
    pin: ModelPin | None = Field(None, description="use exactly this model (and quant)")
    serve: ServeSpec = Field(default_factory=ServeSpec)
