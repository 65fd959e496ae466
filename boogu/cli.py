"""`boogu`: generate, edit, check, wait for and download images, or run a resumable batch.

The key comes from BOOGU_API_KEY (or --api-key), the gateway from BOOGU_BASE_URL (or --base-url).
Results go to stdout (file paths, or with --json the status object); progress and errors to stderr,
errors as one line, with an exit code per kind of failure (listed below).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from boogu_image_client.models import CustomImageSize, ImageEditRequest, ImageSizePreset, TextToImageRequest
from boogu_image_client.models.image_size_preset import IMAGE_SIZE_PRESET_VALUES, check_image_size_preset
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from boogu_contract import wire

from . import verify
from ._args import ExitCode, http_url
from ._client import AsyncBoogu, Boogu, ClientOptions, WaitOptions
from ._errors import (
    APIConnectionError,
    BadRequestError,
    BooguError,
    ConfigurationError,
    DownloadError,
    ForbiddenError,
    InsufficientBalanceError,
    JobError,
    JobErroredError,
    JobFailedError,
    JobNotFinishedError,
    ModelNotFoundError,
    NotFoundError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
    UnknownStatusError,
    WaitTimeoutError,
)
from ._flows import RetryEvent, SubmitRequest, SubmitWatch
from ._http import BATCH_CONNECTIONS
from ._media import image_reference
from ._models import JobStatus, Result, Submission
from .batch import (
    MAX_SHOWN_DAMAGE,
    BatchFileError,
    BatchItem,
    BatchRunner,
    BatchSummary,
    ItemState,
    Journal,
    load_items,
)
from .webhooks import WebhookLog, read_webhook_log

__all__ = ["ExitCode", "exit_code_for", "main", "parser"]

EXIT_CODES: tuple[tuple[type[BaseException], ExitCode], ...] = (
    (ConfigurationError, ExitCode.USAGE),
    (BatchFileError, ExitCode.USAGE),
    (ModelNotFoundError, ExitCode.MODEL_NOT_FOUND),
    (BadRequestError, ExitCode.BAD_REQUEST),
    (UnauthorizedError, ExitCode.UNAUTHORIZED),
    (ForbiddenError, ExitCode.FORBIDDEN),
    (InsufficientBalanceError, ExitCode.INSUFFICIENT_BALANCE),
    (NotFoundError, ExitCode.NOT_FOUND),
    (RateLimitError, ExitCode.RATE_LIMITED),
    (ServerError, ExitCode.SERVER_ERROR),
    (APIConnectionError, ExitCode.CONNECTION_ERROR),
    (JobFailedError, ExitCode.JOB_FAILED),
    (JobErroredError, ExitCode.JOB_ERROR),
    (UnknownStatusError, ExitCode.UNKNOWN_STATUS),
    (JobNotFinishedError, ExitCode.NOT_FINISHED),
    (WaitTimeoutError, ExitCode.WAIT_TIMEOUT),
    (DownloadError, ExitCode.DOWNLOAD_FAILED),
)


def exit_code_for(error: BaseException) -> ExitCode:
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), ExitCode.ERROR)


class Output:
    """Where everything is printed: data on stdout, the rest on stderr."""

    def __init__(self, *, as_json: bool, quiet: bool, verbose: bool) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)
        if verbose:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
            logging.getLogger("boogu").addHandler(handler)
            logging.getLogger("boogu").setLevel(logging.DEBUG)

    def data(self, value: Any) -> None:
        """One result: JSON with --json, else plain lines."""
        if self.as_json:
            print(json.dumps(value, indent=None, default=str), flush=True)
        elif isinstance(value, list):
            print("\n".join(str(line) for line in value), flush=True)
        else:
            print(value, flush=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message)

    def retry(self, event: RetryEvent) -> None:
        self.note(
            f"[yellow]retrying {event.operation} in {event.delay:.1f} s "
            f"(attempt {event.attempt}/{event.max_attempts}): {escape(event.reason)}[/yellow]"
        )

    def fail(self, error: BaseException) -> int:
        code = exit_code_for(error)
        if isinstance(error, JobError) and self.as_json:
            self.data(error.status.to_dict())
        label = code.name.lower().replace("_", " ")
        self.err.print(f"boogu: {label}: {error}", markup=False, soft_wrap=True)
        return int(code)

    @contextlib.contextmanager
    def waiting(self, submission: Submission | str) -> Iterator[Callable[[JobStatus], None]]:
        """A live line (spinner, status, elapsed time) while a job runs; yields the `on_update` to pass."""
        request_id = submission.request_id if isinstance(submission, Submission) else submission
        progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=self.err,
            transient=True,
            disable=self.quiet or not self.err.is_terminal,
        )
        task = progress.add_task(f"{escape(request_id)} [dim]submitted[/dim]")

        def update(status: JobStatus) -> None:
            progress.update(
                task, description=f"{escape(request_id)} [bold]{escape(status.raw_status)}[/bold]"
            )

        with progress:
            yield update


# Commands ---------------------------------------------------------------------------------------


def client_for(args: argparse.Namespace, out: Output) -> Boogu:
    return Boogu(args.api_key, **client_options(args, out))


def client_options(args: argparse.Namespace, out: Output) -> ClientOptions:
    options: ClientOptions = {"on_retry": out.retry}
    if args.base_url:
        options["base_url"] = args.base_url
    if args.request_timeout is not None:
        options["timeout"] = args.request_timeout
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    if args.seconds_per_step is not None:
        options["seconds_per_unit"] = args.seconds_per_step
    return options


def request_params(args: argparse.Namespace) -> dict[str, Any]:
    """The request parameters given on the command line (the others keep the API's defaults)."""
    names = {
        "negative_prompt": args.negative_prompt,
        "image_size": args.size,
        "num_inference_steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "cfg_range_start": args.cfg_range_start,
        "cfg_range_end": args.cfg_range_end,
        "num_images": args.num_images,
        "output_format": args.format,
        "seed": args.seed,
        "image_guidance_scale": getattr(args, "image_guidance_scale", None),
    }
    params = {name: value for name, value in names.items() if value is not None}
    if args.no_safety_checker:
        params["enable_safety_checker"] = False
    if args.sync_mode:
        params["sync_mode"] = True
    return params


def run_job(args: argparse.Namespace, out: Output, request: SubmitRequest) -> int:
    """generate and edit: submit, wait with a progress line, download, report; all within --timeout."""
    with client_for(args, out) as client, client.time_limit(args.timeout):
        submission = submit_interruptibly(client, request, args.webhook_url, out)
        out.note(f"queued [cyan]{escape(submission.request_id)}[/cyan]")
        result = wait_for(client, submission, args, out)
        files = [] if args.no_download else client.download(result, args.out)
    report(out, result, files)
    return ExitCode.OK


def submit_interruptibly(
    client: Boogu, request: SubmitRequest, webhook_url: str | None, out: Output
) -> Submission:
    """Submit; a Ctrl-C after the request left says that the job may exist (and be charged)."""
    sent = False

    def sending() -> None:
        nonlocal sent
        sent = True

    def refused(reason: str) -> None:
        nonlocal sent
        sent = False

    try:
        return client.submit(request, webhook_url=webhook_url, watch=SubmitWatch(sending, refused))
    except KeyboardInterrupt:
        if sent:
            out.note(
                "interrupted after the submit was sent: the gateway may have accepted (and charged) the job, "
                "but its answer, with the request id, never arrived; do not submit it again blindly"
            )
        else:
            out.note("interrupted before the submit was sent: no job was created")
        raise


def wait_for(client: Boogu, job: Submission | str, args: argparse.Namespace, out: Output) -> Result:
    request_id = job.request_id if isinstance(job, Submission) else job
    try:
        with out.waiting(job) as on_update:
            options: WaitOptions = {"on_update": on_update}
            if args.timeout is not None:
                options["timeout"] = args.timeout
            if args.expected_seconds is not None:
                options["expected_seconds"] = args.expected_seconds
            return client.wait(job, **options)
    except KeyboardInterrupt:
        out.note(f"stopped waiting; the job goes on at the gateway: boogu wait {escape(request_id)}")
        raise


def report(out: Output, result: Result, files: list[Path]) -> None:
    seconds = result.timings.duration
    took = f" in {seconds:.1f} s" if seconds is not None else ""
    calls = plural(result.timings.status_calls, "status call")
    saved = f"; {plural(len(files), 'image')} saved" if files else ""
    out.note(f"[green]COMPLETED[/green] {escape(result.request_id)}{took} ({calls}){saved}")
    out.data(
        result.status.to_dict() if out.as_json else [str(path) for path in files] or list(result.media_urls)
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def cmd_generate(args: argparse.Namespace, out: Output) -> int:
    return run_job(args, out, TextToImageRequest(prompt=args.prompt, **request_params(args)))


def cmd_edit(args: argparse.Namespace, out: Output) -> int:
    try:
        image = image_reference(args.image)
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"image {args.image!r}: {exc}") from None
    return run_job(args, out, ImageEditRequest(prompt=args.prompt, image_url=image, **request_params(args)))


def cmd_status(args: argparse.Namespace, out: Output) -> int:
    with client_for(args, out) as client, client.time_limit(args.timeout):
        status = client.status(args.request_id)
    if out.as_json:
        out.data(status.to_dict())
    else:
        out.data(
            "  ".join(part for part in (status.request_id, status.raw_status, status.error or "") if part)
        )
    return ExitCode.OK


def cmd_wait(args: argparse.Namespace, out: Output) -> int:
    with client_for(args, out) as client, client.time_limit(args.timeout):
        result = wait_for(client, args.request_id, args, out)
    report(out, result, [])
    return ExitCode.OK


def cmd_download(args: argparse.Namespace, out: Output) -> int:
    with client_for(args, out) as client, client.time_limit(args.timeout):
        status = client.status(args.request_id)
        files = client.download(status, args.out)
    out.data({"request_id": status.request_id, "files": [str(f) for f in files]} if out.as_json else files)
    return ExitCode.OK


def read_recovery(path: Path, out: Output) -> WebhookLog:
    try:
        log = read_webhook_log(path)
    except OSError as exc:
        raise ConfigurationError(f"--recover-from {path}: {exc.strerror or exc}") from None
    if log.skipped:
        out.note(f"{escape(str(path))}: skipped {log.skipped} line(s) that are not a webhook naming a line")
    return log


def cmd_batch(args: argparse.Namespace, out: Output) -> int:
    if args.concurrency < 1:
        raise ConfigurationError("--concurrency must be >= 1")
    items = load_items(args.file)
    recovery = None if args.recover_from is None else read_recovery(args.recover_from, out)
    journal = Journal(args.journal or Path(args.out) / "batch-journal.jsonl")
    summary = asyncio.run(run_batch(args, out, items, journal, recovery))
    show_summary(out, summary, journal)
    if summary.disk_error is not None:
        out.err.print(disk_error_line(summary, journal), markup=False, soft_wrap=True)
        return ExitCode.BATCH_INCOMPLETE
    if summary.interrupted:
        return ExitCode.INTERRUPTED
    return ExitCode.OK if summary.ok else ExitCode.BATCH_INCOMPLETE


def disk_error_line(summary: BatchSummary, journal: Journal) -> str:
    """The one line a batch stopped by a local write error ends with."""
    lost = summary.unjournaled_jobs
    unknown = (
        f"; {plural(len(lost), 'accepted job')} could not be journaled: "
        + ", ".join(f"{line}={request_id}" for line, request_id in lost.items())
        if lost
        else f"; every accepted job is in {journal.path}"
    )
    return (
        f"boogu: disk error: {summary.disk_error}: stopped submitting{unknown}; "
        "fix it (free space, a writable --out) and run the same command again to download the rest"
    )


async def run_batch(
    args: argparse.Namespace,
    out: Output,
    items: list[BatchItem],
    journal: Journal,
    recovery: WebhookLog | None = None,
) -> BatchSummary:
    options = client_options(args, out)
    options["max_connections"] = min(args.concurrency, BATCH_CONNECTIONS)
    if args.max_rps is not None:
        options["max_requests_per_second"] = args.max_rps
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if not stop.is_set():  # the first: stop submitting, finish what is on the wire, summarize
            out.note(
                f"stopping ({signal.Signals(signum).name}): nothing more is submitted; again to exit at once"
            )
            stop.set()
            return
        # The second: at once. Every step taken is already fsynced in the journal.
        out.note(f"exiting at once; run the same command again to resume from {escape(str(journal.path))}")
        os._exit(ExitCode.INTERRUPTED)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=out.err,
        transient=True,
        disable=out.quiet or not out.err.is_terminal,
    )
    task = progress.add_task("batch", total=len(items))
    phases: dict[str, str] = {}

    def on_progress(item: BatchItem, state: ItemState) -> None:
        final = (state.status or {}).get("status")
        phases[item.key] = str(final) if state.phase == "finished" and final != "COMPLETED" else state.phase
        counts = Counter(phases.values())
        running = counts["submitting"] + counts["accepted"] + counts["finished"]
        done = len(phases) - running
        summary = ", ".join(f"{n} {phase.lower()}" for phase, n in sorted(counts.items()))
        progress.update(task, completed=done, description=f"batch: {escape(summary)}")
        if state.detail and state.phase != "downloaded":
            out.note(f"[yellow]{escape(item.key)}: {state.phase}: {escape(state.detail)}[/yellow]")

    try:
        async with AsyncBoogu(args.api_key, **options) as client:
            runner = BatchRunner(
                client,
                items,
                journal,
                args.out,
                concurrency=args.concurrency,
                resubmit_uncertain=args.resubmit_uncertain,
                retry_errors=not args.no_retry_errors,
                webhook_url=args.webhook_url,
                recover_from=recovery,
                trust_damaged_journal=args.trust_damaged_journal,
                on_progress=on_progress,
            )
            with progress, client.time_limit(args.timeout):
                return await runner.run(stop)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


