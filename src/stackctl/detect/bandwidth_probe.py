"""A ~1 s memory read-bandwidth probe: what decode on this box's CPU can stream.

Decode on a CPU is bound by how fast the cores read the weights, and a catalog figure for the
socket says little about a VM with two of its cores. So `stackctl detect` measures it: one
thread per physical core scans its own buffer (far larger than any last-level cache) with
libc `memchr` for a byte that is not there (C speed; ctypes drops the GIL during the call),
repeatedly for about a second; the median round's aggregate rate counts. Decode streams its
weights for seconds, so it sees the sustained rate, and on a shared box single rounds read far
above it: on this project's 2-vCPU VM, over 16 trials of a second's rounds each, the best
round ranged 34-58 GB/s and the median round 30-38 while llama-bench's decode held 75-91
tok/s (benchmarks/probe_rounds_vs_decode.py, tests/data/estimate/probe_rounds_vs_decode.json).

The figure is rounded to 2 significant figures and cached per box (under the XDG cache dir)
so that locks don't go stale on noise. `--collect` stores it in the bundle as
`bandwidth_probe.json`; a replay reads it back and never probes.

Other processes can only lower a read rate. So the probe also records how many cores' worth of
CPU time other processes took while it ran (psutil's system-wide CPU times, less this
process's own time: Linux and macOS); a busy probe keeps its figure but says so, and its true
rate may be up to threads / (threads - others) times higher: the top of the range the estimate
then gives.
`stackctl detect --reprobe` measures again and replaces the cached figure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import math
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from stackctl.models.hardware import HardwareProfile

PROBE_FILE = "bandwidth_probe.json"  # in a bundle, beside cmd/ and fs/
SOURCE = "measured"
UNKNOWN_BANDWIDTH = "memory bandwidth unknown"  # detect's words for a CPU with no catalog figure
_MIN_TOTAL = 512 << 20  # the buffers together: above the biggest L3 of a desktop/CCD
_MAX_TOTAL = 2 << 30
_PER_THREAD = 64 << 20
_SECONDS = 1.0
# Other processes' CPU time during the probe, in cores, from which it counts as run on a busy
# box: an idle box reads 0.0 +- 0.05 here, one spinning process 0.9 (benchmarks/ runs' VMs).
BUSY_CORES = 0.25
# The least share of its cores a busy probe is taken to have had: caps the range's top at 4x.
_MIN_SHARE = 0.25


def round_sig(value: float, digits: int = 2) -> float:
    if value <= 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(value)))


def _buffer_bytes(threads: int, available: int | None) -> int:
    total = min(max(_PER_THREAD * threads, _MIN_TOTAL), _MAX_TOTAL)
    if available:
        total = min(total, available // 8)  # never crowd the box
    return max(total // threads, 1 << 20)


def measure_read_gbps(
    threads: int, *, available: int | None = None, seconds: float = _SECONDS
) -> float:
    """Sustained aggregate read rate (GB/s) of `threads` threads: the median of `seconds` of
    scan rounds."""
    return statistics.median(read_rounds(threads, available=available, seconds=seconds))


def read_rounds(
    threads: int, *, available: int | None = None, seconds: float = _SECONDS
) -> list[float]:
    """Aggregate read rate (GB/s) of each round of `threads` threads' scans, for `seconds`
    (three rounds at least)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    libc.memchr.restype = ctypes.c_void_p
    libc.memchr.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    size = _buffer_bytes(threads, available)
    buffers = [ctypes.create_string_buffer(size) for _ in range(threads)]
    for buf in buffers:
        ctypes.memset(buf, 7, size)  # touch every page before timing

    def scan(buf: ctypes.Array[ctypes.c_char]) -> None:
        libc.memchr(buf, 1, size)

    rates: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(rates) < 3 or time.perf_counter() < deadline:
        workers = [threading.Thread(target=scan, args=(b,)) for b in buffers]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        rates.append(threads * size / (time.perf_counter() - start) / 1e9)
    return rates


# Busy time in psutil's system-wide CPU times (Linux /proc/stat, macOS host_statistics): idle
# and iowait are not; steal is (the hypervisor gave the cores to someone else). Guest time is
# already inside user on Linux, so it is not added again.
_BUSY_TIMES = ("user", "nice", "system", "irq", "softirq", "steal")


def cpu_sample() -> tuple[float, float, float] | None:
    """(CPU seconds every process has used, of them this process's, wall clock seconds), or None
    where the platform gives no system-wide CPU times."""
    try:
        times = psutil.cpu_times()
    except (OSError, RuntimeError, NotImplementedError):
        return None
    own = os.times()
    busy = sum(getattr(times, name, 0.0) for name in _BUSY_TIMES)
    return busy, own.user + own.system, time.perf_counter()


