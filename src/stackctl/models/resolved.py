"""ResolvedStack: every choice the resolver made, with its pins. The lock records it verbatim."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel


class ArtefactPin(StrictModel):
    """A file to fetch: where from, and the sha256 that proves it is the right one."""

    url: str
    file: str
    sha256: str | None = Field(description="null until a verified fetch fills it in")
    size: int | None
    verified: bool = Field(description="true when sha256 is known from a trusted source")
    origin: str = ""


class EnginePin(StrictModel):
    name: Literal["llama.cpp"]
    version: str = Field(description="upstream build, b<N>")
    build_number: int | None
    commit: str | None
    backend: str
    source: ArtefactPin
    source_subdir: str
    cmake_flags: list[str]
    targets: list[str]
    build_key: str = Field(
        description="source sha256 + CMake flags + targets: names the build cache"
    )


class ModelChoice(StrictModel):
    id: str
    quant: str
    kind: Literal["base", "instruct"]
    repo: str | None
    revision: str | None
    license: str | None
    artefact: ArtefactPin


class RuntimeFlags(StrictModel):
    host: str
    port: int
    context: int
    threads: int
    flash_attn: Literal["on", "off", "auto"]
    parallel: int
    cache_type_k: str
    cache_type_v: str
    server_args: list[str] = Field(description="llama-server arguments after the binary and -m")


class Prediction(StrictModel):
    memory_total_bytes: int
    tg_tps: float
    tg_tps_range: tuple[float, float]
    pp_tps: float
    pp_tps_range: tuple[float, float]
    basis: list[str]


class ResolvedStack(StrictModel):
    """The stage contract `resolve` produces and `lock` records."""

    stack: str
    workload: str
    hardware: str
    engine: EnginePin
    model: ModelChoice
    runtime: RuntimeFlags
    service: str = Field(description="service unit / process name")
    predicted: Prediction
    reasons: list[str] = Field(description="why this stack was chosen, in words")
