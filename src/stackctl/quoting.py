"""Quote values for the context they land in. Every template value goes through one of these."""

from __future__ import annotations

import json
import shlex
from typing import Any

from ruamel.yaml.comments import CommentedMap

from stackctl.yamlio import dump_yaml


def shell_quote(value: object) -> str:
    return shlex.quote(str(value))


def systemd_quote(value: object) -> str:
    """One ExecStart= word: double-quoted, C escapes, `%` specifiers and `$` expansion disabled."""
    text = str(value)
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("%", "%%")
        .replace("$", "$$")
    )
    return f'"{escaped}"'


def systemd_value(value: object) -> str:
    """A single-line unit setting value (Description=, paths): no newlines, no specifiers."""
    text = str(value).replace("\n", " ").replace("\r", " ")
    return text.replace("%", "%%")


def json_quote(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_yaml(value: Any) -> str:
    def commented(data: Any) -> Any:
        if isinstance(data, dict):
            out = CommentedMap()
            for key, item in data.items():
                out[key] = commented(item)
            return out
        if isinstance(data, list | tuple):
            return [commented(item) for item in data]
        return data

    return dump_yaml(commented(value))
