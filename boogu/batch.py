"""Resumable batches: many jobs from a JSONL file, a bounded number in flight, each step journaled.

The journal is an append-only JSONL file, each record flushed before the next step, and it is the truth:

    submitting → accepted → finished → downloaded        (or: rejected, invalid, uncertain)

A batch run again with the same journal picks each line up where it stood: an accepted job is
waited for, never submitted again; a finished one is downloaded, or submitted again if it ended
ERROR (not charged); a rejected one (provably not accepted: a 401, 402, 403 or 429 answer, or no
connection) is submitted again, an invalid one (a 400: the line itself is wrong) is not. One case
cannot be decided: a submit whose answer never arrived (a timeout, a broken connection, a 5xx, or a
process killed between handing the request to the transport and journaling the answer) may have
created a job that the gateway offers no way to look up. Such a line is `uncertain` and is only
submitted again with `resubmit_uncertain`, since that may make a second, charged job — unless the
batch sent each line's submit with its own webhook URL (`webhook_url`): a delivery to that URL,
read back from the receiver's log (`recover_from`), proves the job and names it, and the line is
waited for without paying twice. A stopped
batch drops the submits still waiting for the rate limit, and gives those on the wire a moment to be
answered and journaled. The journal is locked while a batch runs, so that two runs of one batch
cannot submit its lines twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

from boogu_image_client.models import ImageEditRequest, TextToImageRequest

from boogu_contract import wire

from ._client import AsyncBoogu
from ._errors import (
    APIConnectionError,
    APIStatusError,
    BadRequestError,
    BooguError,
    JobError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from ._flows import SubmitRequest, SubmitWatch, safe_stem
from ._media import image_reference
from ._models import JobStatus, Submission
from ._polling import job_units
from .webhooks import WebhookLog, line_webhook_url

if TYPE_CHECKING:
    from boogu_contract import Contract


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
    def webhook_line(self) -> str:
        """What names this line's webhook URL (see `line_webhook_url`): its key, and its content's
        fingerprint, so that a delivery for another batch's `line-1`, or for an earlier version of
        the line, proves nothing about this one."""
        return f"{self.key}@{self.fingerprint}"

    @property
    def num_images(self) -> int:
        images = self.request.num_images
        return images if isinstance(images, int) else 1


def load_items(path: str | os.PathLike[str]) -> list[BatchItem]:
    """Read and check every line before anything is submitted, so a typo on line 90 costs nothing.

    A line is a JSON object: `prompt`, any request parameter, `image_url` for an edit (a URL, a data
    URI, or a file path relative to the JSONL file), and optionally a unique `id`. Each line is checked
    against the request schema of openapi.yaml itself (ranges, enums, unknown parameters), and every
    bad line is reported, with its field and the broken rule, in one error.
    """
    source = Path(path)
    try:
        lines = source.read_bytes().splitlines()
    except OSError as exc:
        raise BatchFileError(f"{source}: {exc.strerror or exc}") from None
    items: list[BatchItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            item = _parse_line(raw, number, source.parent)
        except LineError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if item.key in seen:
            problems.append(f"line {number}: id {item.key!r} is used twice")
        seen.add(item.key)
        items.append(item)
    if problems:
        shown = problems[:MAX_SHOWN_PROBLEMS]
        more = len(problems) - len(shown)
        tail = f"\n  ... and {more} more" if more else ""
        raise BatchFileError(
            f"{source}: {len(problems)} bad line{'s' * (len(problems) != 1)}, nothing was submitted:\n  "
            + "\n  ".join(shown)
            + tail
        )
    if not items:
        raise BatchFileError(f"{source}: no jobs (expected one JSON object per line)")
    return items


class LineError(ValueError):
    """What is wrong with one line of a batch file."""


MAX_SHOWN_PROBLEMS = 200
"""A file of a million bad lines is reported by its first lines and a count."""
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")
"""`ftp:`, `s3:` ...: a URL, never a file name (a single letter is a Windows drive)."""


@cache
def _contract() -> Contract:
    """openapi.yaml's compiled request schemas, as the mock gateway checks them: loaded on the first
    batch, so that the other commands do not pay for compiling the contract."""
    from boogu_contract import Contract

    return Contract()


def _parse_line(raw: bytes, number: int, base: Path) -> BatchItem:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError(f"not UTF-8 (byte {exc.start + 1})") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise LineError(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise LineError("expected a JSON object")
    key = data.get("id", f"line-{number}")
    if not isinstance(key, str) or not key:
        raise LineError("id: must be a non-empty string")
    params = {name: value for name, value in data.items() if name not in RESERVED_KEYS}
    edit = "image_url" in params
    image = params.get("image_url")
    if isinstance(image, str) and not URL_SCHEME.match(image):
        try:
            params["image_url"] = image_reference(base / image)
        except (OSError, ValueError) as exc:
            raise LineError(f"image_url: {getattr(exc, 'strerror', None) or exc}") from None
    violation = _contract().check_body("submit_image_edit" if edit else "submit_text_to_image", params)
    if violation is not None:
        raise LineError(f"{violation} ({violation.rule})")
    model = ImageEditRequest if edit else TextToImageRequest
    try:
        request: SubmitRequest = model.from_dict(params)
    except (KeyError, TypeError, ValueError) as exc:  # the spec allowed what the generated model refuses
        raise LineError(f"the generated model refuses it ({exc!r})") from None
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
    request_ids: set[str] = field(default_factory=set)
    """Every job the journal records as accepted for the line (an ERROR job resubmitted leaves two)."""


class Journal:
    """The append-only record of a batch; each record is flushed before the next step (fsynced in groups).

    Records name a line by its key (`id` or `line-N`) and the fingerprint of its content: an edited
    line is a new line, so a line fixed after a rejection runs without a new journal. Editing a line
    whose job was (or may have been) accepted is refused, since its images would be mixed up.

    The file is locked while a batch uses it: two runs of one batch at once would submit every line
    twice.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._written = 0
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None

    def load(self, items: list[BatchItem]) -> dict[str, ItemState]:
        """Lock the journal and fold its records into the state of each line."""
        self._open()
        states = {item.key: ItemState() for item in items}
        fingerprints = {item.key: item.fingerprint for item in items}
        superseded: dict[str, ItemState] = {}
        current: dict[str, str] = {}
        for record in self._records():
            key = record.get("key")
            if not isinstance(key, str) or key not in states:
                continue
            # Records written before fingerprints were on every record inherit the last one seen.
            current[key] = record.get("fingerprint") or current.get(key) or fingerprints[key]
            if current[key] == fingerprints[key]:
                _apply(states[key], record)
            else:
                _apply(superseded.setdefault(key, ItemState()), record)
        for key, old in superseded.items():
            if old.phase in MAY_EXIST and states[key].phase == "new":
                self.close()
                raise BatchFileError(
                    f"{key}: the line changed since {self.path} recorded its job as {old.phase}; "
                    "restore the line, or use a new journal (--journal) to run the new version"
                )
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
        for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
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
        entry = {
            "event": event,
            "key": item.key,
            "fingerprint": item.fingerprint,
            "at": datetime.now(UTC).isoformat(),
            **details,
        }
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()  # in the operating system's hands: it survives the process being killed
        self._written += 1

    async def synced(self) -> None:
        """Return once every record written so far is on disk (survives a power loss too).

        One fsync, in a thread, serves every record written before it starts, so a batch of 256 jobs
        does not queue 256 fsyncs on its event loop (they were a fifth of its time).
        """
        target = self._written
        while self._synced < target:
            if self._syncing is None or self._syncing.done():
                self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        upto = self._written
        assert self._file is not None
        await asyncio.to_thread(os.fsync, self._file.fileno())
        self._synced = max(self._synced, upto)

    async def aclose(self) -> None:
        """Sync what is left and close (the fsync of a sync in flight must not meet a closed file)."""
        if self._syncing is not None:
            await asyncio.wait([self._syncing])
        self.close()

    def close(self) -> None:
        if self._file is not None:
            os.fsync(self._file.fileno())
            self._file.close()  # releases the lock
            self._file = None


