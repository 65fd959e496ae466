"""The served mock's collection pacing: full collections skip what survived the last one, and a
periodic sweep still collects cycles among old objects."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from mock_gateway.server._gc import CollectionPacer


class Cycle:
    def __init__(self) -> None:
        self.me = self


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def paced() -> Iterator[tuple[CollectionPacer, Clock]]:
    clock = Clock()
    pacer = CollectionPacer(clock, sweep_seconds=600)
    pacer.install()
    try:
        yield pacer, clock
    finally:
        pacer.uninstall()
        gc.collect()


def test_install_freezes_what_startup_left(paced: tuple[CollectionPacer, Clock]) -> None:
    assert gc.get_freeze_count() > 0
    assert gc.get_count()[0] < 100  # nothing young is left to collect


def test_a_full_collection_freezes_its_survivors(paced: tuple[CollectionPacer, Clock]) -> None:
    held = [Cycle() for _ in range(1_000)]  # jobs held for an hour
    before = gc.get_freeze_count()
    gc.collect()
    assert gc.get_freeze_count() >= before + len(held)


def test_young_collections_change_nothing(paced: tuple[CollectionPacer, Clock]) -> None:
    before = gc.get_freeze_count()
    gc.collect(1)
    assert gc.get_freeze_count() == before


def test_the_sweep_collects_cycles_among_frozen_objects(paced: tuple[CollectionPacer, Clock]) -> None:
    _, clock = paced
    cycle = Cycle()
    alive = weakref.ref(cycle)
    gc.collect()  # survives, and is frozen
    del cycle
    gc.collect()
    assert alive() is not None, "a frozen cycle waits for the sweep"
    clock.now = 600.0
    gc.collect()  # the sweep: everything handed back to the collector
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert alive() is None
    assert gc.get_freeze_count() > 0, "and the survivors of that walk are frozen again"


def test_uninstall_hands_everything_back() -> None:
    pacer = CollectionPacer(Clock())
    pacer.install()
    pacer.uninstall()
    assert gc.get_freeze_count() == 0
    assert not any(getattr(callback, "__self__", None) is pacer for callback in gc.callbacks)
