"""tools/spec_diff.py, the breaking-change check: each kind of change on specs built in memory, the
version rule, the command line, and which versions it compares in a git history."""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import spec_diff

ROOT = Path(__file__).resolve().parent.parent.parent


Spec = dict[str, Any]


def error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if headers:
        response["headers"] = headers
    return response


def base_spec(version: str = "1.0.0") -> Spec:
    """A small API shaped like openapi.yaml: a submit, a status, a webhook, shared schemas by $ref."""
    thing = {"$ref": "#/components/schemas/Thing"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Things", "version": version},
        "paths": {
            "/things": {
                "post": {
                    "operationId": "create_thing",
                    "security": [{"key": []}],
                    "parameters": [
                        {"name": "X-Trace", "in": "header", "schema": {"type": "string", "maxLength": 100}}
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/ThingRequest"}}
                        },
                    },
                    "responses": {
                        "202": {"description": "Queued", "content": {"application/json": {"schema": thing}}},
                        "402": error_response("Insufficient Balance"),
                        "429": error_response(
                            "Too Many Requests",
                            {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}},
                        ),
                    },
                }
            },
            "/things/{id}": {
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "get": {
                    "operationId": "get_thing",
                    "security": [{"key": []}],
                    "responses": {
                        "200": {
                            "description": "The thing",
                            "content": {"application/json": {"schema": thing}},
                        },
                        "404": error_response("Not Found"),
                    },
                },
            },
        },
        "webhooks": {
            "thingDone": {
                "post": {
                    "operationId": "thing_done",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": thing}}},
                    "responses": {"200": {"description": "Acknowledged"}},
                }
            }
        },
        "components": {
            "securitySchemes": {"key": {"type": "apiKey", "in": "header", "name": "Key"}},
            "headers": {
                "RetryAfter": {"required": True, "schema": {"type": "integer", "minimum": 0}},
            },
            "schemas": {
                "ThingRequest": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": 100},
                        "count": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
                        "size": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Preset"},
                                {"$ref": "#/components/schemas/Custom"},
                            ]
                        },
                        "format": {"type": "string", "enum": ["jpeg", "png"], "default": "jpeg"},
                        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                        "url": {"type": "string", "pattern": "^https?://"},
                    },
                },
                "Preset": {"type": "string", "enum": ["small", "large"]},
                "Custom": {
                    "type": "object",
                    "properties": {"width": {"type": "integer", "minimum": 1, "maximum": 4096}},
                },
                "Thing": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"type": "string", "enum": ["QUEUED", "DONE"]},
                        "note": {"type": ["string", "null"]},
                        "score": {"type": "number", "maximum": 1},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
                },
            },
        },
    }


def schemas(spec: Spec) -> dict[str, Any]:
    found: dict[str, Any] = spec["components"]["schemas"]
    return found


def request_props(spec: Spec) -> dict[str, Any]:
    found: dict[str, Any] = schemas(spec)["ThingRequest"]["properties"]
    return found


def thing(spec: Spec) -> dict[str, Any]:
    found: dict[str, Any] = schemas(spec)["Thing"]
    return found


def create(spec: Spec) -> dict[str, Any]:
    found: dict[str, Any] = spec["paths"]["/things"]["post"]
    return found


def changed(mutate: Callable[[Spec], object]) -> list[spec_diff.Change]:
    old = base_spec()
    new = copy.deepcopy(old)
    mutate(new)
    return spec_diff.diff(old, new)


def rendered(changes: Iterable[spec_diff.Change]) -> list[str]:
    return [str(change) for change in changes]


