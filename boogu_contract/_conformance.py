"""Does an exchange with a gateway keep openapi.yaml? The pure checks behind the validating proxy.

Every rule is read from the spec through `Contract` (status codes, body schemas, response headers,
request parameters); only what a schema cannot say is written here, each next to the spec text it
comes from: the `<model-id>_<UUIDv7>` shape of `request_id`, `polling_url` naming the status
operation for that id, and the status flow of `info.description` (no way back from a finished
status, which needs the polls seen before; `completed_at` set exactly when finished; `output` set
exactly when COMPLETED).

A violation names the place with a JSON pointer into the message seen as
`{"status": ..., "headers": {...}, "body": ...}`, such as `/body/model_id` or `/headers/retry-after`.

Each finding has a severity: `error` for a broken rule, `notice` for what the contract allows but does
not document. The one notice is `unlisted-field`: an answer's object has a property that its schema
does not list. Response schemas say `additionalProperties: true` (generated clients must tolerate
what a gateway adds), so a schema cannot flag it; the names each schema lists are compiled once per
(operation, status) into a `_Shape` tree and an answer is walked against it.
"""

from __future__ import annotations

import itertools
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Collection, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, cast, overload
from urllib.parse import unquote, urlsplit

import attrs
import jsonschema_rs
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

from ._contract import Contract, fast_valid, pointer_of
from ._redact import REDACTED, blank_secrets, is_secret, summarize_body
from .wire import KEY_HEADER, STATUS_PATH, STATUSES, TERMINAL_STATUSES, status_path, submit_model

Side = Literal["request", "response"]
Severity = Literal["error", "notice"]
_KEY = KEY_HEADER.lower()
MAX_SHOWN = 200
MAX_SHOWN_DEPTH = 32
"""Levels of a value that a finding shows. A body is checked however deep orjson reads it (1,024 levels),
and a walk of one nested 500 deep or more went past Python's recursion limit: the proxy answered 500."""
UNLISTED_FIELD = "unlisted-field"
"""The rule of a notice: an answer's property that its schema does not list."""
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
    severity: Severity = "error"
    """`error`: a broken rule. `notice`: allowed, but not in the spec (`unlisted-field`); no failure."""

    @property
    def is_notice(self) -> bool:
        return self.severity == "notice"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"{self.side} {self.pointer or '/'} {self.rule}"


