"""STACKCTL_HEALTH_TIMEOUT: how long apply's service role waits for /health."""

from __future__ import annotations

import pytest

from stackctl.cli.apply_cmd import HEALTH_TIMEOUT_ENV, health_timeout
from stackctl.errors import InputError


def test_unset_keeps_the_roles_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HEALTH_TIMEOUT_ENV, raising=False)
    assert health_timeout() is None


def test_seconds_are_passed_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HEALTH_TIMEOUT_ENV, "60")
    assert health_timeout() == 60


@pytest.mark.parametrize("bad", ["0", "-5", "1.5", "soon"])
def test_anything_but_whole_seconds_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv(HEALTH_TIMEOUT_ENV, bad)
    with pytest.raises(InputError, match="is not a number of seconds"):
        health_timeout()
