"""Quote values for the context they land in. Every template value goes through one of these."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from stackctl.errors import RenderError
from stackctl.yamlio import dump_yaml


def shell_quote(value: object) -> str:
    return shlex.quote(str(value))


_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _c_escape(text: str) -> str:
    out = []
    for char in text:
        if char in _C_ESCAPES:
            out.append(_C_ESCAPES[char])
        elif ord(char) < 32 or char == "\x7f":
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
    return "".join(out)


def systemd_quote(value: object) -> str:
    """One ExecStart= word: double-quoted, C escapes, `%` specifiers and `$` expansion disabled."""
    escaped = _c_escape(str(value)).replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def systemd_env(value: object) -> str:
    """One Environment= assignment: quoted, C escapes, `%` doubled (no `$` expansion there)."""
    return '"' + _c_escape(str(value)).replace("%", "%%") + '"'


def systemd_value(value: object) -> str:
    """A single-line unit setting value (Description=, paths): no newlines, no specifiers."""
    text = "".join(" " if ord(c) < 32 or c == "\x7f" else c for c in str(value))
    text = text.replace("%", "%%")
    return text + " " if text.endswith("\\") else text


def docker_env_key(value: object) -> str:
    text = str(value)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
        raise RenderError(f"environment variable name {text!r} is not a plain identifier")
    return text


def docker_env(value: object) -> str:
    """A Containerfile ENV value: double-quoted, `$` not expanded; one line only."""
    text = str(value)
    if any(ord(c) < 32 or c == "\x7f" for c in text):
        raise RenderError(f"environment value {text!r} has control characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def json_quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_yaml(value: Any) -> str:
    from stackctl.yamlparse import new_map

    def commented(data: Any) -> Any:
        if isinstance(data, dict):
            out = new_map()
            for key, item in data.items():
                out[key] = commented(item)
            return out
        if isinstance(data, list | tuple):
            return [commented(item) for item in data]
        return data

    return dump_yaml(commented(value))
