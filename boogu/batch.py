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
batch sent each line's submit with its own webhook URL (`webhook_url`, which carries the journal's
token): a delivery to that URL, read back from the receiver's log (`recover_from`), proves the job
and names it, and the line is waited for without paying twice.

A journal is checked before it is trusted: each record carries a sequence number and a checksum,
and the first one the count of records known on disk, so a record cut short, garbage, a block of
zeros, records out of order or missing (a journal cut at half) are found; the batch then submits no
line, since none can be proven never to have been submitted, unless told to trust it. Trusted once,
it is trusted by later runs too: a `trusted` record says so, and a journal whose first record (its
token, which every checksum needs) is damaged is resealed under a new one.

A stopped batch (Ctrl-C, or a local write that failed: a full disk, a read-only folder) sends no
submit after the stop, retries included, and gives those on the wire time to be answered and
journaled; the journal keeps disk space in reserve for their records. The journal is locked while
a batch runs, so that two runs of one batch cannot submit its lines twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from boogu_image_client.models import ImageEditRequest, TextToImageRequest

from boogu_contract import wire
from boogu_contract._json import loads

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
        """The line's key and its content's fingerprint, so that a delivery for another batch's
        `line-1`, or for an earlier version of the line, proves nothing about this one (the journal
        adds its token: see `Journal.webhook_line`)."""
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


def file_stems(keys: list[str]) -> dict[str, str]:
    """Each key's file name stem (see `safe_stem`), no two alike even ignoring case (a Mac's or a
    Windows disk): keys whose stems would differ only in case are all tagged with their hash."""
    stems = {key: safe_stem(key) for key in keys}
    shared = Counter(stem.lower() for stem in stems.values())
    stems = {key: safe_stem(key, tagged=shared[stem.lower()] > 1) for key, stem in stems.items()}
    owners: dict[str, str] = {}
    for key, stem in stems.items():
        other = owners.setdefault(stem.lower(), key)
        if other != key:  # two hashes alike: 1 in 4 billion
            raise BatchFileError(f"ids {other!r} and {key!r} would share the file names {stem}_*: rename one")
    return stems


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
        data = loads(text)
    except ValueError as exc:
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


JOURNAL_VERSION = 2
SEAL_WIDTH = 12
"""Characters of the first record's `sealed` count, which is rewritten in place."""
RESERVE_BASE = 64 * 1024
RESERVE_PER_SUBMIT = 4 * 1024
"""Journal space kept allocated past its end, for the records of the submits still on the wire when
the disk fills: an `accepted` record takes a few hundred bytes. (A sync-mode `finished` record, with
its images inline, may not fit: the line then stays accepted, and the next run waits for it.)"""
FALLOC_FL_KEEP_SIZE = 1
MAX_SHOWN_DAMAGE = 5


