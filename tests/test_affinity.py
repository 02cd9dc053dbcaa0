"""Cache-aware dispatch: the shared-prefix measure, the choice rule on hand-built queues, and a two-endpoint run
of a NIAH-shaped plan in which every pair of prompts sharing a prefix lands on one server."""

from __future__ import annotations

import os
from collections import deque
from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from longscope.executors.affinity import MIN_SHARED_CHARS, affinity, pick, shared_prefix
from longscope.executors.ray import RayExecutor, _Slot

LONG = MIN_SHARED_CHARS


def test_shared_prefix_on_hand_cases():
    assert shared_prefix("abcdef", "abcxyz") == 3
    assert shared_prefix("abc", "abc") == 3
    assert shared_prefix("abc", "abcdef") == 3
    assert shared_prefix("", "abc") == 0
    assert shared_prefix("xbc", "abc") == 0


@given(st.text(alphabet="ab", max_size=40), st.text(alphabet="ab", max_size=40))
def test_shared_prefix_is_the_common_prefix(first, second):
    assert shared_prefix(first, second) == len(os.path.commonprefix([first, second]))


@given(
    st.text(alphabet="ab", max_size=12),
    st.lists(st.text(alphabet="ab", max_size=12), max_size=3),
    st.integers(min_value=0, max_value=8),
)
def test_affinity_below_its_floor_is_zero_and_above_it_the_longest_shared_prefix(prompt, recent, floor):
    longest = max((len(os.path.commonprefix([prompt, seen])) for seen in recent), default=0)
    assert affinity(prompt, recent, floor) == (longest if longest >= floor else 0)


def test_a_worker_takes_the_item_sharing_its_recent_prefix():
    mine = ["A" * LONG + "needle one"]
    assert pick(["B" * 50, "A" * LONG + "needle two"], mine, [[]]) == 1
    # A shorter shared prefix than the threshold is no reason to reorder the plan.
    assert pick(["B" * 50, "A" * (LONG - 1) + "z"], mine, [[]]) == 0


def test_an_item_another_worker_has_the_prefix_of_waits_for_it():
    others = [["C" * LONG + "read by the other"]]
    assert pick(["C" * LONG + "next", "D" * 10, "E" * 10], [], others) == 1
    # When every queued item belongs to another worker, the worker with room still takes the first: no worker
    # idles while items wait.
    assert pick(["C" * LONG + "1", "C" * LONG + "2"], [], others) == 0


class Handle:
    def __init__(self):
        self.sent = []
        self.answer = SimpleNamespace(remote=self._remote)

    def _remote(self, item, retries, attempts):
        self.sent.append(item.name)
        return object()


def niah_like_plan(samples: int) -> list:
    """Each sample's three depths: the needle at the start, the middle, the end, so the middle and end prompts
    share the haystack's first half (as a real NIAH plan's do) and the start prompt shares nothing."""
    items = []
    for sample in range(samples):
        first, second = f"{sample}a" * LONG, f"{sample}b" * LONG
        prompts = {"d0": "N" + first + second, "d0.5": first + "N" + second, "d1": first + second + "N"}
        for depth, prompt in prompts.items():
            key = SimpleNamespace(
                key=lambda turn: "k", request=lambda sample, turn, text=prompt: SimpleNamespace(
                    messages=[{"content": text}]
                )
            )  # fmt: skip
            items.append(SimpleNamespace(item=key, sample=None, turns=1, name=f"s{sample}/{depth}"))
    return items


def test_two_endpoints_keep_each_shared_prefix_on_one_server():
    executor = RayExecutor("openai:http://x/v1#m")
    handles = [Handle(), Handle()]
    executor.slots = [_Slot(handle, depth=1, pid=n) for n, handle in enumerate(handles)]
    queue, owner = deque(niah_like_plan(4)), {}
    turn = 0
    while queue or owner:
        executor._fill(queue, owner, retries=0, attempts={})
        # The servers finish in turn, one item each time.
        slot = executor.slots[turn % 2]
        turn += 1
        for ref in list(slot.outstanding):
            slot.outstanding.pop(ref)
            owner.pop(ref)
    by_server = [set(handle.sent) for handle in handles]
    assert sum(map(len, by_server)) == 12 and len(by_server[0]) == len(by_server[1]) == 6
    for sample in range(3):
        middle = next(n for n, names in enumerate(by_server) if f"s{sample}/d0.5" in names)
        assert f"s{sample}/d1" in by_server[middle], (sample, [handle.sent for handle in handles])
    # The plan's last item belongs to a busy server; the free one takes it rather than idle at the end.
    assert handles[0].sent[-1] == "s3/d0.5" and handles[1].sent[-1] == "s3/d1"
