"""Devices from a HardwareProfile: memory budgets, bandwidth, peak compute.

Budgets: a GPU's `memory_budget_bytes` (else `memory_bytes`); on a unified-memory device that
budget minus the OS reserve of catalog/backends.yaml (never the free system RAM); the host's
`available_bytes` (else `total_bytes`) minus the host reserve. Peak FP16 for a GPU comes from
catalog/hardware.yaml (the detection issue's chip table) when the name matches.
"""

from __future__ import annotations

from stackctl.detect.chips import CpuCore, int8_ratio, kernel_family, load_chip_table
from stackctl.errors import EstimateError
from stackctl.estimate.catalog import DotPath, EstimateCatalog
from stackctl.estimate.expert_tiles import EXPERT_TILE
from stackctl.estimate.fabric import fabric_cap
from stackctl.estimate.host_link import gpu_link
from stackctl.estimate.memory import F32, row_bytes
from stackctl.estimate.placement import (
    Device,
    PlaceKey,
    Placement,
    place_by_key,
    place_key,
    place_tensor,
)
from stackctl.estimate.rates import EXACT, Rate, gpu_bandwidth, gpu_peak_gops, vulkan_peak
from stackctl.estimate.recipe import TypedTensor
from stackctl.estimate.shape import LayerShape, ModelShape
from stackctl.estimate.speed import (
    REFERENCE_CLOCK_GHZ,
    SCAN_NOTE,
    STAGING_PASSES,
    TTFT_PROMPT,
    DeviceSpeed,
    active_share,
    expert_padding,
    link_rate,
    quant_family,
)
from stackctl.estimate.view import ModelView
from stackctl.models.estimate import EstimateRequest
from stackctl.models.hardware import Accelerator, HardwareProfile

DEFAULT_PER_CORE_GBPS = 12.0  # only if backends.yaml gives none: the same assumption


def _gpu_budget(acc: Accelerator, os_name: str, catalog: EstimateCatalog) -> int | None:
    budget = acc.memory_budget_bytes or acc.memory_bytes
    if budget is None:
        return None
    if acc.unified:
        key = "darwin_unified" if os_name == "darwin" else "linux_unified"
        budget -= catalog.backends.os_reserve.get(key, 0)
    return max(budget, 0)


def _host_budget(hardware: HardwareProfile, catalog: EstimateCatalog) -> int | None:
    mem = hardware.memory
    base = mem.available_bytes if mem.available_bytes is not None else mem.total_bytes
    if base is None:
        return None
    return max(base - catalog.backends.os_reserve.get("host", 0), 0)


def _cpu_peak(hardware: HardwareProfile, threads: int, catalog: EstimateCatalog) -> float:
    flags = set(hardware.cpu.flags)
    isa = "generic"
    if any(f.startswith("avx512") for f in flags):
        isa = "avx512"
    elif "avx2" in flags:
        isa = "avx2"
    elif hardware.cpu.arch in ("aarch64", "arm64"):
        isa = "neon"
    peak = catalog.backends.cpu_peak[isa]
    return peak.flops_per_cycle_per_core * peak.clock_ghz * threads


# A CPU nobody named: llama.cpp's default is one thread per physical core; a typical desktop
# or laptop has 4-16 of them, and 4 is the conservative end (the estimate says ASSUMED).
UNKNOWN_CORES = 4


def cpu_threads(hardware: HardwareProfile, request: EstimateRequest) -> int:
    return request.threads or hardware.cpu.cores or hardware.cpu.threads or UNKNOWN_CORES


