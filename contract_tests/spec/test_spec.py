"""The contract itself: openapi.yaml is valid OpenAPI 3.1, agrees with the vendor's reference text, and
its schemas accept exactly what they should.

Fully offline: reads openapi.yaml and the reference text, nothing else. The tests that read the
reference carry the ``needs_reference`` mark: without the text they skip (under ``CI=true`` they fail).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from boogu_contract import Contract
from contract_tests.spec_helpers import (
    FORMAT_CHECKER,
    SPEC_URI,
    ReferenceBlock,
    SpecExample,
    canonical_json,
    component_schema_name,
    iter_spec_examples,
    json_pointer,
    load_reference_text,
    load_spec,
    needs_reference,
    operation,
    reference_blocks,
    reference_here,
    reference_json_blocks,
    reference_params,
    reference_schema_name,
    request_body_schema_pointer,
    resolve,
    resolve_pointer,
    response_object,
    response_schema_pointer,
    schema_validator,
    validator_at,
)

TEXT_PATH: Final = "/boogu-image/v1/boogu-image-request"
EDIT_PATH: Final = "/boogu-image-edit/v1/boogu-image-edit-request"
STATUS_PATH: Final = "/v2/requests/status/{request_id}"
SUBMITS: Final = {"submit_text_to_image": TEXT_PATH, "submit_image_edit": EDIT_PATH}
OPERATIONS: Final = {
    "submit_text_to_image": ("post", TEXT_PATH, "text_to_image"),
    "submit_image_edit": ("post", EDIT_PATH, "image_edit"),
    "get_request_status": ("get", STATUS_PATH, "status"),
}
REQUEST_SCHEMAS: Final = ("TextToImageRequest", "ImageEditRequest")
EDIT_SECTION_HEADING: Final = "### Image to Image (Image Editing)"
EN_DASH: Final = "\u2013"


# ------------------------------------------------------------------------------------- reference text


def unescape(text: str) -> str:
    """The reference's markdown escapes undone: ``square\\_hd`` is ``square_hd``."""
    return text.replace("\\_", "_")


def normalise(text: str) -> str:
    """Markdown escapes undone and every run of whitespace made one space."""
    return " ".join(unescape(text).split())


def reference_section(schema_or_operation: str) -> str:
    """The text-to-image or the image edit half of the reference."""
    text = load_reference_text()
    cut = text.index(EDIT_SECTION_HEADING)
    edit = schema_or_operation in ("ImageEditRequest", "submit_image_edit", "image_edit")
    return text[cut:] if edit else text[:cut]


def section_of(block: ReferenceBlock) -> str:
    """``submit_text_to_image`` or ``submit_image_edit``: the half of the reference that holds ``block``."""
    cut = load_reference_text().index(EDIT_SECTION_HEADING)
    return "submit_image_edit" if block.offset > cut else "submit_text_to_image"


