"""StackSpec: the user's intent for one deployment (stacks/<name>.yaml)."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stackctl.models.base import StrictModel

Workload = Literal["agentic", "chat", "code", "extract"]
ArchitecturePref = Literal["any", "dense", "moe"]
BackendName = Literal["cuda", "rocm", "vulkan", "metal", "cpu"]

SAFE_NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class ModelPin(StrictModel):
    model: str = Field(description="catalog model id, e.g. gemma-3-270m")
    quant: str | None = Field(
        None, description="GGUF quant, e.g. Q4_K_M; the resolver picks if unset"
    )
    backend: BackendName | None = Field(None, description="use exactly this backend")
    engine: Literal["llama.cpp", "ds4", "mlx-lm"] | None = Field(
        None, description="use this engine"
    )


class Preferences(StrictModel):
    """What the user wants or refuses; the resolver never relaxes these silently."""

    families: list[str] = Field(
        default_factory=list, description="model families allowed (empty: all), e.g. qwen3.6"
    )
    exclude_families: list[str] = Field(
        default_factory=list, description="model families never to use"
    )
    licenses: list[str] = Field(
        default_factory=list, description="licences allowed (empty: all), e.g. apache-2.0, MIT"
    )
    architecture: ArchitecturePref = Field("any", description="dense, moe or any")
    max_download_gib: float | None = Field(
        None, gt=0, description="largest model download accepted, GiB"
    )

    @model_validator(mode="after")
    def _not_contradictory(self) -> Preferences:
        both = sorted(set(self.families) & set(self.exclude_families))
        if both:
            raise ValueError(
                f"families {both} are both allowed and excluded: drop them from one list"
            )
        return self


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
    context: int = Field(4096, ge=256, description="minimum context length in tokens, per user")
    users: int = Field(1, ge=1, le=256, description="concurrent users (parallel slots)")
    min_tg_tps: float = Field(
        20.0, gt=0, description="decode tok/s below which a stack is unusable"
    )
    preferences: Preferences = Field(default_factory=Preferences)
    pin: ModelPin | None = Field(None, description="use exactly this model (and quant)")
    serve: ServeSpec = Field(default_factory=ServeSpec)

    @model_validator(mode="after")
    def _pin_agrees_with_preferences(self) -> StackSpec:
        if self.pin and self.pin.engine == "ds4" and self.pin.backend in ("rocm", "vulkan", "cpu"):
            raise ValueError(f"engine ds4 has no '{self.pin.backend}' backend (metal or cuda)")
        if self.pin and self.pin.engine == "mlx-lm" and self.pin.backend not in (None, "metal"):
            raise ValueError(f"engine mlx-lm has no '{self.pin.backend}' backend (metal only)")
        return self