def build_devices(
    hardware: HardwareProfile, request: EstimateRequest, catalog: EstimateCatalog
) -> list[Device]:
    """GPUs first (for a GPU backend), the host last; every rate known or given a span."""
    devices: list[Device] = []
    _check_sycl(hardware, request)
    if request.backend != "cpu":
        for i, acc in enumerate(hardware.accelerators):
            bandwidth = gpu_bandwidth(acc)
            matrix = gpu_peak_gops(acc, bandwidth, catalog.backends.ops_per_byte_fallback)
            peak = vulkan_peak(acc, matrix) if request.backend == "vulkan" else matrix
            # the int8 matrix units (quantised matmuls run on them: CUDA's MMQ): the chip's own
            # figure, else its arch's largest int8/FP16 ratio (an upper bound); also physics
            # for the prefill ceiling
            ratio = int8_ratio(load_chip_table(), acc.vendor, acc.arch)
            ceiling = acc.peak_tops_int8 * 1000 if acc.peak_tops_int8 else matrix.value * ratio
            devices.append(
                Device(
                    name=f"gpu{i}",
                    budget=_gpu_budget(acc, hardware.os.system, catalog),
                    backend=backend_key(request.backend, acc, catalog),
                    bandwidth_gbps=bandwidth.value,
                    peak_gops=peak.value,
                    unified=acc.unified,
                    bandwidth_span=bandwidth.span,
                    peak_span=peak.span,
                    ceiling_gops=max(ceiling, peak.value),
                    rate_notes=[r.note for r in (bandwidth, peak) if r.derived],
                    link=gpu_link(acc),
                    clock_ghz=acc.clock_mhz / 1000 if acc.clock_mhz else None,
                )
            )
    threads = cpu_threads(hardware, request)
    host, assumed = host_bandwidth(hardware, threads, catalog)
    devices.append(
        Device(
            name="host",
            staging_gbps=staging_gbps(hardware, threads),
            threads=threads,
            budget=_host_budget(hardware, catalog),
            backend="cpu",
            bandwidth_gbps=host.value,
            peak_gops=_cpu_peak(hardware, threads, catalog),
            bandwidth_assumed=assumed,
            bandwidth_measured=host.note == MEASURED_NOTE,
            dot_path=dot_path(hardware.cpu.flags, repack=request.repack),
            bandwidth_span=host.span,
            rate_notes=[host.note] if host.derived else [],
        )
    )
    return devices


def _check_sycl(hardware: HardwareProfile, request: EstimateRequest) -> None:
    """SYCL's factors rest on Intel Arc rows alone (tests/data/speed): no figure for another
    vendor's GPU under it."""
    if request.backend != "sycl":
        return
    others = sorted({a.name for a in hardware.accelerators if a.vendor != "intel"})
    if others:
        raise EstimateError(
            f"the SYCL estimate is for Intel GPUs (its factors are fitted to public Intel Arc "
            f"rows); {', '.join(others)} is not one",
            hint="use --backend cuda, rocm or vulkan for this GPU",
        )


def chip_kind(acc: Accelerator) -> str:
    """How the speed factors group a GPU: its matrix-unit generation where hardware.yaml's
    tensor_rates name one (rdna3), else its memory kind (unified, discrete). The public fit
    (public_fit._key) groups its rows by the same."""
    family = kernel_family(load_chip_table(), acc.vendor, acc.arch)
    return family or ("unified" if acc.unified else "discrete")


def backend_key(backend: str, acc: Accelerator, catalog: EstimateCatalog) -> str:
    """The most specific factors the catalog has: `vulkan-amd-rdna3` (the backend on one
    matrix-unit generation, hardware.yaml tensor_rates), `vulkan-amd-unified` (on that vendor's
    unified-memory GPUs), `vulkan-intel`, else the backend's own. The public fit
    (catalog/speed_fit.yaml) adds them where the families differ."""
    vendor = f"{backend}-{acc.vendor}"
    for key in (f"{vendor}-{chip_kind(acc)}", f"{vendor}-unified" if acc.unified else None, vendor):
        if key and key in catalog.backends.backends:
            return key
    return backend


def factors_source(key: str, catalog: EstimateCatalog) -> str:
    """Where a backend key's speed factors come from: the public fit or the hand-set file."""
    if key in catalog.fitted_backends:
        return "catalog/speed_fit.yaml, fitted to public llama-bench rows over backends.yaml"
    return "catalog/backends.yaml"


MEASURED = "measured"  # bandwidth_source of the detect probe's figure
# x86 int8 dot-product instructions (AVX512-VNNI, AVX-VNNI): ggml's quantised dot products use
# them; the measured decode efficiency on such CPUs is its own figure (catalog/backends.yaml).
INT8_DOT_FLAGS = frozenset({"avx512_vnni", "avx_vnni"})
MEASURED_NOTE = "measured on this box by the stackctl detect probe"
DOT_PATH_SPREAD = {"amx": "AMX CPU's", "vnni": "int8 dot-product CPU's"}  # the basis's words


