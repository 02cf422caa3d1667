"""Run rendered playbooks with the real ansible-playbook, and talk to the deployed server.

The only module that starts ansible-playbook. Progress comes back as structured events from the
stackctl_events callback (never by matching Ansible's text output).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from stackctl.errors import ApplyError
from stackctl.models.apply import HostStats, PlaybookResult, SmokeResult, TaskOutcome

EventHandler = Callable[[dict[str, Any]], None]
TickHandler = Callable[[float], None]

CALLBACK_DIR = Path(__file__).resolve().parent / "ansible_plugins" / "callback"
TICK_SECONDS = 15.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h
FETCHED_MARK = "stackctl-fetched"  # debug lines the roles print with each artefact's sha256


def ansible_playbook_path() -> str:
    beside = Path(sys.executable).parent / "ansible-playbook"
    if beside.exists():
        return str(beside)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise ApplyError("ansible-playbook not found", hint="pip install ansible-core")
    return found


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_STDOUT_CALLBACK="stackctl_events",
        ANSIBLE_CALLBACK_PLUGINS=str(CALLBACK_DIR),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_LOCALHOST_WARNING="0",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
        ANSIBLE_DEPRECATION_WARNINGS="0",
        ANSIBLE_FORCE_COLOR="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def _read_lines(stream: Any, sink: queue.Queue[str | None]) -> None:
    for line in stream:
        sink.put(line)
    sink.put(None)


def _outcome(event: dict[str, Any]) -> TaskOutcome:
    message = event.get("reason") or event.get("msg") or event.get("stderr") or event.get("stdout")
    return TaskOutcome(
        host=event["host"],
        task=event["task"],
        status=event["status"],
        message=str(message or "")[-2000:],
        log_tail=[str(line) for line in event.get("log_tail") or []],
    )


def _collect(
    lines: queue.Queue[str | None], on_event: EventHandler, on_tick: TickHandler
) -> tuple[list[dict[str, Any]], list[str]]:
    events: list[dict[str, Any]] = []
    other: list[str] = []
    started = time.monotonic()
    while True:
        try:
            line = lines.get(timeout=TICK_SECONDS)
        except queue.Empty:
            on_tick(time.monotonic() - started)
            continue
        if line is None:
            return events, other
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            other.append(line.rstrip())
            continue
        events.append(event)
        on_event(event)


def run_playbook(
    tree: Path,
    playbook: str,
    *,
    extra_vars: dict[str, Any],
    check: bool = False,
    on_event: EventHandler = lambda _e: None,
    on_tick: TickHandler = lambda _t: None,
    inventory: Path | None = None,
    extra_args: Sequence[str] = (),
) -> PlaybookResult:
    """ansible-playbook -i inventory.yml PLAYBOOK, following its events as they come.

    A fleet passes its own inventory and arguments such as --limit and --forks.
    """
    tree = tree.resolve()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(extra_vars, handle)  # a file, so no value ever passes through a shell
        vars_file = handle.name
    argv = [
        ansible_playbook_path(),
        "-i",
        str(inventory.resolve() if inventory else tree / "inventory.yml"),
        str(tree / playbook),
        "-e",
        f"@{vars_file}",
        *extra_args,
    ] + (["--check", "--diff"] if check else [])
    try:
        proc = subprocess.Popen(
            argv,
            cwd=tree,
            env=_environment(),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        try:
            lines: queue.Queue[str | None] = queue.Queue()
            assert proc.stdout is not None
            assert proc.stderr is not None
            threading.Thread(target=_read_lines, args=(proc.stdout, lines), daemon=True).start()
            events, other = _collect(lines, on_event, on_tick)
            stderr = proc.stderr.read()
            code = proc.wait()
        except BaseException:  # Ctrl-C or SIGTERM: never leave a playbook running on its own
            _stop(proc)
            raise
    finally:
        Path(vars_file).unlink(missing_ok=True)
    return _result(playbook, check, events, code, stderr, other)


def _die_with_parent() -> None:
    """Linux: the playbook gets SIGTERM if stackctl dies, even by SIGKILL, so a rerun never
    races an orphaned playbook. Elsewhere a no-op."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _result(
    playbook: str,
    check: bool,
    events: list[dict[str, Any]],
    code: int,
    stderr: str,
    other: list[str],
) -> PlaybookResult:
    stats = next((e for e in events if e.get("event") == "stats"), None)
    if stats is None:
        detail = (stderr.strip() or "\n".join(other)).splitlines()[-12:]
        raise ApplyError(
            f"ansible-playbook {playbook} exited with {code} before running", details=detail
        )
    results = [e for e in events if e.get("event") == "result"]
    fetched: dict[str, str] = {}
    by_host: dict[str, dict[str, str]] = {}
    for event in results:
        words = str(event.get("msg", "")).split()
        if len(words) == 3 and words[0] == FETCHED_MARK:
            fetched[words[1]] = words[2]
            by_host.setdefault(str(event.get("host")), {})[words[1]] = words[2]
    return PlaybookResult(
        playbook=playbook,
        check=check,
        hosts={h: HostStats.model_validate(s) for h, s in stats["hosts"].items()},
        changed_tasks=[_outcome(e) for e in results if e["status"] == "changed"],
        failed_tasks=[_outcome(e) for e in results if e["status"] in ("failed", "unreachable")],
        fetched=fetched,
        fetched_by_host=by_host,
    )


