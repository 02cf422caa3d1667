"""Streaming requests to an OpenAI-compatible endpoint, timed on the client side.

Time to first token is measured here; prefill and decode rates come from llama-server's own
`timings` (sent with the last streamed chunk) when it sends them, else from the client clock.
Each request gets a prompt of exactly `depth` tokens (built with the server's /tokenize when
it has one) that no earlier request shares, with `cache_prompt: false`, so that every run
prefills the whole depth.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WORDS = [
    "river",
    "stone",
    "lamp",
    "orbit",
    "cedar",
    "violet",
    "harbor",
    "engine",
    "maple",
    "quartz",
    "ribbon",
    "canyon",
    "meadow",
    "lantern",
    "falcon",
    "copper",
    "glacier",
    "thunder",
    "willow",
    "saddle",
    "marble",
    "compass",
    "ember",
    "prairie",
    "anchor",
    "beacon",
    "cobalt",
    "dune",
    "fern",
    "granite",
    "hollow",
    "island",
    "jasper",
    "kettle",
    "lagoon",
    "mosaic",
]


class EndpointError(Exception):
    """The endpoint did not answer, or answered with an error."""


@dataclass(frozen=True)
class Timing:
    prompt_tokens: int
    gen_tokens: int
    ttft_s: float
    pp_tps: float | None
    tg_tps: float | None
    started: float  # monotonic clock: request sent, first token, last token
    first: float
    last: float


def json_headers(api_key: str | None) -> dict[str, str]:
    """A server bound beyond loopback demands its key as a bearer token."""
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def post_json(
    url: str, body: dict[str, Any], timeout: float = 120.0, api_key: str | None = None
) -> dict[str, Any]:
    headers = json_headers(api_key)
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            payload: dict[str, Any] = json.loads(response.read())
            return payload
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise EndpointError(f"{url}: HTTP {exc.code}: {detail}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise EndpointError(f"{url}: {exc}") from None


def prompt_tokens(
    base_url: str, depth: int, seed: int, api_key: str | None = None
) -> list[int] | str:
    """`depth` tokens of word salad unique to `seed` (text when the server cannot tokenize)."""
    rng = random.Random(seed)
    words = max(depth, 8)
    text = f"Note {seed}: " + " ".join(rng.choice(WORDS) for _ in range(words))
    try:
        answer = post_json(f"{base_url}/tokenize", {"content": text}, timeout=60, api_key=api_key)
        tokens = answer["tokens"]
    except (EndpointError, KeyError):
        return text
    return [int(t) for t in tokens[: max(depth, 4)]]


def _stream_lines(response: Any) -> Any:
    for raw in response:
        line = raw.decode(errors="replace").strip()
        if line.startswith("data:"):
            data = line[5:].strip()
            if data == "[DONE]":
                return
            yield json.loads(data)


def timed_completion(
    base_url: str,
    model: str,
    prompt: list[int] | str,
    n_gen: int,
    timeout: float = 600.0,
    api_key: str | None = None,
) -> Timing:
    """One streamed /v1/completions request; raises EndpointError on any failure."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": n_gen,
        "temperature": 0,
        "seed": 0,
        "stream": True,
        "cache_prompt": False,
        "ignore_eos": True,
    }
    request = urllib.request.Request(
        f"{base_url}/v1/completions",
        data=json.dumps(body).encode(),
        headers=json_headers(api_key),
    )
    start = time.monotonic()
    first: float | None = None
    last = start
    chunks = 0
    timings: dict[str, Any] = {}
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            for event in _stream_lines(response):
                if "error" in event:
                    raise EndpointError(f"server error mid-stream: {event['error']}")
                if event.get("choices") and event["choices"][0].get("text"):
                    now = time.monotonic()
                    first = now if first is None else first
                    last = now
                    chunks += 1
                timings = event.get("timings") or timings
    except urllib.error.HTTPError as exc:
        raise EndpointError(
            f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise EndpointError(str(exc)) from None
    if first is None:
        raise EndpointError("the stream ended without a token")
    n_prompt = int(timings.get("prompt_n") or (len(prompt) if isinstance(prompt, list) else 0))
    n_gen_done = int(timings.get("predicted_n") or chunks)
    pp = timings.get("prompt_per_second") or (n_prompt / (first - start) if n_prompt else None)
    decode_s = last - first
    tg = timings.get("predicted_per_second") or (
        (chunks - 1) / decode_s if chunks > 1 and decode_s > 0 else None
    )
    return Timing(n_prompt, n_gen_done, first - start, pp, tg, start, first, last)


@dataclass(frozen=True)
class RunResult:
    """One run of `clients` concurrent requests: aggregate rates, the median TTFT."""

    pp_tps: float | None
    tg_tps: float | None
    ttft_s: float


def concurrent_run(
    base_url: str,
    model: str,
    depth: int,
    clients: int,
    n_gen: int,
    seed: int,
    api_key: str | None = None,
) -> RunResult:
    prompts = [prompt_tokens(base_url, depth, seed * 100 + i, api_key) for i in range(clients)]
    out: list[Timing | EndpointError] = [EndpointError("not run")] * clients

    def one(i: int) -> None:
        try:
            out[i] = timed_completion(base_url, model, prompts[i], n_gen, api_key=api_key)
        except EndpointError as exc:
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    errors = [r for r in out if isinstance(r, EndpointError)]
    if errors:
        raise errors[0]
    done = [r for r in out if isinstance(r, Timing)]
    ttft = statistics.median(r.ttft_s for r in done)
    if clients == 1:
        return RunResult(done[0].pp_tps, done[0].tg_tps, ttft)
    return RunResult(*aggregate_rates(done), ttft)


def aggregate_rates(done: list[Timing]) -> tuple[float | None, float | None]:
    """Tokens over wall time across all streams: what the box delivers to N users at once."""
    start = min(r.started for r in done)
    prefilled = max(r.first for r in done) - start
    decoding = max(r.last for r in done) - min(r.first for r in done)
    prompt = sum(r.prompt_tokens for r in done)
    gen = sum(max(r.gen_tokens - 1, 0) for r in done)
    return (
        prompt / prefilled if prompt and prefilled > 0 else None,
        gen / decoding if gen and decoding > 0 else None,
    )


Progress = Callable[[str], None]
