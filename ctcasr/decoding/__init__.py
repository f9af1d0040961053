"""CTC decoders over plain arrays; imports numpy only.

    from ctcasr.decoding import BeamSearchDecoder, GreedyDecoder, Hypothesis, NGramLM
    dec = GreedyDecoder(tokens, blank=0, word_delimiter=" ")
    hyps = dec(log_probs)             # [T, V] -> list[Hypothesis], best first
    batch = dec(log_probs_btv, lengths)  # [B, T, V] -> list[list[Hypothesis]]

    lm = NGramLM.from_arpa("lm.arpa")   # or NGramLM.from_text(lines, order=3)
    beam = BeamSearchDecoder(tokens, blank=0, beam_size=32, word_delimiter=" ",
                             lm=lm, lm_weight=0.5, word_score=1.0, hotwords={"taipei": 8.0})
    nbest = beam(log_probs, n_best=5)
    state = beam.stream(); state.feed(chunk); state.partial(); state.finish()
"""

from .beam import BeamSearchDecoder, BeamSearchStream
from .greedy import GreedyDecoder
from .lm import ArpaFormatError, LMError, NGramLM, build_lm_cli
from .types import DecodingError, Hypothesis

__all__ = [
    "ArpaFormatError",
    "BeamSearchDecoder",
    "BeamSearchStream",
    "DecodingError",
    "GreedyDecoder",
    "Hypothesis",
    "LMError",
    "NGramLM",
    "build_lm_cli",
]
