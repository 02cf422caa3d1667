"""Property: whatever a file holds (cut short, empty, binary, lines mixed up, another tool's
output), every parser behind `detect` gives a result, never a crash, and an unreadable file gets
a warning that names it. The inputs start from real recorded outputs (the bundles)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackctl.detect import detect_hardware, load_chip_table
from stackctl.detect import parse_amd as amd
from stackctl.detect import parse_apple as mac
from stackctl.detect import parse_linux as lx
from stackctl.detect import parse_nvidia as nv
from stackctl.detect.accelerators import Context, probe
from stackctl.detect.parse_psutil import parse_psutil
from stackctl.models.hardware import ProfileSource

ROOT = Path(__file__).resolve().parents[1] / "data" / "hw"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "hw"
REAL = sorted(p for base in (ROOT, SHARED) for p in base.glob("*/*/**/*") if p.is_file())
REAL_TEXTS = [p.read_text(errors="replace") for p in REAL][:200] or ["x: 1\n"]

# Every command a bundle may hold, with the parser detect runs on it.
PARSERS: dict[str, Callable[[str], Any]] = {
    "nvml.txt": nv.parse_nvml,
    "nvidia-smi-q.xml": nv.parse_nvidia_smi_xml,
    "nvidia-smi-q.txt": nv.parse_nvidia_smi_q,
    "nvidia-smi-query.csv": nv.parse_nvidia_smi_csv,
    "nvidia-smi.txt": nv.parse_nvidia_smi,
    "nvidia-smi-L.txt": nv.parse_nvidia_smi_list,
    "rocminfo.txt": amd.parse_rocminfo,
    "rocm-smi.txt": amd.parse_rocm_smi,
    "rocm-smi.json": amd.parse_rocm_smi_json,
    "amd-smi-static.json": amd.parse_amd_smi_static_json,
    "amd-smi-static.txt": amd.parse_amd_smi_static,
    "vulkaninfo.txt": mac.parse_vulkaninfo,
    "sysctl.txt": mac.parse_sysctl,
    "system_profiler.txt": mac.parse_system_profiler,
    "system_profiler.json": mac.parse_system_profiler_json,
    "llama-list-devices.txt": mac.parse_llama_devices,
    "clinfo.txt": mac.parse_clinfo,
    "lscpu.txt": lx.parse_lscpu,
    "uname.txt": lx.parse_uname,
    "free.txt": lx.parse_free,
    "lspci.txt": lx.parse_lspci,
    "dmesg-amdgpu.txt": lx.parse_dmesg_amdgpu,
    "nvcc.txt": lx.parse_nvcc,
    "psutil.txt": parse_psutil,
}
FILES: dict[str, Callable[[str], Any]] = {
    "/proc/cpuinfo": lx.parse_cpuinfo,
    "/proc/meminfo": lx.parse_meminfo,
    "/proc/cmdline": lx.parse_cmdline,
    "/etc/os-release": lx.parse_os_release,
    "/sys/class/kfd/kfd/topology/nodes/1/properties": amd.parse_kfd_properties,
}
TABLE = load_chip_table()


class DictRunner:
    """A bundle held in memory: command name or absolute path -> text."""

    source: ProfileSource = "bundle"
    label: str | None = "prop"

    def __init__(self, commands: dict[str, str], files: dict[str, str]) -> None:
        self.commands, self.files = commands, files

    def run(self, name: str) -> str | None:
        return self.commands.get(name)

    def read_file(self, path: str) -> str | None:
        return self.files.get(path)

    def list_dir(self, path: str) -> list[str] | None:
        prefix = path.rstrip("/") + "/"
        names = {p[len(prefix) :].split("/")[0] for p in self.files if p.startswith(prefix)}
        return sorted(names) or None


def _damage(text: str, how: str, cut: float, junk: bytes) -> str:
    lines = text.splitlines(keepends=True)
    if how == "truncate":
        return text[: int(len(text) * cut)]
    if how == "empty":
        return ""
    if how == "binary":
        return (bytes(range(256)) + junk).decode("latin-1")
    if how == "shuffle":
        return "".join(lines[1::2] + lines[::2])[: max(int(len(text) * cut), 1)]
    return junk.decode("utf-8", errors="replace") + text[: int(len(text) * cut)]


damaged = st.builds(
    _damage,
    st.sampled_from(REAL_TEXTS),
    st.sampled_from(["truncate", "empty", "binary", "shuffle", "prefix"]),
    st.floats(0, 1),
    st.binary(max_size=64),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(PARSERS)), text=damaged)
def test_every_command_parser_survives_and_warns(name: str, text: str) -> None:
    ctx = Context(runner=DictRunner({name: text}, {}), table=TABLE)
    probe(ctx, name, PARSERS[name])
    unreadable = not text.strip() or "\x00" in text[:4096]
    if unreadable:
        assert any(name in w for w in ctx.warnings), (name, ctx.warnings)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(sorted(FILES)), text=damaged)
def test_every_file_parser_survives_and_warns(path: str, text: str) -> None:
    ctx = Context(runner=DictRunner({}, {path: text}), table=TABLE)
    probe(ctx, path, FILES[path], file=True, may_be_empty=True)
    if "\x00" in text[:4096]:
        assert any(path in w for w in ctx.warnings), (path, ctx.warnings)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.dictionaries(st.sampled_from(sorted(PARSERS)), damaged, min_size=1, max_size=6),
    files=st.dictionaries(st.sampled_from(sorted(FILES)), damaged, max_size=3),
)
def test_whole_detection_survives_mixed_up_bundles(
    picks: dict[str, str], files: dict[str, str]
) -> None:
    prof = detect_hardware(DictRunner(picks, files), table=TABLE)
    assert prof.source == "bundle"
    for name, text in picks.items():
        if "\x00" in text[:4096]:
            assert any(f"cmd/{name}" in w for w in prof.warnings), (name, prof.warnings)
