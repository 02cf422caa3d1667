#!/usr/bin/python
"""Wait for the server's /health, and stop waiting as soon as the service is crash-looping
or has exited for good, with its restarts, last exit code and the last lines of its log.

Ansible copies this file to the managed host and runs it there, where stackctl is not
installed: it imports nothing from stackctl and stands alone (stdlib and Ansible only).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: stackctl_wait_health
short_description: Wait for a stackctl server's /health, failing fast when it crash-loops
description:
  - Polls C(url)/health once a second until it answers 200 or C(timeout) seconds pass.
  - Between polls it asks the service manager how the server fares and fails at once when
    the server is crash-looping or has exited and is not being restarted, with the restarts,
    the last exit code and the last lines of the server's log.
  - C(systemd) reads C(systemctl show); C(supervise) reads the state stackctl-supervise keeps
    beside its pid file; C(launchd) can only watch the job's pid in C(launchctl list).
options:
  url: {description: The server's base URL, without /health., type: str, required: true}
  timeout: {description: Seconds to wait for 200., type: int, default: 300}
  delay: {description: Seconds between polls., type: float, default: 1}
  service: {description: The service (systemd unit) name., type: str, required: true}
  manager:
    description: What runs the server.
    type: str
    choices: [systemd, supervise, launchd]
    required: true
  pid_file: {description: stackctl-supervise's pid file (manager supervise)., type: str}
  log_file: {description: The server's log (supervise and launchd)., type: str}
  launchd_label: {description: The launchd job's label (manager launchd)., type: str}
  log_lines: {description: How many log lines a failure shows., type: int, default: 20}
"""

RETURN = r"""
elapsed: {description: Seconds waited., type: float, returned: always}
restarts: {description: Restarts seen, where the manager tells., type: int, returned: failure}
last_exit: {description: The server's last exit code, where known., type: int, returned: failure}
log_tail: {description: The last lines of the server's log., type: list, returned: failure}
"""

# The two functions below are the wording stackctl's own wait uses (stackctl.service
# crash_reason and stopped_waiting). This file runs on the managed host where stackctl cannot
# be imported, so they are copied here; tests/unit/test_wait_health.py keeps both the same.
CRASH_LOOP_RESTARTS = 3  # stackctl-supervise's CRASH_LOOP_RUNS: three short runs in a row


def crash_reason(service, crash_loop, restarts, last_exit, where):
    what = "is crash-looping" if crash_loop else "exited and is not being restarted"
    count = "unknown" if restarts is None else str(restarts)
    code = "unknown" if last_exit is None else str(last_exit)
    return f"{service} {what} (restarts: {count}, last exit code: {code}); its log: {where}"


def stopped_waiting(url, waited, reason):
    return f"stopped waiting for {url}/health after {waited:.0f}s: {reason}"


class GaveUp(Exception):
    """The wait is over without a 200: message is one line, log_tail the log's last lines."""

    def __init__(self, message, log_tail=(), restarts=None, last_exit=None):
        super().__init__(message)
        self.message = message
        self.log_tail = list(log_tail)
        self.restarts = restarts
        self.last_exit = last_exit


def healthy(url):
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200, "HTTP 200"
    except urllib.error.HTTPError as exc:
        return False, f"HTTP {exc.code}"
    except OSError as exc:
        return False, str(getattr(exc, "reason", exc))


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _int(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def file_tail(path, lines):
    try:
        with Path(path).open("rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 64 * 1024))
            text = log.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:300] for line in text.splitlines()[-lines:]]


