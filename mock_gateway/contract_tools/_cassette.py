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

(shown as YAML; the writer writes each interaction as one line of compact JSON, `- {"request": ...}`,
which YAML reads as the same flow mapping and the loader reads with orjson, see `_json_line`).
One interaction per exchange, appended as it happens, bodies kept byte for byte as text. A body
that is not UTF-8 text (an image) is stored beside the cassette as `<name>.media/<sha256>.<ext>`
and named by `x-boogu.response_body_file` (or `request_body_file`), its `string` left empty.
Keys are never written: secret headers read `[redacted]`, and the caller's credentials (`Exchange.secrets`)
are blanked out of any header or body, media files included, that echoes them (whole values only when
shorter than `MIN_SECRET_CHARS`). The proxy gives `uri` and `path` with their credentials redacted.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import mimetypes
import os
import re
import reprlib
import stat
import threading
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import yaml

from boogu_contract import iso_time
from boogu_contract._files import SAFE_LOADER
from boogu_contract._json import within_depth
from boogu_contract._redact import blank_secrets, redact_header
from boogu_contract.wire import KEY_HEADER

from ..model import Clock, SystemClock
from ..model._journal import truncated

VERSION = 1
HEADER = f"version: {VERSION}\ninteractions:\n"
_KEY = KEY_HEADER.lower()
Headers = Sequence[tuple[str, str]]

_Dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

MAX_CASSETTE_BYTES = 64 * 1024 * 1024
MAX_MEDIA_BYTES = 32 * 1024 * 1024
"""A media file's budget: the proxy's default `--max-body-bytes`, the largest body it records."""
MAX_MEDIA_TOTAL_BYTES = 512 * 1024 * 1024
"""All of one cassette's media files together."""
MAX_DEPTH = 32
"""Nesting levels of the YAML; an interaction needs 7."""
MAX_SCALAR_CHARS = 64
"""The longest integer, number, date or the like (text has no such limit)."""
EXCERPT_CHARS = 200
"""Characters of a request path or other caller's value that logs and answers show."""


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
            line = _json_line(interaction)
            if line is None:  # a value that YAML would read otherwise than JSON: block YAML
                line = yaml.dump(
                    [interaction], Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1 << 20
                ).encode("utf-8")
            with self.path.open("ab") as handle:
                handle.write(line)

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
                return blank_secrets(body.decode("utf-8"), secrets)
            except UnicodeDecodeError:
                pass
        body = blank_secrets(body, secrets)
        digest = hashlib.sha256(body).hexdigest()
        extension = mimetypes.guess_extension(content_type) or ".bin"
        self.media.mkdir(parents=True, exist_ok=True)
        target = self.media / f"{digest}{extension}"
        if not target.exists():
            target.write_bytes(body)
        extra[f"{side}_body_file"] = f"{self.media.name}/{target.name}"
        return None


def load(path: str | Path) -> list[Recording]:
    """The interactions of a cassette; CassetteError naming the entry and field when it is malformed.

    Read within budgets, whoever wrote the file: its size and each media file's are checked before
    reading, only regular files are opened, YAML aliases are refused (a 1 KB "billion laughs" would
    otherwise expand to gigabytes), and each media file is read once however many entries name it.
    """
    path = Path(path)
    media = _MediaFiles(path)
    data = _read_regular(path, MAX_CASSETTE_BYTES, f"{path}: the cassette")
    with _collector_paused():
        top = _parse_json_lines(data, lambda index, entry: _recording(path, index, entry, media))
        if top is None:  # not (only) the writer's JSON lines: the YAML parser, at several times the cost
            top = _parse(data, path, lambda index, entry: _recording(path, index, entry, media))
    if not isinstance(top, dict) or not isinstance(top.get("interactions"), list | None):
        raise CassetteError(f"{path}: expected a mapping with `version: 1` and a list `interactions`")
    if top.get("version") != VERSION:
        raise CassetteError(f"{path}: version: expected {VERSION}, got {_shown(top.get('version'))}")
    return top["interactions"] or []


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a load or an index builds its objects (none cyclic):
    each of its full passes walks all that is built so far, two thirds of a large load's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_HEADER_BYTES = HEADER.encode()
_NOT_JSON_ALIKE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]|\xef\xbb\xbf|\xef\xbf[\xbe\xbf]")
"""Characters of orjson's output that YAML reads otherwise: not YAML text, or a line break."""