def reference_table(section: str, heading: str, header: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The rows of the table under ``heading`` (a line of the section), cells with escapes undone.

    The reference's tables are flattened to one paragraph per cell, so the cells after the header
    cells, up to the next heading, are read ``len(header)`` at a time.
    """
    start = section.index(f"\n{heading}\n") + 1
    following = re.compile(r"^#", re.MULTILINE).search(section, start + len(heading))
    chunk = section[start : following.start() if following else len(section)]
    cells = [unescape(cell.strip()) for cell in re.split(r"\n[ \t]*\n", chunk.strip())[1:]]
    first = cells.index(header[0])
    assert tuple(cells[first : first + len(header)]) == header, f"unexpected header under {heading!r}"
    body = cells[first + len(header) :]
    assert len(body) % len(header) == 0, f"the table under {heading!r} does not split into rows"
    return [tuple(body[i : i + len(header)]) for i in range(0, len(body), len(header))]


# ----------------------------------------------------------------------------------------------- spec


def test_spec_is_valid_openapi_3_1() -> None:
    spec = load_spec()
    assert str(spec["openapi"]).startswith("3.1.")
    validate(copy.deepcopy(spec), base_uri=SPEC_URI, cls=OpenAPIV31SpecValidator)


SPEC_EXAMPLES: Final = list(iter_spec_examples())


def test_spec_examples_are_found() -> None:
    kinds = {example.kind for example in SPEC_EXAMPLES}
    assert {"parameter", "request_body", "response", "response_header", "schema"} <= kinds
    assert len({example.id for example in SPEC_EXAMPLES}) == len(SPEC_EXAMPLES), "example ids must be unique"
    webhook = [e for e in SPEC_EXAMPLES if e.operation_id == "receive_request_finished"]
    assert webhook, "the webhook's examples must be found"


@pytest.mark.parametrize("example", [pytest.param(e, id=e.id) for e in SPEC_EXAMPLES])
def test_spec_example_matches_its_schema(example: SpecExample) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in example.validator.iter_errors(example.value)]
    assert not errors, f"{example.value_pointer} breaks {example.schema_pointer}: {errors}"


def test_every_component_example_is_used_and_so_checked() -> None:
    checked = {example.value_pointer for example in SPEC_EXAMPLES}
    for name in load_spec()["components"].get("examples", {}):
        assert json_pointer("components", "examples", name, "value") in checked, f"unused example {name}"


@pytest.mark.parametrize("operation_id", list(OPERATIONS))
def test_every_json_body_has_examples(operation_id: str) -> None:
    method, path, _ = OPERATIONS[operation_id]
    op = operation(path, method)
    wanted = {"request"} if "requestBody" in op else set()
    wanted |= {status for status, response in op["responses"].items() if resolve(response).get("content")}
    have = {
        e.status or "request"
        for e in SPEC_EXAMPLES
        if e.operation_id == operation_id and e.kind != "parameter"
    }
    assert wanted <= have, f"{operation_id}: no example for {sorted(wanted - have)}"


# ------------------------------------------------------------------------------ reference JSON blocks

BLOCKS: Final = reference_blocks() if reference_here() else ()


def block_id(block: ReferenceBlock) -> str:
    heading = block.heading.lstrip("# ")
    return f"{block.index:02d}-{section_of(block)}-{reference_schema_name(block.value)}-{heading}"


BLOCK_PARAMS: Final = reference_params(lambda: (pytest.param(b, id=block_id(b)) for b in BLOCKS))


@needs_reference
def test_reference_json_blocks_are_found() -> None:
    assert reference_json_blocks() == [block.value for block in BLOCKS]
    counts: dict[str, int] = {}
    for block in BLOCKS:
        name = reference_schema_name(block.value)
        counts[name] = counts.get(name, 0) + 1
    # per half: the example request, the 202 body twice, the 402 and 400 bodies, ERROR and COMPLETED
    assert counts == {
        "TextToImageRequest": 1,
        "ImageEditRequest": 1,
        "QueuedRequest": 4,
        "ErrorResponse": 4,
        "RequestStatus": 4,
    }
    assert [b.comments for b in BLOCKS if b.comments] == [
        ("// 402 \u2014 Insufficient balance",),
        ("// 400 \u2014 Model not found",),
    ] * 2


@needs_reference
def test_reference_request_bodies_are_told_apart() -> None:
    text, edit = (
        [b.value for b in BLOCKS if reference_schema_name(b.value) == name] for name in REQUEST_SCHEMAS
    )
    assert "image_size" in text[0]
    assert "image_url" not in text[0]
    assert "image_url" in edit[0]


@needs_reference
@pytest.mark.parametrize("block", BLOCK_PARAMS)
def test_reference_block_validates(block: ReferenceBlock) -> None:
    name = reference_schema_name(block.value)
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in schema_validator(name).iter_errors(block.value)
    ]
    assert not errors, f"the reference's {name} breaks the spec: {errors}"
    if name == "ErrorResponse":  # also as the body of the response its comment names
        status = re.search(r"\b(\d{3})\b", block.comments[0])
        assert status is not None
        pointer = response_schema_pointer(SUBMITS[section_of(block)], "post", status.group(1))
        assert not list(validator_at(pointer).iter_errors(block.value))


def where_in_spec(block: ReferenceBlock) -> tuple[str, str, str | None]:
    """(kind, operationId, status) of the spec examples that must hold the reference's block."""
    name = reference_schema_name(block.value)
    op_id = section_of(block)
    if name in REQUEST_SCHEMAS:
        return "request_body", op_id, None
    if name == "QueuedRequest":
        return "response", op_id, "202"
    if name == "ErrorResponse":
        status = re.search(r"\b(\d{3})\b", block.comments[0])
        assert status is not None
        return "response", op_id, status.group(1)
    return "response", "get_request_status", "200"


@needs_reference
@pytest.mark.parametrize("block", BLOCK_PARAMS)
def test_reference_block_is_a_spec_example_verbatim(block: ReferenceBlock) -> None:
    kind, op_id, status = where_in_spec(block)
    candidates = [e for e in SPEC_EXAMPLES if (e.kind, e.operation_id, e.status) == (kind, op_id, status)]
    assert candidates, f"the spec has no {kind} example for {op_id} {status or ''}"
    assert canonical_json(block.value) in {canonical_json(e.value) for e in candidates}, (
        f"the reference's block is not among the {kind} examples of {op_id} {status or ''}"
    )


@needs_reference
@pytest.mark.parametrize(
    ("op_id", "status_value"),
    [
        pytest.param(op_id, status, id=f"{op_id}-{status}")
        for op_id in SUBMITS
        for status in ("COMPLETED", "ERROR")
    ],
)
def test_reference_status_bodies_cover_both_models(op_id: str, status_value: str) -> None:
    model_id = "boogu-image-edit" if op_id == "submit_image_edit" else "boogu-image"
    found = [
        b.value
        for b in BLOCKS
        if section_of(b) == op_id and reference_schema_name(b.value) == "RequestStatus"
        if b.value["status"] == status_value
    ]
    assert len(found) == 1
    assert found[0]["model_id"] == model_id
    assert found[0]["request_id"].startswith(f"{model_id}_")


# -------------------------------------------------------------------------------- parameter tables


class _Absent:
    def __repr__(self) -> str:
        return "<no default>"


ABSENT: Final = _Absent()
PRESETS: Final = ("square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9")
PRESET_OR_OBJECT: Final = "preset|object"


@dataclass(frozen=True)
class Row:
    """A row of the reference's parameter table, in JSON Schema terms."""

    name: str
    required: bool
    type: str
    """``string``, ``integer``, ``number`` (the reference's float), ``boolean``, or ``preset|object``."""
    default: Any = ABSENT
    minimum: int | float | None = None
    maximum: int | float | None = None
    enum: tuple[str, ...] | None = None


COMMON_ROWS: Final = {
    "negative_prompt": Row("negative_prompt", False, "string", ""),
    "image_size": Row("image_size", False, PRESET_OR_OBJECT, "square_hd", enum=PRESETS),
    "num_inference_steps": Row("num_inference_steps", False, "integer", 30, 20, 50),
    "guidance_scale": Row("guidance_scale", False, "number", 4, 1, 8),
    "cfg_range_start": Row("cfg_range_start", False, "number", 0, 0, 1),
    "cfg_range_end": Row("cfg_range_end", False, "number", 1, 0, 1),
    "num_images": Row("num_images", False, "integer", 1, 1, 4),
    "output_format": Row("output_format", False, "string", "jpeg", enum=("jpeg", "png")),
    "enable_safety_checker": Row("enable_safety_checker", False, "boolean", True),
    "seed": Row("seed", False, "integer"),
    "sync_mode": Row("sync_mode", False, "boolean", False),
}
# The reference's tables, in the reference's order.
TABLES: Final[dict[str, list[Row]]] = {
    "TextToImageRequest": [
        Row("prompt", True, "string"),
        *(
            COMMON_ROWS[name]
            for name in (
                "negative_prompt",
                "image_size",
                "num_inference_steps",
                "guidance_scale",
                "cfg_range_start",
                "cfg_range_end",
                "num_images",
                "output_format",
                "enable_safety_checker",
                "seed",
                "sync_mode",
            )
        ),
    ],
    "ImageEditRequest": [
        Row("prompt", True, "string"),
        Row("image_url", True, "string"),
        *(
            COMMON_ROWS[name]
            for name in ("negative_prompt", "image_size", "num_images", "num_inference_steps")
        ),
        COMMON_ROWS["guidance_scale"],
        Row("image_guidance_scale", False, "number", 1, 1, 8),
        *(
            COMMON_ROWS[name]
            for name in (
                "cfg_range_start",
                "cfg_range_end",
                "output_format",
                "enable_safety_checker",
                "seed",
                "sync_mode",
            )
        ),
    ],
}
TABLE_HEADINGS: Final = {
    "TextToImageRequest": "## Request Parameters - Boogu Image generate request",
    "ImageEditRequest": "## Request Parameters - Boogu Image Edit generate request",
}
PARAMETER_HEADER: Final = (
    "Parameter",
    "Required",
    "Type",
    "Default",
    "Allowed values / range",
    "Description",
)
REFERENCE_TYPES: Final = {
    "string": "string",
    "integer": "integer",
    "float": "number",
    "boolean": "boolean",
    "string or object": PRESET_OR_OBJECT,
}


def parameter_table(schema_name: str) -> list[tuple[str, ...]]:
    return reference_table(reference_section(schema_name), TABLE_HEADINGS[schema_name], PARAMETER_HEADER)


def row_from_reference(cells: tuple[str, ...]) -> Row:
    name, required, type_, default, allowed, _ = cells
    number = r"-?\d+(?:\.\d+)?"
    span = re.fullmatch(rf"({number}){EN_DASH}({number})", allowed)
    minimum = maximum = None
    if span:
        minimum, maximum = (json.loads(bound) for bound in span.groups())
    enum = tuple(re.findall(r'"([^"]*)"', allowed)) or None
    if type_ == "string or object":
        assert "{width, height}" in allowed, f"{name}: the object form is not offered"
    return Row(
        name=name,
        required={"Yes": True, "No": False}[required],
        type=REFERENCE_TYPES[type_],
        default=ABSENT if default == "\u2014" else json.loads(default),
        minimum=minimum,
        maximum=maximum,
        enum=enum,
    )


@needs_reference
@pytest.mark.parametrize("schema_name", REQUEST_SCHEMAS)
def test_hard_coded_table_is_the_reference_table(schema_name: str) -> None:
    """The expected table below is the reference's, so the spec is compared with the reference."""
    parsed = [row_from_reference(cells) for cells in parameter_table(schema_name)]
    assert parsed == TABLES[schema_name]
    for row in parsed:  # dataclass equality lets True == 1; the defaults must also be the same JSON
        expected = next(r for r in TABLES[schema_name] if r.name == row.name)
        assert type(row.default) is type(expected.default), row.name


@pytest.mark.parametrize("schema_name", REQUEST_SCHEMAS)
def test_request_schema_has_exactly_the_reference_parameters(schema_name: str) -> None:
    schema = resolve_pointer(json_pointer("components", "schemas", schema_name))
    assert list(schema["properties"]) == [row.name for row in TABLES[schema_name]]
    assert schema["required"] == [row.name for row in TABLES[schema_name] if row.required]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False


def property_pointer(schema_name: str, name: str) -> str:
    return json_pointer("components", "schemas", schema_name, "properties", name)


def same_json(actual: Any, expected: Any, json_type: str) -> bool:
    """JSON equality; for ``number`` an integer and a float of the same value are the same."""
    if json_type == "number":
        numeric = isinstance(actual, int | float) and not isinstance(actual, bool)
        return numeric and actual == expected
    return canonical_json(actual) == canonical_json(expected)


@pytest.mark.parametrize(
    ("schema_name", "row"),
    [pytest.param(s, row, id=f"{s}-{row.name}") for s in REQUEST_SCHEMAS for row in TABLES[s]],
)
def test_parameter_matches_reference_table(schema_name: str, row: Row) -> None:
    schema = resolve_pointer(json_pointer("components", "schemas", schema_name))
    prop = schema["properties"][row.name]
    assert (row.name in schema["required"]) is row.required
    # The default as the mock and every generator read it: the property's own, or its type's (a union's
    # is its branch's, since generators cannot take a `default` on a `oneOf`).
    found = Contract().default_of(prop)
    if row.default is ABSENT:
        assert not found
    else:
        assert found, f"{row.name} has no default"
        [default] = found
        assert same_json(default, row.default, row.type), f"{row.name} default {default!r}"
        default_errors = list(validator_at(property_pointer(schema_name, row.name)).iter_errors(default))
        assert not default_errors, f"the default of {row.name} breaks its own schema"
    for keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        assert keyword not in prop, f"{row.name}: the reference's ranges are inclusive"
    assert prop.get("minimum") == row.minimum
    assert prop.get("maximum") == row.maximum
    if row.type == PRESET_OR_OBJECT:
        union = resolve(prop)  # one `ImageSize` for both requests, so generators make one type
        assert prop["$ref"] == "#/components/schemas/ImageSize"
        preset, custom = (resolve(branch) for branch in union["oneOf"])
        assert "type" not in union
        assert preset["type"] == "string"
        assert tuple(preset["enum"]) == row.enum
        assert custom["type"] == "object"
        assert custom["required"] == ["width", "height"]
        assert {name: p["type"] for name, p in custom["properties"].items()} == {
            "width": "integer",
            "height": "integer",
        }
    else:
        assert prop["type"] == row.type
        if row.enum is None:
            assert "enum" not in prop
        else:
            assert tuple(prop["enum"]) == row.enum


@needs_reference
@pytest.mark.parametrize(
    ("schema_name", "name"),
    [pytest.param(s, row.name, id=f"{s}-{row.name}") for s in REQUEST_SCHEMAS for row in TABLES[s]],
)
def test_parameter_description_is_the_reference_text(schema_name: str, name: str) -> None:
    """Each property's description is, whitespace and escapes aside, its row's description cell."""
    cells = {row[0]: row[-1] for row in parameter_table(schema_name)}
    description = resolve_pointer(property_pointer(schema_name, name))["description"]
    assert normalise(description) == normalise(cells[name])
    assert normalise(description) in normalise(reference_section(schema_name))


# ------------------------------------------------------------------------- response fields and codes

# The reference's "Response Fields" table: where each field lives in the spec.
RESPONSE_FIELDS: Final = {
    "request_id": [("RequestStatus", "request_id"), ("QueuedRequest", "request_id")],
    "status": [("RequestStatus", "status")],
    "model_id": [("RequestStatus", "model_id")],
    "error": [("RequestStatus", "error")],
    "output.media_url": [("RequestOutput", "media_url")],
    "output.media_type": [("RequestOutput", "media_type")],
    "created_at": [("RequestStatus", "created_at")],
    "completed_at": [("RequestStatus", "completed_at")],
    "polling_url": [("QueuedRequest", "polling_url")],
}
RESPONSE_TYPES: Final[dict[str, Any]] = {
    "string": "string",
    "string|null": ["string", "null"],
    "array": "array",
}
# A deliberate widening: the reference types `completed_at` as a string, but a request that has not
# finished has no completion time; the spec makes it null until then (see the StatusQueued example).
WIDENED_TYPES: Final[dict[str, Any]] = {"completed_at": ["string", "null"]}


@needs_reference
@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_reference_response_fields_are_all_mapped(op_id: str) -> None:
    table = reference_table(reference_section(op_id), "## Response Fields", ("Field", "Type", "Description"))
    assert [row[0] for row in table] == list(RESPONSE_FIELDS)


@needs_reference
@pytest.mark.parametrize(
    ("op_id", "field"), [pytest.param(o, f, id=f"{o}-{f}") for o in SUBMITS for f in RESPONSE_FIELDS]
)
def test_response_field_matches_reference(op_id: str, field: str) -> None:
    """Type as in the reference; the spec's description starts with the reference's (it may add to it)."""
    table = reference_table(reference_section(op_id), "## Response Fields", ("Field", "Type", "Description"))
    _, type_, description = next(row for row in table if row[0] == field)
    for schema_name, name in RESPONSE_FIELDS[field]:
        prop = resolve(resolve_pointer(property_pointer(schema_name, name)))
        assert prop["type"] == WIDENED_TYPES.get(field, RESPONSE_TYPES[type_])
        if field == "status":
            assert set(prop["enum"]) == set(re.findall(r"[A-Z]+", description))
        else:
            assert normalise(prop["description"]).startswith(normalise(description).rstrip("."))
    if field == "output.media_url":
        output = resolve_pointer(property_pointer("RequestStatus", "output"))
        assert [resolve(branch).get("type") for branch in output["oneOf"]] == ["object", "null"]


@needs_reference
@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_status_values_match_reference(op_id: str) -> None:
    table = reference_table(reference_section(op_id), "## Status Values", ("Status", "Description"))
    status = resolve_pointer(json_pointer("components", "schemas", "Status"))
    assert [value for value, _ in table] == status["enum"]
    for value, description in table:
        assert f"`{value}`: {description}" in status["description"]


@needs_reference
@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_reference_status_codes_are_declared(op_id: str) -> None:
    table = reference_table(reference_section(op_id), "## Response Handling", ("Code", "Meaning"))
    assert [code for code, _ in table] == ["202", "400", "401", "402", "403", "429", "500"]
    for code, meaning in table:
        response = response_object(SUBMITS[op_id], "post", code)
        assert response["description"].startswith(meaning)


@needs_reference
@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_reference_request_headers_match(op_id: str) -> None:
    table = reference_table(reference_section(op_id), "## Request Headers", ("Header", "Value"))
    assert {header: value for header, value in table} == {
        "Content-Type": "application/json",
        "Cache-Control": "no-cache",
        "Ocp-Apim-Subscription-Key": "YOUR_API_KEY",
    }
    method, path, _ = OPERATIONS[op_id]
    assert "application/json" in resolve(operation(path, method)["requestBody"])["content"]
    assert header_parameters(op_id)["Cache-Control"]["schema"]["default"] == "no-cache"


# ------------------------------------------------------------------------------------ invalid bodies

TEXT_BASE: Final = {"prompt": "a lighthouse on a cliff"}
EDIT_BASE: Final = {
    "prompt": "make it snow",
    "image_url": "https://pub-582b7213209642b9b995c96c95a30381.r2.dev/Image.jpeg",
}
BASES: Final = {"TextToImageRequest": TEXT_BASE, "ImageEditRequest": EDIT_BASE}
STATUS_BASE: Final = {
    "request_id": "boogu-image_019dxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    "status": "COMPLETED",
    "model_id": "boogu-image",
    "error": None,
    "output": {"media_url": ["https://cdn.example/output.jpeg"], "media_type": "image/jpeg"},
    "created_at": "2026-03-31T10:00:00.000Z",
    "updated_at": "2026-03-31T10:00:15.000Z",
    "completed_at": "2026-03-31T10:00:15.000Z",
}
QUEUED_BASE: Final = {
    "request_id": "boogu-image_019dxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
    "status": "QUEUED",
    "polling_url": "https://gateway.pixazo.ai/v2/requests/status/boogu-image_019dxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
}
ERROR_BASE: Final = {"error": "Insufficient Balance", "message": "Your wallet does not have enough balance."}
# jsonschema checks `format: uri` only when the optional rfc3987 package is installed; then a value
# that is not a URI also breaks `format`.
NOT_A_URI: Final[tuple[str, ...]] = ("format",) if "uri" in FORMAT_CHECKER.checkers else ()
WEBHOOK_URL_SCHEMA: Final = json_pointer("components", "parameters", "WebhookUrl", "schema")
RETRY_AFTER_SCHEMA: Final = json_pointer("components", "headers", "RetryAfter", "schema")


@dataclass(frozen=True)
class Invalid:
    """A value that the schema must reject by one rule (and only by it, unless ``also`` says otherwise)."""

    id: str
    schema: str
    """A component schema name, or a ``#/...`` pointer."""
    value: Any
    rule: str
    """The ``error.validator`` of the one error: ``minimum``, ``enum``, ``required``..."""
    path: tuple[str | int, ...] = ()
    inner_rule: str | None = None
    """For a ``oneOf`` error: a rule that one of its branches broke."""
    also: tuple[str, ...] = ()
    """Further rules that the value cannot help breaking, at the same path (an enum with a wrong type)."""


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**copy.deepcopy(base), **changes}


