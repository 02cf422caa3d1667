"""Speed at depth: predicted vs measured pp(d)/pp(0) and tg(d)/tg(0), and the fitted factors.

Replays the llama-bench rows of tests/data/estimate/depth_reference.yaml (public Strix Halo
rows and this machine's own CPU runs) through the estimator's roofline. Per row it prints the
measured ratios, the ratios the catalog's attention factors give (middle and range), and the
attention efficiency that would reproduce the measured ratio exactly: the figure
catalog/backends.yaml keeps per backend is chosen from these.

    .venv/bin/python benchmarks/depth_calibration.py [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

from stackctl.estimate.catalog import EstimateCatalog, load_estimate_catalog
from stackctl.estimate.depth_check import (
    DepthRow,
    catalog_ratios,
    implied_factor,
    load_depth_rows,
    predicted_ratios,
    row_speeds,
)
from stackctl.estimate.speed import decode_efficiencies, prefill_efficiencies
from stackctl.resources import catalog_dir

ROWS = Path(__file__).resolve().parents[1] / "tests/data/estimate/depth_reference.yaml"


def fit_row(row: DepthRow, catalog: EstimateCatalog) -> dict[str, Any]:
    factors = catalog.backends.backends[row.backend]
    speeds = row_speeds(row, catalog)
    dec = decode_efficiencies({row.backend: factors}, set())[0][row.backend]
    pre = prefill_efficiencies({row.backend: factors})[0][row.backend]
    ratios = catalog_ratios(row, speeds, factors)
    pp_attn = implied_factor(
        row.pp_ratio, lambda e: predicted_ratios(row, speeds, dec, replace(pre, attention=e))[0]
    )
    compute_bound = row.backend == "cpu"
    if compute_bound:  # CPU decode attention is bound by its ops (one query row, f16/f32)
        tg_fit = implied_factor(
            row.tg_ratio, lambda e: predicted_ratios(row, speeds, replace(dec, attention=e), pre)[1]
        )
    else:  # a GPU streams the KV cache: its read efficiency is what depth costs
        tg_fit = implied_factor(
            row.tg_ratio, lambda e: predicted_ratios(row, speeds, replace(dec, kv=e), pre)[1]
        )
    return {
        "id": row.id,
        "backend": row.backend,
        "depth": row.depth,
        "pp_ratio": {"measured": row.pp_ratio, **{k: v[0] for k, v in ratios.items()}},
        "tg_ratio": {"measured": row.tg_ratio, **{k: v[1] for k, v in ratios.items()}},
        "implied_attention_prefill_efficiency": pp_attn,
        "implied_decode_factor": tg_fit,
        "decode_factor_kind": (
            "attention_decode_efficiency" if compute_bound else "kv_read_efficiency"
        ),
        "source": row.source,
    }


def _fmt(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "  >1  "


def print_report(fits: list[dict[str, Any]]) -> None:
    print(f"{'row':32} {'ratio':5} {'measured':>8} {'predicted':>9} {'range':>15}  implied factor")
    for f in fits:
        for kind, implied, name in (
            ("pp", f["implied_attention_prefill_efficiency"], "attention_prefill_efficiency"),
            ("tg", f["implied_decode_factor"], f["decode_factor_kind"]),
        ):
            r = f[f"{kind}_ratio"]
            print(f"{f['id']:32} {kind:5} {r['measured']:8.3f} {r['mid']:9.3f} "
                  f"({r['low']:.3f}-{r['high']:.3f})  {name} {_fmt(implied)}")  # fmt: skip
    keys = ("pp_ratio", "tg_ratio")
    errors = [abs(f[k]["mid"] / f[k]["measured"] - 1) for f in fits for k in keys]
    print(f"ratio error: median {statistics.median(errors):.1%}, worst {max(errors):.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the table as JSON here")
    args = parser.parse_args()
    rows = load_depth_rows(ROWS)
    catalog = load_estimate_catalog(catalog_dir())
    fits = [fit_row(row, catalog) for row in rows]
    print_report(fits)
    if args.json:
        args.json.write_text(json.dumps(fits, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
