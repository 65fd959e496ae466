"""The main job: start the mock gateway, then drive a real generation end to end through the
generated client — text to image, then an edit of its result — polling to COMPLETED and
downloading the images into a folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import httpx
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.image_edit import submit_image_edit
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import (
    ErrorResponse,
    ImageEditRequest,
    QueuedRequest,
    RequestStatus,
    SubmitResult,
    TextToImageRequest,
)
from boogu_image_client.types import Unset
from PIL import Image
from rich.console import Console

from boogu_contract import wire
from mock_gateway.model import DEFAULT_API_KEY
from mock_gateway.testing import gateway_process

console = Console()
API_KEY = DEFAULT_API_KEY


def wait(client: AuthenticatedClient, request_id: str, poll_seconds: float) -> RequestStatus:
    last = ""
    while True:
        status = get_request_status.sync(request_id, client=client)
        if not isinstance(status, RequestStatus):
            raise SystemExit(f"status call failed: {status}")
        if status.status != last:
            console.print(f"  {request_id}: [bold]{status.status}[/bold]")
            last = status.status
        if status.status in wire.TERMINAL_STATUSES:
            return status
        time.sleep(poll_seconds)


def download(status: RequestStatus, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    if status.output is None or isinstance(status.output, Unset):
        raise SystemExit(f"{status.request_id} finished {status.status}: {status.error}")
    saved = []
    with httpx.Client(timeout=30) as http:
        for url in status.output.media_url:
            response = http.get(url)
            response.raise_for_status()
            path = folder / f"{status.request_id}_{url.rsplit('/', 1)[-1]}"
            path.write_bytes(response.content)
            with Image.open(path) as image:
                console.print(f"  saved [cyan]{path}[/cyan]  {image.format} {image.width}×{image.height}")
            saved.append(path)
    return saved


def accepted(answer: QueuedRequest | SubmitResult | ErrorResponse | None) -> QueuedRequest:
    if not isinstance(answer, QueuedRequest):
        raise SystemExit(f"submit failed: {answer}")
    return answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("images"))
    parser.add_argument(
        "--speed", type=float, default=10.0, help="mock speed-up (1 = real timing, 15 s a job)"
    )
    args = parser.parse_args()
    with gateway_process("--speed", str(args.speed), "--seed", "7") as base_url:
        client = AuthenticatedClient(
            base_url=base_url,
            token=API_KEY,
            auth_header_name=wire.KEY_HEADER,
            prefix="",
            timeout=httpx.Timeout(10.0),
        )
        poll = max(0.2, 5.0 / args.speed)
        console.rule("text to image")
        queued = accepted(
            submit_text_to_image.sync(
                client=client,
                body=TextToImageRequest(
                    prompt="A serene Japanese tea garden at dusk with stone lanterns lighting a winding path",
                    image_size="landscape_4_3",
                    num_images=2,
                    seed=42,
                ),
            )
        )
        console.print(f"  queued {queued.request_id}")
        first = download(wait(client, queued.request_id, poll), args.out)
        status = get_request_status.sync(queued.request_id, client=client)
        if not isinstance(status, RequestStatus) or isinstance(status.output, Unset | None):
            raise SystemExit(f"no output to edit: {status}")
        console.rule("image edit")
        queued = accepted(
            submit_image_edit.sync(
                client=client,
                body=ImageEditRequest(
                    prompt="Change the background to a snowy mountain landscape at golden hour",
                    image_url=status.output.media_url[0],
                    output_format="png",
                ),
            )
        )
        console.print(f"  queued {queued.request_id}")
        second = download(wait(client, queued.request_id, poll), args.out)
        with httpx.Client() as http:
            balance = http.get(f"{base_url}{wire.ADMIN_PREFIX}/keys/{API_KEY}").json()
        console.rule("done")
        console.print(f"{len(first) + len(second)} images in [cyan]{args.out}/[/cyan]; wallet: {balance}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
