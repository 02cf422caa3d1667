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
from collections import Counter
from pathlib import Path

from stackctl.estimate.catalog import BackendCatalog, load_estimate_catalog
from stackctl.estimate.public_fit import (
    PREFILL_MIN_BUILD,
    PREFILL_MIN_DATE,
    Case,
    Scored,
    fit,
    fitted_fields,
    fitted_names,
    leave_one_source_out,
    load_cases,
    public_rows,
    score,
    summary,
)
from stackctl.estimate.validation import range_coverage, ratios, spreads, validation_fields
from stackctl.resources import catalog_dir
from stackctl.yamlio import dump_yaml

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
    parser.add_argument("--write-fit", action="store_true", help="write catalog/speed_fit.yaml")
    args = parser.parse_args()
    catalog = load_estimate_catalog(catalog_dir(), fitted=False)  # the fit starts unfitted
    cases, missed = load_cases(ROWS, HARDWARE, catalog)
    _used, aside = public_rows(ROWS)
    total = len(cases) + len(missed)
    families = sorted({c.family for c in cases})
    print(f"rows {total}, predicted {len(cases)} ({len(cases) / total:.0%} coverage), "
          f"{len({c.source for c in cases})} sources, {len(families)} hardware boxes; "
          f"{len(aside)} more set aside")  # fmt: skip
    if aside:
        print(f"  set aside: prefill rows of builds before {PREFILL_MIN_BUILD} (or, with no "
              f"build number, dated before {PREFILL_MIN_DATE}): kernels rewritten since; their "
              "decode rows are used. Folded: runs that repeat a test of their source")  # fmt: skip
        for why, count in sorted(Counter(why for _ref, why in aside).items()):
            print(f"    {count:3} x {why}")
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
    print("fitted factors: decode (bandwidth share, KV read share, ms per layer), prefill "
          "(dense, expert, attention share of peak):")  # fmt: skip
    for name in sorted(fitted_names(cases, fitted_backends) - {"cpu"}):
        f = fitted_backends.backends[name]
        kv, expert = f.kv_read_efficiency or 0.0, f.expert_prefill_efficiency or 0.0
        print(f"  {name:22} decode {f.decode_efficiency:.3f} kv {kv:.3f} "
              f"{f.layer_overhead_ms:.3f} ms | prefill {f.prefill_efficiency:.3f} "
              f"{expert:.3f} {f.attention_prefill_efficiency:.3f}")  # fmt: skip
    print("fitted decode time multipliers per quant family (1 where not shown):")
    for name in sorted(fitted_names(cases, fitted_backends) - {"cpu"}):
        f = fitted_backends.backends[name]
        qd = " ".join(f"{k} {v:.2f}" for k, v in sorted(f.quant_decode_factor.items()))
        print(f"  {name:22} {qd or '-'}")
    cpu = fitted_backends.backends["cpu"]
    print(f"  host offload: {cpu.expert_split_overhead_ms:.3f} ms per split layer, "
          f"link {cpu.host_link_efficiency or 0:.2f} of its rate")  # fmt: skip
    moe = [s for s in loso if s.case.offload]
    n_moe, med_moe, worst_moe = summary(moe, "tg")
    print(f"MoE offload rows (--n-cpu-moe / -ot), leave-one-source-out: decode n={n_moe} "
          f"median {med_moe:.1%} worst {worst_moe:.1%}")  # fmt: skip
    for test, label in (("tg", "decode"), ("pp", "prefill")):
        n, plain = range_coverage(loso, test, widened=False)
        _, inside = range_coverage(loso, test)
        print(f"{label} ranges, leave-one-source-out: measured inside {plain}/{n} "
              f"({plain / max(n, 1):.0%}) by efficiency spreads alone, {inside}/{n} "
              f"({inside / max(n, 1):.0%}) widened to the other sources' held-out "
              "spread")  # fmt: skip
    if args.write_fit:
        write_fit(fitted_backends, cases, loso, total)
    return 0


# The CPU's own factors rest on this project's runs (catalog/backends.yaml M-CPU): for it the fit
# writes only the host's offload factors (hand-over per split layer, host link), which are laid
# over as the leave-one-source-out figures validate them; it gets no validation spread.
KEEP_CALIBRATED = frozenset({"cpu"})


def write_fit(backends: BackendCatalog, cases: list[Case], loso: list[Scored], total: int) -> None:
    fields = fitted_fields(backends, fitted_names(cases, backends))
    spread = spreads(ratios(loso))
    for name, entry in fields.items():
        if name not in KEEP_CALIBRATED:
            entry.update({k: list(v) for k, v in validation_fields(spread, name).items()})
    n_tg, med_tg, worst_tg = summary(loso, "tg")
    n_pp, med_pp, worst_pp = summary(loso, "pp")
    sources = sorted({c.source for c in cases})
    doc = {
        "schema_version": 1,
        "provenance": [
            "written by benchmarks/speed_vs_public.py --write-fit: every factor of the speed "
            "model (decode: bandwidth share, KV read, ms per layer; prefill: dense, expert and "
            "attention share of peak; the host's offload hand-over and link) fitted to the "
            "public rows by least squares, per backend, backend-vendor and memory kind, each "
            "level pulled toward the one above where rows are few (estimate/public_fit.py); "
            "the CPU's own factors stay backends.yaml's (this project's runs); "
            "decode_validation / prefill_validation: the 10th and 90th percentile of measured / "
            "predicted over each GPU backend's leave-one-source-out rows (all GPU rows pooled "
            "where a backend has fewer than 20; estimate/validation.py)",
            f"rows: tests/data/speed/public_llama_bench.yaml, {len(cases)} of {total} "
            f"predicted, sources: {', '.join(sources)}",
            f"leave-one-source-out: decode n={n_tg} median {med_tg:.1%} worst {worst_tg:.1%}; "
            f"prefill n={n_pp} median {med_pp:.1%} worst {worst_pp:.1%}",
        ],
        "apply": sorted(fields),
        "backends": fields,
    }
    header = "# Backend speed factors fitted to public llama-bench rows; do not edit by hand.\n"
    (ROOT / "catalog/speed_fit.yaml").write_text(dump_yaml(doc, header=header), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
