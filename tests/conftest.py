from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def cpu_profile() -> Path:
    return DATA / "profiles" / "cpu-x86-2core.yaml"


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run a command from an empty folder, as a user in a fresh project would."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
