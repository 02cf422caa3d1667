"""`systemd-analyze security` on the unit rendered for every reference machine: the exposure
score is printed and must stay "OK" or better (below 5.0; systemd 252 calls 5.0 MEDIUM)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.render_cases import CASES, Case
from tests.unit.test_render_golden import render_case

OK_BELOW = 5.0
SCORE = re.compile(r"Overall exposure level for \S+: (\d+\.\d+) (\w+)")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_unit_exposure_is_ok_or_better(case: Case, tmp_path: Path) -> None:
    units = [f for f in render_case(case) if f.path.endswith(".service")]
    if not units:
        pytest.skip(f"{case.name} renders no systemd unit")
    for unit in units:
        path = tmp_path / Path(unit.path).name
        path.write_text(unit.content)
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        found = SCORE.search(done.stdout + done.stderr)
        assert found, done.stdout[-2000:] + done.stderr[-2000:]
        score, level = float(found.group(1)), found.group(2)
        print(f"{case.name}: {path.name} exposure {score} {level}")
        assert score < OK_BELOW, f"{path.name}: {score} {level}"


@pytest.mark.parametrize(
    ("host", "keyed"), [("127.0.0.1", False), ("::1", False), ("0.0.0.0", True)]
)
def test_a_server_beyond_loopback_reads_a_key_file(host: str, keyed: bool) -> None:
    from stackctl.layout import service_argv
    from stackctl.lock import lockfile_text
    from stackctl.models.render import HostLayout
    from tests.e2e.test_served_api_key_e2e import _lock_on

    lock = _lock_on(host, 8080)
    argv = service_argv(lock, HostLayout())
    key_args = ["--api-key-file", "/etc/stackctl/stackctl-tiny-cpu.api-key"]
    assert (argv[-2:] == key_args) is keyed
    assert "--api-key" not in argv, "a key itself never goes on the command line"
    assert "api-key" not in lockfile_text(lock), "nor into the lock"