def without(base: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in copy.deepcopy(base).items() if k != key}


WRONG_TYPES: Final[dict[str, list[Any]]] = {
    "string": [123, None, ["text"]],
    "integer": ["2", 2.5, True, None],
    "number": ["4", True, None],
    "boolean": ["true", 1, None],
}


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def request_cases(schema: str) -> Iterator[Invalid]:
    base = BASES[schema]
    for row in TABLES[schema]:
        name = row.name
        step = 1 if row.type == "integer" else 0.01
        if row.minimum is not None:
            below = row.minimum - step
            yield Invalid(
                f"{schema}-{name}-below-{below:g}", schema, changed(base, **{name: below}), "minimum", (name,)
            )
        if row.maximum is not None:
            above = row.maximum + step
            yield Invalid(
                f"{schema}-{name}-above-{above:g}", schema, changed(base, **{name: above}), "maximum", (name,)
            )
        for wrong_type in WRONG_TYPES.get(row.type, []):
            wrong = wrong_type
            if row.type == "integer" and isinstance(wrong, float) and row.minimum is not None:
                wrong = row.minimum + 0.5  # a fraction inside the range breaks only the type
            also = ("enum",) if row.enum and row.type != PRESET_OR_OBJECT else ()
            value = changed(base, **{name: wrong})
            yield Invalid(f"{schema}-{name}-type-{show(wrong)}", schema, value, "type", (name,), also=also)
        if row.required:
            yield Invalid(f"{schema}-{name}-missing", schema, without(base, name), "required")
    for bad in ("webp", "JPEG", "jpg", ""):
        yield Invalid(
            f"{schema}-output_format-{show(bad)}",
            schema,
            changed(base, output_format=bad),
            "enum",
            ("output_format",),
        )
    yield Invalid(f"{schema}-prompt-empty", schema, changed(base, prompt=""), "minLength", ("prompt",))
    image_sizes: list[tuple[str, Any, str]] = [
        ("unknown-preset", "square_xl", "enum"),
        ("preset-wrong-case", "SQUARE_HD", "enum"),
        ("number", 1024, "type"),
        ("list", [1280, 720], "type"),
        ("object-missing-height", {"width": 1280}, "required"),
        ("object-missing-width", {"height": 720}, "required"),
        ("object-width-0", {"width": 0, "height": 720}, "minimum"),
        ("object-height-4097", {"width": 1280, "height": 4097}, "maximum"),
        ("object-width-string", {"width": "1280", "height": 720}, "type"),
        ("object-height-float", {"width": 1280, "height": 720.5}, "type"),
        ("object-unknown-key", {"width": 1280, "height": 720, "depth": 3}, "additionalProperties"),
    ]
    for label, value, inner in image_sizes:
        yield Invalid(
            f"{schema}-image_size-{label}",
            schema,
            changed(base, image_size=value),
            "oneOf",
            ("image_size",),
            inner,
        )
    yield Invalid(f"{schema}-unknown-property", schema, changed(base, steps=30), "additionalProperties")
    yield Invalid(f"{schema}-camelCase-property", schema, changed(base, numImages=2), "additionalProperties")


