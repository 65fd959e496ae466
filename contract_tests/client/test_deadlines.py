"""Every command keeps its deadline against a gateway that stalls every way it can (issue 18).

A raw asyncio server plays the hostile gateway: a ten-year `Retry-After`, a status body dripped a
byte every 2 s, a 300 MB status body streamed on the fly, a server that never answers, and an image
dripped a byte every 2 s. The real `boogu` commands run against it (in threads, so that the cases
run side by side) with `--timeout`, and each must end within its timeout + 2 s with a one-line error
and the exit code of its kind — and the 300 MB body must never be read whole. `boogu batch` meets
the same gateway (its lines stay pending or uncertain, never lost), a slow but steady download still
arrives, and the rules behind it all are checked on a fake clock.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import respx

from boogu import AsyncBoogu, Boogu, DownloadError, JobStatus, RateLimitError, WaitTimeoutError
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

TIMEOUT = 3.9
"""The commands' --timeout. A body dripped every 2 s sends a byte at 0, 2 and 4 s after its call
began, and the calls begin within a second of the command: the first byte past the deadline comes
0.1 to about 1 s after it, never near the timeout + 2 s bound, nor before the deadline."""
SLACK = 2.0
TEN_YEARS = 315_360_000
DRIP_EVERY = 2.0
HUGE = 300 * 1024 * 1024
CHUNK = b"x" * 65536
MEDIA_PACE = {"steady.jpeg": (192 * 1024, 16 * 1024, 0.1), "trickle.jpeg": (192 * 1024, 1024, 0.2)}
"""Images sent at a pace: (size, bytes at a time, seconds between): 160 KiB/s, and 5 KiB/s."""


class HostileGateway:
    """A gateway (a raw asyncio server in a thread) that stalls by design. The submit's prompt names
    the job, and the job's id names what its status does: `retry-after-job` answers 429 with a
    ten-year Retry-After, `drip-job` drips its body, `huge-job` streams 300 MB (`huge-error-job`: a
    500 of 300 MB), `silent-job` (and the submit of `silent`) never answers, and `slow-media-job` is
    COMPLETED with an image that drips."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._handlers: set[asyncio.Task[None]] = set()
        self.base_url = ""

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
        elif method == "POST":
            queued = {
                "request_id": job,
                "status": "QUEUED",
                "polling_url": f"{self.base_url}/v2/requests/status/{job}",
            }
            await _send(writer, 202, json.dumps(queued).encode())
        elif path.startswith("/media/"):
            size, piece, every = MEDIA_PACE.get(path.removeprefix("/media/"), (1000, 1, DRIP_EVERY))
            await _drip(reader, writer, "image/jpeg", b"\xff\xd8\xff" + bytes(size - 3), piece, every)
        elif job == "retry-after-job":
            error = {"error": "Too Many Requests", "message": "come back later"}
            await _send(writer, 429, json.dumps(error).encode(), {"Retry-After": str(TEN_YEARS)})
        elif job == "drip-job":
            await _drip(
                reader,
                writer,
                "application/json",
                json.dumps(status_body("COMPLETED", request_id=job)).encode(),
            )
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


@pytest.mark.parametrize(("job", "left"), [("drip", "pending_lines"), ("silent", "uncertain_lines")])
def test_boogu_batch_timeout_ends_the_run_at_its_deadline_and_loses_no_job(
    gateway: HostileGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path, job: str, left: str
) -> None:
    """What stalls at the deadline stays in the journal: an accepted job whose status drips is
    pending (the next run waits for it), a submit never answered is uncertain (it may exist)."""
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
        assert client.rate_limit_delay(TEN_YEARS) <= 60 * 1.25
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
