"""The public llama-bench dataset (tests/data/speed) is well-formed and covers enough ground.

Issue 14 fits and validates the speed estimator on these rows (leave one source out), so a row
without provenance, a model the catalog cannot resolve or a family that quietly drops out would
make those figures meaningless. This test reads the YAML through a strict schema and checks the
coverage the acceptance asks for: at least 150 rows over at least 8 hardware families, and at
least 10 MoE-offload rows. It also checks the GPU compute-buffer figures next to it.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from stackctl.estimate import load_estimate_catalog
from stackctl.estimate.catalog import EstimateCatalog, lookup_model, lookup_quant
from stackctl.resources import catalog_dir
from stackctl.yamlio import MAX_DATASET_BYTES, read_yaml

DATA = Path(__file__).parent.parent / "data" / "speed"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MatrixCores(_Strict):
    """llama.cpp Vulkan's matrix path for the source's Vulkan GPU, as its log's device line
    prints it (absent: the stored source shows no device line)."""

    value: Literal["KHR_coopmat", "NV_coopmat2", "none"]
    line: str = Field(pattern=r"^ggml_vulkan: .*matrix cores: ")
    where: str = Field(min_length=10)


class Source(_Strict):
    id: str
    url: str = Field(pattern=r"^https://")
    kind: Literal["repository", "discussion", "issue", "page"]
    date: str | None = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    note: str
    matrix_cores: MatrixCores | None = None


class Hardware(_Strict):
    gpu: str | None
    cpu: str | None
    system: str | None
    n_gpus: int = Field(ge=0)
    ram_gb: float | None


class Flags(_Strict):
    fa: int | None
    n_cpu_moe: int | None
    ot: str | None
    threads: int | None
    ubatch: int | None
    batch: int | None
    type_k: str | None
    type_v: str | None


class Row(_Strict):
    source: str
    ref: str = Field(min_length=10)
    hardware: Hardware
    backend: Literal["cpu", "cuda", "rocm", "vulkan", "metal", "sycl"]
    build: str | None
    model: str
    model_name: str
    quant: str
    size_gib: float | None = Field(gt=0)
    params_b: float | None = Field(gt=0)
    ngl: int | None
    flags: Flags
    test: Literal["pp", "tg"]
    n_prompt: int = Field(ge=0)
    n_gen: int = Field(ge=0)
    depth: int = Field(ge=0)
    tps: float = Field(gt=0)
    tps_std: float | None = Field(ge=0)


class Dataset(_Strict):
    schema_version: Literal[1]
    sources: list[Source]
    rows: list[Row]


class BufferSource(_Strict):
    id: str
    url: str = Field(pattern=r"^https://")
    date: str | None
    note: str


class Buffer(_Strict):
    source: str
    ref: str = Field(min_length=10)
    device: str
    backend: Literal["cuda", "metal", "vulkan", "rocm", "sycl"]
    build: str | None
    model_name: str
    arch: str
    dims: dict[str, int | None]
    quant: str
    n_ctx: int = Field(gt=0)
    n_batch: int = Field(gt=0)
    n_ubatch: int = Field(gt=0)
    flash_attn: int | None
    n_gpu_layers: int | None
    kv_type: str | None
    kv_mib: float | None = Field(ge=0)
    compute_mib: float = Field(gt=0)
    host_compute_mib: float | None = Field(ge=0)


class BufferSet(_Strict):
    schema_version: Literal[1]
    sources: list[BufferSource]
    entries: list[Buffer]


def family(row: Row) -> str:
    """The hardware family the acceptance counts, from the device names as posted."""
    gpu = row.hardware.gpu or ""
    if row.backend == "cpu":
        return "cpu"
    if "8060S" in gpu:
        return "strix-halo"
    if "GB10" in gpu:
        return "dgx-spark"
    if gpu.startswith("Apple"):
        return "apple"
    rtx = re.search(r"RTX (\d)0\d0", gpu)
    if rtx:
        return f"rtx-{rtx.group(1)}0"
    # H100/A100/V100/B200, and the A30/A10/L4/L40S class (NVIDIA's data-center lines)
    if re.search(r"\b([HAVB]1\d0|A[1-4]0|L4|L40S?)\b", gpu):
        return "nvidia-datacenter"
    if "Radeon" in gpu:
        return "amd-gpu"
    if "Intel" in gpu:
        return "intel-gpu"
    return "other"


def is_moe_offload(row: Row) -> bool:
    return bool(row.flags.n_cpu_moe) or row.flags.ot is not None


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return Dataset.model_validate(
        read_yaml(DATA / "public_llama_bench.yaml", max_bytes=MAX_DATASET_BYTES)
    )


@pytest.fixture(scope="module")
def buffers() -> BufferSet:
    return BufferSet.model_validate(read_yaml(DATA / "gpu_compute_buffers.yaml"))


@pytest.fixture(scope="module")
def cat() -> EstimateCatalog:
    return load_estimate_catalog(catalog_dir())


def test_every_row_names_a_listed_source_and_every_source_is_used(dataset: Dataset) -> None:
    _sources_listed_and_used(dataset)


def _sources_listed_and_used(dataset: Dataset) -> None:
    ids = [s.id for s in dataset.sources]
    assert len(ids) == len(set(ids)), "source ids must be unique"
    used = {r.source for r in dataset.rows}
    assert used - set(ids) == set(), "rows cite unknown sources"
    assert set(ids) - used == set(), "sources without rows"


def test_rows_resolve_in_the_catalog(dataset: Dataset, cat: EstimateCatalog) -> None:
    _rows_resolve(dataset, cat)


def _rows_resolve(dataset: Dataset, cat: EstimateCatalog) -> None:
    for row in dataset.rows:
        assert lookup_model(row.model, cat) == row.model, row.ref
        # a quant type (Q4_K_M is Q4_K's recipe) or a recipe of its own (MXFP4_MOE_F16)
        base = re.sub(r"_(S|M|L|XL)$", "", row.quant)
        recipe = lookup_quant(row.quant, cat)
        assert base in cat.quants.types or recipe == row.quant, f"{row.ref}: quant {row.quant}"


@pytest.mark.parametrize("path", sorted((DATA / "pending").glob("*.yaml")), ids=lambda p: p.stem)
def test_pending_sources_are_ready_to_merge(path: Path, cat: EstimateCatalog) -> None:
    """A source kept out of the fit (SOURCES.md says why) stays in the schema, with its own
    source list, and its rows name catalog models: merging it is moving the lines over."""
    pending = Dataset.model_validate(read_yaml(path, max_bytes=MAX_DATASET_BYTES))
    _sources_listed_and_used(pending)
    _rows_resolve(pending, cat)
    _test_shapes_consistent(pending)


def test_test_shape_is_consistent(dataset: Dataset) -> None:
    _test_shapes_consistent(dataset)


def _test_shapes_consistent(dataset: Dataset) -> None:
    for row in dataset.rows:
        tokens = (row.n_prompt, row.n_gen) if row.test == "pp" else (row.n_gen, row.n_prompt)
        assert tokens[0] > 0, row.ref
        assert tokens[1] == 0, row.ref
        assert (row.backend == "cpu") == (row.hardware.n_gpus == 0), row.ref


def test_coverage_meets_the_acceptance(dataset: Dataset) -> None:
    families = Counter(family(r) for r in dataset.rows)
    backends = Counter(r.backend for r in dataset.rows)
    moe = sum(1 for r in dataset.rows if is_moe_offload(r))
    print(f"\nrows {len(dataset.rows)}, sources {len(dataset.sources)}, MoE offload {moe}")
    print("families", dict(families.most_common()))
    print("backends", dict(backends.most_common()))
    assert len(dataset.rows) >= 150
    assert len([f for f in families if f != "other"]) >= 8
    assert moe >= 10
    assert {"strix-halo", "dgx-spark", "apple", "cpu"} <= set(families)
    assert {"cuda", "rocm", "vulkan", "metal", "cpu"} <= set(backends)


def test_compute_buffers_are_sourced_and_varied(buffers: BufferSet) -> None:
    ids = {s.id for s in buffers.sources}
    assert {e.source for e in buffers.entries} <= ids
    archs = Counter(e.arch for e in buffers.entries)
    print(f"\nbuffer entries {len(buffers.entries)}, archs {dict(archs)}")
    assert len(buffers.entries) >= 25
    assert len(archs) >= 3
    assert len({e.backend for e in buffers.entries}) >= 2
