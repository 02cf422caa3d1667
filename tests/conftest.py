from __future__ import annotations

from collections.abc import Iterator
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


@pytest.fixture(autouse=True, scope="session")
def private_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data dir (the bench store) of the whole run, e2e subprocesses included: `apply`
    stores its smoke test's decode there, and rows from a loaded test run must never reach the
    user's `calibrate`. Session-scoped so that module-scoped deployments see it too."""
    data = tmp_path_factory.mktemp("xdg-data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(data))
        patch.delenv("STACKCTL_STORE", raising=False)
        yield data


@pytest.fixture(autouse=True)
def state_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path | None]:
    """The state dir (applied lock, apply log, state lock) of in-process commands: per test,
    never the box's /var/lib/stackctl. e2e tests run stackctl as a subprocess on the real one."""
    from stackctl.state import STATE_ENV

    if request.node.get_closest_marker("e2e") is not None:
        yield None
        return
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(STATE_ENV, str(state))
        yield state


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the image tests' base and toolchain images in the background (they overlap the
    e2e compiles) when an image test is collected."""
    from tests.support import image_prep

    if image_prep.wanted(session.items):
        image_prep.start()