def other_cases() -> Iterator[Invalid]:
    t2i, edit = "TextToImageRequest", "ImageEditRequest"
    yield Invalid(
        f"{t2i}-image_url-not-accepted",
        t2i,
        changed(TEXT_BASE, image_url=EDIT_BASE["image_url"]),
        "additionalProperties",
    )
    yield Invalid(
        f"{t2i}-image_guidance_scale-not-accepted",
        t2i,
        changed(TEXT_BASE, image_guidance_scale=1),
        "additionalProperties",
    )
    yield Invalid(
        f"{edit}-image_url-empty",
        edit,
        changed(EDIT_BASE, image_url=""),
        "pattern",
        ("image_url",),
        also=NOT_A_URI,
    )
    yield Invalid(
        f"{edit}-image_url-not-http-or-data",
        edit,
        changed(EDIT_BASE, image_url="ftp://example.test/a.png"),
        "pattern",
        ("image_url",),
    )
    yield Invalid(
        f"{edit}-imageUrl-camelCase",
        edit,
        changed(EDIT_BASE, imageUrl="https://x.example/a.png"),
        "additionalProperties",
    )
    yield Invalid(f"{t2i}-not-an-object", t2i, [TEXT_BASE], "type")
    # response bodies
    rs, q, er = "RequestStatus", "QueuedRequest", "ErrorResponse"
    yield Invalid(
        f"{q}-status-PROCESSING", q, changed(QUEUED_BASE, status="PROCESSING"), "const", ("status",)
    )
    yield Invalid(f"{q}-polling_url-missing", q, without(QUEUED_BASE, "polling_url"), "required")
    yield Invalid(f"{q}-request_id-number", q, changed(QUEUED_BASE, request_id=42), "type", ("request_id",))
    yield Invalid(f"{rs}-status-unknown", rs, changed(STATUS_BASE, status="CANCELLED"), "enum", ("status",))
    yield Invalid(f"{rs}-status-lowercase", rs, changed(STATUS_BASE, status="completed"), "enum", ("status",))
    for key in ("request_id", "status", "model_id", "error", "output"):
        yield Invalid(f"{rs}-{key}-missing", rs, without(STATUS_BASE, key), "required")
    yield Invalid(f"{rs}-error-number", rs, changed(STATUS_BASE, error=42), "type", ("error",))
    yield Invalid(
        f"{rs}-output-string",
        rs,
        changed(STATUS_BASE, output="https://x.example/a.png"),
        "oneOf",
        ("output",),
        "type",
    )
    media = {"media_url": "https://x.example/a.png", "media_type": "image/png"}
    yield Invalid(
        f"{rs}-output-media_url-string", rs, changed(STATUS_BASE, output=media), "oneOf", ("output",), "type"
    )
    yield Invalid(
        f"{rs}-output-media_type-missing",
        rs,
        changed(STATUS_BASE, output={"media_url": []}),
        "oneOf",
        ("output",),
        "required",
    )
    yield Invalid(
        f"{rs}-created_at-no-millis",
        rs,
        changed(STATUS_BASE, created_at="2026-03-31T10:00:00Z"),
        "pattern",
        ("created_at",),
    )
    yield Invalid(
        f"{rs}-updated_at-offset",
        rs,
        changed(STATUS_BASE, updated_at="2026-03-31T10:00:15.000+00:00"),
        "pattern",
        ("updated_at",),
    )
    yield Invalid(
        f"{rs}-completed_at-space",
        rs,
        changed(STATUS_BASE, completed_at="2026-03-31 10:00:15.000"),
        "pattern",
        ("completed_at",),
    )
    yield Invalid(f"{rs}-created_at-null", rs, changed(STATUS_BASE, created_at=None), "type", ("created_at",))
    yield Invalid(f"{er}-message-missing", er, without(ERROR_BASE, "message"), "required")
    yield Invalid(f"{er}-error-null", er, changed(ERROR_BASE, error=None), "type", ("error",))
    # header parameters
    yield Invalid("X-Webhook-URL-ftp", WEBHOOK_URL_SCHEMA, "ftp://your-server.com/webhook", "pattern")
    yield Invalid(
        "X-Webhook-URL-no-scheme", WEBHOOK_URL_SCHEMA, "your-server.com/webhook", "pattern", also=NOT_A_URI
    )
    yield Invalid(
        "X-Webhook-URL-too-long", WEBHOOK_URL_SCHEMA, "https://x.example/" + "a" * 2040, "maxLength"
    )
    yield Invalid("Retry-After-negative", RETRY_AFTER_SCHEMA, -1, "minimum")
    yield Invalid("Retry-After-float", RETRY_AFTER_SCHEMA, 2.5, "type")


