"""Processes, for tools and tests alike: run a command to its end (or a timeout) and keep everything it
printed; read a running process's memory and CPU as the kernel counts them."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_captured(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float
) -> tuple[int | None, str]:
    """The exit code (None when `timeout` s ran out first) and stdout and stderr interleaved."""
    try:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        output = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output or ""
        return None, output
    return result.returncode, result.stdout


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak) of process `pid`, in KiB, from /proc/<pid>/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}


def cpu_seconds_run(pid: int) -> float:
    """Seconds that process `pid`'s threads have run on a CPU, from the scheduler's own clock
    (/proc/<pid>/task/*/schedstat, ns): exact, where /proc/<pid>/stat samples at each timer tick and
    misjudges a process that runs in short, regular bursts (one call at a time). A thread that ends
    while its siblings are read takes its time with it, as it would a moment later."""
    nanoseconds = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            nanoseconds += int((task / "schedstat").read_text().split()[0])
    return nanoseconds / 1e9
