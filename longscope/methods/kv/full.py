"""``full``: the whole context in the KV cache, attended to as it is; the reference every method is read against."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.methods.base import KVMethod


@dataclass(frozen=True)
class Full(KVMethod):
    """No compression. On an HTTP or llama.cpp backend it is plain generation; in process it also reuses the
    prefilled context across a sample's questions in the multi-request and multi-turn modes."""

    name = "full"
    description = "the whole KV cache, nothing removed or masked (the reference)"
    in_model = False  # changes nothing in the model: every backend runs it

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            from longscope.core import UsageError

            raise UsageError("method full keeps every entry; it takes no ratio or budget")
