"""`check-output`: fixed prompts run greedily; wrong, empty, looping or unreadable output fails.

The checks fit the model: a base model (no chat template) is checked through plain
completion on what even a 270M model does reliably (continue a count, copy a passkey, recall
a passkey from the start of a long prompt); an instruct model through chat, with arithmetic,
a known fact, a JSON tool call and the long-prompt recall. Tokens are capped and stop strings
end each answer, so that a broken model fails fast instead of rambling to the cap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stackctl.bench.client import EndpointError, post_json
from stackctl.bench.models import CheckCase, CheckReport
from stackctl.models.lock import Lockfile

PASSKEY = "71432"
FILLER = (
    "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again. "
)
CHARS_PER_TOKEN = 4  # filler sizing only; the server truncates nothing we send
LONG_TARGET_TOKENS = 4608  # beyond 4K, when the context allows it
_LOOP = re.compile(r"(.{3,}?)\1{4,}", re.S)


@dataclass(frozen=True)
class Case:
    name: str
    prompt: str
    expected: str
    max_tokens: int
    stop: tuple[str, ...] = ("\n",)
    check: str = "contains"  # contains | tool_call


def long_recall_tokens(context: int) -> int:
    """Beyond 4K tokens where the context allows; else three quarters of it."""
    return min(LONG_TARGET_TOKENS, context * 3 // 4)


def _long_prompt(tokens: int, tail: str) -> str:
    head = f"The pass key is {PASSKEY}. Remember it. {PASSKEY} is the pass key. "
    repeats = max(1, (tokens * CHARS_PER_TOKEN - len(head) - len(tail)) // len(FILLER))
    return head + FILLER * repeats + tail


def base_cases(context: int) -> list[Case]:
    return [
        Case("count", "1, 2, 3, 4, 5, 6,", "7, 8, 9", 12, (",\n", "\n")),
        Case(
            "passkey copy",
            f"The pass key is {PASSKEY}. The pass key is {PASSKEY}. The pass key is",
            PASSKEY,
            8,
            ("\n", "."),
        ),
        Case(
            f"recall at ~{long_recall_tokens(context)} tokens",
            _long_prompt(long_recall_tokens(context), "What is the pass key? The pass key is"),
            PASSKEY,
            8,
            ("\n", "."),
        ),
    ]


def instruct_cases(context: int) -> list[Case]:
    return [
        Case("arithmetic", "What is 17 + 25? Answer with the number only.", "42", 16, ()),
        Case("fact", "What is the capital of France? Answer with one word.", "Paris", 16, ()),
        Case(
            "tool call",
            "What is the weather in Paris? Use the tool.",
            "get_weather",
            96,
            (),
            "tool_call",
        ),
        Case(
            f"recall at ~{long_recall_tokens(context)} tokens",
            _long_prompt(long_recall_tokens(context), "What is the pass key? Answer with it."),
            PASSKEY,
            16,
            (),
        ),
    ]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def looks_broken(text: str) -> str | None:
    """Why an answer is garbage regardless of what was asked, or None."""
    if not text.strip():
        return "empty output"
    if "\ufffd" in text:
        return "output has invalid UTF-8 (replacement characters)"
    if _LOOP.search(text):
        return f"repetition loop: {_LOOP.search(text).group(1)!r} repeated"  # type: ignore[union-attr]
    readable = sum(ch.isalnum() or ch.isspace() or ch in ".,:;!?'\"-()" for ch in text)
    if readable / len(text) < 0.7:
        return "gibberish: mostly symbols"
    return None


Ask = Callable[[Case], tuple[str, dict[str, Any]]]


def completion_asker(base_url: str, api_key: str | None = None) -> Ask:
    def ask(case: Case) -> tuple[str, dict[str, Any]]:
        body = {
            "prompt": case.prompt,
            "n_predict": case.max_tokens,
            "temperature": 0,
            "seed": 0,
            "stop": list(case.stop),
            "cache_prompt": False,
        }
        payload = post_json(f"{base_url}/completion", body, timeout=600, api_key=api_key)
        return str(payload.get("content", "")), payload

    return ask


def chat_asker(base_url: str, model: str, api_key: str | None = None) -> Ask:
    def ask(case: Case) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "user", "content": case.prompt}],
            "max_tokens": case.max_tokens,
            "temperature": 0,
            "seed": 0,
        }
        if case.stop:
            body["stop"] = list(case.stop)
        if case.check == "tool_call":
            body["tools"] = [WEATHER_TOOL]
        url = f"{base_url}/v1/chat/completions"
        payload = post_json(url, body, timeout=600, api_key=api_key)
        message = payload["choices"][0]["message"]
        return str(message.get("content") or ""), message

    return ask


def _tool_call(message: dict[str, Any]) -> tuple[str, str | None]:
    calls = message.get("tool_calls") or []
    if not calls:
        return str(message.get("content") or ""), "no tool call"
    fn = calls[0].get("function", {})
    text = f"{fn.get('name')}({fn.get('arguments')})"
    try:
        args = json.loads(fn.get("arguments") or "")
    except json.JSONDecodeError:
        return text, "tool arguments are not JSON"
    if fn.get("name") != "get_weather" or "paris" not in str(args.get("city", "")).lower():
        return text, "wrong tool or arguments"
    return text, None


def judge(case: Case, text: str, raw: dict[str, Any]) -> CheckCase:
    if case.check == "tool_call":
        got, reason = _tool_call(raw)
    else:
        got = text
        reason = looks_broken(text)
        if reason is None and case.expected not in text:
            reason = f"expected {case.expected!r}"
            if case.expected == PASSKEY:
                reason = "recall failure: " + reason
    return CheckCase(
        name=case.name, passed=reason is None, expected=case.expected, got=got[:200], reason=reason
    )


def run_checks(cases: list[Case], ask: Ask) -> list[CheckCase]:
    out = []
    for case in cases:
        try:
            text, raw = ask(case)
        except (EndpointError, KeyError, IndexError) as exc:
            out.append(
                CheckCase(
                    name=case.name,
                    passed=False,
                    expected=case.expected,
                    got="",
                    reason=f"request failed: {exc}",
                )
            )
            continue
        out.append(judge(case, text, raw))
    return out


def check_deployed(lock: Lockfile, endpoint: str, api_key: str | None = None) -> CheckReport:
    """The checks that fit the lock's model (chat for instruct, completion for base models)."""
    r = lock.resolved
    context = r.runtime.context // max(r.runtime.parallel, 1)  # what one slot holds
    if r.model.kind == "instruct":
        cases = run_checks(instruct_cases(context), chat_asker(endpoint, r.model.id, api_key))
    else:
        cases = run_checks(base_cases(context), completion_asker(endpoint, api_key))
    return CheckReport(
        lock_hash=lock.content_hash,
        model=f"{r.model.id} {r.model.quant}",
        kind=r.model.kind,
        endpoint=endpoint,
        passed=all(c.passed for c in cases),
        cases=cases,
    )
