"""CPU time of the server, the load generator and the rest of the machine over a measured window.

Requests per second alone cannot tell a slow server from a busy machine; these figures can. Read from
/proc (Linux): elsewhere the server's and the machine's figures are None.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; the fields after it are fixed.
    return text[text.rfind(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    """`root` and its descendants (a server may fork workers), or just `root` without /proc."""
    children: dict[int, list[int]] = {}
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = _proc_stat(int(entry))
                if fields is not None:
                    children.setdefault(int(fields[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def cpu_seconds(pids: list[int]) -> float | None:
    """User + system CPU of these processes, or None when it cannot be read."""
    total = 0
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is None:
            return None
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15 of stat)
    return total / _TICKS


def machine_busy_seconds() -> float | None:
    """CPU time all processors spent busy since boot (/proc/stat), or None without /proc."""
    try:
        line = Path("/proc/stat").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in line.split()[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICKS


class CpuWindow:
    """CPU, in cores (1.0 = one core busy), of this process, the server and everything else on the
    machine between open() and close()."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pids = process_tree(server_pid) if server_pid else []
        self.client = 0.0
        self.server: float | None = None
        self.other: float | None = None
        self._wall = 0.0
        self._busy: float | None = None

    def open(self) -> None:
        self._wall = time.perf_counter()
        self.client = time.process_time()
        self.server = cpu_seconds(self.server_pids) if self.server_pids else None
        self._busy = machine_busy_seconds()

    def close(self) -> None:
        wall = time.perf_counter() - self._wall
        self.client = (time.process_time() - self.client) / wall
        after = cpu_seconds(self.server_pids) if self.server_pids else None
        self.server = (after - self.server) / wall if after is not None and self.server is not None else None
        busy = machine_busy_seconds()
        if busy is not None and self._busy is not None and self.server is not None:
            self.other = max(0.0, (busy - self._busy) / wall - self.server - self.client)
