"""The mock's tunable behaviour, read and changed at run time through `/__mock/config`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

import orjson

from ._ratelimit import RateLimit

DEFAULT_API_KEY = "test-key"
LostAnswerMode = Literal["drop", "500"]
LOST_ANSWER_MODES: tuple[LostAnswerMode, ...] = get_args(LostAnswerMode)


MAX_AMOUNT = Decimal(10) ** 12
"""Balances and prices go from 0 to 10^12 with at most 6 decimal places: 18 digits, so sums of
thousands of charges stay exact within Decimal's 28 digits."""
AMOUNT_PLACES = 6
QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)
BOUNDS: dict[str, tuple[float, float]] = {
    "speed": (1e-3, 1e6),
    "job_ttl": (1.0, 366 * 86400.0),
    "latency_seconds": (0.0, 60.0),
    "queue_seconds": (0.0, 3600.0),
    "webhook_backoff": (1e-3, 3600.0),
    "body_timeout": (0.1, 3600.0),
    # Integer settings (their bounds are ints):
    "max_body_bytes": (1024, 1024**3),
    "webhook_max_attempts": (1, 100),
    "webhook_concurrency": (1, 1024),
    "max_unfinished_per_key": (1, 1_000_000),
    "journal_size": (1, 1_000_000),
    "journal_entry_bytes": (1024, 64 * 1024 * 1024),
    "job_input_bytes": (0, 64 * 1024**3),
    "max_header_bytes": (1024, 16 * 1024 * 1024),
}
MAX_CAPACITY = 100_000
"""Every numeric setting's range: a speed of 5e-324 made job times NaN, 1e9 s of latency hung calls."""


class ConfigError(ValueError):
    """A configuration change names an unknown field or an out-of-range value."""


