"""Pure parsers for NVIDIA sources (nvidia-smi in its forms, an NVML printout), and the live
NVML probe that writes such a printout."""

from __future__ import annotations

import contextlib
import csv
import io
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

from stackctl.detect.facts import MIB, GpuFacts, clean, norm_pci, parse_size, to_int
from stackctl.models.hardware import pcie_link


@dataclass
class NvidiaFacts:
    gpus: list[GpuFacts] = field(default_factory=list)
    driver_version: str | None = None
    cuda_version: str | None = None
    attached: int | None = None
    warnings: list[str] = field(default_factory=list)

    def stamp(self) -> list[GpuFacts]:
        """Devices with the system-wide driver/CUDA versions filled in."""
        for gpu in self.gpus:
            gpu.driver_version = gpu.driver_version or self.driver_version
            gpu.runtime_version = gpu.runtime_version or self.cuda_version
        return self.gpus


def _cc_arch(cc: str | None) -> str | None:
    m = re.match(r"^\s*(\d+)\.(\d+)\s*$", cc or "")
    return f"sm_{m.group(1)}{m.group(2)}" if m else None


_ROW = re.compile(r"^\s*(\d+)\s+(.*?)\s+(On|Off|WDDM|TCC|N/A)\s*$")
_BUS = re.compile(r"([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])")
_MEM = re.compile(r"(\d+)\s*MiB\s*/\s*(\d+)\s*MiB")


def parse_nvidia_smi(text: str) -> NvidiaFacts:
    """The default `nvidia-smi` table (any driver generation)."""
    out = NvidiaFacts()
    # Drivers from R610 print "KMD Version" and "CUDA UMD Version" (nvidia-smi docs).
    m = re.search(r"(?:Driver|KMD) Version:\s*([0-9.]+)", text)
    out.driver_version = m.group(1) if m else None
    m = re.search(r"CUDA (?:UMD )?Version:\s*([0-9.]+)", text)
    out.cuda_version = m.group(1) if m else None
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = line.split("|")
        if len(cells) < 4:
            continue
        row, bus = _ROW.match(cells[1]), _BUS.search(cells[2])
        # Jetson (Tegra iGPU) rows print N/A where a PCI address would be
        if not row or not (bus or cells[2].split()[:1] == ["N/A"]):
            continue
        gpu = GpuFacts(
            "nvidia",
            "nvidia-smi",
            index=int(row.group(1)),
            pci_bus_id=norm_pci(bus[1] if bus else None),
        )
        name = row.group(2).strip()
        gpu.name = name or None
        if name.endswith("..."):
            gpu.notes.append(f"nvidia-smi cut the name of GPU {gpu.index} short: '{name}'")
        nxt = lines[i + 1].split("|") if i + 1 < len(lines) else []
        if len(nxt) >= 3:
            mem = _MEM.search(nxt[2])
            if mem:
                gpu.memory_bytes = int(mem.group(2)) * MIB
            elif "Not Supported" in nxt[2]:
                gpu.notes.append(f"nvidia-smi shows no memory size for GPU {gpu.index}")
        out.gpus.append(gpu)
    return out


# Top-level XML tags, old and new spellings (R610 adds kmd_version / cuda_umd_version).
_XML_TOP = {
    "driver_version": "driver_version", "kmd_version": "driver_version",
    "cuda_version": "cuda_version", "cuda_umd_version": "cuda_version",
    "attached_gpus": "attached_gpus",
}  # fmt: skip
_Q_TOP = {
    "Driver Version": "driver_version", "KMD Version": "driver_version",
    "CUDA Version": "cuda_version", "CUDA UMD Version": "cuda_version",
}  # fmt: skip