INVALID: Final = [*request_cases("TextToImageRequest"), *request_cases("ImageEditRequest"), *other_cases()]


def validator_for(schema: str) -> Any:
    return validator_at(schema) if schema.startswith("#") else schema_validator(schema)


def test_invalid_case_ids_are_unique() -> None:
    assert len({case.id for case in INVALID}) == len(INVALID)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in INVALID])
def test_invalid_value_is_rejected_by_the_expected_rule(case: Invalid) -> None:
    errors = list(validator_for(case.schema).iter_errors(case.value))
    assert sorted(e.validator for e in errors) == sorted((case.rule, *case.also)), [e.message for e in errors]
    assert {tuple(e.absolute_path) for e in errors} == {case.path}
    (error,) = (e for e in errors if e.validator == case.rule)
    assert tuple(error.absolute_path) == case.path
    if case.inner_rule is not None:
        inner = {e.validator for e in error.context}
        assert case.inner_rule in inner, f"expected a {case.inner_rule} error in a branch, got {inner}"


def valid_cases() -> Iterator[tuple[str, str, Any]]:
    for schema, base in BASES.items():
        yield f"{schema}-minimal", schema, base
        for row in TABLES[schema]:
            for bound in (row.minimum, row.maximum):
                if bound is not None:
                    yield f"{schema}-{row.name}-at-{bound}", schema, changed(base, **{row.name: bound})
            if row.type == "number" and row.minimum is not None:
                middle = (row.minimum + row.maximum) / 2 if row.maximum is not None else row.minimum
                yield f"{schema}-{row.name}-float-{middle}", schema, changed(base, **{row.name: middle})
        for preset in PRESETS:
            yield f"{schema}-image_size-{preset}", schema, changed(base, image_size=preset)
        for width, height in ((1, 1), (4096, 4096), (1280, 720)):
            size = {"width": width, "height": height}
            yield f"{schema}-image_size-{width}x{height}", schema, changed(base, image_size=size)
        for value in ("png", "jpeg"):
            yield f"{schema}-output_format-{value}", schema, changed(base, output_format=value)
        for seed in (0, 42, 2**32):
            yield f"{schema}-seed-{seed}", schema, changed(base, seed=seed)
        yield f"{schema}-bilingual-prompt", schema, changed(base, prompt="一只橘猫, watercolor")
    yield (
        "RequestStatus-no-timestamps",
        "RequestStatus",
        without(without(STATUS_BASE, "created_at"), "updated_at"),
    )
    yield "RequestStatus-extra-field", "RequestStatus", changed(STATUS_BASE, queue_position=3)
    yield "X-Webhook-URL-http", WEBHOOK_URL_SCHEMA, "http://127.0.0.1:9000/hook"
    yield "Retry-After-0", RETRY_AFTER_SCHEMA, 0


