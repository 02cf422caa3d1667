"""The estimator's data: model architectures, GGUF types and quant recipes, backend factors.

Everything here is read from `catalog/models.yaml`, `catalog/quants.yaml` and
`catalog/backends.yaml`; every number there names its source. `load_estimate_catalog(root)`
reads all three; `lookup_model` and `lookup_quant` accept the names people use.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, PrivateAttr, field_validator

from stackctl.catalog import mlx_rules
from stackctl.errors import CatalogError, EstimateError
from stackctl.models.base import StrictModel
from stackctl.models.catalog import MlxRules
from stackctl.yamlio import read_yaml, validate_yaml

# Layer kinds in `layer_pattern`: F full attention, S sliding window, A MLA attention,
# L gated-DeltaNet linear attention, M Mamba-2, C short convolution (LFM2), E an FFN-only
# (MoE) block and "-" an MLP-only block (Nemotron-H), K a layer that reuses another's KV.
LayerKind = Literal["F", "S", "A", "L", "M", "C", "E", "-"]
LAYER_KINDS = frozenset("FSALMCE-")


class MoeFacts(StrictModel):
    experts: int = Field(ge=1)
    experts_used: int = Field(ge=1)
    expert_ffn: int = Field(ge=1)
    shared_experts: int = 0
    shared_ffn: int = 0
    dense_lead_layers: int = 0
    dense_ffn: int = 0
    dense_branch_ffn: int = Field(0, description="Gemma 4 26B: a dense MLP next to the MoE")


class MlaFacts(StrictModel):
    kv_lora_rank: int
    q_lora_rank: int | None = None
    qk_rope_dim: int
    qk_nope_dim: int
    v_head_dim: int


class GdnFacts(StrictModel):
    key_heads: int
    value_heads: int
    key_dim: int
    value_dim: int
    conv_kernel: int


class MambaFacts(StrictModel):
    heads: int
    head_dim: int
    state: int
    groups: int
    conv_kernel: int


class ModelEntry(StrictModel):
    id: str
    name: str
    family: str
    gguf_arch: str = Field(description="llama.cpp's general.architecture for this model")
    aliases: list[str] = Field(default_factory=list)
    license: str | None = None
    params_total: float | None = None
    params_active: float | None = None
    n_layer: int = Field(ge=1)
    hidden: int = Field(ge=1)
    n_head: int = Field(ge=1)
    n_head_kv: int = Field(ge=0)
    head_dim: int = Field(ge=1)
    head_dim_v: int | None = None
    ffn: int = Field(0, ge=0, description="dense FFN width (0 when every layer is MoE)")
    vocab: int = Field(ge=1)
    ctx_native: int = Field(ge=1)
    tied_embeddings: bool = False
    layer_pattern: str = Field("F", description="per-layer kinds, repeated to n_layer")
    layer_pattern_explicit: bool = Field(False, description="pattern lists every layer once")
    swa_window: int | None = None
    global_head_dim: int | None = None
    global_n_head_kv: int | None = None
    kv_shared_layers: int = 0
    ple_dim: int = 0
    mtp_layers: int = 0
    moe: MoeFacts | None = None
    mla: MlaFacts | None = None
    gdn: GdnFacts | None = None
    mamba: MambaFacts | None = None
    shortconv_l_cache: int | None = None
    attn_bias: bool = False
    attn_sinks: bool = False
    estimable: bool = Field(True, description="false where the cache layout is unknown")
    sources: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)

    def layer_kinds(self) -> list[str]:
        """One kind letter per layer, the pattern repeated (or given once) over n_layer."""
        pattern = self.layer_pattern
        if self.layer_pattern_explicit:
            return list(pattern)
        return [pattern[i % len(pattern)] for i in range(self.n_layer)]


class TypeInfo(StrictModel):
    id: int
    block: int
    bytes: int


class RecipeRule(StrictModel):
    category: Literal["attn_v", "ffn_down", "attn_output", "attn_k", "attn_q"]
    type: str
    when: (
        Literal[
            "more_bits",
            "first_eighth",
            "first_sixteenth",
            "first_two",
            "first_four",
            "gqa4",
            "gqa4_or_experts4",
        ]
        | None
    ) = None


class Recipe(StrictModel):
    file_type: int
    default: str
    output: Literal["keep", "keep_q8", "q6k", "q5k", "q8"]
    token_embd: str | None = None
    experts: str | None = None
    rules: list[RecipeRule] = Field(default_factory=list)
    ref_bpw_llama31_8b: float | None = None


class QuantCatalog(StrictModel):
    schema_version: Literal[1]
    types: dict[str, TypeInfo]
    fallback: dict[str, str]
    recipes: dict[str, Recipe]
    aliases: dict[str, str] = Field(default_factory=dict)

    def type_by_id(self) -> dict[int, str]:
        return {info.id: name for name, info in self.types.items()}


# Weight-storage families whose kernels differ (ggml type names; speed.quant_family): legacy
# blocks of 32 with one scale (Q4_0..Q8_0), K-quants (256-value super-blocks with sub-scales),
# IQ types (grid lookups), the 4-bit floats (MXFP4, NVFP4), and the unquantised types.
QuantFamily = Literal["legacy", "kquant", "iquant", "fp4", "f16", "bf16", "f32"]
# How llama.cpp runs a CPU's quantised dot products in decode (devices.dot_path)
DotPath = Literal["", "vnni", "amx"]
QuantFactor = Annotated[float, Field(ge=1, le=10)]


def _probe_share(description: str) -> Any:
    """A decode efficiency as a share of the detect probe's measured stream: unset, or in (0, 1]."""
    return Field(None, gt=0, le=1, description=description)