class Journal:
    """The append-only record of a batch; each record is flushed before the next step (fsynced in groups).

    Records name a line by its key (`id` or `line-N`) and the fingerprint of its content: an edited
    line is a new line, so a line fixed after a rejection runs without a new journal. Editing a line
    whose job was (or may have been) accepted is refused, since its images would be mixed up.

    Each record has a sequence number (`seq`) and a checksum (`sum`: of the record and the journal's
    token, so a record of another journal does not pass); the first one also holds the `journal`
    token and `sealed`, the number of records known to be on disk, rewritten in place after each
    fsync. `load` reports what does not fit in `damage`. A journal written before (no `seq`) is
    `legacy`: read as before, unchecked.

    The file is locked while a batch uses it: two runs of one batch at once would submit every line
    twice.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.token = ""
        """This journal's random name (in its first record), which each line's webhook URL carries."""
        self.legacy = False
        self.damage: list[str] = []
        """What `load` found wrong: records cut short, garbage, out of order or missing."""
        self.fault: OSError | None = None
        """The disk refused to keep the reserve (see `reserve_space`): it is full, or nearly."""
        self._fd: int | None = None
        self._end = 0
        """Where the next record goes."""
        self._allocated = 0
        self._reserve = RESERVE_BASE
        self._can_reserve = True
        self._seq = 0
        """The next record's sequence number."""
        self._seal_at: int | None = None
        """Where in the file the first record's `sealed` count is."""
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None
        self._unsealed: list[dict[str, Any]] = []
        """The records of a journal whose first record is damaged, for `vouch` to reseal."""

    def load(self, items: list[BatchItem]) -> dict[str, ItemState]:
        """Lock the journal, check its records and fold them into the state of each line."""
        data = self._open()
        records = self._check(data)
        if data and not data.endswith(b"\n"):
            self._append(b"\n")  # after a record cut short, start on a fresh line
        states = {item.key: ItemState() for item in items}
        fingerprints = {item.key: item.fingerprint for item in items}
        superseded: dict[str, ItemState] = {}
        current: dict[str, str] = {}
        for record in records:
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
        _unshare_files(states)
        return states

    def webhook_line(self, item: BatchItem) -> str:
        """What names `item`'s webhook URL (see `line_webhook_url`): its key, its fingerprint and this
        journal's token, so that a delivery to another run of the same batch proves nothing here."""
        return f"{item.webhook_line}~{self.token}" if self.token else item.webhook_line

    def reserve_space(self, size: int) -> None:
        """Keep `size` bytes of disk allocated past the journal's end (where the file system can),
        so that the records of the submits on the wire can be written after the disk fills."""
        self._reserve = size
        self._keep_free(0)

    def _open(self) -> bytes:
        """Open and lock the journal; what it holds."""
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    raise BatchFileError(f"{self.path} is in use by another run of this batch") from None
                self._fd = fd
            data = self.path.read_bytes()
        except OSError as exc:
            self.close()
            raise BatchFileError(f"{self.path}: {exc.strerror or exc}; nothing was submitted") from None
        self._end = self._allocated = len(data)
        return data

    def _check(self, data: bytes) -> list[dict[str, Any]]:
        """The records to fold, in order; sets `token`, `legacy` and `damage`."""
        written = [(offset, number, raw) for offset, number, raw in _lines(data) if raw.strip()]
        if not written:  # a new journal
            self.token = secrets.token_hex(8)
            return []
        offset, number, first_line = written[0]
        head = _parse(first_line)
        token = None if head is None else head.get("journal")
        if head is None or not isinstance(token, str) or head.get("sum") != _checksum(token, head):
            if head is not None and "seq" not in head:
                self.legacy = True
            else:
                self.damage = [f"line {number}: the first record, which names the journal, is damaged"]
                self._seq = self._synced = len(written)  # never a second first record
            records = [record for _, _, raw in written if (record := _parse(raw)) is not None]
            self._unsealed = [] if self.legacy else records
            return records
        self.token = token
        seal = len(first_line) - SEAL_WIDTH - 1  # as `_write` left it: `"sealed":        123}`
        if first_line[:seal].endswith(b'"sealed": ') and first_line[seal:-1].strip().isdigit():
            self._seal_at = offset + seal
        by_seq: dict[int, dict[str, Any]] = {}
        expected = 0
        for _, number, raw in written:
            record = _parse(raw)
            seq = None if record is None else record.get("seq")
            if record is None or not isinstance(seq, int):
                self.damage.append(f"line {number}: not a whole record (cut short, garbage or zeros)")
            elif record.get("sum") != _checksum(token, record):
                self.damage.append(
                    f"line {number}: its checksum does not match (edited, or another journal's)"
                )
            elif seq < expected:
                self.damage.append(f"line {number}: record {seq} is out of order (or repeated)")
                by_seq.setdefault(seq, record)
            else:
                if seq > expected:
                    self.damage.append(f"{_records(expected, seq)} missing (before line {number})")
                by_seq[seq] = record
                expected = seq + 1
                if record.get("event") == "trusted":
                    self.damage = []  # the user vouched for the journal as it read then
        sealed = head.get("sealed")
        if isinstance(sealed, int) and sealed > expected:
            self.damage.append(f"{_records(expected, sealed)} missing: the journal was cut (it had {sealed})")
        self._seq = self._synced = expected
        return [by_seq[seq] for seq in sorted(by_seq)]

    def record(self, event: Phase, item: BatchItem, **details: Any) -> None:
        """Journal one step of a line: in the operating system's hands when this returns, so that it
        survives the process being killed. An OSError (naming the journal) if it cannot be written."""
        self._write({"event": event, "key": item.key, "fingerprint": item.fingerprint, **details})

    def vouch(self) -> None:
        """Record that the user trusts the journal despite its `damage`, which later runs then accept.

        A damaged first record took the journal's token with it, and with it the means to check any
        record: such a journal is resealed instead (`_reseal`)."""
        if self.token or self.legacy:
            self._write({"event": "trusted", "damage": self.damage})
        else:
            self._reseal()

    def _reseal(self) -> None:
        """Rewrite the journal as the user vouched for it: a fresh first record (a new token, and the
        damage trusted), then each record that could be read, in order, under the new token; the
        damaged file is kept beside it (`<name>.damaged`). The new file is written, synced and locked
        before it replaces the old one in one rename: a crash leaves the one or the other, and no run
        can use either meanwhile. Deliveries to the webhook URLs of the old token prove nothing any
        more, as they already could not: the token was lost with the first record."""
        assert self._fd is not None, "load the journal first"
        saved = (self._fd, self._end, self._allocated, self._seal_at, self._seq, self._synced)
        fresh = self.path.with_name(f"{self.path.name}.resealed")
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._fd, self._end, self._allocated, self._seal_at, self._seq = fd, 0, 0, None, 0
            self.token = secrets.token_hex(8)
            self._write({"event": "trusted", "damage": self.damage, "resealed": True})
            for record in self._unsealed:
                self._write({name: value for name, value in record.items() if name not in SEALING})
            os.fsync(fd)
            self._seal(self._seq)
            os.fsync(fd)
            shutil.copyfile(self.path, self.path.with_name(f"{self.path.name}.damaged"))
            os.replace(fresh, self.path)
            _sync_folder(self.path.parent)
        except BaseException:
            os.close(fd)
            fresh.unlink(missing_ok=True)
            self._fd, self._end, self._allocated, self._seal_at, self._seq, self._synced = saved
            self.token = ""
            raise
        os.close(saved[0])  # the damaged file, and its lock: the new one holds ours
        self._synced = self._seq
        self._unsealed = []

    def _write(self, entry: dict[str, Any]) -> None:
        assert self._fd is not None, "load the journal first"
        entry.setdefault("at", datetime.now(UTC).isoformat())  # a resealed record keeps its time
        head = not self.legacy and self._seq == 0
        if not self.legacy:
            entry["seq"] = self._seq
            if head:
                entry |= {"journal": self.token, "version": JOURNAL_VERSION}
            entry["sum"] = _checksum(self.token, entry)
        text = json.dumps(entry)
        if head:
            text = f'{text[:-1]}, "sealed": {0:>{SEAL_WIDTH}}}}'
            self._seal_at = self._end + len(text.encode()) - 1 - SEAL_WIDTH
        self._append(text.encode() + b"\n")
        self._seq += 1

    def _append(self, data: bytes) -> None:
        assert self._fd is not None
        self._keep_free(len(data))
        written = 0
        try:
            while written < len(data):
                written += os.pwrite(self._fd, data[written:], self._end + written)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)  # no record cut short: the journal stays whole
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None
        self._end += written

    def _keep_free(self, size: int) -> None:
        """Before a write of `size` bytes: top the reserve up. A disk that refuses is a `fault` —
        the batch stops submitting — while the write itself still has the reserve to go to."""
        if not self._can_reserve or self._end + size + self._reserve <= self._allocated:
            return
        wanted = self._end + size + 2 * self._reserve
        assert self._fd is not None
        try:
            _preallocate(self._fd, self._end, wanted - self._end)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.ENOSYS):
                self._can_reserve = False  # a file system without it: the journal has no reserve
            elif self.fault is None:
                self.fault = OSError(exc.errno, exc.strerror, str(self.path))
            return
        self._allocated = wanted

    async def synced(self) -> None:
        """Return once every record written so far is on disk (survives a power loss too).

        One fsync, in a thread, serves every record written before it starts, so a batch of 256 jobs
        does not queue 256 fsyncs on its event loop (they were a fifth of its time).
        """
        target = self._seq
        while self._synced < target:
            if self._syncing is None or self._syncing.done():
                self._syncing = asyncio.ensure_future(self._sync())
            await asyncio.shield(self._syncing)

    async def _sync(self) -> None:
        upto = self._seq
        assert self._fd is not None
        await asyncio.to_thread(os.fsync, self._fd)
        self._seal(upto)
        self._synced = max(self._synced, upto)

    def _seal(self, count: int) -> None:
        """Write in the first record that `count` records are on disk: a journal cut shorter is damaged."""
        if self._seal_at is not None and self._fd is not None:
            os.pwrite(self._fd, f"{count:>{SEAL_WIDTH}}".encode(), self._seal_at)

    async def aclose(self) -> None:
        """Sync what is left and close (the fsync of a sync in flight must not meet a closed file)."""
        if self._syncing is not None:
            await asyncio.wait([self._syncing])
        self.close()

    def close(self) -> None:
        """Sync and seal, give the reserve back, release the lock; a failure is kept in `fault`."""
        if self._fd is None:
            return
        try:
            os.fsync(self._fd)
            self._seal(self._seq)
            os.ftruncate(self._fd, self._end)  # frees the space reserved past the end
        except OSError as exc:
            self.fault = self.fault or OSError(exc.errno, exc.strerror, str(self.path))
        finally:
            os.close(self._fd)  # releases the lock
            self._fd = None


