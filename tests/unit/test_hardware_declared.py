"""Declared hardware by name, and the shared --hardware/--gpu/... options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from stackctl.cli.detect_cmd import write_profile
from stackctl.cli.hardware_args import add_hardware_options, hardware_from_args
from stackctl.detect import declare_hardware, load_chip_table
from stackctl.errors import HardwareError

GIB = 1024**3


@pytest.mark.parametrize(
    "name", ["RTX 3090", "NVIDIA GeForce RTX 3090", "rtx3090", "geforce rtx 3090"]
)
def test_gpu_names_match_loosely(name: str) -> None:
    prof = declare_hardware(gpus=[name], gpu_count=2)
    assert prof.source == "declared"
    assert [a.chip for a in prof.accelerators] == ["rtx-3090", "rtx-3090"]
    acc = prof.accelerators[0]
    assert acc.memory_bytes == acc.memory_budget_bytes == 24 * GIB
    assert acc.bandwidth_gbps == 936
    assert acc.bandwidth_source
    assert acc.arch == "sm_86"


def test_unknown_gpu_lists_closest_names() -> None:
    with pytest.raises(HardwareError) as err:
        declare_hardware(gpus=["RTX 3095"])
    assert "unknown GPU 'RTX 3095'" in err.value.message
    assert "RTX 3090" in " ".join(err.value.details)


def test_cpu_and_ram() -> None:
    prof = declare_hardware(gpus=[], cpu="Ryzen 9 7950X", ram_gib=64)
    assert prof.cpu.cores == 16
    assert prof.cpu.threads == 32
    assert prof.cpu.arch == "x86_64"
    assert prof.cpu.bandwidth_gbps == 83.2
    assert "derived" in (prof.cpu.bandwidth_source or "")
    assert prof.memory.total_bytes == 64 * GIB
    assert prof.accelerators == []


def test_system_strix_halo_uses_gtt_default_and_says_so() -> None:
    prof = declare_hardware(gpus=[], system="Strix Halo 128GB")
    (acc,) = prof.accelerators
    assert acc.vendor == "amd"
    assert acc.arch == "gfx1151"
    assert acc.unified
    assert acc.memory_bytes == 128 * GIB
    assert acc.memory_budget_bytes == 64 * GIB
    assert "accelerators.0.memory_budget_bytes" in prof.defaults
    assert prof.cpu.threads == 32


def test_system_mac_studio_and_dgx_spark() -> None:
    mac = declare_hardware(gpus=[], system="Mac Studio M3 Ultra 512GB")
    assert mac.accelerators[0].arch == "apple-m3-ultra"
    assert mac.os.system == "darwin"
    assert mac.accelerators[0].memory_budget_bytes == int(512 * GIB * 0.75)
    assert mac.cpu.arch == "arm64"
    spark = declare_hardware(gpus=[], system="DGX Spark")
    (acc,) = spark.accelerators
    assert acc.arch == "sm_121"
    assert acc.unified
    assert acc.memory_bytes == 128 * GIB
    assert spark.cpu.arch == "aarch64"
    assert spark.cpu.cores == 20


def test_unknown_system_and_bad_counts() -> None:
    with pytest.raises(HardwareError, match="unknown system"):
        declare_hardware(gpus=[], system="Commodore 64")
    with pytest.raises(HardwareError, match="exactly one --gpu"):
        declare_hardware(gpus=["RTX 3090", "RTX 4090"], gpu_count=2)
    with pytest.raises(HardwareError, match="at least 1"):
        declare_hardware(gpus=["RTX 3090"], gpu_count=0)


def test_ambiguous_variant_is_settled_by_ram_else_conservative_with_a_warning() -> None:
    # Only the 40-core GPU M3 Max ships with 128 GB (Apple MacBook Pro M3 Max Tech Specs).
    prof = declare_hardware(gpus=["Apple M3 Max"], ram_gib=128)
    (acc,) = prof.accelerators
    assert acc.chip == "apple-m3-max-40c"
    assert acc.bandwidth_gbps == 400
    assert not any("several variants" in w for w in prof.warnings)
    # No RAM: the 30-core (300 GB/s) variant, and the profile says so.
    prof = declare_hardware(gpus=["Apple M3 Max"])
    assert prof.accelerators[0].chip == "apple-m3-max-30c"
    assert any("several variants" in w and "conservative" in w for w in prof.warnings)
    prof = declare_hardware(gpus=["M3 Max 40-core GPU"], ram_gib=128)
    assert prof.accelerators[0].bandwidth_gbps == 400


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_hardware_options(parser)
    return parser.parse_args(argv)


def test_hardware_from_args_declared_and_file(tmp_path: Path) -> None:
    prof = hardware_from_args(_args(["--gpu", "RTX 4090", "--gpu", "RTX 3090", "--ram", "128"]))
    assert [a.chip for a in prof.accelerators] == ["rtx-4090", "rtx-3090"]
    path = tmp_path / "box.yaml"
    write_profile(prof, path)
    assert hardware_from_args(_args(["--hardware", str(path)])) == prof


def test_bad_profile_file_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "name: x\ncpu:\n  arch: x86_64\n  cores: many\nmemory: {}\nos: {system: linux}\n"
    )
    with pytest.raises(HardwareError) as err:
        hardware_from_args(_args(["--hardware", str(path)]))
    assert err.value.source is not None
    assert err.value.source.line == 4
    with pytest.raises(HardwareError, match="cannot be combined"):
        hardware_from_args(_args(["--hardware", str(path), "--gpu", "RTX 3090"]))


def test_host_link_puts_every_discrete_gpu_in_that_slot_and_lowers_offload_prefill() -> None:
    """A card on a riser or in a chipset x4 slot, declared without a profile file: its link
    says where it came from, and MoE offload prefill (experts copied over it) drops."""
    from stackctl.estimate import estimate
    from stackctl.models.estimate import EstimateRequest

    plain = hardware_from_args(_args(["--gpu", "RTX 4060 Ti", "--ram", "64"]))
    slot = hardware_from_args(
        _args(["--gpu", "RTX 4060 Ti", "--ram", "64", "--host-link", "PCIe 3.0 x4"])
    )
    assert plain.accelerators[0].host_link == "PCIe 4.0 x8"  # the card's own interface
    assert (slot.accelerators[0].host_link, slot.accelerators[0].host_link_source) == (
        "PCIe 3.0 x4", "--host-link")  # fmt: skip
    request = EstimateRequest(model="qwen3.6-35b-a3b", quant="Q4_K_M", backend="cuda",
                              ctx=8192, n_cpu_moe=40)  # fmt: skip
    fast, slow = estimate(request, plain), estimate(request, slot)
    assert slow.speed.pp_tps < fast.speed.pp_tps / 2  # 3.94 GB/s against 15.75
    assert slow.speed.pp_tps_ceiling
    assert slow.speed.pp_tps_ceiling < fast.speed.pp_tps
    assert any("PCIe 3.0 x4 (--host-link)" in b for b in slow.basis)
    unified = hardware_from_args(_args(["--system", "Strix Halo 128GB"]))
    with pytest.raises(HardwareError, match="no discrete GPU"):
        hardware_from_args(_args(["--system", "Strix Halo 128GB", "--host-link", "PCIe 4.0 x4"]))
    assert unified.accelerators[0].host_link is None


def test_hardware_from_args_defaults_to_live() -> None:
    assert hardware_from_args(_args([])).source == "detected"


def test_every_peak_figure_names_its_source_and_feeds_prefill() -> None:
    table = load_chip_table()
    for chip in table.chips:
        assert (chip.peak_tflops_fp16 is None) == (chip.peak_source is None), chip.id
    hw = declare_hardware(gpus=["rtx 4090"], cpu="ryzen 9 7950x", ram_gib=64)
    assert hw.accelerators[0].peak_tflops_fp16 == 165.2
    assert "FP32 Accumulate" in (hw.accelerators[0].peak_source or "")


def test_a_mac_takes_the_observed_wired_share_or_the_lowest_one_assumed() -> None:
    # 36 and 48 GB: macOS 15's 3/4 (hardware.yaml; macOS 26 gives 0.78 there), not the whole RAM
    for ram in (36, 48):
        prof = declare_hardware(gpus=["Apple M4 Max"], ram_gib=ram)
        assert prof.accelerators[0].memory_budget_bytes == int(ram * GIB * 0.75)
        assert not any("assumed" in w for w in prof.warnings if "GPU budget" in w)
    # a size no observation covers takes the lowest share observed, and says so
    prof = declare_hardware(gpus=["Apple M4 Max"], ram_gib=34)
    assert prof.accelerators[0].memory_budget_bytes == int(34 * GIB * 0.6667)
    assert any("67% of RAM" in w and "assumed" in w for w in prof.warnings)
