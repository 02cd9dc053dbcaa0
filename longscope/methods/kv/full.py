"""``full``: the whole context, nothing removed or masked; the reference every method is read against."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.core import Backend, UsageError
from longscope.methods.base import KVMethod, PlainSolver, SessionSolver, Solver


@dataclass(frozen=True)
class Full(KVMethod):
    """The method that changes nothing. Its KV hooks are the identity, so on an in-process model it can share
    a prefilled context across a sample's questions (multi-request, multi-turn); asked independently, or on
    any other backend, it is plain generation."""

    name = "full"
    description = "the whole context, nothing removed or masked (the reference)"
    in_model = False  # changes nothing in the model: every backend runs it

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.removes_nothing:
            raise UsageError("method full keeps every entry; it takes no ratio or budget")

    def solver(self, backend: Backend, mode: str) -> Solver:
        if mode != "independent" and backend.capabilities.in_process_model:
            return SessionSolver(backend, self, mode)
        return PlainSolver(backend)
