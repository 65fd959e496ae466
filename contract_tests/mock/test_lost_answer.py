"""The uncertain window: a submit the gateway accepts and charges, whose answer the caller never gets.

`lost_answer_rate` (with `lost_answer_mode`) and `X-Mock-Outcome: lost-answer-drop` / `lost-answer-500`
lose the answer of an accepted submit: its job is created, charged, runs to its end, polls by id and
delivers its webhook, but the caller sees a dropped connection or a `500`. The journal keeps the id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from mock_gateway.cli import main
from mock_gateway.model import ConfigError, GatewayBackend, ManualClock, MockConfig, SyncWait
from mock_gateway.testing import MockGateway, gateway_process

KEY = {"Ocp-Apim-Subscription-Key": "test-key"}
TEXT_PATH = "/boogu-image/v1/boogu-image-request"
EDIT_PATH = "/boogu-image-edit/v1/boogu-image-edit-request"
INTERNAL = {
    "error": "Internal Server Error",
    "message": "The gateway could not process the request. Try again later.",
}
HOOK = "http://127.0.0.1:9/hook"


class Hooks:
    """A webhook sender that records what it is asked to deliver and answers 200."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []

    async def __call__(self, url: str, payload: dict[str, Any]) -> int:
        self.payloads.append(payload)
        return 200


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def gateway(hooks: Hooks) -> Iterator[MockGateway]:
    with MockGateway(MockConfig(seed=3), clock=ManualClock(), webhook_sender=hooks) as mock:
        yield mock


@pytest.fixture(scope="module")
def served_gateway() -> Iterator[MockGateway]:
    with MockGateway(MockConfig(seed=3), clock=ManualClock(), served=True) as mock:
        yield mock


@pytest.fixture
def served(served_gateway: MockGateway) -> Iterator[MockGateway]:
    yield served_gateway
    served_gateway.configure(lost_answer_rate=0.0, lost_answer_mode="drop")
    served_gateway.backend.reset()


def last_entry(admin: httpx.Client) -> dict[str, Any]:
    entry: dict[str, Any] = admin.get("/__mock/requests").json()[-1]
    return entry


def wallet(admin: httpx.Client) -> tuple[str, str]:
    key = admin.get("/__mock/keys/test-key").json()
    return key["balance"], key["charged"]


def send(
    http: httpx.Client, body: dict[str, Any], outcome: str | None = None, webhook: str | None = None
) -> httpx.Response | None:
    """Submit; None when the connection broke, as a client meets a dropped answer."""
    headers = {**KEY, **({"X-Mock-Outcome": outcome} if outcome else {})}
    if webhook is not None:
        headers["X-Webhook-URL"] = webhook
    try:
        return http.post(EDIT_PATH if "image_url" in body else TEXT_PATH, json=body, headers=headers)
    except httpx.TransportError:
        return None


def assert_lost_then_completes(
    gateway: MockGateway, answer: httpx.Response | None, lost: str, final: str = "COMPLETED"
) -> dict[str, Any]:
    """The caller got no id, yet the job exists, is held for, runs to `final` and is charged; status
    calls keep answering whatever the rate."""
    with gateway.http() as admin:
        if lost == "drop":
            assert answer is None
        else:
            assert answer is not None and (answer.status_code, answer.json()) == (500, INTERNAL)
        entry = last_entry(admin)
        assert entry["status"] == (0 if lost == "drop" else 500)
        request_id = entry["request_id"]
        assert request_id and request_id.startswith("boogu-image")
        assert wallet(admin) == ("99.98", "0")  # held at once, as for any accepted job
        gateway.advance(60)
        done = admin.get(f"/v2/requests/status/{request_id}", headers=KEY)
        assert done.status_code == 200
        assert done.json()["status"] == final
        assert wallet(admin) == ("99.98", "0.02")
        return dict(done.json())


# --- the setting ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"lost_answer_rate": 1.5}, "lost_answer_rate: 1.5 is not between 0 and 1", id="rate-high"
        ),
        pytest.param(
            {"lost_answer_rate": -0.1}, "lost_answer_rate: -0.1 is not between 0 and 1", id="rate-low"
        ),
        pytest.param({"lost_answer_rate": float("nan")}, "lost_answer_rate: nan", id="rate-nan"),
        pytest.param({"lost_answer_rate": "0.5"}, "lost_answer_rate: expected a number", id="rate-text"),
        pytest.param({"lost_answer_rate": True}, "lost_answer_rate: expected a number", id="rate-bool"),
        pytest.param({"lost_answer_mode": "504"}, 'expected "drop" or "500", got \'504\'', id="mode-504"),
        pytest.param({"lost_answer_mode": 500}, 'expected "drop" or "500", got 500', id="mode-int"),
        pytest.param({"lost_answer_mode": None}, "lost_answer_mode: expected", id="mode-null"),
    ],
)
def test_bad_lost_answer_settings_are_refused_naming_them(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="lost_answer") as raised:
        MockConfig().updated(changes)
    assert message in str(raised.value)