def _json_line(interaction: dict[str, Any]) -> bytes | None:
    """The interaction as the cassette line `- {JSON}`, or None when YAML would read it otherwise.

    Compact JSON is a YAML flow mapping, so vcrpy reads the line as it reads block YAML; and the
    loader reads it with orjson (`_parse_json_lines`), about ten times faster than libyaml's events.
    """
    try:
        text = orjson.dumps(interaction)
    except (TypeError, orjson.JSONEncodeError):
        return None
    return None if _NOT_JSON_ALIKE.search(text) else b"- " + text + b"\n"


def _parse_json_lines(data: bytes, interaction: Callable[[int, Any], Recording]) -> Any:
    """The cassette as `_parse` gives it, when it is the writer's header and `_json_line`s only; else None.

    A line is taken only if it is exactly orjson's output for what orjson reads from it, holds nothing
    that YAML reads otherwise and nests within `MAX_DEPTH`: then YAML means the same, without aliases,
    tags or numbers over `MAX_SCALAR_CHARS` (orjson reads 64-bit integers only), so every budget of
    `_parse` holds. Anything else, wherever it stands, sends the whole document to `_parse`.
    """
    if not data.startswith(_HEADER_BYTES) or _NOT_JSON_ALIKE.search(data):
        return None
    recordings: list[Recording] = []
    start, end = len(_HEADER_BYTES), len(data)
    while start < end:
        stop = data.find(b"\n", start)
        stop = end if stop < 0 else stop
        line = data[start + 2 : stop]
        if stop == start:  # a blank line
            start += 1
            continue
        if not data.startswith(b"- {", start):
            return None
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        levels = MAX_DEPTH - 2  # under the top mapping and its `interactions` list
        if orjson.dumps(entry) != line or (
            line.count(b"{") + line.count(b"[") > levels and _deeper_than(entry, levels)
        ):
            return None
        try:
            recordings.append(interaction(len(recordings) + 1, entry))
        except CassetteError:  # said as YAML reads it (`1e+20` is text there, a float here)
            return None
        start = stop + 1
    return {"version": VERSION, "interactions": recordings or None}


def _deeper_than(value: Any, levels: int) -> bool:
    """Whether `value` nests more than `levels` mappings and lists (stopping there, whatever its depth)."""
    if type(value) is dict:
        value = list(value.values())
    elif type(value) is not list:
        return False
    return levels <= 0 or any(_deeper_than(item, levels - 1) for item in value)


class _Malformed(Exception):
    """A value refused while parsing, before `_parse` says where it stands."""


_NO_KEY = object()
_TAG = "tag:yaml.org,2002:"
_TEXT, _BINARY = _TAG + "str", _TAG + "binary"
_SCALAR_TAGS = frozenset(_TAG + name for name in ("null", "bool", "int", "float", "timestamp", "binary"))
_COLLECTION_TAGS = frozenset({None, "!", _TAG + "map", _TAG + "seq"})


def _parse(data: bytes, path: Path, interaction: Callable[[int, Any], Recording]) -> Any:
    """The YAML document, built from libyaml's events: no alias, tag or depth beyond the budget.

    PyYAML's own loader builds a node graph (aliases shared) and then the objects, at several times
    the cost; this builds the objects at once, and hands each entry of `interactions` to
    `interaction` as soon as it is complete, so that only one entry is ever held as raw YAML.
    """
    parser = SAFE_LOADER(data)
    stack: list[list[Any]] = []  # [the mapping or list being built, the key its next value goes to]
    top: Any = None
    documents = 0
    try:
        while True:
            event = parser.get_event()  # type: ignore[no-untyped-call]  # (untyped in yaml-stubs)
            kind = type(event)
            if kind is yaml.ScalarEvent:  # most are quoted text, read without a call
                value = event.value if event.tag is None and not event.implicit[0] else _scalar(parser, event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                if event.tag not in _COLLECTION_TAGS:
                    raise _Malformed(f"the tag {event.tag} is not allowed")
                if len(stack) >= MAX_DEPTH:
                    raise _Malformed(f"not a YAML cassette: nested deeper than {MAX_DEPTH} levels")
                stack.append([{} if kind is yaml.MappingStartEvent else [], _NO_KEY])
                continue
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                value = stack.pop()[0]
            elif kind is yaml.AliasEvent:
                raise _Malformed(f"YAML aliases (*{event.anchor}) are not allowed in a cassette")
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _Malformed("a cassette is one YAML document")
                continue
            elif kind is yaml.StreamEndEvent or event is None:
                return top
            else:
                continue
            if not stack:
                top = value
                continue
            frame = stack[-1]
            container = frame[0]
            if type(container) is list:
                if len(stack) == 2 and stack[0][1] == "interactions":
                    value = interaction(len(container) + 1, value)
                container.append(value)
            elif frame[1] is _NO_KEY:
                if type(value) is dict or type(value) is list:
                    raise _Malformed("a mapping key must be a scalar")
                frame[1] = value
            else:
                container[frame[1]] = value
                frame[1] = _NO_KEY
    except _Malformed as exc:
        raise CassetteError(f"{path}: {_location(stack)}: {exc}") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0][:300]
        raise CassetteError(f"{path}: not a YAML cassette: {first} ({_location(stack)})") from None
    finally:
        parser.dispose()


