"""Breaking-change check of openapi.yaml against an earlier version of itself.

    python tools/spec_diff.py                   # the last change of openapi.yaml (see below)
    python tools/spec_diff.py --base main~3     # the working tree against openapi.yaml at a revision
    python tools/spec_diff.py --old a.yaml --new b.yaml

Which versions: with `--base REV`, the working tree's openapi.yaml against the one at REV. Without,
against the last commit that touched it, when the working tree has changed it since; and when it has
not (a fresh clone in CI), that commit's openapi.yaml against the version before it, so that the
last change made to the contract is the one checked.

What is breaking: whatever an existing client, written against the old contract, can trip on.
- an operation or webhook removed, or its operationId changed (generated clients name functions by it);
- what clients send (parameters, request bodies) accepted less: a field, parameter or media type
  removed; a field or parameter newly required; a type changed; a range, length, item count, enum,
  const, pattern or format narrowed; unknown properties newly refused; a default changed;
- what clients receive (responses, their headers, webhook bodies) promised less: a status code,
  header, media type or field removed; a field no longer always present; a type changed; a range,
  enum or pattern widened (a generated client rejects a status value it does not know);
- a security requirement added.
Everything else is listed as a change that breaks nothing.

The version rule (semver): breaking changes need `info.version` raised to a new major version
(1.4.2 → 2.0.0; below 1.0.0, a new minor: 0.3.1 → 0.4.0). Then the check passes and lists them for
the changelog; otherwise it fails (exit 1). Exit 2: the versions could not be read.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi.yaml"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
Direction = Literal["request", "response"]

# Bounds that, raised, let through more (max-like) or less (min-like).
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")


@dataclass(frozen=True)
class Change:
    breaking: bool
    where: str  # "POST /path", "webhook requestFinished", or "" for the whole document
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}" if self.where else self.message


@dataclass
class Document:
    """One version of the spec, with $ref resolution inside it."""

    spec: Mapping[str, Any]

    def resolve(self, node: Any) -> tuple[Any, str | None]:
        """The node with local `$ref`s followed (siblings of a 3.1 `$ref` kept), and the last ref."""
        ref = None
        seen: set[str] = set()
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                break
            seen.add(ref)
            target: Any = self.spec
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, Mapping) else None
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            node = {**target, **siblings} if isinstance(target, Mapping) else target
        return node, ref


@dataclass
class Differ:
    old: Document
    new: Document
    changes: list[Change] = field(default_factory=list)

    def note(self, breaking: bool, where: str, message: str) -> None:
        self.changes.append(Change(breaking, where, message))

    # Operations ---------------------------------------------------------------------------------

    def compare(self) -> list[Change]:
        old_ops, new_ops = operations(self.old.spec), operations(self.new.spec)
        for key, (where, old_op, old_path_item) in old_ops.items():
            if key not in new_ops:
                kind = "webhook" if key[0] == "webhook" else "operation"
                self.note(True, where, f"{kind} removed ({old_op.get('operationId', 'no operationId')})")
                continue
            _, new_op, new_path_item = new_ops[key]
            self.operation(where, key[0] == "webhook", old_op, old_path_item, new_op, new_path_item)
        for key, (where, new_op, _) in new_ops.items():
            if key not in old_ops:
                kind = "webhook" if key[0] == "webhook" else "operation"
                self.note(False, where, f"{kind} added ({new_op.get('operationId', 'no operationId')})")
        return self.changes

    def operation(
        self,
        where: str,
        webhook: bool,
        old: Mapping[str, Any],
        old_path_item: Mapping[str, Any],
        new: Mapping[str, Any],
        new_path_item: Mapping[str, Any],
    ) -> None:
        if old.get("operationId") != new.get("operationId"):
            self.note(
                True, where, f"operationId changed: {old.get('operationId')} → {new.get('operationId')}"
            )
        self.security(where, old, new)
        # A webhook's body is what the client receives; an operation's is what it sends.
        sent: Direction = "response" if webhook else "request"
        self.members(
            where, sent, parameters(self.old, old_path_item, old), parameters(self.new, new_path_item, new)
        )
        self.request_body(where, sent, old.get("requestBody"), new.get("requestBody"))
        self.responses(
            where, "request" if webhook else "response", old.get("responses"), new.get("responses")
        )

    def security(self, where: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        before = security(self.old.spec, old)
        after = security(self.new.spec, new)
        if after and not before:
            self.note(True, where, "security requirement added")
        elif before and after and not after <= before:
            alternatives = ", ".join(sorted("+".join(sorted(s)) or "none" for s in after - before))
            self.note(True, where, f"security requirement changed: new alternative(s) {alternatives}")

    def members(
        self,
        where: str,
        direction: Direction,
        old: Mapping[str, tuple[str, Any]],
        new: Mapping[str, tuple[str, Any]],
    ) -> None:
        """Parameters or headers (key → (label, object)), each with `required` and `schema`."""
        sent = direction == "request"
        for key, (label, old_item) in old.items():
            before, _ = self.old.resolve(old_item)
            if key not in new:
                self.note(True, where, f"{label} removed")
                continue
            after, _ = self.new.resolve(new[key][1])
            if sent and after.get("required") and not before.get("required"):
                self.note(True, where, f"{label} is now required")
            if not sent and before.get("required") and not after.get("required"):
                self.note(True, where, f"{label} is no longer always sent")
            self.schema(where, label, direction, before.get("schema"), after.get("schema"))
        for key, (label, new_item) in new.items():
            if key not in old:
                required = bool(self.new.resolve(new_item)[0].get("required"))
                kind = "required" if required else "optional"
                self.note(sent and required, where, f"{label} added ({kind})")

    def request_body(self, where: str, direction: Direction, old_body: Any, new_body: Any) -> None:
        old, _ = self.old.resolve(old_body)
        new, _ = self.new.resolve(new_body)
        if old is None and new is None:
            return
        if new is None:
            self.note(True, where, "request body removed")
            return
        if old is None:
            required = bool(new.get("required"))
            self.note(required, where, f"request body added{' as required' if required else ''}")
            return
        if new.get("required") and not old.get("required"):
            self.note(True, where, "request body is now required")
        self.content(where, "request body", direction, old.get("content"), new.get("content"))

    def responses(self, where: str, direction: Direction, old: Any, new: Any) -> None:
        old = old if isinstance(old, Mapping) else {}
        new = new if isinstance(new, Mapping) else {}
        for code, old_response in old.items():
            label = f"response {code}"
            if code not in new:
                self.note(True, where, f"{label} removed")
                continue
            before, _ = self.old.resolve(old_response)
            after, _ = self.new.resolve(new[code])
            self.members(where, direction, headers(label, before), headers(label, after))
            self.content(where, label, direction, before.get("content"), after.get("content"))
        for code in new:
            if code not in old:
                self.note(False, where, f"response {code} added")

    def content(self, where: str, label: str, direction: Direction, old: Any, new: Any) -> None:
        old = old if isinstance(old, Mapping) else {}
        new = new if isinstance(new, Mapping) else {}
        for media_type, old_media in old.items():
            if media_type not in new:
                self.note(True, where, f"{label}: media type {media_type} removed")
                continue
            self.schema(
                where,
                f"{label} ({media_type})",
                direction,
                old_media.get("schema"),
                new[media_type].get("schema"),
            )
        for media_type in new:
            if media_type not in old:
                self.note(False, where, f"{label}: media type {media_type} added")

    # Schemas ------------------------------------------------------------------------------------

    def schema(
        self,
        where: str,
        label: str,
        direction: Direction,
        old_schema: Any,
        new_schema: Any,
        field_path: str = "",
        visited: frozenset[tuple[str | None, str | None]] = frozenset(),
    ) -> None:
        old, old_ref = self.old.resolve(old_schema)
        new, new_ref = self.new.resolve(new_schema)
        if not isinstance(old, Mapping) or not isinstance(new, Mapping):
            return
        if old_ref is not None and (old_ref, new_ref) in visited:  # a recursive schema: compared once
            return
        visited = visited | {(old_ref, new_ref)}
        at = Where(self, where, f"{label}: {field_path}" if field_path else label, direction)

        self.types(at, types(old), types(new))
        for bound in UPPER_BOUNDS + LOWER_BOUNDS:
            self.bound(at, bound, old.get(bound), new.get(bound))
        self.enums(at, allowed_values(old), allowed_values(new))
        for keyword in ("pattern", "format"):
            before, after = old.get(keyword), new.get(keyword)
            if before == after:
                continue
            if before is None:
                at.narrowed(f"{keyword} {after!r} added")
            elif after is None:
                at.widened(f"{keyword} {before!r} removed")
            else:
                at.changed(f"{keyword} changed: {before!r} → {after!r}")
        if "default" in old and "default" in new and old["default"] != new["default"]:
            # Calls that leave the field out now ask for something else.
            at.narrowed(f"default changed: {old['default']!r} → {new['default']!r}")
        if old.get("additionalProperties") is not False and new.get("additionalProperties") is False:
            at.narrowed("unknown properties are now refused (additionalProperties: false)")

        self.properties(where, label, direction, old, new, field_path, visited)
        if "items" in old and "items" in new:
            self.schema(where, label, direction, old["items"], new["items"], f"{field_path}[]", visited)
        for keyword in ("oneOf", "anyOf", "allOf"):
            self.branches(at, label, keyword, old, new, field_path, visited)

    def types(self, at: Where, before: set[str] | None, after: set[str] | None) -> None:
        if before == after:
            return
        change = f"type changed: {show_types(before)} → {show_types(after)}"
        # `None` is any type; an integer is a number, so integer → number only widens.
        lost = before is None or (after is not None and bool(uncovered(before, after)))
        gained = after is None or (before is not None and bool(uncovered(after, before)))
        if lost and gained:
            at.changed(change)
        elif lost:
            at.narrowed(change)
        else:
            at.widened(change)

    def bound(self, at: Where, name: str, before: Any, after: Any) -> None:
        if before == after or isinstance(before, bool) or isinstance(after, bool):
            return  # booleans: OpenAPI 3.0's exclusiveMaximum flags; not compared
        upper = name in UPPER_BOUNDS
        if before is None:
            at.narrowed(f"{name} {after} added")
        elif after is None:
            at.widened(f"{name} {before} removed")
        elif (after < before) == upper:
            at.narrowed(f"{name} {'lowered' if upper else 'raised'}: {before} → {after}")
        else:
            at.widened(f"{name} {'raised' if upper else 'lowered'}: {before} → {after}")

    def enums(self, at: Where, before: list[Any] | None, after: list[Any] | None) -> None:
        if before == after:
            return
        if before is None:
            at.narrowed(f"values now restricted to {show(after or [])}")
        elif after is None:
            at.widened(f"values no longer restricted to {show(before)}")
        else:
            removed = [v for v in before if v not in after]
            added = [v for v in after if v not in before]
            if removed:
                at.narrowed(f"value(s) removed: {show(removed)}")
            if added:
                at.widened(f"value(s) added: {show(added)}")

    def properties(
        self,
        where: str,
        label: str,
        direction: Direction,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        field_path: str,
        visited: frozenset[tuple[str | None, str | None]],
    ) -> None:
        old_props: Mapping[str, Any] = old.get("properties") or {}
        new_props: Mapping[str, Any] = new.get("properties") or {}
        old_required = set(old.get("required") or ())
        new_required = set(new.get("required") or ())
        request = direction == "request"

        def name_of(name: str) -> str:
            return f"{label}: field {field_path}.{name}" if field_path else f"{label}: field {name}"

        for name, old_prop in old_props.items():
            if name not in new_props:
                self.note(True, where, f"{name_of(name)} removed")
                continue
            if request and name in new_required and name not in old_required:
                self.note(True, where, f"{name_of(name)} is now required")
            if not request and name in old_required and name not in new_required:
                self.note(True, where, f"{name_of(name)} is no longer always present")
            path = f"{field_path}.{name}" if field_path else name
            self.schema(where, label, direction, old_prop, new_props[name], path, visited)
        for name in new_props:
            if name not in old_props:
                required = name in new_required
                kind = "required" if required else "optional"
                self.note(request and required, where, f"{name_of(name)} added ({kind})")

    def branches(
        self,
        at: Where,
        label: str,
        keyword: str,
        old: Mapping[str, Any],
        new: Mapping[str, Any],
        field_path: str,
        visited: frozenset[tuple[str | None, str | None]],
    ) -> None:
        before = {branch_key(branch, i): branch for i, branch in enumerate(old.get(keyword) or [])}
        after = {branch_key(branch, i): branch for i, branch in enumerate(new.get(keyword) or [])}
        # One alternative fewer of oneOf/anyOf lets less through; one constraint fewer of allOf, more.
        fewer, more = (at.widened, at.narrowed) if keyword == "allOf" else (at.narrowed, at.widened)
        for key, branch in before.items():
            if key not in after:
                fewer(f"{keyword} {key} removed")
                continue
            path = f"{field_path} ({key})" if field_path else f"({key})"
            self.schema(at.where, label, at.direction, branch, after[key], path, visited)
        for key in after:
            if key not in before:
                more(f"{keyword} {key} added")


@dataclass(frozen=True)
class Where:
    """A place in a schema, and how its changes count there: narrowing breaks what clients send,
    widening breaks what they receive, and a change that does both breaks either."""

    differ: Differ
    where: str
    at: str
    direction: Direction

    def narrowed(self, what: str) -> None:
        self.differ.note(self.direction == "request", self.where, f"{self.at}: {what}")

    def widened(self, what: str) -> None:
        self.differ.note(self.direction == "response", self.where, f"{self.at}: {what}")

    def changed(self, what: str) -> None:
        self.differ.note(True, self.where, f"{self.at}: {what}")


# Reading a document ----------------------------------------------------------------------------


def operations(
    spec: Mapping[str, Any],
) -> dict[tuple[str, str, str], tuple[str, Mapping[str, Any], Mapping[str, Any]]]:
    """(kind, path or webhook name, method) → (label, operation, its path item)."""
    found: dict[tuple[str, str, str], tuple[str, Mapping[str, Any], Mapping[str, Any]]] = {}
    for kind, section in (("path", "paths"), ("webhook", "webhooks")):
        for name, item in (spec.get(section) or {}).items():
            item, _ = Document(spec).resolve(item)
            if not isinstance(item, Mapping):
                continue
            for method in METHODS:
                operation = item.get(method)
                if isinstance(operation, Mapping):
                    label = (
                        f"{method.upper()} {name}" if kind == "path" else f"webhook {name} ({method.upper()})"
                    )
                    found[(kind, name, method)] = (label, operation, item)
    return found


def parameters(
    document: Document, path_item: Mapping[str, Any], operation: Mapping[str, Any]
) -> dict[str, tuple[str, Any]]:
    """The operation's parameters, its own overriding the path item's: key → (label, parameter)."""
    found: dict[str, tuple[str, Any]] = {}
    for raw in [*(path_item.get("parameters") or []), *(operation.get("parameters") or [])]:
        param, _ = document.resolve(raw)
        if isinstance(param, Mapping) and "name" in param and "in" in param:
            where, name = str(param["in"]), str(param["name"])
            key = f"{where}:{name.lower() if where == 'header' else name}"  # header names ignore case
            found[key] = (f"{where} parameter {name}", raw)
    return found


def headers(label: str, response: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """A response's headers: lower-cased name → (label, header)."""
    found = response.get("headers") or {}
    return {str(name).lower(): (f"{label}: header {name}", header) for name, header in found.items()}