def redact(value: Any, secrets: Collection[str], depth: int = MAX_SHOWN_DEPTH) -> Any:
    """A value safe to log and show: long strings cut, any secret (the caller's key) blanked out, and
    objects and arrays deeper than `depth` levels shown as `…`.

    One copy of the value (its strings cut at each level of the walk, not the whole subtree again)."""
    if isinstance(value, str):
        value = summarize_body(value)
        text = value[:MAX_SHOWN] + "…" if len(value) > MAX_SHOWN else value
        return REDACTED if any(secret and secret in value for secret in secrets) else text
    if isinstance(value, (dict, list)) and depth <= 0:
        return "…"
    if isinstance(value, dict):
        return {key: redact(item, secrets, depth - 1) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets, depth - 1) for item in value]
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
        self._shapes: dict[tuple[str, str], _Shape | None] = {}
        self._compiler: _Compiler | None = None
        self._compiling = threading.Lock()

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
                    operation_id,
                    None,
                    "request",
                    pointer,
                    rule,
                    blank_secrets(message, secrets),
                    expected,
                    redact(value, secrets),
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
        and (for status objects) the flow from the statuses this request showed before; then, as
        notices (severity `notice`), the body's properties that its schema does not list."""
        request_id = (path_params or {}).get("request_id")
        if isinstance(body, dict) and isinstance(body.get("request_id"), str):
            request_id = request_id or body["request_id"]
        found: list[ContractViolation] = []

        def add(
            pointer: str, rule: str, message: str, expected: str, value: Any, severity: Severity = "error"
        ) -> None:
            found.append(
                ContractViolation(
                    operation_id,
                    request_id,
                    "response",
                    pointer,
                    rule,
                    blank_secrets(message, secrets),  # jsonschema's messages show the value
                    expected,
                    redact(value, secrets),
                    severity,
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
        if rule.body is not None and parsed and isinstance(body, (dict, list)):
            shape = self.shape(operation_id, str(status))
            if shape is not None:
                unlisted: list[tuple[str, str, str, Any]] = []
                _unlisted(shape, body, "/body", unlisted)
                for pointer, message, expected, value in unlisted:
                    add(pointer, UNLISTED_FIELD, message, expected, value, "notice")
        return found

    def shape(self, operation_id: str, status: str) -> _Shape | None:
        """What the body schema of a declared response lists, compiled on first use; None: nothing."""
        key = (operation_id, status)
        if key in self._shapes:
            return self._shapes[key]
        with self._compiling:
            if key not in self._shapes:
                if self._compiler is None:
                    self._compiler = _Compiler(self.contract)
                operation = self.contract.operations[operation_id]
                raw = self.contract.resolve({"$ref": f"#{operation.pointer}"})["responses"][status]
                content = self.contract.resolve(raw).get("content", {}).get("application/json", {})
                self._shapes[key] = self._compiler.shape(content.get("schema"))
        return self._shapes[key]

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
            if not _is_url_of(polling_url, expected):
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


# Unlisted fields -------------------------------------------------------------------------------------


class _Shape:
    """What a schema lists of the objects it describes, with its `$ref`s and `allOf` merged in.

    `listed` names the properties; `properties` holds the shapes of those values that list something
    deeper (and `items`, of an array's items). `describes` is False for a schema that lists no property
    at all (a free-form object is no drift); `open` is True where unlisted names are the schema's own
    business: `additionalProperties: false`, which the validator reports already, or a schema for them
    (`extra`, as in a map). `choices` are the `oneOf`/`anyOf` and `if`/`then`/`else` whose branches
    apply to some values only: a value is walked against the `view` of the branches that apply to it.
    """

    __slots__ = (
        "choices",
        "describes",
        "extra",
        "items",
        "listed",
        "names",
        "open",
        "patterns",
        "properties",
        "report",
        "title",
        "views",
        "walk",
    )

    def __init__(self, title: str) -> None:
        self.title = title
        self.names: dict[str, None] = {}
        """The listed names in the spec's order, for the message."""
        self.listed: frozenset[str] = frozenset()
        self.describes = False
        self.open = False
        self.report = False
        """Whether an unlisted name is a notice here: `describes` and not `open`."""
        self.properties: dict[str, _Shape] = {}
        self.patterns: list[tuple[re.Pattern[str], _Shape | None]] = []
        self.extra: _Shape | None = None
        self.items: _Shape | None = None
        self.choices: list[_Condition | _Alternatives] = []
        self.views: dict[tuple[int, ...], _Shape] = {}
        self.walk: tuple[tuple[str, str, _Shape], ...] = ()
        """`properties` as (name, its pointer step, shape), for the hot path."""

    def merge(self, other: _Shape) -> None:
        if other.describes and other.title and other.title not in self.title.split(" or "):
            self.title = f"{self.title} or {other.title}" if self.title else other.title
        self.names.update(other.names)
        self.describes |= other.describes
        self.open |= other.open
        for name, shape in other.properties.items():
            self.properties[name] = _combine(self.properties.get(name), shape)
        self.patterns += other.patterns
        self.extra = _combine(self.extra, other.extra)
        self.items = _combine(self.items, other.items)
        self.choices += other.choices

    def freeze(self) -> _Shape:
        self.listed = frozenset(self.names)
        self.report = self.describes and not self.open
        self.walk = tuple((name, pointer_of(name), shape) for name, shape in self.properties.items())
        return self

    def empty(self) -> bool:
        return not (
            self.describes or self.open or self.properties or self.extra or self.items or self.choices
        )

    def view(self, value: Any) -> _Shape:
        """This shape merged with the branches of its choices that apply to `value`, without choices."""
        found: dict[int, _Shape] = {}
        waiting = [self]
        while waiting:
            shape = waiting.pop()
            if id(shape) not in found:
                found[id(shape)] = shape
                for choice in shape.choices:
                    waiting += choice.pick(value)
        key = tuple(found)
        view = self.views.get(key)
        if view is None:
            view = _Shape("")
            for shape in found.values():
                view.merge(shape)
            view.choices = []
            view = self.views[key] = view.freeze()  # a handful per shape: `then` or `else`, ...
        return view


@overload
def _combine(one: _Shape | None, other: _Shape) -> _Shape: ...
@overload
def _combine(one: _Shape | None, other: _Shape | None) -> _Shape | None: ...
def _combine(one: _Shape | None, other: _Shape | None) -> _Shape | None:
    """Both shapes as one (the names either lists), or the one there is."""
    if one is None or other is None or one is other:
        return one or other
    both = _Shape("")
    both.merge(one)
    both.merge(other)
    return both.freeze()


@dataclass(frozen=True, slots=True)
class _Condition:
    """`if`/`then`/`else`: the branch that the value's validity against `if` picks."""

    test: jsonschema_rs.Validator
    then: _Shape | None
    otherwise: _Shape | None

    def pick(self, value: Any) -> tuple[_Shape, ...]:
        branch = self.then if fast_valid(self.test, value) else self.otherwise
        return (branch,) if branch is not None else ()


@dataclass(frozen=True, slots=True)
class _Alternatives:
    """`oneOf`/`anyOf`: the branches the value is valid against; when it is valid against none, all."""

    branches: tuple[tuple[jsonschema_rs.Validator, _Shape], ...]

    def pick(self, value: Any) -> tuple[_Shape, ...]:
        valid = tuple(shape for test, shape in self.branches if fast_valid(test, value))
        return valid or tuple(shape for _, shape in self.branches)


class _Compiler:
    """Compiles the spec's schemas into `_Shape`s, each spec node once (a shared `$ref`, one shape)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        schemas = contract.spec.get("components", {}).get("schemas", {})
        self._titles = {id(node): name for name, node in schemas.items()}
        self._done: dict[int, _Shape | None] = {}
        self._busy: set[int] = set()

    def shape(self, node: Any) -> _Shape | None:
        """The shape of a schema, or None when it lists nothing at any depth."""
        if not isinstance(node, dict):
            return None
        key = id(node)
        if key in self._done:
            return self._done[key]
        if key in self._busy:  # a recursive schema: its inner uses list nothing more
            return None
        self._busy.add(key)
        try:
            shape = self._done[key] = self._compile(node)
        finally:
            self._busy.discard(key)
        return shape

    def _compile(self, node: dict[str, Any]) -> _Shape | None:
        own = _Shape(self._titles.get(id(node), str(node.get("title", ""))))
        merged: list[_Shape | None] = []
        if isinstance(node.get("$ref"), str):
            merged.append(self.shape(self.contract.resolve({"$ref": node["$ref"]})))
        properties = node.get("properties")
        if isinstance(properties, dict):
            own.describes = True
            own.names = dict.fromkeys(properties)
            for name, schema in properties.items():
                if (child := self.shape(schema)) is not None:
                    own.properties[name] = child
        patterns = node.get("patternProperties")
        if isinstance(patterns, dict):
            own.describes = True
            own.patterns = [(re.compile(pattern), self.shape(schema)) for pattern, schema in patterns.items()]
        for keyword in ("additionalProperties", "unevaluatedProperties"):
            rest = node.get(keyword)
            if rest is False or (isinstance(rest, dict) and rest):
                own.open = True
                own.extra = _combine(own.extra, self.shape(rest))
        own.items = self.shape(node.get("items"))
        merged += [self.shape(schema) for schema in node.get("allOf", [])]
        for keyword in ("oneOf", "anyOf"):
            branches = [(schema, shape) for schema in node.get(keyword, []) if (shape := self.shape(schema))]
            if len(branches) == 1:  # the others list nothing: no need to tell which applies
                merged.append(branches[0][1])
            elif branches:
                own.choices.append(_Alternatives(tuple((self._test(s), shape) for s, shape in branches)))
        if "if" in node:
            then, otherwise = self.shape(node.get("then")), self.shape(node.get("else"))
            if then is not None or otherwise is not None:
                own.choices.append(_Condition(self._test(node["if"]), then, otherwise))
        parts = [shape for shape in merged if shape is not None]
        if own.empty() and len(parts) <= 1:
            return parts[0] if parts else None
        for shape in parts:
            own.merge(shape)
        return own.freeze()

    def _test(self, schema: Any) -> jsonschema_rs.Validator:
        return jsonschema_rs.Draft202012Validator(self.contract.inline(schema), validate_formats=False)


def _unlisted(shape: _Shape, value: Any, at: str, found: list[tuple[str, str, str, Any]]) -> None:
    """Add pointer, message, expected and value of each property of `value` that its shape does not list.

    The hot path: for a value that holds no surprise, a set difference and a walk of the few listed
    properties whose values list something deeper (`output`).
    """
    if shape.choices:
        shape = shape.view(value)
    if isinstance(value, dict):
        if (shape.report or shape.extra or shape.patterns) and not shape.listed.issuperset(value):
            for name in [name for name in value if name not in shape.listed]:  # in the body's order
                item, deeper, matched = value[name], shape.extra, False
                for pattern, child in shape.patterns:
                    if pattern.search(name):
                        matched, deeper = True, _combine(deeper if matched else None, child)
                if shape.report and not matched:
                    found.append(_notice(shape, name, item, at))
                if deeper is not None and isinstance(item, (dict, list)):
                    _unlisted(deeper, item, at + pointer_of(name), found)
        for name, step, child in shape.walk:
            item = value.get(name)
            if isinstance(item, (dict, list)):
                _unlisted(child, item, at + step, found)
    elif isinstance(value, list) and shape.items is not None:
        for index, item in enumerate(value):
            if isinstance(item, (dict, list)):
                _unlisted(shape.items, item, f"{at}/{index}", found)


def _notice(shape: _Shape, name: str, value: Any, at: str) -> tuple[str, str, str, Any]:
    message = f"{name!r} is not listed by {shape.title or 'the schema'} (allowed, but undocumented)"
    return at + pointer_of(name), message, f"properties: {_brief(list(shape.names))}", value


BRANCH_ERRORS = 8
"""Errors of each `oneOf`/`anyOf` branch kept in the error's `context`; the rest are not computed."""


def _branch_errors(validator: Any, branches: list[Any], instance: Any) -> tuple[list[ValidationError], int]:
    """The first `BRANCH_ERRORS` errors of each branch up to the first valid one, and its index (-1: none).

    jsonschema lists every error of every branch before it decides: a million for a 1,000-item list
    that matches no branch, each built with its message, where the first one settles the branch."""
    found: list[ValidationError] = []
    for index, branch in enumerate(branches):
        errors = list(itertools.islice(validator.descend(instance, branch, schema_path=index), BRANCH_ERRORS))
        if not errors:
            return found, index
        found += errors
    return found, -1


def _any_of(validator: Any, branches: list[Any], instance: Any, schema: Any) -> Iterator[ValidationError]:
    """jsonschema's `anyOf`, deciding each branch by its first errors (`_branch_errors`)."""
    found, valid = _branch_errors(validator, branches, instance)
    if valid < 0:
        yield ValidationError(f"{instance!r} is not valid under any of the given schemas", context=found)


def _one_of(validator: Any, branches: list[Any], instance: Any, schema: Any) -> Iterator[ValidationError]:
    """jsonschema's `oneOf`, deciding each branch by its first errors (`_branch_errors`)."""
    found, valid = _branch_errors(validator, branches, instance)
    if valid < 0:
        yield ValidationError(f"{instance!r} is not valid under any of the given schemas", context=found)
        return
    more_valid = [each for each in branches[valid + 1 :] if validator.evolve(schema=each).is_valid(instance)]
    if more_valid:
        reprs = ", ".join(repr(each) for each in [*more_valid, branches[valid]])
        yield ValidationError(f"{instance!r} is valid under each of {reprs}")


_LeanValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"anyOf": _any_of, "oneOf": _one_of}
)