def others_cores(
    before: tuple[float, float, float] | None, after: tuple[float, float, float] | None
) -> float | None:
    """Cores' worth of CPU time other processes took between two samples (None: unknown)."""
    if before is None or after is None or after[2] <= before[2]:
        return None
    others = (after[0] - before[0]) - (after[1] - before[1])
    return max(others, 0.0) / (after[2] - before[2])


def busy_high(gbps: float, threads: int, others: float) -> float:
    """The most a probe that shared `threads` cores with `others` cores of load would have read
    alone: its rate scaled by the cores it lost (the worst case)."""
    free = max(threads - others, threads * _MIN_SHARE)
    return round_sig(gbps * threads / free)


def probe_record(threads: int, available: int | None) -> dict[str, Any]:
    before = cpu_sample()
    raw = measure_read_gbps(threads, available=available)
    others = others_cores(before, cpu_sample())
    record: dict[str, Any] = {
        "schema_version": 1,
        "gbps": round_sig(raw),
        "raw_gbps": round(raw, 2),
        "threads": threads,
        "method": f"libc memchr scans, {threads} threads, median round of ~{_SECONDS:g} s",
    }
    if others is not None:
        record["others_cores"] = round(others, 2)
    return record


def box_key(profile: HardwareProfile) -> str:
    """What makes a box the same box for the cache: host, CPU, cores, memory."""
    cpu = profile.cpu
    parts = [profile.name, cpu.model or "", str(cpu.cores), str(cpu.threads),
             str(profile.memory.total_bytes)]  # fmt: skip
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def cache_path(profile: HardwareProfile) -> Path:
    root = os.environ.get("STACKCTL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    base = Path(root) if root else Path.home() / ".cache"
    return base / "stackctl" / "bandwidth" / f"{box_key(profile)}.json"


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("gbps"), int | float):
        return None
    return data if data["gbps"] > 0 else None


def _write(path: Path, record: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass  # a read-only home: the figure still holds for this run


def cached(profile: HardwareProfile) -> dict[str, Any] | None:
    """This box's cached probe, if a readable one is there."""
    return _read(cache_path(profile))


def measured(profile: HardwareProfile) -> dict[str, Any]:
    """A fresh probe of this box, cached in place of any earlier one."""
    threads = profile.cpu.cores or profile.cpu.threads or os.cpu_count() or 1
    record = probe_record(threads, profile.memory.available_bytes)
    _write(cache_path(profile), record)
    return record


def cached_or_measured(profile: HardwareProfile) -> dict[str, Any]:
    """This box's cached probe, else a fresh one (then cached)."""
    return cached(profile) or measured(profile)


def with_bandwidth(profile: HardwareProfile, record: dict[str, Any] | None) -> HardwareProfile:
    """The profile with the probe's figure as the CPU's bandwidth (unchanged without one)."""
    if record is None:
        return profile
    gbps = float(record["gbps"])
    high = busy_top(record)
    facts = {"bandwidth_gbps": gbps, "bandwidth_source": SOURCE, "bandwidth_low_gbps": None,
             "bandwidth_high_gbps": high}  # fmt: skip
    cpu = profile.cpu.model_copy(update=facts)
    known = f"memory bandwidth measured by the probe: {gbps:g} GB/s"
    warnings = [w.replace(UNKNOWN_BANDWIDTH, known) for w in profile.warnings]
    if high is not None:
        warnings.append(
            f"the memory-bandwidth probe ran while other processes used "
            f"{float(record['others_cores']):.1f} cores: {gbps:g} GB/s may be low (alone it could "
            f"read up to {high:g}); `stackctl detect --reprobe` on a quiet box measures again"
        )
    return profile.model_copy(update={"cpu": cpu, "warnings": warnings})


def busy_top(record: dict[str, Any]) -> float | None:
    """The top of a busy probe's range (busy_high), or None for a quiet one or an older record
    that did not count the load."""
    others = record.get("others_cores")
    if not isinstance(others, int | float) or others < BUSY_CORES:
        return None
    return busy_high(float(record["gbps"]), int(record.get("threads") or 1), float(others))


def read_bundle_probe(bundle: Path) -> dict[str, Any] | None:
    return _read(bundle / PROBE_FILE)


def write_bundle_probe(bundle: Path, record: dict[str, Any]) -> Path:
    path = bundle / PROBE_FILE
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path
