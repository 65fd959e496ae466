import asyncio
import json
from typing import Any

import pytest

from mock_gateway.model._clock import ManualClock
from mock_gateway.model._webhooks import WebhookDispatcher, check_webhook_target

PAYLOAD = {"id": "req_1", "status": "succeeded", "result": {"images": []}}


class FakeSender:
    """Fails the first `failures` calls to each URL (raising `error`, or answering 500), then answers 204."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, url: str, payload: dict[str, Any]) -> int:
        self.calls.append((url, payload))
        if sum(called == url for called, _ in self.calls) > self.failures:
            return 204
        if self.error is not None:
            raise self.error
        return 500


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def let_tasks_run() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def run_until_settled(dispatcher: WebhookDispatcher, clock: ManualClock) -> None:
    """Delivers whatever is due, then jumps the clock to the next scheduled attempt."""
    while True:
        await dispatcher.deliver_due()
        pending = [d.next_attempt_at for d in dispatcher.deliveries() if d.next_attempt_at is not None]
        if not pending:
            return
        clock.advance(max(0.0, min(pending) - clock.now()))


# --- SSRF guard -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/",
        "http://LOCALHOST:8080/hook",
        "http://127.0.0.1:9000/x",
        "http://127.0.0.2:9/x",
        "https://127.255.255.254/",
        "http://[::1]:8000/",
    ],
)
def test_loopback_targets_are_allowed(url: str) -> None:
    assert check_webhook_target(url, []) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost.evil.example/",
        "http://localhost@evil.example/",
        "http://127.0.0.1.nip.io/",
        "http://evil.example/",
    ],
)
def test_other_hosts_are_rejected(url: str) -> None:
    message = check_webhook_target(url, [])
    assert message is not None
    assert message.startswith("X-Webhook-URL: host ")
    assert "--webhook-allow" in message


def test_rejection_message_names_the_host() -> None:
    assert check_webhook_target("http://evil.example/", []) == (
        "X-Webhook-URL: host 'evil.example' is not allowed; "
        "the mock only calls loopback addresses unless --webhook-allow lists the host"
    )


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ftp://localhost/", "scheme 'ftp'"),
        ("file:///etc/passwd", "scheme 'file'"),
        ("localhost:8000/hook", "scheme 'localhost'"),
        ("http:///hook", "has no host"),
        ("http://localhost:99999/", "not a valid URL"),
        ("http://[::1/", "not a valid URL"),
    ],
)
def test_malformed_targets_name_the_rule(url: str, rule: str) -> None:
    message = check_webhook_target(url, ["localhost"])
    assert message is not None
    assert rule in message


@pytest.mark.parametrize(
    ("url", "allowlist", "allowed"),
    [
        ("https://hooks.example.test/", [], False),
        ("https://hooks.example.test/", ["hooks.example.test"], True),
        ("https://HOOKS.Example.test/", ["hooks.EXAMPLE.test"], True),
        ("https://hooks.example.test/", ["hooks.example.test:443"], True),
        ("https://hooks.example.test/", ["hooks.example.test:8443"], False),
        ("https://hooks.example.test:8443/", ["hooks.example.test:8443"], True),
        ("http://hooks.example.test/", ["hooks.example.test:443"], False),
        ("https://hooks.example.test/", ["*.example.test"], True),
        ("https://a.b.example.test/", ["*.example.test"], True),
        ("https://example.test/", ["*.example.test"], False),
        ("https://evilexample.test/", ["*.example.test"], False),
        ("https://hooks.example.test.evil/", ["*.example.test"], False),
        ("https://hooks.example.test:8443/", ["*.example.test:8443"], True),
        ("https://hooks.example.test:9443/", ["*.example.test:8443"], False),
        ("https://other.example/", ["hooks.example.test"], False),
        ("http://10.0.0.1/", ["10.0.0.1"], True),
        ("http://[fd00::1]:8080/", ["[fd00::1]:8080"], True),
    ],
)
def test_allowlist(url: str, allowlist: list[str], allowed: bool) -> None:
    assert (check_webhook_target(url, allowlist) is None) is allowed


# --- delivery ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_attempts": 0}, "^max_attempts"),
        ({"backoff": -1}, "^backoff"),
        ({"max_backoff": -1}, "^max_backoff"),
        ({"max_records": -1}, "^max_records"),
    ],
)
def test_dispatcher_validates_its_settings(clock: ManualClock, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WebhookDispatcher(clock, FakeSender(), **kwargs)


async def test_configure_applies_from_the_next_attempt(clock: ManualClock) -> None:
    dispatcher = WebhookDispatcher(clock, FakeSender(failures=100), max_attempts=5, backoff=1.0)
    start = clock.now()
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    await dispatcher.deliver_due()
    assert delivery.next_attempt_at == start + 1
    dispatcher.configure(max_attempts=3, backoff=10.0)
    with pytest.raises(ValueError, match=r"^max_attempts"):
        dispatcher.configure(max_attempts=0, backoff=1.0)
    await run_until_settled(dispatcher, clock)
    assert [a.at - start for a in delivery.attempts] == [0, 1, 21]
    assert delivery.state == "failed"


async def test_delivers_a_snapshot_of_the_payload_immediately(clock: ManualClock) -> None:
    sender = FakeSender()
    dispatcher = WebhookDispatcher(clock, sender)
    payload = json.loads(json.dumps(PAYLOAD))
    delivery = dispatcher.enqueue("req_1", "http://127.0.0.1:9/hook", payload)
    payload["status"] = "changed later"
    assert delivery.next_attempt_at == clock.now()
    assert dispatcher.due() == [delivery]

    assert await dispatcher.deliver_due() == [delivery]
    assert sender.calls == [("http://127.0.0.1:9/hook", PAYLOAD)]
    assert delivery.state == "delivered"
    assert delivery.next_attempt_at is None
    assert [(a.at, a.status_code, a.error) for a in delivery.attempts] == [(clock.now(), 204, None)]
    assert delivery.attempts[0].duration_ms >= 0
    assert dispatcher.due() == []
    assert await dispatcher.deliver_due() == []


async def test_failed_attempts_back_off_exponentially_until_delivered(clock: ManualClock) -> None:
    sender = FakeSender(failures=3)
    dispatcher = WebhookDispatcher(clock, sender, backoff=1.0)
    start = clock.now()
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    await run_until_settled(dispatcher, clock)
    assert delivery.state == "delivered"
    assert [a.at - start for a in delivery.attempts] == [0, 1, 3, 7]
    assert [a.status_code for a in delivery.attempts] == [500, 500, 500, 204]


async def test_gives_up_after_max_attempts_with_capped_backoff(clock: ManualClock) -> None:
    sender = FakeSender(failures=100)
    dispatcher = WebhookDispatcher(clock, sender, max_attempts=6, backoff=2.0, max_backoff=10.0)
    start = clock.now()
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    await run_until_settled(dispatcher, clock)
    assert delivery.state == "failed"
    assert delivery.next_attempt_at is None
    assert [a.at - start for a in delivery.attempts] == [0, 2, 6, 14, 24, 34]
    assert len(sender.calls) == 6


async def test_not_due_before_the_backoff_has_passed(clock: ManualClock) -> None:
    dispatcher = WebhookDispatcher(clock, FakeSender(failures=1), backoff=1.5)
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    await dispatcher.deliver_due()
    assert delivery.next_attempt_at == clock.now() + 1.5
    clock.advance(1.4)
    assert dispatcher.due() == []
    assert await dispatcher.deliver_due() == []
    clock.advance(0.1)
    assert dispatcher.due() == [delivery]


async def test_exceptions_are_recorded_as_failed_attempts(clock: ManualClock) -> None:
    sender = FakeSender(failures=2, error=ConnectionRefusedError("connection refused"))
    dispatcher = WebhookDispatcher(clock, sender, max_attempts=2)
    delivery = dispatcher.enqueue("req_1", "http://localhost:1/", PAYLOAD)
    await run_until_settled(dispatcher, clock)
    assert delivery.state == "failed"
    assert [(a.status_code, a.error) for a in delivery.attempts] == [
        (None, "ConnectionRefusedError: connection refused")
    ] * 2


@pytest.mark.parametrize("status", [199, 301, 404, 500])
async def test_non_2xx_status_is_a_failed_attempt(clock: ManualClock, status: int) -> None:
    async def sender(url: str, payload: dict[str, Any]) -> int:
        return status

    dispatcher = WebhookDispatcher(clock, sender, max_attempts=1)
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    await dispatcher.deliver_due()
    assert delivery.state == "failed"
    assert delivery.attempts[0].status_code == status
    assert delivery.attempts[0].error is None


async def test_deliveries_in_flight_are_not_sent_twice(clock: ManualClock) -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def slow_sender(url: str, payload: dict[str, Any]) -> int:
        calls.append(url)
        await release.wait()
        return 200

    dispatcher = WebhookDispatcher(clock, slow_sender)
    a = dispatcher.enqueue("req_1", "http://localhost/a", PAYLOAD)
    b = dispatcher.enqueue("req_2", "http://localhost/b", PAYLOAD)
    first = asyncio.create_task(dispatcher.deliver_due())
    await let_tasks_run()
    assert calls == ["http://localhost/a", "http://localhost/b"]  # sent concurrently
    assert dispatcher.due() == []
    assert await dispatcher.deliver_due() == []
    release.set()
    assert await first == [a, b]
    assert calls == ["http://localhost/a", "http://localhost/b"]
    assert a.state == b.state == "delivered"


async def test_cancelled_attempt_stays_due(clock: ManualClock) -> None:
    async def hanging_sender(url: str, payload: dict[str, Any]) -> int:
        await asyncio.Event().wait()
        return 200

    dispatcher = WebhookDispatcher(clock, hanging_sender)
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(dispatcher.deliver_due(), timeout=0.01)
    assert delivery.attempts == []
    assert dispatcher.due() == [delivery]


async def test_deliveries_filter_by_request_and_reset(clock: ManualClock) -> None:
    dispatcher = WebhookDispatcher(clock, FakeSender())
    a = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    b = dispatcher.enqueue("req_2", "http://localhost/", PAYLOAD)
    c = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    assert len({a.id, b.id, c.id}) == 3
    assert dispatcher.deliveries() == [a, b, c]
    assert dispatcher.deliveries("req_1") == [a, c]
    dispatcher.reset()
    assert dispatcher.deliveries() == []
    assert await dispatcher.deliver_due() == []
    assert dispatcher.enqueue("req_3", "http://localhost/", PAYLOAD).id not in {a.id, b.id, c.id}


async def test_reset_while_sending_drops_the_result(clock: ManualClock) -> None:
    release = asyncio.Event()

    async def slow_sender(url: str, payload: dict[str, Any]) -> int:
        await release.wait()
        return 500

    dispatcher = WebhookDispatcher(clock, slow_sender)
    dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    task = asyncio.create_task(dispatcher.deliver_due())
    await let_tasks_run()
    dispatcher.reset()
    release.set()
    await task
    assert dispatcher.deliveries() == []
    assert dispatcher.due() == []


async def test_only_the_newest_finished_deliveries_are_kept(clock: ManualClock) -> None:
    dispatcher = WebhookDispatcher(clock, FakeSender(failures=1), max_attempts=2, max_records=3)
    for n in range(5):
        dispatcher.enqueue(f"req_{n}", f"http://localhost/{n}", PAYLOAD)
    await dispatcher.deliver_due()  # every first attempt fails: all five still pending, none dropped
    assert len(dispatcher.deliveries()) == 5
    clock.advance(1)
    await dispatcher.deliver_due()
    assert [d.request_id for d in dispatcher.deliveries()] == ["req_2", "req_3", "req_4"]
    assert {d.state for d in dispatcher.deliveries()} == {"delivered"}


async def test_to_dict_is_json_ready_and_carries_no_api_key(clock: ManualClock) -> None:
    dispatcher = WebhookDispatcher(clock, FakeSender(failures=1, error=TimeoutError("timed out")))
    delivery = dispatcher.enqueue("req_1", "http://localhost/", PAYLOAD)
    await dispatcher.deliver_due()
    data = delivery.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "id": delivery.id,
        "request_id": "req_1",
        "url": "http://localhost/",
        "payload": PAYLOAD,
        "attempts": [
            {
                "at": clock.now(),
                "status_code": None,
                "error": "TimeoutError: timed out",
                "duration_ms": delivery.attempts[0].duration_ms,
            }
        ],
        "state": "pending",
        "next_attempt_at": clock.now() + 1.0,
        "reason": None,
    }