def _xml_gpus(text: str) -> tuple[list[ET.Element], dict[str, str], str | None]:
    """Complete <gpu> elements and top-level fields, even from a cut-short file."""
    parser: ET.XMLPullParser[Any] = ET.XMLPullParser(events=("end",))
    gpus: list[ET.Element] = []
    top: dict[str, str] = {}
    error = None
    try:
        # The DOCTYPE line names an external DTD; expat does not fetch it.
        parser.feed(text)
        parser.close()
    except ET.ParseError as exc:
        error = str(exc)
    # Elements completed before a parse error are still queued: a cut-short file keeps them.
    events: Any = parser.read_events()  # typeshed's union of event shapes; "end" gives elements
    while True:
        try:
            _kind, elem = next(events)
        except StopIteration:
            break
        except ET.ParseError as exc:  # the pull parser queues its error as an event
            error = error or str(exc)
            break
        if not isinstance(elem, ET.Element):
            continue
        if elem.tag == "gpu":
            gpus.append(elem)
        elif elem.tag in _XML_TOP:
            top.setdefault(_XML_TOP[elem.tag], (elem.text or "").strip())
    return gpus, top, error


def _xml_text(elem: ET.Element, path: str) -> str | None:
    found = elem.find(path)
    return clean(found.text) if found is not None and found.text else None


def _xml_gpu(elem: ET.Element, index: int) -> GpuFacts:
    gpu = GpuFacts("nvidia", "nvidia-smi -q -x", index=index)
    gpu.name = _xml_text(elem, "product_name")
    gpu.pci_bus_id = norm_pci(elem.get("id") or _xml_text(elem, "pci/pci_bus_id"))
    gpu.uuid = _xml_text(elem, "uuid")
    total = _xml_text(elem, "fb_memory_usage/total")
    gpu.memory_bytes = parse_size(total) if total else None
    cc = _xml_text(elem, "compute_cap") or _xml_text(elem, "cuda_compute_capability")
    gpu.compute_capability = cc
    gpu.arch = _cc_arch(cc)
    mig = _xml_text(elem, "mig_mode/current_mig")
    gpu.mig_enabled = None if mig is None else mig.lower() == "enabled"
    sizes = [
        parse_size(t.text or "")
        for t in elem.findall("mig_devices/mig_device/fb_memory_usage/total")
    ]
    if gpu.mig_enabled and sizes:
        gpu.mig_instances = len(sizes)
        gpu.mig_instance_bytes = max((s for s in sizes if s), default=None)
    gpu.host_link = _xml_link(elem)
    return gpu


def _xml_link(elem: ET.Element) -> str | None:
    """The PCIe link at full speed: nvidia-smi's "max" generation and width are what this GPU
    and this slot allow together (the current ones drop while the GPU idles)."""
    info = "pci/pci_gpu_link_info/"
    gen = to_int(_xml_text(elem, info + "pcie_gen/max_link_gen"))
    width = to_int((_xml_text(elem, info + "link_widths/max_link_width") or "").rstrip("x"))
    return pcie_link(f"PCIe {gen}.0 x{width}")


def parse_nvidia_smi_xml(text: str) -> NvidiaFacts:
    """`nvidia-smi -q -x`."""
    elems, top, error = _xml_gpus(text)
    out = NvidiaFacts(
        driver_version=clean(top.get("driver_version")),
        cuda_version=clean(top.get("cuda_version")),
        attached=to_int(top.get("attached_gpus")),
    )
    out.gpus = [_xml_gpu(e, i) for i, e in enumerate(elems)]
    if error:
        out.warnings.append(f"nvidia-smi -q -x output is not well-formed XML ({error})")
    if out.attached is not None and out.attached != len(out.gpus):
        out.warnings.append(
            f"nvidia-smi -q -x reports {out.attached} attached GPUs but describes "
            f"{len(out.gpus)}; only the described ones are listed"
        )
    return out


def parse_nvidia_smi_q(text: str) -> NvidiaFacts:
    """`nvidia-smi -q` (text): sections by indentation."""
    out = NvidiaFacts()
    gpu: GpuFacts | None = None
    section = ""
    for line in text.splitlines():
        indent = len(line) - len(line.lstrip())
        key, found, value = line.strip().partition(":")
        key, value = key.strip(), value.strip()
        bus = re.match(r"^GPU\s+([0-9A-Fa-f:.]+)$", line.strip())
        if bus and indent == 0:
            gpu = GpuFacts(
                "nvidia", "nvidia-smi -q", index=len(out.gpus), pci_bus_id=norm_pci(bus[1])
            )
            out.gpus.append(gpu)
            continue
        if not found:
            continue
        if gpu is None:
            if key in _Q_TOP and clean(value) and not re.match(r"^\[?deprecated", value, re.I):
                setattr(out, _Q_TOP[key], getattr(out, _Q_TOP[key]) or clean(value))
            elif key == "Attached GPUs":
                out.attached = to_int(value)
            continue
        if not value:
            section = key if indent <= 4 else section
            continue
        _q_field(gpu, section if indent > 4 else "", key, value)
    return out


