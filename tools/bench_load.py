"""The load generator: `wrk` (Debian's package), driven by tools/bench_wrk.lua, and the server's CPU
and memory read from /proc around each measured window.

wrk is C: it costs a fraction of what a Python server does per request, so the figures are the
server's. Requests per second move with other work on the machine; the server's CPU per request
(utime + stime from /proc/PID/stat over the window) moves much less, so both are kept.

The server under test runs on one CPU and wrk on the others (`SERVER_CPUS`, `LOAD_CPUS`), as load
tests pin them: left to the scheduler, the two met on one CPU in some windows and not in others.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

WRK = "wrk"
APT = "/usr/bin/apt-get"
SCRIPT = Path(__file__).with_name("bench_wrk.lua")
TICKS = os.sysconf("SC_CLK_TCK")


def _split_cpus() -> tuple[frozenset[int], frozenset[int]]:
    """The first CPU this process may use for the server, the rest for the load (all of them on one)."""
    cpus = sorted(os.sched_getaffinity(0))
    return frozenset(cpus[:1]), frozenset(cpus[1:] or cpus)


SERVER_CPUS, LOAD_CPUS = _split_cpus()


def on_cpus(cpus: frozenset[int]) -> Callable[[], None]:
    """A `preexec_fn` that keeps the child, and every thread it starts, on `cpus`."""
    return functools.partial(os.sched_setaffinity, 0, cpus)


@contextlib.contextmanager
def running_on(cpus: frozenset[int]) -> Iterator[None]:
    """This thread on `cpus` until the block ends: a bench that is itself the client, as the load."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class Load:
    """The one request a window sends over and over."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""


@dataclass
class Window:
    """One measured window (or why there is none)."""

    requests: int = 0
    """Answers received, errors included."""
    status_errors: int = 0
    """Answers with a status ≥ 400."""
    socket_errors: int = 0
    seconds: float = 0.0
    cpu_seconds: float | None = None
    """The server process's user + system CPU over the window."""
    user_seconds: float | None = None
    """Its user CPU alone: the server's own work. The system part is mostly the loopback stack waking
    wrk on the other core, which on a VM moves by tens of µs a call from one window to the next."""
    p50_ms: float | None = None
    p99_ms: float | None = None
    failure: str | None = None

    @property
    def rps(self) -> float | None:
        """Successful answers a second."""
        ok = self.requests - self.status_errors
        return ok / self.seconds if self.failure is None and ok > 0 and self.seconds else None

    @property
    def us_per_request(self) -> float | None:
        """Server CPU per answer: steadier than req/s when other work shares the machine."""
        if self.cpu_seconds is None or not self.requests or self.failure is not None:
            return None
        return self.cpu_seconds / self.requests * 1e6

    @property
    def user_us_per_request(self) -> float | None:
        if self.user_seconds is None or not self.requests or self.failure is not None:
            return None
        return self.user_seconds / self.requests * 1e6


def ensure_wrk() -> str:
    """wrk's version, Debian's package installed first when missing (as root, or by `sudo -n`), as
    tools/install_chromium.sh does for chromium: the project's files install what it needs."""
    if shutil.which(WRK) is None:
        sudo = shutil.which("sudo")
        if os.geteuid() != 0 and sudo is None:
            raise SystemExit(
                "wrk is missing and this user cannot install it: run 'apt-get install wrk' as root"
            )
        print("installing Debian's wrk package (once)", file=sys.stderr)
        as_root = [] if os.geteuid() == 0 else [str(sudo), "-n"]
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run([*as_root, APT, "update", "-qq"], env=env, check=True)
            install = [*as_root, APT, "install", "-y", "-qq", "--no-install-recommends", "wrk"]
            subprocess.run(install, env=env, check=True)
        except (OSError, subprocess.CalledProcessError) as exc:
            raise SystemExit(f"installing wrk failed ({exc}): run 'apt-get install wrk' as root") from None
    answer = subprocess.run([WRK, "--version"], capture_output=True, text=True, check=False)
    return answer.stdout.split(" [")[0].strip()  # "wrk debian/4.1.0-3+b2 [epoll] Copyright ..."


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU of a process so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()  # the command name may hold spaces
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS  # utime and stime, fields 14 and 15


