"""Contracts of the bench stages: the public llama-bench row, stored results, checks, tuning."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from stackctl.models.base import StrictModel
from stackctl.models.spec import BackendName

BenchBackend = Literal["cpu", "cuda", "rocm", "vulkan", "metal", "sycl"]
TestKind = Literal["pp", "tg"]


class RowHardware(StrictModel):
    gpu: str | None = None
    cpu: str | None = None
    system: str | None = None
    n_gpus: int = 0
    ram_gb: float | None = None

    @property
    def key(self) -> str | None:
        """What calibration groups by: the system, else the GPU, else the CPU."""
        return self.system or self.gpu or self.cpu


class RowFlags(StrictModel):
    fa: bool | None = None
    n_cpu_moe: int | None = None
    ot: str | None = None
    threads: int | None = None
    ubatch: int | None = None
    batch: int | None = None
    type_k: str | None = None
    type_v: str | None = None


class BenchRow(StrictModel):
    """One llama-bench-style figure: the row schema `bench import` and `calibrate` share."""

    source: str = Field(description="who measured: a repository, a discussion, 'stackctl bench'")
    ref: str | None = Field(None, description="file, URL, commit or lock hash")
    hardware: RowHardware
    backend: BenchBackend
    build: str | None = None
    model: str | None = Field(None, description="catalog id, when known")
    model_name: str | None = None
    quant: str | None = None
    size_gib: float | None = None
    params_b: float | None = None
    ngl: int | None = None
    flags: RowFlags = Field(default_factory=RowFlags)
    test: TestKind
    n_prompt: int = 0
    n_gen: int = 0
    depth: int = 0
    tps: float = Field(gt=0)
    tps_std: float | None = None


class StoredResult(StrictModel):
    """A row plus what stackctl knows around it: whose, when, the prediction, the lock."""

    kind: Literal["measured", "imported"]
    engine: str = "llama.cpp"
    date: str = Field(description="ISO date-time, UTC")
    stackctl_version: str
    lock_hash: str | None = None
    clients: int = 1
    ttft_s: float | None = None
    predicted_tps: float | None = None
    host_gbps: float | None = Field(
        None,
        description="the host memory bandwidth (GB/s) the prediction took: a probed figure "
        "moves between probes, and a CPU's decode prediction with it",
    )
    partial: bool = False
    note: str | None = None
    row: BenchRow


class Spread(StrictModel):
    """(max - min) / median over the kept runs, per figure; null with fewer than two."""

    pp: float | None = None
    tg: float | None = None
    ttft: float | None = None


class PredictedPoint(StrictModel):
    tg_tps: float | None = None
    pp_tps: float | None = None


class BenchPoint(StrictModel):
    depth: int
    clients: int
    pp_tps: float | None
    tg_tps: float | None
    ttft_s: float | None
    spread: Spread
    runs: int = Field(description="runs kept (warm-up discarded)")
    failed: int = Field(0, description="runs that failed")
    partial: bool = False
    error: str | None = None
    predicted: PredictedPoint = Field(default_factory=PredictedPoint)


class BenchReport(StrictModel):
    lock_hash: str
    hardware: str
    endpoint: str
    partial: bool
    results: list[BenchPoint]
    llama_bench: list[StoredResult] = Field(default_factory=list)


class CheckCase(StrictModel):
    name: str
    passed: bool
    expected: str
    got: str
    reason: str | None = None


class CheckReport(StrictModel):
    lock_hash: str
    model: str
    kind: str
    endpoint: str
    passed: bool
    cases: list[CheckCase]


class TuningFlags(StrictModel):
    """The flags a sweep set; null = the lock's (or llama.cpp's) default, left alone."""

    threads: int | None = None
    ubatch: int | None = None
    type_k: str | None = None
    type_v: str | None = None
    n_cpu_moe: int | None = None
    load_mode: str | None = Field(None, description="--load-mode (b11434: none, mmap, mlock, dio)")
    backend: BackendName | None = Field(None, description="another built backend, same engine")
    spec_n_max: int | None = Field(None, description="--spec-draft-n-max")


class SweepCandidate(StrictModel):
    flags: TuningFlags
    tps: float | None
    tps_std: float | None = None
    is_default: bool = False
    error: str | None = None
    # llama-bench measures every stage but n_max, which only llama-server can run (spec_sweep)
    method: Literal["llama-bench", "llama-server"] = "llama-bench"
    acceptance: float | None = Field(None, description="drafted tokens accepted (llama-server)")


class Tuning(StrictModel):
    """lockfiles/<stack>.<profile>.tuning.yaml: the sweep's winner, with its figures."""

    version: Literal[1] = 1
    stack: str
    hardware: str
    objective: Literal["tg", "ttft"]
    depth: int
    engine_build: str | None
    model: str | None = Field(None, description="the model the sweep measured (catalog id)")
    quant: str | None = None
    winner: TuningFlags
    winner_tps: float
    default_tps: float | None
    gain: float | None = Field(description="winner / llama.cpp defaults - 1, same run")
    measured_on: str
    candidates: list[SweepCandidate]