def wait_for_health(
    base_url: str, *, timeout: float = 120.0, give_up: Callable[[], str | None] | None = None
) -> None:
    """Poll /health until it answers 200. Between polls `give_up` (service.CrashWatch, say) may
    report why the server will not come up: the wait stops at once with that reason (its first
    line) and the rest of its lines (the log's last ones) as details."""
    from stackctl.service import stopped_waiting

    started = time.monotonic()
    last = "no answer"
    while True:
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        waited = time.monotonic() - started
        reason = give_up() if give_up is not None else None
        if reason:
            first, *rest = reason.splitlines()
            raise ApplyError(stopped_waiting(base_url, waited, first), details=rest)
        if waited >= timeout:
            raise ApplyError(f"{base_url}/health did not answer 200 within {timeout:.0f}s: {last}")
        time.sleep(0.5)


def _post(
    url: str, body: dict[str, Any], timeout: float, api_key: str | None = None
) -> dict[str, Any]:
    from stackctl.bench.client import EndpointError, post_json

    try:
        return post_json(url, body, timeout, api_key=api_key)
    except EndpointError as exc:
        raise ApplyError(f"request failed: {exc}") from None


BASE_PROMPT = "1, 2, 3, 4, 5,"
CHAT_PROMPT = "Count from 1 to 10, separated by commas."


def smoke_test(
    base_url: str, *, model: str, kind: str, max_tokens: int = 32, api_key: str | None = None
) -> SmokeResult:
    """One real request: a chat for instruct models, a plain completion for base models."""
    if kind == "instruct":
        endpoint, prompt = "/v1/chat/completions", CHAT_PROMPT
        body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}]}
    else:
        endpoint, prompt = "/v1/completions", BASE_PROMPT
        body = {"prompt": prompt}
    body.update(model=model, max_tokens=max_tokens, temperature=0, seed=0)
    payload = _post(base_url + endpoint, body, timeout=300, api_key=api_key)
    choice = payload["choices"][0]
    text = choice["message"]["content"] if kind == "instruct" else choice["text"]
    timings = payload.get("timings", {})
    usage = payload.get("usage", {})
    return SmokeResult(
        endpoint=endpoint,
        prompt=prompt,
        text=text,
        tokens=int(usage.get("completion_tokens", 0)),
        tg_tps=timings.get("predicted_per_second"),
        pp_tps=timings.get("prompt_per_second"),
    )
