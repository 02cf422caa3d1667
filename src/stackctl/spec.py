"""Load user inputs: stack specs and hardware profiles, with file:line errors."""

from __future__ import annotations

from pathlib import Path

from stackctl.errors import HardwareError, SpecError
from stackctl.models.hardware import HardwareProfile
from stackctl.models.spec import StackSpec
from stackctl.resources import stacks_dir
from stackctl.yamlio import read_yaml, validate_yaml

DEFAULT_STACK = "default"


def stack_path(name_or_path: str | None) -> Path:
    """A stack argument is a path to a YAML file or the name of a shipped stack."""
    if name_or_path is None:
        return stacks_dir() / f"{DEFAULT_STACK}.yaml"
    candidate = Path(name_or_path)
    if candidate.suffix in {".yaml", ".yml"} or candidate.exists():
        return candidate
    return stacks_dir() / f"{name_or_path}.yaml"


def load_stack(path: Path) -> StackSpec:
    if not path.is_file():
        shipped = sorted(p.stem for p in stacks_dir().glob("*.yaml"))
        raise SpecError(
            f"{path}: no such stack file",
            hint=f"shipped stacks: {', '.join(shipped)}" if shipped else None,
        )
    data = read_yaml(path, error=SpecError)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a stack file must be a YAML mapping")
    return validate_yaml(StackSpec, data, path, error=SpecError)


def load_profile(path: Path) -> HardwareProfile:
    data = read_yaml(path, error=HardwareError)
    if not isinstance(data, dict):
        raise HardwareError(f"{path}: a hardware profile must be a YAML mapping")
    return validate_yaml(HardwareProfile, data, path, error=HardwareError)
