"""The validating proxy's added latency per call: the same calls straight to a mock gateway and through
`python -m mock_gateway proxy` in front of it, interleaved, in one run.

Both servers run as their own processes on free loopback ports (`mock_gateway.testing.gateway_process`);
this script is the only client: one keep-alive connection to each, one call at a time, direct and
proxied calls alternating so that the machine's noise falls on both alike. Reported per operation: the
median and 90th percentile of each, the median added by the proxy (target: under 1 ms on loopback),
and the ratio proxied/direct. A benchmark, not a test: it exits 0 whether or not the target is met.

    python -m tools.bench_proxy                 # 2000 calls of each operation each way
    python -m tools.bench_proxy --calls 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import httpx
from rich.console import Console
from rich.table import Table

from boogu_contract import wire
from mock_gateway.model import DEFAULT_API_KEY
from mock_gateway.testing import gateway_process

SUBMIT = wire.submit_path("boogu-image")
HEADERS = {wire.KEY_HEADER: DEFAULT_API_KEY}
TARGET_MS = 1.0


def timed(call: Callable[[], httpx.Response]) -> float:
    start = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - start
    if response.status_code >= 300:
        raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
    return elapsed * 1000


def measure(
    direct: httpx.Client, proxied: httpx.Client, call: Callable[[httpx.Client], httpx.Response], calls: int
) -> tuple[list[float], list[float]]:
    for _ in range(min(200, calls)):  # warm-up: connections, caches, compiled validators
        call(direct)
        call(proxied)
    straight: list[float] = []
    through: list[float] = []
    for _ in range(calls):
        straight.append(timed(lambda: call(direct)))
        through.append(timed(lambda: call(proxied)))
    return straight, through


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def main() -> int:
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("--calls", type=int, default=2000, help="measured calls of each operation each way")
    args = options.parse_args()
    console = Console(width=120)
    with (
        gateway_process("--speed", "1000") as upstream,
        gateway_process("--upstream", upstream, subcommand=["proxy"]) as proxy,
        httpx.Client(base_url=upstream, headers=HEADERS, trust_env=False) as direct,
        httpx.Client(base_url=proxy, headers=HEADERS, trust_env=False) as proxied,
    ):
        request_id = direct.post(SUBMIT, json={"prompt": "a lighthouse"}).json()["request_id"]
        time.sleep(0.5)  # the job completes: status answers carry output and completed_at
        operations: dict[str, Callable[[httpx.Client], httpx.Response]] = {
            "get_request_status (COMPLETED)": lambda http: http.get(wire.status_path(request_id)),
            "submit_text_to_image (202)": lambda http: http.post(
                SUBMIT, json={"prompt": "a lighthouse", "seed": 1}
            ),
        }
        table = Table(title=f"Validating proxy vs direct, {args.calls} calls each way, one at a time (ms)")
        for column in (
            "operation",
            "direct p50",
            "proxied p50",
            "direct p90",
            "proxied p90",
            "added p50",
            "ratio",
        ):
            table.add_column(column, justify="left" if column == "operation" else "right")
        verdicts = []
        for name, call in operations.items():
            straight, through = measure(direct, proxied, call, args.calls)
            added = statistics.median(through) - statistics.median(straight)
            ratio = statistics.median(through) / statistics.median(straight)
            table.add_row(
                name,
                f"{statistics.median(straight):.3f}",
                f"{statistics.median(through):.3f}",
                f"{p90(straight):.3f}",
                f"{p90(through):.3f}",
                f"{added:.3f}",
                f"×{ratio:.2f}",
            )
            verdicts.append(f"{name}: +{added:.3f} ms median ({'met' if added < TARGET_MS else 'missed'})")
        console.print(table)
        console.print(f"target: under {TARGET_MS:g} ms added per call, median, on loopback")
        for verdict in verdicts:
            console.print(f"  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
