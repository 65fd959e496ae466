"""The wire facts of the Boogu Image API that code needs as constants, each written once.

openapi.yaml is the contract; these are the few of its facts that the client, the mock and the tools
spell in code (a header to send, the statuses that end a job, the default address), plus the names
the toolkit itself puts on the wire. `contract_tests/spec` holds each one to the spec's own text.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Final

KEY_HEADER: Final = "Ocp-Apim-Subscription-Key"
"""The `apiKey` security scheme's header."""
WEBHOOK_HEADER: Final = "X-Webhook-URL"
STATUSES: Final = ("QUEUED", "PROCESSING", "COMPLETED", "FAILED", "ERROR")
"""The status flow of `info.description`, in order."""
TERMINAL_STATUSES: Final = frozenset({"COMPLETED", "FAILED", "ERROR"})
"""The finished statuses: `completed_at` is set exactly once a job reaches one, and it never changes."""
CHARGED_STATUSES: Final = frozenset({"COMPLETED", "FAILED"})
"""Finished statuses the gateway charges for; an `ERROR` is not charged."""

DEFAULT_BASE_URL: Final = "https://gateway.pixazo.ai"
"""The production server of the spec's `servers`."""
BASE_URL_ENV: Final = "BOOGU_BASE_URL"
API_KEY_ENV: Final = "BOOGU_API_KEY"

STATUS_PATH: Final = "/v2/requests/status/{request_id}"
SUBMIT_PATH: Final = re.compile(r"^/(?P<model>[^/]+)/v1/(?P=model)-request$")
"""Every model's submit operation, `/{model}/v1/{model}-request`; an unknown model is a 400, not a 404."""

ADMIN_PREFIX: Final = "/__mock"
"""The toolkit's own routes on its servers (mock, proxy, replay); never the gateway's."""
ADMIN_TOKEN_ENV: Final = "MOCK_GATEWAY_ADMIN_TOKEN"  # noqa: S105 (a variable's name, not a secret)


def submit_path(model: str) -> str:
    return f"/{model}/v1/{model}-request"


def submit_model(path: str) -> str | None:
    """The model a submit path names, or None when `path` is no submit path."""
    match = SUBMIT_PATH.match(path)
    return match["model"] if match else None


def status_path(request_id: str) -> str:
    return STATUS_PATH.replace("{request_id}", request_id)


def iso_time(at: float) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as the reference writes timestamps."""
    millis = int(at * 1000)
    return f"{_iso_second(millis // 1000)}.{millis % 1000:03d}Z"


@functools.lru_cache(maxsize=64)
def _iso_second(second: int) -> str:
    """A second's text, formatted once for every timestamp that falls in it (the jobs submitted, started
    and finished in one second): `datetime`'s formatting cost 3.65 µs a timestamp, and a status answer
    carries up to three."""
    return f"{datetime.fromtimestamp(second, UTC):%Y-%m-%dT%H:%M:%S}"
