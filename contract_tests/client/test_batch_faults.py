"""A batch under local faults and a hostile world (issue 18): no local write error loses a paid job,
distinct lines never share a file, a stop sends nothing more, a webhook log proves only this
journal's jobs, and a damaged journal is not trusted. Faults are real where this machine allows:
a tmpfs mounted for the test (we are root in CI), else an OSError injected at the file write."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import errno
import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest
from boogu_image_client.models import RequestStatus
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import boogu._flows
from boogu import AsyncBoogu, JobStatus, Result
from boogu.batch import BatchRunner, BatchSummary, Journal, load_items
from boogu.cli import ExitCode, main
from boogu.webhooks import WebhookReceiver, log_record, read_webhook_log
from contract_tests.client.helpers import image_bytes, mock_async_client, status_body, wallet
from mock_gateway.model import MockConfig
from mock_gateway.testing import LiveServer, MockGateway

pytestmark = pytest.mark.mock_gateway(speed=1000)
PRICE = Decimal("0.02")


def jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def foxes(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"prompt": f"fox {i}", "seed": i, **extra} for i in range(count)]


def created_jobs(gateway: MockGateway) -> set[str]:
    """Every job the mock created (and charged), its answer lost or not."""
    return {
        entry["request_id"]
        for entry in gateway.backend.journal.entries()
        if entry["method"] == "POST" and entry["request_id"]
    }


def records(journal: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]


def journaled_jobs(journal: Path) -> set[str]:
    return {record["request_id"] for record in records(journal) if record["event"] == "accepted"}


def last_phases(journal: Path) -> dict[str, str]:
    return {record["key"]: record["event"] for record in records(journal) if "key" in record}


@pytest.fixture
def served(mock_gateway_server: MockGateway, monkeypatch: pytest.MonkeyPatch) -> MockGateway:
    """The mock served on a port, found by `boogu` through the environment as a user sets it up."""
    monkeypatch.setenv("BOOGU_API_KEY", mock_gateway_server.api_key)
    monkeypatch.setenv("BOOGU_BASE_URL", mock_gateway_server.base_url)
    return mock_gateway_server


def batch(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`boogu batch ARGV` in-process, told the mock's pace (speed 1000)."""
    code = main(["batch", *argv, "--seconds-per-step", "0.0005", "--concurrency", "8"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_clear_line(err: str, *parts: str) -> None:
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("boogu: disk error:")]
    for part in (*parts, "run the same command again to download the rest"):
        assert part in line


class Disk:
    """A disk of its own for a test: a real tmpfs when `mount` works here, else a folder whose image
    writes fail as a full or read-only disk's do (an OSError injected at the write)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.mkdir()
        self._patches = pytest.MonkeyPatch()
        self.mounted = self._mount("size=1m", "-t", "tmpfs", "tmpfs")

    def _mount(self, options: str, *args: str) -> bool:
        mount = shutil.which("mount")
        command = [str(mount), *args, "-o", options, str(self.path)]
        return mount is not None and subprocess.run(command, capture_output=True, check=False).returncode == 0

    def fill_after(self, size: int) -> None:
        """Without a tmpfs: image writes fail with ENOSPC once `size` bytes are written."""
        if self.mounted:
            return
        left = [size]
        write = boogu._flows.Sink.write

        def full(sink: boogu._flows.Sink, chunk: bytes) -> None:
            left[0] -= len(chunk)
            if left[0] < 0:
                raise OSError(errno.ENOSPC, "No space left on device")
            write(sink, chunk)

        self._patches.setattr(boogu._flows.Sink, "write", full)

    def set(self, options: str) -> None:
        """`remount,size=64m`, `remount,ro`; without a tmpfs, the same by injection."""
        if self.mounted:
            assert self._mount(options)
        elif options.endswith("ro"):
            fail(self._patches, OSError(errno.EROFS, "Read-only file system"))
        else:
            self._patches.undo()

    def close(self) -> None:
        self._patches.undo()
        if self.mounted:
            subprocess.run([str(shutil.which("umount")), "-l", str(self.path)], check=False)


def fail(patches: pytest.MonkeyPatch, error: OSError) -> None:
    """Every image file fails to open with `error`."""

    def refuse(sink: boogu._flows.Sink, path: Path) -> None:
        raise error

    patches.setattr(boogu._flows.Sink, "__init__", refuse)


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    small = Disk(tmp_path / "disk")
    try:
        yield small
    finally:
        small.close()


# 1. No local fault loses a paid job -------------------------------------------------------------


def test_a_full_disk_stops_submitting_and_every_paid_job_is_journaled(
    served: MockGateway, disk: Disk, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The images fill a 1 MB disk halfway through the batch: the journal, on the same disk, still
    records every job the gateway accepted, from the space it reserved; a rerun on a disk with room
    downloads the rest without paying for any line twice."""
    source = jsonl(tmp_path / "jobs.jsonl", foxes(60))
    out = disk.path / "out"
    disk.fill_after(700_000)
    code, stdout, err = batch(capsys, str(source), "--out", str(out), "--json")
    summary = json.loads(stdout)
    assert code == ExitCode.BATCH_INCOMPLETE
    assert_one_clear_line(err, str(out), "No space left on device", "every accepted job is in")
    assert journaled_jobs(out / "batch-journal.jsonl") == created_jobs(served)  # none lost
    assert 8 < len(created_jobs(served)) < 60 and summary["uncertain"] == 0
    never_sent = set(last_phases(out / "batch-journal.jsonl").values()) - {
        "accepted",
        "finished",
        "downloaded",
    }
    assert never_sent <= {"rejected"}  # each journaled `not sent: the batch stopped`, never uncertain
    assert summary["interrupted"] and summary["disk_error"].startswith(str(out))

    disk.set("remount,size=64m")
    code, stdout, _ = batch(capsys, str(source), "--out", str(out), "--json")
    assert code == ExitCode.OK and json.loads(stdout)["completed"] == 60
    assert len(created_jobs(served)) == 60  # no line was submitted twice
    assert wallet(served)["charged"] == 60 * PRICE


@pytest.mark.parametrize("fault", ["read-only", "permission", "name too long"])
def test_a_local_write_error_stops_the_batch_with_one_line(
    served: MockGateway,
    disk: Disk,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fault: str,
) -> None:
    """The images cannot be written (the journal is elsewhere, with --journal): submits stop at the
    first failed download, those on the wire are answered and journaled, and no line that was
    never sent is left uncertain."""
    source = jsonl(tmp_path / "jobs.jsonl", foxes(40))
    journal = tmp_path / "journal.jsonl"
    out, error = disk.path / "out", "Read-only file system"
    if fault == "read-only":
        out.mkdir()
        disk.set("remount,ro")
    elif fault == "permission":  # root passes every permission check: injected
        error = "Permission denied"
        fail(monkeypatch, PermissionError(errno.EACCES, error, str(out / "line-1_0.jpg.part")))
    else:
        out, error = tmp_path.joinpath(*["d" * 200] * 21), "File name too long"  # beyond PATH_MAX
    code, stdout, err = batch(capsys, str(source), "--out", str(out), "--journal", str(journal), "--json")
    summary = json.loads(stdout)
    assert code == ExitCode.BATCH_INCOMPLETE
    assert_one_clear_line(err, str(out), error)
    assert journaled_jobs(journal) == created_jobs(served)
    assert len(created_jobs(served)) < 40 and summary["uncertain"] == 0
    assert summary["not_submitted"] + summary["rejected"] == 40 - len(created_jobs(served))


class FullDisk:
    """An image file on a disk that fills: `failing` ("write" or "close", where a buffered write
    meets the full disk) raises ENOSPC after the bytes went to the file."""

    def __init__(self, file: IO[bytes], failing: str) -> None:
        self._file, self._failing = file, failing

    def write(self, chunk: bytes) -> int:
        written = self._file.write(chunk)
        if self._failing == "write":
            raise OSError(errno.ENOSPC, "No space left on device")
        return written

    def close(self) -> None:
        self._file.close()
        if self._failing == "close":
            raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["write", "close"])