MAY_EXIST: frozenset[Phase] = frozenset({"submitting", "uncertain", "accepted", "finished", "downloaded"})
"""Phases in which the gateway has, or may have, a job for the line."""


def _apply(state: ItemState, record: dict[str, Any]) -> None:
    event = record.get("event")
    if event not in ("submitting", "rejected", "invalid", "uncertain", "accepted", "finished", "downloaded"):
        return
    state.phase = event
    state.detail = record.get("detail")
    if event == "accepted":
        state.request_id = record.get("request_id")
        if isinstance(state.request_id, str):
            state.request_ids.add(state.request_id)
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
    """Accepted and not finished yet, or finished and not downloaded: run the batch again to collect them."""
    not_submitted: int = 0
    """Never sent (the batch was stopped first)."""
    charged_images: int = 0
    """Images the gateway has charged or will charge: COMPLETED and FAILED jobs, and pending ones (an
    accepted job is paid for unless it ends ERROR). Uncertain lines are not counted: see `uncertain`."""
    pending_lines: list[str] = field(default_factory=list)
    uncertain_lines: list[str] = field(default_factory=list)
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
        outcome = _outcome(state)
        charged = state.phase == "accepted" or (
            state.phase in ("finished", "downloaded") and outcome in wire.CHARGED_STATUSES
        )
        if charged:
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
            summary.uncertain_lines.append(item.key)
        elif state.phase == "new":
            summary.not_submitted += 1
        else:  # accepted, or finished COMPLETED but not downloaded
            summary.pending += 1
            summary.pending_lines.append(item.key)
    return summary