SHOWN_LINES = 50
"""Lines named in a row of the human summary; --json names them all."""


def shortened(names: list[str], limit: int) -> str:
    """The first `limit` of `names`, and how many more there are."""
    more = f" ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def show_summary(out: Output, summary: BatchSummary, journal: Journal) -> None:
    if out.as_json:
        out.data(summary.to_dict())
    else:
        show_table(summary)
    show_notes(out, summary, journal)


def show_table(summary: BatchSummary) -> None:
    table = Table(title="batch summary", show_header=False)
    for name in (
        "total",
        "completed",
        "failed",
        "errors",
        "rejected",
        "uncertain",
        "pending",
        "not_submitted",
        "charged_images",
    ):
        table.add_row(name.replace("_", " "), str(getattr(summary, name)))
    for name, lines in (
        ("uncertain lines", summary.uncertain_lines),
        ("pending lines", summary.pending_lines),
        ("unanswered at the stop", summary.unanswered_lines),
        ("unproven lines", summary.unproven_lines),
        ("rejected lines", list(summary.rejected_lines)),
    ):
        if lines:
            table.add_row(name, escape(shortened(lines, SHOWN_LINES)))
    Console(highlight=False).print(table)


def show_notes(out: Output, summary: BatchSummary, journal: Journal) -> None:
    """What is still in flight, what the journal and the webhook log showed, how to resume (on
    stderr, also with --json)."""
    path = escape(str(journal.path))
    if summary.legacy_journal:
        out.note(f"{path} was written by an older client, without checksums: damage to it cannot be seen")
    if summary.journal_damage:
        out.note(
            f"[red]{path} is damaged: {escape(shortened(summary.journal_damage, MAX_SHOWN_DAMAGE))}[/red]"
        )
    if summary.unproven_lines:
        out.note(
            f"not submitted, since the damaged journal cannot prove they never were: "
            f"{plural(len(summary.unproven_lines), 'line')}; check them with the gateway's billing, "
            "then --trust-damaged-journal submits them as the journal reads"
        )
    if summary.foreign_webhooks:
        out.note(
            f"--recover-from: ignored {plural(summary.foreign_webhooks, 'webhook')} to the URLs of another "
            "journal (another run of this batch, or another batch): they prove nothing here"
        )
    if summary.pending_lines:
        out.note(
            f"pending (accepted, charged unless they end ERROR): {plural(len(summary.pending_lines), 'line')}"
        )
    if summary.unanswered_lines:
        out.note(
            f"{plural(len(summary.unanswered_lines), 'submit')} still unanswered when stopped: "
            "their lines are uncertain"
        )
    if summary.interrupted or summary.pending or summary.not_submitted:
        out.note(f"stopped before the end; run the same command again to resume from {path}")
    if summary.uncertain:
        out.note(
            "uncertain lines may have been accepted (and charged) without an answer arriving; "
            "--resubmit-uncertain submits them again"
        )


