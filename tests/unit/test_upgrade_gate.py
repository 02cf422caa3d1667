"""The upgrade gate asks the check-output prompts once: its passing report is the one apply
keeps; with --no-check-output the gate is health alone; a failing check raises."""

from __future__ import annotations

import pytest

from stackctl import rollback
from stackctl.bench import check_output
from stackctl.bench.models import CheckCase, CheckReport
from stackctl.errors import ApplyError
from stackctl.lock import read_lockfile
from stackctl.models.lock import Lockfile
from tests.support.render_cases import BY_NAME


def _report(lock: Lockfile, passed: bool) -> CheckReport:
    case = CheckCase(name="count", passed=passed, expected=" 6", got=" 6" if passed else "zz",
                     reason=None if passed else "wrong answer")  # fmt: skip
    return CheckReport(lock_hash=lock.content_hash, model=lock.resolved.model.id, kind="base",
                       endpoint="http://127.0.0.1:8080", passed=passed, cases=[case])  # fmt: skip


@pytest.fixture
def lock() -> Lockfile:
    return read_lockfile(BY_NAME["cpu-x86"].lock_path)


def _fake(monkeypatch: pytest.MonkeyPatch, report: CheckReport) -> list[str]:
    asked: list[str] = []
    monkeypatch.setattr(
        rollback, "wait_for_health", lambda url, timeout, give_up: asked.append("health")
    )

    def check(_lock: Lockfile, url: str, _key: str | None) -> CheckReport:
        asked.append(f"check {url}")
        return report

    monkeypatch.setattr(check_output, "check_deployed", check)
    return asked


def test_the_gate_checks_once_and_returns_its_report(
    lock: Lockfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = _report(lock, passed=True)
    asked = _fake(monkeypatch, report)
    assert rollback.verify_upgrade(lock) == report
    assert asked == ["health", "check http://127.0.0.1:8080"]


def test_no_check_output_leaves_health_alone(
    lock: Lockfile, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _fake(monkeypatch, _report(lock, passed=True))
    assert rollback.verify_upgrade(lock, check=False) is None
    assert asked == ["health"]


def test_a_failing_check_raises(lock: Lockfile, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake(monkeypatch, _report(lock, passed=False))
    with pytest.raises(ApplyError, match="check-output failed") as caught:
        rollback.verify_upgrade(lock)
    assert caught.value.details == ["count: wrong answer"]
