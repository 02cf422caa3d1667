"""The service role runs the server (supervised: no systemd in the container) and it answers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import testinfra.host


def _vars() -> Any:
    return json.loads(Path(os.environ["STACKCTL_MOLECULE_VARS"]).read_text(encoding="utf-8"))


def test_unit_and_command_line_are_installed(host: testinfra.host.Host) -> None:
    data = _vars()
    name, layout = data["stackctl_service"], data["stackctl_layout"]
    unit = host.file(f"{layout['unit_dir']}/{name}.service")
    assert unit.exists
    assert data["stackctl_server"]["argv"][0] in unit.content_string
    argv = json.loads(host.file(f"{layout['config_dir']}/{name}.argv.json").content_string)
    assert argv == data["stackctl_server"]["argv"]
    assert host.user(layout["service_user"]).exists


def test_server_runs_as_the_service_user_and_answers(host: testinfra.host.Host) -> None:
    data = _vars()
    owners = host.run(
        "for p in /proc/[0-9]*; do "
        '[ "$(cat $p/comm 2>/dev/null)" = llama-server ] && stat -c %U $p; done; true'
    )
    assert owners.stdout.split() == [data["stackctl_layout"]["service_user"]]
    port = data["stackctl_server"]["port"]
    health = host.run(
        "python3 -c 'import sys, urllib.request; sys.stdout.write(str(urllib.request.urlopen("
        f'"http://127.0.0.1:{port}/health").status))\''
    )
    assert health.stdout == "200"
