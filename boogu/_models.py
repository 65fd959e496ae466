"""What the client hands back: a job's status that survives statuses a newer gateway adds, the handle of
a submitted job, and a finished result with its timings."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Literal, TypedDict

from boogu_image_client.models import (
    CustomImageSize,
    ImageSizePreset,
    OutputFormat,
    RequestOutput,
    RequestStatus,
)
from boogu_image_client.models.status import STATUS_VALUES

from boogu_contract import wire

StatusValue = Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED", "ERROR", "UNKNOWN"]
"""The statuses of the contract, plus UNKNOWN for one a newer gateway sends (see `JobStatus.raw_status`)."""
TERMINAL_STATUSES: frozenset[str] = wire.TERMINAL_STATUSES


class TextToImageParams(TypedDict, total=False):
    """The optional parameters of a text-to-image request (see `TextToImageRequest` for each one)."""

    negative_prompt: str
    image_size: ImageSizePreset | CustomImageSize
    num_inference_steps: int
    guidance_scale: float
    cfg_range_start: float
    cfg_range_end: float
    num_images: int
    output_format: OutputFormat
    enable_safety_checker: bool
    seed: int
    sync_mode: bool


class ImageEditParams(TextToImageParams, total=False):
    """The optional parameters of an image edit request (see `ImageEditRequest`)."""

    image_guidance_scale: float


def parse_timestamp(value: object) -> datetime | None:
    """An ISO-8601 timestamp as an aware datetime; None when absent or unreadable (it is informative only)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class JobStatus:
    """One status object of a job, as the status endpoint, a sync-mode submit or a webhook sends it.

    Unlike the generated `RequestStatus`, it accepts a status value the contract does not list yet:
    `status` is then "UNKNOWN" and `raw_status` holds what the gateway said. `raw` is the whole object,
    fields added by a newer gateway included.
    """

    request_id: str
    status: StatusValue
    raw_status: str
    model_id: str
    error: str | None
    output: RequestOutput | None
    created_at: datetime | None
    updated_at: datetime | None
    completed_at: datetime | None
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """The job will not change any more: COMPLETED, FAILED, ERROR, or an unknown status with a
        `completed_at` (which the contract sets only once a job has ended)."""
        return self.status in TERMINAL_STATUSES or (
            self.status == "UNKNOWN" and self.completed_at is not None
        )

    def to_dict(self) -> dict[str, Any]:
        """The status object exactly as the gateway sent it (a copy)."""
        return copy.deepcopy(dict(self.raw))

    def to_model(self) -> RequestStatus:
        """The generated model; raises ValueError for a status the contract does not know."""
        if self.status == "UNKNOWN":
            raise ValueError(f"status {self.raw_status!r} is not in the contract this client was built from")
        return RequestStatus.from_dict(self.to_dict())

    @classmethod
    def parse(cls, data: object) -> JobStatus:
        """Validate a status object; raises ValueError saying what is wrong.

        A known status is checked by the generated model; an unknown one only needs `request_id` and
        `status`, so that a newer gateway is still understood as far as it can be.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a status object must be a JSON object, not {type(data).__name__}")
        request_id, raw_status = data.get("request_id"), data.get("status")
        if not isinstance(request_id, str) or not request_id:
            raise ValueError("request_id: missing or not a string")
        if not isinstance(raw_status, str):
            raise ValueError("status: missing or not a string")
        raw = MappingProxyType(copy.deepcopy(dict(data)))
        if raw_status in STATUS_VALUES:
            try:
                model = RequestStatus.from_dict(data)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise ValueError(f"not a valid {raw_status} status object: {exc!r}") from None
            output = model.output
            if output is not None and not isinstance(output, RequestOutput):
                raise ValueError("output: not a RequestOutput object")
            if output is not None and not all(isinstance(url, str) for url in output.media_url):
                raise ValueError("output.media_url: not a list of strings")
            return cls(
                request_id=request_id,
                status=model.status,
                raw_status=raw_status,
                model_id=model.model_id,
                error=model.error,
                output=output,
                created_at=parse_timestamp(data.get("created_at")),
                updated_at=parse_timestamp(data.get("updated_at")),
                completed_at=parse_timestamp(data.get("completed_at")),
                raw=raw,
            )
        model_id, error, output_data = data.get("model_id"), data.get("error"), data.get("output")
        try:
            lenient_output = (
                RequestOutput.from_dict(output_data) if isinstance(output_data, Mapping) else None
            )
        except (KeyError, TypeError, ValueError):
            lenient_output = None
        return cls(
            request_id=request_id,
            status="UNKNOWN",
            raw_status=raw_status,
            model_id=model_id if isinstance(model_id, str) else model_of(request_id),
            error=error if isinstance(error, str) else None,
            output=lenient_output,
            created_at=parse_timestamp(data.get("created_at")),
            updated_at=parse_timestamp(data.get("updated_at")),
            completed_at=parse_timestamp(data.get("completed_at")),
            raw=raw,
        )


def model_of(request_id: str) -> str:
    """The model id in a `<model-id>_<UUIDv7>` request id."""
    return request_id.rpartition("_")[0] or request_id


@dataclass(frozen=True)
class Submission:
    """A job the gateway accepted: its id, and what the client knows to wait for it well."""

    request_id: str
    submitted_at: float
    """Client wall clock (Unix seconds) when the submit was sent: the origin of the poll schedule."""
    polling_url: str | None = None
    units: int | None = None
    """Inference steps × images, the size of the job, from which its duration is estimated."""
    expected_seconds: float | None = None
    """An explicit estimate of the job's duration that overrides the client's own."""
    finished: JobStatus | None = None
    """The final status when the gateway answered it at once (`sync_mode`)."""

    @property
    def model_id(self) -> str:
        return model_of(self.request_id)


@dataclass(frozen=True)
class Timings:
    created_at: datetime | None
    """When the gateway created the job (gateway clock)."""
    completed_at: datetime | None
    """When the job finished (gateway clock)."""
    noticed_at: datetime
    """When this client saw it finished (client clock)."""
    status_calls: int
    """Status requests made while waiting, retries included."""

    @property
    def duration(self) -> float | None:
        """Seconds from creation to completion, on the gateway's clock."""
        if self.created_at is None or self.completed_at is None:
            return None
        return (self.completed_at - self.created_at).total_seconds()

    @property
    def notice_delay(self) -> float | None:
        """Seconds between the job finishing and the client noticing (assumes synchronised clocks)."""
        if self.completed_at is None:
            return None
        return (self.noticed_at - self.completed_at).total_seconds()


@dataclass(frozen=True)
class Result:
    """A COMPLETED job: where its images are and how long it took."""

    request_id: str
    model_id: str
    media_urls: tuple[str, ...]
    """Image URLs; base64 `data:` URIs when the job ran in `sync_mode`."""
    media_type: str
    timings: Timings
    status: JobStatus = field(repr=False)

    @classmethod
    def from_status(cls, status: JobStatus, *, noticed_at: float, status_calls: int = 0) -> Result:
        """The result of a COMPLETED status; ValueError for any other status or a COMPLETED without output."""
        if status.status != "COMPLETED":
            raise ValueError(f"request {status.request_id} is {status.raw_status}, not COMPLETED")
        if status.output is None or not status.output.media_url:
            raise ValueError(f"request {status.request_id} is COMPLETED but has no media_url")
        return cls(
            request_id=status.request_id,
            model_id=status.model_id,
            media_urls=tuple(status.output.media_url),
            media_type=status.output.media_type,
            timings=Timings(
                created_at=status.created_at,
                completed_at=status.completed_at,
                noticed_at=datetime.fromtimestamp(noticed_at, UTC),
                status_calls=status_calls,
            ),
            status=status,
        )