@pytest.mark.parametrize(("schema", "value"), [pytest.param(s, v, id=i) for i, s, v in valid_cases()])
def test_valid_value_is_accepted(schema: str, value: Any) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator_for(schema).iter_errors(value)]
    assert not errors


# ---------------------------------------------------------------------------------------- structure


def header_parameters(op_id: str) -> dict[str, dict[str, Any]]:
    method, path, _ = OPERATIONS[op_id]
    parameters = [resolve(p) for p in operation(path, method).get("parameters", [])]
    return {p["name"]: p for p in parameters if p["in"] == "header"}


@pytest.mark.parametrize("op_id", list(OPERATIONS))
def test_operation_has_id_tags_and_own_security(op_id: str) -> None:
    method, path, tag = OPERATIONS[op_id]
    op = operation(path, method)
    spec = load_spec()
    assert op["operationId"] == op_id
    assert op["tags"] == [tag]
    assert tag in {t["name"] for t in spec["tags"]}
    assert op["summary"]
    assert op.get("security"), "security must be declared on the operation itself"
    schemes = spec["components"]["securitySchemes"]
    for requirement in op["security"]:
        for scheme_name, scopes in requirement.items():
            assert scopes == []
            assert schemes[scheme_name] == schemes[scheme_name] | {
                "type": "apiKey",
                "in": "header",
                "name": "Ocp-Apim-Subscription-Key",
            }


