"""The command line's own argument types and exit codes, shared by `boogu` and `boogu verify`."""

from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from enum import IntEnum
from urllib.parse import urlsplit


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    """Anything unexpected."""
    USAGE = 2
    """Bad arguments, no API key, an unusable batch file."""
    BAD_REQUEST = 3
    MODEL_NOT_FOUND = 4
    UNAUTHORIZED = 5
    FORBIDDEN = 6
    INSUFFICIENT_BALANCE = 7
    NOT_FOUND = 8
    RATE_LIMITED = 9
    SERVER_ERROR = 10
    CONNECTION_ERROR = 11
    """No answer; for a submit, the job may exist: check before submitting again."""
    JOB_FAILED = 12
    """The job ended FAILED (charged)."""
    JOB_ERROR = 13
    """The job ended ERROR (not charged)."""
    UNKNOWN_STATUS = 14
    WAIT_TIMEOUT = 15
    """Still running at the deadline; `boogu wait ID` picks it up again."""
    NOT_FINISHED = 16
    DOWNLOAD_FAILED = 17
    BATCH_INCOMPLETE = 18
    """The batch ended with lines not completed; see its summary (running it again resumes it)."""
    INTERRUPTED = 130


def http_url(value: str) -> str:
    """An http(s) URL: a gateway's, or one the gateway can call back (X-Webhook-URL is `^https?://`)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL, got {value[:80]!r}")
    return value


def amount(value: str) -> Decimal:
    """A sum of money such as `0.02`; argparse reports only ValueError and TypeError by itself."""
    try:
        return Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"expected a number such as 0.02, got {value!r}") from None
