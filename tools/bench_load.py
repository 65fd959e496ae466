"""The load generator: keep-alive connections to a loopback server, one request in flight on each.

`measure()` runs it as a process of its own (`python -m tools.bench_load`), so that its CPU is apart
from the caller's and the server's: a warm-up, then a measured window whose figures it prints as one
JSON line. Only 2xx answers count as successes; anything else is an error.

It is a single-threaded asyncio client with just enough HTTP/1.1 to find where each response ends:
an HTTP library's own cost would cap the figures below what a fast server can answer (`canned` in
`tools.bench_servers` shows the ceiling).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from tools.bench_cpu import CpuWindow
from tools.processes import run_captured

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class LoadResult:
    """The figures of one measured window (or why there are none)."""

    target: str = ""
    operation: str = ""
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rps: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    server_cpu: float | None = None
    """Server process (and its children) CPU during the window, in cores (1.0 = one core busy)."""
    client_cpu: float | None = None
    """The load generator's CPU during the window, in cores."""
    client_us_per_request: float | None = None
    other_cpu: float | None = None
    """CPU the rest of the machine used during the window, in cores: other work skews the figures."""
    failure: str | None = None
    """Why there is no figure (server did not start, generator crashed, ...)."""

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def server_us_per_request(self) -> float | None:
        """Server CPU per answered request: steadier than req/s when other work shares the machine."""
        answered = self.ok + self.error_count
        if self.server_cpu is None or not answered:
            return None
        return self.server_cpu * self.seconds / answered * 1e6


@dataclass(frozen=True)
class Request:
    """The one request a load sends over and over."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes = b""

    def wire(self, port: int) -> bytes:
        """The request as sent, built once: every connection writes the same bytes."""
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method == "POST":
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


def measure(
    port: int,
    request: Request,
    *,
    server_pid: int,
    connections: int,
    warmup: float,
    duration: float,
) -> LoadResult:
    """Load a loopback server from a fresh generator process; its figures, or a failure."""
    command = [sys.executable, "-m", "tools.bench_load", "--port", str(port), "--server-pid", str(server_pid)]
    command += [f"--method={request.method}", f"--path={request.path}", f"--body={request.body.decode()}"]
    command += [f"--header={name}: {value}" for name, value in request.headers.items()]
    command += ["--connections", str(connections), "--warmup", str(warmup), "--duration", str(duration)]
    code, output = run_captured(command, cwd=ROOT, env=os.environ, timeout=warmup + duration + 60)
    if code != 0:
        why = "did not finish" if code is None else f"exited {code}"
        return LoadResult(failure=f"the load generator {why}: {output.strip()[-300:]}")
    return LoadResult(**json.loads(output.strip().splitlines()[-1]))


# The generator process ----------------------------------------------------------------------------

WARMUP, MEASURE, DONE = 0, 1, 2
READ_SIZE = 64 * 1024


class _Tally:
    """What the connections saw during the measured window."""

    def __init__(self) -> None:
        self.phase = WARMUP
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.latencies: list[float] = []

    def answered(self, status: int, latency: float) -> None:
        if self.phase != MEASURE:
            return
        if 200 <= status < 300:
            self.ok += 1
            self.latencies.append(latency)
        else:
            self.errors[f"HTTP {status}"] += 1

    def failed(self, kind: str) -> None:
        if self.phase == MEASURE:
            self.errors[kind] += 1


class _ResponseParser:
    """Just enough HTTP/1.1 to find where each response ends: Content-Length or chunked bodies."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._status = 0
        self._close = False
        self._need = -1  # bytes of buffer that make the whole response, -1 while in the head
        self._chunked = False

    def feed(self, data: bytes | memoryview) -> Iterator[tuple[int, bool]]:
        """Yields (status, server wants the connection closed) for every complete response."""
        self.buffer += data
        while True:
            if self._need < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).lower()
                self._status = int(head[9:12])
                self._close = b"\r\nconnection: close" in head
                start = head.find(b"\r\ncontent-length:")
                if start >= 0:
                    stop = head.find(b"\r\n", start + 2)
                    length = int(head[start + 17 : stop if stop >= 0 else None])
                    self._need, self._chunked = end + 4 + length, False
                elif b"\r\ntransfer-encoding: chunked" in head:
                    del self.buffer[: end + 4]
                    self._need, self._chunked = 0, True
                else:
                    raise ValueError("a response without Content-Length or chunked encoding")
            if self._chunked:
                if not self._skip_chunks():
                    return
            elif len(self.buffer) >= self._need:
                del self.buffer[: self._need]
            else:
                return
            self._need = -1
            yield self._status, self._close

    def _skip_chunks(self) -> bool:
        """Consume chunks from the buffer; True once the last chunk and its trailer are consumed."""
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return False
            size = int(bytes(self.buffer[:line_end]).split(b";")[0], 16)
            if size == 0:
                trailer_end = self.buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0:
                    return False
                del self.buffer[: trailer_end + 4]
                return True
            if len(self.buffer) < line_end + 2 + size + 2:
                return False
            del self.buffer[: line_end + 2 + size + 2]


