"""Batches in-process: the input file is checked before anything is sent, the journal decides what a
run does, and only lines provably not accepted are submitted again."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from boogu.batch import BatchFileError, BatchRunner, ItemState, Journal, load_items, summarize
from boogu.webhooks import WebhookReceiver, line_webhook_url, log_record, read_webhook_log
from contract_tests.client.helpers import image_bytes, journal, mock_async_client, wallet
from mock_gateway.testing import MockGateway
from mock_gateway.testing import mock_gateway as mock_gateway_for

pytestmark = pytest.mark.mock_gateway(speed=100)


def jsonl(path: Path, *lines: object) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "line 2: not JSON"),
        ("[1, 2]", "line 2: expected a JSON object"),
        ({"prompt": "x", "num_image": 2}, "line 2: unknown property ('num_image' was unexpected)"),
        ({"negative_prompt": "x"}, "line 2: prompt: is required (required)"),
        ({"prompt": "x", "image_size": "huge"}, "line 2: image_size: 'huge' is not valid"),
        (
            {"prompt": "x", "num_images": 9},
            "line 2: num_images: 9 is greater than the maximum of 4 (maximum)",
        ),
        (
            {"prompt": "x", "image_url": "ftp://host/a.png"},
            "line 2: image_url: 'ftp://host/a.png' does not match",
        ),
        ({"prompt": "x", "image_url": "missing.png"}, "line 2: image_url: No such file"),
        ({"prompt": "x", "id": "first"}, "line 2: id 'first' is used twice"),
        ({"prompt": "x", "id": 7}, "line 2: id: must be a non-empty string"),
        ("[" * 100_000, "line 2: not JSON"),
    ],
)
def test_a_bad_line_is_refused_before_anything_runs(tmp_path: Path, line: object, message: str) -> None:
    source = jsonl(tmp_path / "jobs.jsonl", {"prompt": "fine", "id": "first"}, line)
    with pytest.raises(BatchFileError, match=re.escape(message)):
        load_items(source)


def test_every_bad_line_is_reported_in_one_run(tmp_path: Path) -> None:
    source = jsonl(
        tmp_path / "jobs.jsonl",
        {"prompt": "fine"},
        {"prompt": "x", "num_images": 9},
        {"prompt": "x", "num_inference_steps": 5},
        {"prompt": "fine too"},
        {"prompt": "x", "guidance_scale": "high"},
    )
    source.write_bytes(source.read_bytes() + b'{"prompt": "\xff"}\n')
    with pytest.raises(BatchFileError) as caught:
        load_items(source)
    message = str(caught.value)
    assert "4 bad lines, nothing was submitted" in message
    for expected in (
        "line 2: num_images",
        "line 3: num_inference_steps",
        "line 5: guidance_scale",
        "line 6: not UTF-8",
    ):
        assert expected in message
    assert "line 1" not in message and "line 4" not in message


def test_a_huge_file_of_bad_lines_is_reported_by_its_first_lines(tmp_path: Path) -> None:
    source = jsonl(tmp_path / "jobs.jsonl", *[{"prompt": "x", "num_images": 9}] * 500)
    with pytest.raises(BatchFileError, match="500 bad lines") as caught:
        load_items(source)
    assert "and 300 more" in str(caught.value)


def test_lines_become_requests(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(image_bytes("PNG"))
    source = jsonl(
        tmp_path / "jobs.jsonl",
        {"prompt": "a fox", "num_images": 2, "image_size": {"width": 64, "height": 32}},
        "",
        {"prompt": "make it blue", "image_url": "photo.png", "id": "edit-1"},
    )
    plain, edit = load_items(source)
    assert (plain.key, plain.line, plain.num_images) == ("line-1", 1, 2)
    assert edit.key == "edit-1" and type(edit.request).__name__ == "ImageEditRequest"
    assert edit.request.to_dict()["image_url"].startswith("data:image/png;base64,")
    assert plain.fingerprint != edit.fingerprint


def test_the_journal_survives_a_write_cut_short_and_is_locked(tmp_path: Path) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", {"prompt": "a"}, {"prompt": "b"}))
    path = tmp_path / "journal.jsonl"
    first = Journal(path)
    first.load(items)
    first.record("submitting", items[0])
    first.record("accepted", items[0], request_id="boogu-image_1", submitted_at=1.0)
    first.record("submitting", items[1])
    with pytest.raises(BatchFileError, match="in use"):
        Journal(path).load(items)
    first.close()
    with path.open("a") as handle:
        handle.write('{"event": "accepted", "key": "line-2", "requ')  # killed mid-write
    reread = Journal(path)
    states = reread.load(items)
    assert (states["line-1"].phase, states["line-1"].request_id) == ("accepted", "boogu-image_1")
    assert states["line-2"].phase == "submitting"  # its answer was never recorded: uncertain
    assert reread.damage == ["line 4: not a whole record (cut short, garbage or zeros)"]  # and it is seen


def test_a_changed_input_is_refused(tmp_path: Path) -> None:
    source = jsonl(tmp_path / "jobs.jsonl", {"prompt": "a"})
    journal_file = Journal(tmp_path / "journal.jsonl")
    journal_file.load(load_items(source))
    journal_file.record("submitting", load_items(source)[0])
    journal_file.close()
    jsonl(source, {"prompt": "b"})
    with pytest.raises(BatchFileError, match="changed"):
        Journal(tmp_path / "journal.jsonl").load(load_items(source))


async def test_a_batch_runs_every_line_and_a_second_run_does_nothing(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    source = jsonl(
        tmp_path / "jobs.jsonl",
        *({"prompt": f"fox {i}", "seed": i} for i in range(5)),
        {"prompt": "nsfw", "id": "flagged"},
    )
    items = load_items(source)
    seen: list[str] = []
    async with mock_async_client(mock_gateway) as client:
        runner = BatchRunner(
            client,
            items,
            Journal(tmp_path / "j.jsonl"),
            tmp_path / "out",
            concurrency=3,
            on_progress=lambda item, state: seen.append(f"{item.key}:{state.phase}"),
        )
        summary = await runner.run()
        calls = len(journal(mock_gateway))
        again = await BatchRunner(client, items, Journal(tmp_path / "j.jsonl"), tmp_path / "out").run()
    assert (summary.completed, summary.failed, summary.rejected, summary.charged_images) == (5, 1, 0, 6)
    assert not summary.ok and again == summary
    assert len(journal(mock_gateway)) == calls
    assert wallet(mock_gateway)["charged"] == 6 * Decimal("0.02")
    assert "line-1:submitting" in seen and "line-1:accepted" in seen and "flagged:finished" in seen
    assert sorted(Path(name).name for name in summary.files) == [f"line-{i}_0.jpg" for i in range(1, 6)]


async def test_a_refused_line_is_submitted_again_on_the_next_run(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", {"prompt": "a fox"}))
    with mock_gateway.http() as http:
        http.post("/__mock/keys", json={"key": "test-key", "balance": 0})
    async with mock_async_client(mock_gateway) as client:
        broke = await BatchRunner(client, items, Journal(tmp_path / "j.jsonl"), tmp_path).run()
        with mock_gateway.http() as http:
            http.post("/__mock/keys", json={"key": "test-key", "balance": 1})
        paid = await BatchRunner(client, items, Journal(tmp_path / "j.jsonl"), tmp_path).run()
    assert (broke.rejected, paid.completed) == (1, 1)
    assert [e["status"] for e in journal(mock_gateway) if e["method"] == "POST"] == [402, 202]


async def test_an_uncertain_line_is_only_resubmitted_when_asked(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", {"prompt": "a fox"}))
    path = tmp_path / "j.jsonl"
    interrupted = Journal(path)
    interrupted.load(items)
    interrupted.record("submitting", items[0])  # then killed before the answer was journaled
    interrupted.close()
    async with mock_async_client(mock_gateway) as client:
        cautious = await BatchRunner(client, items, Journal(path), tmp_path).run()
        assert journal(mock_gateway) == []
        bold = await BatchRunner(client, items, Journal(path), tmp_path, resubmit_uncertain=True).run()
    assert (cautious.uncertain, cautious.completed) == (1, 0)
    assert (bold.uncertain, bold.completed) == (0, 1)


async def test_error_lines_are_submitted_again_on_the_next_run_unless_told_not_to(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", {"prompt": "a fox"}, {"prompt": "a cat"}))
    path = tmp_path / "j.jsonl"
    mock_gateway.backend.configure({"error_rate": 1.0})
    async with mock_async_client(mock_gateway) as client:
        broken = await BatchRunner(client, items, Journal(path), tmp_path).run()
        mock_gateway.backend.configure({"error_rate": 0.0})
        left = await BatchRunner(client, items, Journal(path), tmp_path, retry_errors=False).run()
        assert len([e for e in journal(mock_gateway) if e["method"] == "POST"]) == 2
        fixed = await BatchRunner(client, items, Journal(path), tmp_path).run()
    assert (broken.errors, broken.charged_images) == (2, 0)  # ERROR jobs are not charged
    assert left == broken
    assert (fixed.completed, fixed.errors, fixed.charged_images) == (2, 0, 2)
    assert fixed.ok
    assert wallet(mock_gateway)["charged"] == 2 * Decimal("0.02")


async def test_a_line_fixed_after_a_rejection_runs_without_a_new_journal(
    mock_gateway: MockGateway, tmp_path: Path
) -> None:
    source = jsonl(tmp_path / "jobs.jsonl", {"prompt": "a fox", "id": "fox"})
    path = tmp_path / "j.jsonl"
    with mock_gateway.http() as http:
        http.post("/__mock/keys", json={"key": "test-key", "balance": 0})
    async with mock_async_client(mock_gateway) as client:
        refused = await BatchRunner(client, load_items(source), Journal(path), tmp_path).run()
        with mock_gateway.http() as http:
            http.post("/__mock/keys", json={"key": "test-key", "balance": 1})
        jsonl(source, {"prompt": "a red fox", "id": "fox"})  # edited after the 402
        fixed = await BatchRunner(client, load_items(source), Journal(path), tmp_path).run()
    assert (refused.rejected, fixed.completed) == (1, 1)
    jsonl(source, {"prompt": "a blue fox", "id": "fox"})  # edited after its job was accepted
    with pytest.raises(BatchFileError, match=r"changed since .* recorded its job as downloaded"):
        Journal(path).load(load_items(source))


def test_the_charged_figure_counts_pending_jobs_and_names_them(tmp_path: Path) -> None:
    items = load_items(
        jsonl(
            tmp_path / "jobs.jsonl",
            {"prompt": "done", "num_images": 2},
            {"prompt": "running", "num_images": 3},
            {"prompt": "lost", "num_images": 4},
            {"prompt": "never sent"},
        )
    )
    states = {item.key: ItemState() for item in items}
    states["line-1"] = ItemState(phase="downloaded", status={"status": "COMPLETED"})
    states["line-2"] = ItemState(phase="accepted", request_id="boogu-image_2")
    states["line-3"] = ItemState(phase="submitting")
    summary = summarize(items, states, interrupted=True)
    assert summary.charged_images == 5  # the completed job and the one still running
    assert (summary.pending, summary.pending_lines) == (1, ["line-2"])
    assert (summary.uncertain, summary.uncertain_lines) == (1, ["line-3"])
    assert summary.not_submitted == 1


async def test_a_batch_stopped_while_rate_limited_submits_nothing_more(tmp_path: Path) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", *({"prompt": f"fox {i}"} for i in range(6))))
    with mock_gateway_for(speed=100, rate_limit={"rate": 0.5, "burst": 1}) as gateway:
        async with mock_async_client(gateway) as client:
            runner = BatchRunner(client, items, Journal(tmp_path / "j.jsonl"), tmp_path, concurrency=6)
            stop = asyncio.Event()
            task = asyncio.create_task(runner.run(stop))
            while "rejected" not in {state.phase for state in runner.states.values()}:
                await asyncio.sleep(0.01)
            posts = len([e for e in journal(gateway) if e["method"] == "POST"])
            stop.set()
            summary = await asyncio.wait_for(task, timeout=2)
            await asyncio.sleep(0.3)
            assert len([e for e in journal(gateway) if e["method"] == "POST"]) == posts
    assert summary.interrupted and summary.uncertain == 0
    assert summary.not_submitted + summary.rejected + summary.pending + summary.completed == 6


async def test_an_uncertain_line_is_recovered_from_its_webhook_without_paying_twice(
    mock_gateway_server: MockGateway, tmp_path: Path
) -> None:
    """A kill in the gap: the submit reached the gateway, its answer was never journaled. The webhook
    sent to the line's own URL names the job, and the recovery waits for it instead of paying again."""
    items = load_items(jsonl(tmp_path / "jobs.jsonl", {"prompt": "a fox"}, {"prompt": "an owl", "id": "owl"}))
    path, log = tmp_path / "j.jsonl", tmp_path / "webhooks.jsonl"
    killed = Journal(path)
    killed.load(items)
    for item in items:
        killed.record("submitting", item)  # only line-1's request left before the kill
    killed.close()
    with WebhookReceiver() as receiver:
        async with mock_async_client(mock_gateway_server) as client:
            sent = await client.submit(
                items[0].request, webhook_url=line_webhook_url(receiver.url, killed.webhook_line(items[0]))
            )
            final = await asyncio.to_thread(receiver.wait_for, sent.request_id, 10)
            delivery = log_record(final, receiver.line_of(sent.request_id))
            forged = json.loads(delivery) | {
                "request_id": "boogu-image_forged",
                "line": killed.webhook_line(items[1]),
            }
            log.write_bytes(
                b"\n".join(
                    [
                        delivery.encode(),
                        delivery.encode(),  # the gateway delivered it twice
                        json.dumps(json.loads(delivery) | {"line": "line-1@0000000000000000"}).encode(),
                        json.dumps(forged).encode(),  # a stranger's post: the gateway knows no such job
                        b"{not json",
                        b'{"line": "line-1", "status": "\xff"}',
                        b"[" * 100_000,
                        b'{"line": "' + b"x" * (3 * 1024 * 1024) + b'"}',
                        b"",
                    ]
                )
            )
            recovered = await BatchRunner(
                client, items, Journal(path), tmp_path / "out", recover_from=read_webhook_log(log)
            ).run()
    assert read_webhook_log(log).skipped == 4
    assert (recovered.completed, recovered.uncertain_lines, recovered.charged_images) == (1, ["owl"], 1)
    assert recovered.foreign_webhooks == 1  # the delivery to a URL without this journal's token
    assert [e["status"] for e in journal(mock_gateway_server) if e["method"] == "POST"] == [202]
    assert wallet(mock_gateway_server)["charged"] == Decimal("0.02")
    states = Journal(path).load(items)
    assert states["line-1"].request_id == sent.request_id and states["owl"].phase == "submitting"


async def test_each_line_is_submitted_with_its_own_webhook_url(
    mock_gateway_server: MockGateway, tmp_path: Path
) -> None:
    items = load_items(jsonl(tmp_path / "jobs.jsonl", {"prompt": "a", "id": "a/b c?"}, {"prompt": "b"}))
    with WebhookReceiver(path="/hooks") as receiver:
        async with mock_async_client(mock_gateway_server) as client:
            summary = await BatchRunner(
                client, items, Journal(tmp_path / "j.jsonl"), tmp_path / "out", webhook_url=receiver.url
            ).run()
        written = Journal(tmp_path / "j.jsonl")
        states = written.load(items)
        lines = {
            receiver.line_of(state.request_id or "")
            for state in states.values()
            for _ in [await asyncio.to_thread(receiver.wait_for, state.request_id or "", 10)]
        }
    assert summary.completed == 2
    assert lines == {written.webhook_line(item) for item in items}
    assert all(str(line).endswith(f"~{written.token}") for line in lines)  # this journal's own URLs
