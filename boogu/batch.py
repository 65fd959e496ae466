"""Resumable batches: many jobs from a JSONL file, a bounded number in flight, each step journaled.

The journal is an append-only JSONL file, synced to disk record by record, and it is the truth:

    submitting → accepted → finished → downloaded        (or: rejected, invalid, uncertain)

A batch run again with the same journal picks each line up where it stood: an accepted job is
waited for, never submitted again; a finished one is downloaded; a rejected one (provably not
accepted: a 401, 402, 403 or 429 answer, or no connection) is submitted again, an invalid one (a 400:
the line itself is wrong) is not. One case cannot be decided: a
submit whose answer never arrived (a timeout, a broken connection, a 5xx, or a process killed with
SIGKILL between sending it and journaling the answer) may have created a job that the gateway offers
no way to look up. Such a line is `uncertain` and is only submitted again with `resubmit_uncertain`,
since that may make a second, charged job. SIGINT and SIGTERM stop a batch gracefully: submits on the
wire are answered and journaled first, so they never leave a line uncertain. The journal is locked
while a batch runs, so that two runs of one batch cannot submit its lines twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import attrs
from boogu_image_client.models import ImageEditRequest, TextToImageRequest

from ._client import AsyncBoogu
from ._errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    BooguError,
    JobError,
    RateLimitError,
    ServerError,
)
from ._flows import SubmitRequest, job_units, safe_stem
from ._media import image_reference
from ._models import JobStatus, Submission

T = TypeVar("T")

Phase = Literal["new", "submitting", "rejected", "invalid", "uncertain", "accepted", "finished", "downloaded"]
MAX_RATE_LIMITED_SUBMITS = 20
"""A submit answered 429 is safe to repeat; after this many in a row the line is left rejected."""
RESERVED_KEYS = frozenset({"id"})


class BatchFileError(BooguError):
    """The input file or the journal cannot be used; nothing has been submitted because of it."""


@dataclass(frozen=True)
class BatchItem:
    key: str
    """The line's `id`, or `line-N`; names the line in the journal and its images on disk."""
    line: int
    request: SubmitRequest
    fingerprint: str
    """A hash of the line, to notice an input file changed under an existing journal."""

    @property
    def num_images(self) -> int:
        images = self.request.num_images
        return images if isinstance(images, int) else 1


def load_items(path: str | os.PathLike[str]) -> list[BatchItem]:
    """Read and check every line before anything is submitted, so a typo on line 90 costs nothing.

    A line is a JSON object: `prompt`, any request parameter, `image_url` for an edit (a URL, a data
    URI, or a file path relative to the JSONL file), and optionally a unique `id`.
    """
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise BatchFileError(f"{source}: {exc.strerror or exc}") from None
    items: list[BatchItem] = []
    seen: set[str] = set()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        item = _parse_line(text, number, source.parent)
        if item.key in seen:
            raise BatchFileError(f"line {number}: id {item.key!r} is used twice")
        seen.add(item.key)
        items.append(item)
    if not items:
        raise BatchFileError(f"{source}: no jobs (expected one JSON object per line)")
    return items


