"""Per-type CPU dot-product rates from cpu_decode_vs_probe.py runs: which ggml types the dot
product, not the memory, paces at few threads, and at how many weights per second per thread.

    .venv/bin/python benchmarks/cpu_dot_rates.py RUN.json [RUN.json ...]

Each run holds llama-bench tg at 1 and 2 threads on Llama 3.2 1B shape-only files in several
quant recipes (`cpu_decode_vs_probe.py --quants`). estimate/dot_rates.py fits seconds per
weight per type over all runs' rows; the types that read under 0.7 of the probe's stream at one
thread are catalog/backends.yaml `dot_rate_gws`. The two-thread fit is printed beside it: a
dot-paced type keeps most of its rate per thread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from stackctl.estimate.catalog import load_estimate_catalog
from stackctl.estimate.dot_rates import dot_paced, fit_rates
from stackctl.resources import catalog_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    catalog = load_estimate_catalog(catalog_dir())
    rows = [r for path in args.runs
            for r in json.loads(path.read_text(encoding="utf-8"))["rows"]]  # fmt: skip
    probe = {t: statistics.mean(r["probe_gbps"] for r in rows if r["threads"] == t)
             for t in (1, 2)}  # fmt: skip
    one, two = fit_rates(rows, 1, catalog), fit_rates(rows, 2, catalog)
    paced = dot_paced(one, probe[1])
    print(f"{len(args.runs)} run(s), {len(rows)} rows; probe {probe[1]:.1f} GB/s at 1 thread, "
          f"{probe[2]:.1f} at 2")  # fmt: skip
    print(f"  {'type':8} {'G w/s 1t':>9} {'read/probe':>10} {'G w/s/thread 2t':>16} "
          f"{'read/probe':>10}")  # fmt: skip
    for t, r1 in sorted(one.items()):
        r2 = two[t]
        print(f"  {t:8} {r1.gws_per_thread:9.1f} {r1.read_share(1, probe[1]):10.2f} "
              f"{r2.gws_per_thread:16.1f} {r2.read_share(2, probe[2]):10.2f}"
              f"{' dot-paced' if t in paced else ''}")  # fmt: skip
    print("dot_rate_gws (G weights/s per thread, the one-thread fit):")
    print("  {" + ", ".join(f"{t}: {rate:.3g}" for t, rate in paced.items()) + "}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
