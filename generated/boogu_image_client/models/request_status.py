from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.status import Status, check_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.request_output import RequestOutput


T = TypeVar("T", bound="RequestStatus")


@_attrs_define
class RequestStatus:
    """The status object of a request: what the status endpoint answers, what a `sync_mode`
    submit answers, and the body of the webhook.

    """

    request_id: str
    """ Unique request identifier """
    status: Status
    """ - `QUEUED`: Request accepted, waiting to be processed
    - `PROCESSING`: Being processed by the model
    - `COMPLETED`: Done — output contains the result
    - `FAILED`: Failed — check error field
    - `ERROR`: System error — not charged
     """
    model_id: str
    """ Model that processed the request """
    error: None | str
    """ Error message if failed """
    output: None | RequestOutput
    """ The result; null until the request is `COMPLETED`. """
    created_at: str | Unset = UNSET
    """ When request was created (ISO-8601 UTC with milliseconds, as `2026-03-31T10:00:00.000Z`). """
    updated_at: str | Unset = UNSET
    """ When request was last updated (ISO-8601 UTC with milliseconds). """
    completed_at: None | str | Unset = UNSET
    """ When request completed (ISO-8601 UTC with milliseconds); null until it reaches `COMPLETED`, `FAILED` or
    `ERROR`. """
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.request_output import RequestOutput  # noqa: PLC0415

        request_id = self.request_id

        status: str = self.status

        model_id = self.model_id

        error: None | str
        error = self.error

        output: dict[str, Any] | None
        if isinstance(self.output, RequestOutput):
            output = self.output.to_dict()
        else:
            output = self.output

        created_at = self.created_at

        updated_at = self.updated_at

        completed_at: None | str | Unset
        if isinstance(self.completed_at, Unset):
            completed_at = UNSET
        else:
            completed_at = self.completed_at

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "request_id": request_id,
                "status": status,
                "model_id": model_id,
                "error": error,
                "output": output,
            }
        )
        if created_at is not UNSET:
            field_dict["created_at"] = created_at
        if updated_at is not UNSET:
            field_dict["updated_at"] = updated_at
        if completed_at is not UNSET:
            field_dict["completed_at"] = completed_at

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.request_output import RequestOutput  # noqa: PLC0415

        d = dict(src_dict)
        request_id = d.pop("request_id")

        status = check_status(d.pop("status"))

        model_id = d.pop("model_id")

        def _parse_error(data: object) -> None | str:
            if data is None:
                return data
            return cast(None | str, data)

        error = _parse_error(d.pop("error"))

        def _parse_output(data: object) -> None | RequestOutput:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                output_type_0 = RequestOutput.from_dict(data)

                return output_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RequestOutput, data)

        output = _parse_output(d.pop("output"))

        created_at = d.pop("created_at", UNSET)

        updated_at = d.pop("updated_at", UNSET)

        def _parse_completed_at(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        completed_at = _parse_completed_at(d.pop("completed_at", UNSET))

        request_status = cls(
            request_id=request_id,
            status=status,
            model_id=model_id,
            error=error,
            output=output,
            created_at=created_at,
            updated_at=updated_at,
            completed_at=completed_at,
        )

        request_status.additional_properties = d
        return request_status

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
