"""Catalog entries the resolver and lock read: engine builds and model artefacts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel
from stackctl.models.resolved import ArtefactSource, BaseImage

Sha256 = str


class SourceArchive(StrictModel):
    url: str
    file: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    sha256: Sha256 | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    size: int | None = None
    subdir: str = Field("", description="folder inside the archive that holds the source tree")
    origin: str = ""
    released: str | None = Field(
        None, description="publication time (ISO 8601, UTC): the images' SOURCE_DATE_EPOCH"
    )


class MeasuredSpeed(StrictModel):
    """A published measurement an engine without an estimator model is predicted from."""

    chip: str = Field(description="catalog/hardware.yaml chip id")
    bandwidth_gbps: float
    tg_tps: float
    pp_tps: float
    source: str


class VulkanHeaderDeb(StrictModel):
    """A Debian package whose headers a Vulkan build unpacks into its own include folder."""

    package: str
    version: str
    url: str
    file: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")
    size: int
    origin: str = ""


class VulkanHeaders(StrictModel):
    """The oldest Vulkan headers the pinned build compiles against, and newer ones to fetch."""

    min_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    source: str
    debs: list[VulkanHeaderDeb] = Field(description="unpacked, never installed")


class EngineComparison(StrictModel):
    """One published same-box run of mlx-lm and llama.cpp at comparable bit widths."""

    chip: str = Field(description="catalog/hardware.yaml arch (chip family) of the box measured")
    model: str = Field(description="the model measured (a catalog id where the catalog has it)")
    moe: bool = Field(description="a mixture-of-experts model: evidence is matched per kind")
    bits: Literal[4, 8]
    mlx_quant: str
    gguf_quant: str
    mlx_tg: float
    gguf_tg: float
    mlx_pp: float | None = None
    gguf_pp: float | None = None
    versions: str = Field(description="mlx-lm / llama.cpp builds as the source states them")
    url: str
    date: str
    source: str
    counted: bool = Field(True, description="false: kept for the record, not used (why_not)")
    why_not: str | None = None


class MlxRules(StrictModel):
    """How the resolver weighs mlx-lm against llama.cpp/Metal (catalog/engines.yaml)."""

    comparable: dict[str, str] = Field(description="MLX quant -> the GGUF quant of like bits")
    faster_margin: float = Field(gt=0, description="MLX is chosen only above this decode ratio")
    quality: str = Field(description="how the quality of the two is compared, and why")
    versus_llamacpp: list[EngineComparison]


class EngineEntry(StrictModel):
    name: Literal["llama.cpp", "ds4", "mlx-lm"]
    version: str
    build_number: int | None = None
    commit: str | None = None
    source: SourceArchive
    binaries: list[str]
    backends: list[str]
    models: list[str] | None = Field(None, description="the only models it serves; null = any")
    min_memory_gib: float | None = Field(None, description="smallest GPU budget it supports")
    measured: list[MeasuredSpeed] = Field(default_factory=list)
    vulkan_headers: VulkanHeaders | None = None
    mlx: MlxRules | None = None
    notes: list[str] = Field(default_factory=list)


class ModelArtefact(StrictModel):
    """A file the lock can pin: where it lives (repo, revision, file), how big it is and the
    sha256 that proves it, each with where that figure came from (catalog/artefacts.yaml).

    sha256 null means unverified: the lock says so and the first fetch records the hash."""

    model: str
    quant: str
    kind: Literal["base", "instruct"]
    source: Literal["huggingface", "url"]
    repo: str | None = None
    revision: str | None = Field(None, description="a commit where one is public, else main")
    revision_note: str | None = Field(
        None, description="why `revision` is not a commit: what the sources give instead"
    )
    file: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")
    url: str
    sha256: Sha256 | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    sha256_source: str | None = Field(None, description="the public listing the sha256 is from")
    size: int | None = Field(None, description="bytes, all parts of a split file together")
    size_basis: Literal["exact", "rounded", "derived"] | None = Field(
        None,
        description="exact: a listing's byte count; rounded: a page's GB figure (exact at first "
        "fetch); derived: computed from a sibling file, the formula in size_source",
    )
    size_source: str | None = Field(
        None, description="where the size is from; with no size, why it is unknown"
    )
    license: str | None = None
    origin: str = ""
    parts: int = Field(1, ge=1, description="split GGUF: `file` is the first of N shards")
    engine: Literal["llama.cpp", "ds4", "mlx-lm"] = "llama.cpp"
    sources: list[ArtefactSource] = Field(
        default_factory=list, description="fallbacks after `url` for the same file"
    )
    tensor_mix: TensorMix | None = None


class TensorMix(StrictModel):
    """A file whose tensors are not the quant's usual recipe: each type's share of the weights.

    The quality score weighs each type's published loss by its share (catalog/quality.yaml)."""

    shares: dict[str, float] = Field(description="quant type -> share of the parameters")
    source: str


class ImageSet(StrictModel):
    """Base images and distribution packages of one backend's Containerfile."""

    build: BaseImage
    run: BaseImage
    build_packages: dict[str, str | None] = Field(description="name -> version (null: unpinned)")
    run_packages: dict[str, str | None]
    # the install closure on the base beyond the named packages (scripts/gen_image_packages.py)
    build_dependencies: dict[str, str] = Field(default_factory=dict)
    run_dependencies: dict[str, str] = Field(default_factory=dict)
    packages_source: str | None = None
    note: str = ""


class Catalog(StrictModel):
    engines: list[EngineEntry]
    artefacts: list[ModelArtefact]
    images: dict[str, ImageSet] = Field(default_factory=dict, description="catalog/images.yaml")
    sha256: str = Field(description="hash of the catalog files this was loaded from")