def dot_path(flags: list[str], *, repack: bool = True) -> DotPath:
    """How llama.cpp runs a CPU's quantised dot products in decode: "amx" where the CPU has AMX
    and the weights are repacked (a native build moves them into its AMX buffer, whose one-row
    products take a VNNI fast path: ggml-cpu/amx/mmq.cpp), "vnni" with the int8 dot-product
    instructions alone (an AMX CPU under --no-repack: the AMX buffer is not used), "" without
    either. Each kind's decode efficiency is its own measurement (catalog/backends.yaml VNNI,
    VNNI-AMD, VNNI-INTEL, AMX-2)."""
    if "amx_int8" in flags and repack:
        return "amx"
    return "vnni" if INT8_DOT_FLAGS & set(flags) else ""


def host_bandwidth(
    hardware: HardwareProfile, threads: int, catalog: EstimateCatalog
) -> tuple[Rate, bool]:
    """(GB/s with its span, assumed?): the profile's figure unless `threads` cores cannot pull it.

    A measured figure (the detect probe, at this box's cores) is taken as it is, up to the high
    end a busy probe gives (detect/bandwidth_probe.py busy_high). A chiplet CPU whose core dies'
    links to the IO die read less than its memory delivers reads at their rate
    (estimate/fabric.py). A socket's
    spec bandwidth needs many cores; a few cores (a small VM) are limited by how many misses
    each core keeps in flight. That per-core figure is an assumption in catalog/backends.yaml,
    so an estimate resting on it is flagged and its range widened. A platform-typical figure
    (a box declared without a CPU) carries its own low-high range.
    """
    cpu = hardware.cpu
    factors = catalog.backends.backends["cpu"]
    if cpu.bandwidth_gbps and cpu.bandwidth_source == MEASURED:
        # a probe that shared the cores with other load may have read low: up to its high end
        top = max((cpu.bandwidth_high_gbps or 0.0) / cpu.bandwidth_gbps, 1.0)
        return Rate(cpu.bandwidth_gbps, (1.0, top), MEASURED_NOTE), False
    core = load_chip_table().cpu_cores.get(cpu.core) if cpu.core else None
    published = core.read_gbps_per_core if core else None  # else the assumption below
    per_core = published or factors.per_core_bandwidth_gbps or DEFAULT_PER_CORE_GBPS
    cap = per_core * threads
    spec = cpu.bandwidth_gbps
    fabric = fabric_cap(cpu.cores, threads, core)
    if spec and fabric and fabric.read_gbps < min(spec, cap):  # the die links, not the DIMMs
        note = f"host bandwidth {fabric.note}, below the memory's {spec:g} GB/s"
        return Rate(fabric.read_gbps, EXACT, note, derived=True), False
    counted = bool(cpu.cores or cpu.threads)  # else `threads` is itself an assumption
    if spec and (spec <= cap or not counted):
        low, high = cpu.bandwidth_low_gbps, cpu.bandwidth_high_gbps
        if low and high:
            note = f"host bandwidth typical of the platform, {low:g}-{high:g} GB/s"
            span = (min(low / spec, 1.0), max(high / spec, 1.0))
            return Rate(spec, span, note, derived=True), False
        return Rate(spec, EXACT, cpu.bandwidth_source or "profile"), False
    if core is not None and published:
        return _core_limited(threads, spec, cpu.core or "", core, published, catalog), False
    note = (
        f"host bandwidth ASSUMED: {per_core:g} GB/s per core x {threads} threads "
        "(catalog/backends.yaml)"
    )
    low, high = factors.assumed_bandwidth_range
    if spec:  # physics: a few cores may pull up to the memory's own figure, never more
        high = spec / cap
        note += f", up to the memory's {spec:g} GB/s"
    return Rate(cap, (low, high), note, derived=True), True


