"""The contract, compiled from openapi.yaml: routing, request and response validators, defaults.

Everything that checks an exchange against the spec (the mock's request validation, the client's
batch pre-check, the validating proxy's conformance) reads it here, compiled once per `Contract`:
a Rust validator (jsonschema-rs) accepts valid instances fast, and jsonschema words what is wrong.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import jsonschema_rs
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from ._files import load_spec

SPEC_URI = "urn:boogu:openapi"
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Violation:
    """One broken rule, worded as `field: what is wrong` for the 400 body."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True, slots=True)
class HeaderParameter:
    name: str
    validator: Draft202012Validator


@dataclass(frozen=True, slots=True)
class HeaderRule:
    """A declared response header."""

    required: bool
    integer: bool
    """Headers are text; a header of integer schema is checked as the number it spells."""
    validator: Draft202012Validator


@dataclass(frozen=True, slots=True)
class ResponseRule:
    """The compiled contract of one declared status of one operation."""

    body: Draft202012Validator | None
    fast_body: jsonschema_rs.Validator | None
    headers: Mapping[str, HeaderRule]
    """Declared response headers by lower-case name."""


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    pointer: str
    """The operation's JSON pointer in the spec."""
    body: Draft202012Validator | None
    """The reference validator: its errors word the 400 answers."""
    fast_body: jsonschema_rs.Validator | None
    """The same schema with its `$ref`s inlined, compiled in Rust, which accepts valid bodies fast."""
    body_defaults: Mapping[str, Any]
    headers: Mapping[str, HeaderParameter]
    """Header parameters by lower-case name."""
    declared: tuple[str, ...]
    """Declared response statuses, as the spec writes them ("200", "default"), sorted."""
    needs_key: bool
    route: re.Pattern[str]


