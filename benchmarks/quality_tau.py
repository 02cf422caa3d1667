"""Kendall's tau between the chat score and the arena's open-model ordering (leave-one-out).

Run: .venv/bin/python benchmarks/quality_tau.py   (target: tau >= 0.8 over n >= 12 models)
"""

from __future__ import annotations

from stackctl.estimate import load_estimate_catalog
from stackctl.policy import load_policy
from stackctl.resolve.validate import arena_tau
from stackctl.resources import catalog_dir


def main() -> None:
    root = catalog_dir()
    result = arena_tau(load_policy(root), load_estimate_catalog(root).models)
    for model, rating, score in sorted(result.rows, key=lambda r: -r[1]):
        print(f"  {model:32s} arena {rating:6.0f}   chat score (own rating left out) {score:6.1f}")
    print(f"n = {result.n}, Kendall tau = {result.tau:.3f} (target >= 0.8 over n >= 12)")


if __name__ == "__main__":
    main()
