"""apply's closing report: the smoke test's decode beside the prediction, and a pointer to
`bench` + `calibrate` when the measurement falls outside the predicted range."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.catalog import load_catalog
from stackctl.cli.apply_cmd import _report
from stackctl.models.apply import HostStats, PlaybookResult, SmokeResult
from stackctl.pipeline import Inputs, make_lock
from stackctl.resources import catalog_dir
from stackctl.spec import load_profile, load_stack, stack_path

HINT = "outside the predicted range"


@pytest.mark.parametrize("where", ["inside", "below", "above"])
def test_a_decode_outside_the_range_points_to_bench_and_calibrate(
    cpu_profile: Path, capsys: pytest.CaptureFixture[str], where: str
) -> None:
    spec_path = stack_path("tiny-cpu")
    inputs = Inputs(
        load_stack(spec_path), spec_path, load_profile(cpu_profile), cpu_profile,
        load_catalog(catalog_dir()),
    )  # fmt: skip
    lock = make_lock(inputs)
    p = lock.resolved.predicted
    measured = {"inside": p.tg_tps, "below": p.tg_tps_range[0] * 0.9,
                "above": p.tg_tps_range[1] * 1.1}[where]  # fmt: skip
    smoke = SmokeResult(
        endpoint="http://127.0.0.1:8080/v1/completions", prompt="1, 2, 3,", text=" 4, 5",
        tokens=2, tg_tps=measured, pp_tps=None,
    )  # fmt: skip
    result = PlaybookResult(
        playbook="site.yml", check=False, changed_tasks=[], failed_tasks=[],
        hosts={"localhost": HostStats(ok=3, changed=0, failures=0, unreachable=0)},
    )  # fmt: skip
    _report(result, smoke, lock)
    out, err = capsys.readouterr()
    assert f"decode: measured {measured:.1f} tok/s, predicted {p.tg_tps:.1f}" in out
    assert (HINT in err) is (where != "inside")
    if where != "inside":
        assert "stackctl bench" in err
        assert "stackctl calibrate" in err