ProgressCallback = Callable[[BatchItem, ItemState], object]
STOP_GRACE = 1.5
"""Seconds a stopped batch waits for the answers of submits already on the wire, so that it exits
within 2 s; a submit still unanswered then stays `submitting` (uncertain) in the journal."""
WAIT_ROUNDS = 5
"""A wait cut short by errors (a flaky gateway) is started again this many times before the line is
left pending for the next run."""


class BatchRunner:
    """Runs the items through `client`, at most `concurrency` jobs in flight, journaling each step.

    A line is journaled `submitting` only when its request is handed to the transport — after any wait
    for the rate limit or a connection — and `rejected` as soon as an attempt is refused with a 429,
    before the wait for the next one. So a line is `submitting` in the journal only while its request
    may be at the gateway without an answer.
    """

    def __init__(
        self,
        client: AsyncBoogu,
        items: list[BatchItem],
        journal: Journal,
        out_dir: str | os.PathLike[str],
        *,
        concurrency: int = 4,
        resubmit_uncertain: bool = False,
        retry_errors: bool = True,
        webhook_url: str | None = None,
        recover_from: WebhookLog | None = None,
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
        self.retry_errors = retry_errors
        self.webhook_url = webhook_url
        """Each line's submit asks for its webhook at `line_webhook_url(webhook_url, item.webhook_line)`."""
        self.recover_from = recover_from
        """Deliveries to those URLs: an uncertain line with one is recovered instead of left alone."""
        self.on_progress = on_progress
        self.states = journal.load(items)
        self._submits: dict[str, asyncio.Task[Any]] = {}
        self._on_wire: set[str] = set()
        self.unanswered: list[str] = []
        """Lines whose submit was still on the wire, unanswered, when the run was stopped."""

    async def run(self, stop: asyncio.Event | None = None) -> BatchSummary:
        """Process every line; when `stop` is set, submit nothing more (submits waiting for the rate
        limit are dropped at once), give the submits on the wire `STOP_GRACE` to be answered, and return."""
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
            for key, task in list(self._submits.items()):
                if key not in self._on_wire:
                    task.cancel()  # waiting for the rate limit or a connection: nothing was sent
            everything.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await everything
            if self._submits:
                await asyncio.wait(list(self._submits.values()), timeout=STOP_GRACE)
            self.unanswered = sorted(self._on_wire)
            for task in list(self._submits.values()):
                task.cancel()  # still unanswered: the line stays `submitting`, so uncertain
            await asyncio.gather(*self._submits.values(), return_exceptions=True)
            await self.journal.aclose()
        return summarize(self.items, self.states, interrupted=interrupted)

    async def _process(self, item: BatchItem, slots: asyncio.Semaphore) -> None:
        state = self.states[item.key]
        if not self._wanted(state):
            return
        async with slots:
            if state.phase in ("uncertain", "submitting") and self.recover_from is not None:
                await self._recover(item, state, self.recover_from)
            if (
                state.phase in ("new", "rejected")
                or (state.phase in ("uncertain", "submitting") and self.resubmit_uncertain)
                or (state.phase == "finished" and _outcome(state) == "ERROR")
            ):
                await self._shielded(item, self._submit(item, state))
            if state.phase == "accepted":
                await self._wait(item, state)
            if state.phase == "finished" and _outcome(state) == "COMPLETED":
                await self._download(item, state)

    def _wanted(self, state: ItemState) -> bool:
        """Whether this run has anything to do for a line in `state`."""
        if state.phase in ("downloaded", "invalid"):
            return False
        if state.phase == "finished":
            outcome = _outcome(state)
            return outcome == "COMPLETED" or (outcome == "ERROR" and self.retry_errors)
        if state.phase in ("uncertain", "submitting"):
            return self.resubmit_uncertain or self.recover_from is not None
        return True

    async def _shielded(self, item: BatchItem, work: Coroutine[Any, Any, T]) -> T:
        """Run a submit in its own task: a stopped batch cancels it only while it is not on the wire,
        and otherwise lets it be answered and journaled."""
        task = asyncio.ensure_future(work)
        self._submits[item.key] = task
        task.add_done_callback(lambda _: self._submits.pop(item.key, None))
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
            retry_after = await self._submit_once(item, state)
            if retry_after is None:
                return
            await asyncio.sleep(retry_after)

    def _watch(self, item: BatchItem, state: ItemState) -> SubmitWatch:
        def sending() -> Awaitable[None]:
            self._on_wire.add(item.key)
            self._advance(item, state, "submitting")
            return self.journal.synced()  # on disk before the request leaves

        def refused(reason: str) -> None:
            self._on_wire.discard(item.key)
            self._advance(item, state, "rejected", detail=reason)

        return SubmitWatch(sending=sending, refused=refused)

    async def _recover(self, item: BatchItem, state: ItemState, log: WebhookLog) -> None:
        """Journal an uncertain line accepted if a webhook to its own URL names a job the journal does
        not know yet, and the gateway confirms that job (a webhook is not signed): nothing is submitted."""
        found = sorted(set(log.deliveries.get(item.webhook_line, {})) - state.request_ids)
        if len(found) != 1:
            problem = "no webhook for it in the log" if not found else f"webhooks of {len(found)} jobs"
            self._note(item, state, f"{problem}: still uncertain ({', '.join(found)})".removesuffix(" ()"))
            return
        try:
            await self.client.status(found[0])
        except NotFoundError:
            self._note(item, state, f"the gateway does not know {found[0]} from its webhook: still uncertain")
            return
        except BooguError as exc:  # the next run tries again
            self._note(item, state, f"{exc}; still uncertain")
            return
        self._advance(item, state, "accepted", request_id=found[0], detail="recovered from its webhook")

    async def _submit_once(self, item: BatchItem, state: ItemState) -> float | None:
        """One submit and its journaled answer; the seconds to wait before another when rate limited."""
        webhook = None if self.webhook_url is None else line_webhook_url(self.webhook_url, item.webhook_line)
        try:
            submission = await self.client.submit(
                item.request, webhook_url=webhook, watch=self._watch(item, state)
            )
        except RateLimitError as exc:  # provably not accepted (journaled by the watch): try again later
            return self.client.rate_limit_delay(exc.retry_after)
        except APIConnectionError as exc:
            if exc.request_sent:
                self._advance(item, state, "uncertain", detail=str(exc))
            return None  # never sent: the watch journaled it rejected
        except ServerError as exc:  # a 5xx answer does not prove that no job was created
            self._advance(item, state, "uncertain", detail=str(exc))
            return None
        except BadRequestError as exc:  # the line itself is wrong: submitting it again cannot help
            self._advance(item, state, "invalid", detail=str(exc))
            return None
        except APIStatusError as exc:  # 401, 402, 403: the account may be fixed before the next run
            self._advance(item, state, "rejected", detail=str(exc))
            return None
        finally:
            self._on_wire.discard(item.key)
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
        for _ in range(WAIT_ROUNDS):
            try:
                final = (await self.client.wait(submission)).status
            except JobError as exc:
                final = exc.status
            except (ServerError, APIConnectionError, RateLimitError) as exc:  # the job goes on: wait again
                self._note(item, state, f"{exc}; waiting again")
                continue
            except BooguError as exc:  # stays accepted: the next run waits for it again
                self._note(item, state, str(exc))
                return
            self._advance(item, state, "finished", status=final.to_dict())
            return

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
