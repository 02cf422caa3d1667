"""The sweep's speculative stage: `--spec-draft-n-max` measured on llama-server itself.

llama-bench b11434 has no draft-model option, so n_max cannot be a llama-bench candidate. Each
n_max runs as its own short-lived llama-server, on a free loopback port, with the lock's own
command line (model, draft, every flag) and the sweep's best flags so far laid over. Decode is
read from the server's own timings on a fixed prose prompt (greedy, fixed seed): speculation
gains depend on how predictable the text is, and prose is what a chat stack serves. The lock's
n_max is measured the same way in the same stage, so challengers are judged against a figure
of the same kind, never against llama-bench's.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stackctl.bench.client import EndpointError, post_json
from stackctl.bench.models import SweepCandidate, TuningFlags
from stackctl.bench.tuning import SERVER_FLAGS, with_flag
from stackctl.service import is_healthy

# A prompt of plain expository prose: a draft model predicts such text well, as it would a
# chat answer; word salad would measure the draft's worst case instead.
SPEC_PROMPT = (
    "The history of the bicycle begins in the early nineteenth century. The first machines "
    "had no pedals: riders pushed themselves along with their feet. Pedals on the front wheel "
    "came decades later, and the chain drive to the rear wheel made the safety bicycle, with "
    "two wheels of the same size, the design that is still ridden today. The bicycle changed "
    "daily life in many ways."
)
# flags the stage sets itself: the server must not bind the deployed port or demand its key
_OWN_FLAGS = ("--host", "--port", "--api-key-file", "--spec-draft-n-max")


@dataclass(frozen=True)
class ServerPlan:
    """The deployed command line (service_argv) the stage starts again per n_max."""

    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    n_gen: int = 64
    reps: int = 3
    start_timeout_s: float = 300.0
    request_timeout_s: float = 600.0


def n_max_choices(current: int) -> list[int]:
    """The lock's n_max and a bounded set around it: half, +2 and double (at most 4 runs)."""
    return sorted({max(1, current // 2), current, current + 2, current * 2})


def without_flags(argv: Sequence[str], flags: Sequence[str]) -> list[str]:
    """`argv` less each `flag value` pair named in `flags`."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        else:
            out.append(arg)
    return out


def server_argv(plan: ServerPlan, flags: TuningFlags, port: int) -> list[str]:
    """The lock's command line with the candidate's flags, on 127.0.0.1:`port`, keyless."""
    args = without_flags(plan.argv, _OWN_FLAGS)
    for name, value in flags.model_dump(exclude_none=True).items():
        if name != "backend":
            args = with_flag(args, SERVER_FLAGS[name], str(value))
    return [*args, "--host", "127.0.0.1", "--port", str(port)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """None once /health answers 200; else why not (the server exited, or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"llama-server exited with {proc.returncode} while loading"
        if is_healthy(url):
            return None
        time.sleep(0.3)
    return f"llama-server did not answer /health within {timeout:.0f}s"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _decode(url: str, plan: ServerPlan) -> tuple[float, float | None]:
    """(decode tok/s, draft acceptance) of one greedy completion, from the server's timings."""
    body = {"prompt": SPEC_PROMPT, "n_predict": plan.n_gen, "temperature": 0, "seed": 0,
            "ignore_eos": True, "cache_prompt": False}  # fmt: skip
    timings = post_json(f"{url}/completion", body, timeout=plan.request_timeout_s)["timings"]
    drafted, accepted = timings.get("draft_n"), timings.get("draft_n_accepted")
    acceptance = accepted / drafted if drafted else None
    return float(timings["predicted_per_second"]), acceptance


def _tail(log: str) -> str:
    text = Path(log).read_text(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no output"


def measure_on_server(plan: ServerPlan, flags: TuningFlags) -> SweepCandidate:
    """One n_max: start the server, one warm-up request, `reps` timed ones; median and spread."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.NamedTemporaryFile(prefix="stackctl-spec-", suffix=".log") as log:
        proc = subprocess.Popen(
            server_argv(plan, flags, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **plan.env},
        )
        try:
            why = _wait_healthy(url, proc, plan.start_timeout_s)
            if why is not None:
                return _failed(flags, f"{why}: {_tail(log.name)}")
            _decode(url, plan)  # warm-up: first-request allocations are not the steady state
            runs = [_decode(url, plan) for _ in range(plan.reps)]
        except (EndpointError, KeyError, TypeError, ValueError) as exc:
            return _failed(flags, f"llama-server: {exc}")
        finally:
            _stop(proc)
    rates = [r for r, _a in runs]
    accepted = [a for _r, a in runs if a is not None]
    return SweepCandidate(
        flags=flags,
        tps=round(statistics.median(rates), 2),
        tps_std=round(statistics.stdev(rates), 2) if len(rates) > 1 else None,
        method="llama-server",
        acceptance=round(statistics.median(accepted), 3) if accepted else None,
    )


def _failed(flags: TuningFlags, why: str) -> SweepCandidate:
    return SweepCandidate(flags=flags, tps=None, error=why, method="llama-server")
