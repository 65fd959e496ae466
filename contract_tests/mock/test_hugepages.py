"""The served mock's heap on transparent huge pages: which mappings are advised, what a refusal
does, and (where Linux offers them) that a heap really ends up on huge pages."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from mock_gateway.server._hugepages import (
    HUGE_PAGE,
    MADV_COLLAPSE,
    MADV_HUGEPAGE,
    HugePages,
    anonymous_ranges,
    huge_pages_offered,
)

MB = 1024 * 1024
MAPS = [
    "55d0c0000000-55d0c0a00000 rw-p 00000000 00:00 0                          [heap]",
    "7f0000100000-7f0000900000 rw-p 00000000 00:00 0 ",
    "7f0001000000-7f0001100000 rw-p 00000000 00:00 0 ",  # 1 MiB: no whole huge page in it
    "7f0002000000-7f0002800000 r--p 00000000 08:01 1234                       /usr/lib/libc.so.6",
    "7f0003000000-7f0003800000 rw-p 00000000 08:01 1234                       /usr/lib/libc.so.6",
    "7ffc00000000-7ffc00400000 rw-p 00000000 00:00 0                          [stack]",
    "7ffd00000000-7ffd00400000 rw-p 00000000 00:00 0                          /memfd:x (deleted)",
    "not a mapping at all",
    "zz-yy rw-p 00000000 00:00 0",
    "",
]


class Kernel:
    """A madvise that records its calls and refuses what it is told to."""

    def __init__(self, refuse: frozenset[int] = frozenset()) -> None:
        self.calls: list[tuple[int, int, int]] = []
        self.refuse = refuse

    def __call__(self, start: int, length: int, advice: int) -> int:
        self.calls.append((start, length, advice))
        return -1 if advice in self.refuse else 0


def test_only_private_anonymous_memory_is_advised_in_whole_huge_pages() -> None:
    assert anonymous_ranges(MAPS) == [(0x55D0C0000000, 10 * MB), (0x7F0000200000, 6 * MB)]
    for start, length in anonymous_ranges(MAPS):
        assert start % HUGE_PAGE == 0 and length % HUGE_PAGE == 0


def test_each_range_is_advised_then_collapsed() -> None:
    kernel = Kernel()
    pages = HugePages(kernel, lambda: MAPS)
    assert pages.advise_once() == 8
    assert [advice for _, _, advice in kernel.calls] == [MADV_HUGEPAGE, MADV_COLLAPSE] * 2


def test_a_kernel_without_collapse_keeps_the_advice() -> None:
    kernel = Kernel(refuse=frozenset({MADV_COLLAPSE}))
    pages = HugePages(kernel, lambda: MAPS)
    assert pages.advise_once() == 0 and not pages.refused
    assert len(kernel.calls) == 4


def test_a_refusal_of_the_advice_stops_asking() -> None:
    kernel = Kernel(refuse=frozenset({MADV_HUGEPAGE}))
    pages = HugePages(kernel, lambda: MAPS)
    assert pages.advise_once() == 0 and pages.refused
    assert pages.advise_once() == 0 and len(kernel.calls) == 1


def test_the_thread_advises_every_period_and_stops() -> None:
    kernel = Kernel()
    pages = HugePages(kernel, lambda: MAPS, period=0.01, offered=lambda: True)
    pages.start()
    deadline = time.monotonic() + 5
    while len(kernel.calls) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    pages.stop()
    calls = len(kernel.calls)
    time.sleep(0.05)
    assert calls >= 8 and len(kernel.calls) == calls


def test_huge_unreadable_or_missing_maps_are_no_harm() -> None:
    many = [
        f"{n * 2 * HUGE_PAGE:x}-{(n * 2 + 1) * HUGE_PAGE:x} rw-p 00000000 00:00 0" for n in range(1, 20_001)
    ]
    assert HugePages(Kernel(), lambda: many).advise_once() == 20_000

    def unreadable() -> list[str]:
        raise PermissionError("no /proc here")

    pages = HugePages(Kernel(), unreadable, period=0.01, offered=lambda: True)
    pages.start()
    time.sleep(0.05)
    pages.stop()  # the thread ended on the error, and stop still returns


@pytest.mark.parametrize(
    ("text", "offered"),
    [
        ("always [madvise] never\n", True),
        ("[always] madvise never\n", True),
        ("always madvise [never]\n", False),
        ("\xff\x00 garbage", False),
        (None, False),
    ],
)
def test_an_administrators_never_is_kept(tmp_path, text, offered):
    setting = tmp_path / "enabled"
    if text is not None:
        setting.write_bytes(text.encode("latin-1"))
    assert huge_pages_offered(setting) is offered


def test_where_huge_pages_are_not_offered_nothing_is_asked() -> None:
    kernel = Kernel()
    pages = HugePages(kernel, lambda: MAPS, period=0.01, offered=lambda: False)
    pages.start()
    time.sleep(0.05)
    pages.stop()
    assert kernel.calls == []


@pytest.mark.skipif(not huge_pages_offered(), reason="transparent huge pages are off or absent here")
def test_a_heap_of_small_objects_ends_up_on_huge_pages() -> None:
    """In a process of its own, as a served mock's: 200 MB of small objects, advised once."""
    script = textwrap.dedent(
        """
        from mock_gateway.server._hugepages import HugePages, libc_madvise
        held = [str(n) * 3 for n in range(2_000_000)]
        collapsed = HugePages(libc_madvise()).advise_once()
        rollup = open("/proc/self/smaps_rollup").read().splitlines()
        huge = next(int(line.split()[1]) for line in rollup if line.startswith("AnonHugePages:"))
        print(collapsed, huge)
        """
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    collapsed, huge_kib = map(int, output.split())
    if collapsed == 0:
        pytest.skip("this kernel keeps the advice but collapses nothing (MADV_COLLAPSE is Linux 6.1+)")
    assert huge_kib >= 50 * 1024, output
