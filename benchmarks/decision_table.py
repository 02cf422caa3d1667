"""The acceptance decision table (tests/unit/test_resolve_decisions.py) as figures: for each
machine x workload, the pick, its decode and prefill predictions with ranges, and the context.

Run: .venv/bin/python -m benchmarks.decision_table   (from the repository root)
"""

from __future__ import annotations

from tests.unit.test_resolve_decisions import CASES

from stackctl.catalog import load_catalog
from stackctl.detect import declare_hardware
from stackctl.models.spec import StackSpec
from stackctl.resolve import make_resolver
from stackctl.resources import catalog_dir


def main() -> None:
    resolver = make_resolver(load_catalog(catalog_dir()))
    for case in CASES:
        spec = StackSpec.model_validate({
            "name": "t", "workload": case.workload, "context": case.context,
            "users": case.users, "preferences": {"families": list(case.prefer)},
        })  # fmt: skip
        result = resolver.resolve(spec, declare_hardware(**case.hardware))
        c, p = result.chosen, result.resolved.predicted
        where = f"{c.engine.name}/{c.backend}"
        if c.placement.n_cpu_moe:
            where += f" n-cpu-moe {c.placement.n_cpu_moe}"
        print(f"{case.name:30s} {c.entry.id} {c.artefact.quant} {where}, ctx {c.ctx} x "
              f"{case.users}, tg {p.tg_tps:g} ({p.tg_tps_range[0]:g}-{p.tg_tps_range[1]:g}), "
              f"pp {p.pp_tps:g} ({p.pp_tps_range[0]:g}-{p.pp_tps_range[1]:g}) tok/s")  # fmt: skip


if __name__ == "__main__":
    main()