def staging_gbps(hardware: HardwareProfile, threads: int) -> float | None:
    """The rate of the staging copy host experts cross to a GPU through (speed.link_rate) where
    the memory and the core dies' links set it apart from the cores' read rate: three passes
    over the memory, and no faster than the links write; None: a third of the host's figure."""
    cpu = hardware.cpu
    if not cpu.bandwidth_gbps or cpu.bandwidth_source == MEASURED or not cpu.core:
        return None
    fabric = fabric_cap(cpu.cores, threads, load_chip_table().cpu_cores.get(cpu.core))
    if fabric is None:
        return None
    return min(cpu.bandwidth_gbps / STAGING_PASSES, fabric.write_gbps)


def _core_limited(
    threads: int, spec: float | None, name: str, core: CpuCore, per_core: float,
    catalog: EstimateCatalog,
) -> Rate:  # fmt: skip
    """`threads` cores of a design with a published per-core figure, below the memory's own."""
    cap = per_core * threads
    low, high = catalog.backends.core_bandwidth_range
    note = (
        f"host bandwidth {threads} thread{'s' * (threads != 1)} x {per_core:g} "
        f"GB/s per {name} core (catalog/hardware.yaml cpu_cores: {core.read_measured_on})"
    )
    if spec:  # physics: a few cores may pull up to the memory's own figure, never more
        high = min(high, spec / cap)
        note += f", below the memory's {spec:g} GB/s"
    return Rate(cap, (low, high), note, derived=True)


def _layer_basis(s: DeviceSpeed, catalog: EstimateCatalog) -> list[str]:
    """A GPU's fixed decode time per layer, and the clock that scales it."""
    ms = catalog.backends.backends[s.backend].layer_overhead_ms
    if not s.layers or not ms or s.backend == "cpu":
        return []
    if s.clock_ghz is None:
        why = f"GPU clock not known: as fitted, at {REFERENCE_CLOCK_GHZ:g} GHz"
    else:
        why = (f"{ms:g} ms fitted at {REFERENCE_CLOCK_GHZ:g} GHz x {REFERENCE_CLOCK_GHZ:g} / "
               f"{s.clock_ghz:g} GHz boost clock: kernel floors run in GPU cycles")  # fmt: skip
    return [f"speed {s.name}: {ms * s.layer_scale:.3f} ms fixed time per layer per token ({why})"]


def device_speeds(
    view: ModelView,
    devices: list[Device],
    placement: Placement,
    request: EstimateRequest,
    catalog: EstimateCatalog,
) -> tuple[list[DeviceSpeed], list[str]]:
    """Bytes and ops per token on each device, and the basis lines for the speed figures."""
    cpu = len(devices) - 1
    speeds = [
        DeviceSpeed(
            d.name,
            d.bandwidth_gbps,
            d.peak_gops,
            d.backend,
            assumed=d.bandwidth_assumed,
            measured=d.bandwidth_measured,
            dot_path=d.dot_path,
            bw_span=d.bandwidth_span,
            peak_span=d.peak_span,
            staging_gbps=d.staging_gbps,
            ceiling_gops=d.ceiling_gops,
            int8_matmul=_int8_matmul(d.backend, catalog),
            ubatch=min(request.ubatch, request.batch),
            dot_gws=_dot_rates(d, catalog),
            clock_ghz=d.clock_ghz,
            basis=list(d.rate_notes),
        )
        for d in devices
    ]
    split_layers: set[int] = set()  # layers whose routed experts sit in RAM beside a GPU
    placed: dict[PlaceKey, int] = {}
    cpu_moe = request.cpu_moe
    expert_layers: dict[int, set[int | None]] = {}  # per device, the layers whose experts it reads
    # Tensor by tensor in file order, so that each device's float sums add up as they always did.
    for t, key, weight_bytes, routed, ops in _speed_rows(view):
        if placement.overrides:  # -ot patterns place by name
            dev = _read_on(key, place_tensor(t, placement, cpu, cpu_moe=cpu_moe),
                           view, placement, cpu, split_layers)  # fmt: skip
        elif key in placed:  # one placement per key
            dev = placed[key]
        else:
            dev = placed[key] = _read_on(key, place_by_key(key, placement, cpu, cpu_moe=cpu_moe),
                                         view, placement, cpu, split_layers)  # fmt: skip
        speed = speeds[dev]
        speed.weight_bytes += weight_bytes
        _tally(speed.type_bytes, t.type, weight_bytes)
        if routed:
            expert_layers.setdefault(dev, set()).add(key[1])
            speed.expert_bytes_all += t.nbytes
            speed.expert_share = view.shape.n_expert_used / view.shape.n_expert
        if ops is not None:
            speed.weight_ops += ops
            _tally(speed.type_weights, t.type, ops / 2)
            float_weights = quant_family(t.type) in FLOAT_FAMILIES
            speed.float_ops += ops if float_weights else 0.0
            if routed:
                speed.expert_ops += ops
                speed.float_expert_ops += ops if float_weights else 0.0
    for dev, layers in expert_layers.items():
        speeds[dev].expert_slots = float(len(layers) * view.shape.n_expert_used)
    for il, dev in enumerate(placement.layer_device):
        speeds[dev].layers += 1
        _add_attention(speeds[dev], view.shape, view.shape.layers[il], request, catalog)
    if cpu > 0 and speeds[cpu].expert_bytes_all:
        # the experts cross to the GPUs' links; the slowest one sets the pace
        link = min((d.link for d in devices[:cpu] if d.link), default=None)
        _offloaded_experts(speeds[cpu], len(split_layers), request, catalog, link)
    return [s for s in speeds if s.has_work], _speed_basis(speeds, request, catalog)


