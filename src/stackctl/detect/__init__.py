"""Hardware detection: probes (live or replayed from a bundle), pure parsers, one profile."""

from __future__ import annotations

from pathlib import Path

from stackctl.detect.chips import ChipTable, load_chip_table
from stackctl.detect.declare import declare_hardware
from stackctl.detect.hardware import detect_hardware
from stackctl.detect.runner import BundleRunner, LiveRunner, RecordingRunner, Runner, write_bundle
from stackctl.models.hardware import HardwareProfile


def collect_bundle(runner: Runner, dest_dir: Path) -> tuple[HardwareProfile, list[Path]]:
    """Detect through `runner` and write every raw probe output it saw as a bundle."""
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