def security(spec: Mapping[str, Any], operation: Mapping[str, Any]) -> set[frozenset[str]]:
    """The alternatives of the effective security requirement; empty when none is needed."""
    requirements = operation.get("security", spec.get("security")) or []
    alternatives = {frozenset(requirement) for requirement in requirements}
    return set() if frozenset() in alternatives else alternatives


def types(schema: Mapping[str, Any]) -> set[str] | None:
    kind = schema.get("type")
    if kind is None:
        return None
    found = {kind} if isinstance(kind, str) else set(kind)
    if schema.get("nullable") is True:  # OpenAPI 3.0
        found.add("null")
    return found


def allowed_values(schema: Mapping[str, Any]) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    values = schema.get("enum")
    return list(values) if isinstance(values, list) else None


def branch_key(branch: Any, index: int) -> str:
    if isinstance(branch, Mapping) and isinstance(branch.get("$ref"), str):
        return str(branch["$ref"]).rsplit("/", 1)[-1]
    if isinstance(branch, Mapping) and isinstance(branch.get("type"), str) and len(branch) == 1:
        return f"type {branch['type']}"
    return f"#{index}"


def show(values: Iterable[Any]) -> str:
    return ", ".join(repr(v) for v in values)


def show_types(kinds: set[str] | None) -> str:
    return " | ".join(sorted(kinds)) if kinds else "any"


