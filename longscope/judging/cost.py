"""What judging costs: the judge's tokens, calls and seconds, and money where the judge URI gives its prices."""

from __future__ import annotations

from dataclasses import dataclass

from longscope.backends.uri import ModelURI
from longscope.core import UsageError

PRICE_OPTIONS = ("price_in", "price_out")


@dataclass(frozen=True)
class Prices:
    """Dollars (or any currency) per million input and output tokens; None where not given."""

    per_million_in: float | None = None
    per_million_out: float | None = None

    @property
    def known(self) -> bool:
        return self.per_million_in is not None or self.per_million_out is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float | None:
        """The price of one call's tokens; None when no price was given (unknown, not free)."""
        if not self.known:
            return None
        return (
            input_tokens * (self.per_million_in or 0.0) + output_tokens * (self.per_million_out or 0.0)
        ) / 1e6


def prices_of(uri: ModelURI) -> Prices:
    """``price_in=`` / ``price_out=`` of an ``openai:`` URI (per million tokens, 0 or more)."""
    values: dict[str, float] = {}
    for name in PRICE_OPTIONS:
        raw = uri.option(name)
        if raw is None:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not value >= 0.0:
            raise UsageError(
                f"option {name}={raw!r} in the model URI is not a price per million tokens (>= 0)"
            )
        values[name] = value
    return Prices(values.get("price_in"), values.get("price_out"))


@dataclass
class Usage:
    """The judge's share of one row (or of a whole run): kept apart from the evaluated model's columns."""

    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    seconds: float = 0.0
    cost: float | None = None

    def add(self, other: Usage) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.seconds += other.seconds
        if other.cost is not None:
            self.cost = (self.cost or 0.0) + other.cost
