"""The registry of subcommand modules, in the order `--help` lists them."""

from __future__ import annotations

from types import ModuleType

MODULES: list[ModuleType] = []