# Each: (what is done to the new version, a breaking change that must be reported).
BREAKING: dict[str, tuple[Callable[[Spec], object], str]] = {
    "operation removed": (
        lambda s: s["paths"]["/things/{id}"].pop("get"),
        "GET /things/{id}: operation removed (get_thing)",
    ),
    "webhook removed": (
        lambda s: s.pop("webhooks"),
        "webhook thingDone (POST): webhook removed (thing_done)",
    ),
    "operationId changed": (
        lambda s: create(s).update(operationId="make_thing"),
        "POST /things: operationId changed: create_thing → make_thing",
    ),
    "request field removed": (
        lambda s: request_props(s).pop("format"),
        "POST /things: request body (application/json): field format removed",
    ),
    "new required request field": (
        lambda s: (
            request_props(s).update(owner={"type": "string"}),
            schemas(s)["ThingRequest"]["required"].append("owner"),
        ),
        "POST /things: request body (application/json): field owner added (required)",
    ),
    "request field made required": (
        lambda s: schemas(s)["ThingRequest"]["required"].append("count"),
        "POST /things: request body (application/json): field count is now required",
    ),
    "request type changed": (
        lambda s: request_props(s)["count"].update(type="string"),
        "POST /things: request body (application/json): count: type changed: integer → string",
    ),
    "request type narrowed": (
        lambda s: schemas(s)["Custom"]["properties"]["width"].update(type="string"),
        "POST /things: request body (application/json): size (Custom).width: type changed: integer → string",
    ),
    "maximum lowered": (
        lambda s: request_props(s)["count"].update(maximum=2),
        "POST /things: request body (application/json): count: maximum lowered: 4 → 2",
    ),
    "minimum raised": (
        lambda s: request_props(s)["count"].update(minimum=2),
        "POST /things: request body (application/json): count: minimum raised: 1 → 2",
    ),
    "maxLength lowered": (
        lambda s: request_props(s)["name"].update(maxLength=50),
        "POST /things: request body (application/json): name: maxLength lowered: 100 → 50",
    ),
    "minLength raised": (
        lambda s: request_props(s)["name"].update(minLength=3),
        "POST /things: request body (application/json): name: minLength raised: 1 → 3",
    ),
    "maxItems lowered": (
        lambda s: request_props(s)["tags"].update(maxItems=2),
        "POST /things: request body (application/json): tags: maxItems lowered: 5 → 2",
    ),
    "array item narrowed": (
        lambda s: request_props(s)["tags"]["items"].update(maxLength=10),
        "POST /things: request body (application/json): tags[]: maxLength 10 added",
    ),
    "request enum value removed": (
        lambda s: request_props(s)["format"]["enum"].remove("png"),
        "POST /things: request body (application/json): format: value(s) removed: 'png'",
    ),
    "enum value removed behind oneOf and $ref": (
        lambda s: schemas(s)["Preset"]["enum"].remove("large"),
        "POST /things: request body (application/json): size (Preset): value(s) removed: 'large'",
    ),
    "nested bound behind $ref": (
        lambda s: schemas(s)["Custom"]["properties"]["width"].update(maximum=2048),
        "POST /things: request body (application/json): size (Custom).width: maximum lowered: 4096 → 2048",
    ),
    "oneOf alternative removed": (
        lambda s: request_props(s)["size"]["oneOf"].pop(),
        "POST /things: request body (application/json): size: oneOf Custom removed",
    ),
    "pattern changed": (
        lambda s: request_props(s)["url"].update(pattern="^https://"),
        "POST /things: request body (application/json): url: pattern changed: '^https?://' → '^https://'",
    ),
    "pattern added": (
        lambda s: request_props(s)["name"].update(pattern="^[a-z]+$"),
        "POST /things: request body (application/json): name: pattern '^[a-z]+$' added",
    ),
    "unknown properties refused": (
        lambda s: schemas(s)["Custom"].update(additionalProperties=False),
        "POST /things: request body (application/json): size (Custom): unknown properties are now refused"
        " (additionalProperties: false)",
    ),
    "default changed": (
        lambda s: request_props(s)["count"].update(default=2),
        "POST /things: request body (application/json): count: default changed: 1 → 2",
    ),
    "parameter removed": (
        lambda s: create(s).pop("parameters"),
        "POST /things: header parameter X-Trace removed",
    ),
    "parameter made required": (
        lambda s: create(s)["parameters"][0].update(required=True),
        "POST /things: header parameter X-Trace is now required",
    ),
    "required parameter added": (
        lambda s: create(s)["parameters"].append(
            {"name": "dry_run", "in": "query", "required": True, "schema": {"type": "boolean"}}
        ),
        "POST /things: query parameter dry_run added (required)",
    ),
    "parameter narrowed": (
        lambda s: create(s)["parameters"][0]["schema"].update(maxLength=10),
        "POST /things: header parameter X-Trace: maxLength lowered: 100 → 10",
    ),
    "required request body added": (
        lambda s: s["paths"]["/things/{id}"]["get"].update(
            requestBody={"required": True, "content": {"application/json": {"schema": {}}}}
        ),
        "GET /things/{id}: request body added as required",
    ),
    "response field removed": (
        lambda s: thing(s)["properties"].pop("score"),
        "GET /things/{id}: response 200 (application/json): field score removed",
    ),
    "response field no longer required": (
        lambda s: thing(s)["required"].remove("status"),
        "GET /things/{id}: response 200 (application/json): field status is no longer always present",
    ),
    "response type changed": (
        lambda s: thing(s)["properties"]["score"].update(type="string"),
        "GET /things/{id}: response 200 (application/json): score: type changed: number → string",
    ),
    "response type widened to null": (
        lambda s: thing(s)["properties"]["id"].update(type=["string", "null"]),
        "GET /things/{id}: response 200 (application/json): id: type changed: string → null | string",
    ),
    "response enum value added": (
        lambda s: thing(s)["properties"]["status"]["enum"].append("FAILED"),
        "GET /things/{id}: response 200 (application/json): status: value(s) added: 'FAILED'",
    ),
    "response bound widened": (
        lambda s: thing(s)["properties"]["score"].update(maximum=100),
        "GET /things/{id}: response 200 (application/json): score: maximum raised: 1 → 100",
    ),
    "webhook body field removed": (
        lambda s: thing(s)["properties"].pop("note"),
        "webhook thingDone (POST): request body (application/json): field note removed",
    ),
    "response status code removed": (
        lambda s: create(s)["responses"].pop("402"),
        "POST /things: response 402 removed",
    ),
    "response header removed": (
        lambda s: create(s)["responses"]["429"].pop("headers"),
        "POST /things: response 429: header Retry-After removed",
    ),
    "response header no longer required": (
        lambda s: s["components"]["headers"]["RetryAfter"].update(required=False),
        "POST /things: response 429: header Retry-After is no longer always sent",
    ),
    "response media type removed": (
        lambda s: create(s)["responses"]["202"].update(
            content={"text/plain": {"schema": {"type": "string"}}}
        ),
        "POST /things: response 202: media type application/json removed",
    ),
    "security added": (
        lambda s: s["webhooks"]["thingDone"]["post"].update(security=[{"key": []}]),
        "webhook thingDone (POST): security requirement added",
    ),
}

