"""apply's guard rails, kept out of apply_cmd: the state lock, the apply log, preflight, and
rolling an upgrade back when the new service fails health or the output check."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

from stackctl.applylog import ApplyLog
from stackctl.cli.output import info
from stackctl.errors import ApplyError, PreflightError, StackctlError
from stackctl.layout import host_layout
from stackctl.models.apply import LOG_LINE
from stackctl.models.lock import Lockfile
from stackctl.preflight import preflight
from stackctl.service import service_status
from stackctl.state import applied_lock, apply_log_path, state_lock

if TYPE_CHECKING:
    from stackctl.bench.models import CheckReport


@contextmanager
def apply_session(purpose: str) -> Iterator[ApplyLog]:
    """The state dir's lock and a fresh apply log for one apply or rollback."""
    with state_lock(purpose):
        log = ApplyLog(apply_log_path(), f"stackctl {purpose}")
        try:
            yield log
        except StackctlError as exc:
            for line in exc.details:
                log.write(f"  {line}")
            log.close(f"FAILED error[{exc.code}]: {exc.message}")
            raise
        except BaseException as exc:
            log.close(f"ABORTED: {type(exc).__name__} {exc}")
            raise
        log.close("DONE")


def both(*handlers: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def handle(event: dict[str, Any]) -> None:
        for handler in handlers:
            handler(event)

    return handle


def check_box(lock: Lockfile, log: ApplyLog) -> None:
    """Preflight: refuse with every problem before anything on the box changes."""
    status = service_status(lock)
    ours = status.running and status.healthy  # our server answering on this lock's port
    problems = preflight(lock, host_layout(), running_pid=status.pid, ours_running=ours)
    for problem in problems:
        log.write(f"preflight: {problem}")
    if problems:
        raise PreflightError(
            f"this box cannot take {lock.resolved.stack} yet ({len(problems)} problem(s))",
            details=problems,
        )


def verify_or_roll_back(lock: Lockfile, log: ApplyLog, *, check: bool = True) -> CheckReport | None:
    """After an upgrade: health and (unless `check` is off) the output check, whose report
    comes back; on failure, back to the previous lock."""
    from stackctl.rollback import verify_upgrade

    try:
        return verify_upgrade(lock, check=check)
    except StackctlError as exc:
        previous = applied_lock()
        if previous is None or previous == lock:
            raise
        _roll_back(previous, log, exc)


def previous_serving() -> Lockfile | None:
    """The lock this box applied last, when its service answers now (asked before an upgrade)."""
    previous = applied_lock()
    return previous if previous is not None and service_status(previous).healthy else None


def roll_back_if_down(
    lock: Lockfile, serving: Lockfile | None, log: ApplyLog, failure: StackctlError
) -> None:
    """An upgrade whose playbook failed: when the lock that served before it (`serving`, from
    previous_serving()) no longer answers, the new server was started and never became healthy:
    run the previous one again. A failure before the service changed (a build, a download)
    leaves it answering, and a service that was down before (stopped by hand) stays down.
    """
    if serving is None or serving == lock or service_status(serving).healthy:
        return
    _roll_back(serving, log, failure)


def _roll_back(previous: Lockfile, log: ApplyLog, exc: StackctlError) -> NoReturn:
    from stackctl.rollback import redeploy

    tasks = [d for d in exc.details if not d.startswith(LOG_LINE)]  # not the log lines
    reason = "; ".join([exc.message, *tasks[-2:]])
    info(f"the new service failed ({reason}); rolling back to the previous lock")
    log.write(f"upgrade failed: {reason}; rolling back")
    redeploy(previous, log.on_event, {})
    raise ApplyError(
        f"the upgrade failed and was rolled back: {exc.message}",
        details=exc.details,
        hint="the previous service runs again; `stackctl logs --apply` has the details",
    ) from None
