"""Shared helpers for the contract tests: the spec, its schemas and examples, and the vendor's reference.

Everything is read once and cached; treat what the functions return as read-only (``copy.deepcopy``
it before changing anything).

* :func:`load_spec` - ``openapi.yaml`` at the repository root, as plain JSON-compatible data.
* :func:`schema_validator`, :func:`response_validator`, :func:`request_body_validator`,
  :func:`validator_at` - ``Draft202012Validator`` objects whose ``$ref`` s resolve inside the spec.
* :func:`iter_spec_examples` - every example of the spec, with the JSON pointer of its schema.
* :func:`reference_json_blocks` / :func:`reference_blocks` - the JSON code blocks of the vendor's
  reference text.

The vendor's reference text lives outside the repository (:data:`REFERENCE_PATH`). A test that reads it
carries the :data:`needs_reference` mark (conftest.py skips it before its fixtures when the text is
absent, or fails it under ``CI=true``); :func:`load_reference_text` does the same for any other caller,
and :func:`reference_params` builds parameters from the reference at collection time without reading a
file that is not there.

Locations inside the spec are local JSON pointers written as URI fragments: ``#/components/schemas/X``,
``#/paths/~1v2~1requests~1status~1%7Brequest_id%7D/get`` (see :func:`json_pointer`).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import quote, unquote

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

__all__ = [
    "FORMAT_CHECKER",
    "HTTP_METHODS",
    "REFERENCE_MISSING",
    "REFERENCE_PATH",
    "REPO_ROOT",
    "SPEC_PATH",
    "SPEC_URI",
    "ExampleKind",
    "ReferenceBlock",
    "SpecExample",
    "assert_response_conforms",
    "canonical_json",
    "component_schema_name",
    "declared_responses",
    "in_ci",
    "iter_spec_examples",
    "json_pointer",
    "load_reference_text",
    "load_spec",
    "needs_reference",
    "operation",
    "operation_location",
    "operation_pointer",
    "reference_blocks",
    "reference_here",
    "reference_json_blocks",
    "reference_params",
    "reference_schema_name",
    "request_body_schema_pointer",
    "request_body_validator",
    "require_reference",
    "resolve",
    "resolve_pointer",
    "response_object",
    "response_problems",
    "response_schema_pointer",
    "response_validator",
    "schema_validator",
    "spec_registry",
    "validator_at",
]

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
SPEC_PATH: Final[Path] = REPO_ROOT / "openapi.yaml"
#: The base URI of the spec in :func:`spec_registry`; ``#/components/...`` refs resolve against it.
SPEC_URI: Final[str] = SPEC_PATH.as_uri()
#: The vendor's reference text (read-only): ``$BOOGU_REFERENCE_PATH`` when set, else
#: ``shared/seed/000_048db9ca54e55442.txt`` in the folder beside the checkout.
REFERENCE_PATH: Final[Path] = Path(
    os.environ.get("BOOGU_REFERENCE_PATH")
    or REPO_ROOT.parent / "shared" / "seed" / "000_048db9ca54e55442.txt"
)
#: Why a test that needs the reference did not run: the one skip reason of them all.
REFERENCE_MISSING: Final[str] = (
    "the vendor reference is not here: set BOOGU_REFERENCE_PATH or put shared/seed/ beside the checkout"
)
#: The mark of a test that reads the reference (registered and acted on in conftest.py).
needs_reference: Final = pytest.mark.needs_reference
HTTP_METHODS: Final[tuple[str, ...]] = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: The draft 2020-12 format checker that every validator here uses. Like the mock gateway's, it checks
#: ``uri`` only when the optional ``rfc3987`` package is installed.
FORMAT_CHECKER: Final[FormatChecker] = Draft202012Validator.FORMAT_CHECKER


# ------------------------------------------------------------------------------------------------ spec


class _JsonCompatibleLoader(yaml.SafeLoader):
    """A safe loader that keeps unquoted dates and times as strings, as JSON would."""


_JsonCompatibleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@functools.cache
def load_spec() -> dict[str, Any]:
    """``openapi.yaml``, loaded once. Do not mutate the result."""
    with SPEC_PATH.open(encoding="utf-8") as file:
        spec = yaml.load(file, Loader=_JsonCompatibleLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(spec, dict):
        raise TypeError(f"{SPEC_PATH} does not hold a mapping")
    return spec


@functools.cache
def spec_registry() -> Registry[Any]:
    """A ``referencing`` registry holding the whole spec as one draft 2020-12 resource at :data:`SPEC_URI`."""
    resource: Resource[Any] = Resource.from_contents(load_spec(), default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    return registry


def json_pointer(*segments: str | int) -> str:
    """The fragment (``#/a/b~1c``) of the spec location reached by ``segments``."""
    escaped = (str(segment).replace("~", "~0").replace("/", "~1") for segment in segments)
    return "#" + "".join("/" + quote(segment, safe="~!$&'()*+,;=:@") for segment in escaped)


def _child(pointer: str, *segments: str | int) -> str:
    return pointer + json_pointer(*segments)[1:]


def resolve_pointer(pointer: str) -> Any:
    """The spec node at a local pointer such as ``#/components/schemas/X``; ``KeyError`` if there is none."""
    if not pointer.startswith("#"):
        raise ValueError(f"only local references are supported, got {pointer!r}")
    node: Any = load_spec()
    fragment = pointer[1:]
    if not fragment:
        return node
    if not fragment.startswith("/"):
        raise ValueError(f"not a JSON pointer: {pointer!r}")
    for raw in fragment[1:].split("/"):
        segment = unquote(raw).replace("~1", "/").replace("~0", "~")
        node = node[int(segment)] if isinstance(node, list) else node[segment]
    return node


def _follow(node: Any, pointer: str) -> tuple[Any, str]:
    """Follow a chain of ``$ref`` s of OpenAPI objects; answer the target and its pointer."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or ref in seen:
            raise ValueError(f"bad or circular $ref {ref!r} at {pointer}")
        seen.add(ref)
        pointer = ref
        node = resolve_pointer(ref)
    return node, pointer


def resolve(node: Any) -> Any:
    """``node`` with its ``$ref`` (to a response, parameter, example, header...) followed, if it has one."""
    return _follow(node, "<node>")[0]


def operation_pointer(path: str, method: str, *, webhook: bool = False) -> str:
    """The pointer of ``paths[path][method]``, or of ``webhooks[path][method]`` with ``webhook=True``."""
    section = "webhooks" if webhook else "paths"
    _, item_pointer = _follow(load_spec()[section][path], json_pointer(section, path))
    return _child(item_pointer, method.lower())


def operation(path: str, method: str, *, webhook: bool = False) -> dict[str, Any]:
    """The operation object ``paths[path][method]``, or ``webhooks[path][method]`` with ``webhook=True``."""
    result = resolve_pointer(operation_pointer(path, method, webhook=webhook))
    if not isinstance(result, dict):
        raise TypeError(f"{method} {path} is not an operation")
    return result


def _response(path: str, method: str, status: int | str, webhook: bool) -> tuple[dict[str, Any], str]:
    op_pointer = operation_pointer(path, method, webhook=webhook)
    raw = resolve_pointer(op_pointer)["responses"][str(status)]
    return _follow(raw, _child(op_pointer, "responses", str(status)))


def response_object(path: str, method: str, status: int | str, *, webhook: bool = False) -> dict[str, Any]:
    """The response object for ``status`` of an operation, a ``$ref`` to ``components/responses`` followed."""
    return _response(path, method, status, webhook)[0]


def response_schema_pointer(
    path: str, method: str, status: int | str, media_type: str = "application/json", *, webhook: bool = False
) -> str:
    """The pointer of the schema of the ``status`` response body (``KeyError`` when it has none)."""
    response, pointer = _response(path, method, status, webhook)
    if "schema" not in response.get("content", {}).get(media_type, {}):
        raise KeyError(f"{method.upper()} {path} {status} has no {media_type} schema")
    return _child(pointer, "content", media_type, "schema")


def request_body_schema_pointer(
    path: str, method: str, media_type: str = "application/json", *, webhook: bool = False
) -> str:
    """The pointer of the schema of the request body (``KeyError`` when it has none)."""
    op_pointer = operation_pointer(path, method, webhook=webhook)
    body, pointer = _follow(resolve_pointer(op_pointer)["requestBody"], _child(op_pointer, "requestBody"))
    if "schema" not in body.get("content", {}).get(media_type, {}):
        raise KeyError(f"{method.upper()} {path} has no {media_type} request body schema")
    return _child(pointer, "content", media_type, "schema")


@functools.cache
def validator_at(schema_pointer: str) -> Draft202012Validator:
    """A ``Draft202012Validator`` for the schema at ``schema_pointer`` (a ``#/...`` pointer into the spec).

    The schema is referenced through :func:`spec_registry`, so every ``$ref`` in it resolves inside the spec.
    """
    resolve_pointer(schema_pointer)  # fail early, with a KeyError naming the missing segment
    return Draft202012Validator(
        {"$ref": SPEC_URI + schema_pointer},
        registry=spec_registry(),
        format_checker=FORMAT_CHECKER,
    )


def schema_validator(name: str) -> Draft202012Validator:
    """A ``Draft202012Validator`` for ``components/schemas/<name>``."""
    return validator_at(json_pointer("components", "schemas", name))


def response_validator(
    path: str, method: str, status: int | str, media_type: str = "application/json", *, webhook: bool = False
) -> Draft202012Validator:
    """A ``Draft202012Validator`` for the JSON body of the ``status`` response of ``method path``."""
    return validator_at(response_schema_pointer(path, method, status, media_type, webhook=webhook))


def request_body_validator(
    path: str, method: str, media_type: str = "application/json", *, webhook: bool = False
) -> Draft202012Validator:
    """A ``Draft202012Validator`` for the request body of ``method path`` (or of a webhook)."""
    return validator_at(request_body_schema_pointer(path, method, media_type, webhook=webhook))


def component_schema_name(schema_pointer: str) -> str | None:
    """``X`` when the schema at ``schema_pointer`` is ``components/schemas/X`` or only a ``$ref`` to it."""
    prefix = json_pointer("components", "schemas") + "/"
    node, pointer = resolve_pointer(schema_pointer), schema_pointer
    if isinstance(node, Mapping) and set(node) == {"$ref"}:
        pointer = node["$ref"]
    if pointer.startswith(prefix) and "/" not in pointer[len(prefix) :]:
        return unquote(pointer[len(prefix) :]).replace("~1", "/").replace("~0", "~")
    return None


def canonical_json(value: Any) -> str:
    """A canonical JSON text: equal only for equal JSON values (``1`` differs from ``1.0`` and ``true``)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# -------------------------------------------------------------------------------------------- examples

ExampleKind = Literal["parameter", "request_body", "response", "response_header", "header", "schema"]


@dataclass(frozen=True)
class SpecExample:
    """One example of the spec and the schema it must satisfy."""

    id: str
    """A readable id such as ``submit_text_to_image 400 model_not_found``."""
    value: Any
    """The example's value, with the ``$ref`` to ``components/examples`` followed."""
    schema_pointer: str
    """The pointer of the schema the value must satisfy."""
    value_pointer: str
    """The pointer of the value itself (inside ``components/examples`` when it was a ``$ref``)."""
    kind: ExampleKind
    """What the example belongs to; ``header`` is a ``components/headers`` entry, ``schema`` an
    ``example``/``examples`` keyword inside ``components/schemas``."""
    operation_id: str | None = None
    """The ``operationId`` of the operation or webhook, for parameter, request and response examples."""
    status: str | None = None
    """The response status (``"202"``), for response and response header examples."""
    name: str = ""
    """The example's key in its ``examples`` map (``""`` for a lone ``example``)."""

    @property
    def validator(self) -> Draft202012Validator:
        """A ``Draft202012Validator`` for :attr:`schema_pointer`."""
        return validator_at(self.schema_pointer)


@dataclass(frozen=True)
class _Where:
    label: str
    kind: ExampleKind
    operation_id: str | None = None
    status: str | None = None


def _examples_of(
    owner: Mapping[str, Any], owner_pointer: str, schema_pointer: str, where: _Where
) -> Iterator[SpecExample]:
    """The ``example`` and ``examples`` of a parameter, header or media type object."""

    def make(name: str, value: Any, value_pointer: str) -> SpecExample:
        label = f"{where.label} {name or 'example'}"
        return SpecExample(
            label, value, schema_pointer, value_pointer, where.kind, where.operation_id, where.status, name
        )

    if "example" in owner:
        yield make("", owner["example"], _child(owner_pointer, "example"))
    for name, raw in owner.get("examples", {}).items():
        example, pointer = _follow(raw, _child(owner_pointer, "examples", name))
        if "value" in example:  # an `externalValue` cannot be checked offline
            yield make(name, example["value"], _child(pointer, "value"))


def _content_examples(owner: Mapping[str, Any], owner_pointer: str, where: _Where) -> Iterator[SpecExample]:
    """The examples of each media type in ``owner["content"]``."""
    content = owner.get("content", {})
    for media_type, media in content.items():
        media_pointer = _child(owner_pointer, "content", media_type)
        here = where
        if len(content) > 1:
            here = _Where(f"{where.label} {media_type}", where.kind, where.operation_id, where.status)
        if "schema" in media:
            yield from _examples_of(media, media_pointer, _child(media_pointer, "schema"), here)


def _schema_or_content_examples(
    owner: Mapping[str, Any], pointer: str, where: _Where
) -> Iterator[SpecExample]:
    """The examples of a parameter or header, which has either a ``schema`` or a ``content``."""
    if "schema" in owner:
        yield from _examples_of(owner, pointer, _child(pointer, "schema"), where)
    yield from _content_examples(owner, pointer, where)


def _operation_examples(
    op: Mapping[str, Any], op_pointer: str, path_parameters: list[tuple[Any, str]], label: str
) -> Iterator[SpecExample]:
    op_id = op.get("operationId")
    label = op_id or label
    parameters = [
        *path_parameters,
        *((raw, _child(op_pointer, "parameters", i)) for i, raw in enumerate(op.get("parameters", []))),
    ]
    for raw, raw_pointer in parameters:
        parameter, pointer = _follow(raw, raw_pointer)
        where = _Where(f"{label} {parameter.get('in')} {parameter.get('name')}", "parameter", op_id)
        yield from _schema_or_content_examples(parameter, pointer, where)
    if "requestBody" in op:
        body, body_pointer = _follow(op["requestBody"], _child(op_pointer, "requestBody"))
        yield from _content_examples(body, body_pointer, _Where(f"{label} request", "request_body", op_id))
    for status, raw in op.get("responses", {}).items():
        response, pointer = _follow(raw, _child(op_pointer, "responses", status))
        yield from _content_examples(
            response, pointer, _Where(f"{label} {status}", "response", op_id, status)
        )
        for header_name, raw_header in response.get("headers", {}).items():
            header, header_pointer = _follow(raw_header, _child(pointer, "headers", header_name))
            where = _Where(f"{label} {status} header {header_name}", "response_header", op_id, status)
            yield from _schema_or_content_examples(header, header_pointer, where)


_SUBSCHEMA: Final = (
    "items",
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_SUBSCHEMA_LISTS: Final = ("allOf", "anyOf", "oneOf", "prefixItems")
_SUBSCHEMA_MAPS: Final = ("properties", "patternProperties", "$defs", "dependentSchemas")


def _schema_examples(schema: Any, pointer: str, label: str) -> Iterator[SpecExample]:
    """``example`` and ``examples`` keywords anywhere in a schema, against the (sub)schema holding them."""
    if not isinstance(schema, Mapping):
        return
    if "example" in schema:
        yield SpecExample(
            f"{label} example", schema["example"], pointer, _child(pointer, "example"), "schema"
        )
    if isinstance(schema.get("examples"), list):
        for index, value in enumerate(schema["examples"]):
            value_pointer = _child(pointer, "examples", index)
            yield SpecExample(f"{label} examples[{index}]", value, pointer, value_pointer, "schema")
    for key in _SUBSCHEMA:
        if key in schema:
            yield from _schema_examples(schema[key], _child(pointer, key), f"{label}.{key}")
    for key in _SUBSCHEMA_LISTS:
        for index, sub in enumerate(schema.get(key, [])):
            yield from _schema_examples(sub, _child(pointer, key, index), f"{label}.{key}[{index}]")
    for key in _SUBSCHEMA_MAPS:
        for name, sub in schema.get(key, {}).items():
            yield from _schema_examples(sub, _child(pointer, key, name), f"{label}.{name}")


def iter_spec_examples() -> Iterator[SpecExample]:
    """Every example in the spec, each with the schema it belongs to.

    First the examples of each operation under ``paths``, then of each webhook (parameters, request
    body, responses and their headers), with ``$ref`` s to ``components/examples`` (and to responses,
    parameters, headers, request bodies) followed, so an example that several operations share is
    yielded once for each of them; then the ``example``/``examples`` of every ``components/parameters``
    and ``components/headers`` entry, used or not; then the ``example``/``examples`` keywords inside
    ``components/schemas``. Ids are unique.
    """
    spec = load_spec()
    for section in ("paths", "webhooks"):
        for path, raw_item in spec.get(section, {}).items():
            item, item_pointer = _follow(raw_item, json_pointer(section, path))
            path_parameters = [
                (raw, _child(item_pointer, "parameters", index))
                for index, raw in enumerate(item.get("parameters", []))
            ]
            for method in HTTP_METHODS:
                if method in item:
                    label = f"{method.upper()} {path}" if section == "paths" else f"webhook {path}"
                    op_pointer = _child(item_pointer, method)
                    yield from _operation_examples(item[method], op_pointer, path_parameters, label)
    components = spec.get("components", {})
    for section, kind in (("parameters", "parameter"), ("headers", "header")):
        for name in components.get(section, {}):
            pointer = json_pointer("components", section, name)
            node, pointer = _follow(resolve_pointer(pointer), pointer)
            where = _Where(f"components/{section}/{name}", "parameter" if kind == "parameter" else "header")
            yield from _schema_or_content_examples(node, pointer, where)
    for name, schema in components.get("schemas", {}).items():
        yield from _schema_examples(schema, json_pointer("components", "schemas", name), f"schema {name}")


# ------------------------------------------------------------------------------------------- reference


@dataclass(frozen=True)
class ReferenceBlock:
    """A JSON code block of the reference text."""

    index: int
    """Position among the reference's JSON blocks (0-based)."""
    offset: int
    """Character offset of the block's opening fence in :func:`load_reference_text`."""
    heading: str
    """The nearest markdown heading above the block, such as ``## Response (Completed)``."""
    comments: tuple[str, ...]
    """The ``//`` comment lines dropped from the block, such as ``// 402 — Insufficient balance``."""
    value: Any
    """The parsed JSON."""


def in_ci() -> bool:
    """``CI`` is set to a true value (``CI=true`` as CI services set it): what is missing is a failure."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def reference_here() -> bool:
    """The reference text is at :data:`REFERENCE_PATH`."""
    return REFERENCE_PATH.is_file()


def require_reference() -> None:
    """In a test: skip it with :data:`REFERENCE_MISSING` when the reference is absent; under CI, fail it."""
    if reference_here():
        return
    if in_ci():
        pytest.fail(
            f"{REFERENCE_MISSING} (CI=true: missing is a failure; looked for {REFERENCE_PATH})", pytrace=False
        )
    pytest.skip(REFERENCE_MISSING)


def reference_params(build: Callable[[], Iterable[Any]], *, arity: int = 1) -> list[Any]:
    """The ``pytest.param`` s that ``build`` makes from the reference at collection time, each also marked
    :data:`needs_reference`. Without the reference ``build`` is not called: one placeholder (``arity``
    ``None`` values, id ``no-reference``) stands in, so the test is reported skipped (failed under CI)
    rather than silently collected zero times.
    """
    if not reference_here():
        return [pytest.param(*[None] * arity, id="no-reference", marks=needs_reference)]
    return [pytest.param(*p.values, id=p.id, marks=(*p.marks, needs_reference)) for p in build()]


@functools.cache
def load_reference_text() -> str:
    """The vendor's reference text (:data:`REFERENCE_PATH`), read once (see :func:`require_reference`)."""
    require_reference()
    return REFERENCE_PATH.read_text(encoding="utf-8")


_FENCE: Final = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_HEADING: Final = re.compile(r"^#{1,6} .*$", re.MULTILINE)


@functools.cache
def reference_blocks() -> tuple[ReferenceBlock, ...]:
    """Every JSON code block of the reference, parsed, with its position, heading and dropped comments.

    ``//`` comment lines are dropped first; blocks that are not JSON (a URL, a header line, the status
    flow, the HTTP, Python, JavaScript and cURL samples) are skipped.
    """
    text = load_reference_text()
    blocks: list[ReferenceBlock] = []
    for match in _FENCE.finditer(text):
        lines = match.group(1).splitlines()
        comments = tuple(line.strip() for line in lines if line.lstrip().startswith("//"))
        body = "\n".join(line for line in lines if not line.lstrip().startswith("//")).strip()
        if not body.startswith(("{", "[")):
            continue
        try:
            value = json.loads(body)
        except json.JSONDecodeError:
            continue
        headings = _HEADING.findall(text, 0, match.start())
        heading = headings[-1] if headings else ""
        blocks.append(ReferenceBlock(len(blocks), match.start(), heading, comments, value))
    return tuple(blocks)


def reference_json_blocks() -> list[Any]:
    """Every JSON code block of the reference, parsed (``//`` comment lines dropped, non-JSON skipped)."""
    return [block.value for block in reference_blocks()]


def reference_schema_name(value: Any) -> str:
    """The component schema that a JSON block of the reference is an instance of, judged by its keys.

    A body with ``prompt`` is an ``ImageEditRequest`` when it has ``image_url``, else a
    ``TextToImageRequest``; ``{request_id, status, polling_url}`` is a ``QueuedRequest``; an object with
    ``request_id``, ``status`` and ``model_id`` is a ``RequestStatus``; ``{error, message}`` is an
    ``ErrorResponse``. Raises ``ValueError`` for anything else.
    """
    if isinstance(value, Mapping):
        keys = set(value)
        if "prompt" in keys:
            return "ImageEditRequest" if "image_url" in keys else "TextToImageRequest"
        if keys == {"request_id", "status", "polling_url"}:
            return "QueuedRequest"
        if {"request_id", "status", "model_id"} <= keys:
            return "RequestStatus"
        if keys == {"error", "message"}:
            return "ErrorResponse"
    raise ValueError(f"unrecognised reference block: {value!r}")


@functools.cache
def operation_location(operation_id: str) -> tuple[str, str]:
    """``(path, method)`` of the operation with this operationId."""
    for path, item in load_spec()["paths"].items():
        for method, op in item.items():
            if isinstance(op, Mapping) and op.get("operationId") == operation_id:
                return path, method
    raise KeyError(f"no operation {operation_id!r} in openapi.yaml")


def declared_responses() -> dict[str, frozenset[str]]:
    """Every operationId with the status codes its responses declare."""
    return {
        op["operationId"]: frozenset(str(status) for status in op["responses"])
        for item in load_spec()["paths"].values()
        for op in item.values()
        if isinstance(op, Mapping) and "operationId" in op
    }


def response_problems(operation_id: str, status: int, body: Any, headers: Mapping[str, str]) -> list[str]:
    """What is wrong with a response against openapi.yaml; empty when it conforms.

    The one check every suite uses: the status is declared, the JSON body validates against its
    schema, and the declared required headers are present and valid.
    """
    path, method = operation_location(operation_id)
    where = f"{operation_id} {status}"
    if str(status) not in declared_responses()[operation_id]:
        return [f"{where}: status not declared in openapi.yaml"]
    problems = [
        f"{where}: body {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in response_validator(path, method, status).iter_errors(body)
    ]
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, header in response_object(path, method, status).get("headers", {}).items():
        header = resolve(header)
        value = lowered.get(name.lower())
        if value is None:
            if header.get("required"):
                problems.append(f"{where}: required header {name} is missing")
            continue
        parsed: Any = int(value) if header["schema"].get("type") == "integer" and value.isdigit() else value
        problems += [
            f"{where}: header {name}: {e.message}"
            for e in Draft202012Validator(header["schema"]).iter_errors(parsed)
        ]
    return problems


def assert_response_conforms(operation_id: str, status: int, body: Any, headers: Mapping[str, str]) -> None:
    problems = response_problems(operation_id, status, body, headers)
    assert not problems, "\n".join(problems)