NOT_BREAKING: dict[str, tuple[Callable[[Spec], object], str]] = {
    "operation added": (
        lambda s: s["paths"]["/things"].update(get={"operationId": "list_things", "responses": {}}),
        "GET /things: operation added (list_things)",
    ),
    "optional request field added": (
        lambda s: request_props(s).update(seed={"type": "integer"}),
        "POST /things: request body (application/json): field seed added (optional)",
    ),
    "request maximum raised": (
        lambda s: request_props(s)["count"].update(maximum=8),
        "POST /things: request body (application/json): count: maximum raised: 4 → 8",
    ),
    "request enum value added": (
        lambda s: request_props(s)["format"]["enum"].append("webp"),
        "POST /things: request body (application/json): format: value(s) added: 'webp'",
    ),
    "request type widened": (
        lambda s: request_props(s)["count"].update(type="number"),
        "POST /things: request body (application/json): count: type changed: integer → number",
    ),
    "request pattern removed": (
        lambda s: request_props(s)["url"].pop("pattern"),
        "POST /things: request body (application/json): url: pattern '^https?://' removed",
    ),
    "optional parameter added": (
        lambda s: create(s)["parameters"].append({"name": "X-Tag", "in": "header", "schema": {}}),
        "POST /things: header parameter X-Tag added (optional)",
    ),
    "response field added": (
        lambda s: thing(s)["properties"].update(eta={"type": "integer"}),
        "GET /things/{id}: response 200 (application/json): field eta added (optional)",
    ),
    "response enum value removed": (
        lambda s: thing(s)["properties"]["status"]["enum"].remove("QUEUED"),
        "GET /things/{id}: response 200 (application/json): status: value(s) removed: 'QUEUED'",
    ),
    "response status code added": (
        lambda s: create(s)["responses"].update({"500": error_response("Internal Server Error")}),
        "POST /things: response 500 added",
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKING))
def test_breaking_change_is_reported(case: str) -> None:
    mutate, expected = BREAKING[case]
    changes = changed(mutate)
    breaking = rendered(c for c in changes if c.breaking)
    assert expected in breaking, f"{case}: expected {expected!r} among the breaking changes {breaking}"


