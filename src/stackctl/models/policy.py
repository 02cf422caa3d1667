"""The resolver's data: quality scores, quant degradation, runtime policy and known quirks.

Read from catalog/quality.yaml, catalog/quants_quality.yaml, catalog/runtime.yaml and
catalog/quirks.yaml; every figure there names its source, every weight that is a choice says
`policy`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr

from stackctl.models.base import StrictModel

CardVerdict = Literal["recommended", "not_recommended"]
Mode = Literal["thinking", "non_thinking"]  # reasoning effort medium (gpt-oss) counts as thinking
EvidenceFamily = Literal["hard_benchmark", "human_preference", "aggregate_index"]


class QualityRule(StrictModel):
    base: str
    moe_effective: str
    points_per_pct: float
    size_weight: float = Field(description="policy: size rule's share once benchmarks exist")
    card_fit_points: dict[CardVerdict, float]


class WorkloadPolicy(StrictModel):
    benchmarks: list[str] = Field(default_factory=list)
    moe_penalty: float = 0.0
    prefer_long_context: bool = False
    speed_points_per_doubling: float = Field(
        0.0, ge=0, description="policy: points per doubling of decode speed above the floor"
    )
    speed_points_cap: float = Field(0.0, ge=0, description="policy: the most speed can add")
    min_context: int | None = Field(
        None, ge=1024, description="policy: context per user the stack grows to where it fits"
    )


class EvidenceItem(StrictModel):
    """One kind of evidence (a benchmark, the arena rating, an index) and its family."""

    family: EvidenceFamily
    what: str
    bounds: tuple[float, float] | None = Field(None, description="an imputed figure stays within")


class BenchmarkFigure(StrictModel):
    value: float
    source: str
    date: str | None = Field(None, description="as of; else the source's date (source_dates)")
    mode: Mode | None = Field(None, description="mode measured in; None: the model's served mode")


class ModelQuality(StrictModel):
    params_b: float | None = None
    params_active_b: float | None = None
    params_source: str | None = None
    card: str | None = None
    card_fit: dict[str, CardVerdict] = Field(default_factory=dict)
    mode: Mode = Field("non_thinking", description="the mode the served model runs in")
    mode_source: str | None = None
    benchmarks: dict[str, BenchmarkFigure] = Field(default_factory=dict)


class QualityFile(StrictModel):
    schema_version: Literal[1]
    rule: QualityRule
    workloads: dict[str, WorkloadPolicy]
    items: dict[str, EvidenceItem] = Field(default_factory=dict)
    points_per_sd: float = Field(20.0, gt=0, description="policy: quality points per catalog sd")
    measured_sd: float = Field(
        0.25, gt=0, description="policy: a measured figure's own noise, in catalog sd"
    )
    sources: dict[str, str]
    source_dates: dict[str, str] = Field(default_factory=dict)
    models: dict[str, ModelQuality]


class QuantQuality(StrictModel):
    ppl_delta_pct: float | None
    bpw: float
    source: str | None
    native_for: list[str] = Field(default_factory=list, description="families released so")


class SizeScaling(StrictModel):
    """Larger models lose less to the same quant: loss x (reference / total params) ^ exponent."""

    reference_params_b: float = Field(gt=0)
    exponent: float = Field(ge=0)
    bounds: tuple[float, float] = (0.5, 2.0)
    source: str


class QuantQualityFile(StrictModel):
    schema_version: Literal[1]
    fallback: Literal["nearest_lower_bpw"]
    size_scaling: SizeScaling | None = None
    quants: dict[str, QuantQuality]


class QuirkMatch(StrictModel):
    arch: list[str] | None = None
    vendor: str | None = None
    unified: bool | None = None
    os: str | None = None
    backend: list[str] | None = None
    moe: bool | None = None
    multi_gpu: bool | None = None
    speculative: str | None = None
    engine: str | None = None
    cpu_flags: list[str] | None = Field(None, description="any of these CPU ISA flags")


class QuirkRequires(StrictModel):
    driver: str | None = None
    runtime: dict[str, str] = Field(default_factory=dict)
    kernel: str | None = None
    firmware: str | None = None
    packages: list[str] = Field(default_factory=list)


class QuirkEffect(StrictModel):
    requires: QuirkRequires = Field(default_factory=QuirkRequires)
    kernel_params: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    server: dict[str, str] = Field(default_factory=dict, description="load_mode: none; repack: off")
    backend_points: dict[str, float] = Field(default_factory=dict, description="policy")
    raise_gtt_budget: bool = Field(False, description="set GTT = RAM - reserve via ttm")
    notes: list[str] = Field(default_factory=list)


class Quirk(StrictModel):
    id: str
    summary: str
    source: str
    match: QuirkMatch
    effect: QuirkEffect = Field(default_factory=QuirkEffect)


class QuirksFile(StrictModel):
    schema_version: Literal[1]
    quirks: list[Quirk]


class MtpReference(StrictModel):
    """The box and file an MTP speed-up was measured on (declared hardware names)."""

    system: str
    ram_gib: float
    backend: str
    quant: str


class MtpSpeedup(StrictModel):
    speedup: float = Field(gt=1, description="measured on `reference`")
    n_max: int = Field(ge=1)
    acceptance: float = Field(gt=0, lt=1, description="per drafted token, measured")
    reference: MtpReference
    source: str


class DraftRule(StrictModel):
    """A draft model for a target model: its file, and the acceptance measured for the pair."""

    draft: str = Field(description="catalog model id of the draft")
    quant: str
    acceptance: float = Field(gt=0, lt=1, description="per drafted token")
    n_max: int = Field(ge=1, description="--spec-draft-n-max")
    source: str


class UbatchRule(StrictModel):
    backend: str
    arch: str | None = None
    moe: bool | None = None
    ubatch: int
    source: str


class Ds4Memory(StrictModel):
    """What ds4 holds in memory, from the ds4 project's own statements (runtime.yaml)."""

    weights_gb: dict[str, float] = Field(description="GGUF size in GB (1e9 bytes) per quant")
    weights_source: str
    kv_gb_per_mtoken: float = Field(gt=0)
    kv_source: str


class RuntimeFile(StrictModel):
    schema_version: Literal[1]
    kv_quantize_above_ctx: int
    kv_quant_type: Literal["q8_0", "q4_0"]
    kv_source: str
    speculative_max_users: int
    speculative_source: str
    speculative_min_gain: float = Field(gt=1, description="policy: predicted gain it must bring")
    mtp: dict[str, MtpSpeedup] = Field(default_factory=dict)
    drafts: dict[str, DraftRule] = Field(default_factory=dict, description="target id -> draft")
    backends_by_vendor: dict[str, list[str]]
    backend_points: dict[str, float] = Field(default_factory=dict, description="policy")
    ubatch: list[UbatchRule] = Field(default_factory=list)
    gtt_reserve_gib: float
    gtt_source: str
    cuda_driver_min: dict[str, str] = Field(default_factory=dict, description="CUDA -> driver")
    ds4: Ds4Memory | None = None


class Policy(StrictModel):
    quality: QualityFile
    quants: QuantQualityFile
    quirks: QuirksFile
    runtime: RuntimeFile
    # The content key of the files it was loaded from (stackctl.loadcache), under which the
    # quality evidence is also kept between runs, with the quality file it holds for it.
    _source: tuple[str, QualityFile] | None = PrivateAttr(default=None)

    def loaded_from(self, key: str | None) -> None:
        self._source = (key, self.quality) if key else None

    def source_key(self) -> str | None:
        """The content key, unless this is a copy with another quality file (or none)."""
        src = self._source
        return src[0] if src and src[1] is self.quality else None
