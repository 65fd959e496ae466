from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.error_response import ErrorResponse
from ...models.image_edit_request import ImageEditRequest
from ...models.queued_request import QueuedRequest
from ...models.submit_result import SubmitResult
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: ImageEditRequest,
    cache_control: str | Unset = "no-cache",
    x_webhook_url: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(cache_control, Unset):
        headers["Cache-Control"] = cache_control

    if not isinstance(x_webhook_url, Unset):
        headers["X-Webhook-URL"] = x_webhook_url

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/boogu-image-edit/v1/boogu-image-edit-request",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ErrorResponse | QueuedRequest | SubmitResult | None:
    if response.status_code == 200:
        response_200 = SubmitResult.from_dict(response.json())

        return response_200

    if response.status_code == 202:
        response_202 = QueuedRequest.from_dict(response.json())

        return response_202

    if response.status_code == 400:
        response_400 = ErrorResponse.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = ErrorResponse.from_dict(response.json())

        return response_401

    if response.status_code == 402:
        response_402 = ErrorResponse.from_dict(response.json())

        return response_402

    if response.status_code == 403:
        response_403 = ErrorResponse.from_dict(response.json())

        return response_403

    if response.status_code == 413:
        response_413 = ErrorResponse.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = ErrorResponse.from_dict(response.json())

        return response_415

    if response.status_code == 429:
        response_429 = ErrorResponse.from_dict(response.json())

        return response_429

    if response.status_code == 500:
        response_500 = ErrorResponse.from_dict(response.json())

        return response_500

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ErrorResponse | QueuedRequest | SubmitResult]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient,
    body: ImageEditRequest,
    cache_control: str | Unset = "no-cache",
    x_webhook_url: str | Unset = UNSET,
) -> Response[ErrorResponse | QueuedRequest | SubmitResult]:
    """Submit an image edit request

     Queues an edit of the image at `image_url` and answers `202` with the `request_id` to
    poll. With `sync_mode: true` it answers `200` with the finished status object instead,
    the images inline as base64 data URIs.

    Args:
        cache_control (str | Unset):  Default: 'no-cache'.
        x_webhook_url (str | Unset):
        body (ImageEditRequest): Parameters of an image edit request.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | QueuedRequest | SubmitResult]
    """

    kwargs = _get_kwargs(
        body=body,
        cache_control=cache_control,
        x_webhook_url=x_webhook_url,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient,
    body: ImageEditRequest,
    cache_control: str | Unset = "no-cache",
    x_webhook_url: str | Unset = UNSET,
) -> ErrorResponse | QueuedRequest | SubmitResult | None:
    """Submit an image edit request

     Queues an edit of the image at `image_url` and answers `202` with the `request_id` to
    poll. With `sync_mode: true` it answers `200` with the finished status object instead,
    the images inline as base64 data URIs.

    Args:
        cache_control (str | Unset):  Default: 'no-cache'.
        x_webhook_url (str | Unset):
        body (ImageEditRequest): Parameters of an image edit request.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | QueuedRequest | SubmitResult
    """

    return sync_detailed(
        client=client,
        body=body,
        cache_control=cache_control,
        x_webhook_url=x_webhook_url,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient,
    body: ImageEditRequest,
    cache_control: str | Unset = "no-cache",
    x_webhook_url: str | Unset = UNSET,
) -> Response[ErrorResponse | QueuedRequest | SubmitResult]:
    """Submit an image edit request

     Queues an edit of the image at `image_url` and answers `202` with the `request_id` to
    poll. With `sync_mode: true` it answers `200` with the finished status object instead,
    the images inline as base64 data URIs.

    Args:
        cache_control (str | Unset):  Default: 'no-cache'.
        x_webhook_url (str | Unset):
        body (ImageEditRequest): Parameters of an image edit request.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ErrorResponse | QueuedRequest | SubmitResult]
    """

    kwargs = _get_kwargs(
        body=body,
        cache_control=cache_control,
        x_webhook_url=x_webhook_url,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient,
    body: ImageEditRequest,
    cache_control: str | Unset = "no-cache",
    x_webhook_url: str | Unset = UNSET,
) -> ErrorResponse | QueuedRequest | SubmitResult | None:
    """Submit an image edit request

     Queues an edit of the image at `image_url` and answers `202` with the `request_id` to
    poll. With `sync_mode: true` it answers `200` with the finished status object instead,
    the images inline as base64 data URIs.

    Args:
        cache_control (str | Unset):  Default: 'no-cache'.
        x_webhook_url (str | Unset):
        body (ImageEditRequest): Parameters of an image edit request.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ErrorResponse | QueuedRequest | SubmitResult
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            cache_control=cache_control,
            x_webhook_url=x_webhook_url,
        )
    ).parsed
