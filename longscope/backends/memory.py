"""Peak memory of one stretch of work: the CUDA allocator's peak on a GPU, the sampled resident set on a CPU."""

from __future__ import annotations

import os
import resource
import sys
import threading
from types import TracebackType

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_STATM = "/proc/self/statm"


def resident_bytes() -> int | None:
    """The process's resident set now (Linux), or None where /proc is not there."""
    try:
        with open(_STATM, encoding="ascii") as handle:
            return int(handle.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.bytes``.

    On CUDA the allocator's own peak since the block began. On a CPU the process's resident set is sampled
    every ``interval`` seconds by a background thread (a prefill's activations live for tens of milliseconds to
    seconds, so a 10 ms period sees them), which measures this block rather than the process's lifetime peak
    that ``ru_maxrss`` gives; without /proc, ``ru_maxrss`` is the fallback.
    """

    def __init__(self, device: torch.device, interval: float = 0.01) -> None:
        self.device = device
        self.interval = interval
        self.bytes: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> PeakMemory:
        """Begin measuring (for spans that do not fit one ``with`` block)."""
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            return self
        first = resident_bytes()
        if first is None:
            return self
        self.bytes = first
        self._thread = threading.Thread(target=self._sample, name="longscope-peak-memory", daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            now = resident_bytes()
            if now is not None and now > (self.bytes or 0):
                self.bytes = now

    def stop(self) -> None:
        """Stop measuring; ``bytes`` holds the peak."""
        if self.device.type == "cuda":
            self.bytes = int(torch.cuda.max_memory_allocated(self.device))
            return
        if self._thread is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.bytes = int(peak if sys.platform == "darwin" else peak * 1024)
            return
        self._stop.set()
        self._thread.join()
        now = resident_bytes()
        if now is not None and now > (self.bytes or 0):
            self.bytes = now