class BackendFactors(StrictModel):
    decode_efficiency: float = Field(gt=0, le=1, description="share of bandwidth reached")
    decode_range: tuple[float, float]
    prefill_efficiency: float = Field(gt=0, le=1, description="share of peak FLOPs reached")
    prefill_range: tuple[float, float]
    attention_decode_efficiency: float = Field(
        gt=0, le=1, description="decode: share of peak ops the attention kernels reach"
    )
    attention_decode_range: tuple[float, float]
    attention_prefill_efficiency: float = Field(
        gt=0, le=1, description="prefill: share of peak ops the attention kernels reach"
    )
    attention_prefill_range: tuple[float, float]
    kv_read_efficiency: float | None = Field(
        None, gt=0, le=1, description="decode: share of bandwidth reading the KV (None: as weights)"
    )
    kv_read_range: tuple[float, float] = (0.0, 0.0)
    layer_overhead_ms: float = Field(
        0.0,
        ge=0,
        description="decode: fixed milliseconds per layer per token, at a GPU clock of "
        "speed.REFERENCE_CLOCK_GHZ (DeviceSpeed.layer_scale)",
    )
    layer_overhead_range: tuple[float, float] = (0.0, 0.0)
    expert_slot_ms: float = Field(
        0.0, ge=0, description="decode: fixed ms per routed expert used, per MoE layer per token"
    )
    expert_slot_range: tuple[float, float] = (0.0, 0.0)
    scan_step_us: float = Field(
        0.0,
        ge=0,
        description="prefill: fixed microseconds per prompt token per recurrent layer (the "
        "token-sequential state scan), at a GPU clock of speed.REFERENCE_CLOCK_GHZ",
    )
    scan_step_range: tuple[float, float] = (0.0, 0.0)
    expert_prefill_efficiency: float | None = Field(
        None, gt=0, le=1, description="prefill: share of peak for routed-expert matmuls"
    )
    expert_prefill_range: tuple[float, float] = (0.0, 0.0)
    prefill_kv_passes: float = Field(
        0.0,
        ge=0,
        description="prefill: times a prompt token's attended KV bytes cross memory (flash "
        "attention re-reads the cache once per tile of query rows: about 1 / rows per tile)",
    )
    prefill_kv_passes_range: tuple[float, float] = (0.0, 0.0)
    quant_decode_factor: dict[str, QuantFactor] = Field(
        default_factory=dict,
        description="decode: time multiplier of the weight read per quant family (speed.py)",
    )
    compute_overhead_bytes: int = Field(0, description="fixed per-device buffer overhead")
    per_core_bandwidth_gbps: float | None = Field(
        None, description="CPU only: memory bandwidth one core sustains in decode (assumed)"
    )
    expert_split_overhead_ms: float | None = Field(
        None, description="decode: per layer whose experts sit in RAM beside a GPU"
    )
    host_link_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description="prefill: share of the GPU's host link rate its offloaded experts cross at",
    )
    offload_decode_efficiency: float | None = Field(
        None,
        gt=0,
        le=1,
        description="decode: share of the host's stated bandwidth its offloaded experts (MoE "
        "offload beside a GPU) are read at",
    )
    measured_decode_efficiency: float | None = Field(
        None, gt=0, le=1, description="share of a bandwidth measured on the box (detect probe)"
    )
    measured_decode_range: tuple[float, float] = (0.0, 0.0)
    measured_vnni_decode_efficiency: float | None = _probe_share(
        "the same on a CPU with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI) and no AMX, "
        "or with AMX left idle (--no-repack)"
    )
    measured_vnni_decode_range: tuple[float, float] = (0.0, 0.0)
    measured_amx_decode_efficiency: float | None = _probe_share(
        "the same on a CPU with AMX: llama.cpp repacks the weights into its AMX buffer, whose "
        "one-row products take a VNNI fast path (ggml-cpu/amx/mmq.cpp), so decode keeps up with "
        "more of the probe's stream"
    )
    measured_amx_decode_range: tuple[float, float] = (0.0, 0.0)
    dot_rate_gws: dict[str, float] = Field(
        default_factory=dict,
        description="CPU decode: billions of weights per second one thread's dot products of a "
        "ggml type get through, for the types whose dot product, not the memory, sets the pace "
        "at few threads (speed.py takes the slower of the two per type)",
    )
    dot_rate_range: tuple[float, float] = Field(
        (1.0, 1.0), description="multipliers of dot_rate_gws at the slow and the fast end"
    )
    assumed_bandwidth_range: tuple[float, float] = Field(
        (1.0, 1.0), description="multipliers that widen the range when bandwidth is assumed"
    )
    prefill_int8: bool = Field(
        False,
        description="prefill: quantised matmuls run on the int8 matrix units (llama.cpp CUDA's "
        "MMQ), so the prefill efficiencies are shares of the chip's int8 rate for quantised "
        "weights (of the FP16 peak for float weights)",
    )
    decode_validation: tuple[float, float] | None = Field(
        None,
        description="measured / predicted decode over the held-out public rows of this backend "
        "(10th and 90th percentile, leave-one-source-out; catalog/speed_fit.yaml): the range "
        "is never narrower than the prediction times these",
    )
    prefill_validation: tuple[float, float] | None = Field(None, description="the same for prefill")
    sources: list[str] = Field(default_factory=list)

    @field_validator("dot_rate_gws")
    @classmethod
    def _positive_rates(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(t for t, rate in value.items() if rate <= 0 or t != t.upper())
        if bad:
            raise ValueError(f"dot rates need ggml type names and rates above 0: {bad}")
        return value

    @field_validator("quant_decode_factor")
    @classmethod
    def _known_families(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - set(get_args(QuantFamily))
        if unknown:
            raise ValueError(f"unknown quant families {sorted(unknown)}: {get_args(QuantFamily)}")
        return value

    def quant_factor(self, family: str) -> float:
        """The decode time multiplier of weights stored in `family` (1: none recorded)."""
        return self.quant_decode_factor.get(family, 1.0)


class OpsPerByte(StrictModel):
    """Peak ops per byte of bandwidth for a vendor's GPUs, where the chip table has no peak."""

    mid: float = Field(gt=0)
    range: tuple[float, float]
    source: str


class CpuPeak(StrictModel):
    flops_per_cycle_per_core: float
    clock_ghz: float
    sources: list[str] = Field(default_factory=list)


class SpeculativeFacts(StrictModel):
    default_acceptance: float = Field(gt=0, lt=1, description="per-token, when none is given")
    acceptance_spread: float = Field(ge=0, lt=1, description="+/- for the range")
    sources: list[str] = Field(default_factory=list)


class EngineRules(StrictModel):
    """Memory rules of engines other than llama.cpp (catalog/backends.yaml `engines`)."""

    vllm_gpu_memory_utilization: float = Field(gt=0, le=1)
    vllm_profile_tokens: int = Field(ge=1, description="tokens of vLLM's activation profile run")
    ds4_weights_bytes: dict[str, int] = Field(default_factory=dict)
    ds4_kv_bytes_per_token: float = 0.0
    ds4_active_params: float = 0.0
    ds4_decode_efficiency: float = Field(0.1, gt=0, le=1)
    ds4_decode_range: tuple[float, float] = (0.05, 0.2)
    sources: list[str] = Field(default_factory=list)


class BackendCatalog(StrictModel):
    schema_version: Literal[1]
    backends: dict[str, BackendFactors]
    cpu_peak: dict[str, CpuPeak]
    core_bandwidth_range: tuple[float, float] = Field(
        (1.0, 1.0), description="multipliers around cores x a published per-core figure"
    )
    gpu_peak_tflops: dict[str, float] = Field(default_factory=dict)
    ops_per_byte_fallback: dict[str, OpsPerByte] = Field(default_factory=dict)
    os_reserve: dict[str, int]
    os_reserve_sources: list[str] = Field(default_factory=list)
    reference_points: list[dict[str, str | float | int]] = Field(default_factory=list)
    speculative: SpeculativeFacts
    engines: EngineRules


class ModelCatalogFile(StrictModel):
    schema_version: Literal[1]
    sources: dict[str, str]
    models: list[ModelEntry]


class EstimateCatalog(StrictModel):
    models: dict[str, ModelEntry]
    quants: QuantCatalog
    backends: BackendCatalog
    # The backend keys whose factors come from the public fit (speed_fit.yaml's `apply`)
    fitted_backends: frozenset[str] = frozenset()
    # mlx-lm against llama.cpp on the same boxes (catalog/engines.yaml): MLX speed (mlx_speed.py)
    mlx: MlxRules | None = None
    # Typed tensor tables already built from this catalog, by (model id, recipe): a resolver asks
    # for the same model many times, and building one is most of an estimate's cost.
    _views: dict[tuple[str, str], Any] = PrivateAttr(default_factory=dict)
    # The content key of the files it was loaded from (stackctl.loadcache), under which the
    # tables are also kept between runs, with the models and quants it holds for them.
    _source: tuple[str, dict[str, ModelEntry], QuantCatalog] | None = PrivateAttr(default=None)

    def memo(self) -> dict[tuple[str, str], Any]:
        return self._views

    def loaded_from(self, key: str | None) -> None:
        self._source = (key, self.models, self.quants) if key else None

    def source_key(self) -> str | None:
        """The content key, unless this is a copy with other models or quants (or none)."""
        src = self._source
        return src[0] if src and src[1] is self.models and src[2] is self.quants else None


# The host's MoE-offload factors (the `cpu` entry's hand-over per split layer and host link):
# the public fit's only figures for the CPU, whose own factors rest on this project's runs.
HOST_OFFLOAD_FIELDS = frozenset(
    {"expert_split_overhead_ms", "host_link_efficiency", "offload_decode_efficiency"}
)


class FittedFactors(StrictModel):
    """catalog/speed_fit.yaml: backend factors fitted to public rows, over backends.yaml."""

    schema_version: Literal[1]
    provenance: list[str]
    apply: list[str] = Field(
        description="the fitted backends laid over backends.yaml; the others are reported only"
    )
    backends: dict[str, dict[str, float | tuple[float, float] | dict[str, float] | None]]


def with_fitted(backends: BackendCatalog, fitted: FittedFactors) -> BackendCatalog:
    """backends.yaml with the fitted fields laid over; `vulkan-intel` starts from `vulkan`."""
    factors = dict(backends.backends)
    for key, fields in fitted.backends.items():
        if key not in fitted.apply:
            continue
        base = factors.get(key) or factors[key.split("-")[0]]
        factors[key] = base.model_validate({**base.model_dump(), **fields})
    return backends.model_copy(update={"backends": factors})


def load_estimate_catalog(root: Path, *, fitted: bool = True) -> EstimateCatalog:
    """Read models.yaml, quants.yaml and backends.yaml from the catalog folder `root`, with the
    public fit (speed_fit.yaml) laid over the backend factors unless `fitted` is False (the
    fit itself starts from the hand-set factors). Validated once per content (loadcache)."""
    from stackctl.loadcache import cached_keyed, content_key

    names = ["models.yaml", "quants.yaml", "backends.yaml"]
    if (root / "engines.yaml").is_file():
        names.append("engines.yaml")
    if fitted and (root / "speed_fit.yaml").is_file():
        names.append("speed_fit.yaml")
    kind = "estimates" if fitted else "estimates_unfitted"
    key = content_key(kind, [root / name for name in names])
    catalog = cached_keyed(
        kind, key, lambda: _load_estimate_catalog(root, fitted=fitted), EstimateCatalog
    )
    catalog.loaded_from(key)
    return catalog


def _load_estimate_catalog(root: Path, *, fitted: bool) -> EstimateCatalog:
    models_path = root / "models.yaml"
    models = validate_yaml(
        ModelCatalogFile,
        read_yaml(models_path, error=CatalogError),
        models_path,
        error=CatalogError,
    )
    quants_path = root / "quants.yaml"
    quants = validate_yaml(
        QuantCatalog, read_yaml(quants_path, error=CatalogError), quants_path, error=CatalogError
    )
    backends_path = root / "backends.yaml"
    backends = validate_yaml(
        BackendCatalog,
        read_yaml(backends_path, error=CatalogError),
        backends_path,
        error=CatalogError,
    )
    fit_path = root / "speed_fit.yaml"
    if fitted and fit_path.is_file():
        fit = validate_yaml(
            FittedFactors, read_yaml(fit_path, error=CatalogError), fit_path, error=CatalogError
        )
        backends = with_fitted(backends, fit)
        # the CPU's entry holds only the host's offload factors: its own stay backends.yaml's
        own = {k for k, fields in fit.backends.items() if set(fields) - HOST_OFFLOAD_FIELDS}
        fitted_keys = frozenset(fit.apply) & frozenset(backends.backends) & own
    else:
        fitted_keys = frozenset()
    by_id: dict[str, ModelEntry] = {}
    for entry in models.models:
        if entry.id in by_id:
            raise CatalogError(f"{models_path}: model id '{entry.id}' appears twice")
        bad = set(entry.layer_pattern) - LAYER_KINDS
        if bad:
            raise CatalogError(f"{models_path}: model '{entry.id}': unknown layer kinds {bad}")
        by_id[entry.id] = entry
    engines = root / "engines.yaml"
    return EstimateCatalog(
        models=by_id,
        quants=quants,
        backends=backends,
        fitted_backends=fitted_keys,
        mlx=mlx_rules(engines) if engines.is_file() else None,
    )


def normalize_name(name: str) -> str:
    """'Qwen/Qwen3-30B-A3B', 'qwen3:30b-a3b' and 'Qwen3-30B-A3B' all become 'qwen3-30b-a3b'."""
    text = name.strip().lower()
    text = text.split("/")[-1]
    text = re.sub(r"[\s_:.]+", "-", text)
    text = re.sub(r"-gguf$", "", text)
    return text


def lookup_model(name: str, catalog: EstimateCatalog) -> str:
    """The catalog id for an id or alias; unknown names raise with the closest ids."""
    if name in catalog.models:
        return name
    wanted = normalize_name(name)
    index: dict[str, str] = {}
    for entry in catalog.models.values():
        for candidate in [entry.id, entry.name, *entry.aliases]:
            index.setdefault(normalize_name(candidate), entry.id)
    if wanted in index:
        return index[wanted]
    close = difflib.get_close_matches(wanted, list(index), n=3, cutoff=0.5)
    hint = ", ".join(dict.fromkeys(index[c] for c in close)) if close else None
    raise EstimateError(
        f"unknown model '{name}'",
        hint=f"closest catalog ids: {hint}" if hint else "see catalog/models.yaml for the ids",
    )


def lookup_quant(name: str, catalog: EstimateCatalog) -> str:
    """The recipe name for a GGUF quant name (case-insensitive, with aliases)."""
    upper = name.strip().upper().replace("-", "_")
    upper = catalog.quants.aliases.get(upper, upper)
    if upper in catalog.quants.recipes:
        return upper
    names = list(catalog.quants.recipes)
    close = difflib.get_close_matches(upper, names, n=3, cutoff=0.4)
    raise EstimateError(
        f"unknown quant '{name}'",
        hint=f"closest: {', '.join(close)}" if close else f"known: {', '.join(names)}",
    )
