"""$STACKCTL_LAYOUT: a box (or an end-to-end test) whose engines, build cache, models and logs
live elsewhere than /opt, /var and /etc. Commands acting on this box render and look there."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from stackctl.errors import InputError
from stackctl.layout import LAYOUT_ENV, host_layout, model_path
from stackctl.lock import read_lockfile
from stackctl.models.render import HostLayout
from stackctl.pipeline import render_lock
from stackctl.state import STATE_ENV, state_root

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "lockfiles" / "cpu-x86.lock.yaml"


def _layout_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "layout.yaml"
    path.write_text(text)
    return path


def test_without_the_variable_the_standard_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LAYOUT_ENV, raising=False)
    assert host_layout() == HostLayout()
    assert host_layout().cache_dir == "/var/cache/stackctl"


def test_a_layout_file_moves_what_it_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _layout_file(tmp_path, f"cache_dir: {tmp_path}/cache\nstate_dir: {tmp_path}/state\n")
    monkeypatch.setenv(LAYOUT_ENV, str(path))
    host = host_layout()
    assert host.cache_dir == f"{tmp_path}/cache"
    assert host.state_dir == f"{tmp_path}/state"
    assert host.prefix == HostLayout().prefix  # the rest keeps its default
    lock = read_lockfile(LOCK)
    assert model_path(lock, host).startswith(f"{tmp_path}/state/models/")


def test_the_state_dir_follows_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _layout_file(tmp_path, f"state_dir: {tmp_path}/state\n")
    monkeypatch.setenv(LAYOUT_ENV, str(path))
    monkeypatch.delenv(STATE_ENV, raising=False)
    assert state_root() == tmp_path / "state"
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "elsewhere"))
    assert state_root() == tmp_path / "elsewhere"  # the explicit variable still wins


def test_rendered_vars_carry_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _layout_file(tmp_path, f"prefix: {tmp_path}/opt\ncache_dir: {tmp_path}/cache\n")
    monkeypatch.setenv(LAYOUT_ENV, str(path))
    tree = render_lock(read_lockfile(LOCK), LOCK, tmp_path / "tree", host_layout())
    variables = YAML(typ="safe").load((tree / "group_vars/all/stackctl.yml").read_text())
    assert variables["stackctl_layout"]["cache_dir"] == f"{tmp_path}/cache"
    assert variables["stackctl_server"]["argv"][0].startswith(f"{tmp_path}/opt/engines/")
    plain = render_lock(read_lockfile(LOCK), LOCK, tmp_path / "plain")
    default = YAML(typ="safe").load((plain / "group_vars/all/stackctl.yml").read_text())
    assert default["stackctl_layout"]["cache_dir"] == "/var/cache/stackctl"  # render's own


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("cache_dir: relative/cache\n", "cache_dir must be absolute"),
        ("cache_dri: /x\n", "unknown key 'cache_dri'"),
        ("- /x\n", "must be a YAML mapping"),
    ],
)
def test_a_bad_layout_file_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, says: str
) -> None:
    monkeypatch.setenv(LAYOUT_ENV, str(_layout_file(tmp_path, text)))
    with pytest.raises(InputError) as caught:
        host_layout()
    assert says in str(caught.value) + caught.value.message
    assert "layout.yaml" in str(caught.value.source or "") + caught.value.message
