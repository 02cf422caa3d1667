"""Predicted vs measured on the public llama-bench rows, the efficiency fit, and a
leave-one-source-out table (fit without a source, predict it).

    .venv/bin/python benchmarks/speed_vs_public.py [--rows] [--fitted-yaml FILE]

Prints per-row predicted vs measured (with --rows), the medians and worst errors with the
catalog's factors, with the factors fitted on all rows, and leave-one-source-out, per source
and overall; targets (issue 14): coverage 100 %, median decode <= 10 %, prefill <= 20 %,
worst <= 40 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.public_fit import (
    Scored,
    fit,
    leave_one_source_out,
    load_cases,
    score,
    summary,
)
from stackctl.resources import catalog_dir

ROOT = Path(__file__).resolve().parents[1]
ROWS = ROOT / "tests/data/speed/public_llama_bench.yaml"
HARDWARE = ROOT / "tests/data/estimate/public_hardware.yaml"


def line(title: str, scored: list[Scored]) -> str:
    n_tg, med_tg, worst_tg = summary(scored, "tg")
    n_pp, med_pp, worst_pp = summary(scored, "pp")
    return (f"{title:34} decode n={n_tg:3} median {med_tg:6.1%} worst {worst_tg:7.1%} | "
            f"prefill n={n_pp:3} median {med_pp:6.1%} worst {worst_pp:7.1%}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", action="store_true", help="print every row")
    args = parser.parse_args()
    catalog = load_estimate_catalog(catalog_dir())
    cases, missed = load_cases(ROWS, HARDWARE, catalog)
    total = len(cases) + len(missed)
    families = sorted({c.family for c in cases})
    print(f"rows {total}, predicted {len(cases)} ({len(cases) / total:.0%} coverage), "
          f"{len({c.source for c in cases})} sources, {len(families)} hardware boxes")  # fmt: skip
    for ref, why in missed:
        print(f"  NOT PREDICTED {ref}: {why}")
    base = score(cases, catalog.backends)
    fitted_backends = fit(cases, catalog.backends)
    fitted = score(cases, fitted_backends)
    loso = leave_one_source_out(cases, catalog.backends)
    if args.rows:
        by_case = {id(s.case): s for s in loso}
        for s in fitted:
            lo = by_case[id(s.case)]
            print(f"{s.case.label:90} measured {s.case.measured:9.1f} fitted {s.predicted:9.1f} "
                  f"({s.predicted / s.case.measured - 1:+6.1%}) loso {lo.predicted:9.1f} "
                  f"({lo.predicted / s.case.measured - 1:+6.1%})")  # fmt: skip
    print(line("catalog factors", base))
    print(line("fitted on all rows", fitted))
    print(line("leave-one-source-out", loso))
    for source in sorted({c.source for c in cases}):
        print(line(f"  loso {source}", [s for s in loso if s.case.source == source]))
    print("fitted factors (decode, prefill efficiency) per backend:")
    for name in sorted({c.backend for c in cases} | {c.key for c in cases}):
        f = fitted_backends.backends[name]
        print(f"  {name:7} decode {f.decode_efficiency:.3f} {f.decode_range}  "
              f"prefill {f.prefill_efficiency:.3f} {f.prefill_range}  "
              f"expert prefill {f.expert_prefill_efficiency}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