def test_operation_ids_are_unique() -> None:
    spec = load_spec()
    ids = [
        op["operationId"]
        for section in ("paths", "webhooks")
        for item in spec[section].values()
        for method, op in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]
    assert len(ids) == len(set(ids))
    assert set(OPERATIONS) <= set(ids)


@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_submit_has_webhook_and_cache_control_headers(op_id: str) -> None:
    headers = header_parameters(op_id)
    webhook = headers["X-Webhook-URL"]
    assert webhook.get("required", False) is False
    assert webhook["schema"]["type"] == "string"
    assert webhook["schema"]["format"] == "uri"
    cache = headers["Cache-Control"]
    assert cache.get("required", False) is False
    assert cache["schema"] == {"type": "string", "default": "no-cache"}


SUBMIT_STATUSES: Final = ("200", "202", "400", "401", "402", "403", "429", "500")
STATUS_STATUSES: Final = ("200", "401", "403", "404", "429", "500")


@pytest.mark.parametrize(
    ("op_id", "statuses"),
    [
        *(pytest.param(op_id, SUBMIT_STATUSES, id=op_id) for op_id in SUBMITS),
        pytest.param("get_request_status", STATUS_STATUSES, id="get_request_status"),
    ],
)
def test_operation_declares_responses(op_id: str, statuses: tuple[str, ...]) -> None:
    method, path, _ = OPERATIONS[op_id]
    declared = set(operation(path, method)["responses"])
    assert set(statuses) <= declared, f"missing {sorted(set(statuses) - declared)}"
    for status in declared:
        schema = component_schema_name(response_schema_pointer(path, method, status))
        if status.startswith(("4", "5")):
            assert schema == "ErrorResponse", f"{op_id} {status}"
        elif status == "202":
            assert schema == "QueuedRequest", f"{op_id} {status}"
        else:  # a submit's 200 (sync mode) is typed as the result that parses its 202 too
            assert schema == ("SubmitResult" if op_id in SUBMITS else "RequestStatus"), f"{op_id} {status}"