def _q_field(gpu: GpuFacts, section: str, key: str, value: str) -> None:
    if not section and key == "Product Name":
        gpu.name = clean(value)
    elif not section and key == "GPU UUID":
        gpu.uuid = clean(value)
    elif section == "FB Memory Usage" and key == "Total":
        gpu.memory_bytes = parse_size(value)
    elif section == "MIG Mode" and key == "Current":
        gpu.mig_enabled = None if clean(value) is None else value.lower() == "enabled"
    elif key in {"Compute Capability", "CUDA Compute Capability"}:
        gpu.compute_capability = clean(value)
        gpu.arch = _cc_arch(value)


def parse_nvidia_smi_list(text: str) -> NvidiaFacts:
    """`nvidia-smi -L`: names, UUIDs, and MIG devices under each GPU."""
    out = NvidiaFacts()
    for line in text.splitlines():
        m = re.match(r"^GPU\s+(\d+):\s*(.*?)\s*\(UUID:\s*(GPU-[^)\s]+)\)", line.strip())
        if m:
            out.gpus.append(
                GpuFacts("nvidia", "nvidia-smi -L", name=m[2] or None, index=int(m[1]), uuid=m[3])
            )
        elif line.strip().startswith("MIG") and out.gpus:
            gpu = out.gpus[-1]
            gpu.mig_enabled = True
            gpu.mig_instances = (gpu.mig_instances or 0) + 1
    return out


_CSV_FIELDS = {
    "index": "index", "name": "name", "uuid": "uuid", "pci.bus_id": "pci_bus_id",
    "compute_cap": "compute_capability", "driver_version": "driver_version",
}  # fmt: skip


def parse_nvidia_smi_csv(text: str) -> NvidiaFacts:
    """`nvidia-smi --query-gpu=FIELDS --format=csv`, any fields, header row first."""
    out = NvidiaFacts()
    rows = list(csv.reader(io.StringIO(text), skipinitialspace=True))
    if not rows:
        return out
    header = [re.sub(r"\s*\[.*\]$", "", h.strip()).lower() for h in rows[0]]
    for pos, row in enumerate(rows[1:]):
        if len(row) != len(header):
            continue
        rec = {h: clean(v) for h, v in zip(header, row, strict=True)}
        gpu = GpuFacts("nvidia", "nvidia-smi --query-gpu", index=pos)
        for src, attr in _CSV_FIELDS.items():
            if rec.get(src) is not None:
                setattr(gpu, attr, rec[src])
        gpu.index = to_int(rec.get("index")) if rec.get("index") else pos
        gpu.pci_bus_id = norm_pci(gpu.pci_bus_id)
        gpu.arch = _cc_arch(gpu.compute_capability)
        total = rec.get("memory.total")
        gpu.memory_bytes = parse_size(total, "mib") if total else None
        mig = rec.get("mig.mode.current")
        gpu.mig_enabled = None if mig is None else mig.lower() == "enabled"
        out.gpus.append(gpu)
    drivers = {g.driver_version for g in out.gpus if g.driver_version}
    out.driver_version = drivers.pop() if len(drivers) == 1 else None
    return out


# --- NVML ------------------------------------------------------------------------------------
# The live probe prints `key: value` lines (`gpu.N.key` per device); parse_nvml reads them, so a
# bundle replays what NVML said.


def parse_nvml(text: str) -> NvidiaFacts:
    out = NvidiaFacts()
    devices: dict[int, dict[str, str]] = {}
    for line in text.splitlines():
        key, found, value = line.partition(":")
        if not found:
            continue
        key, value = key.strip(), value.strip()
        m = re.match(r"^gpu\.(\d+)\.(\w+)$", key)
        if m:
            devices.setdefault(int(m[1]), {})[m[2]] = value
        elif key == "driver_version":
            out.driver_version = clean(value)
        elif key == "cuda_driver_version":
            out.cuda_version = _cuda_version(to_int(value))
    for index in sorted(devices):
        out.gpus.append(_nvml_gpu(index, devices[index]))
    return out