# Weights llama.cpp multiplies as floats (cuBLAS / the FP16 path), not on the int8 units.
FLOAT_FAMILIES = frozenset({"f16", "bf16", "f32"})


def _int8_matmul(backend: str, catalog: EstimateCatalog) -> bool:
    factors = catalog.backends.backends.get(backend)
    return bool(factors and factors.prefill_int8)


def _tally(into: dict[str, float], family: str, amount: float) -> None:
    if amount:
        into[family] = into.get(family, 0.0) + amount


# (tensor, its placement key, bytes read per token, a routed expert of an MoE?, ops per token
# or None for a lookup or a vector): what the speed pass reads of each trunk tensor.
SpeedRow = tuple[TypedTensor, PlaceKey, float, bool, float | None]


def _dot_rates(device: Device, catalog: EstimateCatalog) -> dict[str, float]:
    """G weights/s the device's threads' dot products reach per ggml type, where the backend
    records a per-thread rate (a CPU's slow dot products: catalog/backends.yaml)."""
    rates = catalog.backends.backends[device.backend].dot_rate_gws
    return {t: rate * device.threads for t, rate in rates.items()} if device.threads else {}


def _speed_rows(view: ModelView) -> list[SpeedRow]:
    """The per-tensor figures of the speed pass that depend on the view alone, kept on it."""
    known: list[SpeedRow] | None = view.derived.get("speed_rows")
    if known is not None:
        return known
    shape = view.shape
    rows: list[SpeedRow] = []
    for t in view.tensors:
        if t.mtp:
            continue
        share = active_share(t, shape)
        routed = t.is_expert and bool(shape.n_expert)
        lookup = t.name == "token_embd.weight" and not shape.tied_embeddings
        ops = 2.0 * t.n_elements * share if len(t.shape) >= 2 and not lookup else None
        rows.append((t, place_key(t), t.nbytes * share, routed, ops))
    view.derived["speed_rows"] = rows
    return rows


def _read_on(
    key: PlaceKey, dev: int, view: ModelView, placement: Placement, cpu: int, split_layers: set[int]
) -> int:
    """The device whose speed row reads a tensor placed on `dev` (the tied output matrix is
    read as the output layer); a routed expert left in RAM beside a GPU marks its layer split.
    The same for every tensor with this key, when no -ot pattern places by name."""
    token_embd, layer, is_expert = key
    beside_gpu = layer is not None and placement.layer_device[layer] != cpu
    if dev == cpu and cpu > 0 and is_expert and beside_gpu and layer is not None:
        split_layers.add(layer)
    if token_embd and view.shape.tied_embeddings:
        return placement.output_device
    return dev


