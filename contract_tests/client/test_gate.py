"""`PriorityGate`: the connection slots of an AsyncBoogu, polls before new submits."""

from __future__ import annotations

import asyncio

import pytest

from boogu._gate import PriorityGate


async def test_freed_slots_go_to_the_lowest_priority_number_then_in_arrival_order() -> None:
    gate, served = PriorityGate(1), list[str]()
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot(0):
            await release.wait()

    async def take(name: str, priority: int) -> None:
        async with gate.slot(priority):
            served.append(name)

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0)
    waiters = [
        asyncio.create_task(take(n, p))
        for n, p in [("submit1", 1), ("poll1", 0), ("submit2", 1), ("poll2", 0)]
    ]
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, *waiters)
    assert served == ["poll1", "poll2", "submit1", "submit2"]


async def test_a_cancelled_waiter_loses_no_slot() -> None:
    gate = PriorityGate(1)
    async with gate.slot(0):
        waiting = asyncio.create_task(gate.slot(1).__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    async with asyncio.timeout(5), gate.slot(1):  # the slot came back
        pass


async def test_a_waiter_cancelled_after_its_grant_passes_the_slot_on() -> None:
    gate = PriorityGate(1)
    entered: list[str] = []

    async def take(name: str) -> None:
        async with gate.slot(0):
            entered.append(name)

    async with gate.slot(0):
        first, second = asyncio.create_task(take("first")), asyncio.create_task(take("second"))
        await asyncio.sleep(0)
    first.cancel()  # granted on release, cancelled before it ran
    await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
    assert entered == ["second"]


async def test_many_concurrent_holders_never_exceed_the_slots() -> None:
    gate, inside, most = PriorityGate(8), 0, 0

    async def take(priority: int) -> None:
        nonlocal inside, most
        async with gate.slot(priority):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(take(n % 3) for n in range(2000))), 30)
    assert (most, inside) == (8, 0)


def test_a_gate_needs_a_slot() -> None:
    with pytest.raises(ValueError, match="slots"):
        PriorityGate(0)
