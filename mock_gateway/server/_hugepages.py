"""The served mock's heap on transparent huge pages, where Linux offers them.

A mock holding many jobs has a heap of hundreds of MB, and each call's short-lived objects land in
free slots scattered over it: each page they touch costs a TLB miss. Linux backs anonymous memory with
2 MiB pages where a process asks (`madvise`, the usual setting of
`/sys/kernel/mm/transparent_hugepage/enabled`), but pymalloc's arenas are 1 MiB mappings that nothing
asks for. `HugePages` asks: every `period` seconds it advises (MADV_HUGEPAGE) and collapses
(MADV_COLLAPSE, Linux 6.1) each 2 MiB-aligned range of the process's anonymous read-write mappings.
With 1,000,000 jobs held, a status call went from 0.89x a fresh mock's speed to 0.95x (`make bench`).

A no-op where transparent huge pages are set to `never` (MADV_COLLAPSE would ignore that setting),
where the kernel refuses (the first refusal of MADV_HUGEPAGE stops it) or elsewhere than Linux.
Installed in a served mock's process only (`serve`), like the collection pacer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

logger = logging.getLogger("mock_gateway")
HUGE_PAGE = 2 * 1024 * 1024
MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
PERIOD_SECONDS = 5.0
Advise = Callable[[int, int, int], int]
"""madvise(start, length, advice): 0, or -1 when refused."""


def libc_madvise() -> Advise | None:
    """libc's madvise on Linux, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise


THP_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def huge_pages_offered(setting: Path = THP_SETTING) -> bool:
    """Whether this machine's transparent huge pages are on (`always` or `madvise`, the bracketed
    choice of `always [madvise] never`): an administrator's `never` is kept."""
    try:
        chosen = setting.read_text(encoding="latin-1").partition("[")[2].partition("]")[0]
    except OSError:
        return False
    return chosen in ("always", "madvise")


def own_mappings() -> list[str]:
    """The process's mappings; latin-1, as the paths in them are any bytes."""
    return Path("/proc/self/maps").read_bytes().decode("latin-1").splitlines()


def anonymous_ranges(mappings: Iterable[str]) -> list[tuple[int, int]]:
    """The 2 MiB-aligned (start, length) inside each private read-write mapping with no file (pymalloc's
    arenas, malloc's heap); none shorter than a huge page."""
    ranges = []
    for line in mappings:
        fields = line.split()
        if len(fields) < 5 or fields[1] != "rw-p" or (len(fields) > 5 and fields[5] != "[heap]"):
            continue
        low, _, high = fields[0].partition("-")
        try:
            start, end = int(low, 16), int(high, 16)
        except ValueError:
            continue
        start, end = -(-start // HUGE_PAGE) * HUGE_PAGE, end // HUGE_PAGE * HUGE_PAGE
        if end > start:
            ranges.append((start, end - start))
    return ranges


class HugePages:
    """See the module's docstring; `advise`, `mappings` and `offered` are for tests."""

    def __init__(
        self,
        advise: Advise | None = None,
        mappings: Callable[[], Iterable[str]] = own_mappings,
        period: float = PERIOD_SECONDS,
        offered: Callable[[], bool] = huge_pages_offered,
    ) -> None:
        self._advise = advise
        self._mappings = mappings
        self._offered = offered
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.refused = False

    def advise_once(self) -> int:
        """Advise and collapse every range now; how many huge pages' worth the kernel collapsed."""
        if self._advise is None or self.refused:
            return 0
        collapsed = 0
        for start, length in anonymous_ranges(self._mappings()):
            if self._advise(start, length, MADV_HUGEPAGE) != 0:
                # A kernel without transparent huge pages: nothing this process asks will change that.
                logger.debug("transparent huge pages refused (errno %d): not asked again", ctypes.get_errno())
                self.refused = True
                return collapsed
            if self._advise(start, length, MADV_COLLAPSE) == 0:  # Linux < 6.1: refused, advice kept
                collapsed += length // HUGE_PAGE
        return collapsed

    def start(self) -> None:
        if not self._offered():
            return
        if self._advise is None:
            self._advise = libc_madvise()
        if self._advise is None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="huge-pages", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """At once, or within a second if a collapse is under way: the served mock's SIGTERM promises an
        exit within 5 s, and the thread is a daemon, which the process's exit ends anyway."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.period) and not self.refused:
            try:
                self.advise_once()
            except OSError:  # /proc unreadable: nothing to advise
                return
