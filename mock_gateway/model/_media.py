"""The mock gateway's fake image generator: real, deterministic images of the requested size and format.

Nothing here is a model. A text-to-image render paints an abstract landscape (a gradient sky, a glow,
a sun and rolling hills) whose colours and layout come from a hash of the request; an edit blends the
input image with such a picture, so the output visibly derives from the input. The same spec gives the
same bytes: all randomness comes from SHAKE-256 of the parameters, JPEG quality and PNG settings are
fixed, and no metadata (timestamps, EXIF, ICC profiles) is written.

Painting happens on a canvas of at most ``_CANVAS_LONG_SIDE`` pixels on the long side (shapes drawn at
twice that and halved, for antialiased edges), then one bilinear resize to the requested size: the cost
of a render is that resize plus the encoding, a few ms at 1024x1024 (see the ``render`` docstring).
"""

from __future__ import annotations

import base64
import binascii
import colorsys
import hashlib
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args

from PIL import Image, ImageDraw

OutputFormat = Literal["jpeg", "png"]

PRESET_SIZES: Final[dict[str, tuple[int, int]]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
"""The ``image_size`` presets, as (width, height)."""

MEDIA_TYPES: Final[dict[str, str]] = {"jpeg": "image/jpeg", "png": "image/png"}
"""Content type of each ``output_format``."""

EXTENSIONS: Final[dict[str, str]] = {"jpeg": "jpeg", "png": "png"}
"""File extension (without the dot) of each ``output_format``, for URLs like ``output_0.jpeg``."""

MAX_SIDE: Final = 4096
"""Largest width or height of a custom ``image_size``, as in the contract."""

MAX_SOURCE_PIXELS: Final = 40_000_000
"""Largest input image accepted for an edit (width x height); larger ones are refused unread."""

JPEG_QUALITY: Final = 85
# zlib level 1: Pillow's default 6 gives smaller files but takes far longer, and these images are throwaway.
PNG_COMPRESS_LEVEL: Final = 1

_CANVAS_LONG_SIDE: Final = 256
_SKY_LONG_SIDE: Final = 64
_SOURCE_FORMATS: Final = ("JPEG", "PNG", "WEBP", "GIF", "AVIF")  # JPEG also opens cameras' MPO files
_NOT_AN_IMAGE: Final = "image_url: the image is not a JPG, PNG, WebP, GIF or AVIF file"
_DATA_URI: Final = re.compile(
    r"data:(?P<type>[^;,]*)(?P<params>(?:;[^;,]*)*),(?P<data>.*)", re.DOTALL | re.IGNORECASE
)
_WHITESPACE: Final = re.compile(rb"\s+")


@dataclass(frozen=True)
class RenderSpec:
    """Everything that determines the rendered bytes."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    output_format: OutputFormat
    seed: int
    num_images: int
    guidance_scale: float
    num_inference_steps: int
    source: bytes | None = None
    """The encoded input image of an edit; None for text to image."""
    image_guidance_scale: float = 1.0
    """For an edit: the higher, the more of the input survives (1 to 8)."""

    def __post_init__(self) -> None:
        if not (1 <= self.width <= MAX_SIDE and 1 <= self.height <= MAX_SIDE):
            raise ValueError(f"image size {self.width}x{self.height} is not 1 to {MAX_SIDE} on each side")
        if self.output_format not in get_args(OutputFormat):
            raise ValueError(f"output_format {self.output_format!r} is not one of {get_args(OutputFormat)}")
        if self.num_images < 1:
            raise ValueError(f"num_images must be at least 1, not {self.num_images}")


def image_dimensions(image_size: str | Mapping[str, float]) -> tuple[int, int]:
    """(width, height) of a preset name or a ``{"width": w, "height": h}`` mapping.

    JSON Schema counts 531.0 as an integer, so integral floats are accepted as their int.
    """
    if isinstance(image_size, str):
        try:
            return PRESET_SIZES[image_size]
        except KeyError:
            raise ValueError(
                f"image_size {image_size!r} is not one of {', '.join(PRESET_SIZES)} or a width/height object"
            ) from None
    sides: list[int] = []
    for key in ("width", "height"):
        value = image_size.get(key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SIDE:
            raise ValueError(f"image_size.{key} must be an integer from 1 to {MAX_SIDE}, not {value!r}")
        sides.append(value)
    return sides[0], sides[1]


def media_type(output_format: str) -> str:
    """Content type of an ``output_format``, e.g. ``image/jpeg``."""
    try:
        return MEDIA_TYPES[output_format]
    except KeyError:
        raise ValueError(f"output_format {output_format!r} is not one of {', '.join(MEDIA_TYPES)}") from None


def to_data_uri(data: bytes, output_format: str) -> str:
    """``data:image/<format>;base64,...`` of encoded image bytes."""
    return f"data:{media_type(output_format)};base64,{base64.b64encode(data).decode('ascii')}"


def decode_data_uri(uri: str) -> bytes:
    """The bytes of a base64 ``data:image/...`` URI; ValueError when it is not one."""
    match = _DATA_URI.fullmatch(uri.strip())
    if match is None:
        raise ValueError("malformed data URI: expected data:image/<type>;base64,<data>")
    mime = match["type"].strip().lower()
    if not mime.startswith("image/") or len(mime) == len("image/"):
        raise ValueError(f"data URI media type {mime or '(none)'!r} is not an image type")
    if "base64" not in (param.strip().lower() for param in match["params"].split(";")):
        raise ValueError("data URI is not base64-encoded: expected data:image/<type>;base64,<data>")
    try:
        payload = _WHITESPACE.sub(b"", match["data"].encode("ascii"))
        data = base64.b64decode(payload, validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise ValueError(f"data URI has invalid base64 data: {exc}") from None
    if not data:
        raise ValueError("data URI is empty")
    return data


def check_source_image(data: bytes) -> str | None:
    """None when ``data`` is a readable JPEG, PNG, WebP, GIF or AVIF image of sane size, else why not."""
    try:
        with _open_source(data) as image:
            image.draft("RGB", (_CANVAS_LONG_SIDE, _CANVAS_LONG_SIDE))  # JPEG: decode at 1/8 scale
            image.load()  # catches truncated and corrupt data
    except ValueError as exc:
        return str(exc)
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError):  # Pillow's ways to say "corrupt"
        return _NOT_AN_IMAGE
    return None


def render(spec: RenderSpec) -> list[bytes]:
    """``spec.num_images`` encoded images; image i is painted from seed ``spec.seed + i``.

    Raises ValueError when ``spec.source`` is not an image ``check_source_image`` accepts. The cost is
    the final resize and the encoding, growing with the output's pixels (PNG more than JPEG); an edit
    adds decoding its source (JPEGs decode at reduced scale). Callers render off the event loop.
    """
    size = (spec.width, spec.height)
    base = None if spec.source is None else _fit_source(spec.source, size)
    outputs: list[bytes] = []
    for index in range(spec.num_images):
        entropy = _Entropy(spec, index)
        picture = _paint(entropy, size)
        if base is not None:
            picture = _edit(base, picture, entropy, spec.image_guidance_scale)
        outputs.append(_encode(picture, spec.output_format))
    return outputs


class _Entropy:
    """A deterministic stream of numbers drawn from SHAKE-256 of the render parameters."""

    def __init__(self, spec: RenderSpec, index: int) -> None:
        key = [
            "boogu-mock-media/1",
            spec.prompt,
            spec.negative_prompt,
            spec.seed + index,
            repr(float(spec.guidance_scale)),
            spec.num_inference_steps,
            repr(float(spec.image_guidance_scale)) if spec.source is not None else None,
        ]
        self._bytes = hashlib.shake_256(json.dumps(key).encode()).digest(256)
        self._position = 0

    def unit(self) -> float:
        """A float in [0, 1)."""
        if self._position + 4 > len(self._bytes):
            self._bytes = hashlib.shake_256(self._bytes).digest(256)
            self._position = 0
        value = int.from_bytes(self._bytes[self._position : self._position + 4], "big")
        self._position += 4
        return value / 2**32

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self.unit()

    def integer(self, low: int, high: int) -> int:
        """An int from low to high inclusive."""
        return min(high, low + int(self.unit() * (high - low + 1)))


def _rgb(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    red, green, blue = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)


def _canvas_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """``width`` x ``height`` scaled down, keeping the aspect ratio, to at most ``long_side`` pixels."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _paint(entropy: _Entropy, size: tuple[int, int]) -> Image.Image:
    """An abstract landscape of ``size`` pixels: gradient sky, glow, sun, hills."""
    canvas = _canvas_size(*size, _CANVAS_LONG_SIDE)
    # Paint at twice the canvas size and halve it: cheap antialiasing for the shapes' edges.
    width, height = 2 * canvas[0], 2 * canvas[1]
    hue = entropy.unit()
    spread = entropy.uniform(0.06, 0.3) * (1 if entropy.unit() < 0.5 else -1)  # analogous palette
    top = _rgb(hue, entropy.uniform(0.35, 0.75), entropy.uniform(0.55, 0.9))
    bottom = _rgb(hue + spread, entropy.uniform(0.2, 0.6), entropy.uniform(0.85, 1.0))
    glow = _rgb(hue + 2 * spread + 0.5 * entropy.unit(), entropy.uniform(0.3, 0.7), 1.0)

    # The sky is smooth: paint it small, then enlarge it to the canvas.
    sky_width, sky_height = _canvas_size(*size, _SKY_LONG_SIDE)
    # A gradient between two colours along a direction between vertical and diagonal.
    vertical = Image.linear_gradient("L").resize((sky_width, sky_height), Image.Resampling.BILINEAR)
    horizontal = Image.linear_gradient("L").transpose(Image.Transpose.ROTATE_90)
    horizontal = horizontal.resize((sky_width, sky_height), Image.Resampling.BILINEAR)
    if entropy.unit() < 0.5:
        horizontal = horizontal.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    mask = Image.blend(vertical, horizontal, entropy.uniform(0.0, 0.45))
    sky = Image.composite(
        Image.new("RGB", (sky_width, sky_height), bottom),
        Image.new("RGB", (sky_width, sky_height), top),
        mask,
    )
    # A soft radial light of the third colour (cropping past the edges pads with 0: no light).
    radius = max(1, round(max(sky_width, sky_height) * entropy.uniform(0.35, 0.7)))
    centre_x, centre_y = round(sky_width * entropy.unit()), round(sky_height * entropy.uniform(0.0, 0.6))
    strength = entropy.uniform(0.45, 0.85)
    # radial_gradient is 0 at the centre and 255 at the corners (181 mid-edge): map it to a light that
    # fades smoothly to 0 at the inscribed circle.
    levels = [round(255 * strength * max(0.0, 1 - distance * 2**0.5 / 255) ** 2) for distance in range(256)]
    light = Image.radial_gradient("L").point(levels)
    light = light.resize((2 * radius, 2 * radius), Image.Resampling.BILINEAR)
    left, upper = radius - centre_x, radius - centre_y
    light = light.crop((left, upper, left + sky_width, upper + sky_height))
    sky = Image.composite(Image.new("RGB", (sky_width, sky_height), glow), sky, light)
    picture = sky.resize((width, height), Image.Resampling.BILINEAR)

    draw = ImageDraw.Draw(picture, "RGBA")
    # Sun.
    sun_radius = max(1.0, min(width, height) * entropy.uniform(0.07, 0.16))
    sun_x, sun_y = width * entropy.uniform(0.15, 0.85), height * entropy.uniform(0.12, 0.45)
    sun = _rgb(hue + 0.5 * entropy.unit(), entropy.uniform(0.1, 0.45), 1.0)
    draw.ellipse(
        (sun_x - sun_radius, sun_y - sun_radius, sun_x + sun_radius, sun_y + sun_radius),
        fill=(*sun, entropy.integer(170, 235)),
    )
    # Hills: ellipses rising from below the bottom edge, darker and lower towards the front.
    layers = entropy.integer(2, 4)
    for layer in range(layers):
        depth = (layer + 1) / layers
        colour = _rgb(
            hue + spread * entropy.uniform(-1.0, 2.0), entropy.uniform(0.35, 0.8), 0.85 - 0.5 * depth
        )
        crest = height * (0.45 + 0.35 * depth + entropy.uniform(-0.08, 0.08))
        centre = width * entropy.uniform(-0.1, 1.1)
        half_width = width * entropy.uniform(0.35, 0.8)
        draw.ellipse(
            (centre - half_width, crest, centre + half_width, crest + 2 * (height - crest) + height * 0.4),
            fill=(*colour, entropy.integer(200, 250)),
        )
    # A few floating bubbles.
    for _ in range(entropy.integer(0, 4)):
        bubble_radius = max(1.0, min(width, height) * entropy.uniform(0.015, 0.05))
        bubble_x, bubble_y = width * entropy.unit(), height * entropy.uniform(0.05, 0.6)
        draw.ellipse(
            (
                bubble_x - bubble_radius,
                bubble_y - bubble_radius,
                bubble_x + bubble_radius,
                bubble_y + bubble_radius,
            ),
            fill=(255, 255, 255, entropy.integer(60, 140)),
        )

    picture = picture.reduce(2)
    if picture.size != size:
        picture = picture.resize(size, Image.Resampling.BILINEAR)
    return picture


def _open_source(data: bytes) -> Image.Image:
    """Opens (without decoding) an input image; ValueError when it is not a supported image or too large."""
    try:
        image = Image.open(io.BytesIO(data), formats=_source_formats())
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(_too_large()) from None
    except (OSError, SyntaxError, EOFError):
        raise ValueError(_NOT_AN_IMAGE) from None
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise ValueError(_NOT_AN_IMAGE)
    if width * height > MAX_SOURCE_PIXELS:
        image.close()
        raise ValueError(_too_large(width, height))
    return image


def _source_formats() -> list[str]:
    """The supported input formats this Pillow can read (a Pillow built without AVIF lacks that one)."""
    Image.init()  # registers every plugin; returns at once after the first time
    return [name for name in _SOURCE_FORMATS if name in Image.OPEN]


def _too_large(width: int | None = None, height: int | None = None) -> str:
    actual = "" if width is None or height is None else f" ({width}x{height} pixels)"
    return f"image_url: the image is too large{actual}; at most {MAX_SOURCE_PIXELS // 1_000_000} megapixels"


# How to turn an image stored with each EXIF orientation upright (as ImageOps.exif_transpose does).
_UPRIGHT: Final = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _fit_source(data: bytes, size: tuple[int, int]) -> Image.Image:
    """The input image as RGB, upright (EXIF orientation), scaled and centre-cropped to exactly ``size``."""
    try:
        with _open_source(data) as image:
            orientation = _orientation(image)
            upright = _UPRIGHT.get(orientation)
            # Fit the stored image to the stored shape of the target, and turn the (small) result upright.
            stored_size = (size[1], size[0]) if orientation in (5, 6, 7, 8) else size
            image.draft("RGB", stored_size)  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that is enough
            image.load()
            if image.has_transparency_data:  # scaled as RGBA, flattened onto white below
                source = image.convert("RGBA") if image.mode != "RGBA" else image
            else:
                source = image.convert("RGB") if image.mode != "RGB" else image
            fitted = source.resize(
                stored_size,
                Image.Resampling.BILINEAR,
                box=_cover_box(source.size, stored_size),
                reducing_gap=3.0,
            )
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError):
        raise ValueError(_NOT_AN_IMAGE) from None
    if fitted.mode == "RGBA":  # transparent areas become white, not black
        fitted = Image.alpha_composite(Image.new("RGBA", fitted.size, (255, 255, 255, 255)), fitted)
        fitted = fitted.convert("RGB")
    if upright is not None:
        fitted = fitted.transpose(upright)
    fitted.info.clear()  # no ICC profile or EXIF from the input in the output
    return fitted


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1 to 8) of an image; 1 (as stored) when absent or unreadable."""
    try:
        value = image.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block should not fail an edit that check_source_image accepted
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _cover_box(source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float, float, float]:
    """The centred region of ``source`` with the aspect ratio of ``target`` (what ImageOps.fit crops)."""
    source_width, source_height = source
    ratio = target[0] / target[1]
    if source_width / source_height > ratio:  # wider than the target: crop the sides
        width = source_height * ratio
        return (source_width - width) / 2, 0.0, (source_width + width) / 2, float(source_height)
    height = source_width / ratio
    return 0.0, (source_height - height) / 2, float(source_width), (source_height + height) / 2


def _edit(
    base: Image.Image, picture: Image.Image, entropy: _Entropy, image_guidance_scale: float
) -> Image.Image:
    """The input blended with the painted picture; the higher the image guidance, the more input remains."""
    weight = min(0.45, max(0.05, 0.45 / max(image_guidance_scale, 1.0)))
    edited = Image.blend(base, picture, weight)
    if image_guidance_scale < 2.0 and entropy.unit() < 0.5:  # low image guidance may also mirror the scene
        edited = edited.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return edited


def _encode(picture: Image.Image, output_format: OutputFormat) -> bytes:
    buffer = io.BytesIO()
    if output_format == "jpeg":
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    else:
        picture.save(buffer, "PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()
