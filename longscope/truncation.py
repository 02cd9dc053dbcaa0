"""Truncation policies for samples above the model window: cut the context by tokens so the request fits."""

from __future__ import annotations

import dataclasses
from typing import Any

from longscope.core import Backend, Sample, UsageError

POLICIES = ("middle", "left", "right", "skip")


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise UsageError(f"unknown truncation policy {policy!r}; choose one of {', '.join(POLICIES)}")
    return policy


def request_tokens(backend: Backend, sample: Sample, context: str | None = None) -> int:
    """Tokens of the whole request (every turn's prompt, the longest counts) plus the output budget."""
    prompts = [
        backend.count_tokens(
            backend.render(
                sample.messages(turn, context=context), sample.turns[turn].answer_prefix, sample.chat
            )
        )
        for turn in range(len(sample.turns))
    ]
    return max(prompts) + sample.max_new_tokens


def truncate(
    backend: Backend, sample: Sample, window: int, policy: str
) -> tuple[Sample | None, dict[str, Any]]:
    """Fit ``sample`` into ``window`` tokens (prompt plus output budget) under ``policy``.

    Returns the sample to run, or None when it is skipped, and the record that is also written into the
    returned sample's metadata: ``{"truncation": "none" | policy | "skip", "truncated_tokens": n}``. A
    sample that already fits comes back unchanged apart from that record. ``middle`` keeps the head and
    the tail of the context, ``left`` drops its start, ``right`` drops its end; the cut is made in the
    model's tokens and then corrected against the real count of the rendered request, so the request fills
    the window exactly where the tokenizer allows it (and never goes over). A sample whose prompt does not
    fit even with an empty context is skipped, whatever the policy.
    """
    check_policy(policy)
    total = request_tokens(backend, sample)
    if total <= window:
        record = {
            "truncation": sample.metadata.get("truncation", "none"),
            "truncated_tokens": int(sample.metadata.get("truncated_tokens", 0)),
        }
        return _with(sample, record), record
    excess = total - window
    if policy == "skip" or request_tokens(backend, sample, context="") > window:
        record = {"truncation": "skip", "truncated_tokens": 0, "excess_tokens": excess}
        return None, record

    ids = backend.encode(sample.context)
    best: tuple[int, str, int] | None = None  # (request tokens, context, tokens cut)
    cut = min(excess, len(ids))
    tried: set[int] = set()
    # The count of the rendered request moves by about one per token cut; seams can merge or split a token
    # or two, so a few corrections steered by each miss settle on the largest context that fits.
    for _ in range(8):
        if cut in tried or not 0 <= cut <= len(ids):
            break
        tried.add(cut)
        context = _cut(backend, ids, cut, policy)
        got = request_tokens(backend, sample, context)
        if got <= window and (best is None or got > best[0]):
            best = (got, context, cut)
        if got == window:
            break
        cut += got - window
        if best is not None and cut in tried:
            break
    if best is None:  # corrections ran out above the window: cut one step further at a time until it fits
        cut = max(tried) + 1
        while cut <= len(ids):
            context = _cut(backend, ids, cut, policy)
            got = request_tokens(backend, sample, context)
            if got <= window:
                best = (got, context, cut)
                break
            cut += max(1, got - window)
    if best is None:
        best = (request_tokens(backend, sample, ""), "", len(ids))
    got, context, cut = best
    record = {"truncation": policy, "truncated_tokens": len(ids) - len(backend.encode(context))}
    truncated = dataclasses.replace(sample, context=context)
    extra = {
        "truncated_from_tokens": total,
        "realised_tokens": got,
        "prompt_tokens": got - sample.max_new_tokens,
    }
    return _with(truncated, {**record, **extra}), record


def keep_tokens(backend: Backend, text: str, keep: int, policy: str, ids: list[int] | None = None) -> str:
    """``text`` cut to at most ``keep`` of its tokens where ``policy`` says (middle keeps head and tail);
    ``ids``: its tokens, when the caller has them already."""
    ids = backend.encode(text) if ids is None else ids
    return text if keep >= len(ids) else _cut(backend, ids, len(ids) - keep, policy)


def _cut(backend: Backend, ids: list[int], cut: int, policy: str) -> str:
    """The context with ``cut`` tokens removed where the policy says; never split inside a character."""
    keep = len(ids) - cut
    if keep <= 0:
        return ""
    if policy == "right":
        return _decode(backend, ids[:keep], at_end=True)
    if policy == "left":
        return _decode(backend, ids[cut:], at_end=False)
    head = (keep + 1) // 2
    tail = keep - head
    return _decode(backend, ids[:head], at_end=True) + (
        _decode(backend, ids[len(ids) - tail :], at_end=False) if tail else ""
    )


def _decode(backend: Backend, ids: list[int], *, at_end: bool) -> str:
    """Decode a slice; a byte-level cut can land inside a multi-byte character, so move the cut a token or
    two until the slice decodes cleanly (at its end for a head, at its start for a tail)."""
    for shift in range(4):
        part = ids[: len(ids) - shift] if at_end else ids[shift:]
        text = backend.decode(part)
        if "\ufffd" not in (text[-1:] if at_end else text[:1]):
            return text
    return backend.decode(ids).replace("\ufffd", "")


def _with(sample: Sample, record: dict[str, Any]) -> Sample:
    return dataclasses.replace(sample, metadata={**sample.metadata, **record})
