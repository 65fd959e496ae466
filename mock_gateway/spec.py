"""The contract, read from openapi.yaml: the mock validates and fills defaults from it, never restating it.

Schemas are compiled once per process; every request is checked against the same validators that
the contract tests use, so the mock cannot drift from the spec without the tests noticing.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_URI = "urn:boogu:openapi"


def data_file(packaged: str, checkout: str) -> Path | None:
    """A file the wheel packs into `mock_gateway/` (as `packaged`), else its place in the source
    checkout (`checkout`, from the root); None when this install has neither."""
    inside = resources.files("mock_gateway") / packaged
    if inside.is_file():
        return Path(str(inside))
    outside = Path(__file__).resolve().parent.parent / checkout
    return outside if outside.is_file() else None


def spec_path() -> Path:
    """openapi.yaml: every wheel packs it, and every checkout has it."""
    path = data_file("openapi.yaml", "openapi.yaml")
    if path is None:
        raise FileNotFoundError("openapi.yaml is neither packaged in mock_gateway/ nor in the checkout")
    return path


def docs_path() -> Path | None:
    """The HTML reference (`make docs`): packed into the wheel by hatch_build.py, or built in the checkout."""
    return data_file("docs/index.html", "build/docs/index.html")


@cache
def load_spec() -> dict[str, Any]:
    with spec_path().open(encoding="utf-8") as handle:
        spec: dict[str, Any] = yaml.safe_load(handle)
    return spec


@dataclass(frozen=True)
class Violation:
    """One broken rule, worded as `field: what is wrong` for the 400 body."""

    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class HeaderParameter:
    name: str
    validator: Draft202012Validator


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    path: str
    body: Draft202012Validator | None
    """The reference validator: its errors word the 400 answers."""
    fast_body: jsonschema_rs.Validator | None
    """The same schema with its `$ref`s inlined, compiled in Rust: accepts valid bodies ~40× faster."""
    body_defaults: Mapping[str, Any]
    headers: Mapping[str, HeaderParameter]
    """Header parameters by lower-case name."""


class Contract:
    """The compiled operations of openapi.yaml, looked up by operationId."""

    def __init__(self, spec: dict[str, Any] | None = None) -> None:
        self.spec = spec if spec is not None else load_spec()
        resource = Resource.from_contents(self.spec, default_specification=DRAFT202012)
        self._registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
        self._format_checker = FormatChecker()
        self.operations = {op.operation_id: op for op in self._compile()}

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

    def _compile(self) -> Iterator[Operation]:
        for path, item in self.spec["paths"].items():
            for method, operation in item.items():
                if method not in ("get", "post", "put", "patch", "delete"):
                    continue
                pointer = f"/paths/{path.replace('~', '~0').replace('/', '~1')}/{method}"
                body = self.resolve(operation.get("requestBody"))
                validator = fast = None
                defaults: dict[str, Any] = {}
                if body is not None:
                    validator = self.validator(f"{pointer}/requestBody/content/application~1json/schema")
                    fast = jsonschema_rs.Draft202012Validator(
                        self.inline(body["content"]["application/json"]["schema"]), validate_formats=True
                    )
                    schema = self.resolve(body["content"]["application/json"]["schema"])
                    defaults = {
                        name: prop["default"]
                        for name, prop in schema.get("properties", {}).items()
                        if "default" in prop
                    }
                headers = {}
                for index, parameter in enumerate(operation.get("parameters", [])):
                    resolved = self.resolve(parameter)
                    if resolved["in"] == "header":
                        at = (
                            parameter["$ref"].removeprefix("#")
                            if "$ref" in parameter
                            else f"{pointer}/parameters/{index}"
                        )
                        header = HeaderParameter(resolved["name"], self.validator(f"{at}/schema"))
                        headers[resolved["name"].lower()] = header
                yield Operation(
                    operation["operationId"], method.upper(), path, validator, fast, defaults, headers
                )

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

    def check_body(self, operation_id: str, body: Any) -> Violation | None:
        """The most relevant broken rule of a request body, or None when it is valid."""
        operation = self.operations[operation_id]
        if operation.body is None or operation.fast_body is None:
            return None
        try:
            if operation.fast_body.is_valid(body):
                return None
        except (ValueError, OverflowError):  # e.g. an integer beyond 64 bits: let jsonschema judge
            pass
        return _violation(best_match(operation.body.iter_errors(body), key=_relevance), prefix="")

    def check_header(self, operation_id: str, name: str, value: str) -> Violation | None:
        header = self.operations[operation_id].headers[name.lower()]
        return _violation(best_match(header.validator.iter_errors(value)), prefix=header.name)

    def with_defaults(self, operation_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The body with the spec's defaults filled in for every property it omits."""
        defaults = self.operations[operation_id].body_defaults
        filled = {
            name: value if isinstance(value, IMMUTABLE) else copy.deepcopy(value)  # deepcopy: ~1 µs each
            for name, value in defaults.items()
            if name not in body
        }
        return {**body, **filled}


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
