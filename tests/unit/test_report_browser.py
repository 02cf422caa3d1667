"""The HTML report in a real headless browser (Debian's chromium): one chart per host with
both series, and a screenshot that is not blank. The results are recorded bench runs."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from stackctl.bench.models import StoredResult
from stackctl.bench.store import add_results, open_store
from stackctl.cli import main

DATA = Path(__file__).resolve().parent.parent / "data" / "bench"
RECORDED = sorted(DATA.glob("stored-*.jsonl"))


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is missing: scripts/bootstrap.sh installs it"
    return found


def _browser(*args: str, cwd: Path) -> str:
    argv = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        f"--user-data-dir={cwd / 'profile'}",
        *args,
    ]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """(width, height, raw scanlines) of a PNG, from its IHDR and IDAT chunks."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", (0, 0)
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return size[0], size[1], zlib.decompress(idat)


@pytest.fixture
def report(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, set[str]]:
    monkeypatch.setenv("XDG_DATA_HOME", str(in_tmp / "xdg"))
    rows = [
        StoredResult.model_validate_json(line)
        for path in RECORDED
        for line in path.read_text().splitlines()
    ]
    with open_store() as conn:
        add_results(conn, rows)
    assert main(["report", "-o", "report.html"]) == 0
    hosts = {r.row.hardware.key for r in rows if r.kind == "measured" and r.row.hardware.key}
    return in_tmp / "report.html", hosts


def test_report_has_one_chart_per_host_with_both_series(report: tuple[Path, set[str]]) -> None:
    page, hosts = report
    html = page.read_text()
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # offline
    dom = _browser("--dump-dom", page.as_uri(), cwd=page.parent)
    charts = dom.count('<svg class="chart"')
    assert charts == len(hosts) >= 1
    for host in hosts:
        chart = dom.split(f'data-host="{host}"', 1)[1].split("</svg>", 1)[0]
        for series in ("predicted", "measured"):
            part = chart.split(f'data-series="{series}"', 1)[1].split("</g>", 1)[0]
            assert part.count("<circle") >= 2, f"{host}: {series} has fewer than two points"


def test_report_screenshot_is_not_blank(report: tuple[Path, set[str]]) -> None:
    page, _hosts = report
    shot = page.parent / "shot.png"
    _browser(f"--screenshot={shot}", "--window-size=1200,900", page.as_uri(), cwd=page.parent)
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1200, 900)
    distinct = len({pixels[i : i + 3] for i in range(0, len(pixels) - 3, 97)})
    assert distinct > 20, f"the screenshot looks blank ({distinct} distinct samples)"