SEALING = frozenset({"seq", "sum", "journal", "version", "sealed"})
"""What a record carries for the journal's checks, not about its line: made anew when resealed."""


def _sync_folder(path: Path) -> None:
    """fsync a folder, so that a rename in it survives a power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(offset, line number, bytes) of each line of `data`, the last one even without its newline."""
    offset = 0
    for number, raw in enumerate(data.split(b"\n"), start=1):
        yield offset, number, raw
        offset += len(raw) + 1


def _records(first: int, end: int) -> str:
    """`record 7 is` or `records 7-9 are`: the sequence numbers from `first` to before `end`."""
    return f"record {first} is" if end - first == 1 else f"records {first}-{end - 1} are"


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        record = loads(raw)
    except ValueError:  # UnicodeDecodeError is one too
        return None
    return record if isinstance(record, dict) else None


def _checksum(token: str, record: dict[str, Any]) -> str:
    """A record's checksum: of its content (`sealed`, rewritten in place, aside) and the journal's token."""
    body = {name: value for name, value in record.items() if name not in ("sum", "sealed")}
    return hashlib.sha256((token + json.dumps(body, sort_keys=True)).encode()).hexdigest()[:16]


@cache
def _fallocate() -> Any:
    """Linux's fallocate(2), which reserves disk space without changing a file's size; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    function = getattr(ctypes.CDLL(None, use_errno=True), "fallocate", None)
    if function is not None:
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    return function


def _preallocate(fd: int, offset: int, length: int) -> None:
    """Allocate `length` bytes of `fd` from `offset` on, past its end (later appends use them)."""
    fallocate = _fallocate()
    code = errno.EOPNOTSUPP if fallocate is None else 0
    if fallocate is not None and fallocate(fd, FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        code = ctypes.get_errno()
    if code:
        raise OSError(code, os.strerror(code))


def _unshare_files(states: dict[str, ItemState]) -> None:
    """Lines that a journal of an older naming rule records with the same files (`a/b` and `a b` were
    both `a_b_0.jpg`): the files hold one line's images at most, so both are downloaded again."""
    owners = Counter(
        name for state in states.values() if state.phase == "downloaded" for name in set(state.files)
    )
    for state in states.values():
        if state.phase == "downloaded" and any(owners[name] > 1 for name in state.files):
            state.phase = "finished"


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
    """Never sent (the batch was stopped first, or its journal is damaged: see `unproven_lines`)."""
    charged_images: int = 0
    """Images the gateway has charged or will charge: COMPLETED and FAILED jobs, and pending ones (an
    accepted job is paid for unless it ends ERROR). Uncertain lines are not counted: see `uncertain`."""
    pending_lines: list[str] = field(default_factory=list)
    uncertain_lines: list[str] = field(default_factory=list)
    rejected_lines: dict[str, str] = field(default_factory=dict)
    """Each rejected (or invalid) line, with why: the gateway's answer, and why it was not retried."""
    files: list[str] = field(default_factory=list)
    interrupted: bool = False
    """Stopped before the end: by Ctrl-C, or by a `disk_error`."""
    unanswered_lines: list[str] = field(default_factory=list)
    """Submits still on the wire, unanswered, when the stop's grace ended: uncertain."""
    unproven_lines: list[str] = field(default_factory=list)
    """Lines not submitted because the damaged journal cannot prove they never were (`journal_damage`)."""
    journal_damage: list[str] = field(default_factory=list)
    legacy_journal: bool = False
    """A journal written before records were checked: its damage cannot be seen."""
    foreign_webhooks: int = 0
    """Deliveries in the `recover_from` log to another journal's URLs: ignored."""
    disk_error: str | None = None
    """The local write that failed and stopped the batch: `path: error`."""
    unjournaled_jobs: dict[str, str] = field(default_factory=dict)
    """Jobs accepted (and charged) that could not be journaled even from the reserve, by line."""

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
            summary.rejected_lines[item.key] = state.detail or state.phase
        elif state.phase in ("uncertain", "submitting"):
            summary.uncertain += 1
            summary.uncertain_lines.append(item.key)
        elif state.phase == "new":
            summary.not_submitted += 1
        else:  # accepted, or finished COMPLETED but not downloaded
            summary.pending += 1
            summary.pending_lines.append(item.key)
    return summary


