from typing import Literal, cast

Status = Literal["COMPLETED", "ERROR", "FAILED", "PROCESSING", "QUEUED"]

STATUS_VALUES: set[Status] = {
    "COMPLETED",
    "ERROR",
    "FAILED",
    "PROCESSING",
    "QUEUED",
}


def check_status(value: str) -> Status:
    """`value` as a Status. A string outside STATUS_VALUES is returned unchanged, not
    rejected (the gateway may add values): check `value in STATUS_VALUES` before relying on one."""
    if isinstance(value, str):
        return cast(Status, value)
    raise TypeError(f"Unexpected value {value!r}. Expected a string such as one of {STATUS_VALUES!r}")
