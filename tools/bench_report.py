"""The figures of `tools.bench_mock` as one table of rows, each with its goal and a mark, or as JSON.

Ratios are taken round by round (the two servers of a round measured minutes apart at most, so
other work on the machine weighs on both alike) and their median is the figure a goal is checked
against. A benchmark, not a test: a missed goal is marked, never a failing exit status.
"""

from __future__ import annotations

import json
import operator
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from tools.bench_load import Window

OPERATIONS = ("status", "submit")
Runs = dict[str, dict[str, list[Window]]]
"""target → operation → its window in each round."""

FORMATS = {
    "count": ("{:,.0f}", ""),
    "rps": ("{:,.0f}", "/s"),
    "us": ("{:.0f}", " µs"),
    "ratio": ("{:.2f}", "×"),
    "ms": ("{:.3f}", " ms"),
    "bytes": ("{:,.0f}", " B"),
}
"""kind → how its number is printed, and its unit."""
RELATIONS: dict[str, Callable[[float, float], bool]] = {"≥": operator.ge, "≤": operator.le, "<": operator.lt}


def show(value: float | None, kind: str) -> str:
    number, unit = FORMATS[kind]
    return "–" if value is None else number.format(value) + unit


@dataclass(frozen=True)
class Goal:
    relation: str
    """One of RELATIONS."""
    bound: float
    kind: str

    def met(self, value: float) -> bool:
        """Checked on the value as printed: a 0.899 shown as 0.90× meets ≥ 0.90×, as a reader expects."""
        shown = FORMATS[self.kind][0].format(value).replace(",", "")
        return RELATIONS[self.relation](float(shown), self.bound)

    def __str__(self) -> str:
        return f"{self.relation} {show(self.bound, self.kind)}"


@dataclass
class Row:
    section: str
    figure: str
    value: float | None
    kind: str
    """How `value` reads: a key of FORMATS."""
    detail: str = ""
    """The value in each round, or what it is made of."""
    goal: Goal | None = None
    rounds: list[float | None] = field(default_factory=list)

    @property
    def met(self) -> bool | None:
        return None if self.goal is None or self.value is None else self.goal.met(self.value)


def median(values: list[float | None]) -> float | None:
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


def divide(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def per_round(values: list[float | None], kind: str) -> str:
    return "  ".join(show(value, kind) for value in values)


def comparison_rows(
    section: str, runs: Runs, subject: str, base: str, goals: Mapping[str, float]
) -> list[Row]:
    """For each operation: each target's req/s and CPU per request, then subject ÷ base by either
    measure (by CPU, base µs ÷ subject µs: above 1 means the subject is cheaper), with the goal; and
    by user CPU alone, with no goal: the server's own work, without the kernel's share."""
    rows = []
    for op in OPERATIONS:
        for target, by_op in runs.items():
            windows = by_op[op]
            rps, us = [w.rps for w in windows], [w.us_per_request for w in windows]
            detail = "  ".join(f"{show(r, 'rps')} {show(u, 'us')}" for r, u in zip(rps, us, strict=True))
            rows.append(Row(section, f"{op}: {target}", median(rps), "rps", detail, rounds=rps))
        pairs = list(zip(runs[subject][op], runs[base][op], strict=True))
        by_rps = [divide(s.rps, b.rps) for s, b in pairs]
        by_cpu = [divide(b.us_per_request, s.us_per_request) for s, b in pairs]
        goal = Goal("≥", goals[op], "ratio")
        by_user = [divide(b.user_us_per_request, s.user_us_per_request) for s, b in pairs]
        for measure, ratios, aim in (
            ("req/s", by_rps, goal),
            ("CPU", by_cpu, goal),
            ("user CPU", by_user, None),
        ):
            figure = f"{op}: {subject} / {base}, by {measure}"
            rows.append(
                Row(section, figure, median(ratios), "ratio", per_round(ratios, "ratio"), aim, ratios)
            )
    return rows


def print_table(rows: list[Row], caption: str) -> None:
    table = Table(title="make bench: the mock gateway against its goals (issue 20)", title_justify="left")
    for name in ("section", "figure", "each round (or detail)", "result", "goal", ""):
        table.add_column(name, justify="right" if name in ("result", "goal") else "left")
    for row, before, after in zip(rows, [None, *rows], [*rows[1:], None], strict=False):
        mark = {None: "", True: "[green]✓[/green]", False: "[red]✗[/red]"}[row.met]
        table.add_row(
            row.section if before is None or before.section != row.section else "",
            row.figure,
            row.detail,
            show(row.value, row.kind),
            str(row.goal or ""),
            mark,
            end_section=after is None or after.section != row.section,
        )
    table.caption, table.caption_justify = caption, "left"
    Console(highlight=False, width=None if sys.stdout.isatty() else 160).print(table)


def as_json(rows: list[Row], settings: dict[str, Any], runs: Mapping[str, Runs]) -> str:
    return json.dumps(
        {
            "settings": settings,
            "rows": [{**asdict(row), "goal": str(row.goal or "") or None, "met": row.met} for row in rows],
            "windows": {
                section: {
                    target: {
                        op: [{**asdict(w), "rps": w.rps, "us_per_request": w.us_per_request} for w in windows]
                        for op, windows in by_op.items()
                    }
                    for target, by_op in section_runs.items()
                }
                for section, section_runs in runs.items()
            },
        },
        indent=2,
    )
