"""A failing Ansible task reports its own reason (exit code and stderr's last lines, the module's
msg, the HTTP status, the first failed loop item), through the real ansible-playbook and the
stackctl_events callback."""

from __future__ import annotations

import http.server
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stackctl.apply import run_playbook

PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: a command that fails
      ansible.builtin.shell: "echo noise >&2; echo 'mirror: checksum mismatch' >&2; exit 3"
      ignore_errors: true
    - name: an HTTP 404
      ansible.builtin.uri:
        url: "http://127.0.0.1:{port}/missing.gguf"
      ignore_errors: true
    - name: a name that does not resolve
      ansible.builtin.uri:
        url: "http://no-such-host.invalid/model.gguf"
        timeout: 5
      ignore_errors: true
    - name: a loop with one bad item
      ansible.builtin.command: "test -e {{{{ item }}}}"
      loop: ["/", "/no/such/path"]
"""


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def http_404() -> Iterator[int]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield int(server.server_address[1])
    server.shutdown()


def test_each_failure_shows_its_reason(tmp_path: Path, http_404: int) -> None:
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    localhost:\n      ansible_connection: local\n"
    )
    (tmp_path / "playbook.yml").write_text(PLAYBOOK.format(port=http_404))
    events: list[dict[str, Any]] = []
    result = run_playbook(
        tmp_path,
        "playbook.yml",
        extra_vars={"ansible_python_interpreter": sys.executable},
        on_event=events.append,
    )
    reasons = {
        e["task"]: e["reason"]
        for e in events
        if e.get("event") == "result" and e["status"] in ("ignored", "failed")
    }
    assert reasons["a command that fails"] == "exit 3: noise / mirror: checksum mismatch"
    assert reasons["an HTTP 404"].startswith("HTTP 404: Status code was 404")
    assert reasons["a name that does not resolve"].startswith("no HTTP response: ")
    assert "no-such-host.invalid" in reasons["a name that does not resolve"] or (
        "Name or service not known" in reasons["a name that does not resolve"]
    )
    # the failed item, then the loop task: both carry the item's own reason
    assert {t.task for t in result.failed_tasks} == {"a loop with one bad item"}
    assert all(t.message == "item /no/such/path: exit 1" for t in result.failed_tasks), (
        result.failed_tasks
    )
