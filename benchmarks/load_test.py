"""Load test: more concurrent clients than the server has slots, on loopback, bounded in count and
time. Prints requests served, refused, errors, p50/p95 time to first token and decode tok/s, and
whether the server stayed up (exit 1 if it did not, or if any request hung past its timeout).

It starts the real llama-server on 127.0.0.1 (never another address) with the real model, or
measures an already running one with --url (which must be a loopback URL).

    flock /tmp/stackctl-heavy.lock .venv/bin/python benchmarks/load_test.py \
        [--slots 2 --clients 6 --duration 30 --max-requests 80] [--json out.json]
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILD = Path("/var/cache/stackctl/build/llama.cpp-2ead871b69b42e9f/out/bin/llama-server")
MODEL = Path("/var/cache/stackctl/test-mirror/gemma-3-270m-q4_k_m.gguf")
PROMPTS = [
    "Count from 1 to 20, separated by commas:",
    "The capital of France is",
    "Write a haiku about a server room:",
    "List five prime numbers:",
]


@dataclass
class Outcome:
    ok: bool
    refused: bool = False
    error: str = ""
    ttft_s: float | None = None
    tokens: int = 0
    decode_tps: float | None = None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: int = 0
    outcomes: list[Outcome] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SystemExit(f"load_test: {url} is not a loopback address; refusing to load it")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _box_quirk_flags() -> list[str]:
    """Flags this box's own lock carries for its CPU (e.g. --no-repack on AMX: quirks.yaml)."""
    from stackctl.detect import detect_hardware
    from stackctl.detect.runner import LiveRunner
    from stackctl.pipeline import load_stack_inputs, make_lock

    args = make_lock(load_stack_inputs("tiny-cpu", detect_hardware(LiveRunner()))).resolved
    return [a for a in args.runtime.server_args if a == "--no-repack"]


def _start_server(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    argv = [
        str(args.bin),
        "--model",
        str(args.model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--ctx-size",
        str(args.ctx * args.slots),  # shared KV pool: ctx per slot x slots
        "--parallel",
        str(args.slots),
        "--threads",
        str(os.cpu_count() or 1),
        "--alias",
        "load-test",
        *_box_quirk_flags(),
    ]
    log = Path(args.server_log).open("wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"load_test: llama-server exited with {proc.returncode}")
        if _healthy(url):
            return proc, url
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("load_test: llama-server did not become healthy in 120 s")


def _one_request(url: str, prompt: str, args: argparse.Namespace) -> Outcome:
    body = json.dumps(
        {
            "model": "load-test",
            "prompt": prompt,
            "max_tokens": args.max_tokens,
            "temperature": 0,
            "stream": True,
        }
    ).encode()
    request = urllib.request.Request(
        f"{url}/v1/completions", data=body, headers={"Content-Type": "application/json"}
    )
    sent = time.monotonic()
    first: float | None = None
    tokens = 0
    try:
        with urllib.request.urlopen(request, timeout=args.request_timeout) as response:
            for raw in response:
                line = raw.decode(errors="replace").strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk: dict[str, Any] = json.loads(line[6:])
                text = chunk.get("choices", [{}])[0].get("text") or ""
                if text:
                    tokens += 1
                    first = first if first is not None else time.monotonic()
    except urllib.error.HTTPError as exc:
        refused = exc.code in (429, 503)  # an admission limit answering cleanly
        return Outcome(ok=False, refused=refused, error=f"HTTP {exc.code}")
    except (OSError, ValueError) as exc:
        return Outcome(ok=False, error=f"{type(exc).__name__}: {exc}")
    done = time.monotonic()
    decode = (tokens - 1) / (done - first) if first is not None and tokens > 1 else None
    ttft = first - sent if first is not None else None
    return Outcome(ok=True, ttft_s=ttft, tokens=tokens, decode_tps=decode)


def _client(url: str, index: int, args: argparse.Namespace, tally: Tally, stop: float) -> None:
    n = 0
    while time.monotonic() < stop:
        with tally.lock:
            if tally.started >= args.max_requests:
                return
            tally.started += 1
        outcome = _one_request(url, PROMPTS[(index + n) % len(PROMPTS)], args)
        n += 1
        with tally.lock:
            tally.outcomes.append(outcome)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run(args: argparse.Namespace) -> dict[str, Any]:
    proc = None
    if args.url:
        _require_loopback(args.url)
        url = args.url.rstrip("/")
    else:
        proc, url = _start_server(args)
    tally = Tally()
    started = time.monotonic()
    stop = started + args.duration
    threads = [
        threading.Thread(target=_client, args=(url, i, args, tally, stop), daemon=True)
        for i in range(args.clients)
    ]
    for thread in threads:
        thread.start()
    hard_stop = stop + args.request_timeout + 5  # a request started at `stop` may still finish
    for thread in threads:
        thread.join(timeout=max(0.0, hard_stop - time.monotonic()))
    hung = sum(thread.is_alive() for thread in threads)
    elapsed = time.monotonic() - started
    up = _healthy(url) and (proc is None or proc.poll() is None)
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=30)
    served = [o for o in tally.outcomes if o.ok]
    ttfts = [o.ttft_s for o in served if o.ttft_s is not None]
    decodes = [o.decode_tps for o in served if o.decode_tps is not None]
    errors: dict[str, int] = {}
    for o in tally.outcomes:
        if not o.ok and not o.refused:
            errors[o.error] = errors.get(o.error, 0) + 1
    return {
        "url": url,
        "slots": args.slots if proc is not None else None,
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "requests": len(tally.outcomes),
        "served": len(served),
        "refused": sum(o.refused for o in tally.outcomes),
        "errors": errors,
        "hung_clients": hung,
        "ttft_p50_s": _round(_percentile(ttfts, 50)),
        "ttft_p95_s": _round(_percentile(ttfts, 95)),
        "decode_tps_p50": _round(_percentile(decodes, 50)),
        "decode_tps_p5": _round(_percentile(decodes, 5)),
        "aggregate_tokens_per_s": _round(sum(o.tokens for o in served) / elapsed),
        "server_up": up,
        "load_avg": os.getloadavg(),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an already running server (loopback only)")
    parser.add_argument("--bin", type=Path, default=Path(os.environ.get("LLAMA_SERVER", BUILD)))
    parser.add_argument("--model", type=Path, default=MODEL)
    parser.add_argument("--slots", type=int, default=2, help="server slots (--parallel)")
    parser.add_argument("--clients", type=int, default=6, help="concurrent clients (> slots)")
    parser.add_argument("--ctx", type=int, default=1024, help="context per slot")
    parser.add_argument("--duration", type=float, default=30, help="seconds to send requests")
    parser.add_argument("--max-requests", type=int, default=80, help="requests at most")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--request-timeout", type=float, default=60)
    parser.add_argument("--server-log", default="/tmp/stackctl-load-test-server.log")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    if args.clients <= args.slots and not args.url:
        parser.error("--clients must exceed --slots: the point is a queue")
    report = run(args)
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["server_up"] and not report["hung_clients"] else 1


if __name__ == "__main__":
    sys.exit(main())
