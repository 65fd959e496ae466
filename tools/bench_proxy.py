"""The validating proxy's added latency per call: the same calls straight to a mock gateway and through
`python -m mock_gateway proxy` in front of it, interleaved, in one run.

Both servers run as their own processes on free loopback ports (`mock_gateway.testing.gateway_process`),
on the CPU `make bench` gives servers, and this script on the others (`tools.bench_load`). It is the
only client: one keep-alive connection to each, one call at a time, direct and proxied calls
alternating so that the machine's noise falls on both alike. Reported per operation: the median and
90th percentile of each, the median added by the proxy (target: under 0.5 ms on loopback), the
ratio proxied/direct, and the proxy's CPU a call (`cpu_seconds_run`: a call's latency through the
proxy follows its CPU); `make bench` shows the added medians in its table. A benchmark, not a test: it
exits 0 whether or not the target is met.

    python -m tools.bench_proxy                 # 2000 calls of each operation each way
    python -m tools.bench_proxy --calls 500
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from boogu_contract import wire
from mock_gateway.model import DEFAULT_API_KEY
from mock_gateway.testing import gateway_popen, gateway_process
from tools.bench_load import LOAD_CPUS, SERVER_CPUS, on_cpus, running_on
from tools.processes import cpu_seconds_run

SUBMIT = wire.submit_path("boogu-image")
HEADERS = {wire.KEY_HEADER: DEFAULT_API_KEY}
TARGET_MS = 0.5


def timed(call: Callable[[], httpx.Response]) -> float:
    start = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - start
    if response.status_code >= 300:
        raise RuntimeError(f"unexpected {response.status_code}: {response.text[:200]}")
    return elapsed * 1000


def measure(
    direct: httpx.Client,
    proxied: httpx.Client,
    call: Callable[[httpx.Client], httpx.Response],
    calls: int,
    proxy_pid: int,
) -> tuple[list[float], list[float], float]:
    """Each call's ms straight and through the proxy, and the proxy's CPU µs a call."""
    for _ in range(min(200, calls)):  # warm-up: connections, caches, compiled validators
        call(direct)
        call(proxied)
    straight: list[float] = []
    through: list[float] = []
    ran = cpu_seconds_run(proxy_pid)
    for _ in range(calls):
        straight.append(timed(lambda: call(direct)))
        through.append(timed(lambda: call(proxied)))
    return straight, through, (cpu_seconds_run(proxy_pid) - ran) / calls * 1e6


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


@dataclass(frozen=True)
class ProxyFigure:
    """One operation's calls each way, in ms."""

    operation: str
    direct: list[float]
    proxied: list[float]
    proxy_cpu_us: float

    @property
    def added_ms(self) -> float:
        return statistics.median(self.proxied) - statistics.median(self.direct)


def compare(calls: int) -> list[ProxyFigure]:
    """Each operation `calls` times each way, against a mock and a proxy in front of it."""
    servers = on_cpus(SERVER_CPUS)  # as `make bench` runs servers; this script, the client, as its load
    with (
        running_on(LOAD_CPUS),
        # A balance no `--calls` exhausts: the default one ran out after about 5,000 submits.
        gateway_process("--speed", "1000", "--balance", "1000000000", preexec_fn=servers) as upstream,
        gateway_popen("--upstream", upstream, subcommand=["proxy"], preexec_fn=servers) as (proxy, process),
        httpx.Client(base_url=upstream, headers=HEADERS, trust_env=False) as direct,
        httpx.Client(base_url=proxy, headers=HEADERS, trust_env=False) as proxied,
    ):
        request_id = direct.post(SUBMIT, json={"prompt": "a lighthouse"}).json()["request_id"]
        time.sleep(0.5)  # the job completes: status answers carry output and completed_at
        operations: dict[str, Callable[[httpx.Client], httpx.Response]] = {
            "status": lambda http: http.get(wire.status_path(request_id)),
            "submit": lambda http: http.post(SUBMIT, json={"prompt": "a lighthouse", "seed": 1}),
        }
        return [
            ProxyFigure(name, *measure(direct, proxied, call, calls, process.pid))
            for name, call in operations.items()
        ]


def main() -> int:
    options = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    options.add_argument("--calls", type=int, default=2000, help="measured calls of each operation each way")
    args = options.parse_args()
    table = Table(title=f"Validating proxy vs direct, {args.calls} calls each way, one at a time (ms)")
    columns = (
        "operation",
        "direct p50",
        "proxied p50",
        "direct p90",
        "proxied p90",
        "added p50",
        "ratio",
        "proxy CPU a call",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "operation" else "right")
    for figure in compare(args.calls):
        direct, proxied = statistics.median(figure.direct), statistics.median(figure.proxied)
        met = "met" if figure.added_ms < TARGET_MS else "missed"
        table.add_row(
            figure.operation,
            f"{direct:.3f}",
            f"{proxied:.3f}",
            f"{p90(figure.direct):.3f}",
            f"{p90(figure.proxied):.3f}",
            f"{figure.added_ms:.3f} ({met})",
            f"×{proxied / direct:.2f}",
            f"{figure.proxy_cpu_us:.0f} µs",
        )
    console = Console(width=120)
    console.print(table)
    console.print(f"target: under {TARGET_MS:g} ms added per call, median, on loopback")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
