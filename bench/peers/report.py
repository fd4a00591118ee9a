"""The side-by-side table (markdown) and the figures' definitions, for run.py."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    higher_is_better: bool
    fmt: str
    keeps_only: bool = False  # best peer among those that keep something (0 B is no rival)


FIGURES = [
    Figure("enqueue", "enqueue, one call per job (jobs/s)", True, "{:,.0f}"),
    Figure("bulk", "bulk enqueue, 1,000 jobs per call (jobs/s)", True, "{:,.0f}"),
    Figure("drain1", "drain from worker start, 1 process (jobs/s)", True, "{:,.0f}"),
    Figure("drain2", "drain from worker start, 2 processes (jobs/s)", True, "{:,.0f}"),
    Figure("steady1", "drain once running (first to last job), 1 process (jobs/s)", True, "{:,.0f}"),
    Figure("steady2", "drain once running (first to last job), 2 processes (jobs/s)", True, "{:,.0f}"),
    Figure("startup", "worker start to first job, 1 process (s)", False, "{:.2f}"),
    Figure("p50", "enqueue → start p50 (ms)", False, "{:.2f}"),
    Figure("p99", "enqueue → start p99 (ms)", False, "{:.2f}"),
    Figure("cpu_us", "Redis CPU per job, enqueue+claim+complete (µs)", False, "{:.1f}"),
    Figure("cmds", "Redis commands per job (incl. inside scripts)", False, "{:.1f}"),
    Figure("waiting_bytes", "Redis memory per waiting job (B)", False, "{:,.0f}"),
    Figure("finished_bytes", "Redis memory per finished job (B)", False, "{:,.0f}", keeps_only=True),
]
HIVEQ = "hiveq"


def spread(values: list[float | None]) -> tuple[float, float, float] | None:
    xs = [v for v in values if v is not None]
    return (min(xs), statistics.median(xs), max(xs)) if xs else None


def num(fmt: str, x: float) -> str:
    text = fmt.format(x)
    return "0" if text == "-0" else text


def cell(s: tuple[float, float, float] | None, fmt: str) -> str:
    if s is None:
        return "n/a"
    lo, mid, hi = (num(fmt, x) for x in s)
    return mid if lo == hi else f"{mid} ({lo}–{hi})"


def summarize(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float, float] | None]:
    return {f.key: spread([r.get(f.key) for r in runs]) for f in FIGURES}


def best_peer(f: Figure, summary: dict[str, dict[str, Any]]) -> tuple[str, float] | None:
    peers = [(name, s[f.key][1]) for name, s in summary.items() if name != HIVEQ and s[f.key]]
    if f.keeps_only:
        peers = [p for p in peers if p[1] >= 1]
    if not peers:
        return None
    pick = max if f.higher_is_better else min
    return pick(peers, key=lambda p: p[1])


def ratio(f: Figure, summary: dict[str, dict[str, Any]]) -> float | None:
    best = best_peer(f, summary)
    mine = summary.get(HIVEQ, {}).get(f.key)
    if best is None or not mine or best[1] == 0:
        return None
    return float(mine[1] / best[1])


def table(summary: dict[str, dict[str, Any]]) -> str:
    """Figures down, systems across: median (min–max), best peer, hiveq ÷ best peer."""
    names = list(summary)
    head = ["figure", *names, "best peer", "hiveq ÷ best peer"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for f in FIGURES:
        cells = [cell(summary[n][f.key], f.fmt) for n in names]
        best = best_peer(f, summary)
        r = ratio(f, summary)
        better = "higher" if f.higher_is_better else "lower"
        mark = "*" if f.keeps_only else ""
        cells.append(f"{best[0]} {num(f.fmt, best[1])}{mark}" if best else "n/a")
        cells.append(f"**{r:.2f}** ({better} is better)" if r is not None else "n/a")
        lines.append("| " + " | ".join([f.label, *cells]) + " |")
    for f in FIGURES:
        if f.keeps_only:
            none = [n for n in names if n != HIVEQ and summary[n][f.key] and summary[n][f.key][1] < 1]
            if none:
                lines.append(
                    f"\n\\* {f.label}: best among the peers that keep something; "
                    f"{', '.join(none)} keep nothing of a finished job (0 B)."
                )
    return "\n".join(lines)
