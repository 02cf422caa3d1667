"""Golden rendered trees for the reference machines, from the committed golden locks.

A normal run fails on any difference (missing, extra or changed file); STACKCTL_UPDATE_GOLDEN=1
rewrites tests/data/render/<case>/ for review. The static roles are compared as a file list only
(they are copied verbatim from roles/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from stackctl.models.render import RenderedFile
from stackctl.render import make_environment, render_stack
from stackctl.resources import roles_dir, templates_dir
from tests.support.render_cases import CASES, GOLDEN, Case, golden_lock, relock_case, wants_update


def render_case(case: Case) -> list[RenderedFile]:
    return render_stack(
        golden_lock(case),
        make_environment(templates_dir()),
        roles=roles_dir(),
        lock_name=f"lockfiles/{case.name}.lock.yaml",
    )


def _tree(files: list[RenderedFile]) -> dict[str, str]:
    return {f.path: f.content for f in files if not f.path.startswith("roles/")}


def _golden(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_render_matches_golden(case: Case) -> None:
    rendered = _tree(render_case(case))
    folder = GOLDEN / case.name
    if wants_update():
        shutil.rmtree(folder, ignore_errors=True)
        for path, content in rendered.items():
            (folder / path).parent.mkdir(parents=True, exist_ok=True)
            (folder / path).write_text(content, encoding="utf-8")
    expected = _golden(folder)
    assert sorted(rendered) == sorted(expected), "files missing or extra"
    for path, content in rendered.items():
        assert content == expected[path], f"{case.name}/{path} changed (STACKCTL_UPDATE_GOLDEN=1)"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_render_is_byte_identical_and_ships_every_role(case: Case) -> None:
    first, second = render_case(case), render_case(case)
    assert first == second
    shipped = {f.path for f in first if f.path.startswith("roles/")}
    on_disk = {
        f"roles/{p.relative_to(roles_dir()).as_posix()}"
        for p in roles_dir().rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert shipped == on_disk


def test_roles_follow_the_lock() -> None:
    by_name = {c.name: _tree(render_case(c))["playbook.yml"] for c in CASES}
    assert "stackctl_host_rocm" in by_name["strix-halo-128-rocm"]
    assert "stackctl_host_kernel" in by_name["strix-halo-128-rocm"]
    assert "stackctl_host_vulkan" in by_name["strix-halo-128-vulkan"]
    assert "stackctl_host_nvidia" in by_name["rtx-4090"]
    assert "stackctl_host_apple" in by_name["mac-studio-m3-ultra"]
    assert "stackctl_engine_ds4" in by_name["mac-studio-m3-ultra-ds4"]
    assert "stackctl_engine_mlx" in by_name["mac-m4-max-36-mlx"]
    assert "stackctl_model" not in by_name["mac-m4-max-36-mlx"]  # the mlx role fetches it
    assert "stackctl_host_" not in by_name["cpu-x86"]


@pytest.mark.relock
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_relock_reproduces_golden_lock(case: Case) -> None:
    """Resolver drift shows here, not in the render goldens (slow: one resolve per case)."""
    if not (os.environ.get("STACKCTL_RELOCK") or wants_update()):
        pytest.skip("re-resolving is slow; STACKCTL_RELOCK=1 (scripts/test.sh sets it) runs it")
    fresh = relock_case(case)
    if wants_update():
        from stackctl.lock import write_lockfile

        write_lockfile(fresh, case.lock_path)
    assert fresh.resolved == golden_lock(case).resolved, f"re-resolving {case.name} changed it"
