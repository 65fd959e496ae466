"""Image bytes: what type they really are, the file extension that goes with it, and data URIs."""

from __future__ import annotations

import base64
import binascii
import mimetypes
import os
from pathlib import Path

EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "image/gif": ".gif"}
ALIASES = {"image/jpg": "image/jpeg", "image/pjpeg": "image/jpeg"}
SNIFF_BYTES = 16
"""Enough of a file's head to recognise every format in EXTENSIONS."""


def normalize(media_type: str) -> str:
    base = media_type.split(";")[0].strip().lower()
    return ALIASES.get(base, base)


def extension_for(media_type: str) -> str:
    """`.jpg` for image/jpeg and so on; `.bin` for a type nobody knows."""
    kind = normalize(media_type)
    return EXTENSIONS.get(kind) or mimetypes.guess_extension(kind) or ".bin"


def sniff(head: bytes) -> str | None:
    """The media type from a file's magic bytes, whatever a server claimed; None if not a known image."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """(media type, bytes) of a base64 `data:` URI, as sync-mode results carry images."""
    header, comma, payload = uri.partition(",")
    if not header.startswith("data:") or not comma or not header.endswith(";base64"):
        raise ValueError("not a base64 data URI")
    try:
        return header[5:].split(";")[0] or "application/octet-stream", base64.b64decode(
            payload, validate=True
        )
    except binascii.Error as exc:
        raise ValueError(f"bad base64 in data URI: {exc}") from None


def to_data_uri(data: bytes) -> str:
    kind = sniff(data[:SNIFF_BYTES])
    if kind is None:
        raise ValueError("not a JPEG, PNG, WebP or GIF image")
    return f"data:{kind};base64,{base64.b64encode(data).decode('ascii')}"


def image_reference(image: str | os.PathLike[str] | bytes) -> str:
    """What an edit's `image_url` takes: a URL or data URI as is; a local file or bytes as a data URI."""
    if isinstance(image, bytes):
        return to_data_uri(image)
    if isinstance(image, str) and image.startswith(("http://", "https://", "data:")):
        return image
    return to_data_uri(Path(image).read_bytes())


def check_image(
    *, head: bytes, size: int, content_length: str | None, expected_type: str
) -> tuple[str | None, bool]:
    """(what is wrong with a downloaded image or None, whether downloading it again may help).

    `content_length` is the header of an unencoded body; with gzip or the like it counts other bytes.
    """
    if content_length is not None and content_length.isdigit() and int(content_length) != size:
        return f"truncated: {size} of {content_length} bytes arrived", True
    if size == 0:
        return "the body is empty", True
    kind = sniff(head)
    if kind is None:
        return f"not an image (starts with {head[:8]!r})", False
    if kind != normalize(expected_type):
        return f"the gateway promised {expected_type} but the file is {kind}", False
    return None, False