@dataclass(frozen=True)
class MockConfig:
    """Defaults give a well-behaved gateway: every job completes, nothing is rate limited or faulty."""

    speed: float = 1.0
    """Simulated durations are divided by this; 30 steps × 1 image take 15 s at speed 1."""
    capacity: int | None = None
    """Jobs processed at once per model; later ones wait QUEUED in arrival order. None: unlimited."""
    duration_jitter: float = 0.0
    """Relative spread (0 to 1) of queue and processing times around the step-image model, log-normal."""
    queue_seconds: float = 1.0
    """Base time a job spends QUEUED on an idle gateway (at most half of its total)."""
    public_url: str | None = None
    """Base of polling_url and media URLs; None: the address the request reached the mock on."""
    seed: int | None = None
    """Seeds the outcome and fault draws (and images without a seed) for reproducible runs."""
    price_per_image: Decimal = Decimal("0.02")
    default_balance: Decimal = Decimal("100")
    """Balance of keys created without one, the development key included."""
    rate_limit: RateLimit | None = None
    failed_rate: float = 0.0
    """Share of jobs that end FAILED (charged) without an X-Mock-Outcome header."""
    error_rate: float = 0.0
    """Share of jobs that end ERROR (not charged) without an X-Mock-Outcome header."""
    fault_rate: float = 0.0
    """Share of API calls answered 500 before they do anything."""
    drop_rate: float = 0.0
    """Share of API calls whose connection is dropped before they do anything."""
    lost_answer_rate: float = 0.0
    """Share of accepted submits whose answer is lost: the job is created, charged and runs, but the
    caller never learns its id, the gateway's most expensive failure (drawn after the door's faults)."""
    lost_answer_mode: LostAnswerMode = "drop"
    """How `lost_answer_rate` loses the answer: `drop` the connection, or answer `500`."""
    latency_rate: float = 0.0
    """Share of API calls delayed by `latency_seconds` (real time, not the mock clock)."""
    latency_seconds: float = 1.0
    job_ttl: float = 3600.0
    """Seconds a finished job stays queryable; after that, status answers 404."""
    max_body_bytes: int = 10 * 1024 * 1024
    webhook_allowlist: tuple[str, ...] = field(default_factory=tuple)
    webhook_max_attempts: int = 5
    webhook_backoff: float = 1.0
    webhook_concurrency: int = 32
    """Webhook attempts (and so sockets) at once; later due deliveries wait their turn."""
    max_unfinished_per_key: int = 10_000
    """Jobs of one key not yet finished; past it a submit is answered 429 with a Retry-After."""
    journal_size: int = 10_000
    journal_entry_bytes: int = 64 * 1024
    """Header and body bytes kept per journal entry; longer values are cut and marked truncated."""
    job_input_bytes: int = 256 * 1024 * 1024
    """Bytes of stored job inputs (edit images, prompts); past it the oldest finished jobs are dropped."""
    max_header_bytes: int = 64 * 1024
    """Request line and headers of one request, when served; larger requests are answered 431."""
    body_timeout: float = 15.0
    """Seconds a client may take to send a request's headers or body before it is answered 408."""
    extra_fields: dict[str, Any] = field(default_factory=dict)
    """Fields the spec does not list, added to every JSON object the API answers (never over a listed
    one): a gateway that grew a field, for testing that a client reads answers it does not know."""

    def __post_init__(self) -> None:
        rates = (
            "failed_rate",
            "error_rate",
            "fault_rate",
            "drop_rate",
            "lost_answer_rate",
            "latency_rate",
            "duration_jitter",
        )
        for name in rates:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}: {value} is not between 0 and 1")
        if self.failed_rate + self.error_rate > 1.0:
            raise ConfigError("failed_rate + error_rate: must not exceed 1")
        if self.fault_rate + self.drop_rate > 1.0:
            raise ConfigError("fault_rate + drop_rate: must not exceed 1")
        if self.lost_answer_mode not in LOST_ANSWER_MODES:
            shown = " or ".join(f'"{mode}"' for mode in LOST_ANSWER_MODES)
            raise ConfigError(f"lost_answer_mode: expected {shown}, got {self.lost_answer_mode!r}")
        for name, (low, high) in BOUNDS.items():
            # `low <= value <= high` also refuses NaN, which every comparison lets through.
            if not low <= getattr(self, name) <= high:
                raise ConfigError(f"{name}: must be a number from {low:g} to {high:g}")
        if self.capacity is not None and not 1 <= self.capacity <= MAX_CAPACITY:
            raise ConfigError(f"capacity: must be null (unlimited) or an integer from 1 to {MAX_CAPACITY:,}")
        for name in ("price_per_image", "default_balance"):
            check_amount(getattr(self, name), name)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["price_per_image"] = money(self.price_per_image)
        data["default_balance"] = money(self.default_balance)
        data["webhook_allowlist"] = list(self.webhook_allowlist)
        return data

    def updated(self, changes: dict[str, Any]) -> MockConfig:
        """A copy with `changes` (JSON values, as PATCH /__mock/config sends them) applied and checked."""
        known = {f.name for f in fields(self)}
        if changes.get("realistic", False) is not False:
            if changes["realistic"] is not True:
                raise ConfigError("realistic: expected true (a preset; false changes nothing)")
            changes = {**REALISTIC, **changes}
        changes = {name: value for name, value in changes.items() if name != "realistic"}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(
                f"{', '.join(unknown)}: unknown setting; known: {', '.join(sorted(known | {'realistic'}))}"
            )
        converted: dict[str, Any] = {}
        for name, value in changes.items():
            converted[name] = _convert(name, value)
        return replace(self, **converted)


REALISTIC: dict[str, Any] = {
    "capacity": 4,
    "duration_jitter": 0.3,
    "queue_seconds": 2.0,
}
"""`--realistic` / `{"realistic": true}`: a busy fleet rather than a perfect one. Four workers per model,
so a burst of jobs queues; a 30% log-normal spread of queue and processing times, so no two jobs take
the same time and clients cannot tune their polling to a constant; and 2 s of base queue time (the
dispatch delay before a worker picks a job up), so `QUEUED` is seen by a client that polls at once.
Explicit settings given with it win."""


