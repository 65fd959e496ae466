"""Does an exchange with a gateway keep openapi.yaml? The pure checks behind the validating proxy.

Every rule is read from the spec through `Contract` (status codes, body schemas, response headers,
request parameters); only what a schema cannot say is written here, each next to the spec text it
comes from: the `<model-id>_<UUIDv7>` shape of `request_id`, `polling_url` naming the status
operation for that id, and the status flow of `info.description` (no way back from a finished
status, which needs the polls seen before; `completed_at` set exactly when finished; `output` set
exactly when COMPLETED).

A violation names the place with a JSON pointer into the message seen as
`{"status": ..., "headers": {...}, "body": ...}`, such as `/body/model_id` or `/headers/retry-after`.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from ._contract import Contract, fast_valid, pointer_of
from ._redact import REDACTED, is_secret, summarize_body
from .wire import KEY_HEADER, STATUS_PATH, STATUSES, TERMINAL_STATUSES, status_path, submit_model

Side = Literal["request", "response"]
_KEY = KEY_HEADER.lower()
MAX_SHOWN = 200
Found = tuple[str, str, str, str, Any]
"""A broken rule before it is dressed as a violation: pointer, rule, message, expected, value."""


@dataclass(frozen=True, slots=True)
class ContractViolation:
    """One broken rule of an exchange: where (JSON pointer), the rule, what the spec says, what was sent."""

    operation: str
    request_id: str | None
    side: Side
    pointer: str
    rule: str
    message: str
    expected: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"{self.side} {self.pointer or '/'} {self.rule}"


def redact(value: Any, secrets: Collection[str]) -> Any:
    """A value safe to log and show: long strings cut, any secret (the caller's key) blanked out."""
    value = summarize_body(value)
    if isinstance(value, str):
        text = value[:MAX_SHOWN] + "…" if len(value) > MAX_SHOWN else value
        return REDACTED if any(secret and secret in value for secret in secrets) else text
    if isinstance(value, dict):
        return {key: redact(item, secrets) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    return value


def _brief(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


class Conformance:
    """Checks requests and responses of the API operations; remembers each request's status flow.

    Thread-safe; the memory of statuses is bounded (the least recently polled ids are forgotten).
    """

    def __init__(self, contract: Contract | None = None, *, remembered: int = 10_000) -> None:
        self.contract = contract or Contract()
        self._statuses: OrderedDict[str, str] = OrderedDict()
        self._remembered = remembered
        self._lock = threading.Lock()

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The operationId and path parameters of a request, or None when it is no API operation."""
        routed = self.contract.route(method, path)
        return (routed[0].operation_id, routed[1]) if routed else None

    # Requests -----------------------------------------------------------------------------------

    def check_request(
        self, operation_id: str, headers: Mapping[str, str], body: Any, *, parsed: bool = True
    ) -> list[ContractViolation]:
        """The request's broken rules: its key, its header parameters, its JSON body."""
        lowered = {name.lower(): value for name, value in headers.items()}
        secrets = _secrets(lowered)
        found: list[ContractViolation] = []

        def add(pointer: str, rule: str, message: str, expected: str, value: Any) -> None:
            found.append(
                ContractViolation(
                    operation_id, None, "request", pointer, rule, message, expected, redact(value, secrets)
                )
            )

        operation = self.contract.operations[operation_id]
        if operation.needs_key and not lowered.get(_KEY):
            add(pointer_of("headers", _KEY), "security", "the API key header is missing", "a key", None)
        for name in operation.headers:
            if name in lowered:
                broken = self.contract.check_header(operation_id, name, lowered[name])
                if broken is not None:
                    add(pointer_of("headers", name), broken.rule, broken.message, "", lowered[name])
        if operation.body is None:
            return found
        if not parsed:
            add("/body", "json", "the body is not JSON", "application/json", body)
            return found
        if operation.fast_body is not None and fast_valid(operation.fast_body, body):
            return found
        for found_here in _schema_violations(operation.body, body):
            add(*found_here)
        return found

    # Responses ----------------------------------------------------------------------------------

    def check_response(
        self,
        operation_id: str,
        status: int,
        headers: Mapping[str, str],
        body: Any,
        *,
        path_params: Mapping[str, str] | None = None,
        submit_path: str = "",
        secrets: Collection[str] = (),
        parsed: bool = True,
    ) -> list[ContractViolation]:
        """The response's broken rules: a declared status, its body schema and headers, the id shapes,
        and (for status objects) the flow from the statuses this request showed before."""
        request_id = (path_params or {}).get("request_id")
        if isinstance(body, dict) and isinstance(body.get("request_id"), str):
            request_id = request_id or body["request_id"]
        found: list[ContractViolation] = []

        def add(pointer: str, rule: str, message: str, expected: str, value: Any) -> None:
            found.append(
                ContractViolation(
                    operation_id,
                    request_id,
                    "response",
                    pointer,
                    rule,
                    message,
                    expected,
                    redact(value, secrets),
                )
            )

        declared = self.contract.operations[operation_id].declared
        if str(status) not in declared:
            add(
                "/status",
                "declared-status",
                f"{status} is not a declared response",
                ", ".join(declared),
                status,
            )
            return found
        rule = self.contract.response_rule(operation_id, str(status))
        lowered = {name.lower(): value for name, value in headers.items()}
        for name, header in rule.headers.items():
            if name not in lowered:
                if header.required:
                    add(
                        pointer_of("headers", name), "required-header", f"{name} is required", "present", None
                    )
                continue
            value: Any = lowered[name]
            if header.integer and value.isdigit():
                value = int(value)
            for error in header.validator.iter_errors(value):
                add(pointer_of("headers", name), str(error.validator), error.message, _expected(error), value)
        if rule.body is not None and not parsed:
            add("/body", "json", "the body is not JSON", "application/json", body)
        elif rule.body is not None and not (rule.fast_body is not None and fast_valid(rule.fast_body, body)):
            for found_here in _schema_violations(rule.body, body):
                add(*found_here)
        if isinstance(body, dict) and status < 300:
            for pointer, name, message, expected, value in self._semantics(
                operation_id, body, request_id, (path_params or {}).get("request_id"), submit_path
            ):
                add(pointer, name, message, expected, value)
        return found

    def _semantics(
        self,
        operation_id: str,
        body: dict[str, Any],
        request_id: str | None,
        asked: str | None,
        submit_path: str,
    ) -> Iterator[Found]:
        """The rules the schemas cannot hold: id shapes, polling_url, the status flow."""
        sent_id = body.get("request_id")
        if self.contract.operations[operation_id].path != STATUS_PATH and isinstance(sent_id, str):
            model = submit_model(submit_path) or ""
            if not _is_request_id(sent_id, model):
                yield (
                    "/body/request_id",
                    "request-id-shape",
                    "not <model-id>_<UUIDv7>",
                    f"{model}_<UUIDv7>",
                    sent_id,
                )
        if asked is not None and isinstance(sent_id, str) and sent_id != asked:
            yield "/body/request_id", "request-id-echo", "not the id that was asked for", asked, sent_id
        polling_url = body.get("polling_url")
        if isinstance(polling_url, str) and isinstance(sent_id, str):
            expected = status_path(sent_id)
            parts = urlsplit(polling_url)
            if parts.scheme not in ("http", "https") or unquote(parts.path) != expected:
                yield (
                    "/body/polling_url",
                    "polling-url",
                    "does not name the status operation",
                    expected,
                    polling_url,
                )
        status = body.get("status")
        if isinstance(status, str) and "model_id" in body and isinstance(request_id, str):
            yield from self._flow(request_id, status, body)

    def _flow(self, request_id: str, status: str, body: dict[str, Any]) -> Iterator[Found]:
        finished = status in TERMINAL_STATUSES
        if finished and not body.get("completed_at"):
            yield (
                "/body/completed_at",
                "completed-at",
                f"missing while {status}",
                "a timestamp",
                body.get("completed_at"),
            )
        if not finished and body.get("completed_at") is not None:
            yield "/body/completed_at", "completed-at", f"set while {status}", "null", body["completed_at"]
        # RequestStatus.output: "null until the request is COMPLETED", and the result once it is.
        if "output" in body and status == "COMPLETED" and body["output"] is None:
            yield "/body/output", "output", "missing while COMPLETED", "the result", None
        if "output" in body and status != "COMPLETED" and body["output"] is not None:
            yield "/body/output", "output", f"set while {status}", "null", body["output"]
        with self._lock:
            before = self._statuses.pop(request_id, None)
            self._statuses[request_id] = status
            while len(self._statuses) > self._remembered:
                self._statuses.popitem(last=False)
        rank, rank_before = _rank(status), _rank(before) if before is not None else None
        if rank is None or rank_before is None:
            return
        if rank < rank_before or (before in TERMINAL_STATUSES and status != before):
            yield (
                "/body/status",
                "status-flow",
                f"went from {before} back to {status}",
                f"{before} or later",
                status,
            )


def _schema_violations(validator: Draft202012Validator, body: Any) -> Iterator[Found]:
    """Each schema error of a body, at the pointer of the offending value (a missing property: its own)."""
    seen: set[tuple[str, str]] = set()
    for error in validator.iter_errors(body):
        parts: list[str | int] = ["body", *error.absolute_path]
        if error.validator == "required" and isinstance(error.instance, dict):
            places = [
                (pointer_of(*parts, name), None)
                for name in error.validator_value
                if name not in error.instance
            ]
        else:
            places = [(pointer_of(*parts), error.instance)]
        for pointer, value in places:
            if (pointer, str(error.validator)) not in seen:
                seen.add((pointer, str(error.validator)))
                yield pointer, str(error.validator), error.message, _expected(error), value


def _expected(error: ValidationError) -> str:
    """What the spec says, as `keyword: value`, e.g. `enum: ['QUEUED', 'PROCESSING', ...]`."""
    if error.validator in ("oneOf", "anyOf", "allOf", "$ref"):
        return f"{error.validator} of the schema"
    return f"{error.validator}: {_brief(error.validator_value)}"


def _secrets(lowered_headers: Mapping[str, str]) -> list[str]:
    return [value for name, value in lowered_headers.items() if is_secret(name) and value]


def _is_request_id(value: str, model: str) -> bool:
    prefix, _, rest = value.rpartition("_")
    try:
        return prefix == model and uuid.UUID(rest).version == 7
    except ValueError:
        return False


def _rank(status: str) -> int | None:
    """Where a status stands in the flow; the finished ones all rank last."""
    if status not in STATUSES:
        return None
    return 2 if status in TERMINAL_STATUSES else STATUSES.index(status)