def _parse_line(text: str, number: int, base: Path) -> BatchItem:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BatchFileError(f"line {number}: not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BatchFileError(f"line {number}: expected a JSON object")
    params = {key: value for key, value in data.items() if key not in RESERVED_KEYS}
    model = ImageEditRequest if "image_url" in params else TextToImageRequest
    known = {attribute.name for attribute in attrs.fields(model)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise BatchFileError(
            f"line {number}: unknown parameter {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    if not isinstance(params.get("prompt"), str) or not params["prompt"]:
        raise BatchFileError(f"line {number}: prompt is required")
    try:
        if "image_url" in params:
            image = params["image_url"]
            if not isinstance(image, str):
                raise TypeError("image_url must be a string")
            local = not image.startswith(("http://", "https://", "data:"))
            params["image_url"] = image_reference(base / image if local else image)
        request: SubmitRequest = model.from_dict(params)
    except OSError as exc:
        raise BatchFileError(f"line {number}: image_url: {exc.strerror or exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise BatchFileError(f"line {number}: a parameter has the wrong type or value ({exc!r})") from None
    key = data.get("id", f"line-{number}")
    if not isinstance(key, str) or not key:
        raise BatchFileError(f"line {number}: id must be a non-empty string")
    fingerprint = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
    return BatchItem(key=key, line=number, request=request, fingerprint=fingerprint)


@dataclass
class ItemState:
    """Where one line stands, folded from its journal records."""

    phase: Phase = "new"
    request_id: str | None = None
    submitted_at: float | None = None
    status: dict[str, Any] | None = None
    """The final status object, once finished."""
    files: list[str] = field(default_factory=list)
    detail: str | None = None


class Journal:
    """The append-only record of a batch; each record is flushed and fsynced before the next step.

    The file is locked while a batch uses it: two runs of one batch at once would submit every line
    twice.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None

    def load(self, items: list[BatchItem]) -> dict[str, ItemState]:
        """Lock the journal and fold its records into the state of each line."""
        self._open()
        states = {item.key: ItemState() for item in items}
        fingerprints = {item.key: item.fingerprint for item in items}
        for record in self._records():
            key = record.get("key")
            if key not in states:
                continue
            recorded = record.get("fingerprint")
            if recorded is not None and recorded != fingerprints[key]:
                self.close()
                raise BatchFileError(
                    f"{key}: the line changed since {self.path} recorded it; use a new journal (--journal)"
                )
            _apply(states[key], record)
        return states

    def _open(self) -> None:
        if self._file is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise BatchFileError(f"{self.path} is in use by another run of this batch") from None
        if handle.tell() and not self.path.read_bytes().endswith(b"\n"):
            handle.write("\n")  # after a record cut short by a kill, start on a fresh line
        self._file = handle

    def _records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # cut short by a kill: never written (each step is journaled before it is taken)
            if isinstance(record, dict):
                records.append(record)
        return records

    def record(self, event: Phase, item: BatchItem, **details: Any) -> None:
        self._open()
        assert self._file is not None
        entry = {"event": event, "key": item.key, "at": datetime.now(UTC).isoformat(), **details}
        if event == "submitting":
            entry["fingerprint"] = item.fingerprint
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
            self._file = None


def _apply(state: ItemState, record: dict[str, Any]) -> None:
    event = record.get("event")
    if event not in ("submitting", "rejected", "invalid", "uncertain", "accepted", "finished", "downloaded"):
        return
    state.phase = event
    state.detail = record.get("detail")
    if event == "accepted":
        state.request_id = record.get("request_id")
        state.submitted_at = record.get("submitted_at")
    elif event == "finished":
        state.status = record.get("status")
    elif event == "downloaded":
        state.files = list(record.get("files") or [])
        if not all(Path(name).is_file() for name in state.files):
            state.phase = "finished"  # deleted since: download again


@dataclass
class BatchSummary:
    total: int = 0
    completed: int = 0
    failed: int = 0
    errors: int = 0
    """Jobs that ended ERROR (not charged) or with a status unknown to this client."""
    rejected: int = 0
    """Refused by the gateway: invalid parameters (400), or the account (401, 402, 403) or rate limit."""
    uncertain: int = 0
    """Submitted without an answer: they may exist (and be charged); see `resubmit_uncertain`."""
    pending: int = 0
    """Accepted but not finished yet (the batch was stopped): run it again to collect them."""
    charged_images: int = 0
    """Images paid for: those of COMPLETED and of FAILED jobs."""
    files: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.completed == self.total and not self.interrupted

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def summarize(items: list[BatchItem], states: dict[str, ItemState], *, interrupted: bool) -> BatchSummary:
    summary = BatchSummary(total=len(items), interrupted=interrupted)
    for item in items:
        state = states[item.key]
        outcome = (state.status or {}).get("status")
        if state.phase in ("finished", "downloaded") and outcome in ("COMPLETED", "FAILED"):
            summary.charged_images += item.num_images
        if state.phase == "downloaded":
            summary.completed += 1
            summary.files += state.files
        elif state.phase == "finished" and outcome == "FAILED":
            summary.failed += 1
        elif state.phase == "finished" and outcome != "COMPLETED":
            summary.errors += 1
        elif state.phase in ("rejected", "invalid"):
            summary.rejected += 1
        elif state.phase in ("uncertain", "submitting"):
            summary.uncertain += 1
        else:  # new, accepted, or finished COMPLETED but not downloaded
            summary.pending += 1
    return summary


ProgressCallback = Callable[[BatchItem, ItemState], object]


class BatchRunner:
    """Runs the items through `client`, at most `concurrency` jobs in flight, journaling each step."""

    def __init__(
        self,
        client: AsyncBoogu,
        items: list[BatchItem],
        journal: Journal,
        out_dir: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        resubmit_uncertain: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.client = client
        self.items = items
        self.journal = journal
        self.out_dir = Path(out_dir)
        self.concurrency = concurrency
        self.resubmit_uncertain = resubmit_uncertain
        self.on_progress = on_progress
        self.states = journal.load(items)
        self._submits: set[asyncio.Task[Any]] = set()

    async def run(self, stop: asyncio.Event | None = None) -> BatchSummary:
        """Process every line; when `stop` is set, finish the submits on the wire and return early."""
        slots = asyncio.Semaphore(self.concurrency)
        # Jobs already running at the gateway take the first slots.
        order = sorted(self.items, key=lambda item: self.states[item.key].phase != "accepted")
        tasks = [asyncio.create_task(self._process(item, slots)) for item in order]
        everything: asyncio.Future[Any] = asyncio.gather(*tasks)
        stopped: asyncio.Future[Any] = asyncio.create_task((stop or asyncio.Event()).wait())
        interrupted = True
        try:
            await asyncio.wait([everything, stopped], return_when=asyncio.FIRST_COMPLETED)
            interrupted = not everything.done()
        finally:
            stopped.cancel()
            everything.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await everything
            await asyncio.gather(*self._submits, return_exceptions=True)
            self.journal.close()
        return summarize(self.items, self.states, interrupted=interrupted)

    async def _process(self, item: BatchItem, slots: asyncio.Semaphore) -> None:
        state = self.states[item.key]
        if state.phase in ("downloaded", "invalid") or (
            state.phase == "finished" and _outcome(state) != "COMPLETED"
        ):
            return
        if state.phase in ("uncertain", "submitting") and not self.resubmit_uncertain:
            return
        async with slots:
            if state.phase in ("new", "rejected", "uncertain", "submitting"):
                await self._shielded(self._submit(item, state))
            if state.phase == "accepted":
                await self._wait(item, state)
            if state.phase == "finished" and _outcome(state) == "COMPLETED":
                await self._download(item, state)

    async def _shielded(self, work: Coroutine[Any, Any, T]) -> T:
        """Run a submit to its answer even when the batch is stopped meanwhile, so it gets journaled."""
        task = asyncio.ensure_future(work)
        self._submits.add(task)
        task.add_done_callback(self._submits.discard)
        return await asyncio.shield(task)

    def _advance(self, item: BatchItem, state: ItemState, phase: Phase, **details: Any) -> None:
        self.journal.record(phase, item, **details)
        _apply(state, {"event": phase, **details})
        if self.on_progress is not None:
            self.on_progress(item, state)

    def _note(self, item: BatchItem, state: ItemState, problem: str) -> None:
        """A step that failed without changing the phase; the next run tries it again."""
        state.detail = problem
        if self.on_progress is not None:
            self.on_progress(item, state)

    async def _submit(self, item: BatchItem, state: ItemState) -> None:
        for _ in range(MAX_RATE_LIMITED_SUBMITS):
            retry_after = await self._shielded(self._submit_once(item, state))
            if retry_after is None:
                return
            await asyncio.sleep(retry_after)

    async def _submit_once(self, item: BatchItem, state: ItemState) -> float | None:
        """One submit and its journaled answer; the seconds to wait before another when rate limited."""
        self._advance(item, state, "submitting")
        try:
            submission = await self.client.submit(item.request)
        except RateLimitError as exc:  # provably not accepted: submit again when told
            self._advance(item, state, "rejected", detail=str(exc))
            return exc.retry_after or 1.0
        except APIConnectionError as exc:
            self._advance(item, state, "uncertain" if exc.request_sent else "rejected", detail=str(exc))
            return None
        except ServerError as exc:  # a 5xx answer does not prove that no job was created
            self._advance(item, state, "uncertain", detail=str(exc))
            return None
        except BadRequestError as exc:  # the line itself is wrong: submitting it again cannot help
            self._advance(item, state, "invalid", detail=str(exc))
            return None
        except APIStatusError as exc:  # 401, 402, 403: the account may be fixed before the next run
            self._advance(item, state, "rejected", detail=str(exc))
            return None
        self._advance(
            item, state, "accepted", request_id=submission.request_id, submitted_at=submission.submitted_at
        )
        if submission.finished is not None:  # sync mode: the answer is the final status
            self._advance(item, state, "finished", status=submission.finished.to_dict())
        return None

    async def _wait(self, item: BatchItem, state: ItemState) -> None:
        assert state.request_id is not None
        submission = Submission(
            request_id=state.request_id, submitted_at=state.submitted_at or 0.0, units=job_units(item.request)
        )
        try:
            final = (await self.client.wait(submission)).status
        except JobError as exc:
            final = exc.status
        except BooguError as exc:  # stays accepted: the next run waits for it again
            self._note(item, state, str(exc))
            return
        self._advance(item, state, "finished", status=final.to_dict())

    async def _download(self, item: BatchItem, state: ItemState) -> None:
        assert state.status is not None
        try:
            files = await self.client.download(
                JobStatus.parse(state.status), self.out_dir, stem=safe_stem(item.key)
            )
        except BooguError as exc:  # stays finished: the next run downloads it again
            self._note(item, state, str(exc))
            return
        self._advance(item, state, "downloaded", files=[str(path) for path in files])


def _outcome(state: ItemState) -> str | None:
    outcome = (state.status or {}).get("status")
    return outcome if isinstance(outcome, str) else None