def parse_amount(value: Any, name: str) -> Decimal:
    """A sum of money from JSON: a number or a numeric string, within the documented range."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{name}: expected a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{name}: expected a number") from None
    check_amount(amount, name)
    return amount


def check_amount(amount: Decimal, name: str) -> None:
    """Money stays exact only within bounds: a 28-digit Decimal cannot take 0.02 off 1e27."""
    # NaN would raise on a range check and Infinity would pass it.
    if not amount.is_finite() or not 0 <= amount <= MAX_AMOUNT:
        raise ConfigError(f"{name}: must be a number from 0 to {MAX_AMOUNT:,}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -AMOUNT_PLACES and amount != amount.quantize(QUANTUM):
        raise ConfigError(f"{name}: at most {AMOUNT_PLACES} decimal places")


def money(amount: Decimal) -> str:
    """Money as JSON carries it exactly: a decimal string such as "99.98", never a float."""
    return f"{amount.normalize():f}" if amount else "0"


INTEGERS = frozenset(name for name, (low, _) in BOUNDS.items() if isinstance(low, int))


def _host_pattern(value: Any) -> bool:
    """An allowlist entry: `host`, `host:port` or `*.domain`, printable ASCII, as a URL carries it."""
    return isinstance(value, str) and 0 < len(value) <= 255 and value.isascii() and value.isprintable()


def _public_url(value: Any) -> str | None:
    """An absolute http(s) base URL, kept without a trailing slash so paths append to it as they are."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 2048:
        raise ConfigError("public_url: expected null or an http(s) URL of at most 2,048 characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError on a port out of range
    except ValueError as exc:
        raise ConfigError(f"public_url: {value!r} is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"public_url: {value!r} must be an absolute http or https URL")
    if parts.query or parts.fragment or parts.username or parts.password or not value.isprintable():
        raise ConfigError(f"public_url: {value!r} must have no query, fragment or credentials")
    return value.rstrip("/")


MAX_EXTRA_FIELDS_BYTES = 4096


def _extra_fields(value: Any) -> dict[str, Any]:
    """A small JSON object: it is copied into every answer, so its size is bounded."""
    if not isinstance(value, dict) or not all(isinstance(name, str) and name for name in value):
        raise ConfigError('extra_fields: expected a JSON object such as {"progress": 0.5}')
    if len(orjson.dumps(value)) > MAX_EXTRA_FIELDS_BYTES:
        raise ConfigError(f"extra_fields: at most {MAX_EXTRA_FIELDS_BYTES:,} bytes of JSON")
    return dict(value)


def _convert(name: str, value: Any) -> Any:
    """Turn one JSON value into the field's type, naming the field when it does not fit."""
    try:
        if name == "rate_limit":
            if value is None:
                return None
            if not isinstance(value, dict) or set(value) != {"rate", "burst"}:
                raise ConfigError('rate_limit: expected null or {"rate": R, "burst": B}')
            rate, burst = value["rate"], value["burst"]
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 1e-3 <= rate <= 1e6:
                raise ConfigError("rate_limit.rate: must be a number from 0.001 to 1e+06")
            if isinstance(burst, bool) or not isinstance(burst, int) or not 1 <= burst <= 1_000_000:
                raise ConfigError("rate_limit.burst: must be an integer from 1 to 1,000,000")
            return RateLimit(rate=float(rate), burst=burst)
        if name in ("price_per_image", "default_balance"):
            return parse_amount(value, name)
        if name == "webhook_allowlist":
            if not isinstance(value, list) or not all(_host_pattern(v) for v in value):
                raise ConfigError(f"{name}: expected a list of host names such as example.test:8080")
            return tuple(value)
        if name == "public_url":
            return _public_url(value)
        if name == "extra_fields":
            return _extra_fields(value)
        if name == "seed":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError("seed: expected an integer or null")
            return value
        if name == "capacity" and value is None:
            return None
        if name == "lost_answer_mode":
            return value  # a string checked with the whole config, as the dataclass is
        if name in INTEGERS or name == "capacity":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{name}: expected an integer")
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name}: expected a number")
        return float(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name}: {exc}") from exc