def test_patch_config_takes_the_settings_or_refuses_them_whole(gateway: MockGateway) -> None:
    with gateway.http() as admin:
        assert admin.get("/__mock/config").json()["lost_answer_rate"] == 0.0
        refused = admin.patch("/__mock/config", json={"lost_answer_rate": 0.5, "lost_answer_mode": "x"})
        assert refused.status_code == 400
        assert "lost_answer_mode" in refused.json()["message"]
        assert gateway.backend.config.lost_answer_rate == 0.0
        taken = admin.patch("/__mock/config", json={"lost_answer_rate": 0.5, "lost_answer_mode": "500"})
        assert taken.status_code == 200
        assert (taken.json()["lost_answer_rate"], taken.json()["lost_answer_mode"]) == (0.5, "500")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--lost-answer-rate", "2"], "lost_answer_rate: 2.0 is not between 0 and 1", id="rate"),
        pytest.param(["--lost-answer-mode", "504"], 'lost_answer_mode: expected "drop" or "500"', id="mode"),
    ],
)
def test_cli_refuses_bad_lost_answer_flags(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    assert message in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    "outcome",
    [
        "lost-answer",
        "lost-answer-504",
        "lost-answer-drop, lost-answer-500",
        "failed, error",
        "completed,",
        "",
    ],
)
def test_a_bad_outcome_header_is_400_and_charges_nothing(gateway: MockGateway, outcome: str) -> None:
    with gateway.http() as http:
        answer = http.post(TEXT_PATH, json={"prompt": "x"}, headers={**KEY, "X-Mock-Outcome": outcome})
        assert answer.status_code == 400
        assert "lost-answer-drop, lost-answer-500" in answer.json()["message"]
        assert wallet(http) == ("100", "0")
    assert len(gateway.backend.jobs) == 0


# --- in-process ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "outcome", "lost"),
    [
        pytest.param({"lost_answer_rate": 1.0}, None, "drop", id="rate-drop"),
        pytest.param({"lost_answer_rate": 1.0, "lost_answer_mode": "500"}, None, "500", id="rate-500"),
        pytest.param({}, "lost-answer-drop", "drop", id="header-drop"),
        pytest.param({}, "Lost-Answer-500", "500", id="header-500"),
    ],
)
def test_an_accepted_submit_loses_its_answer_and_its_job_still_runs(
    gateway: MockGateway, hooks: Hooks, settings: dict[str, Any], outcome: str | None, lost: str
) -> None:
    gateway.configure(**settings)
    with gateway.http() as http:
        answer = send(http, {"prompt": "a red fox"}, outcome, webhook=HOOK)
    done = assert_lost_then_completes(gateway, answer, lost)
    assert hooks.payloads == [done]


def test_a_forced_outcome_and_a_lost_answer_combine(gateway: MockGateway) -> None:
    with gateway.http() as http:
        answer = send(http, {"prompt": "x"}, "failed, lost-answer-500")
    assert assert_lost_then_completes(gateway, answer, "500", final="FAILED")["error"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"prompt": "x", "sync_mode": True, "image_size": "square"}, id="sync-text"),
        pytest.param(
            {"prompt": "snow", "image_url": "https://images.test/in.png", "image_size": "square"}, id="edit"
        ),
    ],
)
def test_sync_mode_and_edits_lose_their_answer_too(gateway: MockGateway, body: dict[str, Any]) -> None:
    gateway.configure(lost_answer_rate=1.0, lost_answer_mode="500")
    with gateway.http() as http:
        answer = send(http, body)
    assert_lost_then_completes(gateway, answer, "500")


async def test_an_async_client_meets_the_drop_as_a_transport_error(gateway: MockGateway) -> None:
    gateway.configure(lost_answer_rate=1.0)
    async with httpx.AsyncClient(base_url=gateway.base_url, **gateway.httpx_args()) as client:
        with pytest.raises(httpx.TransportError, match="lost answer"):
            await client.post(TEXT_PATH, json={"prompt": "x"}, headers=KEY)
    assert len(gateway.backend.jobs) == 1


