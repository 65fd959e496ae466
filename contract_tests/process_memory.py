"""A server process's memory as the kernel counts it: what the hostile tests measure a server kept."""

from __future__ import annotations

from pathlib import Path


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (the peak) of process `pid`, in KiB, from /proc/<pid>/status."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return {name: int(fields[name].split()[0]) for name in ("VmRSS", "VmHWM")}
