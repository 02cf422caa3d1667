"""Typed errors. Stages raise these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_STALE_LOCK = 3
EXIT_SIGPIPE = 141  # 128 + SIGPIPE, as a shell reports a command whose reader closed the pipe


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
    # What to try when the raiser knows nothing more specific; every error shows a hint.
    default_hint = "rerun with --debug for the details, and report it if it looks like a bug"

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        source: SourceLoc | None = None,
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = " ".join(message.split("\n"))  # one line: details go in `details`
        self.hint = hint or self.default_hint
        self.source = source
        self.details = details or []


class InputError(StackctlError):
    """Bad user input: a stack, profile, lockfile, bundle or argument."""

    code = "bad-input"
    default_hint = "check the file and line named above"
    exit_code = EXIT_BAD_INPUT


class SpecError(InputError):
    code = "spec-invalid"
    default_hint = "see stacks/*.yaml for valid stack files"


class CatalogError(InputError):
    code = "catalog-invalid"
    default_hint = "the shipped catalog is damaged: reinstall stackctl or revert the edit"


class HardwareError(InputError):
    code = "hardware-invalid"
    default_hint = "`stackctl detect --json` shows what a profile holds"


class ResolutionError(InputError):
    code = "resolve-no-candidate"
    default_hint = "relax the stack (context, users, speed floor) or add hardware"


class LockError(InputError):
    code = "lock-invalid"
    default_hint = "regenerate it with `stackctl lock`"


class LockStaleError(StackctlError):
    code = "lock-stale"
    default_hint = "re-resolve with `stackctl lock` (or `apply --relock`)"
    exit_code = EXIT_STALE_LOCK


class MirrorError(InputError):
    code = "mirror-missing-artefact"
    default_hint = "fill the mirror, or apply without --mirror to download"


class RenderError(StackctlError):
    code = "render-failed"
    default_hint = "check the path is writable and the disk has space"


class ApplyError(StackctlError):
    code = "apply-failed"
    default_hint = "`stackctl logs --apply` shows the full apply log"


class EstimateError(InputError):
    code = "estimate-invalid"
    default_hint = "check the model file and the estimate arguments"


class PreflightError(StackctlError):
    """The box cannot take the stack; `details` holds one line per problem."""

    code = "preflight-failed"
    default_hint = "fix each problem listed, then apply again (nothing was changed)"


class StateBusyError(StackctlError):
    code = "state-busy"
    default_hint = "another stackctl apply/rollback holds the state lock; wait for it to finish"


class NotDeployedError(StackctlError):
    code = "not-deployed"
    default_hint = "apply a stack on this box first, or name its lockfile with --lock"


class DiskFullError(StackctlError):
    code = "disk-full"
    default_hint = "free space on that filesystem (or point the path elsewhere) and rerun"


class ImageError(StackctlError):
    code = "image-failed"
    default_hint = "see the engine's output above; base and toolchain images stay for a rerun"
