"""The Boogu Image API client: wait for results, safe retries, typed errors, downloads, webhooks.

    from boogu import Boogu

    with Boogu() as client:                          # BOOGU_API_KEY (and BOOGU_BASE_URL) from the environment
        result = client.generate("a red fox in the snow")
        print(client.download(result, "images/"))

A thin hand-written layer over the generated `boogu_image_client`, whose request models it takes
(`TextToImageRequest`, `ImageEditRequest`) and whose client it exposes as `Boogu.api`.
"""

from boogu_image_client.models import (
    CustomImageSize,
    ImageEditRequest,
    RequestOutput,
    RequestStatus,
    TextToImageRequest,
)

from ._client import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_WAIT_TIMEOUT,
    AsyncBoogu,
    Boogu,
    ClientOptions,
    WaitOptions,
    __version__,
)
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    BooguError,
    ConfigurationError,
    DownloadError,
    ForbiddenError,
    InsufficientBalanceError,
    JobError,
    JobErroredError,
    JobFailedError,
    JobNotFinishedError,
    ModelNotFoundError,
    NotFoundError,
    NotTheGatewayError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
    UnknownStatusError,
    WaitTimeoutError,
    WebhookError,
)
from ._flows import RetryEvent, Runtime
from ._http import DEFAULT_TIMEOUT, NOT_GIVEN, NotGiven
from ._models import (
    ImageEditParams,
    JobStatus,
    Result,
    StatusValue,
    Submission,
    TextToImageParams,
    Timings,
)
from ._polling import PollPolicy
from ._retry import RetryPolicy

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "DEFAULT_WAIT_TIMEOUT",
    "NOT_GIVEN",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncBoogu",
    "BadRequestError",
    "Boogu",
    "BooguError",
    "ClientOptions",
    "ConfigurationError",
    "CustomImageSize",
    "DownloadError",
    "ForbiddenError",
    "ImageEditParams",
    "ImageEditRequest",
    "InsufficientBalanceError",
    "JobError",
    "JobErroredError",
    "JobFailedError",
    "JobNotFinishedError",
    "JobStatus",
    "ModelNotFoundError",
    "NotFoundError",
    "NotGiven",
    "NotTheGatewayError",
    "PollPolicy",
    "RateLimitError",
    "RequestOutput",
    "RequestStatus",
    "Result",
    "RetryEvent",
    "RetryPolicy",
    "Runtime",
    "ServerError",
    "StatusValue",
    "Submission",
    "TextToImageParams",
    "TextToImageRequest",
    "Timings",
    "UnauthorizedError",
    "UnknownStatusError",
    "WaitOptions",
    "WaitTimeoutError",
    "WebhookError",
    "__version__",
]
