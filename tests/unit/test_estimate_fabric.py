"""A chiplet CPU's core-die links cap what its cores read (estimate/fabric.py): a one-CCD Ryzen
7000 reads at most 32 B x 1733 MHz = 55.5 GB/s from DDR5 that delivers 83.2, so the experts an
offload leaves in its RAM decode at that rate; a two-CCD part is not held below its memory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stackctl.detect import declare_hardware
from stackctl.detect.chips import CpuCore
from stackctl.estimate import estimate, load_estimate_catalog
from stackctl.estimate.devices import host_bandwidth, staging_gbps
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir

CATALOG = load_estimate_catalog(catalog_dir())
ONE_CCD = 32 * 1.733  # GB/s: catalog/hardware.yaml zen4-desktop, Chips and Cheese / AMD


def _box(cpu: str, gpus: list[str] | None = None) -> HardwareProfile:
    return declare_hardware(gpus=gpus or [], cpu=cpu, ram_gib=64)


def test_a_one_ccd_ryzen_reads_at_its_die_link_not_its_dimms() -> None:
    box = _box("ryzen 7 7800x3d")
    assert box.cpu.bandwidth_gbps == pytest.approx(83.2)  # 2 x DDR5-5200
    rate, assumed = host_bandwidth(box, 8, CATALOG)
    assert rate.value == pytest.approx(ONE_CCD)
    assert not assumed
    assert "1 CCD link" in rate.note
    assert "below the memory's 83.2 GB/s" in rate.note
    # its staging copy: a third of the memory, no faster than the link writes (16 B / cycle)
    assert staging_gbps(box, 8) == pytest.approx(min(83.2 / 3, 16 * 1.733))


def test_two_ccds_are_not_held_below_the_memory() -> None:
    box = _box("ryzen 9 7950x")
    assert host_bandwidth(box, 16, CATALOG)[0].value == pytest.approx(83.2)
    # one thread: one core's own figure (50 GB/s, Chips and Cheese) is below its die link
    assert host_bandwidth(box, 1, CATALOG)[0].value == pytest.approx(50.0)


def test_a_measured_bandwidth_already_includes_the_link() -> None:
    box = _box("ryzen 7 7800x3d")
    probed = box.model_copy(update={"cpu": box.cpu.model_copy(
        update={"bandwidth_gbps": 60.0, "bandwidth_source": "measured"})})  # fmt: skip
    assert host_bandwidth(probed, 8, CATALOG)[0].value == 60.0
    assert staging_gbps(probed, 8) is None


def test_offloaded_experts_on_a_one_ccd_ryzen_decode_at_the_link_rate() -> None:
    """Every routed expert in the 7800X3D's RAM: decode reads them at the link's rate, so the
    offload is slower than the same memory behind two CCDs would give, and the basis says why
    (benchmarks/speed_vs_public.py scores it against the public 7800X3D offload rows)."""
    request = EstimateRequest(model="qwen3.6-35b-a3b", quant="Q4_K_M", backend="cuda", ctx=4096,
                              n_cpu_moe=99, threads=8, flash_attn=True)  # fmt: skip
    one_ccd = _box("ryzen 7 7800x3d", ["rtx 4070 ti super"])
    cpu = one_ccd.cpu.model_copy(update={"cores": 16, "threads": 32})
    two_ccds = one_ccd.model_copy(update={"cpu": cpu})
    capped = estimate(request, one_ccd, catalog=CATALOG)
    uncapped = estimate(request, two_ccds, catalog=CATALOG)
    assert capped.speed.tg_tps < uncapped.speed.tg_tps
    assert any("1 CCD link" in b for b in capped.basis)
    assert not any("CCD link" in b for b in uncapped.basis)
    # only the host's share of each token slows: less than the links' ratio to the memory
    assert uncapped.speed.tg_tps / capped.speed.tg_tps < 83.2 / ONE_CCD


def test_a_fabric_figure_needs_all_its_parts_and_a_source() -> None:
    with pytest.raises(ValidationError, match="fabric_source"):
        CpuCore(isa=["avx2"], isa_source="x", cores_per_ccd=8, fabric_clock_mhz=1733)
