from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

T = TypeVar("T", bound="QueuedRequest")


@_attrs_define
class QueuedRequest:
    """The answer to an asynchronous submit."""

    request_id: str
    """ Unique request identifier, `<model-id>_<UUIDv7>`. """
    status: Literal["QUEUED"]
    """ Always `QUEUED` on submit. """
    polling_url: str
    """ Status URL (initial response only). """
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        request_id = self.request_id

        status = self.status

        polling_url = self.polling_url

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "request_id": request_id,
                "status": status,
                "polling_url": polling_url,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        request_id = d.pop("request_id")

        status = cast(Literal["QUEUED"], d.pop("status"))
        if status != "QUEUED":
            raise ValueError(f"status must match const 'QUEUED', got '{status}'")

        polling_url = d.pop("polling_url")

        queued_request = cls(
            request_id=request_id,
            status=status,
            polling_url=polling_url,
        )

        queued_request.additional_properties = d
        return queued_request

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