def _scalar(parser: yaml.SafeLoader, event: yaml.ScalarEvent) -> Any:
    """Text as is; other YAML types through PyYAML's safe constructors, short values only (a
    5,000-digit integer or a 100,000-part sexagesimal one costs seconds to convert)."""
    tag = event.tag
    if tag is None or tag == "!":
        tag = _plain_tag(event.value) if event.implicit[0] else _TEXT
    if tag == _TEXT:
        return event.value
    kind = tag.removeprefix(_TAG)
    if tag not in _SCALAR_TAGS:
        raise _Malformed(f"the tag {tag} is not allowed")
    if tag != _BINARY and len(event.value) > MAX_SCALAR_CHARS:
        raise _Malformed(f"{len(event.value)} characters, over {MAX_SCALAR_CHARS} for the type {kind}")
    try:
        return parser.yaml_constructors[tag](parser, yaml.ScalarNode(tag, event.value))
    except (ValueError, ArithmeticError, yaml.YAMLError):
        raise _Malformed(f"not a valid {kind}: {_shown(event.value)}") from None


@functools.lru_cache(maxsize=4096)
def _plain_tag(value: str) -> str:
    """The type YAML 1.1 gives an unquoted scalar; cached, as cassettes repeat names and values."""
    return str(_RESOLVER.resolve(yaml.ScalarNode, value, (True, False)))  # type: ignore[no-untyped-call]


_RESOLVER = yaml.resolver.Resolver()


def _location(stack: list[list[Any]]) -> str:
    """Where the value being built stands: `interaction #3: response.headers.date[0]`."""
    steps = [
        f"[{len(container)}]"
        if type(container) is list
        else "." + ("(a key)" if key is _NO_KEY else excerpt(str(key)))
        for container, key in stack
    ]
    if steps[:1] == [".interactions"] and steps[1:2] and steps[1].startswith("["):
        field = "".join(steps[2:]).lstrip(".")
        return f"interaction #{int(steps[1][1:-1]) + 1}" + (f": {field}" if field else "")
    return "".join(steps).lstrip(".") or "the top level"


def _recording(path: Path, index: int, entry: Any, media: _MediaFiles) -> Recording:
    where = f"{path}: interaction #{index}"
    request = _field(where, entry, "request", dict)
    response = _field(where, entry, "response", dict)
    extra = _field(where, entry, "x-boogu", dict, {})
    method = _field(where, request, "method", str, label="request.method").upper()
    uri = _field(where, request, "uri", str, label="request.uri")
    status_of = _field(where, response, "status", dict, label="response.status")
    status = _field(where, status_of, "code", int, label="response.status.code")
    if not 100 <= status <= 599:
        raise CassetteError(f"{where}: response.status.code: expected 100 to 599, got {status}")
    if status < 200:
        raise CassetteError(f"{where}: response.status.code: an interim {status} is no answer to replay")
    request_headers = _headers_of(request.get("headers") or {}, f"{where}: request.headers")
    response_headers = _headers_of(response.get("headers") or {}, f"{where}: response.headers", wire=True)
    body = _field(where, response, "body", dict, {}, label="response.body")
    response_body = media.body(where, "response.body.string", body.get("string"), extra, "response")
    if response_body and status in (204, 304):
        raise CassetteError(f"{where}: response.body: a {status} answer has no body")
    asked = _field(where, extra, "path", str, None, label="x-boogu.path")
    if asked is None:
        try:
            parts = urlsplit(uri)
        except ValueError as exc:  # `http://[host/x`: an IPv6 bracket never closed, and the like
            raise CassetteError(f"{where}: request.uri: {excerpt(uri)!r} is no URL ({exc})") from None
        asked = parts.path + (f"?{parts.query}" if parts.query else "")
    return Recording(
        index=index,
        method=method,
        path=asked,
        request_body=media.body(where, "request.body", request.get("body"), extra, "request"),
        has_key=any(name.lower() == _KEY and value for name, value in request_headers),
        status=status,
        response_headers=response_headers,
        response_body=response_body,
        operation=_field(where, extra, "operation", str, None, label="x-boogu.operation"),
        request_id=_field(where, extra, "request_id", str, None, label="x-boogu.request_id"),
    )


