"""Locate the data roots (catalog, stacks, roles, templates) in a checkout or an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIRS = ("catalog", "stacks", "roles", "templates")


def _is_data_root(path: Path) -> bool:
    return all((path / name).is_dir() for name in DATA_DIRS)


def data_root() -> Path:
    """The folder holding catalog/, stacks/, roles/ and templates/.

    Order: $STACKCTL_DATA, the source checkout this module lives in (editable installs), then the
    copy packaged into the wheel as stackctl/_data.
    """
    override = os.environ.get("STACKCTL_DATA")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    checkout = here.parent.parent
    if _is_data_root(checkout):
        return checkout
    return here / "_data"


def catalog_dir() -> Path:
    return data_root() / "catalog"


def stacks_dir() -> Path:
    return data_root() / "stacks"


def roles_dir() -> Path:
    return data_root() / "roles"


def templates_dir() -> Path:
    return data_root() / "templates"
