"""Catalog entries the resolver and lock read: engine builds and model artefacts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel

Sha256 = str


class SourceArchive(StrictModel):
    url: str
    file: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    sha256: Sha256 | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = None
    subdir: str = Field("", description="folder inside the archive that holds the source tree")
    origin: str = ""


class EngineEntry(StrictModel):
    name: Literal["llama.cpp"]
    version: str
    build_number: int | None = None
    commit: str | None = None
    source: SourceArchive
    binaries: list[str]
    backends: list[str]


class ModelArtefact(StrictModel):
    model: str
    quant: str
    kind: Literal["base", "instruct"]
    source: Literal["huggingface", "url"]
    repo: str | None = None
    revision: str | None = None
    file: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    url: str
    sha256: Sha256 | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = None
    license: str | None = None
    origin: str = ""


class Catalog(StrictModel):
    engines: list[EngineEntry]
    artefacts: list[ModelArtefact]
    sha256: str = Field(description="hash of the catalog files this was loaded from")
