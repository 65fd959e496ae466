from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.status import Status, check_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.request_output import RequestOutput


T = TypeVar("T", bound="SubmitResult")


@_attrs_define
class SubmitResult:
    """What a submit answers, as one type for the typed result of a generated client: the
    queued ticket (`202`, a `QueuedRequest`), or with `sync_mode` the finished status object
    (`200`, a `RequestStatus`). `request_id` is in both; `polling_url` only in the ticket.

    """

    request_id: str
    """ Unique request identifier, `<model-id>_<UUIDv7>`. """
    status: Status
    """ - `QUEUED`: Request accepted, waiting to be processed
    - `PROCESSING`: Being processed by the model
    - `COMPLETED`: Done — output contains the result
    - `FAILED`: Failed — check error field
    - `ERROR`: System error — not charged
     """
    polling_url: str | Unset = UNSET
    """ Status URL; in the `202` ticket only. """
    model_id: str | Unset = UNSET
    """ Model that processed the request; in the `200` answer only. """
    error: None | str | Unset = UNSET
    """ Error message if failed; in the `200` answer only. """
    output: None | RequestOutput | Unset = UNSET
    """ The result of a `COMPLETED` sync request; in the `200` answer only. """
    created_at: str | Unset = UNSET
    """ When request was created; in the `200` answer only. """
    updated_at: str | Unset = UNSET
    """ When request was last updated; in the `200` answer only. """
    completed_at: None | str | Unset = UNSET
    """ When request completed; in the `200` answer only. """
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.request_output import RequestOutput  # noqa: PLC0415

        request_id = self.request_id

        status: str = self.status

        polling_url = self.polling_url

        model_id = self.model_id

        error: None | str | Unset
        if isinstance(self.error, Unset):
            error = UNSET
        else:
            error = self.error

        output: dict[str, Any] | None | Unset
        if isinstance(self.output, Unset):
            output = UNSET
        elif isinstance(self.output, RequestOutput):
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
            }
        )
        if polling_url is not UNSET:
            field_dict["polling_url"] = polling_url
        if model_id is not UNSET:
            field_dict["model_id"] = model_id
        if error is not UNSET:
            field_dict["error"] = error
        if output is not UNSET:
            field_dict["output"] = output
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

        polling_url = d.pop("polling_url", UNSET)

        model_id = d.pop("model_id", UNSET)

        def _parse_error(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        error = _parse_error(d.pop("error", UNSET))

        def _parse_output(data: object) -> None | RequestOutput | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                output_type_0 = RequestOutput.from_dict(data)

                return output_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(None | RequestOutput | Unset, data)

        output = _parse_output(d.pop("output", UNSET))

        created_at = d.pop("created_at", UNSET)

        updated_at = d.pop("updated_at", UNSET)

        def _parse_completed_at(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        completed_at = _parse_completed_at(d.pop("completed_at", UNSET))

        submit_result = cls(
            request_id=request_id,
            status=status,
            polling_url=polling_url,
            model_id=model_id,
            error=error,
            output=output,
            created_at=created_at,
            updated_at=updated_at,
            completed_at=completed_at,
        )

        submit_result.additional_properties = d
        return submit_result

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
