"""The `boogu` client at scale and under a busy gateway: every figure side by side, in one run.

Each scenario runs against its own mock gateway process (`python -m mock_gateway`), the client in this
process. This is a benchmark, not a test: it prints the figures and exits 0 whether or not the goals
are met; on a shared 2-core machine the absolute figures are indicative only.

1. Throughput: a batch of `--lines` jobs (BatchRunner, downloads included) at concurrency 64, 256
   and 1,000 (mock at speed 100: 0.15 s jobs). Goal: jobs/s at 256 >= 0.9 x that at 64.
2. Lag at scale: 500 concurrent `AsyncBoogu.generate` calls of 0.15 s jobs; the lag is the time from
   a job's `completed_at` to `generate` returning. Goal: median <= 0.5 s.
3. Rate limit learned: a 300-line batch at concurrency 16 against a limit of 20 calls/s (burst 5)
   that the client is not told; then the same with a fixed `--max-rps 19`. Goal: >= 85 % of the
   limit used, <= 10 % of calls answered 429.
4. A busy fleet (issue 9): capacity 2, duration jitter 0.3, speed 1, 6 jobs submitted at once; `wait`
   against fixed polling every 5 s, 10 s and 0.5 s (Replicate's SDK). Each strategy has its own
   gateway with the same seed, so all see the same durations. Goal for `wait`: median lag <= 1 s,
   <= 20 status calls per job.

    python -m tools.bench_polling                    # make bench-client
    python -m tools.bench_polling --lines 500 --skip fleet
    python -m tools.bench_polling --profile          # pyinstrument profile of the concurrency-256 run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import QueuedRequest, RequestStatus, TextToImageRequest
from rich.console import Console
from rich.table import Table

from boogu import AsyncBoogu
from boogu._http import BATCH_CONNECTIONS
from boogu.batch import BatchRunner, Journal, load_items
from boogu_contract import wire
from mock_gateway.model import DEFAULT_API_KEY as API_KEY
from mock_gateway.testing import gateway_process

FAST = 100.0
"""Mock speed of the scale scenarios: a 30-step job takes 0.15 s."""
CONCURRENCIES = (64, 256, 1000)
LAG_JOBS = 500
RATE, BURST = 20.0, 5
RATE_LINES, RATE_CONCURRENCY, FIXED_RPS = 300, 16, 19.0
FLEET = ("--speed", "1", "--capacity", "2", "--duration-jitter", "0.3", "--seed", "7")
FLEET_JOBS = 6
FIXED_INTERVALS = (5.0, 10.0, 0.5)


def p(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def lag_since(completed_at: object) -> float:
    """Seconds from the gateway's `completed_at` to now (the mock's clock is the wall clock)."""
    if not isinstance(completed_at, str):
        raise RuntimeError("a finished job without completed_at")
    return time.time() - datetime.fromisoformat(completed_at).timestamp()


def batch_file(folder: Path, lines: int) -> Path:
    path = folder / "jobs.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"bench {i}", "seed": i}) + "\n" for i in range(lines)))
    return path


class CallCounter:
    """Counts API answers by status code through an httpx response hook (media downloads excluded)."""

    def __init__(self) -> None:
        self.codes: Counter[int] = Counter()
        self.first = self.last = 0.0

    async def __call__(self, response: httpx.Response) -> None:
        if "/media/" in response.request.url.path:
            return
        now = time.monotonic()
        self.first = self.first or now
        self.last = now
        self.codes[response.status_code] += 1

    def args(self) -> dict[str, Any]:
        return {"event_hooks": {"response": [self]}}


@dataclass(frozen=True)
class BatchRun:
    lines: int
    completed: int
    seconds: float
    calls: CallCounter
    problems: list[str]
    """What kept lines from completing (the first few)."""

    @property
    def jobs_per_second(self) -> float:
        return self.completed / self.seconds


async def run_batch(
    base_url: str, lines: int, concurrency: int, *, max_rps: float | None = None, profile: bool = False
) -> BatchRun:
    calls = CallCounter()
    with tempfile.TemporaryDirectory() as folder:
        items = load_items(batch_file(Path(folder), lines))
        async with AsyncBoogu(
            API_KEY,
            base_url=base_url,
            max_connections=min(concurrency, BATCH_CONNECTIONS),  # as `boogu batch` does
            max_requests_per_second=max_rps,
            httpx_args=calls.args(),
        ) as client:
            runner = BatchRunner(
                client, items, Journal(Path(folder) / "journal.jsonl"), Path(folder), concurrency=concurrency
            )
            with profiled(profile):
                started = time.monotonic()
                summary = await runner.run()
                seconds = time.monotonic() - started
    problems = [
        f"{key}: {state.phase}: {state.detail}"
        for key, state in runner.states.items()
        if state.phase != "downloaded"
    ]
    return BatchRun(lines, summary.completed, seconds, calls, problems[:3])


@contextlib.contextmanager
def profiled(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    from pyinstrument import Profiler  # a dev tool, only for --profile

    profiler = Profiler(async_mode="enabled")
    with profiler:
        yield
    print(profiler.output_text(unicode=True, color=False, show_all=False))


async def lag_at_scale(base_url: str, jobs: int) -> list[float]:
    async with AsyncBoogu(API_KEY, base_url=base_url) as client:
        await client.generate("warm-up: the client learns the pace")

        async def one(index: int) -> float:
            result = await client.generate(f"lag {index}", seed=index)
            return lag_since(result.status.raw.get("completed_at"))

        return list(await asyncio.gather(*(one(i) for i in range(jobs))))


@dataclass(frozen=True)
class Noticed:
    request_id: str
    lag: float


async def with_wait(base_url: str, jobs: int) -> list[Noticed]:
    """This package: submit all, then `wait` on each submission (what `boogu generate` does)."""
    async with AsyncBoogu(API_KEY, base_url=base_url) as client:

        async def one(index: int) -> Noticed:
            submission = await client.submit(TextToImageRequest(prompt=f"fleet {index}", seed=index))
            result = await client.wait(submission)
            return Noticed(result.request_id, lag_since(result.status.raw.get("completed_at")))

        return list(await asyncio.gather(*(one(i) for i in range(jobs))))


async def with_fixed_polling(base_url: str, jobs: int, interval: float) -> list[Noticed]:
    """The reference's advice (or Replicate's SDK): the generated client, a status call every `interval`."""
    generated = AuthenticatedClient(
        base_url=base_url,
        token=API_KEY,
        auth_header_name=wire.KEY_HEADER,
        prefix="",
        timeout=httpx.Timeout(30.0),
    )

    async def one(index: int) -> Noticed:
        queued = await submit_text_to_image.asyncio(
            client=generated, body=TextToImageRequest(prompt=f"fleet {index}", seed=index)
        )
        if not isinstance(queued, QueuedRequest):
            raise RuntimeError(f"submit failed: {queued}")
        while True:
            await asyncio.sleep(interval)
            status = await get_request_status.asyncio(queued.request_id, client=generated)
            if not isinstance(status, RequestStatus):
                raise RuntimeError(f"status failed: {status}")
            if status.status in wire.TERMINAL_STATUSES:
                return Noticed(queued.request_id, lag_since(status.completed_at))

    async with generated:
        return list(await asyncio.gather(*(one(i) for i in range(jobs))))


def status_calls(base_url: str) -> Counter[str]:
    journal = httpx.get(f"{base_url}{wire.ADMIN_PREFIX}/requests", timeout=30).json()
    return Counter(entry["request_id"] for entry in journal if entry["operation_id"] == "get_request_status")


def verdict(met: bool) -> str:
    return "[green]met[/green]" if met else "[red]not met[/red]"


def scale(console: Console, lines: int, profile: bool) -> None:
    with gateway_process("--speed", str(FAST), "--balance", "1000000") as base_url:
        runs = {
            c: asyncio.run(run_batch(base_url, lines, c, profile=profile and c == 256)) for c in CONCURRENCIES
        }
        lags = asyncio.run(lag_at_scale(base_url, LAG_JOBS))
    table = Table(title=f"Throughput: a {lines}-line batch (0.15 s jobs, downloads included)")
    for column in ("concurrency", "completed", "seconds", "API calls/job", "jobs/s", "vs 64"):
        table.add_column(column, justify="right")
    base = runs[64].jobs_per_second
    for concurrency, run in runs.items():
        table.add_row(
            str(concurrency),
            f"{run.completed}/{run.lines}",
            f"{run.seconds:.1f}",
            f"{sum(run.calls.codes.values()) / run.lines:.1f}",
            f"{run.jobs_per_second:.0f}",
            f"{run.jobs_per_second / base:.2f}x",
        )
    console.print(table)
    for concurrency, run in runs.items():
        for problem in run.problems:
            console.print(f"  not completed at concurrency {concurrency}: {problem}", markup=False)
    console.print(f"goal: jobs/s at 256 >= 0.9 x at 64: {verdict(runs[256].jobs_per_second >= 0.9 * base)}")
    median = statistics.median(lags)
    console.print(
        f"lag of {LAG_JOBS} concurrent AsyncBoogu.generate (0.15 s jobs): median {median:.2f} s, "
        f"p90 {p(lags, 0.9):.2f} s, max {max(lags):.2f} s; goal median <= 0.5 s: {verdict(median <= 0.5)}"
    )


def rate_limited(console: Console) -> None:
    rows = {}
    for name, cap in (("learned (no --max-rps)", None), (f"fixed --max-rps {FIXED_RPS:g}", FIXED_RPS)):
        limit = f"{RATE:g}:{BURST}"
        with gateway_process("--speed", str(FAST), "--rate-limit", limit) as base_url:
            rows[name] = asyncio.run(run_batch(base_url, RATE_LINES, RATE_CONCURRENCY, max_rps=cap))
    table = Table(
        title=f"Rate limit {RATE:g}/s (burst {BURST}), {RATE_LINES} lines at concurrency {RATE_CONCURRENCY}"
    )
    for column in (
        "limiter",
        "seconds",
        "API calls",
        "429s",
        "share 429",
        "achieved rate",
        "of limit",
        "goal",
    ):
        table.add_column(column, justify="left" if column in ("limiter", "goal") else "right")
    for name, run in rows.items():
        total = sum(run.calls.codes.values())
        limited = run.calls.codes[429]
        span = max(run.calls.last - run.calls.first, 1e-9)
        achieved = (total - limited) / span
        met = achieved >= 0.85 * RATE and limited <= 0.1 * total
        table.add_row(
            name,
            f"{run.seconds:.1f}",
            str(total),
            str(limited),
            f"{limited / total:.1%}",
            f"{achieved:.1f}/s",
            f"{achieved / RATE:.0%}",
            verdict(met),
        )
    console.print(table)
    console.print("achieved rate: answers other than 429 per second, from the first API call to the last")


def fleet(console: Console) -> None:
    strategies: dict[str, Any] = {"boogu wait": lambda url: with_wait(url, FLEET_JOBS)}
    for interval in FIXED_INTERVALS:
        strategies[f"fixed every {interval:g} s"] = lambda url, i=interval: with_fixed_polling(
            url, FLEET_JOBS, i
        )
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(gateway_process(*FLEET)) for name in strategies}

        async def everything() -> list[list[Noticed]]:
            return list(await asyncio.gather(*(strategies[name](urls[name]) for name in strategies)))

        results = dict(zip(strategies, asyncio.run(everything()), strict=True))
        calls = {name: status_calls(urls[name]) for name in strategies}
    table = Table(
        title=f"A busy fleet: capacity 2, jitter 0.3, speed 1, {FLEET_JOBS} 30-step jobs submitted at once"
    )
    for column in ("strategy", "median lag", "p90 lag", "max lag", "median calls", "max calls", "goal"):
        table.add_column(column, justify="left" if column in ("strategy", "goal") else "right")
    for name, noticed in results.items():
        lags = [job.lag for job in noticed]
        counts = [calls[name][job.request_id] for job in noticed]
        met = statistics.median(lags) <= 1.0 and max(counts) <= 20
        table.add_row(
            name,
            f"{statistics.median(lags):.2f} s",
            f"{p(lags, 0.9):.2f} s",
            f"{max(lags):.2f} s",
            f"{statistics.median(counts):g}",
            str(max(counts)),
            verdict(met) if name == "boogu wait" else "-",
        )
    console.print(table)
    console.print("goal for boogu wait: median lag <= 1 s and <= 20 status calls per job")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--lines", type=int, default=2000, help="lines of the throughput batch (default 2000)"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["scale", "rate", "fleet"])
    parser.add_argument(
        "--profile", action="store_true", help="profile the concurrency-256 run (pyinstrument)"
    )
    args = parser.parse_args()
    console = Console(width=120)
    started = time.monotonic()
    if "fleet" not in args.skip:
        fleet(console)
    if "rate" not in args.skip:
        rate_limited(console)
    if "scale" not in args.skip:
        scale(console, args.lines, args.profile)
    console.print(f"measured in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