def _lean(validator: Draft202012Validator) -> Any:
    """The same validator (schema, registry, formats) with the lean `oneOf` and `anyOf`."""
    fields = attrs.fields(cast(Any, type(validator)))
    return _LeanValidator(**{f.alias: getattr(validator, f.name) for f in fields if f.init})


def _schema_violations(validator: Draft202012Validator, body: Any) -> Iterator[Found]:
    """Each schema error of a body, at the pointer of the offending value (a missing property: its own).

    Called for the bodies that the fast check refused only, so the lean validator is built then."""
    seen: set[tuple[str, str]] = set()
    for error in _lean(validator).iter_errors(body):
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


def _is_url_of(url: str, path: str) -> bool:
    """Whether `url` is an http(s) URL of `path`."""
    return _plainly_url_of(url, path) or _parsed_url_of(url, path)


_NOT_IN_PLAIN_HOST = frozenset("/?#@[\\% ")
_NOT_IN_PLAIN_PATH = frozenset("?#%")


def _plainly_url_of(url: str, path: str) -> bool:
    """`http(s)://<host><path>` as gateways write it, told without `urlsplit`, which cost the served
    proxy 5% more CPU a submit (it caches what it parsed, and each id is new). Never True where
    `_parsed_url_of` is False (a property test holds it so); False means "ask it"."""
    scheme = "https://" if url.startswith("https://") else "http://" if url.startswith("http://") else ""
    if not scheme or not url.endswith(path) or len(url) <= len(scheme) + len(path):
        return False
    host = url[len(scheme) : len(url) - len(path)]
    return (
        url.isascii()
        and url.isprintable()
        and _NOT_IN_PLAIN_HOST.isdisjoint(host)
        and _NOT_IN_PLAIN_PATH.isdisjoint(path)
    )


def _parsed_url_of(url: str, path: str) -> bool:
    """`_is_url_of` by `urlsplit`; False for text that is no URL, such as an IPv6 host whose bracket
    never closes, which `urlsplit` refuses with a ValueError."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and unquote(parts.path) == path


def _secrets(lowered_headers: Mapping[str, str]) -> list[str]:
    return [value for name, value in lowered_headers.items() if is_secret(name) and value]


_UUID7 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", re.IGNORECASE)
"""A UUIDv7 as gateways write one: the proxy checks every submit's id, and `uuid.UUID` cost 2 µs."""


def _is_request_id(value: str, model: str) -> bool:
    prefix, _, rest = value.rpartition("_")
    if prefix != model:
        return False
    if _UUID7.fullmatch(rest):
        return True
    try:  # the other spellings `uuid.UUID` reads: braces, `urn:uuid:`, no dashes
        return uuid.UUID(rest).version == 7
    except ValueError:
        return False


def _rank(status: str) -> int | None:
    """Where a status stands in the flow; the finished ones all rank last."""
    if status not in STATUSES:
        return None
    return 2 if status in TERMINAL_STATUSES else STATUSES.index(status)
