from __future__ import annotations

from pathlib import Path

import pytest

from stackctl.errors import SpecError
from stackctl.resources import stacks_dir
from stackctl.spec import load_stack, stack_path


def test_every_shipped_stack_loads() -> None:
    names = sorted(p.stem for p in stacks_dir().glob("*.yaml"))
    assert {"default", "tiny-cpu"} <= set(names)
    for name in names:
        assert load_stack(stack_path(name)).name == name


def test_default_stack_is_used_without_argument() -> None:
    assert stack_path(None).name == "default.yaml"


def test_tiny_cpu_pins_gemma() -> None:
    spec = load_stack(stack_path("tiny-cpu"))
    assert spec.pin is not None
    assert (spec.pin.model, spec.pin.quant) == ("gemma-3-270m", "Q4_K_M")
    assert spec.serve.port == 8080


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_unknown_key_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nworkload: chat\ncontex: 4096\n")
    with pytest.raises(SpecError) as err:
        load_stack(path)
    assert "unknown key 'contex'" in err.value.message
    assert err.value.source is not None
    assert (err.value.source.path, err.value.source.line) == (path, 3)


def test_bad_value_in_nested_key_points_at_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nserve:\n  host: 127.0.0.1\n  port: 99999\n")
    with pytest.raises(SpecError) as err:
        load_stack(path)
    assert err.value.source is not None
    assert err.value.source.line == 4
    assert "serve.port" in err.value.message


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: x\nworkload: [chat\n")
    with pytest.raises(SpecError) as err:
        load_stack(path)
    assert err.value.source is not None
    assert err.value.source.line is not None


def test_missing_file_lists_shipped_stacks(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as err:
        load_stack(tmp_path / "nope.yaml")
    assert "no such stack file" in err.value.message
    assert err.value.hint is not None
    assert "default" in err.value.hint


def test_hostile_host_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path, 'name: x\nserve:\n  host: "127.0.0.1; rm -rf /"\n')
    with pytest.raises(SpecError):
        load_stack(path)


def test_name_must_be_safe(tmp_path: Path) -> None:
    with pytest.raises(SpecError):
        load_stack(_write(tmp_path, "name: ../etc\n"))