def uncovered(kinds: set[str], by: set[str]) -> set[str]:
    """The types of `kinds` that `by` does not allow (an integer is a number)."""
    return {t for t in kinds if t not in by and not (t == "integer" and "number" in by)}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change from `old` to `new`, breaking or not."""
    return Differ(Document(old), Document(new)).compare()


# The version rule ------------------------------------------------------------------------------


def semver(version: Any) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+].*)?", str(version).strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def required_version(old: Any) -> str | None:
    """The smallest version that announces breaking changes after `old` (semver), if it is one."""
    parsed = semver(old)
    if parsed is None:
        return None
    major, minor, _ = parsed
    return f"{major + 1}.0.0" if major > 0 else f"0.{minor + 1}.0"


def version_verdict(old: Any, new: Any, breaking: bool) -> tuple[bool, str]:
    """(passes, why): breaking changes pass only with a new major version (a new minor below 1.0)."""
    before, after = semver(old), semver(new)
    if before is None or after is None:
        raised = str(old) != str(new)
        if breaking and not raised:
            return False, f"info.version {old!r} is unchanged; breaking changes need it raised"
        return True, f"info.version {old!r} → {new!r} (not semver: only a change is required)"
    if after < before:
        return False, f"info.version went down: {old} → {new}"
    if not breaking:
        return True, f"info.version {old} → {new}"
    needed = semver(required_version(old))
    assert needed is not None
    if after >= needed:
        return True, f"info.version raised {old} → {new}, announcing the breaking changes"
    return False, (
        f"info.version {old} → {new} does not announce breaking changes: raise it to "
        f"{required_version(old)} (semver) or undo them"
    )


# Versions from git -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    label: str
    spec: dict[str, Any]


class NothingToCompare(Exception):
    """There is no earlier version of the spec to compare with: not an error."""


class SpecDiffError(Exception):
    """A version of the spec could not be read (exit 2)."""


@dataclass(frozen=True)
class Git:
    """Read-only git in the work tree that holds the spec."""

    cwd: Path

    def __call__(self, *args: str) -> str | None:
        executable = shutil.which("git")
        if executable is None:
            raise SpecDiffError("git is not installed; use --old and --new")
        result = subprocess.run(
            [executable, *args], cwd=self.cwd, capture_output=True, text=True, check=False
        )
        return result.stdout if result.returncode == 0 else None

    def path_of(self, spec: Path) -> str:
        top = self("rev-parse", "--show-toplevel")
        if top is None:
            raise SpecDiffError(f"{self.cwd} is not in a git work tree; use --old and --new")
        return spec.resolve().relative_to(Path(top.strip()).resolve()).as_posix()

    def show(self, revision: str, path: str) -> str | None:
        return self("show", f"{revision}:{path}")

    def short(self, revision: str) -> str:
        return (self("rev-parse", "--short", revision) or revision).strip()


def load(text: str, label: str) -> dict[str, Any]:
    try:
        spec = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecDiffError(f"{label} is not YAML: {exc}") from None
    if not isinstance(spec, dict):
        raise SpecDiffError(f"{label} is not an OpenAPI document")
    return spec


def versions_from_git(spec: Path, base: str | None) -> tuple[Version, Version]:
    """(old, new) as described in the module docstring."""
    if not spec.is_file():
        raise SpecDiffError(f"{spec} does not exist")
    git = Git(spec.resolve().parent)
    path = git.path_of(spec)
    working = spec.read_text(encoding="utf-8")
    current = Version(f"{path} (working tree)", load(working, path))
    if base is not None:
        old_text = git.show(base, path)
        if old_text is None:
            raise SpecDiffError(f"there is no {path} at {base!r}")
        return Version(f"{path} at {base} ({git.short(base)})", load(old_text, f"{path} at {base}")), current
    last = (git("log", "-1", "--format=%H", "--", path) or "").strip()
    if not last:
        raise NothingToCompare(f"{path} has no commit yet")
    last_text = git.show(last, path)
    if last_text is not None and last_text != working:
        return Version(f"{path} at {git.short(last)} (its last commit)", load(last_text, path)), current
    previous = git.show(f"{last}^", path)
    if previous is None:
        if (git("rev-parse", "--is-shallow-repository") or "").strip() == "true":
            raise NothingToCompare(
                f"this clone is shallow and holds no version of {path} before {git.short(last)}"
                " (`git fetch --unshallow` brings them)"
            )
        raise NothingToCompare(f"{git.short(last)} is the first version of {path}")
    return (
        Version(f"{path} before {git.short(last)}", load(previous, f"{path} at {last}^")),
        Version(f"{path} at {git.short(last)} (its last change; the working tree is the same)", current.spec),
    )


# Report ----------------------------------------------------------------------------------------


def report(old: Version, new: Version, changes: list[Change]) -> tuple[bool, list[str]]:
    """(passes, lines to print)."""
    old_version = old.spec.get("info", {}).get("version")
    new_version = new.spec.get("info", {}).get("version")
    breaking = [c for c in changes if c.breaking]
    other = [c for c in changes if not c.breaking]
    passes, why = version_verdict(old_version, new_version, bool(breaking))
    lines = [f"spec_diff: {old.label} [{old_version}] → {new.label} [{new_version}]"]
    for title, group, mark in (("Breaking changes", breaking, "✗"), ("Other changes", other, "•")):
        if not group:
            continue
        lines.append(f"{title} ({len(group)}):")
        places: dict[str, list[Change]] = {}
        for change in group:
            places.setdefault(change.where, []).append(change)
        for place, found in places.items():
            lines.append(f"  {place}")
            lines.extend(f"    {mark} {change.message}" for change in found)
    if not changes:
        lines.append("No changes to the operations, parameters, bodies or answers.")
    verdict = "OK" if passes else "FAIL"
    lines.append(f"spec_diff: {verdict}: {len(breaking)} breaking, {len(other)} other change(s); {why}")
    return passes, lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--base", metavar="REV", help="compare the working tree with openapi.yaml at REV")
    parser.add_argument(
        "--spec", type=Path, default=SPEC, help="the spec in the work tree (default: %(default)s)"
    )
    parser.add_argument("--old", type=Path, help="compare two files instead: the old one ...")
    parser.add_argument("--new", type=Path, help="... and the new one")
    args = parser.parse_args(argv)

    if (args.old is None) != (args.new is None):
        parser.error("--old and --new go together")
    try:
        if args.old is not None and args.new is not None:
            old = Version(str(args.old), load(args.old.read_text(encoding="utf-8"), str(args.old)))
            new = Version(str(args.new), load(args.new.read_text(encoding="utf-8"), str(args.new)))
        else:
            old, new = versions_from_git(args.spec, args.base)
    except NothingToCompare as exc:
        print(f"spec_diff: nothing to compare: {exc}")
        return 0
    except (SpecDiffError, OSError) as exc:
        print(f"spec_diff: {exc}", file=sys.stderr)
        return 2
    passes, lines = report(old, new, diff(old.spec, new.spec))
    print("\n".join(lines))
    return 0 if passes else 1


if __name__ == "__main__":
    sys.exit(main())