@pytest.mark.parametrize("case", sorted(NOT_BREAKING))
def test_compatible_change_is_listed_but_not_breaking(case: str) -> None:
    mutate, expected = NOT_BREAKING[case]
    changes = changed(mutate)
    assert [str(c) for c in changes if c.breaking] == []
    assert expected in rendered(changes)


def test_a_shared_schema_is_reported_where_it_is_used() -> None:
    changes = rendered(changed(lambda s: thing(s)["properties"].pop("score")))
    assert changes == [
        "POST /things: response 202 (application/json): field score removed",
        "GET /things/{id}: response 200 (application/json): field score removed",
        "webhook thingDone (POST): request body (application/json): field score removed",
    ]


def test_words_and_examples_are_not_changes() -> None:
    def reword(s: Spec) -> None:
        create(s)["summary"] = "Create a thing, now with more words"
        request_props(s)["name"]["description"] = "The name"
        request_props(s)["name"]["examples"] = ["fox"]
        create(s)["responses"]["202"]["description"] = "Accepted"

    assert changed(reword) == []


def test_recursive_schemas_end() -> None:
    def recurse(s: Spec) -> None:
        thing(s)["properties"]["parent"] = {"$ref": "#/components/schemas/Thing"}

    old = base_spec()
    recurse(old)
    new = copy.deepcopy(old)
    thing(new)["properties"].pop("note")
    assert "GET /things/{id}: response 200 (application/json): field note removed" in rendered(
        spec_diff.diff(old, new)
    )


def test_the_real_contract() -> None:
    spec = yaml.safe_load((ROOT / "openapi.yaml").read_text(encoding="utf-8"))
    assert spec_diff.diff(spec, spec) == []
    new = copy.deepcopy(spec)
    del new["paths"]["/boogu-image/v1/boogu-image-request"]["post"]["responses"]["402"]
    new["components"]["schemas"]["TextToImageRequest"]["properties"]["num_images"]["maximum"] = 2
    assert rendered(spec_diff.diff(spec, new)) == [
        "POST /boogu-image/v1/boogu-image-request: request body (application/json): num_images: "
        "maximum lowered: 4 → 2",
        "POST /boogu-image/v1/boogu-image-request: response 402 removed",
    ]


# The version rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "breaking", "passes"),
    [
        ("1.0.0", "1.0.0", False, True),
        ("1.0.0", "1.0.1", False, True),
        ("1.0.0", "1.0.0", True, False),
        ("1.0.0", "1.0.1", True, False),
        ("1.0.0", "1.1.0", True, False),
        ("1.4.2", "2.0.0", True, True),
        ("1.4.2", "3.0.0-rc.1", True, True),
        ("0.3.1", "0.4.0", True, True),
        ("0.3.1", "0.3.2", True, False),
        ("2.0.0", "1.9.0", False, False),
        ("2024-01", "2024-02", True, True),
        ("2024-01", "2024-01", True, False),
    ],
)
def test_breaking_changes_need_a_new_major_version(old: str, new: str, breaking: bool, passes: bool) -> None:
    assert spec_diff.version_verdict(old, new, breaking)[0] is passes


def test_the_failure_says_which_version_to_raise_to() -> None:
    _, why = spec_diff.version_verdict("1.4.2", "1.5.0", True)
    assert "raise it to 2.0.0" in why


# The command line -------------------------------------------------------------------------------


def write(path: Path, spec: Spec) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def breaking_version(version: str) -> Spec:
    spec = base_spec(version)
    del spec["paths"]["/things/{id}"]
    return spec


def test_cli_fails_on_breaking_changes_without_a_new_major(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path / "old.yaml", base_spec("1.0.0"))
    new = write(tmp_path / "new.yaml", breaking_version("1.1.0"))
    assert spec_diff.main(["--old", str(old), "--new", str(new)]) == 1
    out = capsys.readouterr().out
    assert "Breaking changes (1):\n  GET /things/{id}\n    ✗ operation removed (get_thing)" in out
    assert "FAIL" in out
    assert "raise it to 2.0.0" in out


