"""Every command keeps its deadline against a gateway that stalls every way it can (issue 18).

A raw asyncio server plays the hostile gateway: a ten-year `Retry-After`, a status body dripped a
byte every 2 s, a status line and headers dripped a byte every 0.5 s (header lines without end), a
300 MB status body streamed on the fly, a gzip bomb (10 MB that decode to 10 GiB) as a status body
and as an image, a server that never answers, and an image dripped a byte every 2 s. The real
`boogu` commands run against it (in threads, so that the cases run side by side) with `--timeout`,
and each must end within its timeout + 2 s with a one-line error and the exit code of its kind — and
neither the 300 MB body nor the bomb may ever be read whole. `boogu batch` meets the same gateway
(its lines stay pending or uncertain, never lost), a slow but steady download still arrives, and the
rules behind it all are checked on a fake clock.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import os
import sys
import threading
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from boogu import (
    APITimeoutError,
    AsyncBoogu,
    Boogu,
    DownloadError,
    JobStatus,
    RateLimitError,
    WaitTimeoutError,
)
from boogu._retry import RetryPolicy, decide
from boogu.batch import BatchRunner, Journal, load_items
from boogu.cli import ExitCode, main
from contract_tests.client.helpers import (
    RID,
    STATUS_PATH,
    SUBMIT_PATH,
    FakeClock,
    answer,
    make_client,
    status_body,
)
from tools.processes import memory_kib

TIMEOUT = 3.9
"""The commands' --timeout. A body dripped every 2 s sends a byte at 0, 2 and 4 s after its call
began, and the calls begin within a second of the command: the first byte past the deadline comes
0.1 to about 1 s after it, never near the timeout + 2 s bound, nor before the deadline."""
SLACK = 2.0
TEN_YEARS = 315_360_000
DRIP_EVERY = 2.0
HUGE = 300 * 1024 * 1024
CHUNK = b"x" * 65536
SHUT = {"shut-job": TEN_YEARS, "shut-briefly-job": 30}
"""Submits answered 429 with this Retry-After."""
BODY_DRIPS = {"drip-job": DRIP_EVERY, "late-drip-job": 1.9}
"""Jobs whose status body is dripped, and the seconds between its bytes."""
HEADER_DRIP = 0.5
"""Seconds between the bytes of a dripped status line and headers."""
DRIPPED_HEADERS = {"drip-headers-job", "drip-headers-status-job"}
"""Jobs whose status call gets its status line and headers a byte at a time; a submit of
`drip-headers` gets its answer so too."""
BOMB_PIECE = zlib.compressobj(9, zlib.DEFLATED, 31)
BOMB_HEAD = BOMB_PIECE.compress(bytes(1 << 20)) + BOMB_PIECE.flush(zlib.Z_FULL_FLUSH)
BOMB_MIB = BOMB_PIECE.compress(bytes(1 << 20)) + BOMB_PIECE.flush(zlib.Z_FULL_FLUSH)
"""A gzip stream of zeros: a header and a MiB, then 1,037 bytes per MiB more (after a full flush each
MiB compresses alike), so 10 MB on the wire decode to 10 GiB."""
BOMB_GIB = 10
MEDIA_PACE = {"steady.jpeg": (192 * 1024, 16 * 1024, 0.1), "trickle.jpeg": (192 * 1024, 1024, 0.2)}
"""Images sent at a pace: (size, bytes at a time, seconds between): 160 KiB/s, and 5 KiB/s."""


class HostileGateway:
    """A gateway (a raw asyncio server in a thread) that stalls by design. The submit's prompt names
    the job, and the job's id names what its status does: `retry-after-job` answers 429 with a
    ten-year Retry-After, `drip-job` drips its body, `huge-job` streams 300 MB (`huge-error-job`: a
    500 of 300 MB), `silent-job` (and the submit of `silent`) never answers, and `slow-media-job` is
    COMPLETED with an image that drips. A submit of `shut` (`shut-briefly`) is answered 429 with a
    ten-year (30 s) Retry-After. `drip-headers-job` drips its status line and headers (its
    submit too), `gzip-bomb-job` answers a gzip bomb, and an image named `drip-headers...` or
    `gzip-bomb...` is sent the same way."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._handlers: set[asyncio.Task[None]] = set()
        self.base_url = ""
        self.submits: Counter[str] = Counter()
        """Submits answered 429, by job."""

    def __enter__(self) -> HostileGateway:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop
        ).result()
        self.base_url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    def __exit__(self, *exc: object) -> None:
        async def shutdown() -> None:
            self._server.close()
            for task in self._handlers:
                task.cancel()
            await asyncio.gather(*self._handlers, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            method, path, body = await _read_request(reader)
            await self._answer(method, path, body, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client gave up (what these tests want), or the server stops
        finally:
            self._handlers.discard(task)
            writer.close()

    async def _answer(
        self, method: str, path: str, body: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        job = f"{json.loads(body)['prompt']}-job" if method == "POST" else path.rsplit("/", 1)[-1]
        if job == "silent-job":
            await reader.read()  # never answers; returns when the client hangs up
        elif method == "POST" and job in SHUT:
            self.submits[job] += 1
            error = {"error": "Too Many Requests", "message": "the key is shut"}
            await _send(writer, 429, json.dumps(error).encode(), {"Retry-After": str(SHUT[job])})
        elif job == "drip-headers-job" or (method == "GET" and job in DRIPPED_HEADERS):
            await _drip_headers(reader, writer)
        elif method == "POST":
            queued = {
                "request_id": job,
                "status": "QUEUED",
                "polling_url": f"{self.base_url}/v2/requests/status/{job}",
            }
            await _send(writer, 202, json.dumps(queued).encode())
        elif path.startswith("/media/drip-headers"):
            await _drip_headers(reader, writer)
        elif path.startswith("/media/gzip-bomb"):
            await _gzip_bomb(writer, "image/jpeg")
        elif path.startswith("/media/"):
            size, piece, every = MEDIA_PACE.get(path.removeprefix("/media/"), (1000, 1, DRIP_EVERY))
            await _drip(reader, writer, "image/jpeg", b"\xff\xd8\xff" + bytes(size - 3), piece, every)
        elif job == "retry-after-job":
            error = {"error": "Too Many Requests", "message": "come back later"}
            await _send(writer, 429, json.dumps(error).encode(), {"Retry-After": str(TEN_YEARS)})
        elif job in BODY_DRIPS:
            await _drip(
                reader,
                writer,
                "application/json",
                json.dumps(status_body("COMPLETED", request_id=job)).encode(),
                every=BODY_DRIPS[job],
            )
        elif job == "gzip-bomb-job":
            await _gzip_bomb(writer, "application/json")
        elif job == "huge-job":
            await _stream_huge(writer, 200, {"Transfer-Encoding": "chunked"})
        elif job == "huge-error-job":
            await _stream_huge(writer, 500, {"Content-Length": str(HUGE)})
        else:
            media = {"media_url": [f"{self.base_url}/media/{job}.jpeg"], "media_type": "image/jpeg"}
            await _send(
                writer, 200, json.dumps(status_body("COMPLETED", request_id=job, output=media)).encode()
            )


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, bytes]:
    method, path, _ = (await reader.readline()).decode().split(" ", 2)
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return method, path, await reader.readexactly(length)


def _head(status: int, kind: str, extra: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Type: {kind}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send(
    writer: asyncio.StreamWriter, status: int, body: bytes, extra: dict[str, str] | None = None
) -> None:
    writer.write(
        _head(status, "application/json", {"Content-Length": str(len(body)), **(extra or {})}) + body
    )
    await writer.drain()


async def _drip(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    kind: str,
    body: bytes,
    piece: int = 1,
    every: float = DRIP_EVERY,
) -> None:
    """`piece` bytes every `every` seconds (a byte every 2 s), until the client hangs up."""
    writer.write(_head(200, kind, {"Content-Length": str(len(body))}))
    for start in range(0, len(body), piece):
        if reader.at_eof():
            return
        writer.write(body[start : start + piece])
        await writer.drain()
        await asyncio.sleep(every)


async def _drip_headers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A status line, then header lines without end, a byte every 0.5 s, until the client hangs up."""
    pads = (b"X-Pad-%d: xxxxxxxx\r\n" % n for n in itertools.count())
    lines = itertools.chain([b"HTTP/1.1 200 OK\r\n"], pads)
    for line in lines:
        for byte in line:
            if reader.at_eof():
                return
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(HEADER_DRIP)


async def _gzip_bomb(writer: asyncio.StreamWriter, kind: str) -> None:
    """10 MB of gzip that decode to 10 GiB of zeros, sent as fast as the client reads, chunked,
    though the client asked for `Accept-Encoding: identity`."""
    writer.write(_head(200, kind, {"Transfer-Encoding": "chunked", "Content-Encoding": "gzip"}))
    chunk = BOMB_MIB * 64
    for data in (BOMB_HEAD, *(chunk for _ in range(BOMB_GIB * 1024 // 64))):
        writer.write(b"%x\r\n%s\r\n" % (len(data), data))
        await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def _stream_huge(writer: asyncio.StreamWriter, status: int, framing: dict[str, str]) -> None:
    """300 MB made on the fly: chunked (no Content-Length to refuse it by), or with its length."""
    chunked = "Transfer-Encoding" in framing
    writer.write(_head(status, "application/json", framing))
    for _ in range(HUGE // len(CHUNK)):
        writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
        await writer.drain()
    writer.write(b"0\r\n\r\n" if chunked else b"")
    await writer.drain()


class PerThread(io.TextIOBase):
    """sys.stdout / sys.stderr for commands run in threads: each thread writes to its own buffer."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def buffer_of_thread(self) -> io.StringIO:
        if not hasattr(self._local, "buffer"):
            self._local.buffer = io.StringIO()
        buffer: io.StringIO = self._local.buffer
        return buffer

    def write(self, text: str) -> int:
        return self.buffer_of_thread.write(text)

    def isatty(self) -> bool:
        return False


@dataclass
class Run:
    argv: list[str]
    code: int
    seconds: float
    err: str

    @property
    def error_line(self) -> str:
        return self.err.strip().splitlines()[-1] if self.err.strip() else ""


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileGateway]:
    with HostileGateway() as gateway:
        yield gateway


@pytest.fixture
def gateway(hostile: HostileGateway, monkeypatch: pytest.MonkeyPatch) -> HostileGateway:
    """The hostile gateway, where `boogu` finds it: through the environment, as a user would set it."""
    monkeypatch.setenv("BOOGU_API_KEY", "test-key")
    monkeypatch.setenv("BOOGU_BASE_URL", hostile.base_url)
    return hostile


def run_side_by_side(tmp_path: Path, *argvs: list[str]) -> list[Run]:
    """Each `boogu ARGV` in a thread of its own, all at once; what each printed and how long it took."""
    stdout, stderr = PerThread(), PerThread()

    def one(number: int, argv: list[str]) -> Run:
        argv = [arg.replace("{out}", str(tmp_path / f"out-{number}")) for arg in argv]
        start = time.monotonic()
        code = main(argv)
        seconds = time.monotonic() - start
        return Run(argv, code, seconds, stderr.buffer_of_thread.getvalue())

    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = stdout, stderr
    try:
        with ThreadPoolExecutor(len(argvs)) as pool:
            return list(pool.map(one, range(len(argvs)), argvs))
    finally:
        sys.stdout, sys.stderr = saved


def commands(job: str) -> list[list[str]]:
    timeout = ["--timeout", str(TIMEOUT)]
    return [
        ["status", job, *timeout],
        ["wait", job, *timeout],
        ["download", job, "--out", "{out}", *timeout],
        ["generate", job.removesuffix("-job"), "--out", "{out}", "--expected-seconds", "0.4", *timeout],
    ]


def check(run: Run, code: ExitCode, *words: str) -> None:
    assert run.code == code, (run.argv, run.err)
    assert run.seconds <= TIMEOUT + SLACK, (run.argv, run.seconds, run.err)
    assert "Traceback" not in run.err, run.err
    assert run.error_line.startswith("boogu: "), run.err
    for word in words:
        assert word in run.error_line, (word, run.error_line)


def test_a_ten_year_retry_after_ends_every_command_at_once_and_is_named(
    gateway: HostileGateway, tmp_path: Path
) -> None:
    status, wait, download, generate = run_side_by_side(tmp_path, *commands("retry-after-job"))
    for run in (status, download):
        check(run, ExitCode.RATE_LIMITED, f"Retry-After {TEN_YEARS} s")
    for run in (wait, generate):  # the job goes on: `boogu wait` picks it up again
        check(run, ExitCode.WAIT_TIMEOUT, f"{TEN_YEARS} s (Retry-After)", "retry-after-job")
    assert max(run.seconds for run in (status, wait, download, generate)) < 1.5


def test_a_body_dripped_a_byte_every_2_s_or_no_answer_at_all_ends_at_the_deadline(
    gateway: HostileGateway, tmp_path: Path
) -> None:
    """httpx's read timeout counts from the last byte: a drip never trips it, the deadline does."""
    drip = run_side_by_side(
        tmp_path, *commands("drip-job"), *commands("slow-media-job")[2:], *commands("silent-job")
    )
    status, wait, download, generate, download_image, generate_image, *silent = drip
    for run in (status, download):
        check(run, ExitCode.CONNECTION_ERROR, "timed out", "deadline")
    for run in (wait, generate):
        check(run, ExitCode.WAIT_TIMEOUT, "did not finish within", "deadline")
    for run in (download_image, generate_image):  # the status is fine, the image drips
        check(run, ExitCode.DOWNLOAD_FAILED, "deadline")
    assert not list(tmp_path.rglob("*.jpeg*")), "a part file was left behind"

    status, wait, download, generate = silent
    for run in (status, download):
        check(run, ExitCode.CONNECTION_ERROR, "timed out")
    check(wait, ExitCode.WAIT_TIMEOUT, "did not finish within")
    # the submit itself was never answered: the job may exist, and the error says so
    check(generate, ExitCode.CONNECTION_ERROR, "submit_text_to_image timed out", "may have accepted")
    assert all(run.seconds >= TIMEOUT - 0.5 for run in silent)


def test_a_status_line_and_headers_dripped_byte_by_byte_end_at_the_deadline(
    gateway: HostileGateway, tmp_path: Path
) -> None:
    """httpcore gives every read of a status line and headers the read timeout afresh, so a byte every
    0.5 s, in header lines without end, never trips it: the deadline bounds each read below httpx."""
    runs = run_side_by_side(tmp_path, *commands("drip-headers-job"), *commands("drip-headers-media-job")[2:])
    status, wait, download, generate, download_image, generate_image = runs
    for run in (status, download):
        check(run, ExitCode.CONNECTION_ERROR, "timed out", "deadline")
    check(wait, ExitCode.WAIT_TIMEOUT, "did not finish within", "deadline")
    # the submit's answer dripped: the job may exist, and the error says so
    check(generate, ExitCode.CONNECTION_ERROR, "submit_text_to_image timed out", "may have accepted")
    for run in (download_image, generate_image):  # the status is fine, the image's headers drip
        check(run, ExitCode.DOWNLOAD_FAILED, "deadline")
    assert all(run.seconds >= TIMEOUT - 0.5 for run in runs)


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_status_line_and_headers_must_arrive_within_the_read_timeout(
    hostile: HostileGateway, flavour: str
) -> None:
    """Without a deadline too: the headers get the read timeout in all, not each byte of them."""
    start = time.monotonic()
    expected = "the status line and headers took longer than the 1 s read timeout"
    options: dict[str, Any] = {"base_url": hostile.base_url, "timeout": 1.0, "max_retries": 0}

    async def status() -> JobStatus:
        if flavour == "sync":
            with Boogu("test-key", **options) as client:
                return await asyncio.to_thread(client.status, "drip-headers-job")
        async with AsyncBoogu("test-key", **options) as aclient:
            return await aclient.status("drip-headers-job")

    with pytest.raises(APITimeoutError, match=expected):
        await status()
    assert 0.9 <= time.monotonic() - start <= 1.6


@pytest.mark.parametrize("flavour", ["sync", "async"])
async def test_a_dripped_body_ends_at_the_deadline_not_at_its_next_byte(
    hostile: HostileGateway, flavour: str
) -> None:
    """A byte every 1.9 s and a 2 s limit: a read waits no longer than the deadline, so the call ends
    at it, not with the byte 1.8 s after it (nor a read timeout after it)."""

    async def status() -> JobStatus:
        if flavour == "sync":
            with Boogu("test-key", base_url=hostile.base_url) as client, client.time_limit(2.0):
                return await asyncio.to_thread(client.status, "late-drip-job")  # the block's context
        async with AsyncBoogu("test-key", base_url=hostile.base_url) as aclient:
            with aclient.time_limit(2.0):
                return await aclient.status("late-drip-job")

    start = time.monotonic()
    with pytest.raises(APITimeoutError, match="deadline"):
        await status()
    assert time.monotonic() - start <= 2.6


def peak_growth_mib(work: Callable[[], object]) -> float:
    """How far this process's resident memory peaked above where it stood while `work` ran, in MiB:
    the kernel's peak (VmHWM), reset first (`clear_refs`)."""
    Path("/proc/self/clear_refs").write_text("5")
    before = memory_kib(os.getpid())["VmRSS"]
    work()
    return (memory_kib(os.getpid())["VmHWM"] - before) / 1024


def test_a_gzip_bomb_is_refused_at_the_cap_of_what_it_decodes_to(
    gateway: HostileGateway, tmp_path: Path
) -> None:
    """10 MB of gzip that decode to 10 GiB, sent although the client asked for no compression: a
    status body is refused once it decodes past 4 MiB, an image past 64 MiB, decoded a piece at a
    time, so memory stays small."""
    runs: list[Run] = []
    growth = peak_growth_mib(
        lambda: runs.extend(
            run_side_by_side(tmp_path, *commands("gzip-bomb-job"), *commands("gzip-bomb-media-job")[2:])
        )
    )
    *answers, download_image, generate_image = runs
    for run in answers:  # status, wait, download, generate
        check(run, ExitCode.CONNECTION_ERROR, "gzip-compressed", "decodes to over the 4 MiB cap")
    for run in (download_image, generate_image):
        check(run, ExitCode.DOWNLOAD_FAILED, "decodes to over the 64 MiB cap")
    assert not list(tmp_path.rglob("*.jpeg*")), "a part file was left behind"
    assert growth < 100, f"memory peaked {growth:.0f} MiB higher: the bomb was decoded whole"


def test_a_300_mb_status_body_is_refused_at_the_cap_never_read_whole(
    gateway: HostileGateway, tmp_path: Path
) -> None:
    tracemalloc.start()
    try:
        *runs, error = run_side_by_side(tmp_path, *commands("huge-job"), ["status", "huge-error-job"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for run in runs:  # status, wait, download, generate: a chunked body, cut at the cap
        check(run, ExitCode.CONNECTION_ERROR, "over the 4 MiB cap")
    # a 500 whose Content-Length says 300 MB: refused before a byte of it is read
    check(error, ExitCode.CONNECTION_ERROR, f"{HUGE} bytes (Content-Length), over the 4 MiB cap")
    assert peak < 50 * 1024 * 1024, f"{peak / 2**20:.0f} MiB allocated at the peak: the body was read whole"


@pytest.mark.parametrize(
    ("job", "counted"),
    [("retry-after", f"{TEN_YEARS} s (Retry-After)"), ("huge", "over the 4 MiB cap")],
)
def test_boogu_batch_inherits_the_deadlines_and_keeps_the_job(
    gateway: HostileGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path, job: str, counted: str
) -> None:
    """The line's job is accepted, its status calls stall: the batch ends soon, the line pending."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(json.dumps({"prompt": job}) + "\n")
    start = time.monotonic()
    code = main(
        ["batch", str(source), "--out", str(tmp_path / "out"), "--json", "--seconds-per-step", "0.005"]
    )
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    assert code == ExitCode.BATCH_INCOMPLETE, err
    summary = json.loads(out)
    assert summary["pending"] == 1 and summary["pending_lines"] == ["line-1"]
    assert counted in err and "Traceback" not in err
    assert seconds < 5.0


@pytest.mark.parametrize(
    ("job", "left"),
    [
        ("drip", "pending_lines"),
        ("silent", "uncertain_lines"),
        ("drip-headers-status", "pending_lines"),
        ("drip-headers", "uncertain_lines"),
    ],
)
def test_boogu_batch_timeout_ends_the_run_at_its_deadline_and_loses_no_job(
    gateway: HostileGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path, job: str, left: str
) -> None:
    """What stalls at the deadline stays in the journal: an accepted job whose status drips (its body,
    or its headers) is pending (the next run waits for it), a submit never answered, or answered with
    dripped headers, is uncertain (it may exist)."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(json.dumps({"prompt": job}) + "\n")
    out_dir = str(tmp_path / "out")
    start = time.monotonic()
    code = main(["batch", str(source), "--out", out_dir, "--json", "--timeout", str(TIMEOUT)])
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    assert code == ExitCode.BATCH_INCOMPLETE, err
    assert json.loads(out)[left] == ["line-1"]
    assert seconds <= TIMEOUT + SLACK and "Traceback" not in err


@pytest.mark.parametrize(
    ("job", "timeout", "why"),
    [
        ("shut", [], f"Retry-After {TEN_YEARS} s is longer than the 60 s cap"),
        ("shut-briefly", ["--timeout", "20"], "Retry-After 30 s ends past the deadline"),
    ],
)
def test_a_submit_told_to_come_back_after_the_cap_or_the_deadline_is_rejected_at_once(
    gateway: HostileGateway,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    job: str,
    timeout: list[str],
    why: str,
) -> None:
    """A 429 made no job, so the submit could be sent again, but not after a Retry-After longer than
    the cap (a batch waited 60 s a try, 20 tries) or than the time left: the line is rejected at
    once, with why, and not sent again in this run; a rerun tries it again."""
    source = tmp_path / "jobs.jsonl"
    source.write_text(json.dumps({"prompt": job}) + "\n")
    start = time.monotonic()
    code = main(["batch", str(source), "--out", str(tmp_path / "out"), "--json", *timeout])
    seconds = time.monotonic() - start
    out, err = capsys.readouterr()
    summary = json.loads(out)
    assert code == ExitCode.BATCH_INCOMPLETE and seconds < 3.0, (seconds, err)
    assert summary["rejected"] == 1 and why in summary["rejected_lines"]["line-1"]
    assert f"line-1: rejected: 429 Too Many Requests: the key is shut; not retried: {why}" in err
    assert gateway.submits[f"{job}-job"] == 1


async def test_a_batch_in_a_time_limit_block_ends_at_its_deadline(
    hostile: HostileGateway, tmp_path: Path
) -> None:
    """The library's own way: `time_limit` around `BatchRunner.run`."""
    source = tmp_path / "drip.jsonl"
    source.write_text(json.dumps({"prompt": "drip"}) + "\n")
    async with AsyncBoogu("test-key", base_url=hostile.base_url, seconds_per_unit=0.005) as client:
        runner = BatchRunner(
            client, load_items(source), Journal(tmp_path / "journal.jsonl"), tmp_path / "out"
        )
        start = time.monotonic()
        with client.time_limit(TIMEOUT):
            summary = await runner.run()
    assert time.monotonic() - start <= TIMEOUT + SLACK
    assert summary.pending_lines == ["line-1"]


def test_a_download_outlasts_its_read_timeout_only_at_a_fair_rate(
    hostile: HostileGateway, tmp_path: Path
) -> None:
    """An image at 160 KiB/s arrives whole though it takes over twice its read timeout; one at 5 KiB/s
    (a KiB every 0.2 s never trips httpx's own read timeout) is abandoned soon after it."""

    def download(name: str) -> tuple[float, list[Path] | DownloadError]:
        media = {"media_url": [f"{hostile.base_url}/media/{name}"], "media_type": "image/jpeg"}
        status = JobStatus.parse(
            status_body("COMPLETED", request_id=name.removesuffix(".jpeg"), output=media)
        )
        start = time.monotonic()
        with Boogu("test-key", base_url=hostile.base_url, timeout=0.5, max_retries=0) as client:
            try:
                outcome: list[Path] | DownloadError = client.download(status, tmp_path)
            except DownloadError as exc:
                outcome = exc
        return time.monotonic() - start, outcome

    with ThreadPoolExecutor(2) as pool:
        (steady_seconds, steady), (trickle_seconds, trickle) = pool.map(
            download, ["steady.jpeg", "trickle.jpeg"]
        )
    assert isinstance(steady, list) and steady[0].stat().st_size == 192 * 1024, steady
    assert steady_seconds > 1.0  # well past its 0.5 s read timeout
    assert isinstance(trickle, DownloadError) and "read timeout" in str(trickle)
    assert trickle_seconds < 1.5


# The rules themselves, without a network or on a fake clock ---------------------------------------------


def test_a_retry_after_past_the_deadline_or_the_cap_is_named_not_waited() -> None:
    policy = RetryPolicy()
    late = decide(
        idempotent=True, retries_done=0, policy=policy, rand=0, status_code=429, retry_after=5, time_left=3
    )
    assert not late.retry and late.note == "not retried: Retry-After 5 s ends past the deadline, 3.0 s away"
    long = decide(
        idempotent=True, retries_done=0, policy=policy, rand=0, status_code=429, retry_after=TEN_YEARS
    )
    assert (
        not long.retry and long.note == f"not retried: Retry-After {TEN_YEARS} s is longer than the 60 s cap"
    )


def test_a_ten_year_retry_after_on_a_submit_holds_nothing_back(
    router: respx.MockRouter, clock: FakeClock
) -> None:
    router.post(SUBMIT_PATH).mock(return_value=answer(429, **{"Retry-After": str(TEN_YEARS)}))
    router.get(STATUS_PATH).mock(return_value=_ok())
    with make_client(clock) as client:
        with pytest.raises(RateLimitError) as caught:
            client.generate("a fox")
        assert f"Retry-After {TEN_YEARS} s is longer than the 60 s cap" in str(caught.value)
        assert client.status(RID).status == "COMPLETED"  # the limiter was not shut for ten years
        assert client.rate_limit_delay(TEN_YEARS) is None  # not worth waiting for
        delay = client.rate_limit_delay(30)
        assert delay is not None and 30 <= delay <= 30 * 1.25
        with client.time_limit(20):
            assert client.rate_limit_delay(30) is None  # it ends past the deadline
    assert clock.sleeps == []


def test_a_time_limit_block_bounds_a_wait_and_nests(router: respx.MockRouter, clock: FakeClock) -> None:
    router.get(STATUS_PATH).mock(return_value=_ok("PROCESSING"))
    start = clock.mono
    with (
        make_client(clock) as client,
        client.time_limit(20),
        client.time_limit(8),
        pytest.raises(WaitTimeoutError),
    ):
        client.wait(RID, timeout=600)
    assert clock.mono - start == pytest.approx(8.0)


def _ok(status: str = "COMPLETED") -> httpx.Response:
    return httpx.Response(200, json=status_body(status))