def wrk_command(base_url: str, load: Load, connections: int, threads: int, seconds: int) -> list[str]:
    command = [WRK, f"-c{connections}", f"-t{threads}", f"-d{seconds}s", "-s", str(SCRIPT)]
    for name, value in load.headers.items():
        command += ["-H", f"{name}: {value}"]
    return [*command, base_url + load.path]


def wrk_env(load: Load) -> dict[str, str]:
    return {**os.environ, "BENCH_METHOD": load.method, "BENCH_BODY": load.body.decode()}


def start_wrk(
    base_url: str, load: Load, connections: int, threads: int, seconds: int, output: int = subprocess.PIPE
) -> subprocess.Popen[str]:
    """wrk on `LOAD_CPUS`, its output (stdout and stderr) to `output`."""
    return subprocess.Popen(
        wrk_command(base_url, load, connections, threads, seconds),
        env=wrk_env(load),
        preexec_fn=on_cpus(LOAD_CPUS),
        stdout=output,
        stderr=output,
        text=True,
    )


def wrk_window(wrk: subprocess.Popen[str], seconds: int) -> Window:
    """The figures a run of wrk printed, once it ends."""
    try:
        stdout, stderr = wrk.communicate(timeout=seconds + 60)
    except subprocess.TimeoutExpired:
        wrk.kill()
        stdout, stderr = wrk.communicate()
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if wrk.returncode != 0 or not lines:
        return Window(failure=f"wrk exited {wrk.returncode}: {(stderr or stdout).strip()[-300:]}")
    return Window(**json.loads(lines[-1]))


def run_wrk(base_url: str, load: Load, connections: int, threads: int, seconds: int) -> Window:
    """One run of wrk, its figures as its script printed them."""
    return wrk_window(start_wrk(base_url, load, connections, threads, seconds), seconds)


def measure_together(
    targets: Sequence[tuple[str, Load, int]], *, connections: int, threads: int, warmup: int, duration: int
) -> list[Window]:
    """For each (base URL, load, server pid), all at the same time, a wrk each: a warm-up (its figures
    dropped), then a measured window (wrk takes whole seconds).

    Servers measured together share `SERVER_CPUS` and meet the same machine at every instant. On a
    shared 2-core VM, a held and a fresh mock measured one after the other gave held ÷ fresh anywhere
    from 0.58× to 1.31× in one run; measured together, 0.86–0.92×. Sharing a CPU, the server with the
    larger working set loses more of the caches to the other at each switch than it would alone: if
    anything, the figure errs against it."""
    if warmup > 0:
        for wrk in [start_wrk(url, load, connections, threads, warmup) for url, load, _ in targets]:
            wrk_window(wrk, warmup)
    before = [cpu_times(pid) for _, _, pid in targets]
    wrks = [start_wrk(url, load, connections, threads, duration) for url, load, _ in targets]
    windows = [wrk_window(wrk, duration) for wrk in wrks]
    for window, (_, _, pid), (user, system) in zip(windows, targets, before, strict=True):
        user_after, system_after = cpu_times(pid)
        window.user_seconds = user_after - user
        window.cpu_seconds = window.user_seconds + system_after - system
    return windows


def load_until(
    base_url: str, load: Load, *, connections: int, threads: int, enough: Callable[[], bool]
) -> None:
    """Send `load` until `enough()` (asked twice a second) says so: wrk has no request count."""
    with start_wrk(base_url, load, connections, threads, 24 * 3600, subprocess.DEVNULL) as wrk:
        try:
            while wrk.poll() is None and not enough():
                time.sleep(0.5)
        finally:
            wrk.send_signal(signal.SIGINT)  # wrk stops at once on SIGINT
            wrk.wait(timeout=30)
