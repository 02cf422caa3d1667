"""At few threads some quant types' dot products, not the memory, pace CPU decode: an i-quant's
grid lookups, Q5_0's high bits. catalog/backends.yaml `dot_rate_gws` holds their per-thread
rates, fitted on this project's runs (QUANTS-AMD, estimate/dot_rates.py); speed.py takes, type
by type, the slower of the read and the dot products."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from stackctl.detect import BundleRunner, declare_hardware, detect_hardware
from stackctl.estimate import estimate
from stackctl.estimate.catalog import BackendFactors, EstimateCatalog, load_estimate_catalog
from stackctl.estimate.dot_rates import DOT_PACED_SHARE, dot_paced, fit_rates, recipe_of
from stackctl.models.estimate import Estimate, EstimateRequest
from stackctl.models.hardware import HardwareProfile
from stackctl.resources import catalog_dir
from tests.support.catalogs import without_dot_rates

ROOT = Path(__file__).resolve().parents[2]
RUNS = [ROOT / "tests/data/estimate/llama_bench_cpu_quants_amd.json",
        ROOT / "tests/data/estimate/llama_bench_cpu_quants_amd_2.json"]  # fmt: skip
SPR = ROOT / "../shared/fixtures/hw/xeon-platinum-8462yplus-spr"
CATALOG = load_estimate_catalog(catalog_dir())
CPU = CATALOG.backends.backends["cpu"]


def _rows() -> list[dict[str, Any]]:
    return [r for p in RUNS for r in json.loads(p.read_text("utf-8"))["rows"]]


def _this_vm(bandwidth_gbps: float) -> HardwareProfile:
    """A box with the recorded runs' CPU flags (Zen 4: VNNI, no AMX) and a probed bandwidth."""
    run = json.loads(RUNS[1].read_text("utf-8"))
    box = detect_hardware(BundleRunner(SPR))
    update = {"flags": run["flags"], "bandwidth_gbps": bandwidth_gbps,
              "bandwidth_source": "measured", "cores": 2, "threads": 2}  # fmt: skip
    cpu = box.cpu.model_copy(update=update)
    return box.model_copy(update={"cpu": cpu})


def _decode(quant: str, threads: int, box: HardwareProfile, catalog: EstimateCatalog = CATALOG,
            model: str = "llama-3.2-1b") -> Estimate:  # fmt: skip
    request = EstimateRequest(model=model, quant=quant, backend="cpu", ctx=4096, threads=threads)
    return estimate(request, box, catalog=catalog)


def test_the_runs_are_the_zen4_vm_they_say() -> None:
    for path in RUNS:
        run = json.loads(path.read_text("utf-8"))
        assert run["cpu"].startswith("AMD")
        assert "avx512_vnni" in run["flags"]
        assert not any(f.startswith("amx") for f in run["flags"])
        assert run["repack"] == 1  # llama-bench's default, as a plan serves a non-AMX CPU


def test_the_catalog_rates_are_the_fit_of_the_recorded_runs() -> None:
    rows = _rows()
    probe = statistics.mean(r["probe_gbps"] for r in rows if r["threads"] == 1)
    one = fit_rates(rows, 1, CATALOG)
    paced = dot_paced(one, probe)
    assert set(paced) == set(CPU.dot_rate_gws)
    for t, rate in paced.items():
        assert CPU.dot_rate_gws[t] == pytest.approx(rate, rel=0.005), t
    # the memory-paced types read most of the probe's stream at one thread; the others do not
    for t in ("Q4_0", "Q4_K", "Q6_K", "Q8_0", "IQ4_NL"):
        assert one[t].read_share(1, probe) >= DOT_PACED_SHARE, t
    assert one["IQ2_XXS"].read_share(1, probe) < 0.2  # the grid lookups
    # a dot-paced type keeps most of its per-thread rate at two threads; the memory does not
    two = fit_rates(rows, 2, CATALOG)
    assert two["IQ2_XXS"].gws_per_thread / one["IQ2_XXS"].gws_per_thread > 0.85
    assert two["Q8_0"].gws_per_thread / one["Q8_0"].gws_per_thread < 0.7


def test_a_run_row_names_its_recipe() -> None:
    assert recipe_of("llama-3.2-1b IQ2_XXS (shape-only)") == "IQ2_XXS"
    assert recipe_of("llama-3.2-1b (shape-only)") == "Q4_K_M"
    assert recipe_of("gemma-3-270m (real file)") is None


def test_a_dot_paced_type_scales_with_threads_and_a_memory_paced_one_does_not() -> None:
    box = _this_vm(33.5)
    iq2 = [_decode("IQ2_XXS", t, box).speed.tg_tps for t in (1, 2)]
    q8 = [_decode("Q8_0", t, box).speed.tg_tps for t in (1, 2)]
    assert iq2[1] / iq2[0] > 1.7  # its dot products run on each thread
    assert q8[1] / q8[0] < 1.1  # one measured stream, however many threads read it
    basis = _decode("IQ2_XXS", 2, box).basis
    assert any("dot products" in b and "IQ2_XXS 28" in b for b in basis), basis


@pytest.mark.parametrize("quant", ["IQ2_XXS", "IQ2_XS"])
def test_the_recorded_i_quant_rows_sit_inside_the_predicted_range(quant: str) -> None:
    for r in _rows():
        if recipe_of(r["model"]) != quant:
            continue
        speed = _decode(quant, r["threads"], _this_vm(r["probe_gbps"])).speed
        low, high = speed.tg_tps_range
        assert low <= r["tg_tps"] <= high, (r, speed)
        assert abs(speed.tg_tps / r["tg_tps"] - 1) < 0.15
        assert speed.tg_tps_ceiling is not None
        assert speed.tg_tps <= speed.tg_tps_ceiling  # the dot products only ever add time


def test_a_public_row_no_rate_was_fitted_on_falls_in_the_range() -> None:
    """Out of sample: ikawrakow's Ryzen 9 7950X, IQ2_XXS Llama 3.1 8B at 2 threads, 5.5 t/s
    (tests/data/speed, ikllama-discussion-164). By bandwidth alone it predicted 17.3."""
    box = declare_hardware(gpus=[], cpu="Ryzen 9 7950X", ram_gib=64)
    speed = _decode("IQ2_XXS", 2, box, model="llama-3.1-8b").speed
    low, high = speed.tg_tps_range
    assert low <= 5.5 <= high
    assert abs(speed.tg_tps / 5.5 - 1) < 0.4


def test_memory_paced_weights_keep_their_figure() -> None:
    """Gemma 3 270M Q4_K_M (the tiny-cpu plan): its Q5_0 tensors' dot products are faster than
    their read at two threads, so the rates leave the decode figure as it was."""
    box = _this_vm(34.0)
    plain = without_dot_rates(CATALOG)
    rated, unrated = (_decode("Q4_K_M", 2, box, c, "gemma-3-270m") for c in (CATALOG, plain))
    assert rated.speed.tg_tps == unrated.speed.tg_tps
    assert any("Q5_0" in b for b in rated.basis if "dot products" in b)


def test_a_rate_needs_a_type_name_and_a_positive_figure() -> None:
    data = CPU.model_dump()
    for bad in ({"iq2_xxs": 14.0}, {"IQ2_XXS": 0.0}):
        with pytest.raises(ValidationError, match="dot rates"):
            BackendFactors.model_validate({**data, "dot_rate_gws": bad})
