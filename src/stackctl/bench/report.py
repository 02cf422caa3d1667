"""`report`: one self-contained HTML page (inline SVG, no scripts, no network) and a table.

One chart per host: decode tok/s across context depth, predicted and measured, from the
host's latest bench run; then the sweeps and the latest check-output per lock.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from html import escape

from stackctl.bench.models import CheckReport, StoredResult, Tuning

WIDTH, HEIGHT, PAD = 560, 300, 48
COLOURS = {"predicted": "#1f6fd1", "measured": "#d1491f"}


@dataclass(frozen=True)
class HostSeries:
    host: str
    model: str
    date: str
    predicted: list[tuple[int, float]]
    measured: list[tuple[int, float]]


def _x(r: StoredResult) -> int:
    """Where a row sits on the depth axis: decode at its depth, prefill at its prompt length."""
    return r.row.depth if r.row.test == "tg" else r.row.n_prompt


def host_series(results: list[StoredResult], test: str = "tg") -> list[HostSeries]:
    """Each host's latest measured run: (depth, tok/s) for both series, one client."""
    by_host: dict[str, list[StoredResult]] = defaultdict(list)
    for r in results:
        if r.kind == "measured" and r.clients == 1 and r.row.test == test and r.row.hardware.key:
            by_host[r.row.hardware.key].append(r)
    out = []
    for host, rows in sorted(by_host.items()):
        latest = max(r.date for r in rows)
        last = sorted((r for r in rows if r.date == latest), key=lambda r: r.row.depth)
        out.append(
            HostSeries(
                host=host,
                model=f"{last[0].row.model} {last[0].row.quant}",
                date=latest,
                predicted=[(_x(r), r.predicted_tps) for r in last if r.predicted_tps],
                measured=[(_x(r), r.row.tps) for r in last],
            )
        )
    return out


def _ticks(top: float, n: int = 5) -> list[float]:
    step = top / n
    return [step * i for i in range(n + 1)]


def chart_svg(s: HostSeries) -> str:
    points = s.predicted + s.measured
    max_x = max((x for x, _ in points), default=1) or 1
    max_y = max((y for _, y in points), default=1) * 1.15 or 1

    def xy(x: float, y: float) -> tuple[float, float]:
        return (PAD + x / max_x * (WIDTH - 2 * PAD), HEIGHT - PAD - y / max_y * (HEIGHT - 2 * PAD))

    parts = [
        f'<svg class="chart" data-host="{escape(s.host)}" xmlns="http://www.w3.org/2000/svg" '
        f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#fff"/>',
        f'<text x="{PAD}" y="20" font-size="14">{escape(s.host)}: {escape(s.model)}</text>',
    ]
    for y in _ticks(max_y):
        _, py = xy(0, y)
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{py:.1f}" y2="{py:.1f}" '
            f'stroke="#ddd"/><text x="{PAD - 6}" y="{py + 4:.1f}" font-size="10" '
            f'text-anchor="end">{y:.0f}</text>'
        )
    for x in sorted({x for x, _ in points}):
        px, _ = xy(x, 0)
        parts.append(
            f'<text x="{px:.1f}" y="{HEIGHT - PAD + 14}" font-size="10" '
            f'text-anchor="middle">{x}</text>'
        )
    parts.append(
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" font-size="11" text-anchor="middle">'
        "context depth (tokens)</text>"
    )
    parts.append(
        f'<text x="12" y="{HEIGHT / 2}" font-size="11" transform="rotate(-90 12 '
        f'{HEIGHT / 2})" text-anchor="middle">decode tok/s</text>'
    )
    for i, (name, series) in enumerate((("predicted", s.predicted), ("measured", s.measured))):
        colour = COLOURS[name]
        coords = [xy(x, y) for x, y in series]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in coords)
        parts.append(f'<g class="series" data-series="{name}">')
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="3"/>')
        parts += [
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5" fill="{colour}"/>' for px, py in coords
        ]
        parts.append("</g>")
        lx = WIDTH - PAD - 110
        parts.append(
            f'<rect x="{lx}" y="{30 + 18 * i}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{lx + 18}" y="{40 + 18 * i}" font-size="12">{name}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _error(measured: float, predicted: float | None) -> str:
    return f"{(predicted - measured) / measured:+.0%}" if predicted else "n/a"


def summary_rows(results: list[StoredResult]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.kind != "measured":
            continue
        rows.append(
            [
                r.row.hardware.key or "?",
                f"{r.row.model} {r.row.quant}",
                r.row.test,
                str(r.row.depth if r.row.test == "tg" else r.row.n_prompt),
                str(r.clients),
                f"{r.row.tps:.1f}",
                f"{r.predicted_tps:.1f}" if r.predicted_tps else "n/a",
                _error(r.row.tps, r.predicted_tps),
                "partial" if r.partial else "",
            ]
        )
    return rows


SUMMARY_HEAD = ["host", "model", "test", "depth", "clients", "measured", "predicted", "error", ""]


def terminal_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _sweep_rows(sweeps: list[Tuning]) -> list[list[str]]:
    rows = []
    for t in sweeps:
        for c in t.candidates:
            flags = ", ".join(f"{k}={v}" for k, v in c.flags.model_dump(exclude_none=True).items())
            mark = (
                "winner" if c.flags == t.winner and c.tps else ("defaults" if c.is_default else "")
            )
            rows.append(
                [
                    t.hardware,
                    t.stack,
                    f"{t.objective} @ d{t.depth}",
                    flags or "defaults",
                    f"{c.tps:.1f}" if c.tps else (c.error or "failed"),
                    mark,
                ]
            )
    return rows


def _check_rows(checks: list[tuple[str, CheckReport]]) -> list[list[str]]:
    latest: dict[str, tuple[str, CheckReport]] = {}
    for date, report in checks:
        latest[report.lock_hash] = (date, report)
    rows = []
    for date, report in latest.values():
        failed = [f"{c.name}: {c.reason}" for c in report.cases if not c.passed]
        rows.append(
            [
                date[:19],
                report.model,
                "PASS" if report.passed else "FAIL",
                "; ".join(failed) or f"{len(report.cases)} checks passed",
            ]
        )
    return rows


STYLE = """body{font-family:sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
.charts{display:flex;flex-wrap:wrap;gap:1em}"""


def report_html(
    results: list[StoredResult], sweeps: list[Tuning], checks: list[tuple[str, CheckReport]]
) -> str:
    charts = "\n".join(chart_svg(s) for s in host_series(results))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>stackctl report</title>
<style>{STYLE}</style></head><body>
<h1>stackctl: predicted vs measured</h1>
<h2>Decode across context depth, per host</h2>
<div class="charts">{charts or "<p>No measurements yet: run <code>stackctl bench</code>.</p>"}</div>
<h2>Every measurement beside its prediction</h2>
{_table(SUMMARY_HEAD, summary_rows(results))}
<h2>Sweeps</h2>
{_table(["host", "stack", "objective", "flags", "tok/s", ""], _sweep_rows(sweeps))}
<h2>check-output</h2>
{_table(["date", "model", "status", "detail"], _check_rows(checks))}
</body></html>
"""