@pytest.mark.parametrize("source", ["url", "inline"])
async def test_an_image_that_cannot_be_written_leaves_no_part_file(
    mock_gateway: MockGateway, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, failing: str, source: str
) -> None:
    """A download (or a sync-mode image carried inline) whose write fails, or whose last buffered
    bytes fail at close: the error goes to the caller, and neither `.part` file nor image is left."""
    sink_init = boogu._flows.Sink.__init__

    def on_full_disk(sink: boogu._flows.Sink, path: Path) -> None:
        sink_init(sink, path)
        sink._file = FullDisk(sink._file, failing)  # type: ignore[assignment]

    async with mock_async_client(mock_gateway) as client:
        result: Result | JobStatus = await client.generate("a fox")
        if source == "inline":
            data = base64.b64encode(image_bytes("JPEG")).decode()
            media = {"media_url": [f"data:image/jpeg;base64,{data}"], "media_type": "image/jpeg"}
            result = JobStatus.parse(status_body("COMPLETED", output=media))
        monkeypatch.setattr(boogu._flows.Sink, "__init__", on_full_disk)
        with pytest.raises(OSError, match="No space left on device"):
            await client.download(result, tmp_path / "images")
    assert list((tmp_path / "images").iterdir()) == []


# 2. One line, one set of files ------------------------------------------------------------------


