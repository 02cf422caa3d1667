"""Where probe text comes from: the live machine, or a hardware bundle (FORMAT.md).

Every probe is a command or a file, so every probe is replayable: `collect_bundle` writes what a
runner saw in the bundle layout, and `BundleRunner` plays it back.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from stackctl.detect.parse_nvidia import probe_nvml
from stackctl.detect.parse_psutil import probe_psutil
from stackctl.errors import InputError
from stackctl.models.hardware import ProfileSource


class Runner(Protocol):
    """The detector's only window on a machine."""

    source: ProfileSource
    label: str | None

    def run(self, name: str) -> str | None:
        """Output of the probe command `name` (a PROBES key); None when it is absent."""
        ...

    def read_file(self, path: str) -> str | None:
        """Text of an absolute path; None when missing or unreadable."""
        ...

    def list_dir(self, path: str) -> list[str] | None:
        """Entry names of an absolute directory path; None when missing."""
        ...


@dataclass(frozen=True)
class Probe:
    argv: tuple[str, ...]
    timeout_s: float = 20.0


# Bundle file name (FORMAT.md) -> the command that produces it.
PROBES: dict[str, Probe] = {
    "lscpu.txt": Probe(("lscpu",)),
    "uname.txt": Probe(("uname", "-a")),
    "free.txt": Probe(("free", "-b")),
    "nvidia-smi.txt": Probe(("nvidia-smi",)),
    "nvidia-smi-q.xml": Probe(("nvidia-smi", "-q", "-x")),
    "nvidia-smi-L.txt": Probe(("nvidia-smi", "-L")),
    "nvidia-smi-query.csv": Probe(
        (
            "nvidia-smi",
            "--query-gpu=index,name,uuid,pci.bus_id,memory.total,compute_cap,"
            "driver_version,mig.mode.current",
            "--format=csv",
        )
    ),
    "nvcc.txt": Probe(("nvcc", "-V")),
    "rocminfo.txt": Probe(("rocminfo",)),
    "rocm-smi.json": Probe(
        ("rocm-smi", "--showproductname", "--showmeminfo", "vram", "--showbus", "--json")
    ),
    "amd-smi-static.json": Probe(("amd-smi", "static", "--json")),
    "vulkaninfo.txt": Probe(("vulkaninfo", "--summary")),
    "sysctl.txt": Probe(
        ("sysctl", "hw", "machdep.cpu", "iogpu", "kern.osrelease", "kern.osproductversion")
    ),
    "system_profiler.json": Probe(
        (
            "system_profiler",
            "-json",
            "SPHardwareDataType",
            "SPDisplaysDataType",
            "SPSoftwareDataType",
        ),
        timeout_s=60.0,
    ),
    "lspci.txt": Probe(("lspci", "-nn")),
    "llama-list-devices.txt": Probe(("llama-server", "--list-devices")),
    "clinfo.txt": Probe(("clinfo",)),
}

# Commands that only make sense on one OS (sysctl exists on Linux too, with other keys).
DARWIN_ONLY = {"sysctl.txt", "system_profiler.json"}
LINUX_ONLY = {"lscpu.txt", "free.txt", "lspci.txt", "rocminfo.txt"}

FS_FILES = (
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/cmdline",
    "/etc/os-release",
)
DRM_ROOT = "/sys/class/drm"
KFD_NODES = "/sys/class/kfd/kfd/topology/nodes"
DRM_FILES = ("mem_info_vram_total", "mem_info_gtt_total", "vendor", "device", "uevent")

_MAX_FILE = 4 * 1024 * 1024


def decode(data: bytes) -> str:
    """Tool output as text; undecodable bytes become U+FFFD rather than an error."""
    return data.decode("utf-8", errors="replace")


