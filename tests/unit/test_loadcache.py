"""Loaded catalogs kept between runs (stackctl.loadcache): never stale, never hiding an error,
and a plan from kept objects is the plan from freshly validated files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stackctl.catalog import load_catalog
from stackctl.detect import declare_hardware
from stackctl.errors import CatalogError
from stackctl.estimate import load_estimate_catalog
from stackctl.loadcache import cached_load, cached_part
from stackctl.resolve import make_resolver
from stackctl.resources import catalog_dir
from stackctl.spec import load_stack, stack_path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STACKCTL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "stackctl"


def _counting(value: dict[str, int]) -> tuple[list[int], Callable[[], Any]]:
    calls: list[int] = []

    def load() -> Any:
        calls.append(1)
        return value

    return calls, load


def test_kept_object_comes_back_until_a_file_changes(cache: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.yaml"
    source.write_text("a: 1\n")
    calls, load = _counting({"a": 1})
    assert cached_load("thing", [source], load, dict) == {"a": 1}
    assert cached_load("thing", [source], load, dict) == {"a": 1}
    assert len(calls) == 1
    source.write_text("a: 2\n")
    cached_load("thing", [source], load, dict)
    assert len(calls) == 2
    assert len(list((cache / "loaded").glob("thing@*.pickle"))) == 1  # the old version went


def test_a_broken_or_foreign_cache_file_is_loaded_afresh(cache: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.yaml"
    source.write_text("a: 1\n")
    calls, load = _counting({"a": 1})
    cached_load("thing", [source], load, dict)
    (kept,) = (cache / "loaded").glob("thing@*.pickle")
    kept.write_bytes(b"not a pickle")
    assert cached_load("thing", [source], load, dict) == {"a": 1}
    foreign: object = cached_load("thing", [source], load, list)  # kept a dict, wants a list
    assert foreign == {"a": 1}
    assert len(calls) == 3


def test_parts_of_an_older_key_go_with_the_first_new_part(cache: Path) -> None:
    calls, load = _counting({"a": 1})
    cached_part("views", "one", "key1", load, dict)
    cached_part("views", "one", "key1", load, dict)
    assert len(calls) == 1
    cached_part("views", "one", "key2", load, dict)
    assert [p.name for p in (cache / "loaded").iterdir()] == ["views@key2"]
    calls_before = len(calls)
    cached_part("views", "two", None, load, dict)
    assert len(calls) == calls_before + 1  # no key: nothing kept


def test_a_bad_catalog_is_reported_every_time(cache: Path, tmp_path: Path) -> None:
    root = tmp_path / "catalog"
    shutil.copytree(catalog_dir(), root)
    load_catalog(root)  # kept
    engines = root / "engines.yaml"
    engines.write_text(engines.read_text() + "bogus_key: 1\n")
    for _ in range(2):
        with pytest.raises(CatalogError, match="bogus_key"):
            load_catalog(root)


def test_plan_from_kept_catalogs_equals_plan_from_fresh_ones(cache: Path) -> None:
    spec = load_stack(stack_path("agentic-coder"))
    hardware = declare_hardware(gpus=["RTX 3070 Ti"], ram_gib=64)  # layers split with RAM

    def plan() -> str:
        resolved = make_resolver(load_catalog(catalog_dir())).resolve(spec, hardware).resolved
        return resolved.model_dump_json()

    fresh = plan()
    assert (cache / "loaded").is_dir()
    assert any((cache / "loaded").glob("views@*/*.pickle"))
    assert plan() == fresh
    assert load_estimate_catalog(catalog_dir()).source_key() is not None


def test_a_copy_with_other_models_keeps_nothing_under_the_files_key(cache: Path) -> None:
    estimates = load_estimate_catalog(catalog_dir())
    assert estimates.source_key() is not None
    edited = estimates.model_copy(update={"models": dict(estimates.models)})
    assert edited.source_key() is None  # its views are its own: not the files' kept ones
