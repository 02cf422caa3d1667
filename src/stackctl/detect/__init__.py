"""Hardware detection: probes (live or replayed from a bundle), pure parsers, one profile.

Names are loaded on first use (PEP 562): planning for declared hardware needs only
`declare_hardware`, not the live probes and parsers behind `detect_hardware`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackctl.detect.chips import ChipTable, load_chip_table
    from stackctl.detect.declare import declare_hardware
    from stackctl.detect.hardware import detect_hardware
    from stackctl.detect.runner import BundleRunner, LiveRunner, Runner
    from stackctl.models.hardware import HardwareProfile

_HOMES = {
    "ChipTable": "chips",
    "load_chip_table": "chips",
    "declare_hardware": "declare",
    "detect_hardware": "hardware",
    "BundleRunner": "runner",
    "LiveRunner": "runner",
    "Runner": "runner",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def collect_bundle(runner: Runner, dest_dir: Path) -> tuple[HardwareProfile, list[Path]]:
    """Detect through `runner` and write every raw probe output it saw as a bundle."""
    from stackctl.detect.hardware import detect_hardware
    from stackctl.detect.runner import RecordingRunner, write_bundle

    rec = RecordingRunner(runner)
    profile = detect_hardware(rec)
    note = (
        "Raw outputs of the probes `stackctl detect` ran, byte for byte as decoded UTF-8; "
        "review before sharing (hostnames, serials and UUIDs are included)."
    )
    return profile, write_bundle(rec, dest_dir, source_note=note)


__all__ = [
    "BundleRunner",
    "ChipTable",
    "LiveRunner",
    "Runner",
    "collect_bundle",
    "declare_hardware",
    "detect_hardware",
    "load_chip_table",
]