def _cuda_version(raw: int | None) -> str | None:
    # CUDA encodes versions as major*1000 + minor*10.
    return f"{raw // 1000}.{raw % 1000 // 10}" if raw else None


def _nvml_gpu(index: int, rec: dict[str, str]) -> GpuFacts:
    gpu = GpuFacts("nvidia", "nvml", index=index)
    gpu.name = clean(rec.get("name"))
    gpu.uuid = clean(rec.get("uuid"))
    gpu.pci_bus_id = norm_pci(rec.get("pci_bus_id"))
    gpu.memory_bytes = to_int(clean(rec.get("memory_total")))
    gpu.compute_capability = clean(rec.get("compute_capability"))
    gpu.arch = _cc_arch(gpu.compute_capability)
    mig = clean(rec.get("mig_mode"))
    gpu.mig_enabled = None if mig is None else mig == "1"
    gpu.mig_instances = to_int(clean(rec.get("mig_instances")))
    gpu.mig_instance_bytes = to_int(clean(rec.get("mig_instance_memory")))
    if gpu.memory_bytes is None and rec.get("memory_total", "").startswith("not supported"):
        gpu.notes.append(f"NVML reports no memory size for GPU {index} (unified memory?)")
    return gpu


def _nvml_call(fn: Any, *args: Any) -> str:
    try:
        value = fn(*args)
    except Exception as exc:  # noqa: BLE001 - NVMLError subclasses per status; record, go on
        return f"not supported ({type(exc).__name__})"
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return str(value)


def _nvml_device_lines(nv: Any, index: int) -> list[str]:
    h = nv.nvmlDeviceGetHandleByIndex(index)

    def cc() -> str:
        major, minor = nv.nvmlDeviceGetCudaComputeCapability(h)
        return f"{major}.{minor}"

    def mig_mode() -> str:
        current, _pending = nv.nvmlDeviceGetMigMode(h)
        return str(current)

    def mig_sizes() -> list[int]:
        sizes = []
        for i in range(nv.nvmlDeviceGetMaxMigDeviceCount(h)):
            try:
                mh = nv.nvmlDeviceGetMigDeviceHandleByIndex(h, i)
            except nv.NVMLError:
                continue
            sizes.append(int(nv.nvmlDeviceGetMemoryInfo(mh).total))
        return sizes

    fields = {
        "name": lambda: nv.nvmlDeviceGetName(h),
        "uuid": lambda: nv.nvmlDeviceGetUUID(h),
        "pci_bus_id": lambda: nv.nvmlDeviceGetPciInfo(h).busId,
        "memory_total": lambda: nv.nvmlDeviceGetMemoryInfo(h).total,
        "compute_capability": cc,
        "mig_mode": mig_mode,
        "mig_instances": lambda: len(mig_sizes()),
        "mig_instance_memory": lambda: max(mig_sizes()),
    }
    return [f"gpu.{index}.{key}: {_nvml_call(fn)}" for key, fn in fields.items()]


def probe_nvml() -> str | None:
    """Ask NVML (pynvml from nvidia-ml-py); None when the library or the driver is absent."""
    try:
        import pynvml as nv
    except ImportError:
        return None
    try:
        nv.nvmlInit()
    except Exception:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
        return None
    try:
        lines = [
            f"driver_version: {_nvml_call(nv.nvmlSystemGetDriverVersion)}",
            f"cuda_driver_version: {_nvml_call(nv.nvmlSystemGetCudaDriverVersion)}",
        ]
        count = int(nv.nvmlDeviceGetCount())
        lines.append(f"device_count: {count}")
        for index in range(count):
            lines.extend(_nvml_device_lines(nv, index))
        return "\n".join(lines) + "\n"
    except Exception:  # noqa: BLE001 - a half-working driver must not crash detection
        return None
    finally:
        with contextlib.suppress(Exception):
            nv.nvmlShutdown()
