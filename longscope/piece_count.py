"""Token counts of a whole prompt over a haystack from cached unit counts, encoding only the pieces that differ.

A haystack prompt is the rendered frame (template, instructions, question) around a context made of many
units with a few needles between them. Where two neighbouring units are known to tokenise apart exactly as
together (their counts add up), the prompt can be cut there, so its count is the sum of the unit counts plus
the counts of the few irregular stretches: the frame's head with the first units, each needle with the units
beside it, and the last units with the frame's tail. Fitting a context then costs a handful of short encodes
per candidate instead of tokenising 128k tokens again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from longscope.core import Backend

# Stands for the context when a prompt is rendered to find its frame: a private-use character no template
# or text of ours contains.
_MARKER = "\ue000"
# Frame and stretch counts kept per counter; a fit asks a few dozen.
_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class Frame:
    """The rendered prompt around the context: ``render(context) == before + context + after``."""

    before: str
    after: str


def find_frame(render: Callable[[str], str], probe: str) -> Frame | None:
    """The frame ``render`` puts around any context, or None when it is not a plain wrapper (a chat template
    that trims, escapes or repeats its content): checked on a marker and on ``probe``."""
    rendered = render(_MARKER)
    if rendered.count(_MARKER) != 1:
        return None
    before, after = rendered.split(_MARKER)
    frame = Frame(before, after)
    return frame if render(probe) == before + probe + after else None


class PieceCounter:
    """Counts ``frame.before + prefix + context + frame.after`` for contexts of ``n`` whole units from a
    stream, with given texts inserted at unit boundaries, without assembling or encoding the whole.

    ``cum`` holds the cumulative unit counts from the stream's start; ``joins(n)`` the boundaries
    ``1..n-1`` whose two units do not add up (they are counted together); ``unit_texts(a, b)`` the units'
    texts. The context's leading whitespace is dropped, as fitting does.
    """

    def __init__(
        self,
        backend: Backend,
        frame: Frame,
        cum: np.ndarray,
        joins: Callable[[int], Sequence[int]],
        unit_texts: Callable[[int, int], list[str]],
    ) -> None:
        self.backend = backend
        self.frame = frame
        self.cum = cum
        self.joins = joins
        self.unit_texts = unit_texts
        self._memo: dict[str, int] = {}

    def count(self, n: int, inserts: dict[int, list[str]], prefix: str = "") -> int:
        """Tokens of the whole prompt over ``n`` units with ``inserts[j]`` placed before unit ``j`` (``j == n``:
        after the last) and ``prefix`` before the (left-stripped) context."""
        if n == 0:
            body = "".join(inserts.get(0, ())).lstrip()
            return self._counts([self.frame.before + prefix + body + self.frame.after], framed=True)[0]
        stretches = _stretches(n, sorted({*self.joins(n), *(j for j in inserts if 0 < j < n)}))
        texts = []
        for a, b in stretches:
            pieces: list[str] = []
            for j, unit in zip(range(a, b), self.unit_texts(a, b), strict=True):
                if j > a or a == 0:
                    pieces.extend(inserts.get(j, ()))
                pieces.append(unit)
            text = "".join(pieces)
            if b == n:
                text += "".join(inserts.get(n, ())) + self.frame.after
            if a == 0:
                text = self.frame.before + prefix + text.lstrip()
            texts.append(text)
        framed = {0, len(texts) - 1}
        counted = self._counts([t for i, t in enumerate(texts) if i in framed], framed=True)
        counted += self._counts([t for i, t in enumerate(texts) if i not in framed], framed=False)
        inside = sum(int(self.cum[b] - self.cum[a]) for a, b in stretches)
        return int(self.cum[n]) - inside + sum(counted)

    def _counts(self, texts: list[str], framed: bool) -> list[int]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        if missing:
            if len(self._memo) + len(missing) > _MEMO_LIMIT:
                self._memo.clear()
            if framed:
                # The frame holds the template's special tokens: counted the way a whole prompt is counted.
                counts = [self.backend.count_tokens(text) for text in missing]
            else:
                counts = list(self.backend.count_tokens_batch(missing))
            self._memo.update(zip(missing, counts, strict=True))
        return [self._memo[t] for t in texts]


def _stretches(n: int, joined: list[int]) -> list[tuple[int, int]]:
    """Unit ranges ``[a, b)`` counted as one text: the first and last units (they touch the frame) and every
    run of units tied together by a boundary in ``joined`` (a needle there, or a pair that does not add up)."""
    runs: list[list[int]] = [[0, 1]]
    for j in joined:
        if runs[-1][1] >= j:  # unit j-1 is already in the last run: unit j joins it
            runs[-1][1] = max(runs[-1][1], j + 1)
        else:
            runs.append([j - 1, j + 1])
    if runs[-1][1] < n:
        runs.append([n - 1, n])
    return [(a, b) for a, b in runs]
