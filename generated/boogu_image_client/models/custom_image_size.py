from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="CustomImageSize")


@_attrs_define
class CustomImageSize:
    """A custom image size in pixels.

    Example:
        {'width': 1280, 'height': 720}

    """

    width: int
    """ Width of the image in pixels. """
    height: int
    """ Height of the image in pixels. """

    def to_dict(self) -> dict[str, Any]:
        width = self.width

        height = self.height

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "width": width,
                "height": height,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        width = d.pop("width")

        height = d.pop("height")

        custom_image_size = cls(
            width=width,
            height=height,
        )

        return custom_image_size