def test_ids_that_sanitise_alike_get_files_of_their_own(
    served: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ids = ["猫", "犬", "a/b", "a b", "A", "a", "plain"]
    source = jsonl(
        tmp_path / "jobs.jsonl", [{"prompt": f"fox {i}", "seed": i, "id": key} for i, key in enumerate(ids)]
    )
    out = tmp_path / "out"
    code, stdout, _ = batch(capsys, str(source), "--out", str(out), "--json")
    files = json.loads(stdout)["files"]
    assert code == ExitCode.OK
    assert len({name.lower() for name in files}) == len(files) == len(ids)  # even on a Mac's disk
    names = {Path(name).name for name in files}
    assert "plain_0.jpg" in names and not {"_0.jpg", "a_b_0.jpg", "a_0.jpg", "A_0.jpg"} & names
    finished = {
        r["key"]: r["status"] for r in records(out / "batch-journal.jsonl") if r["event"] == "finished"
    }
    downloaded = {
        r["key"]: r["files"] for r in records(out / "batch-journal.jsonl") if r["event"] == "downloaded"
    }
    with served.http() as http:
        for key in ids:  # each file holds its own line's image
            [image] = downloaded[key]
            assert Path(image).read_bytes() == http.get(finished[key]["output"]["media_url"][0]).content

    # A journal of the old naming rule, where `A` and `a` were both `a_0.jpg`: both are downloaded again.
    items = {item.key: item for item in load_items(source)}
    journal = Journal(out / "batch-journal.jsonl")
    journal.load(list(items.values()))
    for key in ("A", "a"):
        journal.record("downloaded", items[key], files=[str(out / "a_0.jpg")])
    journal.close()
    (out / "a_0.jpg").write_bytes(b"one of the two")
    code, stdout, _ = batch(capsys, str(source), "--out", str(out), "--json")
    again = json.loads(stdout)
    assert code == ExitCode.OK and sorted(again["files"]) == sorted(files)
    assert len(created_jobs(served)) == len(ids)


# 4. Ctrl-C means no new charge ------------------------------------------------------------------


def answered_late(app: ASGIApp, delay: float) -> tuple[ASGIApp, list[float]]:
    """The gateway, each answer held back `delay` s (as a slow network would), and the arrival times
    of the submits that reached it."""
    arrivals: list[float] = []

    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            arrivals.append(time.monotonic())

        async def held(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)
            await send(message)

        await app(scope, receive, held)

    return late, arrivals


@contextlib.asynccontextmanager
async def slow_gateway(
    delay: float, **settings: Any
) -> Any:  # AsyncIterator[tuple[MockGateway, AsyncBoogu, list[float]]]
    gateway = MockGateway(MockConfig().updated({"speed": 1000, **settings}))
    app, arrivals = answered_late(gateway.app, delay)
    server = LiveServer(app)
    server.start()
    try:
        async with AsyncBoogu(gateway.api_key, base_url=server.base_url, seconds_per_unit=0.0005) as client:
            yield gateway, client, arrivals
    finally:
        server.stop()
        gateway.stop()


async def run_until(runner: BatchRunner, ready: Callable[[], bool]) -> tuple[BatchSummary, float]:
    """Run the batch, stop it (the first Ctrl-C) once `ready`; its summary and the stop's time."""
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    async with asyncio.timeout(10):
        while not ready():
            await asyncio.sleep(0.005)
    stopped_at = time.monotonic()
    stop.set()
    return await asyncio.wait_for(task, timeout=5), stopped_at


async def test_after_a_stop_no_submit_is_sent_not_even_a_429s_retry(tmp_path: Path) -> None:
    """Six submits on the wire at the stop, five answered 429 during the grace: none is sent again
    (the old batch retried them 1.1-1.3 s after the stop, and a gateway took them: paid jobs)."""
    items = load_items(jsonl(tmp_path / "jobs.jsonl", foxes(6)))
    async with slow_gateway(0.3, rate_limit={"rate": 2, "burst": 1}) as (gateway, client, arrivals):
        runner = BatchRunner(client, items, Journal(tmp_path / "j.jsonl"), tmp_path / "out", concurrency=6)
        summary, stopped_at = await run_until(runner, lambda: len(arrivals) >= 6)
        answered = time.monotonic() - stopped_at
        await asyncio.sleep(1.0)  # past every Retry-After
    assert len(arrivals) == 6 and max(arrivals) <= stopped_at
    assert answered < 1.0  # the grace ends when nothing is left on the wire
    assert (summary.uncertain, summary.unanswered_lines, summary.pending + summary.rejected) == (0, [], 6)
    assert len(created_jobs(gateway)) == summary.pending < 6


async def test_submits_still_unanswered_when_the_grace_ends_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("boogu.batch.STOP_GRACE", 0.2)
    items = load_items(jsonl(tmp_path / "jobs.jsonl", foxes(3)))
    async with slow_gateway(1.0) as (gateway, client, arrivals):
        runner = BatchRunner(client, items, Journal(tmp_path / "j.jsonl"), tmp_path / "out", concurrency=3)
        summary, stopped_at = await run_until(runner, lambda: len(arrivals) >= 3)
        assert time.monotonic() - stopped_at < 0.8
    assert summary.unanswered_lines == summary.uncertain_lines == ["line-1", "line-2", "line-3"]
    assert len(created_jobs(gateway)) == 3  # really on the wire, really accepted: uncertain is the truth
    assert set(last_phases(tmp_path / "j.jsonl").values()) == {"submitting"}


# 5. Recovery proves what it recovers ------------------------------------------------------------


async def test_recovery_takes_only_this_journals_webhooks(
    mock_gateway_server: MockGateway, tmp_path: Path
) -> None:
    """The same batch run again into a new journal, its answers lost (accepted and charged by the
    gateway), recovered from the webhook log that the first run wrote to as well: only the second
    run's own jobs are recovered, and the first run's deliveries are counted as foreign."""
    items = load_items(
        jsonl(tmp_path / "jobs.jsonl", [{"prompt": f"fox {i}", "id": f"fox-{i}"} for i in range(3)])
    )
    log = tmp_path / "hooks.jsonl"

    def append(status: RequestStatus) -> None:
        with log.open("a") as file:
            file.write(log_record(status, receiver.line_of(status.request_id)) + "\n")

    async def delivered(count: int) -> None:  # logged, not only received
        while len(log.read_text().splitlines() if log.exists() else []) < count:
            await asyncio.sleep(0.01)

    with WebhookReceiver(on_status=append) as receiver:
        async with mock_async_client(mock_gateway_server) as client:
            first = await BatchRunner(
                client, items, Journal(tmp_path / "first.jsonl"), tmp_path / "out1", webhook_url=receiver.url
            ).run()
            await asyncio.wait_for(delivered(3), 10)
            first_log = read_webhook_log(log)
            mock_gateway_server.backend.configure({"lost_answer_rate": 1.0})
            second = await BatchRunner(
                client, items, Journal(tmp_path / "second.jsonl"), tmp_path / "out2", webhook_url=receiver.url
            ).run()
            mock_gateway_server.backend.configure({"lost_answer_rate": 0.0})
            assert (first.completed, second.uncertain) == (3, 3)

            def rerun(log: Any) -> Awaitable[BatchSummary]:
                journal = Journal(tmp_path / "second.jsonl")
                return BatchRunner(client, items, journal, tmp_path / "out2", recover_from=log).run()

            alone = await rerun(first_log)  # only the first run's deliveries: they prove nothing here
            assert (alone.completed, alone.uncertain, alone.foreign_webhooks) == (0, 3, 3)
            await asyncio.wait_for(delivered(6), 10)
            recovered = await rerun(read_webhook_log(log))
    first_jobs = journaled_jobs(tmp_path / "first.jsonl")
    second_jobs = journaled_jobs(tmp_path / "second.jsonl")
    assert (recovered.completed, recovered.foreign_webhooks, recovered.charged_images) == (3, 3, 3)
    assert second_jobs == created_jobs(mock_gateway_server) - first_jobs and len(second_jobs) == 3
    assert wallet(mock_gateway_server)["charged"] == 6 * PRICE  # nothing submitted a third time


# 6. A damaged journal is detected, not trusted --------------------------------------------------


def damage(data: bytes, kind: str) -> bytes:
    lines = data.splitlines(keepends=True)
    if kind == "cut at half":
        return data[: len(data) // 2]
    if kind == "garbage appended":
        return data + b"\x89PNG\r\n\x1a\n not a record\n"
    if kind == "a NUL block":  # as a file system leaves a block it never wrote
        return data[:300] + b"\0" * 700 + data[1000:]
    if kind == "last record cut":
        return data[:-40]
    lines[2], lines[3] = lines[3], lines[2]  # records swapped
    return b"".join(lines)


@pytest.mark.parametrize(
    "kind", ["cut at half", "garbage appended", "a NUL block", "last record cut", "records swapped"]
)
async def test_a_damaged_journal_submits_no_line_it_cannot_prove(
    mock_gateway: MockGateway, tmp_path: Path, kind: str
) -> None:
    """Five lines done, then the journal damaged and the batch grown to ten: the batch submits none
    of the lines it cannot prove were never submitted (a lost record may have been that submit),
    names them, and does only with --trust-damaged-journal, after which the journal is trusted."""
    done = [{"prompt": f"fox {i}", "id": f"fox-{i}"} for i in range(5)]
    grown = load_items(
        jsonl(tmp_path / "all.jsonl", [*done, *({"prompt": f"owl {i}", "id": f"owl-{i}"} for i in range(5))])
    )
    path = tmp_path / "j.jsonl"
    async with mock_async_client(mock_gateway) as client:

        def run(**options: Any) -> Awaitable[BatchSummary]:
            return BatchRunner(client, grown, Journal(path), tmp_path / "out", **options).run()

        first = await BatchRunner(
            client, load_items(jsonl(tmp_path / "done.jsonl", done)), Journal(path), tmp_path / "out"
        ).run()
        path.write_bytes(damage(path.read_bytes(), kind))
        refused = await run()
        assert len(created_jobs(mock_gateway)) == first.completed == 5  # nothing submitted
        trusted = await run(trust_damaged_journal=True)
        after = await run()
    assert refused.journal_damage and refused.unproven_lines
    assert {f"owl-{i}" for i in range(5)} <= set(refused.unproven_lines)
    assert refused.not_submitted + refused.rejected >= len(refused.unproven_lines)
    assert trusted.completed == 10 and not trusted.unproven_lines
    assert len(created_jobs(mock_gateway)) == 5 + len(refused.unproven_lines)
    assert (after.journal_damage, after.completed) == ([], 10)  # vouched for once, not reported again


async def test_a_damaged_first_record_is_resealed_once_trusted(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    """The first record names the journal (its token, which every checksum needs): damaged, no record
    can be checked, and every run needed --trust-damaged-journal. Trusted once, the journal is
    rewritten under a fresh first record, the damaged file kept beside it: the next run trusts it
    without the flag, and pays for nothing twice."""
    done = [{"prompt": f"fox {i}", "id": f"fox-{i}"} for i in range(5)]
    grown = load_items(jsonl(tmp_path / "all.jsonl", [*done, {"prompt": "owl", "id": "owl"}]))
    path = tmp_path / "j.jsonl"
    async with mock_async_client(mock_gateway) as client:

        def run(**options: Any) -> Awaitable[BatchSummary]:
            return BatchRunner(client, grown, Journal(path), tmp_path / "out", **options).run()

        await BatchRunner(
            client, load_items(jsonl(tmp_path / "done.jsonl", done)), Journal(path), tmp_path / "out"
        ).run()
        damaged = b"X" + path.read_bytes()[1:]  # the first record is not JSON any more
        path.write_bytes(damaged)
        refused = await run()
        trusted = await run(trust_damaged_journal=True)
        after = await run()
    assert "the first record, which names the journal, is damaged" in refused.journal_damage[0]
    assert refused.unproven_lines == ["owl"] and refused.completed == 5
    assert trusted.completed == 6 and trusted.journal_damage == refused.journal_damage
    assert (after.journal_damage, after.unproven_lines, after.completed) == ([], [], 6)
    assert len(created_jobs(mock_gateway)) == 6  # each line paid once
    head = records(path)[0]
    assert (head["event"], head["resealed"], head["seq"]) == ("trusted", True, 0)
    assert (tmp_path / "j.jsonl.damaged").read_bytes() == damaged
    assert not (tmp_path / "j.jsonl.resealed").exists()


async def test_a_legacy_journal_is_read_as_before_and_reported(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", foxes(2)))
    path = tmp_path / "j.jsonl"
    async with mock_async_client(mock_gateway) as client:
        sent = await client.submit(items[0].request)
        path.write_text(
            json.dumps({"event": "submitting", "key": "line-1", "fingerprint": items[0].fingerprint})
            + "\n"
            + json.dumps({"event": "accepted", "key": "line-1", "request_id": sent.request_id})
            + "\n"
        )
        summary = await BatchRunner(client, items, Journal(path), tmp_path / "out").run()
    assert (summary.legacy_journal, summary.journal_damage, summary.completed) == (True, [], 2)
    assert len(created_jobs(mock_gateway)) == 2  # line-1's job waited for, not submitted again


def test_the_human_summary_names_uncertain_and_unproven_lines(
    served: MockGateway, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = jsonl(
        tmp_path / "jobs.jsonl", [{"prompt": "a fox", "id": "lost-fox"}, {"prompt": "an owl", "id": "owl"}]
    )
    out = tmp_path / "out"
    served.backend.configure({"lost_answer_rate": 1.0})
    code, _, _ = batch(capsys, str(source), "--out", str(out))
    assert code == ExitCode.BATCH_INCOMPLETE
    code, stdout, err = batch(capsys, str(source), "--out", str(out))  # the rerun, without --json
    assert "uncertain lines" in stdout and "lost-fox, owl" in stdout
    assert "--resubmit-uncertain" in err

    journal = out / "batch-journal.jsonl"
    journal.write_bytes(journal.read_bytes() + b"garbage\n")
    jsonl(
        source,
        [
            {"prompt": "a fox", "id": "lost-fox"},
            {"prompt": "an owl", "id": "owl"},
            {"prompt": "new", "id": "cat"},
        ],
    )
    code, stdout, err = batch(capsys, str(source), "--out", str(out))
    assert code == ExitCode.BATCH_INCOMPLETE
    assert "unproven lines" in stdout and "cat" in stdout
    assert "is damaged: line 5: not a whole record" in err and "--trust-damaged-journal" in err
    assert len(created_jobs(served)) == 2
