"""Going back to the previous lock's working service, by hand or when an upgrade fails health.

The previous lock's engine and model are still on the box (engines are keyed by build key,
models by sha256), so re-running its playbook converges without a build or a download.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from stackctl.apply import EventHandler, run_playbook, wait_for_health
from stackctl.errors import ApplyError
from stackctl.layout import host_layout
from stackctl.models.lock import Lockfile
from stackctl.pipeline import render_lock
from stackctl.service import CrashWatch, base_url, local_api_key
from stackctl.state import CURRENT, applied_dir, record_applied, rendered_dir

if TYPE_CHECKING:
    from stackctl.bench.models import CheckReport


def verify_upgrade(lock: Lockfile, *, check: bool = True) -> CheckReport | None:
    """Health, then the output check unless `check` is off; raises ApplyError on either
    failing. The passing report comes back, so that apply keeps it instead of asking again."""
    url = base_url(lock)
    wait_for_health(url, timeout=120, give_up=CrashWatch(lock))
    if not check:
        return None
    from stackctl.bench.check_output import check_deployed

    report = check_deployed(lock, url, local_api_key(lock))
    if not report.passed:
        failed = [f"{c.name}: {c.reason}" for c in report.cases if not c.passed]
        raise ApplyError(f"check-output failed on {url}", details=failed)
    return report


def redeploy(lock: Lockfile, on_event: EventHandler, extra_vars: dict[str, Any]) -> None:
    """Render `lock` into the state dir and run its playbook; the service answers after."""
    lock_path = applied_dir() / CURRENT
    tree = render_lock(lock, lock_path, rendered_dir(lock), host_layout())
    result = run_playbook(
        tree,
        "playbook.yml",
        extra_vars={"ansible_python_interpreter": sys.executable, **extra_vars},
        on_event=on_event,
    )
    if result.failed:
        raise ApplyError(
            "redeploying the previous lock failed",
            details=result.failure_details(),
        )
    wait_for_health(base_url(lock), timeout=120, give_up=CrashWatch(lock))
    record_applied(lock, lock_path=lock_path, tree=tree)
