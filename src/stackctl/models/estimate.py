"""Contract of the estimator: what is asked, and the predicted memory and speed with their basis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel

# sycl: llama.cpp on Intel GPUs through oneAPI (estimate only: plans build cuda, rocm, vulkan,
# metal or cpu engines)
Backend = Literal["cuda", "rocm", "vulkan", "metal", "cpu", "sycl"]
CacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]
Engine = Literal["llama.cpp", "vllm", "mlx", "ds4"]
SpecType = Literal["none", "draft", "mtp"]


class EstimateRequest(StrictModel):
    model: str = Field(description="catalog model id")
    quant: str = Field(description="GGUF quant name, e.g. Q4_K_M")
    ctx: int = Field(4096, ge=1)
    cache_type_k: CacheType = "f16"
    cache_type_v: CacheType = "f16"
    parallel: int = Field(1, ge=1)
    batch: int = Field(2048, ge=1)
    ubatch: int = Field(512, ge=1)
    engine: Engine = Field(
        "llama.cpp", description="llama.cpp exactly; vllm/mlx/ds4 by their rules"
    )
    backend: Backend = "cpu"
    ngl: int | Literal["auto"] = "auto"
    n_cpu_moe: int | Literal["auto"] = 0
    cpu_moe: bool = Field(False, description="all MoE expert weights in system memory")
    kv_unified: bool = Field(False, description="one KV pool shared by all sequences")
    swa_full: bool = Field(False, description="full-size SWA cache (--swa-full)")
    flash_attn: bool = True
    depth: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1)
    repack: bool = Field(
        True, description="llama.cpp's repacked CPU weights and AMX buffer; false: --no-repack"
    )
    gguf_path: str | None = Field(None, description="a local GGUF whose header gives the tensors")
    tensor_split: list[float] | None = Field(
        None, description="-ts proportions per GPU (default: by memory budget)"
    )
    override_tensor: list[str] = Field(
        default_factory=list, description="-ot entries 'regex=BUFFER' (CPU, CUDA0, ROCm1, ...)"
    )
    mmproj_gguf: str | None = Field(None, description="a local multimodal projector GGUF")
    mmproj_bytes: int | None = Field(None, ge=0, description="projector weights without a file")
    mmproj_offload: bool = Field(True, description="projector on the first GPU (llama.cpp default)")
    spec_type: SpecType = Field("none", description="speculative decoding: a draft model or MTP")
    draft_model: str | None = Field(None, description="catalog id of the draft model")
    draft_quant: str = Field("Q8_0", description="GGUF quant of the draft model")
    draft_gguf: str | None = Field(None, description="a local draft GGUF")
    spec_draft_n: int = Field(3, ge=1, le=64, description="--spec-draft-n-max")
    spec_acceptance: float | None = Field(
        None, gt=0, lt=1, description="per-token acceptance rate (default from backends.yaml)"
    )
    gpu_memory_utilization: float | None = Field(
        None, gt=0, le=1, description="vLLM's pool fraction (default 0.92)"
    )


class DeviceMemory(StrictModel):
    device: str = Field(description="gpu0, gpu1, ... or host")
    weights_bytes: int
    kv_bytes: int
    compute_bytes: int
    output_bytes: int = 0
    total_bytes: int
    budget_bytes: int | None
    shortfall_bytes: int = 0


class MemoryEstimate(StrictModel):
    weights_bytes: int
    kv_bytes: int = Field(description="attention KV cache")
    state_bytes: int = Field(0, description="recurrent state (DeltaNet, Mamba, conv)")
    compute_bytes: int
    output_bytes: int = Field(0, description="logits buffer")
    draft_bytes: int = Field(0, description="draft model or MTP head: weights, KV and compute")
    mmproj_bytes: int = Field(0, description="multimodal projector weights")
    total_bytes: int
    kv_capacity_tokens: int | None = Field(
        None, description="vLLM: tokens the KV pool holds after weights and activations"
    )
    devices: list[DeviceMemory] = Field(
        description="per device; kv_bytes there includes the recurrent state"
    )


class PlacementInfo(StrictModel):
    ngl: int = Field(description="repeating layers on GPUs (n_layer + 1 includes the output)")
    n_cpu_moe: int = 0
    cpu_moe: bool = False
    layers: dict[str, int] = Field(default_factory=dict, description="layers per device")
    tensor_split: list[float] | None = None
    override_tensor: list[str] = Field(default_factory=list)


class SpeedEstimate(StrictModel):
    tg_tps: float
    tg_tps_range: tuple[float, float]
    pp_tps: float
    pp_tps_range: tuple[float, float]
    depth: int
    ttft_s: float
    tg_tps_plain: float | None = Field(None, description="decode without speculative decoding")
    tg_tps_ceiling: float | None = Field(
        None, description="physics: bandwidth / bytes read per step, at the top of every span"
    )
    pp_tps_ceiling: float | None = Field(
        None, description="physics: the fastest compute / ops per prompt token"
    )
    spec_tokens_per_step: float | None = Field(
        None, description="expected tokens accepted per target step (speculative decoding)"
    )


class Estimate(StrictModel):
    model: str = ""
    memory: MemoryEstimate
    fits: bool
    speed: SpeedEstimate
    placement: PlacementInfo | None = None
    basis: list[str]
