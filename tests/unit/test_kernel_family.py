"""Speed factors by matrix-unit generation: hardware.yaml's tensor_rates name the family of an
arch, the public fit groups its rows by it, and the estimate reads the same group."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.detect import declare_hardware
from stackctl.detect.chips import int8_ratio, kernel_family, load_chip_table
from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.devices import backend_key
from stackctl.estimate.public_fit import _key, _profile
from stackctl.resources import catalog_dir
from stackctl.yamlio import read_yaml

ROOT = Path(__file__).resolve().parents[2]
HARDWARE = ROOT / "tests/data/estimate/public_hardware.yaml"


@pytest.mark.parametrize(
    ("vendor", "arch", "family"),
    [
        ("amd", "gfx1151", "rdna3"),  # Strix Halo: RDNA 3.5 shares RDNA 3's WMMA rate
        ("amd", "gfx1100", "rdna3"),
        ("amd", "gfx1201", "rdna4"),
        ("intel", "xe2-hpg", "xe2-hpg"),
        ("nvidia", "sm_89", None),  # NVIDIA keeps the memory-kind grouping
        ("amd", None, None),
        ("amd", "sm_89", None),  # an arch of another vendor's table row
    ],
)
def test_kernel_family_of_an_arch(vendor: str, arch: str | None, family: str | None) -> None:
    assert kernel_family(load_chip_table(), vendor, arch) == family


@pytest.mark.parametrize(
    ("declared", "backend", "key"),
    [
        ({"system": "strix halo 128gb"}, "vulkan", "vulkan-amd-rdna3"),
        ({"gpus": ["rx 7900 xtx"]}, "rocm", "rocm-amd-rdna3"),
        ({"gpus": ["radeon ai pro r9700"]}, "vulkan", "vulkan-amd-rdna4"),
        ({"gpus": ["rtx 4090"]}, "cuda", "cuda-nvidia"),  # discrete: the vendor's figure
        ({"system": "dgx spark"}, "cuda", "cuda-nvidia-unified"),
    ],
)
def test_the_estimate_reads_the_generation_group(
    declared: dict[str, object], backend: str, key: str
) -> None:
    cat = load_estimate_catalog(catalog_dir())
    box = declare_hardware(**{"gpus": [], **declared})  # type: ignore[arg-type]
    assert backend_key(backend, box.accelerators[0], cat) == key


def test_the_fit_groups_public_boxes_as_the_estimate_reads_them() -> None:
    """Every public box's fit group is the one devices.backend_key picks for it, wherever the
    committed fit (speed_fit.yaml) carries that group; a discrete group is the vendor's."""
    cat = load_estimate_catalog(catalog_dir())
    boxes = read_yaml(HARDWARE)["boxes"]
    checked = 0
    for entry in boxes.values():
        profile = _profile(entry, None)
        if not profile.accelerators:
            continue
        for backend in ("vulkan", "rocm", "cuda", "sycl", "metal"):
            fit_key = _key(backend, profile).removesuffix("-discrete")
            if fit_key in cat.backends.backends:
                assert backend_key(backend, profile.accelerators[0], cat) == fit_key
                checked += 1
    assert checked >= 10


@pytest.mark.parametrize(
    ("vendor", "arch", "ratio"),
    [
        ("nvidia", "sm_89", 4.0),  # GeForce: INT8 2048 vs FP16 (FP32 accumulate) 512 per SM
        ("nvidia", "sm_90", 2.0),
        ("amd", "gfx1151", 2.0),
        ("intel", "xe2-hpg", 2.0),
        ("nvidia", None, 4.0),  # unknown arch: the vendor's largest, an upper bound
        ("apple", "apple-m4", 1.0),  # no int8 matrix figure
    ],
)
def test_int8_ratio_bounds_the_prefill_ceiling(vendor: str, arch: str | None, ratio: float) -> None:
    assert int8_ratio(load_chip_table(), vendor, arch) == ratio