def journal_tail(service, lines):
    try:
        shown = subprocess.run(
            ["journalctl", "-u", service, "-n", str(lines), "-o", "cat", "--no-pager"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line[:300] for line in shown.stdout.splitlines()[-lines:]]


def supervise_state(pid_file):
    """stackctl-supervise's state, or None when the supervisor is not running."""
    try:
        pid = int(Path(pid_file).read_text().strip())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        state = json.loads(Path(f"{pid_file}.json").read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def systemd_state(service):
    try:
        shown = subprocess.run(
            ["systemctl", "show", "--property=NRestarts,ExecMainStatus,ActiveState", service],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if shown.returncode != 0:
        return None
    return dict(line.partition("=")[::2] for line in shown.stdout.splitlines())


def launchd_row(label):
    """(pid or None, last exit status or None) from `launchctl list`'s three columns, PID,
    Status and Label (launchctl(1)); None when the job is not listed."""
    try:
        listed = subprocess.run(
            ["launchctl", "list"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in listed.stdout.splitlines():
        words = line.split()
        if len(words) == 3 and words[2] == label:
            pid, status = (int(w) if w.lstrip("-").isdigit() else None for w in words[:2])
            return pid, status
    return None


class Watch:
    """Asked between polls: a GaveUp when the service will not come up, else None."""

    def __init__(self, params):
        self.p = params
        self.first_restarts = None
        self.pids_seen = []
        self.deaths = 0

    def check(self):
        manager = self.p["manager"]
        if manager == "supervise":
            return self._supervise()
        if manager == "systemd":
            return self._systemd()
        return self._launchd()

    def _fail(self, crash_loop, restarts, last_exit, where, tail):
        reason = crash_reason(self.p["service"], crash_loop, restarts, last_exit, where)
        return GaveUp(reason, tail, restarts, last_exit)

    def _supervise(self):
        log = self.p["log_file"]
        state = supervise_state(self.p["pid_file"])
        lines = self.p["log_lines"]
        if state is None:
            return self._fail(False, None, None, log, file_tail(log, lines))
        if state.get("crash_loop") is True:
            restarts, last_exit = _int(state.get("restarts")), _int(state.get("last_exit"))
            return self._fail(True, restarts, last_exit, log, file_tail(log, lines))
        return None

    def _systemd(self):
        service = self.p["service"]
        fields = systemd_state(service)
        if fields is None:
            return None  # no answer from systemctl: nothing known, keep polling
        restarts = int(fields["NRestarts"]) if fields.get("NRestarts", "").isdigit() else None
        code = fields.get("ExecMainStatus", "")
        last_exit = int(code) if code.isdigit() else None
        if self.first_restarts is None:
            self.first_restarts = restarts or 0
        looping = restarts is not None and restarts - self.first_restarts >= CRASH_LOOP_RESTARTS
        exited = fields.get("ActiveState") in ("failed", "inactive")
        if looping or exited:
            where = f"journalctl -u {service}"
            tail = journal_tail(service, self.p["log_lines"])
            return self._fail(looping, restarts, last_exit, where, tail)
        return None

    def _launchd(self):
        row = launchd_row(self.p["launchd_label"])
        if row is None:
            return None
        pid, status = row
        if self.pids_seen and self.pids_seen[-1] is not None and pid != self.pids_seen[-1]:
            self.deaths += 1  # the pid we saw is gone: the job died (launchd restarts it)
        self.pids_seen.append(pid)
        if self.deaths >= CRASH_LOOP_RESTARTS:
            log = self.p["log_file"]
            return self._fail(True, self.deaths, status, log, file_tail(log, self.p["log_lines"]))
        return None


def wait_for_health(url, timeout, watch, delay=1.0):
    """Poll url/health until 200 (returns the seconds waited) or raise GaveUp: at once when
    `watch()` reports the service will not come up, or after `timeout` seconds."""
    started = time.monotonic()
    last = "no answer"
    while True:
        ok, last = healthy(url)
        if ok:
            return time.monotonic() - started
        waited = time.monotonic() - started
        gave_up = watch()
        if gave_up is not None:
            gave_up.message = stopped_waiting(url, waited, gave_up.message)
            raise gave_up
        if waited >= timeout:
            raise GaveUp(stopped_waiting(url, waited, f"no 200 within {timeout}s ({last})"))
        time.sleep(delay)


def main():
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 300},
            "delay": {"type": "float", "default": 1.0},
            "service": {"type": "str", "required": True},
            "manager": {
                "type": "str",
                "required": True,
                "choices": ["systemd", "supervise", "launchd"],
            },
            "pid_file": {"type": "str"},
            "log_file": {"type": "str"},
            "launchd_label": {"type": "str"},
            "log_lines": {"type": "int", "default": 20},
        },
        required_if=[
            ("manager", "supervise", ("pid_file", "log_file")),
            ("manager", "launchd", ("launchd_label", "log_file")),
        ],
        supports_check_mode=True,
    )
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, msg="check mode: no wait for the server")
    params = module.params
    try:
        elapsed = wait_for_health(
            params["url"], params["timeout"], Watch(params).check, params["delay"]
        )
    except GaveUp as exc:
        module.fail_json(
            msg="\n".join([exc.message, *exc.log_tail]),
            log_tail=exc.log_tail,
            restarts=exc.restarts,
            last_exit=exc.last_exit,
        )
    module.exit_json(changed=False, elapsed=round(elapsed, 1))


if __name__ == "__main__":
    main()
