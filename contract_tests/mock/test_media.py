"""The mock gateway's fake image generator: sizes, formats, determinism, edits, data URIs, input checks."""

from __future__ import annotations

import base64
import dataclasses
import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat, features

from mock_gateway.model import _media as media
from mock_gateway.model._media import RenderSpec


def spec(**changes: Any) -> RenderSpec:
    base = RenderSpec(
        prompt="a lighthouse at dusk",
        negative_prompt="",
        width=256,
        height=192,
        output_format="jpeg",
        seed=1234,
        num_images=1,
        guidance_scale=4.0,
        num_inference_steps=30,
    )
    return dataclasses.replace(base, **changes)


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def encode(image: Image.Image, fmt: str, **params: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def halves(
    left: tuple[int, int, int], right: tuple[int, int, int], size: tuple[int, int] = (320, 240)
) -> Image.Image:
    """An image whose left half is one colour and right half another, with some texture."""
    image = Image.new("RGB", size, left)
    draw = ImageDraw.Draw(image)
    draw.rectangle((size[0] // 2, 0, size[0], size[1]), fill=right)
    for x in range(0, size[0], 40):
        draw.line((x, 0, x, size[1]), fill=(128, 128, 128), width=1)
    return image


def mean_rgb(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> list[float]:
    region = image.convert("RGB") if box is None else image.convert("RGB").crop(box)
    return list(ImageStat.Stat(region).mean)


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(first.convert("RGB"), second.convert("RGB"))).mean) / 3


# -- sizes and formats ---------------------------------------------------------------------------


def test_presets_are_the_documented_sizes() -> None:
    assert media.PRESET_SIZES == {
        "square_hd": (1024, 1024),
        "square": (512, 512),
        "portrait_4_3": (768, 1024),
        "portrait_16_9": (576, 1024),
        "landscape_4_3": (1024, 768),
        "landscape_16_9": (1024, 576),
    }


@pytest.mark.parametrize("preset", sorted(media.PRESET_SIZES))
@pytest.mark.parametrize("output_format", ["jpeg", "png"])
def test_every_preset_renders_at_its_size_and_format(preset: str, output_format: str) -> None:
    width, height = media.image_dimensions(preset)
    assert (width, height) == media.PRESET_SIZES[preset]
    [data] = media.render(spec(width=width, height=height, output_format=output_format))
    image = open_image(data)
    assert image.size == (width, height)
    assert image.format == {"jpeg": "JPEG", "png": "PNG"}[output_format]
    assert image.mode == "RGB"


def test_integral_floats_count_as_integers_as_in_json_schema() -> None:
    assert media.image_dimensions({"width": 531.0, "height": 10}) == (531, 10)


@pytest.mark.parametrize(
    ("width", "height"), [(1280, 720), (1, 1), (1, 4096), (4096, 1), (333, 777), (4096, 4096)]
)
def test_custom_sizes_render_exactly(width: int, height: int) -> None:
    assert media.image_dimensions({"width": width, "height": height}) == (width, height)
    for output_format in ("jpeg", "png"):
        [data] = media.render(spec(width=width, height=height, output_format=output_format))
        image = open_image(data)
        assert image.size == (width, height)
        assert image.format == output_format.upper()


@pytest.mark.parametrize(
    "image_size",
    [
        "square_xl",
        "",
        {"width": 0, "height": 10},
        {"width": 10, "height": 4097},
        {"width": 10},
        {"width": True, "height": 10},
        {"width": 10.5, "height": 10},
    ],
)
def test_invalid_image_sizes_are_rejected(image_size: Any) -> None:
    with pytest.raises(ValueError, match="image_size"):
        media.image_dimensions(image_size)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"width": 0}, "image size"),
        ({"height": 4097}, "image size"),
        ({"num_images": 0}, "num_images"),
        ({"output_format": "webp"}, "output_format"),
    ],
)
def test_render_spec_rejects_impossible_values(changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        spec(**changes)


def test_media_types_and_extensions() -> None:
    assert media.MEDIA_TYPES == {"jpeg": "image/jpeg", "png": "image/png"}
    assert media.EXTENSIONS == {"jpeg": "jpeg", "png": "png"}
    assert media.media_type("png") == "image/png"
    with pytest.raises(ValueError, match="output_format"):
        media.media_type("gif")


@pytest.mark.parametrize("num_images", [1, 2, 3, 4])
def test_num_images_are_all_different(num_images: int) -> None:
    outputs = media.render(spec(num_images=num_images))
    assert len(outputs) == num_images
    assert len(set(outputs)) == num_images
    for data in outputs:
        assert open_image(data).size == (256, 192)


# -- determinism ---------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["jpeg", "png"])
def test_same_spec_gives_identical_bytes(output_format: str) -> None:
    first = media.render(spec(output_format=output_format, num_images=3))
    second = media.render(spec(output_format=output_format, num_images=3))
    assert first == second


@pytest.mark.parametrize(
    "changes",
    [
        {"seed": 1235},
        {"seed": -1234},
        {"prompt": "a lighthouse at dawn"},
        {"negative_prompt": "fog"},
        {"guidance_scale": 5.0},
        {"num_inference_steps": 31},
    ],
)
def test_any_parameter_changes_the_image(changes: dict[str, Any]) -> None:
    assert media.render(spec(**changes)) != media.render(spec())


def test_guidance_given_as_int_or_float_is_the_same_image() -> None:
    assert media.render(spec(guidance_scale=4)) == media.render(spec(guidance_scale=4.0))


def test_image_i_is_painted_from_seed_plus_i() -> None:
    outputs = media.render(spec(num_images=3))
    assert outputs[2] == media.render(spec(seed=1236))[0]


def test_huge_and_negative_seeds_work() -> None:
    for seed in (0, -(2**70), 2**70):
        [data] = media.render(spec(seed=seed))
        assert open_image(data).size == (256, 192)


def test_text_to_image_is_not_blank() -> None:
    image = open_image(media.render(spec(width=512, height=512, output_format="png"))[0])
    stddev = ImageStat.Stat(image).stddev
    assert max(stddev) > 10  # a picture with gradients and shapes, not one flat colour
    assert len(image.getcolors(maxcolors=1 << 20) or []) > 100


def test_outputs_carry_no_metadata() -> None:
    for output_format in ("jpeg", "png"):
        image = open_image(media.render(spec(output_format=output_format))[0])
        assert not {"exif", "icc_profile", "XML:com.adobe.xmp", "Software"} & set(image.info)


# -- edits ---------------------------------------------------------------------------------------

RED = (210, 40, 40)
BLUE = (40, 40, 210)


def test_edit_derives_from_the_source_colours() -> None:
    red_source = encode(halves(RED, RED), "PNG")
    blue_source = encode(halves(BLUE, BLUE), "PNG")
    red = open_image(media.render(spec(source=red_source))[0])
    blue = open_image(media.render(spec(source=blue_source))[0])
    red_mean, blue_mean = mean_rgb(red), mean_rgb(blue)
    # The same painted picture is blended into both, so the difference is the sources' difference
    # scaled by at least 1 - 0.45.
    assert red_mean[0] - blue_mean[0] > 80
    assert blue_mean[2] - red_mean[2] > 80
    assert red_mean[0] > red_mean[2]
    assert blue_mean[2] > blue_mean[0]


def test_edit_keeps_the_source_layout_under_high_image_guidance() -> None:
    source = encode(halves(RED, BLUE), "JPEG", quality=95)
    edited = open_image(media.render(spec(source=source, image_guidance_scale=8.0))[0])
    width, height = edited.size
    left = mean_rgb(edited, (0, 0, width // 2 - 8, height))
    right = mean_rgb(edited, (width // 2 + 8, 0, width, height))
    assert left[0] > left[2] + 100
    assert right[2] > right[0] + 100


def test_higher_image_guidance_stays_closer_to_the_source() -> None:
    source_image = halves(RED, BLUE, size=(256, 192))
    source = encode(source_image, "PNG")
    loose = open_image(media.render(spec(source=source, image_guidance_scale=2.0))[0])
    tight = open_image(media.render(spec(source=source, image_guidance_scale=8.0))[0])
    assert mean_difference(tight, source_image) < mean_difference(loose, source_image)
    assert mean_difference(tight, source_image) < 15


def test_edit_differs_from_text_to_image_and_between_images() -> None:
    source = encode(halves(RED, BLUE), "PNG")
    edits = media.render(spec(source=source, num_images=4))
    assert len(set(edits)) == 4
    assert edits[0] != media.render(spec())[0]
    assert edits == media.render(spec(source=source, num_images=4))  # deterministic too
    assert edits != media.render(spec(source=source, num_images=4, image_guidance_scale=3.0))


@pytest.mark.parametrize(
    ("source_size", "target"),
    [((320, 240), (1024, 1024)), ((240, 320), (1024, 576)), ((4000, 3000), (512, 512)), ((1, 1), (64, 48))],
)
@pytest.mark.parametrize("output_format", ["jpeg", "png"])
def test_edit_output_has_the_requested_size_whatever_the_source(
    source_size: tuple[int, int], target: tuple[int, int], output_format: str
) -> None:
    source = encode(halves(RED, BLUE, size=source_size), "JPEG")
    [data] = media.render(spec(source=source, width=target[0], height=target[1], output_format=output_format))
    image = open_image(data)
    assert image.size == target
    assert image.format == output_format.upper()


def test_edit_follows_exif_orientation() -> None:
    # Stored landscape, red left and blue right; orientation 6 displays it rotated 90° clockwise,
    # so upright it is portrait with red on top.
    exif = Image.Exif()
    exif[0x0112] = 6
    source = encode(halves(RED, BLUE, size=(400, 200)), "JPEG", quality=95, exif=exif.tobytes())
    edited = open_image(media.render(spec(source=source, width=200, height=400, image_guidance_scale=8.0))[0])
    top = mean_rgb(edited, (0, 0, 200, 180))
    bottom = mean_rgb(edited, (0, 220, 200, 400))
    assert top[0] > top[2] + 100
    assert bottom[2] > bottom[0] + 100


def test_transparent_source_areas_become_white_not_black() -> None:
    source_image = Image.new("RGBA", (100, 100), (0, 0, 0, 0))
    edited = open_image(
        media.render(spec(source=encode(source_image, "PNG"), output_format="png", image_guidance_scale=8.0))[
            0
        ]
    )
    assert min(mean_rgb(edited)) > 200


def test_edit_drops_the_source_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    source = encode(halves(RED, BLUE), "JPEG", exif=exif.tobytes(), icc_profile=b"not really a profile")
    for output_format in ("jpeg", "png"):
        image = open_image(media.render(spec(source=source, output_format=output_format))[0])
        assert "exif" not in image.info
        assert "icc_profile" not in image.info


def test_edit_of_a_non_image_raises() -> None:
    with pytest.raises(ValueError, match="not a JPG, PNG, WebP, GIF or AVIF"):
        media.render(spec(source=b"definitely not an image"))


# -- source checks -------------------------------------------------------------------------------


def _source_samples() -> dict[str, bytes]:
    picture = halves(RED, BLUE, size=(64, 48))
    samples = {
        "jpeg": encode(picture, "JPEG"),
        "png": encode(picture, "PNG"),
        "png-rgba": encode(picture.convert("RGBA"), "PNG"),
        "png-grey": encode(picture.convert("L"), "PNG"),
        "webp": encode(picture, "WEBP"),
        "gif": encode(picture.convert("P"), "GIF"),
        "gif-animated": encode(
            picture.convert("P"), "GIF", save_all=True, append_images=[Image.new("P", (64, 48), 3)]
        ),
        "jpeg-cmyk": encode(picture.convert("CMYK"), "JPEG"),
    }
    if features.check("avif"):
        samples["avif"] = encode(picture, "AVIF")
    return samples


SOURCES = _source_samples()


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_supported_sources_are_accepted_and_editable(name: str) -> None:
    assert media.check_source_image(SOURCES[name]) is None
    [data] = media.render(spec(source=SOURCES[name], width=80, height=60))
    assert open_image(data).size == (80, 60)


def test_gif_edit_uses_the_first_frame() -> None:
    first = Image.new("RGB", (64, 48), RED).convert("P")
    second = Image.new("RGB", (64, 48), BLUE).convert("P")
    source = encode(first, "GIF", save_all=True, append_images=[second])
    edited = open_image(media.render(spec(source=source, image_guidance_scale=8.0))[0])
    red, _, blue = mean_rgb(edited)
    assert red > blue + 100


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but has no pixel data: what a decompression bomb's header looks like."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)  # far too little data for the declared size
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, world",
        b"%PDF-1.7\n",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        encode(Image.new("RGB", (8, 8)), "BMP"),
        encode(Image.new("RGB", (8, 8)), "TIFF"),
        SOURCES["png"][:60],  # truncated
        SOURCES["jpeg"][: len(SOURCES["jpeg"]) // 2],  # truncated
    ],
    ids=["empty", "text", "pdf", "svg", "bmp", "tiff", "truncated-png", "truncated-jpeg"],
)
def test_non_images_and_other_formats_are_rejected(data: bytes) -> None:
    assert media.check_source_image(data) == "image_url: the image is not a JPG, PNG, WebP, GIF or AVIF file"


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (8000, 6000),
        # Pillow itself warns above ~89 megapixels; even with warnings as errors the message is the same.
        pytest.param(
            10_000, 10_000, marks=pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
        ),
        pytest.param(
            10_000, 10_000, marks=pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
        ),
        (40_000, 40_000),  # Pillow refuses this one itself
    ],
)
def test_oversized_sources_are_rejected_without_decoding(width: int, height: int) -> None:
    message = media.check_source_image(_png_header_only(width, height))
    assert message is not None
    assert "too large" in message
    assert "40 megapixels" in message
    with pytest.raises(ValueError, match="too large"):
        media.render(spec(source=_png_header_only(width, height)))


def test_sources_up_to_the_limit_pass_the_size_check() -> None:
    # Only the header is there, so the check gets past the size limit and fails on the missing data.
    assert media.check_source_image(_png_header_only(8000, 5000)) == (
        "image_url: the image is not a JPG, PNG, WebP, GIF or AVIF file"
    )


# -- data URIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("output_format", ["jpeg", "png"])
def test_data_uri_round_trip(output_format: str) -> None:
    [data] = media.render(spec(output_format=output_format))
    uri = media.to_data_uri(data, output_format)
    assert uri.startswith(f"data:image/{output_format};base64,")
    assert media.decode_data_uri(uri) == data


def test_data_uri_decoding_is_lenient_where_harmless() -> None:
    payload = SOURCES["webp"]
    encoded = base64.b64encode(payload).decode()
    wrapped = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    for uri in (
        f"data:image/webp;base64,{encoded}",
        f"DATA:IMAGE/WEBP;BASE64,{encoded}",
        f"data:image/webp;name=photo.webp;base64,{encoded}",
        f"data:image/webp;base64,{wrapped}",
        f"  data:image/webp;base64,{encoded}\n",
    ):
        assert media.decode_data_uri(uri) == payload


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("", "malformed"),
        ("https://example.com/image.png", "malformed"),
        ("data:image/png;base64", "malformed"),
        ("data:image/png,iVBORw0KGgo=", "not base64"),
        ("data:text/plain;base64,aGVsbG8=", "not an image"),
        ("data:;base64,aGVsbG8=", "not an image"),
        ("data:image/;base64,aGVsbG8=", "not an image"),
        ("data:image/png;base64,", "empty"),
        ("data:image/png;base64,not*base64!", "invalid base64"),
        ("data:image/png;base64,aGVsbG8", "invalid base64"),  # bad padding
        ("data:image/png;base64,aGVsbG8=ü", "invalid base64"),
    ],
)
def test_malformed_data_uris_are_rejected(uri: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        media.decode_data_uri(uri)


def test_to_data_uri_rejects_unknown_formats() -> None:
    with pytest.raises(ValueError, match="output_format"):
        media.to_data_uri(b"\x00", "gif")
