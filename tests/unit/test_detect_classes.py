"""The classes of real output issue 13 names, beyond what expected.json can state: the warnings
they must carry, and the unified-memory rules on NVIDIA parts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackctl.detect import BundleRunner, detect_hardware, load_chip_table
from stackctl.detect.accelerators import Context
from stackctl.detect.facts import GIB, MIB, GpuFacts
from stackctl.detect.parse_psutil import parse_psutil, probe_psutil
from stackctl.detect.pci import SNAPSHOT, lookup_pci, norm_pci_id
from stackctl.detect.runner import BundleRunner as Runner
from stackctl.detect.settle import settle

OURS = Path(__file__).resolve().parents[1] / "data" / "hw"
TABLE = load_chip_table()


def _detect(name: str) -> dict[str, Any]:
    return detect_hardware(BundleRunner(OURS / name)).model_dump(mode="json")


def test_mistyped_gtt_parameter_is_named_and_not_read_as_a_limit() -> None:
    out = _detect("strix-halo-gtt-size-typo-dmesg")
    assert out["os"]["cmdline_gtt_bytes"] is None
    assert any("'amdgpu.gtt_size'" in w and "amdgpu.gttsize" in w for w in out["warnings"])
    assert out["os"]["system"] == "linux"


def test_gtt_equal_to_vram_is_a_discrete_card_and_says_so() -> None:
    out = _detect("rx570-sysfs-gtt-equals-vram")
    assert any("equals mem_info_vram_total" in w for w in out["warnings"])
    assert out["accelerators"][0]["budget_source"] == "VRAM"


def test_vulkan_only_and_dmesg_only_say_which_probe_would_tell() -> None:
    vk = _detect("rx6600xt-vulkaninfo-only-amdgpu-pro")
    assert any("only by vulkaninfo" in w and "rocm-smi" in w for w in vk["warnings"])
    dm = _detect("vega10-dmesg-only")
    assert any("only in the kernel log" in w for w in dm["warnings"])
    assert dm["accelerators"][1]["name"] == "Radeon Vega Frontier Edition"  # pci.ids 1002:6863


def test_dgpu_and_igpu_in_one_rocm_smi() -> None:
    out = _detect("raphael-igpu-plus-7900-rocm-smi")
    igpu, dgpu = out["accelerators"]
    assert (igpu["integrated"], dgpu["integrated"]) == (True, False)
    # pci.ids lists 744c as "RX 7900 XT/7900 XTX": the conservative one, with a warning
    assert dgpu["chip"] == "rx-7900-xt"
    assert any("several variants" in w for w in out["warnings"])


def test_truncated_name_is_settled_by_its_memory() -> None:
    out = _detect("rtx5070-drv610-kmd-labels")
    assert out["accelerators"][0]["chip"] == "rtx-5070"
    assert out["accelerators"][0]["peak_tflops_fp16"]


def _ctx(host_total: int | None) -> Context:
    ctx = Context(runner=Runner(OURS / "gh200-grace-lscpu"), table=TABLE)
    ctx.host_total = host_total
    return ctx


def test_gb10_and_jetson_share_system_memory() -> None:
    for name in ("NVIDIA GB10", "Jetson AGX Orin 64 GB"):
        ctx = _ctx(128 * GIB)
        acc = settle(ctx, GpuFacts("nvidia", "test", name=name, index=0), 0)
        assert acc.unified, name
        assert acc.memory_bytes == acc.memory_budget_bytes == 128 * GIB, name
        assert acc.budget_source == "system memory (unified)"


def test_gh200_hopper_keeps_its_own_hbm() -> None:
    ctx = _ctx(480 * GIB)  # the Grace LPDDR5X is a second tier, not the GPU's memory
    gpu = GpuFacts("nvidia", "test", name="NVIDIA GH200 480GB", index=0)
    gpu.memory_bytes, gpu.compute_capability, gpu.arch = 97871 * MIB, "9.0", "sm_90"
    acc = settle(ctx, gpu, 0)
    assert not acc.unified
    assert acc.memory_budget_bytes == 97871 * MIB


def test_psutil_probe_round_trips() -> None:
    text = probe_psutil()
    assert text is not None
    facts = parse_psutil(text)
    assert (facts.memory_total or 0) > 0
    assert (facts.cpu_logical or 0) >= 1


def test_pci_snapshot_names_and_arches() -> None:
    doc = json.loads(SNAPSHOT.read_text())
    assert doc["generated_by"] == "scripts/gen_pci_snapshot.py"
    assert "pci.ids" in doc["source"]
    rtx = lookup_pci("10de:2204")
    assert rtx is not None
    assert (rtx.die, rtx.arch, rtx.product) == ("GA102", "sm_86", "GeForce RTX 3090")
    navi = lookup_pci(norm_pci_id("0x1002", "0x744C"))
    assert navi is not None
    assert navi.arch == "gfx1100"


@pytest.mark.parametrize(
    ("vendor", "device", "want"),
    [("0x1002", "0x73ff", "1002:73ff"), ("1002", "73FF", "1002:73ff"), ("x", "y", None)],
)
def test_norm_pci_id(vendor: str, device: str, want: str | None) -> None:
    assert norm_pci_id(vendor, device) == want


def test_a_gpu_only_lspci_sees_is_reported(tmp_path: Path) -> None:
    shared = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hw"
    src = shared / "strix-halo-gmktec-rocm71" / "cmd" / "lspci.txt"
    (tmp_path / "cmd").mkdir()
    (tmp_path / "cmd" / "lspci.txt").write_bytes(src.read_bytes())
    out = detect_hardware(BundleRunner(tmp_path)).model_dump(mode="json")
    (acc,) = out["accelerators"]
    assert (acc["vendor"], acc["arch"], acc["integrated"]) == ("amd", "gfx1151", True)
    assert acc["pci_bus_id"] == "0000:c5:00.0"
    assert any("driver missing" in w for w in out["warnings"])


def test_jetson_module_is_settled_by_the_box_memory() -> None:
    ctx = _ctx(int(61.4 * GIB))  # MemTotal of a 64 GB module, less the carve-outs
    acc = settle(ctx, GpuFacts("nvidia", "test", name="Orin (nvgpu)", index=0), 0)
    assert acc.chip == "jetson-agx-orin-64gb"
    assert acc.unified
    assert acc.memory_budget_bytes == int(61.4 * GIB)
    assert acc.bandwidth_gbps == 204.8
