"""Contract of the estimator: what is asked, and the predicted memory and speed with their basis."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel

Backend = Literal["cuda", "rocm", "vulkan", "metal", "cpu"]
CacheType = Literal["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"]


class EstimateRequest(StrictModel):
    model: str = Field(description="catalog model id")
    quant: str = Field(description="GGUF quant name, e.g. Q4_K_M")
    ctx: int = Field(4096, ge=1)
    cache_type_k: CacheType = "f16"
    cache_type_v: CacheType = "f16"
    parallel: int = Field(1, ge=1)
    batch: int = Field(2048, ge=1)
    ubatch: int = Field(512, ge=1)
    engine: Literal["llama.cpp"] = "llama.cpp"
    backend: Backend = "cpu"
    ngl: int | Literal["auto"] = "auto"
    n_cpu_moe: int | Literal["auto"] = 0
    cpu_moe: bool = Field(False, description="all MoE expert weights in system memory")
    kv_unified: bool = Field(False, description="one KV pool shared by all sequences")
    swa_full: bool = Field(False, description="full-size SWA cache (--swa-full)")
    flash_attn: bool = True
    depth: int = Field(0, ge=0)
    threads: int | None = Field(None, ge=1)
    gguf_path: str | None = Field(None, description="a local GGUF whose header gives the tensors")


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
    total_bytes: int
    devices: list[DeviceMemory] = Field(
        description="per device; kv_bytes there includes the recurrent state"
    )


class PlacementInfo(StrictModel):
    ngl: int = Field(description="repeating layers on GPUs (n_layer + 1 includes the output)")
    n_cpu_moe: int = 0
    cpu_moe: bool = False
    layers: dict[str, int] = Field(default_factory=dict, description="layers per device")


class SpeedEstimate(StrictModel):
    tg_tps: float
    tg_tps_range: tuple[float, float]
    pp_tps: float
    pp_tps_range: tuple[float, float]
    depth: int
    ttft_s: float


class Estimate(StrictModel):
    model: str = ""
    memory: MemoryEstimate
    fits: bool
    speed: SpeedEstimate
    placement: PlacementInfo | None = None
    basis: list[str]