class _Connection(asyncio.BufferedProtocol):
    """One keep-alive connection with one request in flight (no pipelining).

    A BufferedProtocol: the socket reads into one buffer that all connections share (they take turns
    on one thread). asyncio.Protocol would allocate 256 KiB per read, which glibc may serve with an
    mmap each time, depending on what the process allocated before: that doubled this generator's
    CPU per request and made it differ from one process to the next.
    """

    def __init__(self, load: _Load) -> None:
        self.load = load
        self.parser = _ResponseParser()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.in_flight = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.send()

    def send(self) -> None:
        assert self.transport is not None
        self.in_flight = True
        self.sent_at = time.perf_counter()
        self.transport.write(self.load.request)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.load.scratch

    def buffer_updated(self, nbytes: int) -> None:
        assert self.transport is not None
        try:
            for status, close in self.parser.feed(self.load.scratch[:nbytes]):
                self.in_flight = False
                self.load.tally.answered(status, time.perf_counter() - self.sent_at)
                if close or self.load.tally.phase == DONE:
                    self.transport.close()
                    return
                self.send()
        except ValueError:
            self.load.tally.failed("bad response")
            self.in_flight = False
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.in_flight:
            self.load.tally.failed("connection lost")
        self.load.reconnect()


class _Load:
    """The connections, reopened when a server closes one, until the window is done."""

    def __init__(self, port: int, request: bytes) -> None:
        self.port, self.request = port, request
        self.scratch = memoryview(bytearray(READ_SIZE))
        self.tally = _Tally()
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.BaseTransport] = set()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        while self.tally.phase != DONE:
            try:
                transport, _ = await loop.create_connection(lambda: _Connection(self), HOST, self.port)
            except OSError:
                self.tally.failed("connect failed")
                await asyncio.sleep(0.05)
                continue
            self._transports.add(transport)
            return

    def reconnect(self) -> None:
        if self.tally.phase == DONE:
            return
        task = asyncio.get_running_loop().create_task(self.connect())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, connections: int, warmup: float, duration: float, window: CpuWindow) -> float:
        """The measured window's length in seconds."""
        await asyncio.gather(*(self.connect() for _ in range(connections)))
        await asyncio.sleep(warmup)
        window.open()
        self.tally.phase = MEASURE
        started = time.perf_counter()
        await asyncio.sleep(duration)
        self.tally.phase = DONE
        elapsed = time.perf_counter() - started
        window.close()
        for transport in self._transports:
            transport.close()
        for task in list(self._tasks):
            task.cancel()
        return elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="One measured window of load on a loopback server (JSON out).")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--method", default="GET")
    p.add_argument("--path", required=True)
    p.add_argument("--header", action="append", default=[], help="NAME: VALUE, repeatable")
    p.add_argument("--body", default="")
    p.add_argument("--server-pid", type=int, help="whose CPU to read (with its children)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args(argv)
    headers = {name.strip(): value.strip() for name, _, value in (h.partition(":") for h in args.header)}
    request = Request(args.method, args.path, headers, args.body.encode())
    window = CpuWindow(args.server_pid)
    load = _Load(args.port, request.wire(args.port))
    elapsed = asyncio.run(load.run(args.connections, args.warmup, args.duration, window))
    tally = load.tally
    latencies = sorted(tally.latencies)
    answered = tally.ok + sum(tally.errors.values())
    result = LoadResult(
        ok=tally.ok,
        errors=dict(tally.errors),
        seconds=elapsed,
        rps=tally.ok / elapsed if elapsed else 0.0,
        p50_ms=latencies[len(latencies) // 2] * 1000 if latencies else None,
        p99_ms=latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
        server_cpu=window.server,
        client_cpu=window.client,
        other_cpu=window.other,
        client_us_per_request=window.client * elapsed / answered * 1e6 if tally.ok else None,
    )
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