_REQUIRED = object()


def _field(where: str, node: Any, key: str, kind: type, default: Any = _REQUIRED, label: str = "") -> Any:
    """`node[key]`, of `kind` (or `default` when absent or null, if there is one)."""
    value = node.get(key) if isinstance(node, dict) else None
    if value is None and default is not _REQUIRED:
        return default
    if type(value) is not kind:
        raise CassetteError(f"{where}: {label or key}: expected {_KINDS[kind]}, got {_shown(value)}")
    return value


class _MediaFiles:
    """The body files of one cassette: inside its folder, regular, within budget, each read once."""

    def __init__(self, cassette: Path) -> None:
        self._folder = cassette.parent.resolve()
        self._read: dict[Path, bytes] = {}
        self._left = MAX_MEDIA_TOTAL_BYTES

    def body(self, where: str, label: str, text: Any, extra: dict[str, Any], side: str) -> bytes:
        """A body: the file `x-boogu.<side>_body_file` names, else the text (or vcrpy's !!binary)."""
        file = extra.get(f"{side}_body_file")
        if file is not None:
            return self._file(f"{where}: x-boogu.{side}_body_file", file)
        if text is None or isinstance(text, bytes):
            return text or b""
        if not isinstance(text, str):
            raise CassetteError(f"{where}: {label}: expected text, got {_shown(text)}")
        return text.encode("utf-8", "surrogatepass")

    def _file(self, where: str, file: Any) -> bytes:
        if not isinstance(file, str):
            raise CassetteError(f"{where}: expected a relative path, got {_shown(file)}")
        target = (self._folder / file).resolve()
        if self._folder not in target.parents:
            raise CassetteError(f"{where}: {file!r} is outside the cassette's folder")
        if target not in self._read:
            limit = min(MAX_MEDIA_BYTES, self._left)
            self._read[target] = _read_regular(target, limit, f"{where}: {file!r}")
            self._left -= len(self._read[target])
        return self._read[target]


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; a FIFO or device is refused unread
    (opened without blocking, so that a FIFO with no writer cannot hang the load)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise CassetteError(f"{what}: cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise CassetteError(f"{what}: not a regular file")
        if info.st_size > limit:
            raise CassetteError(f"{what}: {info.st_size} bytes, over the budget of {limit}")
        data = handle.read(min(limit, info.st_size) + 1)  # read(n) allocates n bytes at once
    if len(data) > limit:
        raise CassetteError(f"{what}: grew past the budget of {limit} bytes while read")
    return data


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
"""What HTTP/1.1 can carry in a header value: no CR, LF or other control character, latin-1 only."""


def _headers_of(node: Any, where: str, *, wire: bool = False) -> list[tuple[str, str]]:
    """Header pairs; `wire` ones (to be sent) must be valid HTTP, else uvicorn fails on the answer."""
    if not isinstance(node, dict):
        raise CassetteError(f"{where}: expected a mapping of names to lists of values")
    headers = []
    for name, values in node.items():
        for value in values if isinstance(values, list) else [values]:
            if not isinstance(value, str | int) or isinstance(value, bool):
                raise CassetteError(f"{where}: {excerpt(str(name))}: expected text values")
            if wire and not (_TOKEN.fullmatch(str(name)) and _FIELD_VALUE.fullmatch(str(value))):
                raise CassetteError(
                    f"{where}: {excerpt(str(name))}: not a valid HTTP header "
                    f"(CR, LF or another control or non-latin-1 character): {_shown(value)}"
                )
            headers.append((str(name), str(value)))
    return headers


_KINDS = {dict: "a mapping", str: "text", int: "an integer"}
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80


def _shown(value: Any) -> str:
    """A value as an error shows it: long text and large structures cut."""
    return _REPR.repr(value)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a long value, marked: what logs and answers show of what callers send."""
    return text if len(text) <= limit else truncated(text[:limit], len(text))


def _header_map(headers: Headers, secrets: Collection[str]) -> dict[str, list[str]]:
    mapped: dict[str, list[str]] = {}
    for name, value in headers:
        lowered = name.lower()
        mapped.setdefault(lowered, []).append(
            blank_secrets(redact_header(lowered, value), secrets) if value else value
        )
    return mapped


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


Defaults = Callable[[str, str], Mapping[str, Any]]
"""The body defaults of the operation at (method, path): omitting one is sending it."""


def no_defaults(method: str, path: str) -> Mapping[str, Any]:
    return {}


def request_document(body: bytes, defaults: Mapping[str, Any]) -> Any:
    """A JSON body as the document it means: defaults filled in, 4.0 the same number as 4; else the
    bytes, as for JSON nested deeper than `MAX_JSON_DEPTH`, which the walk here would take past Python's
    recursion limit (orjson reads 1,024 levels)."""
    try:
        document = within_depth(orjson.loads(body), body)
    except ValueError:  # not JSON (orjson.JSONDecodeError is a ValueError), or too deep
        return body
    if isinstance(document, dict):
        document = {**defaults, **document}
    return _plain_numbers(document)


def _plain_numbers(value: Any) -> Any:
    """4.0 as 4, but within the 64 bits that orjson writes: a float stands for a larger integer."""
    if isinstance(value, float) and value.is_integer() and -(2**63) <= value < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {key: _plain_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(item) for item in value]
    return value


def _canonical(document: Any) -> bytes:
    """The document's text, in a copy of its own size: the index keeps one for each recorded body, and
    orjson's output holds a 4 KiB buffer whatever its length (a cassette of 100,000 submits: 400 MB)."""
    if isinstance(document, bytes):
        return document
    return bytes(memoryview(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)))


