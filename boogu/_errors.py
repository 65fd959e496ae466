"""Every error the client raises: one class per answer of the gateway, per way a job can end badly,
and per way a call can fail on the wire, so callers catch exactly what they can handle.

No exception carries request headers, so the API key can never reach a traceback or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import httpx

from boogu_contract._json import loads

if TYPE_CHECKING:
    from ._models import JobStatus

MAX_SHOWN_BODY = 300
"""Characters of a non-JSON error body kept in a message (a proxy's HTML page can be long)."""


class BooguError(Exception):
    """Base of every error this package raises."""


class ConfigurationError(BooguError):
    """The client cannot be built as asked: no API key, a malformed base URL."""


class APIError(BooguError):
    """A call to the gateway did not give a usable answer."""


class APIConnectionError(APIError):
    """No answer came back: the connection failed, broke, or timed out.

    `request_sent` says whether the request may have reached the gateway. For a submit that is the
    difference between "safe to try again" and "the job may exist and be charged".
    """

    def __init__(self, message: str, *, operation: str, request_sent: bool) -> None:
        super().__init__(message)
        self.operation = operation
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """The call took longer than its timeout."""


class NotTheGatewayError(APIConnectionError):
    """Something answered, but not the gateway: an HTML page or other non-JSON body (a wrong base URL,
    a captive portal). For a submit, the request did leave, so it counts as possibly accepted."""

    def __init__(self, message: str, *, operation: str) -> None:
        super().__init__(message, operation=operation, request_sent=True)


class APIResponseValidationError(APIError):
    """A success answer whose body is not what the contract promises."""

    def __init__(self, message: str, *, status_code: int, body: bytes) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body


class APIStatusError(APIError):
    """The gateway answered with an error status; `error` and `message` are its `{error, message}` body."""

    def __init__(
        self,
        *,
        status_code: int,
        error: str,
        message: str,
        request_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        note: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.error = error
        self.message = message
        self.request_id = request_id
        self.headers = dict(headers or {})
        self.body = body
        self.note = note
        """Why the call was not tried again, when it could have been (a `Retry-After` too long...)."""
        suffix = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{status_code} {error}: {message}{suffix}{f'; {note}' if note else ''}")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, error={self.error!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(APIStatusError):
    """400 (and 413, 415): the gateway refused the parameters; sending them again cannot help."""


class ModelNotFoundError(BadRequestError):
    """400 `Model not found`: the model is unknown or disabled."""


class UnauthorizedError(APIStatusError):
    """401: the API key is missing or unknown."""


class InsufficientBalanceError(APIStatusError):
    """402: the wallet cannot pay for the job; never retried."""


class ForbiddenError(APIStatusError):
    """403: the key is disabled or may not use this model."""


class NotFoundError(APIStatusError):
    """404: no such request for this key, or it has expired."""


class RateLimitError(APIStatusError):
    """429 after the retries ran out; `retry_after` is the gateway's advice in seconds."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after


class ServerError(APIStatusError):
    """5xx after the retries ran out (a 5xx answer to a submit is not retried: it may have been accepted)."""


class JobError(BooguError):
    """The job ended (or stands) in a way that yields no images; `status` is the gateway's status object."""

    charged: bool | None = None
    """Whether the wallet paid for the job: True for FAILED, False for ERROR, None when unknown."""

    def __init__(self, status: JobStatus, message: str | None = None) -> None:
        self.status = status
        self.request_id = status.request_id
        self.error = status.error
        detail = f": {status.error}" if status.error else ""
        super().__init__(message or f"request {status.request_id} ended {status.raw_status}{detail}")


class JobFailedError(JobError):
    """The job ended FAILED (for example flagged by the safety checker); it was charged."""

    charged = True


class JobErroredError(JobError):
    """The job ended ERROR, a system error on the gateway's side; it was not charged."""

    charged = False


class UnknownStatusError(JobError):
    """The job finished with a status this client does not know (a newer gateway); see `status.raw_status`."""


class JobNotFinishedError(JobError):
    """The job is still running, so it has no result yet (for example when downloading it)."""

    def __init__(self, status: JobStatus) -> None:
        super().__init__(status, f"request {status.request_id} is {status.raw_status}, not finished yet")


class WaitTimeoutError(BooguError, TimeoutError):
    """`wait` reached its deadline; the job goes on (and is charged) at the gateway, so wait for it again."""

    def __init__(
        self, request_id: str, timeout: float, last: JobStatus | None, reason: str | None = None
    ) -> None:
        self.request_id = request_id
        self.timeout = timeout
        self.last = last
        self.reason = reason
        """What stopped the wait before the job ended, when not the time alone (a long `Retry-After`)."""
        seen = f", last seen {last.raw_status}" if last else ""
        why = f": {reason}" if reason else ""
        super().__init__(f"request {request_id} did not finish within {round(timeout, 1):g} s{seen}{why}")


class DownloadError(BooguError):
    """An image could not be downloaded, or what arrived is not the promised image."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class WebhookError(BooguError):
    """A webhook body is not a valid status object."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    402: InsufficientBalanceError,
    403: ForbiddenError,
    404: NotFoundError,
    413: BadRequestError,
    415: BadRequestError,
    429: RateLimitError,
}
MODEL_NOT_FOUND = "Model not found"


def error_body(content: bytes) -> tuple[str | None, str | None, Any]:
    """The `{error, message}` of an error answer, leniently: proxies in front of a gateway answer HTML."""
    try:
        body = loads(content)
    except ValueError:  # not JSON, or nested deeper than any error body
        text = content.decode("utf-8", "replace").strip()
        return None, text[:MAX_SHOWN_BODY] or None, text
    if isinstance(body, dict):
        error, message = body.get("error"), body.get("message")
        return (
            error if isinstance(error, str) else None,
            message if isinstance(message, str) else None,
            body,
        )
    return None, None, body


def status_error(
    status_code: int,
    headers: Mapping[str, str],
    content: bytes,
    *,
    request_id: str | None,
    retry_after: float | None,
    note: str | None = None,
) -> APIStatusError:
    """The exception for an error answer, chosen by status code (and `error` for a missing model);
    `note` says why it was not retried, where it could have been."""
    error, message, body = error_body(content)
    try:
        reason = HTTPStatus(status_code).phrase
    except ValueError:
        reason = "Error"
    fields: dict[str, Any] = {
        "status_code": status_code,
        "error": error or reason,
        "message": message or reason,
        "request_id": request_id,
        "headers": headers,
        "body": body,
        "note": note,
    }
    if status_code == 429:
        return RateLimitError(retry_after=retry_after, **fields)
    if status_code == 400 and error == MODEL_NOT_FOUND:
        return ModelNotFoundError(**fields)
    cls = _STATUS_ERRORS.get(status_code) or (ServerError if status_code >= 500 else APIStatusError)
    return cls(**fields)


def connection_error(
    error: httpx.RequestError, *, operation: str, request_sent: bool, note: str | None = None
) -> APIConnectionError:
    """Wrap an httpx transport error; the message says what it means for a submit, and `note` why it
    was not retried, where it could have been."""
    kind = APITimeoutError if isinstance(error, httpx.TimeoutException) else APIConnectionError
    what = "timed out" if kind is APITimeoutError else "failed"
    message = f"{operation} {what}: {type(error).__name__}: {error}"
    if note:
        message += f"; {note}"
    if operation.startswith("submit") and request_sent:
        message += (
            " — the gateway may have accepted the job, so it was not sent again (no duplicate charge);"
            " check before submitting it again"
        )
    return kind(message, operation=operation, request_sent=request_sent)


def job_error(status: JobStatus) -> JobError:
    """The exception for a finished job that did not complete."""
    if status.status == "FAILED":
        return JobFailedError(status)
    if status.status == "ERROR":
        return JobErroredError(status)
    if not status.finished:
        return JobNotFinishedError(status)
    return UnknownStatusError(status)
