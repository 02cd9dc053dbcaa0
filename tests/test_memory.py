"""Peak memory of one stretch of work, measured for that stretch and not for the whole process's life."""

from __future__ import annotations

import mmap
import time

import torch

from longscope.backends.memory import PeakMemory, resident_bytes


def test_a_short_lived_allocation_is_seen_and_a_later_quiet_block_does_not_inherit_it():
    cpu = torch.device("cpu")
    base = resident_bytes()
    assert base is not None and base > 0
    size = 256 * 2**20
    with PeakMemory(cpu) as busy:
        # Fresh pages straight from the kernel, every one touched: a malloc'd block could be served from memory a
        # long test process already holds (freed but kept by the allocator), which would not raise the RSS.
        block = mmap.mmap(-1, size)
        for offset in range(0, size, mmap.PAGESIZE):
            block[offset] = 1
        # Held until the sampler has run (on a loaded machine its 10 ms wake-up can come much later), at most 5 s.
        deadline = time.monotonic() + 5
        while (busy.bytes or 0) < base + size * 0.8 and time.monotonic() < deadline:
            time.sleep(0.01)
        block.close()
    with PeakMemory(cpu) as quiet:
        time.sleep(0.05)
    assert busy.bytes is not None and quiet.bytes is not None
    assert busy.bytes >= base + size * 0.8
    assert quiet.bytes < busy.bytes - size * 0.5