def describe_fault(error: OSError) -> str:
    """`path: No space left on device`, as the disk error of a summary."""
    reason = error.strerror or str(error)
    return f"{error.filename}: {reason}" if error.filename else reason


ProgressCallback = Callable[[BatchItem, ItemState], object]
STOP_GRACE = 1.5
"""Seconds a stopped batch waits for the answers of submits already on the wire, so that it exits
within 2 s; a submit still unanswered then stays `submitting` (uncertain) in the journal."""
WAIT_ROUNDS = 5
"""A wait cut short by errors (a flaky gateway) is started again this many times before the line is
left pending for the next run."""


class _Unsent(Exception):
    """Raised by a submit's `sending` watch when the batch has stopped (or cannot journal the
    submit): the request is not sent."""


class BatchRunner:
    """Runs the items through `client`, at most `concurrency` jobs in flight, journaling each step.

    A line is journaled `submitting` only when its request is handed to the transport — after any wait
    for the rate limit or a connection, and only if the batch has not stopped — and `rejected` as soon
    as an attempt is refused with a 429, before the wait for the next one. So a line is `submitting`
    in the journal only while its request may be at the gateway without an answer.
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
        trust_damaged_journal: bool = False,
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
        """Each line's submit asks for its webhook at `line_webhook_url(webhook_url, <its webhook_line>)`."""
        self.recover_from = recover_from
        """Deliveries to those URLs: an uncertain line with one is recovered instead of left alone."""
        self.trust_damaged_journal = trust_damaged_journal
        """Submit lines as a damaged journal reads (some may have been submitted already)."""
        self.on_progress = on_progress
        self.stems = file_stems([item.key for item in items])
        self.states = journal.load(items)
        journal.reserve_space(RESERVE_BASE + RESERVE_PER_SUBMIT * concurrency)
        self.fault: OSError | None = None
        """The first local write that failed (a full disk, a read-only folder ...): the batch halted."""
        self._unjournaled: dict[str, str] = {}
        self._unproven: set[str] = set()
        self._unanswered: list[str] = []
        self._submits: dict[str, asyncio.Task[Any]] = {}
        self._on_wire: set[str] = set()
        self._halted = asyncio.Event()
        """Set by a stop or a fault: no submit is sent any more."""
        self._stop: asyncio.Event | None = None
        self._stopped_at: float | None = None
        self._changed = asyncio.Event()
        """Set when a submit leaves the wire, or the batch is stopped."""

    async def run(self, stop: asyncio.Event | None = None) -> BatchSummary:
        """Process every line. When `stop` is set, or a local write fails (`fault`), submit nothing more
        — submits waiting for the rate limit are dropped, a 429 is never retried — and give the
        submits on the wire time to be answered and journaled (STOP_GRACE after a stop, all they
        need after a fault); then return."""
        self._stop = stop
        if self.journal.damage and self.trust_damaged_journal:
            self._advance_journal(self.journal.vouch)
        if self.journal.fault is not None:
            self._fail(self.journal.fault)
        slots = asyncio.Semaphore(self.concurrency)
        # Jobs already running at the gateway take the first slots.
        order = sorted(self.items, key=lambda item: self.states[item.key].phase != "accepted")
        everything: asyncio.Future[Any] = asyncio.gather(*(self._process(item, slots) for item in order))
        watchers = [asyncio.create_task(self._halted.wait()), asyncio.create_task(self._watch(stop))]
        try:
            await asyncio.wait([everything, watchers[0]], return_when=asyncio.FIRST_COMPLETED)
        finally:
            interrupted = not everything.done()
            self._halted.set()
            for key, task in list(self._submits.items()):
                if key not in self._on_wire:
                    task.cancel()  # waiting for the rate limit or a connection: nothing was sent
            everything.cancel()
            await asyncio.wait([everything])
            await self._drain()
            self._unanswered = sorted(self._on_wire)
            for task in [*self._submits.values(), *watchers]:
                task.cancel()  # a submit still unanswered: the line stays `submitting`, so uncertain
            await asyncio.gather(*self._submits.values(), *watchers, return_exceptions=True)
            await self.journal.aclose()
            if self.journal.fault is not None:
                self._fail(self.journal.fault)
        error = None if everything.cancelled() else everything.exception()
        if error is not None and not isinstance(error, asyncio.CancelledError):  # a bug: not hidden
            raise error
        return self._summary(interrupted)

    async def _watch(self, stop: asyncio.Event | None) -> None:
        if stop is not None:
            await stop.wait()
            self._stopped_at = asyncio.get_running_loop().time()
            self._halted.set()
            self._changed.set()

    async def _drain(self) -> None:
        """Wait until no submit is on the wire: each is answered and journaled, or `STOP_GRACE` has
        passed since a stop (after a fault alone, each takes as long as its request may)."""
        loop = asyncio.get_running_loop()
        while self._on_wire:
            left = None if self._stopped_at is None else self._stopped_at + STOP_GRACE - loop.time()
            if left is not None and left <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def _summary(self, interrupted: bool) -> BatchSummary:
        return replace(
            summarize(self.items, self.states, interrupted=interrupted),
            unanswered_lines=self._unanswered,
            unproven_lines=[item.key for item in self.items if item.key in self._unproven],
            journal_damage=list(self.journal.damage),
            legacy_journal=self.journal.legacy,
            foreign_webhooks=_foreign_webhooks(self.recover_from, self.journal.token),
            disk_error=None if self.fault is None else describe_fault(self.fault),
            unjournaled_jobs=dict(self._unjournaled),
        )

    async def _process(self, item: BatchItem, slots: asyncio.Semaphore) -> None:
        state = self.states[item.key]
        if not self._wanted(state):
            return
        async with slots:
            if self._halted.is_set():
                return
            if state.phase in ("uncertain", "submitting") and self.recover_from is not None:
                await self._recover(item, state, self.recover_from)
            if self._to_submit(state):
                if self.journal.damage and not self.trust_damaged_journal:
                    self._unproven.add(item.key)  # it may have been submitted in a record that is lost
                    return
                await self._shielded(item, self._submit(item, state))
            if state.phase == "accepted" and not self._halted.is_set():
                await self._wait(item, state)
            if state.phase == "finished" and _outcome(state) == "COMPLETED" and not self._halted.is_set():
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

    def _to_submit(self, state: ItemState) -> bool:
        return (
            state.phase in ("new", "rejected")
            or (state.phase in ("uncertain", "submitting") and self.resubmit_uncertain)
            or (state.phase == "finished" and _outcome(state) == "ERROR")
        )

    async def _shielded(self, item: BatchItem, work: Coroutine[Any, Any, T]) -> T:
        """Run a submit in its own task: a stopped batch cancels it only while it is not on the wire,
        and otherwise lets it be answered and journaled."""
        task = asyncio.ensure_future(work)
        self._submits[item.key] = task
        task.add_done_callback(lambda _: self._submits.pop(item.key, None))
        return await asyncio.shield(task)

    def _advance(self, item: BatchItem, state: ItemState, phase: Phase, **details: Any) -> bool:
        """Journal a step, then take it. False if the journal cannot be written: the batch halts, and
        the line stays where the journal has it."""
        if not self._advance_journal(lambda: self.journal.record(phase, item, **details)):
            if phase == "accepted":  # charged, and known only here: the summary names it
                self._unjournaled[item.key] = details["request_id"]
            return False
        _apply(state, {"event": phase, **details})
        if self.on_progress is not None:
            self.on_progress(item, state)
        return True

    def _advance_journal(self, write: Callable[[], None]) -> bool:
        try:
            write()
        except OSError as exc:
            self._fail(exc)
            return False
        if self.journal.fault is not None:
            self._fail(self.journal.fault)
        return True

    def _fail(self, error: OSError) -> None:
        """A local write failed (the disk is full, the folder read-only ...): halt. The first error
        is the one reported."""
        self.fault = self.fault or error
        self._halted.set()

    def _note(self, item: BatchItem, state: ItemState, problem: str) -> None:
        """A step that failed without changing the phase; the next run tries it again."""
        state.detail = problem
        if self.on_progress is not None:
            self.on_progress(item, state)

    async def _submit(self, item: BatchItem, state: ItemState) -> None:
        """Submit the line, again after each 429 (it made no job) while its `Retry-After` is worth
        waiting for; one beyond the cap or the time left leaves the line rejected for this run."""
        for _ in range(MAX_RATE_LIMITED_SUBMITS):
            retry_after = await self._submit_once(item, state)
            if retry_after is None:
                return
            await asyncio.sleep(retry_after)

    def _submit_watch(self, item: BatchItem, state: ItemState) -> SubmitWatch:
        async def sending() -> None:
            """Journal the line `submitting`, on disk, before its request leaves; after a stop, refuse."""
            if self._stopping():
                raise _Unsent
            self._on_wire.add(item.key)
            if not self._advance(item, state, "submitting"):
                raise _Unsent
            try:
                await self.journal.synced()
            except OSError as exc:
                self._fail(OSError(exc.errno, exc.strerror, str(self.journal.path)))
                raise _Unsent from None
            if self._stopping():  # stopped during the sync
                raise _Unsent

        def refused(reason: str) -> None:
            self._leave_wire(item.key)
            self._advance(item, state, "rejected", detail=reason)

        return SubmitWatch(sending=sending, refused=refused)

    def _stopping(self) -> bool:
        """Stopped or halted, even if the watch of `stop` has not run yet: then no submit may leave."""
        return self._halted.is_set() or (self._stop is not None and self._stop.is_set())

    def _leave_wire(self, key: str) -> None:
        self._on_wire.discard(key)
        self._changed.set()

    async def _recover(self, item: BatchItem, state: ItemState, log: WebhookLog) -> None:
        """Journal an uncertain line accepted if a webhook to its own URL names a job the journal does
        not know yet, and the gateway confirms that job (a webhook is not signed): nothing is submitted."""
        found = sorted(set(log.deliveries.get(self.journal.webhook_line(item), {})) - state.request_ids)
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
        """One submit and its journaled answer; the seconds to wait before another when rate limited
        (None: no other in this run)."""
        webhook = (
            None
            if self.webhook_url is None
            else line_webhook_url(self.webhook_url, self.journal.webhook_line(item))
        )
        try:
            submission = await self.client.submit(
                item.request, webhook_url=webhook, watch=self._submit_watch(item, state)
            )
        except _Unsent:
            if state.phase == "submitting":  # journaled, then stopped before the request left
                self._advance(item, state, "rejected", detail="not sent: the batch stopped")
            return None
        except RateLimitError as exc:  # provably not accepted (journaled by the watch): try again later,
            delay = self.client.rate_limit_delay(exc.retry_after)
            if delay is None:  # unless the gateway asks for longer than the cap or the time left
                self._advance(item, state, "rejected", detail=str(exc))
            return delay
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
            self._leave_wire(item.key)
        accepted = self._advance(
            item, state, "accepted", request_id=submission.request_id, submitted_at=submission.submitted_at
        )
        if accepted and submission.finished is not None:  # sync mode: the answer is the final status
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
                JobStatus.parse(state.status), self.out_dir, stem=self.stems[item.key]
            )
        except BooguError as exc:  # stays finished: the next run downloads it again
            self._note(item, state, str(exc))
            return
        except OSError as exc:  # a full disk, a read-only folder ...: nothing more can be saved
            fault = exc if exc.filename else OSError(exc.errno, exc.strerror, str(self.out_dir))
            self._note(item, state, describe_fault(fault))
            self._fail(fault)
            return
        self._advance(item, state, "downloaded", files=[str(path) for path in files])


def _foreign_webhooks(log: WebhookLog | None, token: str) -> int:
    """Deliveries in `log` to URLs of another journal (another run of this batch, or another batch)."""
    if log is None or not token:
        return 0
    return sum(len(jobs) for line, jobs in log.deliveries.items() if not line.endswith(f"~{token}"))


def _outcome(state: ItemState) -> str | None:
    outcome = (state.status or {}).get("status")
    return outcome if isinstance(outcome, str) else None
