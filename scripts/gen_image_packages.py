"""Pin the whole apt install closure of an image set in catalog/images.yaml.

The named packages (build_packages, run_packages) are pinned by hand; what apt pulls in for
them on the base is read here, from the archive itself: `apt-get install --simulate` in a
container of the base, whose `Inst NAME (VERSION ...)` lines list every package it would add.

    .venv/bin/python scripts/gen_image_packages.py --base localhost/stackctl-base:bookworm

Needs a Docker Engine and a base image without a registry (tests/support/base_image.py makes
one with debootstrap). Rewrites only the `*_dependencies` maps and `packages_source` of the set.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Quoted

CATALOG = Path(__file__).resolve().parents[1] / "catalog" / "images.yaml"
INST = re.compile(r"^Inst (\S+) \((\S+) ")


def closure(base: str, named: dict[str, str | None]) -> dict[str, Quoted]:
    wanted = [f"{n}={v}" if v else n for n, v in sorted(named.items())]
    script = (
        "apt-get update -qq >/dev/null && "
        'apt-get install --simulate --no-install-recommends -qq "$@"'
    )
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "host", base, "bash", "-c", script, "-", *wanted],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"apt-get --simulate failed on {base}:\n{done.stderr[-3000:]}")
    found = dict(m.groups() for line in done.stdout.splitlines() if (m := INST.match(line)))
    # quoted: a version such as 2.40 must not load as the number 2.4
    return {n: Quoted(v) for n, v in sorted(found.items()) if n not in named}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="a local image of the set's base")
    parser.add_argument("--key", default="cpu", help="the catalog/images.yaml set (default cpu)")
    args = parser.parse_args(argv)
    yaml = YAML()
    yaml.width = 200
    yaml.preserve_quotes = True
    data = yaml.load(CATALOG.read_text(encoding="utf-8"))
    entry = data["images"][args.key]
    for kind in ("build", "run"):
        entry[f"{kind}_dependencies"] = closure(args.base, dict(entry[f"{kind}_packages"]))
    today = datetime.now(UTC).date().isoformat()
    entry["packages_source"] = Quoted(
        f"Debian 12 bookworm main, apt-get install --simulate on a minbase ({today})"
    )
    entry["note"] = Quoted("the named packages and their whole install closure are pinned")
    with CATALOG.open("w", encoding="utf-8") as handle:
        yaml.dump(data, handle)
    counts = [len(entry[f"{k}_dependencies"]) for k in ("build", "run")]
    sys.stdout.write(f"{args.key}: pinned {counts[0]} build and {counts[1]} run dependencies\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
