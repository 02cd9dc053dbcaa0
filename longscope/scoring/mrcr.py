"""OpenAI MRCR's grade: no random prefix first, no score; else the difflib sequence ratio of reply and gold."""

from __future__ import annotations

from collections.abc import Sequence
from difflib import SequenceMatcher

from longscope.scoring import SCORERS


@SCORERS.register("mrcr_similarity")
def mrcr_similarity(prediction: str, answers: Sequence[str], meta: dict) -> tuple[float, dict[str, float]]:
    """MRCR's grade: 0 unless the reply starts with the sample's random prefix (``meta["random_prefix"]``);
    otherwise ``SequenceMatcher(None, reply, gold).ratio()`` with the prefix removed from both.

    One departure: whitespace around the reply is stripped first, since chat backends may open a reply with
    a space or newline that the official grade (which reads API replies) never sees. Sub-score ``prefixed``:
    1 when the prefix was there."""
    prefix = str(meta.get("random_prefix", ""))
    reply = prediction.strip()
    if not answers or not reply.startswith(prefix):
        return 0.0, {"prefixed": 0.0}
    gold = answers[0].removeprefix(prefix)
    return SequenceMatcher(None, reply.removeprefix(prefix), gold).ratio(), {"prefixed": 1.0}
