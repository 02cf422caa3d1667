"""Pure parsers for the CPU, memory and OS sources of a Linux box."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stackctl.detect.facts import KIB, MIB, CpuFacts, GpuFacts, clean, key_values, norm_pci, to_int

# The ISA flags engines care about (llama.cpp/ggml CPU feature checks, vLLM CPU, oneDNN).
_FLAG_LIST = """
sse3 ssse3 sse4_1 sse4_2 avx avx2 fma f16c bmi2 avx512f avx512cd avx512bw avx512dq avx512vl
avx512ifma avx512vbmi avx512_vbmi2 avx512_vnni avx512_bf16 avx512_fp16 avx512_bitalg
avx512_vpopcntdq avx_vnni avx_vnni_int8 avx_ifma amx_tile amx_bf16 amx_int8 amx_fp16
amx_complex fp asimd asimdhp asimddp fphp sve sve2 i8mm bf16 svei8mm svebf16 sme sme2 neon
vfpv4 dotprod
"""
ENGINE_FLAGS = frozenset(_FLAG_LIST.split())

# Arm Ltd (implementer 0x41) parts: /proc/cpuinfo "CPU part" -> core name (Arm TRMs).
# None of these cores is multi-threaded, so one processor entry is one core.
ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57",
    0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76",
    0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78",
    0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2",
    0xD49: "Neoverse-N2", 0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520", 0xD81: "Cortex-A720",
    0xD82: "Cortex-X4", 0xD85: "Cortex-X925", 0xD87: "Cortex-A725",
}  # fmt: skip

KNOWN_ARCHES = ("x86_64", "aarch64", "arm64", "armv7l", "armv6l", "ppc64le", "s390x", "riscv64")


def engine_flags(flags: list[str]) -> list[str]:
    """The flags engines check; on Arm every listed feature is an ISA extension (sve2, sha3,
    sm4, i8mm, bf16 ...), so all are kept."""
    low = {f.lower() for f in flags}
    if "asimd" in low or ("fp" in low and "evtstrm" in low):
        return sorted(f for f in low if re.fullmatch(r"[a-z0-9_]+", f))
    return sorted(f for f in low if f in ENGINE_FLAGS)


def _unwrap_flags(first: str, continuation: list[str], raw_lines: list[str]) -> list[str]:
    """lscpu output hard-wrapped at a fixed width cuts words; full-width lines join without a
    space, shorter ones (the wrap fell on a stripped space) join with one."""
    if not continuation:
        return first.split()
    width = max(len(line) for line in raw_lines[:-1])
    text = first
    for prev, nxt in zip(raw_lines, continuation, strict=False):
        text += ("" if len(prev) >= width else " ") + nxt.strip()
    return text.split()


def _lscpu_flags(lines: list[str]) -> list[str]:
    for i, line in enumerate(lines):
        key, _, value = line.partition(":")
        if key.strip() != "Flags":
            continue
        raw = [line]
        cont: list[str] = []
        for nxt in lines[i + 1 :]:
            if ":" in nxt or not nxt.strip() or not nxt[:1].isspace():
                break
            raw.append(nxt)
            cont.append(nxt)
        return _unwrap_flags(value, cont, raw)
    return []


def parse_lscpu(text: str) -> CpuFacts:
    lines = text.splitlines()
    kv = key_values(text)
    cpu = CpuFacts(
        model=clean(kv.get("Model name")),
        arch=clean(kv.get("Architecture")),
        vendor=clean(kv.get("Vendor ID")),
        threads=to_int(kv.get("CPU(s)")),
    )
    # big.LITTLE lscpu repeats "Model name" with its own core counts per cluster.
    sections: list[dict[str, str]] = []
    for line in lines:
        key, found, value = line.partition(":")
        if not found:
            continue
        key = key.strip()
        if key == "Model name":
            sections.append({})
        if sections:
            sections[-1].setdefault(key, value.strip())
    cores = 0
    for sec in sections:
        per = to_int(sec.get("Core(s) per socket")) or to_int(sec.get("Core(s) per cluster"))
        count = to_int(sec.get("Socket(s)")) or to_int(sec.get("Cluster(s)")) or 1
        if per is None:
            cores = 0
            break
        cores += per * count
    cpu.cores = cores or None
    cpu.sockets = to_int(kv.get("Socket(s)"))
    cpu.flags = engine_flags(_lscpu_flags(lines))
    return cpu


def _cpuinfo_blocks(text: str) -> tuple[list[dict[str, str]], dict[str, str]]:
    """Blank-line separated blocks: per-processor ones, and the rest (arm's Hardware/Model)."""
    blocks: list[dict[str, str]] = []
    tail: dict[str, str] = {}
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if "processor" in current:
                blocks.append(current)
            else:
                tail.update(current)
            current = {}
            continue
        key, found, value = line.partition(":")
        if found:
            current.setdefault(key.strip().lower(), value.strip())
    return blocks, tail


def _arm_model(block: dict[str, str]) -> str | None:
    if to_int(block.get("cpu implementer")) != 0x41:
        return None
    part = to_int(block.get("cpu part"))
    return ARM_PARTS.get(part) if part is not None else None


def parse_cpuinfo(text: str) -> tuple[CpuFacts, str | None]:
    """/proc/cpuinfo -> CPU facts and the board model line (Raspberry Pi, device tree)."""
    blocks, tail = _cpuinfo_blocks(text)
    cpu = CpuFacts()
    if not blocks:
        return cpu, clean(tail.get("model"))
    first = blocks[0]
    cpu.threads = len(blocks)
    cpu.model = clean(first.get("model name"))
    cpu.vendor = clean(first.get("vendor_id"))
    if "flags" in first:
        cpu.arch = "x86_64" if "lm" in first["flags"].split() else None
        cpu.flags = engine_flags(first["flags"].split())
        cores = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
        cpu.cores = len(cores) or None
        sockets = {b.get("physical id") for b in blocks if "physical id" in b}
        cpu.sockets = len(sockets) or None
    elif "features" in first:
        feats = first["features"].split()
        # The arm64 kernel prints "asimd"; 32-bit arm prints "neon".
        cpu.arch = "aarch64" if "asimd" in feats else None
        cpu.flags = engine_flags(feats)
        names = [_arm_model(b) for b in blocks]
        if all(names):
            uniq = sorted(set(filter(None, names)))
            cpu.model = cpu.model or " + ".join(uniq)
            cpu.cores = len(blocks)  # listed parts are single-threaded
        cpu.vendor = "ARM" if to_int(first.get("cpu implementer")) == 0x41 else None
    return cpu, clean(tail.get("model"))


def parse_meminfo(text: str) -> tuple[int | None, int | None]:
    """/proc/meminfo -> (MemTotal, MemAvailable) in bytes."""
    kv = key_values(text)

    def kib(key: str) -> int | None:
        value = to_int(kv.get(key))
        return value * KIB if value is not None and value >= 0 else None

    return kib("MemTotal"), kib("MemAvailable")


def parse_free(text: str) -> tuple[int | None, int | None]:
    """`free -b` -> (total, available) bytes."""
    header: list[str] = []
    for line in text.splitlines():
        parts = line.split()
        if parts and parts[0] == "total":
            header = parts
        elif parts and parts[0] == "Mem:":
            nums = [to_int(p) for p in parts[1:]]
            total = nums[0] if nums else None
            avail = None
            if "available" in header and header.index("available") < len(nums):
                avail = nums[header.index("available")]
            return total, avail
    return None, None


def parse_os_release(text: str) -> str | None:
    kv = key_values(text, sep="=")
    name = clean(kv.get("PRETTY_NAME"))
    if name:
        return name
    parts = [clean(kv.get("NAME")), clean(kv.get("VERSION"))]
    return " ".join(p for p in parts if p) or None


@dataclass
class UnameFacts:
    system: str | None = None
    hostname: str | None = None
    kernel: str | None = None
    machine: str | None = None


def parse_uname(text: str) -> UnameFacts:
    """`uname -a`: system, hostname, release, ..., machine."""
    parts = text.split()
    if len(parts) < 3 or parts[0].lower() not in {"linux", "darwin", "freebsd"}:
        return UnameFacts()
    machine = next((p for p in reversed(parts) if p in KNOWN_ARCHES), None)
    return UnameFacts(parts[0].lower(), parts[1], parts[2], machine)


@dataclass
class CmdlineFacts:
    ttm_pages_limit: int | None = None
    gttsize_mib: int | None = None
    gtt_bytes: int | None = None
    warnings: list[str] = field(default_factory=list)


# Spellings of the GTT knobs that the kernel does not know and silently ignores.
_MISSPELT = {
    "amdgpu.gtt_size": "amdgpu.gttsize",
    "amdgpu.gtt-size": "amdgpu.gttsize",
    "amdgpu.gttsize_mb": "amdgpu.gttsize",
    "ttm.page_limit": "ttm.pages_limit",
    "ttm.pages-limit": "ttm.pages_limit",
    "ttm.pageslimit": "ttm.pages_limit",
}


def parse_cmdline(text: str) -> CmdlineFacts:
    """/proc/cmdline -> the GTT knobs for AMD APUs (engines.md 4.3)."""
    out = CmdlineFacts()
    for token in text.split():
        key, _, value = token.partition("=")
        if key in {"ttm.pages_limit", "amdttm.pages_limit"}:
            out.ttm_pages_limit = to_int(value)
        elif key == "amdgpu.gttsize":
            out.gttsize_mib = to_int(value)
        elif key in _MISSPELT:
            out.warnings.append(
                f"kernel command line has '{token}': the kernel ignores '{key}' "
                f"(the parameter is '{_MISSPELT[key]}'), so it does not change the GTT size"
            )
    if out.ttm_pages_limit is not None and out.ttm_pages_limit > 0:
        out.gtt_bytes = out.ttm_pages_limit * 4096  # TTM pages are 4 KiB
    elif out.gttsize_mib is not None and out.gttsize_mib > 0:
        out.gtt_bytes = out.gttsize_mib * MIB
    both = out.gttsize_mib is not None and out.ttm_pages_limit is not None
    if both and (out.gttsize_mib or 0) * MIB != (out.ttm_pages_limit or 0) * 4096:
        out.warnings.append(
            "amdgpu.gttsize and ttm.pages_limit disagree; amdgpu.gttsize is deprecated "
            "and the TTM limit caps what the GPU can use"
        )
    return out


@dataclass
class PciDevice:
    slot: str
    class_id: str
    vendor_id: str
    device_id: str
    description: str


_LSPCI = re.compile(
    r"^(?P<slot>\S+)\s+(?P<cls>[^\[]*)\[(?P<cid>[0-9a-fA-F]{4})\]:\s*(?P<desc>.*?)"
    r"\s*\[(?P<ven>[0-9a-fA-F]{4}):(?P<dev>[0-9a-fA-F]{4})\]"
)


def parse_lspci(text: str) -> list[PciDevice]:
    """`lspci -nn` -> display-class devices (0300 VGA, 0302 3D, 0380 Display)."""
    out = []
    for line in text.splitlines():
        m = _LSPCI.match(line.strip())
        if m and m.group("cid").startswith("03"):
            out.append(
                PciDevice(
                    m.group("slot"),
                    m.group("cid"),
                    m.group("ven").lower(),
                    m.group("dev").lower(),
                    m.group("desc"),
                )
            )
    return out


_DMESG_ADDR = re.compile(r"amdgpu (?P<bus>[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])")
_DMESG_INIT = re.compile(
    r"initializing kernel modesetting \((?P<die>[^)]*?)\s+0x1002:0x(?P<dev>[0-9a-fA-F]{4})"
)
_DMESG_DONE = re.compile(r"Initialized amdgpu (?P<ver>[0-9.]+) \d+ for (?P<bus>[0-9a-fA-F:.]+)")
_DMESG_MEM = re.compile(r"(\d+)M of (VRAM|GTT) memory ready")
_DMESG_VER = re.compile(r"amdgpu version: (?P<ver>[0-9.]+)")
# "RAM width 128bits GDDR6": graphics memory of its own, so a discrete card (APUs use DDR/LPDDR)
_DMESG_RAM = re.compile(r"RAM width \d+bits (?P<kind>\w+)")


def _dmesg_line(gpus: list[GpuFacts], line: str) -> None:
    def current() -> GpuFacts:
        if not gpus:
            gpus.append(GpuFacts("amd", "dmesg", index=0))
        return gpus[-1]

    if m := _DMESG_INIT.search(line):  # amdgpu starts probing the next device
        gpus.append(GpuFacts("amd", "dmesg", index=len(gpus), pci_id=f"1002:{m['dev'].lower()}"))
    elif m := _DMESG_DONE.search(line):
        gpu = current()
        gpu.driver_version = gpu.driver_version or m["ver"]
        gpu.pci_bus_id = gpu.pci_bus_id or norm_pci(m["bus"])
    elif m := _DMESG_MEM.search(line):
        size = int(m.group(1)) * MIB
        if m.group(2) == "VRAM":
            current().carveout_bytes = size
        else:
            current().gtt_bytes = size
    elif m := _DMESG_RAM.search(line):
        kind = m["kind"].upper()
        if kind.startswith(("GDDR", "HBM")):
            current().integrated = False
    elif m := _DMESG_ADDR.search(line):
        current().pci_bus_id = current().pci_bus_id or norm_pci(m["bus"])


def dmesg_cmdline(text: str) -> str | None:
    """The kernel command line as the kernel log prints it at boot."""
    m = re.search(r"Kernel command line:\s*(.+)$", text, re.M) or re.search(
        r"Command line:\s*(.+)$", text, re.M
    )
    return m.group(1).strip() if m else None


def parse_dmesg_amdgpu(text: str) -> list[GpuFacts]:
    """`dmesg` lines about amdgpu -> one device per 'initializing kernel modesetting' block:
    PCI ID, address, DRM driver version, and the VRAM/GTT pools it reports ready."""
    gpus: list[GpuFacts] = []
    dkms = None
    for line in text.splitlines():
        if m := _DMESG_VER.search(line):
            dkms = m["ver"]  # the amdgpu-dkms package version, for every device
        _dmesg_line(gpus, line)
    for gpu in gpus:
        gpu.driver_version = dkms or gpu.driver_version
    return [g for g in gpus if g.pci_id or g.pci_bus_id or g.carveout_bytes or g.gtt_bytes]


def parse_nvcc(text: str) -> str | None:
    m = re.search(r"release\s+([0-9]+\.[0-9]+)", text)
    return m.group(1) if m else None
