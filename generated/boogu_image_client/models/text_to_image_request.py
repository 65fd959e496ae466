from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.image_size_preset import ImageSizePreset, check_image_size_preset
from ..models.output_format import OutputFormat, check_output_format
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.custom_image_size import CustomImageSize


T = TypeVar("T", bound="TextToImageRequest")


@_attrs_define
class TextToImageRequest:
    """Parameters of a text-to-image request."""

    prompt: str
    """ Instruction describing the image to generate. Supports bilingual input (e.g., English and Chinese). """
    negative_prompt: str | Unset = ""
    """ Description of elements that should NOT appear in the generated image. """
    image_size: CustomImageSize | ImageSizePreset | Unset = UNSET
    """ A preset name, or a custom width and height in pixels. """
    num_inference_steps: int | Unset = 30
    """ Number of denoising steps. Valid range: 20–50. Higher values improve quality at the cost of speed. """
    guidance_scale: float | Unset = 4.0
    """ How closely the generation follows the prompt. Valid range: 1–8. Higher values increase prompt adherence but
    may reduce diversity. """
    cfg_range_start: float | Unset = 0.0
    """ Start of the timestep fraction over which Classifier-Free Guidance (CFG) is applied. """
    cfg_range_end: float | Unset = 1.0
    """ End of the timestep fraction over which Classifier-Free Guidance (CFG) is applied. """
    num_images: int | Unset = 1
    """ Number of images to generate. Valid range: 1–4. """
    output_format: OutputFormat | Unset = "jpeg"
    """ Output image format. Allowed values: jpeg, png. """
    enable_safety_checker: bool | Unset = True
    """ Enables NSFW content filtering. Set to false to disable. """
    seed: int | Unset = UNSET
    """ Random seed for reproducible results. If omitted, a random seed is used. """
    sync_mode: bool | Unset = False
    """ If true, returns the generated image(s) as base64-encoded data URIs inline in the response. If false,
    returns a request_id for async polling. """

    def to_dict(self) -> dict[str, Any]:
        prompt = self.prompt

        negative_prompt = self.negative_prompt

        image_size: dict[str, Any] | str | Unset
        if isinstance(self.image_size, Unset):
            image_size = UNSET
        elif isinstance(self.image_size, str):
            image_size = self.image_size
        else:
            image_size = self.image_size.to_dict()

        num_inference_steps = self.num_inference_steps

        guidance_scale = self.guidance_scale

        cfg_range_start = self.cfg_range_start

        cfg_range_end = self.cfg_range_end

        num_images = self.num_images

        output_format: str | Unset = UNSET
        if not isinstance(self.output_format, Unset):
            output_format = self.output_format

        enable_safety_checker = self.enable_safety_checker

        seed = self.seed

        sync_mode = self.sync_mode

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "prompt": prompt,
            }
        )
        if negative_prompt is not UNSET:
            field_dict["negative_prompt"] = negative_prompt
        if image_size is not UNSET:
            field_dict["image_size"] = image_size
        if num_inference_steps is not UNSET:
            field_dict["num_inference_steps"] = num_inference_steps
        if guidance_scale is not UNSET:
            field_dict["guidance_scale"] = guidance_scale
        if cfg_range_start is not UNSET:
            field_dict["cfg_range_start"] = cfg_range_start
        if cfg_range_end is not UNSET:
            field_dict["cfg_range_end"] = cfg_range_end
        if num_images is not UNSET:
            field_dict["num_images"] = num_images
        if output_format is not UNSET:
            field_dict["output_format"] = output_format
        if enable_safety_checker is not UNSET:
            field_dict["enable_safety_checker"] = enable_safety_checker
        if seed is not UNSET:
            field_dict["seed"] = seed
        if sync_mode is not UNSET:
            field_dict["sync_mode"] = sync_mode

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.custom_image_size import CustomImageSize  # noqa: PLC0415

        d = dict(src_dict)
        prompt = d.pop("prompt")

        negative_prompt = d.pop("negative_prompt", UNSET)

        def _parse_image_size(data: object) -> CustomImageSize | ImageSizePreset | Unset:
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                componentsschemas_image_size_type_0 = check_image_size_preset(data)

                return componentsschemas_image_size_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            componentsschemas_image_size_type_1 = CustomImageSize.from_dict(data)

            return componentsschemas_image_size_type_1

        image_size = _parse_image_size(d.pop("image_size", UNSET))

        num_inference_steps = d.pop("num_inference_steps", UNSET)

        guidance_scale = d.pop("guidance_scale", UNSET)

        cfg_range_start = d.pop("cfg_range_start", UNSET)

        cfg_range_end = d.pop("cfg_range_end", UNSET)

        num_images = d.pop("num_images", UNSET)

        _output_format = d.pop("output_format", UNSET)
        output_format: OutputFormat | Unset
        if isinstance(_output_format, Unset):
            output_format = UNSET
        else:
            output_format = check_output_format(_output_format)

        enable_safety_checker = d.pop("enable_safety_checker", UNSET)

        seed = d.pop("seed", UNSET)

        sync_mode = d.pop("sync_mode", UNSET)

        text_to_image_request = cls(
            prompt=prompt,
            negative_prompt=negative_prompt,
            image_size=image_size,
            num_inference_steps=num_inference_steps,
            guidance_scale=guidance_scale,
            cfg_range_start=cfg_range_start,
            cfg_range_end=cfg_range_end,
            num_images=num_images,
            output_format=output_format,
            enable_safety_checker=enable_safety_checker,
            seed=seed,
            sync_mode=sync_mode,
        )

        return text_to_image_request