def _offloaded_experts(
    host: DeviceSpeed,
    split: int,
    request: EstimateRequest,
    catalog: EstimateCatalog,
    link: tuple[float, str] | None,
) -> None:
    """Routed experts in system RAM beside a GPU, as llama.cpp runs them.

    Decode: the host reads them at its bandwidth with its threads (at the share the public
    offload rows measure, where the bandwidth is a stated figure), and every layer split
    between GPU and host costs a hand-over (copy and sync) each way. Prefill: batches of 32
    tokens and more run the expert matmuls on the GPU (op offload), so each ubatch copies the
    host's experts over the host link: that transfer, not the CPU, sets the pace."""
    factors = catalog.backends.backends["cpu"]
    host.split_layers = split
    host.split_s = (factors.expert_split_overhead_ms or 0.0) * 1e-3
    read = factors.offload_decode_efficiency
    if split and read and not host.measured:
        host.basis.append(
            f"decode: the host reads its experts at {read:.2f} of its bandwidth (the share "
            "fitted to public MoE-offload llama-bench rows; a CPU running a whole model: "
            f"{factors.decode_efficiency:g})"
        )
    share = factors.host_link_efficiency
    if share and link and min(request.ubatch, request.batch) >= OP_OFFLOAD_MIN_BATCH:
        host.link_peak_gbps, where = link
        host.link_gbps = share * host.link_peak_gbps
        host.link_ubatch = min(request.ubatch, request.batch)
        rate = link_rate(host, host.link_gbps)
        why = ("a third of host memory bandwidth: pageable copies are staged through pinned "
               "memory" if rate < host.link_gbps else
               f"{share:.2f} of the GPU's link, {where} (the share fitted)")  # fmt: skip
        host.basis.append(
            f"prefill: the host's experts ({host.expert_bytes_all / 1e9:.1f} GB) cross to the "
            f"GPU every {host.link_ubatch}-token ubatch at {rate:.1f} GB/s, {why}"
        )


# ggml-backend's scheduler offloads an op on host weights to the GPU from this batch size
# (llama.cpp --op-offload, on by default; ggml_backend_sched op_offload, min batch 32).
OP_OFFLOAD_MIN_BATCH = 32


def _add_attention(
    speed: DeviceSpeed,
    shape: ModelShape,
    layer: LayerShape,
    request: EstimateRequest,
    catalog: EstimateCatalog,
) -> None:
    """What one layer reads and computes per token for the context it attends to."""
    if layer.state_r or layer.state_s:
        speed.state_bytes += 2.0 * (layer.state_r + layer.state_s) * F32  # read, then written
        speed.scan_layers += 1
    if not layer.kv_k:
        return
    row = row_bytes(request.cache_type_k, layer.kv_k, catalog.quants)
    if layer.kind != "A":  # MLA: V is a view of the cached latent
        row += row_bytes(request.cache_type_v, layer.kv_v, catalog.quants)
    ops = 4.0 * layer.n_head * layer.head_k  # QK^T and AV, 2 ops per multiply-add
    if layer.swa:
        speed.window_row_bytes += row
        speed.window_ops += ops
        speed.window = shape.swa_window
    else:
        speed.full_row_bytes += row
        speed.full_ops += ops


def _dot_basis(s: DeviceSpeed, catalog: EstimateCatalog) -> list[str]:
    """Which of the device's weight types may be paced by its dot products, at what rate."""
    types = sorted(t for t in s.dot_gws if s.type_weights.get(t))
    if not types:
        return []
    factors = catalog.backends.backends[s.backend]
    low, high = factors.dot_rate_range
    rates = ", ".join(f"{t} {s.dot_gws[t]:.3g}" for t in types)
    return [f"speed {s.name}: dot products, G weights/s over its threads ({rates}; one core's "
            f"measured rate x threads, range x{low:g}-x{high:g}), set the pace of a type where "
            "slower than its read"]  # fmt: skip


