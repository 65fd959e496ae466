"""Cassettes: recorded exchanges with a gateway, written by the proxy and served by the replay.

The format is vcrpy's YAML cassette (version 1), so vcrpy and pytest-recording read it too; what
replay needs beyond it sits under `x-boogu` in each interaction, which vcrpy ignores:

    version: 1
    interactions:
    - request:
        method: POST
        uri: https://gateway.pixazo.ai/boogu-image/v1/boogu-image-request
        headers: {content-type: [application/json], ocp-apim-subscription-key: ['[redacted]']}
        body: '{"prompt":"a lighthouse","image_size":"square"}'
      response:
        status: {code: 202, message: Accepted}
        headers: {content-type: [application/json], x-contract-violations: ['0']}
        body: {string: '{"request_id":"boogu-image_019d…","status":"QUEUED","polling_url":"…"}'}
      x-boogu: {id: 1, at: '2026-03-31T10:00:00.000Z', path: /boogu-image/v1/boogu-image-request,
                operation: submit_text_to_image, request_id: boogu-image_019d…, violations: []}

One interaction per exchange, appended as it happens, bodies kept byte for byte as text. A body
that is not UTF-8 text (an image) is stored beside the cassette as `<name>.media/<sha256>.<ext>`
and named by `x-boogu.response_body_file` (or `request_body_file`), its `string` left empty.
Keys are never written: secret headers read `[redacted]`, and the caller's key is blanked out of
any body that echoes it.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

from boogu_contract import REDACTED, is_secret, iso_time
from boogu_contract.wire import KEY_HEADER

from ..model import Clock, SystemClock

VERSION = 1
HEADER = f"version: {VERSION}\ninteractions:\n"
_KEY = KEY_HEADER.lower()
Headers = Sequence[tuple[str, str]]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class CassetteError(ValueError):
    """A cassette that cannot be read, with the entry and field at fault."""


@dataclass(frozen=True, slots=True)
class Exchange:
    """One request and its answer, as the client sent and received them."""

    method: str
    uri: str
    """Where the request went (the upstream's URL)."""
    path: str
    """The path and query that the client asked for, which replay matches on."""
    request_headers: Headers
    request_body: bytes
    status: int
    response_headers: Headers
    response_body: bytes
    operation: str | None = None
    request_id: str | None = None
    violations: Sequence[str] = ()
    secrets: Collection[str] = field(default=(), repr=False)
    """The caller's key(s), blanked out wherever they would be written."""


@dataclass(frozen=True, slots=True)
class Recording:
    """One interaction read back from a cassette."""

    index: int
    method: str
    path: str
    request_body: bytes
    has_key: bool
    status: int
    response_headers: Headers
    response_body: bytes
    operation: str | None
    request_id: str | None

    def describe(self) -> str:
        return f"#{self.index} {self.method} {self.path} → {self.status}"


class CassetteWriter:
    """Appends exchanges to a cassette file, one interaction each; safe from several threads."""

    def __init__(self, path: str | Path, *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self.media = self.path.with_name(self.path.stem + ".media")
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(HEADER, encoding="utf-8")

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self._count += 1
            extra: dict[str, Any] = {
                "id": self._count,
                "at": iso_time(self._clock.now()),
                "path": exchange.path,
                "operation": exchange.operation,
                "request_id": exchange.request_id,
                "violations": list(exchange.violations),
            }
            request_headers = _header_map(exchange.request_headers, exchange.secrets)
            response_headers = _header_map(exchange.response_headers, exchange.secrets)
            request_body = self._body(
                exchange.request_body, request_headers, exchange.secrets, extra, "request"
            )
            response_body = self._body(
                exchange.response_body, response_headers, exchange.secrets, extra, "response"
            )
            interaction = {
                "request": {
                    "method": exchange.method,
                    "uri": exchange.uri,
                    "headers": request_headers,
                    "body": request_body,
                },
                "response": {
                    "status": {"code": exchange.status, "message": _reason(exchange.status)},
                    "headers": response_headers,
                    "body": {"string": response_body or ""},
                },
                "x-boogu": extra,
            }
            text = yaml.dump(
                [interaction], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20
            )
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(text)

    def _body(
        self,
        body: bytes,
        headers: dict[str, list[str]],
        secrets: Collection[str],
        extra: dict[str, Any],
        side: str,
    ) -> str | None:
        """The body as text, or None with the bytes written beside the cassette under their hash."""
        if not body:
            return None
        content_type = (headers.get("content-type") or [""])[0].split(";")[0].strip().lower()
        textual = content_type.startswith("text/") or content_type.endswith(("json", "yaml", "xml"))
        if textual:
            try:
                return _blank(body.decode("utf-8"), secrets)
            except UnicodeDecodeError:
                pass
        digest = hashlib.sha256(body).hexdigest()
        extension = mimetypes.guess_extension(content_type) or ".bin"
        self.media.mkdir(parents=True, exist_ok=True)
        target = self.media / f"{digest}{extension}"
        if not target.exists():
            target.write_bytes(body)
        extra[f"{side}_body_file"] = f"{self.media.name}/{target.name}"
        return None


def load(path: str | Path) -> list[Recording]:
    """The interactions of a cassette; CassetteError naming the entry and field when it is malformed."""
    path = Path(path)
    try:
        data = yaml.load(path.read_bytes(), Loader=_Loader)  # noqa: S506 - a safe loader
    except OSError as exc:
        raise CassetteError(f"{path}: cannot read the cassette: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as exc:
        raise CassetteError(f"{path}: not a YAML cassette: {str(exc).splitlines()[0][:300]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list | None):
        raise CassetteError(f"{path}: expected a mapping with `version: 1` and a list `interactions`")
    if data.get("version") != VERSION:
        raise CassetteError(f"{path}: version: expected {VERSION}, got {data.get('version')!r}")
    return [_recording(path, index, entry) for index, entry in enumerate(data["interactions"] or [], 1)]


def _recording(path: Path, index: int, entry: Any) -> Recording:
    where = f"{path}: interaction #{index}"

    def need(node: Any, key: str, kind: type | tuple[type, ...], label: str) -> Any:
        value = node.get(key) if isinstance(node, dict) else None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CassetteError(f"{where}: {label}: expected {_kind_name(kind)}, got {value!r:.80}")
        return value

    request = need(entry, "request", dict, "request")
    response = need(entry, "response", dict, "response")
    extra = entry.get("x-boogu") or {}
    if not isinstance(extra, dict):
        raise CassetteError(f"{where}: x-boogu: expected a mapping")
    method = need(request, "method", str, "request.method").upper()
    uri = need(request, "uri", str, "request.uri")
    status = need(need(response, "status", dict, "response.status"), "code", int, "response.status.code")
    if not 100 <= status <= 599:
        raise CassetteError(f"{where}: response.status.code: expected 100 to 599, got {status}")
    request_headers = _headers_of(request.get("headers") or {}, f"{where}: request.headers")
    response_headers = _headers_of(response.get("headers") or {}, f"{where}: response.headers")
    body = response.get("body") or {}
    if not isinstance(body, dict):
        raise CassetteError(f"{where}: response.body: expected a mapping with `string`")
    parts = urlsplit(uri)
    asked = extra.get("path") or (parts.path + (f"?{parts.query}" if parts.query else ""))
    return Recording(
        index=index,
        method=method,
        path=str(asked),
        request_body=_read_body(path, where, request.get("body"), extra.get("request_body_file")),
        has_key=any(name.lower() == _KEY and value for name, value in request_headers),
        status=status,
        response_headers=response_headers,
        response_body=_read_body(path, where, body.get("string"), extra.get("response_body_file")),
        operation=extra.get("operation") if isinstance(extra.get("operation"), str) else None,
        request_id=extra.get("request_id") if isinstance(extra.get("request_id"), str) else None,
    )


def _read_body(cassette: Path, where: str, text: Any, file: Any) -> bytes:
    if file is not None:
        if not isinstance(file, str):
            raise CassetteError(f"{where}: body file: expected a relative path")
        target = (cassette.parent / file).resolve()
        if cassette.parent.resolve() not in target.parents:
            raise CassetteError(f"{where}: body file {file!r} is outside the cassette's folder")
        try:
            return target.read_bytes()
        except OSError as exc:
            raise CassetteError(f"{where}: body file {file!r}: {exc.strerror or exc}") from None
    if text is None:
        return b""
    if isinstance(text, bytes):  # vcrpy writes !!binary for bodies it could not decode
        return text
    if not isinstance(text, str):
        raise CassetteError(f"{where}: body: expected text, got {type(text).__name__}")
    return text.encode("utf-8")


def _headers_of(node: Any, where: str) -> list[tuple[str, str]]:
    if not isinstance(node, dict):
        raise CassetteError(f"{where}: expected a mapping of names to lists of values")
    headers = []
    for name, values in node.items():
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str | int):
                raise CassetteError(f"{where}: {name}: expected text values")
            headers.append((str(name), str(value)))
    return headers


def _header_map(headers: Headers, secrets: Collection[str]) -> dict[str, list[str]]:
    mapped: dict[str, list[str]] = {}
    for name, value in headers:
        lowered = name.lower()
        mapped.setdefault(lowered, []).append(
            REDACTED if is_secret(lowered) and value else _blank(value, secrets)
        )
    return mapped


def _blank(text: str, secrets: Collection[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {dict: "a mapping", str: "text", int: "an integer"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(names.get(k, k.__name__) for k in kinds)


Defaults = Callable[[str, str], Mapping[str, Any]]
"""The body defaults of the operation at (method, path): omitting one is sending it."""


def no_defaults(method: str, path: str) -> Mapping[str, Any]:
    return {}


def request_document(body: bytes, defaults: Mapping[str, Any]) -> Any:
    """A JSON body as the document it means: defaults filled in, 4.0 the same number as 4; else the bytes."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(document, dict):
        document = {**defaults, **document}
    return _plain_numbers(document)


def _plain_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _canonical(document: Any) -> bytes:
    return document if isinstance(document, bytes) else orjson.dumps(document, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True, slots=True)
class Miss:
    """No recording answers a request: the nearest one, and how it differs."""

    closest: Recording | None
    difference: str

    def message(self, method: str, path: str) -> str:
        if self.closest is None:
            return f"No recorded exchange matches {method} {path}: the cassette is empty."
        return (
            f"No recorded exchange matches {method} {path}; the closest recording is "
            f"{self.closest.describe()}, which differs in {self.difference}."
        )


class Matcher:
    """Picks the recording that answers a request, deterministically.

    A request matches on method, path (so a status call on its request id), JSON body (key order,
    spacing and omitted defaults aside) and whether it carried a key. Several recordings of one
    request (the polls of a job, a submit repeated) answer in their recorded order; after the last,
    the last answers again.
    """

    def __init__(self, recordings: Sequence[Recording], defaults: Defaults = no_defaults) -> None:
        self.recordings = list(recordings)
        self._defaults = defaults
        self._by_key: dict[tuple[str, str, bytes, bool], list[Recording]] = {}
        for recording in self.recordings:
            key = self._key(recording.method, recording.path, recording.request_body, recording.has_key)
            self._by_key.setdefault(key, []).append(recording)
        self._served: dict[tuple[str, str, bytes, bool], int] = {}
        self._lock = threading.Lock()

    def match(self, method: str, path: str, body: bytes, has_key: bool) -> Recording | Miss:
        key = self._key(method.upper(), path, body, has_key)
        candidates = self._by_key.get(key)
        if not candidates:
            return self._closest(method.upper(), path, body, has_key)
        with self._lock:
            served = self._served.get(key, 0)
            self._served[key] = served + 1
        return candidates[min(served, len(candidates) - 1)]

    def _key(self, method: str, path: str, body: bytes, has_key: bool) -> tuple[str, str, bytes, bool]:
        return method, path, _canonical(request_document(body, self._defaults(method, path))), has_key

    def _closest(self, method: str, path: str, body: bytes, has_key: bool) -> Miss:
        """The recording with the fewest differences, a different method or path weighing most."""
        best: tuple[int, Recording, str] | None = None
        for recording in self.recordings:
            differences = []
            if recording.method != method:
                differences.append(f"method (recorded {recording.method})")
            if recording.path != path:
                differences.append(f"path (recorded {recording.path})")
            if recording.has_key != has_key:
                differences.append(
                    "the key header (recorded " + ("with" if recording.has_key else "without") + ")"
                )
            defaults = self._defaults(method, path)
            differences += _body_differences(
                request_document(recording.request_body, defaults), request_document(body, defaults)
            )
            score = (1000 if recording.method != method else 0) + (100 if recording.path != path else 0)
            score += len(differences)
            if best is None or score < best[0]:
                best = (score, recording, "; ".join(differences) or "nothing")
        return Miss(None, "") if best is None else Miss(best[1], best[2])


def _body_differences(old: Any, new: Any) -> list[str]:
    if _canonical(old) == _canonical(new):
        return []
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return ["the body"]
    return [
        f"body /{name} (recorded {old.get(name, '(absent)')!r:.60}, asked {new.get(name, '(absent)')!r:.60})"
        for name in sorted(set(old) | set(new))
        if _canonical(old.get(name)) != _canonical(new.get(name))
    ]
