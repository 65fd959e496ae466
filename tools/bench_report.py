"""The figures of `tools.bench_mock`: the goals checked, as tables or as JSON.

The goals are mock ≥ 4 times Prism and mock ≥ 0.5 times the bare Starlette ceiling, for the submit
and the status operation. A benchmark, not a test: missing a goal is reported, never a failure.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from tools import bench_inprocess
from tools.bench_load import LoadResult

OPERATIONS = ("submit", "status")
LABELS = {
    "mock": "mock gateway",
    "bare": "bare Starlette",
    "prism": "Prism",
    "canned": "canned (generator ceiling)",
}
GOAL_VS_PRISM = 4.0
GOAL_VS_BARE = 0.5
SATURATED = 0.9
"""A server process this busy (in cores) is the bottleneck: all the servers are single-threaded."""


@dataclass(frozen=True)
class Settings:
    """How the figures were measured, printed with them."""

    connections: int
    warmup: float
    duration: float
    rounds: int
    prism_log_level: str


def figure(results: list[LoadResult], target: str, op: str) -> float | None:
    for result in results:
        if result.target == target and result.operation == op and result.failure is None and result.ok:
            return result.rps
    return None


def goals(results: list[LoadResult]) -> list[dict[str, Any]]:
    out = []
    for op in OPERATIONS:
        mock = figure(results, "mock", op)
        for other, goal in (("prism", GOAL_VS_PRISM), ("bare", GOAL_VS_BARE)):
            base = figure(results, other, op)
            ratio = mock / base if mock is not None and base else None
            met = None if ratio is None else ratio >= goal
            out.append({"operation": op, "versus": other, "goal": goal, "ratio": ratio, "met": met})
    return out


def cpu_count() -> tuple[int | None, int | None]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return os.cpu_count(), usable


def _num(value: float | None, fmt: str) -> str:
    return format(value, fmt) if value is not None else "–"


def summary_table(results: list[LoadResult], checked: list[dict[str, Any]]) -> Table:
    def rate(target: str, op: str) -> str:
        return _num(figure(results, target, op), ",.0f")

    def verdict(entry: dict[str, Any]) -> str:
        if entry["ratio"] is None:
            return "[dim]not measured[/dim]"
        mark = "[green]✓ met[/green]" if entry["met"] else "[red]✗ missed[/red]"
        return f"{entry['ratio']:.2f}×  {mark}"

    table = Table(title="Requests per second (2xx answers only)", title_justify="left")
    table.add_column("operation")
    for name in ("mock", "bare", "prism"):
        table.add_column(LABELS[name], justify="right")
    table.add_column(f"mock / Prism (goal ≥ {GOAL_VS_PRISM:g}×)", justify="right")
    table.add_column(f"mock / bare (goal ≥ {GOAL_VS_BARE:g}×)", justify="right")
    for op in OPERATIONS:
        vs = {e["versus"]: e for e in checked if e["operation"] == op}
        table.add_row(
            op,
            rate("mock", op),
            rate("bare", op),
            rate("prism", op),
            verdict(vs["prism"]),
            verdict(vs["bare"]),
        )
    return table


def detail_table(results: list[LoadResult]) -> Table:
    table = Table(title="Details of each measured window", title_justify="left")
    table.add_column("server")
    table.add_column("op")
    for column in ("req/s", "2xx", "errors", "p50 ms", "p99 ms", "server CPU", "server µs/req"):
        table.add_column(column, justify="right")
    table.add_column("generator CPU", justify="right")
    table.add_column("other CPU", justify="right")
    for result in results:
        if result.failure is not None:
            table.add_row(LABELS[result.target], result.operation, f"[red]{result.failure}[/red]")
            continue
        errors = ", ".join(f"{kind}: {count}" for kind, count in sorted(result.errors.items()))
        busy = result.server_cpu is not None and result.server_cpu >= SATURATED
        table.add_row(
            LABELS[result.target],
            result.operation,
            f"{result.rps:,.0f}",
            f"{result.ok:,}",
            f"[red]{errors}[/red]" if errors else "0",
            _num(result.p50_ms, ".1f"),
            _num(result.p99_ms, ".1f"),
            _num(result.server_cpu, ".2f") + (" [bold](busy)[/bold]" if busy else ""),
            _num(result.server_us_per_request, ".0f"),
            _num(result.client_cpu, ".2f"),
            _num(result.other_cpu, ".2f"),
        )
    return table


def print_tables(results: list[LoadResult], settings: Settings) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    checked = goals(results)
    console.print(summary_table(results, checked))
    console.print(detail_table(results))
    total, usable = cpu_count()
    console.print(
        f"CPU count: {total} ({usable} usable). CPU columns are in cores (1.00 = one core busy for the "
        "whole window); 'other' is the rest of the machine, which skews the figures when it is high. "
        f"Python {platform.python_version()}; {settings.connections} connections, {settings.warmup:g} s "
        f"warm-up + {settings.duration:g} s measured, best of {settings.rounds}; one asyncio load "
        "generator process, no pipelining; servers run one at a time; "
        f"Prism logs at '{settings.prism_log_level}'."
    )
    for op in OPERATIONS:
        canned = [r for r in results if r.target == "canned" and r.operation == op and r.failure is None]
        bare = figure(results, "bare", op)
        if canned and canned[0].ok:
            ceiling = canned[0]
            versus = f", {ceiling.rps / bare:.1f}× the bare Starlette figure" if bare else ""
            console.print(
                f"Load generator ceiling ({op}): {ceiling.rps:,.0f} req/s against the canned server{versus} "
                f"({_num(ceiling.client_us_per_request, '.0f')} µs of generator CPU per request)."
            )
    for entry in checked:
        name = {"prism": "Prism", "bare": "the bare Starlette ceiling"}[entry["versus"]]
        goal = f"mock ≥ {entry['goal']:g}× {name} for {entry['operation']}"
        if entry["ratio"] is None:
            console.print(f"[dim]? not measured[/dim]: {goal}")
        elif entry["met"]:
            console.print(f"[green]✓ goal met[/green]:    {goal} ({entry['ratio']:.2f}×)")
        else:
            console.print(f"[red]✗ goal missed[/red]: {goal} ({entry['ratio']:.2f}×)")


def as_json(results: list[LoadResult], in_process: list[bench_inprocess.Figure], settings: Settings) -> str:
    total, usable = cpu_count()
    return json.dumps(
        {
            "cpus": total,
            "usable_cpus": usable,
            "python": platform.python_version(),
            **asdict(settings),
            "results": [
                {**asdict(result), "server_us_per_request": result.server_us_per_request}
                for result in results
            ],
            "goals": goals(results),
            "in_process": [{**asdict(figure), "ratio": figure.ratio} for figure in in_process],
        },
        indent=2,
    )