def test_refused_submits_lose_nothing(gateway: MockGateway) -> None:
    """Only an accepted submit can lose its answer: a 400 or 402 is answered as it is."""
    gateway.configure(lost_answer_rate=1.0)
    with gateway.http() as http:
        invalid = send(http, {"prompt": ""})
        assert invalid is not None and invalid.status_code == 400
        http.post("/__mock/keys", json={"key": "test-key", "balance": 0})
        refused = send(http, {"prompt": "x"})
        assert refused is not None and refused.status_code == 402
    assert len(gateway.backend.jobs) == 0


# --- seeded draws --------------------------------------------------------------------------------------


def lost_pattern(backend: GatewayBackend, outcomes: Sequence[str | None]) -> list[tuple[str, str | None]]:
    """(request_id, how its answer is lost) for one submit per outcome header, on the model alone."""
    pattern: list[tuple[str, str | None]] = []
    for outcome in outcomes:
        accepted = backend.submit(
            backend.admit("test-key", "boogu-image"), {"prompt": "x"}, base_url="http://g", outcome=outcome
        )
        assert not isinstance(accepted, SyncWait)
        pattern.append((accepted.job.request_id, accepted.lost))
    return pattern


def seeded(seed: int | None = 11, **settings: Any) -> GatewayBackend:
    return GatewayBackend(MockConfig().updated({"seed": seed, **settings}), clock=ManualClock())


def test_a_seeded_rate_loses_the_same_answers_every_run() -> None:
    plain = [None] * 40
    first = lost_pattern(seeded(lost_answer_rate=0.5), plain)
    assert first == lost_pattern(seeded(lost_answer_rate=0.5), plain)
    assert {lost for _, lost in first} == {None, "drop"}
    as_500 = [None if lost is None else "server_error" for _, lost in first]
    backend = seeded(lost_answer_rate=0.5, lost_answer_mode="500")  # the mode changes no draw
    assert [lost for _, lost in lost_pattern(backend, plain)] == as_500
    backend.reset()
    assert [lost for _, lost in lost_pattern(backend, plain)] == as_500
    other = [lost for _, lost in lost_pattern(seeded(seed=12, lost_answer_rate=0.5), plain)]
    assert other != [lost for _, lost in first]


def test_a_forced_lost_answer_leaves_the_seeded_run_as_it_was() -> None:
    """The header draws nothing, and with the rate at 0 nothing is drawn: ids stay those of a plain run."""
    plain = lost_pattern(seeded(), [None] * 5)
    forced = lost_pattern(seeded(), [None, "lost-answer-500", None, "lost-answer-drop", None])
    assert [request_id for request_id, _ in forced] == [request_id for request_id, _ in plain]
    assert [lost for _, lost in forced] == [None, "server_error", None, "drop", None]


# --- served: a real socket ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["drop", "500"])
def test_served_gateway_loses_the_answer_on_the_socket(served: MockGateway, mode: str) -> None:
    served.configure(lost_answer_rate=1.0, lost_answer_mode=mode)
    with served.http() as http:
        if mode == "drop":  # the response is cut short: the socket closes under the client
            with pytest.raises(httpx.RemoteProtocolError):
                http.post(TEXT_PATH, json={"prompt": "x"}, headers=KEY)
            answer = None
        else:
            answer = http.post(TEXT_PATH, json={"prompt": "x"}, headers=KEY)
    assert_lost_then_completes(served, answer, mode)


def test_the_cli_flags_lose_answers_of_a_gateway_process() -> None:
    flags = ("--lost-answer-rate", "1", "--lost-answer-mode", "500", "--seed", "1")
    with gateway_process(*flags) as base_url, httpx.Client(base_url=base_url) as http:
        answer = http.post(TEXT_PATH, json={"prompt": "x"}, headers=KEY)
        assert (answer.status_code, answer.json()) == (500, INTERNAL)
        assert http.get("/__mock/config").json()["lost_answer_rate"] == 1.0
        request_id = http.get("/__mock/requests").json()[-1]["request_id"]
        assert wallet(http) == ("99.98", "0")
        http.post("/__mock/clock/advance", json={"seconds": 60})
        assert http.get(f"/v2/requests/status/{request_id}", headers=KEY).json()["status"] == "COMPLETED"
        assert wallet(http) == ("99.98", "0.02")