@dataclass(frozen=True, slots=True)
class Miss:
    """No recording answers a request: the nearest one, and how it differs."""

    closest: Recording | None
    difference: str

    def message(self, method: str, path: str) -> str:
        """Paths cut to an excerpt: callers send them, and cassettes can hold long ones."""
        asked = f"{excerpt(method)} {excerpt(path)}"
        if self.closest is None:
            return f"No recorded exchange matches {asked}: the cassette is empty."
        return (
            f"No recorded exchange matches {asked}; the closest recording is "
            f"{excerpt(self.closest.describe())}, which differs in {excerpt(self.difference)}."
        )


NEAR_CANDIDATES = 32
"""Recordings compared to an unmatched request, at most, so that a miss costs the same in any cassette."""
NEAR_BODY_BYTES = 64 * 1024
"""Recorded request bodies up to this size are compared field by field for a miss; larger ones whole."""


def _near_keys(method: str, path: str) -> list[tuple[str, ...]]:
    """The groups to look for the closest recording in, nearest first: the same method and path, the
    same method and parent path (a status call on another request id), the method, the path, any."""
    parent = path.partition("?")[0].rpartition("/")[0]
    return [("=", method, path), ("/", method, parent), ("m", method), ("p", path), ()]


class Matcher:
    """Picks the recording that answers a request, deterministically.

    A request matches on method, path (so a status call on its request id), JSON body (key order,
    spacing and omitted defaults aside) and whether it carried a key. Several recordings of one
    request (the polls of a job, a submit repeated) answer in their recorded order; after the last,
    the last answers again. Both a match and a miss are lookups in indexes built here, never a scan
    of the cassette: a miss compares the request with the first `NEAR_CANDIDATES` recordings of the
    nearest group that has any (see `_near_keys`).
    """

    def __init__(self, recordings: Sequence[Recording], defaults: Defaults = no_defaults) -> None:
        self.recordings = list(recordings)
        self._defaults = defaults
        self._by_key: dict[tuple[str, str, bytes, bool], list[Recording]] = {}
        self._near: dict[tuple[str, ...], list[Recording]] = {}
        with _collector_paused():
            for recording in self.recordings:
                key = self._key(recording.method, recording.path, recording.request_body, recording.has_key)
                self._by_key.setdefault(key, []).append(recording)
                for near in _near_keys(recording.method, recording.path):
                    group = self._near.setdefault(near, [])
                    if len(group) < NEAR_CANDIDATES:
                        group.append(recording)
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
        if not body:  # most requests (every poll): nothing to parse
            return method, path, body, has_key
        return method, path, _canonical(request_document(body, self._defaults(method, path))), has_key

    def _closest(self, method: str, path: str, body: bytes, has_key: bool) -> Miss:
        """The recording with the fewest differences, a different method or path weighing most."""
        group = next((self._near[near] for near in _near_keys(method, path) if near in self._near), [])
        defaults = self._defaults(method, path)
        asked = request_document(body, defaults)
        best: tuple[int, Recording, str] | None = None
        for recording in group:
            differences = []
            if recording.method != method:
                differences.append(f"method (recorded {recording.method})")
            if recording.path != path:
                differences.append(f"path (recorded {recording.path})")
            if recording.has_key != has_key:
                differences.append(
                    "the key header (recorded " + ("with" if recording.has_key else "without") + ")"
                )
            if len(recording.request_body) <= NEAR_BODY_BYTES:
                recorded = request_document(recording.request_body, defaults)
                differences += _body_differences(recorded, asked)
            elif recording.request_body != body:
                differences.append("the body")
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
