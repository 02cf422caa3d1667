"""`bench --llama-bench`: the engine's own benchmark (pp512 and tgN at each depth) on the
lock's model and flags, stored as measured rows beside the estimator's prediction."""

from __future__ import annotations

from collections.abc import Sequence

from stackctl import __version__
from stackctl.bench.llamabench import RowError, row_from_llama_bench
from stackctl.bench.models import StoredResult
from stackctl.bench.predict import predict_point
from stackctl.bench.rows import SOURCE, now_utc, row_hardware
from stackctl.bench.sweep import run_llama_bench
from stackctl.models.hardware import HardwareProfile
from stackctl.models.lock import Lockfile

PP_PROMPT = 512  # llama-bench's default prompt; the estimator predicts the same chunk


def llama_bench_argv(
    binary: str, model_path: str, lock: Lockfile, depths: Sequence[int], n_gen: int, reps: int
) -> list[str]:
    rt = lock.resolved.runtime
    argv = [
        binary,
        "-m",
        model_path,
        "-p",
        str(PP_PROMPT),
        "-n",
        str(n_gen),
        "-d",
        ",".join(str(d) for d in depths),
        "-r",
        str(reps),
        "-o",
        "json",
        "-fa",
        rt.flash_attn,
        "-ctk",
        rt.cache_type_k,
        "-ctv",
        rt.cache_type_v,
    ]
    if rt.threads:
        argv += ["-t", str(rt.threads)]
    if rt.ubatch:
        argv += ["-ub", str(rt.ubatch)]
    return argv


def llama_bench_results(
    argv: list[str], lock: Lockfile, hardware: HardwareProfile, timeout_s: float = 1800.0
) -> list[StoredResult]:
    r = lock.resolved
    models = {r.model.artefact.file: r.model.id, argv[2].rsplit("/", 1)[-1]: r.model.id}
    date = now_utc()
    out = []
    for record in run_llama_bench(argv, timeout_s):
        try:
            row = row_from_llama_bench(
                record,
                source=f"{SOURCE} (llama-bench)",
                ref=lock.content_hash,
                hardware=row_hardware(hardware),
                models=models,
            )
        except RowError:
            continue
        # llama-bench's ppN @ dD is the estimator's N-token chunk on top of D cached tokens.
        point = predict_point(lock, hardware, row.depth, pp_depth=row.depth)
        predicted = point.tg_tps if row.test == "tg" else point.pp_tps
        out.append(
            StoredResult(
                kind="measured",
                engine=r.engine.name,
                date=date,
                stackctl_version=__version__,
                lock_hash=lock.content_hash,
                predicted_tps=predicted,
                host_gbps=hardware.cpu.bandwidth_gbps,
                row=row,
            )
        )
    return out
