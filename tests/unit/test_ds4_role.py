"""The ds4 engine role run for real with ansible-playbook on this box's rendered Mac Studio
ds4 tree, on a small source archive of ds4's shape (a top folder with a Makefile whose `all`
target makes ds4-server): antirez/ds4 itself builds only for Metal and CUDA, so what runs here
is the role's own work: verify, unpack whole, make, mark the build done, install. A kill
mid-unpack or mid-link leaves nothing the next run takes for finished."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from stackctl.lock import read_lockfile
from tests.support.role_run import run_role_tasks

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "lockfiles/mac-studio-m3-ultra-ds4.lock.yaml"
TOP = "ds4-0000000"
MAKEFILE = "all: ds4-server\n\nds4-server: ds4.c\n\tcp ds4.c ds4-server\n\tchmod 755 ds4-server\n"
SERVER = "#!/bin/sh\necho ds4-server built by the role test\n"


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ds4") / "tree"
    done = subprocess.run([sys.executable, "-m", "stackctl", "render", str(LOCK), "-o", str(out)],
                          cwd=REPO, capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out


def _archive(folder: Path) -> Path:
    src = folder / "pack" / TOP
    src.mkdir(parents=True)
    (src / "Makefile").write_text(MAKEFILE)
    (src / "ds4.c").write_text(SERVER)
    for i in range(50):  # a tree with more than its Makefile in it
        (src / f"part{i:02}.h").write_text(f"/* part {i} */\n")
    path = folder / f"{TOP}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src, arcname=TOP)
    return path


def _run(tree: Path, root: Path, archive: Path) -> subprocess.CompletedProcess[str]:
    engine = read_lockfile(LOCK).resolved.engine.model_dump(mode="json")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    engine.update({
        "source": {**engine["source"], "file": archive.name, "sha256": sha},
        "source_subdir": TOP, "dir": str(root / "engine"),
        "server_binary": str(root / "engine/bin/ds4-server"),
    })  # fmt: skip
    extra = {"stackctl_layout": {"cache_dir": str(root / "cache")}, "stackctl_engine": engine,
             "stackctl_engine_source_local": str(archive)}  # fmt: skip
    return run_role_tasks(tree, "stackctl_engine_ds4", "main", env={},
                          extra=["-e", json.dumps(extra)])  # fmt: skip


def _build_dir(root: Path) -> Path:
    (build,) = (root / "cache" / "build").iterdir()
    return build


def test_the_role_unpacks_builds_and_installs(tree: Path, tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    done = _run(tree, tmp_path, archive)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    server = tmp_path / "engine/bin/ds4-server"
    assert subprocess.run([str(server)], capture_output=True, text=True,
                          check=True).stdout.startswith("ds4-server built")  # fmt: skip
    build = _build_dir(tmp_path)
    assert (build / "ds4.ok").is_file()
    assert not (build / ".unpack").exists()
    assert len(list((build / TOP).glob("part*.h"))) == 50
    built = (build / TOP / "ds4-server").stat().st_mtime_ns
    again = _run(tree, tmp_path, archive)  # a finished build is neither cleared nor made again
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert (build / TOP / "ds4-server").stat().st_mtime_ns == built


def test_an_interrupted_unpack_or_link_is_redone(tree: Path, tmp_path: Path) -> None:
    """What a kill leaves: a staging folder holding part of the tree (its Makefile is early
    in the archive) and a half-written ds4-server from a stopped link, with no build stamp."""
    archive = _archive(tmp_path)
    assert _run(tree, tmp_path, archive).returncode == 0
    build = _build_dir(tmp_path)
    (build / "ds4.ok").unlink()
    (build / TOP / "ds4-server").write_text("#!/bin/sh\nexit 3\n")  # newer than its source
    staged = build / ".unpack" / TOP
    staged.mkdir(parents=True)
    (staged / "Makefile").write_text(MAKEFILE)
    done = _run(tree, tmp_path, archive)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    server = tmp_path / "engine/bin/ds4-server"
    assert subprocess.run([str(server)], capture_output=True, text=True,
                          check=False).returncode == 0  # fmt: skip
    assert (build / "ds4.ok").is_file()


def test_a_source_whose_sha256_is_not_the_pinned_one_is_refused(tree: Path, tmp_path: Path) -> None:
    archive = _archive(tmp_path)
    engine = read_lockfile(LOCK).resolved.engine.model_dump(mode="json")
    engine.update({"source": {**engine["source"], "file": archive.name, "sha256": "0" * 64},
                   "source_subdir": TOP, "dir": str(tmp_path / "engine"),
                   "server_binary": str(tmp_path / "engine/bin/ds4-server")})  # fmt: skip
    extra = {"stackctl_layout": {"cache_dir": str(tmp_path / "cache")}, "stackctl_engine": engine,
             "stackctl_engine_source_local": str(archive)}  # fmt: skip
    done = run_role_tasks(tree, "stackctl_engine_ds4", "main", env={},
                          extra=["-e", json.dumps(extra)])  # fmt: skip
    assert done.returncode != 0
    assert f"the lock pins {'0' * 64}" in done.stdout
    assert not (tmp_path / "cache/build").exists() or not any(
        (tmp_path / "cache/build").rglob("Makefile")
    )
    assert not (tmp_path / "engine/bin/ds4-server").exists()