@pytest.mark.parametrize("op_id", list(OPERATIONS))
def test_429_has_required_retry_after_header(op_id: str) -> None:
    method, path, _ = OPERATIONS[op_id]
    header = resolve(response_object(path, method, 429)["headers"]["Retry-After"])
    assert header["required"] is True
    assert header["schema"]["type"] == "integer"


@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_202_links_to_get_request_status(op_id: str) -> None:
    links = response_object(SUBMITS[op_id], "post", 202)["links"]
    resolved = [resolve(link) for link in links.values()]
    assert any(
        link.get("operationId") == "get_request_status"
        and link.get("parameters") == {"request_id": "$response.body#/request_id"}
        for link in resolved
    ), resolved


def test_status_operation_takes_request_id_in_path() -> None:
    (parameter,) = (resolve(p) for p in operation(STATUS_PATH, "get")["parameters"])
    assert (parameter["name"], parameter["in"], parameter["required"]) == ("request_id", "path", True)
    assert parameter["schema"]["type"] == "string"


def test_webhook_body_is_request_status() -> None:
    webhooks = load_spec()["webhooks"]
    assert webhooks, "the webhooks section must exist"
    for name, item in webhooks.items():
        assert list(item) == ["post"], name
        pointer = request_body_schema_pointer(name, "post", webhook=True)
        assert component_schema_name(pointer) == "RequestStatus"
        assert resolve(item["post"]["requestBody"])["required"] is True


def test_servers() -> None:
    urls = [server["url"] for server in load_spec()["servers"]]
    assert "https://gateway.pixazo.ai" in urls
    assert "http://127.0.0.1:8080" in urls


@pytest.mark.parametrize("op_id", list(SUBMITS))
def test_submit_request_body_is_required_json(op_id: str) -> None:
    body = resolve(operation(SUBMITS[op_id], "post")["requestBody"])
    assert body["required"] is True
    pointer = request_body_schema_pointer(SUBMITS[op_id], "post")
    expected = "TextToImageRequest" if op_id == "submit_text_to_image" else "ImageEditRequest"
    assert component_schema_name(pointer) == expected


def schemas_reached(node: Any, found: set[str] | None = None) -> set[str]:
    """The component schemas that `node` names, directly or through what it names."""
    found = set() if found is None else found
    if isinstance(node, list):
        for item in node:
            schemas_reached(item, found)
    elif isinstance(node, dict):
        ref = node.get("$ref", "")
        name = ref.rsplit("/", 1)[-1] if ref.startswith("#/components/schemas/") else None
        if ref and name not in found:
            found.update([name] if name else [])
            schemas_reached(resolve(node), found)
        for key, value in node.items():
            if key != "$ref":
                schemas_reached(value, found)
    return found


def test_answers_are_open_to_new_fields_and_requests_are_closed() -> None:
    """A gateway adds answer fields without notice, so a client must read them (generators refuse
    unknown fields unless `additionalProperties: true` says so); a misspelt request field is a `400`."""
    spec = load_spec()
    operations = [node for item in spec["paths"].values() for node in item.values() if isinstance(node, dict)]
    sent = schemas_reached([op.get("requestBody") for op in operations])
    received = schemas_reached([op["responses"] for op in operations] + [spec["webhooks"]])
    objects = {
        name for name, schema in spec["components"]["schemas"].items() if schema.get("type") == "object"
    }
    assert sent & received & objects == set()
    for name in sent & objects:
        assert spec["components"]["schemas"][name]["additionalProperties"] is False, name
    for name in received & objects:
        assert spec["components"]["schemas"][name]["additionalProperties"] is True, name
    assert received & objects >= {
        "SubmitResult",
        "QueuedRequest",
        "RequestStatus",
        "RequestOutput",
        "ErrorResponse",
    }