class Contract:
    """The compiled operations of openapi.yaml, looked up by operationId or by method and path."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        self.spec = spec if spec is not None else load_spec()
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._format_checker = FormatChecker()
        self.operations = {op.operation_id: op for op in self._compile()}
        self._responses: dict[tuple[str, str], ResponseRule] = {}

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator for the schema at a JSON pointer of the spec, `$ref`s resolved against it."""
        return Draft202012Validator(
            {"$ref": f"{SPEC_URI}#{pointer}"},
            registry=self._registry,
            format_checker=self._format_checker,
        )

    def resolve(self, node: Any) -> Any:
        """Follow a local `$ref` (repeatedly) to the node it names."""
        while isinstance(node, dict) and "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].removeprefix("#/").split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            node = target
        return node

    def inline(self, node: Any) -> Any:
        """A copy of a schema with every local `$ref` replaced by what it names (the spec has no cycles)."""
        if isinstance(node, list):
            return [self.inline(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = self.inline(self.resolve({"$ref": node["$ref"]}))
            siblings = {key: self.inline(value) for key, value in node.items() if key != "$ref"}
            return {"allOf": [target], **siblings} if siblings else target
        return {key: self.inline(value) for key, value in node.items()}

    def default_of(self, node: Any) -> tuple[Any] | tuple[()]:
        """A property's default, as `(value,)`, or `()`: its own, else that of the type it names.

        A union's default is the one its branches declare (`image_size` is `square_hd` through
        `ImageSizePreset`): generators cannot take a `default` on a `oneOf` (Go emits
        `= square_hd`, which does not compile), so the spec keeps it on the branch.
        """
        if not isinstance(node, dict):
            return ()
        if "default" in node:
            return (node["default"],)
        if "$ref" in node:
            return self.default_of(self.resolve({"$ref": node["$ref"]}))
        found = [default for branch in node.get("oneOf", []) if (default := self.default_of(branch))]
        return found[0] if len(found) == 1 else ()

    # Compiling ----------------------------------------------------------------------------------

    def _compile(self) -> Iterator[Operation]:
        default_security = self.spec.get("security", [])
        for path, item in self.spec["paths"].items():
            for method, node in item.items():
                if method not in METHODS:
                    continue
                pointer = pointer_of("paths", path, method)
                body = self.resolve(node.get("requestBody"))
                schema_at = f"{pointer}/requestBody/content/application~1json/schema"
                schema = body["content"]["application/json"]["schema"] if body is not None else None
                properties = self.resolve(schema or {}).get("properties", {}).items()
                defaults = {name: found[0] for name, prop in properties if (found := self.default_of(prop))}
                yield Operation(
                    operation_id=node["operationId"],
                    method=method.upper(),
                    path=path,
                    pointer=pointer,
                    body=self.validator(schema_at) if schema is not None else None,
                    fast_body=self._fast(schema, formats=True) if schema is not None else None,
                    body_defaults=defaults,
                    headers=dict(self._header_parameters(node, pointer)),
                    declared=tuple(sorted(str(status) for status in node["responses"])),
                    needs_key=any(node.get("security", default_security)),
                    route=re.compile(_route_pattern(path)),
                )

    def _fast(self, schema: Any, *, formats: bool) -> jsonschema_rs.Validator:
        return jsonschema_rs.Draft202012Validator(self.inline(schema), validate_formats=formats)

    def _header_parameters(self, node: dict[str, Any], pointer: str) -> Iterator[tuple[str, HeaderParameter]]:
        for index, parameter in enumerate(node.get("parameters", [])):
            resolved = self.resolve(parameter)
            if resolved["in"] == "header":
                at = self._pointer(parameter, f"{pointer}/parameters/{index}")
                yield (
                    resolved["name"].lower(),
                    HeaderParameter(resolved["name"], self.validator(f"{at}/schema")),
                )

    def response_rule(self, operation_id: str, status: str) -> ResponseRule:
        """The compiled rule of a declared response, compiled on first use (most are never checked)."""
        key = (operation_id, status)
        rule = self._responses.get(key)
        if rule is None:
            operation = self.operations[operation_id]
            raw = self.resolve({"$ref": f"#{operation.pointer}"})["responses"][status]
            rule = self._responses[key] = self._compile_response(
                raw, f"{operation.pointer}/responses/{status}"
            )
        return rule

    def _compile_response(self, raw: dict[str, Any], pointer: str) -> ResponseRule:
        at = self._pointer(raw, pointer)
        response = self.resolve(raw)
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        body = fast = None
        if schema is not None:
            body = self.validator(f"{at}/content/application~1json/schema")
            # Formats are a request's business: answers are checked for shape, as the spec's examples are.
            fast = self._fast(schema, formats=False)
        headers: dict[str, HeaderRule] = {}
        for name, header in response.get("headers", {}).items():
            resolved = self.resolve(header)
            schema_at = self._pointer(header, f"{at}/headers/{name}")
            headers[name.lower()] = HeaderRule(
                bool(resolved.get("required")),
                self.resolve(resolved.get("schema", {})).get("type") == "integer",
                self.validator(f"{schema_at}/schema"),
            )
        return ResponseRule(body, fast, headers)

    @staticmethod
    def _pointer(node: dict[str, Any], inline_at: str) -> str:
        """Where a node's content is: what its `$ref` names, or where it stands."""
        return str(node["$ref"]).removeprefix("#") if "$ref" in node else inline_at

    # Using --------------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | None:
        """The operation and path parameters of a request, or None when it is no API operation."""
        method = method.upper()
        for operation in self.operations.values():
            if method != operation.method:
                continue  # one string comparison, before any pattern is tried
            match = operation.route.fullmatch(path)
            if match:
                return operation, {name: unquote(value) for name, value in match.groupdict().items()}
        return None

    def body_defaults(self, method: str, path: str) -> Mapping[str, Any]:
        """The spec's defaults of the request body of the operation at (method, path), if any."""
        routed = self.route(method, path)
        return routed[0].body_defaults if routed else {}

    def check_body(self, operation_id: str, body: Any) -> Violation | None:
        """The most relevant broken rule of a request body, or None when it is valid."""
        operation = self.operations[operation_id]
        if operation.body is None or operation.fast_body is None or fast_valid(operation.fast_body, body):
            return None
        return _violation(best_match(operation.body.iter_errors(body), key=_relevance), prefix="")

    def check_header(self, operation_id: str, name: str, value: str) -> Violation | None:
        header = self.operations[operation_id].headers[name.lower()]
        return _violation(best_match(header.validator.iter_errors(value)), prefix=header.name)

    def with_defaults(self, operation_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body with the spec's defaults filled in for every property it omits."""
        defaults = self.operations[operation_id].body_defaults
        filled = {
            name: value if isinstance(value, IMMUTABLE) else copy.deepcopy(value)
            for name, value in defaults.items()
            if name not in body
        }
        return {**body, **filled}


def pointer_of(*parts: str | int) -> str:
    """The JSON pointer (RFC 6901) of a path of keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def fast_valid(validator: jsonschema_rs.Validator, instance: Any) -> bool:
    """Whether the Rust validator accepts `instance`; False where it cannot judge, for jsonschema to word."""
    try:
        return bool(validator.is_valid(instance))
    except (ValueError, OverflowError):  # e.g. an integer beyond 64 bits
        return False


def _route_pattern(template: str) -> str:
    return re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))


IMMUTABLE = (str, int, float, bool, type(None))


def _relevance(error: ValidationError) -> int:
    """Shallowest error first. Unlike jsonschema's default key, this keeps a `oneOf` failure whole
    (image_size: "expected ImageSizePreset or CustomImageSize") for `_one_of_message` to word."""
    return -len(error.path)


def _violation(error: ValidationError | None, prefix: str) -> Violation | None:
    if error is None:
        return None
    parts = [prefix] if prefix else []
    parts += [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    field = ".".join(parts).replace(".[", "[")
    message = error.message
    shown = repr(error.instance)
    if len(shown) > 80:
        message = message.replace(shown, f"{shown[:60]}…({len(shown)} characters)")
    if error.validator == "required" and isinstance(error.validator_value, list):
        missing = message.split("'")[1] if message.count("'") >= 2 else message
        field = f"{field}.{missing}" if field else missing
        message = "is required"
    elif error.validator == "additionalProperties":
        unexpected = message.split("(")[-1].rstrip(")")
        message = f"unknown property ({unexpected}); the body accepts only documented parameters"
    elif error.validator == "oneOf":
        message = _one_of_message(error)
    return Violation(field=field, rule=str(error.validator), message=message)


def _one_of_message(error: ValidationError) -> str:
    """For image_size: name the alternatives and, when the object branch was meant, what it lacks."""
    branches: list[dict[str, Any]] = (
        list(error.validator_value) if isinstance(error.validator_value, list) else []
    )
    options = [branch["$ref"].rsplit("/", 1)[-1] for branch in branches if "$ref" in branch]
    detail = ""
    object_errors = [e for e in error.context or [] if e.validator not in ("type", "enum")]
    if object_errors and isinstance(error.instance, dict):
        inner = best_match(object_errors)
        if inner is not None:
            path = ".".join(str(p) for p in inner.relative_path)
            detail = f"; {path + ': ' if path else ''}{inner.message}"
    expected = " or ".join(options) if options else "one of the documented forms"
    return f"{error.instance!r} is not valid: expected {expected}{detail}"
