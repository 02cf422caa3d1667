"""`apply -i`: every host's lock (reused when fresh), one rendered run, one ansible-playbook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackctl.fleet.inventory import limit_hosts, read_inventory
from stackctl.fleet.plan import PlannedHost, existing_or_fresh, plan_fleet
from stackctl.fleet.run import EventLog, fleet_run_dir, make_keys_dir, outcomes, render_fleet
from stackctl.lock import fill_fetched_pins, write_lockfile
from stackctl.models.apply import PlaybookResult
from stackctl.models.fleet import HostOutcome


@dataclass(frozen=True)
class FleetOptions:
    inventory: Path
    limit: list[str] | None = None
    forks: int | None = None
    serial: int | None = None
    check: bool = False
    relock: bool = False
    mirror: Path | None = None


@dataclass(frozen=True)
class FleetRun:
    planned: list[PlannedHost]
    outcomes: list[HostOutcome]
    result: PlaybookResult | None
    run_dir: Path
    events: EventLog
    written: list[Path]

    @property
    def failed(self) -> list[str]:
        return [o.host for o in self.outcomes if o.status not in ("ok", "changed")]


def rerun_command(options: FleetOptions, hosts: list[str]) -> str:
    words = ["stackctl", "apply", "-i", str(options.inventory), "--limit", ",".join(hosts)]
    if options.check:
        words.append("--check")
    return " ".join(words)


def _limit(options: FleetOptions) -> set[str] | None:
    if not options.limit:
        return None
    return limit_hosts(options.inventory, ",".join(options.limit))


def deploy_fleet(
    options: FleetOptions, *, on_event: Callable[[dict[str, Any]], None] = lambda _e: None
) -> FleetRun:
    from stackctl.apply import run_playbook

    inventory = read_inventory(options.inventory)
    limit = _limit(options)
    # The run folder holds every host (a --limit rerun must not drop the others' files);
    # only the limited hosts run, are locked and are reported.
    every = plan_fleet(inventory, source=existing_or_fresh(options.relock))
    planned = [p for p in every if limit is None or p.host.name in limit]
    run_dir, errors = render_fleet(
        every,
        fleet_run_dir(options.inventory),
        inventory=options.inventory,
        mirror=options.mirror,
        serial=options.serial,
    )
    ready = [p for p in planned if p.lock is not None and p.host.name not in errors]
    written = []
    if not options.check:
        for host in ready:
            assert host.lock is not None
            if not host.lock_path.is_file():
                write_lockfile(host.lock, host.lock_path)
                written.append(host.lock_path)
    events = EventLog(forward=on_event)
    result = None
    if ready:
        args = ["--limit", ",".join(p.host.name for p in ready)]
        if options.forks:
            args += ["--forks", str(options.forks)]
        keys = (
            {} if options.check else {"stackctl_fleet_keys": str(make_keys_dir(options.inventory))}
        )
        result = run_playbook(
            run_dir,
            "playbook.yml",
            extra_vars=keys,
            check=options.check,
            on_event=events.on_event,
            inventory=options.inventory,
            extra_args=args,
        )
    if result is not None and not options.check:
        written += record_fetched(ready, result, f"inventory {options.inventory.stem}")
    return FleetRun(planned, outcomes(planned, result, errors), result, run_dir, events, written)


def record_fetched(ready: list[PlannedHost], result: PlaybookResult, origin: str) -> list[Path]:
    """Pins unknown offline take each host's first-fetch sha256 into that host's own lock. The
    origin names the inventory, not the host, so identical hosts keep identical locks."""
    rewritten = []
    for host in ready:
        fetched = result.fetched_by_host.get(host.host.name)
        if host.lock is None or not fetched:
            continue
        filled = fill_fetched_pins(host.lock, fetched, host=origin)
        if filled != host.lock:
            write_lockfile(filled, host.lock_path)
            rewritten.append(host.lock_path)
    return rewritten