# Arguments --------------------------------------------------------------------------------------


def image_size(value: str) -> ImageSizePreset | CustomImageSize:
    """A preset (square_hd, landscape_16_9, ...) or WIDTHxHEIGHT."""
    if "x" in value and value.replace("x", "", 1).isdigit():
        width, height = value.split("x")
        return CustomImageSize(width=int(width), height=int(height))
    try:
        return check_image_size_preset(value)
    except TypeError:
        presets = ", ".join(sorted(IMAGE_SIZE_PRESET_VALUES))
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT or one of {presets}") from None


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    connection = common.add_argument_group("gateway")
    connection.add_argument(
        "--base-url", help=f"gateway URL (default: ${wire.BASE_URL_ENV} or {wire.DEFAULT_BASE_URL})"
    )
    connection.add_argument(
        "--api-key", help=f"API key (default: ${wire.API_KEY_ENV}, which keeps it out of `ps`)"
    )
    connection.add_argument("--request-timeout", type=float, metavar="S", help="timeout of each HTTP call")
    connection.add_argument(
        "--max-retries", type=int, metavar="N", help="retries of a failed call (default 2)"
    )
    connection.add_argument(
        "--seconds-per-step",
        type=float,
        metavar="S",
        help="the gateway's pace per step and image, where the poll schedule starts learning from "
        "(default 0.5; a mock at --speed 100: 0.005)",
    )
    output = common.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    output.add_argument("-q", "--quiet", action="store_true", help="no progress or notes on stderr")
    output.add_argument("-v", "--verbose", action="store_true", help="log every call and retry on stderr")

    deadline = argparse.ArgumentParser(add_help=False)
    deadline.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="end the whole command within S s: every call, retry, Retry-After wait, poll and download "
        "included (a wait gives up after 600 s by default)",
    )
    waiting = argparse.ArgumentParser(add_help=False, parents=[deadline])
    waiting.add_argument(
        "--expected-seconds", type=float, metavar="S", help="how long the job should take, if you know better"
    )

    job = argparse.ArgumentParser(add_help=False, parents=[waiting])
    params = job.add_argument_group("request parameters (default: the API's)")
    params.add_argument("--negative-prompt")
    params.add_argument("--size", type=image_size, help="a preset such as landscape_16_9, or 1280x720")
    params.add_argument("--steps", type=int, help="num_inference_steps, 20-50")
    params.add_argument("--guidance-scale", type=float)
    params.add_argument("--cfg-range-start", type=float)
    params.add_argument("--cfg-range-end", type=float)
    params.add_argument("-n", "--num-images", type=int, help="1-4")
    params.add_argument("--format", choices=["jpeg", "png"])
    params.add_argument("--seed", type=int)
    params.add_argument("--no-safety-checker", action="store_true")
    params.add_argument("--sync-mode", action="store_true", help="images inline in the answer (no polling)")
    job.add_argument("--webhook-url", type=http_url, help="also POST the final status object here")
    job.add_argument("--out", default=".", help="folder for the images (default: the current one)")
    job.add_argument("--no-download", action="store_true", help="print the image URLs instead")

    top = argparse.ArgumentParser(
        prog="boogu", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = commands.add_parser(
        "generate", parents=[common, job], help="text to image: submit, wait, download"
    )
    generate.add_argument("prompt")
    generate.set_defaults(handler=cmd_generate)

    edit = commands.add_parser("edit", parents=[common, job], help="edit an image: submit, wait, download")
    edit.add_argument("prompt")
    edit.add_argument("image", help="an http(s) URL, a data URI, or a local image file")
    edit.add_argument("--image-guidance-scale", type=float)
    edit.set_defaults(handler=cmd_edit)

    status = commands.add_parser("status", parents=[common, deadline], help="a request's current status")
    status.add_argument("request_id")
    status.set_defaults(handler=cmd_status)

    wait = commands.add_parser("wait", parents=[common, waiting], help="wait until a request finishes")
    wait.add_argument("request_id")
    wait.set_defaults(handler=cmd_wait)

    download = commands.add_parser(
        "download", parents=[common, deadline], help="download a finished request's images"
    )
    download.add_argument("request_id")
    download.add_argument("--out", default=".", help="folder for the images (default: the current one)")
    download.set_defaults(handler=cmd_download)

    batch = commands.add_parser(
        "batch", parents=[common, deadline], help="run a JSONL file of jobs, resumably"
    )
    batch.add_argument("file", help="one JSON object per line: prompt, parameters, image_url for edits, id")
    batch.add_argument(
        "--out", default="batch-out", help="folder for the images and the journal (default: batch-out)"
    )
    batch.add_argument("--journal", help="journal file (default: OUT/batch-journal.jsonl)")
    batch.add_argument("--concurrency", type=int, default=4, help="jobs in flight at once (default 4)")
    batch.add_argument(
        "--max-rps",
        type=float,
        help="never more API calls per second than this (below it, the limit is learned from 429s)",
    )
    batch.add_argument(
        "--resubmit-uncertain",
        action="store_true",
        help="submit again lines whose submit got no answer (they may become duplicate, charged jobs)",
    )
    batch.add_argument(
        "--webhook-url",
        type=http_url,
        metavar="URL",
        help="send each line's webhook to URL/<line> (a `python -m boogu.webhooks --log FILE` receiver), "
        "so that --recover-from FILE can recover its uncertain lines",
    )
    batch.add_argument(
        "--recover-from",
        type=Path,
        metavar="WEBHOOK_LOG",
        help="accept (and wait for, never resubmit) each uncertain line whose webhook is in this log",
    )
    batch.add_argument(
        "--no-retry-errors",
        action="store_true",
        help="leave lines whose job ended ERROR (not charged) alone instead of submitting them again",
    )
    batch.add_argument(
        "--trust-damaged-journal",
        action="store_true",
        help="submit the lines of a damaged journal as it reads (a record lost may have been a submit)",
    )
    batch.set_defaults(handler=cmd_batch)

    verify.register(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    out = Output(as_json=args.json, quiet=args.quiet, verbose=args.verbose)
    handler: Callable[[argparse.Namespace, Output], int] = args.handler
    try:
        return int(handler(args, out))
    except BooguError as exc:
        return out.fail(exc)
    except KeyboardInterrupt:
        out.note("interrupted")
        return int(ExitCode.INTERRUPTED)


if __name__ == "__main__":
    sys.exit(main())