def _expert_tile_basis(s: DeviceSpeed) -> list[str]:
    """How full the routed experts' matmul tiles are in the prefill figure's ubatches."""
    if not s.expert_share or not s.expert_ops or s.link_ubatch:
        return []
    tokens = min(s.ubatch, TTFT_PROMPT)
    work = expert_padding(s, TTFT_PROMPT)  # as prefill_tps charges the 512-token prompt
    return [f"speed {s.name}: prefill's routed experts get {tokens * s.expert_share:.3g} tokens "
            f"each on average in a {tokens}-token ubatch ({s.expert_share:.3g} of the tokens "
            f"route to an expert), in {EXPERT_TILE}-token tiles: x{work:.2f} "
            "the work (a longer prompt in larger ubatches, llama.cpp --ubatch-size, fills them; "
            "estimate/expert_tiles.py)"]  # fmt: skip


def _scan_basis(s: DeviceSpeed, catalog: EstimateCatalog) -> list[str]:
    """The fixed prefill time of the recurrent layers' token-by-token scan, where fitted."""
    step_us = catalog.backends.backends[s.backend].scan_step_us
    if not s.scan_layers or not step_us:
        return []
    per_token = s.scan_steps * step_us
    return [f"speed {s.name}: prefill scans {s.scan_layers} recurrent layers' state token by "
            f"token ({SCAN_NOTE}): {per_token:.3g} us per prompt token whatever the ubatch, "
            f"at most {1e6 / per_token:,.0f} tokens/s ({step_us:.3g} us per layer at "
            f"{REFERENCE_CLOCK_GHZ:g} GHz, {s.backend} factor fitted to public llama-bench "
            "rows)"]  # fmt: skip


def _speed_basis(
    speeds: list[DeviceSpeed], request: EstimateRequest, catalog: EstimateCatalog
) -> list[str]:
    lines = []
    for s in speeds:
        if not s.weight_bytes:
            continue
        bw = f"{s.bandwidth_gbps:.0f} GB/s" if s.bandwidth_gbps else "unknown bandwidth"
        if s.assumed:
            factors = catalog.backends.backends[s.backend]
            low, high = s.bw_span  # up to the memory's own figure where the profile has one
            bw += (
                f" ASSUMED (per-core {factors.per_core_bandwidth_gbps} GB/s x threads: no "
                f"measured or spec figure that {request.threads or 'these'} threads reach; "
                f"range widened x{low:.2g}-x{high:.2g})"
            )
        elif s.measured:
            kind = DOT_PATH_SPREAD.get(s.dot_path, "narrower")
            bw = f"{s.bandwidth_gbps:g} GB/s {MEASURED_NOTE} ({kind} efficiency spread)"
        peak = f"{s.peak_gops:.0f} GOPS peak" if s.peak_gops else "unknown peak compute"
        if s.int8_matmul and s.ceiling_gops:
            peak += f" (quantised matmuls on the int8 units: {s.ceiling_gops:.0f} GOPS)"
        lines.append(
            f"speed {s.name}: {s.weight_bytes / 1e9:.3f} GB active weights per token, {bw}, "
            f"{peak} ({s.backend} factors from {factors_source(s.backend, catalog)})"
        )
        lines += _layer_basis(s, catalog)
        slot_ms = catalog.backends.backends[s.backend].expert_slot_ms
        if s.expert_slots and slot_ms:
            lines.append(
                f"speed {s.name}: {s.expert_slots:.0f} routed experts used per token, "
                f"{slot_ms:g} ms fixed time each (their dispatch: {s.backend} factor fitted to "
                "public llama-bench rows)"
            )
        lines += _dot_basis(s, catalog)
        lines += _expert_tile_basis(s)
        lines += _scan_basis(s, catalog)
        lines += [f"speed {s.name}: {note}" for note in s.basis if not s.assumed]
    lines.append(
        f"speed: roofline at depth {request.depth}: weights, then attention over the cached "
        "context (full layers: every token; sliding-window layers: the window at most; "
        "recurrent layers: their fixed state), plus a per-layer overhead; attention factors "
        "fitted to llama-bench depth rows (tests/data/estimate/depth_reference.yaml); "
        "ranges = backend efficiency spread x the span of any uncertain rate, on a GPU "
        "never narrower than the 10th-90th percentile of held-out public rows on the same "
        "backend (catalog/speed_fit.yaml decode_validation / prefill_validation), capped by "
        "physics (bandwidth / bytes per step, peak / ops per token); ttft = 512-token "
        "prompt at that depth + one decode step"
    )
    return lines