def test_cli_passes_breaking_changes_with_a_new_major(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path / "old.yaml", base_spec("1.0.0"))
    new = write(tmp_path / "new.yaml", breaking_version("2.0.0"))
    assert spec_diff.main(["--old", str(old), "--new", str(new)]) == 0
    out = capsys.readouterr().out
    assert "✗ operation removed (get_thing)" in out
    assert "OK: 1 breaking" in out


def test_cli_passes_without_changes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = write(tmp_path / "old.yaml", base_spec())
    assert spec_diff.main(["--old", str(old), "--new", str(old)]) == 0
    assert "No changes" in capsys.readouterr().out


def test_cli_exits_2_when_a_version_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write(tmp_path / "old.yaml", base_spec())
    (tmp_path / "new.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    assert spec_diff.main(["--old", str(old), "--new", str(tmp_path / "new.yaml")]) == 2
    assert "is not an OpenAPI document" in capsys.readouterr().err
    assert spec_diff.main(["--old", str(old), "--new", str(tmp_path / "missing.yaml")]) == 2


# Which versions, from git -----------------------------------------------------------------------


class Repo:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.spec = root / "openapi.yaml"
        self.git("init", "--quiet")

    def git(self, *args: str) -> str:
        git = shutil.which("git")
        assert git is not None
        config = ["-c", "user.name=Spec Diff", "-c", "user.email=spec-diff@example.invalid"]
        config += ["-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null"]
        result = subprocess.run(
            [git, *config, *args], cwd=self.root, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    def commit(self, spec: Spec, message: str) -> str:
        write(self.spec, spec)
        self.git("add", "openapi.yaml")
        self.git("commit", "--quiet", "-m", message)
        return self.git("rev-parse", "--short", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    return Repo(tmp_path)


def test_unchanged_work_tree_checks_the_last_change_of_the_spec(repo: Repo) -> None:
    repo.commit(base_spec("1.0.0"), "first")
    last = repo.commit(breaking_version("1.0.0"), "second: breaking")
    (repo.root / "other.txt").write_text("later commits that leave the spec alone\n")
    repo.git("add", "other.txt")
    repo.git("commit", "--quiet", "-m", "third")
    old, new = spec_diff.versions_from_git(repo.spec, None)
    assert old.label == f"openapi.yaml before {last}"
    assert new.label.startswith(f"openapi.yaml at {last}")
    assert spec_diff.main(["--spec", str(repo.spec)]) == 1


def test_edited_work_tree_is_checked_against_the_last_commit(repo: Repo) -> None:
    repo.commit(base_spec("1.0.0"), "first")
    last = repo.commit(breaking_version("2.0.0"), "second: breaking, announced")
    assert spec_diff.main(["--spec", str(repo.spec)]) == 0
    edited = breaking_version("2.0.0")
    del edited["webhooks"]
    write(repo.spec, edited)
    old, new = spec_diff.versions_from_git(repo.spec, None)
    assert old.label == f"openapi.yaml at {last} (its last commit)"
    assert new.label == "openapi.yaml (working tree)"
    assert [str(c) for c in spec_diff.diff(old.spec, new.spec)] == [
        "webhook thingDone (POST): webhook removed (thing_done)"
    ]
    assert spec_diff.main(["--spec", str(repo.spec)]) == 1


def test_base_revision_is_compared_with_the_work_tree(repo: Repo) -> None:
    first = repo.commit(base_spec("1.0.0"), "first")
    repo.commit(breaking_version("2.0.0"), "second")
    old, new = spec_diff.versions_from_git(repo.spec, "HEAD~1")
    assert old.label == f"openapi.yaml at HEAD~1 ({first})"
    assert new.label == "openapi.yaml (working tree)"
    with pytest.raises(spec_diff.SpecDiffError, match=r"no openapi\.yaml at 'nonexistent'"):
        spec_diff.versions_from_git(repo.spec, "nonexistent")


def test_a_first_version_has_nothing_to_compare(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    repo.commit(base_spec(), "first")
    with pytest.raises(spec_diff.NothingToCompare, match="first version"):
        spec_diff.versions_from_git(repo.spec, None)
    assert spec_diff.main(["--spec", str(repo.spec)]) == 0
    assert "nothing to compare" in capsys.readouterr().out
