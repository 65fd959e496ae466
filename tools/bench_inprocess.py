"""What the in-process mock costs a test, against a respx stub of the same calls.

One submit + status pair through the generated client, sync and async: once against the in-process
mock gateway (`MockGateway()`, no socket), once against respx answering openapi.yaml's example bodies.
The goal (issue 20) is an in-process pair costing at most 1.2 times the stub's. `make bench` puts the
figures in its table; `python -m tools.bench_inprocess` prints them alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal

import respx
from boogu_image_client import AuthenticatedClient
from boogu_image_client.api.status import get_request_status
from boogu_image_client.api.text_to_image import submit_text_to_image
from boogu_image_client.models import QueuedRequest, RequestStatus, TextToImageRequest

from boogu_contract import load_spec, wire
from mock_gateway.model import DEFAULT_API_KEY, MockConfig
from mock_gateway.testing import IN_PROCESS_URL, MockGateway

GOAL = 1.2
PAIRS, ROUNDS = 300, 6
"""Many short rounds, the best counting: a busy machine slows some rounds, rarely all."""
BODY = TextToImageRequest(prompt="A serene Japanese tea garden at dusk", num_inference_steps=20)
MODEL = "boogu-image"
REQUEST_ID = f"{MODEL}_019d0000-0000-7000-8000-000000000000"


@dataclass
class Figure:
    mode: str
    mock_ms: float
    stub_ms: float

    @property
    def ratio(self) -> float:
        return self.mock_ms / self.stub_ms


def sync_pair(client: AuthenticatedClient) -> None:
    queued = submit_text_to_image.sync(client=client, body=BODY)
    assert isinstance(queued, QueuedRequest), queued
    status = get_request_status.sync(queued.request_id, client=client)
    assert isinstance(status, RequestStatus), status


async def async_pair(client: AuthenticatedClient) -> None:
    queued = await submit_text_to_image.asyncio(client=client, body=BODY)
    assert isinstance(queued, QueuedRequest), queued
    status = await get_request_status.asyncio(queued.request_id, client=client)
    assert isinstance(status, RequestStatus), status


def client_for(base_url: str) -> AuthenticatedClient:
    """The generated client as `MockGateway.client()` builds it, for the stub's side."""
    return AuthenticatedClient(
        base_url=base_url, token=DEFAULT_API_KEY, auth_header_name=wire.KEY_HEADER, prefix=""
    )


@contextmanager
def stubbed() -> Iterator[None]:
    """respx answering the two operations with openapi.yaml's examples (canned, no logic), as the mock
    answers them: a queued job, then the job processing."""
    examples = load_spec()["components"]["examples"]
    status_path = wire.status_path(REQUEST_ID)
    queued = {
        **examples["QueuedTextToImage"]["value"],
        "request_id": REQUEST_ID,
        "polling_url": IN_PROCESS_URL + status_path,
        "queue_position": 0,
    }
    status = {**examples["StatusProcessing"]["value"], "request_id": REQUEST_ID}
    with respx.mock(base_url=IN_PROCESS_URL, assert_all_called=False) as router:
        router.post(wire.submit_path(MODEL)).respond(202, json=queued)
        router.get(status_path).respond(200, json=status)
        yield


def seconds_for(mode: str, client: AuthenticatedClient, pairs: int, loop: asyncio.AbstractEventLoop) -> float:
    """Wall time of `pairs` submit + status pairs, sync or async (on `loop`)."""

    async def run_async() -> None:
        for _ in range(pairs):
            await async_pair(client)

    gc.collect()
    started = time.perf_counter()
    if mode == "sync":
        for _ in range(pairs):
            sync_pair(client)
    else:
        loop.run_until_complete(run_async())
    return time.perf_counter() - started


def compare(pairs: int = PAIRS, rounds: int = ROUNDS) -> list[Figure]:
    """ms per pair, the best of `rounds` for each side, the two sides' rounds taking turns so that
    other work on the machine weighs on both alike; a first, shorter round of each warms up."""
    figures = []
    for mode in ("sync", "async"):
        loop = asyncio.new_event_loop()
        with MockGateway(MockConfig(default_balance=Decimal(10**9))) as gateway:
            clients = {"mock": gateway.client(), "stub": client_for(IN_PROCESS_URL)}
            best = dict.fromkeys(clients, float("inf"))
            for round_ in range(rounds + 1):
                count = max(pairs // 10, 20) if round_ == 0 else pairs
                for side, client in clients.items():
                    with stubbed() if side == "stub" else nullcontext():
                        seconds = seconds_for(mode, client, count, loop)
                    if round_:
                        best[side] = min(best[side], seconds / pairs * 1000)
            for client in clients.values():
                loop.run_until_complete(client.get_async_httpx_client().aclose())
        loop.close()
        figures.append(Figure(mode, best["mock"], best["stub"]))
    return figures


def report(figures: list[Figure], pairs: int = PAIRS, rounds: int = ROUNDS) -> list[str]:
    lines = [
        f"In-process mock vs a respx stub: one submit + status pair through the generated client "
        f"(best of {rounds} × {pairs} pairs; goal ≤ {GOAL:g}×)"
    ]
    for figure in figures:
        verdict = "met" if figure.ratio <= GOAL else "missed"
        lines.append(
            f"  {figure.mode:5}  in-process {figure.mock_ms:.3f} ms  respx {figure.stub_ms:.3f} ms  "
            f"in-process vs respx {figure.ratio:.2f}×  ({verdict})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=PAIRS, help="pairs per measured round (%(default)s)")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds; the best counts (%(default)s)")
    args = parser.parse_args(argv)
    print("\n".join(report(compare(args.pairs, args.rounds), args.pairs, args.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
