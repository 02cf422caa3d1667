"""Typed errors. Stages raise these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_STALE_LOCK = 3


@dataclass(frozen=True)
class SourceLoc:
    """A place in a user's file: 1-based line and column, when known."""

    path: Path
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = str(self.path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where


class StackctlError(Exception):
    """Base of every error the CLI reports without a traceback."""

    code = "stackctl-error"
    exit_code = EXIT_FAILED

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        source: SourceLoc | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.source = source
        self.details = details or []


class InputError(StackctlError):
    """Bad user input: a stack, profile, lockfile, bundle or argument."""

    code = "bad-input"
    exit_code = EXIT_BAD_INPUT


class SpecError(InputError):
    code = "spec-invalid"


class CatalogError(InputError):
    code = "catalog-invalid"


class HardwareError(InputError):
    code = "hardware-invalid"


class ResolutionError(InputError):
    code = "resolve-no-candidate"


class LockError(InputError):
    code = "lock-invalid"


class LockStaleError(StackctlError):
    code = "lock-stale"
    exit_code = EXIT_STALE_LOCK


class MirrorError(InputError):
    code = "mirror-missing-artefact"


class RenderError(StackctlError):
    code = "render-failed"


class ApplyError(StackctlError):
    code = "apply-failed"


class EstimateError(InputError):
    code = "estimate-invalid"


class ImageError(StackctlError):
    code = "image-failed"
