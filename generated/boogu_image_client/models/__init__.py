"""Contains all the data models used in inputs/outputs"""

from .custom_image_size import CustomImageSize
from .error_response import ErrorResponse
from .image_edit_request import ImageEditRequest
from .image_size_preset import ImageSizePreset
from .output_format import OutputFormat
from .queued_request import QueuedRequest
from .request_output import RequestOutput
from .request_status import RequestStatus
from .status import Status
from .submit_result import SubmitResult
from .text_to_image_request import TextToImageRequest

__all__ = (
    "CustomImageSize",
    "ErrorResponse",
    "ImageEditRequest",
    "ImageSizePreset",
    "OutputFormat",
    "QueuedRequest",
    "RequestOutput",
    "RequestStatus",
    "Status",
    "SubmitResult",
    "TextToImageRequest",
)
