from typing import Literal

Status = Literal["COMPLETED", "ERROR", "FAILED", "PROCESSING", "QUEUED"]

STATUS_VALUES: set[Status] = {
    "COMPLETED",
    "ERROR",
    "FAILED",
    "PROCESSING",
    "QUEUED",
}


def check_status(value: str) -> Status:
    if value in STATUS_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {STATUS_VALUES!r}")
