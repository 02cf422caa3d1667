"""Hostile values through every renderer: each output still parses and keeps the value whole.

Values land in a shell line (README), unit files (ExecStart=, Environment=, Description=),
YAML (group_vars, compose), plist XML, a quadlet and a Containerfile (COPY, ENV, ENTRYPOINT).
"""

from __future__ import annotations

import json
import plistlib
import shlex
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from stackctl.errors import RenderError
from stackctl.models.lock import Lockfile
from stackctl.render import make_environment, render_stack
from stackctl.resources import templates_dir
from tests.support.render_cases import BY_NAME, golden_lock

HOSTILE = st.text(
    alphabet=st.sampled_from(list("aZ09 -_.'\"\\$`()%;&|<>{}[]#*?!~\n\r\t=:,@ü€𝄞\x01\x7f")),
    min_size=1,
    max_size=24,
)
FILE = HOSTILE.filter(lambda s: "/" not in s and s.strip(".") != "").map(lambda s: s + ".gguf")
NO_ROLES = Path(tempfile.mkdtemp(prefix="stackctl-no-roles-"))
ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"'}


def systemd_words(line: str, *, dollar: bool = True) -> list[str]:
    """Split a systemd command line the way systemd does for fully quoted words; Environment=
    does no `$` expansion (dollar=False)."""
    words, i = [], 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        assert line[i] == '"', line[i:]
        i += 1
        buf = []
        while line[i] != '"':
            char = line[i]
            if char == "\\":
                nxt = line[i + 1]
                if nxt == "x":
                    buf.append(chr(int(line[i + 2 : i + 4], 16)))
                    i += 4
                    continue
                buf.append(ESCAPES[nxt])
                i += 2
                continue
            if char == "%" or (dollar and char == "$"):
                assert line[i + 1] == char, "specifier or variable left unescaped"
                i += 1
            buf.append(char)
            i += 1
        words.append("".join(buf))
        i += 1
    return words


def _hostile_lock(base: Lockfile, name: str, file: str, arg: str, env: str) -> Lockfile:
    r = base.resolved
    artefact = r.model.artefact.model_copy(update={"file": file, "url": f"https://x/{file}"})
    return base.model_copy(
        update={
            "resolved": r.model_copy(
                update={
                    "model": r.model.model_copy(update={"id": name, "artefact": artefact}),
                    "runtime": r.runtime.model_copy(
                        update={"server_args": [*r.runtime.server_args, "--alias", arg]}
                    ),
                    "requirements": r.requirements.model_copy(update={"env": {"STACKCTL_X": env}}),
                }
            )
        }
    )


def _render(lock: Lockfile) -> dict[str, str]:
    """Without the static roles (copied verbatim; no value reaches them): fast enough to fuzz."""
    files = render_stack(
        lock, make_environment(templates_dir()), roles=NO_ROLES, lock_name="lockfiles/x.lock"
    )
    return {f.path: f.content for f in files if not f.path.startswith("roles/")}


def _lines(text: str, key: str) -> list[str]:
    return [ln.removeprefix(key) for ln in text.splitlines() if ln.startswith(key)]


def _check_linux(out: dict[str, str], argv: list[str], env: str, file: str) -> None:
    unit = out["files/stackctl-tiny-cpu.service"]
    assert systemd_words(_lines(unit, "ExecStart=")[0]) == argv
    assert systemd_words(_lines(unit, "Environment=")[0], dollar=False) == [f"STACKCTL_X={env}"]
    assert len(_lines(unit, "Description=")) == 1
    quadlet = out["files/stackctl-tiny-cpu.container"]
    assert systemd_words(_lines(quadlet, "Environment=")[0], dollar=False) == [f"STACKCTL_X={env}"]
    compose: Any = YAML(typ="safe").load(out["compose.yaml"])
    assert compose["services"]["stackctl-tiny-cpu"]["environment"] == {"STACKCTL_X": env}
    containerfile = out["Containerfile"]
    entrypoint = json.loads(_lines(containerfile, "ENTRYPOINT ")[0])
    assert entrypoint[-5] == argv[-1]  # then --host 0.0.0.0 --api-key-file PATH
    copies = [json.loads(c) for c in _lines(containerfile, "COPY ") if c.startswith("[")]
    assert [file, f"/models/{file}"] in copies
    value = _lines(containerfile, "ENV STACKCTL_X=")[0]
    assert value[0] == value[-1] == '"'
    unescaped = value[1:-1].replace("\\\\", "\0").replace('\\"', '"').replace("\\$", "$")
    assert unescaped.replace("\0", "\\") == env


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=HOSTILE, file=FILE, arg=HOSTILE, env=HOSTILE)
def test_hostile_values_stay_one_literal_in_every_output(
    name: str, file: str, arg: str, env: str
) -> None:
    lock = _hostile_lock(golden_lock(BY_NAME["cpu-x86"]), name, file, arg, env)
    if any(ord(c) < 32 or c == "\x7f" for c in env):
        # a Containerfile ENV cannot carry control characters: refusing is the safe outcome
        with pytest.raises(RenderError, match="control characters"):
            _render(lock)
        return
    out = _render(lock)
    variables: Any = YAML(typ="safe").load(out["group_vars/all/stackctl.yml"])
    argv = variables["stackctl_server"]["argv"]
    assert argv[-1] == arg
    assert variables["stackctl_model"]["id"] == name
    assert json.loads(out["files/stackctl-tiny-cpu.argv.json"]) == argv
    shell_line = out["README.md"].split("```sh\n")[-1].split("\n```")[0]
    assert shlex.split(shell_line) == argv
    _check_linux(out, argv, env, file)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=HOSTILE, file=FILE, arg=HOSTILE, env=HOSTILE)
def test_hostile_values_stay_one_literal_in_plists(
    name: str, file: str, arg: str, env: str
) -> None:
    base = golden_lock(BY_NAME["mac-studio-m3-ultra"])

    def xml(text: str) -> str:  # XML 1.0 carries no \x01, and parsers normalise \r
        return "".join(c for c in text if c not in "\x01\r") or "x"

    ok_env, hostile_arg = xml(env), xml(arg)
    out = _render(_hostile_lock(base, xml(name), xml(file), hostile_arg, ok_env))
    job = plistlib.loads(out["files/stackctl-default.plist"].encode())
    assert job["ProgramArguments"][-1] == hostile_arg
    assert job["EnvironmentVariables"] == {"STACKCTL_X": ok_env}


def test_plist_refuses_what_xml_cannot_carry() -> None:
    base = golden_lock(BY_NAME["mac-studio-m3-ultra"])
    with pytest.raises(RenderError, match="plist"):
        _render(_hostile_lock(base, "m", "m.gguf", "a\x01b", "x"))
