"""How fast `wait` notices a finished job, and at what cost in status calls, next to the reference's
advice of polling every 5-10 s.

Starts the mock gateway at speed 1 (a 30-step image takes the real 15 s, and the mock's clock is the
wall clock) and runs `--jobs` jobs concurrently for each strategy, all strategies at once, so the whole
run takes about as long as the slowest strategy's jobs (~25 s). The jobs are "about 15 s": 26 to 34
inference steps (13-17 s), the same sizes for every strategy, so that no strategy gains from a job
length that happens to be a multiple of its interval. For each job:

- delay: from the job's `completed_at` (status payload) to the moment the strategy returned it,
  on the client's clock;
- calls: status requests for that job, counted in the mock's journal (`GET /__mock/requests`).

Goals for `wait`: median delay <= 1 s and at most 20 status calls per job. This is a benchmark, not a
test: it prints the figures and exits 0 whether or not the goals are met.

    python tools/bench_polling.py                    # make bench-client
    python tools/bench_polling.py --jobs 4 --intervals 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import QueuedRequest, RequestStatus, TextToImageRequest
from rich.console import Console
from rich.table import Table

from boogu import AsyncBoogu, PollPolicy
from boogu._polling import poll_times
from mock_gateway.testing import KEY_HEADER, gateway_process

API_KEY = "test-key"
MEDIAN_DELAY_GOAL = 1.0
CALLS_GOAL = 20


@dataclass(frozen=True)
class Job:
    request_id: str
    delay: float


def delay_since(completed_at: str | None) -> float:
    """Seconds from the gateway's `completed_at` to now (the mock's clock is wall time at speed 1)."""
    if completed_at is None:
        raise RuntimeError("a finished job without completed_at")
    return time.time() - datetime.fromisoformat(completed_at).timestamp()


def request(index: int) -> TextToImageRequest:
    return TextToImageRequest(prompt=f"benchmark job {index}", seed=index, num_inference_steps=26 + index % 9)


async def with_wait(client: AsyncBoogu, index: int) -> Job:
    """This package: submit, then `wait` on the submission."""
    submission = await client.submit(request(index))
    result = await client.wait(submission)
    delay = delay_since(result.status.raw.get("completed_at"))
    return Job(result.request_id, delay)


async def with_fixed_polling(client: AuthenticatedClient, index: int, interval: float) -> Job:
    """The reference: the generated client, a status call every `interval` seconds."""
    queued = await submit_text_to_image.asyncio(client=client, body=request(index))
    if not isinstance(queued, QueuedRequest):
        raise RuntimeError(f"submit failed: {queued}")
    while True:
        await asyncio.sleep(interval)
        status = await get_request_status.asyncio(queued.request_id, client=client)
        if not isinstance(status, RequestStatus):
            raise RuntimeError(f"status failed: {status}")
        if status.status in ("COMPLETED", "FAILED", "ERROR"):
            completed_at = status.completed_at if isinstance(status.completed_at, str) else None
            return Job(queued.request_id, delay_since(completed_at))


async def measure(base_url: str, jobs: int, intervals: list[float]) -> dict[str, list[Job]]:
    generated = AuthenticatedClient(
        base_url=base_url, token=API_KEY, auth_header_name=KEY_HEADER, prefix="", timeout=httpx.Timeout(30.0)
    )
    async with AsyncBoogu(API_KEY, base_url=base_url) as client, generated:
        runs: dict[str, list[Any]] = {"boogu wait": [with_wait(client, i) for i in range(jobs)]}
        for interval in intervals:
            runs[f"fixed every {interval:g} s"] = [
                with_fixed_polling(generated, i, interval) for i in range(jobs)
            ]
        names = list(runs)
        finished = await asyncio.gather(*(asyncio.gather(*runs[name]) for name in names))
        return dict(zip(names, finished, strict=True))


def status_calls(base_url: str) -> Counter[str]:
    journal = httpx.get(f"{base_url}/__mock/requests", timeout=30).json()
    return Counter(entry["request_id"] for entry in journal if entry["operation_id"] == "get_request_status")


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def report(results: dict[str, list[Job]], calls: Counter[str], console: Console) -> None:
    table = Table(title="Noticing a finished job of about 15 s (mock gateway at speed 1)")
    for column in ("strategy", "jobs", "median delay", "p90 delay", "median calls", "max calls", "goals"):
        table.add_column(column, justify="left" if column in ("strategy", "goals") else "right")
    for name, jobs in results.items():
        delays = [job.delay for job in jobs]
        counts = [calls[job.request_id] for job in jobs]
        median_delay, most = statistics.median(delays), max(counts)
        met = median_delay <= MEDIAN_DELAY_GOAL and most <= CALLS_GOAL
        goals = ("[green]met[/green]" if met else "[red]not met[/red]") if name == "boogu wait" else "-"
        table.add_row(
            name,
            str(len(jobs)),
            f"{median_delay:.2f} s",
            f"{p90(delays):.2f} s",
            f"{statistics.median(counts):g}",
            str(most),
            goals,
        )
    console.print(table)
    console.print(
        f"goals for boogu wait: median delay <= {MEDIAN_DELAY_GOAL:g} s, <= {CALLS_GOAL} status calls per job"
    )
    plan = ", ".join(f"{t:g}" for t in poll_times(15.0, 20.0, PollPolicy()))
    console.print(f"boogu wait's schedule for a job expected to take 15 s (s after submit): {plan}, ...")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8, help="jobs per strategy, run concurrently (default 8)")
    parser.add_argument(
        "--intervals", type=float, nargs="*", default=[5.0, 10.0], help="fixed polling intervals to compare"
    )
    args = parser.parse_args()
    console = Console(width=110)
    with gateway_process("--speed", "1") as base_url:
        console.print(f"mock gateway at {base_url}, speed 1: {args.jobs} jobs per strategy, all at once")
        started = time.monotonic()
        results = asyncio.run(measure(base_url, args.jobs, args.intervals))
        console.print(f"measured in {time.monotonic() - started:.1f} s")
        report(results, status_calls(base_url), console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