class LiveRunner:
    """Runs commands on this machine, with timeouts; reads real files."""

    source: ProfileSource = "detected"

    def __init__(self) -> None:
        self.label = platform.node() or None
        self.system = platform.system().lower()

    def run(self, name: str) -> str | None:
        if name == "nvml.txt":
            return probe_nvml() if self.system != "darwin" else None
        if name == "psutil.txt":
            return probe_psutil()
        probe = PROBES.get(name)
        if probe is None or not self._applies(name):
            return None
        exe = shutil.which(probe.argv[0])
        if exe is None:
            return None
        try:
            done = subprocess.run(
                [exe, *probe.argv[1:]],
                capture_output=True,
                timeout=probe.timeout_s,
                check=False,
                env={**os.environ, "LC_ALL": "C"},  # parsers expect untranslated labels
            )
        except (OSError, subprocess.SubprocessError):
            return None
        out = decode(done.stdout)
        # llama-server prints its device list on stderr; its Vulkan backend prints one
        # `ggml_vulkan: N = ... | matrix cores: ...` line per device there too.
        if not out.strip() and done.stderr:
            out = decode(done.stderr)
        elif name == "llama-list-devices.txt" and b"ggml_vulkan:" in done.stderr:
            out = decode(done.stderr) + out
        return out if out.strip() else None

    def _applies(self, name: str) -> bool:
        if name in DARWIN_ONLY:
            return self.system == "darwin"
        if name in LINUX_ONLY:
            return self.system == "linux"
        return True

    def read_file(self, path: str) -> str | None:
        try:
            with Path(path).open("rb") as fh:
                return decode(fh.read(_MAX_FILE))
        except OSError:
            return None

    def list_dir(self, path: str) -> list[str] | None:
        try:
            return sorted(p.name for p in Path(path).iterdir())
        except OSError:
            return None


class BundleRunner:
    """Replays `cmd/NAME` and `fs/PATH` of a hardware bundle."""

    source: ProfileSource = "bundle"

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise InputError(
                f"{root}: no such bundle directory",
                hint="pass a folder written by `stackctl detect --collect DIR`",
            )
        self.root = root
        self.label: str | None = root.resolve().name

    def _read(self, path: Path) -> str | None:
        try:
            with path.open("rb") as fh:
                return decode(fh.read(_MAX_FILE))
        except OSError:  # missing, a directory, unreadable
            return None

    def run(self, name: str) -> str | None:
        return self._read(self.root / "cmd" / name)

    def read_file(self, path: str) -> str | None:
        return self._read(self.root / "fs" / path.lstrip("/"))

    def list_dir(self, path: str) -> list[str] | None:
        target = self.root / "fs" / path.lstrip("/")
        try:
            return sorted(p.name for p in target.iterdir())
        except OSError:
            return None


class RecordingRunner:
    """Wraps a runner and keeps everything it returned, for `collect_bundle`."""

    def __init__(self, inner: Runner) -> None:
        self.inner = inner
        self.source = inner.source
        self.label = inner.label
        self.commands: dict[str, str] = {}
        self.files: dict[str, str] = {}

    def run(self, name: str) -> str | None:
        out = self.inner.run(name)
        if out is not None:
            self.commands[name] = out
        return out

    def read_file(self, path: str) -> str | None:
        out = self.inner.read_file(path)
        if out is not None:
            self.files[path] = out
        return out

    def list_dir(self, path: str) -> list[str] | None:
        return self.inner.list_dir(path)


def write_bundle(rec: RecordingRunner, dest: Path, *, source_note: str) -> list[Path]:
    """Write what `rec` saw as a bundle at `dest`; returns the files written."""
    if dest.exists() and any(dest.iterdir()):
        raise InputError(f"{dest}: exists and is not empty", hint="collect into a new folder")
    written = []
    for name, text in sorted(rec.commands.items()):
        written.append(_write(dest / "cmd" / name, text))
    for path, text in sorted(rec.files.items()):
        written.append(_write(dest / "fs" / path.lstrip("/"), text))
    lines = [
        f"# Hardware bundle collected by `stackctl detect --collect` on {rec.label or 'this host'}",
        "",
        source_note,
        "",
        "| file | from |",
        "|---|---|",
    ]
    lines += [
        f"| `cmd/{n}` | `{' '.join(PROBES[n].argv) if n in PROBES else n}` |"
        for n in sorted(rec.commands)
    ]
    lines += [f"| `fs{p}` | `{p}` |" for p in sorted(rec.files)]
    written.append(_write(dest / "SOURCE.md", "\n".join(lines) + "\n"))
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
