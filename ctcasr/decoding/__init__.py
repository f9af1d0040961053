"""CTC decoders over plain arrays; imports numpy only.

    from ctcasr.decoding import GreedyDecoder, Hypothesis
    dec = GreedyDecoder(tokens, blank=0, word_delimiter=" ")
    hyps = dec(log_probs)             # [T, V] -> list[Hypothesis], best first
    batch = dec(log_probs_btv, lengths)  # [B, T, V] -> list[list[Hypothesis]]
"""

from .greedy import GreedyDecoder
from .types import Hypothesis

__all__ = ["GreedyDecoder", "Hypothesis"]
